//! The event as the runtime hands it over (and as `login-etl-cli invoke` reads it), parsed
//! here rather than by the runtime: the runtime's own parse error is logged as a Debug dump,
//! ours is a sentence with the path and the problem.

use aws_lambda_events::sqs::SqsEvent;

/// An event that is JSON but not an SQS event, said as a sentence: where in the document
/// (`Records[0].messageId`) and what is wrong there, never the value.
#[derive(thiserror::Error)]
#[error("the event is not an SQS event: {}", describe(.0))]
pub struct NotAnSqsEvent(serde_path_to_error::Error<serde_json::Error>);

/// The sentence: lambda_runtime logs a handler's error with `{:?}`.
impl std::fmt::Debug for NotAnSqsEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

fn describe(err: &serde_path_to_error::Error<serde_json::Error>) -> String {
    match err.path().to_string().as_str() {
        "." => err.inner().to_string(),
        path => format!("at `{path}`: {}", err.inner()),
    }
}

/// Parses an SQS event.
pub fn parse_event(json: &str) -> Result<SqsEvent, NotAnSqsEvent> {
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(json)).map_err(NotAnSqsEvent)
}
