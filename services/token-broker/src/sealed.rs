//! Private keys at rest: sealed with AES-256-GCM under `FA_SF_KEY_ENCRYPTION_KEY` before they
//! reach PostgreSQL, opened only in the token-broker's memory.
//!
//! Each [`Sealed`] value names the key that sealed it by a key id, so the encryption key can be
//! rotated: the new key becomes `FA_SF_KEY_ENCRYPTION_KEY`, the old one moves to
//! `FA_SF_KEY_ENCRYPTION_KEY_PREVIOUS`, old rows still open, and new seals use the new key.
//!
//! A private key is sealed with a [`Binding`] as additional authenticated data: the tenant,
//! login URL, username and consumer key it was registered with. A sealed key copied into
//! another tenant's row does not open, and neither does a row whose login URL, username or
//! consumer key was edited in the database: whoever can write the `connections` table cannot
//! make the broker sign an assertion for another user or send it to another host. Keys sealed
//! before the binding (the tenant id alone, [`Binding::legacy_aad`]) still open, and are sealed
//! again with their binding at their next token exchange.

use std::fmt;

use aws_lc_rs::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    rand::{SecureRandom as _, SystemRandom},
};
use secrecy::{ExposeSecretMut as _, SecretBox};

/// The key-encryption keys the token-broker knows: the one it seals with and older ones it
/// still opens with. `Debug` shows key ids only.
pub struct Keyring {
    current: SealingKey,
    previous: Vec<SealingKey>,
}

/// One AES-256-GCM key and its id.
pub struct SealingKey {
    id: String,
    key: LessSafeKey,
}

/// A sealed secret as stored: the id of the key that sealed it, and `nonce (12 bytes) ||
/// ciphertext || tag (16 bytes)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// [`SealingKey::id`] of the key that sealed `blob`.
    pub key_id: String,
    /// Nonce, ciphertext and tag.
    pub blob: Vec<u8>,
}

/// Why a sealed secret did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// No key of the keyring has this id.
    #[error(
        "the key was encrypted with key id {key_id}, which is neither FA_SF_KEY_ENCRYPTION_KEY nor one of \
         FA_SF_KEY_ENCRYPTION_KEY_PREVIOUS; restore that key"
    )]
    UnknownKey {
        /// The id the sealed value names.
        key_id: String,
    },
    /// The key with that id did not authenticate the blob: it was altered, truncated, or sealed
    /// for another tenant.
    #[error(
        "the sealed key does not open with the FA_SF_KEY_ENCRYPTION_KEY key of its key id: it was altered, \
         truncated, or copied from another tenant's row"
    )]
    Corrupt,
}

/// What a sealed private key belongs to: the registration's tenant, login URL, username and
/// consumer key.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// The tenant id.
    pub tenant: &'a str,
    /// The checked login URL.
    pub login_url: &'a str,
    /// The Salesforce username.
    pub username: &'a str,
    /// The Connected App's consumer key.
    pub consumer_key: &'a str,
}

impl Binding<'_> {
    /// The additional authenticated data: a version tag, then each field with its length in
    /// front (4 bytes, big-endian), so no two bindings give the same bytes.
    pub fn aad(&self) -> Vec<u8> {
        let fields = [self.tenant, self.login_url, self.username, self.consumer_key];
        let mut aad = Vec::with_capacity(16 + fields.iter().map(|f| f.len() + 4).sum::<usize>());
        aad.extend_from_slice(b"fa-sf-key-v2");
        for field in fields {
            aad.extend_from_slice(&u32::try_from(field.len()).unwrap_or(u32::MAX).to_be_bytes());
            aad.extend_from_slice(field.as_bytes());
        }
        aad
    }

    /// What keys sealed before the binding were sealed with: the tenant id alone.
    pub fn legacy_aad(&self) -> &[u8] {
        self.tenant.as_bytes()
    }
}

impl SealingKey {
    /// A key from its 32 bytes.
    pub fn new(bytes: &[u8; 32]) -> Self {
        Self { id: key_id(bytes), key: LessSafeKey::new(aes_256_gcm(bytes)) }
    }

    /// The first 16 hex digits of SHA-256(`fa-sf-kek-v1` || key): names the key without
    /// revealing it, so safe to store and log.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Keyring {
    /// A keyring that seals with `current` and also opens what `previous` sealed.
    pub fn new(current: &[u8; 32], previous: &[[u8; 32]]) -> Self {
        Self { current: SealingKey::new(current), previous: previous.iter().map(SealingKey::new).collect() }
    }

    /// The id of the key [`seal`](Self::seal) uses.
    pub fn current_id(&self) -> &str {
        self.current.id()
    }

