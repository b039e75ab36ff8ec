//! aws-lambda-rust-runtime's `advanced-sqs-partial-batch-failures` example on sqs-batch: each
//! message's JSON body handled by an async function, the failed ones reported in
//! `batchItemFailures`. Beside the original: at most 10 records at once instead of all, a
//! panic fails its record instead of the invocation, a record with no `messageId` fails the
//! event instead of answering `""`, and records not started before the deadline fail retryably.
//!
//! In Lambda (`AWS_LAMBDA_RUNTIME_API` set) it serves invocations; run anywhere else
//! (`cargo run -p sqs-batch --features lambda --example partial_batch_failures`) it answers the
//! original example's test event and prints the response.

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{Context, LambdaEvent};
use serde::Deserialize;
use sqs_batch::{Processor, Record, RecordFailure, ResponsePolicy};

/// [To customize] Your object definition, sent to the SQS queue triggering this lambda.
#[derive(Deserialize)]
struct Data {
    text: String,
}

/// [To customize] Your business logic for the payload of one SQS message.
async fn data_handler(record: Record) -> Result<(), RecordFailure> {
    let data: Data = record.json()?;
    if data.text == "bad request" {
        return Err(RecordFailure::permanent("processing_error", "Processing error"));
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        let response = sqs_batch::lambda::handle(
            &Processor::default(),
            ResponsePolicy::default(),
            tests_event_handler,
            the_original_test_event(),
        )
        .await?;
        println!("{}", serde_json::to_string(&response)?);
        return Ok(());
    }
    lambda_runtime::run(sqs_batch::lambda::service(Processor::default(), ResponsePolicy::default(), data_handler)).await
}

/// The original example's test handler: its body says whether to fail.
#[derive(Deserialize)]
struct UserData {
    should_error: bool,
}

async fn tests_event_handler(record: Record) -> Result<(), RecordFailure> {
    let data: UserData = record.json()?;
    if data.should_error { Err(RecordFailure::permanent("processing_error", "Processing Error")) } else { Ok(()) }
}

/// The original example's test event, unchanged: two records with only `messageId` and `body`
/// (no attributes, no `eventSourceARN`), and a context with no deadline.
fn the_original_test_event() -> LambdaEvent<SqsEvent> {
    let records = [
        r#"{
                "messageId": "1",
                "body": "{\"should_error\": true}"
            }"#,
        r#"{
                "messageId": "0",
                "body": "{\"should_error\" : false}"
            }"#,
    ]
    .iter()
    .map(|json| serde_json::from_str(json).expect("an SQS message"))
    .collect();
    let mut payload = SqsEvent::default();
    payload.records = records;
    LambdaEvent { payload, context: Context::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_original_test_event_passes_with_the_defaults() {
        let response = sqs_batch::lambda::handle(
            &Processor::default(),
            ResponsePolicy::default(),
            tests_event_handler,
            the_original_test_event(),
        )
        .await
        .expect("a response");
        assert_eq!(response.batch_item_failures.len(), 1);
        assert_eq!(response.batch_item_failures[0].item_identifier, "1");
    }

    #[tokio::test]
    async fn the_service_answers_what_lambda_runtime_sends() {
        use lambda_runtime::Service;
        let mut service = sqs_batch::lambda::service(Processor::default(), ResponsePolicy::default(), data_handler);
        let mut event = the_original_test_event();
        event.payload.records[0].body = Some(r#"{"text": "bad request"}"#.into());
        event.payload.records[1].body = Some(r#"{"text": "hello"}"#.into());
        let response = service.call(event).await.expect("a response");
        let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        assert_eq!(failed, ["1"]);
    }

    #[tokio::test]
    async fn a_record_without_message_id_fails_the_invocation_instead_of_answering_an_empty_id() {
        let mut event = the_original_test_event();
        event.payload.records[0].message_id = None;
        let result =
            sqs_batch::lambda::handle(&Processor::default(), ResponsePolicy::default(), tests_event_handler, event)
                .await;
        assert!(result.is_err());
    }
}
