//! The function's path to PostgreSQL: one statement, one round trip per batch, and nothing a
//! transaction-mode pooler (PgBouncer, RDS Proxy) cannot multiplex.
//!
//! Behind such a pooler a client gets a server connection only for one transaction, so the
//! loader keeps no session state at all:
//! - **No named prepared statements.** The insert goes as Parse (unnamed, parameter types given),
//!   Bind, Describe, Execute and Sync in one write (tokio-postgres's `query_typed`): the server
//!   answers after Sync, so the pooler never sees a gap in which to switch server connections.
//!   (sqlx parses and executes in two round trips, which is why the hot path does not use it.)
//!   The statement only calls `insert_login_batch` (migrations/0004, 0008, 0009), so what the server parses
//!   per batch is one function call, and the INSERT's plan is cached server-side by PL/pgSQL.
//! - **No startup parameters a pooler refuses**: no `options`, no `extra_float_digits`; only
//!   `client_encoding` and `application_name`, which PgBouncer and RDS Proxy track.
//! - **No `SET`.** The statement timeout is a client-side deadline: when it passes, the query is
//!   cancelled (a CancelRequest, which poolers forward) and the connection is thrown away. The
//!   insert is idempotent (`message_id` is unique), so a statement that commits after we gave up
//!   only makes the redelivered records duplicates. A per-role `statement_timeout`
//!   (`ALTER ROLE … SET`) is the server-side backstop that operators can add.
//!
//! Connections are checked without a round trip: one idle longer than `idle_timeout` (measured
//! on the wall clock, which keeps running while a Lambda instance is frozen) or already closed
//! is discarded when handed out, TCP keepalive finds peers that vanished, and an insert whose
//! connection turns out dead is retried once on a fresh connection.

use std::sync::RwLock;
use std::time::{Duration, SystemTime};

use deadpool::managed::{self, Metrics, Object, RecycleError, RecycleResult};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::adapters::database::DbTarget;
use crate::adapters::iam::{IamAuth, IamError};
use crate::adapters::rows::{LoginRows, UnrepresentableSentTime, VaultRows};
use crate::adapters::secrets::SecretStore;
use crate::adapters::tls;
use crate::config::ConnectionSecurity;
use crate::config::{PoolSettings, SslMode};
use login_etl_core::batch::MaskedLogin;
use sqs_batch::{Accepted, Store};

/// The batch insert. Its text lives in `queries/` so that sqlx checks it against the schema at
/// compile time (see `checked` below) while tokio-postgres sends it.
const INSERT_BATCH: &str = include_str!("../../queries/insert_batch.sql");

