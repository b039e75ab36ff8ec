//! Retryable failures back off: a message that failed only because the database was away is
//! hidden for longer each time it comes back, so an outage does not burn its receives.
//!
//! SQS counts every receive against the queue's `maxReceiveCount`; with a fixed visibility
//! timeout a 30-minute outage walks every message into the dead-letter queue. After a batch
//! whose insert failed, the handler hides each such message for the `sqs-batch` crate's
//! [`Backoff`] from `RETRY_BACKOFF_BASE_SECONDS` (its schedule is specified there, once),
//! through [`sqs_batch::visibility::VisibilityBackoff`], in Lambda and in `drain` alike.
//! Messages that failed validation keep the queue's timeout: they will fail again however long
//! they wait, and should reach the DLQ soon.
//!
//! What stays here is login-etl's wiring: the SQS client is made on first use, so a cold start
//! pays nothing for it, and failing to change a visibility is logged and changes no outcome:
//! the message simply returns sooner.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::SqsMessage;
use sqs_batch::Backoff;
use tokio::sync::OnceCell;

use login_etl_core::batch::FailedMessage;

/// Extends the visibility of messages whose insert failed.
#[derive(Clone)]
pub struct VisibilityBackoff {
    changes: sqs_batch::visibility::VisibilityBackoff,
    client: Arc<OnceCell<aws_sdk_sqs::Client>>,
}

impl std::fmt::Debug for VisibilityBackoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VisibilityBackoff").field("backoff", &self.changes.backoff()).finish_non_exhaustive()
    }
}

impl VisibilityBackoff {
    /// With the SDK's configuration from the environment; `endpoint` is `AWS_ENDPOINT_URL`
    /// (`crate::config::AwsConfig::endpoint_url`), used to build queue URLs from ARNs.
    pub fn new(base: Duration, endpoint: Option<String>) -> VisibilityBackoff {
        VisibilityBackoff { changes: changes(base, endpoint), client: Default::default() }
    }

    /// With a given client (tests point it at LocalStack).
    pub fn with_client(base: Duration, client: aws_sdk_sqs::Client, endpoint: Option<String>) -> VisibilityBackoff {
        VisibilityBackoff { changes: changes(base, endpoint), client: Arc::new(OnceCell::new_with(Some(client))) }
    }

    async fn client(&self) -> &aws_sdk_sqs::Client {
        self.client
            .get_or_init(|| async {
                aws_sdk_sqs::Client::new(&crate::adapters::aws::load_aws_config(Duration::from_secs(3)).await)
            })
            .await
    }

    /// Hides each of `failed` (those that failed for a database reason; `records` is the event
    /// they were failed from, whose `eventSourceARN` names the queue) for its backoff.
    /// Returns how many visibilities SQS changed.
    pub async fn extend(&self, records: &[SqsMessage], failed: &[&FailedMessage]) -> usize {
        if failed.is_empty() {
            return 0;
        }
        let changes = self.changes.extend(self.client().await, records, failed.iter().copied()).await;
        for code in &changes.refused {
            tracing::warn!(code = %code, "a visibility change was refused; the message returns sooner");
        }
        for (_, err) in &changes.request_errors {
            tracing::warn!(
                error = %crate::adapters::aws::describe(err),
                "ChangeMessageVisibilityBatch failed; the messages return after the queue's visibility timeout"
            );
        }
        changes.changed
    }
}

fn changes(base: Duration, endpoint: Option<String>) -> sqs_batch::visibility::VisibilityBackoff {
    sqs_batch::visibility::VisibilityBackoff::new(Backoff::new(base)).with_endpoint(endpoint)
}
