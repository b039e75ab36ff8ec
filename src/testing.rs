//! Test support shared by the unit tests, `tests/` and `benches/` (the `test-support`
//! feature, which the crate's own dev-dependency turns on): the one builder of SQS records,
//! the test masking key, and the one LocalStack set-up. Not part of the function.

use std::sync::atomic::{AtomicU32, Ordering};

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use sqlx::postgres::PgConnectOptions;

use crate::database::{DbTarget, SslMode};
use crate::mask::{Masker, MaskingKey};
use crate::sqs::Queue;

/// The tests' masking key (hex of "Login-ETL test key - not a secre").
pub const TEST_KEY_HEX: &str = "4c6f67696e2d45544c2074657374206b6579202d206e6f742061207365637265";

/// 2026-11-24T03:00:00Z, the `SentTimestamp` of every test record.
pub const SENT_MILLIS: i64 = 1_795_489_200_000;

/// The masker of [`TEST_KEY_HEX`].
pub fn masker() -> Masker {
    Masker::hmac(&MaskingKey::from_hex(TEST_KEY_HEX).expect("test key"))
}

/// A record as an SQS event source mapping delivers it from the standard queue `login-queue`.
pub fn sqs_message(message_id: &str, body: &str) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(message_id.into());
    message.receipt_handle = Some(format!("rh-{message_id}"));
    message.body = Some(body.into());
    message.attributes.insert("SentTimestamp".into(), SENT_MILLIS.to_string());
    message.attributes.insert("ApproximateReceiveCount".into(), "1".into());
    message.event_source = Some("aws:sqs".into());
    message.event_source_arn = Some("arn:aws:sqs:us-east-1:000000000000:login-queue".into());
    message.aws_region = Some("us-east-1".into());
    message
}

/// [`sqs_message`] from the FIFO queue `login-queue.fifo`, in message group `group`.
pub fn fifo_message(message_id: &str, group: &str, body: &str) -> SqsMessage {
    let mut message = sqs_message(message_id, body);
    message.event_source_arn = Some("arn:aws:sqs:us-east-1:000000000000:login-queue.fifo".into());
    message.attributes.insert("MessageGroupId".into(), group.into());
    message
}

/// An event of `records`.
pub fn event(records: Vec<SqsMessage>) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = records;
    event
}

/// A valid login body.
pub fn login_body(user_id: &str, ip: &str, device_id: &str) -> String {
    serde_json::json!({
        "user_id": user_id, "app_version": "2.3.0", "device_type": "android",
        "ip": ip, "locale": "RU", "device_id": device_id,
    })
    .to_string()
}

/// The LocalStack endpoint tests and benchmarks talk to (`make up` starts it).
pub fn localstack_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".into())
}

/// SDK configuration for LocalStack, independent of the caller's AWS environment.
pub async fn localstack_config() -> aws_config::SdkConfig {
    let credentials = aws_credential_types::Credentials::new("test", "test", None, None, "tests");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(localstack_endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(credentials)
        .load()
        .await
}

/// A LocalStack SQS client, checked to answer.
pub async fn sqs() -> aws_sdk_sqs::Client {
    let client = aws_sdk_sqs::Client::new(&localstack_config().await);
    if let Err(err) = client.list_queues().send().await {
        panic!(
            "LocalStack SQS is not reachable at {} (run `make up`): {}",
            localstack_endpoint(),
            aws_sdk_sqs::error::DisplayErrorContext(err)
        );
    }
    client
}

/// A queue (or secret) name no other test uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{nanos}-{n}", std::process::id())
}

/// The server `options` name (trust authentication, no TLS), without any pooler in between.
pub fn direct_target(options: &PgConnectOptions) -> DbTarget {
    DbTarget {
        host: options.get_host().to_owned(),
        port: options.get_port(),
        user: options.get_username().to_owned(),
        password: None,
        dbname: options.get_database().unwrap_or("postgres").to_owned(),
        ssl_mode: SslMode::Disable,
    }
}

/// `DATABASE_URL` for the database `options` name (trust authentication), for a CLI process.
pub fn database_url(options: &PgConnectOptions) -> String {
    format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("postgres")
    )
}

/// A new LocalStack queue without a redrive policy, whose failed messages come back after 1 s.
pub async fn queue_without_redrive(prefix: &str) -> Queue {
    let client = sqs().await;
    let url = client
        .create_queue()
        .queue_name(unique_name(prefix))
        .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, "1")
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url");
    Queue::open(client, &url).await.expect("open queue")
}
