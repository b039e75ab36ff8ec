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
use login_etl::{aws, lambda, sample, startup, telemetry};
use sqlx::migrate::MigrateDatabase;

#[derive(Parser)]
#[command(name = "login-etl-cli", version, about = "Operate the login-etl pipeline locally")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply migrations/ to the configured database (DATABASE_URL or DB_SECRET_ID); with
    /// DATABASE_URL the database is created first if it does not exist.
    Migrate,
    /// Create (or update) the queue, its dead-letter queue and the secrets the function reads.
    Setup(SetupArgs),
    /// Send realistic login messages, a share of them malformed, 10 per SendMessageBatch.
    Send(SendArgs),
    /// Poll a queue like Lambda's event source mapping: receive 10, run the handler, delete
    /// what succeeded, until the queue holds no message (visible or in flight).
    Drain(DrainArgs),
    /// Print how many messages a queue holds (visible, in flight, delayed).
    Depth {
        #[arg(long, env = "QUEUE_URL")]
        queue_url: String,
    },
    /// Show what is loaded: the row count and the latest rows (masked values only).
    Report {
        #[arg(long, default_value_t = 5)]
        limit: i64,
    },
    /// Make a PII-vault key pair: the private key goes to a new file (mode 0600), the public
    /// key (for VAULT_PUBLIC_KEY) is printed.
    Keygen {
        #[arg(long)]
        private_key_file: PathBuf,
    },
    /// Recover original ip / device_id values from the PII vault with the private key.
    /// Needs a database user with the login_etl_recovery role.
    Recover(RecoverArgs),
    /// Run the handler once on an SQS event JSON file and print the SQSBatchResponse.
    Invoke {
        /// An SqsEvent as Lambda delivers it, e.g. events/batch.json.
        file: PathBuf,
    },
}

#[derive(clap::Args)]
struct SetupArgs {
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
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true)))]
#[command(group(clap::ArgGroup::new("key").required(true)))]
struct RecoverArgs {
    #[arg(long, group = "what")]
    masked_ip: Option<String>,
    #[arg(long, group = "what")]
    masked_device_id: Option<String>,
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
    #[arg(long, env = "QUEUE_URL")]
    queue_url: String,
    #[arg(long)]
    count: usize,
    /// Share of malformed messages, 0.0 to 1.0.
    #[arg(long, default_value_t = 0.0)]
    bad_ratio: f64,
    /// Seed for reproducible messages.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(clap::Args)]
struct DrainArgs {
    #[arg(long, env = "QUEUE_URL")]
    queue_url: String,
    /// Pollers at once (each holds one database connection).
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// ReceiveMessage long-poll wait, seconds (0–20).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(0..=20))]
    wait_seconds: i32,
    /// Keep polling when the queue is empty, until Ctrl-C.
    #[arg(long)]
    follow: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    telemetry::init_human();
    match run(Cli::parse().command).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // The cause chain on one line, without a backtrace: these are operator errors.
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Migrate => migrate().await,
        Command::Setup(args) => setup(args).await,
        Command::Send(args) => send(args).await,
        Command::Drain(args) => drain(args).await,
        Command::Depth { queue_url } => depth(&queue_url).await,
        Command::Report { limit } => report(limit).await,
        Command::Keygen { private_key_file } => keygen(&private_key_file),
        Command::Recover(args) => recover(args).await,
        Command::Invoke { file } => invoke(&file).await,
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
    println!("queue      {queue_url}");
    println!("dlq        {dlq_url}  (maxReceiveCount {})", args.max_receive_count);

