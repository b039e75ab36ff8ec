//! Builders for SQS messages and events as Lambda delivers them, for tests of your own
//! (the `testing` feature).
//!
//! ```
//! use sqs_batch::testing::{event, fifo, message, with_attribute};
//!
//! let event = event(vec![
//!     with_attribute(message("m-1", "21"), "IdempotencyKey", "reading-7"),
//!     fifo("m-2", "sensor-4", "22"),
//! ]);
//! assert_eq!(event.records.len(), 2);
//! ```

use aws_lambda_events::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};

/// The `SentTimestamp` the builders set: 2026-11-23T02:13:20Z.
pub const SENT: i64 = 1_795_400_000_000;

/// The standard queue the builders' messages come from.
pub const QUEUE_ARN: &str = "arn:aws:sqs:eu-west-1:123456789012:events";

/// A message of a standard queue, as SQS delivers it on its first receive: its id, body,
/// `eventSourceARN`, a receipt handle, `SentTimestamp` ([`SENT`]) and `ApproximateReceiveCount`.
pub fn message(id: &str, body: &str) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(id.to_owned());
    message.receipt_handle = Some(format!("rh-{id}"));
    message.body = Some(body.to_owned());
    message.event_source_arn = Some(QUEUE_ARN.to_owned());
    message.event_source = Some("aws:sqs".to_owned());
    message.attributes.insert("SentTimestamp".into(), SENT.to_string());
    message.attributes.insert("ApproximateReceiveCount".into(), "1".into());
    message
}

/// A message of a FIFO queue (`QUEUE_ARN` + `.fifo`), in message group `group`.
pub fn fifo(id: &str, group: &str, body: &str) -> SqsMessage {
    let mut message = message(id, body);
    message.event_source_arn = Some(format!("{QUEUE_ARN}.fifo"));
    message.attributes.insert("MessageGroupId".into(), group.to_owned());
    message
}

/// A batch from a FIFO queue, one message per `(group, body)`, with the ids "1", "2", … in
/// order, so a unit test's table shows what the batch is about: which group each body is in.
#[cfg(test)]
pub(crate) fn fifo_batch(messages: &[(&str, &str)]) -> Vec<SqsMessage> {
    messages.iter().zip(1..).map(|((group, body), id)| fifo(&id.to_string(), group, body)).collect()
}

/// `message` with a String message attribute.
pub fn with_attribute(mut message: SqsMessage, name: &str, value: &str) -> SqsMessage {
    let mut attribute = SqsMessageAttribute::default();
    attribute.data_type = Some("String".into());
    attribute.string_value = Some(value.to_owned());
    message.message_attributes.insert(name.to_owned(), attribute);
    message
}

/// `message` on its `count`-th receive.
pub fn received(mut message: SqsMessage, count: u32) -> SqsMessage {
    message.attributes.insert("ApproximateReceiveCount".into(), count.to_string());
    message
}

/// The event Lambda hands a function for `records`.
pub fn event(records: Vec<SqsMessage>) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = records;
    event
}
