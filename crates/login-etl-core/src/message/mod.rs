//! The login message: its wire format, the rules a body must meet, and the validated record.
//!
//! Everything here is pure: a body goes in, a [`LoginRecord`] or a [`RecordError`] comes out.
//! Errors never carry any part of the body, because bodies hold personal data and errors are
//! logged and counted.
//!
//! - this file: the record and its rules ([`LoginRecord::parse_with`] reads a field policy's
//!   rule table), the [`Field`]s it names and the [`RecordError`]s it returns;
//! - `wire`: the body as it arrives, read in one streaming serde pass by field index;
//! - `unknown_keys`: the names of keys the function does not know, kept only as far as they
//!   are safe to log ([`UnknownKeys`]).

mod unknown_keys;
mod wire;

use std::net::IpAddr;

use serde_json::Value;

use crate::mask::MaskedField;
use crate::policy::{FieldPolicy, FieldRule, Format};

pub use unknown_keys::{MAX_UNKNOWN_KEY_CHARS, MAX_UNKNOWN_KEY_NAMES, UNNAMED_KEY, UnknownKeys, loggable_key_name};

/// A field of the login message that validation can reject. The personal fields are the
/// masking module's [`MaskedField`]s, so the two never drift apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    UserId,
    DeviceType,
    Locale,
    AppVersion,
    /// `ip` or `device_id`: stored only masked.
    Masked(MaskedField),
}

impl Field {
    pub const IP: Field = Field::Masked(MaskedField::Ip);
    pub const DEVICE_ID: Field = Field::Masked(MaskedField::DeviceId);
    /// The built-in fields, in the order of [`KNOWN_KEYS`] (and of the columns).
    pub const ALL: [Field; 6] =
        [Field::UserId, Field::DeviceType, Field::Locale, Field::AppVersion, Field::IP, Field::DEVICE_ID];
}

impl Field {
    /// The JSON key, which is also the column name (before masking).
    pub const fn name(self) -> &'static str {
        match self {
            Field::UserId => "user_id",
            Field::DeviceType => "device_type",
            Field::Locale => "locale",
            Field::AppVersion => "app_version",
            Field::Masked(field) => field.name(),
        }
    }

    /// Its index in [`KNOWN_KEYS`] and [`Field::ALL`] (and in the policy's rule table).
    pub const fn index(self) -> usize {
        match self {
            Field::UserId => 0,
            Field::DeviceType => 1,
            Field::Locale => 2,
            Field::AppVersion => 3,
            Field::Masked(MaskedField::Ip) => 4,
            Field::Masked(MaskedField::DeviceId) => 5,
        }
    }

    /// The longest value this release can take, in characters, as PostgreSQL's `varchar(n)`
    /// counts them: the most a field policy's `maxLength` may say (the published one says
    /// exactly this), as the column's length bounds it.
    ///
    /// `ip` is capped well above the longest textual address (45 characters) only so that a
    /// huge string is rejected before it is parsed; `device_id` is capped because an unbounded
    /// identifier is a sign of a broken producer, and the column holds only its 64-character mask.
    pub const fn max_chars(self) -> usize {
        match self {
            Field::UserId => 128,
            Field::DeviceType | Field::Locale | Field::AppVersion => 32,
            Field::Masked(MaskedField::Ip) => 64,
            Field::Masked(MaskedField::DeviceId) => 256,
        }
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a message body was rejected. Carries field names and sizes, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("the message has no body")]
    MissingBody,
    #[error("the body is not valid JSON (line {line}, column {column})")]
    MalformedJson { line: usize, column: usize },
    #[error("the body is valid JSON but not an object")]
    NotAnObject,
    #[error("the body repeats a key, so its meaning is ambiguous")]
    DuplicateKey,
    #[error("`{0}` is required but missing or null")]
    Missing(Field),
    #[error("`{0}` must be a string")]
    NotAString(Field),
    #[error("`{0}` must not be empty")]
    Empty(Field),
    /// `max` is the field policy's `maxLength`.
    #[error("`{field}` has {chars} characters; at most {max} are allowed")]
    TooLong { field: Field, chars: usize, max: usize },
    #[error("`{0}` contains a NUL character, which PostgreSQL text cannot store")]
    ContainsNul(Field),
    #[error("`ip` is not a valid IPv4 or IPv6 address")]
    InvalidIp,
    #[error("`app_version` is not a version string such as 2.3.0")]
    InvalidAppVersion,
    /// A field the policy declares beyond the built-in six broke its declared type, limits or
    /// `required` (the name is the policy's, never the body's).
    #[error("`{0}` does not meet its declared type, limits or required (the field policy)")]
    InvalidExtra(String),
}

