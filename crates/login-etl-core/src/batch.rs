//! One SQS event in, a plan out: the masked rows to insert and the messages that failed.
//!
//! The rules of partial batch failure live here, free of I/O: every record gets exactly one
//! fate (a row or a reported failure), failures are named by their `messageId`, and on a FIFO
//! queue a failure holds back the rest of its message group so order is kept.

use std::collections::{BTreeMap, HashMap, HashSet};

use aws_lambda_events::sqs::SqsMessage;
use time::{Date, OffsetDateTime};

use crate::mask::{MaskedField, Masker, MaskingMode};
use crate::message::{LoginRecord, RecordError, UnknownKeys};
use crate::vault::{BatchSealer, VaultError};

/// Message attribute (String) a producer may set to name a login once, whatever SQS does: a
/// retried send, or AWS's own DLQ redrive, gives the same login a new `messageId`.
pub const IDEMPOTENCY_KEY_ATTRIBUTE: &str = "IdempotencyKey";
/// Set by `login-etl-cli redrive`: the `messageId` of the message's first delivery.
pub const ORIGINAL_MESSAGE_ID_ATTRIBUTE: &str = "LoginEtlOriginalMessageId";
/// Set by `login-etl-cli redrive`: the `SentTimestamp` (epoch ms) of the first delivery, so a
/// replayed login keeps its `sent_at` and `create_date`.
pub const ORIGINAL_SENT_TIMESTAMP_ATTRIBUTE: &str = "LoginEtlOriginalSentTimestamp";

/// What the table's `message_id` column (varchar(128)) can hold.
const MAX_ID_CHARS: usize = 128;

/// The sent times accepted: [2000-01-01, 2100-01-01) UTC, in epoch milliseconds. PostgreSQL
/// would store far more (4713 BC to 294276 AD), but a login from before this service's
/// dependencies existed or from the next century is a broken clock or a forged attribute, and
/// it would also create partitions and dates no report expects. No wall clock is read here
/// (the core is pure), so "the future" is bounded by the century, not by now.
const SENT_MILLIS_RANGE: std::ops::Range<i64> = 946_684_800_000..4_102_444_800_000;

/// Why one message was not loaded. [`FailureReason::code`] is what logs and metrics count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailureReason {
    #[error("invalid body: {0}")]
    Invalid(#[from] RecordError),
    #[error("the SentTimestamp attribute is missing or not epoch milliseconds")]
    InvalidSentTimestamp,
    #[error("the sent time is before 2000 or from 2100 on, which no login is")]
    SentTimestampOutOfRange,
    #[error("the messageId is longer than 128 characters or holds control characters")]
    InvalidMessageId,
    #[error("the messageId appears more than once in the event, so its fate could not be told apart")]
    RepeatedMessageId,
    #[error(
        "the {IDEMPOTENCY_KEY_ATTRIBUTE} or {ORIGINAL_MESSAGE_ID_ATTRIBUTE} attribute is empty, longer than 128 characters, holds control characters or is not a String"
    )]
    InvalidIdempotencyKey,
    #[error("an earlier message of the same FIFO message group failed in this batch")]
    EarlierFailureInGroup,
    #[error("the batch's database transaction failed")]
    StoreFailed,
}

impl FailureReason {
    pub fn code(&self) -> String {
        match self {
            FailureReason::Invalid(err) => err.code(),
            FailureReason::InvalidSentTimestamp => "invalid_sent_timestamp".into(),
            FailureReason::SentTimestampOutOfRange => "sent_timestamp_out_of_range".into(),
            FailureReason::InvalidMessageId => "invalid_message_id".into(),
            FailureReason::RepeatedMessageId => "repeated_message_id".into(),
            FailureReason::InvalidIdempotencyKey => "invalid_idempotency_key".into(),
            FailureReason::EarlierFailureInGroup => "fifo_group_blocked".into(),
            FailureReason::StoreFailed => "store_failed".into(),
        }
    }

    /// Whether redelivery can help: a bad body stays bad, a database outage may pass.
    pub fn is_retryable(&self) -> bool {
        matches!(self, FailureReason::EarlierFailureInGroup | FailureReason::StoreFailed)
    }

