//! The Secrets Manager adapter: database credentials and the masking key, read at cold start.
//!
//! `AWS_ENDPOINT_URL` is honoured by aws-config, so LocalStack serves the same secrets locally.
//! Errors name the secret and the problem, never the secret's value.

use serde::Deserialize;

use crate::adapters::database::DbTarget;
use crate::config::SslMode;
use login_etl_core::mask::MaskingKey;

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
    /// The KMS key the secrets this store writes are encrypted with (None: the account's
    /// default key, aws/secretsmanager).
    kms_key_id: Option<String>,
}

impl SecretStore {
    /// A client from an explicit SDK configuration.
    pub fn new(config: &aws_config::SdkConfig) -> SecretStore {
        SecretStore { client: aws_sdk_secretsmanager::Client::new(config), kms_key_id: None }
    }

    pub async fn from_env() -> SecretStore {
        let config = crate::adapters::aws::load_aws_config(std::time::Duration::from_secs(3)).await;
        SecretStore::new(&config)
    }

    /// The same store, writing secrets encrypted with `kms_key_id` (a key id, ARN or alias), as
    /// the stack's masking-key secret is with its raw-data key.
    pub fn encrypted_with(self, kms_key_id: &str) -> SecretStore {
        SecretStore { kms_key_id: Some(kms_key_id.to_owned()), ..self }
    }

    /// A secret's text, for secrets of no special format (e.g. a vault private key).
    pub async fn secret_text(&self, id: &str) -> Result<String, SecretError> {
        self.secret_string(id).await
    }

    async fn secret_string(&self, id: &str) -> Result<String, SecretError> {
        let output = self.client.get_secret_value().secret_id(id).send().await.map_err(|err| SecretError::Fetch {
            id: id.to_owned(),
            source: Box::new(crate::adapters::aws::describe(&err)),
        })?;
        output.secret_string.ok_or_else(|| SecretError::NotText { id: id.to_owned() })
    }

    /// Connection options from an RDS-format database secret.
    pub async fn database(&self, id: &str) -> Result<DbTarget, SecretError> {
        let text = self.secret_string(id).await?;
        parse_database_secret(&text).map_err(|problem| SecretError::Malformed { id: id.to_owned(), problem })
    }

    /// The masking key from a secret holding its hex text.
    pub async fn masking_key(&self, id: &str) -> Result<MaskingKey, SecretError> {
        let text = self.secret_string(id).await?;
        MaskingKey::from_hex(&text)
            .map_err(|err| SecretError::Malformed { id: id.to_owned(), problem: err.to_string() })
    }
}

impl SecretStore {
    /// Writes `value` as the secret's current version, creating the secret if needed, under
    /// the store's KMS key if it has one (an existing secret is moved to that key first).
    pub async fn put(&self, id: &str, value: &str) -> Result<(), SecretError> {
        let fetch_error =
            |err: Box<dyn std::error::Error + Send + Sync>| SecretError::Fetch { id: id.to_owned(), source: err };
        let exists = self.client.describe_secret().secret_id(id).send().await.is_ok();
        if exists {
            if let Some(key) = &self.kms_key_id {
                self.client
                    .update_secret()
                    .secret_id(id)
                    .kms_key_id(key)
                    .send()
                    .await
                    .map_err(|err| fetch_error(Box::new(err.into_service_error())))?;
            }
            self.client
                .put_secret_value()
                .secret_id(id)
                .secret_string(value)
                .send()
                .await
                .map_err(|err| fetch_error(Box::new(crate::adapters::aws::describe(&err))))?;
        } else {
            self.client
                .create_secret()
                .name(id)
                .secret_string(value)
                .set_kms_key_id(self.kms_key_id.clone())
                .send()
                .await
                .map_err(|err| fetch_error(Box::new(crate::adapters::aws::describe(&err))))?;
        }
        Ok(())
    }

    /// Creates the masking-key secret unless it exists, with `key_hex` or a new random 32-byte
    /// key. Returns whether it was created. An existing key is never replaced: a new key would
    /// silently make new masked values incomparable with every old one.
    pub async fn create_masking_key_if_absent(&self, id: &str, key_hex: Option<&str>) -> Result<bool, SecretError> {
        if self.client.describe_secret().secret_id(id).send().await.is_ok() {
            return Ok(false);
        }
        let key_hex = match key_hex {
            Some(hex) => {
                MaskingKey::from_hex(hex)
                    .map_err(|err| SecretError::Malformed { id: id.to_owned(), problem: err.to_string() })?;
                hex.trim().to_owned()
            }
            None => hex::encode(rand::random::<[u8; 32]>()),
        };
        self.put(id, &key_hex).await?;
        Ok(true)
    }
}

