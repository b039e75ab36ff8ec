//! `login-etl-cli`: operate login-etl outside Lambda — set up queues and secrets, send sample
//! messages, drain a queue through the same handler Lambda runs, invoke it on an event file,
//! apply migrations. Configuration comes from the same environment variables as the function.

use std::path::PathBuf;

use anyhow::Context;
use aws_lambda_events::sqs::SqsEvent;
use clap::{Parser, Subcommand};
use login_etl::config::{Config, DatabaseSource};
use login_etl::mask::MaskedField;
use login_etl::queue::{self, DrainEnd, DrainOptions, DrainReport, Queue};
use login_etl::store::VaultLookup;
use login_etl::vault::VaultSecretKey;
use login_etl::{aws, lambda, lifecycle, sample, startup, telemetry};
use sqlx::migrate::MigrateDatabase;

/// Environment every AWS call reads (queues, secrets).
const AWS_ENV: &str =
    "AWS_ENDPOINT_URL (LocalStack: http://127.0.0.1:4566), AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY";
/// Environment of commands that only need the database.
const DATABASE_ENV: &str =
    "DATABASE_URL (postgres://…) or DB_SECRET_ID (a Secrets Manager secret, read with the AWS variables)";

#[derive(Parser)]
#[command(
    name = "login-etl-cli",
    version,
    about = "Operate the login-etl pipeline locally",
    after_help = "Every command also reads RUST_LOG (log filter, default warn) and NO_COLOR (no ANSI colours; \
                  colours are only ever used on a terminal).\n\
                  Exit status: 0 success; 1 error; 2 usage error; 3 `drain` stopped with failing messages left \
                  on a queue without a redrive policy."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply migrations/ to the configured database (DATABASE_URL or DB_SECRET_ID); with
    /// DATABASE_URL the database is created first if it does not exist.
    #[command(after_help = format!("Environment: {DATABASE_ENV}; {AWS_ENV} (with DB_SECRET_ID)."))]
    Migrate,
    /// Create (or update) the queue, its dead-letter queue and the secrets the function reads.
    #[command(after_help = format!(
        "Environment: {AWS_ENV}; DATABASE_URL (stored as the database secret, skipped if unset); \
         MASKING_KEY (stored as the masking key if that secret does not exist; else a random key)."
    ))]
    Setup(SetupArgs),
    /// Send realistic login messages, a share of them malformed, 10 per SendMessageBatch.
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
    Keygen {
        /// New file for the private key (hex); an existing file is never overwritten.
        #[arg(long)]
        private_key_file: PathBuf,
    },
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
    /// remaining login references. Prints what it dropped. Run as the table's owner.
    #[command(after_help = format!("Environment: {DATABASE_ENV}; {AWS_ENV} (with DB_SECRET_ID)."))]
    Retention(RetentionArgs),
    /// Erase one person: delete their logins and the vault rows only they referenced, in one
    /// transaction under the login_etl_eraser role (the database user must be granted it).
    /// Prints counts, never values.
    #[command(after_help = format!("Environment: {DATABASE_ENV}; {AWS_ENV} (with DB_SECRET_ID)."))]
    Erase(EraseArgs),
    /// Run the handler once on an SQS event JSON file and print the SQSBatchResponse.
    #[command(after_help = format!(
        "Environment: the function's configuration: {DATABASE_ENV}, MASKING_MODE, MASKING_KEY or \
         MASKING_KEY_SECRET_ID, VAULT_PUBLIC_KEY, DB_* pool settings; {AWS_ENV}."
    ))]
    Invoke {
        /// An SqsEvent as Lambda delivers it, e.g. events/batch.json.
        file: PathBuf,
    },
}

