//! The data lifecycle of `user_logins`: the schema's migrations, monthly partitions made ahead
//! of need, retention by whole months, and erasure of one person's data.
//!
//! The partition DDL lives in SQL (`migrations/0006_partition_user_logins.sql`:
//! `login_etl_maintain_partitions`, `login_etl_drop_partitions_before`) so that `migrate`, the
//! CLI and any scheduler run the same code. These are operator commands over a sqlx session
//! ([`OperatorDb`]), never through a transaction-mode pooler; partitions and retention need the
//! table's owner, erasure a member of `login_etl_eraser`.

use time::{Date, Month};

use crate::adapters::operator_db::{OperatorDb, OperatorDbError};

/// How many months ahead of the current one get their partition (`migrate`, `partitions`).
pub const DEFAULT_MONTHS_AHEAD: u16 = 3;

impl OperatorDb {
    /// Applies `migrations/` (embedded at build time), then gives the current month and the
    /// [`DEFAULT_MONTHS_AHEAD`] after it their partitions, so a deployment that only ever runs
    /// `migrate` still has next month's partition. Safe to run concurrently: sqlx takes an advisory lock, and partition
    /// maintenance is idempotent.
    pub async fn migrate(&self) -> Result<(), OperatorDbError> {
        sqlx::migrate!("./migrations").run(self.pool()).await.map_err(OperatorDbError::Migrate)?;
        let today = time::OffsetDateTime::now_utc().date();
        maintain_partitions(self, today, DEFAULT_MONTHS_AHEAD).await?;
        Ok(())
    }
}

/// A month that got its partition, with the rows moved into it from the default partition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CreatedPartition {
    pub partition: String,
    pub month: Date,
    pub rows_moved: i64,
}

/// A month whose partition retention detached and dropped.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DroppedPartition {
    pub partition: String,
    pub month: Date,
    pub rows_dropped: i64,
}

/// What `retention` did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RetentionReport {
    /// Rows of months before this date are gone.
    pub cutoff: Date,
    /// Partitions made first, so rows waiting in the default partition are dropped with their
    /// month and not kept by accident.
    pub created: Vec<CreatedPartition>,
    pub dropped: Vec<DroppedPartition>,
    /// Vault rows whose masked value no login references any more.
    pub vault_rows_removed: i64,
}

/// What `erase` deleted: counts only, never values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ErasureReport {
    pub login_rows: i64,
    pub vault_rows: i64,
}

/// The first day of the month `months` before `today`'s month: with `--keep-months N` the
/// current month and the N whole months before it are kept, every older month goes.
pub fn retention_cutoff(today: Date, months: u16) -> Date {
    let index = today.year() * 12 + i32::from(today.month() as u8) - 1 - i32::from(months);
    let (year, month0) = (index.div_euclid(12), index.rem_euclid(12));
    // month0 is 0..=11, so both conversions hold; day 1 exists in every month.
    let month = Month::try_from(month0 as u8 + 1).unwrap_or(Month::January);
    Date::from_calendar_date(year, month, 1).unwrap_or(today)
}

/// Gives every month that needs one its partition: months of rows waiting in the default
/// partition (they move in) and `today`'s month with the `months_ahead` after it. Idempotent.
pub async fn maintain_partitions(
    db: &OperatorDb,
    today: Date,
    months_ahead: u16,
) -> Result<Vec<CreatedPartition>, OperatorDbError> {
    sqlx::query_as!(
        CreatedPartition,
        r#"SELECT partition_name AS "partition!", month AS "month!", rows_moved AS "rows_moved!"
           FROM login_etl_maintain_partitions($1, $2)"#,
        today,
        i32::from(months_ahead)
    )
    .fetch_all(db.pool())
    .await
    .map_err(OperatorDbError::Query)
}

/// Keeps `today`'s month and the `keep_months` before it: detaches and drops every older
/// monthly partition whole (no row-by-row DELETE), then removes vault rows that no remaining
/// login references. Rows still in the default partition are first moved to their month's
/// partition, so they go with it.
pub async fn apply_retention(
    db: &OperatorDb,
    today: Date,
    keep_months: u16,
) -> Result<RetentionReport, OperatorDbError> {
    let created = maintain_partitions(db, today, DEFAULT_MONTHS_AHEAD).await?;
    let cutoff = retention_cutoff(today, keep_months);
    let (dropped, vault_rows_removed) = partitions_then_vault_rows(
        sqlx::query_file_as!(DroppedPartition, "queries/drop_partitions_before.sql", cutoff).fetch_all(db.pool()),
        sqlx::query_file_scalar!("queries/sweep_vault.sql").fetch_one(db.pool()),
    )
    .await?;
    Ok(RetentionReport { cutoff, created, dropped, vault_rows_removed })
}

/// What `retention --dry-run` shows: what [`apply_retention`] would drop, with nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RetentionPreview {
    /// Rows of months before this date would go.
    pub cutoff: Date,
    /// The partitions that would be dropped and the rows each holds now (a month whose rows
    /// still wait in the default partition is listed under the partition it would get).
    pub would_drop: Vec<DroppedPartition>,
    /// Vault rows whose masked value no remaining login would reference.
    pub vault_rows_would_be_removed: i64,
}

