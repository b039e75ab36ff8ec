//! Logging set-up for the binaries.
//!
//! The function writes one line per event to stdout, the way Lambda's advanced logging
//! controls expect: JSON objects with `timestamp`, `level` and `message` (so Lambda can filter
//! them by level) or plain text, chosen by `AWS_LAMBDA_LOG_FORMAT`, filtered by
//! `AWS_LAMBDA_LOG_LEVEL`. Every line written while an invocation runs carries that
//! invocation's `requestId` (and `xrayTraceId` when tracing is on, and `coldStart`), taken
//! from the spans the runtime and `lambda` open around each invocation, so a batch's
//! lines can be found with one Logs Insights filter.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The span fields that identify an invocation; copied onto every line inside the span.
const INVOCATION_FIELDS: [&str; 3] = ["requestId", "xrayTraceId", "coldStart"];

/// `AWS_LAMBDA_LOG_FORMAT`: Lambda sets `JSON` or `Text` from the function's `LoggingConfig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// How the function logs, read once from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// An `EnvFilter` directive: the Lambda level, else `RUST_LOG`, else `info`.
    pub filter: String,
    pub format: LogFormat,
    /// The level the EMF metrics line is written at: the least severe level Lambda still
    /// delivers. Lambda drops JSON lines below `ApplicationLogLevel` and counts a line without
    /// a `level` as INFO, so at WARN an unlabelled metrics line would be lost.
    pub metrics_level: &'static str,
}

impl LogSettings {
    /// Every environment variable [`LogSettings::from_lookup`] reads; it refuses (in debug
    /// builds and tests) any other, and a unit test records that with nothing set it reads
    /// exactly these. `tests/it/wiring.rs` holds `template.yaml` and `docs/configuration.md`
    /// to them, with [`crate::config::CONFIG_VARIABLES`].
    pub const VARIABLES: [&'static str; 3] = ["AWS_LAMBDA_LOG_LEVEL", "RUST_LOG", "AWS_LAMBDA_LOG_FORMAT"];

    /// Reads `AWS_LAMBDA_LOG_LEVEL`, `AWS_LAMBDA_LOG_FORMAT` and `RUST_LOG`.
    pub fn from_env() -> LogSettings {
        LogSettings::from_environment(&crate::config::Environment::capture())
    }

    /// Reads a captured environment (the bootstrap's, which [`crate::config::Config`] reads
    /// too).
    pub fn from_environment(environment: &crate::config::Environment) -> LogSettings {
        LogSettings::from_lookup(|name| environment.get(name))
    }

    /// As [`LogSettings::from_env`], through `lookup`. Blank values count as unset; an
    /// unknown Lambda level falls back to INFO, as Lambda itself does.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> LogSettings {
        let get = |name: &str| {
            debug_assert!(Self::VARIABLES.contains(&name), "{name} is missing from LogSettings::VARIABLES");
            lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
        };
        let lambda_level = get("AWS_LAMBDA_LOG_LEVEL").map(|level| level.to_ascii_uppercase());
        let (filter, metrics_level) = match lambda_level.as_deref() {
            Some("TRACE") => ("trace".to_owned(), "INFO"),
            Some("DEBUG") => ("debug".to_owned(), "INFO"),
            Some("WARN") => ("warn".to_owned(), "WARN"),
            Some("ERROR") => ("error".to_owned(), "ERROR"),
            // tracing has no FATAL; ERROR is its most severe level.
            Some("FATAL") => ("error".to_owned(), "FATAL"),
            Some(_) => ("info".to_owned(), "INFO"),
            None => (get("RUST_LOG").unwrap_or_else(|| "info".to_owned()), "INFO"),
        };
        let format = match get("AWS_LAMBDA_LOG_FORMAT") {
            Some(format) if format.eq_ignore_ascii_case("text") => LogFormat::Text,
            _ => LogFormat::Json,
        };
        LogSettings { filter, format, metrics_level }
    }
}

/// Installs the function's logger on stdout.
pub fn init_lambda_logging(settings: &LogSettings) {
    let _ = lambda_subscriber(settings, std::io::stdout).try_init();
}

