//! login-etl's pure core: values in, values out — no I/O, no clock, no environment. Its
//! dependencies say so: no async runtime, no database driver, no AWS SDK.
//!
//! - [`message`]: one SQS body parsed and validated into a `LoginRecord`.
//! - [`schema`]: the JSON Schema of the body that producers validate against, and a body's
//!   verdict by the function's own rules.
//! - [`policy`]: the field policy (what is stored of each field, and where), read from the
//!   published schema's annotations or a deployment's own copy.
//! - [`mask`]: keyed HMAC-SHA256 of the personal fields.
//! - [`vault`]: sealing originals to the vault's public key (and opening them for recovery).
//! - [`batch`]: login-etl's side of the partial-batch-failure contract, whose rules are the
//!   `sqs-batch` crate's: the queue's envelope, the parse step (validate, mask, seal) that
//!   turns a message into a `MaskedLogin`, and the `BatchOutcome` that logs and metrics read.
//! - [`metrics`]: the EMF documents an outcome is reported as.
//! - [`deploy_hook`]: the stack's schema migration as a CloudFormation custom resource: the
//!   maintenance function's event told apart, and the answer CloudFormation is sent.
//! - [`sample`]: realistic (and deliberately broken) login messages from a seed.
//! - `testing` (the `testing` feature): messages as login-etl's queue carries them, for tests.

pub mod batch;
pub mod deploy_hook;
pub mod mask;
pub mod message;
pub mod metrics;
pub mod policy;
pub mod sample;
pub mod schema;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod vault;
