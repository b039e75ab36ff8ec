//! login-etl's side of the SQS partial-batch-failure contract. The contract itself (envelope
//! rules, identities, FIFO group blocking, repeated ids, the outcome of a store failure) lives
//! in the `sqs-batch` crate; what is login-specific lives here:
//!
//! - the [`envelope`] of login-etl's queue: the redrive attributes `login-etl-cli redrive`
//!   sets, and the sent times a login may have;
//! - the parse step the crate calls per message, [`LoginParser`]: the body validated
//!   ([`LoginRecord::parse`]), its personal fields masked and, with the vault on, their
//!   originals sealed; a [`MaskedLogin`] is what the store writes;
//! - [`RecordError`] as the crate's [`Rejection`], so its codes are the reason codes of logs,
//!   metrics and EMF;
//! - the schema-drift tally ([`UnknownKeyTally`]) and the invocation's report
//!   ([`BatchOutcome`]) that logs, metrics and `drain` read.
//!
//! How the accepted records become the statement's column arrays is a storage shape, and lives
//! with the PostgreSQL adapter, not here.

use std::borrow::Cow;
use std::collections::HashSet;
use std::ops::Range;
use std::sync::Arc;

use aws_lambda_events::sqs::SqsMessage;
use sqs_batch::{Envelope, EventError, Outcome, Plan, Rejection};

use crate::mask::{KeyId, MaskedField, Masker, MaskingMode};
use crate::message::{LoginRecord, RecordError, UnknownKeys};
use crate::policy::{Landing, Treatment};
use crate::vault::{BatchSealer, VaultError};

/// Set by `login-etl-cli redrive`: the `messageId` of the message's first delivery.
pub const ORIGINAL_MESSAGE_ID_ATTRIBUTE: &str = "LoginEtlOriginalMessageId";
/// Set by `login-etl-cli redrive`: the `SentTimestamp` (epoch ms) of the first delivery, so a
/// replayed login keeps its `sent_at` and `create_date`.
pub const ORIGINAL_SENT_TIMESTAMP_ATTRIBUTE: &str = "LoginEtlOriginalSentTimestamp";

/// The sent times accepted: [2000-01-01, 2100-01-01) UTC, in epoch milliseconds. PostgreSQL
/// would store far more (4713 BC to 294276 AD), but a login from before this service's
/// dependencies existed or from the next century is a broken clock or a forged attribute, and
/// it would also create partitions and dates no report expects. No wall clock is read here
/// (the core is pure), so "the future" is bounded by the century, not by now.
pub const SENT_MILLIS_RANGE: Range<i64> = 946_684_800_000..4_102_444_800_000;

/// The envelope rules of login-etl's queue: the producer's
/// [`IdempotencyKey`](sqs_batch::IDEMPOTENCY_KEY_ATTRIBUTE) (the crate's default), else
/// the first delivery's id a redrive kept, else SQS's `messageId` names a row; a redriven
/// login keeps its first sent time; sent times outside [`SENT_MILLIS_RANGE`] fail; identical
/// copies of one `messageId` are one message delivered twice (handled once, the copy a
/// duplicate), differing copies all fail.
pub fn envelope() -> Envelope {
    Envelope::default()
        .with_redrive_attributes(ORIGINAL_MESSAGE_ID_ATTRIBUTE, ORIGINAL_SENT_TIMESTAMP_ATTRIBUTE)
        .with_sent_range(SENT_MILLIS_RANGE)
        .with_identical_copies_collapsed(true)
}

/// A body's failure is the crate's rejection: its code (`malformed_json`, `missing_user_id`)
/// is what logs, metrics and EMF count, and a bad body never gets better by waiting.
impl Rejection for RecordError {
    fn code(&self) -> Cow<'static, str> {
        Cow::Owned(RecordError::code(self))
    }
}

/// Why one message was reported in `batchItemFailures`: the crate's taxonomy over login-etl's
/// [`RecordError`]. [`sqs_batch::FailureReason::code`] gives the strings logs and metrics use.
pub type FailureReason = sqs_batch::FailureReason<RecordError>;

