//! Fixtures shared by the integration tests: handlers over a test database, SQS records, and a
//! TCP proxy that can cut the database off.
#![allow(dead_code)] // each test crate uses a different subset

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_lambda_events::sqs::SqsEvent;
use login_etl::database::DbTarget;
use login_etl::handler::Handler;
use login_etl::loader::{Loader, PoolSettings};
use login_etl::store::Store;
use sqlx::PgPool;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

// The SQS record builder, the test key and LocalStack's set-up are the crate's own
// `login_etl::testing`, shared with the unit tests and the benches.
pub use login_etl::testing::*;

pub fn fast_pool_settings() -> PoolSettings {
    PoolSettings {
        max_connections: 1,
        acquire_timeout: Duration::from_millis(1500),
        statement_timeout: Duration::from_secs(20),
        idle_timeout: Duration::from_secs(60),
    }
}

/// Where the function's loader connects in these tests: the database behind `pool` (a fresh
/// one per `#[sqlx::test]`), reached directly or, when `LOGIN_ETL_TEST_PGBOUNCER` names a
/// `host:port`, through that PgBouncer in transaction mode (`make test` runs the database
/// tests both ways). Test databases use trust authentication: no password.
pub fn loader_target(pool: &PgPool) -> DbTarget {
    let options = pool.connect_options();
    let mut target = direct_target(&options);
    if let Ok(pgbouncer) = std::env::var("LOGIN_ETL_TEST_PGBOUNCER") {
        let (host, port) = pgbouncer.rsplit_once(':').expect("LOGIN_ETL_TEST_PGBOUNCER is host:port");
        target.host = host.to_owned();
        target.port = port.parse().expect("LOGIN_ETL_TEST_PGBOUNCER port");
    }
    target
}

/// Whether these tests run through PgBouncer (see [`loader_target`]).
pub fn through_pgbouncer() -> bool {
    std::env::var("LOGIN_ETL_TEST_PGBOUNCER").is_ok()
}

/// A handler writing to the database behind `pool`.
pub fn handler_for(pool: &PgPool) -> Handler {
    handler_with_target(loader_target(pool))
}

pub fn handler_with_target(target: DbTarget) -> Handler {
    handler_with_settings(target, &fast_pool_settings())
}

pub fn handler_with_settings(target: DbTarget, settings: &PoolSettings) -> Handler {
    Handler::new(masker(), Loader::new(target, settings, None).expect("loader"))
}

/// A handler whose pool can serve `connections` concurrent batches.
pub fn handler_for_pool_size(pool: &PgPool, connections: u32) -> Handler {
    let settings = PoolSettings { max_connections: connections, ..fast_pool_settings() };
    handler_with_settings(loader_target(pool), &settings)
}

/// The operators' store over the same database (migrations, reports, vault reads).
pub fn store_for(pool: &PgPool) -> Store {
    Store::connect_lazy((*pool.connect_options()).clone(), 2)
}

pub fn load_event(path: &str) -> SqsEvent {
    let text = std::fs::read_to_string(path).expect("event file");
    serde_json::from_str(&text).expect("event JSON")
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
    sqlx::query_scalar::<_, i64>("SELECT count(*) FROM user_logins").fetch_one(pool).await.expect("count")
}

/// A TCP proxy in front of PostgreSQL that a test can cut (closing every open connection and
/// refusing new ones, as a database restart or network partition does) and restore.
pub struct SwitchableProxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    cut: Arc<Notify>,
}

impl SwitchableProxy {
    pub async fn start(upstream_port: u16) -> SwitchableProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let cut = Arc::new(Notify::new());
        let (accept_up, accept_cut) = (up.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accept_up.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let cut = accept_cut.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream_port)).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.notified() => {}
                    }
                });
            }
        });
        SwitchableProxy { port, up, cut }
    }

    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.notify_waiters();
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// A PostgreSQL cluster of the test's own (initdb + pg_ctl in a temp dir, trust auth, its own
/// port), which the test may stop and start: the shared server is never touched.
pub struct TestCluster {
    pub port: u16,
    dir: std::path::PathBuf,
}

impl TestCluster {
    const BIN: &'static str = "/usr/lib/postgresql/15/bin";

    /// Runs a PostgreSQL tool as the `postgres` user when we are root (initdb refuses root).
    fn tool(name: &str) -> std::process::Command {
        let path = format!("{}/{name}", Self::BIN);
        let root = std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
        if root {
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", "postgres", "--", &path]);
            command
        } else {
            std::process::Command::new(path)
        }
    }

    fn run(mut command: std::process::Command, what: &str) {
        let output = command.output().unwrap_or_else(|err| panic!("{what}: {err}"));
        assert!(output.status.success(), "{what}: {}", String::from_utf8_lossy(&output.stderr));
    }

    pub fn start() -> TestCluster {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let dir = std::env::temp_dir().join(unique_name("pg-cluster"));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        let _ = std::process::Command::new("chown").args(["postgres:postgres"]).arg(&dir).status();
        let mut initdb = Self::tool("initdb");
        initdb.args(["--auth=trust", "--username=postgres", "--no-sync", "-D"]).arg(dir.join("data"));
        Self::run(initdb, "initdb");
        let cluster = TestCluster { port, dir };
        cluster.start_server();
        cluster
    }

    pub fn start_server(&self) {
        let mut pg_ctl = Self::tool("pg_ctl");
        pg_ctl
            .args(["start", "-w", "-t", "30", "-l"])
            .arg(self.dir.join("log"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-o")
            .arg(format!("-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off", self.port, self.dir.display()));
        Self::run(pg_ctl, "pg_ctl start");
    }

    /// Stops the server as a crash or failover would look to clients (`immediate`).
    pub fn stop_server(&self) {
        let mut pg_ctl = Self::tool("pg_ctl");
        pg_ctl.args(["stop", "-w", "-m", "immediate", "-D"]).arg(self.dir.join("data"));
        Self::run(pg_ctl, "pg_ctl stop");
    }

    pub fn url(&self, dbname: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{dbname}?sslmode=disable", self.port)
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let mut pg_ctl = Self::tool("pg_ctl");
        pg_ctl.args(["stop", "-m", "immediate", "-D"]).arg(self.dir.join("data"));
        let _ = pg_ctl.output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
