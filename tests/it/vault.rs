//! The PII vault against the real PostgreSQL: round trip, privileges, deduplication,
//! atomicity with the batch, and the CLI's recover/keygen.

use crypto_box::aead::OsRng;
use login_etl::{DbTarget, Handler, OperatorDb, VaultLookup};
use login_etl_core::mask::MaskedField;
use login_etl_core::vault::{VaultError, VaultSecretKey};
use login_etl_test_support::*;

use crate::helpers::*;
use sqlx::PgPool;

fn vault_handler(target: DbTarget, secret: &VaultSecretKey) -> Handler {
    handler_with_target(target).with_vault(Some(secret.public_key()))
}

async fn vault_rows(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pii_vault.sealed_values").fetch_one(pool).await.expect("count")
}

#[sqlx::test(migrations = "./migrations")]
async fn originals_round_trip_through_the_handler(pool: PgPool) {
    let records = [
        sqs_message("m1", &login_body("alice", "199.172.111.135", "593-47-5928")),
        sqs_message("m2", &login_body("alice", "2001:DB8::1", "593-47-5928")),
        sqs_message("m3", &login_body("bob", "10.0.0.9", "111-22-3333")),
    ];
    let (outcome, secret) = handle_with_new_vault_key(&pool, &records).await;
    assert_eq!(outcome.records.succeeded(), 3);

    let db = operator_db_for(&pool);
    let masked_ip = masker().mask(MaskedField::Ip, "199.172.111.135");
    let found = db
        .sealed_values(&VaultLookup::Masked { field: MaskedField::Ip, masked_value: masked_ip.clone() })
        .await
        .expect("lookup");
    assert_eq!(found.len(), 1);
    assert_eq!(secret.open(MaskedField::Ip, &masked_ip, &found[0].sealed), Ok("199.172.111.135".into()));
    assert_eq!(found[0].key_id, secret.public_key().key_id());

    let alice = db.sealed_values(&VaultLookup::UserId("alice".into())).await.expect("lookup");
    let mut originals: Vec<String> = alice
        .iter()
        .map(|v| {
            let field = v.masked_field().expect("a known field");
            secret.open(field, &v.masked_value, &v.sealed).expect("opens")
        })
        .collect();
    originals.sort();
    // The IPv6 address comes back in its canonical form, the one that was masked.
    assert_eq!(originals, ["199.172.111.135", "2001:db8::1", "593-47-5928"]);

    // The vault holds no plaintext.
    let dump: String = sqlx::query_scalar("SELECT string_agg(t::text, ' ') FROM pii_vault.sealed_values t")
        .fetch_one(&pool)
        .await
        .expect("dump");
    assert!(!dump.contains("199.172.111.135") && !dump.contains("593-47-5928"));
}

#[sqlx::test(migrations = "./migrations")]
async fn a_wrong_private_key_fails_cleanly(pool: PgPool) {
    let secret = VaultSecretKey::generate(&mut OsRng);
    let handler = vault_handler(loader_target(&pool), &secret);
    handler.handle(&[sqs_message("m1", &login_body("u", "10.0.0.1", "d"))]).await.expect("handled");
    let masked = masker().mask(MaskedField::Ip, "10.0.0.1");
    let found = operator_db_for(&pool)
        .sealed_values(&VaultLookup::Masked { field: MaskedField::Ip, masked_value: masked.clone() })
        .await
        .expect("lookup");
    let wrong = VaultSecretKey::generate(&mut OsRng);
    assert_eq!(wrong.open(MaskedField::Ip, &masked, &found[0].sealed), Err(VaultError::WrongKeyOrTampered));
}

