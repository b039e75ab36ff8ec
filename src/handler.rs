//! The handler every entry point calls: the partial-batch-failure contract of the `sqs-batch`
//! crate, with login-etl's envelope and parse step (validate, mask, seal: the core) and the
//! PostgreSQL loader as its store port (one statement per batch), accounting for every record.

use std::time::Instant;

use aws_lambda_events::sqs::SqsMessage;

use crypto_box::aead::OsRng;
use sqs_batch::{Envelope, Outcome, Store};

use crate::adapters::loader::Loader;
use crate::adapters::visibility::VisibilityBackoff;
use login_etl_core::batch::{self, BatchOutcome, EventError, FailureReason, LoginPlan, MaskedLogin, UnknownKeyTally};
use login_etl_core::mask::Masker;
use login_etl_core::message::RecordError;
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
    /// [`crate::adapters::visibility`]).
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
        let (outcome, unknown_keys) =
            process(records, &self.envelope, &self.masker, self.vault_key.as_ref(), &self.loader).await?;
        if let Some(err) = &outcome.store_error {
            let fix = crate::errors::fix(err, "grant the database user the login_etl_loader role");
            tracing::error!(
                error = %crate::errors::causes(err),
                fix = fix.as_deref().unwrap_or(""),
                records = outcome.store_failures().count(),
                "batch insert failed; every record of the batch is reported failed"
            );
        }
        let outcome = BatchOutcome::new(outcome, unknown_keys);
        if let Some(backoff) = &self.backoff {
            let waiting: Vec<_> = outcome.store_failures().collect();
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
/// Not `sqs_batch::process`: a failed seal must fail the event between the plan and the store,
/// before anything is written.
pub async fn process<S: Store<MaskedLogin>>(
    records: &[SqsMessage],
    envelope: &Envelope,
    masker: &Masker,
    vault_key: Option<&VaultPublicKey>,
    store: &S,
) -> Result<(Outcome<RecordError, S::Error>, UnknownKeyTally), EventError> {
    let mut sealer = vault_key.map(|key| BatchSealer::new(key, OsRng));
    let LoginPlan { contract, unknown_keys } = batch::plan_with(records, envelope, masker, sealer.as_mut())?;
    drop(sealer); // the batch's ephemeral secret is gone before any I/O happens
    if contract.accepted.is_empty() {
        return Ok((contract.stored(0), unknown_keys));
    }
    let outcome = match store.store(&contract.accepted).await {
        Ok(stored) => contract.stored(stored),
        Err(err) => contract.store_failed(err),
    };
    Ok((outcome, unknown_keys))
}

/// How many failed records of one batch get a line of their own; the rest are counted in one
/// more line. Enough to name every failure of a default batch (10), bounded for big batches.
pub const FAILED_RECORD_LINES: usize = 10;

/// One line per failed record (at most [`FAILED_RECORD_LINES`]): its `messageId`, its reason
/// code, its receive count and whether its visibility is backed off, so that on-call holding a
/// dead letter's id can find why it failed. Never a value of the record.
fn log_failures(outcome: &BatchOutcome, backoff_on: bool) {
    for failure in outcome.failed.iter().take(FAILED_RECORD_LINES) {
        // An id that failed `invalid_message_id` may be long or hold control characters.
        let message_id: String = failure.message_id.chars().take(128).collect::<String>().escape_debug().to_string();
        tracing::info!(
            message_id = %message_id,
            reason = %failure.reason.code(),
            receive_count = failure.receive_count,
            retryable = failure.reason.is_retryable(),
            backs_off = backoff_on && matches!(failure.reason, FailureReason::StoreFailed),
            "record failed"
        );
    }
    let unlisted = outcome.failed.len().saturating_sub(FAILED_RECORD_LINES);
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
fn log_unknown_keys(outcome: &BatchOutcome) {
    let tally = &outcome.unknown_keys;
    if tally.records == 0 {
        return;
    }
    tracing::info!(
        records = tally.records,
        unknown_keys = %tally.keys.names().join(","),
        more_unknown_keys = tally.keys.names_dropped(),
        "records carried keys the function does not know; loaded without them (docs/contract.md)"
    );
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
        unknown_field_records = outcome.unknown_keys.records,
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "batch processed"
    );
}

/// The partial-batch-failure contract, specified against `sqs_batch::MemoryStore`: login-etl's
/// own envelope and parse, the handler's own [`process`], no database. The same contract end to
/// end against PostgreSQL is tests/it/handler.rs.
#[cfg(test)]
mod contract_spec {
    use std::collections::BTreeMap;

    use aws_lambda_events::sqs::SqsMessageAttribute;
    use sqs_batch::{InjectedFailure, MemoryStore};

    use super::*;
    use crate::lambda::response as lambda;
    use login_etl_core::mask::MaskingKey;

    /// 2026-11-24T03:00:00Z.
    const SENT_MILLIS: i64 = 1_795_489_200_000;

    fn message(message_id: &str, body: &str) -> SqsMessage {
        let mut message = SqsMessage::default();
        message.message_id = Some(message_id.into());
        message.receipt_handle = Some(format!("rh-{message_id}"));
        message.body = Some(body.into());
        message.attributes.insert("SentTimestamp".into(), SENT_MILLIS.to_string());
        message.attributes.insert("ApproximateReceiveCount".into(), "1".into());
        message.event_source_arn = Some("arn:aws:sqs:us-east-1:000000000000:login-queue".into());
        message
    }

    fn fifo(message_id: &str, group: &str, body: &str) -> SqsMessage {
        let mut message = message(message_id, body);
        message.event_source_arn = Some("arn:aws:sqs:us-east-1:000000000000:login-queue.fifo".into());
        message.attributes.insert("MessageGroupId".into(), group.into());
        message
    }

    fn with_attribute(mut message: SqsMessage, name: &str, value: &str) -> SqsMessage {
        let mut attribute = SqsMessageAttribute::default();
        attribute.data_type = Some("String".into());
        attribute.string_value = Some(value.into());
        message.message_attributes.insert(name.into(), attribute);
        message
    }

    fn login(user_id: &str, ip: &str) -> String {
        serde_json::json!({"user_id": user_id, "ip": ip, "device_id": "d-1", "app_version": "2.3.0"}).to_string()
    }

    fn masker() -> Masker {
        Masker::hmac(&MaskingKey::from_hex(&"11".repeat(32)).expect("key"))
    }

    /// One invocation as the handler runs it, with `store` in the loader's place.
    async fn handle(records: &[SqsMessage], store: &MemoryStore<MaskedLogin>) -> (BatchOutcome, bool) {
        let (outcome, unknown_keys) =
            process(records, &batch::envelope(), &masker(), None, store).await.expect("every record has a messageId");
        let store_failed = outcome.store_error == Some(InjectedFailure);
        (BatchOutcome::new(outcome, unknown_keys), store_failed)
    }

    fn failure_ids(outcome: &BatchOutcome) -> Vec<String> {
        lambda::batch_response(outcome).batch_item_failures.into_iter().map(|f| f.item_identifier).collect()
    }

    #[tokio::test]
    async fn a_mixed_batch_stores_the_good_and_names_exactly_the_bad() {
        let store = MemoryStore::new();
        let oversize_locale = serde_json::json!({"user_id": "u-long", "locale": "x".repeat(33)}).to_string();
        let records = [
            message("good-1", &login("u-1", "199.172.111.135")),
            message("malformed", "{\"user_id\": "),
            message("nulls", r#"{"user_id":"u-2","ip":null,"device_id":null}"#),
            message("oversize", &oversize_locale),
            message("no-user", r#"{"ip":"10.0.0.2"}"#),
            message("bad-ip", &login("u-3", "300.1.1.1")),
        ];
        let (outcome, store_failed) = handle(&records, &store).await;
        assert!(!store_failed);
        assert_eq!((outcome.received, outcome.inserted, outcome.duplicates), (6, 2, 0));
        assert_eq!(failure_ids(&outcome), ["malformed", "oversize", "no-user", "bad-ip"], "in event order");
        assert_eq!(
            outcome.failures_by_reason(),
            BTreeMap::from([
                ("invalid_ip".to_string(), 1),
                ("malformed_json".to_string(), 1),
                ("missing_user_id".to_string(), 1),
                ("too_long_locale".to_string(), 1),
            ])
        );
        assert_eq!(store.identities(), ["good-1", "nulls"]);
        let stored = store.get("good-1").expect("stored").record;
        assert_eq!(stored.masked_ip, Some(masker().mask(login_etl_core::mask::MaskedField::Ip, "199.172.111.135")));
        assert!(!format!("{stored:?}").contains("199.172.111.135"), "no original reaches the store");
        assert_eq!(lambda::respond(&outcome).expect("a partial response").batch_item_failures.len(), 4);
    }

    #[tokio::test]
    async fn a_fifo_failure_holds_back_the_rest_of_its_group_only() {
        let store = MemoryStore::new();
        let records = [
            fifo("a1", "alice", &login("alice", "10.0.0.1")),
            fifo("a2", "alice", "not json"),
            fifo("b1", "bob", &login("bob", "10.0.0.1")),
            fifo("a3", "alice", &login("alice", "10.0.0.1")),
            fifo("b2", "bob", &login("bob", "10.0.0.1")),
        ];
        let (outcome, _) = handle(&records, &store).await;
        assert_eq!(failure_ids(&outcome), ["a2", "a3"]);
        assert_eq!(outcome.failures_by_reason().get("fifo_group_blocked"), Some(&1));
        assert_eq!(store.identities(), ["a1", "b1", "b2"]);
    }

    #[tokio::test]
    async fn a_redelivered_or_redriven_login_makes_no_second_entry() {
        let store = MemoryStore::new();
        let records: Vec<_> =
            (0..5).map(|i| message(&format!("m-{i}"), &login(&format!("u-{i}"), "10.0.0.1"))).collect();
        let (first, _) = handle(&records, &store).await;
        assert_eq!((first.inserted, first.duplicates), (5, 0));

        // The whole batch again (a timeout after the commit), one message twice in it, a
        // redrive of m-1 under a new id, and a producer's retry under a new id with its key.
        let mut again = records.clone();
        again.push(records[0].clone());
        again.push(with_attribute(message("m-9", &login("u-1", "10.0.0.1")), "LoginEtlOriginalMessageId", "m-1"));
        let keyed = |id: &str| with_attribute(message(id, &login("k", "10.0.0.1")), "IdempotencyKey", "key-7");
        again.push(keyed("k-1"));
        let (second, _) = handle(&again, &store).await;
        assert_eq!((second.inserted, second.duplicates), (1, 7));
        assert!(second.failed.is_empty());
        let (third, _) = handle(&[keyed("k-2")], &store).await;
        assert_eq!((third.inserted, third.duplicates), (0, 1));
        assert_eq!(store.len(), 6);
        assert_eq!(store.get("key-7").map(|entry| entry.message_id), Some("k-1".into()), "the first delivery is kept");
    }

    #[tokio::test]
    async fn a_whole_batch_store_failure_fails_every_record_and_loses_nothing() {
        let store = MemoryStore::new();
        store.fail_next(1);
        let records = [
            message("ok-1", &login("u-1", "10.0.0.1")),
            message("bad", "[]"),
            message("ok-2", &login("u-2", "10.0.0.3")),
        ];
        let (outcome, store_failed) = handle(&records, &store).await;
        assert!(store_failed && outcome.store_failed());
        assert_eq!(outcome.inserted, 0);
        assert_eq!(failure_ids(&outcome), ["ok-1", "bad", "ok-2"], "in event order, each once");
        assert_eq!(
            outcome.failures_by_reason(),
            BTreeMap::from([("not_an_object".to_string(), 1), ("store_failed".to_string(), 2)])
        );
        assert!(outcome.store_failures().all(|failed| failed.reason.is_retryable()));
        assert!(store.is_empty());
        // Lambda gets a function error, so the event source mapping backs off.
        assert!(lambda::respond(&outcome).is_err());

        // The outage passes: the redelivered batch is stored.
        let (redelivered, _) = handle(&records, &store).await;
        assert_eq!((redelivered.inserted, failure_ids(&redelivered)), (2, vec!["bad".to_string()]));
    }

    #[tokio::test]
    async fn an_event_that_cannot_be_answered_record_by_record_fails_before_the_store() {
        let store = MemoryStore::new();
        let mut anonymous = message("x", &login("u", "10.0.0.1"));
        anonymous.message_id = None;
        let result =
            process(&[message("a", &login("u", "10.0.0.1")), anonymous], &batch::envelope(), &masker(), None, &store)
                .await;
        assert!(matches!(
            result,
            Err(EventError::Unanswerable(sqs_batch::EventError::MissingMessageId { position: 1 }))
        ));
        assert_eq!(store.calls(), 0);
    }

    #[tokio::test]
    async fn nothing_accepted_means_no_store_call() {
        let store = MemoryStore::new();
        let (outcome, _) = handle(&[message("bad", "[]")], &store).await;
        assert_eq!(failure_ids(&outcome), ["bad"]);
        assert_eq!(store.calls(), 0);
    }
}