/// TCP keepalive: probe an idle connection after 30 s, every 5 s, give up after 3 misses.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_RETRIES: u32 = 3;
/// Sent data unacknowledged this long means the peer is gone (a failover, a vanished pooler):
/// the write fails at once instead of retransmitting for minutes.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(5);
/// A cancel request gets this long; it is best effort.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connecting to the database failed")]
    Postgres(#[source] tokio_postgres::Error),
    #[error("making the IAM database token failed")]
    Iam(#[source] IamError),
}

/// Why a batch insert failed. Display texts carry no row data.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("no database connection within the acquire timeout ({0} ms)")]
    AcquireTimeout(u128),
    #[error(transparent)]
    Connect(ConnectError),
    #[error("the insert did not finish within the statement timeout ({0} ms) and was cancelled")]
    StatementTimeout(u128),
    #[error("the batch insert failed")]
    Insert(#[source] tokio_postgres::Error),
    #[error("the loader's pool is closed (the instance is shutting down)")]
    Closed,
    #[error(transparent)]
    Unrepresentable(#[from] UnrepresentableSentTime),
}

impl LoadError {
    /// Whether the server refused the credentials (SQLSTATE class 28): a rotated password, or
    /// an expired or mis-scoped IAM token.
    pub fn is_auth_failure(&self) -> bool {
        let code = match self {
            LoadError::Connect(ConnectError::Postgres(err)) | LoadError::Insert(err) => err.code(),
            _ => None,
        };
        code.is_some_and(|code| code.code().starts_with("28"))
    }

    /// Whether the connection died under the insert (server restart, failover, terminated
    /// backend, pooler restart): then a fresh connection may well succeed.
    fn is_dead_connection(&self) -> bool {
        let LoadError::Insert(err) = self else { return false };
        if err.is_closed() {
            return true;
        }
        if let Some(code) = err.code() {
            // 08: connection exception; 57P01-57P03: admin/crash shutdown, cannot connect now.
            let code = code.code();
            return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03");
        }
        // An I/O error (reset, broken pipe, TCP user timeout) has no SQLSTATE.
        std::error::Error::source(err).is_some_and(|source| source.is::<std::io::Error>())
    }
}

/// A connection and when it was last used, on the wall clock (a monotonic clock may not count
/// the time an instance spends frozen).
pub struct PooledClient {
    client: tokio_postgres::Client,
    last_used: SystemTime,
}

/// Opens connections for the pool: with the current target (it changes when a rotated secret
/// is re-read) and, with IAM authentication, a fresh token each time.
struct Connector {
    target: RwLock<DbTarget>,
    iam: Option<IamAuth>,
    tls: MakeRustlsConnect,
    idle_timeout: Duration,
    connect_timeout: Duration,
}

impl Connector {
    fn config(&self, password: Option<String>) -> tokio_postgres::Config {
        // Every field by name: one added to DbTarget is then a decision here, not left unused.
        let DbTarget { host, port, user, password: target_password, dbname, ssl_mode } = self.target();
        let mut config = tokio_postgres::Config::new();
        config
            .host(&host)
            .port(port)
            .user(&user)
            .dbname(&dbname)
            .application_name("login-etl")
            .ssl_mode(match ssl_mode {
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                SslMode::Require | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
            })
            .connect_timeout(self.connect_timeout)
            .keepalives(true)
            .keepalives_idle(KEEPALIVE_IDLE)
            .keepalives_interval(KEEPALIVE_INTERVAL)
            .keepalives_retries(KEEPALIVE_RETRIES)
            .tcp_user_timeout(TCP_USER_TIMEOUT);
        if let Some(password) = password.or(target_password) {
            config.password(password);
        }
        config
    }

    fn target(&self) -> DbTarget {
        self.target.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

impl managed::Manager for Connector {
    type Type = PooledClient;
    type Error = ConnectError;

    async fn create(&self) -> Result<PooledClient, ConnectError> {
        let token = match &self.iam {
            Some(iam) => {
                let target = self.target();
                Some(iam.token(&target.host, target.port, &target.user).await.map_err(ConnectError::Iam)?)
            }
            None => None,
        };
        let (client, connection) =
            self.config(token).connect(self.tls.clone()).await.map_err(ConnectError::Postgres)?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "database connection ended");
            }
        });
        Ok(PooledClient { client, last_used: SystemTime::now() })
    }

    async fn recycle(&self, conn: &mut PooledClient, _: &Metrics) -> RecycleResult<ConnectError> {
        if conn.client.is_closed() {
            return Err(RecycleError::message("the connection is closed"));
        }
        // A clock that went backwards (resync after a thaw) also means "do not trust it".
        let idle = SystemTime::now().duration_since(conn.last_used).unwrap_or(Duration::MAX);
        if idle > self.idle_timeout {
            return Err(RecycleError::message("the connection was idle too long"));
        }
        Ok(())
    }
}

/// The database secret the pool's credentials came from, kept so they can be re-read after a
/// rotation.
#[derive(Clone, Debug)]
pub struct DbSecret {
    secrets: SecretStore,
    id: String,
    connection: ConnectionSecurity,
}

impl DbSecret {
    pub fn new(secrets: SecretStore, id: String, connection: ConnectionSecurity) -> DbSecret {
        DbSecret { secrets, id, connection }
    }
}

