//! The message schema: `schema/login-event.schema.json` and the function's own validation
//! (`LoginRecord::parse`, through `schema::judge`) agree, body for body, on a generated
//! corpus: valid bodies, each rule broken one at a time, every length boundary in 1-, 2-, 3- and
//! 4-byte characters, Unicode white space, IPv4/IPv6 forms, `null`s, wrong types, shapes that
//! are not objects or not JSON, and seeded random bodies. The first body they disagree on fails
//! the test, named. A rule changed without the schema, or the schema without the rule, fails.
//!
//! The schema side is a JSON Schema validator (the `jsonschema` crate, draft 2020-12, formats
//! asserted) over the body parsed as JSON; a body that does not parse is invalid there. The one
//! thing JSON Schema cannot say, a known key repeated, is checked apart: the function refuses
//! it, and the schema's description says so.

use jsonschema::Validator;
use login_etl_core::message::{KNOWN_KEYS, RecordError};
use login_etl_core::schema::{self, SCHEMA_JSON, Verdict};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

/// A body of the corpus and what it exercises, for the failure message.
struct Case {
    name: String,
    body: String,
}

fn case(name: impl Into<String>, body: impl Into<String>) -> Case {
    Case { name: name.into(), body: body.into() }
}

/// The schema's verdict: not JSON, or the instance paths of its errors (none: valid).
#[derive(Debug)]
enum SchemaVerdict {
    NotJson,
    Errors(Vec<String>),
}

fn validator() -> Validator {
    let schema: Value = serde_json::from_str(SCHEMA_JSON).expect("the schema is JSON");
    jsonschema::draft202012::meta::validate(&schema).expect("the schema is a valid draft 2020-12 schema");
    jsonschema::draft202012::options().should_validate_formats(true).build(&schema).expect("the schema compiles")
}

fn schema_verdict(validator: &Validator, body: &str) -> SchemaVerdict {
    match serde_json::from_str::<Value>(body) {
        Err(_) => SchemaVerdict::NotJson,
        Ok(instance) => SchemaVerdict::Errors(
            validator.iter_errors(&instance).map(|e| e.instance_path().as_str().to_owned()).collect(),
        ),
    }
}

/// Whether the two verdicts agree: valid on both, or invalid on both for the same cause (the
/// field the function names is among the schema's error locations; not JSON on both).
fn agree(function: &Verdict, schema: &SchemaVerdict) -> bool {
    let at = |paths: &[String], field: &str| paths.iter().any(|p| p == &format!("/{field}"));
    match (function, schema) {
        (Verdict::Valid { .. }, SchemaVerdict::Errors(paths)) => paths.is_empty(),
        (Verdict::Valid { .. }, SchemaVerdict::NotJson) => false,
        (Verdict::Invalid(RecordError::MalformedJson { .. }), schema) => matches!(schema, SchemaVerdict::NotJson),
        (Verdict::Invalid(_), SchemaVerdict::NotJson) => false,
        (Verdict::Invalid(err), SchemaVerdict::Errors(paths)) => match err {
            RecordError::NotAnObject => paths.iter().any(String::is_empty),
            RecordError::Missing(field) => paths.iter().any(String::is_empty) || at(paths, field.name()),
            RecordError::NotAString(field)
            | RecordError::Empty(field)
            | RecordError::TooLong { field, .. }
            | RecordError::ContainsNul(field) => at(paths, field.name()),
            RecordError::InvalidIp => at(paths, "ip"),
            RecordError::InvalidAppVersion => at(paths, "app_version"),
            // A declared extra: at its own path, or the object's when it is required and missing.
            RecordError::InvalidExtra(name) => at(paths, name) || paths.iter().any(String::is_empty),
            // Not reachable from a body the schema sees (a repeated key is checked apart).
            RecordError::MissingBody | RecordError::DuplicateKey | RecordError::MalformedJson { .. } => false,
        },
    }
}

