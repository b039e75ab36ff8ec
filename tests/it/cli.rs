//! `login-etl-cli` as an operator runs it, as a process against real LocalStack SQS and
//! PostgreSQL: signals stop `drain --follow` cleanly, the exit status tells a stuck queue
//! from a drained one, `--json` is machine-readable, and no ANSI codes reach a pipe; and the
//! commands as functions, called in-process; `invoke` touches no queue unless asked and logs
//! one line per failed record. How it refuses and reports errors: [`refusals`].

mod refusals;

use std::process::Command;
use std::time::{Duration, Instant};

use login_etl::Queue;
use login_etl_cli as cli;
use login_etl_core::mask::MaskedField;
use login_etl_test_support::*;

use crate::helpers::*;
use sqlx::PgPool;

/// A queue with no redrive policy, a short visibility timeout, holding `bodies`.
async fn queue_without_dlq(bodies: &[String]) -> Queue {
    let queue = queue_without_redrive("cli").await;
    queue.send(bodies).await.expect("send");
    queue
}

#[sqlx::test(migrations = "./migrations")]
async fn drain_follow_stops_on_sigterm_with_its_summary_and_status_0(pool: PgPool) {
    let bodies: Vec<String> =
        (0..3).map(|i| login_body(&format!("user-{i}"), "10.0.0.1", &format!("device-{i}"))).collect();
    let queue = queue_without_dlq(&bodies).await;
    let child = cli_command(&pool)
        .args(["drain", "--follow", "--json", "--wait-seconds", "1", "--queue-url", queue.url()])
        .spawn()
        .expect("spawn drain");

    let deadline = Instant::now() + Duration::from_secs(30);
    while row_count(&pool).await < 3 {
        assert!(Instant::now() < deadline, "drain --follow did not load the 3 messages");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output()).await.expect("join").expect("wait");

    assert!(output.status.success(), "SIGTERM must end drain --follow with status 0: {output:?}");
    let summary = json_stdout(&output);
    assert_eq!(summary["end"], "stopped", "{summary}");
    assert_eq!(summary["inserted"], 3, "{summary}");
    assert_eq!(summary["deleted"], 3, "{summary}");
    assert_eq!(queue.depth().await.expect("depth").total(), 0);
}

#[sqlx::test(migrations = "./migrations")]
async fn drain_exits_3_when_failing_messages_are_stuck_without_a_redrive_policy(pool: PgPool) {
    let queue = queue_without_dlq(&["{not json".to_string(), login_body("u-1", "10.0.0.2", "d-1")]).await;
    let output = cli_command(&pool)
        .args(["drain", "--json", "--wait-seconds", "0", "--queue-url", queue.url()])
        .output()
        .expect("run drain");

    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let summary = json_stdout(&output);
    assert_eq!(summary["end"], "only_failing_left", "{summary}");
    assert_eq!(summary["failing_left"], 1, "{summary}");
    assert_eq!(summary["inserted"], 1, "{summary}");
    assert_eq!(summary["failed_by_reason"]["malformed_json"].as_u64().map(|n| n >= 1), Some(true), "{summary}");
}

