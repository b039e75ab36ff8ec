//! The keys of a body that the function does not know: counted, and named only as far as a
//! name is safe to log, because a key in the wrong place may be a value (personal data).

/// The most unknown key names one record (and one batch's log line) keeps.
pub const MAX_UNKNOWN_KEY_NAMES: usize = 10;
/// The longest unknown key name kept, in characters; a longer one is cut and ends in `…`.
pub const MAX_UNKNOWN_KEY_CHARS: usize = 64;
/// What an unknown key that is not shaped like a field name is logged as: such a key may be a
/// value in the wrong place (an address, an e-mail), and values are never logged.
pub const UNNAMED_KEY: &str = "(not a field name)";

/// The keys of one body that the function does not know: schema drift, made visible.
///
/// Only names are kept, and only loggable ones: a name made of ASCII letters, digits, `_`, `.`
/// and `-` that starts with a letter or `_` is kept (cut to [`MAX_UNKNOWN_KEY_CHARS`]), any
/// other key is kept as [`UNNAMED_KEY`]. At most [`MAX_UNKNOWN_KEY_NAMES`] distinct names are
/// kept; [`UnknownKeys::count`] counts every unknown key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnknownKeys {
    names: Vec<String>,
    count: usize,
    /// A distinct name did not fit in `names`.
    names_dropped: bool,
}

impl UnknownKeys {
    /// Whether the body had no unknown key.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// How many unknown keys the body had, repeats included.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The loggable names, distinct, in the order they first appeared.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether more distinct names were seen than [`UnknownKeys::names`] keeps.
    pub fn names_dropped(&self) -> bool {
        self.names_dropped
    }

    pub(super) fn add(&mut self, key: &str) {
        self.count += 1;
        self.add_name(loggable_key_name(key));
    }

    /// Keeps `name` (already loggable) unless it is known or there is no room left.
    fn add_name(&mut self, name: String) {
        if self.names.contains(&name) {
            return;
        }
        if self.names.len() < MAX_UNKNOWN_KEY_NAMES {
            self.names.push(name);
        } else {
            self.names_dropped = true;
        }
    }

    /// Adds `other`'s names to these (a batch's tally of its records'), within the same bound.
    pub fn merge(&mut self, other: &UnknownKeys) {
        self.count += other.count;
        self.names_dropped |= other.names_dropped;
        for name in &other.names {
            self.add_name(name.clone());
        }
    }
}

/// `key` as it may appear in a log line: see [`UnknownKeys`].
pub fn loggable_key_name(key: &str) -> String {
    let shaped = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !shaped {
        return UNNAMED_KEY.to_owned();
    }
    if key.len() <= MAX_UNKNOWN_KEY_CHARS {
        return key.to_owned();
    }
    // ASCII only, so bytes are characters.
    format!("{}…", &key[..MAX_UNKNOWN_KEY_CHARS - 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::LoginRecord;
    use serde_json::Value;

    #[test]
    fn unknown_key_names_are_kept_only_when_they_look_like_names() {
        assert_eq!(loggable_key_name("os_version"), "os_version");
        assert_eq!(loggable_key_name("_meta.v-2"), "_meta.v-2");
        // What may be a value in the wrong place is never kept.
        for key in ["199.172.111.135", "2001:db8::1", "a@b.example", "593-47-5928", "", "ключ", "a b", "x\ny"] {
            assert_eq!(loggable_key_name(key), UNNAMED_KEY, "{key:?}");
        }
        let long = loggable_key_name(&"k".repeat(100));
        assert_eq!(long.chars().count(), MAX_UNKNOWN_KEY_CHARS);
        assert!(long.ends_with('…'));
        assert_eq!(loggable_key_name(&"k".repeat(64)), "k".repeat(64));
    }

    #[test]
    fn unknown_keys_are_bounded_and_counted() {
        let mut body = serde_json::Map::new();
        body.insert("user_id".into(), "u".into());
        for i in 0..15 {
            body.insert(format!("extra_{i:02}"), i.into());
        }
        body.insert("10.0.0.1".into(), 1.into());
        let record = LoginRecord::parse(&Value::Object(body).to_string()).expect("valid");
        assert_eq!(record.unknown_keys.count(), 16);
        assert_eq!(record.unknown_keys.names().len(), MAX_UNKNOWN_KEY_NAMES);
        assert!(record.unknown_keys.names_dropped());
        let mut tally = UnknownKeys::default();
        tally.merge(&record.unknown_keys);
        tally.merge(&LoginRecord::parse(r#"{"user_id":"u","extra_00":1}"#).expect("valid").unknown_keys);
        assert_eq!((tally.count(), tally.names().len(), tally.names_dropped()), (17, MAX_UNKNOWN_KEY_NAMES, true));
        // A repeated unknown key is not read, so it is not refused (a known one is).
        let record = LoginRecord::parse(r#"{"user_id":"u","x":1,"x":2}"#).expect("valid");
        assert_eq!((record.unknown_keys.names(), record.unknown_keys.count()), (&["x".to_string()][..], 2));
    }
}
