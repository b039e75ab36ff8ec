//! The envelope of login-etl's queue: the identity and sent-time attributes a redrive keeps,
//! the sent times a login may have, and the crate's [`Envelope`] built from them.

use std::ops::Range;

use sqs_batch::Envelope;

/// Set by `login-etl-cli redrive`: the `messageId` of the message's first delivery.
pub const ORIGINAL_MESSAGE_ID_ATTRIBUTE: &str = "LoginEtlOriginalMessageId";
/// Set by `login-etl-cli redrive`: the `SentTimestamp` (epoch ms) of the first delivery, so a
/// replayed login keeps its `sent_at` and `create_date`.
pub const ORIGINAL_SENT_TIMESTAMP_ATTRIBUTE: &str = "LoginEtlOriginalSentTimestamp";

/// The sent times accepted: [2000-01-01, 2100-01-01) UTC, in epoch milliseconds. PostgreSQL
/// would store far more (4713 BC to 294276 AD), but a login from before this service's
/// dependencies existed or from the next century is a broken clock or a forged attribute, and
/// it would also create partitions and dates no report expects. No wall clock is read here
/// (the core is pure), so "the future" is bounded by the century, not by now.
pub const SENT_MILLIS_RANGE: Range<i64> = 946_684_800_000..4_102_444_800_000;

