//! The key-file keyring: sealing, bindings, persistence, rotation and the file itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::ScratchDir;
use squaremcp_core::rewrap::rewrap_credentials;
use squaremcp_core::{
    AccountName, BindingVersion, CredentialRecord, Customer, CustomerId, Email, Keyring, KeyringError, PlanName, Platform,
    SecretBinding, Store, Timestamp,
};
use squaremcp_embedded::{KeyFileKeyring, SqliteStore};

fn binding(customer: &CustomerId, platform: Platform) -> SecretBinding {
    // v1 (no account), as webhook secrets and credentials sealed before v2 are.
    SecretBinding { customer_id: customer.clone(), platform, account: None }
}

#[tokio::test]
async fn sealed_secrets_round_trip() {
    let dir = ScratchDir::new("keyring");
    let keyring = KeyFileKeyring::open_or_create(&dir.file("keyring.json")).unwrap();
    let owner = binding(&CustomerId::generate(), Platform::Telegram);
    let sealed = keyring.seal(&owner, b"{\"bot_token\":\"123:abc\"}").await.unwrap();
    assert_eq!(sealed.key_version, 1, "a new key file starts at data key 1");
    assert!(!sealed.ciphertext.windows(7).any(|w| w == b"123:abc"), "the ciphertext must not contain the secret");
    let opened = keyring.open(&owner, &sealed).await.unwrap();
    assert_eq!(opened.expose(), b"{\"bot_token\":\"123:abc\"}");
}

#[tokio::test]
async fn a_secret_opens_only_for_its_customer_and_platform() {
    let dir = ScratchDir::new("keyring");
    let keyring = KeyFileKeyring::open_or_create(&dir.file("keyring.json")).unwrap();
    let a = CustomerId::generate();
    let b = CustomerId::generate();
    let sealed = keyring.seal(&binding(&a, Platform::Telegram), b"token").await.unwrap();
    let for_b = keyring.open(&binding(&b, Platform::Telegram), &sealed).await;
    assert!(matches!(for_b, Err(KeyringError::Undecryptable)), "customer B must not open A's secret");
    let for_discord = keyring.open(&binding(&a, Platform::Discord), &sealed).await;
    assert!(matches!(for_discord, Err(KeyringError::Undecryptable)), "A's telegram secret must not open as discord");
}

#[tokio::test]
async fn reopening_the_key_file_opens_old_records() {
    let dir = ScratchDir::new("keyring");
    let path = dir.file("keyring.json");
    let owner = binding(&CustomerId::generate(), Platform::Email);
    let sealed = KeyFileKeyring::open_or_create(&path).unwrap().seal(&owner, b"imap password").await.unwrap();
    let reopened = KeyFileKeyring::open_or_create(&path).unwrap();
    assert_eq!(reopened.open(&owner, &sealed).await.unwrap().expose(), b"imap password");
}

#[tokio::test]
async fn rotation_keeps_old_records_and_seals_with_the_new_key() {
    let dir = ScratchDir::new("keyring");
    let path = dir.file("keyring.json");
    let owner = binding(&CustomerId::generate(), Platform::Discord);
    let old = KeyFileKeyring::open_or_create(&path).unwrap().seal(&owner, b"old").await.unwrap();

    assert_eq!(KeyFileKeyring::rotate(&path).unwrap(), 2);
    let rotated = KeyFileKeyring::open_or_create(&path).unwrap();
    assert_eq!(rotated.active_version(), 2);
    let new = rotated.seal(&owner, b"new").await.unwrap();
    assert_eq!(new.key_version, 2, "new secrets are sealed with the new data key");
    assert_eq!(rotated.open(&owner, &old).await.unwrap().expose(), b"old", "old records still open");
    assert_eq!(rotated.open(&owner, &new).await.unwrap().expose(), b"new");

    assert_eq!(KeyFileKeyring::rotate(&path).unwrap(), 3, "versions keep counting up");
    assert_eq!(KeyFileKeyring::open_or_create(&path).unwrap().open(&owner, &old).await.unwrap().expose(), b"old");
}

