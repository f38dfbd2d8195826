//! Every item that expires is written with the table's TTL attribute, and the table has TTL on
//! it: DynamoDB deletes them (late; reads filter them, see the conformance suite). SQLite's
//! sweep has its own test in `squaremcp-embedded`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
use squaremcp_aws::DynamoStore;
use squaremcp_aws::table::{PK, SK, TTL_ATTRIBUTE};
use squaremcp_core::ports::PutMode;
use squaremcp_core::{
    CallRecord, Customer, CustomerId, Email, PlanName, Platform, Store, Timestamp,
};

const NOW: Timestamp = Timestamp::from_unix(1_800_000_000);

#[tokio::test]
async fn expiring_items_carry_the_ttl_attribute_the_table_deletes_by() {
    let clients = common::clients().await;
    let table = common::fresh_table(&clients).await;
    let ttl = clients
        .dynamodb
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description.unwrap();
    assert_eq!(ttl.attribute_name(), Some(TTL_ATTRIBUTE));
    assert!(
        matches!(
            ttl.time_to_live_status(),
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        ),
        "{ttl:?}"
    );

    let store = DynamoStore::new(clients.dynamodb.clone(), table.clone());
    let expires = NOW.plus_seconds(600);
    store
        .put_item("session:1", b"s", Some(expires), PutMode::Replace, NOW)
        .await
        .unwrap();
    store
        .put_item("settings", b"kept", None, PutMode::Replace, NOW)
        .await
        .unwrap();
    store
        .put_single_use("code:1", b"c", expires, NOW)
        .await
        .unwrap();
    let customer = Customer {
        id: CustomerId::generate(),
        email: Email::parse("ttl@example.com").unwrap(),
        plan: PlanName::parse("free").unwrap(),
        password_hash: None,
        created_at: NOW,
    };
    store.insert_customer(&customer).await.unwrap();
    let record = CallRecord {
        id: CallRecord::new_id(NOW),
        customer_id: customer.id.clone(),
        at: NOW,
        tool: "telegram_send_message".into(),
        platform: Platform::Telegram,
        auth_method: "api_key".into(),
        client: None,
        duration_ms: 12,
        upstream_requests: 1,
        outcome: "ok".into(),
        counted: true,
        arguments: serde_json::json!({}),
        expires_at: expires,
        calls: 1,
    };
    store.record_call(&record, None).await.unwrap();
    // A rate-limit window's counter expires; the usage of a month (and sequence numbers) live on.
    store
        .add_to_expiring_counter("ratelimit:window", 1, Some(5), expires)
        .await
        .unwrap();
    store.add_to_counter("usage", 1, None).await.unwrap();

    let items = clients
        .dynamodb
        .scan()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let expiry_of = |prefix: &str| -> Vec<Option<String>> {
        items
            .iter()
            .filter(|item| {
                let (pk, sk) = (item[PK].as_s().unwrap(), item[SK].as_s().unwrap());
                pk.starts_with(prefix) || sk.starts_with(prefix)
            })
            .map(|item| item.get(TTL_ATTRIBUTE).and_then(|v| v.as_n().ok()).cloned())
            .collect()
    };
    let expected = vec![Some(expires.unix().to_string())];
    assert_eq!(
        expiry_of("ITEM#session:1"),
        expected,
        "an item with an expiry"
    );
    assert_eq!(expiry_of("ITEM#settings"), [None], "an item without one");
    assert_eq!(expiry_of("ONCE#code:1"), expected, "a single-use item");
    assert_eq!(expiry_of("CALL#"), expected, "a call record");
    assert_eq!(
        expiry_of("COUNTER#ratelimit:window"),
        expected,
        "a window's counter"
    );
    assert_eq!(expiry_of("COUNTER#usage"), [None], "a month's usage");
    assert!(
        items.iter().all(
            |item| !matches!(item.get(TTL_ATTRIBUTE), Some(v) if !matches!(v, AttributeValue::N(_)))
        ),
        "TTL wants a number"
    );
}
