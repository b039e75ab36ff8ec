//! The Lambda function `login-etl`: the environment read once, logging set up, then the
//! bootstrap ([`login_etl::run_function`]): configuration, resources built once per instance,
//! the runtime loop.

// The handler's future (deadpool, tokio-postgres, the AWS SDK) nests deeper than the default.
#![recursion_limit = "256"]

use std::process::ExitCode;

use login_etl::{Environment, LogSettings};

fn main() -> ExitCode {
    if let Some(code) = login_etl::answer_arguments(std::env::args_os().nth(1)) {
        return code;
    }
    let environment = Environment::capture();
    login_etl::unset_blank_sdk_variables(&environment);
    let log = LogSettings::from_environment(&environment);
    login_etl::init_lambda_logging(&log);
    login_etl::run_function(&environment, &log)
}
