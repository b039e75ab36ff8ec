//! Cold start: turn a [`Config`] into a ready [`Handler`], reading secrets once.

use tokio::sync::OnceCell;

use crate::adapters::database::DbTarget;
use crate::adapters::iam::{IamAuth, IamError};
use crate::adapters::loader::{DbSecret, Loader, LoaderSetupError};
use crate::adapters::operator_db::OperatorDb;
use crate::adapters::secrets::{SecretError, SecretStore};
use crate::adapters::visibility::VisibilityBackoff;
use crate::config::{Config, ConfigError, DatabaseSource, MaskingKeySource};
use crate::handler::Handler;
use login_etl_core::mask::{Masker, MaskingKey, MaskingMode};
use login_etl_core::policy::FieldPolicy;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("DATABASE_URL: {0}")]
    InvalidDatabaseUrl(#[source] crate::adapters::database::TargetError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Loader(#[from] LoaderSetupError),
    #[error(transparent)]
    Iam(#[from] IamError),
    #[error(
        "DB_IAM_AUTH is for the function's connections (and drain and invoke); the operator commands and the \
         maintenance function connect with the password of DATABASE_URL or DB_SECRET_ID: unset DB_IAM_AUTH for them"
    )]
    IamForOperatorCommands,
    #[error("FIELD_POLICY_FILE: reading {path} failed")]
    PolicyFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("FIELD_POLICY_FILE: {0}")]
    Policy(#[from] login_etl_core::policy::PolicyError),
}

/// Builds the handler: secrets are read (concurrently) and the loader's pool is created, but
/// no database connection is opened until the first batch needs one.
pub async fn build_handler(config: &Config) -> Result<Handler, StartupError> {
    // Built on first use, once, and only when a secret is configured.
    build_handler_with(config, OnceCell::new()).await
}

/// [`build_handler`] with a given Secrets Manager client (tests point it at LocalStack).
pub async fn build_handler_with_secrets(config: &Config, secrets: SecretStore) -> Result<Handler, StartupError> {
    build_handler_with(config, OnceCell::new_with(Some(secrets))).await
}

async fn build_handler_with(config: &Config, secrets: OnceCell<SecretStore>) -> Result<Handler, StartupError> {
    config.require_handler()?;
    let database = config.database.source()?;
    let connection = &config.database.connection;
    let (target, key) = tokio::try_join!(database_target(database, &secrets), masking_key(config, &secrets))?;
    let target = target.secured(connection);
    let masker = masker_for(config, key)?;
    let iam = match connection.iam_auth {
        true => {
            tracing::info!(user = %target.user, ssl_mode = %target.ssl_mode, "IAM database authentication: a fresh token per connection");
            Some(IamAuth::from_env().await?)
        }
        false => None,
    };
    let db_secret = match (database, secrets.into_inner()) {
        (DatabaseSource::Secret(id), Some(secrets)) => Some(DbSecret::new(secrets, id.clone(), connection.clone())),
        _ => None,
    };
    let loader =
        Loader::with_ca_bundle(target, &config.pool, iam, connection.ca_bundle.as_deref())?.with_db_secret(db_secret);
    if let Some(key) = &config.vault.public_key {
        tracing::info!(vault_key_id = %key.key_id(), "PII vault on: originals are sealed to the vault public key");
    }
    let backoff =
        config.aws.retry_backoff_base.map(|base| VisibilityBackoff::new(base, config.aws.endpoint_url.clone()));
    Ok(Handler::new(masker, loader).with_vault(config.vault.public_key.clone()).with_backoff(backoff))
}

/// The configured masker alone (secrets read as needed): `recover` re-masks what it decrypts
/// to tell genuine originals from planted ones.
pub async fn build_masker(config: &Config) -> Result<Masker, StartupError> {
    let key = masking_key(config, &OnceCell::new()).await?;
    masker_for(config, key)
}