/// [`apply_retention`]'s plan without its work: reads only, creates and drops nothing.
pub async fn preview_retention(
    db: &OperatorDb,
    today: Date,
    keep_months: u16,
) -> Result<RetentionPreview, OperatorDbError> {
    let cutoff = retention_cutoff(today, keep_months);
    let (would_drop, vault_rows_would_be_removed) = partitions_then_vault_rows(
        sqlx::query_file_as!(DroppedPartition, "queries/partitions_before.sql", cutoff).fetch_all(db.pool()),
        sqlx::query_file_scalar!("queries/retention_preview_vault.sql", cutoff).fetch_one(db.pool()),
    )
    .await?;
    Ok(RetentionPreview { cutoff, would_drop, vault_rows_would_be_removed })
}

/// Retention's two statements, for [`apply_retention`] and, reading only, [`preview_retention`]:
/// the partitions before the cutoff (dropped, or that would be), then the vault rows no
/// remaining login references (removed, or that would be). The statements are passed unstarted
/// and run one after the other, in that order: retention's sweep must find the old months
/// already gone.
async fn partitions_then_vault_rows(
    partitions: impl Future<Output = Result<Vec<DroppedPartition>, sqlx::Error>>,
    vault_rows: impl Future<Output = Result<i64, sqlx::Error>>,
) -> Result<(Vec<DroppedPartition>, i64), OperatorDbError> {
    let partitions = partitions.await.map_err(OperatorDbError::Query)?;
    let vault_rows = vault_rows.await.map_err(OperatorDbError::Query)?;
    Ok((partitions, vault_rows))
}

/// Deletes every login of `user_id` and the vault rows only those logins referenced (a device
/// or ip another user also logged in with keeps its vault row), in one transaction under the
/// `login_etl_eraser` role, which the loader does not have.
pub async fn erase_user(db: &OperatorDb, user_id: &str) -> Result<ErasureReport, OperatorDbError> {
    let mut tx = db.pool().begin().await.map_err(OperatorDbError::Query)?;
    sqlx::query("SET LOCAL ROLE login_etl_eraser").execute(&mut *tx).await.map_err(|err| {
        match err.as_database_error().and_then(|db| db.code()) {
            // insufficient_privilege
            Some(code) if code == "42501" => OperatorDbError::MissingRole("login_etl_eraser"),
            _ => OperatorDbError::Query(err),
        }
    })?;
    let row = sqlx::query_file!("queries/erase_user.sql", user_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(OperatorDbError::Query)?;
    tx.commit().await.map_err(OperatorDbError::Query)?;
    Ok(ErasureReport { login_rows: row.login_rows, vault_rows: row.vault_rows })
}

/// What one scheduled maintenance run did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MaintenanceReport {
    /// Partitions made ahead (and for rows waiting in the default partition).
    pub created: Vec<CreatedPartition>,
    /// Retention's work, when `keep_months` was given (its partitions are in `created`).
    pub retention: Option<RetentionReport>,
}

/// The scheduled maintenance (the template's maintenance function): partitions for the months
/// ahead, then retention when `keep_months` is set. Idempotent, so a repeated or late run is
/// harmless.
pub async fn scheduled_maintenance(
    db: &OperatorDb,
    today: Date,
    keep_months: Option<u16>,
) -> Result<MaintenanceReport, OperatorDbError> {
    match keep_months {
        // Retention makes the partitions itself first; its list is the report's.
        Some(months) => {
            let mut retention = apply_retention(db, today, months).await?;
            let created = std::mem::take(&mut retention.created);
            Ok(MaintenanceReport { created, retention: Some(retention) })
        }
        None => Ok(MaintenanceReport {
            created: maintain_partitions(db, today, DEFAULT_MONTHS_AHEAD).await?,
            retention: None,
        }),
    }
}

/// Partitions of `user_logins` and their row counts (estimates from the planner's statistics
/// are not good enough for tests and operators deciding on retention).
pub async fn partition_row_counts(db: &OperatorDb) -> Result<Vec<(String, i64)>, OperatorDbError> {
    let rows = sqlx::query!(
        r#"SELECT tableoid::regclass::text AS "partition!", count(*) AS "rows!"
           FROM user_logins GROUP BY 1 ORDER BY 1"#
    )
    .fetch_all(db.pool())
    .await
    .map_err(OperatorDbError::Query)?;
    Ok(rows.into_iter().map(|row| (row.partition, row.rows)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn the_cutoff_keeps_the_current_month_and_n_whole_months_before_it() {
        assert_eq!(retention_cutoff(date!(2026 - 11 - 30), 0), date!(2026 - 11 - 01));
        assert_eq!(retention_cutoff(date!(2026 - 11 - 30), 1), date!(2026 - 10 - 01));
        assert_eq!(retention_cutoff(date!(2026 - 11 - 01), 12), date!(2025 - 11 - 01));
        assert_eq!(retention_cutoff(date!(2026 - 01 - 15), 1), date!(2025 - 12 - 01));
        assert_eq!(retention_cutoff(date!(2026 - 03 - 31), 26), date!(2024 - 01 - 01));
    }
}
