//! The KMS keyring against moto (KMS) and DynamoDB Local (the wrapped data keys): round trips,
//! tenant binding, lazy one-time decryption, rotation and rewrap.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use squaremcp_aws::{AwsClients, DynamoStore, KmsKeyring, RequestCounter};
use squaremcp_core::rewrap::rewrap_credentials;
use squaremcp_core::{
    AccountName, BindingVersion, CredentialRecord, Customer, CustomerId, Email, Keyring, KeyringError, PlanName, Platform, SecretBinding,
    Store, Timestamp,
};

const NOW: Timestamp = Timestamp::from_unix(1_800_000_000);

struct Fixture {
    clients: AwsClients,
    table: String,
    key_arn: String,
}

async fn fixture() -> Fixture {
    let clients = common::clients().await;
    let table = common::fresh_table(&clients).await;
    let alias = format!("alias/{}", common::unique("key"));
    let (key_arn, created) = squaremcp_aws::provision::ensure_kms_key(&clients.kms, &alias).await.unwrap();
    assert!(created, "a new alias gets a new key");
    let again = squaremcp_aws::provision::ensure_kms_key(&clients.kms, &alias).await.unwrap();
    assert_eq!(again, (key_arn.clone(), false), "the second time the alias is found, not recreated");
    let keyring = KmsKeyring::new(clients.kms.clone(), clients.dynamodb.clone(), &table);
    assert_eq!(keyring.create_first(&key_arn, NOW).await.unwrap(), 1);
    assert_eq!(keyring.create_first(&key_arn, NOW).await.unwrap(), 1, "creating the first data key is idempotent");
    Fixture { clients, table, key_arn }
}

impl Fixture {
    fn keyring(&self) -> KmsKeyring {
        KmsKeyring::new(self.clients.kms.clone(), self.clients.dynamodb.clone(), &self.table)
    }
}

fn binding(customer: &CustomerId, platform: Platform) -> SecretBinding {
    // v1 (no account), as webhook secrets and credentials sealed before v2 are.
    SecretBinding { customer_id: customer.clone(), platform, account: None }
}

#[tokio::test]
async fn credentials_round_trip_and_stay_bound_to_their_tenant() {
    let f = fixture().await;
    let keyring = f.keyring();
    let alice = CustomerId::generate();
    let bob = CustomerId::generate();
    let secret = br#"{"bot_token":"123:AAsecret"}"#;
    let sealed = keyring.seal(&binding(&alice, Platform::Telegram), secret).await.unwrap();
    assert_eq!(sealed.key_version, 1);
    assert!(!sealed.ciphertext.windows(8).any(|w| w == b"AAsecret"), "the ciphertext hides the secret");
    let opened = keyring.open(&binding(&alice, Platform::Telegram), &sealed).await.unwrap();
    assert_eq!(opened.expose(), secret);

    // Copied onto Bob's record, or onto another platform of Alice's, it does not open.
    let copied = keyring.open(&binding(&bob, Platform::Telegram), &sealed).await;
    assert!(matches!(copied, Err(KeyringError::Undecryptable)), "{copied:?}");
    let moved = keyring.open(&binding(&alice, Platform::Discord), &sealed).await;
    assert!(matches!(moved, Err(KeyringError::Undecryptable)), "{moved:?}");

    // Another process with the same table and key opens it (the data key is shared, wrapped).
    let other = f.keyring();
    assert_eq!(other.open(&binding(&alice, Platform::Telegram), &sealed).await.unwrap().expose(), secret);
}

