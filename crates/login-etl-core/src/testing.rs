//! Builders for tests of login-etl's own (the `testing` feature), on `sqs-batch`'s
//! ([`sqs_batch::testing`]): messages as login-etl's queue carries them, so that the core's
//! tests and the adapters' build them alike.

use aws_lambda_events::sqs::SqsMessage;
use sqs_batch::testing::with_attribute;

use crate::batch::{ORIGINAL_MESSAGE_ID_ATTRIBUTE, ORIGINAL_SENT_TIMESTAMP_ATTRIBUTE};

/// `message` as `login-etl-cli redrive` sends a dead letter back: carrying its first
/// delivery's `messageId` and `SentTimestamp` (epoch ms), which then name and date its row.
pub fn redriven(message: SqsMessage, first_id: &str, first_sent_ms: i64) -> SqsMessage {
    let message = with_attribute(message, ORIGINAL_MESSAGE_ID_ATTRIBUTE, first_id);
    with_attribute(message, ORIGINAL_SENT_TIMESTAMP_ATTRIBUTE, &first_sent_ms.to_string())
}