#[derive(clap::Args)]
struct SetupArgs {
    /// Name of the queue; its dead-letter queue is named <QUEUE_NAME>-dlq.
    #[arg(long, default_value = "login-queue")]
    queue_name: String,
    /// Seconds a failed message stays invisible before it is retried.
    #[arg(long, default_value_t = 30)]
    visibility_timeout: u32,
    /// Receives before SQS moves a message to the dead-letter queue.
    #[arg(long, default_value_t = 5)]
    max_receive_count: u32,
    /// Secret to hold DATABASE_URL's connection in the RDS format (skipped without DATABASE_URL).
    #[arg(long, default_value = "login-etl/db")]
    db_secret_id: String,
    /// Secret to hold the masking key (hex): MASKING_KEY's value, or a new random key. An
    /// existing key is never replaced: that would silently change every masked value.
    #[arg(long, default_value = "login-etl/masking-key")]
    masking_key_secret_id: String,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true)))]
#[command(group(clap::ArgGroup::new("key").required(true)))]
struct RecoverArgs {
    /// A masked_ip value (hex) from user_logins.
    #[arg(long, group = "what")]
    masked_ip: Option<String>,
    /// A masked_device_id value (hex) from user_logins.
    #[arg(long, group = "what")]
    masked_device_id: Option<String>,
    /// Every vault value of this user's logins.
    #[arg(long, group = "what")]
    user_id: Option<String>,
    /// File holding the private key (hex), as written by `keygen`.
    #[arg(long, group = "key")]
    private_key_file: Option<PathBuf>,
    /// Secrets Manager secret holding the private key (hex).
    #[arg(long, group = "key")]
    private_key_secret_id: Option<String>,
}

