//! Configuration: read from the environment once at start-up, validated, typed.
//!
//! Errors name the variable and the problem, never a value: several of these are secrets.
//!
//! The settings types the adapters take ([`PoolSettings`], [`SslMode`], [`ConnectionSecurity`])
//! are defined here, so this module depends on no other module of the crate: the adapters
//! depend on it, never the other way round.

use std::time::Duration;

use login_etl_core::mask::{IpPrefixLengths, IpTreatment, MaskingKey, MaskingMode};
use login_etl_core::vault::VaultPublicKey;

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

/// Where the HMAC masking key comes from.
#[derive(Debug, Clone)]
pub enum MaskingKeySource {
    /// `MASKING_KEY`: hex, at least 32 bytes.
    Inline(MaskingKey),
    /// `MASKING_KEY_SECRET_ID`: a secret whose string is the hex key.
    Secret(String),
}

/// The whole configuration of the function and of every CLI command, read from the environment
/// once at start-up. Every value that is set is validated here; what a given entry point
/// *needs* is checked by [`Config::require_handler`], [`DatabaseConfig::source`] and
/// [`MaskingConfig::require_key`], so a command that only needs the database (`migrate`) does
/// not ask for a masking key.
#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseConfig,
    pub pool: PoolSettings,
    pub masking: MaskingConfig,
    pub vault: VaultConfig,
    pub aws: AwsConfig,
    pub lifecycle: LifecycleConfig,
}

/// What the Lambda bootstrap does: load logins from SQS (the default) or, in the scheduled
/// maintenance function `template.yaml` adds with `RetentionKeepMonths`, keep partitions and
/// retention (`LOGIN_ETL_TASK=maintenance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Task {
    #[default]
    LoadLogins,
    Maintenance,
}

/// The data lifecycle's settings for the scheduled maintenance task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LifecycleConfig {
    /// `LOGIN_ETL_TASK`: `load` (default) or `maintenance`.
    pub task: Task,
    /// `RETENTION_KEEP_MONTHS` (1 to 1200): whole months kept before the current one by the
    /// maintenance task; unset: it only keeps partitions ahead.
    pub retention_keep_months: Option<u16>,
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

/// How personal fields are masked.
#[derive(Debug, Clone, Default)]
pub struct MaskingConfig {
    /// `MASKING_MODE`: `hmac` (default) or `sha256`.
    pub mode: MaskingMode,
    /// `MASKING_KEY` or `MASKING_KEY_SECRET_ID`; `None` when neither is set.
    pub key: Option<MaskingKeySource>,
    /// `MASKING_IP`: `masked` (default), `masked+prefix` or `prefix`.
    pub ip: IpTreatment,
    /// `MASKING_IP_PREFIX`: the prefix lengths, IPv4 then IPv6 (default `24,48`).
    pub ip_prefix: IpPrefixLengths,
    /// `FIELD_POLICY_FILE`: a JSON Schema with the field policy's annotations, read at start-up
    /// (default: the published schema, built in).
    pub field_policy_file: Option<String>,
}

impl MaskingConfig {
    /// The key source the mode needs: `Some` in `hmac` mode (or [`ConfigError::NoMaskingKey`]),
    /// `None` in the unkeyed `sha256` mode.
    pub fn require_key(&self) -> Result<Option<&MaskingKeySource>, ConfigError> {
        match (self.mode, &self.key) {
            (MaskingMode::Hmac, None) => Err(ConfigError::NoMaskingKey),
            (MaskingMode::Hmac, Some(key)) => Ok(Some(key)),
            (MaskingMode::Sha256, _) => Ok(None),
        }
    }
}

/// The PII vault.
#[derive(Debug, Clone, Default)]
pub struct VaultConfig {
    /// `VAULT_PUBLIC_KEY`: when set, originals are sealed to it into the PII vault.
    pub public_key: Option<VaultPublicKey>,
}

