//! What masking stores, against the real PostgreSQL.
//!
//! - The key behind every row: each row records the id of the masking key that produced it
//!   (`masking_key_id`, never the key), so a rotation leaves rows of two keys that are told
//!   apart, and `report` shows which rows are whose. The procedure: docs/guarantees.md,
//!   "Rotating the masking key".
//! - Masking an analyst can use: `MASKING_IP=masked+prefix` keeps the address's network
//!   (`ip_prefix`, /24 and /48 by default) beside its pseudonym, `prefix` instead of it.

use login_etl::{Handler, Loader};
use login_etl_core::mask::{IpPrefixLengths, IpTreatment, MaskedField, Masker, MaskingKey};
use login_etl_core::vault::VaultSecretKey;
use login_etl_test_support::*;
use sqlx::PgPool;

use crate::helpers::*;

fn handler_with_key(pool: &PgPool, key: &MaskingKey) -> Handler {
    let loader = Loader::new(loader_target(pool), &fast_pool_settings(), None).expect("loader");
    Handler::new(Masker::hmac(key), loader)
}

#[sqlx::test(migrations = "./migrations")]
async fn a_rotation_leaves_rows_of_both_keys_told_apart_by_their_key_id(pool: PgPool) {
    let old = MaskingKey::from_hex(&"11".repeat(32)).expect("old key");
    let new = MaskingKey::from_hex(&"22".repeat(32)).expect("new key");
    let (old_id, new_id) = (old.key_id().to_string(), new.key_id().to_string());
    assert_ne!(old_id, new_id);

    // The same person and address before and after the cut-over.
    let body = login_body("u-1", "203.0.113.7", "d-1");
    let before = handler_with_key(&pool, &old)
        .handle(&[sqs_message("before-1", &body), sqs_message("before-2", &login_body("u-2", "203.0.113.8", "d-2"))])
        .await
        .expect("old key");
    assert_eq!(before.records.succeeded(), 2);
    let after = handler_with_key(&pool, &new).handle(&[sqs_message("after-1", &body)]).await.expect("new key");
    assert_eq!(after.records.succeeded(), 1);
    // A row as the previous release's function loads it (the 0004 signature, still there for
    // instances running while a deploy rolls out): no key id.
    sqlx::query(
        "SELECT insert_login_batch(ARRAY['legacy-1'], ARRAY['u-3'], ARRAY[NULL], ARRAY[NULL], ARRAY[NULL],
                                   ARRAY[NULL], ARRAY[NULL], ARRAY[now()], ARRAY[current_date], 'hmac-sha256',
                                   ARRAY[]::text[], ARRAY[]::text[], ARRAY[]::bytea[], NULL::text)",
    )
    .execute(&pool)
    .await
    .expect("the previous release's insert");

    let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT message_id::text, masking_key_id::text, masked_ip::text FROM user_logins ORDER BY message_id",
    )
    .fetch_all(&pool)
    .await
    .expect("rows");
    let key_ids: Vec<(&str, Option<&str>)> = rows.iter().map(|(id, key, _)| (id.as_str(), key.as_deref())).collect();
    assert_eq!(
        key_ids,
        [
            ("after-1", Some(new_id.as_str())),
            ("before-1", Some(old_id.as_str())),
            ("before-2", Some(old_id.as_str())),
            ("legacy-1", None),
        ]
    );
    // One address, two pseudonyms: each is its key's, and only rows of one key id compare.
    let masked = |id: &str| rows.iter().find(|(message, _, _)| message == id).and_then(|(_, _, ip)| ip.clone());
    assert_eq!(masked("before-1"), Some(Masker::hmac(&old).mask(MaskedField::Ip, "203.0.113.7")));
    assert_eq!(masked("after-1"), Some(Masker::hmac(&new).mask(MaskedField::Ip, "203.0.113.7")));
    assert_ne!(masked("before-1"), masked("after-1"));
    // The key is never stored: no column holds its hex.
    let key_hex_stored: bool =
        sqlx::query_scalar("SELECT bool_or(t::text LIKE '%' || $1 || '%') FROM user_logins AS t")
            .bind("1111111111111111")
            .fetch_one(&pool)
            .await
            .expect("search");
    assert!(!key_hex_stored);

    // `report` says which rows are whose, the oldest key first, and each row's key.
    let report = json_stdout(&cli_command(&pool).args(["report", "--json", "--limit", "4"]).output().expect("report"));
    let by_key: Vec<(Option<&str>, i64)> = report["by_key"]
        .as_array()
        .expect("by_key")
        .iter()
        .map(|key| (key["masking_key_id"].as_str(), key["rows"].as_i64().unwrap_or(-1)))
        .collect();
    assert_eq!(by_key, [(Some(old_id.as_str()), 2), (Some(new_id.as_str()), 1), (None, 1)], "{report}");
    assert_eq!(report["latest"][1]["masking_key_id"], new_id.as_str(), "{report}");
    let text = stdout(&cli_command(&pool).args(["report", "--limit", "1"]).output().expect("report"));
    assert!(text.contains(&format!("masked by hmac-sha256 key {old_id}: 2 rows")), "{text}");
    assert!(text.contains(&format!("masked by hmac-sha256 key {new_id}: 1 rows")), "{text}");
    assert!(text.contains("key (none recorded): 1 rows"), "{text}");

    // The id an instance logs at start-up is the one its rows carry: an operator matches a
    // deployment's key to its rows without seeing the key.
    let invoked = cli_command(&pool)
        .env("MASKING_KEY", new.to_hex())
        .env("RUST_LOG", "info")
        .args(["invoke", "events/batch.json"])
        .output()
        .expect("invoke");
    assert!(invoked.status.success(), "{invoked:?}");
    assert!(stderr(&invoked).contains(&format!("masking_key_id={new_id}")), "{}", stderr(&invoked));
    let new_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM user_logins WHERE masking_key_id = $1")
        .bind(&new_id)
        .fetch_one(&pool)
        .await
        .expect("count");
    assert!(new_rows > 1, "events/batch.json loaded under the new key's id");
}