#[derive(clap::Args)]
struct SendArgs {
    /// URL of the queue to send to.
    #[arg(long, env = "QUEUE_URL")]
    queue_url: String,
    /// How many messages to send.
    #[arg(long)]
    count: usize,
    /// Share of malformed messages, 0.0 to 1.0.
    #[arg(long, default_value_t = 0.0)]
    bad_ratio: f64,
    /// Seed for reproducible messages.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct DrainArgs {
    /// URL of the queue to drain (a DLQ's URL replays dead letters).
    #[arg(long, env = "QUEUE_URL")]
    queue_url: String,
    /// Pollers at once (each holds one database connection).
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// ReceiveMessage long-poll wait, seconds (0–20).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(0..=20))]
    wait_seconds: i32,
    /// Keep polling when the queue is empty, until SIGINT (Ctrl-C) or SIGTERM.
    #[arg(long)]
    follow: bool,
    /// How long SQS may fail (refused connections, throttling) before the drain gives up,
    /// seconds; calls are retried with backoff meanwhile.
    #[arg(long, default_value_t = 60)]
    sqs_retry_seconds: u64,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct RedriveArgs {
    /// URL of the dead-letter queue to empty.
    #[arg(long)]
    dlq_url: String,
    /// URL of the queue to move the letters to (its source queue).
    #[arg(long, env = "QUEUE_URL")]
    queue_url: String,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct DepthArgs {
    /// URL of the queue to look at.
    #[arg(long, env = "QUEUE_URL")]
    queue_url: String,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct ReportArgs {
    /// How many of the latest rows to show.
    #[arg(long, default_value_t = 5)]
    limit: i64,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct PartitionsArgs {
    /// How many months after the current one get their partition now.
    #[arg(long, default_value_t = login_etl::lifecycle::DEFAULT_MONTHS_AHEAD)]
    months_ahead: u16,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct RetentionArgs {
    /// Whole months to keep before the current one (the current month is always kept).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    keep_months: u16,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct EraseArgs {
    /// The user_id whose logins and vault entries go.
    #[arg(long)]
    user_id: String,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Exit status of `drain` when it stopped with failing messages left on a queue without a
/// redrive policy: the job is not done, and a script must not take it for success.
const EXIT_FAILING_MESSAGES_LEFT: u8 = 3;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // A closed pipe (`login-etl-cli setup | head -1`) ends the process quietly, as it does any
    // Unix tool, instead of making println! panic. Commands do their work before they print.
    // SAFETY: restoring a signal's default disposition at start-up, before any thread of ours
    // writes to stdout, has no other effect on the process.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    telemetry::init_human();
    match run(Cli::parse().command).await {
        Ok(code) => code,
        Err(err) => {
            // The cause chain on one line, without a backtrace: these are operator errors.
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<std::process::ExitCode> {
    let done = std::process::ExitCode::SUCCESS;
    match command {
        Command::Migrate => migrate().await.map(|()| done),
        Command::Setup(args) => setup(args).await.map(|()| done),
        Command::Send(args) => send(args).await.map(|()| done),
        Command::Drain(args) => drain(args).await,
        Command::Redrive(args) => redrive(args).await.map(|()| done),
        Command::Depth(args) => depth(&args).await.map(|()| done),
        Command::Report(args) => report(&args).await.map(|()| done),
        Command::Keygen { private_key_file } => keygen(&private_key_file).map(|()| done),
        Command::Recover(args) => recover(args).await.map(|()| done),
        Command::Invoke { file } => invoke(&file).await.map(|()| done),
        Command::Partitions(args) => partitions(&args, &mut std::io::stdout()).await.map(|()| done),
        Command::Retention(args) => retention(&args, &mut std::io::stdout()).await.map(|()| done),
        Command::Erase(args) => erase(&args, &mut std::io::stdout()).await.map(|()| done),
    }
}

async fn sqs_client() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&aws::load_config(std::time::Duration::from_secs(25)).await)
}

async fn migrate() -> anyhow::Result<()> {
    let database = DatabaseSource::from_env()?;
    if let DatabaseSource::Url(url) = &database
        && !sqlx::Postgres::database_exists(url).await.context("checking whether the database exists")?
    {
        sqlx::Postgres::create_database(url).await.context("creating the database")?;
        eprintln!("created the database");
    }
    let store = startup::connect_store(&database).await?;
    store.migrate().await?;
    eprintln!("migrations applied");
    Ok(())
}

async fn setup(args: SetupArgs) -> anyhow::Result<()> {
    let sqs = sqs_client().await;
    let (queue_url, dlq_url) =
        queue::ensure_queue_with_dlq(&sqs, &args.queue_name, args.visibility_timeout, args.max_receive_count).await?;

    let secrets = login_etl::secrets::SecretStore::from_env().await;
    let mut db_secret = None;
    if let Some(url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.trim().is_empty()) {
        let secret = login_etl::secrets::database_secret_json(&url)
            .map_err(|problem| anyhow::anyhow!("DATABASE_URL: {problem}"))?;
        secrets.put(&args.db_secret_id, &secret).await?;
        db_secret = Some(&args.db_secret_id);
    }
    let key_hex = std::env::var("MASKING_KEY").ok().filter(|k| !k.trim().is_empty());
    let created = secrets.create_masking_key_if_absent(&args.masking_key_secret_id, key_hex.as_deref()).await?;
    let key_status = if created { "created" } else { "exists, left unchanged" };

    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "queue_url": queue_url,
                "dlq_url": dlq_url,
                "max_receive_count": args.max_receive_count,
                "visibility_timeout": args.visibility_timeout,
                "db_secret_id": db_secret,
                "masking_key_secret_id": args.masking_key_secret_id,
                "masking_key_created": created,
            })
        );
        return Ok(());
    }
    println!("queue      {queue_url}");
    println!("dlq        {dlq_url}  (maxReceiveCount {})", args.max_receive_count);
    if let Some(id) = db_secret {
        println!("secret     {id} (from DATABASE_URL)");
    }
    println!("secret     {} ({key_status})", args.masking_key_secret_id);
    Ok(())
}

async fn send(args: SendArgs) -> anyhow::Result<()> {
    let queue = Queue::open(sqs_client().await, &args.queue_url).await?;
    let messages = sample::sample_messages(args.count, args.bad_ratio, args.seed);
    let bad = messages.iter().filter(|m| m.expected_failure.is_some()).count();
    let bodies: Vec<String> = messages.into_iter().map(|m| m.body).collect();
    let started = std::time::Instant::now();
    let ids = queue.send(&bodies).await?;
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        println!(
            "{}",
            serde_json::json!({"queue_url": queue.url(), "sent": ids.len(), "malformed": bad, "seconds": seconds})
        );
    } else {
        println!("sent {} messages ({} malformed) to {} in {seconds:.1} s", ids.len(), bad, queue.url());
    }
    Ok(())
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

async fn drain(args: DrainArgs) -> anyhow::Result<std::process::ExitCode> {
    let mut config = Config::from_env()?;
    config.pool.max_connections = config.pool.max_connections.max(args.concurrency as u32);
    let handler = startup::build_handler(&config).await?;
    let queue = Queue::open(sqs_client().await, &args.queue_url).await?;
    let options = DrainOptions {
        concurrency: args.concurrency,
        wait_seconds: args.wait_seconds,
        follow: args.follow,
        sqs_retry: std::time::Duration::from_secs(args.sqs_retry_seconds),
        ..Default::default()
    };
    // A signal stops the pollers cleanly: batches in hand are finished and deleted, and the
    // summary is printed as after any drain.
    let report = queue::drain_until(&queue, &handler, &options, stop_signal()).await?;
    if args.json {
        println!("{}", drain_json(&queue, &report));
    } else {
        print_drain_report(&queue, &report);
    }
    Ok(match report.end {
        DrainEnd::OnlyFailingMessagesLeft { .. } => std::process::ExitCode::from(EXIT_FAILING_MESSAGES_LEFT),
        DrainEnd::Empty | DrainEnd::Stopped => std::process::ExitCode::SUCCESS,
    })
}

fn drain_json(queue: &Queue, report: &DrainReport) -> serde_json::Value {
    let (end, failing_left) = match report.end {
        DrainEnd::Empty => ("empty", 0),
        DrainEnd::OnlyFailingMessagesLeft { messages } => ("only_failing_left", messages),
        DrainEnd::Stopped => ("stopped", 0),
    };
    serde_json::json!({
        "queue_url": queue.url(),
        "received": report.received,
        "inserted": report.inserted,
        "duplicates": report.duplicates,
        "deleted": report.deleted,
        "failed_by_reason": report.failed_by_reason,
        "seconds": report.elapsed.as_secs_f64(),
        "messages_per_second": report.messages_per_second(),
        "end": end,
        "failing_left": failing_left,
    })
}

fn print_drain_report(queue: &Queue, report: &DrainReport) {
    let end = match report.end {
        DrainEnd::Empty => "the queue is empty".to_string(),
        DrainEnd::OnlyFailingMessagesLeft { messages } => format!(
            "only {messages} failing message(s) left and the queue has no redrive policy: they would be retried forever"
        ),
        DrainEnd::Stopped => "stopped by a signal; batches in hand were finished".to_string(),
    };
    println!("drained {} in {:.1} s: {end}", queue.url(), report.elapsed.as_secs_f64());
    println!("  received    {:>8}  (deliveries, redeliveries of failures included)", report.received);
    println!("  inserted    {:>8}", report.inserted);
    println!("  duplicates  {:>8}  (already loaded, deleted without a second row)", report.duplicates);
    println!("  deleted     {:>8}", report.deleted);
    let failed: u64 = report.failed_by_reason.values().sum();
    println!("  failed      {failed:>8}  (left to the visibility timeout and the queue's redrive)");
    for (reason, count) in &report.failed_by_reason {
        println!("    {reason:<28} {count:>6}");
    }
    println!("  throughput  {:>8.0} messages/s", report.messages_per_second());
}

async fn depth(args: &DepthArgs) -> anyhow::Result<()> {
    let queue = Queue::open(sqs_client().await, &args.queue_url).await?;
    let depth = queue.depth().await?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "queue_url": queue.url(),
                "visible": depth.visible,
                "in_flight": depth.in_flight,
                "delayed": depth.delayed,
            })
        );
    } else {
        println!("{} visible={} in_flight={} delayed={}", queue.url(), depth.visible, depth.in_flight, depth.delayed);
    }
    Ok(())
}