/// The pooler-safe loader: a small pool of tokio-postgres connections and the batch insert.
#[derive(Clone)]
pub struct Loader {
    pool: managed::Pool<Connector>,
    db_secret: Option<DbSecret>,
    connector_tls: MakeRustlsConnect,
    statement_timeout: Duration,
    acquire_timeout: Duration,
}

impl std::fmt::Debug for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader").field("status", &self.pool.status()).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoaderSetupError {
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(
        "IAM database authentication needs DB_SSL_MODE=require or verify-full: a token must not travel in clear text"
    )]
    IamWithoutTls,
    #[error("building the connection pool failed")]
    Pool(#[source] managed::BuildError),
}

impl Loader {
    /// Builds the pool without connecting: a cold start must not fail because the database
    /// blinked, and each batch connects (or reconnects) when it needs to.
    pub fn new(target: DbTarget, settings: &PoolSettings, iam: Option<IamAuth>) -> Result<Loader, LoaderSetupError> {
        Loader::with_ca_bundle(target, settings, iam, None)
    }

    /// [`Loader::new`] trusting the PEM certificates in `ca_bundle` for `verify-full`.
    pub fn with_ca_bundle(
        target: DbTarget,
        settings: &PoolSettings,
        iam: Option<IamAuth>,
        ca_bundle: Option<&str>,
    ) -> Result<Loader, LoaderSetupError> {
        if iam.is_some() && !target.ssl_mode.requires_tls() {
            return Err(LoaderSetupError::IamWithoutTls);
        }
        let tls = MakeRustlsConnect::new(tls::client_config(target.ssl_mode, ca_bundle)?);
        let connector = Connector {
            target: RwLock::new(target),
            iam,
            tls: tls.clone(),
            idle_timeout: settings.idle_timeout,
            connect_timeout: settings.acquire_timeout,
        };
        let pool = managed::Pool::builder(connector)
            .max_size(settings.max_connections as usize)
            .wait_timeout(Some(settings.acquire_timeout))
            .create_timeout(Some(settings.acquire_timeout))
            .recycle_timeout(Some(settings.acquire_timeout))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(LoaderSetupError::Pool)?;
        Ok(Loader {
            pool,
            db_secret: None,
            connector_tls: tls,
            statement_timeout: settings.statement_timeout,
            acquire_timeout: settings.acquire_timeout,
        })
    }

    /// Lets the loader re-read rotated database credentials from `db_secret`.
    pub fn with_db_secret(mut self, db_secret: Option<DbSecret>) -> Loader {
        self.db_secret = db_secret;
        self
    }

    /// New connections use `target` (after a secret rotation). Open ones stay: PostgreSQL
    /// checks credentials only when a session starts.
    pub fn replace_target(&self, target: DbTarget) {
        let connector = self.pool.manager();
        *connector.target.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = target;
    }

    /// Closes every connection (on SIGTERM), so the server or pooler does not keep sessions
    /// whose client is gone. Later inserts fail with [`LoadError::Closed`].
    pub fn close(&self) {
        self.pool.close();
    }

    /// Opens (or reuses) one connection and hands it back, within the acquire timeout. The
    /// commands that take messages outside Lambda (`drain`, `invoke`) call it first: with the
    /// database away they then fail at once, naming the cause, instead of taking messages,
    /// failing each as `store_failed` and hiding it for its backoff.
    pub async fn check_connection(&self) -> Result<(), LoadError> {
        match tokio::time::timeout(self.acquire_timeout, self.pool.get()).await {
            Ok(Ok(_conn)) => Ok(()),
            Ok(Err(managed::PoolError::Backend(err))) => Err(LoadError::Connect(err)),
            Ok(Err(managed::PoolError::Closed)) => Err(LoadError::Closed),
            Ok(Err(_)) | Err(_) => Err(LoadError::AcquireTimeout(self.acquire_timeout.as_millis())),
        }
    }

