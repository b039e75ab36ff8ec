//! The database: where it is ([`DatabaseSource`]), how connections to it are secured
//! ([`ConnectionSecurity`], [`SslMode`]) and how the loader's pool behaves ([`PoolSettings`]).

use std::time::Duration;

use super::{ConfigError, invalid, millis, number};

/// How the loader's pool behaves. The defaults suit a classic Lambda instance, which runs one
/// invocation at a time and may sit frozen for minutes between two of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// By default one connection per concurrent invocation (`AWS_LAMBDA_MAX_CONCURRENCY` when
    /// Lambda runs several per execution environment). Fewer is fine: a batch holds its
    /// connection only for its one statement, so invocations take turns, each waiting at most
    /// `acquire_timeout` (docs/scaling.md).
    pub max_connections: u32,
    /// How long a batch waits for a connection (including connecting) before it is failed.
    pub acquire_timeout: Duration,
    /// The client-side deadline of one insert; past it the query is cancelled.
    pub statement_timeout: Duration,
    /// A connection idle longer than this is not trusted: it is discarded when handed out.
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

/// How much TLS a connection demands, with libpq's names and meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Plain TCP only.
    Disable,
    /// TLS when the server offers it, certificate not verified (libpq's default).
    #[default]
    Prefer,
    /// TLS or no connection; certificate not verified.
    Require,
    /// TLS or no connection; the certificate must chain to a trusted root (`DB_CA_BUNDLE`, or the
    /// Mozilla roots) and name the host. What IAM authentication should use: a token is a
    /// bearer credential for 15 minutes.
    VerifyFull,
}

impl SslMode {
    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether a connection in this mode is never sent in clear text.
    pub fn requires_tls(self) -> bool {
        matches!(self, SslMode::Require | SslMode::VerifyFull)
    }
}

impl std::str::FromStr for SslMode {
    type Err = UnknownSslMode;

    fn from_str(text: &str) -> Result<SslMode, UnknownSslMode> {
        match text.trim() {
            "disable" => Ok(SslMode::Disable),
            // libpq's `allow` tries plain first; TLS-when-offered is the closer safe reading.
            "allow" | "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            // verify-ca without the host check is not offered: it is weaker and rarely wanted.
            "verify-ca" | "verify-full" => Ok(SslMode::VerifyFull),
            _ => Err(UnknownSslMode),
        }
    }
}

impl std::fmt::Display for SslMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An `sslmode` that is none of libpq's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("sslmode must be disable, prefer, require or verify-full")]
pub struct UnknownSslMode;

/// Where the database connection comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseSource {
    /// `DATABASE_URL`: for local runs and tests.
    Url(String),
    /// `DB_SECRET_ID`: a Secrets Manager secret in the RDS format
    /// `{"username","password","host","port","dbname"}`.
    Secret(String),
}

impl std::fmt::Debug for DatabaseSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The URL may embed a password.
            DatabaseSource::Url(_) => f.write_str("Url(<redacted>)"),
            DatabaseSource::Secret(id) => f.debug_tuple("Secret").field(id).finish(),
        }
    }
}

/// Where the database is and how connections to it are secured.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DatabaseConfig {
    /// `DATABASE_URL` or `DB_SECRET_ID`; `None` when neither is set.
    pub source: Option<DatabaseSource>,
    /// `DB_SSL_MODE`, `DB_CA_BUNDLE`, `DB_IAM_AUTH`.
    pub connection: ConnectionSecurity,
}

impl DatabaseConfig {
    /// The database source, or [`ConfigError::NoDatabase`] for a command that needs one.
    pub fn source(&self) -> Result<&DatabaseSource, ConfigError> {
        self.source.as_ref().ok_or(ConfigError::NoDatabase)
    }
}

/// TLS and authentication of the database connections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectionSecurity {
    /// `DB_SSL_MODE`: overrides the URL's `sslmode` and the secret's default (`prefer`).
    /// With IAM authentication it defaults to `verify-full`.
    pub ssl_mode: Option<SslMode>,
    /// `DB_CA_BUNDLE`: PEM file of the roots `verify-full` trusts (for RDS: its CA bundle).
    pub ca_bundle: Option<String>,
    /// `DB_IAM_AUTH=true`: a fresh IAM token per connection instead of a password.
    pub iam_auth: bool,
}

pub(super) fn database(get: &impl Fn(&str) -> Option<String>) -> Result<DatabaseConfig, ConfigError> {
    let source = match (get("DATABASE_URL"), get("DB_SECRET_ID")) {
        (Some(url), None) => Some(DatabaseSource::Url(url)),
        (None, Some(id)) => Some(DatabaseSource::Secret(id)),
        (None, None) => None,
        (Some(_), Some(_)) => return Err(ConfigError::TwoDatabases),
    };
    let iam_auth = match get("DB_IAM_AUTH").as_deref().map(str::trim) {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(_) => return Err(invalid("DB_IAM_AUTH", "must be true or false")),
    };
    let ssl_mode = get("DB_SSL_MODE")
        .map(|text| text.parse::<SslMode>())
        .transpose()
        .map_err(|err| invalid("DB_SSL_MODE", err.to_string()))?;
    let ssl_mode = match (iam_auth, ssl_mode) {
        (true, None) => Some(SslMode::VerifyFull),
        (true, Some(mode)) if !mode.requires_tls() => {
            return Err(invalid("DB_SSL_MODE", "DB_IAM_AUTH=true needs require or verify-full"));
        }
        (_, mode) => mode,
    };
    let connection = ConnectionSecurity { ssl_mode, ca_bundle: get("DB_CA_BUNDLE"), iam_auth };
    Ok(DatabaseConfig { source, connection })
}

pub(super) fn pool(get: &impl Fn(&str) -> Option<String>, max_concurrency: u32) -> Result<PoolSettings, ConfigError> {
    let defaults = PoolSettings::default();
    Ok(PoolSettings {
        max_connections: number(get, "DB_MAX_CONNECTIONS", max_concurrency.min(100), 1..=100)?,
        acquire_timeout: millis(get, "DB_ACQUIRE_TIMEOUT_MS", defaults.acquire_timeout)?,
        statement_timeout: millis(get, "DB_STATEMENT_TIMEOUT_MS", defaults.statement_timeout)?,
        idle_timeout: millis(get, "DB_IDLE_TIMEOUT_MS", defaults.idle_timeout)?,
    })
}
