//! A database outage in the middle of a drain, against a PostgreSQL cluster this test creates
//! and stops itself (never the shared server) and real LocalStack SQS.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use login_etl::{DbTarget, DrainEnd, DrainOptions, OperatorDb, Queue, VisibilityBackoff};
use login_etl_test_support::*;

const VISIBILITY_SECONDS: u32 = 2;
const MAX_RECEIVE_COUNT: u32 = 5;
const OUTAGE: Duration = Duration::from_secs(40);

/// 40 s without a database, queue visibility 2 s, 5 receives before the DLQ: with backoff
/// (4 s, doubled per receive: the 5th receive comes 60 s after the first failure) every valid
/// message is loaded once, and the DLQ holds exactly the malformed ones.
#[tokio::test]
async fn a_forty_second_outage_dead_letters_nothing_valid() {
    let cluster = TestCluster::start();
    let admin = OperatorDb::connect_lazy(DbTarget::from_url(&cluster.url("postgres")).expect("url").sqlx_options(), 1);
    sqlx::raw_sql("CREATE DATABASE logins").execute(admin.pool()).await.expect("database");
    admin.pool().close().await;
    let target = DbTarget::from_url(&cluster.url("logins")).expect("url");
    let db = OperatorDb::connect_lazy(target.sqlx_options(), 1);
    db.migrate().await.expect("migrate");

    let client = sqs().await;
    let (url, dlq_url) =
        login_etl::ensure_queue_with_dlq(&client, &unique_name("outage"), VISIBILITY_SECONDS, MAX_RECEIVE_COUNT, None)
            .await
            .expect("queues");
    let (queue, dlq) = (
        Queue::open(client.clone(), &url).await.expect("queue"),
        Queue::open(client.clone(), &dlq_url).await.expect("dlq"),
    );
    let valid: Vec<String> =
        (0..270).map(|i| login_body(&format!("user-{i}"), "10.9.8.7", &format!("dev-{i}"))).collect();
    let malformed: Vec<String> = (0..30).map(|i| format!("not json {i}")).collect();
    let valid_ids: HashSet<String> = queue.send(&valid).await.expect("send").into_iter().collect();
    let malformed_ids: HashSet<String> = queue.send(&malformed).await.expect("send").into_iter().collect();

    let backoff = VisibilityBackoff::with_client(Duration::from_secs(4), client.clone(), Some(localstack_endpoint()));
    let handler = handler_with_target(target).with_backoff(Some(backoff));
    let options = DrainOptions { concurrency: 2, wait_seconds: 1, follow: false, ..DrainOptions::default() };
    let drain = tokio::spawn({
        let (queue, handler) = (queue.clone(), handler.clone());
        async move { login_etl::drain(&queue, &handler, &options).await }
    });

    // Let some batches land, then take the database away mid-drain.
    let count = |db: &OperatorDb| {
        let pool = db.pool().clone();
        async move { sqlx::query_scalar::<_, i64>("SELECT count(*) FROM user_logins").fetch_one(&pool).await }
    };
    let waited = Instant::now();
    while count(&db).await.expect("count") < 20 {
        assert!(waited.elapsed() < Duration::from_secs(60), "the drain never started loading");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    db.pool().close().await;
    cluster.stop_server();
    tokio::time::sleep(OUTAGE).await;
    cluster.start_server();

    let report = tokio::time::timeout(Duration::from_secs(300), drain).await.expect("the drain ends").expect("task");
    let report = report.expect("drain");
    assert_eq!(report.end, DrainEnd::Empty);
    assert!(report.failures_by_code.get("store_failed").copied().unwrap_or(0) > 0, "the outage was felt: {report:?}");

    let db = OperatorDb::connect_lazy(DbTarget::from_url(&cluster.url("logins")).expect("url").sqlx_options(), 1);
    let (rows, distinct): (i64, i64) = sqlx::query_as("SELECT count(*), count(DISTINCT message_id) FROM user_logins")
        .fetch_one(db.pool())
        .await
        .expect("rows");
    assert_eq!((rows, distinct), (270, 270), "every valid message loaded exactly once");
    let loaded: HashSet<String> = sqlx::query_scalar("SELECT message_id FROM user_logins")
        .fetch_all(db.pool())
        .await
        .expect("ids")
        .into_iter()
        .collect();
    assert_eq!(loaded, valid_ids);

    let mut dead = HashSet::new();
    loop {
        let messages = dlq.receive(0).await.expect("receive");
        if messages.is_empty() && dlq.depth().await.expect("depth").total() == 0 {
            break;
        }
        let receipts: Vec<_> = messages.into_iter().filter_map(|m| Some((m.message_id?, m.receipt_handle?))).collect();
        dead.extend(receipts.iter().map(|(id, _)| id.clone()));
        dlq.delete(&receipts).await.expect("delete");
    }
    assert_eq!(
        dead,
        malformed_ids,
        "the DLQ holds exactly the malformed messages (valid ones dead-lettered: {})",
        dead.intersection(&valid_ids).count()
    );
    handler.loader().close();
    db.pool().close().await;
}
