//! plan → store (or per-record handler) → outcome → `SqsBatchResponse`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};

use crate::envelope::Envelope;
use crate::failure::{EventError, Failed, FailureReason, Rejection};
use crate::plan::{Plan, plan};
use crate::store::Store;

/// The partial batch response naming exactly `failed`, each once as given: for a caller that
/// keeps the failures in a report of its own ([`Outcome::into_parts`]) and answers from it.
pub fn batch_response<'a, E: 'a>(failed: impl IntoIterator<Item = &'a Failed<E>>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|failed| {
            let mut item = BatchItemFailure::default();
            item.item_identifier = failed.message_id().to_owned();
            item
        })
        .collect();
    response
}

/// The fate of every record of one event, from either path: the bulk [`Store`] ([`process`])
/// or the per-record handler ([`Processor::run`](crate::Processor::run)). `E` is the record
/// type's (or handler's) rejection, `S` the store's error (`Infallible` on the per-record path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome<E, S> {
    received: usize,
    succeeded: usize,
    duplicates: usize,
    failed: Vec<Failed<E>>,
    store_error: Option<S>,
}

/// What a handler answers when the batch went badly: each choice is a trade-off, so each is
/// explicit, and the default is the partial response in every case.
///
/// A function error makes Lambda retry the whole batch and, per AWS's "Handling errors for an
/// SQS event source in Lambda", back off and lower the concurrency it gives the queue; partial
/// failures do not slow it. During an outage that spares the dependency every instance's
/// retries, and the function's `Errors` metric (and its alarm) sees it. The cost: the batch's
/// other failures (bad bodies) also come back, once more, and successes are done again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResponsePolicy {
    fail_on_store_failure: bool,
    fail_when_all_failed: bool,
}

impl ResponsePolicy {
    /// Always the partial batch response (the default).
    pub const fn partial() -> Self {
        ResponsePolicy { fail_on_store_failure: false, fail_when_all_failed: false }
    }

    /// Fail the invocation ([`Unanswered::StoreUnavailable`]) when the store failed the whole
    /// batch.
    pub const fn fail_on_store_failure(mut self, fail: bool) -> Self {
        self.fail_on_store_failure = fail;
        self
    }

    /// Fail the invocation ([`Unanswered::AllFailed`]) when every record of a non-empty batch
    /// failed, whatever the reasons: Powertools' default (`BatchProcessingError`, TS's
    /// `throwOnFullBatchFailure`).
    pub const fn fail_when_all_failed(mut self, fail: bool) -> Self {
        self.fail_when_all_failed = fail;
        self
    }
}

/// The outcome asked, by its [`ResponsePolicy`], for a function error instead of a response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Unanswered<S> {
    /// The store failed the whole batch.
    #[error("the store failed the whole batch, so its {failed} accepted records failed and return to the queue")]
    StoreUnavailable {
        /// How many accepted records failed with the store.
        failed: usize,
        /// Why the store failed.
        #[source]
        source: S,
    },
    /// Every record of the batch failed.
    #[error("all {failed} records of the batch failed")]
    AllFailed {
        /// How many records failed.
        failed: usize,
    },
}

impl<R, E: Rejection> Plan<R, E> {
    /// Hands the accepted records to `store` in one call (none when nothing was accepted) and
    /// accounts for every record: [`process`] after its plan, and the step for a caller that
    /// must look at its plan before anything is written.
    pub async fn store<S: Store<R>>(self, store: &S) -> Outcome<E, S::Error> {
        if self.accepted.is_empty() {
            return self.inserted(0);
        }
        match store.store(&self.accepted).await {
            Ok(inserted) => self.inserted(inserted),
            Err(error) => self.store_failed(error),
        }
    }

    /// The store wrote the batch, `inserted` of its records new (the others' identities were
    /// already stored): for a caller that writes the plan itself.
    pub fn inserted<S>(self, inserted: usize) -> Outcome<E, S> {
        let outcome = Outcome {
            received: self.received,
            succeeded: inserted,
            duplicates: self.accepted.len().saturating_sub(inserted) + self.copies_skipped,
            failed: self.rejected,
            store_error: None,
        };
        outcome.traced()
    }

