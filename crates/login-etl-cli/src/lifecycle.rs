//! Commands over the data lifecycle: `partitions`, `retention`, `erase`. Run by the table's
//! owner (`partitions`, `retention`) or a member of `login_etl_eraser` (`erase`), straight to
//! the server, never through a transaction-mode pooler.

use std::io::Write;

use time::Date;

use super::{EraseArgs, PartitionsArgs, RetentionArgs, write_result};

use login_etl::OperatorDb;

/// Makes the partitions from `today`'s month to `months_ahead` after it (and those rows in the
/// default partition need), then lists every partition with its rows.
pub async fn partitions(
    args: &PartitionsArgs,
    db: &OperatorDb,
    today: Date,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let created = login_etl::maintain_partitions(db, today, args.months_ahead).await?;
    let partitions = login_etl::partition_row_counts(db).await?;
    if args.json {
        let partitions: Vec<_> =
            partitions.iter().map(|(name, rows)| serde_json::json!({"partition": name, "rows": rows})).collect();
        writeln!(out, "{}", serde_json::json!({"created": created, "partitions": partitions}))?;
        return Ok(());
    }
    for made in &created {
        writeln!(out, "created {} ({} rows moved in from the default partition)", made.partition, made.rows_moved)?;
    }
    if created.is_empty() {
        writeln!(out, "every partition through {} months ahead exists", args.months_ahead)?;
    }
    for (name, rows) in partitions {
        writeln!(out, "{name:<24}  {rows:>12} rows")?;
    }
    Ok(())
}

/// Keeps `today`'s month and the `--keep-months` before it; prints what was dropped and how
/// long it took. With `--dry-run`, prints what would be dropped and changes nothing.
pub async fn retention(args: &RetentionArgs, db: &OperatorDb, today: Date, out: &mut impl Write) -> anyhow::Result<()> {
    if args.dry_run {
        let preview = login_etl::preview_retention(db, today, args.keep_months).await?;
        if args.json {
            return Ok(write_json_with(out, serde_json::to_value(&preview)?, "dry_run", serde_json::json!(true))?);
        }
        let would_drop =
            preview.would_drop.iter().map(|partition| (partition.partition.as_str(), partition.rows_dropped));
        return Ok(write_retention(out, true, preview.cutoff, would_drop, preview.vault_rows_would_be_removed)?);
    }
    let started = std::time::Instant::now();
    let report = login_etl::apply_retention(db, today, args.keep_months).await?;
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        return Ok(write_json_with(out, serde_json::to_value(&report)?, "seconds", serde_json::json!(seconds))?);
    }
    let dropped = report.dropped.iter().map(|dropped| (dropped.partition.as_str(), dropped.rows_dropped));
    write_retention(out, false, report.cutoff, dropped, report.vault_rows_removed)?;
    writeln!(out, "took {seconds:.3} s")?;
    Ok(())
}

/// `value` as one line of JSON, with `key` added (what the command knows beside the report).
fn write_json_with(
    out: &mut impl Write,
    mut value: serde_json::Value,
    key: &str,
    extra: serde_json::Value,
) -> std::io::Result<()> {
    value[key] = extra;
    writeln!(out, "{value}")
}

/// What retention dropped, or in a dry run would drop: the cutoff, each partition with its
/// rows, and the vault rows no remaining login references.
fn write_retention<'a>(
    out: &mut impl Write,
    dry_run: bool,
    cutoff: Date,
    partitions: impl ExactSizeIterator<Item = (&'a str, i64)>,
    vault_rows: i64,
) -> std::io::Result<()> {
    let (dry_run_note, drop, removed) = if dry_run {
        ("dry run: nothing is dropped; ", "would drop", "would be removed")
    } else {
        ("", "dropped", "removed")
    };
    writeln!(out, "{dry_run_note}keeping months from {cutoff} on")?;
    if partitions.len() == 0 {
        writeln!(out, "no partition is older than that")?;
    }
    for (partition, rows) in partitions {
        writeln!(out, "{drop} {partition} ({rows} rows)")?;
    }
    writeln!(out, "vault rows no longer referenced, {removed}: {vault_rows}")
}

/// Erases one person; prints counts, never values.
pub async fn erase(args: &EraseArgs, db: &OperatorDb, out: &mut impl Write) -> anyhow::Result<()> {
    let report = login_etl::erase_user(db, &args.user_id).await?;
    let (login_rows, vault_rows) = (report.login_rows, report.vault_rows);
    let value = serde_json::to_value(report)?;
    write_result(out, args.json, value, format_args!("erased {login_rows} login rows and {vault_rows} vault rows"))?;
    Ok(())
}