impl RecordError {
    /// A stable, PII-free code for counting and alerting, e.g. `missing_user_id`.
    pub fn code(&self) -> String {
        match self {
            RecordError::MissingBody => "missing_body".into(),
            RecordError::MalformedJson { .. } => "malformed_json".into(),
            RecordError::NotAnObject => "not_an_object".into(),
            RecordError::DuplicateKey => "duplicate_key".into(),
            RecordError::Missing(field) => format!("missing_{field}"),
            RecordError::NotAString(field) => format!("not_a_string_{field}"),
            RecordError::Empty(field) => format!("empty_{field}"),
            RecordError::TooLong { field, .. } => format!("too_long_{field}"),
            RecordError::ContainsNul(field) => format!("nul_in_{field}"),
            RecordError::InvalidIp => "invalid_ip".into(),
            RecordError::InvalidAppVersion => "invalid_app_version".into(),
            RecordError::InvalidExtra(name) => format!("invalid_{name}"),
        }
    }
}

/// A login message that passed validation, before masking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRecord {
    /// Stored as sent.
    pub kept: KeptFields,
    /// Already canonical: IPv4-mapped IPv6 addresses are folded to IPv4.
    pub ip: Option<IpAddr>,
    pub device_id: Option<String>,
    /// The keys of the body the function does not know (names only): a producer ahead of
    /// the schema. Their values were read only as far as checking they are JSON.
    pub unknown_keys: UnknownKeys,
    /// The values of the declared extras present and not null, by their index in the policy's
    /// [`ExtraFields`](crate::policy::ExtraFields), already checked against their rules.
    pub extras: Vec<(usize, Value)>,
}

/// The built-in fields stored as sent (the field policy's `kept` ones): validated into a
/// [`LoginRecord`] and carried unchanged into the login that is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptFields {
    pub user_id: String,
    pub device_type: Option<String>,
    pub locale: Option<String>,
    pub app_version: Option<String>,
}

/// Every key the function reads, in the order of the columns. The JSON Schema of the body
/// (`schema/login-event.schema.json`) declares exactly these properties.
pub const KNOWN_KEYS: [&str; 6] = ["user_id", "device_type", "locale", "app_version", "ip", "device_id"];

impl LoginRecord {
    /// Parses and validates one message body under the published policy (the built-in
    /// fields, no extras).
    pub fn parse(body: &str) -> Result<Self, RecordError> {
        LoginRecord::parse_with(body, FieldPolicy::published_ref())
    }