#[tokio::test]
async fn a_running_keyring_opens_records_sealed_after_a_rotation_elsewhere() {
    let dir = ScratchDir::new("keyring-online");
    let path = dir.file("keyring.json");
    let owner = binding(&CustomerId::generate(), Platform::Telegram);
    let running = KeyFileKeyring::open_or_create(&path).unwrap();
    assert_eq!(KeyFileKeyring::rotate(&path).unwrap(), 2, "the CLI rotates while `serve` runs");
    let rewrapped = KeyFileKeyring::open_or_create(&path).unwrap().seal(&owner, b"rewrapped").await.unwrap();
    assert_eq!(rewrapped.key_version, 2);
    assert_eq!(running.open(&owner, &rewrapped).await.unwrap().expose(), b"rewrapped", "the server reads the file again");
    assert_eq!(running.active_version(), 2, "and seals with the new key from then on");
}

#[test]
fn the_key_file_has_the_documented_shape_and_keeps_data_keys_wrapped() {
    let dir = ScratchDir::new("keyring");
    let path = dir.file("keyring.json");
    KeyFileKeyring::open_or_create(&path).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(json["format"], 1);
    assert_eq!(json["active"], 1);
    assert!(json["master_key"].is_string());
    let first = &json["data_keys"][0];
    assert_eq!(first["version"], 1);
    assert!(first["wrapped"]["nonce"].is_string() && first["wrapped"]["ciphertext"].is_string());
}

#[cfg(unix)]
#[test]
fn the_key_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = ScratchDir::new("keyring");
    let path = dir.file("nested/keyring.json");
    KeyFileKeyring::open_or_create(&path).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600, "a new key file is created 0600");
    KeyFileKeyring::rotate(&path).unwrap();
    assert_eq!(mode(&path), 0o600, "a rotated key file stays 0600");
    let leftovers: Vec<_> =
        std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, ["keyring.json"], "no temporary or lock files are left behind");
}

#[test]
fn a_corrupt_key_file_is_refused_and_left_untouched() {
    let dir = ScratchDir::new("keyring");
    for (name, contents) in [
        ("empty.json", String::new()),
        ("garbage.json", "not json".to_owned()),
        ("future.json", r#"{"format":2,"master_key":"","active":1,"data_keys":[]}"#.to_owned()),
    ] {
        let path = dir.file(name);
        std::fs::write(&path, &contents).unwrap();
        let error = KeyFileKeyring::open_or_create(&path).unwrap_err();
        assert!(matches!(&error, KeyringError::Unavailable(m) if m.contains(name)), "{name}: {error}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), contents, "{name} must not be overwritten");
        assert!(KeyFileKeyring::rotate(&path).is_err(), "{name} must not be rotated");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), contents, "{name} must not be overwritten by rotate");
    }
}

#[test]
fn a_tampered_wrapped_key_or_master_key_is_refused() {
    let dir = ScratchDir::new("keyring");
    let path = dir.file("keyring.json");
    KeyFileKeyring::open_or_create(&path).unwrap();
    let original: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();

    let mut other_master = original.clone();
    other_master["master_key"] = format!("{}=", "A".repeat(43)).into();
    std::fs::write(&path, serde_json::to_vec(&other_master).unwrap()).unwrap();
    let error = KeyFileKeyring::open_or_create(&path).unwrap_err();
    assert!(error.to_string().contains("does not unwrap"), "{error}");

    let mut renumbered = original.clone();
    renumbered["data_keys"][0]["version"] = 2.into();
    renumbered["active"] = 2.into();
    std::fs::write(&path, serde_json::to_vec(&renumbered).unwrap()).unwrap();
    let error = KeyFileKeyring::open_or_create(&path).unwrap_err();
    assert!(error.to_string().contains("does not unwrap"), "a wrapped key is bound to its version: {error}");

    let mut missing_active = original;
    missing_active["active"] = 9.into();
    std::fs::write(&path, serde_json::to_vec(&missing_active).unwrap()).unwrap();
    let error = KeyFileKeyring::open_or_create(&path).unwrap_err();
    assert!(error.to_string().contains("active version 9"), "{error}");
}

