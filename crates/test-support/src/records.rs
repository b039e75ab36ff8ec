//! SQS records as an event source mapping delivers them (built on sqs-batch's `testing`
//! builders, the one place records are made), login bodies, event files, and the key the tests
//! mask with.

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};

use login_etl_core::mask::{Masker, MaskingKey};

/// The tests' masking key (hex of "Login-ETL test key - not a secre").
pub const TEST_KEY_HEX: &str = "4c6f67696e2d45544c2074657374206b6579202d206e6f742061207365637265";

/// 2026-11-24T03:00:00Z, the `SentTimestamp` of every test record.
pub const SENT_MILLIS: i64 = 1_795_489_200_000;

/// The masker of [`TEST_KEY_HEX`].
pub fn masker() -> Masker {
    Masker::hmac(&MaskingKey::from_hex(TEST_KEY_HEX).expect("test key"))
}

/// A record as an SQS event source mapping delivers it from the standard queue `login-queue`:
/// the `sqs-batch` builder's message, sent at [`SENT_MILLIS`].
pub fn sqs_message(message_id: &str, body: &str) -> SqsMessage {
    let mut message = sqs_batch::testing::message(message_id, body);
    message.attributes.insert("SentTimestamp".into(), SENT_MILLIS.to_string());
    message.event_source_arn = Some("arn:aws:sqs:us-east-1:000000000000:login-queue".into());
    message.aws_region = Some("us-east-1".into());
    message
}

/// [`sqs_message`] from the FIFO queue `login-queue.fifo`, in message group `group`.
pub fn fifo_message(message_id: &str, group: &str, body: &str) -> SqsMessage {
    let mut message = sqs_batch::testing::fifo(message_id, group, body);
    message.attributes.insert("SentTimestamp".into(), SENT_MILLIS.to_string());
    message.event_source_arn = Some("arn:aws:sqs:us-east-1:000000000000:login-queue.fifo".into());
    message.aws_region = Some("us-east-1".into());
    message
}

/// An event of `records`.
pub use sqs_batch::testing::event;

/// A valid login body.
pub fn login_body(user_id: &str, ip: &str, device_id: &str) -> String {
    serde_json::json!({
        "user_id": user_id, "app_version": "2.3.0", "device_type": "android",
        "ip": ip, "locale": "RU", "device_id": device_id,
    })
    .to_string()
}

pub fn load_event(path: &str) -> SqsEvent {
    let text = std::fs::read_to_string(path).expect("event file");
    serde_json::from_str(&text).expect("event JSON")
}
