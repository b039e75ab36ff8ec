//! `login-etl-cli migrate` under `sslmode=verify-full` against a server whose certificate
//! chains to a private CA, as RDS's does (issue 21): a PostgreSQL cluster of the test's own
//! that accepts TLS connections only, and a CA made with the openssl CLI. Before the fix
//! `migrate` first asked sqlx whether the database existed over the raw URL, trusting only
//! built-in roots, and failed with DB_CA_BUNDLE set.

use std::path::Path;
use std::process::{Command, Output};

use login_etl_test_support::*;
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgSslMode};

/// `login-etl-cli migrate` with only `DATABASE_URL` (and `DB_CA_BUNDLE` when given).
fn migrate(url: &str, ca_bundle: Option<&Path>) -> Output {
    let mut command = Command::new(login_etl_test_support::cli_binary());
    command.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("DATABASE_URL", url);
    if let Some(bundle) = ca_bundle {
        command.env("DB_CA_BUNDLE", bundle);
    }
    command.arg("migrate").output().expect("run login-etl-cli migrate")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[tokio::test]
async fn migrate_under_verify_full_trusts_db_ca_bundle_and_nothing_else() {
    let ca = TestCa::new();
    let cluster = TestCluster::start_with_tls(&ca);
    let url = format!("postgres://postgres@127.0.0.1:{}/login_etl_tls?sslmode=verify-full", cluster.port);

    // Without the bundle the certificate chains to nothing trusted: refused, saying what to set.
    let untrusted = migrate(&url, None);
    assert!(!untrusted.status.success(), "verify-full without DB_CA_BUNDLE must fail: {}", text(&untrusted));
    assert!(text(&untrusted).contains("set DB_CA_BUNDLE"), "{}", text(&untrusted));

    // Another CA's bundle is no better: the chain is checked, not merely TLS.
    let stranger = TestCa::new();
    let wrong = migrate(&url, Some(&stranger.ca_file()));
    assert!(!wrong.status.success(), "verify-full with another CA must fail: {}", text(&wrong));

    // With the server's CA: the database is created, then migrated, over verified TLS.
    let trusted = migrate(&url, Some(&ca.ca_file()));
    assert!(trusted.status.success(), "migrate with DB_CA_BUNDLE: {}", text(&trusted));
    assert!(text(&trusted).contains("created the database"), "{}", text(&trusted));
    assert!(text(&trusted).contains("migrations applied"), "{}", text(&trusted));

    // Again, now that it exists: nothing to create, still verified.
    let again = migrate(&url, Some(&ca.ca_file()));
    assert!(again.status.success(), "second migrate: {}", text(&again));
    assert!(!text(&again).contains("created the database"), "{}", text(&again));

    // The schema is there (the cluster takes TLS connections only).
    let mut connection = PgConnectOptions::new()
        .host("127.0.0.1")
        .port(cluster.port)
        .username("postgres")
        .database("login_etl_tls")
        .ssl_mode(PgSslMode::VerifyFull)
        .ssl_root_cert(ca.ca_file())
        .connect()
        .await
        .expect("a verified connection");
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE tablename = 'user_logins'")
        .fetch_one(&mut connection)
        .await
        .expect("count");
    assert_eq!(tables, 1, "migrate created user_logins");
}