/// A message that returns to the queue, named by its `messageId`.
pub type FailedMessage = sqs_batch::Failed<RecordError>;

/// An original `ip` or `device_id`, sealed to the vault's public key, seen first in this batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedOriginal {
    /// The vault key's id (the same for every original of a batch), shared, not copied.
    pub key_id: Arc<str>,
    pub field: MaskedField,
    pub masked_value: String,
    pub sealed: Vec<u8>,
}

/// A login as it is stored: validated, its personal fields masked, the originals sealed (when
/// the vault is on). No original value is left in it. What the store port writes, under the
/// identity the crate gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskedLogin {
    pub user_id: String,
    pub device_type: Option<String>,
    pub masked_ip: Option<String>,
    /// The address's network (`203.0.113.0/24`) when the masker keeps one
    /// ([`crate::mask::IpTreatment`]).
    pub ip_prefix: Option<String>,
    pub masked_device_id: Option<String>,
    pub locale: Option<String>,
    pub app_version: Option<String>,
    /// The scheme that masked `masked_ip` and `masked_device_id`, stored with the row.
    pub masking_mode: MaskingMode,
    /// The id of the key that masked them (`None` for the unkeyed scheme), stored with the row.
    pub masking_key_id: Option<KeyId>,
    /// The extras the field policy declares and stores, as one JSON object (kept ones as sent,
    /// masked ones as their pseudonym) for the `extras` column; `None` when there are none.
    pub extras: Option<String>,
    /// The extras the policy lands in columns of their own (`x-landing: {"column": …}`), as one
    /// JSON object keyed by column name, stored as `extras` is; `None` when there are none.
    pub columns: Option<String>,
    /// The originals this login brought to the vault: each distinct (field, masked value) of a
    /// batch is sealed once, by the first login that has it, so later ones carry none.
    pub sealed: Vec<SealedOriginal>,
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

/// The parse step of one batch, given to [`sqs_batch::try_plan`]: body → [`LoginRecord`] →
/// masked (and sealed) [`MaskedLogin`]. The crate calls it only for messages that passed the
/// envelope rules, and a message it parses is accepted, so what it tallies and seals is exactly
/// the accepted records'.
pub struct LoginParser<'a> {
    masker: &'a Masker,
    sealer: Option<&'a mut BatchSealer>,
    key_id: Option<Arc<str>>,
    sealed_already: HashSet<(MaskedField, String)>,
    unknown_keys: UnknownKeyTally,
}