#[sqlx::test(migrations = "./migrations")]
async fn each_distinct_value_is_stored_once_per_batch(pool: PgPool) {
    let secret = VaultSecretKey::generate(&mut OsRng);
    let handler = vault_handler(loader_target(&pool), &secret);
    let same = login_body("u", "10.0.0.1", "dev-1");
    handler.handle(&[sqs_message("a", &same), sqs_message("b", &same)]).await.expect("first");
    assert_eq!(vault_rows(&pool).await, 2, "one ip + one device id");
    // The vault is append-only (no insert may reveal what it holds): a later batch seals its
    // own distinct values again, here 10.0.0.1, dev-1 and dev-2.
    let outcome =
        handler.handle(&[sqs_message("c", &same), sqs_message("d", &login_body("v", "10.0.0.1", "dev-2"))]).await;
    assert_eq!(outcome.expect("second").records.succeeded(), 2);
    assert_eq!(vault_rows(&pool).await, 5);
    assert_eq!(row_count(&pool).await, 4);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_rolled_back_batch_leaves_nothing_in_the_vault(pool: PgPool) {
    install_poison_trigger(&pool).await;
    let records = [
        sqs_message("ok", &login_body("u", "10.0.0.1", "d-1")),
        sqs_message("bad", &login_body("poison", "10.0.0.2", "d-2")),
    ];
    let (outcome, _secret) = handle_with_new_vault_key(&pool, &records).await;
    assert_eq!(outcome.records.failed().len(), 2);
    assert_eq!(vault_rows(&pool).await, 0);
    assert_eq!(row_count(&pool).await, 0);
}

/// A login role in the loader group, dropped when the test ends.
struct LoaderRole {
    name: String,
    admin: PgPool,
}

impl LoaderRole {
    async fn create(admin: &PgPool) -> LoaderRole {
        let name = unique_name("loader").replace('-', "_");
        sqlx::raw_sql(&format!("CREATE ROLE {name} LOGIN IN ROLE login_etl_loader"))
            .execute(admin)
            .await
            .expect("role");
        LoaderRole { name, admin: admin.clone() }
    }

    async fn drop_role(self) {
        sqlx::raw_sql(&format!("DROP ROLE {}", self.name)).execute(&self.admin).await.expect("drop role");
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn the_loader_role_can_write_but_never_read_back(pool: PgPool) {
    let role = LoaderRole::create(&pool).await;
    // Straight to the server: this is about the role's privileges, not the pooler.
    let loader_options = (*pool.connect_options()).clone().username(&role.name);
    let loader_target = DbTarget { user: role.name.clone(), ..direct_target(&pool.connect_options()) };
    let secret = VaultSecretKey::generate(&mut OsRng);

    // The function's privileges are enough to load, with the vault, including redeliveries.
    let handler = vault_handler(loader_target, &secret);
    let first = handler.handle(&[sqs_message("m1", &login_body("u", "10.0.0.1", "d"))]).await.expect("handled");
    assert_eq!(first.records.succeeded(), 1, "{:?}", first.records.failures_by_code());
    let again = handler.handle(&[sqs_message("m1", &login_body("u", "10.0.0.1", "d"))]).await.expect("handled");
    assert_eq!((again.records.succeeded(), again.records.duplicates()), (0, 1));
    assert_eq!(vault_rows(&pool).await, 4, "append-only: the redelivery's seals are kept too");

    // But it cannot read the vault (nor the logins) back.
    let as_loader = OperatorDb::connect_lazy(loader_options, 1);
    let masked = masker().mask(MaskedField::Ip, "10.0.0.1");
    let denied = as_loader
        .sealed_values(&VaultLookup::Masked { field: MaskedField::Ip, masked_value: masked })
        .await
        .expect_err("must be denied");
    let db_error = std::error::Error::source(&denied)
        .and_then(|e| e.downcast_ref::<sqlx::Error>())
        .and_then(|e| e.as_database_error())
        .map(|e| e.code().map(|c| c.to_string()));
    assert_eq!(db_error, Some(Some("42501".to_string())), "insufficient_privilege: {denied:?}");
    let read_logins = sqlx::query("SELECT * FROM user_logins").fetch_all(as_loader.pool()).await;
    assert!(read_logins.is_err());

    drop(handler);
    as_loader.pool().close().await;
    role.drop_role().await;
}

#[sqlx::test(migrations = "./migrations")]
async fn the_cli_recovers_with_the_right_key_and_refuses_the_wrong_one(pool: PgPool) {
    let dir = fresh_dir("vault-keys");
    let key_file = dir.join("vault.key");
    let keygen = cli_command(&pool).args(["keygen", "--private-key-file"]).arg(&key_file).output().expect("keygen");
    assert!(keygen.status.success(), "{}", String::from_utf8_lossy(&keygen.stderr));
    let public_hex = String::from_utf8(keygen.stdout).expect("utf8").trim().to_string();
    // keygen never overwrites a key.
    let again = cli_command(&pool).args(["keygen", "--private-key-file"]).arg(&key_file).output().expect("keygen");
    assert!(!again.status.success());

    let secret = VaultSecretKey::from_hex(&std::fs::read_to_string(&key_file).expect("key")).expect("hex");
    assert_eq!(secret.public_key().to_hex(), public_hex);
    let handler = vault_handler(loader_target(&pool), &secret);
    handler.handle(&[sqs_message("m1", &login_body("carol", "203.0.113.7", "777-88-9999"))]).await.expect("handled");

    let recovered =
        cli_command(&pool).args(["recover", "--user-id", "carol", "--private-key-file"]).arg(&key_file).output();
    let recovered = recovered.expect("recover");
    let stdout = String::from_utf8_lossy(&recovered.stdout);
    assert!(recovered.status.success(), "{}", String::from_utf8_lossy(&recovered.stderr));
    assert!(stdout.contains("203.0.113.7") && stdout.contains("777-88-9999"), "{stdout}");

    let wrong_file = dir.join("wrong.key");
    std::fs::write(&wrong_file, VaultSecretKey::generate(&mut OsRng).to_hex()).expect("write");
    let refused =
        cli_command(&pool).args(["recover", "--user-id", "carol", "--private-key-file"]).arg(&wrong_file).output();
    let refused = refused.expect("recover");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains("cannot be opened with this private key"), "{stderr}");
    assert!(!stderr.contains("203.0.113.7"));

    let no_key = cli_command(&pool).args(["recover", "--user-id", "carol"]).output().expect("recover");
    assert!(!no_key.status.success(), "a key is required");
    std::fs::remove_dir_all(&dir).ok();
}

/// As the function's database user, inside a transaction that is rolled back, insert a vault
/// row for a guessed value: the answer must be the same whether or not the value is there.
#[sqlx::test(migrations = "./migrations")]
async fn the_vault_is_no_membership_oracle_for_the_loader(pool: PgPool) {
    let role = LoaderRole::create(&pool).await;
    let secret = VaultSecretKey::generate(&mut OsRng);
    let handler = vault_handler(loader_target(&pool), &secret);
    handler.handle(&[sqs_message("m1", &login_body("dave", "198.51.100.23", "d-dave"))]).await.expect("handled");

    let as_loader = OperatorDb::connect_lazy((*pool.connect_options()).clone().username(&role.name), 1);
    let mut answers = Vec::new();
    for guess in ["198.51.100.23", "198.51.100.24"] {
        let masked = masker().mask(MaskedField::Ip, guess);
        let mut tx = as_loader.pool().begin().await.expect("begin");
        let inserted = sqlx::query(
            "INSERT INTO pii_vault.sealed_values (field, masked_value, sealed, key_id) VALUES ('ip', $1, '\\x00', 'x') \
             ON CONFLICT DO NOTHING",
        )
        .bind(&masked)
        .execute(&mut *tx)
        .await
        .expect("the loader may insert");
        answers.push(inserted.rows_affected());
        tx.rollback().await.expect("rollback");
    }
    assert_eq!(answers, [1, 1], "a present and an absent value get the same answer");
    as_loader.pool().close().await;
    drop(handler);
    role.drop_role().await;
}

/// Rows planted for a person's masked value before their genuine one (garbage, and a validly
/// sealed but false original) neither stop `recover` nor are shown by it.
#[sqlx::test(migrations = "./migrations")]
async fn planted_vault_rows_cannot_hide_or_replace_the_genuine_original(pool: PgPool) {
    let dir = fresh_dir("vault-plant");
    let key_file = dir.join("vault.key");
    let secret = VaultSecretKey::generate(&mut OsRng);
    std::fs::write(&key_file, secret.to_hex()).expect("key file");

    let role = LoaderRole::create(&pool).await;
    let as_loader = OperatorDb::connect_lazy((*pool.connect_options()).clone().username(&role.name), 1);
    let masked = masker().mask(MaskedField::Ip, "192.0.2.44");
    // Anyone with the public key can seal; the attacker seals a false original under the
    // victim's masked value, and plants an unreadable row too.
    let mut sealer = login_etl_core::vault::BatchSealer::new(&secret.public_key(), OsRng);
    let false_original = sealer.seal(MaskedField::Ip, &masked, "10.66.66.66").expect("sealed");
    for sealed in [vec![1u8, 2, 3], false_original] {
        sqlx::query(
            "INSERT INTO pii_vault.sealed_values (field, masked_value, sealed, key_id) VALUES ('ip', $1, $2, $3)",
        )
        .bind(&masked)
        .bind(sealed)
        .bind(secret.public_key().key_id())
        .execute(as_loader.pool())
        .await
        .expect("planted");
    }

    let handler = vault_handler(loader_target(&pool), &secret);
    let outcome =
        handler.handle(&[sqs_message("m1", &login_body("erin", "192.0.2.44", "d-erin"))]).await.expect("handled");
    assert_eq!(outcome.records.succeeded(), 1);

    let recovered =
        cli_command(&pool).args(["recover", "--masked-ip", &masked, "--private-key-file"]).arg(&key_file).output();
    let recovered = recovered.expect("recover");
    let (stdout, stderr) = (String::from_utf8_lossy(&recovered.stdout), String::from_utf8_lossy(&recovered.stderr));
    assert!(recovered.status.success(), "{stderr}");
    assert!(stdout.contains("192.0.2.44"), "{stdout}");
    assert!(!stdout.contains("10.66.66.66"), "a planted original is never shown: {stdout}");
    assert!(stderr.contains("2 of 3 vault rows did not authenticate"), "{stderr}");

    as_loader.pool().close().await;
    drop(handler);
    role.drop_role().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[sqlx::test(migrations = "./migrations")]
async fn an_empty_vault_lookup_is_said_without_rust_types(pool: PgPool) {
    let dir = fresh_dir("vault-key");
    let key = dir.join("vault.key");
    let keygen = cli_command(&pool).arg("keygen").arg("--private-key-file").arg(&key).output().expect("keygen");
    assert!(keygen.status.success(), "{keygen:?}");
    let output = cli_command(&pool)
        .args(["recover", "--user-id", "nobody"])
        .arg("--private-key-file")
        .arg(&key)
        .output()
        .expect("recover");
    let line = error_line(&output);
    assert!(line.contains("nothing in the vault for user_id \"nobody\""), "{line}");
    std::fs::remove_dir_all(&dir).ok();
}
