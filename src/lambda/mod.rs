//! The Lambda adapter: the runtime hands us `SqsEvent`s, we hand back `SqsBatchResponse`s.
//! Each module does one thing:
//!
//! - [`bootstrap`]: what `src/main.rs` runs: arguments, the async runtime, start-up and its
//!   failures, then the task's runtime loop.
//! - [`function`]: one invocation — handle the batch, write its EMF documents, respond — as
//!   the runtime, `login-etl-cli invoke` and the tests call it.
//! - [`event`]: the event parsed, its errors as sentences.
//! - [`response`]: an outcome as the partial batch response, or as a function error.
//! - [`runtime`]: the runtime loops (the loader's, concurrent on Managed Instances; the
//!   maintenance task's, sequential).
//! - [`in_flight`]: the invocations running, counted so that shutdown can wait for them.
//! - [`shutdown`]: SIGTERM: wait for them, close the connections.
//! - [`init_error`]: a start-up failure reported through the runtime's own client.

pub mod bootstrap;
pub mod event;
pub mod function;
pub mod in_flight;
pub mod init_error;
pub mod response;
pub mod runtime;
pub mod shutdown;

pub use function::{Function, Request};
