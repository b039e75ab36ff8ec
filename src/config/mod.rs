//! Configuration: read from the environment once at start-up, validated, typed.
//!
//! Errors name the variable and the problem, never a value: several of these are secrets.
//!
//! The settings types the adapters take ([`PoolSettings`], [`SslMode`], [`ConnectionSecurity`])
//! are defined here, so this module depends on no other module of the crate: the adapters
//! depend on it, never the other way round.
//!
//! # Layout
//!
//! - [`Config`], its reader and [`ConfigError`] here, with [`CONFIG_VARIABLES`], the names it reads;
//! - `environment`: the process [`Environment`], captured once;
//! - `database`: the source, TLS and pool settings;
//! - `masking`: the masking mode and key source, and the PII vault;
//! - `aws`: the function's AWS surroundings and [`RUNTIME_ENV`];
//! - `lifecycle`: the bootstrap's [`Task`] and the retention.

mod aws;
mod database;
mod environment;
mod lifecycle;
mod masking;

pub use aws::{AwsConfig, RUNTIME_ENV};
pub use database::{ConnectionSecurity, DatabaseConfig, DatabaseSource, PoolSettings, SslMode, UnknownSslMode};
pub use environment::Environment;
pub use lifecycle::{LifecycleConfig, Task};
pub use masking::{MaskingConfig, MaskingKeySource, VaultConfig};

use std::time::Duration;

use login_etl_core::vault::VaultPublicKey;

/// The whole configuration of the function and of every CLI command, read from the environment
/// once at start-up. Every value that is set is validated here; what a given entry point
/// *needs* is checked by [`Config::require_handler`], `DatabaseConfig::source` and
/// `MaskingConfig::require_key`, so a command that only needs the database (`migrate`) does
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
            database: database::database(&get)?,
            pool: database::pool(&get, max_concurrency)?,
            masking: masking::masking(&get)?,
            vault: VaultConfig {
                public_key: get("VAULT_PUBLIC_KEY")
                    .map(|hex| VaultPublicKey::from_hex(&hex))
                    .transpose()
                    .map_err(|err| invalid("VAULT_PUBLIC_KEY", err.to_string()))?,
            },
            aws: aws::aws(&get, max_concurrency)?,
            lifecycle: lifecycle::lifecycle(&get)?,
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
    use login_etl_core::mask::MaskingMode;
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
