//! The release bootstrap as Lambda runs it: `target/release/login-etl` behind a Runtime API
//! (`login_etl_test_support::runtime_api`), durable commits (the server's defaults).
//!
//! 1. **Per batch, beside its floor and a peer**, for 10 and 10,000 records: the function's
//!    median from handing the event out to receiving the answer; the floor, a do-nothing Rust
//!    function under the same harness (benches/fixtures/noop_function.rs: the runtime parses the
//!    event, the answer is empty) plus the database's own time for the same rows (the
//!    function's very statement on a bare tokio-postgres client, no pool, no handler); their
//!    ratio; and the peer, what a team would write instead (benches/fixtures/sqlx_peer_function.rs:
//!    sqlx, one INSERT per row in a transaction), under the same harness. All from one run,
//!    in interleaved rounds (each round runs every kind in turn), so drift on a shared machine
//!    touches them alike.
//! 2. **One execution environment at AWS_LAMBDA_MAX_CONCURRENCY 1, 2, 4 and 8**: ten-record
//!    batches per second, directly and, with `BENCH_PGBOUNCER`, through PgBouncer in
//!    transaction mode (`default_pool_size = 2`).
//!
//! `make bench` builds the binaries first; by hand: `cargo build --release --bin login-etl
//! --example noop_function --example sqlx_peer_function && cargo bench --bench runtime_api`.
//! Creates and drops the database `login_etl_bench_rt` on DATABASE_URL's server.

use login_etl_test_support::bench as common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use login_etl::LoginRows;
use login_etl_core::batch;
use login_etl_core::mask::{Masker, MaskingKey};
use login_etl_test_support::runtime_api::{Answer, Bootstrap, RuntimeApi};
use sqlx::postgres::PgConnectOptions;

const BENCH_DB: &str = "login_etl_bench_rt";
const KEY_HEX: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
const ROUNDS: usize = 5;
/// Invocations per kind and round: (records per batch, invocations).
const SIZES: [(usize, usize); 2] = [(10, 60), (10_000, 3)];
const CONCURRENCY: [u32; 4] = [1, 2, 4, 8];
const THROUGHPUT_BATCHES: usize = 400;
const THROUGHPUT_ROUNDS: usize = 3;

/// target/release, where `make bench` put the bootstrap and the examples.
fn release_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/release/deps/runtime_api-<hash>
    let dir = exe.parent().and_then(|deps| deps.parent()).ok_or_else(|| anyhow::anyhow!("no target dir"))?;
    Ok(dir.to_path_buf())
}

fn binary(path: PathBuf) -> anyhow::Result<String> {
    anyhow::ensure!(
        path.exists(),
        "{} is missing: cargo build --release --bin login-etl --example noop_function --example sqlx_peer_function",
        path.display()
    );
    Ok(path.to_string_lossy().into_owned())
}

fn url(options: &PgConnectOptions, via: Option<&str>) -> String {
    let target = common::loader_target(options, via.map(|address| (address, BENCH_DB)));
    format!("postgres://{}@{}:{}/{}?sslmode=disable", target.user, target.host, target.port, target.dbname)
}

fn event(prefix: &str, size: usize) -> Vec<u8> {
    let records =
        common::login_batch(prefix, size, |i| format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256));
    serde_json::to_vec(&login_etl_test_support::event(records)).expect("event JSON")
}

/// A function under a harness of its own, ready for invocations.
struct Running {
    api: RuntimeApi,
    process: Bootstrap,
}

impl Running {
    /// The handler's own time (`BatchDuration` of its EMF document) of each invocation, by
    /// request id.
    fn batch_durations(&self) -> HashMap<String, f64> {
        self.process
            .stdout
            .json()
            .iter()
            .filter(|line| line.get("_aws").is_some())
            .filter_map(|line| Some((line["requestId"].as_str()?.to_owned(), line["BatchDuration"].as_f64()?)))
            .collect()
    }
}

