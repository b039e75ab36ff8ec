//! The body as it arrives, read in one streaming serde pass: the built-in keys and the
//! policy's declared extras by index, a repeated known key noted, unknown keys counted and
//! their values checked as JSON but not kept. Validation of the values is the record's.

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::unknown_keys::UnknownKeys;
use super::{KNOWN_KEYS, RecordError};
use crate::policy::ExtraFields;

/// The body as it arrives. Every field is a raw JSON value so that a wrong type is reported by
/// field name rather than through serde's message, which would quote the offending value.
/// Missing and `null` both become `None`. Deserialized by hand ([`WireVisitor`]) to note a
/// repeated known key and the names of unknown keys in the same single pass.
#[derive(Default)]
pub(super) struct WireLogin {
    /// The value of each of [`KNOWN_KEYS`], in its order.
    pub(super) values: [Option<Value>; KNOWN_KEYS.len()],
    /// A known key appeared twice (`{"locale":null,"locale":"RU"}` too).
    repeated_key: bool,
    pub(super) unknown_keys: UnknownKeys,
    /// The declared extras present, by index (a repeat is a repeated known key).
    pub(super) extras: Vec<(usize, Option<Value>)>,
}

impl<'de> serde::de::DeserializeSeed<'de> for WireVisitor<'_> {
    type Value = WireLogin;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<WireLogin, D::Error> {
        deserializer.deserialize_map(self)
    }
}

/// A key of the body: one of [`KNOWN_KEYS`] by its index, or another.
enum WireKey {
    Known(usize),
    Unknown(String),
}

impl<'de> Deserialize<'de> for WireKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = WireKey;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<WireKey, E> {
                Ok(match KNOWN_KEYS.iter().position(|known| *known == key) {
                    Some(index) => WireKey::Known(index),
                    None => WireKey::Unknown(key.to_owned()),
                })
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Reads the body's keys: the built-in six by index, the policy's declared `extras` by theirs,
/// and counts the others.
struct WireVisitor<'p> {
    extras: &'p ExtraFields,
}

impl<'de> Visitor<'de> for WireVisitor<'_> {
    type Value = WireLogin;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WireLogin, A::Error> {
        let mut wire = WireLogin::default();
        let mut seen = [false; KNOWN_KEYS.len()];
        while let Some(key) = map.next_key::<WireKey>()? {
            match key {
                WireKey::Known(index) => {
                    // A repeat is noted, not returned at once: the rest must still be JSON,
                    // and a body that is not JSON is `malformed_json` whatever else it does.
                    wire.repeated_key |= std::mem::replace(&mut seen[index], true);
                    wire.values[index] = map.next_value::<Option<Value>>()?;
                }
                WireKey::Unknown(name) => match self.extras.position(&name) {
                    Some(index) => {
                        wire.repeated_key |= wire.extras.iter().any(|(seen, _)| *seen == index);
                        wire.extras.push((index, map.next_value::<Option<Value>>()?));
                    }
                    None => {
                        wire.unknown_keys.add(&name);
                        map.next_value::<JsonValueChecked>()?;
                    }
                },
            }
        }
        Ok(wire)
    }
}

/// An unknown key's value, read without keeping it but checked as a known key's value is: its
/// numbers must fit an `f64` and its strings hold no lone surrogate (what `serde_json::Value`,
/// and so every known field, refuses). serde's `IgnoredAny` would skip such a value unread, so
/// `1e400` would be `malformed_json` under `locale` and accepted under an unknown key.
struct JsonValueChecked;

impl<'de> Deserialize<'de> for JsonValueChecked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonValueChecked)
    }
}

impl<'de> Visitor<'de> for JsonValueChecked {
    type Value = JsonValueChecked;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<JsonValueChecked>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        while map.next_entry::<JsonValueChecked, JsonValueChecked>()?.is_some() {}
        Ok(self)
    }
}
/// Deserializes the body into [`WireLogin`], insisting on a JSON object.
///
/// serde would also accept a JSON array positionally for a struct, so the first token is
/// checked before parsing. Error texts from serde are never kept: they can quote the input.
pub(super) fn parse_object(body: &str, extras: &ExtraFields) -> Result<WireLogin, RecordError> {
    let starts_with_brace = body.trim_start().starts_with('{');
    if !starts_with_brace {
        return match serde_json::from_str::<JsonValueChecked>(body) {
            Ok(_) => Err(RecordError::NotAnObject),
            Err(err) => Err(malformed(&err)),
        };
    }
    let mut deserializer = serde_json::Deserializer::from_str(body);
    let wire = serde::de::DeserializeSeed::deserialize(WireVisitor { extras }, &mut deserializer)
        .and_then(|wire| deserializer.end().map(|()| wire))
        .map_err(|err| malformed(&err))?;
    if wire.repeated_key {
        return Err(RecordError::DuplicateKey);
    }
    Ok(wire)
}

fn malformed(err: &serde_json::Error) -> RecordError {
    RecordError::MalformedJson { line: err.line(), column: err.column() }
}

#[cfg(test)]
mod tests {
    use crate::message::{LoginRecord, RecordError};

    #[test]
    fn a_known_key_repeated_is_refused_even_when_null() {
        for body in [r#"{"user_id":"u","locale":null,"locale":"RU"}"#, r#"{"user_id":"u","ip":"1.2.3.4","ip":null}"#] {
            assert_eq!(LoginRecord::parse(body), Err(RecordError::DuplicateKey), "{body}");
        }
        // Not JSON wins over a repeat: the body is malformed whatever else it does.
        assert!(matches!(
            LoginRecord::parse(r#"{"user_id":"a","user_id":"b""#),
            Err(RecordError::MalformedJson { .. })
        ));
    }

    #[test]
    fn unknown_values_must_be_json_as_known_ones_must() {
        for value in ["1e400", "-1e400", r#""\ud800""#, r#"[1,{"a":1e999}]"#] {
            for key in ["locale", "extra"] {
                let body = format!(r#"{{"user_id":"u","{key}":{value}}}"#);
                assert!(matches!(LoginRecord::parse(&body), Err(RecordError::MalformedJson { .. })), "{body}");
            }
            assert!(matches!(LoginRecord::parse(&format!("[{value}]")), Err(RecordError::MalformedJson { .. })));
        }
    }
}
