//! PostgreSQL for operators ([`OperatorDb`]): reports and vault reads over sqlx sessions, and
//! the pool that migrations and the data lifecycle (`lifecycle`) run on.
//!
//! These commands take advisory locks (migrations) and may rely on session state, so they
//! connect to the server itself, never through a transaction-mode pooler. The function's own
//! insert path is `loader`, which is pooler-safe.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use login_etl_core::mask::MaskedField;

/// What went wrong talking to PostgreSQL. Display texts carry no row data.
#[derive(Debug, thiserror::Error)]
pub enum OperatorDbError {
    #[error("a query failed")]
    Query(#[source] sqlx::Error),
    #[error("connecting to the database failed")]
    Connect(#[source] sqlx::Error),
    #[error("applying the migrations failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("the database user is not a member of {0}; grant it (GRANT {0} TO <user>) to run this command")]
    MissingRole(&'static str),
}

/// The `user_logins` table behind an sqlx pool, for operator commands. Not the function's
/// store (that is `loader::Loader`, the `sqs_batch::Store` port's adapter).
#[derive(Debug, Clone)]
pub struct OperatorDb {
    pool: PgPool,
}

impl OperatorDb {
    /// Builds a pool of up to `max_connections` without connecting yet.
    pub fn connect_lazy(options: PgConnectOptions, max_connections: u32) -> OperatorDb {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options);
        OperatorDb { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Opens one connection and closes it: a wrong address, refused credentials or an
    /// untrusted certificate then fail at once with the driver's own error. (The lazy pool
    /// retries a refused connection until its acquire timeout and then says only "pool timed
    /// out while waiting for an open connection".)
    pub async fn check_connection(&self) -> Result<(), OperatorDbError> {
        use sqlx::{ConnectOptions, Connection};
        let connection = self.pool.connect_options().connect().await.map_err(OperatorDbError::Connect)?;
        let _ = connection.close().await;
        Ok(())
    }

    /// Creates the database `options` name unless it exists; returns whether it did. It
    /// connects with `options` as they are (the TLS mode and `DB_CA_BUNDLE`'s roots included):
    /// first to that database, and only when the server says it does not exist (SQLSTATE
    /// 3D000), to the server's `postgres` database to create it. (sqlx's `database_exists` on
    /// the raw URL trusted only its built-in roots, so `migrate` under `verify-full` failed
    /// against RDS before `DB_CA_BUNDLE` was ever applied.)
    pub async fn create_database_if_missing(options: &PgConnectOptions) -> Result<bool, OperatorDbError> {
        use sqlx::{ConnectOptions, Connection};
        let missing = match options.connect().await {
            Ok(connection) => {
                let _ = connection.close().await;
                return Ok(false);
            }
            Err(err) if sqlstate(&err).as_deref() == Some("3D000") => err,
            Err(err) => return Err(OperatorDbError::Connect(err)),
        };
        let name = options.get_database().ok_or(OperatorDbError::Connect(missing))?;
        let mut server = options.clone().database("postgres").connect().await.map_err(OperatorDbError::Connect)?;
        // An identifier cannot be a bind parameter: quoted, with its quotes doubled.
        let create = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        let created = match sqlx::raw_sql(&create).execute(&mut server).await {
            Ok(_) => true,
            // Another migrate created it meanwhile (duplicate_database).
            Err(err) if sqlstate(&err).as_deref() == Some("42P04") => false,
            Err(err) => return Err(OperatorDbError::Query(err)),
        };
        let _ = server.close().await;
        Ok(created)
    }
}

fn sqlstate(err: &sqlx::Error) -> Option<String> {
    err.as_database_error().and_then(|db| db.code()).map(|code| code.into_owned())
}

/// A loaded row as operators see it: masked values only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedRow {
    pub user_id: Option<String>,
    pub device_type: Option<String>,
    pub locale: Option<String>,
    pub app_version: Option<String>,
    pub masked_ip: Option<String>,
    /// The address's network (`203.0.113.0/24`), when the deployment keeps it (`MASKING_IP`).
    pub ip_prefix: Option<String>,
    pub masked_device_id: Option<String>,
    pub create_date: Option<time::Date>,
    /// `hmac-sha256` or `sha256`.
    pub masking_scheme: Option<String>,
    /// The id of the key that masked the row (NULL: the `sha256` scheme, or loaded before
    /// migration 0008).
    pub masking_key_id: Option<String>,
}

/// How many rows one masking key (or none) produced: after a rotation, which rows are whose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowsByKey {
    pub masking_scheme: Option<String>,
    pub masking_key_id: Option<String>,
    pub rows: i64,
    pub first_loaded: Option<time::OffsetDateTime>,
    pub last_loaded: Option<time::OffsetDateTime>,
}

/// What `login-etl-cli report` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSummary {
    pub total_rows: i64,
    pub rows_last_hour: i64,
    /// Per masking key, the oldest first.
    pub by_key: Vec<RowsByKey>,
    pub latest: Vec<LoadedRow>,
}

impl OperatorDb {
    /// Row counts and the `limit` most recently loaded rows.
    pub async fn summary(&self, limit: i64) -> Result<TableSummary, OperatorDbError> {
        let counts = sqlx::query!(
            r#"SELECT count(*) AS "total!", count(*) FILTER (WHERE loaded_at > now() - interval '1 hour') AS "last_hour!"
               FROM user_logins"#
        )
        .fetch_one(&self.pool)
        .await
        .map_err(OperatorDbError::Query)?;
        let by_key = sqlx::query_as!(
            RowsByKey,
            r#"SELECT masking_scheme::text AS masking_scheme, masking_key_id::text AS masking_key_id,
                      count(*) AS "rows!", min(loaded_at) AS first_loaded, max(loaded_at) AS last_loaded
               FROM user_logins GROUP BY 1, 2 ORDER BY 4, 2"#
        )
        .fetch_all(&self.pool)
        .await
        .map_err(OperatorDbError::Query)?;
        let latest = sqlx::query_as!(
            LoadedRow,
            "SELECT user_id, device_type, locale, app_version, masked_ip, ip_prefix::text AS ip_prefix,
                    masked_device_id, create_date, masking_scheme, masking_key_id
             FROM user_logins ORDER BY id DESC LIMIT $1",
            limit
        )
        .fetch_all(&self.pool)
        .await
        .map_err(OperatorDbError::Query)?;
        Ok(TableSummary { total_rows: counts.total, rows_last_hour: counts.last_hour, by_key, latest })
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

impl SealedValue {
    /// The field the row is filed under; `None` for a name this version does not know.
    pub fn masked_field(&self) -> Option<MaskedField> {
        MaskedField::from_name(&self.field)
    }
}

/// What to recover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultLookup {
    /// One masked value of one field.
    Masked { field: MaskedField, masked_value: String },
    /// Every ip and device id the user logged in with.
    UserId(String),
}

/// As the operator asked for it (`masked_ip zz…`, `user_id "u-1"`), for messages.
impl std::fmt::Display for VaultLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VaultLookup::Masked { field, masked_value } => write!(f, "masked_{} {masked_value}", field.name()),
            VaultLookup::UserId(user_id) => write!(f, "user_id \"{}\"", user_id.escape_debug()),
        }
    }
}

impl OperatorDb {
    /// Reads sealed originals from the vault. Needs the `login_etl_recovery` role's SELECT;
    /// the loader role gets "permission denied".
    pub async fn sealed_values(&self, lookup: &VaultLookup) -> Result<Vec<SealedValue>, OperatorDbError> {
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
        query.map_err(OperatorDbError::Query)
    }
}
