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

/// What `login-etl --help` prints: this binary is the function, not a tool.
const USAGE: &str = "\
login-etl: the Lambda function (SQS -> validate/mask -> PostgreSQL). It takes no arguments.

It runs under a Lambda Runtime API, which Lambda, `cargo lambda watch` and `sam local` provide:
it needs AWS_LAMBDA_RUNTIME_API, AWS_LAMBDA_FUNCTION_NAME, AWS_LAMBDA_FUNCTION_MEMORY_SIZE and
AWS_LAMBDA_FUNCTION_VERSION, and its own configuration (DATABASE_URL or DB_SECRET_ID, MASKING_KEY
or MASKING_KEY_SECRET_ID, ...; see README.md).

To run the same handler outside Lambda use login-etl-cli: `invoke <event.json>` or `drain`.

Options:
  -h, --help     Print this help
  -V, --version  Print the version";

/// `--help` and `--version` print and exit 0; any other argument is refused (exit 2).
fn answer_arguments() -> Option<ExitCode> {
    let argument = std::env::args_os().nth(1)?;
    match argument.to_string_lossy().as_ref() {
        "-h" | "--help" => println!("{USAGE}"),
        "-V" | "--version" => println!("login-etl {}", env!("CARGO_PKG_VERSION")),
        other => {
            eprintln!("error: login-etl takes no arguments (got `{other}`); see `login-etl --help`");
            return Some(ExitCode::from(2));
        }
    }
    Some(ExitCode::SUCCESS)
}

/// Which of [`lambda::RUNTIME_ENV`] are missing (or, for the memory size, not a number): outside
/// Lambda the runtime client would panic on the first of them.
fn missing_runtime_env() -> Vec<&'static str> {
    lambda::RUNTIME_ENV
        .into_iter()
        .filter(|name| match std::env::var(name) {
            Ok(value) if *name == "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" => value.trim().parse::<i32>().is_err(),
            Ok(value) => value.trim().is_empty(),
            Err(_) => true,
        })
        .collect()
}

fn main() -> ExitCode {
    if let Some(code) = answer_arguments() {
        return code;
    }
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
            Ok(config) => config,
            Err(err) => return init_failed(None, "Runtime.ConfigError", &err.to_string()).await,
        };
        // Configuration errors first: they are reported to the Runtime API when there is one.
        if let Err(err) = config.require_task() {
            return init_failed(config.aws.runtime_api.as_deref(), "Runtime.ConfigError", &err.to_string()).await;
        }
        let missing = missing_runtime_env();
        if !missing.is_empty() {
            tracing::error!(
                "not running under a Lambda Runtime API: {} not set (Lambda, `cargo lambda watch` and `sam local` \
                 set them); to run the handler outside Lambda use `login-etl-cli invoke <event.json>` or \
                 `login-etl-cli drain`",
                missing.join(", ")
            );
            return ExitCode::FAILURE;
        }
        if config.lifecycle.task == Task::Maintenance {
            return maintenance(config).await;
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