impl<'a> LoginParser<'a> {
    /// With a `sealer`, the originals of `ip` and `device_id` are sealed for the PII vault.
    pub fn new(masker: &'a Masker, sealer: Option<&'a mut BatchSealer>) -> LoginParser<'a> {
        let key_id = sealer.as_ref().map(|sealer| Arc::from(sealer.key_id()));
        LoginParser { masker, sealer, key_id, sealed_already: HashSet::new(), unknown_keys: UnknownKeyTally::default() }
    }

    /// One message's body as a stored login, or why it is none (the inner `Err`).
    ///
    /// A failed seal (the outer `Err`) is not the message's fault, and no per-record failure
    /// would be honest: [`sqs_batch::try_plan`] fails the whole event with it, so the plan it
    /// was part of is never stored.
    pub fn parse(&mut self, message: &SqsMessage) -> Result<Result<MaskedLogin, RecordError>, VaultError> {
        let Some(body) = message.body.as_deref() else { return Ok(Err(RecordError::MissingBody)) };
        let mut login = match LoginRecord::parse_with(body, self.masker.policy()) {
            Ok(login) => login,
            Err(rejection) => return Ok(Err(rejection)),
        };
        let StoredExtras { extras, columns } = stored_extras(self.masker, std::mem::take(&mut login.extras));
        self.unknown_keys.add(&login.unknown_keys);
        let ip_prefix = login.ip.and_then(|ip| self.masker.ip_prefix(ip));
        // Without a pseudonym there is nothing to key a vault original by: none is sealed.
        let ip = login.ip.filter(|_| self.masker.ip_treatment().keeps_mask()).map(|ip| ip.to_string());
        let masked_ip = ip.as_deref().map(|ip| self.masker.mask(MaskedField::Ip, ip));
        let masked_device_id = login.device_id.as_deref().map(|id| self.masker.mask(MaskedField::DeviceId, id));
        let mut sealed = Vec::new();
        if let (Some(original), Some(masked)) = (&ip, &masked_ip) {
            self.seal(MaskedField::Ip, masked, original, &mut sealed)?;
        }
        if let (Some(original), Some(masked)) = (&login.device_id, &masked_device_id) {
            self.seal(MaskedField::DeviceId, masked, original, &mut sealed)?;
        }
        Ok(Ok(MaskedLogin {
            user_id: login.user_id,
            device_type: login.device_type,
            masked_ip,
            ip_prefix,
            masked_device_id,
            locale: login.locale,
            app_version: login.app_version,
            masking_mode: self.masker.mode(),
            masking_key_id: self.masker.key_id(),
            extras,
            columns,
            sealed,
        }))
    }

    fn seal(
        &mut self,
        field: MaskedField,
        masked: &str,
        original: &str,
        into: &mut Vec<SealedOriginal>,
    ) -> Result<(), VaultError> {
        let (Some(sealer), Some(key_id)) = (self.sealer.as_deref_mut(), &self.key_id) else { return Ok(()) };
        if self.sealed_already.insert((field, masked.to_owned())) {
            let sealed = sealer.seal(field, masked, original)?;
            into.push(SealedOriginal { key_id: Arc::clone(key_id), field, masked_value: masked.to_owned(), sealed });
        }
        Ok(())
    }

    /// The batch's drift tally: the unknown keys of the records it accepted.
    pub fn into_unknown_keys(self) -> UnknownKeyTally {
        self.unknown_keys
    }
}

/// What one login stores of its declared extras: the `extras` column's JSON object and the
/// own-column fields' object (keyed by column name), each `None` when empty.
struct StoredExtras {
    extras: Option<String>,
    columns: Option<String>,
}

/// The declared extras of one login as stored: a kept one as sent, a masked one as its
/// pseudonym, a dropped one left out; each where its policy lands it.
fn stored_extras(masker: &Masker, values: Vec<(usize, serde_json::Value)>) -> StoredExtras {
    if values.is_empty() {
        return StoredExtras { extras: None, columns: None };
    }
    let mut extras = serde_json::Map::new();
    let mut columns = serde_json::Map::new();
    for (index, value) in values {
        let Some(field) = masker.extras().get(index) else { continue };
        let stored = match (field.treatment(), value) {
            (Treatment::Kept, value) => value,
            (Treatment::MaskedHmac, serde_json::Value::String(text)) => {
                serde_json::Value::String(masker.mask_named(field.name(), &text))
            }
            // A masked extra is a string by its policy; dropped and truncated store nothing.
            _ => continue,
        };
        match field.landing() {
            Landing::Extras => extras.insert(field.name().to_owned(), stored),
            Landing::Column(column) => columns.insert(column.clone(), stored),
            Landing::Nowhere => continue,
        };
    }
    let text = |object: serde_json::Map<String, serde_json::Value>| {
        (!object.is_empty()).then(|| serde_json::Value::Object(object).to_string())
    };
    StoredExtras { extras: text(extras), columns: text(columns) }
}

/// One event planned by the crate with login-etl's envelope and parse, plus the drift tally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginPlan {
    pub contract: Plan<MaskedLogin, RecordError>,
    pub unknown_keys: UnknownKeyTally,
}

/// Validates and masks every record of an event through [`sqs_batch::try_plan`] with
/// [`envelope`]; with a `sealer`, also seals the originals of `ip` and `device_id` for the PII
/// vault.
///
/// # Errors
///
/// The crate's [`EventError`]: a record without a `messageId`, or
/// [`Aborted`](EventError::Aborted) by a [`VaultError`] (an original could not be sealed: the
/// batch fails whole rather than load a row whose original is lost).
pub fn plan(
    records: &[SqsMessage],
    masker: &Masker,
    sealer: Option<&mut BatchSealer>,
) -> Result<LoginPlan, EventError> {
    plan_with(records, &envelope(), masker, sealer)
}

