//! The Lambda function `login-etl`: configuration from the environment, resources built once
//! per instance, then the runtime loop. See `login_etl::lambda`.

// The handler's future (deadpool, tokio-postgres, the AWS SDK) nests deeper than the default.
#![recursion_limit = "256"]

use std::process::ExitCode;

use login_etl::config::Config;
use login_etl::handler::{Handler, error_chain};
use login_etl::{lambda, startup, telemetry};

/// Variables a template may declare with an empty value to mean "unset" (`sam local invoke`
/// only passes variables the template declares, so local-only ones are declared empty).
/// The AWS SDK would otherwise warn about an invalid empty endpoint at every cold start.
const BLANK_MEANS_UNSET: [&str; 1] = ["AWS_ENDPOINT_URL"];

fn main() -> ExitCode {
    for name in BLANK_MEANS_UNSET {
        if std::env::var_os(name).is_some_and(|value| value.to_string_lossy().trim().is_empty()) {
            // SAFETY: no other thread exists yet; the runtime is built below.
            unsafe { std::env::remove_var(name) };
        }
    }
    let log = telemetry::LogSettings::from_env();
    telemetry::init_lambda(&log);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(error = %err, "could not start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let handler = match start().await {
            Ok(handler) => handler,
            Err((error_type, message)) => return init_failed(error_type, &message).await,
        };
        lambda::close_on_shutdown(handler.loader().clone()).await;
        match lambda::run(handler, &log).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                tracing::error!(error = %err, "the Lambda runtime loop stopped");
                ExitCode::FAILURE
            }
        }
    })
}

/// Reads the configuration and builds the handler; a failure is `(errorType, message)`.
async fn start() -> Result<Handler, (&'static str, String)> {
    let config = Config::from_env().map_err(|err| ("Runtime.ConfigError", err.to_string()))?;
    startup::build_handler(&config).await.map_err(|err| ("Runtime.StartupError", error_chain(&err)))
}

/// A start-up failure: one clear log line, reported to the Runtime API's init-error endpoint
/// so Lambda shows an init error, then exit.
async fn init_failed(error_type: &'static str, message: &str) -> ExitCode {
    tracing::error!(errorType = error_type, "start-up failed: {message}");
    if let Err(err) = lambda::report_init_error(error_type, message).await {
        tracing::warn!(error = %err, "could not report the start-up failure to the Runtime API");
    }
    ExitCode::FAILURE
}