/// The field policy: `FIELD_POLICY_FILE`'s, else the published schema's (no extras).
pub fn field_policy(config: &Config) -> Result<FieldPolicy, StartupError> {
    let Some(path) = &config.masking.field_policy_file else { return Ok(FieldPolicy::published()) };
    let text =
        std::fs::read_to_string(path).map_err(|source| StartupError::PolicyFile { path: path.clone(), source })?;
    let policy = FieldPolicy::from_schema(&text)?;
    let names: Vec<&str> = policy.extras.iter().map(|field| field.name()).collect();
    tracing::info!(path = %path, extras = ?names, "field policy read");
    Ok(policy)
}

fn masker_for(config: &Config, key: Option<MaskingKey>) -> Result<Masker, StartupError> {
    let policy = field_policy(config)?;
    let (ip, ip_prefix) = (config.masking.ip, config.masking.ip_prefix);
    if ip.keeps_prefix() {
        tracing::info!(
            masking_ip = ip.name(),
            ipv4_prefix = ip_prefix.v4(),
            ipv6_prefix = ip_prefix.v6(),
            "ip prefixes kept"
        );
    }
    let masker = match (config.masking.mode, key) {
        (MaskingMode::Hmac, Some(key)) => {
            tracing::info!(masking = %MaskingMode::Hmac, masking_key_id = %key.key_id(), "masking configured");
            Masker::hmac(&key)
        }
        _ => {
            tracing::warn!(
                "MASKING_MODE=sha256: unkeyed masking, reversible by brute force for IPv4; use only for compatibility"
            );
            Masker::sha256_compat()
        }
    };
    Ok(masker.with_ip(ip, ip_prefix).with_policy(&policy))
}

/// The operators' pool ([`OperatorDb`]) (migrations, reports, vault reads): sqlx sessions straight to
/// the server, with a password (not through a transaction-mode pooler; see README). The pool
/// follows `DB_MAX_CONNECTIONS`, with at least the 2 connections these commands always had.
pub async fn connect_operator_db(config: &Config) -> Result<OperatorDb, StartupError> {
    let options = operator_connect_options(config).await?;
    Ok(OperatorDb::connect_lazy(options, config.pool.max_connections.max(2)))
}

/// The connection options of the operator commands' sessions: the configured database with
/// `DB_SSL_MODE` and `DB_CA_BUNDLE` applied. Everything those commands open goes through
/// these, `migrate`'s check for the database included.
pub async fn operator_connect_options(config: &Config) -> Result<sqlx::postgres::PgConnectOptions, StartupError> {
    let connection = &config.database.connection;
    if connection.iam_auth {
        // sqlx takes one password per pool; an IAM token lasts 15 minutes. Refused rather than
        // ignored, so nobody believes an operator session authenticated with IAM.
        return Err(StartupError::IamForOperatorCommands);
    }
    // DB_SSL_MODE applies here as on the function's path: an operator who sets verify-full
    // gets a verified connection, not the URL's or the secret's default.
    let target = database_target(config.database.source()?, &OnceCell::new()).await?.secured(connection);
    use sqlx::ConnectOptions as _;
    // Partition maintenance may take seconds: not worth sqlx's WARN with the statement's text.
    let mut options =
        target.sqlx_options().log_slow_statements(log::LevelFilter::Info, std::time::Duration::from_secs(1));
    if let Some(ca_bundle) = &connection.ca_bundle {
        // Used when the URL's sslmode verifies (RDS: Amazon's RDS CA bundle).
        options = options.ssl_root_cert(ca_bundle);
    }
    Ok(options)
}

async fn database_target(database: &DatabaseSource, secrets: &OnceCell<SecretStore>) -> Result<DbTarget, StartupError> {
    match database {
        DatabaseSource::Url(url) => DbTarget::from_url(url).map_err(StartupError::InvalidDatabaseUrl),
        DatabaseSource::Secret(id) => Ok(secrets.get_or_init(SecretStore::from_env).await.database(id).await?),
    }
}

async fn masking_key(config: &Config, secrets: &OnceCell<SecretStore>) -> Result<Option<MaskingKey>, StartupError> {
    match config.masking.require_key()? {
        Some(MaskingKeySource::Inline(key)) => Ok(Some(key.clone())),
        Some(MaskingKeySource::Secret(id)) => {
            Ok(Some(secrets.get_or_init(SecretStore::from_env).await.masking_key(id).await?))
        }
        None => Ok(None),
    }
}