    /// The store failed the whole batch: nothing was written, so every accepted record fails
    /// too, for a reason that waiting may cure.
    pub fn store_failed<S>(self, error: S) -> Outcome<E, S> {
        let mut failed = self.rejected;
        failed.extend(
            self.accepted.into_iter().map(|accepted| Failed::of_accepted(accepted, FailureReason::StoreFailed)),
        );
        // Both lists are in event order; a stable sort merges them.
        failed.sort_by_key(Failed::position);
        let outcome =
            Outcome { received: self.received, succeeded: 0, duplicates: 0, failed, store_error: Some(error) };
        outcome.traced()
    }
}

impl<E, S> Outcome<E, S> {
    pub(crate) fn new(received: usize, succeeded: usize, duplicates: usize, failed: Vec<Failed<E>>) -> Self {
        Outcome { received, succeeded, duplicates, failed, store_error: None }
    }

    /// How many records the event held.
    pub fn received(&self) -> usize {
        self.received
    }

    /// Records handled for the first time: written new by the store, or `Ok` from the
    /// per-record handler.
    pub fn succeeded(&self) -> usize {
        self.succeeded
    }

    /// Records whose identity was already stored (redeliveries, redrives) or that were later
    /// identical copies in the batch: handled, not failed.
    pub fn duplicates(&self) -> usize {
        self.duplicates
    }

    /// Every message that goes back to the queue, in event order, each `messageId` once.
    pub fn failed(&self) -> &[Failed<E>] {
        &self.failed
    }

    /// Why the store failed the whole batch, when it did.
    pub fn store_error(&self) -> Option<&S> {
        self.store_error.as_ref()
    }

    /// The failures and the store's error, by value: for a caller that keeps them in a report
    /// of its own.
    pub fn into_parts(self) -> (Vec<Failed<E>>, Option<S>) {
        (self.failed, self.store_error)
    }

    /// The partial batch response: exactly the failed messages go back to the queue.
    ///
    /// Needs `FunctionResponseTypes: [ReportBatchItemFailures]` on the event source mapping;
    /// without it Lambda ignores the response and deletes the whole batch.
    pub fn response(&self) -> SqsBatchResponse {
        batch_response(&self.failed)
    }

    /// The response, or [`Unanswered`] when `policy` asks for a function error for this
    /// outcome.
    ///
    /// # Errors
    ///
    /// [`Unanswered::StoreUnavailable`] or [`Unanswered::AllFailed`], as the policy chose.
    pub fn into_response(mut self, policy: ResponsePolicy) -> Result<SqsBatchResponse, Unanswered<S>> {
        if policy.fail_on_store_failure
            && let Some(source) = self.store_error.take()
        {
            return Err(Unanswered::StoreUnavailable { failed: self.store_failures().count(), source });
        }
        if policy.fail_when_all_failed && self.all_failed() {
            return Err(Unanswered::AllFailed { failed: self.failed.len() });
        }
        Ok(self.response())
    }

    /// Whether no record succeeded or was a duplicate: every one of them returns to the queue.
    pub fn all_failed(&self) -> bool {
        self.succeeded == 0 && self.duplicates == 0 && !self.failed.is_empty()
    }

    /// The messages that failed only because the store did: what a visibility
    /// [`Backoff`](crate::Backoff) should hide for longer, since their content is fine.
    pub fn store_failures(&self) -> impl Iterator<Item = &Failed<E>> {
        self.failed.iter().filter(|failed| matches!(failed.reason(), FailureReason::StoreFailed))
    }

    /// The messages whose failure waiting may cure ([`FailureReason::is_retryable`]).
    pub fn retryable_failures(&self) -> impl Iterator<Item = &Failed<E>>
    where
        E: Rejection,
    {
        self.failed.iter().filter(|failed| failed.reason().is_retryable())
    }
}

