//! A FIFO queue handled per record: each message group in order, groups side by side, and a
//! failure holding back the rest of its group ([`FifoPolicy::BlockGroup`], the default) or of
//! the whole batch ([`FifoPolicy::StopBatch`], Powertools' default).
//!
//! `cargo run -p sqs-batch --example fifo` prints what each policy answers for one event.

use std::sync::Mutex;

use aws_lambda_events::sqs::SqsMessage;
use sqs_batch::testing::fifo;
use sqs_batch::{Envelope, FifoPolicy, Processor, Record, RecordFailure, ResponsePolicy};

/// Account balance updates: a group per account, applied in order.
fn event() -> Vec<SqsMessage> {
    vec![
        fifo("1", "account-a", "+100"),
        fifo("2", "account-b", "+5"),
        fifo("3", "account-a", "-oops"),
        fifo("4", "account-b", "-2"),
        fifo("5", "account-a", "-30"),
        fifo("6", "account-c", "+1"),
    ]
}

/// Applies one update; `applied` keeps what was applied, in order.
async fn apply(record: Record, applied: &Mutex<Vec<String>>) -> Result<(), RecordFailure> {
    let body = record.body().unwrap_or_default();
    let _amount: i64 = body.parse().map_err(|_| RecordFailure::permanent("not_an_amount", "not an amount"))?;
    let account = record.group().unwrap_or_default();
    applied.lock().map_err(|_| RecordFailure::retryable("poisoned", "a lock"))?.push(format!("{account} {body}"));
    Ok(())
}

/// The ids each policy reports failed, and the updates it applied.
async fn answer(policy: FifoPolicy) -> (Vec<String>, Vec<String>) {
    let applied = Mutex::new(Vec::new());
    let processor = Processor::new(Envelope::default().with_fifo_policy(policy));
    let outcome = processor.run(event(), None, |record| apply(record, &applied)).await.expect("every record has an id");
    let codes: Vec<String> =
        outcome.failed().iter().map(|failed| format!("{} {}", failed.message_id(), failed.reason().code())).collect();
    let response = outcome.into_response(ResponsePolicy::default()).expect("a partial response");
    assert_eq!(response.batch_item_failures.len(), codes.len());
    let mut applied = applied.into_inner().unwrap_or_default();
    applied.sort();
    (codes, applied)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    for policy in [FifoPolicy::BlockGroup, FifoPolicy::StopBatch] {
        let (failed, applied) = answer(policy).await;
        println!("{policy:?}: failed {failed:?}, applied {applied:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn block_group_holds_back_only_the_failed_group() {
        let (failed, applied) = answer(FifoPolicy::BlockGroup).await;
        assert_eq!(failed, ["3 not_an_amount", "5 fifo_group_blocked"]);
        assert_eq!(applied, ["account-a +100", "account-b +5", "account-b -2", "account-c +1"]);
    }

    #[tokio::test]
    async fn stop_batch_holds_back_everything_after_the_failure() {
        let (failed, applied) = answer(FifoPolicy::StopBatch).await;
        assert_eq!(failed, ["3 not_an_amount", "4 fifo_batch_stopped", "5 fifo_batch_stopped", "6 fifo_batch_stopped"]);
        assert_eq!(applied, ["account-a +100", "account-b +5"]);
    }
}
