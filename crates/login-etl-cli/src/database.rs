//! Commands over PostgreSQL: `migrate` and `report`.

use std::io::Write;

use super::ReportArgs;
use login_etl::adapters::store::Store;
use login_etl::config::{Config, DatabaseSource};
use login_etl::startup;

/// Applies `migrations/` to the configured database; with `DATABASE_URL` the database is
/// created first if it does not exist, over a connection secured as the migration's own
/// (`sslmode`, `DB_SSL_MODE`, `DB_CA_BUNDLE`).
pub async fn migrate(config: &Config, notes: &mut impl Write) -> anyhow::Result<()> {
    if let DatabaseSource::Url(_) = config.database.source()?
        && Store::create_database_if_missing(&startup::operator_connect_options(config).await?).await?
    {
        writeln!(notes, "created the database")?;
    }
    let store = startup::connect_store(config).await?;
    store.migrate().await?;
    writeln!(notes, "migrations applied")?;
    Ok(())
}

/// Prints the row count and the latest rows (masked values only).
pub async fn report(args: &ReportArgs, store: &Store, out: &mut impl Write) -> anyhow::Result<()> {
    let summary = store.summary(args.limit).await?;
    if args.json {
        let latest: Vec<_> = summary
            .latest
            .iter()
            .map(|row| {
                serde_json::json!({
                    "user_id": row.user_id,
                    "device_type": row.device_type,
                    "locale": row.locale,
                    "app_version": row.app_version,
                    "masked_ip": row.masked_ip,
                    "masked_device_id": row.masked_device_id,
                    "create_date": row.create_date.map(|d| d.to_string()),
                })
            })
            .collect();
        writeln!(
            out,
            "{}",
            serde_json::json!({
                "total_rows": summary.total_rows,
                "rows_last_hour": summary.rows_last_hour,
                "latest": latest,
            })
        )?;
        return Ok(());
    }
    writeln!(out, "user_logins: {} rows ({} loaded in the last hour)", summary.total_rows, summary.rows_last_hour)?;
    writeln!(
        out,
        "{:<36}  {:<12}  {:<6}  {:<8}  {:<16}  {:<16}  create_date",
        "user_id", "device_type", "locale", "version", "masked_ip", "masked_device_id"
    )?;
    for row in summary.latest {
        let short =
            |v: Option<String>| v.map(|h| format!("{}…", &h[..h.len().min(14)])).unwrap_or_else(|| "NULL".into());
        writeln!(
            out,
            "{:<36}  {:<12}  {:<6}  {:<8}  {:<16}  {:<16}  {}",
            row.user_id.unwrap_or_default(),
            row.device_type.unwrap_or_else(|| "NULL".into()),
            row.locale.unwrap_or_else(|| "NULL".into()),
            row.app_version.unwrap_or_else(|| "NULL".into()),
            short(row.masked_ip),
            short(row.masked_device_id),
            row.create_date.map(|d| d.to_string()).unwrap_or_default()
        )?;
    }
    Ok(())
}
