//! Cold start: turn a [`Config`] into a ready [`Handler`], reading secrets once.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use tokio::sync::OnceCell;

use crate::config::{Config, DatabaseSource, MaskingKeySource};
use crate::handler::{DbSecret, Handler};
use crate::mask::{Masker, MaskingKey, MaskingMode};
use crate::secrets::{SecretError, SecretStore};
use crate::store::{PoolSettings, Store};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("DATABASE_URL is not a valid postgres:// URL")]
    InvalidDatabaseUrl,
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// Builds the handler: secrets are read (concurrently) and the pool is created, but no
/// database connection is opened until the first batch needs one.
pub async fn build_handler(config: &Config) -> Result<Handler, StartupError> {
    // Built on first use, once, and only when a secret is configured.
    build_handler_with(config, OnceCell::new()).await
}

/// [`build_handler`] with a given Secrets Manager client (tests point it at LocalStack).
pub async fn build_handler_with_secrets(config: &Config, secrets: SecretStore) -> Result<Handler, StartupError> {
    build_handler_with(config, OnceCell::new_with(Some(secrets))).await
}

async fn build_handler_with(config: &Config, secrets: OnceCell<SecretStore>) -> Result<Handler, StartupError> {
    let (options, key) = tokio::try_join!(database_options(&config.database, &secrets), masking_key(config, &secrets))?;
    let masker = match (config.masking_mode, key) {
        (MaskingMode::Hmac, Some(key)) => {
            tracing::info!(masking = %MaskingMode::Hmac, key_fingerprint = %key.fingerprint(), "masking configured");
            Masker::hmac(&key)
        }
        _ => {
            tracing::warn!(
                "MASKING_MODE=sha256: unkeyed masking, reversible by brute force for IPv4; use only for compatibility"
            );
            Masker::sha256_compat()
        }
    };
    let store = Store::connect_lazy(options, &config.pool);
    let db_secret = match (&config.database, secrets.into_inner()) {
        (DatabaseSource::Secret(id), Some(secrets)) => Some(DbSecret::new(secrets, id.clone(), config.pool.clone())),
        _ => None,
    };
    if let Some(key) = &config.vault_public_key {
        tracing::info!(vault_key_id = %key.key_id(), "PII vault on: originals are sealed to the vault public key");
    }
    Ok(Handler::new(masker, store).with_db_secret(db_secret).with_vault(config.vault_public_key.clone()))
}

/// A store for commands that only need the database (migrations, the CLI's reports).
pub async fn connect_store(database: &DatabaseSource, pool: &PoolSettings) -> Result<Store, StartupError> {
    let options = database_options(database, &OnceCell::new()).await?;
    Ok(Store::connect_lazy(options, pool))
}

async fn database_options(
    database: &DatabaseSource,
    secrets: &OnceCell<SecretStore>,
) -> Result<PgConnectOptions, StartupError> {
    match database {
        DatabaseSource::Url(url) => PgConnectOptions::from_str(url).map_err(|_| StartupError::InvalidDatabaseUrl),
        DatabaseSource::Secret(id) => Ok(secrets.get_or_init(SecretStore::from_env).await.database(id).await?),
    }
}

async fn masking_key(config: &Config, secrets: &OnceCell<SecretStore>) -> Result<Option<MaskingKey>, StartupError> {
    if config.masking_mode != MaskingMode::Hmac {
        return Ok(None);
    }
    match &config.masking_key {
        Some(MaskingKeySource::Inline(key)) => Ok(Some(key.clone())),
        Some(MaskingKeySource::Secret(id)) => {
            Ok(Some(secrets.get_or_init(SecretStore::from_env).await.masking_key(id).await?))
        }
        None => Ok(None),
    }
}
