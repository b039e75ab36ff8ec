//! The rules every message passes before its body is read: what the store may key on, when it
//! was sent, which FIFO group it holds up. Pure: no I/O, no clock.

use std::ops::Range;

use aws_lambda_events::sqs::SqsMessage;

use crate::failure::FailureReason;

/// The longest `messageId` or identity accepted, in characters. SQS's own ids are 36-character
/// UUIDs, and SQS caps the ids it lets callers choose at 128 characters (a batch entry's `Id`, a
/// FIFO `MessageDeduplicationId` and `MessageGroupId`), so 128 admits every id SQS makes and
/// every key a producer could also have used as a deduplication id, while keeping store keys
/// and log lines bounded.
pub const MAX_ID_CHARS: usize = 128;

/// What a failure on a FIFO queue does to the messages after it in the batch.
///
/// A FIFO queue promises order within a message group, so a failed message must hold back the
/// later messages of its group: they go back to the queue behind it. What happens to the other
/// groups is the choice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum FifoPolicy {
    /// The later messages of the failed message's group fail (`fifo_group_blocked`); other
    /// groups go on. The default: one poison message holds up only its own group.
    #[default]
    BlockGroup,
    /// Every later message of the batch fails (`fifo_batch_stopped`), whatever its group, and
    /// the batch is processed one record at a time in event order. Powertools' default
    /// (`SqsFifoPartialProcessor` without `skip_group_on_error`).
    StopBatch,
}

/// The message attribute a producer sets to name a message once, whatever SQS does to it: a
/// retried `SendMessage` or a dead-letter redrive gives the same message a new `messageId`.
/// AWS Powertools' idempotency utilities use a key of the same kind.
pub const IDEMPOTENCY_KEY_ATTRIBUTE: &str = "IdempotencyKey";

/// The envelope rules of a queue: which attributes carry a message's identity and original
/// sent time, which sent times are believable, and what to do with a `messageId` seen twice.
///
/// The default passes any event SQS or a test can make: it reads the identity from
/// [`IDEMPOTENCY_KEY_ATTRIBUTE`] (else the `messageId`), reads `SentTimestamp` and
/// `ApproximateReceiveCount` when present without requiring them, fails every copy of a
/// repeated `messageId`, and blocks only the failed group of a FIFO batch. Each check beyond
/// that is opt-in. A tool that re-sends messages (a DLQ redrive of your own) can keep their
/// first identity and time with [`Envelope::with_redrive_attributes`]:
///
/// ```
/// use sqs_batch::{Envelope, FifoPolicy};
///
/// let envelope = Envelope::default()
///     .with_redrive_attributes("OriginalMessageId", "OriginalSentTimestamp")
///     .with_sent_range(946_684_800_000..4_102_444_800_000) // [2000, 2100) UTC
///     .with_receive_count_required(true)
///     .with_identical_copies_collapsed(true)
///     .with_fifo_policy(FifoPolicy::StopBatch);
/// assert_eq!(envelope.identity_attributes(), ["IdempotencyKey", "OriginalMessageId"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    identity_attributes: Vec<String>,
    sent_timestamp_attribute: Option<String>,
    sent_timestamp_required: bool,
    sent_range: Option<Range<i64>>,
    receive_count_required: bool,
    collapse_identical_copies: bool,
    fifo_policy: FifoPolicy,
}