/// The function's subscriber, writing to `writer` (tests capture it).
pub fn lambda_subscriber<W>(settings: &LogSettings, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(&settings.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::registry()
        .with(filter)
        .with(payload_cap())
        .with(LambdaLogLayer { format: settings.format, writer })
}

/// Drops other crates' TRACE events, whatever `RUST_LOG` says. At TRACE `lambda_runtime` logs
/// every raw event it receives and the AWS SDK every message body it receives, ip and
/// device_id included; nothing this crate needs to debug lives there. This crate's own events
/// never carry raw values, at any level, so they pass.
pub fn payload_cap<S: Subscriber>() -> impl Layer<S> {
    tracing_subscriber::filter::filter_fn(|meta| {
        !meta.is_event() || *meta.level() < tracing::Level::TRACE || is_own_target(meta.target())
    })
}

fn is_own_target(target: &str) -> bool {
    target == "login_etl" || target.starts_with("login_etl::") || target.starts_with("login_etl_cli")
}

/// Human-readable lines on stderr for the CLI; `RUST_LOG` filters (default `warn`, so the
/// per-batch summaries do not drown the progress line, and `aws_config=error`: its warnings
/// about each credential or region source it tried are Debug dumps, and the command's own
/// error says what to set). Colour only on a terminal and without `NO_COLOR`.
pub fn init_human() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn,aws_config=error"));
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(use_color(std::io::stderr().is_terminal()));
    let _ = tracing_subscriber::registry().with(filter).with(payload_cap()).with(lines).try_init();
}