    /// Whether only a database problem stopped the message (not its content, not its group):
    /// what the visibility backoff waits out.
    pub fn is_store_failure(&self) -> bool {
        matches!(self, FailureReason::StoreFailed)
    }
}

/// A message that will be reported in `batchItemFailures`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedMessage {
    pub message_id: String,
    pub reason: FailureReason,
}

/// The event cannot be answered record by record, so the whole invocation must fail (and the
/// whole batch be redelivered) rather than lose a message silently.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("record {position} has no messageId, so its failure could not be reported")]
    MissingMessageId { position: usize },
    /// An original could not be sealed for the PII vault: the batch fails whole rather than
    /// load a row whose original is lost.
    #[error("sealing an original for the PII vault failed")]
    Vault(#[from] VaultError),
}

/// The rows of one batch, column by column, as the single `INSERT … SELECT FROM UNNEST` binds
/// them: one array per column keeps the whole batch to one statement and one round trip.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoginRows {
    pub message_id: Vec<String>,
    pub user_id: Vec<String>,
    pub device_type: Vec<Option<String>>,
    pub masked_ip: Vec<Option<String>>,
    pub masked_device_id: Vec<Option<String>>,
    pub locale: Vec<Option<String>>,
    pub app_version: Vec<Option<String>>,
    pub sent_at: Vec<OffsetDateTime>,
    /// The UTC date of `sent_at`: when the user logged in, not when the batch ran.
    pub create_date: Vec<Date>,
    /// The originals, sealed for the PII vault, when a vault key is configured.
    pub vault: Option<VaultRows>,
}

/// Sealed originals for the vault, one per distinct (field, masked value) of the batch.
#[derive(Debug, Clone, Default)]
pub struct VaultRows {
    pub key_id: String,
    pub field: Vec<String>,
    pub masked_value: Vec<String>,
    pub sealed: Vec<Vec<u8>>,
    seen: HashSet<(MaskedField, String)>,
}

impl PartialEq for VaultRows {
    fn eq(&self, other: &Self) -> bool {
        (&self.key_id, &self.field, &self.masked_value, &self.sealed)
            == (&other.key_id, &other.field, &other.masked_value, &other.sealed)
    }
}

impl Eq for VaultRows {}

impl VaultRows {
    fn add(
        &mut self,
        sealer: &mut BatchSealer,
        field: MaskedField,
        masked: &str,
        original: &str,
    ) -> Result<(), VaultError> {
        if self.seen.insert((field, masked.to_owned())) {
            self.sealed.push(sealer.seal(field, masked, original)?);
            self.field.push(field.name().to_owned());
            self.masked_value.push(masked.to_owned());
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.field.len()
    }

    pub fn is_empty(&self) -> bool {
        self.field.is_empty()
    }
}

impl LoginRows {
    fn with_capacity(n: usize) -> Self {
        LoginRows {
            message_id: Vec::with_capacity(n),
            user_id: Vec::with_capacity(n),
            device_type: Vec::with_capacity(n),
            masked_ip: Vec::with_capacity(n),
            masked_device_id: Vec::with_capacity(n),
            locale: Vec::with_capacity(n),
            app_version: Vec::with_capacity(n),
            sent_at: Vec::with_capacity(n),
            create_date: Vec::with_capacity(n),
            vault: None,
        }
    }

