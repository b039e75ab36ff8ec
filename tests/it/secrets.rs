//! Cold start from Secrets Manager (LocalStack) and credential rotation against the real
//! PostgreSQL.

use std::collections::HashMap;

use login_etl::{Config, SecretStore, StartupError};
use login_etl_core::mask::MaskedField;
use login_etl_test_support::*;
use sqlx::PgPool;

async fn secret_store() -> SecretStore {
    SecretStore::new(&localstack_config().await)
}

fn config(vars: &[(&str, &str)]) -> Config {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_lookup(|name| vars.get(name).cloned()).expect("valid configuration")
}

/// The RDS-format secret for the test database, as user `username`.
fn database_secret(pool: &PgPool, username: &str) -> String {
    let options = pool.connect_options();
    serde_json::json!({
        "engine": "postgres", "username": username, "password": "",
        "host": options.get_host(), "port": options.get_port(),
        "dbname": options.get_database().unwrap_or("postgres"),
    })
    .to_string()
}

#[sqlx::test(migrations = "./migrations")]
async fn the_database_and_the_masking_key_come_from_secrets(pool: PgPool) {
    let secrets = secret_store().await;
    let (db_id, key_id) = (unique_name("db"), unique_name("key"));
    secrets.put(&db_id, &database_secret(&pool, "postgres")).await.expect("db secret");
    secrets.put(&key_id, TEST_KEY_HEX).await.expect("key secret");

    let config = config(&[("DB_SECRET_ID", &db_id), ("MASKING_KEY_SECRET_ID", &key_id)]);
    let handler = login_etl::build_handler_with_secrets(&config, secrets).await.expect("cold start");
    let outcome = handler.handle(&[sqs_message("m1", &login_body("u", "10.1.2.3", "d-1"))]).await.expect("handled");
    assert_eq!(outcome.records.succeeded(), 1);

    let masked: String = sqlx::query_scalar("SELECT masked_ip FROM user_logins").fetch_one(&pool).await.expect("row");
    assert_eq!(masked, masker().mask(MaskedField::Ip, "10.1.2.3"), "masked with the key from the secret");
}

async fn startup_error(vars: &[(&str, &str)]) -> String {
    let err = login_etl::build_handler_with_secrets(&config(vars), secret_store().await)
        .await
        .err()
        .expect("the cold start must fail");
    assert!(matches!(err, StartupError::Secret(_)));
    format!("{:#}", anyhow::Error::from(err))
}

#[tokio::test]
async fn malformed_or_missing_secrets_stop_the_cold_start_with_a_clear_error() {
    let secrets = secret_store().await;
    let key = unique_name("key");
    secrets.put(&key, TEST_KEY_HEX).await.expect("key");

    let not_json = unique_name("db");
    secrets.put(&not_json, "password=hunter2").await.expect("secret");
    let text = startup_error(&[("DB_SECRET_ID", &not_json), ("MASKING_KEY_SECRET_ID", &key)]).await;
    assert!(text.contains(&not_json) && text.contains("malformed"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");

    let no_host = unique_name("db");
    secrets.put(&no_host, r#"{"username":"u","password":"hunter2"}"#).await.expect("secret");
    let text = startup_error(&[("DB_SECRET_ID", &no_host), ("MASKING_KEY_SECRET_ID", &key)]).await;
    assert!(text.contains("`host` is missing"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");

    let short_key = unique_name("key");
    secrets.put(&short_key, "0badc0de").await.expect("secret");
    let text =
        startup_error(&[("DATABASE_URL", "postgres://127.0.0.1/x"), ("MASKING_KEY_SECRET_ID", &short_key)]).await;
    assert!(text.contains(&short_key) && text.contains("at least 32"), "{text}");
    assert!(!text.contains("0badc0de"), "{text}");

    let missing = unique_name("absent");
    let text = startup_error(&[("DATABASE_URL", "postgres://127.0.0.1/x"), ("MASKING_KEY_SECRET_ID", &missing)]).await;
    assert!(text.contains(&format!("reading secret `{missing}` failed")), "{text}");
    assert!(text.contains("ResourceNotFound"), "{text}");
}

/// Rotation with RDS's alternating-users strategy: the secret moves from user A to user B and
/// A may no longer log in. (The test server trusts local connections, so a password change
/// alone would not be refused; a role that cannot log in is, with the same SQLSTATE class 28.)
#[sqlx::test(migrations = "./migrations")]
async fn a_rotated_secret_is_re_read_when_the_database_refuses_the_old_credentials(pool: PgPool) {
    let (user_a, user_b) = (unique_name("rot_a").replace('-', "_"), unique_name("rot_b").replace('-', "_"));
    for user in [&user_a, &user_b] {
        sqlx::raw_sql(&format!("CREATE ROLE {user} LOGIN IN ROLE login_etl_loader"))
            .execute(&pool)
            .await
            .expect("role");
    }
    let secrets = secret_store().await;
    let (db_id, key_id) = (unique_name("db"), unique_name("key"));
    secrets.put(&db_id, &database_secret(&pool, &user_a)).await.expect("db secret");
    secrets.put(&key_id, TEST_KEY_HEX).await.expect("key secret");
    let config =
        config(&[("DB_SECRET_ID", &db_id), ("MASKING_KEY_SECRET_ID", &key_id), ("DB_ACQUIRE_TIMEOUT_MS", "2000")]);
    let handler = login_etl::build_handler_with_secrets(&config, secrets.clone()).await.expect("cold start");
    assert_eq!(
        handler
            .handle(&[sqs_message("before", &login_body("u", "10.0.0.1", "d"))])
            .await
            .expect("ok")
            .records
            .succeeded(),
        1
    );

    // Rotation: B becomes current, A is locked out and its sessions end.
    secrets.put(&db_id, &database_secret(&pool, &user_b)).await.expect("rotate");
    sqlx::raw_sql(&format!(
        "ALTER ROLE {user_a} NOLOGIN; SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{user_a}';"
    ))
    .execute(&pool)
    .await
    .expect("lock out A");

    let after = handler.handle(&[sqs_message("after", &login_body("u", "10.0.0.1", "d"))]).await.expect("handled");
    assert_eq!(
        after.records.succeeded(),
        1,
        "the batch succeeds after re-reading the secret: {:?}",
        after.records.failures_by_code()
    );
    assert_eq!(row_count(&pool).await, 2);
    let sessions: Vec<String> = sqlx::query_scalar(
        "SELECT usename::text FROM pg_stat_activity WHERE application_name = 'login-etl' AND datname = current_database()",
    )
    .fetch_all(&pool)
    .await
    .expect("sessions");
    assert_eq!(sessions, std::slice::from_ref(&user_b));

    drop(handler);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    sqlx::raw_sql(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename IN ('{user_a}', '{user_b}');"
    ))
    .execute(&pool)
    .await
    .expect("end sessions");
    for user in [&user_a, &user_b] {
        sqlx::raw_sql(&format!("DROP ROLE IF EXISTS {user}")).execute(&pool).await.ok();
    }
}
