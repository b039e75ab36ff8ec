//! The SQS partial-batch-failure contract for AWS Lambda, over your record type and your store.
//!
//! A Lambda function fed by an SQS event source mapping gets up to 10 000 messages at once. With
//! `ReportBatchItemFailures` on, it answers with the `messageId`s that failed, and only those
//! return to the queue. Getting that answer right is a contract of its own, the same for every
//! queue, and what AWS Powertools' batch utility gives other languages:
//!
//! - **Every record gets exactly one fate**: stored (or found already stored), or named in
//!   `batchItemFailures`, each `messageId` once. Nothing is dropped silently.
//! - **A message whose failure cannot be named fails the whole event** ([`EventError`]): leaving
//!   a record with no `messageId` out of the response would tell Lambda it succeeded.
//! - **Ids are checked, not trusted**: a `messageId` over 128 characters or with control
//!   characters fails its record; one repeated in the event fails every copy, since the
//!   response could not tell them apart.
//! - **A redelivered message never makes a second entry.** Each accepted record carries an
//!   *identity*, the key the store deduplicates on: a producer's `IdempotencyKey` attribute (or
//!   the original id a redrive kept), else the `messageId`.
//! - **FIFO order holds**: on a `.fifo` queue, once a message of a group fails, every later
//!   message of that group in the batch fails too, and the other groups go on.
//! - **The store is all or nothing**: when it fails, every accepted record fails with a
//!   retryable reason, and the caller picks a partial response or a function error
//!   ([`OnStoreFailure`]).
//!
//! The rules are pure (no I/O, no clock); the only I/O is behind the [`Store`] port, and
//! [`MemoryStore`] implements it for tests.
//!
//! # Example
//!
//! A function whose messages are numbers, with one bad body and one keyed redelivery:
//!
//! ```
//! use std::borrow::Cow;
//!
//! use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
//! use sqs_batch::{Envelope, MemoryStore, OnStoreFailure, Rejection, process};
//!
//! /// The record type: a body holding one whole number.
//! #[derive(Debug, Clone, PartialEq)]
//! struct Reading(u32);
//!
//! /// Why a body is not a reading. Its codes are what logs and metrics count.
//! #[derive(Debug, thiserror::Error)]
//! enum BadReading {
//!     #[error("the message has no body")]
//!     MissingBody,
//!     #[error("the body is not a whole number")]
//!     NotANumber,
//! }
//!
//! impl Rejection for BadReading {
//!     fn code(&self) -> Cow<'static, str> {
//!         match self {
//!             BadReading::MissingBody => "missing_body".into(),
//!             BadReading::NotANumber => "not_a_number".into(),
//!         }
//!     }
//! }
//!
//! fn parse(message: &SqsMessage) -> Result<Reading, BadReading> {
//!     let body = message.body.as_deref().ok_or(BadReading::MissingBody)?;
//!     body.trim().parse().map(Reading).map_err(|_| BadReading::NotANumber)
//! }
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//!     // What lambda_runtime hands a function as `LambdaEvent<SqsEvent>`.
//!     let event: SqsEvent = serde_json::from_str(
//!         r#"{"Records": [
//!             {"messageId": "m-1", "body": "21", "attributes": {"SentTimestamp": "1795400000000"},
//!              "messageAttributes": {"IdempotencyKey": {"stringValue": "reading-7", "dataType": "String"}}},
//!             {"messageId": "m-2", "body": "twenty", "attributes": {"SentTimestamp": "1795400000000"}},
//!             {"messageId": "m-3", "body": "21", "attributes": {"SentTimestamp": "1795400000000"},
//!              "messageAttributes": {"IdempotencyKey": {"stringValue": "reading-7", "dataType": "String"}}}
//!         ]}"#,
//!     )?;
//!
//!     // Built once per instance and shared by every invocation, in a real function.
//!     let envelope = Envelope::default();
//!     let store = MemoryStore::new();
//!
//!     // The whole handler: `?` on an EventError or a store outage fails the invocation.
//!     let outcome = process(&event.records, &envelope, parse, &store).await?;
//!     assert_eq!((outcome.stored, outcome.duplicates), (1, 1), "m-3 re-sent reading-7");
//!     assert_eq!(outcome.failures_by_code().get("not_a_number"), Some(&1));
//!     let response = outcome.into_response(OnStoreFailure::FailInvocation)?;
//!
//!     let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
//!     assert_eq!(failed, ["m-2"]);
//!     assert_eq!(store.identities(), ["reading-7"]);
//!     Ok(())
//! }
//! ```
//!
//! In a function, that body is the handler given to `lambda_runtime::service_fn`, with the
//! envelope and the store (a connection pool) built once in `main`.
//!
//! # Layout
//!
//! - [`Envelope`]: the rules read from the SQS envelope (identity and sent-time attributes,
//!   believable sent times, repeated ids).
//! - [`plan`]: applies them and the record type's parse to an event, giving a [`Plan`] of
//!   [`Accepted`] records and [`Failed`] messages.
//! - [`Store`]: the port accepted records are written through; [`MemoryStore`] for tests.
//! - [`process`]: plan → store → [`Outcome`] → `SqsBatchResponse` ([`Outcome::into_response`]).
//! - [`FailureReason`]: why a message failed, with a stable [`code`](FailureReason::code);
//!   the record type's own reasons pass through as [`Rejection`]s.
//! - [`Backoff`]: how long to hide a message the store failed, by receive count.

#![warn(missing_docs)]

mod backoff;
mod envelope;
mod failure;
mod outcome;
mod plan;
mod store;

#[cfg(test)]
mod testing;

pub use backoff::{Backoff, MAX_VISIBILITY_TIMEOUT};
pub use envelope::{Envelope, IDEMPOTENCY_KEY_ATTRIBUTE, MAX_ID_CHARS};
pub use failure::{EventError, Failed, FailureReason, Rejection};
pub use outcome::{OnStoreFailure, Outcome, StoreUnavailable, batch_response, process};
pub use plan::{Accepted, Plan, plan};
pub use store::{InjectedFailure, MemoryStore, Store};
