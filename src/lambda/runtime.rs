//! The runtime loops: the loader's, and the scheduled maintenance task's.

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::value::RawValue;

use super::event::parse_event;
use super::function::{Function, Request};
use super::in_flight::CountInFlight;
use crate::adapters::lifecycle;
use crate::adapters::store::Store;

/// Serves invocations until the runtime stops: each one goes to [`Function::invoke`], metrics
/// to stdout. Requires `FunctionResponseTypes: [ReportBatchItemFailures]` on the event source
/// mapping, or Lambda ignores the response and treats every batch as wholly successful.
///
/// With `AWS_LAMBDA_MAX_CONCURRENCY` above 1 (Lambda Managed Instances) the runtime keeps that
/// many `/next` polls open and runs their invocations at once; unset or 1 (classic Lambda) it
/// serves one at a time, as `lambda_runtime::run` does. Every invocation takes its request id
/// and X-Ray trace id from its own context (the runtime's span and [`Request`]), never from
/// `_X_AMZN_TRACE_ID`, which the concurrent runtime does not set: one process-wide variable
/// cannot name eight invocations.
pub async fn run(function: Arc<Function>) -> Result<(), lambda_runtime::Error> {
    let in_flight = function.in_flight().clone();
    // The event arrives as raw JSON and is parsed by [`parse_event`], not by the runtime.
    let handler = service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let function = Arc::clone(&function);
        async move {
            let request =
                Request { id: &event.context.request_id, xray_trace_id: event.context.xray_trace_id.as_deref() };
            let sqs_event = parse_event(event.payload.get()).inspect_err(|err| tracing::error!("{err}"))?;
            function.invoke(sqs_event, request, &mut std::io::stdout()).await
        }
    });
    lambda_runtime::Runtime::new(handler)
        .layer(lambda_runtime::layers::TracingLayer::new())
        .layer(CountInFlight(in_flight))
        .run_concurrent()
        .await
}

/// The runtime loop of the scheduled maintenance function (`LOGIN_ETL_TASK=maintenance`):
/// whatever the event (EventBridge's scheduled event), one [`lifecycle::scheduled_maintenance`]
/// run over `store`, its report logged and returned. A failure fails the invocation, so the
/// function's Errors metric shows it and the next schedule tries again.
///
/// Sequential on purpose (`lambda_runtime::run`, not `run_concurrent`): one schedule fires it
/// once a day, template.yaml gives it no capacity provider, and two runs at once would only
/// contend for the same DDL locks (CREATE/DETACH PARTITION) to do the same work twice.
pub async fn run_maintenance(store: Store, keep_months: Option<u16>) -> Result<(), lambda_runtime::Error> {
    let store = &store;
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<serde_json::Value>| async move {
        let today = time::OffsetDateTime::now_utc().date();
        let report = lifecycle::scheduled_maintenance(store, today, keep_months).await?;
        let dropped: Vec<&str> =
            report.retention.iter().flat_map(|r| r.dropped.iter().map(|d| d.partition.as_str())).collect();
        tracing::info!(
            created = report.created.len(),
            dropped = ?dropped,
            vault_rows_removed = report.retention.as_ref().map_or(0, |r| r.vault_rows_removed),
            "maintenance done"
        );
        Ok::<_, lambda_runtime::Error>(report)
    }))
    .await
}
