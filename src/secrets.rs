//! The Secrets Manager adapter: database credentials and the masking key, read at cold start.
//!
//! `AWS_ENDPOINT_URL` is honoured by aws-config, so LocalStack serves the same secrets locally.
//! Errors name the secret and the problem, never the secret's value.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use serde::Deserialize;
use sqlx::postgres::PgConnectOptions;

use crate::mask::MaskingKey;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("reading secret `{id}` failed")]
    Fetch {
        id: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("secret `{id}` has no SecretString")]
    NotText { id: String },
    #[error("secret `{id}` is malformed: {problem}")]
    Malformed { id: String, problem: String },
}

/// A Secrets Manager client with short timeouts: a cold start that cannot reach the service
/// should fail fast and be retried by Lambda, not hang until the function timeout.
#[derive(Clone, Debug)]
pub struct SecretStore {
    client: aws_sdk_secretsmanager::Client,
}

impl SecretStore {
    pub async fn from_env() -> SecretStore {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(2))
            .operation_attempt_timeout(Duration::from_secs(3))
            .operation_timeout(Duration::from_secs(8))
            .build();
        let config = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(timeouts)
            .load()
            .await;
        SecretStore {
            client: aws_sdk_secretsmanager::Client::new(&config),
        }
    }

    async fn secret_string(&self, id: &str) -> Result<String, SecretError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|err| SecretError::Fetch {
                id: id.to_owned(),
                source: Box::new(err.into_service_error()),
            })?;
        output
            .secret_string
            .ok_or_else(|| SecretError::NotText { id: id.to_owned() })
    }

    /// Connection options from an RDS-format database secret.
    pub async fn database(&self, id: &str) -> Result<PgConnectOptions, SecretError> {
        let text = self.secret_string(id).await?;
        parse_database_secret(&text).map_err(|problem| SecretError::Malformed {
            id: id.to_owned(),
            problem,
        })
    }

    /// The masking key from a secret holding its hex text.
    pub async fn masking_key(&self, id: &str) -> Result<MaskingKey, SecretError> {
        let text = self.secret_string(id).await?;
        MaskingKey::from_hex(&text).map_err(|err| SecretError::Malformed {
            id: id.to_owned(),
            problem: err.to_string(),
        })
    }
}

/// The RDS secret format, as RDS and its rotation lambdas write it. `engine` and other keys are
/// ignored.
#[derive(Deserialize)]
struct RdsSecret {
    username: Option<String>,
    password: Option<String>,
    host: Option<String>,
    port: Option<serde_json::Value>,
    dbname: Option<String>,
}

/// Parses `{"username","password","host","port","dbname"}`; `port` may be a number or a
/// string and defaults to 5432, `dbname` defaults to `postgres`. The problem text never
/// quotes the secret.
pub fn parse_database_secret(text: &str) -> Result<PgConnectOptions, String> {
    let secret: RdsSecret =
        serde_json::from_str(text).map_err(|_| "not a JSON object in the RDS secret format".to_string())?;
    let required =
        |value: Option<String>, key: &str| value.filter(|v| !v.is_empty()).ok_or(format!("`{key}` is missing"));
    let username = required(secret.username, "username")?;
    let password = required(secret.password, "password")?;
    let host = required(secret.host, "host")?;
    let port = match secret.port {
        None | Some(serde_json::Value::Null) => 5432,
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or("`port` is out of range")?,
        Some(serde_json::Value::String(s)) => s.parse::<u16>().map_err(|_| "`port` is not a port number")?,
        Some(_) => return Err("`port` must be a number".into()),
    };
    let dbname = secret
        .dbname
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "postgres".into());
    Ok(PgConnectOptions::new()
        .host(&host)
        .port(port)
        .username(&username)
        .password(&password)
        .database(&dbname))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_rds_format() {
        let options = parse_database_secret(
            r#"{"engine":"postgres","username":"loader","password":"pw","host":"db.internal","port":6432,"dbname":"logins"}"#,
        )
        .expect("valid");
        assert_eq!(options.get_host(), "db.internal");
        assert_eq!(options.get_port(), 6432);
        assert_eq!(options.get_username(), "loader");
        assert_eq!(options.get_database(), Some("logins"));
    }

    #[test]
    fn port_may_be_a_string_and_defaults_apply() {
        let options =
            parse_database_secret(r#"{"username":"u","password":"p","host":"h","port":"5433"}"#).expect("valid");
        assert_eq!(options.get_port(), 5433);
        assert_eq!(options.get_database(), Some("postgres"));
        let options = parse_database_secret(r#"{"username":"u","password":"p","host":"h"}"#).expect("valid");
        assert_eq!(options.get_port(), 5432);
    }

    #[test]
    fn malformed_secrets_are_explained_without_their_value() {
        let cases = [
            ("hunter2", "not a JSON object in the RDS secret format"),
            (r#"{"username":"u","host":"h","password":""}"#, "`password` is missing"),
            (r#"{"password":"hunter2","host":"h"}"#, "`username` is missing"),
            (
                r#"{"username":"u","password":"hunter2","host":"h","port":70000}"#,
                "`port` is out of range",
            ),
            (
                r#"{"username":"u","password":"hunter2","host":"h","port":"x"}"#,
                "`port` is not a port number",
            ),
        ];
        for (text, problem) in cases {
            assert_eq!(parse_database_secret(text).err().as_deref(), Some(problem), "{text}");
        }
    }
}
