//! The local event source mapping (`queue::drain`) against real LocalStack SQS and the real
//! PostgreSQL: exact accounting, crash safety, concurrency.

mod outage;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use login_etl::{DrainEnd, DrainOptions, Queue};
use login_etl_core::sample;
use login_etl_test_support::*;

use crate::helpers::*;
use sqlx::PgPool;

/// Short visibility and few receives, so failures reach the DLQ within seconds.
const VISIBILITY_SECONDS: u32 = 1;

const MAX_RECEIVE_COUNT: u32 = 2;

fn options(concurrency: usize) -> DrainOptions {
    DrainOptions { concurrency, wait_seconds: 1, follow: false, ..DrainOptions::default() }
}

async fn queue_pair(client: &aws_sdk_sqs::Client, prefix: &str) -> (Queue, Queue) {
    let (url, dlq_url) =
        login_etl::ensure_queue_with_dlq(client, &unique_name(prefix), VISIBILITY_SECONDS, MAX_RECEIVE_COUNT, None)
            .await
            .expect("queues");
    (Queue::open(client.clone(), &url).await.expect("queue"), Queue::open(client.clone(), &dlq_url).await.expect("dlq"))
}

/// Every message id in a queue, read with receive and deleted so nothing is counted twice.
async fn take_all_ids(queue: &Queue) -> HashSet<String> {
    let mut ids = HashSet::new();
    loop {
        let messages = queue.receive(0).await.expect("receive");
        if messages.is_empty() && queue.depth().await.expect("depth").total() == 0 {
            return ids;
        }
        let receipts: Vec<_> = messages
            .into_iter()
            .filter_map(|m| Some((m.message_id?, m.receipt_handle?)))
            .inspect(|(id, _)| {
                ids.insert(id.clone());
            })
            .collect();
        queue.delete(&receipts).await.expect("delete");
    }
}

async fn loaded_ids(pool: &PgPool) -> HashSet<String> {
    sqlx::query_scalar::<_, String>("SELECT message_id FROM user_logins")
        .fetch_all(pool)
        .await
        .expect("ids")
        .into_iter()
        .collect()
}

