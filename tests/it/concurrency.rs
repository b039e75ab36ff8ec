//! Many invocations per execution environment, as on Lambda Managed Instances: the real
//! `login-etl` bootstrap under a Runtime API that answers as many `/next` polls as the runtime
//! makes (`login_etl_test_support::runtime_api`), with `AWS_LAMBDA_MAX_CONCURRENCY` set.
//!
//! One batch is held back by a row lock: another session has inserted (and not committed) a
//! row with the same `message_id` and day, so the batch's insert waits on that transaction.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use login_etl_test_support::runtime_api::{Answer, Bootstrap, RuntimeApi};
use login_etl_test_support::*;
use serde_json::Value;
use sqlx::{PgPool, Postgres, Transaction};

const FUNCTION: &str = env!("CARGO_BIN_EXE_login-etl");

/// `DATABASE_URL` for the function: the test database, directly or through the PgBouncer of
/// `make test-pooler` (see `loader_target`).
fn function_database_url(pool: &PgPool) -> String {
    let target = loader_target(pool);
    format!("postgres://{}@{}:{}/{}?sslmode=disable", target.user, target.host, target.port, target.dbname)
}

fn function_env(
    pool: &PgPool,
    concurrency: u32,
    connections: u32,
    extra: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("DATABASE_URL", function_database_url(pool)),
        ("MASKING_KEY", TEST_KEY_HEX.to_owned()),
        ("AWS_LAMBDA_MAX_CONCURRENCY", concurrency.to_string()),
        ("DB_MAX_CONNECTIONS", connections.to_string()),
    ];
    env.extend(extra.iter().map(|(name, value)| (*name, (*value).to_owned())));
    env
}

