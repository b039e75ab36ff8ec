//! Commands over the PII vault: `keygen` and `recover`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use anyhow::Context;

use super::{KeygenArgs, RecoverArgs};
use login_etl::{OperatorDb, SecretStore, VaultLookup};
use login_etl_core::mask::{MaskedField, Masker};
use login_etl_core::vault::VaultSecretKey;

/// Writes a new private key to `args.private_key_file` (mode 0600, never overwriting) and
/// prints its public key (for `VAULT_PUBLIC_KEY`) to `out`.
pub fn keygen(args: &KeygenArgs, out: &mut impl Write, notes: &mut impl Write) -> anyhow::Result<()> {
    let path = &args.private_key_file;
    let secret = VaultSecretKey::generate(&mut crypto_box::aead::OsRng);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {} (an existing key file is never overwritten)", path.display()))?;
    writeln!(file, "{}", secret.to_hex())?;
    let public = secret.public_key();
    writeln!(notes, "private key written to {} (key id {})", path.display(), public.key_id())?;
    writeln!(notes, "give the function the public key below as VAULT_PUBLIC_KEY:")?;
    writeln!(out, "{}", public.to_hex())?;
    Ok(())
}

/// The private key `recover` was given: a file, or a Secrets Manager secret.
pub(super) async fn private_key(args: &RecoverArgs) -> anyhow::Result<VaultSecretKey> {
    let secret_hex = match (&args.private_key_file, &args.private_key_secret_id) {
        (Some(path), _) => std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        (None, Some(id)) => SecretStore::from_env().await.secret_text(id).await?,
        (None, None) => anyhow::bail!("give --private-key-file or --private-key-secret-id"),
    };
    VaultSecretKey::from_hex(&secret_hex).context("the private key")
}

/// Prints the originals behind the masked values `args` names. A vault row counts only when
/// it opens with `secret` *and* its original masks (with `masker`) to the masked value it is
/// filed under: the vault is append-only and anyone holding the public key can seal a value,
/// so the rest (wrong key, tampered, planted) are counted on `notes`, not shown.
pub async fn recover(
    args: &RecoverArgs,
    secret: &VaultSecretKey,
    masker: &Masker,
    db: &OperatorDb,
    out: &mut impl Write,
    notes: &mut impl Write,
) -> anyhow::Result<()> {
    let lookup = match (&args.masked_ip, &args.masked_device_id, &args.user_id) {
        (Some(masked_value), _, _) => {
            VaultLookup::Masked { field: MaskedField::Ip, masked_value: masked_value.clone() }
        }
        (_, Some(masked_value), _) => {
            VaultLookup::Masked { field: MaskedField::DeviceId, masked_value: masked_value.clone() }
        }
        (_, _, Some(user)) => VaultLookup::UserId(user.clone()),
        _ => anyhow::bail!("give --masked-ip, --masked-device-id or --user-id"),
    };
    let values = db.sealed_values(&lookup).await?;
    if values.is_empty() {
        anyhow::bail!(
            "nothing in the vault for {lookup} (no login row has it, or the PII vault was off when it loaded)"
        );
    }
    let mut authentic = std::collections::BTreeSet::new();
    let mut rejected = 0usize;
    for value in &values {
        let opened = value.masked_field().map(|field| (field, secret.open(field, &value.masked_value, &value.sealed)));
        match opened {
            Some((field, Ok(original))) if masker.mask(field, &original) == value.masked_value => {
                authentic.insert((value.field.clone(), value.masked_value.clone(), original));
            }
            _ => rejected += 1,
        }
    }
    if rejected > 0 {
        writeln!(
            notes,
            "{rejected} of {} vault rows did not authenticate (another key, tampered, or not the original of \
             their masked value) and were skipped",
            values.len()
        )?;
    }
    if authentic.is_empty() {
        anyhow::bail!(
            "the {} vault rows for {lookup} cannot be opened with this private key into an original that masks \
             to their masked value (check the key, MASKING_KEY and the key id {})",
            values.len(),
            values.first().map(|v| v.key_id.as_str()).unwrap_or("?")
        );
    }
    for (field, masked_value, original) in authentic {
        writeln!(out, "{field:<9}  {masked_value}  {original}")?;
    }
    Ok(())
}
