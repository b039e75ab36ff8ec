//! Commands over PostgreSQL: `migrate` and `report`.

use std::io::Write;

use super::ReportArgs;
use login_etl::{Config, DatabaseSource, OperatorDb};

/// Applies `migrations/` to the configured database; with `DATABASE_URL` the database is
/// created first if it does not exist, over a connection secured as the migration's own
/// (`sslmode`, `DB_SSL_MODE`, `DB_CA_BUNDLE`).
pub async fn migrate(config: &Config, notes: &mut impl Write) -> anyhow::Result<()> {
    if let DatabaseSource::Url(_) = config.database.source()?
        && OperatorDb::create_database_if_missing(&login_etl::operator_connect_options(config).await?).await?
    {
        writeln!(notes, "created the database")?;
    }
    let db = login_etl::connect_operator_db(config).await?;
    db.migrate().await?;
    writeln!(notes, "migrations applied")?;
    Ok(())
}

/// Prints the row count, the rows of each masking key (so that after a rotation it is clear
/// which rows are whose), and the latest rows: masked values only, each with its key's id.
pub async fn report(args: &ReportArgs, db: &OperatorDb, out: &mut impl Write) -> anyhow::Result<()> {
    let summary = db.summary(args.limit).await?;
    let timestamp = |at: Option<time::OffsetDateTime>| {
        at.and_then(|at| at.format(&time::format_description::well_known::Rfc3339).ok())
    };
    if args.json {
        let by_key: Vec<_> = summary
            .by_key
            .iter()
            .map(|key| {
                serde_json::json!({
                    "masking_scheme": key.masking_scheme,
                    "masking_key_id": key.masking_key_id,
                    "rows": key.rows,
                    "first_loaded": timestamp(key.first_loaded),
                    "last_loaded": timestamp(key.last_loaded),
                })
            })
            .collect();
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
                    "ip_prefix": row.ip_prefix,
                    "masked_device_id": row.masked_device_id,
                    "create_date": row.create_date.map(|d| d.to_string()),
                    "masking_scheme": row.masking_scheme,
                    "masking_key_id": row.masking_key_id,
                })
            })
            .collect();
        writeln!(
            out,
            "{}",
            serde_json::json!({
                "total_rows": summary.total_rows,
                "rows_last_hour": summary.rows_last_hour,
                "by_key": by_key,
                "latest": latest,
            })
        )?;
        return Ok(());
    }
    writeln!(out, "user_logins: {} rows ({} loaded in the last hour)", summary.total_rows, summary.rows_last_hour)?;
    for key in &summary.by_key {
        let loaded = match (timestamp(key.first_loaded), timestamp(key.last_loaded)) {
            (Some(first), Some(last)) => format!("loaded {first} to {last}"),
            _ => String::new(),
        };
        writeln!(
            out,
            "  masked by {} key {}: {} rows, {loaded}",
            key.masking_scheme.as_deref().unwrap_or("(unknown scheme)"),
            key.masking_key_id.as_deref().unwrap_or("(none recorded)"),
            key.rows
        )?;
    }
    writeln!(
        out,
        "{:<36}  {:<12}  {:<6}  {:<8}  {:<16}  {:<18}  {:<16}  {:<8}  create_date",
        "user_id", "device_type", "locale", "version", "masked_ip", "ip_prefix", "masked_device_id", "key"
    )?;
    for row in summary.latest {
        let short =
            |v: Option<String>| v.map(|h| format!("{}…", &h[..h.len().min(14)])).unwrap_or_else(|| "NULL".into());
        writeln!(
            out,
            "{:<36}  {:<12}  {:<6}  {:<8}  {:<16}  {:<18}  {:<16}  {:<8}  {}",
            row.user_id.unwrap_or_default(),
            row.device_type.unwrap_or_else(|| "NULL".into()),
            row.locale.unwrap_or_else(|| "NULL".into()),
            row.app_version.unwrap_or_else(|| "NULL".into()),
            short(row.masked_ip),
            row.ip_prefix.unwrap_or_else(|| "NULL".into()),
            short(row.masked_device_id),
            row.masking_key_id.unwrap_or_else(|| "NULL".into()),
            row.create_date.map(|d| d.to_string()).unwrap_or_default()
        )?;
    }
    Ok(())
}
