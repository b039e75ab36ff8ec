//! Dead letters back to their queue, keeping their identity.

use std::collections::HashMap;

use aws_sdk_sqs::types::{MessageSystemAttributeName, SendMessageBatchRequestEntry};

use super::{Queue, QueueError};
use login_etl_core::batch::{ORIGINAL_MESSAGE_ID_ATTRIBUTE, ORIGINAL_SENT_TIMESTAMP_ATTRIBUTE};

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
///
/// Refuses ([`QueueError::NotTheDeadLetterQueue`]) before receiving anything unless `target`'s
/// redrive policy names `dlq` as its dead-letter target: swapped arguments would otherwise
/// move live messages into the DLQ.
pub async fn redrive(dlq: &Queue, target: &Queue) -> Result<u64, QueueError> {
    if target.dead_letter_target() != Some(dlq.arn()) {
        let target_has = match target.dead_letter_target() {
            Some(arn) => format!("its redrive policy names {arn}"),
            None => "it has no redrive policy".to_owned(),
        };
        return Err(QueueError::NotTheDeadLetterQueue {
            dlq: dlq.url().to_owned(),
            target: target.url().to_owned(),
            target_has,
        });
    }
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
        let output = target.send_entries(entries).await?;
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
