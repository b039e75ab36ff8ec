//! The PostgreSQL adapter: one lazily connecting pool per instance, one statement per batch.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::batch::{LoginRows, VaultRows};
use crate::mask::{MaskedField, MaskingMode};

/// How the pool behaves. The defaults suit a Lambda instance, which runs one invocation at a
/// time and may sit frozen for minutes between two of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// One connection per concurrent invocation; a Lambda instance needs one.
    pub max_connections: u32,
    /// How long a batch waits for a connection before it is failed (and redelivered).
    pub acquire_timeout: Duration,
    /// Server-side cap on one statement, so a stuck insert cannot eat the function's timeout.
    pub statement_timeout: Duration,
    /// Connections idle longer than this are closed rather than trusted after a freeze.
    pub idle_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_connections: 1,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// What went wrong talking to PostgreSQL. Display texts carry no row data.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the batch insert failed")]
    Insert(#[source] sqlx::Error),
    #[error("a query failed")]
    Query(#[source] sqlx::Error),
    #[error("applying the migrations failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Whether the server refused our credentials (SQLSTATE class 28), the sign that a
    /// rotated password should be re-read.
    pub fn is_auth_failure(&self) -> bool {
        match self {
            StoreError::Insert(sqlx::Error::Database(db)) => db.code().is_some_and(|code| code.starts_with("28")),
            _ => false,
        }
    }
}

/// The `user_logins` table behind a pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Builds the pool without connecting: a cold start must not fail because the database
    /// blinked, and each batch connects (or reconnects) when it needs to.
    pub fn connect_lazy(options: PgConnectOptions, settings: &PoolSettings) -> Store {
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .min_connections(0)
            .acquire_timeout(settings.acquire_timeout)
            .idle_timeout(settings.idle_timeout)
            // A connection may have gone stale while the instance was frozen: check it first.
            .test_before_acquire(true)
            .connect_lazy_with(with_session_settings(options, settings));
        Store { pool }
    }

    /// Opens new connections with other credentials (after a secret rotation). Connections
    /// already open stay valid: PostgreSQL checks a password only when a session starts.
    pub fn replace_connect_options(&self, options: PgConnectOptions, settings: &PoolSettings) {
        self.pool.set_connect_options(with_session_settings(options, settings));
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies `migrations/` (embedded at build time). Safe to run concurrently: sqlx takes an
    /// advisory lock.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations").run(&self.pool).await.map_err(StoreError::Migrate)
    }

    /// Inserts a batch in one statement (so one implicit transaction and one round trip,
    /// whatever the batch size) and returns how many rows were new. Rows whose `message_id`
    /// already exists are skipped: a redelivered message never makes a second row.
    ///
    /// The vault's sealed originals go in through a data-modifying CTE of the same statement:
    /// a row never exists without its recoverable original, and a failed batch leaves nothing
    /// in the vault. Vault rows already present are kept as they are.
    ///
    /// `ON CONFLICT DO NOTHING` names no conflict target on purpose: a target needs SELECT on
    /// its columns, and the loader role has INSERT only. The table's only unique keys are
    /// `message_id` and the generated `id`, so the effect is the same.
    pub async fn insert(&self, rows: &LoginRows, masking_mode: MaskingMode) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        // With the vault off its arrays are empty and the CTE inserts nothing.
        let no_vault = VaultRows::default();
        let vault = rows.vault.as_ref().unwrap_or(&no_vault);
        let result = sqlx::query!(
            r#"
            WITH sealed AS (
                INSERT INTO pii_vault.sealed_values (field, masked_value, sealed, key_id)
                SELECT field, masked_value, sealed, $14
                FROM UNNEST($11::text[], $12::text[], $13::bytea[]) AS v(field, masked_value, sealed)
                ON CONFLICT DO NOTHING
            )
            INSERT INTO user_logins (message_id, user_id, device_type, masked_ip, masked_device_id,
                                     locale, app_version, sent_at, create_date, masking_scheme)
            SELECT message_id, user_id, device_type, masked_ip, masked_device_id,
                   locale, app_version, sent_at, create_date, $10
            FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                        $6::text[], $7::text[], $8::timestamptz[], $9::date[])
                 AS batch(message_id, user_id, device_type, masked_ip, masked_device_id,
                          locale, app_version, sent_at, create_date)
            ON CONFLICT DO NOTHING
            "#,
            &rows.message_id,
            &rows.user_id,
            &rows.device_type as &[Option<String>],
            &rows.masked_ip as &[Option<String>],
            &rows.masked_device_id as &[Option<String>],
            &rows.locale as &[Option<String>],
            &rows.app_version as &[Option<String>],
            &rows.sent_at,
            &rows.create_date,
            masking_mode.name(),
            &vault.field,
            &vault.masked_value,
            &vault.sealed,
            &vault.key_id,
        )
        .execute(&self.pool)
        .await
        .map_err(StoreError::Insert)?;
        Ok(result.rows_affected())
    }
}

