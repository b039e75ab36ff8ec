//! The benchmarks' peer (benches/runtime_api.rs): what a team would write instead of
//! login-etl, the usual way. sqlx, one pool connection, each record parsed with serde,
//! `ip` and `device_id` masked with HMAC-SHA256, one INSERT per row inside one transaction,
//! a partial batch response naming the records that did not parse.
//!
//! `DATABASE_URL` and `MASKING_KEY` (hex) as login-etl reads them.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use hmac::{Hmac, Mac};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde::Deserialize;
use sha2::Sha256;
use sqlx::postgres::PgPoolOptions;

#[derive(Deserialize)]
struct Login {
    user_id: String,
    device_type: Option<String>,
    ip: Option<String>,
    locale: Option<String>,
    app_version: Option<String>,
    device_id: Option<String>,
}

fn mask(key: &[u8], value: Option<&str>) -> Option<String> {
    let value = value?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(value.as_bytes());
    Some(hex::encode(mac.finalize().into_bytes()))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = std::env::var("DATABASE_URL")?;
    let key = hex::decode(std::env::var("MASKING_KEY")?)?;
    let pool = PgPoolOptions::new().max_connections(1).connect_lazy(&url)?;
    lambda_runtime::run_concurrent(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (pool, key) = (pool.clone(), key.clone());
        async move {
            let mut response = SqsBatchResponse::default();
            let mut tx = pool.begin().await?;
            for record in event.payload.records {
                let id = record.message_id.clone().unwrap_or_default();
                let Some(login) = record.body.as_deref().and_then(|body| serde_json::from_str::<Login>(body).ok())
                else {
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = id;
                    response.batch_item_failures.push(failure);
                    continue;
                };
                let sent_ms: i64 = record.attributes.get("SentTimestamp").and_then(|t| t.parse().ok()).unwrap_or(0);
                let sent_at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(sent_ms) * 1_000_000)?;
                sqlx::query(
                    "INSERT INTO user_logins (message_id, user_id, device_type, masked_ip, masked_device_id,
                                              locale, app_version, create_date, sent_at, masking_scheme)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'hmac-sha256') ON CONFLICT DO NOTHING",
                )
                .bind(&id)
                .bind(&login.user_id)
                .bind(&login.device_type)
                .bind(mask(&key, login.ip.as_deref()))
                .bind(mask(&key, login.device_id.as_deref()))
                .bind(&login.locale)
                .bind(&login.app_version)
                .bind(sent_at.date())
                .bind(sent_at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok::<_, Error>(response)
        }
    }))
    .await
}
