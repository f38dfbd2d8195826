//! AES-256-GCM under a 256-bit data key, with a fresh random nonce per seal and the caller's
//! associated data. Shared by every keyring (the local key file and KMS), so that a credential
//! sealed by one opens under the other once the data key is the same.

use std::collections::BTreeMap;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use squaremcp_core::{KeyringError, SealedSecret, Secret};

pub const KEY_LEN: usize = 32;

/// Fresh key material from the system CSPRNG.
pub fn generate_key() -> Result<Secret<[u8; KEY_LEN]>, KeyringError> {
    let mut key = [0u8; KEY_LEN];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| KeyringError::Unavailable("the system random source failed".into()))?;
    Ok(Secret::new(key))
}

/// One data key and its version.
pub struct DataKey {
    version: u32,
    key: LessSafeKey,
}

impl DataKey {
    pub fn new(version: u32, material: &[u8]) -> Result<Self, KeyringError> {
        let unbound = UnboundKey::new(&AES_256_GCM, material)
            .map_err(|_| KeyringError::Unavailable(format!("data key {version} is not 32 bytes")))?;
        Ok(Self { version, key: LessSafeKey::new(unbound) })
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn seal(&self, associated_data: &[u8], plaintext: &[u8]) -> Result<SealedSecret, KeyringError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| KeyringError::Unavailable("the system random source failed".into()))?;
        let mut in_out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(associated_data), &mut in_out)
            .map_err(|_| KeyringError::Unavailable("encryption failed".into()))?;
        Ok(SealedSecret { key_version: self.version, nonce: nonce.to_vec(), ciphertext: in_out })
    }

    pub fn open(&self, associated_data: &[u8], sealed: &SealedSecret) -> Result<Secret<Vec<u8>>, KeyringError> {
        if sealed.key_version != self.version {
            return Err(KeyringError::UnknownKeyVersion(sealed.key_version));
        }
        let nonce = Nonce::try_assume_unique_for_key(&sealed.nonce).map_err(|_| KeyringError::Undecryptable)?;
        let mut in_out = sealed.ciphertext.clone();
        let plaintext = self
            .key
            .open_in_place(nonce, Aad::from(associated_data), &mut in_out)
            .map_err(|_| KeyringError::Undecryptable)?;
        Ok(Secret::new(plaintext.to_vec()))
    }
}

/// Every known data key by version, and the one that seals new secrets.
pub struct DataKeys {
    active: u32,
    keys: BTreeMap<u32, DataKey>,
}

impl DataKeys {
    pub fn new(active: u32, keys: impl IntoIterator<Item = DataKey>) -> Result<Self, KeyringError> {
        let keys: BTreeMap<u32, DataKey> = keys.into_iter().map(|k| (k.version, k)).collect();
        if !keys.contains_key(&active) {
            return Err(KeyringError::UnknownKeyVersion(active));
        }
        Ok(Self { active, keys })
    }

    pub fn active_version(&self) -> u32 {
        self.active
    }

    pub fn seal(&self, associated_data: &[u8], plaintext: &[u8]) -> Result<SealedSecret, KeyringError> {
        self.keys.get(&self.active).ok_or(KeyringError::UnknownKeyVersion(self.active))?.seal(associated_data, plaintext)
    }

    pub fn open(&self, associated_data: &[u8], sealed: &SealedSecret) -> Result<Secret<Vec<u8>>, KeyringError> {
        self.keys
            .get(&sealed.key_version)
            .ok_or(KeyringError::UnknownKeyVersion(sealed.key_version))?
            .open(associated_data, sealed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(version: u32) -> DataKey {
        DataKey::new(version, generate_key().unwrap().expose()).unwrap()
    }

    #[test]
    fn round_trip_with_fresh_nonces() {
        let k = key(1);
        let a = k.seal(b"ad", b"secret").unwrap();
        let b = k.seal(b"ad", b"secret").unwrap();
        assert_ne!(a.nonce, b.nonce, "nonces must never repeat");
        assert_ne!(a.ciphertext, b.ciphertext);
        assert!(!a.ciphertext.windows(6).any(|w| w == b"secret"));
        assert_eq!(k.open(b"ad", &a).unwrap().expose(), b"secret");
        assert_eq!(a.key_version, 1);
    }

    #[test]
    fn wrong_associated_data_or_tampering_fails() {
        let k = key(1);
        let sealed = k.seal(b"customer-a:telegram", b"secret").unwrap();
        assert!(matches!(k.open(b"customer-b:telegram", &sealed), Err(KeyringError::Undecryptable)));
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(matches!(k.open(b"customer-a:telegram", &tampered), Err(KeyringError::Undecryptable)));
        assert!(matches!(key(1).open(b"customer-a:telegram", &sealed), Err(KeyringError::Undecryptable)));
    }

    #[test]
    fn several_versions_open_old_records() {
        let old = generate_key().unwrap();
        let v1 = DataKeys::new(1, [DataKey::new(1, old.expose()).unwrap()]).unwrap();
        let sealed_v1 = v1.seal(b"ad", b"one").unwrap();
        let v2 = DataKeys::new(2, [DataKey::new(1, old.expose()).unwrap(), key(2)]).unwrap();
        assert_eq!(v2.open(b"ad", &sealed_v1).unwrap().expose(), b"one");
        assert_eq!(v2.seal(b"ad", b"two").unwrap().key_version, 2);
        assert!(matches!(v1.open(b"ad", &v2.seal(b"ad", b"two").unwrap()), Err(KeyringError::UnknownKeyVersion(2))));
        assert!(DataKeys::new(3, [key(1)]).is_err());
    }
}
