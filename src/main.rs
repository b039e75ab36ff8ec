//! The Lambda function `login-etl`: configuration from the environment, resources built once
//! per instance, then the runtime loop. See `login_etl::lambda`.

// The handler's future (deadpool, tokio-postgres, the AWS SDK) nests deeper than the default.
#![recursion_limit = "256"]

use std::process::ExitCode;
use std::sync::Arc;

use login_etl::config::{Config, Task};
use login_etl::lambda::Function;
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
    let runtime = match runtime_for(lambda::max_concurrency_from_env()).enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(error = %err, "could not start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let config = match Config::from_env() {
            Ok(config) if config.lifecycle.task == Task::Maintenance => return maintenance(config).await,
            Ok(config) => config,
            Err(err) => return init_failed(None, "Runtime.ConfigError", &err.to_string()).await,
        };
        if let Err(err) = config.require_handler() {
            return init_failed(config.aws.runtime_api.as_deref(), "Runtime.ConfigError", &err.to_string()).await;
        }
        let handler = match startup::build_handler(&config).await {
            Ok(handler) => handler,
            Err(err) => {
                let message = format!("{:#}", anyhow::Error::from(err));
                return init_failed(config.aws.runtime_api.as_deref(), "Runtime.StartupError", &message).await;
            }
        };
        let function = Arc::new(Function::new(handler, config.aws.function_name, &log));
        lambda::close_on_shutdown(function.handler().loader().clone(), function.in_flight().clone()).await;
        match lambda::run(function).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                tracing::error!(error = %err, "the Lambda runtime loop stopped");
                ExitCode::FAILURE
            }
        }
    })
}

/// One invocation at a time (classic Lambda, or `AWS_LAMBDA_MAX_CONCURRENCY` 1): a
/// current-thread runtime. The handler, the database connection's task and the Runtime API
/// client then share one thread, so a batch's round trips wake no other thread: on a loaded
/// or fractional vCPU each such wake-up costs tens of microseconds. Several at once (Lambda
/// Managed Instances): a worker per vCPU, so invocations use every vCPU of the environment.
fn runtime_for(max_concurrency: u32) -> tokio::runtime::Builder {
    match max_concurrency {
        0 | 1 => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    }
}

/// The scheduled maintenance function (`LOGIN_ETL_TASK=maintenance`): the same bootstrap with
/// the table owner's database secret, partitions ahead and retention on each scheduled event.
async fn maintenance(config: Config) -> ExitCode {
    let runtime_api = config.aws.runtime_api.clone();
    let store = match startup::connect_store(&config).await {
        Ok(store) => store,
        Err(err) => {
            let message = format!("{:#}", anyhow::Error::from(err));
            return init_failed(runtime_api.as_deref(), "Runtime.StartupError", &message).await;
        }
    };
    match lambda::run_maintenance(store, config.lifecycle.retention_keep_months).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "the Lambda runtime loop stopped");
            ExitCode::FAILURE
        }
    }
}

/// A start-up failure: one clear log line, reported to the Runtime API's init-error endpoint
/// so Lambda shows an init error, then exit. Without a valid configuration the Runtime API's
/// address is read on its own (the one variable the report needs).
async fn init_failed(runtime_api: Option<&str>, error_type: &'static str, message: &str) -> ExitCode {
    tracing::error!(errorType = error_type, "start-up failed: {message}");
    let fallback = std::env::var("AWS_LAMBDA_RUNTIME_API").ok();
    if let Err(err) = lambda::report_init_error(runtime_api.or(fallback.as_deref()), error_type, message).await {
        tracing::warn!(error = %err, "could not report the start-up failure to the Runtime API");
    }
    ExitCode::FAILURE
}
