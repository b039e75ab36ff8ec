//! login-etl's side of the SQS partial-batch-failure contract. The contract itself (envelope
//! rules, identities, FIFO group blocking, repeated ids, the outcome of a store failure) lives
//! in the `sqs-batch` crate; what is login-specific lives here:
//!
//! - `queue_envelope`: the [`envelope`] of login-etl's queue: the redrive attributes
//!   `login-etl-cli redrive` sets, and the sent times a login may have;
//! - `parse`: the parse step the crate calls per message, [`LoginParser`]: the body validated
//!   ([`LoginRecord::parse`](crate::message::LoginRecord::parse)), its personal fields masked
//!   and, with the vault on, their originals sealed; a [`MaskedLogin`] is what the store writes;
//! - `outcome`: [`RecordError`] as the crate's [`Rejection`](sqs_batch::Rejection), so its codes
//!   are the reason codes of logs, metrics and EMF; the schema-drift tally ([`UnknownKeyTally`])
//!   and the invocation's report ([`BatchOutcome`]) that logs, metrics and `drain` read;
//! - this file: [`plan`], one event through the crate with the two above.
//!
//! How the accepted records become the statement's column arrays is a storage shape, and lives
//! with the PostgreSQL adapter, not here.

mod outcome;
mod parse;
mod queue_envelope;

#[cfg(test)]
mod fixtures;

use aws_lambda_events::sqs::SqsMessage;
use sqs_batch::{Envelope, EventError, Plan};

use crate::mask::Masker;
use crate::message::RecordError;
use crate::vault::BatchSealer;

pub use outcome::{BatchOutcome, FailedMessage, FailureReason, UnknownKeyTally};
pub use parse::{LoginParser, MaskedLogin, SealedOriginal};
pub use queue_envelope::{
    ORIGINAL_MESSAGE_ID_ATTRIBUTE, ORIGINAL_SENT_TIMESTAMP_ATTRIBUTE, SENT_MILLIS_RANGE, envelope,
};

/// One event planned by the crate with login-etl's envelope and parse, plus the drift tally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginPlan {
    pub contract: Plan<MaskedLogin, RecordError>,
    pub unknown_keys: UnknownKeyTally,
}

/// Validates and masks every record of an event through [`sqs_batch::try_plan`] with
/// [`envelope`]; with a `sealer`, also seals the originals of `ip` and `device_id` for the PII
/// vault.
///
/// # Errors
///
/// The crate's [`EventError`]: a record without a `messageId`, or
/// [`Aborted`](EventError::Aborted) by a [`VaultError`](crate::vault::VaultError) (an original
/// could not be sealed: the batch fails whole rather than load a row whose original is lost).
pub fn plan(
    records: &[SqsMessage],
    masker: &Masker,
    sealer: Option<&mut BatchSealer>,
) -> Result<LoginPlan, EventError> {
    plan_with(records, &envelope(), masker, sealer)
}

/// [`plan`] with a prebuilt envelope (the handler builds it once per instance).
pub fn plan_with(
    records: &[SqsMessage],
    envelope: &Envelope,
    masker: &Masker,
    sealer: Option<&mut BatchSealer>,
) -> Result<LoginPlan, EventError> {
    let mut parser = LoginParser::new(masker, sealer);
    let contract = sqs_batch::try_plan(records, envelope, |message| parser.parse(message))?;
    Ok(LoginPlan { contract, unknown_keys: parser.into_unknown_keys() })
}

/// login-etl's envelope and parse through the crate, as a whole. The envelope rules themselves
/// are the crate's and tested there; the tests of `queue_envelope`, `parse` and `outcome` pin
/// what login-etl gets from them, in login-etl's codes.
#[cfg(test)]
mod tests {
    use super::fixtures::{GOOD, identities, masker};
    use super::*;
    use sqs_batch::testing::message;

    #[test]
    fn every_record_gets_exactly_one_fate() {
        let records = vec![message("a", GOOD), message("b", "not json"), message("c", r#"{"user_id":"u2"}"#)];
        let plan = plan(&records, &masker(), None).expect("plan");
        assert_eq!(plan.contract.received(), 3);
        assert_eq!(identities(&plan), ["a", "c"]);
        assert_eq!(plan.contract.rejected().len(), 1);
        assert_eq!(plan.contract.rejected()[0].message_id(), "b");
        assert_eq!(plan.contract.rejected()[0].reason().code(), "malformed_json");
    }
}
