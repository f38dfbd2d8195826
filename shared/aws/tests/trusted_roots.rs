//! SDK clients on root certificates handed in by the caller (the process's one read of the
//! system's roots) rather than read by the SDK: requests go through the TLS connector built from
//! them, against the emulators.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use squaremcp_aws::AwsClients;

#[tokio::test]
async fn clients_on_handed_roots_reach_dynamodb_kms_and_sqs() {
    // Checks the emulator variables; the clients it returns are the default ones, for contrast.
    let _default = common::clients().await;
    let roots = rustls_native_certs::load_native_certs().certs;
    assert!(!roots.is_empty(), "this host has no CA bundle to hand in");
    let clients = AwsClients::from_env_trusting(&roots).await;

    let table = common::fresh_table(&clients).await;
    let tables = clients.dynamodb.list_tables().send().await.unwrap();
    assert!(tables.table_names().contains(&table), "{tables:?}");
    clients.kms.list_keys().send().await.unwrap();
    clients.sqs.list_queues().send().await.unwrap();
}

#[tokio::test]
async fn no_roots_falls_back_to_the_sdks_own() {
    let _default = common::clients().await;
    let clients = AwsClients::from_env_trusting::<Vec<u8>>(&[]).await;
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
