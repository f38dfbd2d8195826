//! A customer's platform credentials, as the store holds them: sealed, never plain.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::customer::InvalidInput;
use crate::{CustomerId, Platform, Timestamp};

/// Names one of several credentials a customer holds for a platform (e.g. two mailboxes).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountName(String);

impl AccountName {
    pub const DEFAULT: &'static str = "default";

    pub fn default_account() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        let ok = !text.is_empty()
            && text.len() <= 64
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
        if !ok {
            return Err(InvalidInput::new("account", "use 1-64 letters, digits, `.`, `_`, `-` or `@`"));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AccountName {
    type Error = InvalidInput;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<AccountName> for String {
    fn from(value: AccountName) -> Self {
        value.0
    }
}

/// AES-256-GCM output plus the version of the data key that sealed it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    pub key_version: u32,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSecret")
            .field("key_version", &self.key_version)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// What a sealed secret is bound to. The binding is the AEAD's associated data, so a ciphertext
/// copied onto another customer's or platform's record fails to open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretBinding {
    pub customer_id: CustomerId,
    pub platform: Platform,
}

impl SecretBinding {
    pub fn associated_data(&self) -> Vec<u8> {
        format!("squaremcp-credential:v1:{}:{}", self.customer_id, self.platform).into_bytes()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRecord {
    pub customer_id: CustomerId,
    pub platform: Platform,
    pub account: AccountName,
    pub sealed: SealedSecret,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl CredentialRecord {
    pub fn binding(&self) -> SecretBinding {
        SecretBinding { customer_id: self.customer_id.clone(), platform: self.platform }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn associated_data_differs_per_customer_and_platform() {
        let a = CustomerId::generate();
        let b = CustomerId::generate();
        let ad = |c: &CustomerId, p| SecretBinding { customer_id: c.clone(), platform: p }.associated_data();
        assert_ne!(ad(&a, Platform::Telegram), ad(&b, Platform::Telegram));
        assert_ne!(ad(&a, Platform::Telegram), ad(&a, Platform::Discord));
    }

    #[test]
    fn account_names() {
        assert!(AccountName::parse("work@example.com").is_ok());
        assert!(AccountName::parse("").is_err());
        assert!(AccountName::parse("a/b").is_err());
    }
}
