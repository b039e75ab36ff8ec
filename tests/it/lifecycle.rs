//! The data lifecycle against the real PostgreSQL: the in-place conversion to monthly
//! partitions, idempotency across them, the default partition and its maintenance, retention
//! by whole partitions, and erasure of one person under its own role.

use aws_lambda_events::sqs::SqsMessage;
use login_etl::{DbTarget, OperatorDb, OperatorDbError};

use login_etl_test_support::*;

use crate::helpers::*;
use sqlx::PgPool;
use time::OffsetDateTime;
use time::macros::{date, datetime};

/// A record first sent at `sent`.
fn record_sent(message_id: &str, body: &str, sent: OffsetDateTime) -> SqsMessage {
    let mut message = sqs_message(message_id, body);
    let millis = sent.unix_timestamp() * 1000;
    message.attributes.insert("SentTimestamp".into(), millis.to_string());
    message
}

/// What `login-etl-cli redrive` makes of the dead letter `first`: a new message (`new_id`, sent
/// now) carrying its first delivery's id and sent time.
fn redriven_now(first: &SqsMessage, new_id: &str) -> SqsMessage {
    let copy = record_sent(new_id, first.body.as_deref().unwrap_or_default(), OffsetDateTime::now_utc());
    let first_id = first.message_id.as_deref().unwrap_or_default();
    let first_sent = first.attributes.get("SentTimestamp").and_then(|ms| ms.parse().ok()).unwrap_or_default();
    login_etl_core::testing::redriven(copy, first_id, first_sent)
}

/// Loads `records` as the release whose schema ended at migration 0005 did: planned by the
/// core, inserted through 0004's `insert_login_batch` (no key id, no ip prefix).
async fn load_as_the_0005_release(pool: &PgPool, records: &[SqsMessage]) -> i64 {
    let plan = login_etl_core::batch::plan(records, &masker(), None).expect("plan");
    let rows = login_etl::LoginRows::from_accepted(plan.contract.accepted()).expect("rows");
    let owned = |column: &[Option<&str>]| column.iter().map(|v| v.map(str::to_owned)).collect::<Vec<_>>();
    sqlx::query_scalar(
        "SELECT insert_login_batch($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                                   $7::text[], $8::timestamptz[], $9::date[], $10::text, ARRAY[]::text[],
                                   ARRAY[]::text[], ARRAY[]::bytea[], NULL::text)",
    )
    .bind(rows.message_id.iter().map(|v| v.to_string()).collect::<Vec<_>>())
    .bind(rows.user_id.iter().map(|v| v.to_string()).collect::<Vec<_>>())
    .bind(owned(&rows.device_type))
    .bind(owned(&rows.masked_ip))
    .bind(owned(&rows.masked_device_id))
    .bind(owned(&rows.locale))
    .bind(owned(&rows.app_version))
    .bind(&rows.sent_at)
    .bind(&rows.create_date)
    .bind(rows.masking_mode.name())
    .fetch_one(pool)
    .await
    .expect("the 0005 release's insert")
}

async fn partitions(pool: &PgPool) -> Vec<(String, i64)> {
    login_etl::partition_row_counts(&operator_db_for(pool)).await.expect("partition counts")
}

async fn exists(pool: &PgPool, relation: &str) -> bool {
    sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
        .bind(relation)
        .fetch_one(pool)
        .await
        .expect("regclass")
}

async fn vault_values(pool: &PgPool) -> Vec<(String, String)> {
    sqlx::query_as("SELECT DISTINCT field::text, masked_value::text FROM pii_vault.sealed_values ORDER BY 1, 2")
        .fetch_all(pool)
        .await
        .expect("vault")
}

