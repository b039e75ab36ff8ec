//! `login-etl-cli` refusing what would lose or misplace data (changing nothing when it
//! refuses), and its errors as sentences: the cause once, then what to set or run.

use std::time::{Duration, Instant};

use login_etl::{Queue, QueueError};
use login_etl_test_support::*;
use sqlx::PgPool;

use crate::helpers::*;

#[tokio::test]
async fn redrive_refuses_queues_that_are_not_source_and_dead_letter_queue_and_moves_nothing() {
    let client = sqs().await;
    let (url, dlq_url) =
        login_etl::ensure_queue_with_dlq(&client, &unique_name("swap"), 30, 5, None).await.expect("queue and DLQ");
    let queue = Queue::open(client.clone(), &url).await.expect("queue");
    let dlq = Queue::open(client.clone(), &dlq_url).await.expect("dlq");
    let bodies: Vec<String> = (0..3).map(|i| login_body(&format!("live-{i}"), "10.0.0.1", "d")).collect();
    queue.send(&bodies).await.expect("send");

    // Swapped: the live queue given as the DLQ.
    let swapped = login_etl::redrive(&queue, &dlq).await.expect_err("swapped queues");
    assert!(matches!(swapped, QueueError::NotTheDeadLetterQueue { .. }), "{swapped:?}");
    // A queue that is nobody's DLQ, into a queue whose DLQ is another.
    let stranger = queue_without_redrive("stranger").await;
    let wrong = login_etl::redrive(&stranger, &queue).await.expect_err("not its DLQ");
    assert!(matches!(wrong, QueueError::NotTheDeadLetterQueue { .. }), "{wrong:?}");

    let output =
        cli_without_database().args(["redrive", "--dlq-url", &url, "--queue-url", &dlq_url]).output().expect("redrive");
    let line = error_line(&output);
    assert!(line.contains("refusing to redrive") && line.contains("nothing was moved"), "{line}");
    assert!(line.contains("it has no redrive policy"), "{line}");

    // Nothing moved: the live messages are where they were, all visible.
    let (live, dead) = (queue.depth().await.expect("depth"), dlq.depth().await.expect("depth"));
    assert_eq!((live.visible, live.in_flight, dead.total()), (3, 0, 0), "{live:?} {dead:?}");
}

#[sqlx::test(migrations = "./migrations")]
async fn out_of_range_arguments_are_refused_and_change_nothing(pool: PgPool) {
    let queue = queue_without_redrive("ranges").await;
    queue.send(&[login_body("stays", "10.0.0.1", "d")]).await.expect("send");
    let loaded = handler_for(&pool).handle(&[sqs_message("m-1", &login_body("kept", "10.0.0.2", "d"))]).await;
    assert_eq!(loaded.expect("loaded").records.succeeded(), 1);
    let partitions = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pg_inherits WHERE inhparent = 'user_logins'::regclass")
            .fetch_one(&pool)
            .await
            .expect("partitions")
    };
    let partitions_before = partitions().await;

    let url = queue.url();
    let long_id = "u".repeat(129);
    let refused: &[&[&str]] = &[
        &["send", "--count", "5", "--bad-ratio", "2", "--queue-url", url],
        &["send", "--count", "5", "--bad-ratio=-0.1", "--queue-url", url],
        &["send", "--count", "0", "--queue-url", url],
        &["drain", "--concurrency", "0", "--queue-url", url],
        &["drain", "--sqs-retry-seconds", "100000", "--queue-url", url],
        &["erase", "--user-id", ""],
        &["erase", "--user-id", "   "],
        &["erase", "--user-id", &long_id],
        &["recover", "--user-id", "", "--private-key-file", "/nonexistent"],
        &["retention", "--keep-months", "0"],
        &["retention", "--keep-months", "1201"],
        &["partitions", "--months-ahead", "500"],
        &["report", "--limit=-1"],
        &["report", "--limit", "1001"],
        &["setup", "--max-receive-count", "0"],
        &["setup", "--visibility-timeout", "43201"],
    ];
    for args in refused {
        let output = cli_command(&pool).args(*args).output().expect("run");
        assert_eq!(output.status.code(), Some(2), "{args:?} was not refused: {output:?}");
        assert!(stderr(&output).contains("invalid value"), "{args:?}: {}", stderr(&output));
    }

    // Nothing changed: the row, the message, the partitions.
    assert_eq!(row_count(&pool).await, 1);
    let depth = queue.depth().await.expect("depth");
    assert_eq!((depth.visible, depth.in_flight), (1, 0), "{depth:?}");
    assert_eq!(partitions().await, partitions_before);

    // The help text states the range that is enforced.
    for (command, range) in
        [("send", "0.0 to 1.0"), ("retention", "1–1200"), ("partitions", "0–60"), ("drain", "1–256")]
    {
        let help = cli_command(&pool).args([command, "--help"]).output().expect("help");
        assert!(stdout(&help).contains(range), "{command} --help does not say {range}: {}", stdout(&help));
    }
}

