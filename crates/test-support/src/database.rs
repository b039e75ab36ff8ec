//! A test database as the function and the CLI reach it (targets, URLs), the schema at an older
//! migration or as the take-home left it, the operators' store, and what tests do to the table
//! (a trigger that refuses a user, counting rows).

use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

use login_etl::{DbTarget, OperatorDb, SslMode};

/// The server `options` name (trust authentication, no TLS), without any pooler in between.
pub fn direct_target(options: &PgConnectOptions) -> DbTarget {
    DbTarget {
        host: options.get_host().to_owned(),
        port: options.get_port(),
        user: options.get_username().to_owned(),
        password: None,
        dbname: options.get_database().unwrap_or("postgres").to_owned(),
        ssl_mode: SslMode::Disable,
    }
}

/// `DATABASE_URL` for the database `options` name (trust authentication), for a CLI process.
pub fn database_url(options: &PgConnectOptions) -> String {
    format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("postgres")
    )
}

/// Applies migrations 0001..=`last` only: the schema as an older release left it, for
/// upgrade tests and before/after benchmarks.
pub async fn migrate_through(pool: &PgPool, last: i64) -> Result<(), sqlx::migrate::MigrateError> {
    let mut migrator = sqlx::migrate!("../../migrations");
    migrator.migrations =
        std::borrow::Cow::Owned(migrator.migrations.iter().filter(|m| m.version <= last).cloned().collect());
    migrator.run(pool).await
}

/// The table as the original take-home created it, with two rows already in it (`legacy-1`
/// of 2023-01-02, `legacy-2` of 2023-01-03 with NULL values), for the in-place upgrade tests.
pub async fn create_take_home_table(pool: &PgPool) {
    sqlx::raw_sql(
        "CREATE TABLE user_logins (user_id varchar(128), device_type varchar(32), masked_ip varchar(256),
                                   masked_device_id varchar(256), locale varchar(32), app_version integer,
                                   create_date date);
         INSERT INTO user_logins VALUES
           ('legacy-1', 'android', 'aaaa', 'bbbb', 'RU', 230, '2023-01-02'),
           ('legacy-2', 'ios', NULL, NULL, NULL, NULL, '2023-01-03');",
    )
    .execute(pool)
    .await
    .expect("the take-home's table");
}

/// The operators' pool ([`OperatorDb`]) over the same database (migrations, reports, vault reads).
pub fn operator_db_for(pool: &PgPool) -> OperatorDb {
    OperatorDb::connect_lazy((*pool.connect_options()).clone(), 2)
}

/// A trigger that rejects user `poison`, so the database refuses a batch statement mid-way.
pub async fn install_poison_trigger(pool: &PgPool) {
    sqlx::raw_sql(
        "CREATE FUNCTION reject_poison() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.user_id = 'poison' THEN RAISE EXCEPTION 'rejected by test trigger'; END IF; RETURN NEW; END $$;
         CREATE TRIGGER reject_poison BEFORE INSERT ON user_logins FOR EACH ROW EXECUTE FUNCTION reject_poison();",
    )
    .execute(pool)
    .await
    .expect("trigger");
}

pub async fn row_count(pool: &PgPool) -> i64 {
    count(pool, "SELECT count(*) FROM user_logins").await
}

/// The sessions of this database waiting on a lock now (a batch's insert held behind a row
/// lock, or one left queued after its deadline).
pub async fn sessions_waiting_on_a_lock(pool: &PgPool) -> i64 {
    count(pool, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
        .await
}

/// The one number `sql` (a `SELECT count(*) …`) answers; a failure names the statement.
pub async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await.unwrap_or_else(|err| panic!("{sql}: {err}"))
}
