//! How a record's fate is reported: a body's failure in login-etl's codes, the schema-drift
//! tally, and the invocation's [`BatchOutcome`].

use std::borrow::Cow;

use sqs_batch::{Outcome, Rejection};

use crate::message::{RecordError, UnknownKeys};

/// A body's failure is the crate's rejection: its code (`malformed_json`, `missing_user_id`)
/// is what logs, metrics and EMF count, and a bad body never gets better by waiting.
impl Rejection for RecordError {
    fn code(&self) -> Cow<'static, str> {
        Cow::Owned(RecordError::code(self))
    }
}

/// Why one message was reported in `batchItemFailures`: the crate's taxonomy over login-etl's
/// [`RecordError`]. [`sqs_batch::FailureReason::code`] gives the strings logs and metrics use.
pub type FailureReason = sqs_batch::FailureReason<RecordError>;

/// A message that returns to the queue, named by its `messageId`.
pub type FailedMessage = sqs_batch::Failed<RecordError>;

/// The valid records of a batch that carried keys the function does not know, and those keys'
/// names (merged, bounded as one record's are). Such records are loaded; their unknown values
/// are neither stored nor logged. What `UnknownFieldRecords` and the drift log line report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnknownKeyTally {
    pub records: usize,
    pub keys: UnknownKeys,
}

impl UnknownKeyTally {
    pub(super) fn add(&mut self, keys: &UnknownKeys) {
        if !keys.is_empty() {
            self.records += 1;
            self.keys.merge(keys);
        }
    }
}

/// The fate of every record of one invocation, as logs, metrics and `drain` count it: the
/// crate's [`Outcome`] (counts, failures by reason code, the store's error) and the drift
/// tally, which the crate does not know. `S` is the store's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOutcome<S> {
    /// Every record's fate, from the crate: `received`, `succeeded` (inserted new),
    /// `duplicates`, `failed` in event order with each `messageId` once, `store_failures`,
    /// `failures_by_code`, and the response.
    pub records: Outcome<RecordError, S>,
    /// The valid records that carried keys the function does not know, whatever their insert
    /// did: drift is a property of what producers send.
    pub unknown_keys: UnknownKeyTally,
}

impl<S> BatchOutcome<S> {
    /// The crate's outcome with the plan's drift tally.
    pub fn new(records: Outcome<RecordError, S>, unknown_keys: UnknownKeyTally) -> BatchOutcome<S> {
        BatchOutcome { records, unknown_keys }
    }
}

#[cfg(test)]
mod tests {
    use crate::batch::fixtures::{GOOD, masker};
    use crate::batch::plan;
    use sqs_batch::testing::message;
    use std::collections::BTreeMap;

    #[test]
    fn accepted_records_not_inserted_are_duplicates() {
        let plan = plan(&[message("a", GOOD), message("b", GOOD), message("c", "[]")], &masker(), None).expect("plan");
        let outcome = plan.contract.inserted::<()>(1);
        assert_eq!((outcome.received(), outcome.succeeded(), outcome.duplicates()), (3, 1, 1));
        let ids: Vec<_> = outcome.failed().iter().map(|f| f.message_id().to_owned()).collect();
        assert_eq!(ids, ["c"]);
        assert_eq!(outcome.failures_by_code(), BTreeMap::from([("not_an_object".into(), 1)]));
    }

    #[test]
    fn store_failure_fails_every_record() {
        let plan = plan(&[message("a", GOOD), message("b", "[]"), message("c", GOOD)], &masker(), None).expect("plan");
        let outcome = plan.contract.store_failed(());
        assert_eq!(outcome.succeeded(), 0);
        let mut ids: Vec<_> = outcome.failed().iter().map(|f| f.message_id().to_owned()).collect();
        ids.sort();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(
            outcome.failures_by_code(),
            BTreeMap::from([("not_an_object".into(), 1), ("store_failed".into(), 2)])
        );
        assert_eq!(outcome.store_error(), Some(&()));
        assert_eq!(outcome.store_failures().count(), 2);
    }

    #[test]
    fn an_empty_event_is_an_empty_response() {
        let outcome = plan(&[], &masker(), None).expect("plan").contract.inserted::<()>(0);
        assert!(outcome.failed().is_empty());
        assert_eq!(outcome.received(), 0);
    }
}