/// Records that carry keys the function does not know are loaded, and `drain` counts them in
/// its summary and its `--json` (`UnknownFieldRecords`), naming the keys, never their values.
#[sqlx::test(migrations = "./migrations")]
async fn drain_counts_records_with_unknown_keys_in_its_summary_and_json(pool: PgPool) {
    let bodies = |run: &str| {
        vec![
            format!(r#"{{"user_id":"{run}-1","os_version":"secret-14.2"}}"#),
            format!(r#"{{"user_id":"{run}-2","os_version":"secret-15","schema_version":2}}"#),
            login_body(&format!("{run}-3"), "10.0.0.1", "d-3"),
            format!(r#"{{"user_id":"","os_version":"secret-16"}}"#),
        ]
    };
    let handler = handler_for(&pool);
    let drain = |queue: &Queue, json: bool| {
        let args = cli::DrainArgs {
            queue_url: queue.url().to_owned(),
            concurrency: 1,
            wait_seconds: 0,
            follow: false,
            sqs_retry_seconds: 10,
            json,
        };
        let (handler, queue) = (&handler, queue.clone());
        async move {
            let (mut out, mut notes) = (Vec::new(), Vec::new());
            cli::drain(&args, handler, &queue, std::future::pending(), &mut out, &mut notes).await.expect("drain");
            String::from_utf8(out).expect("UTF-8")
        }
    };

    let json = drain(&queue_without_dlq(&bodies("json")).await, true).await;
    let summary: serde_json::Value = serde_json::from_str(json.trim()).expect("one JSON object");
    assert_eq!(summary["inserted"], 3, "{summary}");
    assert_eq!(summary["unknown_field_records"], 2, "only loaded records count: {summary}");
    assert_eq!(summary["unknown_keys"], serde_json::json!(["os_version", "schema_version"]), "{summary}");

    let text = drain(&queue_without_dlq(&bodies("text")).await, false).await;
    let line = text.lines().find(|l| l.trim_start().starts_with("unknown keys")).expect("an unknown-keys line");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.get(2), Some(&"2"), "{line}");
    assert!(line.contains("(os_version, schema_version)") && line.contains("UnknownFieldRecords"), "{line}");
    assert!(!format!("{json}{text}").contains("secret-"), "a value in the summary: {json}{text}");
}

#[sqlx::test(migrations = "./migrations")]
async fn json_results_and_no_ansi_codes_on_a_pipe(pool: PgPool) {
    let queue = queue_without_dlq(&[login_body("u-2", "10.0.0.3", "d-2")]).await;

    let depth = cli_command(&pool).args(["depth", "--json", "--queue-url", queue.url()]).output().expect("depth");
    assert!(depth.status.success(), "{depth:?}");
    let depth = json_stdout(&depth);
    assert_eq!(depth["queue_url"], queue.url());
    assert!(depth["visible"].is_u64() && depth["in_flight"].is_u64() && depth["delayed"].is_u64(), "{depth}");

    let sent =
        cli_command(&pool).args(["send", "--json", "--count", "4", "--queue-url", queue.url()]).output().expect("send");
    assert!(sent.status.success(), "{sent:?}");
    assert_eq!(json_stdout(&sent)["sent"], 4);

    // RUST_LOG=info makes the CLI log (colourised on a terminal); on a pipe, never.
    let invoked =
        cli_command(&pool).args(["invoke", "events/batch.json"]).env("RUST_LOG", "info").output().expect("invoke");
    assert!(invoked.status.success(), "{invoked:?}");
    let log = stderr(&invoked);
    assert!(log.contains("masking configured"), "expected an info line: {log}");
    assert!(!log.contains('\u{1b}'), "ANSI escape codes on a pipe: {log:?}");

    let name = unique_name("cli-setup");
    let (db_secret, key_secret) = (format!("{name}/db"), format!("{name}/key"));
    let setup = cli_command(&pool)
        .args(["setup", "--json", "--queue-name", &name, "--db-secret-id", &db_secret])
        .args(["--masking-key-secret-id", &key_secret])
        .output()
        .expect("setup");
    assert!(setup.status.success(), "{setup:?}");
    let setup = json_stdout(&setup);
    assert!(setup["queue_url"].as_str().is_some_and(|u| u.ends_with(&name)), "{setup}");
    assert!(setup["dlq_url"].as_str().is_some_and(|u| u.ends_with(&format!("{name}-dlq"))), "{setup}");
    assert_eq!(setup["db_secret_id"], db_secret.as_str());
    assert_eq!(setup["masking_key_created"], true);
    // A second setup with another MASKING_KEY leaves the stored key as it was: replacing it would
    // silently change every masked value (docs/guarantees.md, "Rotating the masking key").
    let other_key = "ff".repeat(32);
    let again = cli_command(&pool)
        .args(["setup", "--json", "--queue-name", &name, "--db-secret-id", &db_secret])
        .args(["--masking-key-secret-id", &key_secret])
        .env("MASKING_KEY", &other_key)
        .output()
        .expect("setup again");
    assert!(again.status.success(), "{again:?}");
    assert_eq!(json_stdout(&again)["masking_key_created"], false);
    let stored = login_etl::SecretStore::new(&localstack_config().await)
        .secret_text(&key_secret)
        .await
        .expect("the masking key secret");
    assert_eq!(stored.trim(), TEST_KEY_HEX, "setup replaced an existing masking key");

    let report = cli_command(&pool).args(["report", "--json", "--limit", "3"]).output().expect("report");
    assert!(report.status.success(), "{report:?}");
    let report = json_stdout(&report);
    assert_eq!(report["total_rows"], 10, "{report}");
    assert_eq!(report["latest"].as_array().map(Vec::len), Some(3), "{report}");
}

/// `login-etl-cli setup | head -1`: a reader that goes away does not make the CLI panic, and
/// everything was created before anything was printed.
#[sqlx::test(migrations = "./migrations")]
async fn a_closed_pipe_does_not_panic_and_setup_creates_everything_first(pool: PgPool) {
    let queue_name = unique_name("pipe");
    let key_id = unique_name("pipe-key");
    let mut child = cli_command(&pool)
        .args(["setup", "--queue-name", &queue_name, "--masking-key-secret-id", &key_id, "--db-secret-id"])
        .arg(unique_name("pipe-db"))
        .spawn()
        .expect("setup");
    drop(child.stdout.take()); // the reader is gone before the first line
    let output = child.wait_with_output().expect("setup ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(output.status.code(), Some(101), "{stderr}");

    let client = sqs().await;
    for name in [queue_name.clone(), format!("{queue_name}-dlq")] {
        client.get_queue_url().queue_name(&name).send().await.unwrap_or_else(|e| panic!("{name} missing: {e}"));
    }
    let secrets = login_etl::SecretStore::new(&localstack_config().await);
    assert!(secrets.secret_text(&key_id).await.is_ok(), "the masking key secret was created");
}

// The commands as functions, in-process: arguments, dependencies and writers, no process.

#[sqlx::test(migrations = "./migrations")]
async fn report_in_process_shows_masked_values_only(pool: PgPool) {
    let records = vec![sqs_message("r1", &login_body("user-r1", "10.9.8.7", "dev-r1"))];
    handler_for(&pool).handle(&records).await.expect("loaded");
    let mut out = Vec::new();
    let args = cli::ReportArgs { limit: 5, json: true };
    cli::report(&args, &operator_db_for(&pool), &mut out).await.expect("report");
    let report: serde_json::Value = serde_json::from_slice(&out).expect("one JSON object");
    assert_eq!(report["total_rows"], 1);
    assert_eq!(report["latest"][0]["user_id"], "user-r1");
    assert_eq!(report["latest"][0]["masked_ip"], masker().mask(MaskedField::Ip, "10.9.8.7"));
    let text = String::from_utf8_lossy(&out);
    assert!(!text.contains("10.9.8.7") && !text.contains("dev-r1"), "{text}");
}

#[sqlx::test(migrations = "./migrations")]
async fn invoke_in_process_answers_with_the_batch_response_and_writes_metrics(pool: PgPool) {
    let log = login_etl::LogSettings::from_lookup(|_| None);
    let function = login_etl::Function::new(handler_for(&pool), "login-etl", &log);
    let args = cli::InvokeArgs { file: "events/mixed.json".into(), change_visibility: false };
    let (mut out, mut metrics) = (Vec::new(), Vec::new());
    cli::invoke(&args, &function, &mut out, &mut metrics).await.expect("invoke");
    let response: serde_json::Value = serde_json::from_slice(&out).expect("the SQSBatchResponse");
    assert_eq!(response["batchItemFailures"].as_array().map(Vec::len), Some(6));
    let emf: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&metrics).lines().next().expect("an EMF line")).expect("JSON");
    assert_eq!(emf["RecordsFailed"], 6, "{emf}");
    assert_eq!(row_count(&pool).await, 4);
}

#[test]
fn keygen_in_process_writes_the_private_key_and_prints_the_public_one() {
    let dir = fresh_dir("keygen");
    let args = cli::KeygenArgs { private_key_file: dir.join("vault.key") };
    let (mut out, mut notes) = (Vec::new(), Vec::new());
    cli::keygen(&args, &mut out, &mut notes).expect("keygen");
    let private = std::fs::read_to_string(&args.private_key_file).expect("key file");
    let secret = login_etl_core::vault::VaultSecretKey::from_hex(&private).expect("a private key");
    assert_eq!(String::from_utf8_lossy(&out).trim(), secret.public_key().to_hex());
    assert!(String::from_utf8_lossy(&notes).contains("VAULT_PUBLIC_KEY"));
    // An existing key file is never overwritten.
    assert!(cli::keygen(&args, &mut Vec::new(), &mut Vec::new()).is_err());
    assert_eq!(std::fs::read_to_string(&args.private_key_file).expect("key file"), private);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[tokio::test]
async fn depth_in_process_counts_the_queue() {
    let bodies: Vec<String> = (0..2).map(|i| login_body(&format!("d-{i}"), "10.0.0.1", "dev")).collect();
    let queue = queue_without_dlq(&bodies).await;
    let mut out = Vec::new();
    let args = cli::DepthArgs { queue_url: queue.url().to_owned(), json: true };
    cli::depth(&args, &queue, &mut out).await.expect("depth");
    let depth: serde_json::Value = serde_json::from_slice(&out).expect("one JSON object");
    assert_eq!(depth["queue_url"], queue.url());
    assert_eq!(depth["visible"].as_u64().unwrap_or(0) + depth["in_flight"].as_u64().unwrap_or(0), 2, "{depth}");
}

/// In-process `setup` against LocalStack with its own alias and names.
fn setup_args(name: &str, kms_key_alias: &str) -> cli::SetupArgs {
    cli::SetupArgs {
        queue_name: name.to_owned(),
        visibility_timeout: 30,
        max_receive_count: 5,
        db_secret_id: format!("{name}/db"),
        masking_key_secret_id: format!("{name}/key"),
        kms_key_alias: kms_key_alias.to_owned(),
        json: true,
    }
}

async fn setup_clients() -> cli::SetupClients {
    let sdk = localstack_config().await;
    cli::SetupClients {
        sqs: sqs().await,
        kms: aws_sdk_kms::Client::new(&sdk),
        secrets: login_etl::SecretStore::new(&sdk),
    }
}

async fn setup_in_process(args: &cli::SetupArgs, clients: &cli::SetupClients) -> anyhow::Result<serde_json::Value> {
    let config = login_etl::Config::from_lookup(|_| None).expect("an empty configuration is valid");
    let mut out = Vec::new();
    cli::setup(args, &config, clients, &mut out).await?;
    Ok(serde_json::from_slice(&out).expect("one JSON object"))
}

/// The local harness encrypts as the stack does: `setup` makes a KMS key under its alias in
/// LocalStack, both queues name it as their KmsMasterKeyId and the masking-key secret its
/// KmsKeyId, a second `setup` reuses it, and
/// messages still go through. (LocalStack keeps no KmsDataKeyReusePeriodSeconds to check.)
#[tokio::test]
async fn setup_in_process_encrypts_both_queues_with_the_kms_key_of_its_alias() {
    use aws_sdk_sqs::types::QueueAttributeName::KmsMasterKeyId;
    let clients = setup_clients().await;
    let name = unique_name("kms-setup");
    let args = setup_args(&name, &format!("alias/{name}"));

    let first = setup_in_process(&args, &clients).await.expect("setup");
    let key_arn = first["kms_key_arn"].as_str().expect("the key's ARN").to_owned();
    let described = clients.kms.describe_key().key_id(&args.kms_key_alias).send().await.expect("the alias exists");
    let metadata = described.key_metadata.expect("key metadata");
    assert_eq!(metadata.arn.as_deref(), Some(key_arn.as_str()), "the alias names the key setup reported");
    assert_eq!(metadata.key_state, Some(aws_sdk_kms::types::KeyState::Enabled));

    for url in [&first["queue_url"], &first["dlq_url"]] {
        let url = url.as_str().expect("a queue URL");
        let attributes = clients
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(KmsMasterKeyId)
            .send()
            .await
            .expect("attributes")
            .attributes
            .unwrap_or_default();
        assert_eq!(attributes.get(&KmsMasterKeyId), Some(&key_arn), "{url}: {attributes:?}");
    }

    let secrets = aws_sdk_secretsmanager::Client::new(&localstack_config().await);
    let described = secrets.describe_secret().secret_id(&args.masking_key_secret_id).send().await.expect("key secret");
    assert_eq!(described.kms_key_id.as_deref(), Some(key_arn.as_str()), "the masking key is under the same key");

    let again = setup_in_process(&args, &clients).await.expect("setup again");
    assert_eq!(again["kms_key_arn"], key_arn.as_str(), "the alias's key is reused, not replaced");

    let queue = Queue::open(clients.sqs.clone(), first["queue_url"].as_str().expect("URL")).await.expect("open");
    let body = login_body("kms-user", "10.1.2.3", "kms-device");
    queue.send(std::slice::from_ref(&body)).await.expect("send to the encrypted queue");
    let deadline = Instant::now() + Duration::from_secs(10);
    let received = loop {
        let messages = queue.receive(1).await.expect("receive from the encrypted queue");
        if !messages.is_empty() || Instant::now() > deadline {
            break messages;
        }
    };
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].body.as_deref(), Some(body.as_str()));
}

