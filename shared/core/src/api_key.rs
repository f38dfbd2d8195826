//! Customer API keys: `sqm_<random>`, shown once, stored only as their SHA-256.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::customer::InvalidInput;
use crate::{CustomerId, Secret, Timestamp, random};

const PREFIX: &str = "sqm_";
/// 32 random bytes, base64url without padding.
const RANDOM_LEN: usize = 43;

/// A plaintext API key. It exists only between generation and being shown, and on the way in
/// from a request header; `Debug` never prints it.
#[derive(Clone, Debug)]
pub struct ApiKey(Secret<String>);

impl ApiKey {
    pub fn generate() -> Self {
        Self(Secret::new(format!("{PREFIX}{}", random::token::<32>())))
    }

    /// Checks the shape only; whether the key exists is the store's business.
    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        let rest = text.strip_prefix(PREFIX).ok_or_else(|| InvalidInput::new("API key", "it must start with `sqm_`"))?;
        if rest.len() != RANDOM_LEN || !rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(InvalidInput::new("API key", "malformed key"));
        }
        Ok(Self(Secret::new(text.to_owned())))
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    pub fn hash(&self) -> ApiKeyHash {
        ApiKeyHash(random::hex(&Sha256::digest(self.0.expose().as_bytes())))
    }

    /// What listings show so a person can tell keys apart: `sqm_` and the first four random characters.
    pub fn display_prefix(&self) -> String {
        self.0.expose().chars().take(PREFIX.len() + 4).collect()
    }
}

/// Lowercase hex SHA-256 of a key: the only form a store ever sees.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApiKeyHash(String);

impl ApiKeyHash {
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `key_` followed by 16 hex characters: how CLI commands name a key without revealing it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ApiKeyId(String);

impl ApiKeyId {
    pub fn generate() -> Self {
        Self(format!("key_{}", random::hex_id::<8>()))
    }

    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        let ok = text
            .strip_prefix("key_")
            .is_some_and(|rest| rest.len() == 16 && rest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        if !ok {
            return Err(InvalidInput::new("API key id", "expected `key_` and 16 lowercase hex characters"));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ApiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ApiKeyId {
    type Error = InvalidInput;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ApiKeyId> for String {
    fn from(value: ApiKeyId) -> Self {
        value.0
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub customer_id: CustomerId,
    pub name: String,
    pub hash: ApiKeyHash,
    pub prefix: String,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
}

impl ApiKeyRecord {
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_hash_stably() {
        let key = ApiKey::generate();
        assert!(key.expose().starts_with("sqm_"));
        let again = ApiKey::parse(key.expose()).expect("a generated key parses");
        assert_eq!(key.hash(), again.hash());
        assert_eq!(key.hash().as_str().len(), 64);
        assert_ne!(key.hash(), ApiKey::generate().hash());
    }

    #[test]
    fn sha256_is_the_real_digest() {
        let key = ApiKey(Secret::new("abc".into()));
        assert_eq!(key.hash().as_str(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn debug_hides_the_key() {
        let key = ApiKey::generate();
        assert!(!format!("{key:?}").contains(&key.expose()[4..]));
    }

    #[test]
    fn malformed_keys_are_rejected() {
        for bad in ["", "sqm_", "sk_live_abc", "sqm_short", &format!("sqm_{}", "!".repeat(43))] {
            assert!(ApiKey::parse(bad).is_err(), "{bad:?}");
        }
    }
}
