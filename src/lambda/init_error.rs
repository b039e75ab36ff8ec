//! A start-up failure reported to the Runtime API's `/runtime/init/error` endpoint, so that
//! Lambda records an init error (shown as such in the console and the invoke response) rather
//! than a runtime that exited without a word.
//!
//! The request goes through the runtime's own client (`lambda_runtime_api_client`, what
//! `lambda_runtime` itself talks to the Runtime API with): `lambda_runtime` reports init
//! errors only for its SnapStart hooks and keeps that request private.

use std::time::Duration;

use lambda_runtime_api_client::{Client, body::Body, build_request};

#[derive(Debug, thiserror::Error)]
pub enum InitErrorReport {
    #[error("AWS_LAMBDA_RUNTIME_API is not set (not running under a Lambda Runtime API)")]
    NoRuntimeApi,
    #[error("AWS_LAMBDA_RUNTIME_API is not an address")]
    Address,
    #[error("the Runtime API did not answer: {0}")]
    Unanswered(String),
    #[error("the Runtime API did not answer within 2 s")]
    Timeout,
    #[error("the Runtime API answered {0}")]
    Refused(http::StatusCode),
}

/// The Runtime API's base URI. Lambda sets `host:port`; emulators such as `cargo lambda watch
/// --only-lambda-apis` use `http://host:port/.rt`, a path prefix the client keeps.
fn base_uri(api: &str) -> Result<http::Uri, InitErrorReport> {
    let api = api.trim().trim_end_matches('/');
    let uri = if api.contains("://") { api.to_owned() } else { format!("http://{api}") };
    uri.parse().map_err(|_| InitErrorReport::Address)
}

/// Reports a start-up failure. `error_type` is a stable code, `message` the operator's text (it
/// names the variable, never a secret value). `runtime_api` is
/// [`crate::config::AwsConfig::runtime_api`].
pub async fn report_init_error(
    runtime_api: Option<&str>,
    error_type: &str,
    message: &str,
) -> Result<(), InitErrorReport> {
    let api = runtime_api.ok_or(InitErrorReport::NoRuntimeApi)?;
    let client = Client::builder()
        .with_endpoint(base_uri(api)?)
        .build()
        .map_err(|err| InitErrorReport::Unanswered(err.to_string()))?;
    let body = serde_json::json!({"errorType": error_type, "errorMessage": message, "stackTrace": []}).to_string();
    let request = build_request()
        .method(http::Method::POST)
        .uri("/2018-06-01/runtime/init/error")
        .header("Lambda-Runtime-Function-Error-Type", error_type)
        .header("Content-Type", "application/json")
        .body(Body::from(body))
        .map_err(|_| InitErrorReport::Address)?;
    let response = tokio::time::timeout(Duration::from_secs(2), client.call(request))
        .await
        .map_err(|_| InitErrorReport::Timeout)?
        .map_err(|err| InitErrorReport::Unanswered(err.to_string()))?;
    match response.status() {
        status if status.is_success() => Ok(()),
        status => Err(InitErrorReport::Refused(status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_api_is_found_as_lambda_and_emulators_give_it() {
        let uri = |api| base_uri(api).map(|uri| uri.to_string()).ok();
        assert_eq!(uri("127.0.0.1:9001").as_deref(), Some("http://127.0.0.1:9001/"));
        assert_eq!(uri("http://127.0.0.1:9000/.rt").as_deref(), Some("http://127.0.0.1:9000/.rt"));
        assert_eq!(uri("http://localhost:9000/").as_deref(), Some("http://localhost:9000/"));
        assert!(uri("not an address").is_none());
    }
}