    let secrets = login_etl::secrets::SecretStore::from_env().await;
    if let Ok(url) = std::env::var("DATABASE_URL") {
        let secret = login_etl::secrets::database_secret_json(&url)
            .map_err(|problem| anyhow::anyhow!("DATABASE_URL: {problem}"))?;
        secrets.put(&args.db_secret_id, &secret).await?;
        println!("secret     {} (from DATABASE_URL)", args.db_secret_id);
    }
    let key_hex = std::env::var("MASKING_KEY").ok().filter(|k| !k.trim().is_empty());
    let created = secrets.create_masking_key_if_absent(&args.masking_key_secret_id, key_hex.as_deref()).await?;
    println!(
        "secret     {} ({})",
        args.masking_key_secret_id,
        if created { "created" } else { "exists, left unchanged" }
    );
    Ok(())
}

async fn send(args: SendArgs) -> anyhow::Result<()> {
    let queue = Queue::open(sqs_client().await, &args.queue_url).await?;
    let messages = sample::sample_messages(args.count, args.bad_ratio, args.seed);
    let bad = messages.iter().filter(|m| m.expected_failure.is_some()).count();
    let bodies: Vec<String> = messages.into_iter().map(|m| m.body).collect();
    let started = std::time::Instant::now();
    let ids = queue.send(&bodies).await?;
    println!(
        "sent {} messages ({} malformed) to {} in {:.1} s",
        ids.len(),
        bad,
        queue.url(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn drain(args: DrainArgs) -> anyhow::Result<()> {
    let mut config = Config::from_env()?;
    config.pool.max_connections = config.pool.max_connections.max(args.concurrency as u32);
    let handler = startup::build_handler(&config).await?;
    let queue = Queue::open(sqs_client().await, &args.queue_url).await?;
    let options = DrainOptions {
        concurrency: args.concurrency,
        wait_seconds: args.wait_seconds,
        follow: args.follow,
        ..Default::default()
    };
    let report = tokio::select! {
        report = queue::drain(&queue, &handler, &options) => report?,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted; messages not yet deleted will be redelivered and deduplicated"),
    };
    if args.json {
        println!("{}", drain_json(&report));
    } else {
        print_drain_report(&queue, &report);
    }
    Ok(())
}

fn drain_json(report: &DrainReport) -> serde_json::Value {
    serde_json::json!({
        "received": report.received,
        "inserted": report.inserted,
        "duplicates": report.duplicates,
        "deleted": report.deleted,
        "failed_by_reason": report.failed_by_reason,
        "seconds": report.elapsed.as_secs_f64(),
        "messages_per_second": report.messages_per_second(),
        "end": match report.end {
            DrainEnd::Empty => "empty".to_string(),
            DrainEnd::OnlyFailingMessagesLeft { messages } => format!("only_failing_left:{messages}"),
        },
    })
}

fn print_drain_report(queue: &Queue, report: &DrainReport) {
    let end = match report.end {
        DrainEnd::Empty => "the queue is empty".to_string(),
        DrainEnd::OnlyFailingMessagesLeft { messages } => format!(
            "only {messages} failing message(s) left and the queue has no redrive policy: they would be retried forever"
        ),
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

async fn depth(queue_url: &str) -> anyhow::Result<()> {
    let queue = Queue::open(sqs_client().await, queue_url).await?;
    let depth = queue.depth().await?;
    println!("{} visible={} in_flight={} delayed={}", queue.url(), depth.visible, depth.in_flight, depth.delayed);
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

async fn report(limit: i64) -> anyhow::Result<()> {
    let database = DatabaseSource::from_env()?;
    let store = startup::connect_store(&database).await?;
    let summary = store.summary(limit).await?;
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
    let database = DatabaseSource::from_env()?;
    let store = startup::connect_store(&database).await?;
    let values = store.sealed_values(&lookup).await?;
    if values.is_empty() {
        anyhow::bail!("nothing in the vault for {lookup:?}");
    }
    for value in values {
        let field = match value.field.as_str() {
            "ip" => MaskedField::Ip,
            _ => MaskedField::DeviceId,
        };
        let original = secret.open(field, &value.masked_value, &value.sealed).with_context(|| {
            format!("opening the {} value {} (sealed to key id {})", value.field, value.masked_value, value.key_id)
        })?;
        println!("{:<9}  {}  {}", value.field, value.masked_value, original);
    }
    Ok(())
}
