//! `login-etl-cli`: operate login-etl outside Lambda — apply migrations, run the handler on an
//! event file. Configuration comes from the same environment variables as the function.

use std::path::PathBuf;

use anyhow::Context;
use aws_lambda_events::sqs::SqsEvent;
use clap::{Parser, Subcommand};
use login_etl::config::{Config, DatabaseSource};
use login_etl::store::PoolSettings;
use login_etl::{lambda, startup, telemetry};

#[derive(Parser)]
#[command(name = "login-etl-cli", version, about = "Operate the login-etl pipeline locally")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply the migrations in migrations/ to the configured database (DATABASE_URL or DB_SECRET_ID).
    Migrate,
    /// Run the handler once on an SQS event JSON file and print the SQSBatchResponse.
    Invoke {
        /// An SqsEvent as Lambda delivers it, e.g. events/batch.json.
        file: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_human();
    match Cli::parse().command {
        Command::Migrate => migrate().await,
        Command::Invoke { file } => invoke(&file).await,
    }
}

async fn migrate() -> anyhow::Result<()> {
    let database = DatabaseSource::from_env()?;
    let store = startup::connect_store(&database, &PoolSettings::default()).await?;
    store.migrate().await?;
    eprintln!("migrations applied");
    Ok(())
}

async fn invoke(file: &PathBuf) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let event: SqsEvent =
        serde_json::from_str(&text).with_context(|| format!("{} is not an SQS event", file.display()))?;
    let config = Config::from_env()?;
    let handler = startup::build_handler(&config).await?;
    let response = lambda::handle_event(&handler, event)
        .await
        .map_err(|err| anyhow::anyhow!(err))?;
    println!("{}", serde_json::to_string_pretty(&response)?);
    Ok(())
}