    /// Parses and validates one message body under a field policy: the built-in fields by its
    /// rule table, and the extras it declares.
    pub fn parse_with(body: &str, policy: &FieldPolicy) -> Result<Self, RecordError> {
        let extras = &policy.extras;
        let wire = wire::parse_object(body, extras)?;
        let mut present = Vec::with_capacity(wire.extras.len());
        for (index, field) in extras.iter().enumerate() {
            let value = wire.extras.iter().find(|(seen, _)| *seen == index).and_then(|(_, value)| value.as_ref());
            if !field.accepts(value) {
                return Err(RecordError::InvalidExtra(field.name().to_owned()));
            }
            if let Some(value) = value.filter(|value| !value.is_null()) {
                present.push((index, value.clone()));
            }
        }
        let [user_id, device_type, locale, app_version, ip, device_id] = wire.values;
        // The policy's loader guarantees what the record's shape needs: `user_id` required,
        // `ip` an address, only `app_version` with the version grammar.
        let rules = policy.built_in;

        let user_id = string_field(user_id, Field::UserId, rules.get(Field::UserId))?
            .ok_or(RecordError::Missing(Field::UserId))?;
        let device_type = string_field(device_type, Field::DeviceType, rules.get(Field::DeviceType))?;
        let locale = string_field(locale, Field::Locale, rules.get(Field::Locale))?;
        let version_rule = rules.get(Field::AppVersion);
        let app_version = string_field(app_version, Field::AppVersion, version_rule)?;
        if version_rule.format == Format::Version && app_version.as_deref().is_some_and(|text| !is_version(text)) {
            return Err(RecordError::InvalidAppVersion);
        }
        let ip = string_field(ip, Field::IP, rules.get(Field::IP))?
            .map(|text| text.parse::<IpAddr>().map(|ip| ip.to_canonical()))
            .transpose()
            .map_err(|_| RecordError::InvalidIp)?;
        let device_id = string_field(device_id, Field::DEVICE_ID, rules.get(Field::DEVICE_ID))?;

        Ok(LoginRecord {
            kept: KeptFields { user_id, device_type, locale, app_version },
            ip,
            device_id,
            unknown_keys: wire.unknown_keys,
            extras: present,
        })
    }
}

/// Accepts a missing/null field unless `rule` requires it, or a string within its limits.
#[inline]
fn string_field(value: Option<Value>, field: Field, rule: FieldRule) -> Result<Option<String>, RecordError> {
    let text = match value {
        None if rule.required => return Err(RecordError::Missing(field)),
        None => return Ok(None),
        Some(Value::String(text)) => text,
        Some(_) => return Err(RecordError::NotAString(field)),
    };
    // Byte length bounds the character count from above, so the count is skipped when short.
    let max = rule.max_chars as usize;
    if text.len() > max {
        let chars = text.chars().count();
        if chars > max {
            return Err(RecordError::TooLong { field, chars, max });
        }
    }
    if text.contains('\0') {
        return Err(RecordError::ContainsNul(field));
    }
    if rule.not_blank && text.trim().is_empty() {
        return Err(RecordError::Empty(field));
    }
    Ok(Some(text))
}

