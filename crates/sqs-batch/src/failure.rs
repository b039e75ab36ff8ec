//! Why a message failed, and why a whole event could not be answered.

use std::borrow::Cow;
use std::sync::Arc;

use crate::delivery::{Delivery, delivery_accessors};

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
/// `E` is the record type's own [`Rejection`] (or the per-record handler's error); every other
/// variant is a rule of the envelope, of the store or of the run, the same whatever the record
/// type. Variants may be added: match with a `_` arm and count by [`code`](FailureReason::code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FailureReason<E> {
    /// The record type (or the per-record handler) refused the message.
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
    /// `ApproximateReceiveCount` is missing or not a whole number, and the
    /// [`Envelope`](crate::Envelope) requires it.
    #[error("the receive count is missing or not a whole number")]
    InvalidReceiveCount,
    /// The sent time is outside the [`Envelope`](crate::Envelope)'s accepted range.
    #[error("the sent timestamp is outside the accepted range")]
    SentTimestampOutOfRange,
    /// An earlier message of the same FIFO message group failed in this batch. Processing this
    /// one would break the group's order, so it goes back to the queue behind the failed one.
    #[error("earlier failure in group")]
    EarlierFailureInGroup,
    /// An earlier message of this FIFO batch failed and the [`FifoPolicy`](crate::FifoPolicy)
    /// is [`StopBatch`](crate::FifoPolicy::StopBatch): this one was not processed.
    #[error("an earlier message of the FIFO batch failed, so the batch stopped")]
    BatchStopped,
    /// The store failed the whole batch: nothing of it was written.
    #[error("the store failed the whole batch")]
    StoreFailed,
    /// The per-record handler panicked on this message. Only this record fails.
    #[error("the handler panicked")]
    Panicked,
    /// Lambda's deadline (less the caller's margin) came before this record was started, so it
    /// was not, and the response could still be sent.
    #[error("the invocation's deadline came before the record was started")]
    DeadlineReached,
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
            FailureReason::InvalidReceiveCount => "invalid_receive_count",
            FailureReason::SentTimestampOutOfRange => "sent_timestamp_out_of_range",
            FailureReason::EarlierFailureInGroup => "fifo_group_blocked",
            FailureReason::BatchStopped => "fifo_batch_stopped",
            FailureReason::StoreFailed => "store_failed",
            FailureReason::Panicked => "handler_panicked",
            FailureReason::DeadlineReached => "deadline_reached",
        })
    }

    /// Whether redelivery can help: a store outage may pass, a blocked or stopped message is
    /// fine once the earlier one succeeds, a record the deadline cut off was never tried; but a
    /// malformed message stays malformed, and a panic is a bug until fixed.
    pub fn is_retryable(&self) -> bool {
        match self {
            FailureReason::Rejected(rejection) => rejection.is_retryable(),
            FailureReason::EarlierFailureInGroup
            | FailureReason::BatchStopped
            | FailureReason::StoreFailed
            | FailureReason::DeadlineReached => true,
            _ => false,
        }
    }
}

/// A message that goes back to the queue, named in `batchItemFailures` by its `messageId`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed<E> {
    delivery: Delivery,
    reason: FailureReason<E>,
}

impl<E> Failed<E> {
    pub(crate) fn new(message: &aws_lambda_events::sqs::SqsMessage, position: usize, reason: FailureReason<E>) -> Self {
        Failed { delivery: Delivery::of(message, position), reason }
    }

    pub(crate) fn of_accepted<R>(accepted: crate::Accepted<R>, reason: FailureReason<E>) -> Self {
        Failed { delivery: accepted.delivery, reason }
    }

    delivery_accessors!(delivery);

    /// Why it failed.
    pub fn reason(&self) -> &FailureReason<E> {
        &self.reason
    }
}

/// A per-record handler's failure when it has no error type of its own: a stable code, whether
/// waiting can help, and the cause (kept for `Display` and `source`, never logged by the crate).
///
/// ```
/// use sqs_batch::{Rejection, RecordFailure};
///
/// let failure = RecordFailure::retryable("payment_api_down", "503 from the payment API");
/// assert_eq!((failure.code().as_ref(), failure.is_retryable()), ("payment_api_down", true));
/// ```
#[derive(Debug)]
pub struct RecordFailure {
    code: Cow<'static, str>,
    retryable: bool,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl RecordFailure {
    /// A failure that will happen again on redelivery (a bad body, a refused request).
    pub fn permanent(
        code: impl Into<Cow<'static, str>>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        RecordFailure { code: code.into(), retryable: false, source: source.into() }
    }

    /// A failure that waiting may cure (a dependency down, a throttle).
    pub fn retryable(
        code: impl Into<Cow<'static, str>>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        RecordFailure { code: code.into(), retryable: true, source: source.into() }
    }
}

impl std::fmt::Display for RecordFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.source)
    }
}

impl std::error::Error for RecordFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.source.as_ref())
    }
}

impl Rejection for RecordFailure {
    fn code(&self) -> Cow<'static, str> {
        self.code.clone()
    }

    fn is_retryable(&self) -> bool {
        self.retryable
    }
}

impl From<crate::json::MalformedJson> for RecordFailure {
    fn from(error: crate::json::MalformedJson) -> Self {
        RecordFailure::permanent(error.code(), error)
    }
}

