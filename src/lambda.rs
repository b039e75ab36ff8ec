//! The Lambda adapter: the runtime hands us `SqsEvent`s, we hand back `SqsBatchResponse`s.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::io::Write;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::value::RawValue;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::Instrument;

use crate::adapters::lifecycle;
use crate::adapters::loader::Loader;
use crate::adapters::store::Store;
use crate::handler::Handler;
use crate::telemetry::LogSettings;
use login_etl_core::batch::BatchOutcome;
use login_etl_core::metrics;

/// The function as each invocation sees it: the [`Handler`] built at cold start, and what its
/// metrics are labelled with. Shared (in an `Arc`) by every invocation in flight: on Lambda
/// Managed Instances one execution environment runs up to `AWS_LAMBDA_MAX_CONCURRENCY` of
/// them at once, so nothing here is per invocation.
pub struct Function {
    handler: Handler,
    function_name: String,
    metrics_level: &'static str,
    /// Set until the first invocation of this instance has started.
    cold: AtomicBool,
    in_flight: InFlight,
}

/// How many invocations are running, so that shutdown can wait for them (see
/// [`close_on_shutdown`]).
#[derive(Clone, Debug)]
pub struct InFlight(Arc<tokio::sync::watch::Sender<usize>>);

impl Default for InFlight {
    fn default() -> Self {
        InFlight(Arc::new(tokio::sync::watch::Sender::new(0)))
    }
}

impl InFlight {
    /// Counts one invocation until the guard is dropped (also when its future is dropped).
    pub fn enter(&self) -> InFlightGuard {
        self.0.send_modify(|count| *count += 1);
        InFlightGuard(self.0.clone())
    }

    pub fn count(&self) -> usize {
        *self.0.borrow()
    }

    /// Waits until no invocation is running, at most `within`; whether they all finished.
    pub async fn drained(&self, within: Duration) -> bool {
        let mut count = self.0.subscribe();
        tokio::time::timeout(within, count.wait_for(|count| *count == 0)).await.is_ok_and(|seen| seen.is_ok())
    }
}

/// One running invocation of [`InFlight`].
pub struct InFlightGuard(Arc<tokio::sync::watch::Sender<usize>>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.send_modify(|count| *count = count.saturating_sub(1));
    }
}

/// The runtime's identifiers of one invocation, copied into its metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct Request<'a> {
    pub id: &'a str,
    pub xray_trace_id: Option<&'a str>,
}

impl Function {
    /// `function_name` is [`crate::config::AwsConfig::function_name`]; `metrics_level` is
    /// [`LogSettings::metrics_level`].
    pub fn new(handler: Handler, function_name: impl Into<String>, log: &LogSettings) -> Function {
        Function {
            handler,
            function_name: function_name.into(),
            metrics_level: log.metrics_level,
            cold: AtomicBool::new(true),
            in_flight: InFlight::default(),
        }
    }

    pub fn handler(&self) -> &Handler {
        &self.handler
    }

    /// The invocations of this function now running.
    pub fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }

    /// One invocation, exactly as the runtime runs it (and as `login-etl-cli invoke` and the
    /// tests call it): handle the batch, write its EMF metrics lines to `metrics` (stdout under
    /// Lambda, where CloudWatch Logs extracts them), and answer with the partial batch
    /// response. An `Err` (an event whose failures cannot be named, or a failed insert; see
    /// [`respond`]) makes Lambda retry the whole batch.
    ///
    /// Runs inside a span of ours (`coldStart`), within the runtime's (`requestId`,
    /// `xrayTraceId`), so every line it logs can be tied to it.
    pub async fn invoke(
        &self,
        event: SqsEvent,
        request: Request<'_>,
        metrics: &mut (impl Write + Send),
    ) -> Result<SqsBatchResponse, lambda_runtime::Error> {
        let cold_start = self.cold.swap(false, Ordering::Relaxed);
        let span = tracing::info_span!("invocation", coldStart = cold_start);
        async move {
            let started = Instant::now();
            let outcome = self.handler.handle(&event.records).await?;
            let meta = metrics::InvocationMeta {
                request_id: request.id,
                xray_trace_id: request.xray_trace_id,
                cold_start,
                level: self.metrics_level,
            };
            if let Err(err) = write_metrics(metrics, &outcome, started.elapsed(), &meta, &self.function_name) {
                // Metrics are worth a warning, never a failed batch: the rows are committed.
                tracing::warn!(error = %err, "could not write the invocation's metrics");
            }
            respond(&outcome)
        }
        .instrument(span)
        .await
    }
}

