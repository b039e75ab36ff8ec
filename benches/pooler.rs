//! A fleet behind PgBouncer in transaction mode (scripts/pgbouncer.sh, `make bench` starts it):
//!
//! 1. **Failures over a small pool**: 8 function instances (one connection each) send 25
//!    batches of 10 at once through PgBouncer's `default_pool_size = 2`; counts failed batches.
//! 2. **Scale**: 8 instances send 1,000-record batches through a pool of 4 server connections
//!    (`login_etl_bench_pool4`); rows per second sustained, beside the server's own limit
//!    measured in the same run: one client `COPY`ing the same rows into the same table and
//!    indexes.
//!
//! `make bench`, or `BENCH_PGBOUNCER=127.0.0.1:6432 cargo bench --bench pooler`. Creates and
//! drops the database `login_etl_bench` on DATABASE_URL's server.

use login_etl_test_support::bench as common;

use std::time::Instant;

use aws_lambda_events::sqs::SqsMessage;
use login_etl::{Handler, Loader, LoginRows, PoolSettings};
use login_etl_core::batch;
use login_etl_core::mask::{Masker, MaskingKey};
use sqlx::Connection;

const BENCH_DB: &str = "login_etl_bench";
const INSTANCES: usize = 8;

fn records(instance: usize, number: usize, size: usize) -> Vec<SqsMessage> {
    common::login_batch(&format!("pool-{instance}-{number:04}"), size, |i| {
        format!("10.{instance}.{}.{}", i / 256 % 256, i % 256)
    })
}

/// Runs `batches` batches of `size` records from each of [`INSTANCES`] handlers at once;
/// returns (failed batches, rows inserted, seconds).
async fn fleet(handlers: &[Handler], batches: usize, size: usize, tag: usize) -> (usize, usize, f64) {
    let started = Instant::now();
    let runs = handlers.iter().enumerate().map(|(instance, handler)| async move {
        let (mut failed, mut inserted) = (0, 0);
        for number in 0..batches {
            let outcome = handler.handle(&records(instance + tag, number, size)).await.expect("handled");
            failed += usize::from(!outcome.records.failed().is_empty());
            inserted += outcome.records.succeeded();
        }
        (failed, inserted)
    });
    let results = futures::future::join_all(runs).await;
    let seconds = started.elapsed().as_secs_f64();
    let failed = results.iter().map(|r| r.0).sum();
    let inserted = results.iter().map(|r| r.1).sum();
    (failed, inserted, seconds)
}

fn handlers(target: &login_etl::DbTarget, masker: &Masker) -> anyhow::Result<Vec<Handler>> {
    (0..INSTANCES)
        .map(|_| Ok(Handler::new(masker.clone(), Loader::new(target.clone(), &PoolSettings::default(), None)?)))
        .collect()
}

/// The same rows as COPY text, planned by the same core (validation and masking excluded from
/// the timing).
fn copy_text(masker: &Masker, batches: usize, size: usize, tag: usize) -> anyhow::Result<Vec<u8>> {
    let mut text = String::new();
    for instance in 0..INSTANCES {
        for number in 0..batches {
            let plan = batch::plan(&records(instance + tag, number, size), masker, None)?;
            let rows = &LoginRows::from_accepted(plan.contract.accepted())?;
            for i in 0..rows.len() {
                let field = |value: &Option<&str>| value.unwrap_or("\\N").to_owned();
                text.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                    rows.message_id[i],
                    rows.user_id[i],
                    field(&rows.device_type[i]),
                    field(&rows.masked_ip[i]),
                    field(&rows.masked_device_id[i]),
                    field(&rows.locale[i]),
                    field(&rows.app_version[i]),
                    rows.sent_at[i].format(&time::format_description::well_known::Rfc3339)?,
                    rows.create_date[i],
                    rows.masking_mode.name(),
                ));
            }
        }
    }
    Ok(text.into_bytes())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Some(pgbouncer) = common::pgbouncer() else {
        println!("pooler benchmark skipped: set BENCH_PGBOUNCER=host:port (make bench starts PgBouncer)");
        return Ok(());
    };
    let (database, mut admin_conn) = common::fresh_database(BENCH_DB).await?;
    common::migrate(&database).await?;
    let masker = Masker::hmac(&MaskingKey::from_hex(&"5a".repeat(32))?);

    // 1. Failures over PgBouncer's default pool of 2.
    let pool2 = common::loader_target(&database, Some((&pgbouncer, BENCH_DB)));
    let fleet2 = handlers(&pool2, &masker)?;
    let (failed, inserted, seconds) = fleet(&fleet2, 25, 10, 0).await;
    println!(
        "pgbouncer pool=2  instances={INSTANCES}  batches={}  failed batches={failed}  rows={inserted}  {:.2} s",
        INSTANCES * 25,
        seconds
    );
    fleet2.iter().for_each(|h| h.loader().close());

    // 2. Scale: 1,000-record batches through a pool of 4, against one client's COPY.
    let (batches, size) = (100, 1000);
    let mut conn = sqlx::PgConnection::connect_with(&database).await?;
    sqlx::raw_sql("TRUNCATE user_logins").execute(&mut conn).await?;
    let pool4 = common::loader_target(&database, Some((&pgbouncer, "login_etl_bench_pool4")));
    let fleet4 = handlers(&pool4, &masker)?;
    let (failed, inserted, seconds) = fleet(&fleet4, batches, size, 100).await;
    let fleet_rate = inserted as f64 / seconds;
    println!(
        "pgbouncer pool=4  instances={INSTANCES}  batch={size}  rows={inserted}  failed batches={failed}  {seconds:.2} s  {fleet_rate:.0} rows/s"
    );
    fleet4.iter().for_each(|h| h.loader().close());

    sqlx::raw_sql("TRUNCATE user_logins").execute(&mut conn).await?;
    let text = copy_text(&masker, batches, size, 100)?;
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw(
            "COPY user_logins (message_id, user_id, device_type, masked_ip, masked_device_id, locale, app_version, \
             sent_at, create_date, masking_scheme) FROM STDIN",
        )
        .await?;
    copy.send(text.as_slice()).await?;
    let copied = copy.finish().await?;
    let seconds = started.elapsed().as_secs_f64();
    let copy_rate = copied as f64 / seconds;
    println!("one client COPY   rows={copied}  {seconds:.2} s  {copy_rate:.0} rows/s");
    println!("COPY / fleet = {:.2}x", copy_rate / fleet_rate);

    conn.close().await?;
    common::drop_database(&mut admin_conn, BENCH_DB).await?;
    Ok(())
}