    fn push(
        &mut self,
        message_id: &str,
        record: LoginRecord,
        sent_at: OffsetDateTime,
        masker: &Masker,
        sealer: Option<&mut BatchSealer>,
    ) -> Result<(), VaultError> {
        let ip = record.ip.map(|ip| ip.to_string());
        let masked_ip = ip.as_deref().map(|ip| masker.mask(MaskedField::Ip, ip));
        let masked_device_id = record.device_id.as_deref().map(|id| masker.mask(MaskedField::DeviceId, id));
        if let Some(sealer) = sealer {
            let vault = self
                .vault
                .get_or_insert_with(|| VaultRows { key_id: sealer.key_id().to_owned(), ..Default::default() });
            if let (Some(original), Some(masked)) = (&ip, &masked_ip) {
                vault.add(sealer, MaskedField::Ip, masked, original)?;
            }
            if let (Some(original), Some(masked)) = (&record.device_id, &masked_device_id) {
                vault.add(sealer, MaskedField::DeviceId, masked, original)?;
            }
        }
        self.masked_ip.push(masked_ip);
        self.masked_device_id.push(masked_device_id);
        self.message_id.push(message_id.to_owned());
        self.user_id.push(record.user_id);
        self.device_type.push(record.device_type);
        self.locale.push(record.locale);
        self.app_version.push(record.app_version);
        self.create_date.push(sent_at.date());
        self.sent_at.push(sent_at);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.message_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.message_id.is_empty()
    }
}

/// What one event turns into before anything is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPlan {
    pub received: usize,
    pub masking_mode: MaskingMode,
    pub rows: LoginRows,
    /// The SQS `messageId` of each row, in row order: what a failure is reported by (a row's
    /// own `message_id` may be the producer's idempotency key or the original delivery's id).
    pub accepted: Vec<String>,
    pub rejected: Vec<FailedMessage>,
    /// Identical later copies of a message already in the batch: duplicates once it commits.
    pub copies_skipped: u64,
    /// The valid records that carried keys the function does not know: schema drift.
    pub unknown_keys: UnknownKeyTally,
}

/// The valid records of a batch that carried keys the function does not know, and those keys'
/// names (merged, bounded as one record's are). Such records are loaded; their unknown values
/// are neither stored nor logged. What `UnknownFieldRecords` and the drift log line report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnknownKeyTally {
    pub records: usize,
    pub keys: UnknownKeys,
}

impl UnknownKeyTally {
    fn add(&mut self, keys: &UnknownKeys) {
        if !keys.is_empty() {
            self.records += 1;
            self.keys.merge(keys);
        }
    }
}

/// Validates and masks every record of an event; with a `sealer`, also seals the originals of
/// `ip` and `device_id` for the PII vault.
pub fn plan(
    records: &[SqsMessage],
    masker: &Masker,
    mut sealer: Option<&mut BatchSealer>,
) -> Result<BatchPlan, EventError> {
    let mut rows = LoginRows::with_capacity(records.len());
    let mut accepted = Vec::with_capacity(records.len());
    let mut rejected = Vec::new();
    let mut unknown_keys = UnknownKeyTally::default();
    // FIFO message groups that already lost a message in this batch.
    let mut blocked_groups: HashSet<&str> = HashSet::new();
    // One fate per messageId. A repeated id whose copies are identical is one message seen
    // twice: the first copy is handled, the others are duplicates. Copies that differ cannot be
    // told apart in the response, so every one of them fails (and the id is named once).
    let mut first_copy: HashMap<&str, usize> = HashMap::with_capacity(records.len());
    let mut ambiguous: HashSet<&str> = HashSet::new();
    let mut later_copies: HashSet<usize> = HashSet::new();
    for (position, record) in records.iter().enumerate() {
        let id = match record.message_id.as_deref() {
            Some(id) if !id.is_empty() => id,
            _ => return Err(EventError::MissingMessageId { position }),
        };
        match first_copy.get(id) {
            None => {
                first_copy.insert(id, position);
            }
            Some(&first) if same_message(&records[first], record) => {
                later_copies.insert(position);
            }
            Some(_) => {
                ambiguous.insert(id);
            }
        }
    }
    let copies_skipped = later_copies.len() as u64;

    for (position, record) in records.iter().enumerate() {
        let message_id = record.message_id.as_deref().unwrap_or_default();
        if ambiguous.contains(message_id) {
            if !rejected.iter().any(|f: &FailedMessage| f.message_id == message_id) {
                rejected.push(FailedMessage {
                    message_id: message_id.to_owned(),
                    reason: FailureReason::RepeatedMessageId,
                });
            }
            continue;
        }
        if later_copies.contains(&position) {
            continue;
        }
        let fifo_group = fifo_group(record);
        if fifo_group.is_some_and(|group| blocked_groups.contains(group)) {
            rejected.push(FailedMessage {
                message_id: message_id.to_owned(),
                reason: FailureReason::EarlierFailureInGroup,
            });
            continue;
        }
        match validate(record) {
            Ok((row_key, login, sent_at)) => {
                unknown_keys.add(&login.unknown_keys);
                rows.push(row_key, login, sent_at, masker, sealer.as_deref_mut())?;
                accepted.push(message_id.to_owned());
            }
            Err(reason) => {
                if let Some(group) = fifo_group {
                    blocked_groups.insert(group);
                }
                rejected.push(FailedMessage { message_id: message_id.to_owned(), reason });
            }
        }
    }
    Ok(BatchPlan {
        received: records.len(),
        masking_mode: masker.mode(),
        rows,
        accepted,
        rejected,
        copies_skipped,
        unknown_keys,
    })
}

