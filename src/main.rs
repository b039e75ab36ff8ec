//! The Lambda function `login-etl`: configuration from the environment, resources built once
//! per instance, then the runtime loop. See `login_etl::lambda`.

// The handler's future (deadpool, tokio-postgres, the AWS SDK) nests deeper than the default.
#![recursion_limit = "256"]

use login_etl::config::Config;
use login_etl::{lambda, startup, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init_json();
    let config = Config::from_env()?;
    let handler = startup::build_handler(&config).await?;
    lambda::close_on_shutdown(handler.loader().clone()).await;
    lambda::run(handler).await
}
