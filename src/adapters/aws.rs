//! Shared AWS SDK configuration for the adapters.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Loads the SDK configuration from the environment (`AWS_REGION`, credentials chain, and
/// `AWS_ENDPOINT_URL`, which points every client at LocalStack locally), with short timeouts:
/// an unreachable endpoint should fail a cold start or a poll quickly, not hang.
/// The region defaults to `us-east-1` when none is configured, as LocalStack's does.
/// `attempt_timeout` bounds one request; callers that long-poll need more than the wait.
pub async fn load_aws_config(attempt_timeout: Duration) -> SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(attempt_timeout)
        .operation_timeout(attempt_timeout * 3)
        .build();
    let region = aws_config::meta::region::RegionProviderChain::default_provider().or_else(Region::new("us-east-1"));
    aws_config::defaults(BehaviorVersion::latest()).region(region).timeout_config(timeouts).load().await
}

/// The endpoint variables the SDK reads itself. Set but blank, the SDK takes "" for a URL and
/// panics when it builds a client (aws-smithy-types asserts "URL was unset"): exit 101 and a
/// backtrace instead of one line. The function treats blank as unset (it is the SAM template's
/// way to declare a local-only variable); an operator's command refuses it, naming it.
pub const ENDPOINT_VARIABLES: [&str; 4] =
    ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL_KMS"];

/// The first of [`ENDPOINT_VARIABLES`] that `environment` holds blank, with what to do.
pub fn blank_endpoint(environment: &crate::config::Environment) -> Option<String> {
    let name = ENDPOINT_VARIABLES.into_iter().find(|name| environment.is_blank(name))?;
    Some(format!(
        "{name} is set but empty: unset it to reach AWS itself, or set it to the endpoint \
         (LocalStack: http://127.0.0.1:4566)"
    ))
}

/// An AWS call's failure as an operator reads it: one sentence with the service's error code
/// and message (not the SDK's Debug dump), or why no answer came, with the fix when the cause
/// is the local set-up (no endpoint, no credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsFailure {
    pub text: String,
    /// Whether the same call may succeed later: no answer, a timeout, throttling, a 5xx. A
    /// refusal (no such queue, access denied, bad parameter) will not.
    pub retryable: bool,
}

impl std::fmt::Display for AwsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for AwsFailure {}

/// What to check when no answer came.
const ENDPOINT_HINT: &str = "check AWS_ENDPOINT_URL (LocalStack: http://127.0.0.1:4566) and AWS_REGION, \
                             and that the endpoint is reachable";
/// What to set when the SDK found no credentials.
const CREDENTIALS_HINT: &str = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (LocalStack: test / test) or \
                                AWS_PROFILE, or run where a role provides credentials";

/// Describes an SDK error (any service's: they share `SdkError`).
pub fn describe<E>(err: &aws_sdk_sqs::error::SdkError<E>) -> AwsFailure
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_sqs::error::SdkError;
    match err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("an unnamed error");
            let message = service.err().message().filter(|m| !m.trim().is_empty());
            let throttled = code.contains("Throttl") || code.contains("OverLimit") || code == "RequestLimitExceeded";
            let text = match message {
                Some(message) => format!("{code}: {message}"),
                None => format!("{code} (HTTP {status})"),
            };
            AwsFailure { text, retryable: status >= 500 || throttled }
        }
        SdkError::TimeoutError(_) => {
            AwsFailure { text: format!("no answer within the timeout; {ENDPOINT_HINT}"), retryable: true }
        }
        // DispatchFailure, ResponseError, ConstructionFailure (and variants to come).
        _ => {
            let causes = crate::errors::error_chain(err);
            if causes.contains("credentials") || causes.contains("Credentials") {
                // The provider chain lists every provider it tried, one per line: the first says it.
                let first = causes.lines().next().unwrap_or_default().trim_end_matches(". Attempted:");
                AwsFailure { text: format!("no AWS credentials ({first}); {CREDENTIALS_HINT}"), retryable: false }
            } else {
                let retryable = !matches!(err, SdkError::ConstructionFailure(_));
                AwsFailure { text: format!("no answer ({causes}); {ENDPOINT_HINT}"), retryable }
            }
        }
    }
}
