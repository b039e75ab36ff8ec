//! What SQS said about one delivery of a message, kept by an accepted message, the record a
//! handler gets, and a failure alike, with its accessors written once.

use aws_lambda_events::sqs::SqsMessage;

/// One delivery of a message: its `messageId`, where it stood in the event, how often it was
/// received and the handle to change its visibility.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Delivery {
    pub(crate) message_id: String,
    pub(crate) position: usize,
    pub(crate) receive_count: u32,
    pub(crate) receipt_handle: Option<String>,
}

impl Delivery {
    /// The delivery of the `position`th message of an event.
    pub(crate) fn of(message: &SqsMessage, position: usize) -> Self {
        Delivery {
            message_id: message.message_id.clone().unwrap_or_default(),
            position,
            receive_count: crate::envelope::receive_count(message),
            receipt_handle: message.receipt_handle.clone(),
        }
    }
}

/// The public accessors of a type's [`Delivery`], which it keeps at the field path named.
macro_rules! delivery_accessors {
    ($($field:ident).+) => {
        /// SQS's `messageId` of this delivery: what Lambda's response names a failure by
        /// (never the identity).
        pub fn message_id(&self) -> &str {
            &self.$($field).+.message_id
        }

        /// The message's index in the event's `Records`.
        pub fn position(&self) -> usize {
            self.$($field).+.position
        }

        /// SQS's `ApproximateReceiveCount` (1 when absent): what a [`Backoff`](crate::Backoff)
        /// reads.
        pub fn receive_count(&self) -> u32 {
            self.$($field).+.receive_count
        }

        /// The receipt handle of this delivery, to change its visibility
        /// (`ChangeMessageVisibility`); absent from hand-made events.
        pub fn receipt_handle(&self) -> Option<&str> {
            self.$($field).+.receipt_handle.as_deref()
        }
    };
}

pub(crate) use delivery_accessors;