    /// Whether a value sealed under `key_id` should be sealed again with the current key.
    pub fn is_current(&self, key_id: &str) -> bool {
        key_id == self.current.id
    }

    /// Seals `plaintext` with the current key and a fresh random nonce, binding `aad` (the
    /// tenant id) to it.
    ///
    /// # Panics
    /// Only if the system random generator fails (aws-lc aborts the process first).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Sealed {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).expect("the system random generator gives a nonce");

        let mut blob = Vec::with_capacity(NONCE_LEN + plaintext.len() + AES_256_GCM.tag_len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(plaintext);
        let tag = self
            .current
            .key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut blob[NONCE_LEN..])
            .expect("AES-256-GCM seals a private key");
        blob.extend_from_slice(tag.as_ref());
        Sealed { key_id: self.current.id.clone(), blob }
    }

    /// Opens what [`seal`](Self::seal) made under `key_id` with the same `aad`.
    pub fn open(&self, key_id: &str, blob: &[u8], aad: &[u8]) -> Result<SecretBox<Vec<u8>>, OpenError> {
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|key| key.id == key_id)
            .ok_or_else(|| OpenError::UnknownKey { key_id: key_id.to_owned() })?;
        if blob.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(OpenError::Corrupt);
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError::Corrupt)?;

        // Decrypted in place inside the secret box, so the plaintext never sits in an
        // unzeroized buffer.
        let mut opened = SecretBox::new(Box::new(sealed.to_vec()));
        let buffer = opened.expose_secret_mut();
        let len = key.key.open_in_place(nonce, Aad::from(aad), buffer).map_err(|_| OpenError::Corrupt)?.len();
        buffer.truncate(len);
        Ok(opened)
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring").field("current", &self.current).field("previous", &self.previous).finish()
    }
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealingKey").field("id", &self.id).field("key", &"[redacted]").finish()
    }
}

fn aes_256_gcm(bytes: &[u8; 32]) -> UnboundKey {
    UnboundKey::new(&AES_256_GCM, bytes).expect("32 bytes make an AES-256 key")
}

