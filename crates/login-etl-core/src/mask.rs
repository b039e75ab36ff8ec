//! Masking of personal fields: one-way, deterministic, and keyed.
//!
//! Deterministic so that analysts can still count distinct devices and addresses and join on
//! them; keyed (HMAC-SHA256) because a plain hash of an IPv4 address is reversed by hashing all
//! 2^32 addresses. The field name is bound into the input, so the same string in `ip` and in
//! `device_id` masks to unrelated values.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::policy::{ExtraFields, FieldPolicy};

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

/// What is stored of an `ip` (`MASKING_IP`): its pseudonym (the default), its pseudonym and a
/// truncated prefix beside it, or the prefix instead of the pseudonym. The prefix is for
/// analysts who group by network or region, which a pseudonym of the whole address hides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpTreatment {
    /// `masked_ip` only. The default.
    #[default]
    Masked,
    /// `masked_ip` and `ip_prefix`.
    MaskedAndPrefix,
    /// `ip_prefix` only: no pseudonym, so no join on the whole address, and no vault original.
    Prefix,
}

impl IpTreatment {
    /// The name used in `MASKING_IP`.
    pub const fn name(self) -> &'static str {
        match self {
            IpTreatment::Masked => "masked",
            IpTreatment::MaskedAndPrefix => "masked+prefix",
            IpTreatment::Prefix => "prefix",
        }
    }

    /// Whether `masked_ip` is stored.
    pub const fn keeps_mask(self) -> bool {
        !matches!(self, IpTreatment::Prefix)
    }

    /// Whether `ip_prefix` is stored.
    pub const fn keeps_prefix(self) -> bool {
        !matches!(self, IpTreatment::Masked)
    }
}

impl FromStr for IpTreatment {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "masked" => Ok(IpTreatment::Masked),
            "masked+prefix" => Ok(IpTreatment::MaskedAndPrefix),
            "prefix" => Ok(IpTreatment::Prefix),
            _ => Err(KeyError::UnknownIpTreatment),
        }
    }
}

/// How many leading bits of an address `ip_prefix` keeps (`MASKING_IP_PREFIX`, e.g. `24,48`):
/// the rest are zeroed. IPv4 /24 (256 addresses) and IPv6 /48 (a site) by default, as analytics
/// tools commonly truncate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPrefixLengths {
    v4: u8,
    v6: u8,
}

impl Default for IpPrefixLengths {
    fn default() -> Self {
        IpPrefixLengths { v4: 24, v6: 48 }
    }
}

impl IpPrefixLengths {
    /// Lengths in bits: IPv4 0–32, IPv6 0–128.
    pub fn new(v4: u8, v6: u8) -> Result<Self, KeyError> {
        if v4 > 32 || v6 > 128 {
            return Err(KeyError::InvalidIpPrefix);
        }
        Ok(IpPrefixLengths { v4, v6 })
    }

    pub fn v4(self) -> u8 {
        self.v4
    }

    pub fn v6(self) -> u8 {
        self.v6
    }

    /// `ip`'s network at these lengths, as PostgreSQL's `cidr` reads it: `203.0.113.0/24`,
    /// `2001:db8:85a3::/48`. Host bits are zeroed here, in the core: the whole address never
    /// leaves it.
    pub fn truncate(self, ip: IpAddr) -> String {
        match ip {
            IpAddr::V4(v4) => {
                let bits = u32::from(v4) & u32::MAX.checked_shl(32 - u32::from(self.v4)).unwrap_or(0);
                format!("{}/{}", std::net::Ipv4Addr::from(bits), self.v4)
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & u128::MAX.checked_shl(128 - u32::from(self.v6)).unwrap_or(0);
                format!("{}/{}", std::net::Ipv6Addr::from(bits), self.v6)
            }
        }
    }
}

impl FromStr for IpPrefixLengths {
    type Err = KeyError;

