//! The store round trips of one authenticated `tools/call` through the `mcp` Lambda, on
//! DynamoDB (DynamoDB Local) and KMS (moto): every DynamoDB request is counted by an SDK
//! interceptor. Warm, on a plan with overage: 3 (API key, credentials, the call record written
//! with its usage counter). A cold start adds the keyring (once per process), the customer's
//! plan (cached for a minute) and the key's last use (once an hour per key and process). The counts are printed (`cargo test -- --nocapture`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use squaremcp_aws::{AwsClients, RequestCounter};
use squaremcp_core::{AccountName, Platform, random};
use squaremcp_runtime::{Backends, Config, app_state, gateway, lambda};
use squaremcp_platform_mocks::Mock;
use squaremcp_platform_mocks::telegram::Telegram;

const TOKEN: &str = "333333333:AAHround_trip_token_abcdefghijklmnopq";

fn config(table: &str, telegram: &str) -> Config {
    let vars = BTreeMap::from([
        ("SQUAREMCP_STORE", "dynamodb".to_owned()),
        ("SQUAREMCP_TABLE", table.to_owned()),
        ("SQUAREMCP_KMS_KEY_ID", "alias/squaremcp-round-trips".to_owned()),
        ("SQUAREMCP_TELEGRAM_BASE_URL", telegram.to_owned()),
        ("SQUAREMCP_PUBLIC_URL", "https://mcp.example.com".to_owned()),
        ("SQUAREMCP_JWT_SECRET", "round-trips-jwt-secret-0123456789abcdef".to_owned()),
    ]);
    Config::from_lookup(|name| vars.get(name).cloned()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_authenticated_tools_call_costs_three_dynamodb_requests() {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_default();
    assert!(endpoint.starts_with("http://127.0.0.1"), "run through scripts/test: AWS_ENDPOINT_URL_DYNAMODB must point at DynamoDB Local");
    let telegram = Mock::start(Telegram::accepting(&[TOKEN])).await;
    let table = format!("round-trips-{}", random::hex_id::<6>());
    let config = config(&table, telegram.base_url());
    squaremcp_runtime::initialize(&config, "round-trips-retry", "round-trips-dlq").await.unwrap();

    // The administrator's side: a customer, a key and Telegram credentials.
    let admin = gateway(&config, Backends::aws(&config, &AwsClients::from_env().await));
    let customer = admin.create_customer("ada@example.com", "pro", None).await.unwrap();
    let (_, key) = admin.create_api_key(&customer.id, "lambda").await.unwrap();
    admin
        .set_credential(&customer.id, Platform::Telegram, AccountName::default_account(), &json!({"bot_token": TOKEN}))
        .await
        .unwrap();

    // A cold start of the function: fresh clients, counted.
    let counter = RequestCounter::new();
    let clients = AwsClients::from_env().await.counting_dynamodb_requests(&counter);
    let router = squaremcp_http::mcp_router(app_state(&config, gateway(&config, Backends::aws(&config, &clients))).unwrap());
    assert!(counter.take().is_empty(), "building the function's state sends no DynamoDB request");

    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/mcp/tools-call.json");
    let event = std::fs::read_to_string(sample).unwrap().replace("sample-admin-key", key.expose());
    let mut counts = Vec::new();
    for call in ["cold start", "warm"] {
        let response = lambda::invoke(router.clone(), &event).await.unwrap();
        assert_eq!(response["statusCode"], 200, "{response}");
        let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["result"]["isError"], false, "{body}");
        assert_eq!(body["result"]["structuredContent"]["username"], "square_test_bot", "{body}");
        let requests = counter.take();
        println!("DynamoDB requests for one authenticated tools/call ({call}): {} {requests:?}", requests.len());
        counts.push(requests);
    }
    // Cold: the keyring, the customer's plan, and the key's last use (written at most once an
    // hour per key and process, for the account page).
    assert!(counts[0].len() <= 6, "cold start: {:?}", counts[0]);
    assert_eq!(
        counts[1],
        ["GetItem", "Query", "TransactWriteItems"],
        "warm: the API key by hash, the credentials, then the call record with its usage counter"
    );
    assert_eq!(telegram.requests().len(), 2, "both calls reached the platform");
}