impl Default for Envelope {
    fn default() -> Self {
        Envelope {
            identity_attributes: vec![IDEMPOTENCY_KEY_ATTRIBUTE.to_owned()],
            sent_timestamp_attribute: None,
            sent_timestamp_required: false,
            sent_range: None,
            receive_count_required: false,
            collapse_identical_copies: false,
            fifo_policy: FifoPolicy::BlockGroup,
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

    /// Require a sent time: a message whose `SentTimestamp` (or original-sent attribute) is
    /// missing or not epoch milliseconds fails `invalid_sent_timestamp`, and every accepted
    /// record's [`sent_at_ms`](crate::Accepted::sent_at_ms) is `Some`. Off by default, since
    /// hand-made and test events often carry no attributes.
    pub fn with_sent_timestamp_required(mut self, required: bool) -> Self {
        self.sent_timestamp_required = required;
        self
    }

    /// Refuse sent times (epoch ms) outside `range`: a broken clock or a forged attribute, and
    /// dates no partition or report expects. Bounded by constants, since the rules read no
    /// clock. Implies [`with_sent_timestamp_required`](Envelope::with_sent_timestamp_required):
    /// a missing time cannot be shown to be in range.
    pub fn with_sent_range(mut self, range: Range<i64>) -> Self {
        self.sent_range = Some(range);
        self.sent_timestamp_required = true;
        self
    }

    /// Require `ApproximateReceiveCount` to be a whole number, failing `invalid_receive_count`
    /// otherwise. Off by default: a missing count reads as the first receive.
    pub fn with_receive_count_required(mut self, required: bool) -> Self {
        self.receive_count_required = required;
        self
    }

    /// What a failure on a FIFO queue does to the rest of the batch (default
    /// [`FifoPolicy::BlockGroup`]).
    pub fn with_fifo_policy(mut self, policy: FifoPolicy) -> Self {
        self.fifo_policy = policy;
        self
    }

    /// The FIFO policy.
    pub fn fifo_policy(&self) -> FifoPolicy {
        self.fifo_policy
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
        let identity = self.identity(message, message_id)?;
        let sent_at_ms = self.sent_at_ms(message)?;
        if self.receive_count_required && parsed_receive_count(message).is_none() {
            return Err(FailureReason::InvalidReceiveCount);
        }
        Ok(Meta { identity, sent_at_ms })
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

    fn sent_at_ms<E>(&self, message: &SqsMessage) -> Result<Option<i64>, FailureReason<E>> {
        let original = self
            .sent_timestamp_attribute
            .as_deref()
            .and_then(|name| message.message_attributes.get(name))
            .map(|attribute| attribute.string_value.as_deref());
        let millis = match original {
            Some(value) => value,
            None => message.attributes.get("SentTimestamp").map(String::as_str),
        }
        .and_then(|millis| millis.parse::<i64>().ok());
        let Some(millis) = millis else {
            return if self.sent_timestamp_required { Err(FailureReason::InvalidSentTimestamp) } else { Ok(None) };
        };
        match &self.sent_range {
            Some(range) if !range.contains(&millis) => Err(FailureReason::SentTimestampOutOfRange),
            _ => Ok(Some(millis)),
        }
    }
}

/// What the envelope tells of a message that passes its rules.
pub(crate) struct Meta<'m> {
    pub identity: &'m str,
    pub sent_at_ms: Option<i64>,
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
    parsed_receive_count(message).unwrap_or(1)
}

fn parsed_receive_count(message: &SqsMessage) -> Option<u32> {
    message.attributes.get("ApproximateReceiveCount").and_then(|count| count.parse().ok())
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

#[cfg(test)]
mod tests {
    use aws_lambda_events::sqs::SqsMessageAttribute;

    use super::*;
    use crate::test_record::NotANumber;
    use crate::testing::{SENT, fifo, message, received, with_attribute};

    type Read = Result<(String, Option<i64>), &'static str>;

    fn read(envelope: &Envelope, message: &SqsMessage) -> Read {
        envelope.read::<NotANumber>(message).map(|meta| (meta.identity.to_owned(), meta.sent_at_ms)).map_err(|reason| {
            match reason {
                FailureReason::InvalidMessageId => "invalid_message_id",
                FailureReason::InvalidIdentity => "invalid_idempotency_key",
                FailureReason::InvalidSentTimestamp => "invalid_sent_timestamp",
                FailureReason::SentTimestampOutOfRange => "sent_timestamp_out_of_range",
                FailureReason::InvalidReceiveCount => "invalid_receive_count",
                _ => "another reason",
            }
        })
    }

    fn bare(id: &str) -> SqsMessage {
        let mut message = SqsMessage::default();
        message.message_id = Some(id.to_owned());
        message
    }

    #[test]
    fn identity_attributes_are_tried_in_their_order() {
        assert_eq!(Envelope::default().identity_attributes(), [IDEMPOTENCY_KEY_ATTRIBUTE]);
        let redrive = Envelope::default().with_redrive_attributes("OriginalId", "OriginalSent");
        assert_eq!(redrive.identity_attributes(), [IDEMPOTENCY_KEY_ATTRIBUTE, "OriginalId"]);
        let replaced = redrive.with_identity_attributes(["EventId", "OrderId"]);
        assert_eq!(replaced.identity_attributes(), ["EventId", "OrderId"]);
        assert_eq!(Envelope::default().fifo_policy(), FifoPolicy::BlockGroup);
        assert_eq!(Envelope::default().with_fifo_policy(FifoPolicy::StopBatch).fifo_policy(), FifoPolicy::StopBatch);
    }

    #[test]
    fn the_default_passes_a_message_with_no_attributes() {
        assert_eq!(read(&Envelope::default(), &bare("m")), Ok(("m".into(), None)));
        assert_eq!(read(&Envelope::default(), &message("m", "1")), Ok(("m".into(), Some(SENT))));
        let mut unreadable = message("m", "1");
        unreadable.attributes.insert("SentTimestamp".into(), "soon".into());
        unreadable.attributes.insert("ApproximateReceiveCount".into(), "many".into());
        assert_eq!(read(&Envelope::default(), &unreadable), Ok(("m".into(), None)), "no check unless asked");
    }

    #[test]
    fn a_required_sent_time_must_be_epoch_milliseconds() {
        let required = Envelope::default().with_sent_timestamp_required(true);
        assert_eq!(read(&required, &bare("m")), Err("invalid_sent_timestamp"));
        assert_eq!(read(&required, &message("m", "1")), Ok(("m".into(), Some(SENT))));
        let ranged = Envelope::default().with_sent_range(0..SENT);
        assert_eq!(read(&ranged, &bare("m")), Err("invalid_sent_timestamp"), "a range requires a time");
        assert_eq!(read(&ranged, &message("m", "1")), Err("sent_timestamp_out_of_range"), "the end is excluded");
        let ranged = Envelope::default().with_sent_range(SENT..SENT + 1);
        assert_eq!(read(&ranged, &message("m", "1")), Ok(("m".into(), Some(SENT))), "the start is included");
    }

    #[test]
    fn a_required_receive_count_must_be_a_whole_number() {
        let required = Envelope::default().with_receive_count_required(true);
        assert_eq!(read(&required, &message("m", "1")), Ok(("m".into(), Some(SENT))));
        assert_eq!(read(&required, &bare("m")), Err("invalid_receive_count"));
        let mut negative = message("m", "1");
        negative.attributes.insert("ApproximateReceiveCount".into(), "-1".into());
        assert_eq!(read(&required, &negative), Err("invalid_receive_count"));
        assert_eq!(receive_count(&received(message("m", "1"), 7)), 7);
        assert_eq!(receive_count(&bare("m")), 1, "absent reads as the first receive");
        assert_eq!(receive_count(&negative), 1);
    }

    #[test]
    fn ids_are_bounded_by_characters_and_free_of_control_characters() {
        let envelope = Envelope::default();
        let cases = [
            ("", false),
            ("m", true),
            (&"m".repeat(MAX_ID_CHARS), true),
            (&"é".repeat(MAX_ID_CHARS), true),
            (&"m".repeat(MAX_ID_CHARS + 1), false),
            ("tab\there", false),
            ("del\u{7f}", false),
            ("c1\u{85}", false),
        ];
        for (id, storable) in cases {
            assert_eq!(is_storable_id(id), storable, "{id:?}");
            let key = with_attribute(message("m", "1"), IDEMPOTENCY_KEY_ATTRIBUTE, id);
            let want = if storable { Ok((id.to_owned(), Some(SENT))) } else { Err("invalid_idempotency_key") };
            assert_eq!(read(&envelope, &key), want, "key {id:?}");
        }
        assert_eq!(read(&envelope, &message("bad\nid", "1")), Err("invalid_message_id"));
    }

    #[test]
    fn an_attribute_without_a_string_value_is_an_invalid_identity() {
        let mut number = SqsMessageAttribute::default();
        number.data_type = Some("Number".into());
        let mut keyed = message("m", "1");
        keyed.message_attributes.insert(IDEMPOTENCY_KEY_ATTRIBUTE.into(), number);
        assert_eq!(read(&Envelope::default(), &keyed), Err("invalid_idempotency_key"));
        let other = Envelope::default().with_identity_attributes(["EventId"]);
        assert_eq!(read(&other, &keyed), Ok(("m".into(), Some(SENT))), "only the configured names count");
    }

    #[test]
    fn only_a_fifo_queue_has_groups() {
        assert_eq!(fifo_group(&fifo("m", "g", "1")), Some("g"));
        let mut fair = message("m", "1");
        fair.attributes.insert("MessageGroupId".into(), "g".into());
        assert_eq!(fifo_group(&fair), None);
        let mut no_group = fifo("m", "g", "1");
        no_group.attributes.remove("MessageGroupId");
        assert_eq!(fifo_group(&no_group), None);
    }

    #[test]
    fn identical_copies_agree_on_body_sent_time_and_message_attributes() {
        let original = with_attribute(message("m", "1"), "Trace", "t-1");
        assert!(same_message(&original, &original.clone()));
        let mut other_body = original.clone();
        other_body.body = Some("2".into());
        let mut other_sent = original.clone();
        other_sent.attributes.insert("SentTimestamp".into(), (SENT + 1).to_string());
        let other_value = with_attribute(message("m", "1"), "Trace", "t-2");
        let more = with_attribute(original.clone(), "Extra", "x");
        let fewer = message("m", "1");
        for (name, copy) in
            [("body", other_body), ("sent", other_sent), ("value", other_value), ("more", more), ("fewer", fewer)]
        {
            assert!(!same_message(&original, &copy), "{name}");
            assert!(!same_message(&copy, &original), "{name}, the other way");
        }
        // Receive counts and receipt handles differ between deliveries of one message.
        let redelivered = received(original.clone(), 2);
        let mut handle = redelivered.clone();
        handle.receipt_handle = Some("another".into());
        assert!(same_message(&original, &handle));
    }
}