/// An alias KMS would not take, or a key that cannot encrypt, is a clear error, and no queue
/// is created (or encrypted) with it.
#[tokio::test]
async fn setup_refuses_a_bad_alias_or_a_disabled_key_before_creating_queues() {
    let clients = setup_clients().await;
    for alias in ["login-etl-local", "alias/aws/sqs", "alias/"] {
        let name = unique_name("kms-bad-alias");
        let err = setup_in_process(&setup_args(&name, alias), &clients).await.expect_err(alias);
        assert!(err.to_string().contains("must start with `alias/`"), "{alias}: {err}");
        assert!(clients.sqs.get_queue_url().queue_name(&name).send().await.is_err(), "{alias}: {name} was created");
    }

    let name = unique_name("kms-disabled");
    let alias = format!("alias/{name}");
    let first = setup_in_process(&setup_args(&name, &alias), &clients).await.expect("setup");
    clients.kms.disable_key().key_id(first["kms_key_arn"].as_str().expect("ARN")).send().await.expect("disable");
    let other = unique_name("kms-disabled-other");
    let err = setup_in_process(&setup_args(&other, &alias), &clients).await.expect_err("a disabled key");
    assert!(err.to_string().contains("Disabled"), "{err}");
    assert!(clients.sqs.get_queue_url().queue_name(&other).send().await.is_err(), "{other} was created");
}