fn key_id(bytes: &[u8; 32]) -> String {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(b"fa-sf-kek-v1");
    context.update(bytes);
    context.finish().as_ref().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    const OLD: [u8; 32] = [7; 32];
    const NEW: [u8; 32] = [42; 32];
    const TENANT: &[u8] = b"0190a6c4-1f1e-7cc3-9d7e-5b0c4e1a2b3c";
    const PLAINTEXT: &[u8] = b"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n";

    fn opened(keyring: &Keyring, sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>, OpenError> {
        keyring.open(&sealed.key_id, &sealed.blob, aad).map(|secret| secret.expose_secret().clone())
    }

    #[test]
    fn what_is_sealed_opens_with_the_same_tenant() {
        let keyring = Keyring::new(&NEW, &[]);
        let sealed = keyring.seal(PLAINTEXT, TENANT);
        assert_eq!(sealed.key_id, keyring.current_id());
        assert_eq!(sealed.blob.len(), NONCE_LEN + PLAINTEXT.len() + 16);
        assert_eq!(opened(&keyring, &sealed, TENANT), Ok(PLAINTEXT.to_vec()));
        assert_eq!(opened(&keyring, &keyring.seal(b"", TENANT), TENANT), Ok(Vec::new()));
    }

    #[test]
    fn another_tenant_cannot_open_it() {
        let keyring = Keyring::new(&NEW, &[]);
        let sealed = keyring.seal(PLAINTEXT, TENANT);
        assert_eq!(opened(&keyring, &sealed, b"another-tenant"), Err(OpenError::Corrupt));
        assert_eq!(opened(&keyring, &sealed, b""), Err(OpenError::Corrupt));
    }

    #[test]
    fn any_flipped_bit_is_detected() {
        let keyring = Keyring::new(&NEW, &[]);
        let sealed = keyring.seal(PLAINTEXT, TENANT);
        for byte in 0..sealed.blob.len() {
            let mut blob = sealed.blob.clone();
            blob[byte] ^= 0x01;
            assert_eq!(keyring.open(&sealed.key_id, &blob, TENANT).map(|_| ()), Err(OpenError::Corrupt), "{byte}");
        }
        for len in [0, 1, NONCE_LEN, NONCE_LEN + 15, sealed.blob.len() - 1] {
            let blob = &sealed.blob[..len];
            assert_eq!(keyring.open(&sealed.key_id, blob, TENANT).map(|_| ()), Err(OpenError::Corrupt), "{len}");
        }
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let keyring = Keyring::new(&NEW, &[]);
        let a = keyring.seal(PLAINTEXT, TENANT);
        let b = keyring.seal(PLAINTEXT, TENANT);
        assert_ne!(a.blob[..NONCE_LEN], b.blob[..NONCE_LEN]);
        assert_ne!(a.blob, b.blob);
    }

    #[test]
    fn after_rotation_old_values_open_and_new_ones_use_the_new_key() {
        let before = Keyring::new(&OLD, &[]);
        let old = before.seal(PLAINTEXT, TENANT);
        assert_eq!(old.key_id, SealingKey::new(&OLD).id());

        let after = Keyring::new(&NEW, &[OLD]);
        assert_eq!(opened(&after, &old, TENANT), Ok(PLAINTEXT.to_vec()));
        assert!(!after.is_current(&old.key_id), "the old value is due for resealing");
        let new = after.seal(PLAINTEXT, TENANT);
        assert_eq!(new.key_id, after.current_id());
        assert!(after.is_current(&new.key_id));
        assert_ne!(new.key_id, old.key_id);

        assert_eq!(opened(&before, &new, TENANT), Err(OpenError::UnknownKey { key_id: new.key_id.clone() }));
    }

    #[test]
    fn an_unknown_key_id_is_named_with_what_to_restore() {
        let keyring = Keyring::new(&NEW, &[OLD]);
        let sealed = Keyring::new(&[9; 32], &[]).seal(PLAINTEXT, TENANT);
        let error = opened(&keyring, &sealed, TENANT).expect_err("unknown key");
        assert_eq!(error, OpenError::UnknownKey { key_id: sealed.key_id.clone() });
        let message = error.to_string();
        assert!(message.contains(&sealed.key_id), "{message}");
        assert!(message.contains("FA_SF_KEY_ENCRYPTION_KEY_PREVIOUS"), "{message}");
        assert!(OpenError::Corrupt.to_string().contains("FA_SF_KEY_ENCRYPTION_KEY"));
    }

    #[test]
    fn the_ciphertext_does_not_contain_the_plaintext() {
        let sealed = Keyring::new(&NEW, &[]).seal(PLAINTEXT, TENANT);
        assert!(!sealed.blob.windows(8).any(|w| PLAINTEXT.windows(8).any(|p| p == w)));
    }

    fn binding<'a>(login_url: &'a str, username: &'a str, consumer_key: &'a str) -> Binding<'a> {
        Binding { tenant: "acme", login_url, username, consumer_key }
    }

    #[test]
    fn a_key_sealed_with_its_binding_opens_only_with_the_same_four_fields() {
        let keyring = Keyring::new(&NEW, &[]);
        let registered = binding("https://login.salesforce.com", "ops@acme.example", "3MVG9key");
        let sealed = keyring.seal(PLAINTEXT, &registered.aad());
        assert_eq!(opened(&keyring, &sealed, &registered.aad()), Ok(PLAINTEXT.to_vec()));
        let edited = [
            Binding { tenant: "other", ..registered },
            binding("https://evil.example", "ops@acme.example", "3MVG9key"),
            binding("https://login.salesforce.com", "ceo@acme.example", "3MVG9key"),
            binding("https://login.salesforce.com", "ops@acme.example", "3MVG9other"),
            // Bytes moved from one field to the next do not give the same data.
            binding("https://login.salesforce.com", "ops@acme.example3", "MVG9key"),
        ];
        for edit in edited {
            assert_eq!(opened(&keyring, &sealed, &edit.aad()), Err(OpenError::Corrupt), "{edit:?}");
        }
        assert_eq!(opened(&keyring, &sealed, registered.legacy_aad()), Err(OpenError::Corrupt));
    }

    #[test]
    fn a_key_sealed_before_the_binding_opens_with_the_tenant_alone() {
        let keyring = Keyring::new(&NEW, &[]);
        let registered = binding("https://login.salesforce.com", "ops@acme.example", "3MVG9key");
        let legacy = keyring.seal(PLAINTEXT, b"acme");
        assert_eq!(opened(&keyring, &legacy, registered.legacy_aad()), Ok(PLAINTEXT.to_vec()));
        assert_eq!(opened(&keyring, &legacy, &registered.aad()), Err(OpenError::Corrupt));
    }

    #[test]
    fn key_ids_are_short_stable_hex_and_debug_hides_the_keys() {
        let keyring = Keyring::new(&NEW, &[OLD]);
        let id = keyring.current_id();
        assert_eq!(id.len(), 16);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(id, Keyring::new(&NEW, &[]).current_id());
        assert_ne!(id, SealingKey::new(&OLD).id());

        let debug = format!("{keyring:?}");
        assert!(debug.contains(id) && debug.contains(SealingKey::new(&OLD).id()), "{debug}");
        assert!(debug.contains("[redacted]"));
        assert!(!debug.contains("42, 42"), "{debug}");
    }
}
