//! What Lambda gets for an outcome: the partial batch response, or a function error.

use aws_lambda_events::sqs::SqsBatchResponse;
use login_etl_core::batch::BatchOutcome;

/// The batch's insert failed (database away, timed out): every valid record failed.
#[derive(Debug, thiserror::Error)]
#[error("the batch's insert failed, so every valid record of it failed and returns to the queue ({failed} records)")]
pub struct StoreUnavailable {
    pub failed: usize,
}

/// When the insert failed, the invocation fails: the event source mapping then reduces the
/// concurrency it gives the queue ("Handling errors for an SQS event source in Lambda": a
/// function error makes Lambda back off, while partial failures do not), so an outage is not
/// hammered by every instance, and the function's Errors alarm sees it. Each message's
/// visibility was already extended by the handler, so a function error loses nothing.
/// Otherwise the partial batch response names exactly the failed records.
pub fn respond(outcome: &BatchOutcome) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    if outcome.store_failed() {
        return Err(StoreUnavailable { failed: outcome.failed.len() }.into());
    }
    Ok(batch_response(outcome))
}

/// The partial batch response: exactly the failed messages go back to the queue (the contract
/// crate's, from the failures the outcome kept).
pub fn batch_response(outcome: &BatchOutcome) -> SqsBatchResponse {
    sqs_batch::batch_response(&outcome.failed)
}