#[tokio::test]
async fn aws_errors_give_the_code_and_message_or_what_to_set() {
    // A queue that does not exist: the service's code and message, once.
    let missing = format!("{}/000000000000/{}", localstack_endpoint(), unique_name("missing"));
    let output = cli_without_database().args(["depth", "--queue-url", &missing]).output().expect("depth");
    let line = error_line(&output);
    assert!(line.contains("The specified queue does not exist"), "{line}");
    assert_eq!(line.matches("NonExistentQueue").count(), 1, "{line}");
    assert!(line.contains("`login-etl-cli setup`"), "the fix is named: {line}");
    assert!(line.len() < 400, "{} characters: {line}", line.len());

    // No endpoint answers: what to check.
    let nowhere = format!("http://127.0.0.1:{}", closed_port());
    let output = cli_without_database()
        .env("AWS_ENDPOINT_URL", &nowhere)
        .args(["depth", "--queue-url", &format!("{nowhere}/000000000000/q")])
        .output()
        .expect("depth");
    let line = error_line(&output);
    assert!(line.contains("Connection refused") && line.contains("check AWS_ENDPOINT_URL"), "{line}");

    // No credentials anywhere: what to set.
    let home = std::env::temp_dir().join(unique_name("no-aws-home"));
    let output = cli_without_database()
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("HOME", &home)
        .args(["depth", "--queue-url", &missing])
        .output()
        .expect("depth");
    let line = error_line(&output);
    assert!(line.contains("no AWS credentials") && line.contains("set AWS_ACCESS_KEY_ID"), "{line}");
}

#[tokio::test]
async fn a_refused_database_connection_fails_at_once_with_its_cause() {
    let started = Instant::now();
    let output = cli_without_database().args(["report"]).output().expect("report");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    let line = error_line(&output);
    assert_eq!(line.matches("Connection refused").count(), 1, "{line}");
    assert!(line.contains("check the host and port of DATABASE_URL"), "{line}");
    assert!(!line.contains("pool timed out"), "{line}");
}

#[sqlx::test(migrations = "./migrations")]
async fn an_unknown_role_is_named_once_with_what_to_check(pool: PgPool) {
    let role = unique_name("nobody").replace('-', "_");
    let options = pool.connect_options().as_ref().clone().username(&role);
    let output = cli_process(login_etl_test_support::cli_binary(), &options).args(["report"]).output().expect("report");
    let line = error_line(&output);
    assert_eq!(line.matches(&format!("role \"{role}\" does not exist")).count(), 1, "{line}");
    assert!(line.contains("Check the user and password"), "{line}");
}

#[sqlx::test(migrations = false)]
async fn an_unmigrated_database_says_to_run_migrate(pool: PgPool) {
    let line = error_line(&cli_command(&pool).args(["report"]).output().expect("report"));
    assert!(line.contains("relation \"user_logins\" does not exist"), "{line}");
    assert!(line.contains("run `login-etl-cli migrate`"), "{line}");
}

