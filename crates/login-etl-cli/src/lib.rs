//! `login-etl-cli`'s commands: each is a function over its arguments, its dependencies and
//! the writers it prints to, so that tests call it in-process. [`run`] builds the dependencies
//! from the one [`Config`] and dispatches; the binary (`src/main.rs`) only parses the command
//! line and hands over.
//!
//! # Layout
//!
//! - `args`: the command line ([`Cli`], [`Command`] and each command's `Args`);
//! - the commands by area: `queue` (setup, send, drain, depth, redrive), `database` (migrate,
//!   report), `lifecycle` (partitions, retention, erase), `vault` (keygen, recover), `invoke`,
//!   `schema` (validate), with `kms` for `setup`'s queue key;
//! - `errors`: an error as the operator reads it, with the fix when there is one.
//!
//! Adding a command: an arm in [`Command`] (with its `Args` struct) in `args`, a function in
//! the module of its area, and an arm in [`run`].

mod args;
mod database;
mod errors;
mod invoke;
mod kms;
mod lifecycle;
mod queue;
mod schema;
mod vault;

use std::io::Write;

use login_etl::{Config, ConfigError, Function, Queue};

pub use args::{
    Cli, Command, DepthArgs, DrainArgs, EraseArgs, InvokeArgs, KeygenArgs, MAX_MONTHS_AHEAD, PartitionsArgs,
    RecoverArgs, RedriveArgs, ReportArgs, RetentionArgs, SendArgs, SetupArgs, ValidateArgs,
};
pub use database::{migrate, report};
pub use errors::{RDS_CA_BUNDLE_URL, operator_message};
pub use invoke::invoke;
pub use lifecycle::{erase, partitions, retention};
pub use queue::{SetupClients, depth, drain, redrive, send, setup};
pub use schema::{EXIT_INVALID_BODIES, validate};
pub use vault::{keygen, recover};

/// Writes a command's one-line result: `json` with `--json`, else the line of text.
pub(crate) fn write_result(
    out: &mut impl Write,
    json: bool,
    value: serde_json::Value,
    text: std::fmt::Arguments<'_>,
) -> std::io::Result<()> {
    if json { writeln!(out, "{value}") } else { writeln!(out, "{text}") }
}

/// Exit status of `drain` when it stopped with failing messages left on a queue without a
/// redrive policy: the job is not done, and a script must not take it for success.
pub const EXIT_FAILING_MESSAGES_LEFT: u8 = 3;

/// Runs `command`: builds what it needs from `config` (read once by the caller), then calls
/// its function. Results go to `out` (stdout), notes and progress to `notes` (stderr).
/// Returns the exit status.
pub async fn run(
    command: Command,
    config: Result<Config, ConfigError>,
    out: &mut impl Write,
    notes: &mut (impl Write + Send),
) -> anyhow::Result<u8> {
    // Each command takes the configuration only if it needs it: `keygen` reads no
    // environment, so a broken configuration must not stop it.
    match command {
        Command::Keygen(args) => keygen(&args, out, notes)?,
        Command::Validate(args) => return validate(&args, std::io::stdin().lock(), out),
        Command::Migrate => migrate(&config?, notes).await?,
        Command::Setup(args) => {
            let config = config?;
            let sdk = login_etl::load_aws_config(std::time::Duration::from_secs(25)).await;
            let clients = SetupClients {
                sqs: aws_sdk_sqs::Client::new(&sdk),
                kms: aws_sdk_kms::Client::new(&sdk),
                secrets: login_etl::SecretStore::new(&sdk),
            };
            setup(&args, &config, &clients, out).await?
        }
        Command::Send(args) => send(&args, &open_queue(&args.queue_url).await?, std::io::stdin().lock(), out).await?,
        Command::Drain(args) => {
            let mut config = config?;
            config.pool.max_connections = config.pool.max_connections.max(u32::from(args.concurrency));
            let handler = login_etl::build_handler(&config).await?;
            // Before any message is taken: with the database away, each would fail as
            // `store_failed` and be hidden for its backoff.
            handler.loader().check_connection().await?;
            // `--sqs-retry-seconds` holds from the first call: SQS down at start-up is waited
            // for as it is mid-drain.
            let client = sqs_client().await;
            let budget = std::time::Duration::from_secs(args.sqs_retry_seconds);
            let queue = login_etl::retrying(budget, || Queue::open(client.clone(), &args.queue_url)).await?;
            return drain(&args, &handler, &queue, stop_signal(), out, notes).await;
        }
        Command::Depth(args) => depth(&args, &open_queue(&args.queue_url).await?, out).await?,
        Command::Redrive(args) => {
            let (dlq, target) = (open_queue(&args.dlq_url).await?, open_queue(&args.queue_url).await?);
            redrive(&args, &dlq, &target, out).await?
        }
        Command::Report(args) => report(&args, &connected_operator_db(&config?).await?, out).await?,
        Command::Partitions(args) => {
            let today = time::OffsetDateTime::now_utc().date();
            partitions(&args, &connected_operator_db(&config?).await?, today, out).await?
        }
        Command::Retention(args) => {
            let today = time::OffsetDateTime::now_utc().date();
            retention(&args, &connected_operator_db(&config?).await?, today, out).await?
        }
        Command::Erase(args) => erase(&args, &connected_operator_db(&config?).await?, out).await?,
        Command::Recover(args) => {
            let config = config?;
            let secret = vault::private_key(&args).await?;
            let masker = login_etl::build_masker(&config).await?;
            let db = connected_operator_db(&config).await?;
            recover(&args, &secret, &masker, &db, out, notes).await?
        }
        Command::Invoke(args) => {
            let config = config?;
            let mut handler = login_etl::build_handler(&config).await?;
            // As `drain`: a database that does not answer fails the command, not the records.
            handler.loader().check_connection().await?;
            if !args.change_visibility {
                // The event file's receipt handles may name a real queue: touch none unasked.
                handler = handler.with_backoff(None);
            }
            let log = login_etl::LogSettings::from_env();
            let function = Function::new(handler, config.aws.function_name.clone(), &log);
            // The metrics lines the runtime would log, then the response: both on stdout, as
            // in the function's log stream, whatever RUST_LOG says.
            let (mut response, mut metrics) = (Vec::new(), Vec::new());
            let invoked = invoke(&args, &function, &mut response, &mut metrics).await;
            out.write_all(&metrics)?;
            invoked?;
            out.write_all(&response)?;
        }
    }
    Ok(0)
}

/// The operator commands' pool, its connection checked first so that a wrong address or
/// credentials fail at once with their cause.
async fn connected_operator_db(config: &Config) -> anyhow::Result<login_etl::OperatorDb> {
    let db = login_etl::connect_operator_db(config).await?;
    db.check_connection().await?;
    Ok(db)
}

async fn sqs_client() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&login_etl::load_aws_config(std::time::Duration::from_secs(25)).await)
}

async fn open_queue(url: &str) -> anyhow::Result<Queue> {
    Ok(Queue::open(sqs_client().await, url).await?)
}

/// Completes on the first SIGINT or SIGTERM (or never, if they cannot be watched).
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
        (Ok(mut interrupt), Ok(mut terminate)) => {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}
