//! No raw PII at any log level: the function and `drain` run at `RUST_LOG=trace`, and not one
//! `ip` or `device_id` of what they handled appears in what they print.

use std::process::Command;
use std::time::Duration;

use login_etl_test_support::runtime_api::{Answer, Bootstrap, RuntimeApi};
use login_etl_test_support::*;
use sqlx::PgPool;

/// The raw values of events/batch.json, which both runs below handle.
fn raw_values() -> Vec<String> {
    let event = load_event("events/batch.json");
    let mut values = Vec::new();
    for record in &event.records {
        let body: serde_json::Value = serde_json::from_str(record.body.as_deref().expect("body")).expect("json");
        for field in ["ip", "device_id"] {
            if let Some(value) = body[field].as_str() {
                values.push(value.to_owned());
            }
        }
    }
    assert!(values.len() >= 10, "the event has values to look for");
    values
}

fn database_url(pool: &PgPool) -> String {
    let options = pool.connect_options();
    format!(
        "postgres://{}@{}:{}/{}?sslmode=disable",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("postgres")
    )
}

fn leaks(output: &str) -> Vec<String> {
    raw_values().into_iter().filter(|value| output.contains(value.as_str())).collect()
}

#[sqlx::test(migrations = "./migrations")]
async fn the_function_logs_no_raw_pii_at_trace(pool: PgPool) {
    let api = RuntimeApi::start().await.expect("runtime API");
    let env = [
        ("DATABASE_URL", database_url(&pool)),
        ("MASKING_KEY", TEST_KEY_HEX.to_owned()),
        ("RUST_LOG", "trace".to_owned()),
        ("RETRY_BACKOFF_BASE_SECONDS", "0".to_owned()),
    ];
    let mut function = Bootstrap::spawn(env!("CARGO_BIN_EXE_login-etl"), &api, &env).expect("bootstrap");
    let event = std::fs::read("events/batch.json").expect("events/batch.json");
    let request_id = api.enqueue(&event);
    let answered = api.answer(&request_id, Duration::from_secs(30)).await;
    let (_, answer) = answered.unwrap_or_else(|| panic!("no answer; stderr: {:?}", function.stderr.all()));
    assert!(matches!(answer, Answer::Response(_)), "the invocation answered: {answer:?}");
    assert_eq!(row_count(&pool).await, 10);
    function.terminate();
    function.wait_exit(Duration::from_secs(5)).await;
    let lines = function.stdout.all().join("\n") + &function.stderr.all().join("\n");
    // RUST_LOG=trace took effect: the libraries' DEBUG lines are there (their TRACE is capped).
    assert!(lines.contains("DEBUG"), "verbose logging was on");
    assert_eq!(leaks(&lines), Vec::<String>::new(), "raw values in the function's trace output");
}

#[sqlx::test(migrations = "./migrations")]
async fn drain_logs_no_raw_pii_at_trace(pool: PgPool) {
    let client = sqs().await;
    let url = client.create_queue().queue_name(unique_name("pii")).send().await.expect("queue").queue_url.expect("url");
    let queue = login_etl::Queue::open(client.clone(), &url).await.expect("open");
    let bodies: Vec<String> =
        load_event("events/batch.json").records.into_iter().map(|r| r.body.expect("body")).collect();
    queue.send(&bodies).await.expect("send");

    let output = Command::new(login_etl_test_support::cli_binary())
        .args(["drain", "--queue-url", &url])
        .env("DATABASE_URL", database_url(&pool))
        .env("MASKING_KEY", TEST_KEY_HEX)
        .env("RUST_LOG", "trace")
        .env("AWS_ENDPOINT_URL", localstack_endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .expect("drain");
    let printed = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{}", &printed[printed.len().saturating_sub(2000)..]);
    assert_eq!(row_count(&pool).await, 10);
    assert!(printed.contains("DEBUG"), "verbose logging was on");
    assert_eq!(leaks(&printed), Vec::<String>::new(), "raw values in drain's trace output");
}