    /// `V4,V6`, e.g. `24,48`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (v4, v6) = text.split_once(',').ok_or(KeyError::InvalidIpPrefix)?;
        let bits =
            |text: &str| text.trim().trim_start_matches('/').parse::<u8>().map_err(|_| KeyError::InvalidIpPrefix);
        IpPrefixLengths::new(bits(v4)?, bits(v6)?)
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
    #[error("must be `masked`, `masked+prefix` or `prefix`")]
    UnknownIpTreatment,
    #[error("must be two prefix lengths, IPv4 then IPv6, such as `24,48` (IPv4 0–32, IPv6 0–128)")]
    InvalidIpPrefix,
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

    /// The key's id: the first 4 bytes of `HMAC-SHA256(key, "login-etl masking key id")`,
    /// stored with every row it masked (`masking_key_id`) and logged at start-up, so rows of
    /// two keys are told apart after a rotation. Non-secret: 32 bits of a keyed hash of a
    /// fixed label say nothing of the key or of any masked value, and no value masks to it
    /// (masking binds a field name and a NUL before the value; the label has neither).
    pub fn key_id(&self) -> KeyId {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.0).expect("HMAC accepts any key length");
        mac.update(KEY_ID_LABEL);
        let digest = mac.finalize().into_bytes();
        KeyId([digest[0], digest[1], digest[2], digest[3]])
    }

    /// [`MaskingKey::key_id`] as text: what the start-up log line calls the key's fingerprint.
    pub fn fingerprint(&self) -> String {
        self.key_id().to_string()
    }
}

/// What [`MaskingKey::key_id`] is computed over.
const KEY_ID_LABEL: &[u8] = b"login-etl masking key id";

/// A masking key's short, non-secret id ([`MaskingKey::key_id`]): 8 lowercase hex digits.
/// `Copy`, so every masked login carries it at no cost.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; 4]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a:02x}{b:02x}{c:02x}{d:02x}")
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl fmt::Debug for MaskingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MaskingKey(key id {})", self.key_id())
    }
}

/// Masks field values. Built once per instance; cheap to use per record.
#[derive(Clone)]
pub struct Masker {
    scheme: Scheme,
    /// The key's id (`None` for the unkeyed scheme), stored with every row.
    key_id: Option<KeyId>,
    /// What is stored of an `ip`, and at which prefix lengths.
    ip: IpTreatment,
    ip_prefix: IpPrefixLengths,
    /// The field policy: the built-in fields' rules, and the fields it declares beyond them
    /// with what is stored of each.
    policy: Arc<FieldPolicy>,
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
        /// Keyed only, for the extras a policy declares masked (each adds its own name).
        key: HmacSha256,
    },
    Sha256,
}

impl Masker {
    /// The default, keyed scheme.
    pub fn hmac(key: &MaskingKey) -> Self {
        // `new_from_slice` accepts keys of any length for HMAC, so this cannot fail.
        let keyed_only = <HmacSha256 as Mac>::new_from_slice(&key.0).expect("HMAC accepts any key length");
        let keyed = |field: MaskedField| {
            let mut mac = keyed_only.clone();
            mac.update(field.domain());
            mac
        };
        Masker {
            scheme: Scheme::Hmac {
                ip: keyed(MaskedField::Ip),
                device_id: keyed(MaskedField::DeviceId),
                key: keyed_only.clone(),
            },
            key_id: Some(key.key_id()),
            ip: IpTreatment::default(),
            ip_prefix: IpPrefixLengths::default(),
            policy: Arc::new(FieldPolicy::published()),
        }
    }

    /// The unkeyed compatibility scheme (`MASKING_MODE=sha256`).
    pub fn sha256_compat() -> Self {
        Masker {
            scheme: Scheme::Sha256,
            key_id: None,
            ip: IpTreatment::default(),
            ip_prefix: IpPrefixLengths::default(),
            policy: Arc::new(FieldPolicy::published()),
        }
    }

