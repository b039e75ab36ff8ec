//! The partial-batch-failure contract, specified against `sqs_batch::MemoryStore`: login-etl's
//! own envelope and parse, the handler's own [`process`], no database. The same contract end to
//! end against PostgreSQL is the rest of this module.

use std::collections::BTreeMap;

use aws_lambda_events::sqs::SqsMessage;
use login_etl::{process, respond};
use login_etl_core::batch::{self, BatchOutcome, MaskedLogin};
use login_etl_core::mask::MaskedField;
use login_etl_test_support::{fifo_message, login_body, masker, sqs_message};
use sqs_batch::testing::with_attribute;
use sqs_batch::{EventError, InjectedFailure, MemoryStore};

/// One invocation as the handler runs it, with `store` in the loader's place.
async fn handle(records: &[SqsMessage], store: &MemoryStore<MaskedLogin>) -> (BatchOutcome<InjectedFailure>, bool) {
    let outcome =
        process(records, &batch::envelope(), &masker(), None, store).await.expect("every record has a messageId");
    let store_failed = outcome.records.store_error() == Some(&InjectedFailure);
    (outcome, store_failed)
}

fn failure_ids(outcome: &BatchOutcome<InjectedFailure>) -> Vec<String> {
    outcome.records.response().batch_item_failures.into_iter().map(|f| f.item_identifier).collect()
}

