//! The message schema: the JSON Schema producers validate against, and each body's verdict
//! by the function's own rules.
//!
//! The schema (`schema/login-event.schema.json`) is the published form of the built-in fields'
//! rules ([`crate::message`]'s code: `tests/it/schema.rs` feeds a generated corpus to both and
//! fails on the first body they disagree on, so neither can change without the other), and the
//! field policy's source: the function reads its annotations ([`crate::policy`]) for what is
//! stored of each field, and every field beyond the built-in six from it alone. How the
//! schema evolves: `docs/schema.md`.

use crate::message::{LoginRecord, RecordError, UnknownKeys};
use crate::policy::FieldPolicy;

/// The schema document, as published in the repository and embedded in `login-etl-cli`.
pub const SCHEMA_JSON: &str = include_str!("../../../schema/login-event.schema.json");

/// The schema's `$id`: one per published version, so a registry or a producer pinning it
/// always gets the same document.
pub const SCHEMA_ID: &str = "urn:login-etl:schema:login-event:1.0.0";

/// The schema's version (its `x-version`, also the last part of its `$id`): the major part
/// changes with a breaking change, the minor with an additive one (`docs/schema.md`).
pub const SCHEMA_VERSION: &str = "1.0.0";

/// What the function would do with one body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Loaded; `unknown_keys` names the keys it does not know (their values are not stored).
    Valid { unknown_keys: UnknownKeys },
    /// Refused, for this reason (its [`RecordError::code`] is what logs and metrics count).
    Invalid(RecordError),
}

impl Verdict {
    pub fn is_valid(&self) -> bool {
        matches!(self, Verdict::Valid { .. })
    }
}

/// The function's verdict on a body under the published policy: [`LoginRecord::parse`], the
/// very rules the handler applies, with the record's values dropped.
pub fn judge(body: &str) -> Verdict {
    judge_with(body, FieldPolicy::published_ref())
}

/// [`judge`] under a deployment's field policy (its built-in fields' rules, its extras).
pub fn judge_with(body: &str, policy: &FieldPolicy) -> Verdict {
    match LoginRecord::parse_with(body, policy) {
        Ok(record) => Verdict::Valid { unknown_keys: record.unknown_keys },
        Err(err) => Verdict::Invalid(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::KNOWN_KEYS;

    fn schema() -> serde_json::Value {
        serde_json::from_str(SCHEMA_JSON).expect("the schema is JSON")
    }

    #[test]
    fn the_constants_are_the_schema_s_own() {
        let schema = schema();
        assert_eq!(schema["$id"], SCHEMA_ID);
        assert_eq!(schema["x-version"], SCHEMA_VERSION);
        assert!(SCHEMA_ID.ends_with(&format!(":{SCHEMA_VERSION}")), "the $id carries the version");
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    }

    #[test]
    fn the_schema_declares_exactly_the_known_keys_and_allows_others() {
        let schema = schema();
        let mut declared: Vec<&str> =
            schema["properties"].as_object().expect("properties").keys().map(String::as_str).collect();
        declared.sort_unstable();
        let mut known = KNOWN_KEYS.to_vec();
        known.sort_unstable();
        assert_eq!(declared, known);
        assert_eq!(schema["required"], serde_json::json!(["user_id"]));
        assert_eq!(schema["additionalProperties"], true);
        let description = schema["description"].as_str().expect("description");
        assert!(description.contains("repeated"), "the schema names what it cannot say");
    }

    /// A known key repeated is refused whatever the values, also when one of the two is spelt
    /// by its escape (`user\u005fid`): what the schema cannot say (it says so in prose above).
    #[test]
    fn every_known_key_repeated_is_refused_however_it_is_spelt() {
        for key in KNOWN_KEYS {
            let body = format!(r#"{{"user_id":"u","{key}":null,"{key}":null}}"#);
            assert_eq!(judge(&body), Verdict::Invalid(RecordError::DuplicateKey), "{body}");
            let escaped = format!(r#"{{"user_id":"u","{key}":null,"{}":null}}"#, key.replacen('_', "\\u005f", 1));
            if escaped.contains("\\u005f") {
                assert_eq!(judge(&escaped), Verdict::Invalid(RecordError::DuplicateKey), "{escaped}");
            }
        }
    }

    #[test]
    fn verdicts_are_the_function_s() {
        assert!(judge(r#"{"user_id":"u"}"#).is_valid());
        assert_eq!(judge("{}"), Verdict::Invalid(RecordError::Missing(crate::message::Field::UserId)));
        match judge(r#"{"user_id":"u","os_version":"14","schema_version":2}"#) {
            Verdict::Valid { unknown_keys } => assert_eq!(unknown_keys.names(), ["os_version", "schema_version"]),
            other => panic!("{other:?}"),
        }
    }
}