/// The function, started against a fresh runtime API with `function_env`'s settings, once it
/// keeps a `/next` poll open per invocation it may take at once.
async fn serving(
    pool: &PgPool,
    concurrency: u32,
    connections: u32,
    extra: &[(&'static str, &str)],
) -> (RuntimeApi, Bootstrap) {
    let api = RuntimeApi::start().await.expect("harness");
    let function =
        Bootstrap::spawn(FUNCTION, &api, &function_env(pool, concurrency, connections, extra)).expect("bootstrap");
    let polls = usize::try_from(concurrency).expect("a small concurrency");
    assert!(
        api.wait_for_parked_polls(polls, Duration::from_secs(20)).await,
        "the runtime should keep {polls} /next polls open; it has {}. stderr: {:?}",
        api.parked_polls(),
        function.stderr.all()
    );
    (api, function)
}

/// Batch `name`: `valid` logins `<name>-0..` and one malformed record `<name>-bad`.
fn batch(name: &str, valid: usize) -> Vec<u8> {
    let mut records: Vec<_> = (0..valid)
        .map(|i| sqs_message(&format!("{name}-{i}"), &login_body(&format!("{name}-user-{i}"), "10.1.2.3", "d-1")))
        .collect();
    records.push(sqs_message(&format!("{name}-bad"), "{\"user_id\": "));
    serde_json::to_vec(&event(records)).expect("event JSON")
}

/// Lambda redelivers [`batch`] `name`: it answers with only `<name>-bad` failed, and all
/// `valid` logins are stored once.
async fn redelivery_loads(api: &RuntimeApi, pool: &PgPool, name: &str, valid: usize) {
    let redelivered = api.enqueue(&batch(name, valid));
    let (_, answer) = api.answer(&redelivered, Duration::from_secs(20)).await.expect("redelivered");
    assert_eq!(failure_ids(&answer), [format!("{name}-bad")]);
    assert_eq!(rows_named(pool, name).await, i64::try_from(valid).expect("a small batch"));
}

/// Holds the row `message_id` (of the test records' day) in an open transaction, so a batch
/// inserting the same id waits until it ends.
async fn hold_row(pool: &PgPool, message_id: &str) -> Transaction<'static, Postgres> {
    let mut locker = pool.begin().await.expect("locker transaction");
    sqlx::query("INSERT INTO user_logins (message_id, user_id, create_date) VALUES ($1, 'locker', '2026-11-24')")
        .bind(message_id)
        .execute(&mut *locker)
        .await
        .expect("the locker's row");
    locker
}

/// Waits until some session of this database waits on a lock (the held batch's insert).
async fn wait_for_lock_wait(pool: &PgPool) {
    let started = Instant::now();
    loop {
        let waiting = sessions_waiting_on_a_lock(pool).await;
        if waiting > 0 {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the held batch never waited on the row lock");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn rows_named(pool: &PgPool, name: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM user_logins WHERE message_id LIKE $1 AND user_id <> 'locker'")
        .bind(format!("{name}-%"))
        .fetch_one(pool)
        .await
        .expect("count")
}

/// The function's sessions to this database (application_name login-etl), as the server
/// sees them.
async fn function_sessions(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'login-etl'",
    )
    .fetch_one(pool)
    .await
    .expect("pg_stat_activity")
}

fn failure_ids(answer: &Answer) -> Vec<String> {
    let Answer::Response(response) = answer else { panic!("not a response: {answer:?}") };
    let mut ids: Vec<String> = response["batchItemFailures"]
        .as_array()
        .expect("batchItemFailures")
        .iter()
        .map(|failure| failure["itemIdentifier"].as_str().expect("itemIdentifier").to_owned())
        .collect();
    ids.sort();
    ids
}

#[sqlx::test(migrations = "./migrations")]
async fn eight_invocations_at_once_keep_their_own_ids_and_the_held_one_does_not_stop_the_rest(pool: PgPool) {
    // Eight invocations over two connections: one held by the lock, seven sharing the other.
    let (api, function) = serving(&pool, 8, 2, &[]).await;

    let locker = hold_row(&pool, "held-0").await;
    // Batch sizes differ (held: 9 valid, the others 2..=8), so a summary that leaked into
    // another invocation would show the wrong count.
    let held = api.enqueue(&batch("held", 9));
    wait_for_lock_wait(&pool).await;
    let mut batches: HashMap<String, (String, usize)> = HashMap::from([(held.clone(), ("held".to_owned(), 9))]);
    let others: Vec<String> = (0..7)
        .map(|k| {
            let name = format!("quick{k}");
            let id = api.enqueue(&batch(&name, k + 2));
            batches.insert(id.clone(), (name, k + 2));
            id
        })
        .collect();

    for id in &others {
        let (_, answer) = api.answer(id, Duration::from_secs(15)).await.expect("a quick batch finishes");
        let (name, _) = &batches[id];
        assert_eq!(failure_ids(&answer), [format!("{name}-bad")], "{name}'s partial batch response");
    }
    assert!(api.invocation(&held).expect("held").answered.is_none(), "the held batch waits on the lock");
    assert_eq!(rows_named(&pool, "held").await, 0, "nothing of the held batch is committed yet");
    assert_eq!(api.most_running(), 8, "all eight ran at once");

    locker.rollback().await.expect("release the lock");
    let (_, answer) = api.answer(&held, Duration::from_secs(15)).await.expect("the held batch finishes");
    assert_eq!(failure_ids(&answer), ["held-bad"]);

    for (name, valid) in batches.values() {
        assert_eq!(rows_named(&pool, name).await, *valid as i64, "{name}'s rows");
    }

    // Every line of an invocation carries its own request id and trace id; its summary and
    // its EMF documents describe its own batch.
    let lines = function.stdout.json();
    let trace_of: HashMap<String, String> =
        batches.keys().map(|id| (id.clone(), api.invocation(id).expect("invocation").trace_id)).collect();
    for line in &lines {
        if let Some(request_id) = line.get("requestId").and_then(Value::as_str) {
            let trace = trace_of.get(request_id).unwrap_or_else(|| panic!("an unknown request id: {line}"));
            assert_eq!(line["xrayTraceId"].as_str(), Some(trace.as_str()), "a line with another's trace id: {line}");
        }
    }
    for (id, (name, valid)) in &batches {
        let own: Vec<&Value> = lines.iter().filter(|line| line["requestId"] == id.as_str()).collect();
        let summaries: Vec<&&Value> = own.iter().filter(|line| line["message"] == "batch processed").collect();
        assert_eq!(summaries.len(), 1, "{name}: one summary line: {own:?}");
        assert_eq!(summaries[0]["received"], *valid + 1, "{name}'s summary");
        assert_eq!(summaries[0]["inserted"], *valid, "{name}'s summary");
        let emf: Vec<&&Value> = own.iter().filter(|line| line.get("_aws").is_some()).collect();
        assert_eq!(emf.len(), 2, "{name}: the invocation's EMF document and one per failure reason: {own:?}");
        assert_eq!(emf[0]["RecordsReceived"], *valid + 1, "{name}'s EMF document");
        assert_eq!(emf[0]["RecordsInserted"], *valid, "{name}'s EMF document");
        assert_eq!(emf[1]["Reason"], "malformed_json", "{name}'s failure document");
    }
    let summaries = lines.iter().filter(|line| line["message"] == "batch processed").count();
    assert_eq!(summaries, 8, "no summary without a request id");
    let emf = lines.iter().filter(|line| line.get("_aws").is_some()).count();
    assert_eq!(emf, 16, "no EMF document without a request id");
    function.terminate();
}

#[sqlx::test(migrations = "./migrations")]
async fn a_batch_that_gets_no_connection_in_time_fails_retryably_and_then_loads(pool: PgPool) {
    let (api, function) = serving(&pool, 2, 1, &[("DB_ACQUIRE_TIMEOUT_MS", "300")]).await;

    let locker = hold_row(&pool, "held-0").await;
    let held = api.enqueue(&batch("held", 3));
    wait_for_lock_wait(&pool).await;
    let started = Instant::now();
    let starved = api.enqueue(&batch("starved", 3));
    let (_, answer) = api.answer(&starved, Duration::from_secs(5)).await.expect("the starved batch answers");
    assert!(started.elapsed() < Duration::from_secs(2), "it waited {:?}, not the 300 ms timeout", started.elapsed());
    let Answer::Error(error) = &answer else { panic!("a function error (Lambda retries the batch): {answer:?}") };
    assert!(
        error["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("the store failed the whole batch, so its 3 accepted records failed")),
        "{error}"
    );
    assert_eq!(rows_named(&pool, "starved").await, 0);
    let lines = function.stdout.json();
    let failed = lines
        .iter()
        .find(|line| {
            line["requestId"] == starved.as_str()
                && line["message"].as_str().is_some_and(|m| m.contains("insert failed"))
        })
        .unwrap_or_else(|| panic!("the failed insert is logged under its request id: {lines:?}"));
    assert!(failed["error"].as_str().expect("error").contains("acquire timeout (300 ms)"), "{failed}");

    locker.rollback().await.expect("release the lock");
    let (_, held_answer) = api.answer(&held, Duration::from_secs(15)).await.expect("held");
    assert_eq!(failure_ids(&held_answer), ["held-bad"]);
    // Lambda redelivers the failed batch: now it loads, nothing lost.
    redelivery_loads(&api, &pool, "starved", 3).await;
    function.terminate();
}

#[sqlx::test(migrations = "./migrations")]
async fn sigterm_lets_in_flight_batches_finish_or_return_to_the_queue_and_closes_the_pool(pool: PgPool) {
    // 1. A batch that finishes within the shutdown grace answers before the process exits.
    let (api, mut function) = serving(&pool, 4, 2, &[]).await;
    let quick = api.enqueue(&batch("before", 2));
    api.answer(&quick, Duration::from_secs(15)).await.expect("a batch before the shutdown");
    let locker = hold_row(&pool, "finishing-0").await;
    let finishing = api.enqueue(&batch("finishing", 4));
    wait_for_lock_wait(&pool).await;
    function.terminate();
    tokio::time::sleep(Duration::from_millis(100)).await;
    locker.rollback().await.expect("release the lock within the grace");
    let (_, answer) = api.answer(&finishing, Duration::from_secs(2)).await.expect("it finished and answered");
    assert_eq!(failure_ids(&answer), ["finishing-bad"]);
    let status = function.wait_exit(Duration::from_secs(3)).await.expect("the function exits");
    assert!(status.success(), "{status:?}");
    assert_eq!(rows_named(&pool, "finishing").await, 4);
    let lines = function.stdout.json();
    assert!(
        lines.iter().any(|line| line["message"] == "SIGTERM: database connections closed" && line["in_flight"] == 1),
        "{lines:?}"
    );

    // 2. A batch still held when the grace runs out never answers (Lambda retries it); the
    // process exits within the window and leaves no session behind.
    let (api, mut function) = serving(&pool, 4, 2, &[]).await;
    let locker = hold_row(&pool, "abandoned-0").await;
    let abandoned = api.enqueue(&batch("abandoned", 4));
    wait_for_lock_wait(&pool).await;
    let terminated = Instant::now();
    function.terminate();
    let status = function.wait_exit(Duration::from_secs(3)).await.expect("the function exits");
    let took = terminated.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_millis(1500), "exit {took:?} after SIGTERM: past Lambda's shutdown window");
    assert!(took >= login_etl::SHUTDOWN_GRACE, "it waited the grace for the batch ({took:?})");
    assert!(api.invocation(&abandoned).expect("abandoned").answered.is_none(), "an abandoned batch gives no answer");
    let lines = function.stdout.json();
    assert!(
        lines.iter().any(|line| line["message"].as_str().is_some_and(|m| m.contains("unfinished batches return"))
            && line["unfinished"] == 1),
        "{lines:?}"
    );
    locker.rollback().await.expect("release the lock");
    // The pool is closed: once the abandoned insert's backend notices its client is gone, no
    // session of the function remains.
    let started = Instant::now();
    while function_sessions(&pool).await > 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "the function's sessions outlived it");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Whether the abandoned insert committed after the exit or not, the redelivery loses
    // nothing and loads nothing twice.
    let committed_unseen = rows_named(&pool, "abandoned").await;
    assert!(committed_unseen == 0 || committed_unseen == 4, "all or nothing: {committed_unseen}");
    let (api, function) = serving(&pool, 4, 2, &[]).await;
    redelivery_loads(&api, &pool, "abandoned", 4).await;
    function.terminate();
}

