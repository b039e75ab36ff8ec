//! One event in, a plan out: the records to store and the messages that already failed.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;

use aws_lambda_events::sqs::SqsMessage;

use crate::delivery::{Delivery, delivery_accessors};
use crate::envelope::{self, Envelope, FifoPolicy, Meta};
use crate::failure::{EventError, Failed, FailureReason};

/// A message that passed the envelope rules and parsed: what a [`Store`](crate::Store) writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted<R> {
    record: R,
    identity: String,
    sent_at_ms: Option<i64>,
    group: Option<String>,
    pub(crate) delivery: Delivery,
}

impl<R> Accepted<R> {
    /// The parsed record.
    pub fn record(&self) -> &R {
        &self.record
    }

    /// The parsed record, by value.
    pub fn into_record(self) -> R {
        self.record
    }

    /// The key the store must deduplicate on, so that a redelivered or redriven message never
    /// makes a second entry: the first identity attribute present (see [`Envelope`]), else the
    /// `messageId`. At most [`MAX_ID_CHARS`](crate::MAX_ID_CHARS) characters, no control
    /// characters.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// When the message was first sent, epoch milliseconds: SQS's `SentTimestamp`, or the
    /// original-sent attribute a redrive kept. The same on every delivery, unlike the wall
    /// clock. Always `Some` when the envelope requires a sent time
    /// ([`Envelope::with_sent_timestamp_required`], [`Envelope::with_sent_range`]).
    pub fn sent_at_ms(&self) -> Option<i64> {
        self.sent_at_ms
    }

    /// The FIFO message group, on a FIFO queue.
    pub fn group(&self) -> Option<&str> {
        self.group.as_deref()
    }

    delivery_accessors!(delivery);
}

/// What one event turns into before anything is written: every record is either accepted,
/// failed, or a later identical copy of an accepted one (see
/// [`Envelope::with_identical_copies_collapsed`]). `R` is the record type, `E` its rejection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan<R, E> {
    pub(crate) received: usize,
    pub(crate) accepted: Vec<Accepted<R>>,
    pub(crate) rejected: Vec<Failed<E>>,
    pub(crate) copies_skipped: usize,
    pub(crate) fifo: bool,
}

impl<R, E> Plan<R, E> {
    /// How many records the event held.
    pub fn received(&self) -> usize {
        self.received
    }

    /// The records to store, in event order.
    pub fn accepted(&self) -> &[Accepted<R>] {
        &self.accepted
    }

    /// The messages that failed before the store, in event order, each `messageId` once.
    pub fn rejected(&self) -> &[Failed<E>] {
        &self.rejected
    }

    /// Later identical copies of a message in the batch: duplicates, not failures.
    pub fn copies_skipped(&self) -> usize {
        self.copies_skipped
    }
}

/// Applies the envelope rules to every record of an event and parses those that pass.
///
/// In order, per record: a repeated `messageId` fails; on a FIFO queue, a group that already
/// lost a message blocks the rest of it (or, with [`FifoPolicy::StopBatch`], any earlier failure
/// stops the batch); then the `messageId`, the identity, the sent time and the receive count
/// are checked, and only then is `parse` called, so it never sees a message the envelope
/// refuses. A failure on a FIFO queue blocks the later messages of its group, whatever its
/// reason.
///
/// Two passes over the records with hash sets and maps: linear in the batch size.
///
/// # Errors
///
/// [`EventError::MissingMessageId`] when a record has no `messageId`: its failure could not be
/// reported, so the event must fail whole.
pub fn plan<R, E>(
    records: &[SqsMessage],
    envelope: &Envelope,
    mut parse: impl FnMut(&SqsMessage) -> Result<R, E>,
) -> Result<Plan<R, E>, EventError> {
    try_plan(records, envelope, |message| Ok::<_, Infallible>(parse(message)))
}