async fn redrive(args: RedriveArgs) -> anyhow::Result<()> {
    let client = sqs_client().await;
    let dlq = Queue::open(client.clone(), &args.dlq_url).await?;
    let target = Queue::open(client, &args.queue_url).await?;
    let moved = queue::redrive(&dlq, &target).await?;
    if args.json {
        println!("{}", serde_json::json!({ "moved": moved, "from": dlq.url(), "to": target.url() }));
    } else {
        println!("moved {moved} dead letters from {} to {}", dlq.url(), target.url());
    }
    Ok(())
}

async fn invoke(file: &PathBuf) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let event: SqsEvent =
        serde_json::from_str(&text).with_context(|| format!("{} is not an SQS event", file.display()))?;
    let config = Config::from_env()?;
    let handler = startup::build_handler(&config).await?;
    let response = lambda::handle_event(&handler, event).await.map_err(|err| anyhow::anyhow!(err))?;
    println!("{}", serde_json::to_string_pretty(&response)?);
    Ok(())
}

async fn report(args: &ReportArgs) -> anyhow::Result<()> {
    let database = DatabaseSource::from_env()?;
    let store = startup::connect_store(&database).await?;
    let summary = store.summary(args.limit).await?;
    if args.json {
        let latest: Vec<_> = summary
            .latest
            .iter()
            .map(|row| {
                serde_json::json!({
                    "user_id": row.user_id,
                    "device_type": row.device_type,
                    "locale": row.locale,
                    "app_version": row.app_version,
                    "masked_ip": row.masked_ip,
                    "masked_device_id": row.masked_device_id,
                    "create_date": row.create_date.map(|d| d.to_string()),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "total_rows": summary.total_rows,
                "rows_last_hour": summary.rows_last_hour,
                "latest": latest,
            })
        );
        return Ok(());
    }
    println!("user_logins: {} rows ({} loaded in the last hour)", summary.total_rows, summary.rows_last_hour);
    println!(
        "{:<36}  {:<12}  {:<6}  {:<8}  {:<16}  {:<16}  create_date",
        "user_id", "device_type", "locale", "version", "masked_ip", "masked_device_id"
    );
    for row in summary.latest {
        let short =
            |v: Option<String>| v.map(|h| format!("{}…", &h[..h.len().min(14)])).unwrap_or_else(|| "NULL".into());
        println!(
            "{:<36}  {:<12}  {:<6}  {:<8}  {:<16}  {:<16}  {}",
            row.user_id.unwrap_or_default(),
            row.device_type.unwrap_or_else(|| "NULL".into()),
            row.locale.unwrap_or_else(|| "NULL".into()),
            row.app_version.unwrap_or_else(|| "NULL".into()),
            short(row.masked_ip),
            short(row.masked_device_id),
            row.create_date.map(|d| d.to_string()).unwrap_or_default()
        );
    }
    Ok(())
}

async fn operator_store() -> anyhow::Result<login_etl::store::Store> {
    Ok(startup::connect_store(&DatabaseSource::from_env()?).await?)
}

async fn partitions(args: &PartitionsArgs, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    let store = operator_store().await?;
    let today = time::OffsetDateTime::now_utc().date();
    let created = lifecycle::maintain_partitions(&store, today, args.months_ahead).await?;
    let partitions = lifecycle::partition_row_counts(&store).await?;
    if args.json {
        let partitions: Vec<_> =
            partitions.iter().map(|(name, rows)| serde_json::json!({"partition": name, "rows": rows})).collect();
        writeln!(out, "{}", serde_json::json!({"created": created, "partitions": partitions}))?;
        return Ok(());
    }
    for made in &created {
        writeln!(out, "created {} ({} rows moved in from the default partition)", made.partition, made.rows_moved)?;
    }
    if created.is_empty() {
        writeln!(out, "every partition through {} months ahead exists", args.months_ahead)?;
    }
    for (name, rows) in partitions {
        writeln!(out, "{name:<24}  {rows:>12} rows")?;
    }
    Ok(())
}

async fn retention(args: &RetentionArgs, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    let store = operator_store().await?;
    let today = time::OffsetDateTime::now_utc().date();
    let started = std::time::Instant::now();
    let report = lifecycle::apply_retention(&store, today, args.keep_months).await?;
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        value["seconds"] = serde_json::json!(seconds);
        writeln!(out, "{value}")?;
        return Ok(());
    }
    writeln!(out, "keeping months from {} on", report.cutoff)?;
    for dropped in &report.dropped {
        writeln!(out, "dropped {} ({} rows)", dropped.partition, dropped.rows_dropped)?;
    }
    if report.dropped.is_empty() {
        writeln!(out, "no partition is older than that")?;
    }
    writeln!(out, "vault rows no longer referenced, removed: {}", report.vault_rows_removed)?;
    writeln!(out, "took {seconds:.3} s")?;
    Ok(())
}

