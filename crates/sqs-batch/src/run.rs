//! The per-record path: a handler called once per accepted message, with bounded concurrency,
//! FIFO order, caught panics and a deadline.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::SqsMessage;
use futures_util::FutureExt;
use futures_util::future::join_all;
use serde::de::DeserializeOwned;

use crate::delivery::delivery_accessors;
use crate::envelope::{Envelope, FifoPolicy};
use crate::failure::{EventError, Failed, FailureReason, Rejection};
use crate::json::{MalformedJson, json};
use crate::outcome::Outcome;
use crate::plan::{Accepted, Plan, plan};

/// How many records run at once by default: Lambda's default SQS batch size, so a default
/// batch runs whole, and a large one does not open thousands of connections at once.
pub const DEFAULT_CONCURRENCY: usize = 10;

/// How long before Lambda's deadline no record is started, by default. A record started
/// after it might not finish, and then the whole response would be lost.
pub const DEFAULT_DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// One accepted message, as the per-record handler gets it: the message itself (owned, so the
/// handler's future borrows nothing of the event) and what the envelope read from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    message: SqsMessage,
    accepted: Accepted<()>,
}

impl Record {
    /// The SQS message.
    pub fn message(&self) -> &SqsMessage {
        &self.message
    }

    /// The SQS message, by value.
    pub fn into_message(self) -> SqsMessage {
        self.message
    }

    /// The message's body (absent only in hand-made events).
    pub fn body(&self) -> Option<&str> {
        self.message.body.as_deref()
    }

    /// The body as JSON ([`json`](crate::json)): fails `malformed_json`.
    ///
    /// # Errors
    ///
    /// [`MalformedJson`] when the body is absent or is not a `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, MalformedJson> {
        json(&self.message)
    }

    /// The key to deduplicate side effects on (see [`Accepted::identity`]).
    pub fn identity(&self) -> &str {
        self.accepted.identity()
    }

    /// The sent time, epoch milliseconds (see [`Accepted::sent_at_ms`]).
    pub fn sent_at_ms(&self) -> Option<i64> {
        self.accepted.sent_at_ms()
    }

    /// The FIFO message group, on a FIFO queue.
    pub fn group(&self) -> Option<&str> {
        self.accepted.group()
    }

    delivery_accessors!(accepted.delivery);
}

/// The per-record path's settings: the [`Envelope`], how many records run at once, and how long
/// before Lambda's deadline no record is started. Built once per instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processor {
    envelope: Envelope,
    concurrency: usize,
    deadline_margin: Duration,
}

impl Default for Processor {
    fn default() -> Self {
        Processor::new(Envelope::default())
    }
}

impl Processor {
    /// [`DEFAULT_CONCURRENCY`] records at once and [`DEFAULT_DEADLINE_MARGIN`], with `envelope`.
    pub fn new(envelope: Envelope) -> Self {
        Processor { envelope, concurrency: DEFAULT_CONCURRENCY, deadline_margin: DEFAULT_DEADLINE_MARGIN }
    }

    /// At most `concurrency` records in flight (at least 1). On a FIFO queue each group runs
    /// one record at a time, in order, and counts once.
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// No record starts later than `margin` before the deadline. Make it longer than a record's
    /// longest run: records already running are awaited, not cancelled.
    pub fn with_deadline_margin(mut self, margin: Duration) -> Self {
        self.deadline_margin = margin;
        self
    }

    /// The envelope rules.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The concurrency bound.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// The deadline margin.
    pub fn deadline_margin(&self) -> Duration {
        self.deadline_margin
    }

