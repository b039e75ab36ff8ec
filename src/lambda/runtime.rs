//! The runtime loops: the loader's, and the scheduled maintenance task's.

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::value::RawValue;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use login_etl_core::deploy_hook::{CustomResourceRequest, MaintenanceEvent, SchemaAction, reason_from_chain};
use tokio::sync::OnceCell;

use super::event::parse_event;
use super::function::{Function, Request};
use super::in_flight::CountInFlight;
use crate::adapters::operator_db::OperatorDb;
use crate::adapters::{cfn_response, lifecycle};
use crate::config::Config;
use crate::startup;

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

/// The runtime loop of the maintenance function (`LOGIN_ETL_TASK=maintenance`). Each event is
/// one of two ([`MaintenanceEvent`]):
///
/// - EventBridge Scheduler's (or any other without `RequestType`): one
///   [`lifecycle::scheduled_maintenance`] run, its report logged and returned. A failure fails
///   the invocation, so the function's Errors metric shows it and the next schedule tries again.
/// - CloudFormation's request for the `SchemaMigration` custom resource: `migrate` on Create
///   and Update, nothing on Delete, and the answer PUT to its `ResponseURL` before the
///   function's deadline, FAILED with the reason when the migration failed or ran out of time.
///   The invocation succeeds once the answer is sent (Lambda's retries of a failed
///   asynchronous invocation would only migrate again and answer twice).
///
/// The operators' pool is built on the first event that needs it, and again after a failure: a secret
/// that cannot be read is a FAILED answer, not an init error nobody answers.
///
/// Sequential on purpose (`lambda_runtime::run`, not `run_concurrent`): one schedule fires it
/// once a day, template.yaml gives it no capacity provider, and two runs at once would only
/// contend for the same DDL locks (CREATE/DETACH PARTITION) to do the same work twice.
pub async fn run_maintenance(config: &Config, keep_months: Option<u16>) -> Result<(), lambda_runtime::Error> {
    let db: &OnceCell<OperatorDb> = &OnceCell::new();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| async move {
        match MaintenanceEvent::parse(event.payload.get().as_bytes()).inspect_err(|err| tracing::error!("{err}"))? {
            MaintenanceEvent::Scheduled => {
                let db = db.get_or_try_init(|| startup::connect_operator_db(config)).await?;
                let report = scheduled_maintenance(db, keep_months).await?;
                Ok::<_, lambda_runtime::Error>(serde_json::to_value(report)?)
            }
            MaintenanceEvent::CustomResource(request) => {
                let deadline = UNIX_EPOCH + Duration::from_millis(event.context.deadline);
                answer_custom_resource(
                    &request,
                    || async {
                        let db = db.get_or_try_init(|| startup::connect_operator_db(config)).await?;
                        db.migrate().await?;
                        Ok(())
                    },
                    deadline,
                )
                .await?;
                Ok(serde_json::Value::Null)
            }
        }
    }))
    .await
}

/// Partitions ahead and retention, logged.
async fn scheduled_maintenance(
    db: &OperatorDb,
    keep_months: Option<u16>,
) -> Result<lifecycle::MaintenanceReport, lambda_runtime::Error> {
    let today = time::OffsetDateTime::now_utc().date();
    let report = lifecycle::scheduled_maintenance(db, today, keep_months).await?;
    let dropped: Vec<&str> =
        report.retention.iter().flat_map(|r| r.dropped.iter().map(|d| d.partition.as_str())).collect();
    tracing::info!(
        created = report.created.len(),
        dropped = ?dropped,
        vault_rows_removed = report.retention.as_ref().map_or(0, |r| r.vault_rows_removed),
        "maintenance done"
    );
    Ok(report)
}

/// What is left for the answer itself when the migration runs out of time: the PUT's
/// attempts (cfn_response) within Lambda's deadline.
const ANSWER_MARGIN: Duration = Duration::from_secs(45);

