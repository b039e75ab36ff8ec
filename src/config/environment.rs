//! The process environment, captured once.

/// The process environment, read once at start-up: [`Config`](super::Config) and
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
