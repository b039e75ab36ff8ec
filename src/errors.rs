//! How an error reads for a person: the cause chain on one line, each cause once.
//!
//! Libraries often repeat their cause in their own message (sqlx's database error prints the
//! server's message, and its source is that same message), so a plain `{:#}` shows
//! `role "nobody" does not exist: role "nobody" does not exist`.

use std::error::Error;

/// `err` and its sources joined with `: `, leaving out a cause whose text the line already holds
/// and the SDK's generic wrappers ("dispatch failure", "other") that say nothing.
pub fn causes(err: &(dyn Error + 'static)) -> String {
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
    struct Store(#[source] Driver);

    #[test]
    fn each_cause_is_said_once() {
        assert_eq!(causes(&Store(Driver(Server))), "a query failed: role \"nobody\" does not exist");
    }
}
