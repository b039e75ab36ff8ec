//! Shared AWS SDK configuration for the adapters.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Loads the SDK configuration from the environment (`AWS_REGION`, credentials chain, and
/// `AWS_ENDPOINT_URL`, which points every client at LocalStack locally), with short timeouts:
/// an unreachable endpoint should fail a cold start or a poll quickly, not hang.
/// The region defaults to `us-east-1` when none is configured, as LocalStack's does.
/// `attempt_timeout` bounds one request; callers that long-poll need more than the wait.
pub async fn load_config(attempt_timeout: Duration) -> SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(attempt_timeout)
        .operation_timeout(attempt_timeout * 3)
        .build();
    let region = aws_config::meta::region::RegionProviderChain::default_provider().or_else(Region::new("us-east-1"));
    aws_config::defaults(BehaviorVersion::latest()).region(region).timeout_config(timeouts).load().await
}