/// [`plan`] with a prebuilt envelope (the handler builds it once per instance).
pub fn plan_with(
    records: &[SqsMessage],
    envelope: &Envelope,
    masker: &Masker,
    sealer: Option<&mut BatchSealer>,
) -> Result<LoginPlan, EventError> {
    let mut parser = LoginParser::new(masker, sealer);
    let contract = sqs_batch::try_plan(records, envelope, |message| parser.parse(message))?;
    Ok(LoginPlan { contract, unknown_keys: parser.into_unknown_keys() })
}

/// The fate of every record of one invocation, as logs, metrics and `drain` count it: the
/// crate's [`Outcome`] (counts, failures by reason code, the store's error) and the drift
/// tally, which the crate does not know. `S` is the store's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOutcome<S> {
    /// Every record's fate, from the crate: `received`, `succeeded` (inserted new),
    /// `duplicates`, `failed` in event order with each `messageId` once, `store_failures`,
    /// `failures_by_code`, and the response.
    pub records: Outcome<RecordError, S>,
    /// The valid records that carried keys the function does not know, whatever their insert
    /// did: drift is a property of what producers send.
    pub unknown_keys: UnknownKeyTally,
}

impl<S> BatchOutcome<S> {
    /// The crate's outcome with the plan's drift tally.
    pub fn new(records: Outcome<RecordError, S>, unknown_keys: UnknownKeyTally) -> BatchOutcome<S> {
        BatchOutcome { records, unknown_keys }
    }
}

