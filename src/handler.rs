//! The handler every entry point calls: plan the batch (pure), write it (one statement), and
//! account for every record.

use std::time::Instant;

use aws_lambda_events::sqs::SqsMessage;

use crypto_box::aead::OsRng;

use crate::batch::{self, BatchOutcome, BatchPlan, EventError};
use crate::config::ConnectionSecurity;
use crate::loader::{LoadError, Loader};
use crate::mask::Masker;
use crate::secrets::SecretStore;
use crate::vault::{BatchSealer, VaultPublicKey};
use crate::visibility::VisibilityBackoff;

/// The database secret the pool's credentials came from, kept so they can be re-read after a
/// rotation.
#[derive(Clone, Debug)]
pub struct DbSecret {
    secrets: SecretStore,
    id: String,
    connection: ConnectionSecurity,
}

impl DbSecret {
    pub fn new(secrets: SecretStore, id: String, connection: ConnectionSecurity) -> DbSecret {
        DbSecret { secrets, id, connection }
    }
}

/// Shared per-instance resources: built once at cold start, used by every invocation.
#[derive(Clone)]
pub struct Handler {
    masker: Masker,
    loader: Loader,
    db_secret: Option<DbSecret>,
    vault_key: Option<VaultPublicKey>,
    backoff: Option<VisibilityBackoff>,
}

impl Handler {
    pub fn new(masker: Masker, loader: Loader) -> Handler {
        Handler { masker, loader, db_secret: None, vault_key: None, backoff: None }
    }

    /// Seals every original `ip` and `device_id` to `vault_key` into the PII vault.
    pub fn with_vault(mut self, vault_key: Option<VaultPublicKey>) -> Handler {
        self.vault_key = vault_key;
        self
    }

    /// Lets the handler re-read rotated database credentials from `db_secret`.
    pub fn with_db_secret(mut self, db_secret: Option<DbSecret>) -> Handler {
        self.db_secret = db_secret;
        self
    }

    /// Hides messages whose insert failed for longer with every receive (see
    /// [`crate::visibility`]).
    pub fn with_backoff(mut self, backoff: Option<VisibilityBackoff>) -> Handler {
        self.backoff = backoff;
        self
    }

    /// The database path, e.g. to close it when the instance shuts down.
    pub fn loader(&self) -> &Loader {
        &self.loader
    }

    /// Processes one batch of SQS records.
    ///
    /// A bad record never fails the call: it is reported in the outcome. A database failure
    /// fails every record of the batch (nothing was written). Only an event whose failures
    /// could not be named ([`EventError`]) is an `Err`, so that Lambda retries it whole.
    pub async fn handle(&self, records: &[SqsMessage]) -> Result<BatchOutcome, EventError> {
        let started = Instant::now();
        let mut sealer = self.vault_key.as_ref().map(|key| BatchSealer::new(key, OsRng));
        let plan = batch::plan(records, &self.masker, sealer.as_mut())?;
        drop(sealer); // the batch's ephemeral secret is gone before any I/O happens
        let outcome = match self.insert(&plan).await {
            Ok(inserted) => plan.committed(inserted),
            Err(err) => {
                tracing::error!(
                    error = %error_chain(&err),
                    records = plan.rows.len(),
                    "batch insert failed; every record of the batch is reported failed"
                );
                plan.store_failed()
            }
        };
        if let Some(backoff) = &self.backoff {
            let waiting: Vec<_> = outcome.failed.iter().filter(|f| f.reason.is_store_failure()).collect();
            backoff.extend(records, &waiting).await;
        }
        log_summary(&outcome, started);
        Ok(outcome)
    }

    /// Inserts the plan's rows. When the database refuses the credentials and they came from
    /// a secret, the secret is re-read once (it may have been rotated) and the insert retried.
    async fn insert(&self, plan: &BatchPlan) -> Result<u64, LoadError> {
        let first = self.loader.insert(&plan.rows, plan.masking_mode).await;
        let (Err(err), Some(db_secret)) = (&first, &self.db_secret) else {
            return first;
        };
        if !err.is_auth_failure() {
            return first;
        }
        tracing::warn!(secret = %db_secret.id, "database refused the credentials; re-reading the secret");
        match db_secret.secrets.database(&db_secret.id).await {
            Ok(target) => {
                self.loader.replace_target(crate::startup::secure(target, &db_secret.connection));
                self.loader.insert(&plan.rows, plan.masking_mode).await
            }
            Err(secret_err) => {
                tracing::error!(error = %error_chain(&secret_err), "re-reading the database secret failed");
                first
            }
        }
    }
}

/// The one structured line per invocation that dashboards and on-call read.
fn log_summary(outcome: &BatchOutcome, started: Instant) {
    let failed_by_reason = serde_json::to_string(&outcome.failures_by_reason()).unwrap_or_default();
    tracing::info!(
        received = outcome.received,
        inserted = outcome.inserted,
        duplicates = outcome.duplicates,
        failed = outcome.failed.len(),
        failed_by_reason = %failed_by_reason,
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "batch processed"
    );
}

/// An error and its causes on one line (`a: b: c`), for operators. The errors of this crate
/// and of sqlx print no row data.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
