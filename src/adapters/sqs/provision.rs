//! Queue set-up: a queue and its dead-letter queue, as `login-etl-cli setup` (and the
//! LocalStack init hook, which runs it) creates them: encrypted with a KMS key, as the stack's.

use std::collections::HashMap;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::QueueAttributeName;

use super::{Queue, QueueError, sqs_error};

/// How long SQS reuses a data key of the queues' KMS key before asking KMS for a new one: 5
/// minutes, as template.yaml's queues (its comment weighs the cost against the exposure).
pub const KMS_DATA_KEY_REUSE_SECONDS: u32 = 300;

/// Ensures `name` and its dead-letter queue `<name>-dlq` exist with the given redrive and
/// visibility settings (updating them if they differ), both encrypted with `kms_key` (a key
/// id, ARN or alias) when one is given. Returns (queue URL, DLQ URL).
pub async fn ensure_queue_with_dlq(
    client: &Client,
    name: &str,
    visibility_timeout: u32,
    max_receive_count: u32,
    kms_key: Option<&str>,
) -> Result<(String, String), QueueError> {
    let encryption: Vec<(QueueAttributeName, String)> = match kms_key {
        Some(key) => vec![
            (QueueAttributeName::KmsMasterKeyId, key.to_owned()),
            (QueueAttributeName::KmsDataKeyReusePeriodSeconds, KMS_DATA_KEY_REUSE_SECONDS.to_string()),
        ],
        None => Vec::new(),
    };
    let mut dlq_attributes = HashMap::from([(QueueAttributeName::MessageRetentionPeriod, "1209600".to_string())]);
    dlq_attributes.extend(encryption.iter().cloned());
    let dlq_url = ensure_queue(client, &format!("{name}-dlq"), dlq_attributes).await?;
    let dlq = Queue::open(client.clone(), &dlq_url).await?;
    let redrive =
        serde_json::json!({ "deadLetterTargetArn": dlq.arn(), "maxReceiveCount": max_receive_count }).to_string();
    let mut attributes = HashMap::from([
        (QueueAttributeName::VisibilityTimeout, visibility_timeout.to_string()),
        (QueueAttributeName::RedrivePolicy, redrive),
    ]);
    attributes.extend(encryption);
    let url = ensure_queue(client, name, attributes).await?;
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