#[sqlx::test(migrations = false)]
async fn the_unpartitioned_table_converts_in_place_with_every_row_kept(pool: PgPool) {
    // The take-home's table with its rows, upgraded by the older releases, then loaded by the
    // function across three months, one of them long past.
    create_take_home_table(&pool).await;
    // A take-home row without a date: it has no month.
    sqlx::query("INSERT INTO user_logins (user_id, device_type) VALUES ('legacy-3', 'ios')")
        .execute(&pool)
        .await
        .expect("undated row");
    migrate_through(&pool, 5).await.expect("older migrations");
    let october = record_sent("m-oct", &login_body("u1", "10.0.0.1", "d1"), datetime!(2026-10-31 23:59:59 UTC));
    let november = record_sent("m-nov", &login_body("u2", "10.0.0.2", "d2"), datetime!(2026-11-01 00:00:00 UTC));
    let old = record_sent("m-old", &login_body("u3", "10.0.0.3", "d3"), datetime!(2024-02-29 12:00:00 UTC));
    let inserted = load_as_the_0005_release(&pool, &[october.clone(), november.clone(), old.clone()]).await;
    assert_eq!(inserted, 3);
    // Each row whole, every column, as text; the columns later migrations add (0008) compared
    // apart.
    let every_row =
        "SELECT id, (to_jsonb(t) - 'masking_key_id' - 'ip_prefix' - 'extras')::text FROM user_logins AS t ORDER BY id";
    let before: Vec<(i64, String)> = sqlx::query_as(every_row).fetch_all(&pool).await.expect("rows before");

    operator_db_for(&pool).migrate().await.expect("migrate to partitions");

    let after: Vec<(i64, String)> = sqlx::query_as(every_row).fetch_all(&pool).await.expect("rows after");
    assert_eq!(before.len(), 6);
    assert_eq!(after, before, "every row kept, every column, ids included");
    let added = count(
        &pool,
        "SELECT count(*) FROM user_logins WHERE masking_key_id IS NOT NULL OR ip_prefix IS NOT NULL OR extras IS NOT NULL",
    )
    .await;
    assert_eq!(added, 0, "rows loaded before 0008 have no key id and no prefix");
    let partitioned: bool =
        sqlx::query_scalar("SELECT relkind = 'p' FROM pg_class WHERE oid = 'user_logins'::regclass")
            .fetch_one(&pool)
            .await
            .expect("relkind");
    assert!(partitioned);
    let counts = partitions(&pool).await;
    for (partition, rows) in [
        ("user_logins_2023_01", 2),
        ("user_logins_2024_02", 1),
        ("user_logins_2026_10", 1),
        ("user_logins_2026_11", 1),
        // A row without a create_date has no month: it stays in the default partition.
        ("user_logins_default", 1),
    ] {
        assert!(counts.contains(&(partition.to_string(), rows)), "{partition}: {counts:?}");
    }
    // This month and the three after it exist ahead of need.
    let ahead = count(
        &pool,
        "SELECT count(*) FROM pg_inherits
         WHERE inhparent = 'user_logins'::regclass
           AND inhrelid::regclass::text BETWEEN 'user_logins_' || to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM')
                                           AND 'user_logins_9999'",
    )
    .await;
    assert_eq!(ahead, 4);

    // Redeliveries and a redriven copy still make no second row, and new ids follow the old.
    let handler = handler_for(&pool);
    let again = handler.handle(&[october.clone(), november, old.clone()]).await.expect("redelivered");
    assert_eq!((again.records.succeeded(), again.records.duplicates()), (0, 3));
    let replay = handler.handle(&[redriven_now(&old, "m-old-replayed")]).await.expect("redriven");
    assert_eq!(
        (replay.records.succeeded(), replay.records.duplicates()),
        (0, 1),
        "{:?}",
        replay.records.failures_by_code()
    );
    let fresh = handler.handle(&[sqs_message("m-new", &login_body("u4", "10.0.0.4", "d4"))]).await.expect("new");
    assert_eq!(fresh.records.succeeded(), 1);
    let max_before = before.iter().map(|row| row.0).max().unwrap_or_default();
    let new_id: i64 = sqlx::query_scalar("SELECT id FROM user_logins WHERE message_id = 'm-new'")
        .fetch_one(&pool)
        .await
        .expect("new id");
    assert!(new_id > max_before, "{new_id} follows {max_before}");
}

