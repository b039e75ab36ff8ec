//! The command line: [`Cli`], its [`Command`]s, each command's arguments with their help (what
//! `--help` prints, the environment each command reads included), and the value parsers that
//! refuse what no command can use.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Environment every AWS call reads (queues, secrets).
const AWS_ENV: &str =
    "AWS_ENDPOINT_URL (LocalStack: http://127.0.0.1:4566), AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY";
/// Environment of commands that only need the database.
const DATABASE_ENV: &str =
    "DATABASE_URL (postgres://…) or DB_SECRET_ID (a Secrets Manager secret, read with the AWS variables)";

#[derive(Parser, Debug)]
#[command(
    name = "login-etl-cli",
    version,
    about = "Operate the login-etl pipeline locally",
    after_help = "Every command also reads RUST_LOG (log filter, default warn) and NO_COLOR (no ANSI colours; \
                  colours are only ever used on a terminal).\n\
                  Exit status: 0 success; 1 error (and `validate`: a body invalid); 2 usage error; 3 `drain` \
                  stopped with failing messages left on a queue without a redrive policy."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Apply migrations/ to the configured database (DATABASE_URL or DB_SECRET_ID); with
    /// DATABASE_URL the database is created first if it does not exist.
    #[command(after_help = format!("Environment: {DATABASE_ENV}; {AWS_ENV} (with DB_SECRET_ID)."))]
    Migrate,
    /// Create (or update) the queue and its dead-letter queue, both encrypted with a KMS key
    /// (created under --kms-key-alias unless it exists), and the secrets the function reads.
    #[command(after_help = format!(
        "Environment: {AWS_ENV}; DATABASE_URL (stored as the database secret, skipped if unset); \
         MASKING_KEY (stored as the masking key if that secret does not exist; else a random key)."
    ))]
    Setup(SetupArgs),
    /// Send realistic sample login messages (--count, a share of them malformed), or bodies of
    /// your own (--body, --file), 10 per SendMessageBatch.
    #[command(after_help = format!("Environment: QUEUE_URL (default of --queue-url); {AWS_ENV}."))]
    Send(SendArgs),
    /// Poll a queue like Lambda's event source mapping: receive 10, run the handler, delete
    /// what succeeded, until the queue holds no message (visible or in flight).
    #[command(after_help = format!(
        "Environment: QUEUE_URL (default of --queue-url); the function's configuration: {DATABASE_ENV}, \
         MASKING_MODE, MASKING_KEY or MASKING_KEY_SECRET_ID, VAULT_PUBLIC_KEY, DB_MAX_CONNECTIONS, \
         DB_ACQUIRE_TIMEOUT_MS, DB_STATEMENT_TIMEOUT_MS; {AWS_ENV}.\n\
         SIGINT (Ctrl-C) or SIGTERM: stop receiving, finish and delete the batches in hand, print the \
         summary, exit 0.\n\
         Exit status 3: stopped because only failing messages are left on a queue without a redrive \
         policy (they would be retried forever); give the queue a DLQ or fix the cause."
    ))]
    Drain(DrainArgs),
    /// Print how many messages a queue holds (visible, in flight, delayed).
    #[command(after_help = format!("Environment: QUEUE_URL (default of --queue-url); {AWS_ENV}."))]
    Depth(DepthArgs),
    /// Move dead letters back to their source queue keeping each one's first messageId and
    /// SentTimestamp (as message attributes), so a letter that was loaded before is counted
    /// as a duplicate, not loaded twice.
    #[command(after_help = format!("Environment: {AWS_ENV}."))]
    Redrive(RedriveArgs),
    /// Show what is loaded: the row count and the latest rows (masked values only).
    #[command(after_help = format!("Environment: {DATABASE_ENV}."))]
    Report(ReportArgs),
    /// Make a PII-vault key pair: the private key goes to a new file (mode 0600), the public
    /// key (for VAULT_PUBLIC_KEY) is printed.
    #[command(after_help = "Environment: none.")]
    Keygen(KeygenArgs),
    /// Recover original ip / device_id values from the PII vault with the private key.
    /// Needs a database user with the login_etl_recovery role, and the masking key: only an
    /// original that re-masks to its masked value is shown.
    #[command(after_help = format!(
        "Environment: {DATABASE_ENV}; MASKING_MODE, MASKING_KEY or MASKING_KEY_SECRET_ID; {AWS_ENV} \
         (with --private-key-secret-id or MASKING_KEY_SECRET_ID)."
    ))]
    Recover(RecoverArgs),
    /// Give the current month and the next ones their user_logins partitions, and move rows
    /// waiting in the default partition into partitions of their months. Run as the table's
    /// owner (the migrate user), e.g. monthly; `migrate` and `retention` do it too.
    #[command(after_help = format!("Environment: {DATABASE_ENV}; {AWS_ENV} (with DB_SECRET_ID)."))]
    Partitions(PartitionsArgs),
    /// Keep the current month and the N whole months before it: detach and drop every older
    /// monthly partition of user_logins (no row-by-row DELETE), then remove vault rows no
    /// remaining login references. Prints what it dropped (--dry-run: what it would drop,
    /// changing nothing). Run as the table's owner.
    #[command(after_help = format!("Environment: {DATABASE_ENV}; {AWS_ENV} (with DB_SECRET_ID)."))]
    Retention(RetentionArgs),
    /// Erase one person: delete their logins and the vault rows only they referenced, in one
    /// transaction under the login_etl_eraser role (the database user must be granted it).
    /// Prints counts, never values.
    #[command(after_help = format!("Environment: {DATABASE_ENV}; {AWS_ENV} (with DB_SECRET_ID)."))]
    Erase(EraseArgs),
    /// Run the handler once on an SQS event JSON file and print the EMF metrics lines and the
    /// SQSBatchResponse (stdout). Touches no queue unless --change-visibility.
    #[command(after_help = format!(
        "Environment: the function's configuration: {DATABASE_ENV}, MASKING_MODE, MASKING_KEY or \
         MASKING_KEY_SECRET_ID, VAULT_PUBLIC_KEY, DB_* pool settings; {AWS_ENV}."
    ))]
    Invoke(InvokeArgs),
    /// Check message bodies against the schema before sending them: each body's verdict by
    /// the function's own rules (valid, or invalid with the reason code it would log) and the
    /// keys it does not know. Reads one JSON body per line, or an SQS event (Records[].body).
    /// Exit status 0 only when every body is valid. The schema:
    /// schema/login-event.schema.json; --schema prints its $id and version.
    #[command(after_help = "Environment: none (no queue, no database: a producer's CI can run it).\n\
                            Exit status: 0 every body valid; 1 a body invalid (its line says why), or an error.")]
    Validate(ValidateArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct SetupArgs {
    /// Name of the queue; its dead-letter queue is named <QUEUE_NAME>-dlq.
    #[arg(long, default_value = "login-queue")]
    pub queue_name: String,
    /// Seconds a failed message stays invisible before it is retried (0–43200, SQS's range).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(0..=43_200))]
    pub visibility_timeout: u32,
    /// Receives before SQS moves a message to the dead-letter queue (1–1000, SQS's range).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_receive_count: u32,
    /// Secret to hold DATABASE_URL's connection in the RDS format (skipped without DATABASE_URL).
    #[arg(long, default_value = "login-etl/db")]
    pub db_secret_id: String,
    /// Secret to hold the masking key (hex): MASKING_KEY's value, or a new random key. An
    /// existing key is never replaced: that would silently change every masked value.
    #[arg(long, default_value = "login-etl/masking-key")]
    pub masking_key_secret_id: String,
    /// KMS alias of the key both queues are encrypted with (SSE-KMS, as the stack's queues):
    /// the key it names, or a new symmetric key given this alias if none does.
    #[arg(long, default_value = "alias/login-etl-local")]
    pub kms_key_alias: String,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("what").required(true)))]