/// Whether two records with one messageId carry the same message.
fn same_message(a: &SqsMessage, b: &SqsMessage) -> bool {
    let attributes = |r: &SqsMessage| -> Vec<(String, Option<String>)> {
        let mut list: Vec<_> =
            r.message_attributes.iter().map(|(name, value)| (name.clone(), value.string_value.clone())).collect();
        list.sort();
        list
    };
    a.body == b.body
        && a.attributes.get("SentTimestamp") == b.attributes.get("SentTimestamp")
        && attributes(a) == attributes(b)
}

/// A record's row key, login and sent time, or why it has none. Everything the store would
/// refuse is refused here, so one bad record never fails its batch's statement.
fn validate(record: &SqsMessage) -> Result<(&str, LoginRecord, OffsetDateTime), FailureReason> {
    let row_key = row_key(record)?;
    let body = record.body.as_deref().ok_or(RecordError::MissingBody)?;
    let login = LoginRecord::parse(body)?;
    Ok((row_key, login, sent_at(record)?))
}

/// The identity a row is stored under, so every delivery of one login makes one row: the
/// producer's idempotency key, else the first delivery's messageId (kept by `redrive`), else
/// SQS's messageId.
fn row_key(record: &SqsMessage) -> Result<&str, FailureReason> {
    for name in [IDEMPOTENCY_KEY_ATTRIBUTE, ORIGINAL_MESSAGE_ID_ATTRIBUTE] {
        if let Some(attribute) = record.message_attributes.get(name) {
            return attribute
                .string_value
                .as_deref()
                .filter(|key| is_storable_id(key))
                .ok_or(FailureReason::InvalidIdempotencyKey);
        }
    }
    let message_id = record.message_id.as_deref().unwrap_or_default();
    if is_storable_id(message_id) { Ok(message_id) } else { Err(FailureReason::InvalidMessageId) }
}

fn is_storable_id(id: &str) -> bool {
    !id.is_empty() && id.chars().count() <= MAX_ID_CHARS && !id.chars().any(char::is_control)
}

/// When the login was sent: the first delivery's time when `redrive` kept it, else SQS's
/// `SentTimestamp`.
fn sent_at(record: &SqsMessage) -> Result<OffsetDateTime, FailureReason> {
    let original = record.message_attributes.get(ORIGINAL_SENT_TIMESTAMP_ATTRIBUTE).map(|a| a.string_value.as_deref());
    let millis = match original {
        Some(value) => value,
        None => record.attributes.get("SentTimestamp").map(String::as_str),
    }
    .and_then(|millis| millis.parse::<i64>().ok())
    .ok_or(FailureReason::InvalidSentTimestamp)?;
    if !SENT_MILLIS_RANGE.contains(&millis) {
        return Err(FailureReason::SentTimestampOutOfRange);
    }
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .map_err(|_| FailureReason::SentTimestampOutOfRange)
}

/// The message group of a record from a FIFO queue (`eventSourceARN` ending in `.fifo`).
fn fifo_group(record: &SqsMessage) -> Option<&str> {
    let is_fifo = record.event_source_arn.as_deref().is_some_and(|arn| arn.ends_with(".fifo"));
    if !is_fifo {
        return None;
    }
    record.attributes.get("MessageGroupId").map(String::as_str)
}

