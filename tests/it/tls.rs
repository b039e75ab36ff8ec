//! `login-etl-cli migrate` under `sslmode=verify-full` against a server whose certificate
//! chains to a private CA, as RDS's does: a PostgreSQL cluster of the test's own
//! that accepts TLS connections only, and a CA made with the openssl CLI. Every connection of
//! `migrate` counts, its first one too (whether the database exists): asked through sqlx over
//! the raw URL, trusting only built-in roots, it fails with DB_CA_BUNDLE set.
//!
//! Every connection that is meant to verify is proven to, one at a time: a proxy
//! hands the Nth connection a command opens to an impostor (a server whose certificate
//! another CA signed) and every other one to the genuine server. Checking only the whole
//! command would let one connection stop verifying while another's failure hides it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// A TCP proxy on 127.0.0.1 that sends its `impostor_at`-th connection (from 1; none when
/// `None`) to `impostor` and every other one to `genuine`, and counts them. Both servers'
/// certificates name 127.0.0.1, so only the chain tells them apart.
struct RoutingProxy {
    port: u16,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl RoutingProxy {
    async fn start(genuine: u16, impostor: u16, impostor_at: Option<usize>) -> RoutingProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("proxy port");
        let port = listener.local_addr().expect("proxy address").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let nth = counted.fetch_add(1, Ordering::SeqCst) + 1;
                let upstream = if Some(nth) == impostor_at { impostor } else { genuine };
                tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        RoutingProxy { port, connections, task }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for RoutingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn migrate_through(port: u16, database: &str, ca_bundle: PathBuf) -> Output {
    let url = format!("postgres://postgres@127.0.0.1:{port}/{database}?sslmode=verify-full");
    tokio::task::spawn_blocking(move || migrate(&url, Some(&ca_bundle))).await.expect("migrate ran")
}

/// The function's handler on events/batch.json (`login-etl-cli invoke`), its database under
/// `sslmode=verify-full` with `DB_CA_BUNDLE`: the loader's own TLS (src/adapters/tls.rs).
async fn invoke_through(port: u16, database: &str, ca_bundle: PathBuf) -> Output {
    let url = format!("postgres://postgres@127.0.0.1:{port}/{database}?sslmode=verify-full");
    let event = concat!(env!("CARGO_MANIFEST_DIR"), "/events/batch.json");
    tokio::task::spawn_blocking(move || {
        Command::new(login_etl_test_support::cli_binary())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", url)
            .env("DB_CA_BUNDLE", ca_bundle)
            .env("MASKING_KEY", "6c6f67696e2d65746c2064656d6f206b6579202d206e6f742061207365637265742021")
            .args(["invoke", event])
            .output()
            .expect("run login-etl-cli invoke")
    })
    .await
    .expect("invoke ran")
}

/// Runs `attempt(port, nth)` once per connection of the `opened` it makes, with that one
/// routed to `impostor` and the others to `genuine`: each time it must not have `succeeded`,
/// and the impostor must authorize no session (a connection that did not verify would get one).
async fn each_connection_refuses_the_impostor<F, Fut>(
    genuine: &TestCluster,
    impostor: &TestCluster,
    opened: usize,
    who: &str,
    attempt: F,
    succeeded: impl Fn(&Output) -> bool,
) where
    F: Fn(u16, usize) -> Fut,
    Fut: std::future::Future<Output = Output>,
{
    for nth in 1..=opened {
        let proxy = RoutingProxy::start(genuine.port, impostor.port, Some(nth)).await;
        let output = attempt(proxy.port, nth).await;
        assert!(
            proxy.connections() >= nth,
            "{who} opened {} connections this time, not the {opened} counted",
            proxy.connections()
        );
        assert!(
            !succeeded(&output),
            "{who}'s connection {nth} of {opened} reached a server whose certificate another CA signed, and it \
             succeeded: {}",
            text(&output)
        );
        assert_eq!(
            impostor.sessions_authorized(),
            0,
            "{who}'s connection {nth} of {opened} did not verify the certificate: the impostor authorized it ({})",
            text(&output)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_migrate_and_the_function_open_verifies_the_certificate() {
    let ca = TestCa::new();
    let genuine = TestCluster::start_with_tls(&ca);
    let stranger = TestCa::new();
    let impostor = TestCluster::start_with_tls(&stranger);

    // How many connections a migrate that creates its database opens: the check whether it
    // exists, the one that creates it, then the migration's own.
    let counting = RoutingProxy::start(genuine.port, impostor.port, None).await;
    let output = migrate_through(counting.port, "login_etl_tls_routes", ca.ca_file()).await;
    assert!(output.status.success(), "migrate through the proxy: {}", text(&output));
    assert!(text(&output).contains("created the database"), "{}", text(&output));
    let opened = counting.connections();
    assert!(opened >= 3, "migrate opened {opened} connections; the create path alone opens two");
    drop(counting);

    // Each of them, in turn, meets the impostor: migrate fails, and the impostor never
    // authorizes a session (a connection that did not verify would get one).
    let migrate_nth = |port, nth| {
        let bundle = ca.ca_file();
        async move { migrate_through(port, &format!("login_etl_tls_route_{nth}"), bundle).await }
    };
    each_connection_refuses_the_impostor(&genuine, &impostor, opened, "migrate", migrate_nth, |output| {
        output.status.success()
    })
    .await;

    // The function's connections, the same way: all to the genuine server first (the batch
    // loads), then each in turn to the impostor.
    let counting = RoutingProxy::start(genuine.port, impostor.port, None).await;
    let output = invoke_through(counting.port, "login_etl_tls_routes", ca.ca_file()).await;
    assert!(text(&output).contains("\"RecordsInserted\":10"), "the batch through the proxy: {}", text(&output));
    let opened = counting.connections();
    assert!(opened >= 1, "the function opened no connection");
    drop(counting);
    let invoke_nth = |port, _| invoke_through(port, "login_etl_tls_routes", ca.ca_file());
    each_connection_refuses_the_impostor(&genuine, &impostor, opened, "the function", invoke_nth, |output| {
        text(output).contains("\"RecordsInserted\":10")
    })
    .await;
}
