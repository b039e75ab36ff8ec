//! Logging set-up for the binaries.

use tracing_subscriber::EnvFilter;

/// JSON lines on stdout, one object per event, as CloudWatch Logs Insights queries them.
/// `RUST_LOG` filters (default `info`).
pub fn init_json() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .with_ansi(false)
        .try_init();
}

/// Human-readable lines on stderr for the CLI; `RUST_LOG` filters (default `warn`, so the
/// per-batch summaries do not drown the progress line).
pub fn init_human() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