    /// The same masker, reading fields by `policy`'s rules and storing the extras it declares.
    pub fn with_policy(self, policy: &FieldPolicy) -> Self {
        Masker { policy: Arc::new(policy.clone()), ..self }
    }

    /// The field policy records are read by.
    pub fn policy(&self) -> &FieldPolicy {
        &self.policy
    }

    /// The fields the policy declares beyond the built-in six.
    pub fn extras(&self) -> &ExtraFields {
        &self.policy.extras
    }

    /// Masks a declared extra's value: `hex(HMAC-SHA256(key, name || 0x00 || value))`, the
    /// built-in fields' construction under the extra's own name (or the unkeyed scheme's
    /// SHA-256). Per record only for fields a policy declares masked.
    pub fn mask_named(&self, name: &str, value: &str) -> String {
        let digest = match &self.scheme {
            Scheme::Hmac { key, .. } => {
                let mut mac = key.clone();
                mac.update(name.as_bytes());
                mac.update(b"\0");
                mac.update(value.as_bytes());
                mac.finalize().into_bytes()
            }
            Scheme::Sha256 => Sha256::digest(value.as_bytes()),
        };
        hex::encode(digest)
    }

    /// The same masker, storing `treatment` of an `ip` (a prefix at `lengths`).
    pub fn with_ip(self, treatment: IpTreatment, lengths: IpPrefixLengths) -> Self {
        Masker { ip: treatment, ip_prefix: lengths, ..self }
    }

    pub fn ip_treatment(&self) -> IpTreatment {
        self.ip
    }

    /// `ip`'s stored prefix, when the treatment keeps one.
    pub fn ip_prefix(&self, ip: IpAddr) -> Option<String> {
        self.ip.keeps_prefix().then(|| self.ip_prefix.truncate(ip))
    }

