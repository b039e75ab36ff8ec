//! The port a batch is written through, and an in-memory adapter for tests.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::plan::Accepted;

/// Where accepted records go: a database, a stream, another queue.
///
/// The contract, which the rest of the crate relies on:
///
/// - **All or nothing.** `store` writes the whole batch or none of it (one transaction, one
///   statement). An `Err` means nothing was written, so every record is reported failed and
///   comes back; a partial write reported as `Err` would only turn those records into
///   duplicates on their next delivery, which the next rule absorbs.
/// - **Idempotent by identity.** A record whose [`Accepted::identity`] is already stored (an
///   earlier delivery, a redrive, a copy earlier in the same batch) is skipped, not written
///   twice and not an error (`INSERT … ON CONFLICT DO NOTHING`). SQS delivers at least once.
/// - It returns how many records it inserted (were new); the others count as duplicates.
///
/// The future is `Send`, so a handler using it runs on tokio's multi-threaded runtime (what
/// `lambda_runtime` uses). An implementation may still be written as an `async fn`:
///
/// ```
/// use sqs_batch::{Accepted, Store};
///
/// struct Discard;
///
/// impl<R: Sync> Store<R> for Discard {
///     type Error = std::convert::Infallible;
///
///     async fn store(&self, batch: &[Accepted<R>]) -> Result<usize, Self::Error> {
///         Ok(batch.len())
///     }
/// }
/// ```
pub trait Store<R> {
    /// Why the batch could not be written.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Writes the batch, skipping identities already stored; how many records it inserted.
    fn store(&self, batch: &[Accepted<R>]) -> impl Future<Output = Result<usize, Self::Error>> + Send;
}

/// A [`Store`] in memory that deduplicates by identity and can be told to fail, so the whole
/// contract is testable without a database.
///
/// It keeps the first delivery of each identity. [`MemoryStore::fail_next`] makes the next
/// calls fail whole, as a database outage would.
#[derive(Debug)]
pub struct MemoryStore<R> {
    inner: Mutex<Inner<R>>,
}

#[derive(Debug)]
struct Inner<R> {
    entries: Vec<Accepted<R>>,
    by_identity: HashMap<String, usize>,
    failures_left: usize,
    calls: usize,
}

/// The failure [`MemoryStore::fail_next`] asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the memory store was told to fail this call")]
pub struct InjectedFailure;

impl<R> Default for MemoryStore<R> {
    fn default() -> Self {
        MemoryStore {
            inner: Mutex::new(Inner { entries: Vec::new(), by_identity: HashMap::new(), failures_left: 0, calls: 0 }),
        }
    }
}

impl<R> MemoryStore<R> {
    /// An empty store that succeeds.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `calls` calls to [`Store::store`] fail whole, writing nothing.
    pub fn fail_next(&self, calls: usize) {
        self.lock().failures_left = calls;
    }

    /// How many distinct identities are stored.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many times [`Store::store`] was called, failed calls included.
    pub fn calls(&self) -> usize {
        self.lock().calls
    }

    /// The stored identities, in the order they were first written.
    pub fn identities(&self) -> Vec<String> {
        self.lock().entries.iter().map(|entry| entry.identity().to_owned()).collect()
    }

    // A panic while locked cannot leave `Inner` half-updated (each call mutates it only after
    // every check), so a poisoned lock is still consistent.
    fn lock(&self) -> MutexGuard<'_, Inner<R>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<R: Clone> MemoryStore<R> {
    /// The first stored delivery of `identity`.
    pub fn get(&self, identity: &str) -> Option<Accepted<R>> {
        let inner = self.lock();
        inner.by_identity.get(identity).map(|&index| inner.entries[index].clone())
    }
}

impl<R: Clone + Send + Sync> Store<R> for MemoryStore<R> {
    type Error = InjectedFailure;

    async fn store(&self, batch: &[Accepted<R>]) -> Result<usize, InjectedFailure> {
        let mut inner = self.lock();
        inner.calls += 1;
        if inner.failures_left > 0 {
            inner.failures_left -= 1;
            return Err(InjectedFailure);
        }
        let mut new = 0;
        for accepted in batch {
            if !inner.by_identity.contains_key(accepted.identity()) {
                let index = inner.entries.len();
                inner.by_identity.insert(accepted.identity().to_owned(), index);
                inner.entries.push(accepted.clone());
                new += 1;
            }
        }
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Envelope;
    use crate::plan::plan;
    use crate::test_record::{Number, parse};
    use crate::testing::{message, with_attribute};

    fn accepted(records: &[aws_lambda_events::sqs::SqsMessage]) -> Vec<Accepted<Number>> {
        plan(records, &Envelope::default(), parse).expect("plan").accepted
    }

    #[tokio::test]
    async fn the_memory_store_keeps_the_first_delivery_of_each_identity() {
        let store = MemoryStore::new();
        assert!(store.is_empty());
        let first = accepted(&[with_attribute(message("m-1", "1"), "IdempotencyKey", "k"), message("m-2", "2")]);
        assert_eq!(store.store(&first).await, Ok(2));
        let again = accepted(&[with_attribute(message("m-3", "3"), "IdempotencyKey", "k"), message("m-4", "4")]);
        assert_eq!(store.store(&again).await, Ok(1), "k was stored");
        assert_eq!(store.identities(), ["k", "m-2", "m-4"]);
        assert!(!store.is_empty());
        assert_eq!((store.len(), store.calls()), (3, 2));
        let kept = store.get("k").expect("stored");
        assert_eq!((kept.message_id(), kept.record()), ("m-1", &Number(1)));
        assert_eq!(store.get("m-3"), None, "a message id is not an identity here");
    }

    #[tokio::test]
    async fn a_batch_with_one_identity_twice_stores_it_once() {
        let store = MemoryStore::new();
        let batch = accepted(&[
            with_attribute(message("m-1", "1"), "IdempotencyKey", "k"),
            with_attribute(message("m-2", "1"), "IdempotencyKey", "k"),
        ]);
        assert_eq!(store.store(&batch).await, Ok(1));
        assert_eq!(store.len(), 1);
    }

    #[tokio::test]
    async fn told_to_fail_it_fails_whole_that_many_calls_and_writes_nothing() {
        let store = MemoryStore::new();
        store.fail_next(2);
        let batch = accepted(&[message("m-1", "1")]);
        assert_eq!(store.store(&batch).await, Err(InjectedFailure));
        assert_eq!(store.store(&batch).await, Err(InjectedFailure));
        assert!(store.is_empty());
        assert_eq!(store.store(&batch).await, Ok(1));
        assert_eq!(store.calls(), 3);
    }
}
