//! What the data lifecycle costs on a table of realistic size: `retention` dropping a month of
//! 1,000,000 rows while another month of 1,000,000 rows is kept, with a vault of 300,000
//! sealed values of which 100,000 only the dropped month used; and `erase` of one person on
//! that table.
//!
//! `make bench` (or `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench lifecycle`).
//! It creates and drops its own database `login_etl_bench_lifecycle` on that server.
//! `BENCH_LIFECYCLE_ROWS` changes the rows per month (default 1,000,000).

use std::time::Instant;

use login_etl::OperatorDb;
use login_etl_test_support::bench as common;
use time::macros::date;

const BENCH_DB: &str = "login_etl_bench_lifecycle";

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let rows: i64 = std::env::var("BENCH_LIFECYCLE_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let (database, mut admin_conn) = common::fresh_database(BENCH_DB).await?;
    common::migrate(&database).await?;
    let db = OperatorDb::connect_lazy(database.clone(), 1);
    let today = date!(2026 - 11 - 30);
    // Partitions from 2026-01 on, and the month to drop.
    login_etl::maintain_partitions(&db, date!(2026 - 01 - 01), 11).await?;
    login_etl::maintain_partitions(&db, date!(2025 - 01 - 01), 0).await?;

    // Two months of logins as the loader writes them: ~50,000 users, 100,000 devices and
    // 100,000 ips a month; half of the old month's devices and ips appear in the kept month.
    let started = Instant::now();
    for (month, first_id, first_value) in [("2025-01-01", 0i64, 0i64), ("2026-11-01", rows, 50_000)] {
        sqlx::query(
            "INSERT INTO user_logins (message_id, user_id, device_type, masked_ip, masked_device_id, locale,
                                      app_version, sent_at, create_date, masking_scheme)
             SELECT 'bench-' || ($2 + g), 'user-' || (g % 50000), 'android',
                    encode(sha256(('ip' || (g % 100000 + $4))::bytea), 'hex'),
                    encode(sha256(('dev' || (g % 100000 + $4))::bytea), 'hex'),
                    'RU', '2.3.0', $1::date + make_interval(secs => (g % 2400000)::int), ($1::date + (g % 28)::int),
                    'hmac-sha256'
             FROM generate_series(1, $3) AS g",
        )
        .bind(month)
        .bind(first_id)
        .bind(rows)
        .bind(first_value)
        .execute(db.pool())
        .await?;
    }
    sqlx::query(
        "INSERT INTO pii_vault.sealed_values (field, masked_value, sealed, key_id)
         SELECT f.field, encode(sha256(((CASE f.field WHEN 'ip' THEN 'ip' ELSE 'dev' END) || g)::bytea), 'hex'),
                '\\x00'::bytea, 'bench'
         FROM generate_series(0, 149999) AS g, (VALUES ('ip'), ('device_id')) AS f(field)",
    )
    .execute(db.pool())
    .await?;
    sqlx::query("VACUUM ANALYZE user_logins").execute(db.pool()).await.ok();
    sqlx::query("ANALYZE pii_vault.sealed_values").execute(db.pool()).await?;
    println!("lifecycle benchmark: {} rows per month, loaded in {:.1} s", rows, started.elapsed().as_secs_f64());

    // Erase first, on the full table: one person's rows across both months.
    let started = Instant::now();
    let erased = login_etl::erase_user(&db, "user-4242").await?;
    println!(
        "erase one user (of ~50,000) on {} rows: {:>8.1} ms  ({} rows, {} vault rows)",
        2 * rows,
        started.elapsed().as_secs_f64() * 1e3,
        erased.login_rows,
        erased.vault_rows
    );

    let started = Instant::now();
    let report = login_etl::apply_retention(&db, today, 12).await?;
    let total = started.elapsed();
    let dropped: Vec<_> = report.dropped.iter().map(|d| format!("{} ({} rows)", d.partition, d.rows_dropped)).collect();
    println!(
        "retention --keep-months 12: {:>8.1} ms in all, dropped {}; {} vault rows swept",
        total.as_secs_f64() * 1e3,
        dropped.join(", "),
        report.vault_rows_removed
    );

    // The drop alone, on a second month of the same size, without the vault sweep.
    login_etl::maintain_partitions(&db, date!(2025 - 02 - 01), 0).await?;
    sqlx::query(
        "INSERT INTO user_logins (message_id, user_id, create_date, masked_ip, masked_device_id)
         SELECT 'again-' || g, 'user-' || (g % 50000), '2025-02-01'::date + (g % 28)::int,
                encode(sha256(('ip' || g)::bytea), 'hex'), encode(sha256(('dev' || g)::bytea), 'hex')
         FROM generate_series(1, $1) AS g",
    )
    .bind(rows)
    .execute(db.pool())
    .await?;
    let started = Instant::now();
    let dropped: Vec<(String, i64)> =
        sqlx::query_as("SELECT partition_name, rows_dropped FROM login_etl_drop_partitions_before('2025-10-01')")
            .fetch_all(db.pool())
            .await?;
    println!("detach + drop alone: {:>8.1} ms for {dropped:?}", started.elapsed().as_secs_f64() * 1e3);

    db.pool().close().await;
    common::drop_database(&mut admin_conn, BENCH_DB).await?;
    Ok(())
}
