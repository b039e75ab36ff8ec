//! The PII vault's cryptography: originals are encrypted to a public key, so the function can
//! write them but never read them back; only the holder of the private key can recover.
//!
//! Construction (one "batch envelope"): per batch, one ephemeral X25519 key pair; per value, a
//! random 24-byte nonce and XChaCha20-Poly1305 under the X25519 shared secret (RustCrypto's
//! `crypto_box::ChaChaBox`). This is the sealed-box idea with the ephemeral key shared by the
//! values of one batch: one Diffie-Hellman per batch instead of two per value, which keeps a
//! 10,000-record batch cheap. The ephemeral secret is dropped when the batch is sealed, so
//! nothing the function keeps can decrypt.
//!
//! Stored bytes: `version (1) || ephemeral public key (32) || nonce (24) || ciphertext`.
//! The plaintext is `masked value || 0x00 || field || 0x00 || original`; recovery checks the
//! masked value and field against the row it was asked for, so a ciphertext copied onto
//! another row is detected rather than misattributed.

use crypto_box::aead::rand_core::CryptoRngCore;
use crypto_box::aead::{Aead, AeadCore};
use crypto_box::{ChaChaBox, PublicKey, SecretKey};
use sha2::{Digest, Sha256};

use crate::mask::MaskedField;

const FORMAT_VERSION: u8 = 1;
const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("the vault key is not 32 bytes of hex")]
    InvalidKey,
    #[error("the sealed value is truncated or of an unknown format")]
    Malformed,
    #[error("the sealed value cannot be opened with this private key (wrong key, or tampered)")]
    WrongKeyOrTampered,
    #[error("the sealed value belongs to another row")]
    Mismatch,
    #[error("encrypting a value for the vault failed")]
    Encryption,
}

/// The recipients' public key: all the function holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultPublicKey(PublicKey);

impl VaultPublicKey {
    pub fn from_hex(text: &str) -> Result<Self, VaultError> {
        Ok(VaultPublicKey(PublicKey::from_bytes(key_bytes(text)?)))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    /// Names the key pair in each vault row (first 8 hex digits of SHA-256 of the public key),
    /// so a rotation knows which private key opens which row.
    pub fn key_id(&self) -> String {
        hex::encode(&Sha256::digest(self.0.as_bytes())[..4])
    }
}

/// The private key, held only by the people allowed to recover. `Debug` is redacted.
#[derive(Clone)]
pub struct VaultSecretKey(SecretKey);

impl VaultSecretKey {
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        VaultSecretKey(SecretKey::generate(rng))
    }

    pub fn from_hex(text: &str) -> Result<Self, VaultError> {
        Ok(VaultSecretKey(SecretKey::from_bytes(key_bytes(text)?)))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    pub fn public_key(&self) -> VaultPublicKey {
        VaultPublicKey(self.0.public_key())
    }

    /// Decrypts a value sealed for `field` under `masked_value`.
    pub fn open(&self, field: MaskedField, masked_value: &str, sealed: &[u8]) -> Result<String, VaultError> {
        let (&version, rest) = sealed.split_first().ok_or(VaultError::Malformed)?;
        if version != FORMAT_VERSION || rest.len() < KEY_BYTES + NONCE_BYTES {
            return Err(VaultError::Malformed);
        }
        let (ephemeral, rest) = rest.split_at(KEY_BYTES);
        let (nonce, ciphertext) = rest.split_at(NONCE_BYTES);
        let ephemeral = PublicKey::from_slice(ephemeral).map_err(|_| VaultError::Malformed)?;
        let plaintext = ChaChaBox::new(&ephemeral, &self.0)
            .decrypt(nonce.into(), ciphertext)
            .map_err(|_| VaultError::WrongKeyOrTampered)?;
        let expected_prefix = binding(field, masked_value);
        let original = plaintext.strip_prefix(expected_prefix.as_slice()).ok_or(VaultError::Mismatch)?;
        String::from_utf8(original.to_vec()).map_err(|_| VaultError::Malformed)
    }
}

impl std::fmt::Debug for VaultSecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VaultSecretKey(public {})", self.public_key().key_id())
    }
}

/// Seals the values of one batch. Create one per batch and drop it after.
pub struct BatchSealer {
    ephemeral_public: [u8; KEY_BYTES],
    cipher: ChaChaBox,
    key_id: String,
    rng: Box<dyn CryptoRngCore + Send>,
    /// Makes every encryption fail, so tests can see that a failure is loud.
    #[cfg(test)]
    fail_encryption: bool,
}

impl BatchSealer {
    /// `rng` must be a cryptographic generator (the adapter passes the OS generator).
    pub fn new(recipient: &VaultPublicKey, mut rng: impl CryptoRngCore + Send + 'static) -> Self {
        let ephemeral = SecretKey::generate(&mut rng);
        BatchSealer {
            ephemeral_public: *ephemeral.public_key().as_bytes(),
            cipher: ChaChaBox::new(&recipient.0, &ephemeral),
            key_id: recipient.key_id(),
            rng: Box::new(rng),
            #[cfg(test)]
            fail_encryption: false,
        }
    }