#[sqlx::test(migrations = "./migrations")]
async fn an_ip_prefix_is_kept_beside_or_instead_of_the_pseudonym(pool: PgPool) {
    let key = MaskingKey::from_hex(TEST_KEY_HEX).expect("key");
    let loader = || Loader::new(loader_target(&pool), &fast_pool_settings(), None).expect("loader");
    let secret = VaultSecretKey::generate(&mut crypto_box::aead::OsRng);
    let beside = Masker::hmac(&key).with_ip(IpTreatment::MaskedAndPrefix, IpPrefixLengths::default());
    let instead = Masker::hmac(&key).with_ip(IpTreatment::Prefix, IpPrefixLengths::new(16, 32).expect("lengths"));
    let v6 = "2001:db8:85a3:8d3:1319:8a2e:370:7348";
    let loaded = Handler::new(beside, loader())
        .with_vault(Some(secret.public_key()))
        .handle(&[
            sqs_message("beside-v4", &login_body("u-1", "199.172.111.135", "d-1")),
            sqs_message("beside-v6", &login_body("u-2", v6, "d-2")),
            sqs_message("beside-none", r#"{"user_id":"u-3"}"#),
        ])
        .await
        .expect("masked+prefix");
    assert_eq!(loaded.records.succeeded(), 3);
    let loaded = Handler::new(instead, loader())
        .with_vault(Some(secret.public_key()))
        .handle(&[sqs_message("instead-v4", &login_body("u-4", "199.172.111.135", "d-4"))])
        .await
        .expect("prefix");
    assert_eq!(loaded.records.succeeded(), 1);
    let plain = sqs_message("plain", &login_body("u-5", "199.172.111.135", "d-5"));
    assert_eq!(handler_for(&pool).handle(&[plain]).await.expect("masked").records.succeeded(), 1);

    let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT message_id::text, masked_ip::text, ip_prefix::text FROM user_logins ORDER BY message_id",
    )
    .fetch_all(&pool)
    .await
    .expect("rows");
    let masked = |ip: &str| Some(masker().mask(MaskedField::Ip, ip));
    assert_eq!(
        rows,
        [
            ("beside-none".to_string(), None, None),
            ("beside-v4".to_string(), masked("199.172.111.135"), Some("199.172.111.0/24".to_string())),
            ("beside-v6".to_string(), masked(v6), Some("2001:db8:85a3::/48".to_string())),
            ("instead-v4".to_string(), None, Some("199.172.0.0/16".to_string())),
            ("plain".to_string(), masked("199.172.111.135"), None),
        ]
    );
    // The column is PostgreSQL's cidr: analysts group and test containment natively.
    let in_net: i64 = sqlx::query_scalar("SELECT count(*) FROM user_logins WHERE ip_prefix <<= '199.172.0.0/16'::cidr")
        .fetch_one(&pool)
        .await
        .expect("containment");
    assert_eq!(in_net, 2);
    // Without a pseudonym nothing keys a vault original of the address: none is sealed for it,
    // while the device's still is.
    let sealed: Vec<(String, i64)> =
        sqlx::query_as("SELECT field::text, count(*) FROM pii_vault.sealed_values GROUP BY 1 ORDER BY 1")
            .fetch_all(&pool)
            .await
            .expect("vault");
    assert_eq!(sealed, [("device_id".to_string(), 3), ("ip".to_string(), 2)]);
    // No whole address is stored anywhere in the row.
    let whole: i64 = sqlx::query_scalar("SELECT count(*) FROM user_logins AS t WHERE t::text LIKE '%172.111.135%'")
        .fetch_one(&pool)
        .await
        .expect("search");
    assert_eq!(whole, 0);

    // The function's configuration: the mode and lengths by name, refused with the reason.
    let report = cli_command(&pool)
        .env("MASKING_IP", "masked+prefix")
        .env("MASKING_MODE", "sha256")
        .args(["invoke", "events/batch.json"])
        .output()
        .expect("invoke");
    let line = error_line(&report);
    assert!(line.contains("MASKING_IP: masked+prefix needs MASKING_MODE=hmac"), "{line}");
    let bad = cli_command(&pool).env("MASKING_IP_PREFIX", "33,48").args(["invoke", "events/batch.json"]).output();
    assert!(error_line(&bad.expect("invoke")).contains("MASKING_IP_PREFIX: must be two prefix lengths"));
    let latest = json_stdout(&cli_command(&pool).args(["report", "--json", "--limit", "10"]).output().expect("report"));
    assert!(latest["latest"].as_array().expect("latest").iter().any(|row| row["ip_prefix"] == "199.172.0.0/16"));
}
