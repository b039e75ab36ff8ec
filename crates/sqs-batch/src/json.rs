//! The body as JSON, with a failure code logs can count.

use std::borrow::Cow;

use aws_lambda_events::sqs::SqsMessage;
use serde::de::DeserializeOwned;

use crate::failure::Rejection;

/// A body that is not the JSON the record type expects. Its code is `malformed_json`; its
/// `Display` names serde's position and expectation, never the body's content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedJson {
    /// The message has no body.
    #[error("the message has no body")]
    MissingBody,
    /// The body does not deserialize.
    #[error("the body is not the expected JSON (line {line}, column {column}, {category:?})")]
    Invalid {
        /// serde_json's line.
        line: usize,
        /// serde_json's column.
        column: usize,
        /// syntax, data (a wrong or missing field) or eof.
        category: serde_json::error::Category,
    },
}

impl Rejection for MalformedJson {
    fn code(&self) -> Cow<'static, str> {
        Cow::Borrowed("malformed_json")
    }
}

/// The message's body deserialized as `T`: the parse step of a record type that is JSON.
///
/// ```
/// use aws_lambda_events::sqs::SqsMessage;
/// use sqs_batch::{Rejection, json};
///
/// #[derive(serde::Deserialize)]
/// struct Order { id: u64 }
///
/// let mut message = SqsMessage::default();
/// message.body = Some(r#"{"id": 7}"#.into());
/// assert_eq!(json::<Order>(&message).map(|order| order.id).ok(), Some(7));
/// message.body = Some("{".into());
/// assert_eq!(json::<Order>(&message).err().map(|e| e.code()).as_deref(), Some("malformed_json"));
/// ```
///
/// # Errors
///
/// [`MalformedJson`] when the body is absent or is not a `T`.
pub fn json<T: DeserializeOwned>(message: &SqsMessage) -> Result<T, MalformedJson> {
    let body = message.body.as_deref().ok_or(MalformedJson::MissingBody)?;
    serde_json::from_str(body).map_err(|error| MalformedJson::Invalid {
        line: error.line(),
        column: error.column(),
        category: error.classify(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Order {
        id: u64,
    }

    #[test]
    fn a_body_parses_or_fails_malformed_json_without_quoting_it() {
        let mut message = SqsMessage::default();
        message.body = Some(r#"{"id": 7}"#.into());
        assert_eq!(json::<Order>(&message).ok(), Some(Order { id: 7 }));
        for body in [Some(r#"{"id": "secret-value"}"#), Some("not json"), None] {
            message.body = body.map(str::to_owned);
            let error = json::<Order>(&message).expect_err("not an order");
            assert_eq!(error.code(), "malformed_json");
            assert!(!error.to_string().contains("secret-value"), "{error}");
        }
    }
}
