//! A customer's platform credentials, as the store holds them: sealed, never plain.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::customer::InvalidInput;
use crate::{CustomerId, Keyring, KeyringError, Platform, Secret, Timestamp};

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
/// copied onto another customer's, platform's or account's record fails to open.
///
/// Two formats of associated data exist:
/// - v1, `squaremcp-credential:v1:<customer>:<platform>`, when `account` is `None`: credentials
///   sealed before v2 (until `squaremcp keys rewrap` moves them), and webhook signing secrets,
///   which have no account;
/// - v2, `squaremcp-credential:v2:<customer>:<platform>:<account>`: every credential sealed now.
///
/// Neither part can contain `:` (customer ids and platform and account names exclude it), so
/// each string names exactly one binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretBinding {
    pub customer_id: CustomerId,
    pub platform: Platform,
    pub account: Option<AccountName>,
}

impl SecretBinding {
    pub fn associated_data(&self) -> Vec<u8> {
        match &self.account {
            None => format!("squaremcp-credential:v1:{}:{}", self.customer_id, self.platform).into_bytes(),
            Some(account) => format!("squaremcp-credential:v2:{}:{}:{account}", self.customer_id, self.platform).into_bytes(),
        }
    }
}

/// The associated-data format a credential opened with (see [`SecretBinding`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindingVersion {
    /// Customer and platform only: a copy to another account of the same customer and platform
    /// would still open. Re-wrapping moves such a record to v2.
    V1,
    /// Customer, platform and account.
    V2,
}