/// The RDS-format secret for a `postgres://` URL, as `login-etl-cli setup` stores it.
pub fn database_secret_json(url: &str) -> Result<String, String> {
    let url = url::Url::parse(url).map_err(|_| "not a postgres:// URL".to_string())?;
    let decode = |text: &str| percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned();
    let dbname = url.path().trim_start_matches('/');
    Ok(serde_json::json!({
        "engine": "postgres",
        "username": decode(url.username()),
        "password": url.password().map(decode).unwrap_or_default(),
        "host": url.host_str().unwrap_or("localhost"),
        "port": url.port().unwrap_or(5432),
        "dbname": if dbname.is_empty() { "postgres" } else { dbname },
    })
    .to_string())
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
/// string and defaults to 5432. `dbname` is required: RDS's own master-user secret has only
/// `username` and `password`, and defaulting to `postgres` would load into (or migrate, or
/// drop partitions of) the wrong database without a word. The problem text never quotes the
/// secret.
pub fn parse_database_secret(text: &str) -> Result<DbTarget, String> {
    let secret: RdsSecret =
        serde_json::from_str(text).map_err(|_| "not a JSON object in the RDS secret format".to_string())?;
    let required =
        |value: Option<String>, key: &str| value.filter(|v| !v.is_empty()).ok_or(format!("`{key}` is missing"));
    let username = required(secret.username, "username")?;
    let host = required(secret.host, "host")?;
    // RDS always sets a password; a local server with trust authentication needs none.
    let password = secret.password.unwrap_or_default();
    let port = match secret.port {
        None | Some(serde_json::Value::Null) => 5432,
        Some(serde_json::Value::Number(n)) => {
            n.as_u64().and_then(|p| u16::try_from(p).ok()).ok_or("`port` is out of range")?
        }
        Some(serde_json::Value::String(s)) => s.parse::<u16>().map_err(|_| "`port` is not a port number")?,
        Some(_) => return Err("`port` must be a number".into()),
    };
    let dbname = required(secret.dbname, "dbname")?;
    // TLS when offered, as libpq does; DB_SSL_MODE tightens it.
    Ok(DbTarget { host, port, user: username, password: Some(password), dbname, ssl_mode: SslMode::Prefer })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_rds_secrets_and_back() {
        let json = database_secret_json("postgres://loader:p%40s+s@db.internal:6432/logins").expect("valid");
        let value: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(value["password"], "p@s+s");
        let target = parse_database_secret(&json).expect("round trip");
        assert_eq!((target.host.as_str(), target.port, target.user.as_str()), ("db.internal", 6432, "loader"));
        assert_eq!((target.dbname.as_str(), target.password.as_deref()), ("logins", Some("p@s+s")));
    }

    #[test]
    fn parses_the_rds_format() {
        let target = parse_database_secret(
            r#"{"engine":"postgres","username":"loader","password":"pw","host":"db.internal","port":6432,"dbname":"logins"}"#,
        )
        .expect("valid");
        assert_eq!(target.host, "db.internal");
        assert_eq!(target.port, 6432);
        assert_eq!(target.user, "loader");
        assert_eq!(target.dbname, "logins");
        assert_eq!(target.ssl_mode, SslMode::Prefer);
    }

    #[test]
    fn port_may_be_a_string_and_defaults_to_5432() {
        let target = parse_database_secret(r#"{"username":"u","password":"p","host":"h","port":"5433","dbname":"d"}"#)
            .expect("valid");
        assert_eq!(target.port, 5433);
        let target =
            parse_database_secret(r#"{"username":"u","password":"p","host":"h","dbname":"d"}"#).expect("valid");
        assert_eq!(target.port, 5432);
    }

    /// RDS's managed master-user secret holds only `username` and `password`; without a
    /// `dbname` the function (or the maintenance task) would connect to `postgres`.
    #[test]
    fn a_secret_without_dbname_is_refused_by_name() {
        for text in [
            r#"{"username":"u","password":"hunter2","host":"h","port":5432}"#,
            r#"{"username":"u","password":"hunter2","host":"h","port":5432,"dbname":""}"#,
        ] {
            assert_eq!(parse_database_secret(text).err().as_deref(), Some("`dbname` is missing"), "{text}");
        }
    }

    #[test]
    fn malformed_secrets_are_explained_without_their_value() {
        let cases = [
            ("hunter2", "not a JSON object in the RDS secret format"),
            (r#"{"username":"u","password":"hunter2","host":""}"#, "`host` is missing"),
            (r#"{"password":"hunter2","host":"h"}"#, "`username` is missing"),
            (r#"{"username":"u","password":"hunter2","host":"h","port":70000}"#, "`port` is out of range"),
            (r#"{"username":"u","password":"hunter2","host":"h","port":"x"}"#, "`port` is not a port number"),
        ];
        for (text, problem) in cases {
            assert_eq!(parse_database_secret(text).err().as_deref(), Some(problem), "{text}");
        }
    }
}
