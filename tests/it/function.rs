//! The function binary (`login-etl`) as Lambda starts it, and as someone starts it by hand:
//! outside a Runtime API it says what it needs, and a start-up failure is one line and exit 1,
//! never a panic.

use std::process::Command;

use login_etl_test_support::*;

use crate::helpers::*;

#[test]
fn the_function_binary_outside_lambda_says_what_it_needs_and_never_panics() {
    let binary = env!("CARGO_BIN_EXE_login-etl");
    let help = Command::new(binary).arg("--help").output().expect("--help");
    assert!(help.status.success(), "{help:?}");
    assert!(stdout(&help).contains("login-etl-cli: `invoke <event.json>` or `drain`"), "{}", stdout(&help));
    let version = Command::new(binary).arg("--version").output().expect("--version");
    assert!(version.status.success(), "{version:?}");
    assert_eq!(stdout(&version).trim(), format!("login-etl {}", env!("CARGO_PKG_VERSION")));
    let unknown = Command::new(binary).arg("--serve").output().expect("--serve");
    assert_eq!(unknown.status.code(), Some(2), "{unknown:?}");

    // A valid configuration, no Lambda Runtime API.
    let outside = Command::new(binary)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", format!("postgres://postgres@127.0.0.1:{}/x", closed_port()))
        .env("MASKING_KEY", TEST_KEY_HEX)
        .output()
        .expect("login-etl");
    let printed = stdout(&outside) + &stderr(&outside);
    assert_eq!(outside.status.code(), Some(1), "{printed}");
    assert!(!printed.contains("panicked"), "{printed}");
    assert!(printed.contains("AWS_LAMBDA_RUNTIME_API") && printed.contains("login-etl-cli invoke"), "{printed}");
}

/// A start-up failure after the configuration is valid (here: a database secret that does not
/// exist) is one JSON line with `errorType` `Runtime.StartupError` naming the secret, then exit 1;
/// docs/operations.md tells it apart from `Runtime.ConfigError`.
#[test]
fn an_unreadable_secret_is_a_startup_error_line_and_exit_1() {
    let output = Command::new(env!("CARGO_BIN_EXE_login-etl"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DB_SECRET_ID", unique_name("no-such-secret"))
        .env("MASKING_KEY", TEST_KEY_HEX)
        .env("AWS_ENDPOINT_URL", localstack_endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        // A Runtime API nobody answers at: the report fails soft.
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{}", closed_port()))
        .env("AWS_LAMBDA_FUNCTION_NAME", "login-etl")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .output()
        .expect("login-etl");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let printed = stdout(&output);
    let error: serde_json::Value = printed
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .find(|line: &serde_json::Value| line["level"] == "ERROR")
        .unwrap_or_else(|| panic!("no ERROR line: {printed}"));
    assert_eq!(error["errorType"], "Runtime.StartupError", "{error}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("start-up failed:") && message.contains("no-such-secret"), "{message}");
    assert!(!printed.contains("panicked"), "{printed}");
}