/// A stored credential whose keys name another customer or platform than the caller asked for:
/// the store broke its contract, and the record is not used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a stored credential is filed under {found_customer}/{found_platform}, not the requested {customer}/{platform}")]
pub struct MisfiledCredential {
    pub customer: CustomerId,
    pub platform: Platform,
    pub found_customer: CustomerId,
    pub found_platform: Platform,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRecord {
    /// These three come from the record's keys in the store (never from free attributes), so
    /// they name where the record is stored, and the binding checks the ciphertext belongs there.
    pub customer_id: CustomerId,
    pub platform: Platform,
    pub account: AccountName,
    pub sealed: SealedSecret,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl CredentialRecord {
    /// The binding new seals use (v2).
    pub fn binding(&self) -> SecretBinding {
        SecretBinding { customer_id: self.customer_id.clone(), platform: self.platform, account: Some(self.account.clone()) }
    }

    /// The binding of records sealed before v2.
    fn legacy_binding(&self) -> SecretBinding {
        SecretBinding { account: None, ..self.binding() }
    }

    /// Opens the sealed document under this record's own keys.
    pub async fn open(&self, keyring: &dyn Keyring) -> Result<Secret<Vec<u8>>, KeyringError> {
        self.open_versioned(keyring).await.map(|(plaintext, _)| plaintext)
    }

    /// As [`Self::open`], also saying which format it opened with. v2 is tried first; only a
    /// record v2 cannot open is tried as v1 (one more AES-GCM tag check, no request: the data
    /// key is the same), so a record that is neither fails as `Undecryptable`.
    pub async fn open_versioned(&self, keyring: &dyn Keyring) -> Result<(Secret<Vec<u8>>, BindingVersion), KeyringError> {
        match keyring.open(&self.binding(), &self.sealed).await {
            Ok(plaintext) => Ok((plaintext, BindingVersion::V2)),
            Err(KeyringError::Undecryptable) => {
                let plaintext = keyring.open(&self.legacy_binding(), &self.sealed).await?;
                Ok((plaintext, BindingVersion::V1))
            }
            Err(e) => Err(e),
        }
    }

    /// Refuses a record that is not filed under the customer and platform asked for.
    pub fn check_filed_under(&self, customer: &CustomerId, platform: Platform) -> Result<(), MisfiledCredential> {
        if &self.customer_id == customer && self.platform == platform {
            return Ok(());
        }
        Err(MisfiledCredential {
            customer: customer.clone(),
            platform,
            found_customer: self.customer_id.clone(),
            found_platform: self.platform,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::test_support::TestKeyring;

    #[test]
    fn associated_data_differs_per_customer_and_platform() {
        let a = CustomerId::generate();
        let b = CustomerId::generate();
        let ad = |c: &CustomerId, p, account: Option<&str>| {
            let account = account.map(|name| AccountName::parse(name).unwrap());
            SecretBinding { customer_id: c.clone(), platform: p, account }.associated_data()
        };
        assert_ne!(ad(&a, Platform::Telegram, None), ad(&b, Platform::Telegram, None));
        assert_ne!(ad(&a, Platform::Telegram, None), ad(&a, Platform::Discord, None));
        assert_ne!(ad(&a, Platform::Telegram, Some("work")), ad(&b, Platform::Telegram, Some("work")));
        assert_ne!(ad(&a, Platform::Telegram, Some("work")), ad(&a, Platform::Discord, Some("work")));
        assert_ne!(ad(&a, Platform::Telegram, Some("work")), ad(&a, Platform::Telegram, Some("home")));
        assert_ne!(ad(&a, Platform::Telegram, Some("default")), ad(&a, Platform::Telegram, None), "v2 never equals v1");
        let v1 = String::from_utf8(ad(&a, Platform::Telegram, None)).unwrap();
        assert_eq!(v1, format!("squaremcp-credential:v1:{a}:telegram"), "v1 is unchanged, so old records still open");
    }

    fn record(customer: &CustomerId, account: &str) -> CredentialRecord {
        CredentialRecord {
            customer_id: customer.clone(),
            platform: Platform::Telegram,
            account: AccountName::parse(account).unwrap(),
            sealed: SealedSecret { key_version: 1, nonce: vec![], ciphertext: vec![] },
            created_at: Timestamp::from_unix(0),
            updated_at: Timestamp::from_unix(0),
        }
    }

    #[tokio::test]
    async fn new_seals_open_as_v2_and_old_ones_as_v1_under_their_own_keys_only() {
        let keyring = TestKeyring;
        let customer = CustomerId::generate();
        let work = record(&customer, "work");
        let current = CredentialRecord { sealed: keyring.seal(&work.binding(), b"doc").await.unwrap(), ..work.clone() };
        let (plaintext, version) = current.open_versioned(&keyring).await.unwrap();
        assert_eq!((plaintext.expose().as_slice(), version), (&b"doc"[..], BindingVersion::V2));
        let old = CredentialRecord { sealed: keyring.seal(&work.legacy_binding(), b"old").await.unwrap(), ..work.clone() };
        let (plaintext, version) = old.open_versioned(&keyring).await.unwrap();
        assert_eq!((plaintext.expose().as_slice(), version), (&b"old"[..], BindingVersion::V1));

        let moved = CredentialRecord { account: AccountName::parse("home").unwrap(), ..current };
        assert!(matches!(moved.open(&keyring).await, Err(KeyringError::Undecryptable)), "v2 binds the account");
        let other = CredentialRecord { customer_id: CustomerId::generate(), ..old };
        assert!(matches!(other.open(&keyring).await, Err(KeyringError::Undecryptable)), "v1 binds the customer");
    }

    #[test]
    fn a_record_filed_elsewhere_is_refused() {
        let customer = CustomerId::generate();
        let record = record(&customer, "default");
        assert_eq!(record.check_filed_under(&customer, Platform::Telegram), Ok(()));
        let stranger = CustomerId::generate();
        let refused = record.check_filed_under(&stranger, Platform::Telegram).unwrap_err();
        assert_eq!((refused.customer, refused.found_customer), (stranger, customer.clone()));
        assert!(record.check_filed_under(&customer, Platform::Discord).is_err());
    }

    #[test]
    fn account_names() {
        assert!(AccountName::parse("work@example.com").is_ok());
        assert!(AccountName::parse("").is_err());
        assert!(AccountName::parse("a/b").is_err());
    }
}
