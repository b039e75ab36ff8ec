//! The field policy end to end: a producer's new field goes from the queue into the table by
//! one property added to the policy source (the published JSON Schema, as the deployment's
//! `FIELD_POLICY_FILE`), with no code, no migration and no rebuild: the same binary, before and
//! after. docs/schema.md, "The field policy".

use login_etl_core::schema::SCHEMA_JSON;
use login_etl_test_support::*;
use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::*;

/// The published schema with one more property, written where a deployment keeps its policy.
fn policy_file_with(properties: &[(&str, Value)]) -> std::path::PathBuf {
    let mut schema: Value = serde_json::from_str(SCHEMA_JSON).expect("schema");
    for (name, property) in properties {
        schema["properties"][*name] = property.clone();
    }
    let path = std::env::temp_dir().join(format!("{}.schema.json", unique_name("policy")));
    std::fs::write(&path, serde_json::to_string_pretty(&schema).expect("json")).expect("write policy");
    path
}

#[sqlx::test(migrations = "./migrations")]
async fn a_producer_s_new_field_reaches_the_table_by_one_line_of_the_policy(pool: PgPool) {
    let queue = queue_without_redrive("policy").await;
    let body = |id: &str| {
        format!(r#"{{"user_id":"{id}","ip":"203.0.113.7","os_version":"14.2","session_id":"sess-{id}","attempt":3}}"#)
    };
    let drain = |policy: Option<&std::path::Path>| {
        let mut command = cli_command(&pool);
        if let Some(path) = policy {
            command.env("FIELD_POLICY_FILE", path);
        }
        command.args(["drain", "--json", "--wait-seconds", "0", "--queue-url", queue.url()]).output().expect("drain")
    };

    // Before: the published policy does not know os_version; the value is dropped, the name
    // counted (UnknownFieldRecords).
    queue.send(&[body("before")]).await.expect("send");
    let before = json_stdout(&drain(None));
    assert_eq!((before["inserted"].as_u64(), before["unknown_field_records"].as_u64()), (Some(1), Some(1)), "{before}");

    // The change: three properties in the policy source (one line each in the schema's file),
    // a kept one, a masked one and a dropped one. No migration: they land in `extras`.
    let policy = policy_file_with(&[
        (
            "os_version",
            serde_json::json!({"type": ["string", "null"], "maxLength": 16, "$ref": "#/$defs/noNul",
                               "x-treatment": "kept", "x-landing": "extras"}),
        ),
        (
            "session_id",
            serde_json::json!({"type": ["string", "null"], "maxLength": 64, "$ref": "#/$defs/noNul",
                               "x-treatment": "masked-hmac", "x-landing": "extras"}),
        ),
        ("attempt", serde_json::json!({"type": "integer", "x-treatment": "dropped", "x-landing": "none"})),
    ]);
    queue
        .send(&[body("after"), r#"{"user_id":"bad","os_version":"a version far too long"}"#.into()])
        .await
        .expect("send");
    let after = drain(Some(&policy));
    assert_eq!(after.status.code(), Some(3), "the bad one is left failing on a queue without a DLQ: {after:?}");
    let after = json_stdout(&after);
    assert_eq!((after["inserted"].as_u64(), after["unknown_field_records"].as_u64()), (Some(1), Some(0)), "{after}");
    assert_eq!(after["failed_messages_by_reason"]["invalid_os_version"], 1, "{after}");

    let rows: Vec<(String, Option<Value>)> =
        sqlx::query_as("SELECT user_id::text, extras FROM user_logins ORDER BY user_id")
            .fetch_all(&pool)
            .await
            .expect("rows");
    let masked_session = masker().mask_named("session_id", "sess-after");
    assert_eq!(
        rows,
        [
            ("after".to_string(), Some(serde_json::json!({"os_version": "14.2", "session_id": masked_session}))),
            ("before".to_string(), None),
        ]
    );

    // `validate` judges by the same source: a producer's CI checks the new field's rules.
    let mut validate = cli_without_database()
        .args(["validate", "--json", "--policy"])
        .arg(&policy)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("validate");
    use std::io::Write as _;
    let bodies = format!("{}\n{}\n", body("v1"), r#"{"user_id":"v2","os_version":14}"#);
    validate.stdin.take().expect("stdin").write_all(bodies.as_bytes()).expect("write");
    let verdicts = json_stdout(&validate.wait_with_output().expect("wait"));
    assert_eq!((verdicts["valid"].as_u64(), verdicts["invalid"].as_u64()), (Some(1), Some(1)), "{verdicts}");
    assert_eq!(verdicts["results"][1]["reason"], "invalid_os_version", "{verdicts}");

    // A policy the release cannot honour stops the command before any message is taken.
    let wrong = policy_file_with(&[(
        "os_version",
        serde_json::json!({"type": "string", "$ref": "#/$defs/noNul", "x-treatment": "kept", "x-landing": "column"}),
    )]);
    queue.send(&[body("never")]).await.expect("send");
    let line = error_line(&drain(Some(&wrong)));
    assert!(line.contains("FIELD_POLICY_FILE: `os_version`: x-landing column names its column"), "{line}");
    let depth = queue.depth().await.expect("depth");
    assert_eq!(depth.visible + depth.in_flight, 2, "the failing one and the untouched one: {depth:?}");
    std::fs::remove_file(&policy).ok();
    std::fs::remove_file(&wrong).ok();
}

/// The deployment's own migration for the column test: what an owner runs with `psql -f`.
const OS_VERSION_COLUMN_MIGRATION: &str = include_str!("policy/0100_os_version_column.sql");

#[sqlx::test(migrations = "./migrations")]
async fn a_producer_s_new_field_reaches_a_column_of_its_own_by_the_policy_and_a_migration(pool: PgPool) {
    let early_queue = queue_without_redrive("policy-early").await;
    let queue = queue_without_redrive("policy-column").await;
    let body = |id: &str, os: &str| format!(r#"{{"user_id":"{id}","os_version":"{os}","session_id":"sess-{id}"}}"#);
    let drain_from = |policy: &std::path::Path, url: &str| {
        cli_command(&pool)
            .env("FIELD_POLICY_FILE", policy)
            .args(["drain", "--json", "--wait-seconds", "0", "--queue-url", url])
            .output()
            .expect("drain")
    };
    let drain = |policy: &std::path::Path| drain_from(policy, queue.url());
    // The change: os_version kept in a column of its own, session_id masked into another, one
    // property each; the same binary as before.
    let policy = policy_file_with(&[
        (
            "os_version",
            serde_json::json!({"type": ["string", "null"], "maxLength": 16, "$ref": "#/$defs/noNul",
                               "x-treatment": "kept", "x-landing": {"column": "os_version"}}),
        ),
        (
            "session_id",
            serde_json::json!({"type": ["string", "null"], "maxLength": 64, "$ref": "#/$defs/noNul",
                               "x-treatment": "masked-hmac", "x-landing": {"column": "session_pseudonym"}}),
        ),
    ]);

    // The policy ahead of its migration: the batch fails as a whole, naming the missing column,
    // and its messages stay on the queue (nothing is lost, nothing half-stored).
    early_queue.send(&[body("early", "14.1")]).await.expect("send");
    let early = drain_from(&policy, early_queue.url());
    assert_ne!(early.status.code(), Some(0), "{early:?}");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM user_logins").fetch_one(&pool).await.expect("count");
    assert_eq!(stored, 0);
    let stderr = String::from_utf8_lossy(&early.stderr);
    assert!(!stderr.contains("14.1") && !stderr.contains("sess-early"), "no value is logged: {stderr}");
    let depth = early_queue.depth().await.expect("depth");
    assert_eq!(depth.visible + depth.in_flight, 1, "the message is kept: {depth:?}");

    // The migration (the owner's), then the same policy: values land in their columns.
    sqlx::raw_sql(OS_VERSION_COLUMN_MIGRATION).execute(&pool).await.expect("the deployment's migration");
    sqlx::raw_sql("ALTER TABLE public.user_logins ADD COLUMN session_pseudonym varchar(64)")
        .execute(&pool)
        .await
        .expect("the second column");
    queue
        .send(&[
            body("a", "14.2"),
            r#"{"user_id":"b","os_version":null}"#.into(),
            body("bad", "a version far too long"),
        ])
        .await
        .expect("send");
    let after = drain(&policy);
    assert_eq!(after.status.code(), Some(3), "the bad one is left failing on a queue without a DLQ: {after:?}");
    let after = json_stdout(&after);
    assert_eq!(after["inserted"].as_u64(), Some(2), "{after}");
    assert_eq!(after["failed_messages_by_reason"]["invalid_os_version"], 1, "{after}");

    /// user_id, os_version, session_pseudonym, extras.
    type Row = (String, Option<String>, Option<String>, Option<Value>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT user_id::text, os_version::text, session_pseudonym::text, extras FROM user_logins ORDER BY user_id",
    )
    .fetch_all(&pool)
    .await
    .expect("rows");
    assert_eq!(
        rows,
        [
            ("a".to_string(), Some("14.2".to_string()), Some(masker().mask_named("session_id", "sess-a")), None),
            ("b".to_string(), None, None, None),
        ]
    );

    // A policy naming one of the function's own columns is refused before a message is taken.
    let wrong = policy_file_with(&[(
        "os_version",
        serde_json::json!({"type": "string", "$ref": "#/$defs/noNul", "x-treatment": "kept",
                           "x-landing": {"column": "user_id"}}),
    )]);
    let line = error_line(&drain(&wrong));
    assert!(line.contains("`os_version`: column user_id is the function's own"), "{line}");
    std::fs::remove_file(&policy).ok();
    std::fs::remove_file(&wrong).ok();
}

/// A deployment tightens the built-in fields' rules in its policy file: `validate --policy`
/// (the function's own parser, as `FIELD_POLICY_FILE` gives it to the function) obeys it with
/// the same binary, and a policy beyond what the release's columns hold is refused by name.
#[test]
fn a_deployment_tightens_the_built_in_fields_by_its_policy_without_a_rebuild() {
    let write = |schema: &Value| {
        let path = std::env::temp_dir().join(format!("{}.schema.json", unique_name("policy-built-in")));
        std::fs::write(&path, serde_json::to_string_pretty(schema).expect("json")).expect("write policy");
        path
    };
    let validate = |policy: Option<&std::path::Path>| {
        let mut command = cli_without_database();
        command.args(["validate", "--json"]);
        if let Some(path) = policy {
            command.arg("--policy").arg(path);
        }
        let mut child = command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("validate");
        let bodies = [
            r#"{"user_id":"u1","device_id":"d1","locale":"RU","app_version":"nightly-7"}"#,
            r#"{"user_id":"u2","device_id":"d2","locale":"RUS"}"#,
            r#"{"user_id":"u3","locale":"RU"}"#,
            r#"{"user_id":"u4","device_id":"d4","device_type":" "}"#,
        ];
        use std::io::Write as _;
        child.stdin.take().expect("stdin").write_all(bodies.join("\n").as_bytes()).expect("write");
        child.wait_with_output().expect("wait")
    };
    let reasons = |output: &std::process::Output| -> Vec<Value> {
        let verdicts = json_stdout(output);
        verdicts["results"].as_array().expect("results").iter().map(|r| r["reason"].clone()).collect()
    };

    // The published policy: the version grammar refuses the first; the others load.
    assert_eq!(reasons(&validate(None)), [Value::from("invalid_app_version"), Value::Null, Value::Null, Value::Null]);

    // The deployment's policy, the same binary: each tightened rule refuses its body.
    let tightened = write(&tightened_built_in_policy());
    assert_eq!(
        reasons(&validate(Some(&tightened))),
        [Value::Null, "too_long_locale".into(), "missing_device_id".into(), "empty_device_type".into()]
    );

    // A limit beyond the column's length cannot be honoured: refused, naming the field.
    let mut wider: Value = serde_json::from_str(SCHEMA_JSON).expect("schema");
    wider["properties"]["locale"]["maxLength"] = 64.into();
    let wider = write(&wider);
    let line = error_line(&validate(Some(&wider)));
    assert!(line.contains("`locale`: maxLength must be a whole number from 1 to 32"), "{line}");
    std::fs::remove_file(&tightened).ok();
    std::fs::remove_file(&wider).ok();
}
