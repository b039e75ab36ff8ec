//! The local event source mapping: [`drain`] does for `login-etl-cli drain` what Lambda's
//! event source mapping does for the function — receive up to 10 messages, hand them to the
//! same [`Handler`] as the same `SqsEvent` shape, delete only what succeeded, and leave
//! failures to the queue's visibility timeout and redrive policy. Progress goes to a callback;
//! this module prints nothing.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::SqsMessage;
use aws_sdk_sqs::types::Message;

use crate::adapters::sqs::{Queue, QueueError, retrying};
use crate::handler::Handler;
use login_etl_core::batch::BatchOutcome;
use login_etl_core::message::UnknownKeys;

/// How a drain behaves.
#[derive(Debug, Clone)]
pub struct DrainOptions {
    /// Pollers running at once, each with its own batch in flight.
    pub concurrency: usize,
    /// ReceiveMessage long-poll wait.
    pub wait_seconds: i32,
    /// Keep polling after the queue is empty (Ctrl-C stops).
    pub follow: bool,
    /// How often the drain reports `DrainProgress` to its caller's callback
    /// ([`drain_until`]); `None`, never.
    pub progress_every: Option<Duration>,
    /// How long SQS may stay unreachable (refused connections, throttling, 5xx) before the
    /// drain gives up; calls are retried with backoff meanwhile.
    pub sqs_retry: Duration,
}

impl Default for DrainOptions {
    fn default() -> Self {
        DrainOptions {
            concurrency: 1,
            wait_seconds: 1,
            follow: false,
            progress_every: None,
            sqs_retry: Duration::from_secs(60),
        }
    }
}

/// Why a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainEnd {
    /// No message left, visible or in flight.
    Empty,
    /// The queue has no redrive policy and only messages that keep failing are left; they
    /// would be retried forever.
    OnlyFailingMessagesLeft { messages: u64 },
    /// Asked to stop ([`drain_until`]): the batches in hand were finished and deleted first;
    /// messages received in the last poll return after their visibility timeout.
    Stopped,
}

/// What a drain did, summed over every batch.
#[derive(Debug, Clone, PartialEq)]
pub struct DrainReport {
    /// Deliveries handled, redeliveries of failed messages included.
    pub received: u64,
    pub inserted: u64,
    pub duplicates: u64,
    pub deleted: u64,
    /// Failed deliveries by reason code (`failed_by_reason` in `drain --json`): a message that
    /// fails on each of its receives counts once per receive (`maxReceiveCount` times before SQS
    /// dead-letters it).
    pub failures_by_code: BTreeMap<String, u64>,
    /// Distinct messages that failed at least once, by the reason code of their latest failure
    /// (`failed_messages_by_reason` in `drain --json`).
    pub failed_messages_by_code: BTreeMap<String, u64>,
    /// Valid deliveries that carried keys the function does not know (`UnknownFieldRecords`
    /// summed), and those keys' names, bounded as a batch's are.
    pub unknown_field_records: u64,
    pub unknown_keys: UnknownKeys,
    pub elapsed: Duration,
    pub end: DrainEnd,
}

