//! The bulk shape: every message parsed by a synchronous step, the accepted records written
//! in one call to a [`Store`] (one `INSERT … ON CONFLICT (identity) DO NOTHING` in a real
//! function), a store outage failing every accepted record retryably.
//!
//! `cargo run -p sqs-batch --example bulk_store` prints the response for one event, then for
//! the same event during an outage.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Mutex;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsMessage};
use serde::Deserialize;
use sqs_batch::testing::{message, with_attribute};
use sqs_batch::{Accepted, Envelope, MalformedJson, Rejection, ResponsePolicy, Store, Unanswered, json, process};

/// The record type.
#[derive(Debug, Clone, Deserialize)]
struct Reading {
    sensor: String,
    celsius: f64,
}

/// Why a body is not a reading.
#[derive(Debug, thiserror::Error)]
enum BadReading {
    #[error(transparent)]
    Json(#[from] MalformedJson),
    #[error("the temperature is below absolute zero")]
    BelowAbsoluteZero,
}

impl Rejection for BadReading {
    fn code(&self) -> Cow<'static, str> {
        match self {
            BadReading::Json(error) => error.code(),
            BadReading::BelowAbsoluteZero => "below_absolute_zero".into(),
        }
    }
}

fn parse(message: &SqsMessage) -> Result<Reading, BadReading> {
    let reading: Reading = json(message)?;
    if reading.celsius < -273.15 {
        return Err(BadReading::BelowAbsoluteZero);
    }
    Ok(reading)
}

/// A table keyed by identity, which can be taken down.
#[derive(Default)]
struct Table {
    rows: Mutex<BTreeMap<String, (String, f64)>>,
    down: std::sync::atomic::AtomicBool,
}

#[derive(Debug, thiserror::Error)]
#[error("the database is down")]
struct Down;

impl Store<Reading> for Table {
    type Error = Down;

    /// All or nothing, and idempotent by identity: how many rows were new.
    async fn store(&self, batch: &[Accepted<Reading>]) -> Result<usize, Down> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Down);
        }
        let mut rows = self.rows.lock().map_err(|_| Down)?;
        let before = rows.len();
        for accepted in batch {
            let reading = accepted.record();
            rows.entry(accepted.identity().to_owned()).or_insert((reading.sensor.clone(), reading.celsius));
        }
        Ok(rows.len() - before)
    }
}

fn event() -> Vec<SqsMessage> {
    vec![
        with_attribute(message("m-1", r#"{"sensor": "s-1", "celsius": 21.5}"#), "IdempotencyKey", "s-1@t0"),
        message("m-2", r#"{"sensor": "s-2", "celsius": -300}"#),
        message("m-3", "not json"),
        // The producer retried its send: a new messageId, the same key.
        with_attribute(message("m-4", r#"{"sensor": "s-1", "celsius": 21.5}"#), "IdempotencyKey", "s-1@t0"),
        message("m-5", r#"{"sensor": "s-3", "celsius": 19}"#),
    ]
}

/// One invocation; a store outage fails the invocation (so Lambda backs off).
async fn handle(table: &Table) -> Result<SqsBatchResponse, Unanswered<Down>> {
    let outcome = process(&event(), &Envelope::default(), parse, table).await.expect("every record has an id");
    println!(
        "succeeded {}, duplicates {}, failed {:?}",
        outcome.succeeded(),
        outcome.duplicates(),
        outcome.failures_by_code()
    );
    outcome.into_response(ResponsePolicy::default().fail_on_store_failure(true))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let table = Table::default();
    match handle(&table).await {
        Ok(response) => println!("{}", serde_json::to_string(&response).unwrap_or_default()),
        Err(error) => println!("function error: {error}"),
    }
    table.down.store(true, std::sync::atomic::Ordering::SeqCst);
    match handle(&table).await {
        Ok(response) => println!("{}", serde_json::to_string(&response).unwrap_or_default()),
        Err(error) => println!("function error: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bad_bodies_fail_alone_and_a_retried_send_is_one_row() {
        let table = Table::default();
        let response = handle(&table).await.expect("a partial response");
        let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        assert_eq!(failed, ["m-2", "m-3"]);
        let rows = table.rows.lock().expect("not poisoned");
        assert_eq!(rows.keys().collect::<Vec<_>>(), ["m-5", "s-1@t0"]);
    }

    #[tokio::test]
    async fn an_outage_fails_the_invocation_and_writes_nothing() {
        let table = Table::default();
        table.down.store(true, std::sync::atomic::Ordering::SeqCst);
        let error = handle(&table).await.expect_err("a function error");
        assert!(matches!(error, Unanswered::StoreUnavailable { failed: 3, .. }), "{error:?}");
        assert!(table.rows.lock().expect("not poisoned").is_empty());
    }
}
