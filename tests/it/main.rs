//! login-etl's integration tests: one binary (as zero2prod's `tests/api/main.rs`), so the
//! dependency tree is linked once instead of once per file. Each module runs against the real
//! PostgreSQL (a fresh `#[sqlx::test]` database per test) and LocalStack; `make test-pooler`
//! runs the database modules again through PgBouncer by filtering on their paths.
//!
//! A module per component it specifies (the CLI, the drain, the function binary, the handler,
//! the vault, ...); what they share is in [`helpers`] and `login_etl_test_support`.

mod cli;
mod concurrency;
mod drain;
mod function;
mod handler;
mod helpers;
mod lifecycle;
mod masking;
mod pii_logs;
mod policy;
mod pooler;
mod readme;
mod schema;
mod secrets;
mod tls;
mod vault;
mod wiring;
