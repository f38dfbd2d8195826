//! Records with fresh ids, so that no behaviour depends on what another one stored.

use squaremcp_core::{
    AccountName, ApiKey, ApiKeyId, ApiKeyRecord, CredentialRecord, Customer, CustomerId, Email, PlanName, Platform,
    SealedSecret, Timestamp, random,
};

/// A fixed "now" (2027-01-15): the store takes time as an argument, so tests need no clock.
pub(crate) const NOW: Timestamp = Timestamp::from_unix(1_800_000_000);

pub(crate) fn customer(email: &str, password_hash: Option<&str>) -> Customer {
    Customer {
        id: CustomerId::generate(),
        email: Email::parse(email).expect("fixture emails are valid"),
        plan: PlanName::parse("free").expect("fixture plan is valid"),
        password_hash: password_hash.map(str::to_owned),
        created_at: NOW,
    }
}

pub(crate) fn api_key(owner: &CustomerId, created_at: Timestamp) -> ApiKeyRecord {
    let key = ApiKey::generate();
    ApiKeyRecord {
        id: ApiKeyId::generate(),
        customer_id: owner.clone(),
        name: "laptop".to_owned(),
        hash: key.hash(),
        prefix: key.display_prefix(),
        created_at,
        revoked_at: None,
    }
}

/// Random bytes stand in for a sealed secret: the store never looks inside.
pub(crate) fn credential(owner: &CustomerId, platform: Platform, account: &str, key_version: u32) -> CredentialRecord {
    CredentialRecord {
        customer_id: owner.clone(),
        platform,
        account: AccountName::parse(account).expect("fixture account names are valid"),
        sealed: SealedSecret {
            key_version,
            nonce: random::bytes::<12>().to_vec(),
            ciphertext: [&[0u8, 255][..], &random::bytes::<30>()].concat(),
        },
        created_at: NOW,
        updated_at: NOW,
    }
}

/// A counter or single-use key no other test uses.
pub(crate) fn unique_key(kind: &str) -> String {
    format!("test:{kind}:{}", random::hex_id::<8>())
}