/// The envelope rules of login-etl's queue: the producer's
/// [`IdempotencyKey`](sqs_batch::IDEMPOTENCY_KEY_ATTRIBUTE) (the crate's default), else
/// the first delivery's id a redrive kept, else SQS's `messageId` names a row; a redriven
/// login keeps its first sent time; sent times outside [`SENT_MILLIS_RANGE`] fail; identical
/// copies of one `messageId` are one message delivered twice (handled once, the copy a
/// duplicate), differing copies all fail.
pub fn envelope() -> Envelope {
    Envelope::default()
        .with_redrive_attributes(ORIGINAL_MESSAGE_ID_ATTRIBUTE, ORIGINAL_SENT_TIMESTAMP_ATTRIBUTE)
        .with_sent_range(SENT_MILLIS_RANGE)
        .with_identical_copies_collapsed(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::fixtures::{GOOD, codes, identities, masker};
    use crate::batch::outcome::FailureReason;
    use crate::batch::plan;
    use crate::message::{Field, RecordError};
    use crate::testing::redriven;
    use sqs_batch::testing::{fifo, message, with_attribute};
    use sqs_batch::{EventError, IDEMPOTENCY_KEY_ATTRIBUTE};

    #[test]
    fn the_envelope_is_the_one_the_core_constants_name() {
        assert_eq!(envelope().identity_attributes(), [IDEMPOTENCY_KEY_ATTRIBUTE, ORIGINAL_MESSAGE_ID_ATTRIBUTE]);
        assert_eq!(IDEMPOTENCY_KEY_ATTRIBUTE, "IdempotencyKey");
        assert_eq!(
            envelope(),
            Envelope::default()
                .with_redrive_attributes("LoginEtlOriginalMessageId", "LoginEtlOriginalSentTimestamp")
                .with_sent_range(946_684_800_000..4_102_444_800_000)
                .with_identical_copies_collapsed(true)
        );
    }

    #[test]
    fn missing_body_and_bad_timestamps_fail_the_record_only() {
        let mut no_body = message("a", GOOD);
        no_body.body = None;
        let mut no_timestamp = message("b", GOOD);
        no_timestamp.attributes.clear();
        let mut bad_timestamp = message("c", GOOD);
        bad_timestamp.attributes.insert("SentTimestamp".into(), "yesterday".into());
        let plan = plan(&[no_body, no_timestamp, bad_timestamp, message("d", GOOD)], &masker(), None).expect("plan");
        let codes: Vec<_> =
            plan.contract.rejected().iter().map(|f| (f.message_id(), f.reason().code().into_owned())).collect();
        assert_eq!(
            codes,
            [
                ("a", "missing_body".to_string()),
                ("b", "invalid_sent_timestamp".to_string()),
                ("c", "invalid_sent_timestamp".to_string())
            ]
        );
        assert_eq!(identities(&plan), ["d"]);
    }

    #[test]
    fn a_record_without_message_id_fails_the_whole_event() {
        let mut anonymous = message("x", GOOD);
        anonymous.message_id = Some(String::new());
        assert_eq!(
            plan(&[message("a", GOOD), anonymous], &masker(), None),
            Err(EventError::MissingMessageId { position: 1 })
        );
        let mut missing = message("x", GOOD);
        missing.message_id = None;
        assert_eq!(plan(&[missing], &masker(), None), Err(EventError::MissingMessageId { position: 0 }));
    }

    #[test]
    fn fifo_failure_holds_back_the_rest_of_its_group_only() {
        let records = vec![
            fifo("1", "g1", GOOD),
            fifo("2", "g1", "{}"),
            fifo("3", "g2", GOOD),
            fifo("4", "g1", GOOD),
            fifo("5", "g2", GOOD),
        ];
        let plan = plan(&records, &masker(), None).expect("plan");
        assert_eq!(identities(&plan), ["1", "3", "5"]);
        assert_eq!(
            plan.contract
                .rejected()
                .iter()
                .map(|f| (f.message_id(), f.position(), f.receive_count(), f.receipt_handle(), f.reason()))
                .collect::<Vec<_>>(),
            [
                ("2", 1, 1, Some("rh-2"), &FailureReason::Rejected(RecordError::Missing(Field::UserId))),
                ("4", 3, 1, Some("rh-4"), &FailureReason::EarlierFailureInGroup),
            ]
        );
    }

    #[test]
    fn standard_queues_do_not_block_groups() {
        let mut bad = message("1", "{}");
        bad.attributes.insert("MessageGroupId".into(), "g".into());
        let mut good = message("2", GOOD);
        good.attributes.insert("MessageGroupId".into(), "g".into());
        let plan = plan(&[bad, good], &masker(), None).expect("plan");
        assert_eq!(identities(&plan), ["2"]);
    }

    #[test]
    fn what_the_store_would_refuse_fails_the_record_alone() {
        let long_id = "m".repeat(129);
        let mut ancient = message("ancient", GOOD);
        ancient.attributes.insert("SentTimestamp".into(), "-250000000000000".into());
        let mut year_3000 = message("y3000", GOOD);
        year_3000.attributes.insert("SentTimestamp".into(), "32503680000000".into());
        let mut year_1999 = message("y1999", GOOD);
        year_1999.attributes.insert("SentTimestamp".into(), "946684799999".into());
        let records = [
            message(&long_id, GOOD),
            message("nul\0id", GOOD),
            ancient,
            year_3000,
            year_1999,
            message("fine", GOOD),
            message(&"m".repeat(128), GOOD),
        ];
        let plan = plan(&records, &masker(), None).expect("plan");
        assert_eq!(
            codes(&plan),
            [
                (long_id, "invalid_message_id".to_string()),
                ("nul\0id".to_string(), "invalid_message_id".to_string()),
                ("ancient".to_string(), "sent_timestamp_out_of_range".to_string()),
                ("y3000".to_string(), "sent_timestamp_out_of_range".to_string()),
                ("y1999".to_string(), "sent_timestamp_out_of_range".to_string()),
            ]
        );
        assert_eq!(identities(&plan), ["fine".to_string(), "m".repeat(128)]);
    }

    #[test]
    fn a_message_id_repeated_in_the_event_gets_one_fate() {
        // Different content under one id: neither copy can be told apart, both fail.
        let records = [message("twice", GOOD), message("once", GOOD), message("twice", "not json")];
        let plan = plan(&records, &masker(), None).expect("plan");
        assert_eq!(codes(&plan), [("twice".to_string(), "repeated_message_id".to_string())]);
        assert_eq!(identities(&plan), ["once"]);
        assert_eq!(plan.contract.inserted::<()>(1).failed().len(), 1);
        // The same message twice: handled once, the copy is a duplicate.
        let records = [message("twice", GOOD), message("twice", GOOD)];
        let same = crate::batch::plan(&records, &masker(), None).expect("plan");
        assert_eq!(identities(&same), ["twice"]);
        let outcome = same.contract.inserted::<()>(1);
        assert_eq!((outcome.succeeded(), outcome.duplicates(), outcome.failed().len()), (1, 1, 0));
    }

    #[test]
    fn replayed_and_keyed_messages_keep_their_first_identity_and_time() {
        // A first delivery a day before this one (`message` sends at `testing::SENT`).
        let redriven = redriven(message("new-sqs-id", GOOD), "first-id", 1_795_300_000_000);
        let keyed = with_attribute(message("sqs-2", GOOD), IDEMPOTENCY_KEY_ATTRIBUTE, "producer-key-7");
        let both = with_attribute(
            with_attribute(message("sqs-3", GOOD), ORIGINAL_MESSAGE_ID_ATTRIBUTE, "first-3"),
            IDEMPOTENCY_KEY_ATTRIBUTE,
            "producer-key-8",
        );
        let bad_key = with_attribute(message("sqs-4", GOOD), IDEMPOTENCY_KEY_ATTRIBUTE, "");
        let plan = plan(&[redriven, keyed, both, bad_key], &masker(), None).expect("plan");
        assert_eq!(identities(&plan), ["first-id", "producer-key-7", "producer-key-8"]);
        let accepted: Vec<&str> = plan.contract.accepted().iter().map(|a| a.message_id()).collect();
        assert_eq!(accepted, ["new-sqs-id", "sqs-2", "sqs-3"], "failures are still named by SQS's id");
        // 2026-11-21T22:26:40Z, the first delivery's, not this one's.
        assert_eq!(plan.contract.accepted()[0].sent_at_ms(), Some(1_795_300_000_000));
        assert_eq!(codes(&plan), [("sqs-4".to_string(), "invalid_idempotency_key".to_string())]);
        // The crate reports a store failure's records in event order (login-etl used to list
        // the envelope and body failures first, then the store's).
        let ids: Vec<_> = plan.contract.store_failed(()).failed().iter().map(|f| f.message_id().to_owned()).collect();
        assert_eq!(ids, ["new-sqs-id", "sqs-2", "sqs-3", "sqs-4"]);
    }

    // Where the crate's rules differ from login-etl's former own, deliberately.

    /// The envelope is read before the body: a record bad in both reports the envelope's
    /// reason (login-etl used to report the body's). Both are final, and the body of a message
    /// whose envelope is refused is never parsed.
    #[test]
    fn a_record_bad_in_envelope_and_body_reports_the_envelope() {
        let mut both = message("both", "not json");
        both.attributes.insert("SentTimestamp".into(), "yesterday".into());
        let plan = plan(&[both], &masker(), None).expect("plan");
        assert_eq!(codes(&plan), [("both".to_string(), "invalid_sent_timestamp".to_string())]);
    }

    /// The `messageId` is checked even when an identity attribute names the row (login-etl
    /// used to skip it): an id no log line or response should carry fails its record.
    #[test]
    fn an_unstorable_message_id_fails_even_with_an_idempotency_key() {
        let keyed = with_attribute(message("bad\nid", GOOD), IDEMPOTENCY_KEY_ATTRIBUTE, "key-1");
        let plan = plan(&[keyed], &masker(), None).expect("plan");
        assert_eq!(codes(&plan), [("bad\nid".to_string(), "invalid_message_id".to_string())]);
    }

    /// A repeated `messageId` on a FIFO queue blocks the rest of its group (login-etl used to
    /// let it through), so the group's order holds when the repeated message returns.
    #[test]
    fn a_repeated_message_id_blocks_its_fifo_group() {
        let records = [fifo("r", "g", GOOD), fifo("r", "g", r#"{"user_id":"u2"}"#), fifo("later", "g", GOOD)];
        let plan = plan(&records, &masker(), None).expect("plan");
        assert_eq!(
            codes(&plan),
            [
                ("r".to_string(), "repeated_message_id".to_string()),
                ("later".to_string(), "fifo_group_blocked".to_string())
            ]
        );
    }
}
