//! The SQS adapter for running outside Lambda: a local event source mapping.
//!
//! [`drain`] does what Lambda's event source mapping does for the function: receive up to 10
//! messages, hand them to the same [`Handler`] as the same `SqsEvent` shape, delete only what
//! succeeded, and leave failures to the queue's visibility timeout and redrive policy.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lambda_events::encodings::Base64Data;
use aws_lambda_events::sqs::{SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};

use crate::batch::{BatchOutcome, ORIGINAL_MESSAGE_ID_ATTRIBUTE, ORIGINAL_SENT_TIMESTAMP_ATTRIBUTE};
use crate::handler::Handler;

/// SQS's limit for ReceiveMessage, SendMessageBatch and DeleteMessageBatch.
pub const SQS_BATCH: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("SQS {operation} failed")]
    Sqs {
        operation: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("SQS {operation} kept failing for {seconds} s; giving up")]
    Unreachable {
        operation: &'static str,
        seconds: u64,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("SQS {operation} returned no {field}")]
    Incomplete { operation: &'static str, field: &'static str },
    #[error("the handler refused a whole batch")]
    Event(#[from] crate::batch::EventError),
}

fn sqs_error<E: std::error::Error + Send + Sync + 'static>(
    operation: &'static str,
) -> impl FnOnce(aws_sdk_sqs::error::SdkError<E>) -> QueueError {
    move |err| QueueError::Sqs { operation, source: aws_sdk_sqs::error::DisplayErrorContext(err).to_string().into() }
}

/// An SQS queue and what a Lambda record needs to know about it.
#[derive(Debug, Clone)]
pub struct Queue {
    client: Client,
    url: String,
    arn: String,
    region: String,
    has_redrive_policy: bool,
}

/// How many messages the queue holds, by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepth {
    pub visible: u64,
    /// Received and not yet deleted: being processed, or failed and waiting for the
    /// visibility timeout to make them visible again.
    pub in_flight: u64,
    pub delayed: u64,
}

impl QueueDepth {
    pub fn total(&self) -> u64 {
        self.visible + self.in_flight + self.delayed
    }
}

impl Queue {
    /// Looks the queue up (its ARN and redrive policy) so records can name their source.
    pub async fn open(client: Client, url: &str) -> Result<Queue, QueueError> {
        let attributes = client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(sqs_error("GetQueueAttributes"))?
            .attributes
            .unwrap_or_default();
        let arn = attributes
            .get(&QueueAttributeName::QueueArn)
            .cloned()
            .ok_or(QueueError::Incomplete { operation: "GetQueueAttributes", field: "QueueArn" })?;
        // arn:aws:sqs:<region>:<account>:<name>
        let region = arn.split(':').nth(3).unwrap_or("us-east-1").to_owned();
        let has_redrive_policy = attributes.contains_key(&QueueAttributeName::RedrivePolicy);
        Ok(Queue { client, url: url.to_owned(), arn, region, has_redrive_policy })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn arn(&self) -> &str {
        &self.arn
    }

    pub fn has_redrive_policy(&self) -> bool {
        self.has_redrive_policy
    }

    pub async fn depth(&self) -> Result<QueueDepth, QueueError> {
        let attributes = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(sqs_error("GetQueueAttributes"))?
            .attributes
            .unwrap_or_default();
        let count = |name: QueueAttributeName| attributes.get(&name).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(QueueDepth {
            visible: count(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: count(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        })
    }

    /// Receives up to 10 messages with every attribute, as Lambda's poller does.
    pub async fn receive(&self, wait_seconds: i32) -> Result<Vec<Message>, QueueError> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(SQS_BATCH as i32)
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(sqs_error("ReceiveMessage"))?;
        Ok(output.messages.unwrap_or_default())
    }

    /// Deletes messages by receipt handle, 10 per call; returns how many SQS confirmed.
    pub async fn delete(&self, receipts: &[(String, String)]) -> Result<usize, QueueError> {
        let mut deleted = 0;
        for chunk in receipts.chunks(SQS_BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, (_, handle))| {
                    DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(handle).build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| QueueError::Sqs { operation: "DeleteMessageBatch", source: Box::new(err) })?;
            let output = self
                .client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(sqs_error("DeleteMessageBatch"))?;
            for failed in &output.failed {
                // The message will come back after its visibility timeout and be deduplicated
                // by its messageId, so this costs a redelivery, not a duplicate row.
                tracing::warn!(code = %failed.code, "DeleteMessageBatch entry failed; the message will be redelivered");
            }
            deleted += output.successful.len();
        }
        Ok(deleted)
    }

    /// Sends bodies with SendMessageBatch, 10 per call; returns the new messages' ids in order.
    pub async fn send(&self, bodies: &[String]) -> Result<Vec<String>, QueueError> {
        let mut ids = Vec::with_capacity(bodies.len());
        for chunk in bodies.chunks(SQS_BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, body)| SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(body).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| QueueError::Sqs { operation: "SendMessageBatch", source: Box::new(err) })?;
            let output = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(sqs_error("SendMessageBatch"))?;
            if let Some(failed) = output.failed.first() {
                return Err(QueueError::Sqs {
                    operation: "SendMessageBatch",
                    source: format!("entry rejected: {}", failed.code).into(),
                });
            }
            let mut sent: Vec<_> = output.successful.into_iter().collect();
            sent.sort_by_key(|entry| entry.id.parse::<usize>().unwrap_or(usize::MAX));
            ids.extend(sent.into_iter().map(|entry| entry.message_id));
        }
        Ok(ids)
    }

    /// The record Lambda's event source mapping would build from this message.
    pub fn to_lambda_record(&self, message: Message) -> SqsMessage {
        let mut record = SqsMessage::default();
        record.message_id = message.message_id;
        record.receipt_handle = message.receipt_handle;
        record.body = message.body;
        record.md5_of_body = message.md5_of_body;
        record.md5_of_message_attributes = message.md5_of_message_attributes;
        record.attributes = message
            .attributes
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| (name.as_str().to_owned(), value))
            .collect();
        record.message_attributes = message
            .message_attributes
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| {
                let mut attribute = SqsMessageAttribute::default();
                attribute.data_type = Some(value.data_type);
                attribute.string_value = value.string_value;
                attribute.binary_value = value.binary_value.map(|blob| {
                    let mut data = Base64Data::default();
                    *data = blob.into_inner();
                    data
                });
                (name, attribute)
            })
            .collect();
        record.event_source = Some("aws:sqs".into());
        record.event_source_arn = Some(self.arn.clone());
        record.aws_region = Some(self.region.clone());
        record
    }
}

