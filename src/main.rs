//! The Lambda function `login-etl`: configuration from the environment, resources built once
//! per instance, then the runtime loop. See `login_etl::lambda`.

use login_etl::config::Config;
use login_etl::{lambda, startup, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init_json();
    let config = Config::from_env()?;
    let handler = startup::build_handler(&config).await?;
    lambda::run(handler).await
}
