//! A JSON Schema with login-etl's annotations read into a [`FieldPolicy`], or refused with
//! a [`PolicyError`] naming the property and what this release cannot honour about it. The
//! rules it enforces are in the parent module's documentation and `docs/schema.md`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{
    BuiltInRules, ExtraField, ExtraFields, FieldPolicy, FieldRule, Format, JsonType, Landing, OWN_COLUMNS, Treatment,
    VERSION_PATTERN,
};
use crate::message::{Field, KNOWN_KEYS};

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
                            "a built-in field is x-treatment {treatment} (ip: or truncated) and x-landing {column}: \
                             its column is typed for that (docs/schema.md, \"The field policy\")"
                        ),
                    ));
                }
                continue;
            }
            if property.get("x-format").is_some() {
                return Err(field(name, "x-format is the built-in fields' (ip, app_version)"));
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
        // After the treatments and landings, so that a field declared unlike its column is
        // refused for that first.
        let rule = |known: Field| match properties.get(known.name()) {
            Some(property) => built_in_rule(known, property, required.contains(&known.name())),
            None => Err(field(known.name(), "a built-in field must be declared")),
        };
        let [user_id, device_type, locale, app_version, ip, device_id] = Field::ALL.map(rule);
        let built_in = BuiltInRules { rules: [user_id?, device_type?, locale?, app_version?, ip?, device_id?] };
        Ok(FieldPolicy { built_in, extras: ExtraFields { fields: extras } })
    }
}

/// A built-in field's rules from its property, or why the release cannot honour them: each
/// is a string, `user_id` is required (every row has one), a `maxLength` within the release's
/// limit (its column's length), `ip`'s `x-format` is `ip-address` (its value is an address)
/// and only `app_version` may have `version`. The schema must say what the function does: a
/// required field's type is `"string"` and an optional one's `["string", "null"]` (`null` is
/// missing); a field read as text refuses NUL (`"$ref": "#/$defs/noNul"`); `version` carries
/// [`VERSION_PATTERN`] and no other field has a `pattern`.
fn built_in_rule(known: Field, property: &Value, required: bool) -> Result<FieldRule, PolicyError> {
    let name = known.name();
    if known == Field::UserId && !required {
        return Err(field(name, "user_id is required in this release: every row has one"));
    }
    let types = json_types(property).unwrap_or_default();
    let string_typed = matches!(
        (required, types.as_slice()),
        (true, [JsonType::String]) | (false, [JsonType::String, JsonType::Null] | [JsonType::Null, JsonType::String])
    );
    if !string_typed {
        return Err(field(
            name,
            "a built-in field is a string: type \"string\" when required, [\"string\", \"null\"] when optional \
             (null is missing)",
        ));
    }
    let limit = known.max_chars();
    let max_chars = property
        .get("maxLength")
        .and_then(Value::as_u64)
        .filter(|max| (1..=limit as u64).contains(max))
        .and_then(|max| u32::try_from(max).ok())
        .ok_or_else(|| {
            field(name, &format!("maxLength must be a whole number from 1 to {limit} (the release's limit)"))
        })?;
    let format = match (known, property.get("x-format")) {
        (_, None) => Format::Text,
        (Field::AppVersion, Some(Value::String(format))) if format == "version" => Format::Version,
        (Field::IP, Some(Value::String(format))) if format == "ip-address" => Format::IpAddress,
        _ => return Err(field(name, "x-format may be version on app_version, and is ip-address on ip")),
    };
    if known == Field::IP && format != Format::IpAddress {
        return Err(field(name, "ip is x-format ip-address in this release: its value is an address"));
    }
    let pattern = property.get("pattern");
    match format {
        Format::Version if pattern.and_then(Value::as_str) != Some(VERSION_PATTERN) => {
            return Err(field(name, &format!("x-format version carries \"pattern\": {VERSION_PATTERN:?}")));
        }
        Format::Text | Format::IpAddress if pattern.is_some() => {
            return Err(field(name, "the function checks no pattern but x-format version's"));
        }
        Format::Text if !refuses_nul(property) => {
            return Err(field(
                name,
                "a text field must refuse NUL, which PostgreSQL cannot store: add \"$ref\": \"#/$defs/noNul\"",
            ));
        }
        _ => {}
    }
    Ok(FieldRule { max_chars, required, not_blank: has_ref(property, "#/$defs/notBlank"), format })
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
    has_ref(property, "#/$defs/noNul")
}