/// How a drain behaves.
#[derive(Debug, Clone)]
pub struct DrainOptions {
    /// Pollers running at once, each with its own batch in flight.
    pub concurrency: usize,
    /// ReceiveMessage long-poll wait.
    pub wait_seconds: i32,
    /// Keep polling after the queue is empty (Ctrl-C stops).
    pub follow: bool,
    /// How often the drain reports [`DrainProgress`] to its caller's callback
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
    pub failed_by_reason: BTreeMap<String, u64>,
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
    failed_by_reason: BTreeMap<String, u64>,
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
                        failed: t.failed_by_reason.values().sum(),
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
        failed_by_reason: totals.failed_by_reason.clone(),
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

/// Runs `call` until it succeeds or SQS has been failing for `budget`, waiting 0.5 s, 1 s,
/// 2 s … (at most 8 s) between tries: a LocalStack restart or a network blip is ridden out,
/// a queue that stays unreachable ends the drain with SQS's error.
async fn retrying<T, F, Fut>(budget: Duration, mut call: F) -> Result<T, QueueError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, QueueError>>,
{
    let started = Instant::now();
    let mut pause = Duration::from_millis(500);
    loop {
        match call().await {
            Err(err @ QueueError::Sqs { .. }) if started.elapsed() + pause <= budget => {
                tracing::warn!(error = %format!("{:#}", anyhow::Error::from(err)), retry_in_ms = pause.as_millis() as u64, "SQS call failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(8));
            }
            Err(QueueError::Sqs { operation, source }) if started.elapsed() >= Duration::from_secs(1) => {
                return Err(QueueError::Unreachable { operation, seconds: started.elapsed().as_secs(), source });
            }
            result => return result,
        }
    }
}

/// Handles one received batch and deletes what succeeded.
async fn settle(
    queue: &Queue,
    handler: &Handler,
    messages: Vec<Message>,
    totals: &Mutex<Totals>,
    sqs_retry: Duration,
) -> Result<(), QueueError> {
    let records: Vec<SqsMessage> = messages.into_iter().map(|message| queue.to_lambda_record(message)).collect();
    let outcome: BatchOutcome = handler.handle(&records).await?;
    let failed: HashSet<&str> = outcome.failed.iter().map(|f| f.message_id.as_str()).collect();
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
    totals.received += outcome.received as u64;
    totals.inserted += outcome.inserted;
    totals.duplicates += outcome.duplicates;
    totals.deleted += deleted as u64;
    for (reason, count) in outcome.failures_by_reason() {
        *totals.failed_by_reason.entry(reason).or_insert(0) += count as u64;
    }
    for (id, _) in &receipts {
        totals.failing.remove(id);
    }
    for failure in &outcome.failed {
        totals.failing.insert(failure.message_id.clone());
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

/// Moves every message of `dlq` back to `target`, keeping its identity: the first delivery's
/// `messageId` and `SentTimestamp` travel as the message attributes
/// [`ORIGINAL_MESSAGE_ID_ATTRIBUTE`] and [`ORIGINAL_SENT_TIMESTAMP_ATTRIBUTE`] (kept as they are
/// when a message is redriven again), which the handler prefers over SQS's new id, so a
/// message that was loaded before it was dead-lettered counts as a duplicate, not a second row.
/// Other message attributes (a producer's `IdempotencyKey`) are copied. A message is deleted
/// from the DLQ only after SQS accepted its copy. Returns how many moved.
///
/// AWS's own redrive (`StartMessageMoveTask`, the console's "Start DLQ redrive") gives moved
/// messages new ids and no such attributes: only messages that carry an `IdempotencyKey` stay
/// idempotent through it.
pub async fn redrive(dlq: &Queue, target: &Queue) -> Result<u64, QueueError> {
    let mut moved = 0u64;
    loop {
        let messages = dlq.receive(1).await?;
        if messages.is_empty() {
            if dlq.depth().await?.total() == 0 {
                return Ok(moved);
            }
            continue;
        }
        let mut entries = Vec::with_capacity(messages.len());
        let mut receipts = HashMap::new();
        for (i, message) in messages.into_iter().enumerate() {
            let id = i.to_string();
            let mut attributes = message.message_attributes.clone().unwrap_or_default();
            let system = message.attributes.clone().unwrap_or_default();
            let string = |value: &str| {
                aws_sdk_sqs::types::MessageAttributeValue::builder().data_type("String").string_value(value).build()
            };
            if let (false, Some(first_id)) =
                (attributes.contains_key(ORIGINAL_MESSAGE_ID_ATTRIBUTE), message.message_id.as_deref())
            {
                attributes.insert(ORIGINAL_MESSAGE_ID_ATTRIBUTE.into(), string(first_id).map_err(redrive_error)?);
            }
            if let (false, Some(sent)) = (
                attributes.contains_key(ORIGINAL_SENT_TIMESTAMP_ATTRIBUTE),
                system.get(&MessageSystemAttributeName::SentTimestamp),
            ) {
                attributes.insert(ORIGINAL_SENT_TIMESTAMP_ATTRIBUTE.into(), string(sent).map_err(redrive_error)?);
            }
            let entry = SendMessageBatchRequestEntry::builder()
                .id(&id)
                .message_body(message.body.unwrap_or_default())
                .set_message_attributes(Some(attributes))
                .build()
                .map_err(redrive_error)?;
            if let Some(handle) = message.receipt_handle {
                receipts.insert(id, (message.message_id.unwrap_or_default(), handle));
            }
            entries.push(entry);
        }
        let output = target
            .client
            .send_message_batch()
            .queue_url(&target.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(sqs_error("SendMessageBatch"))?;
        for failed in &output.failed {
            tracing::warn!(code = %failed.code, "a dead letter was not accepted by the target queue; it stays in the DLQ");
        }
        let sent: Vec<(String, String)> =
            output.successful.iter().filter_map(|entry| receipts.get(&entry.id).cloned()).collect();
        moved += dlq.delete(&sent).await? as u64;
    }
}

fn redrive_error(err: impl std::error::Error + Send + Sync + 'static) -> QueueError {
    QueueError::Sqs { operation: "SendMessageBatch", source: Box::new(err) }
}

/// Ensures `name` and its dead-letter queue `<name>-dlq` exist with the given redrive and
/// visibility settings (updating them if they differ). Returns (queue URL, DLQ URL).
pub async fn ensure_queue_with_dlq(
    client: &Client,
    name: &str,
    visibility_timeout: u32,
    max_receive_count: u32,
) -> Result<(String, String), QueueError> {
    let dlq_url = ensure_queue(
        client,
        &format!("{name}-dlq"),
        HashMap::from([(QueueAttributeName::MessageRetentionPeriod, "1209600".to_string())]),
    )
    .await?;
    let dlq = Queue::open(client.clone(), &dlq_url).await?;
    let redrive =
        serde_json::json!({ "deadLetterTargetArn": dlq.arn(), "maxReceiveCount": max_receive_count }).to_string();
    let url = ensure_queue(
        client,
        name,
        HashMap::from([
            (QueueAttributeName::VisibilityTimeout, visibility_timeout.to_string()),
            (QueueAttributeName::RedrivePolicy, redrive),
        ]),
    )
    .await?;
    Ok((url, dlq_url))
}

async fn ensure_queue(
    client: &Client,
    name: &str,
    attributes: HashMap<QueueAttributeName, String>,
) -> Result<String, QueueError> {
    let url = match client.get_queue_url().queue_name(name).send().await {
        Ok(found) => found.queue_url.ok_or(QueueError::Incomplete { operation: "GetQueueUrl", field: "QueueUrl" })?,
        Err(_) => client
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .map_err(sqs_error("CreateQueue"))?
            .queue_url
            .ok_or(QueueError::Incomplete { operation: "CreateQueue", field: "QueueUrl" })?,
    };
    client
        .set_queue_attributes()
        .queue_url(&url)
        .set_attributes(Some(attributes))
        .send()
        .await
        .map_err(sqs_error("SetQueueAttributes"))?;
    Ok(url)
}
