//! The field policy: for every field of the body, whether it is required, its type and limits,
//! what is stored of it (kept, masked, truncated, dropped) and where it lands (a column of its
//! own, or the JSONB `extras` column), read from one declarative source: the published JSON
//! Schema's annotations (`x-treatment`, `x-landing` per property, `x-unknown-keys` at the root).
//!
//! Two kinds of field:
//! - **The built-in six** (`user_id`, `device_type`, `locale`, `app_version`, `ip`,
//!   `device_id`) have columns of their own and rules JSON Schema cannot say whole (an `ip` is
//!   parsed and canonicalised, a version has a grammar), so their rules are [`crate::message`]'s
//!   code. The policy must declare them as this release implements them; a policy that says
//!   otherwise is refused when it is loaded, naming the field, rather than silently ignored.
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

use std::collections::BTreeMap;

use serde_json::Value;

use crate::message::KNOWN_KEYS;

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

impl Treatment {
    fn parse(text: &str) -> Option<Treatment> {
        match text {
            "kept" => Some(Treatment::Kept),
            "masked-hmac" => Some(Treatment::MaskedHmac),
            "truncated" => Some(Treatment::Truncated),
            "dropped" => Some(Treatment::Dropped),
            _ => None,
        }
    }
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
    /// No extras: the published policy of this release.
    pub const NONE: ExtraFields = ExtraFields { fields: Vec::new() };

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

/// The policy of one deployment: the built-in fields checked against the code, the extras.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldPolicy {
    pub extras: ExtraFields,
}

/// Why a policy was refused. Names the property and the annotation, never a body's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the policy is not a JSON object with `properties`")]
    NotASchema,
    #[error("`x-unknown-keys` must be `drop-and-count` (the only default this release implements)")]
    UnknownKeysDefault,
    #[error("`{field}`: {problem}")]
    Field { field: String, problem: String },
}

/// What this release implements for the built-in six: (name, treatment, landing).
const BUILT_IN: [(&str, &str, &str); 6] = [
    ("user_id", "kept", "column"),
    ("device_type", "kept", "column"),
    ("locale", "kept", "column"),
    ("app_version", "kept", "column"),
    ("ip", "masked-hmac", "column"),
    ("device_id", "masked-hmac", "column"),
];

impl FieldPolicy {
    /// The policy a JSON Schema with login-etl's annotations declares.
    pub fn from_schema(text: &str) -> Result<FieldPolicy, PolicyError> {
        let schema: Value = serde_json::from_str(text).map_err(|_| PolicyError::NotASchema)?;
        let properties = schema.get("properties").and_then(Value::as_object).ok_or(PolicyError::NotASchema)?;
        match schema.get("x-unknown-keys").and_then(Value::as_str) {
            Some("drop-and-count") => {}
            _ => return Err(PolicyError::UnknownKeysDefault),
        }
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let built_in: BTreeMap<&str, (&str, &str)> =
            BUILT_IN.iter().map(|(name, treatment, landing)| (*name, (*treatment, *landing))).collect();
        debug_assert!(KNOWN_KEYS.iter().all(|key| built_in.contains_key(key)));
        let mut extras = Vec::new();
        for name in built_in.keys() {
            if !properties.contains_key(*name) {
                return Err(field(name, "a built-in field must be declared"));
            }
        }
        for (name, property) in properties {
            let treatment_text = property.get("x-treatment").and_then(Value::as_str).unwrap_or_default();
            let landing = property.get("x-landing").and_then(Value::as_str).unwrap_or_default();
            if let Some((treatment, column)) = built_in.get(name.as_str()) {
                let ip_may_truncate = name == "ip" && treatment_text == "truncated";
                if (treatment_text != *treatment && !ip_may_truncate) || landing != *column {
                    return Err(field(
                        name,
                        &format!(
                            "a built-in field is x-treatment {treatment} (ip: or truncated) and x-landing {column} in \
                             this release; its rules are code (docs/schema.md, \"The field policy\")"
                        ),
                    ));
                }
                continue;
            }
            let treatment = Treatment::parse(treatment_text)
                .ok_or_else(|| field(name, "x-treatment must be kept, masked-hmac or dropped"))?;
            let landing = match (treatment, property.get("x-landing")) {
                (Treatment::Truncated, _) => return Err(field(name, "only ip can be truncated")),
                (Treatment::Dropped, Some(Value::String(none))) if none == "none" => Landing::Nowhere,
                (Treatment::Dropped, _) => return Err(field(name, "a dropped field has x-landing none")),
                (_, Some(Value::String(extras))) if extras == "extras" => Landing::Extras,
                (_, Some(Value::Object(target))) if target.len() == 1 => {
                    let column = target.get("column").and_then(Value::as_str).ok_or_else(|| {
                        field(name, "x-landing must be extras or {\"column\": \"<name>\"} (or none when dropped)")
                    })?;
                    column_name(name, column)?;
                    if extras.iter().any(|other: &ExtraField| other.landing == Landing::Column(column.to_owned())) {
                        return Err(field(name, &format!("column {column} is already another field's")));
                    }
                    Landing::Column(column.to_owned())
                }
                (_, Some(Value::String(column))) if column == "column" => {
                    return Err(field(
                        name,
                        "x-landing column names its column: {\"column\": \"<name>\"}, added by the deployment's \
                         migration (docs/schema.md, \"The field policy\")",
                    ));
                }
                _ => {
                    return Err(field(
                        name,
                        "x-landing must be extras or {\"column\": \"<name>\"} (or none when dropped)",
                    ));
                }
            };
            let types = json_types(property)
                .ok_or_else(|| field(name, "type must be string, number, integer or boolean, optionally with null"))?;
            if types.contains(&JsonType::String) && !refuses_nul(property) {
                return Err(field(
                    name,
                    "a string field must refuse NUL, which PostgreSQL cannot store: add \"$ref\": \"#/$defs/noNul\"",
                ));
            }
            if treatment == Treatment::MaskedHmac
                && types.iter().any(|t| !matches!(t, JsonType::String | JsonType::Null))
            {
                return Err(field(name, "masked-hmac masks strings: type must be string (or string and null)"));
            }
            let max_chars = match property.get("maxLength") {
                None => None,
                Some(max) => Some(
                    max.as_u64()
                        .and_then(|max| usize::try_from(max).ok())
                        .ok_or_else(|| field(name, "maxLength must be a whole number"))?,
                ),
            };
            extras.push(ExtraField {
                code: format!("invalid_{name}"),
                name: name.clone(),
                types,
                max_chars,
                required: required.contains(&name.as_str()),
                treatment,
                landing,
            });
        }
        Ok(FieldPolicy { extras: ExtraFields { fields: extras } })
    }