#[sqlx::test(migrations = "./migrations")]
async fn a_mixed_queue_drains_to_exact_accounting(pool: PgPool) {
    let client = sqs().await;
    let (queue, dlq) = queue_pair(&client, "mixed").await;
    let messages = sample::sample_messages(120, 0.3, 11);
    let expected_bad = messages.iter().filter(|m| m.expected_failure.is_some()).count();
    let bodies: Vec<String> = messages.iter().map(|m| m.body.clone()).collect();
    let sent: Vec<String> = queue.send(&bodies).await.expect("send");
    assert_eq!(sent.len(), 120);

    let handler = handler_for(&pool);
    let report = login_etl::drain(&queue, &handler, &options(1)).await.expect("drain");

    assert_eq!(report.end, DrainEnd::Empty);
    assert_eq!(queue.depth().await.expect("depth").total(), 0);
    let loaded = loaded_ids(&pool).await;
    let dead = take_all_ids(&dlq).await;
    let sent: HashSet<String> = sent.into_iter().collect();
    // Every sent message is a row or in the DLQ: never both, never neither.
    assert!(loaded.is_disjoint(&dead), "a message is both loaded and dead-lettered");
    assert_eq!(loaded.union(&dead).cloned().collect::<HashSet<_>>(), sent);
    assert_eq!(dead.len(), expected_bad);
    assert_eq!(report.inserted as usize, 120 - expected_bad);
    assert_eq!(report.deleted as usize, 120 - expected_bad);
    // Each bad message was delivered maxReceiveCount times before the redrive took it.
    let failed: u64 = report.failures_by_code.values().sum();
    assert_eq!(failed as usize, expected_bad * MAX_RECEIVE_COUNT as usize);
    // And the failure codes are the ones the generator meant.
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for code in messages.iter().filter_map(|m| m.expected_failure) {
        *expected.entry(code.to_string()).or_default() += u64::from(MAX_RECEIVE_COUNT);
    }
    assert_eq!(report.failures_by_code, expected);
    // Per message, each bad message counts once.
    let per_message: BTreeMap<String, u64> =
        expected.into_iter().map(|(code, deliveries)| (code, deliveries / u64::from(MAX_RECEIVE_COUNT))).collect();
    assert_eq!(report.failed_messages_by_code, per_message);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_runner_killed_between_insert_and_delete_makes_no_duplicate(pool: PgPool) {
    let client = sqs().await;
    let (queue, _dlq) = queue_pair(&client, "crash").await;
    let bodies: Vec<String> = sample::sample_messages(25, 0.0, 3).into_iter().map(|m| m.body).collect();
    queue.send(&bodies).await.expect("send");
    let handler = handler_for(&pool);

    // The first runner receives a batch and commits it, then dies before DeleteMessageBatch:
    // the messages stay in flight and come back after the visibility timeout.
    let first_batch = queue.receive(1).await.expect("receive");
    let records: Vec<_> = first_batch.into_iter().map(|m| queue.to_lambda_record(m)).collect();
    assert!(!records.is_empty());
    let committed = handler.handle(&records).await.expect("handled");
    assert_eq!(committed.records.succeeded(), records.len());

    // A second runner drains everything, the redelivered batch included.
    let report = login_etl::drain(&queue, &handler, &options(1)).await.expect("drain");
    assert_eq!(report.end, DrainEnd::Empty);
    assert_eq!(report.duplicates as usize, records.len(), "the redelivered batch is recognised");
    assert_eq!(row_count(&pool).await, 25, "one row per message, none twice");
}

#[sqlx::test(migrations = "./migrations")]
async fn four_pollers_give_the_same_result_as_one(pool: PgPool) {
    let client = sqs().await;
    let messages = sample::sample_messages(200, 0.2, 5);
    let bodies: Vec<String> = messages.iter().map(|m| m.body.clone()).collect();
    let handler = handler_for_pool_size(&pool, 4);

    let mut results = Vec::new();
    for concurrency in [1, 4] {
        let (queue, dlq) = queue_pair(&client, &format!("k{concurrency}")).await;
        let sent: HashSet<String> = queue.send(&bodies).await.expect("send").into_iter().collect();
        let report = login_etl::drain(&queue, &handler, &options(concurrency)).await.expect("drain");
        assert_eq!(report.end, DrainEnd::Empty);
        let loaded: HashSet<String> = loaded_ids(&pool).await.intersection(&sent).cloned().collect();
        let dead = take_all_ids(&dlq).await;
        assert!(loaded.is_disjoint(&dead));
        assert_eq!(loaded.len() + dead.len(), sent.len());
        let user_ids: Vec<String> = {
            let ids: Vec<String> = loaded.into_iter().collect();
            let mut users: Vec<String> =
                sqlx::query_scalar("SELECT user_id FROM user_logins WHERE message_id = ANY($1)")
                    .bind(&ids)
                    .fetch_all(&pool)
                    .await
                    .expect("users");
            users.sort();
            users
        };
        results.push((report.inserted, report.duplicates, report.failures_by_code.clone(), dead.len(), user_ids));
    }
    assert_eq!(results[0], results[1]);
}

#[sqlx::test(migrations = "./migrations")]
async fn without_a_redrive_policy_the_drain_stops_when_only_failures_are_left(pool: PgPool) {
    let queue = queue_without_redrive("noredrive").await;
    assert!(!queue.has_redrive_policy());
    queue
        .send(&[login_body("u-1", "10.0.0.1", "d"), "garbage".to_string(), login_body("u-2", "10.0.0.2", "d")])
        .await
        .expect("send");

    let report = login_etl::drain(&queue, &handler_for(&pool), &options(1)).await.expect("drain");
    assert_eq!(report.end, DrainEnd::OnlyFailingMessagesLeft { messages: 1 });
    assert_eq!(report.inserted, 2);
    assert_eq!(row_count(&pool).await, 2);
    // The failing message is still there (not lost): it becomes visible again.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let depth = queue.depth().await.expect("depth");
    assert_eq!(depth.visible + depth.in_flight, 1);
}

#[tokio::test]
async fn received_messages_become_the_records_lambda_would_deliver() {
    let client = sqs().await;
    let (queue, _dlq) = queue_pair(&client, "shape").await;
    let body = login_body("u-1", "10.0.0.1", "d-1");
    let ids = queue.send(std::slice::from_ref(&body)).await.expect("send");
    let message = queue.receive(1).await.expect("receive").pop().expect("one message");
    let record = queue.to_lambda_record(message);

    assert_eq!(record.message_id.as_deref(), Some(ids[0].as_str()));
    assert_eq!(record.body.as_deref(), Some(body.as_str()));
    assert!(record.receipt_handle.as_deref().is_some_and(|h| !h.is_empty()));
    assert_eq!(record.md5_of_body.as_deref(), Some(format!("{:x}", md5_of(&body)).as_str()));
    assert_eq!(record.attributes.get("ApproximateReceiveCount").map(String::as_str), Some("1"));
    let sent_millis: i64 = record.attributes.get("SentTimestamp").expect("SentTimestamp").parse().expect("millis");
    let now_millis =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
    assert!((now_millis - sent_millis).abs() < 60_000);
    assert_eq!(record.event_source.as_deref(), Some("aws:sqs"));
    assert_eq!(record.event_source_arn.as_deref(), Some(queue.arn()));
    assert_eq!(record.aws_region.as_deref(), Some("us-east-1"));
}

fn md5_of(text: &str) -> md5::Digest {
    md5::compute(text.as_bytes())
}

#[sqlx::test(migrations = "./migrations")]
async fn messages_dead_lettered_during_an_outage_are_replayed_from_the_dlq(pool: PgPool) {
    let client = sqs().await;
    let (queue, dlq) = queue_pair(&client, "replay").await;
    let bodies: Vec<String> = sample::sample_messages(30, 0.0, 21).into_iter().map(|m| m.body).collect();
    let sent: HashSet<String> = queue.send(&bodies).await.expect("send").into_iter().collect();

    // The database is down (nothing listens on port 1): every delivery fails until the
    // redrive moves the messages to the DLQ. Nothing is lost, nothing is written.
    let down = login_etl::DbTarget::from_url("postgres://postgres@127.0.0.1:1/x?sslmode=disable").expect("target");
    let outage = login_etl::drain(&queue, &handler_with_target(down), &options(1)).await.expect("drain");
    assert_eq!(outage.end, DrainEnd::Empty);
    assert_eq!(outage.inserted, 0);
    assert_eq!(outage.failures_by_code.get("store_failed").copied(), Some(30 * u64::from(MAX_RECEIVE_COUNT)));
    assert_eq!(row_count(&pool).await, 0);

    // After the fix, draining the DLQ (which has no redrive policy of its own) loads them all.
    let replay = login_etl::drain(&dlq, &handler_for(&pool), &options(2)).await.expect("replay");
    assert_eq!(replay.end, DrainEnd::Empty);
    assert_eq!(replay.inserted, 30);
    assert_eq!(loaded_ids(&pool).await, sent, "the DLQ keeps each message's id, so replays stay idempotent");
}

/// A message loaded whose acknowledgement was lost ends in the DLQ; `redrive` sends it back
/// with its first identity, so the next drain counts it as a duplicate and deletes it.
#[sqlx::test(migrations = "./migrations")]
async fn a_redriven_message_that_was_loaded_is_a_duplicate_and_deleted(pool: PgPool) {
    let client = sqs().await;
    let (queue, dlq) = queue_pair(&client, "redrive").await;
    let body = login_body("frank", "10.1.1.1", "d-frank");
    queue.send(std::slice::from_ref(&body)).await.expect("send");

    // The database is unreachable for this drain: the message is dead-lettered.
    let down = login_etl::DbTarget::from_url("postgres://postgres@127.0.0.1:1/x?sslmode=disable").expect("target");
    login_etl::drain(&queue, &handler_with_target(down), &options(1)).await.expect("drain");
    // ... although (as when a commit's acknowledgement is lost) it had been loaded.
    let letters = dlq.receive(1).await.expect("receive");
    let letter = letters.into_iter().next().expect("a dead letter");
    let first_id = letter.message_id.clone().expect("id");
    let handle = letter.receipt_handle.clone().expect("receipt handle");
    let mut loaded = dlq.to_lambda_record(letter);
    loaded.attributes.insert("ApproximateReceiveCount".into(), "1".into());
    let handler = handler_for(&pool);
    assert_eq!(handler.handle(&[loaded]).await.expect("handled").records.succeeded(), 1);
    // Put the letter back in sight for the redrive.
    client
        .change_message_visibility()
        .queue_url(dlq.url())
        .receipt_handle(handle)
        .visibility_timeout(0)
        .send()
        .await
        .expect("visible");

    let moved = login_etl::redrive(&dlq, &queue).await.expect("redrive");
    assert_eq!(moved, 1);
    assert_eq!(dlq.depth().await.expect("depth").total(), 0);

    let replay = login_etl::drain(&queue, &handler, &options(1)).await.expect("drain");
    assert_eq!((replay.inserted, replay.duplicates, replay.deleted), (0, 1, 1), "{replay:?}");
    assert_eq!(replay.end, DrainEnd::Empty);
    assert_eq!(loaded_ids(&pool).await, HashSet::from([first_id]));
}

/// SQS goes away for a few seconds mid-drain (a LocalStack restart, a network blip): the
/// drain retries and finishes instead of ending at the first refused connection.
#[sqlx::test(migrations = "./migrations")]
async fn the_drain_rides_out_an_sqs_blip(pool: PgPool) {
    let endpoint = localstack_endpoint();
    let upstream: u16 = endpoint.rsplit(':').next().and_then(|p| p.trim_end_matches('/').parse().ok()).expect("port");
    let proxy = SwitchableProxy::start(upstream).await;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{}", proxy.port))
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "tests"))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let client = aws_sdk_sqs::Client::new(&config);
    let (queue, _dlq) = queue_pair(&client, "blip").await;
    let bodies: Vec<String> = (0..40).map(|i| login_body(&format!("u{i}"), "10.2.3.4", "d")).collect();
    queue.send(&bodies).await.expect("send");

    let handler = handler_for(&pool);
    let options = DrainOptions { sqs_retry: std::time::Duration::from_secs(30), ..options(1) };
    proxy.cut();
    let drain = tokio::spawn({
        let queue = queue.clone();
        async move { login_etl::drain(&queue, &handler, &options).await }
    });
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    proxy.restore();
    let report = drain.await.expect("task").expect("the drain survives the blip");
    assert_eq!(report.end, DrainEnd::Empty);
    assert_eq!(row_count(&pool).await, 40);
}

#[sqlx::test(migrations = "./migrations")]
async fn drain_waits_out_sqs_down_at_start_up_for_its_retry_window(pool: PgPool) {
    let nowhere = format!("http://127.0.0.1:{}", closed_port());
    let started = Instant::now();
    let output = cli_command(&pool)
        .env("AWS_ENDPOINT_URL", &nowhere)
        .args(["drain", "--sqs-retry-seconds", "4", "--queue-url", &format!("{nowhere}/000000000000/q")])
        .output()
        .expect("drain");
    let elapsed = started.elapsed();
    let line = error_line(&output);
    assert!(elapsed >= Duration::from_secs(4), "gave up after {elapsed:?}: {line}");
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    // The last try starts within the window and may end after it (the SDK's own attempts).
    assert!(line.contains("kept failing for") && line.contains("Connection refused"), "{line}");

    // A refusal is not waited out: no such queue ends the drain at once.
    let missing = format!("{}/000000000000/{}", localstack_endpoint(), unique_name("missing"));
    let started = Instant::now();
    let output = cli_command(&pool)
        .args(["drain", "--sqs-retry-seconds", "30", "--queue-url", &missing])
        .output()
        .expect("drain");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert!(error_line(&output).contains("The specified queue does not exist"));
}