/// The invocation's EMF document, then one per failure reason, each on its own line, in one
/// write: under Lambda `metrics` is stdout, a pipe, where each write is a system call.
fn write_metrics(
    out: &mut impl Write,
    outcome: &BatchOutcome,
    elapsed: Duration,
    meta: &metrics::InvocationMeta<'_>,
    function_name: &str,
) -> std::io::Result<()> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default();
    let mut document = metrics::emf_document(outcome, elapsed, now, function_name);
    metrics::add_invocation_meta(&mut document, meta);
    let mut lines = document.to_string();
    lines.push('\n');
    for mut by_reason in metrics::failure_reason_documents(outcome, now, function_name) {
        if let Some(fields) = by_reason.as_object_mut() {
            fields.insert("level".into(), meta.level.into());
            fields.insert("requestId".into(), meta.request_id.into());
            if let Some(trace_id) = meta.xray_trace_id {
                fields.insert("xrayTraceId".into(), trace_id.into());
            }
        }
        lines.push_str(&by_reason.to_string());
        lines.push('\n');
    }
    out.write_all(lines.as_bytes())?;
    out.flush()
}

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
    let in_flight = function.in_flight.clone();
    // The event arrives as raw JSON and is parsed here, not by the runtime: the runtime's own
    // parse error is logged as a Debug dump, ours is a sentence with the path and the problem.
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

/// An event that is JSON but not an SQS event, said as a sentence: where in the document
/// (`Records[0].messageId`) and what is wrong there, never the value.
#[derive(thiserror::Error)]
#[error("the event is not an SQS event: {}", describe(.0))]
pub struct EventError(serde_path_to_error::Error<serde_json::Error>);

/// The sentence: lambda_runtime logs a handler's error with `{:?}`.
impl std::fmt::Debug for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

fn describe(err: &serde_path_to_error::Error<serde_json::Error>) -> String {
    match err.path().to_string().as_str() {
        "." => err.inner().to_string(),
        path => format!("at `{path}`: {}", err.inner()),
    }
}

/// Parses an SQS event as the runtime hands it over (and as `login-etl-cli invoke` reads it).
pub fn parse_event(json: &str) -> Result<SqsEvent, EventError> {
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(json)).map_err(EventError)
}

/// The variables the Lambda runtime client reads (and panics without): Lambda sets them all.
/// The bootstrap checks them before starting the runtime, and `tests/it/wiring.rs` checks
/// each is one Lambda sets and `docs/configuration.md` lists.
pub const RUNTIME_ENV: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

/// `AWS_LAMBDA_MAX_CONCURRENCY` as `lambda_runtime` reads it: the number of invocations the
/// runtime runs at once (1 when unset or not a positive number).
pub fn max_concurrency_from_env() -> u32 {
    std::env::var("AWS_LAMBDA_MAX_CONCURRENCY").ok().and_then(|v| v.parse::<u32>().ok()).filter(|&n| n > 0).unwrap_or(1)
}

/// Counts an invocation in [`InFlight`] from the moment the runtime hands it over until its
/// answer has been posted to the Runtime API (the outermost layer), so a shutdown that waits
/// for the count to reach zero never cuts a response off.
struct CountInFlight(InFlight);