    /// The policy of the schema this release publishes (`schema/login-event.schema.json`).
    pub fn published() -> FieldPolicy {
        // The published schema is tested to load (below): this cannot fail.
        FieldPolicy::from_schema(crate::schema::SCHEMA_JSON).unwrap_or_default()
    }
}

/// A column a policy may name: a plain lower-case SQL identifier (no quoting needed, at most
/// PostgreSQL's 63 bytes) that is not one of [`OWN_COLUMNS`].
fn column_name(name: &str, column: &str) -> Result<(), PolicyError> {
    let plain = column.len() <= 63
        && column.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && column.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !plain {
        return Err(field(name, "a column name is lower-case letters, digits and _, starting with a letter or _"));
    }
    if OWN_COLUMNS.contains(&column) {
        return Err(field(name, &format!("column {column} is the function's own; name a column of the field's")));
    }
    Ok(())
}

fn field(name: &str, problem: &str) -> PolicyError {
    PolicyError::Field { field: name.to_owned(), problem: problem.to_owned() }
}

/// Whether the property says, as the schema's own `noNul` definition, that a string holds no
/// NUL (what the function refuses in every string it stores): schema and function then agree.
fn refuses_nul(property: &Value) -> bool {
    let no_nul = |node: &Value| node.get("$ref").and_then(Value::as_str) == Some("#/$defs/noNul");
    no_nul(property) || property.get("allOf").and_then(Value::as_array).is_some_and(|all| all.iter().any(no_nul))
}

