//! login-etl: user-login events from SQS, masked, loaded into PostgreSQL.
//!
//! The data flow, module by module:
//!
//! ```text
//! SqsEvent ──▶ batch::plan ──▶ store::Store::insert ──▶ BatchOutcome ──▶ SqsBatchResponse
//!               │  message: parse + validate one body          (one statement per batch)
//!               │  mask:    HMAC-SHA256 of ip / device_id
//! ```
//!
//! The pure core ([`message`], [`mask`], [`batch`]) does no I/O. The adapters translate:
//! [`lambda`] (the Lambda runtime), [`queue`] (SQS polling, the local event source mapping),
//! [`store`] (PostgreSQL), [`secrets`] (Secrets Manager), [`config`] (the environment).
//! [`handler`] joins core and store, and is what every entry point calls; [`startup`] builds it
//! once per process. [`sample`] makes realistic test messages.

pub mod aws;
pub mod batch;
pub mod cli;
pub mod config;
pub mod database;
pub mod handler;
pub mod iam;
pub mod lambda;
pub mod loader;
pub mod mask;
pub mod message;
pub mod metrics;
pub mod queue;
pub mod sample;
pub mod secrets;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod vault;
pub mod visibility;
