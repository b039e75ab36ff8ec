//! Where the database is and how to reach it: one [`DbTarget`] read from `DATABASE_URL` or from
//! an RDS-format secret, handed to both drivers.
//!
//! The function's insert path (`loader`) speaks tokio-postgres, which can send a whole
//! parameterised statement in one round trip without a named prepared statement (safe behind a
//! transaction-mode pooler); operator commands (`operator_db`) use sqlx sessions. Both must
//! reach the same server with the same credentials, so neither owns the connection settings.

use std::fmt;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::config::{ConnectionSecurity, SslMode};

/// A PostgreSQL server, database and login. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DbTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// `None` for trust authentication or when IAM authentication makes a token per connection.
    pub password: Option<String>,
    pub dbname: String,
    pub ssl_mode: SslMode,
}

/// Why a connection description was refused. Never quotes the input: it may hold a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("not a postgres:// URL with a host")]
    Url,
    #[error("sslmode must be disable, prefer, require or verify-full")]
    SslMode,
}

impl fmt::Debug for DbTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("dbname", &self.dbname)
            .field("ssl_mode", &self.ssl_mode)
            .finish()
    }
}

impl DbTarget {
    /// Reads `postgres://user:password@host:port/dbname?sslmode=…`; other query parameters are
    /// ignored. A missing port is 5432, a missing database `postgres`, a missing user `postgres`.
    pub fn from_url(text: &str) -> Result<DbTarget, TargetError> {
        let url = url::Url::parse(text.trim()).map_err(|_| TargetError::Url)?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(TargetError::Url);
        }
        let decode = |part: &str| percent_encoding::percent_decode_str(part).decode_utf8_lossy().into_owned();
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or(TargetError::Url)?;
        // `Url` keeps IPv6 literals in brackets; drivers want the bare address.
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let dbname = decode(url.path().trim_start_matches('/'));
        let ssl_mode = match url.query_pairs().find(|(key, _)| key == "sslmode") {
            Some((_, mode)) => mode.parse().map_err(|_: crate::config::UnknownSslMode| TargetError::SslMode)?,
            None => SslMode::default(),
        };
        Ok(DbTarget {
            host,
            port: url.port().unwrap_or(5432),
            user: if url.username().is_empty() { "postgres".into() } else { decode(url.username()) },
            password: url.password().map(decode),
            dbname: if dbname.is_empty() { "postgres".into() } else { dbname },
            ssl_mode,
        })
    }

    /// Applies `DB_SSL_MODE` and, with IAM authentication, drops any password: the token is
    /// made per connection.
    pub fn secured(mut self, connection: &ConnectionSecurity) -> DbTarget {
        if let Some(mode) = connection.ssl_mode {
            self.ssl_mode = mode;
        }
        if connection.iam_auth {
            self.password = None;
        }
        self
    }

    /// The same target for sqlx, which the operator commands use. sqlx's own startup packet
    /// is fine there: those commands connect to the server, not through a pooler.
    pub fn sqlx_options(&self) -> PgConnectOptions {
        let mut options = PgConnectOptions::new()
            .host(&self.host)
            .port(self.port)
            .username(&self.user)
            .database(&self.dbname)
            .application_name("login-etl-cli")
            .ssl_mode(match self.ssl_mode {
                SslMode::Disable => PgSslMode::Disable,
                SslMode::Prefer => PgSslMode::Prefer,
                SslMode::Require => PgSslMode::Require,
                SslMode::VerifyFull => PgSslMode::VerifyFull,
            });
        if let Some(password) = &self.password {
            options = options.password(password);
        }
        options
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_becomes_a_target() {
        let target = DbTarget::from_url("postgres://loader:p%40ss@db.example:6432/login_etl?sslmode=verify-full")
            .expect("valid");
        assert_eq!(target.host, "db.example");
        assert_eq!(target.port, 6432);
        assert_eq!(target.user, "loader");
        assert_eq!(target.password.as_deref(), Some("p@ss"));
        assert_eq!(target.dbname, "login_etl");
        assert_eq!(target.ssl_mode, SslMode::VerifyFull);
    }

    #[test]
    fn defaults_follow_libpq() {
        let target = DbTarget::from_url("postgresql://[::1]").expect("valid");
        assert_eq!((target.host.as_str(), target.port), ("::1", 5432));
        assert_eq!((target.user.as_str(), target.dbname.as_str()), ("postgres", "postgres"));
        assert_eq!((target.password, target.ssl_mode), (None, SslMode::Prefer));
    }

    /// libpq's other names, as docs/configuration.md says: `allow` reads as `prefer` (TLS when
    /// offered), `verify-ca` as the stricter `verify-full`, never as something weaker.
    #[test]
    fn libpqs_allow_and_verify_ca_read_as_prefer_and_verify_full() {
        assert_eq!("allow".parse(), Ok(SslMode::Prefer));
        assert_eq!("verify-ca".parse(), Ok(SslMode::VerifyFull));
        assert_eq!("disable".parse(), Ok(SslMode::Disable));
        assert_eq!("require".parse(), Ok(SslMode::Require));
    }

    #[test]
    fn refusals_never_quote_the_url() {
        for bad in ["mysql://u:hunter2@h/db", "not a url hunter2", "postgres:///db"] {
            let err = DbTarget::from_url(bad).expect_err(bad);
            assert!(!err.to_string().contains("hunter2"));
        }
        assert_eq!(DbTarget::from_url("postgres://h/db?sslmode=maybe"), Err(TargetError::SslMode));
        let target = DbTarget::from_url("postgres://u:hunter2@h/db").expect("valid");
        assert!(!format!("{target:?}").contains("hunter2"));
    }
}
