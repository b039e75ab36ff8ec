//! Cold-start init time of the release `login-etl` bootstrap: from process spawn to its first
//! `GET /runtime/invocation/next` (ready for the first event), against a minimal stand-in for
//! the Lambda Runtime API on loopback. Configuration is read as in AWS: the database and the
//! masking key from Secrets Manager (LocalStack), so the secret reads are inside the figure.
//! The pool connects lazily, so the database is not.
//!
//! `make bench` (needs `make up`), or `cargo bench --bench cold_start`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const RUNS: usize = 21;

async fn put_secret(client: &aws_sdk_secretsmanager::Client, id: &str, value: &str) -> anyhow::Result<()> {
    if client.describe_secret().secret_id(id).send().await.is_ok() {
        client.put_secret_value().secret_id(id).secret_string(value).send().await?;
    } else {
        client.create_secret().name(id).secret_string(value).send().await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let endpoint = login_etl_test_support::localstack_endpoint();
    let sdk = login_etl_test_support::localstack_config().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let db = r#"{"username":"postgres","password":"","host":"127.0.0.1","port":5432,"dbname":"postgres"}"#;
    put_secret(&secrets, "login-etl-bench/db", db).await?;
    put_secret(&secrets, "login-etl-bench/masking-key", &"5a".repeat(32)).await?;

    let binary = env!("CARGO_BIN_EXE_login-etl");
    let size = std::fs::metadata(binary)?.len();
    println!("cold start of {binary} ({:.1} MiB), {RUNS} runs", size as f64 / 1048576.0);

    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let api = listener.local_addr()?.to_string();
        let started = Instant::now();
        let mut child = Command::new(binary)
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", &api)
            .env("AWS_LAMBDA_FUNCTION_NAME", "login-etl")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("DB_SECRET_ID", "login-etl-bench/db")
            .env("MASKING_KEY_SECRET_ID", "login-etl-bench/masking-key")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let ready = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let (mut socket, _) = listener.accept().await?;
                let mut request = [0u8; 256];
                let n = socket.read(&mut request).await?;
                let elapsed = started.elapsed();
                let line = String::from_utf8_lossy(&request[..n]).lines().next().unwrap_or_default().to_string();
                if line.contains("/runtime/invocation/next") {
                    // No answer: the process is killed while it waits for its first event.
                    return Ok::<_, std::io::Error>((elapsed, line));
                }
                // Anything before it (the graceful-shutdown extension's registration) is
                // refused, as where no Extensions API answers; the function goes on.
                socket.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await?;
            }
        })
        .await;
        child.kill().ok();
        child.wait().ok();
        let (elapsed, line) = ready??;
        anyhow::ensure!(line.contains("/runtime/invocation/next"), "unexpected first request: {line}");
        times.push(elapsed);
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "init (spawn -> first /invocation/next): median {:.1} ms  min {:.1} ms  max {:.1} ms",
        ms(times[RUNS / 2]),
        ms(times[0]),
        ms(times[RUNS - 1])
    );
    Ok(())
}