/// The fate of every record of one invocation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchOutcome {
    pub received: usize,
    pub inserted: u64,
    /// Valid messages whose `messageId` already had a row: redeliveries, loaded once.
    pub duplicates: u64,
    pub failed: Vec<FailedMessage>,
    /// The valid records that carried keys the function does not know, whatever their insert
    /// did: drift is a property of what producers send.
    pub unknown_keys: UnknownKeyTally,
}

impl BatchPlan {
    /// The batch's transaction committed and wrote `inserted` new rows.
    pub fn committed(self, inserted: u64) -> BatchOutcome {
        let valid = self.rows.len() as u64;
        BatchOutcome {
            received: self.received,
            inserted,
            duplicates: valid.saturating_sub(inserted) + self.copies_skipped,
            failed: self.rejected,
            unknown_keys: self.unknown_keys,
        }
    }

    /// The batch's transaction failed: nothing was written, so every valid row is a failure too.
    pub fn store_failed(self) -> BatchOutcome {
        let mut failed = self.rejected;
        failed.extend(
            self.accepted
                .into_iter()
                .map(|message_id| FailedMessage { message_id, reason: FailureReason::StoreFailed }),
        );
        BatchOutcome { received: self.received, inserted: 0, duplicates: 0, failed, unknown_keys: self.unknown_keys }
    }
}

impl BatchOutcome {
    /// Whether the batch's insert failed (the database was away, timed out or refused it):
    /// then every valid record failed, for a reason that waiting may cure.
    pub fn store_failed(&self) -> bool {
        self.failed.iter().any(|f| f.reason.is_store_failure())
    }

