//! One invocation, exactly as the runtime runs it (and as `login-etl-cli invoke` and the
//! tests call it): handle the batch, write its EMF documents, answer.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use login_etl_core::batch::BatchOutcome;
use login_etl_core::metrics::{self, InvocationCounts, InvocationMeta};
use tracing::Instrument;

use super::in_flight::InFlight;
use super::response::respond;
use crate::handler::Handler;
use crate::telemetry::LogSettings;

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

/// The runtime's identifiers of one invocation, copied into its metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct Request<'a> {
    pub id: &'a str,
    pub xray_trace_id: Option<&'a str>,
}

impl Function {
    /// `function_name` is `crate::config::AwsConfig::function_name`; `metrics_level` is
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

    /// Handles the batch, writes its EMF documents to `metrics` (stdout under Lambda, where
    /// CloudWatch Logs extracts them), and answers with the partial batch response. An `Err`
    /// (an event whose failures cannot be named, or a failed insert; see [`respond`]) makes
    /// Lambda retry the whole batch.
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
            let meta = InvocationMeta {
                request_id: request.id,
                xray_trace_id: request.xray_trace_id,
                cold_start,
                level: self.metrics_level,
            };
            let counts = counts(&outcome, started.elapsed());
            if let Err(err) = write_metrics(metrics, &counts, &meta, &self.function_name) {
                // Metrics are worth a warning, never a failed batch: the rows are committed.
                tracing::warn!(error = %err, "could not write the invocation's metrics");
            }
            respond(outcome)
        }
        .instrument(span)
        .await
    }
}

/// The outcome, counted for its metrics.
fn counts<S>(outcome: &BatchOutcome<S>, duration: Duration) -> InvocationCounts {
    let records = &outcome.records;
    InvocationCounts {
        received: records.received(),
        inserted: records.succeeded() as u64,
        duplicates: records.duplicates() as u64,
        failed: records.failed().len(),
        failed_retryable: records.retryable_failures().count(),
        unknown_field_records: outcome.unknown_keys.records,
        failures_by_code: records.failures_by_code(),
        duration,
    }
}

/// The invocation's EMF documents, each on its own line, in one write: under Lambda `out` is
/// stdout, a pipe, where each write is a system call.
fn write_metrics(
    out: &mut impl Write,
    counts: &InvocationCounts,
    meta: &InvocationMeta<'_>,
    function_name: &str,
) -> std::io::Result<()> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default();
    let mut lines = String::new();
    for document in metrics::invocation_documents(counts, now, function_name, Some(meta)) {
        lines.push_str(&document.to_line());
        lines.push('\n');
    }
    out.write_all(lines.as_bytes())?;
    out.flush()
}
