//! `ChangeMessageVisibilityBatch` with [`Backoff`]'s schedule (the `sqs` feature).
//!
//! After a batch whose failures waiting may cure (a store outage), hide each such message for
//! `Backoff::visibility_timeout(receive_count)` instead of the queue's fixed timeout, so an
//! outage does not walk valid messages into the dead-letter queue. Messages that failed their
//! own content should keep the queue's timeout: pick the failures to pass
//! ([`Outcome::store_failures`](crate::Outcome::store_failures) or
//! [`Outcome::retryable_failures`](crate::Outcome::retryable_failures)).

use std::collections::BTreeMap;

use aws_lambda_events::sqs::SqsMessage;
use aws_sdk_sqs::error::SdkError;
use aws_sdk_sqs::operation::change_message_visibility_batch::ChangeMessageVisibilityBatchError;
use aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry;

use crate::backoff::Backoff;
use crate::failure::Failed;

/// SQS's largest batch: `ChangeMessageVisibilityBatch` takes at most 10 entries.
pub const MAX_BATCH_ENTRIES: usize = 10;

/// The queue URL of an `eventSourceARN` (`arn:<partition>:sqs:<region>:<account>:<name>`),
/// at `endpoint` (e.g. LocalStack) or at SQS's regional endpoint.
pub fn queue_url(arn: &str, endpoint: Option<&str>) -> Option<String> {
    let mut parts = arn.split(':');
    let (Some("arn"), Some(_partition), Some("sqs"), Some(region), Some(account), Some(name), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    Some(match endpoint {
        Some(endpoint) => format!("{}/{account}/{name}", endpoint.trim_end_matches('/')),
        None => format!("https://sqs.{region}.amazonaws.com/{account}/{name}"),
    })
}

/// What [`VisibilityBackoff::extend`] did. Failing to change a visibility changes no outcome:
/// the message returns after the queue's own timeout.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct VisibilityChanges {
    /// How many visibilities SQS changed.
    pub changed: usize,
    /// Failures without a receipt handle or a queue (hand-made events): nothing to change.
    pub skipped: usize,
    /// SQS's code for each entry it refused (`ReceiptHandleIsInvalid`, …).
    pub refused: Vec<String>,
    /// Requests that failed whole, each with how many entries it carried.
    pub request_errors: Vec<(usize, SdkError<ChangeMessageVisibilityBatchError>)>,
}

/// Hides failed messages for [`Backoff`]'s delay by their receive count.
#[derive(Debug, Clone)]
pub struct VisibilityBackoff {
    backoff: Backoff,
    endpoint: Option<String>,
}

impl VisibilityBackoff {
    /// With `backoff`'s schedule; queue URLs at SQS's regional endpoints.
    pub fn new(backoff: Backoff) -> Self {
        VisibilityBackoff { backoff, endpoint: None }
    }

    /// Builds queue URLs at `endpoint` (`AWS_ENDPOINT_URL`, LocalStack) instead.
    pub fn with_endpoint(mut self, endpoint: Option<String>) -> Self {
        self.endpoint = endpoint;
        self
    }

    /// The schedule.
    pub fn backoff(&self) -> Backoff {
        self.backoff
    }

    /// Hides each of `failed` (failed from `records`, the event: its `eventSourceARN` names the
    /// queue) for its backoff, in requests of at most [`MAX_BATCH_ENTRIES`] per queue.
    pub async fn extend<'a, E: 'a>(
        &self,
        client: &aws_sdk_sqs::Client,
        records: &[SqsMessage],
        failed: impl IntoIterator<Item = &'a Failed<E>>,
    ) -> VisibilityChanges {
        let mut changes = VisibilityChanges::default();
        // Queue URL -> (receipt handle, seconds), in event order.
        let mut per_queue: BTreeMap<String, Vec<(&'a str, i32)>> = BTreeMap::new();
        for failure in failed {
            let arn = records.get(failure.position()).and_then(|record| record.event_source_arn.as_deref());
            let url = arn.and_then(|arn| queue_url(arn, self.endpoint.as_deref()));
            let (Some(url), Some(handle)) = (url, failure.receipt_handle()) else {
                changes.skipped += 1;
                continue;
            };
            // At most 43 200 s (SQS's cap), far inside i32.
            let seconds = i32::try_from(self.backoff.visibility_timeout(failure.receive_count())).unwrap_or(i32::MAX);
            per_queue.entry(url).or_default().push((handle, seconds));
        }
        for (url, entries) in per_queue {
            for chunk in entries.chunks(MAX_BATCH_ENTRIES) {
                let entries = chunk
                    .iter()
                    .enumerate()
                    .filter_map(|(i, (handle, seconds))| {
                        ChangeMessageVisibilityBatchRequestEntry::builder()
                            .id(i.to_string())
                            .receipt_handle(*handle)
                            .visibility_timeout(*seconds)
                            .build()
                            .ok()
                    })
                    .collect::<Vec<_>>();
                let sent = entries.len();
                match client.change_message_visibility_batch().queue_url(&url).set_entries(Some(entries)).send().await {
                    Ok(output) => {
                        changes.changed += output.successful.len();
                        changes.refused.extend(output.failed.into_iter().map(|failure| failure.code));
                    }
                    Err(error) => changes.request_errors.push((sent, error)),
                }
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_urls_come_from_the_event_source_arn() {
        let arn = "arn:aws:sqs:eu-west-1:123456789012:orders";
        assert_eq!(queue_url(arn, None).as_deref(), Some("https://sqs.eu-west-1.amazonaws.com/123456789012/orders"));
        assert_eq!(
            queue_url(arn, Some("http://127.0.0.1:4566/")).as_deref(),
            Some("http://127.0.0.1:4566/123456789012/orders")
        );
        assert_eq!(queue_url("arn:aws:sns:eu-west-1:1:topic", None), None);
        assert_eq!(queue_url("arn:aws:sqs:eu-west-1:1:q:extra", None), None);
        assert_eq!(queue_url("not an arn", None), None);
    }
}
