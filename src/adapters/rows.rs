//! The batch insert's parameter layout: accepted logins turned into one array per column, as
//! the single `INSERT … SELECT FROM UNNEST` (queries/insert_batch.sql) binds them. One array
//! per column keeps the whole batch to one statement and one round trip. A storage shape, so
//! it lives with the PostgreSQL adapter (`loader`), not in the pure core.
//! The columns borrow the accepted logins' values: the statement only reads them, so nothing
//! is copied per record.

use sqs_batch::Accepted;
use time::{Date, OffsetDateTime};

use login_etl_core::batch::MaskedLogin;
use login_etl_core::mask::{KeyId, MaskingMode};

/// The rows of one batch, column by column, borrowed from its accepted logins.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoginRows<'a> {
    /// The row's identity: the producer's idempotency key, the first delivery's `messageId`
    /// (kept by `redrive`), else SQS's `messageId` ([`Accepted::identity`]).
    pub message_id: Vec<&'a str>,
    pub user_id: Vec<&'a str>,
    pub device_type: Vec<Option<&'a str>>,
    pub masked_ip: Vec<Option<&'a str>>,
    /// `cidr` text (`203.0.113.0/24`), when the masker keeps a prefix.
    pub ip_prefix: Vec<Option<&'a str>>,
    /// The declared extras, a JSON object per row (NULL when none), for the `extras` column.
    pub extras: Vec<Option<&'a str>>,
    /// The fields the policy lands in columns of their own, a JSON object per row keyed by
    /// column name (NULL when none), which `insert_login_batch` spreads into the columns.
    pub columns: Vec<Option<&'a str>>,
    pub masked_device_id: Vec<Option<&'a str>>,
    pub locale: Vec<Option<&'a str>>,
    pub app_version: Vec<Option<&'a str>>,
    pub sent_at: Vec<OffsetDateTime>,
    /// The UTC date of `sent_at`: when the user logged in, not when the batch ran.
    pub create_date: Vec<Date>,
    /// The scheme that masked the batch's values, stored with every row.
    pub masking_mode: MaskingMode,
    /// The id of the key that masked them (`None`: the unkeyed scheme), stored with every row.
    pub masking_key_id: Option<KeyId>,
    /// The originals, sealed for the PII vault, when a vault key is configured.
    pub vault: Option<VaultRows<'a>>,
}

/// Sealed originals for the vault, one per distinct (field, masked value) of the batch (the
/// parse step sealed each only once).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VaultRows<'a> {
    pub key_id: &'a str,
    pub field: Vec<&'static str>,
    pub masked_value: Vec<&'a str>,
    pub sealed: Vec<&'a [u8]>,
}

impl VaultRows<'_> {
    pub fn len(&self) -> usize {
        self.field.len()
    }

    pub fn is_empty(&self) -> bool {
        self.field.is_empty()
    }
}

/// An accepted login's sent time is missing or not a timestamp PostgreSQL columns take. The
/// envelope's sent range (years 2000 to 2100, which also requires a sent time) makes this
/// unreachable; it is an error, not a panic, should the envelope ever be loosened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {position} has no sent time, or one (epoch ms) no timestamp can hold")]
pub struct UnrepresentableSentTime {
    pub position: usize,
}

impl<'a> LoginRows<'a> {
    /// The column arrays of `batch`, in its order. Every login of a batch was masked by the
    /// same masker, so the first one's scheme is the batch's.
    pub fn from_accepted(batch: &'a [Accepted<MaskedLogin>]) -> Result<LoginRows<'a>, UnrepresentableSentTime> {
        let n = batch.len();
        let mut rows = LoginRows {
            message_id: Vec::with_capacity(n),
            user_id: Vec::with_capacity(n),
            device_type: Vec::with_capacity(n),
            masked_ip: Vec::with_capacity(n),
            ip_prefix: Vec::with_capacity(n),
            extras: Vec::with_capacity(n),
            columns: Vec::with_capacity(n),
            masked_device_id: Vec::with_capacity(n),
            locale: Vec::with_capacity(n),
            app_version: Vec::with_capacity(n),
            sent_at: Vec::with_capacity(n),
            create_date: Vec::with_capacity(n),
            masking_mode: batch.first().map(|accepted| accepted.record().masking_mode).unwrap_or_default(),
            masking_key_id: batch.first().and_then(|accepted| accepted.record().masking_key_id),
            vault: None,
        };
        for accepted in batch {
            let login = accepted.record();
            debug_assert_eq!(login.masking_mode, rows.masking_mode, "one masker per batch");
            debug_assert_eq!(login.masking_key_id, rows.masking_key_id, "one masker per batch");
            let unrepresentable = || UnrepresentableSentTime { position: accepted.position() };
            let sent_at_ms = accepted.sent_at_ms().ok_or_else(unrepresentable)?;
            let sent_at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(sent_at_ms) * 1_000_000)
                .map_err(|_| unrepresentable())?;
            for original in &login.sealed {
                let vault =
                    rows.vault.get_or_insert_with(|| VaultRows { key_id: &original.key_id, ..VaultRows::default() });
                vault.field.push(original.field.name());
                vault.masked_value.push(&original.masked_value);
                vault.sealed.push(&original.sealed);
            }
            rows.message_id.push(accepted.identity());
            rows.user_id.push(&login.kept.user_id);
            rows.device_type.push(login.kept.device_type.as_deref());
            rows.masked_ip.push(login.masked_ip.as_deref());
            rows.ip_prefix.push(login.ip_prefix.as_deref());
            rows.extras.push(login.extras.as_deref());
            rows.columns.push(login.columns.as_deref());
            rows.masked_device_id.push(login.masked_device_id.as_deref());
            rows.locale.push(login.kept.locale.as_deref());
            rows.app_version.push(login.kept.app_version.as_deref());
            rows.create_date.push(sent_at.date());
            rows.sent_at.push(sent_at);
        }
        Ok(rows)
    }

