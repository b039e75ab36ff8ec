//! The Lambda adapter: the runtime hands us `SqsEvent`s, we hand back `SqsBatchResponse`s.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::Instrument;

use crate::batch::BatchOutcome;
use crate::handler::Handler;
use crate::loader::Loader;
use crate::metrics;
use crate::telemetry::LogSettings;

/// Serves invocations until the runtime stops. Requires `FunctionResponseTypes:
/// [ReportBatchItemFailures]` on the event source mapping, or Lambda ignores the response and
/// treats every batch as wholly successful.
///
/// Each invocation runs inside the runtime's span (`requestId`, `xrayTraceId`) and one of
/// ours (`coldStart`), so every line it logs can be tied to it.
pub async fn run(handler: Handler, log: &LogSettings) -> Result<(), lambda_runtime::Error> {
    let handler = &handler;
    let metrics_level = log.metrics_level;
    let function_name = &std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "login-etl".into());
    let first = &AtomicBool::new(true);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let cold_start = first.swap(false, Ordering::Relaxed);
        let span = tracing::info_span!("invocation", coldStart = cold_start);
        async move {
            let started = Instant::now();
            let outcome = handler.handle(&event.payload.records).await?;
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default();
            let mut document = metrics::emf_document(&outcome, started.elapsed(), now, function_name);
            let meta = metrics::InvocationMeta {
                request_id: &event.context.request_id,
                xray_trace_id: event.context.xray_trace_id.as_deref(),
                cold_start,
                level: metrics_level,
            };
            metrics::add_invocation_meta(&mut document, &meta);
            // EMF goes to stdout as its own line; CloudWatch Logs extracts the metrics.
            println!("{document}");
            for mut by_reason in metrics::failure_reason_documents(&outcome, now, function_name) {
                if let Some(fields) = by_reason.as_object_mut() {
                    fields.insert("level".into(), meta.level.into());
                    fields.insert("requestId".into(), meta.request_id.into());
                    if let Some(trace_id) = meta.xray_trace_id {
                        fields.insert("xrayTraceId".into(), trace_id.into());
                    }
                }
                println!("{by_reason}");
            }
            respond(&outcome)
        }
        .instrument(span)
        .await
    }))
    .await
}

/// One invocation, as the runtime runs it: the response names exactly the failed records. An
/// `Err` (an event whose failures cannot be named, or a failed insert; see [`respond`]) makes
/// Lambda retry the whole batch.
pub async fn handle_event(handler: &Handler, event: SqsEvent) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let outcome = handler.handle(&event.records).await?;
    respond(&outcome)
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
    Ok(outcome.response())
}

/// Closes the loader's connections when Lambda shuts the instance down, so the server (or
/// pooler) does not keep sessions whose client is gone until they time out.
///
/// Lambda sends SIGTERM only to functions with a registered extension, so a no-op internal
/// extension is registered first (what `lambda_runtime`'s graceful-shutdown helper does, but
/// where no Extensions API answers, as under some local harnesses, this logs and goes on
/// instead of panicking). Must run before [`run`]: extensions register during init.
pub async fn close_on_shutdown(loader: Loader) {
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
        loader.close();
        tracing::info!("SIGTERM: database connections closed");
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
pub async fn report_init_error(error_type: &str, message: &str) -> Result<(), InitErrorReport> {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").map_err(|_| InitErrorReport::NoRuntimeApi)?;
    let (address, prefix) = runtime_api_endpoint(&api);
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