#[sqlx::test(migrations = "./migrations")]
async fn a_missing_privilege_names_the_role_to_grant(pool: PgPool) {
    let role = unique_name("noprivilege").replace('-', "_");
    sqlx::query(&format!("CREATE ROLE {role} LOGIN")).execute(&pool).await.expect("role");
    let options = pool.connect_options().as_ref().clone().username(&role);
    let report = cli_process(login_etl_test_support::cli_binary(), &options).args(["report"]).output().expect("report");
    let erase = cli_process(login_etl_test_support::cli_binary(), &options)
        .args(["erase", "--user-id", "u-1"])
        .output()
        .expect("erase");
    sqlx::query(&format!("DROP ROLE {role}")).execute(&pool).await.expect("drop role");

    let line = error_line(&report);
    assert!(line.contains("permission denied for table user_logins"), "{line}");
    assert!(line.contains("grant the user the login_etl_recovery role"), "{line}");
    let line = error_line(&erase);
    assert!(line.contains("login_etl_eraser"), "{line}");
}

#[sqlx::test(migrations = "./migrations")]
async fn an_untrusted_server_certificate_points_to_db_ca_bundle(pool: PgPool) {
    // The local server's certificate is self-signed: verify-full cannot trust it.
    let url =
        format!("{}?sslmode=verify-full", database_url(&pool.connect_options()).replace("127.0.0.1", "localhost"));
    let line = error_line(&cli_command(&pool).env("DATABASE_URL", url).args(["report"]).output().expect("report"));
    assert!(line.contains("UnknownIssuer") || line.contains("certificate"), "{line}");
    assert!(line.contains("DB_CA_BUNDLE") && line.contains(login_etl_cli::RDS_CA_BUNDLE_URL), "{line}");

    // The function's own path (tokio-postgres, DB_SSL_MODE) logs the same fix with the failure.
    let url = database_url(&pool.connect_options()).replace("127.0.0.1", "localhost");
    let invoked = cli_command(&pool)
        .env("DATABASE_URL", url)
        .env("DB_SSL_MODE", "verify-full")
        .args(["invoke", "events/batch.json"])
        .output()
        .expect("invoke");
    assert_eq!(invoked.status.code(), Some(1), "{invoked:?}");
    let log = stderr(&invoked);
    assert!(log.contains("UnknownIssuer") && log.contains("set DB_CA_BUNDLE"), "{log}");
    assert_eq!(row_count(&pool).await, 0);

    // The fix works: with the server's certificate as DB_CA_BUNDLE both paths verify and connect
    // (checked where that file is readable, i.e. the server runs on this host, not in Docker).
    let cert: String = sqlx::query_scalar("SHOW ssl_cert_file").fetch_one(&pool).await.expect("ssl_cert_file");
    if std::fs::metadata(&cert).is_err() {
        eprintln!("the server's certificate {cert} is not on this host: DB_CA_BUNDLE not exercised");
        return;
    }
    let localhost = database_url(&pool.connect_options()).replace("127.0.0.1", "localhost");
    let report = cli_command(&pool)
        .env("DATABASE_URL", format!("{localhost}?sslmode=verify-full"))
        .env("DB_CA_BUNDLE", &cert)
        .args(["report", "--json"])
        .output()
        .expect("report");
    assert!(report.status.success(), "{report:?}");
    let invoked = cli_command(&pool)
        .env("DATABASE_URL", &localhost)
        .env("DB_SSL_MODE", "verify-full")
        .env("DB_CA_BUNDLE", &cert)
        .args(["invoke", "events/batch.json"])
        .output()
        .expect("invoke");
    assert!(invoked.status.success(), "{invoked:?}");
    assert_eq!(row_count(&pool).await, 10);
}

#[sqlx::test(migrations = "./migrations")]
async fn the_operator_commands_honour_db_ssl_mode_and_refuse_db_iam_auth(pool: PgPool) {
    // DB_SSL_MODE=verify-full with a URL that names no sslmode: the operator's session is
    // verified (and so refused by the local self-signed certificate), as the function's is.
    let localhost = database_url(&pool.connect_options()).replace("127.0.0.1", "localhost");
    let line = error_line(
        &cli_command(&pool)
            .env("DATABASE_URL", &localhost)
            .env("DB_SSL_MODE", "verify-full")
            .args(["report"])
            .output()
            .expect("report"),
    );
    assert!(line.contains("DB_CA_BUNDLE"), "{line}");
    let report = cli_command(&pool)
        .env("DATABASE_URL", &localhost)
        .env("DB_SSL_MODE", "disable")
        .args(["report", "--json"])
        .output();
    assert!(report.expect("report").status.success());

    // DB_IAM_AUTH is the function's: an operator command says so instead of ignoring it.
    let line = error_line(&cli_command(&pool).env("DB_IAM_AUTH", "true").args(["report"]).output().expect("report"));
    assert!(line.contains("DB_IAM_AUTH") && line.contains("unset DB_IAM_AUTH"), "{line}");
}