impl DrainReport {
    /// Deliveries handled per second.
    pub fn messages_per_second(&self) -> f64 {
        self.received as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

#[derive(Default)]
struct Totals {
    received: u64,
    inserted: u64,
    duplicates: u64,
    deleted: u64,
    failures_by_code: BTreeMap<String, u64>,
    unknown_field_records: u64,
    unknown_keys: UnknownKeys,
    /// The reason of each message's latest failure, by message id.
    failure_of: BTreeMap<String, String>,
    /// Message ids whose latest delivery failed and which were not deleted since.
    failing: HashSet<String>,
    /// Batches received and not yet settled (handled and deleted) by some poller. Messages
    /// between receipt and this count show as in flight in the queue's depth.
    batches_in_hand: usize,
    end: Option<DrainEnd>,
}

/// The running totals of a drain, as reported to a progress callback.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DrainProgress {
    pub received: u64,
    pub inserted: u64,
    pub failed: u64,
    pub elapsed: Duration,
}

impl DrainProgress {
    /// Deliveries handled per second so far.
    pub fn messages_per_second(&self) -> f64 {
        self.received as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Drains the queue with `options.concurrency` pollers calling `handler`.
pub async fn drain(queue: &Queue, handler: &Handler, options: &DrainOptions) -> Result<DrainReport, QueueError> {
    drain_until(queue, handler, options, std::future::pending(), |_| {}).await
}

/// [`drain`] that also ends when `stop` completes (a signal, for `drain --follow`): pollers
/// stop receiving, finish and delete the batch they hold, and the report ends
/// [`DrainEnd::Stopped`]. Nothing is lost: an abandoned long poll's messages return to the
/// queue after their visibility timeout. Every `options.progress_every`, `on_progress` gets
/// the running totals (the CLI draws its progress line with it; library code prints nothing).
pub async fn drain_until(
    queue: &Queue,
    handler: &Handler,
    options: &DrainOptions,
    stop: impl std::future::Future<Output = ()>,
    mut on_progress: impl FnMut(&DrainProgress),
) -> Result<DrainReport, QueueError> {
    let started = Instant::now();
    let totals = Mutex::new(Totals::default());

    let (stop_sender, stop_receiver) = tokio::sync::watch::channel(false);
    let pollers =
        (0..options.concurrency.max(1)).map(|_| poll(queue, handler, options, &totals, stop_receiver.clone()));
    let pollers = futures::future::try_join_all(pollers);
    let mut tick = tokio::time::interval(options.progress_every.unwrap_or(Duration::from_secs(3600)));
    tokio::pin!(pollers, stop);
    let mut stopping = false;
    let result = loop {
        tokio::select! {
            result = &mut pollers => break result,
            () = &mut stop, if !stopping => {
                stopping = true;
                lock(&totals).end.get_or_insert(DrainEnd::Stopped);
                let _ = stop_sender.send(true);
            }
            _ = tick.tick(), if options.progress_every.is_some() => {
                let progress = {
                    let t = lock(&totals);
                    DrainProgress {
                        received: t.received,
                        inserted: t.inserted,
                        failed: t.failures_by_code.values().sum(),
                        elapsed: started.elapsed(),
                    }
                };
                on_progress(&progress);
            }
        }
    };
    result?;

    let totals = lock(&totals);
    Ok(DrainReport {
        received: totals.received,
        inserted: totals.inserted,
        duplicates: totals.duplicates,
        deleted: totals.deleted,
        failures_by_code: totals.failures_by_code.clone(),
        failed_messages_by_code: totals.failure_of.values().fold(BTreeMap::new(), |mut counts, reason| {
            *counts.entry(reason.clone()).or_insert(0) += 1;
            counts
        }),
        unknown_field_records: totals.unknown_field_records,
        unknown_keys: totals.unknown_keys.clone(),
        elapsed: started.elapsed(),
        end: totals.end.unwrap_or(DrainEnd::Empty),
    })
}

fn lock(totals: &Mutex<Totals>) -> std::sync::MutexGuard<'_, Totals> {
    // A poisoned lock only means another poller panicked mid-update; the counts stay usable.
    totals.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn poll(
    queue: &Queue,
    handler: &Handler,
    options: &DrainOptions,
    totals: &Mutex<Totals>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), QueueError> {
    loop {
        if lock(totals).end.is_some() || *stop.borrow() {
            return Ok(());
        }
        let messages = tokio::select! {
            messages = retrying(options.sqs_retry, || queue.receive(options.wait_seconds)) => messages?,
            _ = stop.changed() => return Ok(()),
        };
        if messages.is_empty() {
            if !options.follow {
                retrying(options.sqs_retry, || check_finished(queue, totals)).await?;
            }
            if options.wait_seconds == 0 {
                // Without a long poll an empty queue answers at once: pause instead of spinning.
                tokio::time::sleep(EMPTY_POLL_PAUSE).await;
            }
            continue;
        }
        lock(totals).batches_in_hand += 1;
        let settled = settle(queue, handler, messages, totals, options.sqs_retry).await;
        lock(totals).batches_in_hand -= 1;
        settled?;
    }
}

/// The pause after an empty receive when the drain does not long-poll (`--wait-seconds 0`).
const EMPTY_POLL_PAUSE: Duration = Duration::from_millis(500);

/// Handles one received batch and deletes what succeeded.
async fn settle(
    queue: &Queue,
    handler: &Handler,
    messages: Vec<Message>,
    totals: &Mutex<Totals>,
    sqs_retry: Duration,
) -> Result<(), QueueError> {
    let records: Vec<SqsMessage> = messages.into_iter().map(|message| queue.to_lambda_record(message)).collect();
    let BatchOutcome { records: outcome, unknown_keys } = handler.handle(&records).await?;
    let failed: HashSet<&str> = outcome.failed().iter().map(|f| f.message_id()).collect();
    let receipts: Vec<(String, String)> = records
        .iter()
        .filter_map(|record| {
            let id = record.message_id.as_deref()?;
            let handle = record.receipt_handle.as_deref()?;
            (!failed.contains(id)).then(|| (id.to_owned(), handle.to_owned()))
        })
        .collect();
    let deleted = retrying(sqs_retry, || queue.delete(&receipts)).await?;

    let mut totals = lock(totals);
    totals.received += outcome.received() as u64;
    totals.inserted += outcome.succeeded() as u64;
    totals.duplicates += outcome.duplicates() as u64;
    totals.unknown_field_records += unknown_keys.records as u64;
    totals.unknown_keys.merge(&unknown_keys.keys);
    totals.deleted += deleted as u64;
    for (code, count) in outcome.failures_by_code() {
        *totals.failures_by_code.entry(code.into_owned()).or_insert(0) += count as u64;
    }
    for (id, _) in &receipts {
        totals.failing.remove(id);
    }
    for failure in outcome.failed() {
        totals.failing.insert(failure.message_id().to_owned());
        totals.failure_of.insert(failure.message_id().to_owned(), failure.reason().code().into_owned());
    }
    Ok(())
}

/// After an empty receive: is the drain over?
async fn check_finished(queue: &Queue, totals: &Mutex<Totals>) -> Result<(), QueueError> {
    let depth = queue.depth().await?;
    let mut totals = lock(totals);
    if depth.total() == 0 && totals.batches_in_hand == 0 {
        totals.end.get_or_insert(DrainEnd::Empty);
    } else if !queue.has_redrive_policy()
        && depth.visible == 0
        && depth.delayed == 0
        && totals.batches_in_hand == 0
        && depth.in_flight <= totals.failing.len() as u64
    {
        totals.end.get_or_insert(DrainEnd::OnlyFailingMessagesLeft { messages: depth.in_flight });
    }
    Ok(())
}