/// login-etl's parse and envelope through the crate. The envelope rules themselves are the
/// crate's and tested there; these pin what login-etl gets from them, in login-etl's codes.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::MaskingKey;
    use crate::message::Field;
    use sqs_batch::IDEMPOTENCY_KEY_ATTRIBUTE;
    use sqs_batch::testing::{SENT, fifo, message, with_attribute};
    use std::collections::BTreeMap;

    fn masker() -> Masker {
        Masker::hmac(&MaskingKey::from_hex(&"11".repeat(32)).expect("key"))
    }

    const GOOD: &str = r#"{"user_id":"u1","ip":"10.0.0.1","device_id":"d-1","locale":null,"app_version":"0.96"}"#;

    /// The identities the accepted records will be stored under (the table's `message_id`).
    fn identities(plan: &LoginPlan) -> Vec<&str> {
        plan.contract.accepted().iter().map(|accepted| accepted.identity()).collect()
    }

    fn codes(plan: &LoginPlan) -> Vec<(String, String)> {
        plan.contract.rejected().iter().map(|f| (f.message_id().to_owned(), f.reason().code().into_owned())).collect()
    }

    #[test]
    fn the_envelope_is_the_one_the_core_constants_name() {
        assert_eq!(envelope().identity_attributes(), [IDEMPOTENCY_KEY_ATTRIBUTE, ORIGINAL_MESSAGE_ID_ATTRIBUTE]);
        assert_eq!(IDEMPOTENCY_KEY_ATTRIBUTE, "IdempotencyKey");
        assert_eq!(
            envelope(),
            Envelope::default()
                .with_redrive_attributes("LoginEtlOriginalMessageId", "LoginEtlOriginalSentTimestamp")
                .with_sent_range(946_684_800_000..4_102_444_800_000)
                .with_identical_copies_collapsed(true)
        );
    }

    /// The handler's path: the masker carries the deployment's policy, and each record is read
    /// by its built-in rules (here `locale` at most 2 characters, `device_id` required).
    #[test]
    fn records_are_read_by_the_masker_s_policy() {
        let mut schema: serde_json::Value = serde_json::from_str(crate::schema::SCHEMA_JSON).expect("schema");
        schema["properties"]["locale"]["maxLength"] = 2.into();
        schema["properties"]["device_id"]["type"] = "string".into();
        schema["required"] = serde_json::json!(["user_id", "device_id"]);
        let policy = crate::policy::FieldPolicy::from_schema(&schema.to_string()).expect("policy");
        let records = [
            message("a", r#"{"user_id":"u","device_id":"d","locale":"RU"}"#),
            message("b", r#"{"user_id":"u","device_id":"d","locale":"RUS"}"#),
            message("c", r#"{"user_id":"u","locale":"RU"}"#),
        ];
        let tightened = plan(&records, &masker().with_policy(&policy), None).expect("plan");
        assert_eq!(identities(&tightened), ["a"]);
        assert_eq!(
            codes(&tightened),
            [("b".into(), "too_long_locale".into()), ("c".into(), "missing_device_id".into())]
        );
        // The published policy (the default masker) loads all three.
        assert_eq!(identities(&plan(&records, &masker(), None).expect("plan")), ["a", "b", "c"]);
    }

    #[test]
    fn declared_extras_land_where_the_policy_says() {
        let mut schema: serde_json::Value = serde_json::from_str(crate::schema::SCHEMA_JSON).expect("schema");
        schema["properties"]["os_version"] = serde_json::json!({"type": "string", "$ref": "#/$defs/noNul",
            "x-treatment": "kept", "x-landing": {"column": "os_version"}});
        schema["properties"]["session_id"] = serde_json::json!({"type": "string", "$ref": "#/$defs/noNul",
            "x-treatment": "masked-hmac", "x-landing": {"column": "session_pseudonym"}});
        schema["properties"]["country"] = serde_json::json!({"type": "string", "$ref": "#/$defs/noNul",
            "x-treatment": "kept", "x-landing": "extras"});
        let policy = crate::policy::FieldPolicy::from_schema(&schema.to_string()).expect("policy");
        let masker = masker().with_policy(&policy);
        let body = r#"{"user_id":"u","os_version":"14.2","session_id":"s-1","country":"NL"}"#;
        let plan = plan(&[message("a", body), message("b", r#"{"user_id":"u"}"#)], &masker, None).expect("plan");
        let [with, without] = plan.contract.accepted() else { panic!("two accepted") };
        let columns: serde_json::Value =
            serde_json::from_str(with.record().columns.as_deref().expect("columns")).expect("json");
        assert_eq!(
            columns,
            serde_json::json!({"os_version": "14.2", "session_pseudonym": masker.mask_named("session_id", "s-1")})
        );
        assert_eq!(with.record().extras.as_deref(), Some(r#"{"country":"NL"}"#));
        assert_eq!((without.record().extras.as_deref(), without.record().columns.as_deref()), (None, None));
    }

    #[test]
    fn every_record_gets_exactly_one_fate() {
        let records = vec![message("a", GOOD), message("b", "not json"), message("c", r#"{"user_id":"u2"}"#)];
        let plan = plan(&records, &masker(), None).expect("plan");
        assert_eq!(plan.contract.received(), 3);
        assert_eq!(identities(&plan), ["a", "c"]);
        assert_eq!(plan.contract.rejected().len(), 1);
        assert_eq!(plan.contract.rejected()[0].message_id(), "b");
        assert_eq!(plan.contract.rejected()[0].reason().code(), "malformed_json");
    }

    #[test]
    fn logins_are_masked_and_carry_their_sent_time() {
        let masker = masker();
        let plan = plan(&[message("a", GOOD)], &masker, None).expect("plan");
        let accepted = &plan.contract.accepted()[0];
        let login = &accepted.record();
        assert_eq!(login.masked_ip.as_deref(), Some(masker.mask(MaskedField::Ip, "10.0.0.1").as_str()));
        assert_eq!(login.masked_device_id.as_deref(), Some(masker.mask(MaskedField::DeviceId, "d-1").as_str()));
        assert_eq!(login.locale, None);
        assert_eq!(login.app_version.as_deref(), Some("0.96"));
        assert_eq!(accepted.sent_at_ms(), Some(SENT));
        assert_eq!(login.masking_mode, MaskingMode::Hmac);
        assert!(login.sealed.is_empty(), "no vault, nothing sealed");
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
        assert_eq!(plan.contract.accepted()[0].record().masked_ip, plan.contract.accepted()[1].record().masked_ip);
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
        let codes: Vec<_> =
            plan.contract.rejected().iter().map(|f| (f.message_id(), f.reason().code().into_owned())).collect();
        assert_eq!(
            codes,
            [
                ("a", "missing_body".to_string()),
                ("b", "invalid_sent_timestamp".to_string()),
                ("c", "invalid_sent_timestamp".to_string())
            ]
        );
        assert_eq!(identities(&plan), ["d"]);
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
        assert_eq!(identities(&plan), ["1", "3", "5"]);
        assert_eq!(
            plan.contract
                .rejected()
                .iter()
                .map(|f| (f.message_id(), f.position(), f.receive_count(), f.receipt_handle(), f.reason()))
                .collect::<Vec<_>>(),
            [
                ("2", 1, 1, Some("rh-2"), &FailureReason::Rejected(RecordError::Missing(Field::UserId))),
                ("4", 3, 1, Some("rh-4"), &FailureReason::EarlierFailureInGroup),
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
        assert_eq!(identities(&plan), ["2"]);
    }

    #[test]
    fn accepted_records_not_inserted_are_duplicates() {
        let plan = plan(&[message("a", GOOD), message("b", GOOD), message("c", "[]")], &masker(), None).expect("plan");
        let outcome = plan.contract.inserted::<()>(1);
        assert_eq!((outcome.received(), outcome.succeeded(), outcome.duplicates()), (3, 1, 1));
        let ids: Vec<_> = outcome.failed().iter().map(|f| f.message_id().to_owned()).collect();
        assert_eq!(ids, ["c"]);
        assert_eq!(outcome.failures_by_code(), BTreeMap::from([("not_an_object".into(), 1)]));
    }

    #[test]
    fn store_failure_fails_every_record() {
        let plan = plan(&[message("a", GOOD), message("b", "[]"), message("c", GOOD)], &masker(), None).expect("plan");
        let outcome = plan.contract.store_failed(());
        assert_eq!(outcome.succeeded(), 0);
        let mut ids: Vec<_> = outcome.failed().iter().map(|f| f.message_id().to_owned()).collect();
        ids.sort();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(
            outcome.failures_by_code(),
            BTreeMap::from([("not_an_object".into(), 1), ("store_failed".into(), 2)])
        );
        assert_eq!(outcome.store_error(), Some(&()));
        assert_eq!(outcome.store_failures().count(), 2);
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
        let sealed: Vec<&SealedOriginal> =
            plan.contract.accepted().iter().flat_map(|accepted| &accepted.record().sealed).collect();
        let fields: Vec<&str> = sealed.iter().map(|s| s.field.name()).collect();
        assert_eq!(fields, ["ip", "device_id", "device_id"]);
        assert!(sealed.iter().all(|s| *s.key_id == secret.public_key().key_id()));
        let opened: Vec<String> =
            sealed.iter().map(|s| secret.open(s.field, &s.masked_value, &s.sealed).expect("opens")).collect();
        assert_eq!(opened, ["10.0.0.1", "d-1", "d-2"]);
        assert_eq!(Some(&sealed[0].masked_value), plan.contract.accepted()[0].record().masked_ip.as_ref());
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
        assert_eq!(identities(&plan), ["fine".to_string(), "m".repeat(128)]);
    }

    #[test]
    fn a_message_id_repeated_in_the_event_gets_one_fate() {
        // Different content under one id: neither copy can be told apart, both fail.
        let records = [message("twice", GOOD), message("once", GOOD), message("twice", "not json")];
        let plan = plan(&records, &masker(), None).expect("plan");
        assert_eq!(codes(&plan), [("twice".to_string(), "repeated_message_id".to_string())]);
        assert_eq!(identities(&plan), ["once"]);
        assert_eq!(plan.contract.inserted::<()>(1).failed().len(), 1);
        // The same message twice: handled once, the copy is a duplicate.
        let records = [message("twice", GOOD), message("twice", GOOD)];
        let same = super::plan(&records, &masker(), None).expect("plan");
        assert_eq!(identities(&same), ["twice"]);
        let outcome = same.contract.inserted::<()>(1);
        assert_eq!((outcome.succeeded(), outcome.duplicates(), outcome.failed().len()), (1, 1, 0));
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
        assert_eq!(identities(&plan), ["first-id", "producer-key-7", "producer-key-8"]);
        let accepted: Vec<&str> = plan.contract.accepted().iter().map(|a| a.message_id()).collect();
        assert_eq!(accepted, ["new-sqs-id", "sqs-2", "sqs-3"], "failures are still named by SQS's id");
        // 2026-11-23T02:13:20Z, the first delivery's, not this one's.
        assert_eq!(plan.contract.accepted()[0].sent_at_ms(), Some(1_795_400_000_000));
        assert_eq!(codes(&plan), [("sqs-4".to_string(), "invalid_idempotency_key".to_string())]);
        // The crate reports a store failure's records in event order (login-etl used to list
        // the envelope and body failures first, then the store's).
        let ids: Vec<_> = plan.contract.store_failed(()).failed().iter().map(|f| f.message_id().to_owned()).collect();
        assert_eq!(ids, ["new-sqs-id", "sqs-2", "sqs-3", "sqs-4"]);
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
        assert_eq!(identities(&plan), ["a", "b", "d"]);
        // Only valid records count: "c" failed for its user_id.
        assert_eq!(plan.unknown_keys.records, 2);
        assert_eq!(plan.unknown_keys.keys.names(), ["os_version", "schema_version"]);
    }

    #[test]
    fn an_empty_event_is_an_empty_response() {
        let outcome = plan(&[], &masker(), None).expect("plan").contract.inserted::<()>(0);
        assert!(outcome.failed().is_empty());
        assert_eq!(outcome.received(), 0);
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
        assert!(matches!(err, EventError::Aborted { position: 0, .. }), "{err:?}");
        assert_eq!(err.source_as::<VaultError>(), Some(&VaultError::Encryption));
        // Without the vault the same event plans normally.
        assert_eq!(plan(&records, &masker(), None).expect("plan").contract.accepted().len(), 1);
    }

    // Where the crate's rules differ from login-etl's former own, deliberately.

    /// The envelope is read before the body: a record bad in both reports the envelope's
    /// reason (login-etl used to report the body's). Both are final, and the body of a message
    /// whose envelope is refused is never parsed.
    #[test]
    fn a_record_bad_in_envelope_and_body_reports_the_envelope() {
        let mut both = message("both", "not json");
        both.attributes.insert("SentTimestamp".into(), "yesterday".into());
        let plan = plan(&[both], &masker(), None).expect("plan");
        assert_eq!(codes(&plan), [("both".to_string(), "invalid_sent_timestamp".to_string())]);
    }

    /// The `messageId` is checked even when an identity attribute names the row (login-etl
    /// used to skip it): an id no log line or response should carry fails its record.
    #[test]
    fn an_unstorable_message_id_fails_even_with_an_idempotency_key() {
        let keyed = with_attribute(message("bad\nid", GOOD), IDEMPOTENCY_KEY_ATTRIBUTE, "key-1");
        let plan = plan(&[keyed], &masker(), None).expect("plan");
        assert_eq!(codes(&plan), [("bad\nid".to_string(), "invalid_message_id".to_string())]);
    }

    /// A repeated `messageId` on a FIFO queue blocks the rest of its group (login-etl used to
    /// let it through), so the group's order holds when the repeated message returns.
    #[test]
    fn a_repeated_message_id_blocks_its_fifo_group() {
        let records = [fifo("r", "g", GOOD), fifo("r", "g", r#"{"user_id":"u2"}"#), fifo("later", "g", GOOD)];
        let plan = plan(&records, &masker(), None).expect("plan");
        assert_eq!(
            codes(&plan),
            [
                ("r".to_string(), "repeated_message_id".to_string()),
                ("later".to_string(), "fifo_group_blocked".to_string())
            ]
        );
    }
}
