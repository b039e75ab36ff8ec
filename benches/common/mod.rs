//! Set-up shared by the benchmarks that need services.
#![allow(dead_code)] // each benchmark uses a different subset

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

/// A freshly created, migrated database `name` on DATABASE_URL's server (default: local).
/// Returns its connect options and an admin connection to drop it with [`drop_database`].
pub async fn fresh_database(name: &str) -> anyhow::Result<(PgConnectOptions, PgConnection)> {
    let server = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let admin: PgConnectOptions = server.parse()?;
    let mut admin_conn = PgConnection::connect_with(&admin.clone().database("postgres")).await?;
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin_conn).await?;
    sqlx::raw_sql(&format!("CREATE DATABASE {name}")).execute(&mut admin_conn).await?;
    Ok((admin.database(name), admin_conn))
}

pub async fn drop_database(admin_conn: &mut PgConnection, name: &str) -> anyhow::Result<()> {
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(admin_conn).await?;
    Ok(())
}

/// LocalStack at AWS_ENDPOINT_URL (default http://127.0.0.1:4566) with dummy credentials.
pub fn localstack_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".into())
}

pub async fn localstack_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(localstack_endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "bench"))
        .load()
        .await
}