/// Whether the property refers to the definition `target`, itself or in its `allOf`.
fn has_ref(property: &Value, target: &str) -> bool {
    let refers = |node: &Value| node.get("$ref").and_then(Value::as_str) == Some(target);
    refers(property) || property.get("allOf").and_then(Value::as_array).is_some_and(|all| all.iter().any(refers))
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

    /// The published schema with `change` made to its root.
    fn changed(change: impl FnOnce(&mut Value)) -> String {
        let mut schema: Value = serde_json::from_str(crate::schema::SCHEMA_JSON).expect("schema");
        change(&mut schema);
        schema.to_string()
    }

    #[test]
    fn the_built_in_rules_are_read_from_the_published_schema() {
        let rules = FieldPolicy::published().built_in;
        let rule = |max_chars, required, not_blank, format| FieldRule { max_chars, required, not_blank, format };
        let expected = [
            (Field::UserId, rule(128, true, true, Format::Text)),
            (Field::DeviceType, rule(32, false, false, Format::Text)),
            (Field::Locale, rule(32, false, false, Format::Text)),
            (Field::AppVersion, rule(32, false, false, Format::Version)),
            (Field::IP, rule(64, false, false, Format::IpAddress)),
            (Field::DEVICE_ID, rule(256, false, true, Format::Text)),
        ];
        for (field, expected) in expected {
            assert_eq!(rules.get(field), expected, "{field}");
            // The published limits are the release's: a policy may tighten them, never loosen.
            assert_eq!(rules.get(field).max_chars as usize, field.max_chars(), "{field}");
        }
    }

    #[test]
    fn a_deployment_may_tighten_the_built_in_rules() {
        let text = crate::sample::tightened_policy(5).to_string();
        let rules = FieldPolicy::from_schema(&text).expect("policy").built_in;
        assert_eq!(rules.get(Field::Locale).max_chars, 5);
        assert!(rules.get(Field::DEVICE_ID).required);
        assert!(rules.get(Field::DeviceType).not_blank);
        assert_eq!(rules.get(Field::AppVersion).format, Format::Text);
        assert_eq!(rules.get(Field::UserId), FieldPolicy::published().built_in.get(Field::UserId));
    }

    #[test]
    fn built_in_rules_the_release_cannot_honour_are_refused_by_name() {
        type Change = fn(&mut Value);
        let refused: [(&str, Change); 12] = [
            ("user_id", |s| s["required"] = serde_json::json!([])),
            ("user_id", |s| s["properties"]["user_id"]["maxLength"] = 129.into()),
            ("locale", |s| s["properties"]["locale"]["maxLength"] = 0.into()),
            ("locale", |s| {
                s["properties"]["locale"].as_object_mut().expect("locale").remove("maxLength");
            }),
            ("locale", |s| s["properties"]["locale"]["type"] = "integer".into()),
            // Required but null allowed: the schema would take a null the function refuses.
            ("device_id", |s| s["required"] = serde_json::json!(["user_id", "device_id"])),
            ("user_id", |s| s["properties"]["user_id"]["type"] = serde_json::json!(["string", "null"])),
            ("ip", |s| {
                s["properties"]["ip"].as_object_mut().expect("ip").remove("x-format");
            }),
            ("locale", |s| s["properties"]["locale"]["x-format"] = "version".into()),
            ("app_version", |s| s["properties"]["app_version"]["pattern"] = "^[0-9]+$".into()),
            ("locale", |s| s["properties"]["locale"]["pattern"] = "^[a-z]+$".into()),
            ("device_type", |s| {
                s["properties"]["device_type"].as_object_mut().expect("device_type").remove("$ref");
            }),
        ];
        for (name, change) in refused {
            let err = FieldPolicy::from_schema(&changed(change)).expect_err("refused");
            assert!(matches!(&err, PolicyError::Field { field, .. } if field == name), "{name}: {err}");
        }
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
            (
                "os_version",
                serde_json::json!({"type": "string", "$ref": "#/$defs/noNul", "x-format": "version",
                                   "x-treatment": "kept", "x-landing": "extras"}),
            ),
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
