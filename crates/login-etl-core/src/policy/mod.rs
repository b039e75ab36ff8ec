//! The field policy: for every field of the body, whether it is required, its type and limits,
//! what is stored of it (kept, masked, truncated, dropped) and where it lands (a column of its
//! own, or the JSONB `extras` column), read from one declarative source: the published JSON
//! Schema's annotations (`x-treatment`, `x-landing`, `x-format` per property, `x-unknown-keys`
//! at the root).
//!
//! Two kinds of field:
//! - **The built-in six** (`user_id`, `device_type`, `locale`, `app_version`, `ip`,
//!   `device_id`) have columns of their own. Their rules are read from the policy into
//!   [`BuiltInRules`], a fixed table of plain values built once at start-up that the parser
//!   ([`crate::message`]) obeys: `required`, `maxLength`, not blank (`"$ref":
//!   "#/$defs/notBlank"`) and `x-format` (`version`: the version grammar; `ip-address`: parsed
//!   and canonicalised). What stays fixed is what their typed columns and the record's shape
//!   need: each is a string, within the release's limit ([`Field::max_chars`], the column's
//!   length), `user_id` is required, `ip` is an address, and kept vs masked and the column
//!   follow the column; a policy that says otherwise is refused when it is loaded, naming the
//!   field, rather than silently ignored.
//! - **Declared extras**: any other property. Its type (`string`, `number`, `integer`,
//!   `boolean`, each optionally with `null`), `maxLength` and `required` are the schema's own
//!   keywords; `x-treatment` is `kept`, `masked-hmac` (strings: keyed HMAC, as `device_id`) or
//!   `dropped` (validated, not stored); `x-landing` is `extras` (a key of the JSONB `extras`
//!   column), `{"column": "<name>"}` (a column of its own, which the deployment's migration adds;
//!   `insert_login_batch`, migrations/0009, writes it) or `none` (dropped). Adding such a field
//!   to the schema is one property (plus that migration for a column): no code, no rebuild
//!   (`FIELD_POLICY_FILE` points the function at the edited file).
//!
//! Keys the policy does not declare follow `x-unknown-keys`, which is `drop-and-count`: the
//! value is not stored, the name is counted and logged (`UnknownFieldRecords`).
//!
//! - this file: the policy itself, as the parser and the masker read it ([`FieldPolicy`]:
//!   [`BuiltInRules`], [`ExtraFields`]), and the published one;
//! - `from_schema`: a JSON Schema's properties and annotations read into a policy, or the
//!   [`PolicyError`] that names what this release cannot honour.

mod from_schema;

use std::sync::LazyLock;

use serde_json::Value;

use crate::message::{Field, KNOWN_KEYS};

pub use from_schema::PolicyError;

/// What is stored of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// Stored as sent.
    Kept,
    /// Stored as `hex(HMAC-SHA256(key, name || 0x00 || value))`.
    MaskedHmac,
    /// Stored truncated (`ip`: its network, with `MASKING_IP`).
    Truncated,
    /// Validated, never stored.
    Dropped,
}

/// Where a declared extra lands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landing {
    /// A key of the row's JSONB `extras` column (`"x-landing": "extras"`).
    Extras,
    /// A column of its own (`"x-landing": {"column": "os_version"}`), which the deployment's
    /// own migration adds; `insert_login_batch` (migrations/0009) writes it.
    Column(String),
    /// Not stored (`"x-landing": "none"`, with `x-treatment: dropped`).
    Nowhere,
}

/// The columns the function fills itself, which a policy may not name as a field's column
/// (migrations/0009 refuses them as well).
pub const OWN_COLUMNS: [&str; 15] = [
    "id",
    "message_id",
    "user_id",
    "device_type",
    "masked_ip",
    "masked_device_id",
    "locale",
    "app_version",
    "sent_at",
    "create_date",
    "masking_scheme",
    "masking_key_id",
    "ip_prefix",
    "extras",
    "loaded_at",
];

/// How a built-in field's text is read beyond its length and blankness: the property's
/// `x-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Any text (no `x-format`).
    Text,
    /// `"x-format": "version"`: dot-separated decimal numbers with an optional SemVer-style
    /// suffix (`2.3.0`, `2.3.0-beta.1`), the schema's `pattern` [`VERSION_PATTERN`].
    Version,
    /// `"x-format": "ip-address"`: an IPv4 or IPv6 address, parsed and canonicalised.
    IpAddress,
}

