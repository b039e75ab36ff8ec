//! What the integration tests share beyond `login_etl_test_support` (which the benches use
//! too): `login-etl-cli` as a process, and reading what it printed.

use std::process::{Command, Output};

use aws_lambda_events::sqs::SqsMessage;
use crypto_box::aead::OsRng;
use login_etl::LoadError;
use login_etl_core::batch::BatchOutcome;
use login_etl_core::vault::VaultSecretKey;
use login_etl_test_support::{cli_process, handler_for};
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

/// The CLI with exactly the environment a test gives it: a database, the test key, LocalStack.
pub fn cli_command(pool: &PgPool) -> Command {
    cli_process(login_etl_test_support::cli_binary(), &pool.connect_options())
}

/// [`cli_command`] logged in as `user`.
pub fn cli_command_as(pool: &PgPool, user: &str) -> Command {
    cli_process(login_etl_test_support::cli_binary(), &(*pool.connect_options()).clone().username(user))
}

/// The CLI for commands that need no database of a test's own.
pub fn cli_without_database() -> Command {
    cli_process(login_etl_test_support::cli_binary(), &PgConnectOptions::new().host("127.0.0.1").port(closed_port()))
}

/// A local port nothing listens on.
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// What the command printed on stdout, as the one JSON object it must be.
pub fn json_stdout(output: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(text.trim())
        .unwrap_or_else(|err| panic!("stdout is not one JSON object ({err}): {text}\nstderr: {}", stderr(output)))
}

/// The one `error: …` line of a failed command, checked to be a sentence: no Debug dump of a
/// Rust value (`Struct { … }`, `Variant(…)`), no SDK wrapper names.
pub fn error_line(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(1), "expected a failure: {output:?}");
    let text = stderr(output);
    let line = text.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line: {text}"));
    for dump in [" { ", " }", "ServiceError", "DispatchFailure", "ConnectorError", "UserId(", "Masked {", "Some("] {
        assert!(!line.contains(dump), "a Debug dump ({dump}) in: {line}");
    }
    line.to_owned()
}

/// `records` handled with the vault on, under a key pair made for the test (the loader's target,
/// as `handler_for`): the outcome, and the secret key that opens what the batch sealed.
pub async fn handle_with_new_vault_key(
    pool: &PgPool,
    records: &[SqsMessage],
) -> (BatchOutcome<LoadError>, VaultSecretKey) {
    let secret = VaultSecretKey::generate(&mut OsRng);
    let handler = handler_for(pool).with_vault(Some(secret.public_key()));
    (handler.handle(records).await.expect("handled"), secret)
}

/// A deployment's policy that tightens the built-in fields (no rebuild), `locale` at most 2
/// characters: `tests/it/schema.rs` and `policy.rs` judge and validate by it.
pub fn tightened_built_in_policy() -> serde_json::Value {
    login_etl_core::sample::tightened_policy(2)
}