#[sqlx::test(migrations = "./migrations")]
async fn a_month_without_a_partition_lands_in_the_default_one_until_maintenance_moves_it(pool: PgPool) {
    let far = record_sent("m-2031", &login_body("u", "10.0.0.9", "d9"), datetime!(2031-05-17 08:00 UTC));
    let handler = handler_for(&pool);
    let first = handler.handle(std::slice::from_ref(&far)).await.expect("handled");
    assert_eq!(first.records.succeeded(), 1, "no partition is no failure: {:?}", first.records.failures_by_code());
    assert!(partitions(&pool).await.contains(&("user_logins_default".into(), 1)));
    assert!(!exists(&pool, "user_logins_2031_05").await);

    let db = operator_db_for(&pool);
    let created = login_etl::maintain_partitions(&db, date!(2031 - 05 - 20), 1).await.expect("maintain");
    let moved: Vec<_> = created.iter().map(|c| (c.partition.as_str(), c.rows_moved)).collect();
    assert!(moved.contains(&("user_logins_2031_05", 1)) && moved.contains(&("user_logins_2031_06", 0)), "{moved:?}");
    let counts = partitions(&pool).await;
    assert_eq!(counts, [("user_logins_2031_05".to_string(), 1)], "the default partition is empty again");
    // Idempotent, and the moved row still stops its redelivery.
    assert!(login_etl::maintain_partitions(&db, date!(2031 - 05 - 20), 1).await.expect("again").is_empty());
    let again = handler.handle(&[far]).await.expect("redelivered");
    assert_eq!((again.records.succeeded(), again.records.duplicates()), (0, 1));
}

#[sqlx::test(migrations = "./migrations")]
async fn retention_drops_whole_old_partitions_and_the_vault_rows_nobody_references(pool: PgPool) {
    let records = [
        record_sent("jan-1", &login_body("a", "192.0.2.1", "old-only"), datetime!(2025-01-10 10:00 UTC)),
        record_sent("jan-2", &login_body("b", "192.0.2.2", "shared"), datetime!(2025-01-20 10:00 UTC)),
        record_sent("feb-1", &login_body("a", "192.0.2.1", "old-only"), datetime!(2025-02-03 10:00 UTC)),
        record_sent("oct-1", &login_body("c", "192.0.2.3", "shared"), datetime!(2026-10-01 00:00 UTC)),
        record_sent("nov-1", &login_body("d", "192.0.2.4", "new-only"), datetime!(2026-11-24 10:00 UTC)),
    ];
    let (loaded, _secret) = handle_with_new_vault_key(&pool, &records).await;
    assert_eq!(loaded.records.succeeded(), 5);
    let masker = masker();
    let ip = |v: &str| ("ip".to_string(), masker.mask(login_etl_core::mask::MaskedField::Ip, v));
    let device = |v: &str| ("device_id".to_string(), masker.mask(login_etl_core::mask::MaskedField::DeviceId, v));

    let db = operator_db_for(&pool);
    // The preview (`retention --dry-run`) names what the run then drops, and changes nothing:
    // these months still wait in the default partition, listed under the partitions they get.
    let partitions_before = partitions(&pool).await;
    let preview = login_etl::preview_retention(&db, date!(2026 - 11 - 30), 1).await.expect("preview");
    assert_eq!(partitions(&pool).await, partitions_before, "a preview creates and drops nothing");
    assert_eq!(vault_values(&pool).await.len(), 7, "a preview removes no vault row");
    assert_eq!((preview.cutoff, preview.vault_rows_would_be_removed), (date!(2026 - 10 - 01), 3));

    let report = login_etl::apply_retention(&db, date!(2026 - 11 - 30), 1).await.expect("retention");
    assert_eq!(report.cutoff, date!(2026 - 10 - 01));
    let dropped: Vec<_> = report.dropped.iter().map(|d| (d.partition.as_str(), d.rows_dropped)).collect();
    assert_eq!(dropped, [("user_logins_2025_01", 2), ("user_logins_2025_02", 1)]);
    assert_eq!(preview.would_drop, report.dropped, "the preview named exactly what was dropped");
    assert!(!exists(&pool, "user_logins_2025_01").await && !exists(&pool, "user_logins_2025_02").await);
    let kept: Vec<String> =
        sqlx::query_scalar("SELECT message_id::text FROM user_logins ORDER BY 1").fetch_all(&pool).await.expect("kept");
    assert_eq!(kept, ["nov-1", "oct-1"]);

    // a's ip and device and b's ip were only in the dropped months; "shared" is still used.
    assert_eq!(report.vault_rows_removed, 3);
    let vault = vault_values(&pool).await;
    for gone in [ip("192.0.2.1"), ip("192.0.2.2"), device("old-only")] {
        assert!(!vault.contains(&gone), "{gone:?} should be gone");
    }
    for still in [device("shared"), ip("192.0.2.3"), ip("192.0.2.4"), device("new-only")] {
        assert!(vault.contains(&still), "{still:?} should be kept");
    }
    // Nothing left to do the second time.
    let again = login_etl::apply_retention(&db, date!(2026 - 11 - 30), 1).await.expect("again");
    assert!(again.dropped.is_empty() && again.vault_rows_removed == 0, "{again:?}");
}

