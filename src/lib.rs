//! login-etl: user-login events from SQS, masked, loaded into PostgreSQL.
//!
//! # Layout
//!
//! ```text
//!               entry points                 core (pure)                  adapters (I/O)
//!  Lambda ──▶ lambda::Function::invoke ─┐
//!  CLI ─────▶ cli::run ─▶ drain ────────┼─▶ handler::Handler::handle ─▶ batch::plan ──────┐
//!                                       │      (message, mask, vault)                      │
//!                                       │   ◀── BatchOutcome ◀── loader::Loader::insert ◀──┘
//!  SqsBatchResponse ◀── lambda::batch_response                   (one statement per batch)
//! ```
//!
//! - **Core** (`src/core/`, no I/O): [`message`], [`contract`], [`mask`], [`vault`], [`batch`],
//!   [`metrics`], [`sample`].
//! - **Adapters** (`src/adapters/`): [`loader`] and [`store`] (PostgreSQL, with [`database`],
//!   [`tls`], [`iam`]), [`lifecycle`] (partitions, retention, erasure), [`secrets`], [`sqs`],
//!   [`visibility`], [`aws`].
//! - **The joint**: [`handler`] plans a batch with the core and writes it with the loader; it
//!   is what every entry point calls. [`startup`] builds it once per process from [`config`].
//! - **Entry points**: [`lambda`] (the runtime's one function, metrics included), [`drain`]
//!   (the local event source mapping), [`cli`] (`login-etl-cli`'s commands, as functions).
//! - **Cross-cutting**: [`config`] (the environment, read and validated once), [`telemetry`]
//!   (logging without PII), [`errors`] (error chains as operators read them).
//!
//! The modules of `core` and `adapters` are re-exported here by name, so `login_etl::batch`
//! and `login_etl::loader` are the paths to use; the types most callers need are re-exported
//! at the root.

mod adapters;
mod core;

pub mod cli;
pub mod config;
pub mod drain;
pub mod errors;
pub mod handler;
pub mod lambda;
pub mod startup;
pub mod telemetry;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

pub use crate::adapters::{aws, database, iam, kms, lifecycle, loader, secrets, sqs, store, tls, visibility};
pub use crate::core::{batch, contract, mask, message, metrics, sample, vault};

pub use crate::batch::{BatchOutcome, BatchPlan, FailedMessage, FailureReason};
pub use crate::config::{Config, ConfigError};
pub use crate::drain::{DrainEnd, DrainOptions, DrainReport};
pub use crate::handler::Handler;
pub use crate::lambda::Function;
pub use crate::loader::{Loader, PoolSettings};
pub use crate::mask::{MaskedField, Masker, MaskingKey, MaskingMode};
pub use crate::sqs::Queue;
pub use crate::store::Store;
