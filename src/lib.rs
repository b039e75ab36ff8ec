//! login-etl: user-login events from SQS, masked, loaded into PostgreSQL — the function's
//! library: its adapters, the handler that joins them to the pure core, and its entry points.
//!
//! # The workspace
//!
//! ```text
//!   crates/sqs-batch        the SQS partial-batch contract (generic, no logins)
//!            ▲
//!   crates/login-etl-core   the pure core: message, schema, mask, vault, batch, metrics
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
//!  CLI ─────▶ drain ────────────────────┼─▶ handler::Handler::handle ─▶ sqs_batch::try_plan with
//!                                       │     batch::LoginParser (core) ──────────────────────┐
//!                                       │   ◀── BatchOutcome ◀── adapters::loader::Loader ◀───┘
//!  SqsBatchResponse ◀── lambda::respond        (sqs_batch::Store; one statement per batch)
//! ```
//!
//! Its modules are private; each arrow above runs one way (entry points → handler → adapters →
//! config), and no adapter imports another that imports it back.
//!
//! - `config`: the environment, read and validated once, and the settings types the adapters
//!   take (it depends on no other module of this crate).
//! - `adapters`: PostgreSQL (loader, rows, operator_db, lifecycle, database, tls, iam) and AWS
//!   (secrets, sqs, visibility, aws).
//! - `handler`: runs the `sqs-batch` contract with the core's parse step and the loader as its
//!   store; what every entry point calls. `startup` builds it once per process from the
//!   [`Config`].
//! - Entry points: `lambda` (the runtime's one function, metrics included) and `drain` (the
//!   local event source mapping).
//! - Cross-cutting: `telemetry` (logging without PII), `errors` (error chains as operators
//!   read them).
//!
//! # What other crates use
//!
//! The function's binary (`src/main.rs`), `login-etl-cli`, the test support, the tests and the
//! benches use only what is re-exported here:
//!
//! - Configuration: [`Config`] (with [`CONFIG_VARIABLES`], [`RUNTIME_ENV`]), [`Environment`],
//!   [`ConfigError`], and the settings the CLI and tests build: [`DatabaseSource`],
//!   [`MaskingKeySource`], [`PoolSettings`], [`SslMode`].
//! - Start-up: [`build_handler`], [`build_handler_with_secrets`], [`build_masker`],
//!   [`connect_operator_db`], [`operator_connect_options`], [`StartupError`].
//! - A batch: [`Handler`] (what every entry point calls) and [`process`] (the same path over any
//!   `sqs_batch::Store`, e.g. `MemoryStore`).
//! - The Lambda function: [`run_function`] with [`answer_arguments`] and
//!   [`unset_blank_sdk_variables`] (what `src/main.rs` runs), [`Function`] and [`Request`] (one
//!   invocation), [`parse_event`] ([`NotAnSqsEvent`]), [`respond`] (the partial response, or a
//!   function error when the store failed), [`SHUTDOWN_GRACE`].
//! - The local event source mapping: [`drain`], [`drain_until`], [`DrainOptions`],
//!   [`DrainReport`], [`DrainEnd`].
//! - PostgreSQL: [`DbTarget`] (where to connect); the function's [`Loader`] (the store,
//!   [`LoadError`]) with [`LoginRows`] and [`insert_rows`] (its statement); the operators' [`OperatorDb`]
//!   ([`OperatorDbError`], [`VaultLookup`]) and the data lifecycle on it:
//!   [`maintain_partitions`], [`partition_row_counts`], [`apply_retention`],
//!   [`preview_retention`], [`erase_user`], [`scheduled_maintenance`],
//!   [`DEFAULT_MONTHS_AHEAD`].
//! - AWS: [`load_aws_config`], [`blank_endpoint`] ([`ENDPOINT_VARIABLES`]), [`SecretStore`]
//!   ([`database_secret_json`]), [`Queue`] ([`QueueError`], [`retrying`]),
//!   [`ensure_queue_with_dlq`], [`redrive`], [`VisibilityBackoff`].
//! - Operators' view: [`LogSettings`], [`init_lambda_logging`], [`init_human`],
//!   [`error_chain`], [`fix_for`], [`RDS_CA_BUNDLE_URL`].

mod adapters;
mod config;
mod drain;
mod errors;
mod handler;
mod lambda;
mod startup;
mod telemetry;

pub use crate::adapters::aws::{ENDPOINT_VARIABLES, blank_endpoint, load_aws_config};
pub use crate::adapters::database::DbTarget;
pub use crate::adapters::lifecycle::{
    DEFAULT_MONTHS_AHEAD, apply_retention, erase_user, maintain_partitions, partition_row_counts, preview_retention,
    scheduled_maintenance,
};
pub use crate::adapters::loader::{LoadError, Loader, insert_rows};
pub use crate::adapters::operator_db::{OperatorDb, OperatorDbError, VaultLookup};
pub use crate::adapters::rows::LoginRows;
pub use crate::adapters::secrets::{SecretStore, database_secret_json};
pub use crate::adapters::sqs::{Queue, QueueError, ensure_queue_with_dlq, redrive, retrying};
pub use crate::adapters::visibility::VisibilityBackoff;
pub use crate::config::{
    CONFIG_VARIABLES, Config, ConfigError, DatabaseSource, Environment, MaskingKeySource, PoolSettings, RUNTIME_ENV,
    SslMode,
};
pub use crate::drain::{DrainEnd, DrainOptions, DrainReport, drain, drain_until};
pub use crate::errors::{RDS_CA_BUNDLE_URL, error_chain, fix_for};
pub use crate::handler::{Handler, process};
pub use crate::lambda::bootstrap::{answer_arguments, run_function, unset_blank_sdk_variables};
pub use crate::lambda::event::{NotAnSqsEvent, parse_event};
pub use crate::lambda::response::respond;
pub use crate::lambda::shutdown::SHUTDOWN_GRACE;
pub use crate::lambda::{Function, Request};
pub use crate::startup::{
    StartupError, build_handler, build_handler_with_secrets, build_masker, connect_operator_db,
    operator_connect_options,
};
pub use crate::telemetry::{LogSettings, init_human, init_lambda_logging};
