//! `validate`: a producer's check of its bodies against the message schema, before sending.

use std::io::{Read, Write};

use anyhow::Context;

use super::ValidateArgs;
use login_etl_core::policy::FieldPolicy;
use login_etl_core::schema::{self, Verdict};

/// Exit status of `validate` when a body is invalid (the same as an error: a producer's CI
/// fails either way, and the verdict lines say which it was).
pub const EXIT_INVALID_BODIES: u8 = 1;

/// One body of the input and where it was found, for the verdict line.
pub(crate) struct Body {
    /// `line 3`, or `Records[0] (messageId …)`.
    pub(crate) at: String,
    /// `None`: an SQS record without a body.
    pub(crate) text: Option<String>,
}

/// Reads bodies from `args.file` (or `stdin` for `-`) and prints each one's verdict by the
/// function's own rules: `valid`, or `invalid` with the reason code the function would log.
/// The input is an SQS event (a JSON object with a `Records` array: each record's body) or
/// one body per line (blank lines skipped). Returns 0 only when every body is valid.
///
/// With `--schema`, prints the embedded schema's `$id` and version instead.
pub fn validate(args: &ValidateArgs, stdin: impl Read, out: &mut impl Write) -> anyhow::Result<u8> {
    if args.schema {
        if args.json {
            let identity = serde_json::json!({"$id": schema::SCHEMA_ID, "version": schema::SCHEMA_VERSION});
            writeln!(out, "{identity}")?;
        } else {
            writeln!(out, "$id      {}", schema::SCHEMA_ID)?;
            writeln!(out, "version  {}", schema::SCHEMA_VERSION)?;
        }
        return Ok(0);
    }
    let policy = match &args.policy {
        None => FieldPolicy::published(),
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            FieldPolicy::from_schema(&text).with_context(|| format!("the field policy {}", path.display()))?
        }
    };
    let input = read_input(args, stdin)?;
    let bodies = bodies_of(&input)?;
    anyhow::ensure!(
        !bodies.is_empty(),
        "no body in the input: give one JSON body per line, or an SQS event with a Records array"
    );
    let verdicts: Vec<(&Body, Verdict)> = bodies
        .iter()
        .map(|body| {
            let verdict = match &body.text {
                Some(text) => schema::judge_with(text, &policy),
                None => Verdict::Invalid(login_etl_core::message::RecordError::MissingBody),
            };
            (body, verdict)
        })
        .collect();
    let invalid = verdicts.iter().filter(|(_, verdict)| !verdict.is_valid()).count();
    if args.json {
        let results: Vec<serde_json::Value> =
            verdicts.iter().map(|(body, verdict)| json_verdict(body, verdict)).collect();
        let report = serde_json::json!({
            "schema": {"$id": schema::SCHEMA_ID, "version": schema::SCHEMA_VERSION},
            "bodies": verdicts.len(),
            "valid": verdicts.len() - invalid,
            "invalid": invalid,
            "results": results,
        });
        writeln!(out, "{report}")?;
    } else {
        for (body, verdict) in &verdicts {
            match verdict {
                Verdict::Valid { unknown_keys } if unknown_keys.is_empty() => writeln!(out, "{}: valid", body.at)?,
                Verdict::Valid { unknown_keys } => writeln!(
                    out,
                    "{}: valid; keys the function does not know (loaded, their values not stored): {}",
                    body.at,
                    unknown_keys.names().join(", ")
                )?,
                Verdict::Invalid(err) => writeln!(out, "{}: invalid {}: {err}", body.at, err.code())?,
            }
        }
        writeln!(
            out,
            "{} bodies: {} valid, {invalid} invalid (schema {})",
            verdicts.len(),
            verdicts.len() - invalid,
            schema::SCHEMA_ID
        )?;
    }
    Ok(if invalid == 0 { 0 } else { EXIT_INVALID_BODIES })
}

fn read_input(args: &ValidateArgs, stdin: impl Read) -> anyhow::Result<String> {
    read_bodies_file(&args.file, stdin)
}

/// The text of `file`, or of `stdin` when `file` is `-`.
pub(crate) fn read_bodies_file(file: &std::path::Path, mut stdin: impl Read) -> anyhow::Result<String> {
    let mut input = String::new();
    match file.to_str() {
        Some("-") => {
            stdin.read_to_string(&mut input).context("reading the bodies from standard input")?;
        }
        _ => {
            input = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        }
    }
    Ok(input)
}