async fn start(binary: &str, env: &[(&'static str, String)], polls: usize) -> anyhow::Result<Running> {
    let api = RuntimeApi::start().await?;
    let process = Bootstrap::spawn(binary, &api, env)?;
    anyhow::ensure!(
        api.wait_for_parked_polls(polls, Duration::from_secs(30)).await,
        "{binary} did not poll: {:?}",
        process.stderr.all()
    );
    Ok(Running { api, process })
}

/// One invocation, handed out and answered: the time between (the harness's view of the
/// function: the event's transfer and parsing, the handler, the answer's transfer).
async fn invoke(running: &Running, event: &[u8]) -> anyhow::Result<Duration> {
    Ok(invoke_with_id(running, event).await?.1)
}

async fn invoke_with_id(running: &Running, event: &[u8]) -> anyhow::Result<(String, Duration)> {
    let id = running.api.enqueue(event);
    let (invocation, answer) =
        running.api.answer(&id, Duration::from_secs(120)).await.ok_or_else(|| anyhow::anyhow!("no answer"))?;
    if let Answer::Error(error) = &answer {
        anyhow::bail!("the invocation failed: {error}");
    }
    let (answered, _) = invocation.answered.expect("answered");
    Ok((id, answered - invocation.handed_out.expect("handed out")))
}

/// The database's own time for a batch: the function's statement on a bare client.
async fn database_time(client: &tokio_postgres::Client, masker: &Masker, prefix: &str, size: usize) -> Duration {
    let records =
        common::login_batch(prefix, size, |i| format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256));
    let plan = batch::plan(&records, masker, None).expect("plan");
    let rows = LoginRows::from_accepted(plan.contract.accepted()).expect("rows");
    let started = Instant::now();
    let inserted = login_etl::insert_rows(client, &rows).await.expect("insert");
    let took = started.elapsed();
    assert_eq!(inserted as usize, size);
    took
}

/// The process's peak resident set size (`VmHWM` in /proc/PID/status), in MiB.
fn peak_rss_mib(running: &Running) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", running.process.child.id()))?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmHWM in /proc status"))?;
    Ok(kib / 1024.0)
}

fn median(times: &mut [Duration]) -> f64 {
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1e3
}