    /// Inserts a batch in one statement (one implicit transaction, one round trip) and returns
    /// how many rows were new. Rows whose `message_id` already exists are skipped. A connection
    /// found dead under the insert is replaced and the insert tried once more: it is idempotent,
    /// so even a first attempt that committed unseen does no harm. When the database refuses
    /// the credentials and they came from a secret, the secret is re-read once (it may have
    /// been rotated) and the insert retried.
    pub async fn insert(&self, rows: &LoginRows<'_>) -> Result<u64, LoadError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let first = self.insert_reconnecting(rows).await;
        let (Err(err), Some(db_secret)) = (&first, &self.db_secret) else {
            return first;
        };
        if !err.is_auth_failure() {
            return first;
        }
        tracing::warn!(secret = %db_secret.id, "database refused the credentials; re-reading the secret");
        match db_secret.secrets.database(&db_secret.id).await {
            Ok(target) => {
                self.replace_target(target.secured(&db_secret.connection));
                self.insert_reconnecting(rows).await
            }
            Err(secret_err) => {
                tracing::error!(error = %format!("{:#}", anyhow::Error::from(secret_err)), "re-reading the database secret failed");
                first
            }
        }
    }

    /// [`Loader::insert_once`], once more on a fresh connection if the first one died under it.
    async fn insert_reconnecting(&self, rows: &LoginRows<'_>) -> Result<u64, LoadError> {
        match self.insert_once(rows).await {
            Err(err) if err.is_dead_connection() => {
                tracing::warn!(error = %format!("{:#}", anyhow::Error::from(err)), "connection died under the insert; retrying once on a fresh one");
                self.insert_once(rows).await
            }
            result => result,
        }
    }

    async fn insert_once(&self, rows: &LoginRows<'_>) -> Result<u64, LoadError> {
        // One bound for waiting and connecting together.
        let acquired = tokio::time::timeout(self.acquire_timeout, self.pool.get()).await;
        let mut conn = match acquired {
            Ok(Ok(conn)) => conn,
            Ok(Err(managed::PoolError::Backend(err))) => return Err(LoadError::Connect(err)),
            Ok(Err(managed::PoolError::Closed)) => return Err(LoadError::Closed),
            Ok(Err(_)) | Err(_) => return Err(LoadError::AcquireTimeout(self.acquire_timeout.as_millis())),
        };
        let result = tokio::time::timeout(self.statement_timeout, insert_rows(&conn.client, rows)).await;
        match result {
            Ok(Ok(inserted)) => {
                conn.last_used = SystemTime::now();
                Ok(inserted)
            }
            Ok(Err(err)) => {
                let err = LoadError::Insert(err);
                // A dead connection may not know it yet (its task has not read the close):
                // never hand it out again.
                if err.is_dead_connection() || conn.client.is_closed() {
                    drop(Object::take(conn));
                } else {
                    conn.last_used = SystemTime::now();
                }
                Err(err)
            }
            Err(_deadline) => {
                let client = Object::take(conn).client;
                self.cancel(client).await;
                Err(LoadError::StatementTimeout(self.statement_timeout.as_millis()))
            }
        }
    }

    /// Asks the server to stop the query still running on `client`, then drops the connection.
    ///
    /// Like libpq's `PQcancel`, the request's socket is kept open until the server (or
    /// pooler) closes it, which it does once the cancel is handled: PgBouncer 1.18 (Debian 12's)
    /// crashed (`FATAL … disconnect_client(): bad client state: 0`, PgBouncer issue #801) when a
    /// cancel client hung up first, as tokio-postgres's own `cancel_query` does.
    async fn cancel(&self, client: tokio_postgres::Client) {
        let token = client.cancel_token();
        drop(client);
        let target = self.pool.manager().target();
        let request = send_cancel(&token, &target.host, target.port, self.connector_tls.clone());
        match tokio::time::timeout(CANCEL_TIMEOUT, request).await {
            Ok(Ok(())) => tracing::info!("timed-out insert cancelled"),
            Ok(Err(err)) => tracing::warn!(error = %err, "cancelling the timed-out insert failed"),
            Err(_) => tracing::warn!("cancelling the timed-out insert timed out"),
        }
    }
}

