//! The rules every message passes before its body is read: what the store may key on, when it
//! was sent, which FIFO group it holds up. Pure: no I/O, no clock.

use std::ops::Range;

use aws_lambda_events::sqs::SqsMessage;

use crate::failure::FailureReason;

/// The longest `messageId` or identity accepted, in characters. SQS's own ids are 36-character
/// UUIDs; the bound keeps keys storable (a `varchar(128)` column) and log lines short.
pub const MAX_ID_CHARS: usize = 128;

/// The message attribute a producer sets to name a message once, whatever SQS does to it: a
/// retried `SendMessage` or a dead-letter redrive gives the same message a new `messageId`.
/// AWS Powertools' idempotency utilities use a key of the same kind.
pub const IDEMPOTENCY_KEY_ATTRIBUTE: &str = "IdempotencyKey";

/// The envelope rules of a queue: which attributes carry a message's identity and original
/// sent time, which sent times are believable, and what to do with a `messageId` seen twice.
///
/// The default reads the identity from [`IDEMPOTENCY_KEY_ATTRIBUTE`], takes the sent time
/// from SQS's `SentTimestamp` whatever its value, and fails every copy of a repeated
/// `messageId`. A tool that re-sends messages (a DLQ redrive of your own) can keep their first
/// identity and time with [`Envelope::with_redrive_attributes`]:
///
/// ```
/// use sqs_batch::Envelope;
///
/// // login-etl's envelope.
/// let envelope = Envelope::default()
///     .with_redrive_attributes("LoginEtlOriginalMessageId", "LoginEtlOriginalSentTimestamp")
///     .with_sent_range(946_684_800_000..4_102_444_800_000) // [2000, 2100) UTC
///     .with_identical_copies_collapsed(true);
/// assert_eq!(envelope.identity_attributes(), ["IdempotencyKey", "LoginEtlOriginalMessageId"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    identity_attributes: Vec<String>,
    sent_timestamp_attribute: Option<String>,
    sent_range: Option<Range<i64>>,
    collapse_identical_copies: bool,
}

impl Default for Envelope {
    fn default() -> Self {
        Envelope {
            identity_attributes: vec![IDEMPOTENCY_KEY_ATTRIBUTE.to_owned()],
            sent_timestamp_attribute: None,
            sent_range: None,
            collapse_identical_copies: false,
        }
    }
}

impl Envelope {
    /// The message attributes that name a message's identity, the first present one winning;
    /// without any, the identity is the `messageId`. Replaces the default list.
    pub fn with_identity_attributes<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.identity_attributes = names.into_iter().map(Into::into).collect();
        self
    }

    /// The attributes a redrive tool sets on a message it re-sends: the first delivery's
    /// `messageId` (checked after the idempotency key, so a producer's key still wins) and its
    /// `SentTimestamp` (preferred over SQS's own, so a replayed message keeps its sent time).
    pub fn with_redrive_attributes(mut self, original_message_id: &str, original_sent_timestamp: &str) -> Self {
        self.identity_attributes.push(original_message_id.to_owned());
        self.sent_timestamp_attribute = Some(original_sent_timestamp.to_owned());
        self
    }

    /// Refuse sent times (epoch ms) outside `range`: a broken clock or a forged attribute, and
    /// dates no partition or report expects. Bounded by constants, since the rules read no clock.
    pub fn with_sent_range(mut self, range: Range<i64>) -> Self {
        self.sent_range = Some(range);
        self
    }

    /// Treat copies of a `messageId` that are identical (body, `SentTimestamp` and message
    /// attributes) as one message delivered twice: the first copy is handled and the others
    /// count as duplicates. Copies that differ still all fail. Off by default: failing every
    /// copy is always safe (the message comes back), collapsing saves that receive.
    pub fn with_identical_copies_collapsed(mut self, collapse: bool) -> Self {
        self.collapse_identical_copies = collapse;
        self
    }

    /// The identity attributes, in the order they are tried.
    pub fn identity_attributes(&self) -> &[String] {
        &self.identity_attributes
    }

    pub(crate) fn collapses_identical_copies(&self) -> bool {
        self.collapse_identical_copies
    }

    /// Everything the envelope says about one message, or the first rule it breaks.
    pub(crate) fn read<'m, E>(&self, message: &'m SqsMessage) -> Result<Meta<'m>, FailureReason<E>> {
        let message_id = message.message_id.as_deref().unwrap_or_default();
        if !is_storable_id(message_id) {
            return Err(FailureReason::InvalidMessageId);
        }
        Ok(Meta { identity: self.identity(message, message_id)?, sent_at_ms: self.sent_at_ms(message)? })
    }

    fn identity<'m, E>(&self, message: &'m SqsMessage, message_id: &'m str) -> Result<&'m str, FailureReason<E>> {
        for name in &self.identity_attributes {
            if let Some(attribute) = message.message_attributes.get(name) {
                return attribute
                    .string_value
                    .as_deref()
                    .filter(|key| is_storable_id(key))
                    .ok_or(FailureReason::InvalidIdentity);
            }
        }
        Ok(message_id)
    }

    fn sent_at_ms<E>(&self, message: &SqsMessage) -> Result<i64, FailureReason<E>> {
        let original = self
            .sent_timestamp_attribute
            .as_deref()
            .and_then(|name| message.message_attributes.get(name))
            .map(|attribute| attribute.string_value.as_deref());
        let millis = match original {
            Some(value) => value,
            None => message.attributes.get("SentTimestamp").map(String::as_str),
        }
        .and_then(|millis| millis.parse::<i64>().ok())
        .ok_or(FailureReason::InvalidSentTimestamp)?;
        match &self.sent_range {
            Some(range) if !range.contains(&millis) => Err(FailureReason::SentTimestampOutOfRange),
            _ => Ok(millis),
        }
    }
}

/// What the envelope tells of a message that passes its rules.
pub(crate) struct Meta<'m> {
    pub identity: &'m str,
    pub sent_at_ms: i64,
}

fn is_storable_id(id: &str) -> bool {
    !id.is_empty() && id.chars().count() <= MAX_ID_CHARS && !id.chars().any(char::is_control)
}

/// The message group of a message from a FIFO queue, whose order the batch must keep.
///
/// Only a queue whose `eventSourceARN` ends in `.fifo` counts: standard queues may carry a
/// `MessageGroupId` too (fair queues), but promise no order, so blocking them would only delay.
pub(crate) fn fifo_group(message: &SqsMessage) -> Option<&str> {
    let is_fifo = message.event_source_arn.as_deref().is_some_and(|arn| arn.ends_with(".fifo"));
    if !is_fifo {
        return None;
    }
    message.attributes.get("MessageGroupId").map(String::as_str)
}

/// SQS's `ApproximateReceiveCount`, 1 when absent or unreadable (the message is at least on its
/// first receive).
pub(crate) fn receive_count(message: &SqsMessage) -> u32 {
    message.attributes.get("ApproximateReceiveCount").and_then(|count| count.parse().ok()).unwrap_or(1)
}

/// Whether two records with one `messageId` carry the same message.
pub(crate) fn same_message(a: &SqsMessage, b: &SqsMessage) -> bool {
    fn attributes(m: &SqsMessage) -> Vec<(&str, Option<&str>)> {
        let mut list: Vec<_> =
            m.message_attributes.iter().map(|(name, value)| (name.as_str(), value.string_value.as_deref())).collect();
        list.sort_unstable();
        list
    }
    a.body == b.body
        && a.attributes.get("SentTimestamp") == b.attributes.get("SentTimestamp")
        && attributes(a) == attributes(b)
}