#[test]
fn a_rotation_in_progress_blocks_another() {
    let dir = ScratchDir::new("keyring");
    let path = dir.file("keyring.json");
    KeyFileKeyring::open_or_create(&path).unwrap();
    std::fs::write(dir.file("keyring.json.lock"), "").unwrap();
    let error = KeyFileKeyring::rotate(&path).unwrap_err();
    assert!(error.to_string().contains("another rotation"), "{error}");
    assert_eq!(KeyFileKeyring::open_or_create(&path).unwrap().active_version(), 1, "nothing was rotated");
    assert!(dir.file("keyring.json.lock").exists(), "someone else's lock is not removed");
}

/// Keyring methods are async; these tests run them on a small runtime of their own.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(future)
}

#[test]
fn concurrent_first_starts_agree_on_one_key_file() {
    let dir = ScratchDir::new("keyring");
    let path = dir.file("keyring.json");
    let owner = binding(&CustomerId::generate(), Platform::Obsidian);
    let starters: Vec<_> = (0..8)
        .map(|_| {
            let (path, owner) = (path.clone(), owner.clone());
            std::thread::spawn(move || {
                let keyring = KeyFileKeyring::open_or_create(&path).expect("every concurrent start opens the key file");
                block_on(keyring.seal(&owner, b"sealed at start")).unwrap()
            })
        })
        .collect();
    let sealed: Vec<_> = starters.into_iter().map(|s| s.join().unwrap()).collect();
    let on_disk = KeyFileKeyring::open_or_create(&path).unwrap();
    for secret in &sealed {
        let opened = block_on(on_disk.open(&owner, secret)).expect("every starter used the key file that was kept");
        assert_eq!(opened.expose(), b"sealed at start");
    }
}

/// A credential sealed before the account joined the binding (v1) keeps opening, and a rewrap
/// moves it to v2 without a key rotation; after that, a copy to another account does not open.
#[tokio::test]
async fn rewrap_moves_v1_credentials_to_the_v2_binding() {
    let dir = ScratchDir::new("keyring-v2");
    let keyring = KeyFileKeyring::open_or_create(&dir.file("keyring.json")).unwrap();
    let store = SqliteStore::open(&dir.file("squaremcp.db")).unwrap();
    let now = Timestamp::from_unix(1_800_000_000);
    let customer = Customer {
        id: CustomerId::generate(),
        email: Email::parse("v1@example.com").unwrap(),
        plan: PlanName::parse("free").unwrap(),
        password_hash: None,
        created_at: now,
    };
    store.insert_customer(&customer).await.unwrap();
    let legacy = keyring.seal(&binding(&customer.id, Platform::Email), b"imap password").await.unwrap();
    let work = CredentialRecord {
        customer_id: customer.id.clone(),
        platform: Platform::Email,
        account: AccountName::parse("work").unwrap(),
        sealed: legacy,
        created_at: now,
        updated_at: now,
    };
    store.put_credential(&work).await.unwrap();
    let (opened, version) = work.open_versioned(&keyring).await.unwrap();
    assert_eq!((opened.expose().as_slice(), version), (&b"imap password"[..], BindingVersion::V1), "v1 still opens");
    let home = AccountName::parse("home").unwrap();
    let v1_copy = CredentialRecord { account: home.clone(), ..work.clone() };
    assert!(v1_copy.open(&keyring).await.is_ok(), "v1 does not bind the account: why records move to v2");

    let report = rewrap_credentials(&store, &keyring, |_, _| {}).await.unwrap();
    assert_eq!((report.examined, report.rewrapped, report.current), (1, 1, 0), "{report:?}");
    let stored = store.credentials(&customer.id, None).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].sealed.key_version, 1, "same data key: only the binding changed");
    let (opened, version) = stored[0].open_versioned(&keyring).await.unwrap();
    assert_eq!((opened.expose().as_slice(), version), (&b"imap password"[..], BindingVersion::V2));
    let v2_copy = CredentialRecord { account: home, ..stored[0].clone() };
    assert!(matches!(v2_copy.open(&keyring).await, Err(KeyringError::Undecryptable)), "v2 binds the account");

    let again = rewrap_credentials(&store, &keyring, |_, _| {}).await.unwrap();
    assert_eq!((again.rewrapped, again.current), (0, 1), "a second rewrap finds nothing to do");
}
