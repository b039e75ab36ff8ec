//! The parse step the crate calls per message: a body validated into a [`LoginRecord`], its
//! personal fields masked and, with the vault on, their originals sealed, into the
//! [`MaskedLogin`] the store writes.

use std::collections::HashSet;
use std::sync::Arc;

use aws_lambda_events::sqs::SqsMessage;

use super::outcome::UnknownKeyTally;
use crate::mask::{KeyId, MaskedField, Masker, MaskingMode};
use crate::message::{KeptFields, LoginRecord, RecordError};
use crate::policy::{Landing, Treatment};
use crate::vault::{BatchSealer, VaultError};

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
    /// The record's built-in fields stored as sent.
    pub kept: KeptFields,
    pub masked_ip: Option<String>,
    /// The address's network (`203.0.113.0/24`) when the masker keeps one
    /// ([`crate::mask::IpTreatment`]).
    pub ip_prefix: Option<String>,
    pub masked_device_id: Option<String>,
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
            kept: login.kept,
            masked_ip,
            ip_prefix,
            masked_device_id,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::fixtures::{GOOD, codes, identities, masker};
    use crate::batch::plan;
    use sqs_batch::EventError;
    use sqs_batch::testing::{SENT, message};

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
    fn logins_are_masked_and_carry_their_sent_time() {
        let masker = masker();
        let plan = plan(&[message("a", GOOD)], &masker, None).expect("plan");
        let accepted = &plan.contract.accepted()[0];
        let login = &accepted.record();
        assert_eq!(login.masked_ip.as_deref(), Some(masker.mask(MaskedField::Ip, "10.0.0.1").as_str()));
        assert_eq!(login.masked_device_id.as_deref(), Some(masker.mask(MaskedField::DeviceId, "d-1").as_str()));
        assert_eq!(login.kept.locale, None);
        assert_eq!(login.kept.app_version.as_deref(), Some("0.96"));
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
}
