//! login-etl's pure core: values in, values out — no I/O, no clock, no environment. Its
//! dependencies say so: no async runtime, no database driver, no AWS SDK.
//!
//! - [`message`]: one SQS body parsed and validated into a `LoginRecord`.
//! - [`contract`]: the JSON Schema of the body that producers validate against, and a body's
//!   verdict by the function's own rules.
//! - [`mask`]: keyed HMAC-SHA256 of the personal fields.
//! - [`vault`]: sealing originals to the vault's public key (and opening them for recovery).
//! - [`batch`]: an event turned into rows for one statement plus named failures (FIFO rules,
//!   repeated ids), and the `BatchOutcome` that accounts for every record.
//! - [`metrics`]: the EMF documents an outcome is reported as.
//! - [`sample`]: realistic (and deliberately broken) login messages from a seed.

pub mod batch;
pub mod contract;
pub mod mask;
pub mod message;
pub mod metrics;
pub mod sample;
pub mod vault;
