//! Realistic login messages, and realistically broken ones, for demos, tests and benchmarks.
//! Deterministic for a given seed, so a run can be repeated exactly.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

/// The ways real queues carry bad bodies; each is rejected by validation with its own code.
const BROKEN: &[(&str, &str)] = &[
    ("not_json", "malformed_json"),
    ("not_an_object", "not_an_object"),
    ("missing_user_id", "missing_user_id"),
    ("null_user_id", "missing_user_id"),
    ("numeric_user_id", "not_a_string_user_id"),
    ("oversize_device_type", "too_long_device_type"),
    ("bad_ip", "invalid_ip"),
    ("numeric_app_version", "not_a_string_app_version"),
];

/// One generated body and what validation is expected to say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleMessage {
    pub body: String,
    /// `None` for a valid message, else the failure code validation must report.
    pub expected_failure: Option<&'static str>,
    /// The body also carries keys the function does not know ([`with_unknown_keys`]).
    pub unknown_keys: bool,
}

/// The keys a producer one version ahead of the schema adds: what `send
/// --unknown-key-ratio` puts in a share of the valid messages, and `make demo` shows counted.
pub const DRIFT_KEYS: [&str; 2] = ["os_version", "schema_version"];

/// Gives about `ratio` (0.0–1.0) of the valid `messages` the [`DRIFT_KEYS`] too, reproducibly
/// per seed (a stream of its own, so `sample_messages` gives the same bodies with or without).
/// Such a message is still valid: the function loads it and counts it as drift.
pub fn with_unknown_keys(mut messages: Vec<SampleMessage>, ratio: f64, seed: u64) -> Vec<SampleMessage> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x005c_4e3a_d21f);
    let ratio = ratio.clamp(0.0, 1.0);
    for message in messages.iter_mut().filter(|m| m.expected_failure.is_none()) {
        if !rng.random_bool(ratio) {
            continue;
        }
        if let Ok(serde_json::Value::Object(mut login)) = serde_json::from_str(&message.body) {
            login.insert(
                DRIFT_KEYS[0].into(),
                json!(format!("{}.{}", rng.random_range(12..18), rng.random_range(0..6))),
            );
            login.insert(DRIFT_KEYS[1].into(), json!(2));
            message.body = serde_json::Value::Object(login).to_string();
            message.unknown_keys = true;
        }
    }
    messages
}

/// `count` messages of which about `bad_ratio` (0.0–1.0) are broken in one of the ways above.
pub fn sample_messages(count: usize, bad_ratio: f64, seed: u64) -> Vec<SampleMessage> {
    let mut rng = StdRng::seed_from_u64(seed);
    let bad_ratio = bad_ratio.clamp(0.0, 1.0);
    (0..count)
        .map(|_| {
            if rng.random_bool(bad_ratio) {
                let (shape, code) = BROKEN[rng.random_range(0..BROKEN.len())];
                SampleMessage { body: broken_body(&mut rng, shape), expected_failure: Some(code), unknown_keys: false }
            } else {
                SampleMessage { body: good_login(&mut rng).to_string(), expected_failure: None, unknown_keys: false }
            }
        })
        .collect()
}

fn good_login(rng: &mut StdRng) -> serde_json::Value {
    const VERSIONS: &[&str] = &["2.3.0", "0.96", "2.2.1", "0.48", "3.7", "5.4.1", "2.0.0", "0.61"];
    const LOCALES: &[&str] = &["RU", "PH", "US", "ID", "BR", "DE", "NG", "IN", "MX", "FR"];
    let ip = if rng.random_bool(0.1) {
        format!("2001:db8:{:x}::{:x}", rng.random::<u16>(), rng.random::<u16>())
    } else {
        format!(
            "{}.{}.{}.{}",
            rng.random_range(1..=223),
            rng.random::<u8>(),
            rng.random::<u8>(),
            rng.random_range(1..=254)
        )
    };
    // About a third of real messages carry a null locale.
    let locale = if rng.random_bool(1.0 / 3.0) { None } else { Some(LOCALES[rng.random_range(0..LOCALES.len())]) };
    json!({
        "user_id": uuid_like(rng),
        "app_version": VERSIONS[rng.random_range(0..VERSIONS.len())],
        "device_type": if rng.random_bool(0.6) { "android" } else { "ios" },
        "ip": ip,
        "locale": locale,
        "device_id": format!("{:03}-{:02}-{:04}", rng.random_range(100..1000), rng.random_range(10..100), rng.random_range(0..10_000)),
    })
}