/// An event that is JSON but not an SQS event fails the invocation with a sentence (where in
/// the document, what is wrong), logged without a Debug dump; the function goes on serving the
/// next event.
#[sqlx::test(migrations = "./migrations")]
async fn an_event_that_is_not_an_sqs_event_fails_with_a_sentence_and_the_next_one_loads(pool: PgPool) {
    let (api, function) = serving(&pool, 1, 1, &[]).await;

    let wrong = api.enqueue(br#"{"Records":[{"messageId":5}]}"#);
    let (_, answer) = api.answer(&wrong, Duration::from_secs(10)).await.expect("an answer");
    let Answer::Error(error) = &answer else { panic!("a function error: {answer:?}") };
    let message = error["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("not an SQS event: at `Records[0].messageId`: invalid type: integer `5`"), "{error}");

    let next = api.enqueue(&batch("after", 2));
    let (_, answer) = api.answer(&next, Duration::from_secs(10)).await.expect("an answer");
    assert!(matches!(answer, Answer::Response(_)), "{answer:?}");
    assert_eq!(rows_named(&pool, "after").await, 2);

    let lines: Vec<String> = function.stdout.all().into_iter().chain(function.stderr.all()).collect();
    let logged: Vec<&String> = lines.iter().filter(|l| l.contains("not an SQS event")).collect();
    assert!(!logged.is_empty(), "the failure is logged: {lines:?}");
    for line in &lines {
        assert!(!line.contains("DeserializeError") && !line.contains("Error { "), "a Debug dump: {line}");
    }
}