    /// Runs `handler` once per message that passes the envelope rules and accounts for every
    /// record.
    ///
    /// - A standard queue's records run up to [`concurrency`](Processor::with_concurrency) at
    ///   once; a FIFO queue's groups run side by side, each in order, and a failure fails the
    ///   rest of its group (`fifo_group_blocked`), or of the batch with
    ///   [`FifoPolicy::StopBatch`] (`fifo_batch_stopped`).
    /// - A handler that panics fails its own record only (`handler_panicked`).
    /// - Records not started when `deadline` less the margin has come fail retryably
    ///   (`deadline_reached`), so the response is sent in time. `None`: no deadline.
    /// - The envelope's failures (ids, identities, repeated ids) come first, as in
    ///   [`plan`](crate::plan()); the handler never sees such a message.
    ///
    /// All of it runs in the caller's task (no spawn), so the handler's future need not be
    /// `'static`; to use more cores, spawn inside the handler.
    ///
    /// # Errors
    ///
    /// [`EventError`] when the event cannot be answered record by record (before any handler
    /// call).
    pub async fn run<E, F, Fut>(
        &self,
        records: Vec<SqsMessage>,
        deadline: Option<Instant>,
        handler: F,
    ) -> Result<Outcome<E, Infallible>, EventError>
    where
        E: Rejection,
        F: Fn(Record) -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        let Plan { received, accepted, rejected, copies_skipped, fifo } =
            plan(&records, &self.envelope, |_| Ok::<(), E>(()))?;
        let cutoff = deadline.map(|deadline| deadline.checked_sub(self.deadline_margin).unwrap_or(deadline));
        let mut messages: Vec<Option<SqsMessage>> = records.into_iter().map(Some).collect();
        let lanes = lanes(&accepted, fifo, self.envelope.fifo_policy());
        let stop_batch = self.envelope.fifo_policy() == FifoPolicy::StopBatch;
        let handler = &handler;
        let lane_count = lanes.len();
        // Lanes are handed out one at a time to `concurrency` workers, each running its lanes
        // one after the other: a slot is refilled as soon as it frees, in the same poll.
        let pending = Mutex::new(lanes.into_iter().map(|lane| -> Vec<(usize, Record)> {
            lane.into_iter()
                .map(|index| {
                    let accepted = &accepted[index];
                    let message = messages[accepted.position()].take().unwrap_or_default();
                    (index, Record { message, accepted: accepted.clone() })
                })
                .collect()
        }));
        let next_lane = || pending.lock().unwrap_or_else(PoisonError::into_inner).next();
        let workers = (0..self.concurrency.min(lane_count)).map(|_| async {
            let mut fates = Vec::new();
            while let Some(lane) = next_lane() {
                fates.extend(run_lane(lane, cutoff, handler, stop_batch).await);
            }
            fates
        });

        let mut results: Vec<Option<FailureReason<E>>> = Vec::with_capacity(accepted.len());
        results.resize_with(accepted.len(), || None);
        let mut succeeded = 0;
        for (index, fate) in join_all(workers).await.into_iter().flatten() {
            match fate {
                Ok(()) => succeeded += 1,
                Err(reason) => results[index] = Some(reason),
            }
        }
        let mut failed = rejected;
        for (accepted, reason) in accepted.into_iter().zip(results) {
            if let Some(reason) = reason {
                failed.push(Failed::of_accepted(accepted, reason));
            }
        }
        failed.sort_by_key(Failed::position);
        Ok(Outcome::new(received, succeeded, copies_skipped, failed).traced())
    }
}

/// The accepted records (by index) in lanes: each lane runs one record at a time, in order.
/// A standard queue: a lane per record. A FIFO queue: a lane per group, or one for the batch.
fn lanes(accepted: &[Accepted<()>], fifo: bool, policy: FifoPolicy) -> Vec<Vec<usize>> {
    if fifo && policy == FifoPolicy::StopBatch {
        return vec![(0..accepted.len()).collect()];
    }
    let mut lanes: Vec<Vec<usize>> = Vec::with_capacity(accepted.len());
    let mut by_group: HashMap<&str, usize> = HashMap::new();
    for (index, record) in accepted.iter().enumerate() {
        match record.group() {
            Some(group) => match by_group.get(group) {
                Some(&lane) => lanes[lane].push(index),
                None => {
                    by_group.insert(group, lanes.len());
                    lanes.push(vec![index]);
                }
            },
            None => lanes.push(vec![index]),
        }
    }
    lanes
}