/// A loaded row as operators see it: masked values only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedRow {
    pub user_id: Option<String>,
    pub device_type: Option<String>,
    pub locale: Option<String>,
    pub app_version: Option<String>,
    pub masked_ip: Option<String>,
    pub masked_device_id: Option<String>,
    pub create_date: Option<time::Date>,
}

/// What `login-etl-cli report` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSummary {
    pub total_rows: i64,
    pub rows_last_hour: i64,
    pub latest: Vec<LoadedRow>,
}

impl Store {
    /// Row counts and the `limit` most recently loaded rows.
    pub async fn summary(&self, limit: i64) -> Result<TableSummary, StoreError> {
        let counts = sqlx::query!(
            r#"SELECT count(*) AS "total!", count(*) FILTER (WHERE loaded_at > now() - interval '1 hour') AS "last_hour!"
               FROM user_logins"#
        )
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::Query)?;
        let latest = sqlx::query_as!(
            LoadedRow,
            "SELECT user_id, device_type, locale, app_version, masked_ip, masked_device_id, create_date
             FROM user_logins ORDER BY id DESC LIMIT $1",
            limit
        )
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::Query)?;
        Ok(TableSummary { total_rows: counts.total, rows_last_hour: counts.last_hour, latest })
    }
}

/// A vault row as the recovery role reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedValue {
    pub field: String,
    pub masked_value: String,
    pub sealed: Vec<u8>,
    pub key_id: String,
}

/// What to recover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultLookup {
    /// One masked value of one field.
    Masked { field: MaskedField, masked_value: String },
    /// Every ip and device id the user logged in with.
    UserId(String),
}

impl Store {
    /// Reads sealed originals from the vault. Needs the `login_etl_recovery` role's SELECT;
    /// the loader role gets "permission denied".
    pub async fn sealed_values(&self, lookup: &VaultLookup) -> Result<Vec<SealedValue>, StoreError> {
        let query = match lookup {
            VaultLookup::Masked { field, masked_value } => {
                sqlx::query_as!(
                    SealedValue,
                    "SELECT field, masked_value, sealed, key_id FROM pii_vault.sealed_values
                     WHERE field = $1 AND masked_value = $2",
                    field.name(),
                    masked_value
                )
                .fetch_all(&self.pool)
                .await
            }
            VaultLookup::UserId(user_id) => {
                sqlx::query_as!(
                    SealedValue,
                    "SELECT v.field, v.masked_value, v.sealed, v.key_id
                 FROM pii_vault.sealed_values v
                 JOIN (SELECT 'ip' AS field, masked_ip AS masked_value FROM user_logins WHERE user_id = $1
                       UNION
                       SELECT 'device_id', masked_device_id FROM user_logins WHERE user_id = $1) AS used
                   USING (field, masked_value)
                 ORDER BY v.field, v.masked_value",
                    user_id
                )
                .fetch_all(&self.pool)
                .await
            }
        };
        query.map_err(StoreError::Query)
    }
}

fn with_session_settings(options: PgConnectOptions, settings: &PoolSettings) -> PgConnectOptions {
    let statement_timeout = format!("{}ms", settings.statement_timeout.as_millis());
    options.application_name("login-etl").options([("statement_timeout", statement_timeout.as_str())])
}
