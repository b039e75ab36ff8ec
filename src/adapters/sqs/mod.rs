//! The SQS client for running outside Lambda: a [`Queue`] receives, sends and deletes in
//! batches of 10 and turns a received message into the record Lambda would deliver. The local
//! event source mapping built on it is `drain`; queue set-up is [`provision`],
//! dead-letter redrive is [`redrive`](redrive::redrive).

mod provision;
mod redrive;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_lambda_events::encodings::Base64Data;
use aws_lambda_events::sqs::{SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};

pub use provision::ensure_queue_with_dlq;
pub use redrive::redrive;

/// SQS's limit for ReceiveMessage, SendMessageBatch and DeleteMessageBatch.
pub const SQS_BATCH: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// SQS refused the call (no such queue, access denied, a bad parameter): trying again
    /// will not help.
    #[error("SQS {operation} was refused: {failure}")]
    Refused { operation: &'static str, failure: crate::adapters::aws::AwsFailure },
    /// No answer, or one that may change (throttling, 5xx): [`retrying`] tries again.
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
    Event(#[from] sqs_batch::EventError),
    #[error(
        "refusing to redrive: {dlq} is not the dead-letter queue of {target} ({target_has}); nothing was moved. \
         Give --dlq-url the dead-letter queue and --queue-url the queue whose redrive policy names it"
    )]
    NotTheDeadLetterQueue { dlq: String, target: String, target_has: String },
}

fn sqs_error<E>(operation: &'static str) -> impl FnOnce(aws_sdk_sqs::error::SdkError<E>) -> QueueError
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |err| {
        let failure = crate::adapters::aws::describe(&err);
        match failure.retryable {
            true => QueueError::Sqs { operation, source: Box::new(failure) },
            false => QueueError::Refused { operation, failure },
        }
    }
}

/// An SQS queue and what a Lambda record needs to know about it.
#[derive(Debug, Clone)]
pub struct Queue {
    client: Client,
    url: String,
    arn: String,
    region: String,
    /// The `deadLetterTargetArn` of the queue's redrive policy: where SQS moves its messages
    /// after `maxReceiveCount` receives.
    dead_letter_target: Option<String>,
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

/// The queue's attributes of `names` (`GetQueueAttributes`); one SQS does not return is absent.
async fn queue_attributes(
    client: &Client,
    url: &str,
    names: impl IntoIterator<Item = QueueAttributeName>,
) -> Result<HashMap<QueueAttributeName, String>, QueueError> {
    let attributes = client
        .get_queue_attributes()
        .queue_url(url)
        .set_attribute_names(Some(names.into_iter().collect()))
        .send()
        .await
        .map_err(sqs_error("GetQueueAttributes"))?
        .attributes;
    Ok(attributes.unwrap_or_default())
}

impl Queue {
    /// Looks the queue up (its ARN and redrive policy) so records can name their source.
    pub async fn open(client: Client, url: &str) -> Result<Queue, QueueError> {
        let attributes =
            queue_attributes(&client, url, [QueueAttributeName::QueueArn, QueueAttributeName::RedrivePolicy]).await?;
        let arn = attributes
            .get(&QueueAttributeName::QueueArn)
            .cloned()
            .ok_or(QueueError::Incomplete { operation: "GetQueueAttributes", field: "QueueArn" })?;
        // arn:aws:sqs:<region>:<account>:<name>
        let region = arn.split(':').nth(3).unwrap_or("us-east-1").to_owned();
        let dead_letter_target = attributes.get(&QueueAttributeName::RedrivePolicy).map(|policy| {
            serde_json::from_str::<serde_json::Value>(policy)
                .ok()
                .and_then(|policy| policy.get("deadLetterTargetArn")?.as_str().map(str::to_owned))
                .unwrap_or_default()
        });
        Ok(Queue { client, url: url.to_owned(), arn, region, dead_letter_target })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn arn(&self) -> &str {
        &self.arn
    }

    pub fn has_redrive_policy(&self) -> bool {
        self.dead_letter_target.is_some()
    }

    /// The ARN of the queue's dead-letter queue, from its redrive policy.
    pub fn dead_letter_target(&self) -> Option<&str> {
        self.dead_letter_target.as_deref().filter(|arn| !arn.is_empty())
    }

    pub async fn depth(&self) -> Result<QueueDepth, QueueError> {
        let attributes = queue_attributes(
            &self.client,
            &self.url,
            [
                QueueAttributeName::ApproximateNumberOfMessages,
                QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                QueueAttributeName::ApproximateNumberOfMessagesDelayed,
            ],
        )
        .await?;
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
            let output = self.send_entries(entries).await?;
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

    /// One SendMessageBatch call (at most 10 entries); the caller decides what a rejected
    /// entry means.
    async fn send_entries(
        &self,
        entries: Vec<SendMessageBatchRequestEntry>,
    ) -> Result<aws_sdk_sqs::operation::send_message_batch::SendMessageBatchOutput, QueueError> {
        self.client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(sqs_error("SendMessageBatch"))
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

/// Runs `call` until it succeeds or SQS has been failing for `budget`, waiting 0.5 s, 1 s,
/// 2 s … (at most 8 s, and never past the budget) between tries, with a last try when the
/// budget is spent: a LocalStack restart or a network blip is ridden out, a queue that stays
/// unreachable ends the drain with SQS's error after the whole budget. A refusal
/// ([`QueueError::Refused`]: no such queue, access denied) is not retried.
pub async fn retrying<T, F, Fut>(budget: Duration, mut call: F) -> Result<T, QueueError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, QueueError>>,
{
    let started = Instant::now();
    let mut pause = Duration::from_millis(500);
    loop {
        match call().await {
            Err(err @ QueueError::Sqs { .. }) if started.elapsed() < budget => {
                let wait = pause.min(budget.saturating_sub(started.elapsed()));
                tracing::warn!(error = %crate::errors::error_chain(&err), retry_in_ms = wait.as_millis() as u64, "SQS call failed; retrying");
                tokio::time::sleep(wait).await;
                pause = (pause * 2).min(Duration::from_secs(8));
            }
            Err(QueueError::Sqs { operation, source }) if started.elapsed() >= Duration::from_secs(1) => {
                return Err(QueueError::Unreachable { operation, seconds: started.elapsed().as_secs(), source });
            }
            result => return result,
        }
    }
}