/// What the function reads about its AWS surroundings (the SDK reads its own credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsConfig {
    /// `AWS_LAMBDA_FUNCTION_NAME` (default `login-etl`): the metrics' dimension.
    pub function_name: String,
    /// `AWS_LAMBDA_RUNTIME_API`: where a start-up failure is reported; unset outside Lambda.
    pub runtime_api: Option<String>,
    /// `AWS_LAMBDA_MAX_CONCURRENCY` (1 to 1000, default 1): the invocations one execution
    /// environment runs at once (Lambda Managed Instances); the async runtime's shape and the
    /// pool's default size follow it.
    pub max_concurrency: u32,
    /// Which of [`RUNTIME_ENV`] are unset (or, for the memory size, not a number): outside
    /// Lambda the runtime client would panic on the first of them.
    pub runtime_env_missing: Vec<&'static str>,
    /// `AWS_ENDPOINT_URL`: LocalStack's endpoint in local runs; unset on AWS.
    pub endpoint_url: Option<String>,
    /// `RETRY_BACKOFF_BASE_SECONDS`: visibility of a message after its first failed insert,
    /// doubled per receive; `None` (0) keeps the queue's timeout.
    pub retry_backoff_base: Option<Duration>,
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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("set DATABASE_URL (a postgres:// URL) or DB_SECRET_ID (a Secrets Manager secret id)")]
    NoDatabase,
    #[error("set only one of DATABASE_URL and DB_SECRET_ID")]
    TwoDatabases,
    #[error("MASKING_MODE=hmac (the default) needs MASKING_KEY or MASKING_KEY_SECRET_ID")]
    NoMaskingKey,
    #[error("set only one of MASKING_KEY and MASKING_KEY_SECRET_ID")]
    TwoMaskingKeys,
    #[error("{variable}: {problem}")]
    Invalid { variable: &'static str, problem: String },
}

/// Every environment variable [`Config::from_lookup`] reads, in the order it reads them. The
/// reader refuses (in debug builds and tests, by panicking) to read a name missing here, and a
/// unit test records what it reads with nothing set (when every name is read) against this list,
/// so the list is the reader's own. `tests/it/wiring.rs` holds `template.yaml` and
/// `docs/configuration.md` to it.
pub const CONFIG_VARIABLES: [&str; 25] = [
    "AWS_LAMBDA_MAX_CONCURRENCY",
    "DATABASE_URL",
    "DB_SECRET_ID",
    "DB_IAM_AUTH",
    "DB_SSL_MODE",
    "DB_CA_BUNDLE",
    "DB_MAX_CONNECTIONS",
    "DB_ACQUIRE_TIMEOUT_MS",
    "DB_STATEMENT_TIMEOUT_MS",
    "DB_IDLE_TIMEOUT_MS",
    "MASKING_MODE",
    "MASKING_KEY",
    "MASKING_KEY_SECRET_ID",
    "MASKING_IP",
    "MASKING_IP_PREFIX",
    "FIELD_POLICY_FILE",
    "VAULT_PUBLIC_KEY",
    "RETRY_BACKOFF_BASE_SECONDS",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_ENDPOINT_URL",
    "LOGIN_ETL_TASK",
    "RETENTION_KEEP_MONTHS",
];

/// The variables the Lambda runtime client reads (and panics without): Lambda sets them all.
/// The bootstrap checks them ([`AwsConfig::runtime_env_missing`]) before starting the runtime,
/// and `tests/it/wiring.rs` checks each is one Lambda sets and `docs/configuration.md` lists.
pub const RUNTIME_ENV: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

/// The process environment, read once at start-up: [`Config`] and
/// `telemetry::LogSettings` read their variables from this snapshot, never from the
/// process, so each variable is read in one place and a test can hand over its own.
/// No `Debug`: it holds secrets (`MASKING_KEY`, a `DATABASE_URL` with a password).
#[derive(Clone, Default)]
pub struct Environment(std::collections::HashMap<String, String>);

impl Environment {
    /// The process's variables now (those that are valid Unicode; none of ours is not).
    pub fn capture() -> Environment {
        Environment(
            std::env::vars_os()
                .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
                .collect(),
        )
    }

