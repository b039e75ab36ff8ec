//! A per-record handler as what `lambda_runtime::run` takes (the `lambda` feature).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Context, LambdaEvent, Service, service_fn};

use crate::failure::Rejection;
use crate::outcome::ResponsePolicy;
use crate::run::{Processor, Record};

/// Lambda's deadline for `context` as an [`Instant`], or `None` when the context has none
/// (`Context::default()` in tests, a deadline of 0).
pub fn deadline(context: &Context) -> Option<Instant> {
    if context.deadline == 0 {
        return None;
    }
    let left = context.deadline().duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
    Some(Instant::now() + left)
}

/// One invocation: `processor` runs `handler` over the event's records with the context's
/// deadline, and `policy` turns the outcome into the response or a function error.
///
/// # Errors
///
/// The event could not be answered record by record, or the policy asked for a function error.
pub async fn handle<E, F, Fut>(
    processor: &Processor,
    policy: ResponsePolicy,
    handler: F,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error>
where
    E: Rejection,
    F: Fn(Record) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let deadline = deadline(&event.context);
    let outcome = processor.run(event.payload.records, deadline, handler).await?;
    Ok(outcome.into_response(policy)?)
}

/// `handler` as the service `lambda_runtime::run` takes:
/// `lambda_runtime::run(sqs_batch::lambda::service(processor, policy, handler)).await`.
pub fn service<E, F, Fut>(
    processor: Processor,
    policy: ResponsePolicy,
    handler: F,
) -> impl Service<
    LambdaEvent<SqsEvent>,
    Response = SqsBatchResponse,
    Error = lambda_runtime::Error,
    Future = impl Future<Output = Result<SqsBatchResponse, lambda_runtime::Error>> + Send,
>
where
    E: Rejection + Send + 'static,
    F: Fn(Record) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
{
    let shared = Arc::new((processor, handler));
    service_fn(move |event: LambdaEvent<SqsEvent>| {
        let shared = Arc::clone(&shared);
        async move {
            let (processor, handler) = &*shared;
            handle(processor, policy, handler, event).await
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_deadline_becomes_an_instant_and_zero_means_none() {
        let mut context = Context::default();
        assert_eq!(deadline(&context), None, "Context::default() has no deadline");
        let in_three_seconds = SystemTime::now() + Duration::from_secs(3);
        context.deadline =
            u64::try_from(in_three_seconds.duration_since(SystemTime::UNIX_EPOCH).expect("after 1970").as_millis())
                .expect("fits");
        let left = deadline(&context).expect("a deadline").saturating_duration_since(Instant::now());
        assert!(left > Duration::from_millis(2_500) && left <= Duration::from_secs(3), "{left:?}");
        context.deadline = 1; // long past
        let past = deadline(&context).expect("a deadline");
        assert!(past <= Instant::now());
    }
}
