//! Arbitrary bytes through the whole pure path: as an SQS event's JSON, and as a message body
//! inside a valid event. Nothing may panic, and every record must get exactly one fate.
#![no_main]

use std::collections::HashSet;
use std::sync::LazyLock;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use libfuzzer_sys::fuzz_target;
use login_etl_core::batch;
use login_etl_core::mask::{Masker, MaskingKey};

static MASKER: LazyLock<Masker> =
    LazyLock::new(|| Masker::hmac(&MaskingKey::from_hex(&"5a".repeat(32)).expect("a valid fixed key")));

fn check(records: &[SqsMessage]) {
    let Ok(plan) = batch::plan(records, &MASKER, None) else { return };
    let rows = login_etl::LoginRows::from_accepted(plan.contract.accepted()).expect("in range");
    assert_eq!(rows.len(), plan.contract.accepted().len());
    let accepted: HashSet<&str> = plan.contract.accepted().iter().map(|a| a.message_id()).collect();
    let rejected: HashSet<&str> = plan.contract.rejected().iter().map(|f| f.message_id()).collect();
    assert!(accepted.is_disjoint(&rejected), "a record both loaded and failed");
    // Identical later copies of an accepted message are duplicates, not failures: their id is
    // the accepted one's.
    for record in records {
        let id = record.message_id.as_deref().unwrap_or_default();
        assert!(accepted.contains(id) || rejected.contains(id), "a record with no fate");
    }
    let outcome = plan.contract.inserted::<()>(0);
    let _ = outcome.response();
    let _ = outcome.failures_by_code();
}

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = serde_json::from_slice::<SqsEvent>(data) {
        check(&event.records);
    }
    if let Ok(body) = std::str::from_utf8(data) {
        check(&[login_etl_test_support::sqs_message("fuzz-1", body)]);
    }
});
