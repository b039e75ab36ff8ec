//! The handler's wall time per batch against the local PostgreSQL: validate, mask, one
//! `INSERT … UNNEST` round trip, commit; with the PII vault off and on. Every run uses fresh
//! message ids, so every row is really inserted (the vault sees ips repeat across runs, as a
//! real one does). Prints median and p90 over repeated runs.
//!
//! Each configuration runs directly against the server and, when `BENCH_PGBOUNCER` names a
//! PgBouncer in transaction mode (`make bench` starts one), through it, in the same run; and
//! against two schemas side by side: `unpartitioned` (migrations through 0005, the table as it
//! was before monthly partitions) and `partitioned` (every migration), so the cost of the
//! partitioned table is read off one run.
//!
//! `make bench` (or `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench handler`).
//! It creates and drops its own databases `login_etl_bench` and `login_etl_bench_unpartitioned`
//! on that server.

use login_etl_test_support::bench as common;

use std::time::{Duration, Instant};

use aws_lambda_events::sqs::SqsMessage;
use crypto_box::aead::OsRng;
use login_etl::{Handler, Loader, PoolSettings};
use login_etl_core::mask::{Masker, MaskingKey};
use login_etl_core::vault::VaultSecretKey;

const BENCH_DB: &str = "login_etl_bench";
/// The same benchmark's database with the schema of migration 0005 (before partitions).
const BENCH_DB_UNPARTITIONED: &str = "login_etl_bench_unpartitioned";
const LAST_UNPARTITIONED_MIGRATION: i64 = 5;

fn batch(run: usize, size: usize) -> Vec<SqsMessage> {
    common::login_batch(&format!("bench-{run:05}-{size}"), size, |i| {
        format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256)
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// Times `runs` batches of `size` on each handler, taking turns batch by batch, so that drift
/// on a shared machine (other builds, checkpoints) touches every handler alike. Returns each
/// handler's sorted times.
async fn measure(handlers: &[Handler], size: usize, runs: usize, first_run: usize) -> Vec<Vec<Duration>> {
    let mut times = vec![Vec::with_capacity(runs); handlers.len()];
    for run in 0..runs {
        let records = batch(first_run + run, size);
        for (handler, times) in handlers.iter().zip(times.iter_mut()) {
            let started = Instant::now();
            let outcome = handler.handle(&records).await.expect("handled");
            times.push(started.elapsed());
            assert_eq!(
                outcome.records.succeeded(),
                size,
                "every row must be new: {:?}",
                outcome.records.failures_by_code()
            );
        }
    }
    for times in &mut times {
        times.sort();
    }
    times
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let (database, mut admin_conn) = common::fresh_database(BENCH_DB).await?;
    common::migrate(&database).await?;
    let (unpartitioned, _) = common::fresh_database(BENCH_DB_UNPARTITIONED).await?;
    common::migrate_through(&unpartitioned, LAST_UNPARTITIONED_MIGRATION).await?;
    // The insert function the loader calls now (migration 0008: the key id and ip prefix
    // columns), on the unpartitioned table too, so both schemas run the same statement.
    let pool = sqlx::PgPool::connect_with(unpartitioned.clone()).await?;
    sqlx::raw_sql(include_str!("../migrations/0008_masking_key_id_ip_prefix_extras.sql")).execute(&pool).await?;
    pool.close().await;
    let masker = Masker::hmac(&MaskingKey::from_hex(&"5a".repeat(32))?);
    let vault_key = VaultSecretKey::generate(&mut OsRng).public_key();

    println!(
        "handler benchmark against {}:{} (one connection, like a Lambda instance)",
        database.get_host(),
        database.get_port()
    );
    let pgbouncer = common::pgbouncer();
    let schemas = [("unpartitioned", &unpartitioned, BENCH_DB_UNPARTITIONED), ("partitioned", &database, BENCH_DB)];
    let mut first_run = 0;
    for route in ["direct", "pgbouncer"] {
        if route == "pgbouncer" && pgbouncer.is_none() {
            continue;
        }
        for vault in [false, true] {
            // Both schemas in turns, batch by batch (each its own database and messages).
            let mut handlers = Vec::new();
            for (_, options, dbname) in schemas {
                let via = pgbouncer.as_deref().filter(|_| route == "pgbouncer").map(|address| (address, dbname));
                let loader = Loader::new(common::loader_target(options, via), &PoolSettings::default(), None)?;
                handlers.push(Handler::new(masker.clone(), loader).with_vault(vault.then(|| vault_key.clone())));
            }
            // Warm up the connections and the plan caches.
            measure(&handlers, 10, 20, first_run).await;
            first_run += 20;
            for (size, runs) in [(10usize, 300usize), (10_000, 25)] {
                let times = measure(&handlers, size, runs, first_run).await;
                first_run += runs;
                for ((schema, _, _), times) in schemas.iter().zip(&times) {
                    let median = percentile(times, 0.5);
                    println!(
                        "{route:<9}  {schema:<13}  vault={:<3}  batch={size:>6}  runs={runs:>4}  median={:>9.3} ms  p90={:>9.3} ms  per-record={:>8.2} µs",
                        if vault { "on" } else { "off" },
                        median.as_secs_f64() * 1e3,
                        percentile(times, 0.9).as_secs_f64() * 1e3,
                        median.as_secs_f64() * 1e6 / size as f64
                    );
                }
            }
            for handler in &handlers {
                handler.loader().close();
            }
        }
    }

    common::drop_database(&mut admin_conn, BENCH_DB_UNPARTITIONED).await?;
    common::drop_database(&mut admin_conn, BENCH_DB).await?;
    Ok(())
}