/// [`plan`] with a parse step that may also fail the whole event: for a step that needs
/// something no message is to blame for (a key, an encryptor, a lookup table) and cannot answer
/// honestly with a per-record failure when that breaks.
///
/// `parse` answers `Ok(Ok(record))` to accept a message, `Ok(Err(rejection))` to fail it alone,
/// and `Err(error)` to stop: no later message is parsed, and the plan is never returned, so
/// nothing of the event can be stored. Lambda then retries the whole batch.
///
/// ```
/// use aws_lambda_events::sqs::SqsMessage;
/// use sqs_batch::{Envelope, EventError, MalformedJson, try_plan};
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("the signing key is gone")]
/// struct KeyGone;
///
/// let mut key = Some("k-1");
/// let parse = |message: &SqsMessage| -> Result<Result<String, MalformedJson>, KeyGone> {
///     let key = key.take().ok_or(KeyGone)?; // one use only: the second message fails the event
///     Ok(sqs_batch::json::<String>(message).map(|body| format!("{key}:{body}")))
/// };
/// let event: aws_lambda_events::sqs::SqsEvent = serde_json::from_str(
///     r#"{"Records": [{"messageId": "m-1", "body": "\"a\""}, {"messageId": "m-2", "body": "\"b\""}]}"#,
/// )
/// .unwrap();
/// let error = try_plan(&event.records, &Envelope::default(), parse).unwrap_err();
/// assert!(matches!(error, EventError::Aborted { position: 1, .. }));
/// assert!(error.source_as::<KeyGone>().is_some());
/// ```
///
/// # Errors
///
/// [`EventError::MissingMessageId`] as [`plan`]; [`EventError::Aborted`] with `parse`'s error
/// and the position of the message it was parsing.
pub fn try_plan<R, E, A>(
    records: &[SqsMessage],
    envelope: &Envelope,
    mut parse: impl FnMut(&SqsMessage) -> Result<Result<R, E>, A>,
) -> Result<Plan<R, E>, EventError>
where
    A: std::error::Error + Send + Sync + 'static,
{
    plan_with_meta(records, envelope, |message, _| parse(message))
}