    pub fn len(&self) -> usize {
        self.message_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.message_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::sqs::SqsMessage;
    use crypto_box::aead::OsRng;
    use login_etl_core::batch;
    use login_etl_core::mask::{MaskedField, Masker, MaskingKey};
    use login_etl_core::testing::redriven;
    use login_etl_core::vault::{BatchSealer, VaultSecretKey};
    use sqs_batch::testing::message;

    fn masker() -> Masker {
        Masker::hmac(&MaskingKey::from_hex(&"11".repeat(32)).expect("key"))
    }

    fn plan(records: &[SqsMessage], sealer: Option<&mut BatchSealer>) -> batch::LoginPlan {
        batch::plan(records, &masker(), sealer).expect("plan")
    }

    fn rows(plan: &batch::LoginPlan) -> LoginRows<'_> {
        LoginRows::from_accepted(plan.contract.accepted()).expect("rows")
    }

    const GOOD: &str = r#"{"user_id":"u1","ip":"10.0.0.1","device_id":"d-1","locale":null,"app_version":"0.96"}"#;

    #[test]
    fn rows_are_masked_and_dated_by_sent_timestamp() {
        let masker = masker();
        let plan = plan(&[message("a", GOOD), message("bad", "[]")], None);
        let rows = rows(&plan);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows.message_id, ["a"]);
        assert_eq!(rows.masked_ip[0], Some(masker.mask(MaskedField::Ip, "10.0.0.1").as_str()));
        assert_eq!(rows.masked_device_id[0], Some(masker.mask(MaskedField::DeviceId, "d-1").as_str()));
        assert_eq!(rows.locale[0], None);
        assert_eq!(rows.app_version[0], Some("0.96"));
        // sqs_batch::testing::SENT.
        assert_eq!(rows.create_date[0], time::macros::date!(2026 - 11 - 23));
        assert_eq!(rows.sent_at[0], time::macros::datetime!(2026-11-23 02:13:20 UTC));
        assert_eq!(rows.masking_mode, MaskingMode::Hmac);
        assert_eq!(rows.masking_key_id, masker.key_id());
        assert_eq!(rows.vault, None);
    }

    #[test]
    fn a_replayed_login_is_stored_under_its_first_identity_and_dated_by_its_first_time() {
        let redriven = redriven(message("new-sqs-id", GOOD), "first-id", 1_795_000_000_000);
        let plan = plan(&[redriven], None);
        let rows = rows(&plan);
        assert_eq!(rows.message_id, ["first-id"]);
        assert_eq!(rows.sent_at[0], time::macros::datetime!(2026-11-18 11:06:40 UTC));
        assert_eq!(rows.create_date[0], time::macros::date!(2026 - 11 - 18));
    }

    /// Which originals the vault gets (each distinct one once) is the core's rule, tested there;
    /// the rows carry what was sealed, field by field, under the batch's key id.
    #[test]
    fn the_vault_rows_hold_each_sealed_original() {
        let secret = VaultSecretKey::generate(&mut OsRng);
        let mut sealer = BatchSealer::new(&secret.public_key(), OsRng);
        let records = [message("a", r#"{"user_id":"u","ip":"10.0.0.1","device_id":"d-1"}"#)];
        let plan = plan(&records, Some(&mut sealer));
        let rows = rows(&plan);
        let vault = rows.vault.clone().expect("vault rows");
        assert_eq!(vault.field, ["ip", "device_id"]);
        assert_eq!(vault.key_id, secret.public_key().key_id());
        let opened: Vec<String> = (0..vault.len())
            .map(|i| {
                let field = MaskedField::from_name(vault.field[i]).expect("a known field");
                secret.open(field, vault.masked_value[i], vault.sealed[i]).expect("opens")
            })
            .collect();
        assert_eq!(opened, ["10.0.0.1", "d-1"]);
        assert_eq!(vault.masked_value[0], rows.masked_ip[0].expect("masked"));
    }
}
