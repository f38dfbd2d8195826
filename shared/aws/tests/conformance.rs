//! The store contract against DynamoDB (DynamoDB Local): the same suite SQLite passes, each
//! behaviour on a fresh table; plus the two-process variants and batch writes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use squaremcp_aws::DynamoStore;
use squaremcp_core::Store;

async fn fresh_store() -> Arc<dyn Store> {
    let clients = common::clients().await;
    let table = common::fresh_table(&clients).await;
    Arc::new(DynamoStore::new(clients.dynamodb, table))
}

squaremcp_store_conformance::store_conformance_tests!(fresh_store().await);

/// Two stores with their own clients on one table, as two Lambda instances would have.
async fn two_handles() -> Vec<Arc<dyn Store>> {
    let first = common::clients().await;
    let table = common::fresh_table(&first).await;
    let second = common::clients().await;
    vec![Arc::new(DynamoStore::new(first.dynamodb, table.clone())), Arc::new(DynamoStore::new(second.dynamodb, table))]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counter_is_exact_across_two_clients() {
    squaremcp_store_conformance::counter_respects_limit_exactly_across_handles(two_handles().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_use_is_taken_once_across_two_clients() {
    squaremcp_store_conformance::single_use_items_are_taken_once_across_handles(two_handles().await).await;
}

#[tokio::test]
async fn batch_writes_go_in_chunks_of_25_and_all_arrive() {
    let clients = common::clients().await;
    let table = common::fresh_table(&clients).await;
    let counter = squaremcp_aws::RequestCounter::new();
    let counted = clients.clone().counting_dynamodb_requests(&counter);
    let store = DynamoStore::new(counted.dynamodb, table.clone());
    let items: Vec<HashMap<String, AttributeValue>> = (0..60)
        .map(|n| {
            HashMap::from([
                ("PK".to_owned(), AttributeValue::S("AUDIT#batch".to_owned())),
                ("SK".to_owned(), AttributeValue::S(format!("{n:04}"))),
            ])
        })
        .collect();
    store.put_batch(items).await.expect("a batch of 60 items");
    assert_eq!(counter.take(), ["BatchWriteItem"; 3], "60 items in 3 requests (DynamoDB Local refuses 26)");
    let stored = clients
        .dynamodb
        .query()
        .table_name(&table)
        .key_condition_expression("PK = :pk")
        .expression_attribute_values(":pk", AttributeValue::S("AUDIT#batch".to_owned()))
        .send()
        .await
        .unwrap();
    assert_eq!(stored.count, 60);
}

#[tokio::test]
async fn corrupt_items_are_reported_not_trusted() {
    let clients = common::clients().await;
    let table = common::fresh_table(&clients).await;
    // A credential with a wrong-typed attribute, as a bad manual edit would leave it.
    clients
        .dynamodb
        .put_item()
        .table_name(&table)
        .item("PK", AttributeValue::S("CUS#cus_000000000000000000000001".into()))
        .item("SK", AttributeValue::S("CRED#telegram#default".into()))
        .item("customer_id", AttributeValue::S("cus_000000000000000000000001".into()))
        .item("key_version", AttributeValue::S("one".into()))
        .send()
        .await
        .unwrap();
    let store = DynamoStore::new(clients.dynamodb, table);
    let customer = squaremcp_core::CustomerId::parse("cus_000000000000000000000001").unwrap();
    let error = store.credentials(&customer, None).await.expect_err("a corrupt item");
    assert!(matches!(error, squaremcp_core::StoreError::Corrupt(_)), "{error:?}");
}

/// Copies a credential item with a plain `GetItem` and `PutItem`, every attribute as it is
/// and only the keys changed, as anyone with write access to the table could.
struct RawDynamo {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn credential_keys(keys: &squaremcp_store_conformance::CredentialKeys) -> [(String, AttributeValue); 2] {
    [
        ("PK".to_owned(), AttributeValue::S(format!("CUS#{}", keys.customer_id.as_str()))),
        ("SK".to_owned(), AttributeValue::S(format!("CRED#{}#{}", keys.platform.as_str(), keys.account.as_str()))),
    ]
}

#[async_trait::async_trait]
impl squaremcp_store_conformance::RawCredentials for RawDynamo {
    async fn copy_credential(&self, from: &squaremcp_store_conformance::CredentialKeys, to: &squaremcp_store_conformance::CredentialKeys) {
        let found = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(HashMap::from(credential_keys(from))))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        let mut item = found.item.expect("the credential to copy");
        item.extend(credential_keys(to));
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn credentials_copied_to_other_keys_do_not_open() {
    let clients = common::clients().await;
    let table = common::fresh_table(&clients).await;
    let store = Arc::new(DynamoStore::new(clients.dynamodb.clone(), table.clone()));
    let raw = Arc::new(RawDynamo { client: clients.dynamodb, table });
    squaremcp_store_conformance::credentials_copied_to_other_keys_do_not_open(store, raw).await;
}