/// Runs `migrate` as `request` asks (Create and Update; Delete leaves the data alone), within
/// `deadline` less [`ANSWER_MARGIN`], and answers CloudFormation. The reason of a failure is
/// the error chain, which names secrets by id and users by name, never a password.
pub async fn answer_custom_resource<F, Fut>(
    request: &CustomResourceRequest,
    migrate: F,
    deadline: SystemTime,
) -> Result<(), cfn_response::ResponseError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let outcome = schema_outcome(request, migrate, deadline).await;
    match &outcome {
        Ok(reason) => tracing::info!(request = ?request.request_type, "{reason}"),
        Err(reason) => tracing::error!(request = ?request.request_type, "{reason}"),
    }
    let answer = request.answer(outcome.as_deref().map_err(String::as_str));
    cfn_response::put(&request.response_url, answer.to_body()).await?;
    tracing::info!(status = ?answer.status, "answered CloudFormation");
    Ok(())
}

/// What `request` asks done, within `deadline` less [`ANSWER_MARGIN`]: `Ok` with the reason
/// for SUCCESS, `Err` with the reason for FAILED (a migration cut short by the deadline is
/// cancelled: its connection closes and the server rolls its transaction back).
async fn schema_outcome<F, Fut>(
    request: &CustomResourceRequest,
    migrate: F,
    deadline: SystemTime,
) -> Result<String, String>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    match request.action() {
        SchemaAction::LeaveAlone => Ok("nothing to do: the schema and its data outlive the stack".to_owned()),
        SchemaAction::Migrate => {
            let budget = deadline.duration_since(SystemTime::now()).unwrap_or_default().saturating_sub(ANSWER_MARGIN);
            match tokio::time::timeout(budget, migrate()).await {
                Ok(Ok(())) => Ok("migrations applied".to_owned()),
                Ok(Err(err)) => {
                    let causes: Vec<String> = err.chain().map(ToString::to_string).collect();
                    Err(format!("login-etl migrate failed: {}", reason_from_chain(causes.iter().map(String::as_str))))
                }
                Err(_) => Err(format!(
                    "login-etl migrate did not finish within {} s (the maintenance function's timeout less {} s \
                     for this answer); it was cancelled and its transaction rolled back",
                    budget.as_secs(),
                    ANSWER_MARGIN.as_secs()
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use login_etl_core::deploy_hook::MaintenanceEvent;

    fn request(request_type: &str) -> CustomResourceRequest {
        let event = serde_json::json!({
            "RequestType": request_type, "ResponseURL": "https://example.invalid/r", "StackId": "s",
            "RequestId": "r", "LogicalResourceId": "SchemaMigration", "PhysicalResourceId": "login-etl-schema",
        });
        match MaintenanceEvent::parse(event.to_string().as_bytes()) {
            Ok(MaintenanceEvent::CustomResource(request)) => request,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_migration_that_outlives_the_deadline_is_cancelled_and_answered_failed_in_time() {
        let deadline = SystemTime::now() + ANSWER_MARGIN + Duration::from_millis(300);
        let started = std::time::Instant::now();
        let outcome = schema_outcome(&request("Update"), std::future::pending, deadline).await;
        let reason = outcome.expect_err("cut short");
        assert!(reason.contains("did not finish"), "{reason}");
        assert!(started.elapsed() < Duration::from_secs(5), "answered after {:?}", started.elapsed());
    }

    #[tokio::test]
    async fn delete_never_runs_the_migration_and_a_failure_is_the_reason() {
        let far = SystemTime::now() + Duration::from_secs(900);
        let outcome = schema_outcome(&request("Delete"), || async { panic!("Delete must not migrate") }, far).await;
        assert!(outcome.is_ok(), "{outcome:?}");
        let failed =
            schema_outcome(&request("Create"), || async { Err(anyhow::anyhow!("no route to host")) }, far).await;
        assert_eq!(failed, Err("login-etl migrate failed: no route to host".to_owned()));
        let applied = schema_outcome(&request("Update"), || async { Ok(()) }, far).await;
        assert_eq!(applied, Ok("migrations applied".to_owned()));
    }
}
