//! The Lambda adapter: the runtime hands us `SqsEvent`s, we hand back `SqsBatchResponse`s.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};

use crate::handler::Handler;
use crate::metrics;

/// Serves invocations until the runtime stops. Requires `FunctionResponseTypes:
/// [ReportBatchItemFailures]` on the event source mapping, or Lambda ignores the response and
/// treats every batch as wholly successful.
pub async fn run(handler: Handler) -> Result<(), lambda_runtime::Error> {
    let handler = &handler;
    let function_name = &std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "login-etl".into());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let started = Instant::now();
        let outcome = handler.handle(&event.payload.records).await?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default();
        // EMF goes to stdout as its own line; CloudWatch Logs extracts the metrics.
        println!("{}", metrics::emf_line(&outcome, started.elapsed(), now, function_name));
        Ok::<_, lambda_runtime::Error>(outcome.response())
    }))
    .await
}

/// One invocation: the response names exactly the failed records. An `Err` (an event whose
/// failures cannot be named) makes Lambda retry the whole batch.
pub async fn handle_event(handler: &Handler, event: SqsEvent) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let outcome = handler.handle(&event.records).await?;
    Ok(outcome.response())
}
