//! The handler every entry point calls: the partial-batch-failure contract of the `sqs-batch`
//! crate, with login-etl's envelope and parse step (validate, mask, seal: the core) and the
//! PostgreSQL loader as its store port (one statement per batch), accounting for every record.

use std::time::Instant;

use aws_lambda_events::sqs::SqsMessage;

use crypto_box::aead::OsRng;
use sqs_batch::{Envelope, EventError, Store};

use crate::adapters::loader::{LoadError, Loader};
use crate::adapters::visibility::VisibilityBackoff;
use login_etl_core::batch::{self, BatchOutcome, FailureReason, LoginPlan, MaskedLogin};
use login_etl_core::mask::Masker;
use login_etl_core::vault::{BatchSealer, VaultPublicKey};

/// Shared per-instance resources: built once at cold start, used by every invocation.
#[derive(Clone)]
pub struct Handler {
    envelope: Envelope,
    masker: Masker,
    loader: Loader,
    vault_key: Option<VaultPublicKey>,
    backoff: Option<VisibilityBackoff>,
}

impl Handler {
    pub fn new(masker: Masker, loader: Loader) -> Handler {
        Handler { envelope: batch::envelope(), masker, loader, vault_key: None, backoff: None }
    }

    /// Seals every original `ip` and `device_id` to `vault_key` into the PII vault.
    pub fn with_vault(mut self, vault_key: Option<VaultPublicKey>) -> Handler {
        self.vault_key = vault_key;
        self
    }

    /// Hides messages whose insert failed for longer with every receive (see
    /// `crate::adapters::visibility`).
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
    /// could not be named, or a seal that failed ([`EventError`]), is an `Err`, so that Lambda
    /// retries it whole.
    pub async fn handle(&self, records: &[SqsMessage]) -> Result<BatchOutcome<LoadError>, EventError> {
        let started = Instant::now();
        let outcome = process(records, &self.envelope, &self.masker, self.vault_key.as_ref(), &self.loader).await?;
        if let Some(err) = outcome.records.store_error() {
            let fix = crate::errors::fix_for(err, "grant the database user the login_etl_loader role");
            tracing::error!(
                error = %crate::errors::error_chain(err),
                fix = fix.as_deref().unwrap_or(""),
                records = outcome.records.store_failures().count(),
                "batch insert failed; every record of the batch is reported failed"
            );
        }
        if let Some(backoff) = &self.backoff {
            let waiting: Vec<_> = outcome.records.store_failures().collect();
            backoff.extend(records, &waiting).await;
        }
        log_failures(&outcome, self.backoff.is_some());
        log_unknown_keys(&outcome);
        log_summary(&outcome, started);
        Ok(outcome)
    }
}

/// The partial-batch-failure contract for one event, login-etl's way: the `sqs-batch` crate's
/// plan with the core's parse step (validate, mask and, with `vault_key`, seal), then the
/// accepted logins written through `store` in one call (none when nothing was accepted). Generic
/// over the store, so that the very path [`Handler::handle`] takes with the PostgreSQL loader is
/// specified against `sqs_batch::MemoryStore` too, without a database.
///
/// `sqs_batch::process` in its two steps, so that the batch's sealer (and its ephemeral
/// secret) is gone before any I/O happens; a failed seal fails the event in the plan
/// ([`EventError::Aborted`]), before anything is written.
pub async fn process<S: Store<MaskedLogin>>(
    records: &[SqsMessage],
    envelope: &Envelope,
    masker: &Masker,
    vault_key: Option<&VaultPublicKey>,
    store: &S,
) -> Result<BatchOutcome<S::Error>, EventError> {
    let mut sealer = vault_key.map(|key| BatchSealer::new(key, OsRng));
    let LoginPlan { contract, unknown_keys } = batch::plan_with(records, envelope, masker, sealer.as_mut())?;
    drop(sealer);
    Ok(BatchOutcome::new(contract.store(store).await, unknown_keys))
}

/// How many failed records of one batch get a line of their own; the rest are counted in one
/// more line. Enough to name every failure of a default batch (10), bounded for big batches.
pub const FAILED_RECORD_LINES: usize = 10;

/// One line per failed record (at most [`FAILED_RECORD_LINES`]): its `messageId`, its reason
/// code, its receive count and whether its visibility is backed off, so that on-call holding a
/// dead letter's id can find why it failed. Never a value of the record.
fn log_failures<S>(outcome: &BatchOutcome<S>, backoff_on: bool) {
    for failure in outcome.records.failed().iter().take(FAILED_RECORD_LINES) {
        // An id that failed `invalid_message_id` may be long or hold control characters.
        let message_id: String = failure.message_id().chars().take(128).collect::<String>().escape_debug().to_string();
        tracing::info!(
            message_id = %message_id,
            reason = %failure.reason().code(),
            receive_count = failure.receive_count(),
            retryable = failure.reason().is_retryable(),
            backs_off = backoff_on && matches!(failure.reason(), FailureReason::StoreFailed),
            "record failed"
        );
    }
    let unlisted = outcome.records.failed().len().saturating_sub(FAILED_RECORD_LINES);
    if unlisted > 0 {
        tracing::info!(
            unlisted,
            "{unlisted} more records failed than are listed one by one; the batch summary counts them by reason"
        );
    }
}

/// One line per batch whose valid records carried keys the function does not know: how many
/// records, and the keys' names (at most 10, each at most 64 characters, and only names shaped
/// like field names: see [`login_etl_core::message::UnknownKeys`]). Never a value. Such records were
/// loaded without those keys; the invocation's `UnknownFieldRecords` metric counts them.
fn log_unknown_keys<S>(outcome: &BatchOutcome<S>) {
    let tally = &outcome.unknown_keys;
    if tally.records == 0 {
        return;
    }
    tracing::info!(
        records = tally.records,
        unknown_keys = %tally.keys.names().join(","),
        more_unknown_keys = tally.keys.names_dropped(),
        "records carried keys the function does not know; loaded without them (docs/schema.md)"
    );
}

/// The one structured line per invocation that dashboards and on-call read.
fn log_summary<S>(outcome: &BatchOutcome<S>, started: Instant) {
    let records = &outcome.records;
    let failed_by_reason = serde_json::to_string(&records.failures_by_code()).unwrap_or_default();
    tracing::info!(
        received = records.received(),
        inserted = records.succeeded(),
        duplicates = records.duplicates(),
        failed = records.failed().len(),
        failed_by_reason = %failed_by_reason,
        unknown_field_records = outcome.unknown_keys.records,
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "batch processed"
    );
}
