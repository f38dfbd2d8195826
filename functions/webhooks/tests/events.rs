//! Every sample event in `events/webhooks/` goes through the Lambda adapter and the `webhooks`
//! router in-process, exactly as `lambda_http::run` would handle it: the subscription
//! handshake, a signed status notification for a number a customer connected (stored), and the
//! same notification with a bad signature (refused, nothing stored).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use serde_json::{Value, json};
use squaremcp_core::{AccountName, Platform};
use squaremcp_runtime::lambda;

const MESSAGE_ID: &str = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJEQjNGRDM5NzBBQzQ5RkRCMTcA";

fn status_item(customer: &str) -> String {
    format!("wa-status#{customer}#{MESSAGE_ID}")
}

#[tokio::test]
async fn every_sample_event_gets_the_expected_response() {
    let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/webhooks");
    let data_dir = std::env::temp_dir().join(format!("squaremcp-webhook-events-{}", std::process::id()));
    let (gateway, state) = lambda::sample_state(&data_dir).unwrap();
    let router = squaremcp_http::webhooks_router(state);

    // The customer who connected the number the sample notifications name.
    let customer = gateway.create_customer("whatsapp@example.com", "free", None).await.unwrap();
    let credential = json!({"access_token": "EAAGsample", "phone_number_id": "106540352242922", "waba_id": "102290129340398"});
    gateway.set_credential(&customer.id, Platform::Whatsapp, AccountName::default_account(), &credential).await.unwrap();
    let stored = || async { gateway.store().get_item(&status_item(customer.id.as_str()), gateway.now()).await.unwrap() };

    let mut names: Vec<String> =
        std::fs::read_dir(&events).unwrap().map(|e| e.unwrap().file_name().to_str().unwrap().to_owned()).collect();
    // The bad signature first, so that "nothing stored" is checked before the good one stores.
    names.sort_by_key(|name| name != "bad-signature.json");
    for name in &names {
        let event = std::fs::read_to_string(events.join(name)).unwrap();
        let response = lambda::invoke(router.clone(), &event).await.unwrap();
        let status = response["statusCode"].as_u64().unwrap();
        match name.as_str() {
            "handshake.json" => {
                assert_eq!(status, 200, "{name}: {response}");
                assert_eq!(response["body"], "1158201444");
                assert!(response["headers"]["content-type"].as_str().unwrap().starts_with("text/plain"), "{response}");
            }
            "bad-signature.json" => {
                assert_eq!(status, 403, "{name}: {response}");
                assert_eq!(stored().await, None, "a forged notification stores nothing");
            }
            "status-signed.json" => {
                assert_eq!(status, 200, "{name}: {response}");
                let record: Value = serde_json::from_slice(&stored().await.expect("the status is stored")).unwrap();
                assert_eq!((record["status"].as_str(), record["id"].as_str()), (Some("delivered"), Some(MESSAGE_ID)));
            }
            other => panic!("events/webhooks/{other} has no expectation here: add one"),
        }
    }
    let _ = std::fs::remove_dir_all(&data_dir);
    assert_eq!(names.len(), 3, "{names:?}");
}