/// The bodies of `input`: an SQS event's records when the whole input is a JSON object with a
/// `Records` array, else each non-blank line.
pub(crate) fn bodies_of(input: &str) -> anyhow::Result<Vec<Body>> {
    let is_event = serde_json::from_str::<serde_json::Value>(input)
        .is_ok_and(|document| document.get("Records").is_some_and(serde_json::Value::is_array));
    if is_event {
        let event = login_etl::parse_event(input)?;
        return Ok(event
            .records
            .into_iter()
            .enumerate()
            .map(|(position, record)| {
                // Shown as the handler logs it: an id may be long or hold control characters.
                let id = record.message_id.as_deref().unwrap_or_default();
                let id: String = id.chars().take(128).collect::<String>().escape_debug().to_string();
                Body { at: format!("Records[{position}] (messageId {id})"), text: record.body }
            })
            .collect());
    }
    Ok(input
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| Body { at: format!("line {}", index + 1), text: Some(line.to_owned()) })
        .collect())
}

fn json_verdict(body: &Body, verdict: &Verdict) -> serde_json::Value {
    match verdict {
        Verdict::Valid { unknown_keys } => {
            serde_json::json!({"at": body.at, "valid": true, "unknown_keys": unknown_keys.names()})
        }
        Verdict::Invalid(err) => {
            serde_json::json!({"at": body.at, "valid": false, "reason": err.code(), "message": err.to_string()})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn run(input: &str, json: bool) -> (u8, String) {
        let args = ValidateArgs { file: PathBuf::from("-"), schema: false, policy: None, json };
        let mut out = Vec::new();
        let code = validate(&args, input.as_bytes(), &mut out).expect("validate");
        (code, String::from_utf8(out).expect("utf-8"))
    }

    #[test]
    fn one_body_per_line_each_with_its_verdict() {
        let input = "{\"user_id\":\"u\"}\n\n{\"ip\":\"1.2.3.4\"}\n{\"user_id\":\"u\",\"os_version\":\"14\"}\n";
        let (code, out) = run(input, false);
        assert_eq!(code, EXIT_INVALID_BODIES);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "line 1: valid");
        assert!(lines[1].starts_with("line 3: invalid missing_user_id: "), "{}", lines[1]);
        assert!(lines[2].starts_with("line 4: valid; keys the function does not know"), "{}", lines[2]);
        assert!(lines[2].ends_with(": os_version"), "{}", lines[2]);
        assert!(lines[3].starts_with("3 bodies: 2 valid, 1 invalid"), "{}", lines[3]);
        assert!(!out.contains("1.2.3.4"), "no value is ever printed");
    }

    #[test]
    fn all_valid_is_status_zero() {
        assert_eq!(run("{\"user_id\":\"a\"}\n{\"user_id\":\"b\",\"ip\":\"::1\"}", false).0, 0);
    }

    #[test]
    fn an_sqs_event_is_read_record_by_record() {
        let event =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/batch.json")).expect("event");
        let (_, out) = run(&event, true);
        let report: serde_json::Value = serde_json::from_str(&out).expect("json");
        let records = serde_json::from_str::<serde_json::Value>(&event).expect("event json")["Records"]
            .as_array()
            .expect("records")
            .len();
        assert_eq!(report["bodies"], records);
        assert!(report["results"][0]["at"].as_str().expect("at").starts_with("Records[0] (messageId "));
        assert_eq!(report["schema"]["$id"], schema::SCHEMA_ID);
    }

    #[test]
    fn an_empty_input_is_an_error_not_a_pass() {
        let args = ValidateArgs { file: PathBuf::from("-"), schema: false, policy: None, json: false };
        assert!(validate(&args, "\n  \n".as_bytes(), &mut Vec::new()).is_err());
    }

    #[test]
    fn schema_prints_the_id_and_version() {
        let args = ValidateArgs { file: PathBuf::from("-"), schema: true, policy: None, json: false };
        let mut out = Vec::new();
        assert_eq!(validate(&args, std::io::empty(), &mut out).expect("schema"), 0);
        let out = String::from_utf8(out).expect("utf-8");
        assert!(out.contains(schema::SCHEMA_ID) && out.contains(schema::SCHEMA_VERSION), "{out}");
    }
}
