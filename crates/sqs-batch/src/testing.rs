//! Messages and a record type for the unit tests.

use std::borrow::Cow;

use aws_lambda_events::sqs::{SqsMessage, SqsMessageAttribute};

use crate::failure::Rejection;

/// 2026-11-23T02:13:20Z.
pub const SENT: i64 = 1_795_400_000_000;

/// A message of a standard queue, as SQS delivers it on its first receive.
pub fn message(id: &str, body: &str) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(id.to_owned());
    message.body = Some(body.to_owned());
    message.event_source_arn = Some("arn:aws:sqs:eu-west-1:123456789012:events".to_owned());
    message.attributes.insert("SentTimestamp".into(), SENT.to_string());
    message.attributes.insert("ApproximateReceiveCount".into(), "1".into());
    message
}

/// A message of a FIFO queue, in message group `group`.
pub fn fifo(id: &str, group: &str, body: &str) -> SqsMessage {
    let mut message = message(id, body);
    message.event_source_arn = Some("arn:aws:sqs:eu-west-1:123456789012:events.fifo".to_owned());
    message.attributes.insert("MessageGroupId".into(), group.to_owned());
    message
}

/// `message` with a String message attribute.
pub fn with_attribute(mut message: SqsMessage, name: &str, value: &str) -> SqsMessage {
    let mut attribute = SqsMessageAttribute::default();
    attribute.data_type = Some("String".into());
    attribute.string_value = Some(value.to_owned());
    message.message_attributes.insert(name.to_owned(), attribute);
    message
}

/// The record type of the tests: a body holding a whole number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number(pub u32);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotANumber {
    #[error("no body")]
    MissingBody,
    #[error("not a number")]
    Malformed,
}

impl Rejection for NotANumber {
    fn code(&self) -> Cow<'static, str> {
        match self {
            NotANumber::MissingBody => "missing_body".into(),
            NotANumber::Malformed => "malformed_body".into(),
        }
    }
}

pub fn parse(message: &SqsMessage) -> Result<Number, NotANumber> {
    let body = message.body.as_deref().ok_or(NotANumber::MissingBody)?;
    body.parse().map(Number).map_err(|_| NotANumber::Malformed)
}
