//! login-etl: user-login events from SQS, masked, loaded into PostgreSQL — the function's
//! library: its adapters, the handler that joins them to the pure core, and its entry points.
//!
//! # The workspace
//!
//! ```text
//!   crates/sqs-batch        the SQS partial-batch-failure contract (generic, no logins)
//!            ▲
//!   crates/login-etl-core   the pure core: message, contract, mask, vault, batch, metrics
//!            ▲
//!   login-etl (this crate)  config ─▶ adapters ─▶ handler ─▶ lambda / drain ─▶ src/main.rs
//!            ▲
//!   crates/login-etl-cli    login-etl-cli's commands (queues, keys, migrations, reports)
//!   crates/test-support     what tests and benches share (dev-only)
//! ```
//!
//! # This crate
//!
//! ```text
//!  Lambda ──▶ lambda::Function::invoke ─┐
//!  CLI ─────▶ drain ────────────────────┼─▶ handler::Handler::handle ─▶ sqs_batch::plan with
//!                                       │     batch::LoginParser (core) ──────────────────────┐
//!                                       │   ◀── BatchOutcome ◀── adapters::loader::Loader ◀───┘
//!  SqsBatchResponse ◀── lambda::batch_response     (sqs_batch::Store; one statement per batch)
//! ```
//!
//! - [`config`]: the environment, read and validated once, and the settings types the adapters
//!   take (it depends on no other module of this crate).
//! - [`adapters`]: PostgreSQL (loader, rows, store, lifecycle, database, tls, iam) and AWS
//!   (secrets, sqs, visibility, aws).
//! - [`handler`]: runs the `sqs-batch` contract with the core's parse step and the loader as its
//!   store; what every entry point calls. [`startup`] builds it once per process from the [`config::Config`].
//! - Entry points: [`lambda`] (the runtime's one function, metrics included) and [`drain`] (the
//!   local event source mapping).
//! - Cross-cutting: [`telemetry`] (logging without PII), [`errors`] (error chains as operators
//!   read them).

pub mod adapters;
pub mod config;
pub mod drain;
pub mod errors;
pub mod handler;
pub mod lambda;
pub mod startup;
pub mod telemetry;

pub use crate::config::Config;
pub use crate::handler::Handler;