impl<E: Rejection, S> Outcome<E, S> {
    /// With the `tracing` feature: one event per failed record (its code and `messageId`, never
    /// a body) and one summary event for the batch.
    pub(crate) fn traced(self) -> Self {
        #[cfg(feature = "tracing")]
        {
            for failed in &self.failed {
                // An id that failed `invalid_message_id` may be long or hold control characters.
                let message_id: String = failed.message_id().chars().take(crate::MAX_ID_CHARS).collect();
                tracing::warn!(
                    message_id = %message_id.escape_debug(),
                    code = %failed.reason().code(),
                    "sqs-batch: record failed"
                );
            }
            tracing::info!(
                received = self.received,
                succeeded = self.succeeded,
                duplicates = self.duplicates,
                failed = self.failed.len(),
                store_failed = self.store_error.is_some(),
                "sqs-batch: batch processed"
            );
        }
        self
    }

    /// Failure counts by [`FailureReason::code`], for a metric or a summary log line.
    pub fn failures_by_code(&self) -> BTreeMap<Cow<'static, str>, usize> {
        let mut counts = BTreeMap::new();
        for failed in &self.failed {
            *counts.entry(failed.reason().code()).or_insert(0) += 1;
        }
        counts
    }
}

/// The bulk contract for one event: [`plan`] it, hand the accepted records to `store` in one
/// call (none when nothing was accepted), and account for every record.
///
/// A store error never escapes as an `Err`: it becomes the outcome's
/// [`store_error`](Outcome::store_error) and a [`StoreFailed`](FailureReason::StoreFailed)
/// failure per accepted record; [`Outcome::into_response`] then decides how Lambda hears of it.
///
/// # Errors
///
/// [`EventError`] when the event cannot be answered record by record.
pub async fn process<R, E, S>(
    records: &[SqsMessage],
    envelope: &Envelope,
    parse: impl FnMut(&SqsMessage) -> Result<R, E>,
    store: &S,
) -> Result<Outcome<E, S::Error>, EventError>
where
    E: Rejection,
    S: Store<R>,
{
    Ok(plan(records, envelope, parse)?.store(store).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{InjectedFailure, MemoryStore};
    use crate::test_record::{NotANumber, Number, parse};
    use crate::testing::{fifo, message, with_attribute};

    type TestOutcome = Outcome<NotANumber, InjectedFailure>;

    async fn run(records: &[SqsMessage], store: &MemoryStore<Number>) -> TestOutcome {
        process(records, &Envelope::default(), parse, store).await.expect("every record has a messageId")
    }

    fn failed_ids(response: &SqsBatchResponse) -> Vec<&str> {
        response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect()
    }

    fn codes(outcome: &TestOutcome) -> Vec<(&str, String)> {
        outcome.failed().iter().map(|f| (f.message_id(), f.reason().code().into_owned())).collect()
    }

    #[tokio::test]
    async fn an_all_good_batch_is_stored_and_reports_no_failure() {
        let store = MemoryStore::new();
        let outcome = run(&[message("a", "1"), message("b", "2")], &store).await;
        assert_eq!((outcome.received(), outcome.succeeded(), outcome.duplicates()), (2, 2, 0));
        let response =
            outcome.into_response(ResponsePolicy::partial().fail_on_store_failure(true)).expect("no store failure");
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(store.identities(), ["a", "b"]);
    }

    #[tokio::test]
    async fn the_response_names_exactly_the_failed_messages_each_once() {
        let store = MemoryStore::new();
        let records = [
            message("a", "1"),
            message("bad", "x"),
            message("twice", "2"),
            message("twice", "3"),
            fifo("f1", "g", "x"),
            fifo("f2", "g", "5"),
        ];
        let outcome = run(&records, &store).await;
        assert_eq!(
            codes(&outcome),
            [
                ("bad", "malformed_body".into()),
                ("twice", "repeated_message_id".into()),
                ("f1", "malformed_body".into()),
                ("f2", "fifo_group_blocked".into()),
            ]
        );
        assert_eq!(
            outcome.failures_by_code(),
            BTreeMap::from([
                ("fifo_group_blocked".into(), 1),
                ("malformed_body".into(), 2),
                ("repeated_message_id".into(), 1)
            ])
        );
        let response = outcome.into_response(ResponsePolicy::partial()).expect("response");
        assert_eq!(failed_ids(&response), ["bad", "twice", "f1", "f2"]);
        assert_eq!(store.identities(), ["a"]);
    }

    #[tokio::test]
    async fn a_redelivered_or_redriven_message_makes_no_second_entry() {
        let store = MemoryStore::new();
        let envelope = Envelope::default().with_redrive_attributes("OriginalMessageId", "OriginalSentTimestamp");
        let first = [message("m-1", "1"), with_attribute(message("m-2", "2"), "IdempotencyKey", "key-2")];
        let outcome = process(&first, &envelope, parse, &store).await.expect("outcome");
        assert_eq!((outcome.succeeded(), outcome.duplicates()), (2, 0));

        let again = [
            // SQS redelivers m-1 (its visibility ran out before the delete).
            message("m-1", "1"),
            // The producer retried its send: a new messageId, the same key.
            with_attribute(message("m-3", "2"), "IdempotencyKey", "key-2"),
            // A redrive re-sent m-1 from the dead-letter queue under a new id.
            with_attribute(message("m-4", "1"), "OriginalMessageId", "m-1"),
        ];
        let outcome = process(&again, &envelope, parse, &store).await.expect("outcome");
        assert_eq!((outcome.succeeded(), outcome.duplicates(), outcome.failed().len()), (0, 3, 0));
        assert_eq!(store.identities(), ["m-1", "key-2"]);
        assert_eq!(store.get("key-2").expect("stored").message_id(), "m-2", "the first delivery is kept");
    }

    #[tokio::test]
    async fn a_whole_batch_store_failure_fails_every_accepted_record_retryably() {
        let store = MemoryStore::new();
        store.fail_next(1);
        let records = [message("a", "1"), message("bad", "x"), message("c", "3")];
        let outcome = run(&records, &store).await;
        assert_eq!(
            codes(&outcome),
            [("a", "store_failed".into()), ("bad", "malformed_body".into()), ("c", "store_failed".into())],
            "in event order, each record keeping its own reason"
        );
        assert!(outcome.store_failures().all(|f| f.reason().is_retryable()));
        assert_eq!(outcome.store_failures().count(), 2);
        assert_eq!((outcome.succeeded(), outcome.duplicates()), (0, 0));
        assert_eq!(outcome.store_error(), Some(&InjectedFailure));
        assert!(store.is_empty());

        // The caller's choice: name every record, or fail the invocation.
        let response = outcome.clone().into_response(ResponsePolicy::partial()).expect("a partial response");
        assert_eq!(failed_ids(&response), ["a", "bad", "c"]);
        let error =
            outcome.into_response(ResponsePolicy::partial().fail_on_store_failure(true)).expect_err("a function error");
        assert!(matches!(error, Unanswered::StoreUnavailable { failed: 2, source: InjectedFailure }), "{error:?}");

        // The outage passes: the redelivered batch is stored.
        let outcome = run(&records, &store).await;
        assert_eq!((outcome.succeeded(), outcome.failed().len()), (2, 1));
    }

    #[tokio::test]
    async fn the_store_is_not_called_when_nothing_was_accepted() {
        let store = MemoryStore::new();
        store.fail_next(1);
        for (name, records) in [("an empty event", vec![]), ("only failures", vec![message("bad", "x")])] {
            let outcome = run(&records, &store).await;
            assert_eq!(outcome.store_error(), None, "{name}");
        }
        assert_eq!(store.calls(), 0);
    }

    #[tokio::test]
    async fn an_event_error_comes_before_any_store_call() {
        let store = MemoryStore::<Number>::new();
        let mut anonymous = message("x", "1");
        anonymous.message_id = None;
        let result = process(&[message("a", "1"), anonymous], &Envelope::default(), parse, &store).await;
        assert_eq!(result.err(), Some(EventError::MissingMessageId { position: 1 }));
        assert_eq!(store.calls(), 0);
    }

    #[tokio::test]
    async fn collapsed_identical_copies_count_as_duplicates() {
        let store = MemoryStore::new();
        let envelope = Envelope::default().with_identical_copies_collapsed(true);
        let records = [message("a", "1"), message("a", "1"), message("a", "1"), message("b", "2")];
        let outcome = process(&records, &envelope, parse, &store).await.expect("outcome");
        assert_eq!((outcome.received(), outcome.succeeded(), outcome.duplicates()), (4, 2, 2));
        assert!(outcome.failed().is_empty());
        // Delivered again: both stored ones are duplicates too, beside the two copies.
        let outcome = process(&records, &envelope, parse, &store).await.expect("outcome");
        assert_eq!((outcome.succeeded(), outcome.duplicates()), (0, 4));
        // A store failure: nothing is a duplicate, every accepted record fails, copies included
        // once (the response names the id once).
        store.fail_next(1);
        let outcome = process(&records, &envelope, parse, &store).await.expect("outcome");
        assert_eq!((outcome.succeeded(), outcome.duplicates()), (0, 0));
        assert_eq!(failed_ids(&outcome.response()), ["a", "b"]);
    }

    #[tokio::test]
    async fn the_parts_are_the_failures_and_the_store_error() {
        let store = MemoryStore::new();
        store.fail_next(1);
        let outcome = run(&[message("a", "1"), message("bad", "x")], &store).await;
        let retryable: Vec<_> = outcome.retryable_failures().map(|f| f.message_id().to_owned()).collect();
        assert_eq!(retryable, ["a"], "the store's failure, not the bad body");
        let (failed, store_error) = outcome.into_parts();
        let ids: Vec<_> = failed.iter().map(|f| f.message_id()).collect();
        assert_eq!((ids, store_error), (vec!["a", "bad"], Some(InjectedFailure)));
    }

    #[test]
    fn all_failed_can_fail_the_invocation() {
        let failing = ResponsePolicy::default().fail_when_all_failed(true);
        let outcome: TestOutcome =
            plan(&[message("a", "x"), message("b", "y")], &Envelope::default(), parse).expect("plan").inserted(0);
        assert!(outcome.all_failed());
        assert!(matches!(outcome.clone().into_response(failing), Err(Unanswered::AllFailed { failed: 2 })));
        assert_eq!(failed_ids(&outcome.into_response(ResponsePolicy::default()).expect("partial")), ["a", "b"]);

        let one_good: TestOutcome =
            plan(&[message("a", "1"), message("b", "y")], &Envelope::default(), parse).expect("plan").inserted(1);
        assert!(!one_good.all_failed());
        assert_eq!(failed_ids(&one_good.into_response(failing).expect("partial")), ["b"]);
        let only_duplicates: TestOutcome =
            plan(&[message("a", "1")], &Envelope::default(), parse).expect("plan").inserted(0);
        assert!(!only_duplicates.all_failed(), "a duplicate is handled");
        let empty: TestOutcome = plan(&[], &Envelope::default(), parse).expect("plan").inserted(0);
        assert!(empty.into_response(failing).is_ok(), "an empty batch did not fail");
    }

    /// With the `tracing` feature: a line per failed record with its code and `messageId`, and
    /// one summary line, never a body.
    #[cfg(feature = "tracing")]
    #[test]
    fn tracing_names_each_failure_by_code_and_id_and_sums_up_the_batch() {
        use std::io::Write;
        use std::sync::{Arc, Mutex};

        #[derive(Clone, Default)]
        struct Lines(Arc<Mutex<Vec<u8>>>);
        impl Write for Lines {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("not poisoned").extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber =
            tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).without_time().finish();
        tracing::subscriber::with_default(subscriber, || {
            let records = [message("a", "1"), message("b", "secret-body"), message("c\nx", "3")];
            let _: TestOutcome = plan(&records, &Envelope::default(), parse).expect("plan").inserted(1);
        });
        let text = String::from_utf8(lines.0.lock().expect("not poisoned").clone()).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].contains("message_id=b") && lines[0].contains("code=malformed_body"), "{text}");
        assert!(lines[1].contains(r"message_id=c\nx") && lines[1].contains("code=invalid_message_id"), "{text}");
        assert!(lines[2].contains("received=3") && lines[2].contains("succeeded=1") && lines[2].contains("failed=2"));
        assert!(!text.contains("secret-body"), "{text}");
    }

    #[test]
    fn processing_is_send_for_the_multi_threaded_runtime() {
        fn assert_send<T: Send>(_: &T) {}
        let store = MemoryStore::<Number>::new();
        let envelope = Envelope::default();
        let records = [message("a", "1")];
        assert_send(&process(&records, &envelope, parse, &store));
    }
}
