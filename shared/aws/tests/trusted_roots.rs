//! SDK clients on root certificates handed in by the caller (the process's one read of the
//! system's roots) rather than read by the SDK: requests go through the TLS connector built from
//! them, against the emulators.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use squaremcp_aws::AwsClients;

static ROOTS_ASKED: AtomicUsize = AtomicUsize::new(0);

fn system_roots() -> &'static [Vec<u8>] {
    static ROOTS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    ROOTS_ASKED.fetch_add(1, Ordering::SeqCst);
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs.iter().map(|der| der.to_vec()).collect())
}

fn no_roots() -> &'static [Vec<u8>] {
    &[]
}

#[tokio::test]
async fn clients_on_handed_roots_reach_dynamodb_kms_and_sqs() {
    // Checks the emulator variables; the clients it returns are the default ones, for contrast.
    let _default = common::clients().await;
    assert!(!system_roots().is_empty(), "this host has no CA bundle to hand in");
    let asked_before = ROOTS_ASKED.load(Ordering::SeqCst);
    let clients = AwsClients::from_env_trusting(system_roots).await;
    // Building the clients does not ask for the roots: the first request's connector does.
    assert_eq!(ROOTS_ASKED.load(Ordering::SeqCst), asked_before);

    let table = common::fresh_table(&clients).await;
    let tables = clients.dynamodb.list_tables().send().await.unwrap();
    assert!(tables.table_names().contains(&table), "{tables:?}");
    clients.kms.list_keys().send().await.unwrap();
    clients.sqs.list_queues().send().await.unwrap();
    // Once for the three clients, which share the HTTP client and its connector.
    assert_eq!(ROOTS_ASKED.load(Ordering::SeqCst), asked_before + 1);
}

#[tokio::test]
async fn no_roots_falls_back_to_the_sdks_own() {
    let _default = common::clients().await;
    let clients = AwsClients::from_env_trusting(no_roots).await;
    let table = common::fresh_table(&clients).await;
    assert!(
        clients
            .dynamodb
            .describe_table()
            .table_name(&table)
            .send()
            .await
            .is_ok()
    );
}