/// A release version: dot-separated decimal numbers (`2.3.0`, `0.96`, `7`), optionally followed
/// by a SemVer-style pre-release or build suffix (`2.3.0-beta.1`, `2.3.0+42`).
fn is_version(text: &str) -> bool {
    let (numbers, suffix) = match text.find(['-', '+']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let numbers_ok = numbers.split('.').all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    let suffix_ok = suffix.is_none_or(|s| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'))
    });
    numbers_ok && suffix_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"user_id":"424cdd21-063a-43a7-b91b-7ca1a833afae","app_version":"2.3.0","device_type":"android","ip":"199.172.111.135","locale":"RU","device_id":"593-47-5928"}"#;

    #[test]
    fn parses_the_documented_example() {
        let record = LoginRecord::parse(GOOD).expect("valid");
        assert_eq!(record.kept.user_id, "424cdd21-063a-43a7-b91b-7ca1a833afae");
        assert_eq!(record.kept.app_version.as_deref(), Some("2.3.0"));
        assert_eq!(record.kept.device_type.as_deref(), Some("android"));
        assert_eq!(record.ip, Some("199.172.111.135".parse().expect("ip")));
        assert_eq!(record.kept.locale.as_deref(), Some("RU"));
        assert_eq!(record.device_id.as_deref(), Some("593-47-5928"));
    }

    #[test]
    fn optional_fields_may_be_missing_or_null() {
        let record = LoginRecord::parse(r#"{"user_id":"u1","locale":null,"ip":null}"#).expect("valid");
        assert_eq!(
            record,
            LoginRecord {
                kept: KeptFields { user_id: "u1".into(), device_type: None, locale: None, app_version: None },
                ip: None,
                device_id: None,
                unknown_keys: UnknownKeys::default(),
                extras: Vec::new(),
            }
        );
    }

    #[test]
    fn unknown_keys_are_loaded_past_and_named() {
        let record = LoginRecord::parse(r#"{"user_id":"u1","extra":{"nested":[1,2]},"n":5}"#).expect("valid");
        assert_eq!(record.kept.user_id, "u1");
        assert_eq!(record.unknown_keys.names(), ["extra", "n"]);
        assert_eq!(record.unknown_keys.count(), 2);
        assert!(LoginRecord::parse(GOOD).expect("valid").unknown_keys.is_empty());
    }

    #[test]
    fn known_keys_are_the_fields() {
        assert_eq!(Field::ALL.map(Field::name), KNOWN_KEYS);
        for (index, field) in Field::ALL.into_iter().enumerate() {
            assert_eq!(field.index(), index, "{field}");
        }
    }

    /// A deployment's policy that tightens the built-in fields' rules is obeyed by the parser,
    /// with no rebuild: the rules are read, not compiled in.
    #[test]
    fn the_parser_obeys_the_policy_s_built_in_rules() {
        let mut schema: Value = serde_json::from_str(crate::schema::SCHEMA_JSON).expect("schema");
        schema["properties"]["locale"]["maxLength"] = 2.into();
        schema["properties"]["device_id"]["type"] = "string".into();
        schema["properties"]["device_type"]["allOf"] =
            serde_json::json!([{ "$ref": "#/$defs/noNul" }, { "$ref": "#/$defs/notBlank" }]);
        let version = schema["properties"]["app_version"].as_object_mut().expect("app_version");
        version.remove("x-format");
        version.remove("pattern");
        version.insert("$ref".into(), "#/$defs/noNul".into());
        schema["required"] = serde_json::json!(["user_id", "device_id"]);
        let policy = FieldPolicy::from_schema(&schema.to_string()).expect("policy");
        let parse = |body: &str| LoginRecord::parse_with(body, &policy);

        let good = r#"{"user_id":"u","device_id":"d","locale":"RU","app_version":"nightly"}"#;
        let record = parse(good).expect("valid under the policy");
        assert_eq!((record.kept.locale.as_deref(), record.kept.app_version.as_deref()), (Some("RU"), Some("nightly")));
        assert_eq!(LoginRecord::parse(good), Err(RecordError::InvalidAppVersion), "the published grammar");
        let cases = [
            (
                r#"{"user_id":"u","device_id":"d","locale":"RUS"}"#,
                RecordError::TooLong { field: Field::Locale, chars: 3, max: 2 },
            ),
            (r#"{"user_id":"u"}"#, RecordError::Missing(Field::DEVICE_ID)),
            (r#"{"user_id":"u","device_id":null}"#, RecordError::Missing(Field::DEVICE_ID)),
            (r#"{"user_id":"u","device_id":"d","device_type":" "}"#, RecordError::Empty(Field::DeviceType)),
        ];
        for (body, expected) in cases {
            assert_eq!(parse(body), Err(expected.clone()), "{body}");
            // Each is valid under the published policy.
            assert!(LoginRecord::parse(body).is_ok(), "{body}");
        }
        // Text with no grammar still refuses NUL: PostgreSQL cannot store it.
        let nul = r#"{"user_id":"u","device_id":"d","app_version":"a\u0000"}"#;
        assert_eq!(parse(nul), Err(RecordError::ContainsNul(Field::AppVersion)));
        let err = RecordError::TooLong { field: Field::Locale, chars: 3, max: 2 };
        assert_eq!(err.to_string(), "`locale` has 3 characters; at most 2 are allowed");
    }

    #[test]
    fn rejections_name_the_rule() {
        let long = |n: usize| "x".repeat(n);
        let cases: Vec<(String, RecordError)> = vec![
            ("".into(), RecordError::MalformedJson { line: 1, column: 0 }),
            ("not json".into(), RecordError::MalformedJson { line: 1, column: 2 }),
            (r#"{"user_id":"u1""#.into(), RecordError::MalformedJson { line: 1, column: 15 }),
            (r#"{"user_id":"u1"} trailing"#.into(), RecordError::MalformedJson { line: 1, column: 18 }),
            ("[1,2]".into(), RecordError::NotAnObject),
            (r#"["u1"]"#.into(), RecordError::NotAnObject),
            (r#""a string""#.into(), RecordError::NotAnObject),
            ("42".into(), RecordError::NotAnObject),
            ("null".into(), RecordError::NotAnObject),
            (r#"{"user_id":"a","user_id":"b"}"#.into(), RecordError::DuplicateKey),
            ("{}".into(), RecordError::Missing(Field::UserId)),
            (r#"{"user_id":null}"#.into(), RecordError::Missing(Field::UserId)),
            (r#"{"user_id":""}"#.into(), RecordError::Empty(Field::UserId)),
            (r#"{"user_id":"   "}"#.into(), RecordError::Empty(Field::UserId)),
            (r#"{"user_id":42}"#.into(), RecordError::NotAString(Field::UserId)),
            (
                format!(r#"{{"user_id":"{}"}}"#, long(129)),
                RecordError::TooLong { field: Field::UserId, chars: 129, max: 128 },
            ),
            (r#"{"user_id":"a\u0000b"}"#.into(), RecordError::ContainsNul(Field::UserId)),
            (r#"{"user_id":"u","device_type":true}"#.into(), RecordError::NotAString(Field::DeviceType)),
            (
                format!(r#"{{"user_id":"u","device_type":"{}"}}"#, long(33)),
                RecordError::TooLong { field: Field::DeviceType, chars: 33, max: 32 },
            ),
            (
                format!(r#"{{"user_id":"u","locale":"{}"}}"#, long(40)),
                RecordError::TooLong { field: Field::Locale, chars: 40, max: 32 },
            ),
            (r#"{"user_id":"u","locale":["RU"]}"#.into(), RecordError::NotAString(Field::Locale)),
            (r#"{"user_id":"u","app_version":230}"#.into(), RecordError::NotAString(Field::AppVersion)),
            (r#"{"user_id":"u","app_version":"two"}"#.into(), RecordError::InvalidAppVersion),
            (r#"{"user_id":"u","app_version":"2..3"}"#.into(), RecordError::InvalidAppVersion),
            (r#"{"user_id":"u","app_version":"2.3-"}"#.into(), RecordError::InvalidAppVersion),
            (r#"{"user_id":"u","app_version":""}"#.into(), RecordError::InvalidAppVersion),
            (r#"{"user_id":"u","ip":"999.1.1.1"}"#.into(), RecordError::InvalidIp),
            (r#"{"user_id":"u","ip":"1.2.3"}"#.into(), RecordError::InvalidIp),
            (r#"{"user_id":"u","ip":" 1.2.3.4"}"#.into(), RecordError::InvalidIp),
            (r#"{"user_id":"u","ip":"01.2.3.4"}"#.into(), RecordError::InvalidIp),
            (r#"{"user_id":"u","ip":"fe80::1%eth0"}"#.into(), RecordError::InvalidIp),
            (r#"{"user_id":"u","ip":""}"#.into(), RecordError::InvalidIp),
            (r#"{"user_id":"u","ip":3232235777}"#.into(), RecordError::NotAString(Field::IP)),
            (
                format!(r#"{{"user_id":"u","ip":"{}"}}"#, long(65)),
                RecordError::TooLong { field: Field::IP, chars: 65, max: 64 },
            ),
            (r#"{"user_id":"u","device_id":""}"#.into(), RecordError::Empty(Field::DEVICE_ID)),
            (r#"{"user_id":"u","device_id":5928}"#.into(), RecordError::NotAString(Field::DEVICE_ID)),
            (
                format!(r#"{{"user_id":"u","device_id":"{}"}}"#, long(257)),
                RecordError::TooLong { field: Field::DEVICE_ID, chars: 257, max: 256 },
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(LoginRecord::parse(&body), Err(expected), "body: {body}");
        }
    }

    #[test]
    fn limits_count_characters_not_bytes() {
        // 128 Cyrillic characters are 256 bytes and still fit `varchar(128)`.
        let user_id = "ж".repeat(128);
        let record = LoginRecord::parse(&format!(r#"{{"user_id":"{user_id}"}}"#)).expect("valid");
        assert_eq!(record.kept.user_id.chars().count(), 128);
        let too_long = "ж".repeat(129);
        assert_eq!(
            LoginRecord::parse(&format!(r#"{{"user_id":"{too_long}"}}"#)),
            Err(RecordError::TooLong { field: Field::UserId, chars: 129, max: 128 })
        );
    }

    #[test]
    fn ip_is_canonicalised() {
        let cases = [
            ("::ffff:199.172.111.135", "199.172.111.135"),
            ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
            ("2001:db8::0:1", "2001:db8::1"),
            ("::1", "::1"),
        ];
        for (given, canonical) in cases {
            let record = LoginRecord::parse(&format!(r#"{{"user_id":"u","ip":"{given}"}}"#)).expect("valid");
            assert_eq!(record.ip.map(|ip| ip.to_string()).as_deref(), Some(canonical), "{given}");
        }
    }

    #[test]
    fn versions() {
        for good in ["2.3.0", "0.96", "7", "10.0.1.2", "2.3.0-beta.1", "2.3.0+42", "1.0.0-rc.1+build.5"] {
            assert!(is_version(good), "{good}");
        }
        for bad in ["", ".", "2.", ".2", "v2.3", "2.3.0-", "2,3", "2.3 ", "١.٢"] {
            assert!(!is_version(bad), "{bad}");
        }
    }

    #[test]
    fn injection_looking_strings_are_data() {
        let record =
            LoginRecord::parse(r#"{"user_id":"x'); DROP TABLE user_logins; --","locale":"<script>"}"#).expect("valid");
        assert_eq!(record.kept.user_id, "x'); DROP TABLE user_logins; --");
        assert_eq!(record.kept.locale.as_deref(), Some("<script>"));
    }

    #[test]
    fn errors_never_quote_the_body() {
        let secret = "199.172.111.135-SECRET";
        let bodies = [
            format!(r#"{{"user_id":"u","ip":"{secret}"}}"#),
            format!(r#"["{secret}"]"#),
            format!(r#""{secret}""#),
            format!(r#"{{"user_id":"u","ip":"{secret}""#),
            format!(r#"{{"user_id":{{"{secret}":1}}}}"#),
        ];
        for body in bodies {
            let err = LoginRecord::parse(&body).expect_err("invalid");
            assert!(!err.to_string().contains("SECRET"), "{err}");
            assert!(!format!("{err:?}").contains("SECRET"), "{err:?}");
            assert!(!err.code().contains("SECRET"));
        }
    }

    #[test]
    fn codes_are_stable() {
        assert_eq!(RecordError::Missing(Field::UserId).code(), "missing_user_id");
        assert_eq!(RecordError::InvalidIp.code(), "invalid_ip");
        assert_eq!(RecordError::TooLong { field: Field::Locale, chars: 40, max: 32 }.code(), "too_long_locale");
        assert_eq!(RecordError::NotAString(Field::DEVICE_ID).code(), "not_a_string_device_id");
        assert_eq!(RecordError::MalformedJson { line: 1, column: 1 }.code(), "malformed_json");
    }

    proptest::proptest! {
        /// Any string at all yields a record or a reason, never a panic.
        #[test]
        fn never_panics(body in ".*") {
            let _ = LoginRecord::parse(&body);
        }

        /// Valid records survive a round trip through JSON with any string values in bounds.
        #[test]
        fn accepts_any_in_bound_user_id(user_id in "[^\u{0}]{1,128}") {
            proptest::prop_assume!(!user_id.trim().is_empty());
            let body = serde_json::json!({ "user_id": user_id, "locale": null }).to_string();
            let record = LoginRecord::parse(&body).expect("valid");
            proptest::prop_assert_eq!(record.kept.user_id, user_id);
        }
    }
}
