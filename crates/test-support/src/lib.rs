//! Test support shared by the unit tests, `tests/` and `benches/` (the `test-support`
//! feature, which the crate's own dev-dependency turns on): the one builder of SQS records,
//! the test masking key, the one LocalStack set-up, handlers over a test database, a TCP proxy
//! that can cut the database off, and a PostgreSQL cluster of a test's own. Not part of the
//! function.

pub mod bench;
pub mod runtime_api;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use login_etl::{DbTarget, Handler, Loader, OperatorDb, PoolSettings, Queue, SslMode};
use login_etl_core::mask::{Masker, MaskingKey};

/// The tests' masking key (hex of "Login-ETL test key - not a secre").
pub const TEST_KEY_HEX: &str = "4c6f67696e2d45544c2074657374206b6579202d206e6f742061207365637265";

/// 2026-11-24T03:00:00Z, the `SentTimestamp` of every test record.
pub const SENT_MILLIS: i64 = 1_795_489_200_000;

/// The masker of [`TEST_KEY_HEX`].
pub fn masker() -> Masker {
    Masker::hmac(&MaskingKey::from_hex(TEST_KEY_HEX).expect("test key"))
}

/// A record as an SQS event source mapping delivers it from the standard queue `login-queue`:
/// the `sqs-batch` builder's message, sent at [`SENT_MILLIS`].
pub fn sqs_message(message_id: &str, body: &str) -> SqsMessage {
    let mut message = sqs_batch::testing::message(message_id, body);
    message.attributes.insert("SentTimestamp".into(), SENT_MILLIS.to_string());
    message.event_source_arn = Some("arn:aws:sqs:us-east-1:000000000000:login-queue".into());
    message.aws_region = Some("us-east-1".into());
    message
}

/// [`sqs_message`] from the FIFO queue `login-queue.fifo`, in message group `group`.
pub fn fifo_message(message_id: &str, group: &str, body: &str) -> SqsMessage {
    let mut message = sqs_batch::testing::fifo(message_id, group, body);
    message.attributes.insert("SentTimestamp".into(), SENT_MILLIS.to_string());
    message.event_source_arn = Some("arn:aws:sqs:us-east-1:000000000000:login-queue.fifo".into());
    message.aws_region = Some("us-east-1".into());
    message
}

/// An event of `records`.
pub use sqs_batch::testing::event;

/// A valid login body.
pub fn login_body(user_id: &str, ip: &str, device_id: &str) -> String {
    serde_json::json!({
        "user_id": user_id, "app_version": "2.3.0", "device_type": "android",
        "ip": ip, "locale": "RU", "device_id": device_id,
    })
    .to_string()
}

/// The LocalStack endpoint tests and benchmarks talk to (`make up` starts it).
pub fn localstack_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".into())
}

/// SDK configuration for LocalStack, independent of the caller's AWS environment.
pub async fn localstack_config() -> aws_config::SdkConfig {
    let credentials = aws_credential_types::Credentials::new("test", "test", None, None, "tests");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(localstack_endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(credentials)
        .load()
        .await
}

/// A LocalStack SQS client, checked to answer.
pub async fn sqs() -> aws_sdk_sqs::Client {
    let client = aws_sdk_sqs::Client::new(&localstack_config().await);
    if let Err(err) = client.list_queues().send().await {
        panic!(
            "LocalStack SQS is not reachable at {} (run `make up`): {}",
            localstack_endpoint(),
            aws_sdk_sqs::error::DisplayErrorContext(err)
        );
    }
    client
}

/// A queue (or secret) name no other test uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{nanos}-{n}", std::process::id())
}

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

/// `login-etl-cli` as a process (`binary`: the test's `env!("CARGO_BIN_EXE_login-etl-cli")`)
/// with exactly the environment a test gives it: the database `options` name, the test
/// masking key, LocalStack; nothing inherited but `PATH`. Output is piped.
pub fn cli_process(binary: impl AsRef<std::ffi::OsStr>, options: &PgConnectOptions) -> std::process::Command {
    let mut command = std::process::Command::new(binary);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url(options))
        .env("MASKING_KEY", TEST_KEY_HEX)
        .env("AWS_ENDPOINT_URL", localstack_endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command
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

/// A new LocalStack queue without a redrive policy, whose failed messages come back after 1 s.
pub async fn queue_without_redrive(prefix: &str) -> Queue {
    let client = sqs().await;
    let url = client
        .create_queue()
        .queue_name(unique_name(prefix))
        .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, "1")
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url");
    Queue::open(client, &url).await.expect("open queue")
}

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

