//! Which task the bootstrap runs ([`Task`]) and the maintenance task's retention
//! ([`LifecycleConfig`]).

use super::{ConfigError, invalid, number};

/// What the Lambda bootstrap does: load logins from SQS (the default) or, in the scheduled
/// maintenance function `template.yaml` adds with `RetentionKeepMonths`, keep partitions and
/// retention (`LOGIN_ETL_TASK=maintenance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Task {
    #[default]
    LoadLogins,
    Maintenance,
}

/// The data lifecycle's settings for the scheduled maintenance task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LifecycleConfig {
    /// `LOGIN_ETL_TASK`: `load` (default) or `maintenance`.
    pub task: Task,
    /// `RETENTION_KEEP_MONTHS` (1 to 1200): whole months kept before the current one by the
    /// maintenance task; unset: it only keeps partitions ahead.
    pub retention_keep_months: Option<u16>,
}

pub(super) fn lifecycle(get: &impl Fn(&str) -> Option<String>) -> Result<LifecycleConfig, ConfigError> {
    let task = match get("LOGIN_ETL_TASK").as_deref().map(str::trim) {
        None | Some("load") => Task::LoadLogins,
        Some("maintenance") => Task::Maintenance,
        Some(_) => return Err(invalid("LOGIN_ETL_TASK", "must be load or maintenance")),
    };
    let retention_keep_months = match get("RETENTION_KEEP_MONTHS") {
        None => None,
        Some(_) => Some(number(get, "RETENTION_KEEP_MONTHS", 0, 1..=1200)? as u16),
    };
    Ok(LifecycleConfig { task, retention_keep_months })
}
