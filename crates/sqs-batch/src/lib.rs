//! SQS partial batch responses for AWS Lambda: a per-record async handler with bounded
//! concurrency, FIFO order, caught panics and a deadline, or a bulk store, over your record type.
//!
//! A Lambda function fed by an SQS event source mapping gets up to 10 000 messages at once. With
//! `ReportBatchItemFailures` on, it answers with the `messageId`s that failed, and only those
//! return to the queue. Getting that answer right is a contract of its own, the same for every
//! queue, and what AWS Powertools' batch utility gives other languages:
//!
//! - **Every record gets exactly one fate**: handled (or a duplicate), or named in
//!   `batchItemFailures`, each `messageId` once. Nothing is dropped silently.
//! - **A message whose failure cannot be named fails the whole event** ([`EventError`]): leaving
//!   a record with no `messageId` out of the response would tell Lambda it succeeded. So does a
//!   parse step that breaks for a reason no message is to blame for ([`try_plan`]).
//! - **Ids are checked, not trusted**: a `messageId` over 128 characters or with control
//!   characters fails its record; one repeated in the event fails every copy, since the
//!   response could not tell them apart.
//! - **A redelivered message is recognised.** Each accepted record carries an *identity*: a
//!   producer's `IdempotencyKey` attribute (or the original id a redrive kept), else the
//!   `messageId`.
//! - **FIFO order holds**: on a `.fifo` queue a failed message blocks the rest of its group
//!   (or, by choice, of the batch: [`FifoPolicy`]).
//! - **A panic fails one record; the deadline fails none silently**: records not started before
//!   Lambda's deadline (less a margin) fail as retryable, so the response is always sent.
//!
//! # Per record
//!
//! [`Processor::run`] calls your async handler once per accepted message, at most
//! [`concurrency`](Processor::with_concurrency) at once:
//!
//! ```
//! use sqs_batch::{Processor, Record, RecordFailure, ResponsePolicy};
//!
//! #[derive(serde::Deserialize)]
//! struct Order { id: u64, total_cents: i64 }
//!
//! async fn charge(record: Record) -> Result<(), RecordFailure> {
//!     let order: Order = record.json()?; // a bad body fails `malformed_json`
//!     if order.total_cents < 0 {
//!         return Err(RecordFailure::permanent("negative_total", format!("order {}", order.id)));
//!     }
//!     Ok(()) // call the payment API here, keyed by record.identity()
//! }
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//!     let event: aws_lambda_events::sqs::SqsEvent = serde_json::from_str(
//!         r#"{"Records": [{"messageId": "m-1", "body": "{\"id\": 1, \"total_cents\": 250}"},
//!                         {"messageId": "m-2", "body": "{\"id\": 2, \"total_cents\": -5}"},
//!                         {"messageId": "m-3", "body": "not json"}]}"#,
//!     )?;
//!     let processor = Processor::default().with_concurrency(10);
//!     let outcome = processor.run(event.records, None, charge).await?;
//!     let response = outcome.into_response(ResponsePolicy::default())?;
//!     let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
//!     assert_eq!(failed, ["m-2", "m-3"]);
//!     Ok(())
//! }
//! ```
//!
//! With the `lambda` feature, [`lambda::service`] (not shown when the feature is off) makes that
//! handler what `lambda_runtime::run` takes, with the invocation's deadline.
//!
//! # In bulk
//!
//! A function that writes a batch at once (one `INSERT … ON CONFLICT DO NOTHING`) parses each
//! message with a synchronous step and hands the accepted records to its [`Store`] in one call:
//!
//! ```
//! use std::borrow::Cow;
//!
//! use aws_lambda_events::sqs::SqsMessage;
//! use sqs_batch::{Envelope, MemoryStore, Rejection, ResponsePolicy, process};
//!
//! /// The record type: a body holding one whole number.
//! #[derive(Debug, Clone, PartialEq)]
//! struct Reading(u32);
//!
//! /// Why a body is not a reading. Its codes are what logs and metrics count.
//! #[derive(Debug, thiserror::Error)]
//! #[error("the body is not a whole number")]
//! struct NotANumber;
//!
//! impl Rejection for NotANumber {
//!     fn code(&self) -> Cow<'static, str> {
//!         "not_a_number".into()
//!     }
//! }
//!
//! fn parse(message: &SqsMessage) -> Result<Reading, NotANumber> {
//!     let body = message.body.as_deref().ok_or(NotANumber)?;
//!     body.trim().parse().map(Reading).map_err(|_| NotANumber)
//! }
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//!     let event: aws_lambda_events::sqs::SqsEvent = serde_json::from_str(
//!         r#"{"Records": [
//!             {"messageId": "m-1", "body": "21",
//!              "messageAttributes": {"IdempotencyKey": {"stringValue": "reading-7", "dataType": "String"}}},
//!             {"messageId": "m-2", "body": "twenty"},
//!             {"messageId": "m-3", "body": "21",
//!              "messageAttributes": {"IdempotencyKey": {"stringValue": "reading-7", "dataType": "String"}}}
//!         ]}"#,
//!     )?;
//!     let store = MemoryStore::new(); // a connection pool in a real function
//!     let outcome = process(&event.records, &Envelope::default(), parse, &store).await?;
//!     assert_eq!((outcome.succeeded(), outcome.duplicates()), (1, 1), "m-3 re-sent reading-7");
//!     assert_eq!(outcome.failures_by_code().get("not_a_number"), Some(&1));
//!     let response = outcome.into_response(ResponsePolicy::default().fail_on_store_failure(true))?;
//!     assert_eq!(response.batch_item_failures[0].item_identifier, "m-2");
//!     assert_eq!(store.identities(), ["reading-7"]);
//!     Ok(())
//! }
//! ```
//!
//! # Layout
//!
//! - [`Envelope`]: the rules read from the SQS envelope (identity attributes, opt-in sent-time
//!   and receive-count checks, repeated ids, [`FifoPolicy`]).
//! - [`Processor`]: the per-record path; [`Record`] is what the handler gets.
//! - [`plan`](plan()) → [`Store`] ([`process`]): the bulk path; [`MemoryStore`] for tests.
//!   [`try_plan`] when the parse step may fail the whole event ([`EventError::Aborted`]).
//! - [`Outcome`]: the fate of every record, from either path; [`ResponsePolicy`] turns it into
//!   the `SqsBatchResponse` or a function error.
//! - [`FailureReason`]: why a message failed, with a stable [`code`](FailureReason::code);
//!   your own reasons pass through as [`Rejection`]s ([`RecordFailure`], [`MalformedJson`]).
//! - [`Backoff`]: how long to hide a message that failed for a passing reason, by receive
//!   count; the `sqs` feature's `visibility` module applies it.
//!
//! # Features
//!
//! - `lambda`: the `lambda` module, a handler as a `lambda_runtime` service.
//! - `tracing`: one event per batch and one per failed record (code and `messageId` only).
//! - `sqs`: the `visibility` module, `ChangeMessageVisibilityBatch` with [`Backoff`]'s schedule.
//! - `testing`: the `testing` module, builders of messages and events.

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backoff;
mod delivery;
mod envelope;
mod failure;
mod json;
mod outcome;
mod plan;
mod run;
mod store;

#[cfg(feature = "lambda")]
pub mod lambda;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(feature = "sqs")]
pub mod visibility;

#[cfg(test)]
mod test_record;

pub use backoff::{Backoff, MAX_VISIBILITY_TIMEOUT};
pub use envelope::{Envelope, FifoPolicy, IDEMPOTENCY_KEY_ATTRIBUTE, MAX_ID_CHARS};
pub use failure::{EventError, Failed, FailureReason, RecordFailure, Rejection};
pub use json::{MalformedJson, json};
pub use outcome::{Outcome, ResponsePolicy, Unanswered, batch_response, process};
pub use plan::{Accepted, Plan, plan, try_plan};
pub use run::{DEFAULT_CONCURRENCY, DEFAULT_DEADLINE_MARGIN, Processor, Record};
pub use store::{InjectedFailure, MemoryStore, Store};
