//! Queue set-up: a queue and its dead-letter queue, as `login-etl-cli setup` (and the
//! LocalStack init hook, which runs it) creates them.

use std::collections::HashMap;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::QueueAttributeName;

use super::{Queue, QueueError, sqs_error};

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
