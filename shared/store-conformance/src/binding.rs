//! A credential is bound to the keys it is stored under: someone who can write the storage
//! (a table editor, a bad restore, a compromised function's role) and copies a sealed
//! credential under another customer's, platform's or account's keys must not get a
//! credential that opens there.
//!
//! The copy is made below the `Store` port, the way such a writer would make it, so each
//! backend hands in a [`RawCredentials`] that copies at its storage level (DynamoDB `PutItem`
//! of the same attributes under other keys; SQLite an `INSERT … SELECT` of the row).

use std::sync::Arc;

use async_trait::async_trait;
use squaremcp_core::{
    AccountName, CredentialRecord, CustomerId, Keyring, KeyringError, Platform, SealedSecret,
    Secret, SecretBinding, Store,
};
use squaremcp_envelope::{DataKey, DataKeys, generate_key};

use crate::fixtures::{NOW, customer};

/// Where a credential is stored: its keys.
#[derive(Clone, Debug)]
pub struct CredentialKeys {
    pub customer_id: CustomerId,
    pub platform: Platform,
    pub account: AccountName,
}

/// Storage-level access to credentials, below the `Store` port.
#[async_trait]
pub trait RawCredentials: Send + Sync {
    /// Stores a copy of the credential stored at `from`, every attribute or column as it is,
    /// under the keys of `to`.
    async fn copy_credential(&self, from: &CredentialKeys, to: &CredentialKeys);
}

/// The envelope AEAD under a fresh data key, as both real keyrings use it.
struct EnvelopeKeyring(DataKeys);

impl EnvelopeKeyring {
    fn new() -> Self {
        let material = generate_key().expect("a data key");
        let key = DataKey::new(1, material.expose()).expect("a 32-byte data key");
        Self(DataKeys::new(1, [key]).expect("one data key"))
    }
}

#[async_trait]
impl Keyring for EnvelopeKeyring {
    async fn seal(
        &self,
        binding: &SecretBinding,
        plaintext: &[u8],
    ) -> Result<SealedSecret, KeyringError> {
        self.0.seal(&binding.associated_data(), plaintext)
    }
    async fn open(
        &self,
        binding: &SecretBinding,
        sealed: &SealedSecret,
    ) -> Result<Secret<Vec<u8>>, KeyringError> {
        self.0.open(&binding.associated_data(), sealed)
    }
}

/// A copy under another customer's, platform's or account's keys reads back as a record of
/// those keys (never of the attributes it carries) and does not open.
pub async fn credentials_copied_to_other_keys_do_not_open(
    store: Arc<dyn Store>,
    raw: Arc<dyn RawCredentials>,
) {
    let keyring = EnvelopeKeyring::new();
    let victim = customer("bound-victim@example.com", None);
    let thief = customer("bound-thief@example.com", None);
    store.insert_customer(&victim).await.unwrap();
    store.insert_customer(&thief).await.unwrap();
    let account = |name: &str| AccountName::parse(name).expect("a valid account name");
    let sealed_credential = |customer_id: &CustomerId, platform, name: &str| {
        let record = CredentialRecord {
            customer_id: customer_id.clone(),
            platform,
            account: account(name),
            sealed: SealedSecret {
                key_version: 0,
                nonce: vec![],
                ciphertext: vec![],
            },
            created_at: NOW,
            updated_at: NOW,
        };
        async {
            let sealed = keyring
                .seal(&record.binding(), br#"{"bot_token":"victim"}"#)
                .await
                .expect("sealing");
            CredentialRecord { sealed, ..record }
        }
    };
    let original = sealed_credential(&victim.id, Platform::Telegram, "default").await;
    store.put_credential(&original).await.unwrap();
    // The thief's own credential for the same account: the copy below overwrites it.
    let thiefs = sealed_credential(&thief.id, Platform::Telegram, "default").await;
    store.put_credential(&thiefs).await.unwrap();
    assert!(
        original.open(&keyring).await.is_ok(),
        "the original opens where it was sealed"
    );

    let from = CredentialKeys {
        customer_id: victim.id.clone(),
        platform: Platform::Telegram,
        account: account("default"),
    };
    let destinations = [
        (
            "another customer's partition",
            CredentialKeys {
                customer_id: thief.id.clone(),
                ..from.clone()
            },
        ),
        (
            "another account of the same customer",
            CredentialKeys {
                account: account("work"),
                ..from.clone()
            },
        ),
        (
            "another platform of the same customer",
            CredentialKeys {
                platform: Platform::Discord,
                ..from.clone()
            },
        ),
    ];
    for (what, to) in destinations {
        raw.copy_credential(&from, &to).await;
        let copies = store
            .credentials(&to.customer_id, Some(to.platform))
            .await
            .expect("reading the copies");
        let copy = copies
            .iter()
            .find(|r| r.account == to.account)
            .unwrap_or_else(|| panic!("the copy to {what} was not read back"));
        assert_eq!(
            copy.sealed, original.sealed,
            "the copy to {what} carries the original ciphertext"
        );
        assert_eq!(
            (&copy.customer_id, copy.platform, &copy.account),
            (&to.customer_id, to.platform, &to.account),
            "a copy to {what} must read back as a record of the keys it is stored under"
        );
        assert!(
            matches!(copy.open(&keyring).await, Err(KeyringError::Undecryptable)),
            "a credential copied to {what} must not open"
        );
    }
}