/// A deployment's policy: the published schema with declared extras, each one property. The
/// schema validator and the function (reading the same document as its field policy) agree on
/// their rules as on the built-in fields', wherever each lands (a column of its own or `extras`).
#[test]
fn a_policy_s_declared_extras_are_judged_alike_by_the_schema_and_the_function() {
    let mut schema: Value = serde_json::from_str(SCHEMA_JSON).expect("schema");
    schema["properties"]["os_version"] = serde_json::json!({"type": ["string", "null"], "maxLength": 8, "$ref": "#/$defs/noNul",
                           "x-treatment": "kept", "x-landing": {"column": "os_version"}});
    schema["properties"]["session_id"] = serde_json::json!({"type": "string", "maxLength": 64, "$ref": "#/$defs/noNul",
                           "x-treatment": "masked-hmac", "x-landing": "extras"});
    schema["properties"]["attempt"] =
        serde_json::json!({"type": "integer", "x-treatment": "dropped", "x-landing": "none"});
    schema["required"] = serde_json::json!(["user_id", "session_id"]);
    let policy = login_etl_core::policy::FieldPolicy::from_schema(&schema.to_string()).expect("policy");
    let validator = jsonschema::draft202012::options().should_validate_formats(true).build(&schema).expect("compiles");
    let ok = r#""user_id":"u","session_id":"s-1""#;
    let cases = [
        (format!("{{{ok}}}"), true),
        (format!(r#"{{{ok},"os_version":"14.2","attempt":3}}"#), true),
        (format!(r#"{{{ok},"os_version":null}}"#), true),
        (format!(r#"{{{ok},"os_version":"123456789"}}"#), false),
        (format!(r#"{{{ok},"os_version":14}}"#), false),
        (format!(r#"{{{ok},"attempt":1.5}}"#), false),
        (format!(r#"{{{ok},"attempt":"3"}}"#), false),
        (r#"{"user_id":"u"}"#.to_string(), false),
        (r#"{"user_id":"u","session_id":null}"#.to_string(), false),
        (format!(r#"{{{ok},"os_version":"a\u0000b"}}"#), false),
    ];
    for (body, valid) in &cases {
        let function = schema::judge_with(body, &policy);
        let schema = schema_verdict(&validator, body);
        assert!(agree(&function, &schema), "disagree on {body}: function {function:?}, schema {schema:?}");
        assert_eq!(function.is_valid(), *valid, "{body}");
    }
}

#[test]
fn the_schema_and_the_function_agree_on_every_body_of_the_corpus() {
    let validator = validator();
    let corpus = corpus();
    let (mut valid, mut invalid) = (0, 0);
    let mut reasons = std::collections::BTreeSet::new();
    for (index, case) in corpus.iter().enumerate() {
        let function = schema::judge(&case.body);
        let schema = schema_verdict(&validator, &case.body);
        assert!(
            agree(&function, &schema),
            "the schema and the function disagree on body #{index} of {} ({}): the function says {function:?}, \
             the schema says {schema:?}; the body: {:?}",
            corpus.len(),
            case.name,
            case.body
        );
        match function {
            Verdict::Valid { .. } => valid += 1,
            Verdict::Invalid(err) => {
                invalid += 1;
                reasons.insert(err.code());
            }
        }
    }
    println!(
        "schema: the schema and the function agree on {} bodies ({valid} valid, {invalid} invalid, {} reasons)",
        corpus.len(),
        reasons.len()
    );
    // The corpus reaches every rule: each reason a body can have (but the repeated key, checked
    // below) was seen, and so were both verdicts in bulk.
    for field in KNOWN_KEYS {
        for code in [format!("not_a_string_{field}"), format!("too_long_{field}")] {
            assert!(reasons.contains(&code), "the corpus never breaks {code}");
        }
    }
    for code in [
        "malformed_json",
        "not_an_object",
        "missing_user_id",
        "empty_user_id",
        "empty_device_id",
        "nul_in_user_id",
        "nul_in_device_type",
        "nul_in_locale",
        "nul_in_device_id",
        "invalid_ip",
        "invalid_app_version",
    ] {
        assert!(reasons.contains(code), "the corpus never breaks {code}");
    }
    assert!(valid >= 1_000 && invalid >= 1_000, "{valid} valid, {invalid} invalid");
}

/// A deployment's policy that tightens the built-in fields: the function reads their rules from
/// it (no rebuild), and the schema validator and the function still agree on every body of the
/// corpus under it.
#[test]
fn a_policy_s_tightened_built_in_rules_are_judged_alike_by_the_schema_and_the_function() {
    let schema = crate::helpers::tightened_built_in_policy();
    let policy = login_etl_core::policy::FieldPolicy::from_schema(&schema.to_string()).expect("policy");
    let validator = jsonschema::draft202012::options().should_validate_formats(true).build(&schema).expect("compiles");
    let mut reasons = std::collections::BTreeSet::new();
    let mut valid = 0;
    for case in corpus() {
        let function = schema::judge_with(&case.body, &policy);
        let schema = schema_verdict(&validator, &case.body);
        assert!(
            agree(&function, &schema),
            "disagree under the tightened policy on {} ({}): function {function:?}, schema {schema:?}",
            case.body,
            case.name
        );
        match function {
            Verdict::Valid { .. } => valid += 1,
            Verdict::Invalid(err) => {
                reasons.insert(err.code());
            }
        }
    }
    for code in ["too_long_locale", "missing_device_id", "empty_device_type"] {
        assert!(reasons.contains(code), "the tightened rule {code} is never applied: {reasons:?}");
    }
    assert!(!reasons.contains("invalid_app_version"), "app_version has no grammar under this policy");
    assert!(valid >= 100, "{valid} valid");
}

/// What JSON Schema cannot say: a known key repeated. A validator sees only the last value
/// (serde_json, like most parsers, keeps it) and accepts the body. That the function refuses
/// it, for every known key however spelt, and that the schema's description says so, the
/// core's `schema` tests check.
#[test]
fn a_repeated_known_key_is_beyond_the_schema() {
    let body = r#"{"user_id":"u","locale":"RU","locale":"DE"}"#;
    assert!(matches!(schema_verdict(&validator(), body), SchemaVerdict::Errors(e) if e.is_empty()));
}

// --- the corpus -------------------------------------------------------------------------------

/// The string fields, their limit in characters, and a valid value of each.
const FIELDS: [(&str, usize, &str); 6] = [
    ("user_id", 128, "424cdd21-063a-43a7-b91b-7ca1a833afae"),
    ("device_type", 32, "android"),
    ("locale", 32, "RU"),
    ("app_version", 32, "2.3.0"),
    ("ip", 64, "199.172.111.135"),
    ("device_id", 256, "593-47-5928"),
];

/// Characters of 1, 2, 3 and 4 UTF-8 bytes (4: outside the BMP, two UTF-16 units), and a
/// letter with a combining accent (two code points, one glyph).
const WIDTHS: [&str; 5] = ["x", "ж", "語", "😀", "e\u{301}"];

/// Every Unicode White_Space character (what Rust's `trim` removes), and neighbours that are
/// not (U+FEFF is white space to ECMA-262's `\s`, U+180E was before Unicode 6.3, U+200B looks
/// blank).
const SPACES: [char; 25] = [
    '\t', '\n', '\u{b}', '\u{c}', '\r', ' ', '\u{85}', '\u{a0}', '\u{1680}', '\u{2000}', '\u{2001}', '\u{2002}',
    '\u{2003}', '\u{2004}', '\u{2005}', '\u{2006}', '\u{2007}', '\u{2008}', '\u{2009}', '\u{200a}', '\u{2028}',
    '\u{2029}', '\u{202f}', '\u{205f}', '\u{3000}',
];
const NOT_SPACES: [char; 3] = ['\u{feff}', '\u{180e}', '\u{200b}'];

const IPS: [&str; 52] = [
    "0.0.0.0",
    "255.255.255.255",
    "1.2.3.4",
    "10.0.0.1",
    "256.1.1.1",
    "1.2.3",
    "1.2.3.4.5",
    "01.2.3.4",
    "1.2.3.04",
    "1.2.3.4 ",
    " 1.2.3.4",
    "1.2.3.4\n",
    "1.2.3.-1",
    "1..3.4",
    "1.2.3.4/24",
    "0x1.2.3.4",
    "１.２.３.４",
    "::",
    "::1",
    "1::",
    "2001:db8::1",
    "2001:DB8::1",
    "2001:db8:0:0:0:0:0:1",
    "2001:0db8:0000:0000:0000:0000:0000:0001",
    "0000:0000:0000:0000:0000:ffff:255.255.255.255",
    "::ffff:199.172.111.135",
    "::ffff:1.2.3.04",
    "::1.2.3.4",
    "64:ff9b::192.0.2.33",
    "fe80::1",
    "fe80::1%eth0",
    "fe80::1%1",
    "2001:db8::1::1",
    "2001:db8:::1",
    "2001:db8::g",
    "2001:db8:0:0:0:0:0:0:1",
    "2001:db8:0:0:0:0:1",
    "12345::1",
    "[::1]",
    "::ffff:1.2.3",
    "1:2:3:4:5:6:7::",
    "::2:3:4:5:6:7:8",
    "1:2:3:4:5:6:1.2.3.4",
    "1:2:3:4:5:6:7:1.2.3.4",
    ":1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:",
    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "FFFF::",
    "::ffff:0:1.2.3.4",
    "",
    "localhost",
    "1.2.3.4\u{0}",
];

const VERSIONS: [&str; 33] = [
    "2.3.0",
    "0.96",
    "7",
    "10.0.1.2",
    "2.3.0-beta.1",
    "2.3.0+42",
    "1.0.0-rc.1+build.5",
    "2.3.0+4-2",
    "1-a",
    "1+-",
    "00.01",
    "",
    ".",
    "2.",
    ".2",
    "v2.3",
    "2.3.0-",
    "2.3.0+",
    "2,3",
    "2.3 ",
    " 2.3",
    "2.3\n",
    "2.3.0_1",
    "2.3.0-beta 1",
    "2.3.0-build_5",
    "2.3.0+build_5",
    "2.3.0-build.5_",
    "١.٢",
    "２.３",
    "2.3.0-ß",
    "2..3",
    "-1",
    "1.2.3-a\u{0}",
];

/// A valid body: every field set, as the documented example.
fn full() -> Map<String, Value> {
    FIELDS.iter().map(|(field, _, good)| ((*field).to_owned(), json!(good))).collect()
}

fn with(field: &str, value: Value) -> String {
    let mut body = full();
    body.insert(field.to_owned(), value);
    Value::Object(body).to_string()
}

fn without(field: &str) -> String {
    let mut body = full();
    body.remove(field);
    Value::Object(body).to_string()
}

/// A string of `n` characters of `unit`; for app_version and ip, in ASCII, of digits (a
/// valid version at any length within the limit; never an address).
fn of_length(field: &str, unit: &str, n: usize) -> String {
    match (field, unit) {
        ("app_version" | "ip", "x") => "1".repeat(n),
        _ => unit.chars().cycle().take(n).collect(),
    }
}

fn corpus() -> Vec<Case> {
    let mut corpus = vec![
        case("the documented example", Value::Object(full()).to_string()),
        case("user_id only", r#"{"user_id":"u"}"#),
        case(
            "every optional field null",
            r#"{"user_id":"u","device_type":null,"locale":null,"app_version":null,"ip":null,"device_id":null}"#,
        ),
        case("unknown keys beside the known", r#"{"user_id":"u","os_version":"14.2","schema_version":2}"#),
        case("unknown nested values", r#"{"user_id":"u","extra":{"nested":[1,2,{"a":null}]},"n":-1.5e10,"t":true}"#),
        case("an unknown key repeated", r#"{"user_id":"u","x":1,"x":"two"}"#),
        case("unknown keys that look like values", r#"{"user_id":"u","199.172.111.135":1,"a@b.example":2,"":3}"#),
        case("a known key by its escape", r#"{"user\u005fid":"u"}"#),
        case("a known key in another case", r#"{"User_Id":"u"}"#),
        case("a known key with a space", r#"{"user_id ":"u"}"#),
        case("values escaped", r#"{"user_id":"\u0075\u00e9\ud83d\ude00","locale":"\/\"\\"}"#),
        case("injection-looking data", r#"{"user_id":"x'); DROP TABLE user_logins; --","locale":"<script>"}"#),
        case("white space around the object", " \t\r\n{\"user_id\":\"u\"}\n "),
        case("an empty object", "{}"),
        case("an array", r#"["u1","android"]"#),
        case("an array of an object", r#"[{"user_id":"u"}]"#),
        case("a string", r#""{\"user_id\":\"u\"}""#),
        case("a number", "42"),
        case("true", "true"),
        case("null", "null"),
        case("empty", ""),
        case("only white space", "  \n"),
        case("not JSON", "user_id=u"),
        case("unterminated", r#"{"user_id":"u""#),
        case("a trailing comma", r#"{"user_id":"u",}"#),
        case("single quotes", "{'user_id':'u'}"),
        case("trailing text", r#"{"user_id":"u"} x"#),
        case("two objects", r#"{"user_id":"u"}{"user_id":"v"}"#),
        case("a byte order mark", "\u{feff}{\"user_id\":\"u\"}"),
        case("a raw control character in a string", "{\"user_id\":\"a\u{1}b\"}"),
        case("a raw tab in a string", "{\"user_id\":\"a\tb\"}"),
        case("a lone surrogate in user_id", r#"{"user_id":"\ud800"}"#),
        case("a lone surrogate in an unknown value", r#"{"user_id":"u","x":"\udc00"}"#),
        case("a lone surrogate in an unknown key", r#"{"user_id":"u","\ud800":1}"#),
        case("a number beyond f64 in an unknown value", r#"{"user_id":"u","x":1e400}"#),
        case("a number beyond f64 in locale", r#"{"user_id":"u","locale":-1e400}"#),
        case("a huge integer in an unknown value", r#"{"user_id":"u","x":123456789012345678901234567890}"#),
        case("NaN", r#"{"user_id":"u","x":NaN}"#),
        case(
            "nesting 127 deep in an unknown value",
            format!(r#"{{"user_id":"u","x":{}{}}}"#, "[".repeat(126), "]".repeat(126)),
        ),
        case(
            "nesting 200 deep in an unknown value",
            format!(r#"{{"user_id":"u","x":{}{}}}"#, "[".repeat(200), "]".repeat(200)),
        ),
        case("a NUL in an unknown value", r#"{"user_id":"u","x":"a\u0000b"}"#),
        case("a NUL in an unknown key", r#"{"user_id":"u","a\u0000b":1}"#),
    ];

    for (field, max, good) in FIELDS {
        // Missing, null, every wrong type.
        corpus.push(case(format!("{field} missing"), without(field)));
        corpus.push(case(format!("{field} null"), with(field, Value::Null)));
        for (kind, value) in [
            ("an integer", json!(42)),
            ("zero", json!(0)),
            ("a negative number", json!(-1)),
            ("a float", json!(2.5)),
            ("true", json!(true)),
            ("false", json!(false)),
            ("an array", json!([good])),
            ("an empty array", json!([])),
            ("an object", json!({"value": good})),
            ("an empty object", json!({})),
        ] {
            corpus.push(case(format!("{field} {kind}"), with(field, value)));
        }
        // Every length boundary, in characters of every width.
        for unit in WIDTHS {
            for n in [0, 1, 2, max - 1, max, max + 1, max + 2, 2 * max] {
                let value = of_length(field, unit, n);
                corpus.push(case(format!("{field} of {n} × {unit:?}"), with(field, json!(value))));
            }
        }
        // NUL anywhere.
        for value in [format!("\u{0}{good}"), format!("{good}\u{0}"), "\u{0}".to_owned()] {
            corpus.push(case(format!("{field} with a NUL"), with(field, json!(value))));
        }
        // Blank and almost blank.
        for space in SPACES.iter().chain(NOT_SPACES.iter()) {
            let label = format!("U+{:04X}", u32::from(*space));
            corpus.push(case(format!("{field} of {label}"), with(field, json!(space.to_string()))));
            corpus.push(case(format!("{field} of 3 × {label}"), with(field, json!(space.to_string().repeat(3)))));
            corpus.push(case(
                format!("{field} of {label} around a letter"),
                with(field, json!(format!("{space}a{space}"))),
            ));
        }
    }
    for ip in IPS {
        corpus.push(case(format!("ip {ip:?}"), with("ip", json!(ip))));
    }
    for version in VERSIONS {
        corpus.push(case(format!("app_version {version:?}"), with("app_version", json!(version))));
    }

    // Every combination of the optional fields missing, null, valid or invalid, around three
    // user_ids: valid, blank, of a wrong type.
    let states = |field: &str, good: &str| -> [Option<Value>; 4] {
        let bad = match field {
            "ip" => json!("999.1.1.1"),
            "app_version" => json!("two"),
            "device_id" => json!(" "),
            _ => json!("y".repeat(33)),
        };
        [None, Some(Value::Null), Some(json!(good)), Some(bad)]
    };
    let optional: Vec<(&str, &str)> = FIELDS.iter().skip(1).map(|(f, _, g)| (*f, *g)).collect();
    for user_id in [json!("u"), json!("   "), json!(7)] {
        for combination in 0..4usize.pow(optional.len() as u32) {
            let mut body = Map::new();
            body.insert("user_id".into(), user_id.clone());
            let mut rest = combination;
            for (field, good) in &optional {
                if let Some(value) = states(field, good)[rest % 4].clone() {
                    body.insert((*field).to_owned(), value);
                }
                rest /= 4;
            }
            corpus.push(case(
                format!("combination {combination} with user_id {user_id}"),
                Value::Object(body).to_string(),
            ));
        }
    }

    // Seeded random bodies. Each field is, mostly, something the function loads: missing or
    // null (when optional), its example value, a random string within its limit (of mixed
    // widths), a random version or address. With a chance of one in six it is instead wild: a
    // number, or a random string of a random length near the limit from a pool that mixes
    // widths, white space, NUL, digits, dots and colons, or a mangled address.
    let mut rng = StdRng::seed_from_u64(24);
    let wild: Vec<char> = "x1.9:aF-+ ж語😀\u{301}\u{0}\u{85}\u{a0}\u{feff}\u{3000}\t".chars().collect();
    let tame: Vec<char> = "abcXYZ0189_-.жé語😀".chars().collect();
    let random_text = |rng: &mut StdRng, pool: &[char], n: usize| -> String {
        (0..n).map(|_| pool[rng.random_range(0..pool.len())]).collect()
    };
    for index in 0..3_000 {
        let mut body = Map::new();
        for (field, max, good) in FIELDS {
            let optional = field != "user_id";
            let value = if rng.random_bool(1.0 / 6.0) {
                match rng.random_range(0..4) {
                    0 => json!(rng.random_range(-5..5)),
                    1 if field == "ip" => json!(random_ip(&mut rng, true)),
                    _ => {
                        let n = match rng.random_range(0..3) {
                            0 => rng.random_range(0..4),
                            1 => rng.random_range(max.saturating_sub(2)..=max + 2),
                            _ => rng.random_range(0..=max + 2),
                        };
                        json!(random_text(&mut rng, &wild, n))
                    }
                }
            } else {
                match rng.random_range(0..5) {
                    0 if optional => continue,
                    1 if optional => Value::Null,
                    2 => json!(good),
                    _ => match field {
                        "ip" => json!(random_ip(&mut rng, false)),
                        "app_version" => {
                            let parts: Vec<String> =
                                (0..rng.random_range(1..4)).map(|_| rng.random_range(0..100).to_string()).collect();
                            json!(parts.join("."))
                        }
                        _ => {
                            let n = rng.random_range(1..=max);
                            json!(random_text(&mut rng, &tame, n))
                        }
                    },
                }
            };
            body.insert(field.to_owned(), value);
        }
        if rng.random_bool(0.2) {
            body.insert(format!("extra_{index}"), json!(rng.random::<u32>()));
        }
        corpus.push(case(format!("random body {index} (seed 24)"), Value::Object(body).to_string()));
    }
    corpus
}

/// A random IPv4 or IPv6 address in one of its forms; `mangled`, then broken in one of the
/// ways addresses are.
fn random_ip(rng: &mut StdRng, mangled: bool) -> String {
    let ip = match rng.random_range(0..4) {
        0 => format!("{}.{}.{}.{}", rng.random::<u8>(), rng.random::<u8>(), rng.random::<u8>(), rng.random::<u8>()),
        1 => {
            let groups: Vec<String> = (0..8).map(|_| format!("{:x}", rng.random::<u16>())).collect();
            groups.join(":")
        }
        2 => format!("{:x}::{:x}", rng.random::<u16>(), rng.random::<u16>()),
        _ => format!(
            "::ffff:{}.{}.{}.{}",
            rng.random::<u8>(),
            rng.random::<u8>(),
            rng.random::<u8>(),
            rng.random::<u8>()
        ),
    };
    if !mangled {
        return ip;
    }
    match rng.random_range(0..5) {
        0 => ip.replacen('.', "..", 1),
        1 => ip.replacen(':', ":::", 1),
        2 => format!("{ip}0"),
        3 => format!("0{ip}"),
        _ => format!("{ip}%1"),
    }
}

// --- drift, end to end ------------------------------------------------------------------------

/// Records with keys the function does not know are loaded; the invocation's EMF document
/// counts them (`UnknownFieldRecords`) and one log line names the keys, never their values.
#[sqlx::test(migrations = "./migrations")]
async fn unknown_keys_are_loaded_counted_and_named_never_valued(pool: sqlx::PgPool) {
    use login_etl_test_support::{cli_process, event, fresh_dir, sqs_message};
    let secret_value = "SECRET-VALUE-7f3a";
    let records = vec![
        sqs_message("a", &format!(r#"{{"user_id":"u-1","os_version":"{secret_value}","schema_version":2}}"#)),
        sqs_message("b", &format!(r#"{{"user_id":"u-2","os_version":"{secret_value}"}}"#)),
        sqs_message("c", &format!(r#"{{"user_id":"u-3","10.1.2.3":"{secret_value}"}}"#)),
        sqs_message("d", r#"{"user_id":"u-4"}"#),
        sqs_message("e", r#"{"user_id":"","os_version":"x"}"#),
    ];
    let dir = fresh_dir("schema-drift");
    let file = dir.join("event.json");
    std::fs::write(&file, serde_json::to_string(&event(records)).expect("event JSON")).expect("event file");

    let output = cli_process(login_etl_test_support::cli_binary(), &pool.connect_options())
        .env("RUST_LOG", "info")
        .arg("invoke")
        .arg(&file)
        .output()
        .expect("invoke");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned());
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(login_etl_test_support::row_count(&pool).await, 4, "records with unknown keys are loaded");

    let emf = stdout.lines().find(|line| line.contains("\"_aws\"")).expect("the EMF line");
    let emf: Value = serde_json::from_str(emf).expect("EMF JSON");
    assert_eq!(emf["UnknownFieldRecords"], 3, "only valid records count: {emf}");
    let declared = emf["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().expect("metrics");
    assert!(declared.iter().any(|m| m["Name"] == "UnknownFieldRecords"), "declared as a metric: {emf}");

    let drift: Vec<&str> = stderr.lines().filter(|l| l.contains("keys the function does not know")).collect();
    assert_eq!(drift.len(), 1, "one line per batch: {stderr}");
    for name in ["os_version", "schema_version", "(not a field name)", "records=3"] {
        assert!(drift[0].contains(name), "{name} in {}", drift[0]);
    }
    let all = format!("{stdout}{stderr}");
    assert!(!all.contains(secret_value) && !all.contains("10.1.2.3"), "a value or a value-like key was logged: {all}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A producer's CI: `validate` exits 0 only when every body is valid, reads standard input,
/// needs no environment, and `--schema` names the schema it checks against.
#[test]
fn validate_is_a_producer_s_ci_step() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let run = |args: &[&str], input: &str| {
        let mut child = Command::new(login_etl_test_support::cli_binary())
            .env_clear()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write");
        let output = child.wait_with_output().expect("wait");
        (output.status.code(), String::from_utf8_lossy(&output.stdout).into_owned())
    };
    let (code, out) = run(&["validate", "-"], "{\"user_id\":\"u\",\"os_version\":\"14\"}\n{\"user_id\":\"v\"}\n");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("os_version"), "{out}");
    let (code, out) = run(&["validate"], "{\"user_id\":\"u\"}\n{\"user_id\":\"u\",\"locale\":7}\n");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("line 2: invalid not_a_string_locale"), "{out}");
    let (code, out) = run(&["validate", "--schema"], "");
    assert_eq!(code, Some(0));
    assert!(out.contains(schema::SCHEMA_ID) && out.contains(schema::SCHEMA_VERSION), "{out}");
}