impl<S> lambda_runtime::tower::Layer<S> for CountInFlight {
    type Service = CountedService<S>;

    fn layer(&self, inner: S) -> CountedService<S> {
        CountedService { inner, in_flight: self.0.clone() }
    }
}

#[derive(Clone)]
struct CountedService<S> {
    inner: S,
    in_flight: InFlight,
}

impl<S> lambda_runtime::Service<lambda_runtime::LambdaInvocation> for CountedService<S>
where
    S: lambda_runtime::Service<lambda_runtime::LambdaInvocation, Response = (), Error = lambda_runtime::Error>,
    S::Future: Send + 'static,
{
    type Response = ();
    type Error = lambda_runtime::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), lambda_runtime::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, invocation: lambda_runtime::LambdaInvocation) -> Self::Future {
        let running = self.in_flight.enter();
        let answered = self.inner.call(invocation);
        Box::pin(async move {
            let result = answered.await;
            drop(running);
            result
        })
    }
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

/// The batch's insert failed (database away, timed out): every valid record failed.
#[derive(Debug, thiserror::Error)]
#[error("the batch's insert failed, so every valid record of it failed and returns to the queue ({failed} records)")]
pub struct StoreUnavailable {
    pub failed: usize,
}

/// What Lambda gets for an outcome. When the insert failed, the invocation fails: the event
/// source mapping then reduces the concurrency it gives the queue ("Handling errors for an SQS
/// event source in Lambda": a function error makes Lambda back off, while partial failures do
/// not), so an outage is not hammered by every instance, and the function's Errors alarm sees
/// it. Each message's visibility was already extended by the handler, so a function error
/// loses nothing. Otherwise the partial batch response names exactly the failed records.
pub fn respond(outcome: &BatchOutcome) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    if outcome.store_failed() {
        return Err(StoreUnavailable { failed: outcome.failed.len() }.into());
    }
    Ok(batch_response(outcome))
}

/// The partial batch response: exactly the failed messages go back to the queue.
pub fn batch_response(outcome: &BatchOutcome) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = outcome
        .failed
        .iter()
        .map(|failed| {
            let mut item = BatchItemFailure::default();
            item.item_identifier = failed.message_id.clone();
            item
        })
        .collect();
    response
}

/// How long a SIGTERM waits for the invocations in flight before the connections are closed.
/// Lambda gives a function with an internal extension 500 ms between SIGTERM and SIGKILL; this
/// leaves room to close the pool and exit.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(400);

/// Closes the loader's connections when Lambda shuts the instance down, so the server (or
/// pooler) does not keep sessions whose client is gone until they time out.
///
/// Invocations still running (several at once on Lambda Managed Instances) get
/// [`SHUTDOWN_GRACE`] to finish and answer; then the pool is closed and the process exits. A
/// batch still unfinished then never answers, so Lambda counts its invocation failed and its
/// messages return to the queue after the visibility timeout: retried, not lost. Its insert is
/// idempotent (`message_id` is unique), so even one that commits after the exit only turns
/// the redelivered records into duplicates.
///
/// Lambda sends SIGTERM only to functions with a registered extension, so a no-op internal
/// extension is registered first (what `lambda_runtime`'s graceful-shutdown helper does, but
/// where no Extensions API answers, as under some local harnesses, this logs and goes on
/// instead of panicking). Must run before [`run`]: extensions register during init.
pub async fn close_on_shutdown(loader: Loader, in_flight: InFlight) {
    // The extension client reads AWS_LAMBDA_RUNTIME_API itself (and panics without it): main
    // refuses to start without the runtime's variables before it gets here.
    match lambda_extension::Extension::new()
        .with_events(&[])
        .with_extension_name("login-etl-graceful-shutdown")
        .register()
        .await
    {
        Ok(extension) => {
            tokio::spawn(async move {
                // Waits for events it never subscribed to; costs nothing.
                let _ = extension.run().await;
            });
        }
        Err(err) => tracing::warn!(error = %err, "no Extensions API: connections are not closed on shutdown"),
    }
    let Ok(mut sigterm) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
        tracing::warn!("cannot listen for SIGTERM: connections are not closed on shutdown");
        return;
    };
    tokio::spawn(async move {
        sigterm.recv().await;
        let running = in_flight.count();
        let finished = running == 0 || in_flight.drained(SHUTDOWN_GRACE).await;
        loader.close();
        if finished {
            tracing::info!(in_flight = running, "SIGTERM: database connections closed");
        } else {
            tracing::warn!(
                in_flight = running,
                unfinished = in_flight.count(),
                grace_ms = SHUTDOWN_GRACE.as_millis() as u64,
                "SIGTERM: database connections closed; unfinished batches return to the queue"
            );
        }
        std::process::exit(0);
    });
}