/// The loader is the contract's store port for logins: the accepted records become the
/// statement's column arrays here, at the edge, and the insert's `ON CONFLICT (message_id) DO
/// NOTHING` on each record's identity makes it idempotent, as the port requires. One statement,
/// so all or nothing.
impl Store<MaskedLogin> for Loader {
    type Error = LoadError;

    async fn store(&self, batch: &[Accepted<MaskedLogin>]) -> Result<usize, LoadError> {
        let rows = LoginRows::from_accepted(batch)?;
        let inserted = self.insert(&rows).await?;
        Ok(usize::try_from(inserted).unwrap_or(usize::MAX))
    }
}

/// Sends `token`'s CancelRequest to `host:port` and returns once the server has closed the
/// socket, i.e. handled the request (see [`LingeringCancelSocket`]).
async fn send_cancel(
    token: &tokio_postgres::CancelToken,
    host: &str,
    port: u16,
    mut tls: MakeRustlsConnect,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let stream = tokio::net::TcpStream::connect((host, port)).await?;
    let tls = MakeTlsConnect::<LingeringCancelSocket>::make_tls_connect(&mut tls, host)?;
    token.cancel_query_raw(LingeringCancelSocket(stream), tls).await?;
    Ok(())
}

/// The socket of a cancel request that, like libpq's, lingers until the server closes it:
/// its shutdown (the last thing tokio-postgres does with it) reads to end of stream instead
/// of hanging up first. Bounded by [`CANCEL_TIMEOUT`].
struct LingeringCancelSocket(tokio::net::TcpStream);

impl tokio::io::AsyncRead for LingeringCancelSocket {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for LingeringCancelSocket {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    /// Waits for the server's end of stream; the socket closes when dropped afterwards.
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let mut scratch = [0u8; 64];
        loop {
            let mut buf = tokio::io::ReadBuf::new(&mut scratch);
            match tokio::io::AsyncRead::poll_read(std::pin::Pin::new(&mut self.0), cx, &mut buf) {
                std::task::Poll::Ready(Ok(())) if buf.filled().is_empty() => return std::task::Poll::Ready(Ok(())),
                std::task::Poll::Ready(Ok(())) => continue,
                // A reset after the request was sent still means the server is done with it.
                std::task::Poll::Ready(Err(_)) => return std::task::Poll::Ready(Ok(())),
                std::task::Poll::Pending => return std::task::Poll::Pending,
            }
        }
    }
}

/// Sends the insert as one unnamed, typed statement: Parse, Bind, Describe, Execute, Sync in a
/// single write. The statement calls `insert_login_batch`, whose INSERT plan the server keeps.
/// Public for the benchmarks' floor: the database's own time for a batch is this call on a
/// bare client, without the pool or the handler around it.
pub async fn insert_rows(client: &tokio_postgres::Client, rows: &LoginRows<'_>) -> Result<u64, tokio_postgres::Error> {
    // With the vault off its arrays are empty and the CTE inserts nothing.
    let no_vault = VaultRows::default();
    let vault = rows.vault.as_ref().unwrap_or(&no_vault);
    // One short string per batch, not per row.
    let masking_key_id = rows.masking_key_id.map(|id| id.to_string());
    let params: [(&(dyn ToSql + Sync), Type); 18] = [
        (&rows.message_id, Type::TEXT_ARRAY),
        (&rows.user_id, Type::TEXT_ARRAY),
        (&rows.device_type, Type::TEXT_ARRAY),
        (&rows.masked_ip, Type::TEXT_ARRAY),
        (&rows.masked_device_id, Type::TEXT_ARRAY),
        (&rows.locale, Type::TEXT_ARRAY),
        (&rows.app_version, Type::TEXT_ARRAY),
        (&rows.sent_at, Type::TIMESTAMPTZ_ARRAY),
        (&rows.create_date, Type::DATE_ARRAY),
        (&rows.masking_mode.name(), Type::TEXT),
        (&vault.field, Type::TEXT_ARRAY),
        (&vault.masked_value, Type::TEXT_ARRAY),
        (&vault.sealed, Type::BYTEA_ARRAY),
        (&vault.key_id, Type::TEXT),
        (&masking_key_id, Type::TEXT),
        (&rows.ip_prefix, Type::TEXT_ARRAY),
        (&rows.extras, Type::TEXT_ARRAY),
        (&rows.columns, Type::TEXT_ARRAY),
    ];
    let row = client.query_typed(INSERT_BATCH, &params).await?;
    let inserted: i64 = match row.first() {
        Some(row) => row.try_get(0)?,
        None => 0,
    };
    Ok(u64::try_from(inserted).unwrap_or(0))
}

