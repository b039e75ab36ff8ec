//! What an operator reads when a command fails: one sentence — what failed, the cause once,
//! and the fix when the cause is one we recognise (no schema, a missing privilege, refused
//! credentials, nothing listening, an untrusted certificate).

use super::Command;

pub use login_etl::RDS_CA_BUNDLE_URL;

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
            Command::Setup(_)
            | Command::Send(_)
            | Command::Depth(_)
            | Command::Redrive(_)
            | Command::Keygen(_)
            | Command::Validate(_) => "check the database user's grants",
        }
    }
}

impl Command {
    /// Whether the command may build an AWS client (queues, secrets, KMS): all but the two
    /// that read no environment. Such a command refuses a blank endpoint variable up front,
    /// since the SDK would panic on it ([`login_etl::blank_endpoint`]).
    pub fn may_call_aws(&self) -> bool {
        !matches!(self, Command::Keygen(_) | Command::Validate(_))
    }
}

/// `err` as one line for a person: its causes once each ([`login_etl::error_chain`]), then
/// the fix ([`login_etl::fix_for`]). `role_hint` is the command's [`Command::database_role`].
pub fn operator_message(err: &anyhow::Error, role_hint: &str) -> String {
    let causes = login_etl::error_chain(err.as_ref());
    match login_etl::fix_for(err.as_ref(), role_hint) {
        Some(fix) => format!("{causes}. {fix}"),
        None => causes,
    }
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
