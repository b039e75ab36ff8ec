//! Masking of personal fields: one-way, deterministic, and keyed.
//!
//! Deterministic so that analysts can still count distinct devices and addresses and join on
//! them; keyed (HMAC-SHA256) because a plain hash of an IPv4 address is reversed by hashing all
//! 2^32 addresses. The field name is bound into the input, so the same string in `ip` and in
//! `device_id` masks to unrelated values.

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The shortest key accepted: the HMAC-SHA256 output size, as RFC 2104 recommends.
pub const MIN_KEY_BYTES: usize = 32;

/// A personal field that is stored only in masked form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MaskedField {
    Ip,
    DeviceId,
}

impl MaskedField {
    /// The message key and the vault's `field` value.
    pub const fn name(self) -> &'static str {
        match self {
            MaskedField::Ip => "ip",
            MaskedField::DeviceId => "device_id",
        }
    }

    /// The field a message key or vault `field` value names.
    pub fn from_name(name: &str) -> Option<MaskedField> {
        [MaskedField::Ip, MaskedField::DeviceId].into_iter().find(|field| field.name() == name)
    }

    /// The HMAC input prefix: the name and a NUL, which no field name contains.
    fn domain(self) -> &'static [u8] {
        match self {
            MaskedField::Ip => b"ip\0",
            MaskedField::DeviceId => b"device_id\0",
        }
    }
}

/// How values are masked; stored with every row so that values of different schemes are never
/// compared by mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaskingMode {
    /// `hex(HMAC-SHA256(key, field || 0x00 || value))`. The default.
    #[default]
    Hmac,
    /// `hex(SHA-256(value))`: the seed design's scheme, kept only as an explicit opt-in for
    /// compatibility with data masked that way. Reversible by brute force for IPv4.
    Sha256,
}

impl MaskingMode {
    /// The name used in `MASKING_MODE` and in the `masking_scheme` column.
    pub const fn name(self) -> &'static str {
        match self {
            MaskingMode::Hmac => "hmac-sha256",
            MaskingMode::Sha256 => "sha256",
        }
    }
}

impl fmt::Display for MaskingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for MaskingMode {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "hmac" | "hmac-sha256" => Ok(MaskingMode::Hmac),
            "sha256" => Ok(MaskingMode::Sha256),
            _ => Err(KeyError::UnknownMode),
        }
    }
}

/// Why a masking key or mode was refused. Never includes the key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the masking key is not hexadecimal")]
    NotHex,
    #[error("the masking key has {0} bytes; at least {MIN_KEY_BYTES} are required")]
    TooShort(usize),
    #[error("the masking mode must be `hmac` or `sha256`")]
    UnknownMode,
}

/// Secret key material for HMAC masking. Its `Debug` output is redacted.
#[derive(Clone)]
pub struct MaskingKey(Vec<u8>);

impl MaskingKey {
    /// Decodes a hex key (upper or lower case, surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let bytes = hex::decode(text.trim()).map_err(|_| KeyError::NotHex)?;
        if bytes.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort(bytes.len()));
        }
        Ok(MaskingKey(bytes))
    }

    /// The key as hex, as `MASKING_KEY` and the masking-key secret hold it.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// A short, non-secret fingerprint (first 8 hex digits of SHA-256 of the key), so operators
    /// can tell which key an instance runs with without seeing it.
    pub fn fingerprint(&self) -> String {
        hex::encode(&Sha256::digest(&self.0)[..4])
    }
}

impl fmt::Debug for MaskingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MaskingKey(fingerprint {})", self.fingerprint())
    }
}

/// Masks field values. Built once per instance; cheap to use per record.
#[derive(Clone)]
pub struct Masker {
    scheme: Scheme,
}

// One `Masker` exists per instance, so the size difference between variants costs nothing,
// while boxing the HMAC states would add an allocation per masked value.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum Scheme {
    /// One HMAC state per field, already keyed and fed the field's domain prefix, so each record
    /// costs only a clone and the hashing of its own value.
    Hmac {
        ip: HmacSha256,
        device_id: HmacSha256,
    },
    Sha256,
}

impl Masker {
    /// The default, keyed scheme.
    pub fn hmac(key: &MaskingKey) -> Self {
        let keyed = |field: MaskedField| {
            // `new_from_slice` accepts keys of any length for HMAC, so this cannot fail.
            let mut mac = <HmacSha256 as Mac>::new_from_slice(&key.0).expect("HMAC accepts any key length");
            mac.update(field.domain());
            mac
        };
        Masker { scheme: Scheme::Hmac { ip: keyed(MaskedField::Ip), device_id: keyed(MaskedField::DeviceId) } }
    }