/// Receives every message of `queue` (it holds `n`), as Lambda would deliver them.
async fn receive_all(queue: &Queue, n: usize) -> Vec<aws_lambda_events::sqs::SqsMessage> {
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while records.len() < n {
        assert!(Instant::now() < deadline, "received {} of {n}", records.len());
        records.extend(queue.receive(1).await.expect("receive").into_iter().map(|m| queue.to_lambda_record(m)));
    }
    records
}

#[sqlx::test(migrations = "./migrations")]
async fn invoke_touches_no_queue_unless_asked_and_prints_metrics_with_its_output(pool: PgPool) {
    // A queue whose messages come back 1 s after a receive, unless their visibility changes.
    let queue = queue_without_redrive("invoke").await;
    // The database refuses the batch (a trigger rejects user `poison`), so every record fails
    // `store_failed`: what the function backs off. (A database that does not answer at all
    // fails `invoke` before it runs: `cli::refusals`.)
    install_poison_trigger(&pool).await;
    let bodies: Vec<String> = (0..2).map(|i| login_body("poison", "10.0.0.1", &format!("d-{i}"))).collect();
    queue.send(&bodies).await.expect("send");
    let dir = fresh_dir("invoke-event");
    let file = dir.join("event.json");
    let invoke = |extra: &[&str]| {
        cli_command(&pool)
            .env("RETRY_BACKOFF_BASE_SECONDS", "300")
            .arg("invoke")
            .args(extra)
            .arg(&file)
            .output()
            .expect("invoke")
    };

    let event = event(receive_all(&queue, 2).await);
    std::fs::write(&file, serde_json::to_string(&event).expect("event JSON")).expect("event file");
    let output = invoke(&[]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(stdout(&output).contains("\"RecordsFailedRetryable\":2"), "metrics on stdout: {}", stdout(&output));
    assert!(!stderr(&output).contains("_aws"), "metrics on stderr: {}", stderr(&output));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let depth = queue.depth().await.expect("depth");
    assert_eq!((depth.visible, depth.in_flight), (2, 0), "invoke changed a visibility: {depth:?}");

    // Asked to, it backs them off as the function does.
    let event = login_etl_test_support::event(receive_all(&queue, 2).await);
    std::fs::write(&file, serde_json::to_string(&event).expect("event JSON")).expect("event file");
    assert_eq!(invoke(&["--change-visibility"]).status.code(), Some(1));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let depth = queue.depth().await.expect("depth");
    assert_eq!((depth.visible, depth.in_flight), (0, 2), "--change-visibility hid nothing: {depth:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[sqlx::test(migrations = "./migrations")]
async fn every_failed_record_leaves_one_line_with_its_id_and_reason_and_at_most_ten(pool: PgPool) {
    let mut records: Vec<_> =
        (0..12).map(|i| sqs_message(&format!("bad-{i:02}"), &format!("{{\"user_id\": \"secret-{i}\""))).collect();
    records.push(sqs_message("good", &login_body("fine", "10.0.0.9", "d-fine")));
    let dir = fresh_dir("failures");
    let file = dir.join("event.json");
    std::fs::write(&file, serde_json::to_string(&event(records)).expect("JSON")).expect("file");

    let output = cli_command(&pool).env("RUST_LOG", "info").arg("invoke").arg(&file).output().expect("invoke");
    assert!(output.status.success(), "{output:?}");
    let log = stderr(&output);
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("record failed")).collect();
    assert_eq!(lines.len(), 10, "{log}");
    for (i, line) in lines.iter().enumerate() {
        assert!(line.contains(&format!("message_id=bad-{i:02}")), "{line}");
        assert!(line.contains("reason=malformed_json") && line.contains("receive_count=1"), "{line}");
        assert!(line.contains("backs_off=false") && line.contains("retryable=false"), "{line}");
    }
    assert!(log.contains("2 more records failed than are listed"), "{log}");
    assert!(!log.contains("secret-"), "a value in the log: {log}");
    assert_eq!(row_count(&pool).await, 1);
    std::fs::remove_dir_all(&dir).ok();
}

/// `send --body` and `send --file` send the user's own bodies as they are (a malformed one too:
/// how a DLQ is tried out), counted by the function's own verdict; `drain` then loads the
/// valid ones. Sample options do not mix with them.
#[sqlx::test(migrations = "./migrations")]
async fn send_takes_a_body_or_a_file_of_the_user_s_own(pool: PgPool) {
    let queue = queue_without_redrive("own-bodies").await;
    let body = login_body("own-1", "10.0.0.1", "d-1");
    let sent = cli_command(&pool).args(["send", "--json", "--body", &body, "--queue-url", queue.url()]).output();
    let sent = json_stdout(&sent.expect("send --body"));
    assert_eq!((sent["sent"].as_u64(), sent["malformed"].as_u64()), (Some(1), Some(0)), "{sent}");

    let file = std::env::temp_dir().join(format!("{}.jsonl", unique_name("bodies")));
    let lines =
        [login_body("own-2", "10.0.0.2", "d-2"), String::new(), "{not json".into(), login_body("own-3", "::1", "d-3")];
    std::fs::write(&file, lines.join("\n")).expect("write bodies");
    let sent = cli_command(&pool)
        .args(["send", "--json", "--file"])
        .arg(&file)
        .args(["--queue-url", queue.url()])
        .output()
        .expect("send --file");
    std::fs::remove_file(&file).expect("remove");
    let sent = json_stdout(&sent);
    assert_eq!((sent["sent"].as_u64(), sent["malformed"].as_u64()), (Some(3), Some(1)), "{sent}");
    assert_eq!(queue.depth().await.expect("depth").visible, 4);

    // Exit status 3: the malformed one is left failing on a queue without a DLQ.
    let drained = cli_command(&pool)
        .args(["drain", "--json", "--wait-seconds", "0", "--queue-url", queue.url()])
        .output()
        .expect("drain");
    assert_eq!(json_stdout(&drained)["inserted"], 3, "{drained:?}");
    let users: Vec<String> =
        sqlx::query_scalar("SELECT user_id::text FROM user_logins ORDER BY 1").fetch_all(&pool).await.expect("rows");
    assert_eq!(users, ["own-1", "own-2", "own-3"]);

    for refused in [
        &["send", "--queue-url", queue.url()][..],
        &["send", "--count", "1", "--body", "{}", "--queue-url", queue.url()],
        &["send", "--body", "{}", "--bad-ratio", "0.5", "--queue-url", queue.url()],
    ] {
        let output = cli_command(&pool).args(refused).output().expect("send");
        assert_eq!(output.status.code(), Some(2), "{refused:?} is a usage error: {output:?}");
    }
}