/// Whether to print ANSI colours: only to a terminal, and never with `NO_COLOR` set to
/// anything non-empty (<https://no-color.org>).
pub fn use_color(is_terminal: bool) -> bool {
    is_terminal && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

/// The span extension holding the invocation fields a span was created with.
#[derive(Default)]
struct InvocationContext(Map<String, Value>);

/// Writes each event as one line, with the invocation fields of the spans around it.
struct LambdaLogLayer<W> {
    format: LogFormat,
    writer: W,
}

impl<S, W> Layer<S> for LambdaLogLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Map::new();
        attrs.record(&mut JsonVisitor(&mut fields));
        fields.retain(|name, _| INVOCATION_FIELDS.contains(&name.as_str()));
        if let (false, Some(span)) = (fields.is_empty(), ctx.span(id)) {
            span.extensions_mut().insert(InvocationContext(fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut fields = Map::new();
        values.record(&mut JsonVisitor(&mut fields));
        fields.retain(|name, _| INVOCATION_FIELDS.contains(&name.as_str()));
        if let (false, Some(span)) = (fields.is_empty(), ctx.span(id)) {
            let mut extensions = span.extensions_mut();
            match extensions.get_mut::<InvocationContext>() {
                Some(context) => context.0.extend(fields),
                None => extensions.insert(InvocationContext(fields)),
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Map::new();
        event.record(&mut JsonVisitor(&mut fields));
        let message = match fields.remove("message") {
            Some(Value::String(text)) => text,
            Some(other) => other.to_string(),
            None => String::new(),
        };
        // Innermost span first: the nearest value of a field wins.
        let mut invocation = Map::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                if let Some(context) = span.extensions().get::<InvocationContext>() {
                    for (name, value) in &context.0 {
                        invocation.entry(name.clone()).or_insert_with(|| value.clone());
                    }
                }
            }
        }
        let line = render(self.format, *event.metadata().level(), &message, invocation, fields);
        // One write per line, so concurrent lines never interleave.
        let _ = self.writer.make_writer_for(event.metadata()).write_all(line.as_bytes());
    }
}

/// One log line, newline included. JSON keys: `timestamp`, `level`, `message`, the
/// invocation fields, then the event's own fields.
fn render(
    format: LogFormat,
    level: Level,
    message: &str,
    invocation: Map<String, Value>,
    fields: Map<String, Value>,
) -> String {
    let timestamp = OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default();
    match format {
        LogFormat::Json => {
            let mut line = Map::new();
            line.insert("timestamp".into(), Value::String(timestamp));
            line.insert("level".into(), Value::String(level.as_str().into()));
            line.insert("message".into(), Value::String(message.into()));
            line.extend(invocation);
            for (name, value) in fields {
                line.entry(name).or_insert(value);
            }
            let mut text = Value::Object(line).to_string();
            text.push('\n');
            text
        }
        LogFormat::Text => {
            let mut text = format!("{timestamp} {level:<5}");
            for (name, value) in invocation.into_iter().chain(fields) {
                match value {
                    Value::String(s) => {
                        let _ = write!(text, " {name}={s}");
                    }
                    other => {
                        let _ = write!(text, " {name}={other}");
                    }
                }
            }
            let _ = writeln!(text, " {message}");
            text
        }
    }
}

/// Collects an event's or span's fields as JSON values.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().into(), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::String(value.into()));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::Bool(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    /// With nothing set every name is read (RUST_LOG only when no Lambda level is set), so the
    /// recorded names are the list.
    #[test]
    fn variables_lists_exactly_what_the_log_settings_read() {
        let read = std::cell::RefCell::new(Vec::new());
        LogSettings::from_lookup(|name| {
            read.borrow_mut().push(name.to_owned());
            None
        });
        assert_eq!(read.into_inner(), LogSettings::VARIABLES.map(String::from).to_vec());
    }

    /// A writer that keeps what was logged.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().expect("lock").clone()).expect("utf-8").lines().map(String::from).collect()
        }
    }

    fn settings(vars: &[(&str, &str)]) -> LogSettings {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        LogSettings::from_lookup(|name| vars.get(name).cloned())
    }

    fn log_an_invocation(settings: &LogSettings) -> Vec<String> {
        let captured = Captured::default();
        let subscriber = lambda_subscriber(settings, captured.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("before any invocation");
            // The span lambda_runtime opens, and ours inside it.
            let runtime_span = tracing::info_span!(
                "Lambda runtime invoke",
                requestId = "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
                xrayTraceId = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700"
            );
            let _runtime = runtime_span.enter();
            let ours = tracing::info_span!("invocation", coldStart = true);
            let _ours = ours.enter();
            tracing::debug!("a detail");
            tracing::info!(received = 10, "batch processed");
            tracing::warn!("something to look at");
        });
        captured.lines()
    }

    #[test]
    fn every_line_of_an_invocation_carries_its_request_and_trace_ids() {
        let lines = log_an_invocation(&settings(&[]));
        assert_eq!(lines.len(), 3, "{lines:?}");
        let docs: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).expect("json line")).collect();
        assert!(docs[0].get("requestId").is_none(), "outside an invocation there is no request id");
        for doc in &docs[1..] {
            assert_eq!(doc["requestId"], "8476a536-e9f4-11e8-9739-2dfe598c3fcd");
            assert_eq!(doc["xrayTraceId"], "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700");
            assert_eq!(doc["coldStart"], true);
            assert!(OffsetDateTime::parse(doc["timestamp"].as_str().expect("timestamp"), &Rfc3339).is_ok());
        }
        assert_eq!(docs[1]["level"], "INFO");
        assert_eq!(docs[1]["message"], "batch processed");
        assert_eq!(docs[1]["received"], 10);
        assert_eq!(docs[2]["level"], "WARN");
    }

    #[test]
    fn lambda_log_level_wins_over_rust_log() {
        let settings = settings(&[("AWS_LAMBDA_LOG_LEVEL", "WARN"), ("RUST_LOG", "debug")]);
        assert_eq!(settings.metrics_level, "WARN");
        let lines = log_an_invocation(&settings);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("something to look at"));

        let debug = log_an_invocation(&self::settings(&[("AWS_LAMBDA_LOG_LEVEL", "debug")]));
        assert_eq!(debug.len(), 4, "{debug:?}");
        assert_eq!(self::settings(&[("RUST_LOG", "debug")]).filter, "debug");
        assert_eq!(self::settings(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")]).metrics_level, "FATAL");
        assert_eq!(self::settings(&[("AWS_LAMBDA_LOG_LEVEL", "")]).filter, "info");
    }

    #[test]
    fn text_format_keeps_the_request_id() {
        let lines = log_an_invocation(&settings(&[("AWS_LAMBDA_LOG_FORMAT", "Text")]));
        assert_eq!(lines.len(), 3);
        assert!(serde_json::from_str::<Value>(&lines[1]).is_err(), "text, not JSON");
        assert!(lines[1].contains(" INFO "), "{}", lines[1]);
        assert!(lines[1].contains("requestId=8476a536-e9f4-11e8-9739-2dfe598c3fcd"), "{}", lines[1]);
        assert!(lines[1].ends_with("batch processed"), "{}", lines[1]);
        assert_eq!(settings(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")]).format, LogFormat::Json);
    }

    #[test]
    fn colour_only_on_a_terminal() {
        assert!(!use_color(false));
    }
}
