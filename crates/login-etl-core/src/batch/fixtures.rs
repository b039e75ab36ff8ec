//! What the batch module's tests share: a masker, a valid body, and what a plan accepted and
//! rejected, in the terms the tests compare.

use crate::mask::{Masker, MaskingKey};

use super::LoginPlan;

pub fn masker() -> Masker {
    Masker::hmac(&MaskingKey::from_hex(&"11".repeat(32)).expect("key"))
}

pub const GOOD: &str = r#"{"user_id":"u1","ip":"10.0.0.1","device_id":"d-1","locale":null,"app_version":"0.96"}"#;

/// The identities the accepted records will be stored under (the table's `message_id`).
pub fn identities(plan: &LoginPlan) -> Vec<&str> {
    plan.contract.accepted().iter().map(|accepted| accepted.identity()).collect()
}

/// The `messageId` and reason code of every rejected record, in event order.
pub fn codes(plan: &LoginPlan) -> Vec<(String, String)> {
    plan.contract.rejected().iter().map(|f| (f.message_id().to_owned(), f.reason().code().into_owned())).collect()
}