    /// The id of the key that masks (`None`: the unkeyed scheme has no key).
    pub fn key_id(&self) -> Option<KeyId> {
        self.key_id
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
            Scheme::Hmac { ip, device_id, .. } => {
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

    /// Vectors computed independently with Python's `hmac` and `hashlib`: the masker, the field,
    /// the value and its mask.
    #[test]
    fn known_vectors() {
        let hmac = Masker::hmac(&test_key());
        let sha256 = Masker::sha256_compat();
        let vectors = [
            (
                &hmac,
                MaskedField::Ip,
                "199.172.111.135",
                "61aaf25c82f9162ffb0b2ba7fbc3e3b9460cef9c1c36aea5441af2c967bea2d3",
            ),
            (
                &hmac,
                MaskedField::DeviceId,
                "593-47-5928",
                "b59d0ef6ed549c7cc046c31bf1121e9c8d19c54bcc1d499e18342e59bc0eba0a",
            ),
            (&hmac, MaskedField::Ip, "593-47-5928", "dd6948751b7983bb092a0f1297d3c3eaf7e88caf2f9681c611fa2094b7dad924"),
            (
                &sha256,
                MaskedField::Ip,
                "199.172.111.135",
                "a6d0e2f27f6111e10b06790db42f34123e724aa0fd24b280f4a0ef5ee986784c",
            ),
            (
                &sha256,
                MaskedField::DeviceId,
                "593-47-5928",
                "4f00c1a807b673887c7af517d0df68e6b41aecf8cbec26c71fe4c580664669ed",
            ),
        ];
        for (masker, field, value, expected) in vectors {
            assert_eq!(masker.mask(field, value), expected, "{field:?} {value}");
        }
    }

    /// An extra masked under its own name is the built-in construction: `ip` by name masks as
    /// `MaskedField::Ip` does.
    #[test]
    fn extras_mask_by_their_own_name() {
        let masker = Masker::hmac(&test_key());
        assert_eq!(masker.mask_named("ip", "199.172.111.135"), masker.mask(MaskedField::Ip, "199.172.111.135"));
        assert_ne!(masker.mask_named("session_id", "s-1"), masker.mask_named("other_id", "s-1"));
        assert_eq!(Masker::sha256_compat().mask_named("x", "v"), Masker::sha256_compat().mask(MaskedField::Ip, "v"));
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

    /// Computed independently: `hmac.new(bytes(range(32)), b"login-etl masking key id",
    /// sha256).hexdigest()[:8]` in Python.
    #[test]
    fn the_key_id_is_a_truncated_hmac_of_a_fixed_label() {
        assert_eq!(test_key().key_id().to_string(), KEY_ID_VECTOR);
        assert_eq!(Masker::hmac(&test_key()).key_id(), Some(test_key().key_id()));
        assert_eq!(Masker::sha256_compat().key_id(), None);
        let other = MaskingKey::from_hex(&"ab".repeat(32)).expect("key");
        assert_ne!(other.key_id(), test_key().key_id());
        assert_eq!(test_key().fingerprint(), KEY_ID_VECTOR, "the log's fingerprint is the rows' key id");
    }

    const KEY_ID_VECTOR: &str = "0d6b6cdd";

    #[test]
    fn debug_does_not_reveal_the_key() {
        let text = format!("{:?}", MaskingKey::from_hex(&"ab".repeat(32)).expect("key"));
        assert!(!text.contains("abab"), "{text}");
    }

    #[test]
    fn prefixes_keep_the_leading_bits_only() {
        let ip = |text: &str| text.parse::<IpAddr>().expect("ip");
        let default = IpPrefixLengths::default();
        let cases = [
            (default, "199.172.111.135", "199.172.111.0/24"),
            (default, "2001:db8:85a3:8d3:1319:8a2e:370:7348", "2001:db8:85a3::/48"),
            (default, "::1", "::/48"),
            (IpPrefixLengths::new(16, 64).expect("lengths"), "199.172.111.135", "199.172.0.0/16"),
            (IpPrefixLengths::new(16, 64).expect("lengths"), "2001:db8:85a3:8d3:1319::1", "2001:db8:85a3:8d3::/64"),
            (IpPrefixLengths::new(0, 0).expect("lengths"), "199.172.111.135", "0.0.0.0/0"),
            (IpPrefixLengths::new(32, 128).expect("lengths"), "199.172.111.135", "199.172.111.135/32"),
            (IpPrefixLengths::new(20, 48).expect("lengths"), "10.0.255.255", "10.0.240.0/20"),
        ];
        for (lengths, given, expected) in cases {
            assert_eq!(lengths.truncate(ip(given)), expected, "{given} at {lengths:?}");
        }
    }

    #[test]
    fn ip_treatments_and_prefix_lengths_parse() {
        assert_eq!("masked+prefix".parse(), Ok(IpTreatment::MaskedAndPrefix));
        assert_eq!(" Prefix ".parse(), Ok(IpTreatment::Prefix));
        assert_eq!("hash".parse::<IpTreatment>(), Err(KeyError::UnknownIpTreatment));
        assert_eq!("24,48".parse(), IpPrefixLengths::new(24, 48));
        assert_eq!("/16, /56".parse(), IpPrefixLengths::new(16, 56));
        for bad in ["24", "33,48", "24,129", "a,b", ""] {
            assert_eq!(bad.parse::<IpPrefixLengths>(), Err(KeyError::InvalidIpPrefix), "{bad}");
        }
        let masker = Masker::hmac(&test_key());
        assert_eq!(masker.ip_prefix("10.1.2.3".parse().expect("ip")), None, "off by default");
        let both = masker.with_ip(IpTreatment::MaskedAndPrefix, IpPrefixLengths::default());
        assert_eq!(both.ip_prefix("10.1.2.3".parse().expect("ip")).as_deref(), Some("10.1.2.0/24"));
    }

    #[test]
    fn modes_parse() {
        assert_eq!("hmac".parse(), Ok(MaskingMode::Hmac));
        assert_eq!("SHA256".parse(), Ok(MaskingMode::Sha256));
        assert_eq!("md5".parse::<MaskingMode>(), Err(KeyError::UnknownMode));
    }
}