    /// An environment of exactly `pairs`.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Environment {
        Environment(pairs.into_iter().map(|(name, value)| (name.to_owned(), value.to_owned())).collect())
    }

    /// A variable's value, if set (empty values included: each reader decides).
    pub fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }

    /// Whether `name` is set to nothing but blanks.
    pub fn is_blank(&self, name: &str) -> bool {
        self.0.get(name).is_some_and(|value| value.trim().is_empty())
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_environment(&Environment::capture())
    }

    /// Reads a captured environment.
    pub fn from_environment(environment: &Environment) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| environment.get(name))
    }

    /// Reads configuration through `lookup`, which returns a variable's value if set.
    /// Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| read(&lookup, name);
        // Lambda sets AWS_LAMBDA_MAX_CONCURRENCY when one instance runs several invocations at
        // once; each needs its own connection.
        let max_concurrency = number(&get, "AWS_LAMBDA_MAX_CONCURRENCY", 1, 1..=1000)?;
        Ok(Config {
            database: database(&get)?,
            pool: pool(&get, max_concurrency)?,
            masking: masking(&get)?,
            vault: VaultConfig {
                public_key: get("VAULT_PUBLIC_KEY")
                    .map(|hex| VaultPublicKey::from_hex(&hex))
                    .transpose()
                    .map_err(|err| invalid("VAULT_PUBLIC_KEY", err.to_string()))?,
            },
            aws: aws(&get, max_concurrency)?,
            lifecycle: lifecycle(&get)?,
        })
    }

    /// What the Lambda bootstrap needs before it starts its task: the handler's needs for
    /// `load`, a database for `maintenance`. `tests/it/wiring.rs` asks the same of each
    /// function's environment in `template.yaml`.
    pub fn require_task(&self) -> Result<(), ConfigError> {
        match self.lifecycle.task {
            Task::LoadLogins => self.require_handler(),
            Task::Maintenance => self.database.source().map(|_| ()),
        }
    }

    /// What the handler (the function, `drain`, `invoke`) needs: a database and, in `hmac`
    /// mode, a masking key.
    pub fn require_handler(&self) -> Result<(), ConfigError> {
        self.database.source()?;
        self.masking.require_key()?;
        Ok(())
    }
}

