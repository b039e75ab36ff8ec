//! Set-up of the benchmarks that need services: a fresh database per benchmark, the loader's
//! target (optionally through PgBouncer). Benchmarks take it as
//! `use login_etl_test_support::bench as common;`.

use login_etl::{DbTarget, OperatorDb};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

/// A freshly created, migrated database `name` on DATABASE_URL's server (default: local).
/// Returns its connect options and an admin connection to drop it with [`drop_database`].
pub async fn fresh_database(name: &str) -> anyhow::Result<(PgConnectOptions, PgConnection)> {
    let server = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let admin: PgConnectOptions = server.parse()?;
    let mut admin_conn = PgConnection::connect_with(&admin.clone().database("postgres")).await?;
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin_conn).await?;
    sqlx::raw_sql(&format!("CREATE DATABASE {name}")).execute(&mut admin_conn).await?;
    // Durable commits, as the server's defaults (and every deployment) have them. Only
    // BENCH_SYNCHRONOUS_COMMIT=off turns the WAL flush off, for comparing round trips without
    // the disk; every figure of such a run is then labelled as not durable.
    if std::env::var("BENCH_SYNCHRONOUS_COMMIT").is_ok_and(|value| value == "off") {
        sqlx::raw_sql(&format!("ALTER DATABASE {name} SET synchronous_commit = off")).execute(&mut admin_conn).await?;
        println!(
            "NOTE: database {name} has synchronous_commit=off (BENCH_SYNCHRONOUS_COMMIT): commits are NOT durable"
        );
    }
    Ok((admin.database(name), admin_conn))
}

/// Drops the database [`fresh_database`] made.
pub async fn drop_database(admin_conn: &mut PgConnection, name: &str) -> anyhow::Result<()> {
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(admin_conn).await?;
    Ok(())
}

/// The loader's target for `options` (trust authentication, no TLS), optionally through the
/// PgBouncer at `via` (`host:port`) under the pooler database name `dbname`.
pub fn loader_target(options: &PgConnectOptions, via: Option<(&str, &str)>) -> DbTarget {
    let mut target = super::direct_target(options);
    if let Some((address, dbname)) = via {
        if let Some((host, port)) = address.rsplit_once(':') {
            target.host = host.to_owned();
            target.port = port.parse().unwrap_or(6432);
        }
        target.dbname = dbname.to_owned();
    }
    target
}

/// Applies the migrations to the database behind `options`.
pub async fn migrate(options: &PgConnectOptions) -> anyhow::Result<()> {
    let db = OperatorDb::connect_lazy(options.clone(), 1);
    db.migrate().await?;
    db.pool().close().await;
    Ok(())
}

/// Applies migrations 0001..=`last` only: the schema as an older release left it, for
/// before/after comparisons in one run.
pub async fn migrate_through(options: &PgConnectOptions, last: i64) -> anyhow::Result<()> {
    let pool = sqlx::PgPool::connect_with(options.clone()).await?;
    super::migrate_through(&pool, last).await?;
    pool.close().await;
    Ok(())
}

/// The PgBouncer `make bench` starts (scripts/pgbouncer.sh), if any: `BENCH_PGBOUNCER=host:port`.
pub fn pgbouncer() -> Option<String> {
    std::env::var("BENCH_PGBOUNCER").ok().filter(|v| !v.is_empty())
}

/// A batch of `size` valid logins for the benchmarks: message ids `<id_prefix>-<i>`, distinct
/// users, 10,000 devices, the ip `ip(i)`.
pub fn login_batch(
    id_prefix: &str,
    size: usize,
    ip: impl Fn(usize) -> String,
) -> Vec<aws_lambda_events::sqs::SqsMessage> {
    (0..size)
        .map(|i| {
            let body = super::login_body(
                &format!("424cdd21-063a-43a7-b91b-{i:012}"),
                &ip(i),
                &format!("593-47-{:04}", i % 10_000),
            );
            super::sqs_message(&format!("{id_prefix}-{i:06}"), &body)
        })
        .collect()
}