#[tokio::test]
async fn the_data_key_is_stored_only_wrapped_and_bound_to_its_version() {
    let f = fixture().await;
    let stored = f
        .clients
        .dynamodb
        .get_item()
        .table_name(&f.table)
        .key("PK", AttributeValue::S("KEYRING".into()))
        .key("SK", AttributeValue::S("DATAKEY#0000000001".into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("data key 1 is in the table");
    let names: std::collections::BTreeSet<&str> = stored.keys().map(String::as_str).collect();
    assert_eq!(names, ["PK", "SK", "ciphertext", "created_at", "kms_key_id", "version"].into(), "nothing but the wrapped key");
    let AttributeValue::B(ciphertext) = &stored["ciphertext"] else { panic!("ciphertext is binary") };
    assert_ne!(ciphertext.as_ref().len(), 32, "a KMS ciphertext blob, not raw key material");
    assert_eq!(stored["kms_key_id"], AttributeValue::S(f.key_arn.clone()));

    // KMS refuses it under another version's encryption context.
    let wrong = f
        .clients
        .kms
        .decrypt()
        .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(ciphertext.as_ref()))
        .encryption_context("purpose", "squaremcp-data-key")
        .encryption_context("data_key_version", "2")
        .send()
        .await;
    assert!(wrong.is_err_and(|e| e.as_service_error().is_some_and(|e| e.is_invalid_ciphertext_exception())));
}

#[tokio::test]
async fn building_sends_nothing_and_the_key_is_decrypted_once() {
    let f = fixture().await;
    let ddb = RequestCounter::new();
    let kms = RequestCounter::new();
    let counted = f.clients.clone().counting_dynamodb_requests(&ddb);
    let kms_client = aws_sdk_kms::Client::from_conf(f.clients.kms.config().to_builder().interceptor(kms.clone()).build());
    let keyring = KmsKeyring::new(kms_client, counted.dynamodb, &f.table);
    assert!(ddb.take().is_empty() && kms.take().is_empty(), "no request when the keyring is built (Lambda init)");

    let who = binding(&CustomerId::generate(), Platform::Telegram);
    let sealed = keyring.seal(&who, b"first").await.unwrap();
    assert_eq!(ddb.take(), ["Query"], "the first use reads the keyring partition once");
    assert_eq!(kms.take(), ["Decrypt"], "and decrypts the active data key once");
    for _ in 0..5 {
        keyring.open(&who, &sealed).await.unwrap();
        keyring.seal(&who, b"more").await.unwrap();
    }
    assert!(ddb.take().is_empty() && kms.take().is_empty(), "later uses are served from memory");
}

async fn customer(store: &dyn Store, email: &str) -> CustomerId {
    let customer = Customer {
        id: CustomerId::generate(),
        email: Email::parse(email).unwrap(),
        plan: PlanName::parse("pro").unwrap(),
        password_hash: None,
        created_at: NOW,
    };
    store.insert_customer(&customer).await.unwrap();
    customer.id
}

#[tokio::test]
async fn rotation_keeps_old_records_readable_and_rewrap_moves_them() {
    let f = fixture().await;
    let store: Arc<dyn Store> = Arc::new(DynamoStore::new(f.clients.dynamodb.clone(), &f.table));
    let running = Arc::new(f.keyring());
    let mut expected = Vec::new();
    for n in 0..3 {
        let id = customer(store.as_ref(), &format!("rotate{n}@example.com")).await;
        let secret = format!("secret-{n}");
        let sealed = running.seal(&binding(&id, Platform::Telegram), secret.as_bytes()).await.unwrap();
        let record = CredentialRecord {
            customer_id: id,
            platform: Platform::Telegram,
            account: AccountName::default_account(),
            sealed,
            created_at: NOW,
            updated_at: NOW,
        };
        store.put_credential(&record).await.unwrap();
        expected.push((record, secret));
    }

    let admin = f.keyring();
    assert_eq!(admin.rotate(&f.key_arn, NOW).await.unwrap(), 2);
    assert_eq!(f.keyring().active_version().await.unwrap(), 2);

    // The rewrap runs in another process (the CLI) while `running` keeps serving.
    let cli_keyring = f.keyring();
    let mut seen = Vec::new();
    let report = rewrap_credentials(store.as_ref(), &cli_keyring, |done, total| seen.push((done, total))).await.unwrap();
    assert_eq!((report.examined, report.rewrapped, report.current, report.changed_meanwhile), (3, 3, 0, 0), "{report:?}");
    assert!(report.failed.is_empty());
    assert_eq!(seen, [(0, 3), (1, 3), (2, 3), (3, 3)], "progress after every record");

    for (old, secret) in &expected {
        let now = store.credentials(&old.customer_id, None).await.unwrap();
        assert_eq!(now.len(), 1);
        assert_eq!(now[0].sealed.key_version, 2, "rewrapped to the new version");
        assert_eq!((now[0].created_at, now[0].updated_at), (old.created_at, old.updated_at), "dates are kept");
        // The process started before the rotation opens both the old (v1) and the new (v2) record.
        assert_eq!(old.open(running.as_ref()).await.unwrap().expose(), secret.as_bytes());
        let (opened, version) = now[0].open_versioned(running.as_ref()).await.unwrap();
        assert_eq!((opened.expose().as_slice(), version), (secret.as_bytes(), BindingVersion::V2), "rewrapped to the v2 binding");
    }
    let again = rewrap_credentials(store.as_ref(), &cli_keyring, |_, _| {}).await.unwrap();
    assert_eq!((again.rewrapped, again.current), (0, 3), "a second rewrap finds nothing to do");
}