/// [`try_plan`] whose parse step also sees what the envelope read.
fn plan_with_meta<'m, R, E, A>(
    records: &'m [SqsMessage],
    envelope: &Envelope,
    mut parse: impl FnMut(&'m SqsMessage, &Meta<'m>) -> Result<Result<R, E>, A>,
) -> Result<Plan<R, E>, EventError>
where
    A: std::error::Error + Send + Sync + 'static,
{
    // First pass: every record needs an id, and each id one fate.
    let mut first_copy: HashMap<&str, usize> = HashMap::with_capacity(records.len());
    let mut repeated: HashSet<&str> = HashSet::new();
    let mut later_copies: HashSet<usize> = HashSet::new();
    for (position, record) in records.iter().enumerate() {
        let id = match record.message_id.as_deref() {
            Some(id) if !id.is_empty() => id,
            _ => return Err(EventError::MissingMessageId { position }),
        };
        match first_copy.get(id) {
            None => {
                first_copy.insert(id, position);
            }
            Some(&first)
                if envelope.collapses_identical_copies() && envelope::same_message(&records[first], record) =>
            {
                later_copies.insert(position);
            }
            Some(_) => {
                repeated.insert(id);
            }
        }
    }
    // An id can be both: copies 1 and 2 identical, copy 3 different. Then none is trusted.
    later_copies.retain(|&position| !repeated.contains(records[position].message_id.as_deref().unwrap_or_default()));

    let stop_batch = envelope.fifo_policy() == FifoPolicy::StopBatch;
    let mut accepted = Vec::with_capacity(records.len());
    let mut rejected = Vec::new();
    let mut repeated_reported: HashSet<&str> = HashSet::new();
    let mut blocked_groups: HashSet<&str> = HashSet::new();
    let mut stopped = false;
    let mut fifo = false;
    for (position, record) in records.iter().enumerate() {
        if later_copies.contains(&position) {
            continue;
        }
        let message_id = record.message_id.as_deref().unwrap_or_default();
        let group = envelope::fifo_group(record);
        fifo |= group.is_some();
        let fate = if repeated.contains(message_id) {
            Err(FailureReason::RepeatedMessageId)
        } else if group.is_some() && stopped {
            Err(FailureReason::BatchStopped)
        } else if group.is_some_and(|group| blocked_groups.contains(group)) {
            Err(FailureReason::EarlierFailureInGroup)
        } else {
            match envelope.read(record) {
                Err(reason) => Err(reason),
                Ok(meta) => match parse(record, &meta) {
                    Err(error) => return Err(EventError::aborted(position, error)),
                    Ok(Err(rejection)) => Err(FailureReason::Rejected(rejection)),
                    Ok(Ok(parsed)) => Ok(Accepted {
                        record: parsed,
                        identity: meta.identity.to_owned(),
                        sent_at_ms: meta.sent_at_ms,
                        group: group.map(str::to_owned),
                        delivery: Delivery::of(record, position),
                    }),
                },
            }
        };
        match fate {
            Ok(record) => accepted.push(record),
            Err(reason) => {
                if let Some(group) = group {
                    blocked_groups.insert(group);
                    stopped |= stop_batch;
                }
                // Every copy of a repeated id failed; the response names the id once.
                let first_report =
                    !matches!(reason, FailureReason::RepeatedMessageId) || repeated_reported.insert(message_id);
                if first_report {
                    rejected.push(Failed::new(record, position, reason));
                }
            }
        }
    }
    Ok(Plan { received: records.len(), accepted, rejected, copies_skipped: later_copies.len(), fifo })
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use aws_lambda_events::sqs::SqsMessageAttribute;

    use super::*;
    use crate::envelope::MAX_ID_CHARS;
    use crate::failure::Rejection;
    use crate::test_record::{NotANumber, parse};
    use crate::testing::{SENT, fifo, fifo_batch, message, with_attribute};

    fn plan_default(records: &[SqsMessage]) -> Plan<crate::test_record::Number, NotANumber> {
        plan(records, &Envelope::default(), parse).expect("every record has a messageId")
    }

    fn accepted_ids<R, E>(plan: &Plan<R, E>) -> Vec<&str> {
        plan.accepted().iter().map(|a| a.message_id()).collect()
    }

    fn rejected_codes<R, E: Rejection>(plan: &Plan<R, E>) -> Vec<(&str, String)> {
        plan.rejected().iter().map(|f| (f.message_id(), f.reason().code().into_owned())).collect()
    }

    #[test]
    fn a_parse_step_may_fail_the_whole_event_and_parses_nothing_after() {
        #[derive(Debug, PartialEq, thiserror::Error)]
        #[error("the encryptor broke")]
        struct Broke;
        let calls = Cell::new(0);
        let parse = |message: &SqsMessage| {
            calls.set(calls.get() + 1);
            match message.body.as_deref() {
                Some("boom") => Err(Broke),
                _ => Ok(crate::test_record::parse(message)),
            }
        };
        // The envelope is read first: a refused message never reaches the step.
        let mut refused = message("r", "boom");
        refused.message_id = Some("bad\nid".into());
        let records = [message("a", "1"), message("b", "x"), refused, message("c", "boom"), message("d", "4")];
        let error = try_plan(&records, &Envelope::default(), parse).expect_err("the event fails");
        assert!(matches!(error, EventError::Aborted { position: 3, .. }), "{error:?}");
        assert_eq!(error.source_as::<Broke>(), Some(&Broke));
        assert_eq!(error.source_as::<std::fmt::Error>(), None);
        assert_eq!(error.to_string(), "the parse step failed the whole event at record 3");
        assert_eq!(std::error::Error::source(&error).map(ToString::to_string).as_deref(), Some("the encryptor broke"));
        assert_eq!(calls.get(), 3, "a, b and c: nothing after the failing message is parsed");
        assert_eq!(error.clone(), error, "a clone is the same error");

        // A missing messageId still comes first: it is found before any parse.
        let mut anonymous = message("x", "1");
        anonymous.message_id = None;
        let parse = |_: &SqsMessage| -> Result<Result<(), NotANumber>, Broke> { Err(Broke) };
        let error = try_plan(&[message("c", "boom"), anonymous], &Envelope::default(), parse).expect_err("fails");
        assert_eq!(error, EventError::MissingMessageId { position: 1 });

        // A step that never aborts plans as `plan` does.
        let records = [message("a", "1"), message("b", "x")];
        let never = |message: &SqsMessage| Ok::<_, Broke>(crate::test_record::parse(message));
        assert_eq!(
            try_plan(&records, &Envelope::default(), never),
            plan(&records, &Envelope::default(), crate::test_record::parse)
        );
    }

    #[test]
    fn every_record_gets_exactly_one_fate() {
        let mut no_body = message("c", "");
        no_body.body = None;
        let plan = plan_default(&[message("a", "1"), message("b", "not a number"), no_body, message("d", "4")]);
        assert_eq!(plan.received(), 4);
        assert_eq!(accepted_ids(&plan), ["a", "d"]);
        assert_eq!(rejected_codes(&plan), [("b", "malformed_body".into()), ("c", "missing_body".into())]);
        assert_eq!(plan.accepted()[1].record(), &crate::test_record::Number(4));
        assert_eq!(plan.accepted()[1].position(), 3);
    }

    #[test]
    fn an_accepted_record_carries_its_envelope() {
        let mut record = fifo("m-1", "g", "7");
        record.attributes.insert("ApproximateReceiveCount".into(), "3".into());
        let plan = plan_default(&[record]);
        let accepted = &plan.accepted()[0];
        assert_eq!(accepted.identity(), "m-1");
        assert_eq!(accepted.receive_count(), 3);
        assert_eq!(accepted.sent_at_ms(), Some(SENT));
        assert_eq!(accepted.group.as_deref(), Some("g"));
    }

    #[test]
    fn a_record_without_message_id_fails_the_whole_event() {
        for (name, id) in [("absent", None), ("empty", Some(String::new()))] {
            let mut anonymous = message("x", "1");
            anonymous.message_id = id;
            let result = plan(&[message("a", "1"), anonymous], &Envelope::default(), parse);
            assert_eq!(result, Err(EventError::MissingMessageId { position: 1 }), "{name}");
        }
    }

    #[test]
    fn unstorable_message_ids_fail_their_record_only() {
        let longest = "m".repeat(MAX_ID_CHARS);
        let too_long = "m".repeat(MAX_ID_CHARS + 1);
        let cases = [
            ("128 characters", longest.as_str(), true),
            ("128 multi-byte characters", &"é".repeat(MAX_ID_CHARS), true),
            ("129 characters", too_long.as_str(), false),
            ("a NUL", "nul\0id", false),
            ("a newline", "line\nbreak", false),
        ];
        for (name, id, accepted) in cases {
            let plan = plan_default(&[message(id, "1"), message("fine", "2")]);
            let want: &[&str] = if accepted { &[id, "fine"] } else { &["fine"] };
            assert_eq!(accepted_ids(&plan), want, "{name}");
            if !accepted {
                assert_eq!(rejected_codes(&plan), [(id, "invalid_message_id".into())], "{name}");
            }
        }
    }

    #[test]
    fn a_message_id_repeated_in_the_event_fails_every_copy_and_is_named_once() {
        let records = [message("twice", "1"), message("once", "2"), message("twice", "3"), message("twice", "x")];
        let plan = plan_default(&records);
        assert_eq!(accepted_ids(&plan), ["once"]);
        assert_eq!(rejected_codes(&plan), [("twice", "repeated_message_id".into())]);
    }

    #[test]
    fn identical_copies_fail_too_unless_collapsed() {
        let records = [message("twice", "1"), message("twice", "1")];
        let plan_failing = plan_default(&records);
        assert_eq!(rejected_codes(&plan_failing), [("twice", "repeated_message_id".into())]);

        let collapsing = Envelope::default().with_identical_copies_collapsed(true);
        let collapsed = plan(&records, &collapsing, parse).expect("plan");
        assert_eq!(accepted_ids(&collapsed), ["twice"]);
        assert_eq!((collapsed.rejected().len(), collapsed.copies_skipped()), (0, 1));

        // Two identical copies and a third that differs: no copy can be trusted.
        let records = [message("twice", "1"), message("twice", "1"), message("twice", "2")];
        let mixed = plan(&records, &collapsing, parse).expect("plan");
        assert_eq!(rejected_codes(&mixed), [("twice", "repeated_message_id".into())]);
        assert_eq!((mixed.accepted().len(), mixed.copies_skipped()), (0, 0));
    }

    #[test]
    fn the_identity_is_the_first_identity_attribute_present_else_the_message_id() {
        let redriving = Envelope::default().with_redrive_attributes("OriginalMessageId", "OriginalSentTimestamp");
        let custom = Envelope::default().with_identity_attributes(["EventId"]);
        let mut binary = SqsMessageAttribute::default();
        binary.data_type = Some("Binary".into());
        let mut binary_key = message("sqs-1", "1");
        binary_key.message_attributes.insert("IdempotencyKey".into(), binary);
        let too_long = "k".repeat(MAX_ID_CHARS + 1);

        // Message sqs-1 with the String attributes `(name, value)`.
        let sqs_1 = |attributes: &[(&str, &str)]| {
            attributes.iter().fold(message("sqs-1", "1"), |record, (name, value)| with_attribute(record, name, value))
        };

        // (name, envelope, record, the identity or the failure code)
        let cases: [(&str, &Envelope, SqsMessage, Result<&str, &str>); 9] = [
            ("no attribute", &redriving, sqs_1(&[]), Ok("sqs-1")),
            ("idempotency key", &redriving, sqs_1(&[("IdempotencyKey", "key-7")]), Ok("key-7")),
            ("redriven", &redriving, sqs_1(&[("OriginalMessageId", "first-id")]), Ok("first-id")),
            (
                "the producer's key wins over the redrive's",
                &redriving,
                sqs_1(&[("OriginalMessageId", "first-id"), ("IdempotencyKey", "key-7")]),
                Ok("key-7"),
            ),
            ("a custom attribute", &custom, sqs_1(&[("EventId", "e-9")]), Ok("e-9")),
            ("a replaced default is ignored", &custom, sqs_1(&[("IdempotencyKey", "key-7")]), Ok("sqs-1")),
            ("an empty key", &redriving, sqs_1(&[("IdempotencyKey", "")]), Err("invalid_idempotency_key")),
            ("a key too long", &redriving, sqs_1(&[("IdempotencyKey", &too_long)]), Err("invalid_idempotency_key")),
            ("a Binary key", &redriving, binary_key, Err("invalid_idempotency_key")),
        ];
        for (name, envelope, record, want) in cases {
            let plan = plan(&[record], envelope, parse).expect("plan");
            let got = match (plan.accepted().first(), plan.rejected().first()) {
                (Some(accepted), None) => Ok(accepted.identity().to_owned()),
                (None, Some(failed)) => Err(failed.reason().code().into_owned()),
                _ => panic!("{name}: one record, one fate"),
            };
            assert_eq!(got, want.map(str::to_owned).map_err(str::to_owned), "{name}");
        }
    }

    #[test]
    fn the_sent_time_is_the_original_one_and_must_be_believable() {
        let envelope = Envelope::default()
            .with_redrive_attributes("OriginalMessageId", "OriginalSentTimestamp")
            .with_sent_range(946_684_800_000..4_102_444_800_000);
        let with_sent = |value: &str| {
            let mut record = message("m", "1");
            record.attributes.insert("SentTimestamp".into(), value.to_owned());
            record
        };
        let mut missing = message("m", "1");
        missing.attributes.remove("SentTimestamp");
        let cases = [
            ("SQS's SentTimestamp", message("m", "1"), Ok(SENT)),
            (
                "a redrive's original",
                with_attribute(message("m", "1"), "OriginalSentTimestamp", "1000000000000"),
                Ok(1_000_000_000_000),
            ),
            ("missing", missing, Err("invalid_sent_timestamp")),
            ("not a number", with_sent("yesterday"), Err("invalid_sent_timestamp")),
            (
                "an unreadable original",
                with_attribute(message("m", "1"), "OriginalSentTimestamp", "x"),
                Err("invalid_sent_timestamp"),
            ),
            ("the range's first millisecond", with_sent("946684800000"), Ok(946_684_800_000)),
            ("just before the range", with_sent("946684799999"), Err("sent_timestamp_out_of_range")),
            ("the range's end", with_sent("4102444800000"), Err("sent_timestamp_out_of_range")),
            ("negative", with_sent("-250000000000000"), Err("sent_timestamp_out_of_range")),
        ];
        for (name, record, want) in cases {
            let plan = plan(&[record], &envelope, parse).expect("plan");
            let got = match (plan.accepted().first(), plan.rejected().first()) {
                (Some(accepted), None) => Ok(accepted.sent_at_ms().expect("a range requires a sent time")),
                (None, Some(failed)) => Err(failed.reason().code().into_owned()),
                _ => panic!("{name}: one record, one fate"),
            };
            assert_eq!(got, want.map_err(str::to_owned), "{name}");
        }
        // Without a range, any epoch milliseconds do.
        assert_eq!(plan_default(&[with_sent("-1")]).accepted.len(), 1);
    }

    #[test]
    fn a_fifo_failure_blocks_the_rest_of_its_group_only() {
        let records = fifo_batch(&[("g1", "1"), ("g1", "bad"), ("g2", "3"), ("g1", "4"), ("g2", "5"), ("g1", "6")]);
        let plan = plan_default(&records);
        assert_eq!(accepted_ids(&plan), ["1", "3", "5"]);
        assert_eq!(
            rejected_codes(&plan),
            [("2", "malformed_body".into()), ("4", "fifo_group_blocked".into()), ("6", "fifo_group_blocked".into())]
        );
        assert_eq!(plan.rejected()[1].reason().to_string(), "earlier failure in group");
    }

    #[test]
    fn every_kind_of_failure_blocks_a_fifo_group() {
        let cases = [
            ("rejected body", fifo("1", "g", "bad")),
            ("invalid identity", with_attribute(fifo("1", "g", "1"), "IdempotencyKey", "")),
            ("invalid messageId", fifo("bad\nid", "g", "1")),
        ];
        for (name, first) in cases {
            let plan = plan_default(&[first, fifo("2", "g", "2")]);
            assert!(plan.accepted().is_empty(), "{name}");
            assert_eq!(plan.rejected()[1].reason().code(), "fifo_group_blocked", "{name}");
        }
        // A repeated id too, though it is named once.
        let plan = plan_default(&[fifo("1", "g", "1"), fifo("1", "g", "2"), fifo("3", "g", "3")]);
        assert_eq!(rejected_codes(&plan), [("1", "repeated_message_id".into()), ("3", "fifo_group_blocked".into())]);
    }

    #[test]
    fn stop_batch_fails_every_later_fifo_message_whatever_its_group() {
        let envelope = Envelope::default().with_fifo_policy(FifoPolicy::StopBatch);
        let records = fifo_batch(&[("g1", "1"), ("g2", "bad"), ("g1", "3"), ("g3", "4")]);
        let plan = plan(&records, &envelope, parse).expect("plan");
        assert_eq!(accepted_ids(&plan), ["1"]);
        assert_eq!(
            rejected_codes(&plan),
            [("2", "malformed_body".into()), ("3", "fifo_batch_stopped".into()), ("4", "fifo_batch_stopped".into())]
        );
        // A standard queue is never stopped.
        let plan = super::plan(&[message("1", "bad"), message("2", "2")], &envelope, parse).expect("plan");
        assert_eq!(accepted_ids(&plan), ["2"]);
    }

    #[test]
    fn a_hand_made_message_with_no_attributes_is_accepted_by_default() {
        let mut bare = SqsMessage::default();
        bare.message_id = Some("1".into());
        bare.body = Some("7".into());
        let plan = plan_default(&[bare]);
        assert_eq!(accepted_ids(&plan), ["1"]);
        let accepted = &plan.accepted()[0];
        assert_eq!((accepted.sent_at_ms(), accepted.receive_count(), accepted.receipt_handle()), (None, 1, None));
    }

    #[test]
    fn standard_queues_do_not_block_groups() {
        // Fair queues put a MessageGroupId on standard queues, which promise no order.
        let mut bad = message("1", "bad");
        bad.attributes.insert("MessageGroupId".into(), "g".into());
        let mut good = message("2", "2");
        good.attributes.insert("MessageGroupId".into(), "g".into());
        let plan = plan_default(&[bad, good]);
        assert_eq!(accepted_ids(&plan), ["2"]);
        assert_eq!(plan.accepted()[0].group, None);
    }

    #[test]
    fn parse_never_sees_a_message_the_envelope_refuses() {
        let calls = Cell::new(0);
        let counting = |record: &SqsMessage| {
            calls.set(calls.get() + 1);
            parse(record)
        };
        let records = [
            message("bad\0id", "1"),
            with_attribute(message("b", "2"), "IdempotencyKey", ""),
            message("c", "3"),
            message("c", "3"),
            fifo("e", "g", "bad"),
            fifo("f", "g", "6"),
            message("g", "7"),
        ];
        let plan = plan(&records, &Envelope::default(), counting).expect("plan");
        assert_eq!(calls.get(), 2, "only e (which fails) and g are parsed");
        assert_eq!(accepted_ids(&plan), ["g"]);
    }
}