fn database(get: &impl Fn(&str) -> Option<String>) -> Result<DatabaseConfig, ConfigError> {
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

fn pool(get: &impl Fn(&str) -> Option<String>, max_concurrency: u32) -> Result<PoolSettings, ConfigError> {
    let defaults = PoolSettings::default();
    Ok(PoolSettings {
        max_connections: number(get, "DB_MAX_CONNECTIONS", max_concurrency.min(100), 1..=100)?,
        acquire_timeout: millis(get, "DB_ACQUIRE_TIMEOUT_MS", defaults.acquire_timeout)?,
        statement_timeout: millis(get, "DB_STATEMENT_TIMEOUT_MS", defaults.statement_timeout)?,
        idle_timeout: millis(get, "DB_IDLE_TIMEOUT_MS", defaults.idle_timeout)?,
    })
}

fn masking(get: &impl Fn(&str) -> Option<String>) -> Result<MaskingConfig, ConfigError> {
    let mode = match get("MASKING_MODE") {
        None => MaskingMode::default(),
        Some(text) => {
            text.parse().map_err(|err: login_etl_core::mask::KeyError| invalid("MASKING_MODE", err.to_string()))?
        }
    };
    let key = match (get("MASKING_KEY"), get("MASKING_KEY_SECRET_ID")) {
        (Some(hex), None) => Some(MaskingKeySource::Inline(
            MaskingKey::from_hex(&hex).map_err(|err| invalid("MASKING_KEY", err.to_string()))?,
        )),
        (None, Some(id)) => Some(MaskingKeySource::Secret(id)),
        (None, None) => None,
        (Some(_), Some(_)) => return Err(ConfigError::TwoMaskingKeys),
    };
    let ip = match get("MASKING_IP") {
        None => IpTreatment::default(),
        Some(text) => {
            text.parse().map_err(|err: login_etl_core::mask::KeyError| invalid("MASKING_IP", err.to_string()))?
        }
    };
    let ip_prefix = match get("MASKING_IP_PREFIX") {
        None => IpPrefixLengths::default(),
        Some(text) => {
            text.parse().map_err(|err: login_etl_core::mask::KeyError| invalid("MASKING_IP_PREFIX", err.to_string()))?
        }
    };
    // An unkeyed hash beside a /24 prefix leaves 256 candidates per address: no mask at all.
    if mode == MaskingMode::Sha256 && ip == IpTreatment::MaskedAndPrefix {
        return Err(invalid(
            "MASKING_IP",
            "masked+prefix needs MASKING_MODE=hmac: beside its prefix an unkeyed SHA-256 of the address is reversed by \
             hashing the few addresses the prefix leaves",
        ));
    }
    let field_policy_file = get("FIELD_POLICY_FILE");
    Ok(MaskingConfig { mode, key, ip, ip_prefix, field_policy_file })
}

fn aws(get: &impl Fn(&str) -> Option<String>, max_concurrency: u32) -> Result<AwsConfig, ConfigError> {
    let retry_backoff_base = match number(get, "RETRY_BACKOFF_BASE_SECONDS", 180, 0..=43_200)? {
        0 => None,
        seconds => Some(Duration::from_secs(u64::from(seconds))),
    };
    let function_name = get("AWS_LAMBDA_FUNCTION_NAME");
    let runtime_api = get("AWS_LAMBDA_RUNTIME_API");
    let memory_size = get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
    let function_version = get("AWS_LAMBDA_FUNCTION_VERSION");
    let unset = [
        runtime_api.is_none(),
        function_name.is_none(),
        memory_size.is_none_or(|value| value.trim().parse::<i32>().is_err()),
        function_version.is_none(),
    ];
    Ok(AwsConfig {
        function_name: function_name.unwrap_or_else(|| "login-etl".into()),
        runtime_api,
        max_concurrency,
        runtime_env_missing: RUNTIME_ENV
            .into_iter()
            .zip(unset)
            .filter_map(|(name, unset)| unset.then_some(name))
            .collect(),
        endpoint_url: get("AWS_ENDPOINT_URL"),
        retry_backoff_base,
    })
}

fn lifecycle(get: &impl Fn(&str) -> Option<String>) -> Result<LifecycleConfig, ConfigError> {
    let task = match get("LOGIN_ETL_TASK").as_deref().map(str::trim) {
        None | Some("load") => Task::LoadLogins,
        Some("maintenance") => Task::Maintenance,
        Some(_) => return Err(invalid("LOGIN_ETL_TASK", "must be load or maintenance")),
    };
    let retention_keep_months = match get("RETENTION_KEEP_MONTHS") {
        None => None,
        Some(_) => Some(number(get, "RETENTION_KEEP_MONTHS", 0, 1..=1200)? as u16),
    };
    Ok(LifecycleConfig { task, retention_keep_months })
}

/// One variable through `lookup`; empty values count as unset. Only names in [`CONFIG_VARIABLES`]
/// may be read, so that list stays what the code reads.
fn read(lookup: &impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    debug_assert!(
        CONFIG_VARIABLES.contains(&name),
        "{name} is read by Config but missing from config::CONFIG_VARIABLES"
    );
    lookup(name).filter(|value| !value.trim().is_empty())
}

fn invalid(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { variable, problem: problem.into() }
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: u32,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, ConfigError> {
    let Some(text) = get(variable) else { return Ok(default) };
    match text.trim().parse::<u32>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(invalid(variable, format!("must be a whole number from {} to {}", range.start(), range.end()))),
    }
}

fn millis(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let default_ms = u32::try_from(default.as_millis()).unwrap_or(u32::MAX);
    number(get, variable, default_ms, 1..=900_000).map(|ms| Duration::from_millis(u64::from(ms)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn the_maintenance_task_and_its_retention_are_named_and_checked() {
        let url = ("DATABASE_URL", "postgres://h/db");
        let plain = config(&[url]).expect("valid");
        assert_eq!(plain.lifecycle, LifecycleConfig { task: Task::LoadLogins, retention_keep_months: None });
        let scheduled =
            config(&[url, ("LOGIN_ETL_TASK", "maintenance"), ("RETENTION_KEEP_MONTHS", "13")]).expect("valid");
        assert_eq!(scheduled.lifecycle, LifecycleConfig { task: Task::Maintenance, retention_keep_months: Some(13) });
        let task = config(&[url, ("LOGIN_ETL_TASK", "vacuum")]).expect_err("bad task");
        assert!(task.to_string().contains("LOGIN_ETL_TASK"), "{task}");
        for bad in ["0", "-1", "twelve", "1201"] {
            let months = config(&[url, ("RETENTION_KEEP_MONTHS", bad)]).expect_err("bad months");
            assert!(months.to_string().contains("RETENTION_KEEP_MONTHS"), "{months}");
        }
    }

    /// With nothing set every variable is read (no read depends on another's value), so the
    /// names recorded here are exactly what the reader reads; the reader's own assertion
    /// refuses a name missing from the list.
    #[test]
    fn variables_lists_exactly_what_the_reader_reads() {
        let read = std::cell::RefCell::new(Vec::new());
        super::Config::from_lookup(|name| {
            read.borrow_mut().push(name.to_owned());
            None
        })
        .expect("nothing set is a valid configuration");
        let read = read.into_inner();
        let listed: Vec<String> = CONFIG_VARIABLES.iter().map(|name| name.to_string()).collect();
        assert_eq!(read, listed, "config::CONFIG_VARIABLES must list what Config::from_lookup reads, in order");
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "NOT_A_CONFIG_VARIABLE is read by Config but missing from config::CONFIG_VARIABLES")]
    fn reading_an_unlisted_variable_is_refused() {
        let _ = read(&|_| Some("set".to_owned()), "NOT_A_CONFIG_VARIABLE");
    }

    const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    /// The configuration as the function reads it: with what the handler needs checked.
    fn function_config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        config(vars).and_then(|config| config.require_handler().map(|()| config))
    }

    #[test]
    fn minimal_local_configuration() {
        let config = config(&[("DATABASE_URL", "postgres://localhost/x"), ("MASKING_KEY", KEY)]).expect("valid");
        assert_eq!(config.database.source, Some(DatabaseSource::Url("postgres://localhost/x".into())));
        assert_eq!(config.masking.mode, MaskingMode::Hmac);
        assert!(matches!(config.masking.key, Some(MaskingKeySource::Inline(_))));
        assert_eq!(config.pool, PoolSettings::default());
    }

    #[test]
    fn secrets_configuration() {
        let config = config(&[("DB_SECRET_ID", "login-etl/db"), ("MASKING_KEY_SECRET_ID", "login-etl/masking-key")])
            .expect("valid");
        assert_eq!(config.database.source, Some(DatabaseSource::Secret("login-etl/db".into())));
        assert!(matches!(config.masking.key, Some(MaskingKeySource::Secret(ref id)) if id == "login-etl/masking-key"));
    }

    #[test]
    fn refusals_name_the_variable_not_the_value() {
        let url = ("DATABASE_URL", "postgres://u:hunter2@h/db");
        assert_eq!(function_config(&[("MASKING_KEY", KEY)]).err(), Some(ConfigError::NoDatabase));
        assert_eq!(
            function_config(&[url, ("DB_SECRET_ID", "x"), ("MASKING_KEY", KEY)]).err(),
            Some(ConfigError::TwoDatabases)
        );
        assert_eq!(function_config(&[url]).err(), Some(ConfigError::NoMaskingKey));
        assert_eq!(function_config(&[url, ("MASKING_KEY", "")]).err(), Some(ConfigError::NoMaskingKey));
        let short = function_config(&[url, ("MASKING_KEY", "abcd1234")]).expect_err("short key");
        assert_eq!(short.to_string(), "MASKING_KEY: the masking key has 4 bytes; at least 32 are required");
        let mode = function_config(&[url, ("MASKING_KEY", KEY), ("MASKING_MODE", "md5")]).expect_err("mode");
        assert!(mode.to_string().starts_with("MASKING_MODE:"), "{mode}");
        let pool = function_config(&[url, ("MASKING_KEY", KEY), ("DB_MAX_CONNECTIONS", "0")]).expect_err("pool");
        assert!(pool.to_string().starts_with("DB_MAX_CONNECTIONS:"), "{pool}");
        assert!(!format!("{:?}", function_config(&[url, ("MASKING_KEY", KEY)])).contains("hunter2"));
    }

    #[test]
    fn the_vault_key_is_optional_and_checked() {
        let base = [("DATABASE_URL", "postgres://h/db"), ("MASKING_KEY", KEY)];
        assert!(config(&base).expect("valid").vault.public_key.is_none());
        let with_key = config(&[base[0], base[1], ("VAULT_PUBLIC_KEY", KEY)]).expect("valid");
        assert_eq!(with_key.vault.public_key.map(|k| k.to_hex()).as_deref(), Some(KEY));
        let bad = config(&[base[0], base[1], ("VAULT_PUBLIC_KEY", "xyz")]).expect_err("bad key");
        assert!(bad.to_string().starts_with("VAULT_PUBLIC_KEY:"), "{bad}");
    }

    #[test]
    fn the_pool_follows_lambdas_concurrency_unless_told_otherwise() {
        let base = [("DATABASE_URL", "postgres://h/db"), ("MASKING_KEY", KEY)];
        let concurrent = config(&[base[0], base[1], ("AWS_LAMBDA_MAX_CONCURRENCY", "8")]).expect("valid");
        assert_eq!(concurrent.pool.max_connections, 8);
        let told = config(&[base[0], base[1], ("AWS_LAMBDA_MAX_CONCURRENCY", "8"), ("DB_MAX_CONNECTIONS", "2")])
            .expect("valid");
        assert_eq!(told.pool.max_connections, 2);
        assert_eq!(config(&base).expect("valid").pool.max_connections, 1);
    }

    #[test]
    fn iam_authentication_demands_tls() {
        let base = [("DATABASE_URL", "postgres://h/db"), ("MASKING_KEY", KEY)];
        let iam = config(&[base[0], base[1], ("DB_IAM_AUTH", "true")]).expect("valid");
        assert!(iam.database.connection.iam_auth);
        assert_eq!(iam.database.connection.ssl_mode, Some(SslMode::VerifyFull));
        let plain = config(&[base[0], base[1], ("DB_IAM_AUTH", "true"), ("DB_SSL_MODE", "prefer")]).expect_err("plain");
        assert!(plain.to_string().starts_with("DB_SSL_MODE:"), "{plain}");
        let bad = config(&[base[0], base[1], ("DB_IAM_AUTH", "yes please")]).expect_err("bad flag");
        assert!(bad.to_string().starts_with("DB_IAM_AUTH:"), "{bad}");
        let none = config(&base).expect("valid");
        assert_eq!(none.database.connection, ConnectionSecurity::default());
    }

    #[test]
    fn sha256_mode_needs_no_key() {
        let config = config(&[("DATABASE_URL", "postgres://h/db"), ("MASKING_MODE", "sha256")]).expect("valid");
        assert_eq!(config.masking.mode, MaskingMode::Sha256);
        assert!(config.masking.key.is_none());
        assert!(config.require_handler().is_ok());
    }

    /// Commands that only need the database (`migrate`, `report`) read the same configuration
    /// without a masking key; the function refuses it.
    #[test]
    fn presence_is_checked_by_need() {
        let url = [("DATABASE_URL", "postgres://h/db")];
        let config = config(&url).expect("a database alone is a valid configuration");
        assert!(config.database.source().is_ok());
        assert_eq!(config.masking.require_key().err(), Some(ConfigError::NoMaskingKey));
        assert_eq!(
            super::Config::from_lookup(|_| None).expect("empty").database.source().err(),
            Some(ConfigError::NoDatabase)
        );
    }

    #[test]
    fn aws_surroundings_are_read() {
        let config = config(&[
            ("AWS_LAMBDA_FUNCTION_NAME", "etl-prod"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
            ("RETRY_BACKOFF_BASE_SECONDS", "0"),
        ])
        .expect("valid");
        assert_eq!(config.aws.function_name, "etl-prod");
        assert_eq!(config.aws.endpoint_url.as_deref(), Some("http://127.0.0.1:4566"));
        assert_eq!(config.aws.retry_backoff_base, None);
        assert_eq!(super::Config::from_lookup(|_| None).expect("empty").aws.function_name, "login-etl");
    }

    #[test]
    fn pool_settings_are_read() {
        let config = config(&[
            ("DATABASE_URL", "postgres://h/db"),
            ("MASKING_KEY", KEY),
            ("DB_MAX_CONNECTIONS", "4"),
            ("DB_ACQUIRE_TIMEOUT_MS", "1500"),
            ("DB_STATEMENT_TIMEOUT_MS", "3000"),
        ])
        .expect("valid");
        assert_eq!(config.pool.max_connections, 4);
        assert_eq!(config.pool.acquire_timeout, Duration::from_millis(1500));
        assert_eq!(config.pool.statement_timeout, Duration::from_millis(3000));
    }
}
