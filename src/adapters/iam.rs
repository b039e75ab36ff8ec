//! IAM database authentication: a SigV4-presigned `connect` request is the password.
//!
//! RDS and RDS Proxy accept, instead of a password, a token that is a presigned URL for the
//! `rds-db` service, valid 15 minutes from its signing time. Tokens are made per connection, so
//! none is ever used near its expiry. Signing is done by `aws-sigv4`, the signer the AWS SDKs
//! use (and the one `aws-sdk-rds`'s token generator wraps); the known-answer test below pins the
//! result to what boto3's `generate_db_auth_token` produces for the same inputs.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};
use aws_sigv4::sign::v4;

/// Everything but SigV4's unreserved characters (`A-Z a-z 0-9 - _ . ~`) is percent-encoded.
const UNRESERVED: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// How long RDS accepts a token after its signing time.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(900);

#[derive(Debug, thiserror::Error)]
pub enum IamError {
    #[error("no AWS credentials to sign the database token with")]
    Credentials(#[source] aws_credential_types::provider::error::CredentialsError),
    #[error("signing the database token failed")]
    Signing(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Makes the token for `user` at `host:port` in `region`, signed at `now`.
pub fn auth_token(
    credentials: &Credentials,
    region: &str,
    host: &str,
    port: u16,
    user: &str,
    now: SystemTime,
) -> Result<String, IamError> {
    let signing_error = |err: Box<dyn std::error::Error + Send + Sync>| IamError::Signing(err);
    let mut settings = SigningSettings::default();
    settings.expires_in = Some(TOKEN_LIFETIME);
    settings.signature_location = SignatureLocation::QueryParams;
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("rds-db")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|err| signing_error(Box::new(err)))?
        .into();
    // Percent-encoded as SigV4 canonicalises it (a space is %20, as boto3 sends it).
    let user = percent_encoding::utf8_percent_encode(user, UNRESERVED).to_string();
    let url = format!("https://{host}:{port}/?Action=connect&DBUser={user}");
    let signable = SignableRequest::new("GET", &url, std::iter::empty(), SignableBody::Bytes(&[]))
        .map_err(|err| signing_error(Box::new(err)))?;
    let (instructions, _signature) = sign(signable, &params).map_err(|err| signing_error(Box::new(err)))?.into_parts();
    let mut request = http::Request::builder().uri(&url).body(()).map_err(|err| signing_error(Box::new(err)))?;
    instructions.apply_to_request_http1x(&mut request);
    let signed = request.uri().to_string();
    Ok(signed.strip_prefix("https://").unwrap_or(&signed).to_owned())
}

/// Makes a fresh token for every new connection, from the instance's credentials (in Lambda,
/// the execution role's, refreshed by the SDK's provider before they expire).
#[derive(Clone, Debug)]
pub struct IamAuth {
    credentials: SharedCredentialsProvider,
    region: String,
}

impl IamAuth {
    pub fn new(credentials: SharedCredentialsProvider, region: String) -> IamAuth {
        IamAuth { credentials, region }
    }

    /// From the SDK's default chain (environment, profile, container or instance role).
    pub async fn from_env() -> Result<IamAuth, IamError> {
        let config = crate::adapters::aws::load_aws_config(Duration::from_secs(3)).await;
        let credentials = config.credentials_provider().ok_or_else(|| {
            IamError::Credentials(aws_credential_types::provider::error::CredentialsError::not_loaded(
                "no credentials provider is configured",
            ))
        })?;
        let region = config.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
        Ok(IamAuth::new(credentials, region))
    }

    pub async fn token(&self, host: &str, port: u16, user: &str) -> Result<String, IamError> {
        let credentials = self.credentials.provide_credentials().await.map_err(IamError::Credentials)?;
        auth_token(&credentials, &self.region, host, port, user, SystemTime::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parts of a token: what precedes the query, and its parameters, sorted (their order
    /// differs between signers and means nothing to RDS; the signature covers their values).
    fn parts(token: &str) -> (String, Vec<(String, String)>) {
        let (base, query) = token.split_once('?').expect("a query");
        let mut params: Vec<(String, String)> =
            url::form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        params.sort();
        (base.to_owned(), params)
    }

    /// The expected value was printed by boto3 (`tools/python/iam-token-known-answer.py`, which
    /// `make test` runs to confirm it still holds) for exactly these inputs: same host, port,
    /// parameters and signature.
    #[test]
    fn the_token_equals_boto3s_generate_db_auth_token() {
        let credentials = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("session/token+with=chars".into()),
            None,
            "test",
        );
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_489_200);
        let token = auth_token(
            &credentials,
            "eu-west-1",
            "proxy.example.eu-west-1.rds.amazonaws.com",
            5432,
            "login loader",
            at,
        )
        .expect("signed");
        let boto3 = include_str!("../../tests/data/iam-token-known-answer.txt").trim();
        assert_eq!(parts(&token), parts(boto3));
        assert!(token.contains("DBUser=login%20loader&"), "{token}");
        let signature = |t: &str| parts(t).1.into_iter().find(|(k, _)| k == "X-Amz-Signature").map(|(_, v)| v);
        assert_eq!(
            signature(&token).as_deref(),
            Some("d0cb1fc5f7ead8e1eeac69071bf609a45153ff5f4bf3c23be80e1d94d00380de")
        );
    }
}