#[tokio::test]
async fn a_mixed_batch_stores_the_good_and_names_exactly_the_bad() {
    let store = MemoryStore::new();
    let oversize_locale = serde_json::json!({"user_id": "u-long", "locale": "x".repeat(33)}).to_string();
    let records = [
        sqs_message("good-1", &login_body("u-1", "199.172.111.135", "d-1")),
        sqs_message("malformed", "{\"user_id\": "),
        sqs_message("nulls", r#"{"user_id":"u-2","ip":null,"device_id":null}"#),
        sqs_message("oversize", &oversize_locale),
        sqs_message("no-user", r#"{"ip":"10.0.0.2"}"#),
        sqs_message("bad-ip", &login_body("u-3", "300.1.1.1", "d-1")),
    ];
    let (outcome, store_failed) = handle(&records, &store).await;
    assert!(!store_failed);
    assert_eq!((outcome.records.received(), outcome.records.succeeded(), outcome.records.duplicates()), (6, 2, 0));
    assert_eq!(failure_ids(&outcome), ["malformed", "oversize", "no-user", "bad-ip"], "in event order");
    assert_eq!(outcome.records.failures_by_code(), super::one_failure_per_rule());
    assert_eq!(store.identities(), ["good-1", "nulls"]);
    let stored = store.get("good-1").expect("stored").into_record();
    assert_eq!(stored.masked_ip, Some(masker().mask(MaskedField::Ip, "199.172.111.135")));
    assert!(!format!("{stored:?}").contains("199.172.111.135"), "no original reaches the store");
    assert_eq!(respond(outcome.clone()).expect("a partial response").batch_item_failures.len(), 4);
}

#[tokio::test]
async fn a_fifo_failure_holds_back_the_rest_of_its_group_only() {
    let store = MemoryStore::new();
    let records = [
        fifo_message("a1", "alice", &login_body("alice", "10.0.0.1", "d-1")),
        fifo_message("a2", "alice", "not json"),
        fifo_message("b1", "bob", &login_body("bob", "10.0.0.1", "d-1")),
        fifo_message("a3", "alice", &login_body("alice", "10.0.0.1", "d-1")),
        fifo_message("b2", "bob", &login_body("bob", "10.0.0.1", "d-1")),
    ];
    let (outcome, _) = handle(&records, &store).await;
    assert_eq!(failure_ids(&outcome), ["a2", "a3"]);
    assert_eq!(outcome.records.failures_by_code().get("fifo_group_blocked"), Some(&1));
    assert_eq!(store.identities(), ["a1", "b1", "b2"]);
}

#[tokio::test]
async fn a_redelivered_or_redriven_login_makes_no_second_entry() {
    let store = MemoryStore::new();
    let records: Vec<_> =
        (0..5).map(|i| sqs_message(&format!("m-{i}"), &login_body(&format!("u-{i}"), "10.0.0.1", "d-1"))).collect();
    let (first, _) = handle(&records, &store).await;
    assert_eq!((first.records.succeeded(), first.records.duplicates()), (5, 0));

    // The whole batch again (a timeout after the commit), one message twice in it, a
    // redrive of m-1 under a new id, and a producer's retry under a new id with its key.
    let mut again = records.clone();
    again.push(records[0].clone());
    again.push(with_attribute(
        sqs_message("m-9", &login_body("u-1", "10.0.0.1", "d-1")),
        "LoginEtlOriginalMessageId",
        "m-1",
    ));
    let keyed =
        |id: &str| with_attribute(sqs_message(id, &login_body("k", "10.0.0.1", "d-1")), "IdempotencyKey", "key-7");
    again.push(keyed("k-1"));
    let (second, _) = handle(&again, &store).await;
    assert_eq!((second.records.succeeded(), second.records.duplicates()), (1, 7));
    assert!(second.records.failed().is_empty());
    let (third, _) = handle(&[keyed("k-2")], &store).await;
    assert_eq!((third.records.succeeded(), third.records.duplicates()), (0, 1));
    assert_eq!(store.identities(), ["m-0", "m-1", "m-2", "m-3", "m-4", "key-7"]);
    assert_eq!(store.get("key-7").expect("stored").message_id(), "k-1", "the first delivery is kept");
}

#[tokio::test]
async fn a_whole_batch_store_failure_fails_every_record_and_loses_nothing() {
    let store = MemoryStore::new();
    store.fail_next(1);
    let records = [
        sqs_message("ok-1", &login_body("u-1", "10.0.0.1", "d-1")),
        sqs_message("bad", "[]"),
        sqs_message("ok-2", &login_body("u-2", "10.0.0.3", "d-1")),
    ];
    let (outcome, store_failed) = handle(&records, &store).await;
    assert!(store_failed && outcome.records.store_error().is_some());
    assert_eq!(outcome.records.succeeded(), 0);
    assert_eq!(failure_ids(&outcome), ["ok-1", "bad", "ok-2"], "in event order, each once");
    assert_eq!(
        outcome.records.failures_by_code(),
        BTreeMap::from([("not_an_object".into(), 1), ("store_failed".into(), 2)])
    );
    assert!(outcome.records.store_failures().all(|failed| failed.reason().is_retryable()));
    assert!(store.is_empty());
    // Lambda gets a function error, so the event source mapping backs off.
    assert!(respond(outcome.clone()).is_err());

    // The outage passes: the redelivered batch is stored.
    let (redelivered, _) = handle(&records, &store).await;
    assert_eq!((redelivered.records.succeeded(), failure_ids(&redelivered)), (2, vec!["bad".to_string()]));
}

#[tokio::test]
async fn an_event_that_cannot_be_answered_record_by_record_fails_before_the_store() {
    let store = MemoryStore::new();
    let mut anonymous = sqs_message("x", &login_body("u", "10.0.0.1", "d-1"));
    anonymous.message_id = None;
    let result = process(
        &[sqs_message("a", &login_body("u", "10.0.0.1", "d-1")), anonymous],
        &batch::envelope(),
        &masker(),
        None,
        &store,
    )
    .await;
    assert!(matches!(result, Err(EventError::MissingMessageId { position: 1 })));
    assert_eq!(store.calls(), 0);
}

#[tokio::test]
async fn nothing_accepted_means_no_store_call() {
    let store = MemoryStore::new();
    let (outcome, _) = handle(&[sqs_message("bad", "[]")], &store).await;
    assert_eq!(failure_ids(&outcome), ["bad"]);
    assert_eq!(store.calls(), 0);
}
