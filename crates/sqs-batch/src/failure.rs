//! Why a message failed, and why a whole event could not be answered.

use std::borrow::Cow;

/// A reason the record type gives for refusing a message's content.
///
/// Its [`code`](Rejection::code) is what logs and metrics count, so it should be a stable
/// `snake_case` word (`malformed_json`, `missing_user_id`) and never quote the input: a body may
/// hold personal data, and a code must group failures, not tell them apart.
pub trait Rejection: std::error::Error {
    /// The stable code of this rejection.
    fn code(&self) -> Cow<'static, str>;

    /// Whether a later delivery of the same message could succeed. Almost never: a body that
    /// does not parse now will not parse later, and should reach the dead-letter queue soon.
    fn is_retryable(&self) -> bool {
        false
    }
}

/// Why one message was reported in `batchItemFailures`.
///
/// `E` is the record type's own [`Rejection`]; every other variant is a rule of the envelope or
/// of the store, the same whatever the record type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailureReason<E> {
    /// The record type refused the message's content.
    #[error(transparent)]
    Rejected(E),
    /// SQS's `messageId` is over 128 characters or holds control characters: no store key or log
    /// line should carry it.
    #[error("the messageId is longer than 128 characters or holds control characters")]
    InvalidMessageId,
    /// The `messageId` appears more than once in the event with different content. Lambda's
    /// response names failures by `messageId`, so no answer could tell the copies apart: every
    /// copy fails, and the id is reported once.
    #[error("the messageId appears more than once in the event, so its fate could not be told apart")]
    RepeatedMessageId,
    /// An identity attribute is present but empty, over 128 characters, holds control
    /// characters or is not a String. Falling back to the `messageId` would store the message
    /// under a second identity, so it fails instead.
    #[error("an identity attribute is empty, longer than 128 characters, holds control characters or is not a String")]
    InvalidIdentity,
    /// The sent time (`SentTimestamp`, or the configured original-sent attribute) is missing or
    /// not epoch milliseconds.
    #[error("the sent timestamp is missing or not epoch milliseconds")]
    InvalidSentTimestamp,
    /// The sent time is outside the [`Envelope`](crate::Envelope)'s accepted range.
    #[error("the sent timestamp is outside the accepted range")]
    SentTimestampOutOfRange,
    /// An earlier message of the same FIFO message group failed in this batch. Processing this
    /// one would break the group's order, so it goes back to the queue behind the failed one.
    #[error("earlier failure in group")]
    EarlierFailureInGroup,
    /// The store failed the whole batch: nothing of it was written.
    #[error("the store failed the whole batch")]
    StoreFailed,
}

impl<E: Rejection> FailureReason<E> {
    /// The stable code logs and metrics count: the record type's own code for
    /// [`Rejected`](FailureReason::Rejected), else a fixed word.
    pub fn code(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            FailureReason::Rejected(rejection) => return rejection.code(),
            FailureReason::InvalidMessageId => "invalid_message_id",
            FailureReason::RepeatedMessageId => "repeated_message_id",
            FailureReason::InvalidIdentity => "invalid_idempotency_key",
            FailureReason::InvalidSentTimestamp => "invalid_sent_timestamp",
            FailureReason::SentTimestampOutOfRange => "sent_timestamp_out_of_range",
            FailureReason::EarlierFailureInGroup => "fifo_group_blocked",
            FailureReason::StoreFailed => "store_failed",
        })
    }

    /// Whether redelivery can help: a store outage may pass and a blocked message is fine once
    /// its group's earlier message succeeds, but a malformed message stays malformed.
    pub fn is_retryable(&self) -> bool {
        match self {
            FailureReason::Rejected(rejection) => rejection.is_retryable(),
            FailureReason::EarlierFailureInGroup | FailureReason::StoreFailed => true,
            _ => false,
        }
    }
}

/// A message that goes back to the queue, named in `batchItemFailures` by its `message_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed<E> {
    /// SQS's `messageId`, what Lambda's response names (never the identity).
    pub message_id: String,
    /// The message's index in the event's `Records`, e.g. to find its receipt handle.
    pub position: usize,
    /// SQS's `ApproximateReceiveCount` (1 when absent): what a [`Backoff`](crate::Backoff)
    /// reads.
    pub receive_count: u32,
    /// Why it failed.
    pub reason: FailureReason<E>,
}

/// The event cannot be answered record by record, so the invocation must fail and Lambda retry
/// the whole batch, rather than lose a message silently.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// A record has no (or an empty) `messageId`. Its failure could not be named in the
    /// response, and a response that leaves it out would tell Lambda it succeeded. Real SQS
    /// always sets the id; this guards hand-made and malformed events.
    #[error("record {position} has no messageId, so its failure could not be reported")]
    MissingMessageId {
        /// The record's index in the event's `Records`.
        position: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::NotANumber;

    #[test]
    fn reasons_have_stable_codes_and_say_whether_waiting_helps() {
        let cases: [(FailureReason<NotANumber>, &str, bool); 9] = [
            (FailureReason::Rejected(NotANumber::Malformed), "malformed_body", false),
            (FailureReason::Rejected(NotANumber::MissingBody), "missing_body", false),
            (FailureReason::InvalidMessageId, "invalid_message_id", false),
            (FailureReason::RepeatedMessageId, "repeated_message_id", false),
            (FailureReason::InvalidIdentity, "invalid_idempotency_key", false),
            (FailureReason::InvalidSentTimestamp, "invalid_sent_timestamp", false),
            (FailureReason::SentTimestampOutOfRange, "sent_timestamp_out_of_range", false),
            (FailureReason::EarlierFailureInGroup, "fifo_group_blocked", true),
            (FailureReason::StoreFailed, "store_failed", true),
        ];
        for (reason, code, retryable) in cases {
            assert_eq!((reason.code().as_ref(), reason.is_retryable()), (code, retryable), "{reason:?}");
        }
    }

    #[test]
    fn a_rejection_can_call_itself_retryable() {
        #[derive(Debug, thiserror::Error)]
        #[error("the schema registry did not answer")]
        struct RegistryDown;
        impl Rejection for RegistryDown {
            fn code(&self) -> Cow<'static, str> {
                "registry_down".into()
            }
            fn is_retryable(&self) -> bool {
                true
            }
        }
        assert!(FailureReason::Rejected(RegistryDown).is_retryable());
        assert_eq!(FailureReason::Rejected(RegistryDown).to_string(), "the schema registry did not answer");
    }
}
