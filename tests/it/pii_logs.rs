//! No raw PII at any log level: the function and `drain` run at `RUST_LOG=trace`, and not one
//! `ip` or `device_id` of what they handled appears in what they print.

use std::process::Command;

use login_etl::testing::*;
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
    let dir = std::env::temp_dir().join(unique_name("pii-function"));
    std::fs::create_dir_all(&dir).expect("dir");
    let env_file = dir.join("env.json");
    let env = serde_json::json!({
        "DATABASE_URL": database_url(&pool),
        "MASKING_KEY": TEST_KEY_HEX,
        "RUST_LOG": "trace",
        "RETRY_BACKOFF_BASE_SECONDS": "0",
        "AWS_LAMBDA_FUNCTION_NAME": "login-etl",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    });
    std::fs::write(&env_file, env.to_string()).expect("env");
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let output = Command::new("python3")
        .arg("scripts/runtime_api_harness.py")
        .arg(env!("CARGO_BIN_EXE_login-etl"))
        .arg(&env_file)
        .arg("events/batch.json")
        .arg(port.to_string())
        .output()
        .expect("harness");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("harness report");
    assert!(report["response"].is_object(), "the invocation answered: {report}");
    assert_eq!(row_count(&pool).await, 10);
    let lines = report["initLines"].to_string() + &report["invocationLines"].to_string();
    // RUST_LOG=trace took effect: the libraries' DEBUG lines are there (their TRACE is capped).
    assert!(lines.contains("DEBUG"), "verbose logging was on");
    assert_eq!(leaks(&lines), Vec::<String>::new(), "raw values in the function's trace output");
    std::fs::remove_dir_all(&dir).ok();
}

#[sqlx::test(migrations = "./migrations")]
async fn drain_logs_no_raw_pii_at_trace(pool: PgPool) {
    let client = sqs().await;
    let url = client.create_queue().queue_name(unique_name("pii")).send().await.expect("queue").queue_url.expect("url");
    let queue = login_etl::sqs::Queue::open(client.clone(), &url).await.expect("open");
    let bodies: Vec<String> =
        load_event("events/batch.json").records.into_iter().map(|r| r.body.expect("body")).collect();
    queue.send(&bodies).await.expect("send");

    let output = Command::new(env!("CARGO_BIN_EXE_login-etl-cli"))
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