    /// The unkeyed compatibility scheme (`MASKING_MODE=sha256`).
    pub fn sha256_compat() -> Self {
        Masker { scheme: Scheme::Sha256 }
    }

    pub fn mode(&self) -> MaskingMode {
        match self.scheme {
            Scheme::Hmac { .. } => MaskingMode::Hmac,
            Scheme::Sha256 => MaskingMode::Sha256,
        }
    }

    /// Masks one value to 64 lowercase hex digits.
    pub fn mask(&self, field: MaskedField, value: &str) -> String {
        let digest = match &self.scheme {
            Scheme::Hmac { ip, device_id } => {
                let mut mac = match field {
                    MaskedField::Ip => ip.clone(),
                    MaskedField::DeviceId => device_id.clone(),
                };
                mac.update(value.as_bytes());
                mac.finalize().into_bytes()
            }
            Scheme::Sha256 => Sha256::digest(value.as_bytes()),
        };
        hex::encode(digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_key() -> MaskingKey {
        MaskingKey::from_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f").expect("key")
    }

    /// Vectors computed independently with Python's `hmac` and `hashlib`.
    #[test]
    fn hmac_known_vectors() {
        let masker = Masker::hmac(&test_key());
        assert_eq!(
            masker.mask(MaskedField::Ip, "199.172.111.135"),
            "61aaf25c82f9162ffb0b2ba7fbc3e3b9460cef9c1c36aea5441af2c967bea2d3"
        );
        assert_eq!(
            masker.mask(MaskedField::DeviceId, "593-47-5928"),
            "b59d0ef6ed549c7cc046c31bf1121e9c8d19c54bcc1d499e18342e59bc0eba0a"
        );
        assert_eq!(
            masker.mask(MaskedField::Ip, "593-47-5928"),
            "dd6948751b7983bb092a0f1297d3c3eaf7e88caf2f9681c611fa2094b7dad924"
        );
    }

    #[test]
    fn sha256_known_vectors() {
        let masker = Masker::sha256_compat();
        assert_eq!(
            masker.mask(MaskedField::Ip, "199.172.111.135"),
            "a6d0e2f27f6111e10b06790db42f34123e724aa0fd24b280f4a0ef5ee986784c"
        );
        assert_eq!(
            masker.mask(MaskedField::DeviceId, "593-47-5928"),
            "4f00c1a807b673887c7af517d0df68e6b41aecf8cbec26c71fe4c580664669ed"
        );
    }

    #[test]
    fn field_binding_separates_equal_values() {
        let masker = Masker::hmac(&test_key());
        assert_ne!(masker.mask(MaskedField::Ip, "same"), masker.mask(MaskedField::DeviceId, "same"));
    }

    #[test]
    fn masking_is_deterministic_and_key_dependent() {
        let masker = Masker::hmac(&test_key());
        assert_eq!(masker.mask(MaskedField::Ip, "10.0.0.1"), masker.mask(MaskedField::Ip, "10.0.0.1"));
        let other = Masker::hmac(&MaskingKey::from_hex(&"ab".repeat(32)).expect("key"));
        assert_ne!(masker.mask(MaskedField::Ip, "10.0.0.1"), other.mask(MaskedField::Ip, "10.0.0.1"));
    }

    #[test]
    fn keys_are_validated() {
        assert_eq!(MaskingKey::from_hex("zz").err(), Some(KeyError::NotHex));
        assert_eq!(MaskingKey::from_hex(&"ab".repeat(31)).err(), Some(KeyError::TooShort(31)));
        assert!(MaskingKey::from_hex(&format!(" {}\n", "AB".repeat(32))).is_ok());
    }

    #[test]
    fn debug_does_not_reveal_the_key() {
        let text = format!("{:?}", MaskingKey::from_hex(&"ab".repeat(32)).expect("key"));
        assert!(!text.contains("abab"), "{text}");
    }

    #[test]
    fn modes_parse() {
        assert_eq!("hmac".parse(), Ok(MaskingMode::Hmac));
        assert_eq!("SHA256".parse(), Ok(MaskingMode::Sha256));
        assert_eq!("md5".parse::<MaskingMode>(), Err(KeyError::UnknownMode));
    }
}
