//! Drain throughput through LocalStack SQS (issue: the local harness): 10,000 messages drained
//! by the real handler into PostgreSQL with K=1 and K=4 pollers, next to a receive-and-delete
//! loop that does no work on the same LocalStack (the harness's own limit), in one run.
//!
//! `make bench` (needs `make up`), or `cargo bench --bench drain`. Uses AWS_ENDPOINT_URL
//! (default http://127.0.0.1:4566) and DATABASE_URL's server (database login_etl_bench_drain).

use login_etl_test_support::bench as common;

use std::time::Instant;

use login_etl::{DrainOptions, Handler, Loader, PoolSettings, Queue};
use login_etl_core::mask::{Masker, MaskingKey};
use login_etl_core::sample;

const MESSAGES: usize = 10_000;
const BENCH_DB: &str = "login_etl_bench_drain";

/// A new queue holding `MESSAGES` valid login messages.
async fn filled_queue(client: &aws_sdk_sqs::Client, name: &str, bodies: &[String]) -> anyhow::Result<Queue> {
    let url = client.create_queue().queue_name(name).send().await?.queue_url.unwrap_or_default();
    let queue = Queue::open(client.clone(), &url).await?;
    let senders = bodies.chunks(bodies.len().div_ceil(8)).map(|chunk| queue.send(chunk));
    futures::future::try_join_all(senders).await?;
    Ok(queue)
}

/// Receive and delete with no processing: what LocalStack itself allows.
async fn receive_delete_loop(queue: &Queue, concurrency: usize) -> anyhow::Result<usize> {
    let poller = || async {
        let mut handled = 0;
        loop {
            let messages = queue.receive(0).await?;
            if messages.is_empty() {
                if queue.depth().await?.total() == 0 {
                    return Ok::<usize, anyhow::Error>(handled);
                }
                continue;
            }
            let receipts: Vec<_> =
                messages.into_iter().filter_map(|m| Some((m.message_id?, m.receipt_handle?))).collect();
            handled += queue.delete(&receipts).await?;
        }
    };
    let counts = futures::future::try_join_all((0..concurrency).map(|_| poller())).await?;
    Ok(counts.into_iter().sum())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (database, mut admin_conn) = common::fresh_database(BENCH_DB).await?;
    let settings = PoolSettings { max_connections: 4, ..PoolSettings::default() };
    common::migrate(&database).await?;
    let loader = Loader::new(common::loader_target(&database, None), &settings, None)?;
    let handler = Handler::new(Masker::hmac(&MaskingKey::from_hex(&"5a".repeat(32))?), loader);

    let client = aws_sdk_sqs::Client::new(&login_etl_test_support::localstack_config().await);
    let bodies: Vec<String> = sample::sample_messages(MESSAGES, 0.0, 99).into_iter().map(|m| m.body).collect();
    let run_id = std::process::id();
    println!("drain throughput, {MESSAGES} valid messages per run, LocalStack SQS + local PostgreSQL");

    for concurrency in [1usize, 4] {
        let queue = filled_queue(&client, &format!("bench-baseline-k{concurrency}-{run_id}"), &bodies).await?;
        let started = Instant::now();
        let handled = receive_delete_loop(&queue, concurrency).await?;
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "receive+delete, no work  K={concurrency}  {handled:>6} msgs  {seconds:>6.2} s  {:>7.0} msg/s",
            handled as f64 / seconds
        );
        client.delete_queue().queue_url(queue.url()).send().await?;
    }
    for concurrency in [1usize, 4] {
        let queue = filled_queue(&client, &format!("bench-drain-k{concurrency}-{run_id}"), &bodies).await?;
        let options = DrainOptions { concurrency, wait_seconds: 0, follow: false, ..DrainOptions::default() };
        let report = login_etl::drain(&queue, &handler, &options).await?;
        assert_eq!(report.inserted as usize, MESSAGES, "every message loaded");
        println!(
            "drain (handler + PG)     K={concurrency}  {:>6} msgs  {:>6.2} s  {:>7.0} msg/s",
            report.received,
            report.elapsed.as_secs_f64(),
            report.messages_per_second()
        );
        client.delete_queue().queue_url(queue.url()).send().await?;
    }

    drop(handler);
    common::drop_database(&mut admin_conn, BENCH_DB).await?;
    Ok(())
}
