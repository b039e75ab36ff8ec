//! The handler against the real PostgreSQL: every test gets its own fresh database. These are
//! the partial-batch-failure contract's specification end to end (mixed batches, FIFO,
//! redelivery, store failures); the same contract without a database, against
//! `sqs_batch::MemoryStore`, is [`memory`].

mod memory;

use std::collections::BTreeMap;

use login_etl::DbTarget;

use login_etl_core::mask::MaskedField;
use login_etl_test_support::*;
use sqlx::{PgPool, Row};

fn failure_ids(response: &aws_lambda_events::sqs::SqsBatchResponse) -> Vec<String> {
    let mut ids: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    ids.sort();
    ids
}

/// What the mixed batches of this test and of `memory`'s fail with: a malformed body, an
/// oversize locale, a missing user and an invalid IP, one each.
fn one_failure_per_rule() -> BTreeMap<std::borrow::Cow<'static, str>, usize> {
    BTreeMap::from([
        ("invalid_ip".into(), 1),
        ("malformed_json".into(), 1),
        ("missing_user_id".into(), 1),
        ("too_long_locale".into(), 1),
    ])
}

#[sqlx::test(migrations = "./migrations")]
async fn mixed_batch_loads_the_good_and_names_the_bad(pool: PgPool) {
    let handler = handler_for(&pool);
    let oversize_locale = serde_json::json!({"user_id": "u-long", "locale": "x".repeat(33)}).to_string();
    let records = vec![
        sqs_message("good-1", &login_body("u-1", "199.172.111.135", "593-47-5928")),
        sqs_message("malformed", "{\"user_id\": "),
        sqs_message(
            "nulls",
            r#"{"user_id":"u-2","app_version":null,"device_type":null,"ip":null,"locale":null,"device_id":null}"#,
        ),
        sqs_message("oversize", &oversize_locale),
        sqs_message("injection", &login_body("x'); DROP TABLE user_logins; --", "10.0.0.1", "d'--")),
        sqs_message("no-user", r#"{"ip":"10.0.0.2"}"#),
        sqs_message("bad-ip", &login_body("u-3", "300.1.1.1", "d-3")),
    ];

    let outcome = handler.handle(&records).await.expect("handled");

    assert_eq!((outcome.records.received(), outcome.records.succeeded(), outcome.records.duplicates()), (7, 3, 0));
    assert_eq!(failure_ids(&outcome.records.response()), ["bad-ip", "malformed", "no-user", "oversize"]);
    assert_eq!(outcome.records.failures_by_code(), one_failure_per_rule());

    let rows = sqlx::query(
        "SELECT message_id, user_id, masked_ip, masked_device_id, locale, app_version, create_date::text AS day, masking_scheme
         FROM user_logins ORDER BY message_id",
    )
    .fetch_all(&pool)
    .await
    .expect("rows");
    let ids: Vec<String> = rows.iter().map(|r| r.get("message_id")).collect();
    assert_eq!(ids, ["good-1", "injection", "nulls"]);

    let good = &rows[0];
    let masker = masker();
    assert_eq!(good.get::<String, _>("user_id"), "u-1");
    assert_eq!(good.get::<String, _>("masked_ip"), masker.mask(MaskedField::Ip, "199.172.111.135"));
    assert_eq!(good.get::<String, _>("masked_device_id"), masker.mask(MaskedField::DeviceId, "593-47-5928"));
    assert_eq!(good.get::<String, _>("app_version"), "2.3.0");
    assert_eq!(good.get::<String, _>("day"), "2026-11-24");
    assert_eq!(good.get::<String, _>("masking_scheme"), "hmac-sha256");

    assert_eq!(rows[1].get::<String, _>("user_id"), "x'); DROP TABLE user_logins; --");

    let nulls = &rows[2];
    for column in ["masked_ip", "masked_device_id", "locale", "app_version"] {
        assert_eq!(nulls.get::<Option<String>, _>(column), None, "{column}");
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn no_raw_pii_reaches_the_table(pool: PgPool) {
    let handler = handler_for(&pool);
    handler.handle(&[sqs_message("m1", &login_body("u-1", "199.172.111.135", "593-47-5928"))]).await.expect("handled");
    let dump: String =
        sqlx::query_scalar("SELECT string_agg(t::text, ' ') FROM user_logins t").fetch_one(&pool).await.expect("dump");
    assert!(dump.contains("u-1"), "{dump}");
    assert!(!dump.contains("199.172.111.135"), "{dump}");
    assert!(!dump.contains("593-47-5928"), "{dump}");
}

#[sqlx::test(migrations = "./migrations")]
async fn redelivered_messages_make_one_row(pool: PgPool) {
    let handler = handler_for(&pool);
    let records: Vec<_> =
        (0..5).map(|i| sqs_message(&format!("m-{i}"), &login_body(&format!("u-{i}"), "10.0.0.1", "d"))).collect();

    let first = handler.handle(&records).await.expect("first delivery");
    assert_eq!((first.records.succeeded(), first.records.duplicates()), (5, 0));

    // SQS redelivers the whole batch (e.g. the function timed out after committing) plus one
    // message twice in the same batch.
    let mut again = records.clone();
    again.push(records[0].clone());
    let second = handler.handle(&again).await.expect("redelivery");
    assert_eq!((second.records.succeeded(), second.records.duplicates()), (0, 6));
    assert!(second.records.failed().is_empty());
    assert_eq!(row_count(&pool).await, 5);
}

#[sqlx::test(migrations = "./migrations")]
async fn fifo_failure_holds_back_its_group(pool: PgPool) {
    let handler = handler_for(&pool);
    let good = |user: &str| login_body(user, "10.0.0.1", "d");
    let records = vec![
        fifo_message("a1", "alice", &good("alice")),
        fifo_message("a2", "alice", "not json"),
        fifo_message("b1", "bob", &good("bob")),
        fifo_message("a3", "alice", &good("alice")),
        fifo_message("b2", "bob", &good("bob")),
    ];
    let outcome = handler.handle(&records).await.expect("handled");
    assert_eq!(failure_ids(&outcome.records.response()), ["a2", "a3"]);
    let loaded: Vec<String> = sqlx::query_scalar("SELECT message_id FROM user_logins ORDER BY message_id")
        .fetch_all(&pool)
        .await
        .expect("ids");
    assert_eq!(loaded, ["a1", "b1", "b2"]);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_failed_transaction_writes_nothing_and_fails_every_record(pool: PgPool) {
    install_poison_trigger(&pool).await;
    let handler = handler_for(&pool);
    let records = vec![
        sqs_message("ok-1", &login_body("u-1", "10.0.0.1", "d")),
        sqs_message("bad", "[]"),
        sqs_message("poison", &login_body("poison", "10.0.0.2", "d")),
        sqs_message("ok-2", &login_body("u-2", "10.0.0.3", "d")),
    ];
    let outcome = handler.handle(&records).await.expect("handled, not Err");
    assert_eq!(outcome.records.succeeded(), 0);
    assert_eq!(failure_ids(&outcome.records.response()), ["bad", "ok-1", "ok-2", "poison"]);
    assert_eq!(outcome.records.failures_by_code().get("store_failed"), Some(&3));
    assert_eq!(row_count(&pool).await, 0);
}

#[tokio::test]
async fn an_unreachable_database_fails_every_record() {
    // Nothing listens on port 1: connection refused, as when the database is down.
    let target = login_etl::DbTarget::from_url("postgres://postgres@127.0.0.1:1/x?sslmode=disable").expect("target");
    let handler = handler_with_target(target);
    let records = vec![sqs_message("a", &login_body("u", "10.0.0.1", "d")), sqs_message("b", "{}")];
    let outcome = handler.handle(&records).await.expect("an outcome");
    assert_eq!(failure_ids(&outcome.records.response()), ["a", "b"]);
    assert_eq!(outcome.records.failures_by_code().get("store_failed"), Some(&1));
    // Lambda gets a function error, so the event source mapping backs off; nothing is lost.
    let (result, _) = invoke(&handler, event(records)).await;
    let err = result.expect_err("a function error");
    // sqs-batch's own error: it counts the records that failed with the store, not "b".
    assert_eq!(
        err.to_string(),
        "the store failed the whole batch, so its 1 accepted records failed and return to the queue",
        "{err}"
    );
}

/// A handler whose database connections go through a proxy the test can cut.
async fn handler_behind_proxy(pool: &PgPool) -> (SwitchableProxy, login_etl::Handler) {
    let proxy = SwitchableProxy::start(pool.connect_options().get_port()).await;
    let target = DbTarget { host: "127.0.0.1".into(), port: proxy.port, ..direct_target(&pool.connect_options()) };
    (proxy, handler_with_target(target))
}

#[sqlx::test(migrations = "./migrations")]
async fn a_warm_instance_recovers_when_the_database_comes_back(pool: PgPool) {
    let (proxy, handler) = handler_behind_proxy(&pool).await;

    let first = handler.handle(&[sqs_message("before", &login_body("u", "10.0.0.1", "d"))]).await.expect("handled");
    assert_eq!(first.records.succeeded(), 1);

    // The database goes away; the pooled connection is now dead.
    proxy.cut();
    let during = handler.handle(&[sqs_message("during", &login_body("u", "10.0.0.1", "d"))]).await.expect("handled");
    assert_eq!(failure_ids(&during.records.response()), ["during"]);

    // It comes back: the same handler (same pool) must reconnect by itself.
    proxy.restore();
    let after = handler.handle(&[sqs_message("after", &login_body("u", "10.0.0.1", "d"))]).await.expect("handled");
    assert_eq!(after.records.succeeded(), 1, "{:?}", after.records.failures_by_code());
    assert!(after.records.failed().is_empty());
    assert_eq!(row_count(&pool).await, 2);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_stale_pooled_connection_is_replaced_transparently(pool: PgPool) {
    let (proxy, handler) = handler_behind_proxy(&pool).await;
    handler.handle(&[sqs_message("one", &login_body("u", "10.0.0.1", "d"))]).await.expect("handled");

    // The connection dies while the instance is frozen, but the database is up again by the
    // next invocation: that batch must not fail.
    proxy.cut();
    proxy.restore();
    let next = handler.handle(&[sqs_message("two", &login_body("u", "10.0.0.1", "d"))]).await.expect("handled");
    assert!(next.records.failed().is_empty(), "{:?}", next.records.failures_by_code());
    assert_eq!(row_count(&pool).await, 2);
}

#[sqlx::test(migrations = "./migrations")]
async fn ten_thousand_records_in_one_batch(pool: PgPool) {
    let handler = handler_for(&pool);
    let records: Vec<_> = (0..10_000)
        .map(|i| {
            let body =
                if i % 100 == 99 { "garbage".to_string() } else { login_body(&format!("u-{i}"), "10.0.0.1", "d") };
            sqs_message(&format!("m-{i:05}"), &body)
        })
        .collect();
    let outcome = handler.handle(&records).await.expect("handled");
    assert_eq!((outcome.records.received(), outcome.records.succeeded()), (10_000, 9_900));
    assert_eq!(outcome.records.failed().len(), 100);
    assert_eq!(row_count(&pool).await, 9_900);
}

#[sqlx::test(migrations = "./migrations")]
async fn the_shipped_event_files_run_through_the_lambda_entry_point(pool: PgPool) {
    let handler = handler_for(&pool);

    let (batch, metrics) = invoke(&handler, load_event("events/batch.json")).await;
    let batch = batch.expect("batch.json");
    assert!(batch.batch_item_failures.is_empty());
    // The runtime's path writes the invocation's EMF document: a cold start, 10 inserted.
    let emf: serde_json::Value = serde_json::from_str(&metrics[0]).expect("an EMF line");
    assert_eq!((emf["ColdStart"].as_u64(), emf["requestId"].as_str()), (Some(1), Some("test-request")));
    assert_eq!(emf["RecordsInserted"].as_u64(), Some(10), "{emf}");
    assert_eq!(row_count(&pool).await, 10);
    let null_locales: i64 = sqlx::query_scalar("SELECT count(*) FROM user_logins WHERE locale IS NULL")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(null_locales, 3);

    let mixed_event = load_event("events/mixed.json");
    let (mixed, _) = invoke(&handler, mixed_event.clone()).await;
    let mixed = mixed.expect("mixed.json");
    assert_eq!(mixed.batch_item_failures.len(), 6);
    assert_eq!(row_count(&pool).await, 14);
    // Every failure names a message of the event.
    let ids: Vec<_> = mixed_event.records.iter().filter_map(|r| r.message_id.clone()).collect();
    assert!(mixed.batch_item_failures.iter().all(|f| ids.contains(&f.item_identifier)));
}

/// One invocation through [`login_etl::Function::invoke`], the runtime's own path, on a fresh
/// instance (a cold start): its response and the metrics lines it wrote.
async fn invoke(
    handler: &login_etl::Handler,
    event: aws_lambda_events::sqs::SqsEvent,
) -> (Result<aws_lambda_events::sqs::SqsBatchResponse, lambda_runtime::Error>, Vec<String>) {
    let log = login_etl::LogSettings::from_lookup(|_| None);
    let function = login_etl::Function::new(handler.clone(), "login-etl", &log);
    let mut metrics = Vec::new();
    let request = login_etl::Request { id: "test-request", xray_trace_id: None };
    let result = function.invoke(event, request, &mut metrics).await;
    (result, String::from_utf8_lossy(&metrics).lines().map(str::to_owned).collect())
}

#[sqlx::test(migrations = false)]
async fn migrations_upgrade_the_legacy_table_in_place(pool: PgPool) {
    // The table as the original take-home created it, with rows already in it.
    create_take_home_table(&pool).await;

    let store = operator_db_for(&pool);
    store.migrate().await.expect("migrate");
    // Migrating twice is a no-op.
    store.migrate().await.expect("migrate again");

    let legacy: Vec<(String, Option<String>, Option<String>, String)> = sqlx::query_as(
        "SELECT user_id, app_version, masked_ip, create_date::text FROM user_logins WHERE message_id IS NULL ORDER BY user_id",
    )
    .fetch_all(&pool)
    .await
    .expect("legacy rows");
    assert_eq!(
        legacy,
        [
            ("legacy-1".into(), Some("230".into()), Some("aaaa".into()), "2023-01-02".into()),
            ("legacy-2".into(), None, None, "2023-01-03".into()),
        ]
    );

    let outcome =
        handler_for(&pool).handle(&[sqs_message("new", &login_body("u", "10.0.0.1", "d"))]).await.expect("handled");
    assert_eq!(outcome.records.succeeded(), 1);
    assert_eq!(row_count(&pool).await, 3);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_fresh_database_gets_the_full_schema(pool: PgPool) {
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text FROM information_schema.columns
         WHERE table_name = 'user_logins' ORDER BY ordinal_position",
    )
    .fetch_all(&pool)
    .await
    .expect("columns");
    // Exactly the columns the function fills itself: none a policy could claim is missing
    // from OWN_COLUMNS, and a fresh database has no policy's column.
    let mut names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
    names.sort_unstable();
    let mut own = login_etl_core::policy::OWN_COLUMNS;
    own.sort_unstable();
    assert_eq!(names, own);
    assert!(columns.contains(&("app_version".into(), "character varying".into())));
}
