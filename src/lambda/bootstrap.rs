//! What the function's `main` runs: its arguments answered, the async runtime built for the
//! instance's concurrency, the resources built once, then the task's runtime loop. A start-up
//! failure is one clear log line, reported to the Runtime API as an init error.

use std::process::ExitCode;
use std::sync::Arc;

use super::function::Function;
use super::init_error::report_init_error;
use super::{runtime, shutdown};
use crate::config::{Config, Environment, Task};
use crate::startup;
use crate::telemetry::LogSettings;

/// Variables a template may declare with an empty value to mean "unset" (`sam local invoke`
/// only passes variables the template declares, so local-only ones are declared empty).
/// The AWS SDK, which reads them itself, would otherwise panic on an empty endpoint
/// ([`crate::adapters::aws::ENDPOINT_VARIABLES`]).
const BLANK_MEANS_UNSET: [&str; 4] = crate::adapters::aws::ENDPOINT_VARIABLES;

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

/// `--help` and `--version` print and exit 0; any other argument is refused (exit 2); none:
/// `None`, the function starts.
pub fn answer_arguments(first: Option<std::ffi::OsString>) -> Option<ExitCode> {
    let argument = first?;
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

/// Clears the `BLANK_MEANS_UNSET` variables that `environment` shows blank, for the SDK.
/// Must run before any other thread exists.
pub fn unset_blank_sdk_variables(environment: &Environment) {
    for name in BLANK_MEANS_UNSET {
        if environment.is_blank(name) {
            // SAFETY: called first thing in main, before the async runtime (or any other
            // thread) exists.
            unsafe { std::env::remove_var(name) };
        }
    }
}

/// Builds the async runtime for the configured concurrency and runs the function in it.
pub fn run_function(environment: &Environment, log: &LogSettings) -> ExitCode {
    let config = Config::from_environment(environment);
    let max_concurrency = config.as_ref().map_or(1, |config| config.aws.max_concurrency);
    let runtime = match runtime_for(max_concurrency).enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(error = %err, "could not start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let config = match config {
            Ok(config) => config,
            // Without a valid configuration the Runtime API's address is taken from the
            // snapshot on its own: the one variable the report needs.
            Err(err) => {
                let api = environment.get("AWS_LAMBDA_RUNTIME_API");
                return init_failed(api.as_deref(), "Runtime.ConfigError", &err.to_string()).await;
            }
        };
        start(config, log).await
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

async fn start(config: Config, log: &LogSettings) -> ExitCode {
    let runtime_api = config.aws.runtime_api.clone();
    // Configuration errors first: they are reported to the Runtime API when there is one.
    if let Err(err) = config.require_task() {
        return init_failed(runtime_api.as_deref(), "Runtime.ConfigError", &err.to_string()).await;
    }
    if !config.aws.runtime_env_missing.is_empty() {
        tracing::error!(
            "not running under a Lambda Runtime API: {} not set (Lambda, `cargo lambda watch` and `sam local` \
             set them); to run the handler outside Lambda use `login-etl-cli invoke <event.json>` or \
             `login-etl-cli drain`",
            config.aws.runtime_env_missing.join(", ")
        );
        return ExitCode::FAILURE;
    }
    let stopped = match config.lifecycle.task {
        Task::Maintenance => maintenance(&config).await,
        Task::LoadLogins => load_logins(config, log).await,
    };
    match stopped {
        Ok(()) => ExitCode::SUCCESS,
        Err(Stop::Startup(message)) => init_failed(runtime_api.as_deref(), "Runtime.StartupError", &message).await,
        Err(Stop::Runtime(err)) => {
            tracing::error!(error = %err, "the Lambda runtime loop stopped");
            ExitCode::FAILURE
        }
    }
}

/// Why the function stopped.
enum Stop {
    /// Its resources could not be built: the message for the init error.
    Startup(String),
    /// The runtime loop ended with an error.
    Runtime(lambda_runtime::Error),
}

/// The loader: the handler built once, SIGTERM handled, the runtime loop.
async fn load_logins(config: Config, log: &LogSettings) -> Result<(), Stop> {
    let handler = startup::build_handler(&config)
        .await
        .map_err(|err| Stop::Startup(format!("{:#}", anyhow::Error::from(err))))?;
    let function = Arc::new(Function::new(handler, config.aws.function_name, log));
    shutdown::close_on_shutdown(function.handler().loader().clone(), function.in_flight().clone()).await;
    runtime::run(function).await.map_err(Stop::Runtime)
}

/// The maintenance function (`LOGIN_ETL_TASK=maintenance`): the same bootstrap with the table
/// owner's database secret: partitions ahead and retention on each scheduled event, `migrate`
/// on CloudFormation's requests. It connects on its first event, not at start-up: a secret it
/// cannot read must become CloudFormation's FAILED answer, never an init error that leaves
/// the stack waiting for one.
async fn maintenance(config: &Config) -> Result<(), Stop> {
    runtime::run_maintenance(config, config.lifecycle.retention_keep_months).await.map_err(Stop::Runtime)
}

/// A start-up failure: one clear log line, reported to the Runtime API's init-error endpoint
/// so Lambda shows an init error, then exit.
async fn init_failed(runtime_api: Option<&str>, error_type: &'static str, message: &str) -> ExitCode {
    tracing::error!(errorType = error_type, "start-up failed: {message}");
    if let Err(err) = report_init_error(runtime_api, error_type, message).await {
        tracing::warn!(error = %err, "could not report the start-up failure to the Runtime API");
    }
    ExitCode::FAILURE
}
