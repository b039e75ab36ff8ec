//! Masking and the PII vault: the mode, the key's source, the IP treatment and the field
//! policy ([`MaskingConfig`]), and the vault's public key ([`VaultConfig`]).

use login_etl_core::mask::{IpPrefixLengths, IpTreatment, MaskingKey, MaskingMode};
use login_etl_core::vault::VaultPublicKey;

use super::{ConfigError, invalid};

/// Where the HMAC masking key comes from.
#[derive(Debug, Clone)]
pub enum MaskingKeySource {
    /// `MASKING_KEY`: hex, at least 32 bytes.
    Inline(MaskingKey),
    /// `MASKING_KEY_SECRET_ID`: a secret whose string is the hex key.
    Secret(String),
}

/// How personal fields are masked.
#[derive(Debug, Clone, Default)]
pub struct MaskingConfig {
    /// `MASKING_MODE`: `hmac` (default) or `sha256`.
    pub mode: MaskingMode,
    /// `MASKING_KEY` or `MASKING_KEY_SECRET_ID`; `None` when neither is set.
    pub key: Option<MaskingKeySource>,
    /// `MASKING_IP`: `masked` (default), `masked+prefix` or `prefix`.
    pub ip: IpTreatment,
    /// `MASKING_IP_PREFIX`: the prefix lengths, IPv4 then IPv6 (default `24,48`).
    pub ip_prefix: IpPrefixLengths,
    /// `FIELD_POLICY_FILE`: a JSON Schema with the field policy's annotations, read at start-up
    /// (default: the published schema, built in).
    pub field_policy_file: Option<String>,
}

impl MaskingConfig {
    /// The key source the mode needs: `Some` in `hmac` mode (or [`ConfigError::NoMaskingKey`]),
    /// `None` in the unkeyed `sha256` mode.
    pub fn require_key(&self) -> Result<Option<&MaskingKeySource>, ConfigError> {
        match (self.mode, &self.key) {
            (MaskingMode::Hmac, None) => Err(ConfigError::NoMaskingKey),
            (MaskingMode::Hmac, Some(key)) => Ok(Some(key)),
            (MaskingMode::Sha256, _) => Ok(None),
        }
    }
}

/// The PII vault.
#[derive(Debug, Clone, Default)]
pub struct VaultConfig {
    /// `VAULT_PUBLIC_KEY`: when set, originals are sealed to it into the PII vault.
    pub public_key: Option<VaultPublicKey>,
}

pub(super) fn masking(get: &impl Fn(&str) -> Option<String>) -> Result<MaskingConfig, ConfigError> {
    let mode = match get("MASKING_MODE") {
        None => MaskingMode::default(),
        Some(text) => {
            text.parse().map_err(|err: login_etl_core::mask::KeyError| invalid("MASKING_MODE", err.to_string()))?
        }
    };
    let key = match (get("MASKING_KEY"), get("MASKING_KEY_SECRET_ID")) {
        (Some(hex), None) => Some(MaskingKeySource::Inline(
            MaskingKey::from_hex(&hex).map_err(|err| invalid("MASKING_KEY", err.to_string()))?,
        )),
        (None, Some(id)) => Some(MaskingKeySource::Secret(id)),
        (None, None) => None,
        (Some(_), Some(_)) => return Err(ConfigError::TwoMaskingKeys),
    };
    let ip = match get("MASKING_IP") {
        None => IpTreatment::default(),
        Some(text) => {
            text.parse().map_err(|err: login_etl_core::mask::KeyError| invalid("MASKING_IP", err.to_string()))?
        }
    };
    let ip_prefix = match get("MASKING_IP_PREFIX") {
        None => IpPrefixLengths::default(),
        Some(text) => {
            text.parse().map_err(|err: login_etl_core::mask::KeyError| invalid("MASKING_IP_PREFIX", err.to_string()))?
        }
    };
    // An unkeyed hash beside a /24 prefix leaves 256 candidates per address: no mask at all.
    if mode == MaskingMode::Sha256 && ip == IpTreatment::MaskedAndPrefix {
        return Err(invalid(
            "MASKING_IP",
            "masked+prefix needs MASKING_MODE=hmac: beside its prefix an unkeyed SHA-256 of the address is reversed by \
             hashing the few addresses the prefix leaves",
        ));
    }
    let field_policy_file = get("FIELD_POLICY_FILE");
    Ok(MaskingConfig { mode, key, ip, ip_prefix, field_policy_file })
}
