//! The Lambda adapter: the runtime hands us `SqsEvent`s, we hand back `SqsBatchResponse`s.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};

use crate::handler::Handler;

/// Serves invocations until the runtime stops. Requires `FunctionResponseTypes:
/// [ReportBatchItemFailures]` on the event source mapping, or Lambda ignores the response and
/// treats every batch as wholly successful.
pub async fn run(handler: Handler) -> Result<(), lambda_runtime::Error> {
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        handle_event(handler, event.payload).await
    }))
    .await
}

/// One invocation: the response names exactly the failed records. An `Err` (an event whose
/// failures cannot be named) makes Lambda retry the whole batch.
pub async fn handle_event(handler: &Handler, event: SqsEvent) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let outcome = handler.handle(&event.records).await?;
    Ok(outcome.response())
}