async fn erase(args: &EraseArgs, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    let store = operator_store().await?;
    let report = lifecycle::erase_user(&store, &args.user_id).await?;
    if args.json {
        writeln!(out, "{}", serde_json::to_value(report)?)?;
    } else {
        writeln!(out, "erased {} login rows and {} vault rows", report.login_rows, report.vault_rows)?;
    }
    Ok(())
}

fn keygen(private_key_file: &std::path::Path) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let secret = VaultSecretKey::generate(&mut crypto_box::aead::OsRng);
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(private_key_file).with_context(
            || format!("creating {} (an existing key file is never overwritten)", private_key_file.display()),
        )?;
    writeln!(file, "{}", secret.to_hex())?;
    let public = secret.public_key();
    eprintln!("private key written to {} (key id {})", private_key_file.display(), public.key_id());
    eprintln!("give the function the public key below as VAULT_PUBLIC_KEY:");
    println!("{}", public.to_hex());
    Ok(())
}

async fn recover(args: RecoverArgs) -> anyhow::Result<()> {
    let secret_hex = match (&args.private_key_file, &args.private_key_secret_id) {
        (Some(path), _) => std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        (None, Some(id)) => login_etl::secrets::SecretStore::from_env().await.secret_text(id).await?,
        (None, None) => anyhow::bail!("give --private-key-file or --private-key-secret-id"),
    };
    let secret = VaultSecretKey::from_hex(&secret_hex).context("the private key")?;
    let lookup = match (args.masked_ip, args.masked_device_id, args.user_id) {
        (Some(masked_value), _, _) => VaultLookup::Masked { field: MaskedField::Ip, masked_value },
        (_, Some(masked_value), _) => VaultLookup::Masked { field: MaskedField::DeviceId, masked_value },
        (_, _, Some(user)) => VaultLookup::UserId(user),
        _ => anyhow::bail!("give --masked-ip, --masked-device-id or --user-id"),
    };
    let config = login_etl::config::Config::from_env()?;
    let masker = startup::masker(&config).await?;
    let store = startup::connect_store(&config.database).await?;
    let values = store.sealed_values(&lookup).await?;
    if values.is_empty() {
        anyhow::bail!("nothing in the vault for {lookup:?}");
    }
    // The vault is append-only and anyone holding the public key can seal a value, so a row
    // counts only when it opens with the private key *and* its original masks to the masked
    // value it is filed under; the rest (wrong key, tampered, planted) are counted, not shown.
    let mut authentic = std::collections::BTreeSet::new();
    let mut rejected = 0usize;
    for value in &values {
        let field = match value.field.as_str() {
            "ip" => MaskedField::Ip,
            _ => MaskedField::DeviceId,
        };
        match secret.open(field, &value.masked_value, &value.sealed) {
            Ok(original) if masker.mask(field, &original) == value.masked_value => {
                authentic.insert((value.field.clone(), value.masked_value.clone(), original));
            }
            _ => rejected += 1,
        }
    }
    if rejected > 0 {
        eprintln!(
            "{rejected} of {} vault rows did not authenticate (another key, tampered, or not the original of \
             their masked value) and were skipped",
            values.len()
        );
    }
    if authentic.is_empty() {
        anyhow::bail!(
            "the {} vault rows for {lookup:?} cannot be opened with this private key into an original that masks \
             to their masked value (check the key, MASKING_KEY and the key id {})",
            values.len(),
            values.first().map(|v| v.key_id.as_str()).unwrap_or("?")
        );
    }
    for (field, masked_value, original) in authentic {
        println!("{field:<9}  {masked_value}  {original}");
    }
    Ok(())
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
        for name in ["setup", "send", "depth", "report", "drain", "partitions", "retention", "erase"] {
            let command = cli.find_subcommand(name).expect("command");
            assert!(command.get_arguments().any(|a| a.get_id() == "json"), "{name} has no --json");
        }
    }
}