/// sqlx checks [`INSERT_BATCH`] and its parameter types against `migrations/` at compile time
/// (offline, from `.sqlx/`), so a schema change that breaks the hot path breaks the build.
/// The columns are owned here as sqlx maps the SQL types (`text[]` is `Vec<String>`); the
/// loader binds the same columns borrowed, which encode as the same SQL types. Never runs.
#[cfg(test)]
#[allow(dead_code)]
fn checked(rows: &LoginRows<'_>, vault: &VaultRows<'_>) {
    let owned = |column: &[&str]| column.iter().map(|value| value.to_string()).collect::<Vec<String>>();
    let nullable = |column: &[Option<&str>]| column.iter().map(|value| value.map(str::to_owned)).collect::<Vec<_>>();
    let sealed: Vec<Vec<u8>> = vault.sealed.iter().map(|sealed| sealed.to_vec()).collect();
    let _query = sqlx::query_file_scalar!(
        "queries/insert_batch.sql",
        &owned(&rows.message_id),
        &owned(&rows.user_id),
        &nullable(&rows.device_type) as &[Option<String>],
        &nullable(&rows.masked_ip) as &[Option<String>],
        &nullable(&rows.masked_device_id) as &[Option<String>],
        &nullable(&rows.locale) as &[Option<String>],
        &nullable(&rows.app_version) as &[Option<String>],
        &rows.sent_at,
        &rows.create_date,
        "hmac",
        &owned(&vault.field),
        &owned(&vault.masked_value),
        &sealed,
        vault.key_id,
        rows.masking_key_id.map(|id| id.to_string()),
        &nullable(&rows.ip_prefix) as &[Option<String>],
        &nullable(&rows.extras) as &[Option<String>],
        &nullable(&rows.columns) as &[Option<String>],
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A cancel request stays connected until the server hangs up, as libpq's does: a client
    /// that hung up first crashed PgBouncer 1.18. Against a stand-in server that reads the
    /// request and closes only later; the token comes from a real session (DATABASE_URL).
    #[tokio::test]
    async fn a_cancel_request_waits_for_the_server_to_close() {
        let url =
            std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        // sslmode=disable: the token then sends its CancelRequest without an SSLRequest first.
        let mut config: tokio_postgres::Config = url.parse().expect("DATABASE_URL");
        config.ssl_mode(tokio_postgres::config::SslMode::Disable);
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.expect("a session");
        let session = tokio::spawn(connection);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listener");
        let port = listener.local_addr().expect("address").port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = [0u8; 16];
            socket.read_exact(&mut request).await.expect("the CancelRequest");
            // The client must still be there: nothing more to read, no end of stream yet.
            let mut more = [0u8; 1];
            let lingered = tokio::time::timeout(Duration::from_millis(300), socket.read(&mut more)).await.is_err();
            drop(socket);
            (request, lingered)
        });
        let tls = MakeRustlsConnect::new(tls::client_config(SslMode::Disable, None).expect("tls config"));
        let started = std::time::Instant::now();
        send_cancel(&client.cancel_token(), "127.0.0.1", port, tls).await.expect("cancel sent");
        let (request, lingered) = server.await.expect("server");
        assert_eq!(&request[..8], &[0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e], "a CancelRequest (length 16, code 80877102)");
        assert!(lingered, "the client hung up before the server closed");
        assert!(started.elapsed() >= Duration::from_millis(300));
        drop(client);
        session.await.ok();
    }
}
