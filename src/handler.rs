//! The handler every entry point calls: plan the batch (pure), write it (one statement), and
//! account for every record.

use std::time::Instant;

use aws_lambda_events::sqs::SqsMessage;

use crypto_box::aead::OsRng;

use crate::batch::{self, BatchOutcome, EventError};
use crate::loader::Loader;
use crate::mask::Masker;
use crate::vault::{BatchSealer, VaultPublicKey};
use crate::visibility::VisibilityBackoff;

/// Shared per-instance resources: built once at cold start, used by every invocation.
#[derive(Clone)]
pub struct Handler {
    masker: Masker,
    loader: Loader,
    vault_key: Option<VaultPublicKey>,
    backoff: Option<VisibilityBackoff>,
}

impl Handler {
    pub fn new(masker: Masker, loader: Loader) -> Handler {
        Handler { masker, loader, vault_key: None, backoff: None }
    }

    /// Seals every original `ip` and `device_id` to `vault_key` into the PII vault.
    pub fn with_vault(mut self, vault_key: Option<VaultPublicKey>) -> Handler {
        self.vault_key = vault_key;
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
        let outcome = match self.loader.insert(&plan.rows, plan.masking_mode).await {
            Ok(inserted) => plan.committed(inserted),
            Err(err) => {
                tracing::error!(
                    error = %format!("{:#}", anyhow::Error::from(err)),
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