#[derive(Debug, thiserror::Error)]
pub enum InitErrorReport {
    #[error("AWS_LAMBDA_RUNTIME_API is not set (not running under a Lambda Runtime API)")]
    NoRuntimeApi,
    #[error("the Runtime API did not answer")]
    Io(#[from] std::io::Error),
    #[error("the Runtime API did not answer within 2 s")]
    Timeout,
    #[error("the Runtime API answered {0}")]
    Refused(String),
}

/// Splits `AWS_LAMBDA_RUNTIME_API` into the address to connect to and the path prefix of the
/// API. Lambda sets `host:port`; emulators such as `cargo lambda watch --only-lambda-apis`
/// use `http://host:port/.rt`.
fn runtime_api_endpoint(api: &str) -> (&str, String) {
    let api = api.trim().trim_start_matches("http://");
    match api.split_once('/') {
        Some((address, path)) if !path.trim_matches('/').is_empty() => {
            (address, format!("/{}", path.trim_matches('/')))
        }
        Some((address, _)) => (address, String::new()),
        None => (api, String::new()),
    }
}

/// Reports a start-up failure to the Runtime API's `/runtime/init/error` endpoint, so that
/// Lambda records an init error (shown as such in the console and the invoke response)
/// rather than a runtime that exited without a word. `error_type` is a stable code,
/// `message` the operator's text (it names the variable, never a secret value).
///
/// `runtime_api` is [`crate::config::AwsConfig::runtime_api`].
pub async fn report_init_error(
    runtime_api: Option<&str>,
    error_type: &str,
    message: &str,
) -> Result<(), InitErrorReport> {
    let api = runtime_api.ok_or(InitErrorReport::NoRuntimeApi)?;
    let (address, prefix) = runtime_api_endpoint(api);
    let body = serde_json::json!({"errorType": error_type, "errorMessage": message, "stackTrace": []}).to_string();
    let request = format!(
        "POST {prefix}/2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {address}\r\n\
         Lambda-Runtime-Function-Error-Type: {error_type}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response =
        tokio::time::timeout(Duration::from_secs(2), exchange).await.map_err(|_| InitErrorReport::Timeout)??;
    let status_line = String::from_utf8_lossy(&response).lines().next().unwrap_or_default().to_owned();
    // "HTTP/1.1 202 Accepted"
    match status_line.split_whitespace().nth(1) {
        Some(code) if code.starts_with('2') => Ok(()),
        _ => Err(InitErrorReport::Refused(status_line)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_api_is_found_as_lambda_and_emulators_give_it() {
        assert_eq!(runtime_api_endpoint("127.0.0.1:9001"), ("127.0.0.1:9001", String::new()));
        assert_eq!(runtime_api_endpoint("http://127.0.0.1:9000/.rt"), ("127.0.0.1:9000", "/.rt".to_string()));
        assert_eq!(runtime_api_endpoint("http://localhost:9000/"), ("localhost:9000", String::new()));
    }
}
