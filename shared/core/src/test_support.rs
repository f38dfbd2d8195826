//! Test doubles shared by the crate's unit tests.

use async_trait::async_trait;

use crate::{Keyring, KeyringError, SealedSecret, Secret, SecretBinding};

/// Not encryption: binds the plaintext to its binding so that a mismatch is still caught.
pub(crate) struct TestKeyring;

#[async_trait]
impl Keyring for TestKeyring {
    async fn seal(&self, binding: &SecretBinding, plaintext: &[u8]) -> Result<SealedSecret, KeyringError> {
        Ok(SealedSecret { key_version: 1, nonce: binding.associated_data(), ciphertext: plaintext.to_vec() })
    }
    async fn open(&self, binding: &SecretBinding, sealed: &SealedSecret) -> Result<Secret<Vec<u8>>, KeyringError> {
        if sealed.nonce != binding.associated_data() {
            return Err(KeyringError::Undecryptable);
        }
        Ok(Secret::new(sealed.ciphertext.clone()))
    }
}
