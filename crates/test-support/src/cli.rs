//! `login-etl-cli` as a process: the binary, built current, and a command with exactly the
//! environment a test gives it.

use sqlx::postgres::PgConnectOptions;

use crate::database::database_url;
use crate::localstack::localstack_endpoint;
use crate::records::TEST_KEY_HEX;

/// `login-etl-cli` as a process (`binary`: the test's `env!("CARGO_BIN_EXE_login-etl-cli")`)
/// with exactly the environment a test gives it: the database `options` name, the test
/// masking key, LocalStack; nothing inherited but `PATH`. Output is piped.
pub fn cli_process(binary: impl AsRef<std::ffi::OsStr>, options: &PgConnectOptions) -> std::process::Command {
    let mut command = std::process::Command::new(binary);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url(options))
        .env("MASKING_KEY", TEST_KEY_HEX)
        .env("AWS_ENDPOINT_URL", localstack_endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command
}

/// The `login-etl-cli` binary, built now (once per test process) so that it is current: it is
/// another package's binary, which Cargo does not hand to this package's tests
/// (`CARGO_BIN_EXE_*` names only a package's own).
///
/// The build selects what `cargo test --workspace` selects (every member, its tests and bins),
/// so it resolves the same features and finds the binary that build made already: a check of
/// fingerprints, about a second. `cargo build -p login-etl-cli` alone would resolve the CLI's
/// features without the other members' dev-dependencies and compile much of the dependency
/// tree a second time, in the middle of the test run. Its JSON messages name the executable.
pub fn cli_binary() -> &'static std::path::Path {
    static BINARY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BINARY.get_or_init(|| {
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
        let output = std::process::Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--message-format=json", "--workspace", "--bins", "--tests"])
            .arg("--manifest-path")
            .arg(manifest)
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("cargo build --workspace --bins --tests runs");
        assert!(output.status.success(), "cargo build --workspace --bins --tests failed");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|message| {
                message["target"]["name"] == "login-etl-cli"
                    && message["target"]["kind"][0] == "bin"
                    && message["profile"]["test"] == false
            })
            .find_map(|message| message["executable"].as_str().map(std::path::PathBuf::from))
            .expect("cargo build names the login-etl-cli executable")
    })
}
