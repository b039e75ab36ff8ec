//! The function's AWS surroundings: its name, the Runtime API, its concurrency, the endpoint
//! and the retry back-off ([`AwsConfig`]), and the variables the runtime client needs.

use std::time::Duration;

use super::{ConfigError, number};

/// What the function reads about its AWS surroundings (the SDK reads its own credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsConfig {
    /// `AWS_LAMBDA_FUNCTION_NAME` (default `login-etl`): the metrics' dimension.
    pub function_name: String,
    /// `AWS_LAMBDA_RUNTIME_API`: where a start-up failure is reported; unset outside Lambda.
    pub runtime_api: Option<String>,
    /// `AWS_LAMBDA_MAX_CONCURRENCY` (1 to 1000, default 1): the invocations one execution
    /// environment runs at once (Lambda Managed Instances); the async runtime's shape and the
    /// pool's default size follow it.
    pub max_concurrency: u32,
    /// Which of [`RUNTIME_ENV`] are unset (or, for the memory size, not a number): outside
    /// Lambda the runtime client would panic on the first of them.
    pub runtime_env_missing: Vec<&'static str>,
    /// `AWS_ENDPOINT_URL`: LocalStack's endpoint in local runs; unset on AWS.
    pub endpoint_url: Option<String>,
    /// `RETRY_BACKOFF_BASE_SECONDS`: visibility of a message after its first failed insert,
    /// doubled per receive; `None` (0) keeps the queue's timeout.
    pub retry_backoff_base: Option<Duration>,
}

/// The variables the Lambda runtime client reads (and panics without): Lambda sets them all.
/// The bootstrap checks them (`AwsConfig::runtime_env_missing`) before starting the runtime,
/// and `tests/it/wiring.rs` checks each is one Lambda sets and `docs/configuration.md` lists.
pub const RUNTIME_ENV: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

pub(super) fn aws(get: &impl Fn(&str) -> Option<String>, max_concurrency: u32) -> Result<AwsConfig, ConfigError> {
    let retry_backoff_base = match number(get, "RETRY_BACKOFF_BASE_SECONDS", 180, 0..=43_200)? {
        0 => None,
        seconds => Some(Duration::from_secs(u64::from(seconds))),
    };
    let function_name = get("AWS_LAMBDA_FUNCTION_NAME");
    let runtime_api = get("AWS_LAMBDA_RUNTIME_API");
    let memory_size = get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
    let function_version = get("AWS_LAMBDA_FUNCTION_VERSION");
    let unset = [
        runtime_api.is_none(),
        function_name.is_none(),
        memory_size.is_none_or(|value| value.trim().parse::<i32>().is_err()),
        function_version.is_none(),
    ];
    Ok(AwsConfig {
        function_name: function_name.unwrap_or_else(|| "login-etl".into()),
        runtime_api,
        max_concurrency,
        runtime_env_missing: RUNTIME_ENV
            .into_iter()
            .zip(unset)
            .filter_map(|(name, unset)| unset.then_some(name))
            .collect(),
        endpoint_url: get("AWS_ENDPOINT_URL"),
        retry_backoff_base,
    })
}
