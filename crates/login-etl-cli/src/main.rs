//! `login-etl-cli`: operate login-etl outside Lambda — set up queues and secrets, send sample
//! messages, drain a queue through the same handler Lambda runs, invoke it on an event file,
//! apply migrations. Configuration comes from the same environment variables as the function,
//! read once here; the commands are the `login_etl_cli` library.

// The handler's future (deadpool, tokio-postgres, the AWS SDK, the contract's store step) nests
// deeper than the default.
#![recursion_limit = "256"]

use clap::Parser;
use login_etl::{Config, Environment};

use login_etl_cli::{self as cli, Cli};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // A closed pipe (`login-etl-cli setup | head -1`) ends the process quietly, as it does any
    // Unix tool, instead of making a write panic. Commands do their work before they print.
    // SAFETY: restoring a signal's default disposition at start-up, before any thread of ours
    // writes to stdout, has no other effect on the process.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    login_etl::init_human();
    let command = Cli::parse().command;
    let role_hint = command.database_role();
    if command.may_call_aws()
        && let Some(problem) = login_etl::blank_endpoint(&Environment::capture())
    {
        eprintln!("error: {problem}");
        return std::process::ExitCode::FAILURE;
    }
    match cli::run(command, Config::from_env(), &mut std::io::stdout(), &mut std::io::stderr()).await {
        Ok(code) => std::process::ExitCode::from(code),
        Err(err) => {
            // One line: the causes once each, and the fix when there is one.
            eprintln!("error: {}", cli::operator_message(&err, role_hint));
            std::process::ExitCode::FAILURE
        }
    }
}