    /// A sealer whose every encryption fails.
    #[cfg(test)]
    pub(crate) fn failing(recipient: &VaultPublicKey) -> Self {
        BatchSealer { fail_encryption: true, ..BatchSealer::new(recipient, crypto_box::aead::OsRng) }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Encrypts `original`, bound to its field and masked value. Encryption with a valid key
    /// and nonce only fails for plaintexts beyond 256 GiB; should it ever fail, the batch
    /// fails with it rather than store a value nobody can recover.
    pub fn seal(&mut self, field: MaskedField, masked_value: &str, original: &str) -> Result<Vec<u8>, VaultError> {
        let nonce = ChaChaBox::generate_nonce(&mut *self.rng);
        let mut plaintext = binding(field, masked_value);
        plaintext.extend_from_slice(original.as_bytes());
        let ciphertext = self.encrypt(&nonce, &plaintext).map_err(|_| VaultError::Encryption)?;
        let mut sealed = Vec::with_capacity(1 + KEY_BYTES + NONCE_BYTES + ciphertext.len());
        sealed.push(FORMAT_VERSION);
        sealed.extend_from_slice(&self.ephemeral_public);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    fn encrypt(&self, nonce: &crypto_box::Nonce, plaintext: &[u8]) -> Result<Vec<u8>, crypto_box::aead::Error> {
        #[cfg(test)]
        if self.fail_encryption {
            return Err(crypto_box::aead::Error);
        }
        self.cipher.encrypt(nonce, plaintext)
    }
}

fn binding(field: MaskedField, masked_value: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(masked_value.len() + 16);
    bytes.extend_from_slice(masked_value.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(field.name().as_bytes());
    bytes.push(0);
    bytes
}

fn key_bytes(text: &str) -> Result<[u8; KEY_BYTES], VaultError> {
    let bytes = hex::decode(text.trim()).map_err(|_| VaultError::InvalidKey)?;
    bytes.try_into().map_err(|_| VaultError::InvalidKey)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto_box::aead::OsRng;

    #[test]
    fn round_trip() {
        let secret = VaultSecretKey::generate(&mut OsRng);
        let mut sealer = BatchSealer::new(&secret.public_key(), OsRng);
        let sealed = sealer.seal(MaskedField::Ip, "abc123", "199.172.111.135").expect("sealed");
        assert!(!sealed.windows(15).any(|w| w == b"199.172.111.135"), "ciphertext must not contain the original");
        assert_eq!(secret.open(MaskedField::Ip, "abc123", &sealed), Ok("199.172.111.135".to_string()));
    }

    #[test]
    fn every_value_gets_its_own_nonce() {
        let secret = VaultSecretKey::generate(&mut OsRng);
        let mut sealer = BatchSealer::new(&secret.public_key(), OsRng);
        let a = sealer.seal(MaskedField::DeviceId, "m", "same").expect("sealed");
        let b = sealer.seal(MaskedField::DeviceId, "m", "same").expect("sealed");
        assert_ne!(a, b);
        assert_eq!(a[..1 + KEY_BYTES], b[..1 + KEY_BYTES], "one ephemeral key per batch");
    }

    #[test]
    fn the_wrong_key_fails_cleanly() {
        let secret = VaultSecretKey::generate(&mut OsRng);
        let other = VaultSecretKey::generate(&mut OsRng);
        let sealed =
            BatchSealer::new(&secret.public_key(), OsRng).seal(MaskedField::Ip, "m", "10.0.0.1").expect("sealed");
        assert_eq!(other.open(MaskedField::Ip, "m", &sealed), Err(VaultError::WrongKeyOrTampered));
    }

    #[test]
    fn tampering_and_row_swaps_are_detected() {
        let secret = VaultSecretKey::generate(&mut OsRng);
        let mut sealed =
            BatchSealer::new(&secret.public_key(), OsRng).seal(MaskedField::Ip, "m1", "10.0.0.1").expect("sealed");
        assert_eq!(secret.open(MaskedField::Ip, "m2", &sealed), Err(VaultError::Mismatch));
        assert_eq!(secret.open(MaskedField::DeviceId, "m1", &sealed), Err(VaultError::Mismatch));
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(secret.open(MaskedField::Ip, "m1", &sealed), Err(VaultError::WrongKeyOrTampered));
        assert_eq!(secret.open(MaskedField::Ip, "m1", &sealed[..10]), Err(VaultError::Malformed));
        assert_eq!(secret.open(MaskedField::Ip, "m1", &[]), Err(VaultError::Malformed));
    }

    #[test]
    fn keys_round_trip_through_hex() {
        let secret = VaultSecretKey::generate(&mut OsRng);
        let again = VaultSecretKey::from_hex(&secret.to_hex()).expect("hex");
        assert_eq!(again.public_key(), secret.public_key());
        assert_eq!(VaultPublicKey::from_hex(&secret.public_key().to_hex()), Ok(secret.public_key()));
        assert_eq!(VaultPublicKey::from_hex("abcd").err(), Some(VaultError::InvalidKey));
        assert!(!format!("{secret:?}").contains(&secret.to_hex()));
    }

    #[test]
    fn a_failed_encryption_is_an_error_not_an_empty_ciphertext() {
        let secret = VaultSecretKey::generate(&mut OsRng);
        let mut sealer = BatchSealer::failing(&secret.public_key());
        assert_eq!(sealer.seal(MaskedField::Ip, "m", "10.0.0.1"), Err(VaultError::Encryption));
    }
}
