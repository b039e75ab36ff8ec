//! A record type for the unit tests.

use std::borrow::Cow;

use aws_lambda_events::sqs::SqsMessage;

use crate::failure::Rejection;

/// The record type of the tests: a body holding a whole number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number(pub u32);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotANumber {
    #[error("no body")]
    MissingBody,
    #[error("not a number")]
    Malformed,
}

impl Rejection for NotANumber {
    fn code(&self) -> Cow<'static, str> {
        match self {
            NotANumber::MissingBody => "missing_body".into(),
            NotANumber::Malformed => "malformed_body".into(),
        }
    }
}

pub fn parse(message: &SqsMessage) -> Result<Number, NotANumber> {
    let body = message.body.as_deref().ok_or(NotANumber::MissingBody)?;
    body.parse().map(Number).map_err(|_| NotANumber::Malformed)
}
