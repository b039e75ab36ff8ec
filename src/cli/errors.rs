//! What an operator reads when a command fails: one sentence — what failed, the cause once,
//! and the fix when the cause is one we recognise (no schema, a missing privilege, refused
//! credentials, nothing listening, an untrusted certificate).

use std::error::Error;

use super::Command;

/// The Amazon RDS CA bundle (every region's roots), which RDS server certificates chain to.
pub const RDS_CA_BUNDLE_URL: &str = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem";

impl Command {
    /// Who may run the command, for the hint when the database refuses a privilege.
    pub fn database_role(&self) -> &'static str {
        match self {
            Command::Drain(_) | Command::Invoke(_) => "grant the user the login_etl_loader role",
            Command::Report(_) | Command::Recover(_) => "grant the user the login_etl_recovery role",
            Command::Erase(_) => "grant the user the login_etl_eraser role",
            Command::Migrate | Command::Partitions(_) | Command::Retention(_) => {
                "run it as the owner of user_logins (the user that ran `login-etl-cli migrate`)"
            }
            Command::Setup(_) | Command::Send(_) | Command::Depth(_) | Command::Redrive(_) | Command::Keygen(_) => {
                "check the database user's grants"
            }
        }
    }
}

/// `err` as one line for a person: its causes once each ([`crate::errors::causes`]), then
/// the fix. `role_hint` is the command's [`Command::database_role`].
pub fn operator_message(err: &anyhow::Error, role_hint: &str) -> String {
    let causes = crate::errors::causes(err.as_ref());
    match fix(err, &causes, role_hint) {
        Some(fix) => format!("{causes}. {fix}"),
        None => causes,
    }
}

fn fix(err: &anyhow::Error, causes: &str, role_hint: &str) -> Option<String> {
    let sqlstate = err.chain().find_map(sqlstate);
    let fix = match sqlstate.as_deref() {
        Some("42P01" | "3F000" | "42883") => {
            "The database has no login-etl schema (or an older one): run `login-etl-cli migrate` against it first, \
             as the table's owner"
                .to_owned()
        }
        Some("42501") => format!("The database user lacks a privilege for this command: {role_hint}"),
        Some("28P01" | "28000") => {
            "Check the user and password in DATABASE_URL (or in the DB_SECRET_ID secret), and that the role exists"
                .to_owned()
        }
        Some("3D000") => {
            "Check the database name in DATABASE_URL; `login-etl-cli migrate` with DATABASE_URL creates it".to_owned()
        }
        _ if causes.contains("UnknownIssuer")
            || causes.contains("invalid peer certificate")
            || causes.contains("certificate verify failed") =>
        {
            format!(
                "The server's certificate does not chain to a trusted CA: set DB_CA_BUNDLE to its CA's PEM file \
                 (for RDS, Amazon's bundle: {RDS_CA_BUNDLE_URL}; RDS Proxy's ACM certificates verify without one)"
            )
        }
        _ if err.chain().any(is_connection_refused) => {
            "Nothing accepts connections there: check the host and port of DATABASE_URL (or of the DB_SECRET_ID \
             secret) and that PostgreSQL is running"
                .to_owned()
        }
        _ => return None,
    };
    Some(fix)
}

/// The SQLSTATE of a database error anywhere in a chain, from either driver.
fn sqlstate(err: &(dyn Error + 'static)) -> Option<String> {
    if let Some(err) = err.downcast_ref::<sqlx::Error>() {
        return err.as_database_error().and_then(|db| db.code()).map(|code| code.into_owned());
    }
    if let Some(err) = err.downcast_ref::<tokio_postgres::Error>() {
        return err.code().map(|code| code.code().to_owned());
    }
    None
}

fn is_connection_refused(err: &(dyn Error + 'static)) -> bool {
    err.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        || err.downcast_ref::<sqlx::Error>().is_some_and(
            |sqlx| matches!(sqlx, sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_says_where_to_look_and_the_cause_once() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused (os error 111)");
        let err = anyhow::Error::from(refused).context("connecting to the database failed");
        let message = operator_message(&err, "");
        assert_eq!(message.matches("Connection refused").count(), 1, "{message}");
        assert!(message.contains("check the host and port of DATABASE_URL"), "{message}");
        assert!(!message.contains('{'), "{message}");
    }
}