#[sqlx::test(migrations = "./migrations")]
async fn a_file_that_is_not_an_event_names_the_path_and_the_problem(pool: PgPool) {
    let dir = std::env::temp_dir().join(unique_name("not-an-event"));
    std::fs::create_dir_all(&dir).expect("dir");
    let wrong_type = dir.join("wrong-type.json");
    std::fs::write(&wrong_type, r#"{"Records":[{"messageId":5}]}"#).expect("file");
    let not_json = dir.join("not-json.json");
    std::fs::write(&not_json, "not json").expect("file");

    let line = error_line(&cli_command(&pool).arg("invoke").arg(&wrong_type).output().expect("invoke"));
    assert!(line.contains("at `Records[0].messageId`") && line.contains("invalid type: integer `5`"), "{line}");
    let line = error_line(&cli_command(&pool).arg("invoke").arg(&not_json).output().expect("invoke"));
    assert!(line.contains("is not an SQS event") && line.contains("line 1 column"), "{line}");
    std::fs::remove_dir_all(&dir).ok();
}

/// The SDK panics on an endpoint variable set to nothing ("URL was unset", exit 101): every
/// command that may call AWS refuses it first, in one line naming it.
#[tokio::test]
async fn a_blank_endpoint_variable_is_one_line_naming_it_not_a_panic() {
    for variable in login_etl::ENDPOINT_VARIABLES {
        let output = cli_without_database()
            .env(variable, "")
            .args(["depth", "--queue-url", &format!("{}/000000000000/q", localstack_endpoint())])
            .output()
            .expect("depth");
        let line = error_line(&output);
        assert!(line.starts_with(&format!("error: {variable} is set but empty")), "{line}");
        assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
        assert_eq!(stderr(&output).lines().count(), 1, "{}", stderr(&output));
    }
    // `validate` reads no environment and calls nothing: a blank endpoint does not stop it.
    let mut validate = cli_without_database()
        .env("AWS_ENDPOINT_URL", " ")
        .args(["validate", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("validate");
    use std::io::Write as _;
    validate.stdin.take().expect("stdin").write_all(b"{\"user_id\":\"u\"}\n").expect("write");
    assert!(validate.wait_with_output().expect("wait").status.success());
}

/// `drain` and `invoke` check the database before they take a message: with it away they fail
/// at once with its cause, and every message stays on the queue, visible, not failed as
/// `store_failed` and hidden for a backoff.
#[tokio::test]
async fn drain_and_invoke_check_the_database_before_taking_a_message() {
    let queue = queue_without_redrive("db-first").await;
    let bodies: Vec<String> = (0..3).map(|i| login_body(&format!("u-{i}"), "10.0.0.1", "d")).collect();
    queue.send(&bodies).await.expect("send");

    let started = Instant::now();
    let output = cli_without_database()
        .args(["drain", "--wait-seconds", "0", "--queue-url", queue.url()])
        .output()
        .expect("drain");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    let line = error_line(&output);
    assert!(line.contains("Connection refused") && line.contains("check the host and port of DATABASE_URL"), "{line}");
    assert!(stdout(&output).is_empty(), "no drain summary: {}", stdout(&output));
    let depth = queue.depth().await.expect("depth");
    assert_eq!((depth.visible, depth.in_flight), (3, 0), "no message was taken: {depth:?}");

    let output = cli_without_database().args(["invoke", "events/batch.json"]).output().expect("invoke");
    let line = error_line(&output);
    assert!(line.contains("Connection refused") && line.contains("check the host and port of DATABASE_URL"), "{line}");
    assert!(stdout(&output).is_empty(), "no batch response, no metrics: {}", stdout(&output));
}
