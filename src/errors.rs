//! How an error reads for a person: the cause chain on one line, each cause once, and the fix
//! when the cause is one we recognise (no schema, a missing privilege, refused credentials,
//! nothing listening, an untrusted certificate, a queue that does not exist).
//!
//! Libraries often repeat their cause in their own message (sqlx's database error prints the
//! server's message, and its source is that same message), so a plain `{:#}` shows
//! `role "nobody" does not exist: role "nobody" does not exist`.

use std::error::Error;

/// `err` and its sources joined with `: `, leaving out a cause whose text the line already holds
/// and the SDK's generic wrappers ("dispatch failure", "other") that say nothing.
pub fn error_chain(err: &(dyn Error + 'static)) -> String {
    let mut line = String::new();
    let mut next = Some(err);
    while let Some(err) = next {
        let text = err.to_string();
        let text = text.trim();
        let says_nothing = matches!(text, "" | "dispatch failure" | "other" | "io error" | "unhandled error");
        if !says_nothing && !line.contains(text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(text);
        }
        next = err.source();
    }
    line
}

/// The Amazon RDS CA bundle (every region's roots), which RDS server certificates chain to.
pub const RDS_CA_BUNDLE_URL: &str = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem";

/// What to do about `err`, when its chain holds a cause we recognise. `role_hint` says which
/// role to grant when the database refused a privilege (it depends on who was refused).
pub fn fix_for(err: &(dyn Error + 'static), role_hint: &str) -> Option<String> {
    let chain = || std::iter::successors(Some(err), |&err| err.source());
    let causes = error_chain(err);
    let fix = match chain().find_map(sqlstate).as_deref() {
        Some("42P01" | "3F000" | "42883") => {
            "The database has no login-etl schema (or an older one): run `login-etl-cli migrate` against it first, \
             as the table's owner"
                .to_owned()
        }
        Some("42501") => format!("The database user lacks a privilege for this: {role_hint}"),
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
        _ if causes.contains("NonExistentQueue") => {
            "Create the queue and its dead-letter queue with `login-etl-cli setup` (--queue-name, default \
             login-queue), or check --queue-url / QUEUE_URL"
                .to_owned()
        }
        _ if chain().any(is_connection_refused) => {
            "Nothing accepts connections there: check the host and port of DATABASE_URL (or of the DB_SECRET_ID \
             secret) and that PostgreSQL is running"
                .to_owned()
        }
        _ => return None,
    };
    Some(fix)
}

/// The SQLSTATE of a database error, from either driver.
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
    let refused = |io: &std::io::Error| io.kind() == std::io::ErrorKind::ConnectionRefused;
    err.downcast_ref::<std::io::Error>().is_some_and(refused)
        || err.downcast_ref::<sqlx::Error>().is_some_and(|err| matches!(err, sqlx::Error::Io(io) if refused(io)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("role \"nobody\" does not exist")]
    struct Server;

    #[derive(Debug, thiserror::Error)]
    #[error("role \"nobody\" does not exist")]
    struct Driver(#[source] Server);

    #[derive(Debug, thiserror::Error)]
    #[error("a query failed")]
    struct OperatorDb(#[source] Driver);

    #[test]
    fn each_cause_is_said_once() {
        assert_eq!(error_chain(&OperatorDb(Driver(Server))), "a query failed: role \"nobody\" does not exist");
    }
}
