//! The Lambda function `login-etl`: the environment read once, logging set up, then the
//! bootstrap (`login_etl::lambda::bootstrap`): configuration, resources built once per
//! instance, the runtime loop.

// The handler's future (deadpool, tokio-postgres, the AWS SDK) nests deeper than the default.
#![recursion_limit = "256"]

use std::process::ExitCode;

use login_etl::config::Environment;
use login_etl::lambda::bootstrap;
use login_etl::telemetry::{self, LogSettings};

fn main() -> ExitCode {
    if let Some(code) = bootstrap::answer_arguments(std::env::args_os().nth(1)) {
        return code;
    }
    let environment = Environment::capture();
    bootstrap::unset_blank_sdk_variables(&environment);
    let log = LogSettings::from_environment(&environment);
    telemetry::init_lambda(&log);
    bootstrap::run(&environment, &log)
}