/// The operators' pool ([`OperatorDb`]) over the same database (migrations, reports, vault reads).
pub fn operator_db_for(pool: &PgPool) -> OperatorDb {
    OperatorDb::connect_lazy((*pool.connect_options()).clone(), 2)
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
    /// Served with TLS only ([`TestCluster::start_with_tls`]).
    tls: bool,
}

/// A private certificate authority made with the openssl CLI, and a server certificate it
/// signed for `127.0.0.1` and `localhost`: what `verify-full` against a server whose CA is in no
/// built-in root store (RDS's) looks like.
pub struct TestCa {
    dir: std::path::PathBuf,
}

impl TestCa {
    pub fn new() -> TestCa {
        let dir = std::env::temp_dir().join(unique_name("test-ca"));
        std::fs::create_dir_all(&dir).expect("CA dir");
        let openssl = |args: &[&str]| {
            let output = std::process::Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .unwrap_or_else(|err| panic!("openssl {}: {err}", args[0]));
            assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        openssl(
            &[
                &["req", "-x509", "-days", "2", "-subj", "/CN=login-etl test CA"][..],
                &ec,
                &["-keyout", "ca.key", "-out", "ca.crt"],
                &["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            ]
            .concat(),
        );
        openssl(
            &[&["req", "-subj", "/CN=127.0.0.1"][..], &ec, &["-keyout", "server.key", "-out", "server.csr"]].concat(),
        );
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("extensions");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ]);
        TestCa { dir }
    }

    /// The CA's certificate (PEM): what `DB_CA_BUNDLE` names.
    pub fn ca_file(&self) -> std::path::PathBuf {
        self.dir.join("ca.crt")
    }
}

impl Default for TestCa {
    fn default() -> TestCa {
        TestCa::new()
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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

    fn init() -> TestCluster {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let dir = std::env::temp_dir().join(unique_name("pg-cluster"));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        let _ = std::process::Command::new("chown").args(["postgres:postgres"]).arg(&dir).status();
        let mut initdb = Self::tool("initdb");
        initdb.args(["--auth=trust", "--username=postgres", "--no-sync", "-D"]).arg(dir.join("data"));
        Self::run(initdb, "initdb");
        TestCluster { port, dir, tls: false }
    }

    pub fn start() -> TestCluster {
        let cluster = Self::init();
        cluster.start_server();
        cluster
    }

    /// A cluster that serves `ca`'s server certificate and refuses every connection without
    /// TLS (`hostssl` only), so a test that connects has connected over TLS.
    pub fn start_with_tls(ca: &TestCa) -> TestCluster {
        let mut cluster = Self::init();
        let data = cluster.dir.join("data");
        for file in ["server.crt", "server.key"] {
            std::fs::copy(ca.dir.join(file), data.join(file)).expect("server certificate");
        }
        std::fs::write(data.join("pg_hba.conf"), "local all all trust\nhostssl all all 127.0.0.1/32 trust\n")
            .expect("pg_hba.conf");
        // PostgreSQL refuses a key others may read; the server runs as postgres.
        let _ = std::process::Command::new("chown")
            .args(["postgres:postgres", "server.crt", "server.key", "pg_hba.conf"])
            .current_dir(&data)
            .status();
        let _ = std::process::Command::new("chmod").args(["600", "server.key"]).current_dir(&data).status();
        cluster.tls = true;
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
            .arg(format!(
                "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off{}",
                self.port,
                self.dir.display(),
                // log_connections: a TLS test reads which sessions the server authorized.
                if self.tls {
                    " -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key -c log_connections=on"
                } else {
                    ""
                }
            ));
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

    /// How many sessions the server has authorized so far (a TLS cluster logs its
    /// connections): a client that refused the server's certificate never gets one.
    pub fn sessions_authorized(&self) -> usize {
        assert!(self.tls, "only a TLS cluster logs its connections");
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default().matches("connection authorized").count()
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

/// The `login-etl-cli` binary, built now (once per test process) so that it is current: it is
/// another package's binary, which Cargo does not hand to this package's tests
/// (`CARGO_BIN_EXE_*` names only a package's own). `cargo build` of a built binary takes a
/// fraction of a second; its JSON messages name the executable.
pub fn cli_binary() -> &'static std::path::Path {
    static BINARY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BINARY.get_or_init(|| {
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
        let output = std::process::Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--message-format=json", "-p", "login-etl-cli", "--bin", "login-etl-cli"])
            .arg("--manifest-path")
            .arg(manifest)
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("cargo build -p login-etl-cli runs");
        assert!(output.status.success(), "cargo build -p login-etl-cli failed");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|message| message["target"]["name"] == "login-etl-cli")
            .find_map(|message| message["executable"].as_str().map(std::path::PathBuf::from))
            .expect("cargo build names the login-etl-cli executable")
    })
}