/// The `pattern` a property with `"x-format": "version"` carries, so that a JSON Schema
/// validator and the function judge alike.
pub const VERSION_PATTERN: &str = "^[0-9]+(\\.[0-9]+)*([-+][0-9A-Za-z.+-]+)?$";

/// One built-in field's rules, as plain values: the parser reads them per record without any
/// lookup by name, hashing or allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldRule {
    /// `maxLength`, in characters (as PostgreSQL's `varchar(n)` counts them).
    pub max_chars: u32,
    /// Listed in the schema's `required`: missing or `null` is refused.
    pub required: bool,
    /// `"$ref": "#/$defs/notBlank"`: some character that is not Unicode White_Space.
    pub not_blank: bool,
    pub format: Format,
}

/// The built-in six's rules, by their index in [`KNOWN_KEYS`], read from the policy once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltInRules {
    rules: [FieldRule; KNOWN_KEYS.len()],
}

impl BuiltInRules {
    /// `field`'s rules.
    #[inline]
    pub fn get(&self, field: Field) -> FieldRule {
        self.rules[field.index()]
    }
}

/// A JSON type an extra field may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonType {
    String,
    Number,
    Integer,
    Boolean,
    Null,
}

/// One declared extra field: its rules and what is stored of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraField {
    name: String,
    types: Vec<JsonType>,
    max_chars: Option<usize>,
    required: bool,
    treatment: Treatment,
    landing: Landing,
    /// `invalid_<name>`, made once: the reason code of every rule the field breaks.
    code: String,
}

impl ExtraField {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn treatment(&self) -> Treatment {
        self.treatment
    }

    pub fn landing(&self) -> &Landing {
        &self.landing
    }

    /// Whether `value` (`None`: missing) meets the field's rules.
    pub fn accepts(&self, value: Option<&Value>) -> bool {
        let Some(value) = value else { return !self.required };
        match value {
            Value::Null => self.types.contains(&JsonType::Null) && !self.required,
            Value::Bool(_) => self.types.contains(&JsonType::Boolean),
            Value::Number(n) => {
                self.types.contains(&JsonType::Number) || (self.types.contains(&JsonType::Integer) && n.is_i64())
            }
            Value::String(text) => {
                self.types.contains(&JsonType::String)
                    && !text.contains('\0')
                    && self.max_chars.is_none_or(|max| text.len() <= max || text.chars().count() <= max)
            }
            Value::Array(_) | Value::Object(_) => false,
        }
    }

    /// The reason code when a value breaks a rule: `invalid_<name>` (a name from the policy,
    /// never from a body).
    pub fn code(&self) -> &str {
        &self.code
    }
}

/// The extras a policy declares, in the order of its properties. Empty for the published
/// schema of this release, whose properties are the built-in six.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtraFields {
    fields: Vec<ExtraField>,
}

impl ExtraFields {
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The declared field named `key`, by its index.
    pub fn position(&self, key: &str) -> Option<usize> {
        self.fields.iter().position(|field| field.name == key)
    }

    pub fn get(&self, index: usize) -> Option<&ExtraField> {
        self.fields.get(index)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ExtraField> {
        self.fields.iter()
    }
}

/// The policy of one deployment: the built-in fields' rules, the extras.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPolicy {
    pub built_in: BuiltInRules,
    pub extras: ExtraFields,
}

impl FieldPolicy {
    /// The policy of the schema this release publishes (`schema/login-event.schema.json`).
    pub fn published() -> FieldPolicy {
        PUBLISHED.clone()
    }

    /// [`FieldPolicy::published`], read once per process and shared.
    pub fn published_ref() -> &'static FieldPolicy {
        &PUBLISHED
    }
}

/// The published policy, read from the embedded schema on first use. The published schema is
/// tested to load (below), so this cannot fail in a release.
static PUBLISHED: LazyLock<FieldPolicy> = LazyLock::new(|| {
    FieldPolicy::from_schema(crate::schema::SCHEMA_JSON).expect("the published schema is a valid field policy")
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_schema_is_a_policy_of_the_built_in_fields_only() {
        let policy = FieldPolicy::from_schema(crate::schema::SCHEMA_JSON).expect("the published policy loads");
        assert!(policy.extras.is_empty());
        assert_eq!(FieldPolicy::published(), policy);
        assert_eq!(FieldPolicy::published_ref(), &policy);
    }
}
