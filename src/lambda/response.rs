//! What Lambda gets for an outcome: the partial batch response, or a function error.

use aws_lambda_events::sqs::SqsBatchResponse;
use login_etl_core::batch::BatchOutcome;
use sqs_batch::ResponsePolicy;

/// How the function answers: a function error when the store failed the whole batch, else the
/// partial batch response.
///
/// When the insert failed, the invocation fails ([`sqs_batch::Unanswered::StoreUnavailable`]):
/// the event source mapping then reduces the concurrency it gives the queue ("Handling errors
/// for an SQS event source in Lambda": a function error makes Lambda back off, while partial
/// failures do not), so an outage is not hammered by every instance, and the function's Errors
/// alarm sees it. Each message's visibility was already extended by the handler, so a function
/// error loses nothing.
const RESPONSE_POLICY: ResponsePolicy = ResponsePolicy::partial().fail_on_store_failure(true);

/// The outcome as `RESPONSE_POLICY` answers it: the partial batch response naming exactly the
/// failed records, or the function error.
pub fn respond<S>(outcome: BatchOutcome<S>) -> Result<SqsBatchResponse, lambda_runtime::Error>
where
    S: std::error::Error + Send + Sync + 'static,
{
    Ok(outcome.records.into_response(RESPONSE_POLICY)?)
}