// One thread for the harness and the floor's bare client: the database's own time is then
// not lengthened by wake-ups of other threads.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let (options, mut admin) = common::fresh_database(BENCH_DB).await?;
    common::migrate(&options).await?;
    let release = release_dir()?;
    let function = binary(release.join("login-etl"))?;
    let noop = binary(release.join("examples/noop_function"))?;
    let peer = binary(release.join("examples/sqlx_peer_function"))?;
    let direct = url(&options, None);
    let function_env = |concurrency: u32, database: &str| {
        vec![
            ("DATABASE_URL", database.to_owned()),
            ("MASKING_KEY", KEY_HEX.to_owned()),
            ("AWS_LAMBDA_MAX_CONCURRENCY", concurrency.to_string()),
        ]
    };
    let masker = Masker::hmac(&MaskingKey::from_hex(KEY_HEX)?);
    let (client, connection) = tokio_postgres::connect(&direct, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);

    println!("runtime API benchmark: release bootstrap, durable commits, {ROUNDS} interleaved rounds");
    let login_etl = start(&function, &function_env(1, &direct), 1).await?;
    // The same bootstrap with two pollers (a multi-thread runtime), given one batch at a time.
    let login_etl_multi = start(&function, &function_env(2, &direct), 2).await?;
    let floor_function = start(&noop, &[], 1).await?;
    let peer_function = start(&peer, &function_env(1, &direct), 1).await?;
    // Warm-up: connections, plan caches, page cache.
    for n in 0..20 {
        invoke(&login_etl, &event(&format!("warm-f-{n}"), 10)).await?;
        invoke(&login_etl_multi, &event(&format!("warm-m-{n}"), 10)).await?;
        invoke(&floor_function, &event(&format!("warm-n-{n}"), 10)).await?;
        invoke(&peer_function, &event(&format!("warm-p-{n}"), 10)).await?;
        database_time(&client, &masker, &format!("warm-d-{n}"), 10).await;
    }
    for (size, invocations) in SIZES {
        let (mut handler, mut nothing, mut database, mut sqlx_peer, mut multi) =
            (vec![], vec![], vec![], vec![], vec![]);
        let (mut own, mut ids) = (vec![], vec![]);
        let mut round_ratios = Vec::new();
        for round in 0..ROUNDS {
            let (mut h, mut n, mut d) = (vec![], vec![], vec![]);
            for i in 0..invocations {
                let tag = format!("{size}-{round}-{i}");
                let (id, took) = invoke_with_id(&login_etl, &event(&format!("f-{tag}"), size)).await?;
                h.push(took);
                ids.push(id);
                n.push(invoke(&floor_function, &event(&format!("n-{tag}"), size)).await?);
                d.push(database_time(&client, &masker, &format!("d-{tag}"), size).await);
                sqlx_peer.push(invoke(&peer_function, &event(&format!("p-{tag}"), size)).await?);
                if size == 10 {
                    multi.push(invoke(&login_etl_multi, &event(&format!("m-{tag}"), size)).await?);
                }
            }
            round_ratios.push(median(&mut h) / (median(&mut n) + median(&mut d)));
            handler.extend(h);
            nothing.extend(n);
            database.extend(d);
        }
        let durations = login_etl.batch_durations();
        for id in &ids {
            if let Some(ms) = durations.get(id) {
                own.push(Duration::from_secs_f64(ms / 1e3));
            }
        }
        let (h, n, d, p) = (median(&mut handler), median(&mut nothing), median(&mut database), median(&mut sqlx_peer));
        round_ratios.sort_by(f64::total_cmp);
        println!(
            "batch={size:>6}  login-etl median={h:>8.3} ms  floor={:>8.3} ms (do-nothing function {n:.3} + database {d:.3})  ratio={:.2}x (per-round median {:.2}x)  peer (sqlx, row by row)={p:>8.3} ms ({:.2}x the floor)  n={}",
            n + d,
            h / (n + d),
            round_ratios[round_ratios.len() / 2],
            p / (n + d),
            handler.len()
        );
        // Where login-etl's time goes, by its own timestamps: the handler (BatchDuration:
        // plan, pool checkout, insert, summary line) against the database's own time, and the
        // rest (runtime, event parsing, metrics, answer) against the do-nothing function.
        let handled = median(&mut own);
        println!(
            "batch={size:>6}  breakdown: handler {handled:.3} ms (database {d:.3} + {:.3} of its own), outside the handler {:.3} ms (do-nothing function {n:.3} + {:.3})",
            handled - d,
            h - handled,
            h - handled - n
        );
        if !multi.is_empty() {
            println!(
                "batch={size:>6}  login-etl on a multi-thread runtime (AWS_LAMBDA_MAX_CONCURRENCY=2, one batch at a time) median={:>8.3} ms  ratio={:.2}x",
                median(&mut multi),
                median(&mut multi) / (n + d)
            );
        }
    }
    // Peak resident memory of each process after all of the above (10,000-record batches
    // included): what an execution environment's memory size has to hold.
    println!(
        "peak RSS (VmHWM) after the batches above: login-etl {:.1} MiB, do-nothing function {:.1} MiB, peer (sqlx) {:.1} MiB",
        peak_rss_mib(&login_etl)?,
        peak_rss_mib(&floor_function)?,
        peak_rss_mib(&peer_function)?
    );
    drop((login_etl, login_etl_multi, floor_function, peer_function));

    // Interleaved rounds again: every route and concurrency once per round; the median per
    // configuration is printed.
    let pgbouncer = common::pgbouncer();
    let mut routes = vec![("direct", direct.clone())];
    if let Some(address) = pgbouncer.as_deref() {
        routes.push(("pgbouncer", url(&options, Some(address))));
    }
    let mut per_second: HashMap<(&str, u32), Vec<f64>> = HashMap::new();
    let mut most: HashMap<(&str, u32), usize> = HashMap::new();
    for round in 0..THROUGHPUT_ROUNDS {
        for (route, database) in &routes {
            for concurrency in CONCURRENCY {
                let running = start(&function, &function_env(concurrency, database), concurrency as usize).await?;
                let events: Vec<Vec<u8>> = (0..THROUGHPUT_BATCHES)
                    .map(|b| event(&format!("t-{route}-{concurrency}-{round}-{b}"), 10))
                    .collect();
                let started = Instant::now();
                for event in &events {
                    running.api.enqueue(event);
                }
                anyhow::ensure!(
                    running.api.wait_for_answers(THROUGHPUT_BATCHES, Duration::from_secs(300)).await,
                    "not every batch was answered"
                );
                per_second
                    .entry((route, concurrency))
                    .or_default()
                    .push(THROUGHPUT_BATCHES as f64 / started.elapsed().as_secs_f64());
                *most.entry((route, concurrency)).or_default() = running.api.most_running();
            }
        }
    }
    for (route, _) in &routes {
        let median_of = |concurrency: u32| {
            let mut figures = per_second[&(*route, concurrency)].clone();
            figures.sort_by(f64::total_cmp);
            figures[figures.len() / 2]
        };
        let one = median_of(1);
        for concurrency in CONCURRENCY {
            let figure = median_of(concurrency);
            println!(
                "{route:<9}  AWS_LAMBDA_MAX_CONCURRENCY={concurrency}  {THROUGHPUT_BATCHES} ten-record batches  {figure:>7.0} batches/s  ({:.2}x the figure at 1; at most {} at once; median of {THROUGHPUT_ROUNDS} rounds)",
                figure / one,
                most[&(*route, concurrency)]
            );
        }
    }

    drop(client);
    common::drop_database(&mut admin, BENCH_DB).await?;
    Ok(())
}