#[command(group(clap::ArgGroup::new("key").required(true)))]
pub struct RecoverArgs {
    /// A masked_ip value (hex) from user_logins.
    #[arg(long, group = "what")]
    pub masked_ip: Option<String>,
    /// A masked_device_id value (hex) from user_logins.
    #[arg(long, group = "what")]
    pub masked_device_id: Option<String>,
    /// Every vault value of this user's logins.
    #[arg(long, group = "what", value_parser = user_id)]
    pub user_id: Option<String>,
    /// File holding the private key (hex), as written by `keygen`.
    #[arg(long, group = "key")]
    pub private_key_file: Option<PathBuf>,
    /// Secrets Manager secret holding the private key (hex).
    #[arg(long, group = "key")]
    pub private_key_secret_id: Option<String>,
}

#[derive(clap::Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("bodies").required(true).args(["count", "body", "file"])))]
pub struct SendArgs {
    /// URL of the queue to send to.
    #[arg(long, env = "QUEUE_URL")]
    pub queue_url: String,
    /// How many sample messages to send (1–1,000,000).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub count: Option<u64>,
    /// Send this one body as it is, e.g. '{"user_id":"u-1","ip":"10.0.0.1"}'.
    #[arg(long)]
    pub body: Option<String>,
    /// Send the bodies of a file as they are: one per line, or an SQS event's Records[].body
    /// (what `validate` reads); `-` reads standard input.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Share of malformed sample messages, 0.0 to 1.0 (with --count).
    #[arg(long, default_value_t = 0.0, value_parser = ratio, conflicts_with_all = ["body", "file"])]
    pub bad_ratio: f64,
    /// Share of the valid sample messages that also carry keys the function does not know
    /// (os_version, schema_version), as a producer ahead of the schema sends; 0.0 to 1.0
    /// (with --count). They are loaded and counted as UnknownFieldRecords.
    #[arg(long, default_value_t = 0.0, value_parser = ratio, conflicts_with_all = ["body", "file"])]
    pub unknown_key_ratio: f64,
    /// Seed for reproducible sample messages (with --count).
    #[arg(long, default_value_t = 1, conflicts_with_all = ["body", "file"])]
    pub seed: u64,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct DrainArgs {
    /// URL of the queue to drain (a DLQ's URL replays dead letters).
    #[arg(long, env = "QUEUE_URL")]
    pub queue_url: String,
    /// Pollers at once, 1–256 (each holds one database connection).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// ReceiveMessage long-poll wait, seconds (0–20).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(0..=20))]
    pub wait_seconds: i32,
    /// Keep polling when the queue is empty, until SIGINT (Ctrl-C) or SIGTERM.
    #[arg(long)]
    pub follow: bool,
    /// How long SQS may fail (refused connections, throttling) before the drain gives up,
    /// seconds (0–86400), from the first call on; calls are retried with backoff meanwhile.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub sqs_retry_seconds: u64,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct RedriveArgs {
    /// URL of the dead-letter queue to empty.
    #[arg(long)]
    pub dlq_url: String,
    /// URL of the queue to move the letters to (its source queue).
    #[arg(long, env = "QUEUE_URL")]
    pub queue_url: String,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct DepthArgs {
    /// URL of the queue to look at.
    #[arg(long, env = "QUEUE_URL")]
    pub queue_url: String,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ReportArgs {
    /// How many of the latest rows to show (0–1000).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(i64).range(0..=1000))]
    pub limit: i64,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct KeygenArgs {
    /// New file for the private key (hex); an existing file is never overwritten.
    #[arg(long)]
    pub private_key_file: PathBuf,
}

#[derive(clap::Args, Debug, Clone)]
pub struct InvokeArgs {
    /// An SqsEvent as Lambda delivers it, e.g. events/batch.json.
    pub file: PathBuf,
    /// Back off failed records as the function does (ChangeMessageVisibilityBatch on the
    /// queue of each record's eventSourceARN, with its receipt handle). Off by default:
    /// `invoke` then touches no queue.
    #[arg(long)]
    pub change_visibility: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ValidateArgs {
    /// File of bodies (one JSON document per line, or an SQS event); `-` reads standard input.
    #[arg(default_value = "-")]
    pub file: PathBuf,
    /// Print the schema's $id and version instead of validating.
    #[arg(long, conflicts_with = "file")]
    pub schema: bool,
    /// Judge under this field policy (a JSON Schema with its annotations, as the function's
    /// FIELD_POLICY_FILE) instead of the published one: its declared extras are checked too.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Print the verdicts as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct PartitionsArgs {
    /// How many months after the current one get their partition now (0–60).
    #[arg(long, default_value_t = login_etl::DEFAULT_MONTHS_AHEAD,
          value_parser = clap::value_parser!(u16).range(0..=i64::from(MAX_MONTHS_AHEAD)))]
    pub months_ahead: u16,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct RetentionArgs {
    /// Whole months to keep before the current one, 1–1200 as RETENTION_KEEP_MONTHS (the
    /// current month is always kept).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1200))]
    pub keep_months: u16,
    /// Print what would be dropped (partitions, their rows, vault rows) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct EraseArgs {
    /// The user_id whose logins and vault entries go (as loaded: not blank, at most 128
    /// characters).
    #[arg(long, value_parser = user_id)]
    pub user_id: String,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// The most months `partitions --months-ahead` makes at once: five years. More is a typo, and
/// hundreds of empty partitions slow every query planned over the table.
pub const MAX_MONTHS_AHEAD: u16 = 60;

/// `--bad-ratio`: a share, 0.0 to 1.0.
fn ratio(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(share) if (0.0..=1.0).contains(&share) => Ok(share),
        _ => Err("must be a number from 0.0 to 1.0".into()),
    }
}

/// `--user-id`: what the function would load as a user_id (not blank, at most 128 characters,
/// no NUL), so that a command never runs over a user no row can have.
fn user_id(text: &str) -> Result<String, String> {
    let max = login_etl_core::message::Field::UserId.max_chars();
    if text.trim().is_empty() {
        return Err("must not be empty or blank".into());
    }
    if text.chars().count() > max || text.contains('\0') {
        return Err(format!("must be at most {max} characters, without NUL"));
    }
    Ok(text.to_owned())
}
#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every argument of every command explains itself, and every command names the
    /// environment it reads.
    #[test]
    fn every_argument_has_help_and_every_command_names_its_environment() {
        let cli = Cli::command();
        for command in cli.get_subcommands() {
            let after = command.get_after_help().map(|h| h.to_string()).unwrap_or_default();
            assert!(after.starts_with("Environment:"), "{} names no environment", command.get_name());
            for arg in command.get_arguments() {
                if matches!(arg.get_id().as_str(), "help" | "version") {
                    continue;
                }
                assert!(arg.get_help().is_some(), "{} --{} has no help", command.get_name(), arg.get_id());
            }
        }
    }

    #[test]
    fn every_command_that_prints_a_result_has_json() {
        let cli = Cli::command();
        for name in
            ["setup", "send", "depth", "redrive", "report", "drain", "partitions", "retention", "erase", "validate"]
        {
            let command = cli.find_subcommand(name).expect("command");
            assert!(command.get_arguments().any(|a| a.get_id() == "json"), "{name} has no --json");
        }
    }
}
