//! The answer to a CloudFormation custom resource request: its JSON document
//! ([`login_etl_core::deploy_hook::CustomResourceResponse`]) PUT to the request's
//! `ResponseURL`, a presigned S3 URL. The signature is in the URL, so the PUT needs no AWS
//! credentials and no IAM permission; from a function in a VPC it needs a route to S3 (an S3
//! gateway endpoint or a NAT gateway, docs/deploy.md step 2).
//!
//! The client is the one the AWS SDK already builds in (hyper 1 and hyper-rustls), with
//! rustls verifying the server against the Mozilla roots.

use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::adapters::tls;
use crate::config::SslMode;

/// How long one PUT may take; S3 answers in well under a second.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts before giving up: CloudFormation waits for the answer, so a dropped connection is
/// worth one more try.
const ATTEMPTS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    #[error("the custom resource's ResponseURL is not an http(s) URL")]
    InvalidUrl,
    #[error("setting up TLS for the answer to CloudFormation failed")]
    Tls(#[from] tls::TlsError),
    #[error("sending the answer to CloudFormation failed after {ATTEMPTS} attempts: {last}")]
    Send { last: String },
}

/// PUTs `body` to `url` (cfn-response's way: an empty content type, which the presigned URL
/// was signed for). The URL is never logged: its query string is a credential.
pub async fn put(url: &str, body: Vec<u8>) -> Result<(), ResponseError> {
    let uri: hyper::Uri = url.parse().map_err(|_| ResponseError::InvalidUrl)?;
    if !matches!(uri.scheme_str(), Some("https" | "http")) || uri.host().is_none() {
        return Err(ResponseError::InvalidUrl);
    }
    // AWS's URLs are https; LocalStack's (make e2e) are plain http.
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls::client_config(SslMode::VerifyFull, None)?)
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let body = Bytes::from(body);
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        let request = hyper::Request::put(uri.clone())
            .header(hyper::header::CONTENT_TYPE, "")
            .header(hyper::header::CONTENT_LENGTH, body.len())
            .body(Full::new(body.clone()))
            .map_err(|_| ResponseError::InvalidUrl)?;
        match tokio::time::timeout(ATTEMPT_TIMEOUT, client.request(request)).await {
            Ok(Ok(response)) if response.status().is_success() => return Ok(()),
            Ok(Ok(response)) => last = format!("HTTP {}", response.status()),
            Ok(Err(err)) => last = describe(&err),
            Err(_) => last = format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs()),
        }
        tracing::warn!(attempt, problem = %last, "the answer to CloudFormation was not accepted");
        if attempt < ATTEMPTS {
            tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
        }
    }
    Err(ResponseError::Send { last })
}

/// The error and its causes, without the URL (hyper's errors do not carry it).
fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