fn json_types(property: &Value) -> Option<Vec<JsonType>> {
    let one = |name: &str| match name {
        "string" => Some(JsonType::String),
        "number" => Some(JsonType::Number),
        "integer" => Some(JsonType::Integer),
        "boolean" => Some(JsonType::Boolean),
        "null" => Some(JsonType::Null),
        _ => None,
    };
    let types: Vec<JsonType> = match property.get("type")? {
        Value::String(name) => vec![one(name)?],
        Value::Array(names) => names.iter().map(|name| name.as_str().and_then(one)).collect::<Option<_>>()?,
        _ => return None,
    };
    (types.iter().any(|t| *t != JsonType::Null)).then_some(types)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published schema with `extra` added to its properties.
    fn with_property(name: &str, extra: Value) -> String {
        let mut schema: Value = serde_json::from_str(crate::schema::SCHEMA_JSON).expect("schema");
        schema["properties"][name] = extra;
        schema.to_string()
    }

    #[test]
    fn the_published_schema_is_a_policy_of_the_built_in_fields_only() {
        let policy = FieldPolicy::from_schema(crate::schema::SCHEMA_JSON).expect("the published policy loads");
        assert!(policy.extras.is_empty());
        assert_eq!(FieldPolicy::published(), policy);
    }

    #[test]
    fn an_extra_is_one_property() {
        let text = with_property(
            "os_version",
            serde_json::json!({"type": ["string", "null"], "maxLength": 8, "$ref": "#/$defs/noNul", "x-treatment": "kept", "x-landing": "extras"}),
        );
        let policy = FieldPolicy::from_schema(&text).expect("policy");
        let os = policy.extras.get(policy.extras.position("os_version").expect("declared")).expect("field");
        assert_eq!(os.treatment(), Treatment::Kept);
        assert!(os.accepts(None) && os.accepts(Some(&Value::Null)) && os.accepts(Some(&"14.2".into())));
        assert!(!os.accepts(Some(&"123456789".into())), "longer than maxLength");
        assert!(!os.accepts(Some(&14.into())), "not a string");
        assert!(!os.accepts(Some(&"a\0b".into())), "NUL");
        assert_eq!(os.code(), "invalid_os_version");
    }

    #[test]
    fn an_extra_with_a_column_of_its_own_is_one_property() {
        let text = with_property(
            "os_version",
            serde_json::json!({"type": ["string", "null"], "maxLength": 16, "$ref": "#/$defs/noNul",
                               "x-treatment": "kept", "x-landing": {"column": "os_version"}}),
        );
        let policy = FieldPolicy::from_schema(&text).expect("policy");
        let os = policy.extras.get(policy.extras.position("os_version").expect("declared")).expect("field");
        assert_eq!(os.landing(), &Landing::Column("os_version".into()));
        // Two fields cannot share one column.
        let mut schema: Value = serde_json::from_str(&text).expect("schema");
        schema["properties"]["os_build"] = serde_json::json!({"type": "integer", "x-treatment": "kept",
                                                              "x-landing": {"column": "os_version"}});
        let err = FieldPolicy::from_schema(&schema.to_string()).expect_err("refused");
        assert!(
            matches!(&err, PolicyError::Field { field, .. } if field == "os_version" || field == "os_build"),
            "{err}"
        );
    }

    #[test]
    fn policies_that_the_release_cannot_honour_are_refused_by_name() {
        let refused = [
            ("ip", serde_json::json!({"type": "string", "x-treatment": "kept", "x-landing": "column"})),
            ("os_version", serde_json::json!({"type": "string", "x-treatment": "kept", "x-landing": "column"})),
            (
                "os_version",
                serde_json::json!({"type": "integer", "x-treatment": "kept", "x-landing": {"column": "Os"}}),
            ),
            (
                "os_version",
                serde_json::json!({"type": "integer", "x-treatment": "kept", "x-landing": {"column": "user_id"}}),
            ),
            ("os_version", serde_json::json!({"type": "integer", "x-treatment": "kept", "x-landing": {"table": "x"}})),
            ("os_version", serde_json::json!({"type": "string", "x-treatment": "truncated", "x-landing": "extras"})),
            ("os_version", serde_json::json!({"type": "object", "x-treatment": "kept", "x-landing": "extras"})),
            ("os_version", serde_json::json!({"type": "integer", "x-treatment": "masked-hmac", "x-landing": "extras"})),
            ("os_version", serde_json::json!({"type": "string", "x-treatment": "dropped", "x-landing": "extras"})),
            ("os_version", serde_json::json!({"type": "string"})),
            ("os_version", serde_json::json!({"type": "string", "x-treatment": "kept", "x-landing": "extras"})),
        ];
        for (name, property) in refused {
            let err = FieldPolicy::from_schema(&with_property(name, property.clone())).expect_err("refused");
            assert!(matches!(&err, PolicyError::Field { field, .. } if field == name), "{property}: {err}");
        }
        let mut schema: Value = serde_json::from_str(crate::schema::SCHEMA_JSON).expect("schema");
        schema["x-unknown-keys"] = "keep".into();
        assert_eq!(FieldPolicy::from_schema(&schema.to_string()), Err(PolicyError::UnknownKeysDefault));
        assert_eq!(FieldPolicy::from_schema("[]"), Err(PolicyError::NotASchema));
    }
}
