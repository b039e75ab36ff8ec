//! The function's database path as a fleet uses it: many instances, a transaction-mode pooler,
//! a statement timeout without session state, and connections that die between invocations.
//!
//! `make test` runs this file twice: straight to PostgreSQL and through a real PgBouncer in
//! transaction mode with `default_pool_size = 2` (`LOGIN_ETL_TEST_PGBOUNCER`, see
//! login_etl_test_support). Tests that need to see one server session are direct-only and say so.

use std::time::{Duration, Instant};

use login_etl::PoolSettings;
use login_etl_test_support::*;
use sqlx::{Connection, PgPool};

async fn login_sessions(pool: &PgPool) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'login-etl' AND datname = current_database()",
    )
    .fetch_all(pool)
    .await
    .expect("sessions")
}

fn batch(instance: usize, number: usize, size: usize) -> Vec<aws_lambda_events::sqs::SqsMessage> {
    (0..size)
        .map(|i| {
            sqs_message(&format!("i{instance}-b{number}-r{i}"), &login_body(&format!("user-{i}"), "10.1.2.3", "d-1"))
        })
        .collect()
}

#[sqlx::test(migrations = "./migrations")]
async fn six_instances_over_a_pool_of_two_lose_no_batch(pool: PgPool) {
    // Six function instances, each with its own one-connection pool, 20 batches each, all at
    // once: through PgBouncer they share 2 server connections, so consecutive statements of
    // one instance land on different server connections.
    let instances: Vec<_> = (0..6).map(|_| handler_for(&pool)).collect();
    let runs = instances.iter().enumerate().map(|(instance, handler)| async move {
        let mut failed = 0;
        for number in 0..20 {
            let outcome = handler.handle(&batch(instance, number, 10)).await.expect("handled");
            failed += outcome.records.failed().len();
        }
        failed
    });
    let failed: usize = futures::future::join_all(runs).await.into_iter().sum();
    assert_eq!(failed, 0, "no record may fail through the pooler");
    assert_eq!(row_count(&pool).await, 6 * 20 * 10);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_batch_blocked_by_a_lock_is_answered_within_the_statement_timeout(pool: PgPool) {
    let settings = PoolSettings { statement_timeout: Duration::from_millis(1000), ..fast_pool_settings() };
    let handler = handler_with_settings(loader_target(&pool), &settings);
    let records = batch(0, 0, 10);

    // Another session holds the table.
    let mut locker = sqlx::PgConnection::connect_with(&pool.connect_options()).await.expect("connect");
    sqlx::raw_sql("BEGIN; LOCK TABLE user_logins IN ACCESS EXCLUSIVE MODE").execute(&mut locker).await.expect("lock");

    let started = Instant::now();
    let blocked = handler.handle(&records).await.expect("handled");
    let answered_in = started.elapsed();
    assert!(answered_in < Duration::from_secs(3), "answered after {answered_in:?}");
    assert_eq!(blocked.records.failed().len(), 10, "every record is reported failed");
    assert_eq!(blocked.records.failures_by_code().get("store_failed"), Some(&10));

    // The lock goes; the queue redelivers the same batch. Whether or not the timed-out
    // statement was still queued behind the lock, nothing is doubled.
    sqlx::raw_sql("COMMIT").execute(&mut locker).await.expect("unlock");
    let redelivered = handler.handle(&records).await.expect("handled");
    assert!(redelivered.records.failed().is_empty(), "{:?}", redelivered.records.failures_by_code());
    assert_eq!(redelivered.records.succeeded() + redelivered.records.duplicates(), 10);
    assert_eq!(row_count(&pool).await, 10);
    let waiting = sessions_waiting_on_a_lock(&pool).await;
    assert_eq!(waiting, 0, "the timed-out insert was cancelled, not left waiting");
}

#[sqlx::test(migrations = "./migrations")]
async fn a_server_connection_killed_between_invocations_costs_no_failure(pool: PgPool) {
    let handler = handler_for(&pool);
    let first = handler.handle(&batch(0, 0, 5)).await.expect("handled");
    assert_eq!(first.records.succeeded(), 5);

    // A failover, a pooler restart or an idle-session reaper ends the server side.
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
    )
    .fetch_all(&pool)
    .await
    .expect("terminate");
    assert!(!killed.is_empty(), "the loader's server connection was there to kill");

    let next = handler.handle(&batch(0, 1, 5)).await.expect("handled");
    assert!(next.records.failed().is_empty(), "{:?}", next.records.failures_by_code());
    assert_eq!(next.records.succeeded(), 5);
    assert_eq!(row_count(&pool).await, 10);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_connection_idle_past_the_threshold_is_replaced_without_a_round_trip(pool: PgPool) {
    if through_pgbouncer() {
        return; // about the loader's own server session, which the pooler hides
    }
    let settings = PoolSettings { idle_timeout: Duration::from_millis(200), ..fast_pool_settings() };
    let handler = handler_with_settings(loader_target(&pool), &settings);
    handler.handle(&batch(0, 0, 1)).await.expect("handled");
    let before = login_sessions(&pool).await;
    assert_eq!(before.len(), 1);

    // Used again at once: the same session.
    handler.handle(&batch(0, 1, 1)).await.expect("handled");
    assert_eq!(login_sessions(&pool).await, before);

    // Idle past the threshold (as across a long freeze): a new session serves the batch.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let outcome = handler.handle(&batch(0, 2, 1)).await.expect("handled");
    assert_eq!(outcome.records.succeeded(), 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after = login_sessions(&pool).await;
    assert_eq!(after.len(), 1, "the stale session was closed, not kept: {after:?}");
    assert_ne!(after, before);
}

#[sqlx::test(migrations = "./migrations")]
async fn closing_the_loader_ends_its_sessions(pool: PgPool) {
    let handler = handler_for_pool_size(&pool, 3);
    let batches: Vec<_> = (0..3).map(|i| batch(i, 0, 2)).collect();
    let runs = batches.iter().map(|records| handler.handle(records));
    for outcome in futures::future::join_all(runs).await {
        assert!(outcome.expect("handled").records.failed().is_empty());
    }
    if !through_pgbouncer() {
        assert!(!login_sessions(&pool).await.is_empty());
    }

    handler.loader().close();
    tokio::time::sleep(Duration::from_millis(200)).await;
    if !through_pgbouncer() {
        assert_eq!(login_sessions(&pool).await, Vec::<i32>::new(), "no session outlives the instance");
    }
    let after = handler.handle(&batch(9, 0, 2)).await.expect("handled");
    assert_eq!(after.records.failed().len(), 2, "a closed loader fails batches, it does not hang");
}