/// One lane's records in order: each checked against the deadline before it starts, run with
/// its panic caught; after a failure, the rest of the lane fails without running.
async fn run_lane<E, F, Fut>(
    records: Vec<(usize, Record)>,
    cutoff: Option<Instant>,
    handler: &F,
    stop_batch: bool,
) -> Vec<(usize, Result<(), FailureReason<E>>)>
where
    F: Fn(Record) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let mut fates = Vec::with_capacity(records.len());
    let mut blocked = false;
    for (index, record) in records {
        let fate = if blocked {
            Err(if stop_batch { FailureReason::BatchStopped } else { FailureReason::EarlierFailureInGroup })
        } else if cutoff.is_some_and(|cutoff| Instant::now() >= cutoff) {
            // Not the record's failure, so it blocks nothing: the rest of the lane meets the
            // same deadline.
            Err(FailureReason::DeadlineReached)
        } else {
            let fate = call(handler, record).await;
            blocked = fate.is_err();
            fate
        };
        fates.push((index, fate));
    }
    fates
}

/// The handler on one record, a panic (in the call or in its future) failing only that record.
async fn call<E, F, Fut>(handler: &F, record: Record) -> Result<(), FailureReason<E>>
where
    F: Fn(Record) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let future = match std::panic::catch_unwind(AssertUnwindSafe(|| handler(record))) {
        Ok(future) => future,
        Err(_) => return Err(FailureReason::Panicked),
    };
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(result) => result.map_err(FailureReason::Rejected),
        Err(_) => Err(FailureReason::Panicked),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::failure::RecordFailure;
    use crate::testing::{fifo, fifo_batch, message, with_attribute};

    fn codes<S>(outcome: &Outcome<RecordFailure, S>) -> Vec<(String, String)> {
        outcome.failed().iter().map(|f| (f.message_id().to_owned(), f.reason().code().into_owned())).collect()
    }

    /// Fails bodies "bad", panics on "panic", records the order it saw bodies in.
    async fn handle(record: Record, seen: &Mutex<Vec<String>>) -> Result<(), RecordFailure> {
        let body = record.body().unwrap_or_default().to_owned();
        seen.lock().expect("not poisoned").push(body.clone());
        tokio::task::yield_now().await;
        match body.as_str() {
            "bad" => Err(RecordFailure::permanent("bad_body", "a bad body")),
            "panic" => panic!("the handler panicked"),
            _ => Ok(()),
        }
    }

    #[tokio::test]
    async fn every_record_gets_one_fate_and_a_panic_fails_only_its_own() {
        let seen = Mutex::new(Vec::new());
        let records = vec![
            message("a", "1"),
            message("b", "bad"),
            message("c", "panic"),
            message("d", "4"),
            message("e\ne", "5"),
            message("f", "6"),
            message("f", "7"),
        ];
        let outcome = Processor::default().run(records, None, |r| handle(r, &seen)).await.expect("ids present");
        assert_eq!(
            codes(&outcome),
            [
                ("b".into(), "bad_body".into()),
                ("c".into(), "handler_panicked".into()),
                ("e\ne".into(), "invalid_message_id".into()),
                ("f".into(), "repeated_message_id".into()),
            ]
        );
        assert_eq!((outcome.received(), outcome.succeeded(), outcome.duplicates()), (7, 2, 0));
        let mut seen = seen.into_inner().expect("not poisoned");
        seen.sort();
        assert_eq!(seen, ["1", "4", "bad", "panic"], "the envelope's failures never reach the handler");
    }

    #[tokio::test]
    async fn a_missing_message_id_fails_the_event_before_any_call() {
        let calls = AtomicUsize::new(0);
        let mut anonymous = message("x", "1");
        anonymous.message_id = None;
        let result = Processor::default()
            .run(vec![message("a", "1"), anonymous], None, |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Ok::<(), RecordFailure>(()) }
            })
            .await;
        assert_eq!(result.err(), Some(EventError::MissingMessageId { position: 1 }));
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn at_most_concurrency_records_run_at_once() {
        for (concurrency, records) in [(1, 5), (3, 10), (10, 4)] {
            let (now, peak) = (AtomicUsize::new(0), AtomicUsize::new(0));
            let records = (0..records).map(|i| message(&format!("m-{i}"), "1")).collect();
            let processor = Processor::default().with_concurrency(concurrency);
            let outcome = processor
                .run(records, None, |_| async {
                    let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(running, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    Ok::<(), RecordFailure>(())
                })
                .await
                .expect("outcome");
            assert!(outcome.failed().is_empty());
            let expected = concurrency.min(outcome.received());
            assert_eq!(peak.load(Ordering::SeqCst), expected, "concurrency {concurrency}");
        }
    }

    #[tokio::test]
    async fn fifo_groups_run_in_order_and_a_failure_blocks_the_rest_of_its_group() {
        let seen = Mutex::new(Vec::new());
        let records = fifo_batch(&[
            ("g1", "g1-a"),
            ("g2", "g2-a"),
            ("g1", "bad"),
            ("g2", "g2-b"),
            ("g1", "g1-c"),
            ("g2", "g2-c"),
        ]);
        let outcome = Processor::default().run(records, None, |r| handle(r, &seen)).await.expect("outcome");
        assert_eq!(codes(&outcome), [("3".into(), "bad_body".into()), ("5".into(), "fifo_group_blocked".into())]);
        let seen = seen.into_inner().expect("not poisoned");
        let order = |group: &str| seen.iter().filter(|body| body.starts_with(group)).cloned().collect::<Vec<_>>();
        assert_eq!(order("g2"), ["g2-a", "g2-b", "g2-c"], "one group in order");
        assert_eq!(order("g1"), ["g1-a"], "g1-c is never called");
    }

    #[tokio::test]
    async fn stop_batch_fails_every_later_message_of_a_fifo_batch() {
        let seen = Mutex::new(Vec::new());
        let records = fifo_batch(&[("g1", "1"), ("g2", "bad"), ("g1", "3"), ("g3", "4")]);
        let processor = Processor::new(Envelope::default().with_fifo_policy(FifoPolicy::StopBatch));
        let outcome = processor.run(records, None, |r| handle(r, &seen)).await.expect("outcome");
        assert_eq!(
            codes(&outcome),
            [
                ("2".into(), "bad_body".into()),
                ("3".into(), "fifo_batch_stopped".into()),
                ("4".into(), "fifo_batch_stopped".into())
            ]
        );
        assert_eq!(seen.into_inner().expect("not poisoned"), ["1", "bad"]);
    }

    #[tokio::test]
    async fn records_not_started_before_the_deadline_fail_retryably() {
        let records = (0..4).map(|i| message(&format!("m-{i}"), "1")).collect();
        let processor = Processor::default().with_concurrency(1).with_deadline_margin(Duration::from_millis(50));
        // The deadline less the margin comes while the first record runs.
        let deadline = Instant::now() + Duration::from_millis(80);
        let outcome = processor
            .run(records, Some(deadline), |_| async {
                tokio::time::sleep(Duration::from_millis(60)).await;
                Ok::<(), RecordFailure>(())
            })
            .await
            .expect("outcome");
        assert_eq!(outcome.succeeded(), 1);
        assert_eq!(
            codes(&outcome),
            [
                ("m-1".into(), "deadline_reached".into()),
                ("m-2".into(), "deadline_reached".into()),
                ("m-3".into(), "deadline_reached".into())
            ]
        );
        assert!(outcome.failed().iter().all(|f| f.reason().is_retryable()));

        // A deadline already passed: nothing runs, a FIFO group included, and nothing blocks.
        let records = fifo_batch(&[("g", "1"), ("g", "2")]);
        let outcome = processor
            .run(records, Some(Instant::now()), |_| async { Ok::<(), RecordFailure>(()) })
            .await
            .expect("outcome");
        assert_eq!(codes(&outcome), [("1".into(), "deadline_reached".into()), ("2".into(), "deadline_reached".into())]);
    }

    #[tokio::test]
    async fn a_record_carries_its_identity_and_a_failure_its_receipt_handle() {
        let identities = Mutex::new(Vec::new());
        let records = vec![with_attribute(message("m-1", "bad"), "IdempotencyKey", "key-1"), message("m-2", "2")];
        let outcome = Processor::default()
            .run(records, None, |record| {
                identities.lock().expect("not poisoned").push(record.identity().to_owned());
                async move {
                    let _: u32 = record.json()?;
                    Ok::<(), RecordFailure>(())
                }
            })
            .await
            .expect("outcome");
        assert_eq!(codes(&outcome), [("m-1".into(), "malformed_json".into())]);
        assert_eq!(outcome.failed()[0].receipt_handle(), Some("rh-m-1"));
        assert_eq!(identities.into_inner().expect("not poisoned"), ["key-1", "m-2"]);
    }

    #[tokio::test]
    async fn identical_copies_collapse_into_one_call_and_one_duplicate() {
        let calls = AtomicUsize::new(0);
        let records = vec![message("a", "1"), message("a", "1"), message("b", "2")];
        let processor = Processor::new(Envelope::default().with_identical_copies_collapsed(true));
        let outcome = processor
            .run(records, None, |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Ok::<(), RecordFailure>(()) }
            })
            .await
            .expect("outcome");
        assert_eq!((outcome.succeeded(), outcome.duplicates(), calls.load(Ordering::SeqCst)), (2, 1, 2));
    }

    #[tokio::test]
    async fn a_record_holds_its_message_and_what_the_envelope_read() {
        let seen = Mutex::new(Vec::new());
        let first = crate::testing::received(message("m-1", "1"), 3);
        let second = fifo("m-2", "g", "2");
        let expected = [first.clone(), second.clone()];
        let processor = Processor::new(Envelope::default().with_sent_timestamp_required(true));
        let outcome = processor
            .run(vec![first, second], None, |record: Record| {
                let fields = (
                    record.message_id().to_owned(),
                    record.position(),
                    record.receive_count(),
                    record.sent_at_ms(),
                    record.group().map(str::to_owned),
                    record.message() == &expected[record.position()],
                );
                seen.lock().expect("not poisoned").push((fields, record.into_message()));
                async { Ok::<(), RecordFailure>(()) }
            })
            .await
            .expect("outcome");
        assert_eq!(outcome.succeeded(), 2);
        let mut seen = seen.into_inner().expect("not poisoned");
        seen.sort_by_key(|(fields, _)| fields.1);
        let sent = Some(crate::testing::SENT);
        assert_eq!(seen[0].0, ("m-1".to_owned(), 0, 3, sent, None, true));
        assert_eq!(seen[1].0, ("m-2".to_owned(), 1, 1, sent, Some("g".to_owned()), true));
        assert_eq!((&seen[0].1, &seen[1].1), (&expected[0], &expected[1]), "into_message gives it back");
    }

    #[test]
    fn a_processor_keeps_its_settings() {
        let envelope = Envelope::default().with_fifo_policy(FifoPolicy::StopBatch);
        let processor =
            Processor::new(envelope.clone()).with_concurrency(7).with_deadline_margin(Duration::from_millis(1500));
        assert_eq!(processor.envelope(), &envelope);
        assert_eq!(processor.concurrency(), 7);
        assert_eq!(processor.deadline_margin(), Duration::from_millis(1500));
        assert_eq!(Processor::default().with_concurrency(0).concurrency(), 1, "at least one");
        assert_eq!(
            (Processor::default().concurrency(), Processor::default().deadline_margin()),
            (DEFAULT_CONCURRENCY, DEFAULT_DEADLINE_MARGIN)
        );
    }

    #[test]
    fn running_is_send_for_the_multi_threaded_runtime() {
        fn assert_send<T: Send>(_: &T) {}
        let processor = Processor::default();
        assert_send(&processor.run(vec![message("a", "1")], None, |_| async { Ok::<(), RecordFailure>(()) }));
    }
}