fn broken_body(rng: &mut StdRng, shape: &str) -> String {
    let mut login = good_login(rng);
    match shape {
        "not_json" => return format!("{{\"user_id\": \"{}\", ", uuid_like(rng)),
        "not_an_object" => return json!([uuid_like(rng), "android"]).to_string(),
        "missing_user_id" => {
            login.as_object_mut().map(|o| o.remove("user_id"));
        }
        "null_user_id" => login["user_id"] = serde_json::Value::Null,
        "numeric_user_id" => login["user_id"] = json!(rng.random_range(1..1_000_000)),
        "oversize_device_type" => login["device_type"] = json!("android-".repeat(8)),
        "bad_ip" => login["ip"] = json!(format!("{}.{}.{}.{}", rng.random_range(256..999), 1, 2, 3)),
        "numeric_app_version" => login["app_version"] = json!(230),
        _ => {}
    }
    login.to_string()
}

fn uuid_like(rng: &mut StdRng) -> String {
    let n: u128 = rng.random();
    let hex = format!("{n:032x}");
    format!("{}-{}-4{}-a{}-{}", &hex[0..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32])
}

/// A deployment's field policy that tightens the built-in fields, as a team would write its
/// `FIELD_POLICY_FILE`: the published schema with `locale` at most `locale_max_length`
/// characters, `device_id` required, `device_type` not blank, and `app_version` plain text
/// (no version grammar). The function reads it without a rebuild; its tests and the
/// schema-agreement corpus judge by it.
pub fn tightened_policy(locale_max_length: u32) -> serde_json::Value {
    let mut schema: serde_json::Value =
        serde_json::from_str(crate::schema::SCHEMA_JSON).expect("the published schema is JSON");
    let properties = &mut schema["properties"];
    properties["locale"]["maxLength"] = locale_max_length.into();
    properties["device_id"]["type"] = "string".into();
    properties["device_type"]["allOf"] = json!([{ "$ref": "#/$defs/noNul" }, { "$ref": "#/$defs/notBlank" }]);
    if let Some(version) = properties["app_version"].as_object_mut() {
        version.remove("x-format");
        version.remove("pattern");
        version.insert("$ref".into(), "#/$defs/noNul".into());
    }
    schema["required"] = json!(["user_id", "device_id"]);
    schema
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::LoginRecord;

    #[test]
    fn the_same_seed_gives_the_same_messages() {
        assert_eq!(sample_messages(50, 0.3, 7), sample_messages(50, 0.3, 7));
        assert_ne!(sample_messages(50, 0.3, 7), sample_messages(50, 0.3, 8));
    }

    #[test]
    fn validation_agrees_with_every_expectation() {
        let messages = sample_messages(2_000, 0.25, 42);
        let bad = messages.iter().filter(|m| m.expected_failure.is_some()).count();
        assert!((400..600).contains(&bad), "{bad} bad of 2000");
        for message in messages {
            let verdict = LoginRecord::parse(&message.body).err().map(|err| err.code());
            assert_eq!(verdict.as_deref(), message.expected_failure, "{}", message.body);
        }
    }

    #[test]
    fn drifted_messages_stay_valid_and_carry_the_drift_keys() {
        let plain = sample_messages(1_000, 0.1, 3);
        let drifted = with_unknown_keys(plain.clone(), 0.1, 3);
        let with_keys: Vec<_> = drifted.iter().filter(|m| m.unknown_keys).collect();
        assert!((50..150).contains(&with_keys.len()), "{}", with_keys.len());
        for message in &with_keys {
            let record = LoginRecord::parse(&message.body).expect("still valid");
            assert_eq!(record.unknown_keys.names(), DRIFT_KEYS);
        }
        // Only bodies given the keys changed.
        for (before, after) in plain.iter().zip(&drifted) {
            assert_eq!(before.body == after.body, !after.unknown_keys);
        }
    }

    #[test]
    fn good_messages_look_like_the_real_queue() {
        let messages = sample_messages(3_000, 0.0, 1);
        let null_locales = messages.iter().filter(|m| m.body.contains("\"locale\":null")).count();
        assert!((800..1200).contains(&null_locales), "{null_locales}");
    }
}