/// A login role for the test, dropped when the test ends.
async fn login_role(admin: &PgPool, prefix: &str, member_of: &str) -> String {
    let name = unique_name(prefix).replace('-', "_");
    sqlx::raw_sql(&format!("CREATE ROLE {name} LOGIN IN ROLE {member_of}")).execute(admin).await.expect("role");
    name
}

async fn drop_role(admin: &PgPool, name: &str) {
    sqlx::raw_sql(&format!("DROP ROLE {name}")).execute(admin).await.expect("drop role");
}

/// `login-etl-cli` with `args` as the table's owner, checked to have succeeded.
fn owner_cli(pool: &PgPool, args: &[&str]) -> std::process::Output {
    let output = cli_command_as(pool, "postgres").args(args).output().expect("cli");
    assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    output
}

fn operator_db_as(pool: &PgPool, user: &str) -> OperatorDb {
    OperatorDb::connect_lazy((*pool.connect_options()).clone().username(user), 1)
}

#[sqlx::test(migrations = "./migrations")]
async fn erase_removes_one_person_and_only_the_vault_rows_nobody_else_uses(pool: PgPool) {
    let records = [
        sqs_message("e1", &login_body("alice", "198.51.100.7", "alice-phone")),
        sqs_message("e2", &login_body("alice", "198.51.100.8", "family-tablet")),
        record_sent("e3", &login_body("alice", "198.51.100.7", "alice-phone"), datetime!(2025-06-01 09:00 UTC)),
        sqs_message("e4", &login_body("bob", "203.0.113.9", "family-tablet")),
    ];
    let (loaded, secret) = handle_with_new_vault_key(&pool, &records).await;
    assert_eq!(loaded.records.succeeded(), 4);
    let key_dir = fresh_dir("erase-keys");
    let key_file = key_dir.join("vault.key");
    std::fs::write(&key_file, secret.to_hex()).expect("key");

    // Neither the loader nor an operator without the eraser role can erase.
    let loader = login_role(&pool, "loader", "login_etl_loader").await;
    let denied =
        login_etl::erase_user(&operator_db_as(&pool, &loader), "alice").await.expect_err("loader may not erase");
    assert!(matches!(denied, OperatorDbError::MissingRole("login_etl_eraser")), "{denied:?}");
    let reader = login_role(&pool, "reader", "login_etl_recovery").await;
    let refused = cli_command_as(&pool, &reader).args(["erase", "--user-id", "alice"]).output().expect("erase");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not a member of login_etl_eraser"));
    assert_eq!(row_count(&pool).await, 4, "a refused erasure changes nothing");

    // A member of login_etl_eraser can, in one transaction; it prints counts, no values.
    let eraser = login_role(&pool, "eraser", "login_etl_eraser").await;
    let erased =
        cli_command_as(&pool, &eraser).args(["erase", "--user-id", "alice", "--json"]).output().expect("erase");
    let stdout = String::from_utf8_lossy(&erased.stdout).to_string();
    assert!(erased.status.success(), "{}", String::from_utf8_lossy(&erased.stderr));
    let counts: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    // alice's rows: 3; her vault rows: her two ips and her phone (one batch seals each value
    // once); the family tablet stays for bob.
    assert_eq!(counts["login_rows"], 3, "{stdout}");
    assert_eq!(counts["vault_rows"], 3, "{stdout}");
    for secret_value in ["alice", "198.51.100", "alice-phone", "family-tablet"] {
        assert!(!stdout.contains(secret_value), "{stdout}");
    }

    // Nothing of alice is found by report or recover any more; bob keeps the shared tablet.
    let report =
        cli_command_as(&pool, "postgres").args(["report", "--limit", "100", "--json"]).output().expect("report");
    let report_text = String::from_utf8_lossy(&report.stdout);
    assert!(report.status.success() && !report_text.contains("alice"), "{report_text}");
    assert_eq!(row_count(&pool).await, 1);
    let recover = |user: &str| {
        cli_command_as(&pool, "postgres")
            .args(["recover", "--user-id", user, "--private-key-file"])
            .arg(&key_file)
            .output()
    };
    let alice = recover("alice").expect("recover");
    assert!(!alice.status.success());
    assert!(String::from_utf8_lossy(&alice.stderr).contains("nothing in the vault"));
    assert!(!String::from_utf8_lossy(&alice.stdout).contains("198.51.100"));
    let bob = recover("bob").expect("recover");
    let bob_text = String::from_utf8_lossy(&bob.stdout);
    assert!(
        bob.status.success() && bob_text.contains("family-tablet") && bob_text.contains("203.0.113.9"),
        "{bob_text}"
    );
    let masker = masker();
    let tablet = masker.mask(login_etl_core::mask::MaskedField::DeviceId, "family-tablet");
    assert!(vault_values(&pool).await.contains(&("device_id".into(), tablet)));

    // Erasing again finds nothing and says so in numbers.
    let again = login_etl::erase_user(&operator_db_as(&pool, &eraser), "alice").await.expect("again");
    assert_eq!((again.login_rows, again.vault_rows), (0, 0));

    std::fs::remove_dir_all(&key_dir).ok();
    for role in [loader, reader, eraser] {
        drop_role(&pool, &role).await;
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn the_cli_reports_what_retention_dropped_and_refuses_bad_arguments(pool: PgPool) {
    let handler = handler_for(&pool);
    let loaded = handler
        .handle(&[
            record_sent("old-1", &login_body("a", "192.0.2.1", "d1"), datetime!(2020-03-03 03:00 UTC)),
            record_sent("old-2", &login_body("b", "192.0.2.2", "d2"), datetime!(2020-03-04 03:00 UTC)),
            record_sent("now-1", &login_body("c", "192.0.2.3", "d3"), OffsetDateTime::now_utc()),
        ])
        .await
        .expect("handled");
    assert_eq!(loaded.records.succeeded(), 3);
    let partitions_before = partitions(&pool).await;
    let text = stdout(&owner_cli(&pool, &["retention", "--keep-months", "1", "--dry-run"]));
    assert!(text.starts_with("dry run: nothing is dropped"), "{text}");
    assert!(text.contains("would drop user_logins_2020_03 (2 rows)"), "{text}");
    assert_eq!(
        (row_count(&pool).await, partitions(&pool).await),
        (3, partitions_before),
        "the dry run changed nothing"
    );

    let report = json_stdout(&owner_cli(&pool, &["retention", "--keep-months", "1", "--json"]));
    assert_eq!(report["dropped"][0]["partition"], "user_logins_2020_03", "{report}");
    assert_eq!(report["dropped"][0]["rows_dropped"], 2, "{report}");
    assert_eq!(report["dropped"].as_array().map(Vec::len), Some(1), "{report}");
    assert_eq!(row_count(&pool).await, 1);

    for bad in
        [&["retention"][..], &["retention", "--keep-months", "0"], &["retention", "--keep-months", "x"], &["erase"]]
    {
        let refused = cli_command_as(&pool, "postgres").args(bad).output().expect("cli");
        assert_eq!(refused.status.code(), Some(2), "{bad:?} is a usage error");
        assert!(!String::from_utf8_lossy(&refused.stderr).is_empty());
    }
    assert_eq!(row_count(&pool).await, 1, "refused commands change nothing");

    let listing = json_stdout(&owner_cli(&pool, &["partitions", "--months-ahead", "2", "--json"]));
    assert!(listing["partitions"].as_array().is_some_and(|p| !p.is_empty()), "{listing}");
}

/// The loader's own privileges (INSERT on user_logins, USAGE on the id sequence) are enough
/// for the partitioned table, including a month that goes to the default partition.
#[sqlx::test(migrations = "./migrations")]
async fn the_loader_role_loads_into_partitions_and_the_default_one(pool: PgPool) {
    let loader = login_role(&pool, "loader", "login_etl_loader").await;
    let target = DbTarget { user: loader.clone(), ..direct_target(&pool.connect_options()) };
    let handler = handler_with_target(target);
    let outcome = handler
        .handle(&[
            sqs_message("l1", &login_body("u", "10.1.1.1", "d")),
            record_sent("l2", &login_body("u", "10.1.1.2", "d"), datetime!(2033-01-01 00:00 UTC)),
        ])
        .await
        .expect("handled");
    assert_eq!(outcome.records.succeeded(), 2, "{:?}", outcome.records.failures_by_code());
    handler.loader().close();
    drop(handler);
    drop_role(&pool, &loader).await;
}

/// What the template's scheduled maintenance function runs on each event: partitions ahead,
/// then retention when RETENTION_KEEP_MONTHS is set; twice in a row changes nothing more.
#[sqlx::test(migrations = "./migrations")]
async fn the_scheduled_maintenance_makes_partitions_ahead_and_applies_retention(pool: PgPool) {
    let loaded = handler_for(&pool)
        .handle(&[
            record_sent("s-old", &login_body("a", "192.0.2.1", "d1"), datetime!(2035-01-15 10:00 UTC)),
            record_sent("s-new", &login_body("b", "192.0.2.2", "d2"), datetime!(2035-06-02 10:00 UTC)),
        ])
        .await
        .expect("handled");
    assert_eq!(loaded.records.succeeded(), 2);
    let db = operator_db_for(&pool);
    let today = date!(2035 - 06 - 20);

    let only_partitions = login_etl::scheduled_maintenance(&db, today, None).await.expect("maintenance");
    let created: Vec<_> = only_partitions.created.iter().map(|c| (c.partition.as_str(), c.rows_moved)).collect();
    for expected in [("user_logins_2035_01", 1), ("user_logins_2035_06", 1), ("user_logins_2035_09", 0)] {
        assert!(created.contains(&expected), "{expected:?} in {created:?}");
    }
    assert!(only_partitions.retention.is_none());
    assert_eq!(row_count(&pool).await, 2, "without RETENTION_KEEP_MONTHS nothing is dropped");

    let with_retention = login_etl::scheduled_maintenance(&db, today, Some(3)).await.expect("maintenance");
    assert!(with_retention.created.is_empty());
    let retention = with_retention.retention.expect("retention ran");
    // Everything before 2035-03 goes: the January row, and the empty partitions `migrate`
    // made around the real date of the test run.
    let dropped: Vec<_> = retention.dropped.iter().map(|d| (d.partition.as_str(), d.rows_dropped)).collect();
    assert!(dropped.contains(&("user_logins_2035_01", 1)), "{dropped:?}");
    assert_eq!(retention.dropped.iter().map(|d| d.rows_dropped).sum::<i64>(), 1, "{dropped:?}");
    assert!(retention.dropped.iter().all(|d| d.month < date!(2035 - 03 - 01)), "{dropped:?}");
    assert_eq!(retention.vault_rows_removed, 0, "the vault was off");
    assert_eq!(row_count(&pool).await, 1);

    let again = login_etl::scheduled_maintenance(&db, today, Some(3)).await.expect("again");
    assert!(again.created.is_empty() && again.retention.is_some_and(|r| r.dropped.is_empty()));
}