    /// Failure counts keyed by [`FailureReason::code`].
    pub fn failures_by_reason(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for failed in &self.failed {
            *counts.entry(failed.reason.code()).or_insert(0) += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::MaskingKey;
    use crate::message::Field;

    /// 2026-11-24T03:00:00Z.
    const SENT_MILLIS: i64 = 1_795_489_200_000;

    /// A record as an SQS event source mapping delivers it from a standard queue.
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

    /// [`message`] from a FIFO queue, in message group `group`.
    fn fifo(message_id: &str, group: &str, body: &str) -> SqsMessage {
        let mut message = message(message_id, body);
        message.event_source_arn = Some("arn:aws:sqs:us-east-1:000000000000:login-queue.fifo".into());
        message.attributes.insert("MessageGroupId".into(), group.into());
        message
    }

    fn masker() -> Masker {
        Masker::hmac(&MaskingKey::from_hex(&"11".repeat(32)).expect("key"))
    }

    const GOOD: &str = r#"{"user_id":"u1","ip":"10.0.0.1","device_id":"d-1","locale":null,"app_version":"0.96"}"#;

    #[test]
    fn every_record_gets_exactly_one_fate() {
        let records = vec![message("a", GOOD), message("b", "not json"), message("c", r#"{"user_id":"u2"}"#)];
        let plan = plan(&records, &masker(), None).expect("plan");
        assert_eq!(plan.received, 3);
        assert_eq!(plan.rows.message_id, ["a", "c"]);
        assert_eq!(plan.rejected.len(), 1);
        assert_eq!(plan.rejected[0].message_id, "b");
        assert_eq!(plan.rejected[0].reason.code(), "malformed_json");
    }

    #[test]
    fn rows_are_masked_and_dated_by_sent_timestamp() {
        let masker = masker();
        let plan = plan(&[message("a", GOOD)], &masker, None).expect("plan");
        let rows = &plan.rows;
        assert_eq!(rows.masked_ip[0].as_deref(), Some(masker.mask(MaskedField::Ip, "10.0.0.1").as_str()));
        assert_eq!(rows.masked_device_id[0].as_deref(), Some(masker.mask(MaskedField::DeviceId, "d-1").as_str()));
        assert_eq!(rows.locale[0], None);
        assert_eq!(rows.app_version[0].as_deref(), Some("0.96"));
        assert_eq!(rows.create_date[0], time::macros::date!(2026 - 11 - 24));
        assert_eq!(rows.sent_at[0], time::macros::datetime!(2026-11-24 03:00 UTC));
        assert_eq!(plan.masking_mode, MaskingMode::Hmac);
    }

    #[test]
    fn equal_addresses_mask_equally_whatever_their_spelling() {
        let plan = plan(
            &[
                message("a", r#"{"user_id":"u","ip":"::ffff:10.0.0.1"}"#),
                message("b", r#"{"user_id":"u","ip":"10.0.0.1"}"#),
            ],
            &masker(),
            None,
        )
        .expect("plan");
        assert_eq!(plan.rows.masked_ip[0], plan.rows.masked_ip[1]);
    }

    #[test]
    fn missing_body_and_bad_timestamps_fail_the_record_only() {
        let mut no_body = message("a", GOOD);
        no_body.body = None;
        let mut no_timestamp = message("b", GOOD);
        no_timestamp.attributes.clear();
        let mut bad_timestamp = message("c", GOOD);
        bad_timestamp.attributes.insert("SentTimestamp".into(), "yesterday".into());
        let plan = plan(&[no_body, no_timestamp, bad_timestamp, message("d", GOOD)], &masker(), None).expect("plan");
        let codes: Vec<_> = plan.rejected.iter().map(|f| (f.message_id.as_str(), f.reason.code())).collect();
        assert_eq!(
            codes,
            [
                ("a", "missing_body".to_string()),
                ("b", "invalid_sent_timestamp".to_string()),
                ("c", "invalid_sent_timestamp".to_string())
            ]
        );
        assert_eq!(plan.rows.message_id, ["d"]);
    }

    #[test]
    fn a_record_without_message_id_fails_the_whole_event() {
        let mut anonymous = message("x", GOOD);
        anonymous.message_id = Some(String::new());
        assert_eq!(
            plan(&[message("a", GOOD), anonymous], &masker(), None),
            Err(EventError::MissingMessageId { position: 1 })
        );
        let mut missing = message("x", GOOD);
        missing.message_id = None;
        assert_eq!(plan(&[missing], &masker(), None), Err(EventError::MissingMessageId { position: 0 }));
    }

    #[test]
    fn fifo_failure_holds_back_the_rest_of_its_group_only() {
        let records = vec![
            fifo("1", "g1", GOOD),
            fifo("2", "g1", "{}"),
            fifo("3", "g2", GOOD),
            fifo("4", "g1", GOOD),
            fifo("5", "g2", GOOD),
        ];
        let plan = plan(&records, &masker(), None).expect("plan");
        assert_eq!(plan.rows.message_id, ["1", "3", "5"]);
        assert_eq!(
            plan.rejected,
            [
                FailedMessage { message_id: "2".into(), reason: RecordError::Missing(Field::UserId).into() },
                FailedMessage { message_id: "4".into(), reason: FailureReason::EarlierFailureInGroup },
            ]
        );
    }

    #[test]
    fn standard_queues_do_not_block_groups() {
        let mut bad = message("1", "{}");
        bad.attributes.insert("MessageGroupId".into(), "g".into());
        let mut good = message("2", GOOD);
        good.attributes.insert("MessageGroupId".into(), "g".into());
        let plan = plan(&[bad, good], &masker(), None).expect("plan");
        assert_eq!(plan.rows.message_id, ["2"]);
    }

    #[test]
    fn committed_counts_duplicates() {
        let plan = plan(&[message("a", GOOD), message("b", GOOD), message("c", "[]")], &masker(), None).expect("plan");
        let outcome = plan.committed(1);
        assert_eq!((outcome.received, outcome.inserted, outcome.duplicates), (3, 1, 1));
        let ids: Vec<_> = outcome.failed.iter().map(|f| f.message_id.clone()).collect();
        assert_eq!(ids, ["c"]);
        assert_eq!(outcome.failures_by_reason(), BTreeMap::from([("not_an_object".to_string(), 1)]));
    }

    #[test]
    fn store_failure_fails_every_record() {
        let plan = plan(&[message("a", GOOD), message("b", "[]"), message("c", GOOD)], &masker(), None).expect("plan");
        let outcome = plan.store_failed();
        assert_eq!(outcome.inserted, 0);
        let mut ids: Vec<_> = outcome.failed.iter().map(|f| f.message_id.clone()).collect();
        ids.sort();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(
            outcome.failures_by_reason(),
            BTreeMap::from([("not_an_object".to_string(), 1), ("store_failed".to_string(), 2)])
        );
    }

    #[test]
    fn the_vault_gets_each_distinct_original_once() {
        use crate::vault::VaultSecretKey;
        use crypto_box::aead::OsRng;
        let secret = VaultSecretKey::generate(&mut OsRng);
        let mut sealer = BatchSealer::new(&secret.public_key(), OsRng);
        let records = [
            message("a", r#"{"user_id":"u","ip":"10.0.0.1","device_id":"d-1"}"#),
            message("b", r#"{"user_id":"u","ip":"::ffff:10.0.0.1","device_id":"d-2"}"#),
            message("c", r#"{"user_id":"u","ip":null,"device_id":"d-1"}"#),
        ];
        let plan = plan(&records, &masker(), Some(&mut sealer)).expect("plan");
        let vault = plan.rows.vault.expect("vault rows");
        assert_eq!(vault.field, ["ip", "device_id", "device_id"]);
        assert_eq!(vault.key_id, secret.public_key().key_id());
        let opened: Vec<String> = (0..vault.len())
            .map(|i| {
                let field = MaskedField::from_name(&vault.field[i]).expect("a known field");
                secret.open(field, &vault.masked_value[i], &vault.sealed[i]).expect("opens")
            })
            .collect();
        assert_eq!(opened, ["10.0.0.1", "d-1", "d-2"]);
        assert_eq!(vault.masked_value[0], plan.rows.masked_ip[0].clone().expect("masked"));
    }

    fn with_attribute(mut message: SqsMessage, name: &str, value: &str) -> SqsMessage {
        let mut attribute = aws_lambda_events::sqs::SqsMessageAttribute::default();
        attribute.data_type = Some("String".into());
        attribute.string_value = Some(value.into());
        message.message_attributes.insert(name.into(), attribute);
        message
    }

    fn codes(plan: &BatchPlan) -> Vec<(String, String)> {
        plan.rejected.iter().map(|f| (f.message_id.clone(), f.reason.code())).collect()
    }

    #[test]
    fn what_the_store_would_refuse_fails_the_record_alone() {
        let long_id = "m".repeat(129);
        let mut ancient = message("ancient", GOOD);
        ancient.attributes.insert("SentTimestamp".into(), "-250000000000000".into());
        let mut year_3000 = message("y3000", GOOD);
        year_3000.attributes.insert("SentTimestamp".into(), "32503680000000".into());
        let mut year_1999 = message("y1999", GOOD);
        year_1999.attributes.insert("SentTimestamp".into(), "946684799999".into());
        let records = [
            message(&long_id, GOOD),
            message("nul\0id", GOOD),
            ancient,
            year_3000,
            year_1999,
            message("fine", GOOD),
            message(&"m".repeat(128), GOOD),
        ];
        let plan = plan(&records, &masker(), None).expect("plan");
        assert_eq!(
            codes(&plan),
            [
                (long_id, "invalid_message_id".to_string()),
                ("nul\0id".to_string(), "invalid_message_id".to_string()),
                ("ancient".to_string(), "sent_timestamp_out_of_range".to_string()),
                ("y3000".to_string(), "sent_timestamp_out_of_range".to_string()),
                ("y1999".to_string(), "sent_timestamp_out_of_range".to_string()),
            ]
        );
        assert_eq!(plan.rows.message_id, ["fine".to_string(), "m".repeat(128)]);
    }

    #[test]
    fn a_message_id_repeated_in_the_event_gets_one_fate() {
        // Different content under one id: neither copy can be told apart, both fail.
        let records = [message("twice", GOOD), message("once", GOOD), message("twice", "not json")];
        let plan = plan(&records, &masker(), None).expect("plan");
        assert_eq!(codes(&plan), [("twice".to_string(), "repeated_message_id".to_string())]);
        assert_eq!(plan.rows.message_id, ["once"]);
        assert_eq!(plan.committed(1).failed.len(), 1);
        // The same message twice: handled once, the copy is a duplicate.
        let records = [message("twice", GOOD), message("twice", GOOD)];
        let same = super::plan(&records, &masker(), None).expect("plan");
        assert_eq!(same.rows.message_id, ["twice"]);
        let outcome = same.committed(1);
        assert_eq!((outcome.inserted, outcome.duplicates, outcome.failed.len()), (1, 1, 0));
    }

    #[test]
    fn replayed_and_keyed_messages_keep_their_first_identity_and_time() {
        let redriven = with_attribute(
            with_attribute(message("new-sqs-id", GOOD), ORIGINAL_MESSAGE_ID_ATTRIBUTE, "first-id"),
            ORIGINAL_SENT_TIMESTAMP_ATTRIBUTE,
            "1795400000000",
        );
        let keyed = with_attribute(message("sqs-2", GOOD), IDEMPOTENCY_KEY_ATTRIBUTE, "producer-key-7");
        let both = with_attribute(
            with_attribute(message("sqs-3", GOOD), ORIGINAL_MESSAGE_ID_ATTRIBUTE, "first-3"),
            IDEMPOTENCY_KEY_ATTRIBUTE,
            "producer-key-8",
        );
        let bad_key = with_attribute(message("sqs-4", GOOD), IDEMPOTENCY_KEY_ATTRIBUTE, "");
        let plan = plan(&[redriven, keyed, both, bad_key], &masker(), None).expect("plan");
        assert_eq!(plan.rows.message_id, ["first-id", "producer-key-7", "producer-key-8"]);
        assert_eq!(plan.accepted, ["new-sqs-id", "sqs-2", "sqs-3"], "failures are still named by SQS's id");
        assert_eq!(plan.rows.sent_at[0], time::macros::datetime!(2026-11-23 02:13:20 UTC));
        assert_eq!(plan.rows.create_date[0], time::macros::date!(2026 - 11 - 23));
        assert_eq!(codes(&plan), [("sqs-4".to_string(), "invalid_idempotency_key".to_string())]);
        let ids: Vec<_> = plan.store_failed().failed.into_iter().map(|f| f.message_id).collect();
        assert_eq!(ids, ["sqs-4", "new-sqs-id", "sqs-2", "sqs-3"]);
    }

    #[test]
    fn valid_records_with_unknown_keys_are_loaded_and_tallied() {
        let records = [
            message("a", r#"{"user_id":"u","os_version":"14","schema_version":2}"#),
            message("b", r#"{"user_id":"u","os_version":"15"}"#),
            message("c", r#"{"user_id":"","os_version":"15","other":1}"#),
            message("d", GOOD),
        ];
        let plan = plan(&records, &masker(), None).expect("plan");
        assert_eq!(plan.rows.message_id, ["a", "b", "d"]);
        // Only valid records count: "c" failed for its user_id.
        assert_eq!(plan.unknown_keys.records, 2);
        assert_eq!(plan.unknown_keys.keys.names(), ["os_version", "schema_version"]);
        assert_eq!(plan.clone().committed(3).unknown_keys.records, 2);
        assert_eq!(plan.store_failed().unknown_keys.records, 2, "drift is counted whatever the insert did");
    }

    #[test]
    fn an_empty_event_is_an_empty_response() {
        let outcome = plan(&[], &masker(), None).expect("plan").committed(0);
        assert!(outcome.failed.is_empty());
        assert_eq!(outcome.received, 0);
    }

    /// A failed encryption is never stored as an empty ciphertext: the whole event fails, so
    /// Lambda retries it and the error is seen.
    #[test]
    fn a_failed_vault_encryption_fails_the_whole_event() {
        use crate::vault::VaultSecretKey;
        let secret = VaultSecretKey::generate(&mut crypto_box::aead::OsRng);
        let mut sealer = BatchSealer::failing(&secret.public_key());
        let records = vec![message("a", GOOD)];
        let err = plan(&records, &masker(), Some(&mut sealer)).expect_err("the event must fail");
        assert_eq!(err, EventError::Vault(VaultError::Encryption));
        // Without the vault the same event plans normally.
        assert_eq!(plan(&records, &masker(), None).expect("plan").rows.len(), 1);
    }
}
