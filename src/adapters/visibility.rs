//! Retryable failures back off: a message that failed only because the database was away is
//! hidden for longer each time it comes back, so an outage does not burn its receives.
//!
//! SQS counts every receive against the queue's `maxReceiveCount`; with a fixed visibility
//! timeout a 30-minute outage walks every message into the dead-letter queue. After a batch
//! whose insert failed, the handler extends each such message's visibility to
//! `base × 2^(receives − 1)`, capped at SQS's 12 hours (ChangeMessageVisibilityBatch), in
//! Lambda and in `drain` alike: the `sqs-batch` crate's [`Backoff`] schedule. Messages that failed validation keep the queue's timeout: they
//! will fail again however long they wait, and should reach the DLQ soon.
//!
//! The SQS client is made on first use, so a cold start pays nothing for it. Failing to change
//! a visibility is logged and changes no outcome: the message simply returns sooner.

use std::collections::HashMap;
use std::time::Duration;

use sqs_batch::Backoff;

use aws_lambda_events::sqs::SqsMessage;
use aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry;
use tokio::sync::OnceCell;

use login_etl_core::batch::FailedMessage;

/// SQS's longest visibility timeout.
pub const MAX_VISIBILITY: Duration = sqs_batch::MAX_VISIBILITY_TIMEOUT;

/// How long a message that failed for the `receive_count`-th time should stay hidden.
pub fn backoff(base: Duration, receive_count: u32) -> Duration {
    Backoff::new(base).delay(receive_count)
}

/// The queue URL of an `eventSourceARN` (`arn:aws:sqs:<region>:<account>:<name>`), at
/// `endpoint` (LocalStack) or at SQS's regional endpoint.
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

/// Extends the visibility of messages whose insert failed.
#[derive(Clone)]
pub struct VisibilityBackoff {
    backoff: Backoff,
    endpoint: Option<String>,
    client: std::sync::Arc<OnceCell<aws_sdk_sqs::Client>>,
}

impl std::fmt::Debug for VisibilityBackoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VisibilityBackoff").field("backoff", &self.backoff).finish_non_exhaustive()
    }
}

impl VisibilityBackoff {
    /// With the SDK's configuration from the environment; `endpoint` is `AWS_ENDPOINT_URL`
    /// ([`crate::config::AwsConfig::endpoint_url`]), used to build queue URLs from ARNs.
    pub fn new(base: Duration, endpoint: Option<String>) -> VisibilityBackoff {
        VisibilityBackoff { backoff: Backoff::new(base), endpoint, client: Default::default() }
    }

    /// With a given client (tests point it at LocalStack).
    pub fn with_client(base: Duration, client: aws_sdk_sqs::Client, endpoint: Option<String>) -> VisibilityBackoff {
        VisibilityBackoff {
            backoff: Backoff::new(base),
            endpoint,
            client: std::sync::Arc::new(OnceCell::new_with(Some(client))),
        }
    }

    async fn client(&self) -> &aws_sdk_sqs::Client {
        self.client
            .get_or_init(|| async {
                aws_sdk_sqs::Client::new(&crate::adapters::aws::load_config(Duration::from_secs(3)).await)
            })
            .await
    }

    /// Hides each of `failed` (those that failed for a database reason; `records` is the event
    /// they were failed from, their `position` indexing it) for its backoff.
    /// Returns how many visibilities SQS changed.
    pub async fn extend(&self, records: &[SqsMessage], failed: &[&FailedMessage]) -> usize {
        if failed.is_empty() {
            return 0;
        }
        // Queue URL -> (receipt handle, seconds).
        let mut per_queue: HashMap<String, Vec<(String, i32)>> = HashMap::new();
        for failure in failed {
            let Some(record) = records.get(failure.position) else { continue };
            let (Some(arn), Some(handle)) = (record.event_source_arn.as_deref(), record.receipt_handle.as_deref())
            else {
                continue;
            };
            let Some(url) = queue_url(arn, self.endpoint.as_deref()) else { continue };
            // At most 43 200 s (SQS's cap), far inside i32.
            let seconds = i32::try_from(self.backoff.visibility_timeout(failure.receive_count)).unwrap_or(i32::MAX);
            per_queue.entry(url).or_default().push((handle.to_owned(), seconds));
        }
        let client = self.client().await;
        let mut changed = 0;
        for (url, entries) in per_queue {
            for chunk in entries.chunks(crate::adapters::sqs::SQS_BATCH) {
                let entries = chunk
                    .iter()
                    .enumerate()
                    .filter_map(|(i, (handle, seconds))| {
                        ChangeMessageVisibilityBatchRequestEntry::builder()
                            .id(i.to_string())
                            .receipt_handle(handle)
                            .visibility_timeout(*seconds)
                            .build()
                            .ok()
                    })
                    .collect::<Vec<_>>();
                match client.change_message_visibility_batch().queue_url(&url).set_entries(Some(entries)).send().await {
                    Ok(output) => {
                        changed += output.successful.len();
                        for failure in &output.failed {
                            tracing::warn!(code = %failure.code, "a visibility change was refused; the message returns sooner");
                        }
                    }
                    Err(err) => tracing::warn!(
                        error = %crate::adapters::aws::describe(&err),
                        "ChangeMessageVisibilityBatch failed; the messages return after the queue's visibility timeout"
                    ),
                }
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_per_receive_and_stops_at_twelve_hours() {
        let base = Duration::from_secs(180);
        let hidden: Vec<u64> = (1..=5).map(|n| backoff(base, n).as_secs()).collect();
        assert_eq!(hidden, [180, 360, 720, 1440, 2880]);
        assert_eq!(backoff(base, 0), base);
        assert_eq!(backoff(base, 1000), MAX_VISIBILITY);
        // The template's defaults: the 5th receive of a message that failed its first four
        // comes 45 minutes after the first, so a 30-minute outage dead-letters nothing valid.
        assert_eq!((1..=4).map(|n| backoff(base, n).as_secs()).sum::<u64>(), 45 * 60);
    }

    #[test]
    fn queue_urls_come_from_the_event_source_arn() {
        let arn = "arn:aws:sqs:eu-west-1:123456789012:login-queue";
        assert_eq!(
            queue_url(arn, None).as_deref(),
            Some("https://sqs.eu-west-1.amazonaws.com/123456789012/login-queue")
        );
        assert_eq!(
            queue_url(arn, Some("http://127.0.0.1:4566/")).as_deref(),
            Some("http://127.0.0.1:4566/123456789012/login-queue")
        );
        assert_eq!(queue_url("arn:aws:sns:eu-west-1:1:topic", None), None);
        assert_eq!(queue_url("not an arn", None), None);
    }
}