/// The event cannot be answered record by record, so the invocation must fail and Lambda retry
/// the whole batch, rather than lose a message silently.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// A record has no (or an empty) `messageId`. Its failure could not be named in the
    /// response, and a response that leaves it out would tell Lambda it succeeded. Real SQS
    /// always sets the id; this guards hand-made and malformed events.
    #[error("record {position} has no messageId, so its failure could not be reported")]
    MissingMessageId {
        /// The record's index in the event's `Records`.
        position: usize,
    },
    /// The parse step of [`try_plan`](crate::try_plan) failed the whole event: something no
    /// message is to blame for broke (a key, an encryptor), so no per-record answer would be
    /// honest, and nothing of the event was stored.
    #[error("the parse step failed the whole event at record {position}")]
    Aborted {
        /// The index in the event's `Records` of the message being parsed.
        position: usize,
        /// The parse step's error: [`EventError::source_as`] gets it back as its own type.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
}

impl EventError {
    pub(crate) fn aborted(position: usize, error: impl std::error::Error + Send + Sync + 'static) -> Self {
        EventError::Aborted { position, source: Arc::new(error) }
    }

    /// The parse step's error of an [`Aborted`](EventError::Aborted) event, as its own type.
    pub fn source_as<T: std::error::Error + 'static>(&self) -> Option<&T> {
        match self {
            EventError::Aborted { source, .. } => source.downcast_ref::<T>(),
            _ => None,
        }
    }
}

/// Equal when they name the same record for the same reason: an aborted event's source is
/// compared by identity (the same error, cloned), since an error type need not be comparable.
impl PartialEq for EventError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (EventError::MissingMessageId { position: a }, EventError::MissingMessageId { position: b }) => a == b,
            (
                EventError::Aborted { position: a, source: source_a },
                EventError::Aborted { position: b, source: source_b },
            ) => a == b && Arc::ptr_eq(source_a, source_b),
            _ => false,
        }
    }
}

impl Eq for EventError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_record::NotANumber;

    #[test]
    fn reasons_have_stable_codes_and_say_whether_waiting_helps() {
        let cases: [(FailureReason<NotANumber>, &str, bool); 13] = [
            (FailureReason::Rejected(NotANumber::Malformed), "malformed_body", false),
            (FailureReason::Rejected(NotANumber::MissingBody), "missing_body", false),
            (FailureReason::InvalidMessageId, "invalid_message_id", false),
            (FailureReason::RepeatedMessageId, "repeated_message_id", false),
            (FailureReason::InvalidIdentity, "invalid_idempotency_key", false),
            (FailureReason::InvalidSentTimestamp, "invalid_sent_timestamp", false),
            (FailureReason::SentTimestampOutOfRange, "sent_timestamp_out_of_range", false),
            (FailureReason::EarlierFailureInGroup, "fifo_group_blocked", true),
            (FailureReason::StoreFailed, "store_failed", true),
            (FailureReason::InvalidReceiveCount, "invalid_receive_count", false),
            (FailureReason::BatchStopped, "fifo_batch_stopped", true),
            (FailureReason::Panicked, "handler_panicked", false),
            (FailureReason::DeadlineReached, "deadline_reached", true),
        ];
        for (reason, code, retryable) in cases {
            assert_eq!((reason.code().as_ref(), reason.is_retryable()), (code, retryable), "{reason:?}");
        }
    }

    #[test]
    fn event_errors_are_equal_for_the_same_record_and_the_same_source_only() {
        let missing = |position| EventError::MissingMessageId { position };
        assert_eq!(missing(2), missing(2));
        assert_ne!(missing(2), missing(3));
        let aborted = EventError::aborted(1, std::io::Error::other("key gone"));
        assert_eq!(aborted, aborted.clone(), "a clone shares its source");
        let EventError::Aborted { source, .. } = &aborted else { unreachable!("built as Aborted") };
        let elsewhere = EventError::Aborted { position: 4, source: source.clone() };
        assert_ne!(aborted, elsewhere, "the same source at another record");
        assert_ne!(aborted, EventError::aborted(1, std::io::Error::other("key gone")), "another error");
        assert_ne!(aborted, missing(1));
    }

    #[test]
    fn a_record_failure_carries_its_code_its_retryability_and_its_cause() {
        use std::error::Error as _;
        let permanent = RecordFailure::permanent("bad_order", "order 7 has no lines");
        let retryable = RecordFailure::retryable("api_down", std::io::Error::other("503"));
        assert_eq!((permanent.code().as_ref(), permanent.is_retryable()), ("bad_order", false));
        assert_eq!((retryable.code().as_ref(), retryable.is_retryable()), ("api_down", true));
        assert_eq!(permanent.to_string(), "bad_order: order 7 has no lines");
        assert_eq!(retryable.source().map(ToString::to_string).as_deref(), Some("503"));
        let json = RecordFailure::from(crate::json::MalformedJson::MissingBody);
        assert_eq!((json.code().as_ref(), json.is_retryable()), ("malformed_json", false));
    }

    #[test]
    fn a_failure_keeps_what_its_delivery_said() {
        let message = crate::testing::received(crate::testing::message("m-1", "x"), 4);
        let failed = Failed::new(&message, 3, FailureReason::<NotANumber>::StoreFailed);
        assert_eq!(
            (failed.message_id(), failed.position(), failed.receive_count(), failed.receipt_handle()),
            ("m-1", 3, 4, Some("rh-m-1"))
        );
        assert_eq!(failed.reason(), &FailureReason::StoreFailed);
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
