//! Every sample event in `events/webhooks/` goes through the Lambda adapter and the `webhooks`
//! router in-process, exactly as `lambda_http::run` would handle it: the subscription
//! handshake, a signed status notification for a number a customer connected (stored), and the
//! same notification with a bad signature (refused, nothing stored); a Telegram update for a bot
//! in webhook mode (buffered for `telegram_get_updates`) and one with a wrong secret token (403).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use serde_json::{Value, json};
use squaremcp_core::routing::{self, RouteOwner};
use squaremcp_core::{AccountName, Platform};
use squaremcp_platforms::telegram::webhook::{self, Hook};
use squaremcp_runtime::lambda;

/// The bot and secret token of the sample Telegram events.
const BOT_ID: &str = "7012345678";
const TELEGRAM_SECRET: &str = "sample-telegram-secret-token_0123456789";

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

    // The same customer's bot, switched to webhook mode with the sample secret token.
    let bot = json!({"bot_token": format!("{BOT_ID}:AAFq3xZ-9kLmNoPqRsTuVwXyZ_0123456789ab")});
    gateway.set_credential(&customer.id, Platform::Telegram, AccountName::default_account(), &bot).await.unwrap();
    let owner = RouteOwner { customer_id: customer.id.clone(), account: AccountName::default_account() };
    routing::claim(gateway.store(), Platform::Telegram, BOT_ID, &owner, gateway.now()).await.unwrap();
    let hook = Hook::new(owner, format!("https://mcp.example.com/webhooks/telegram/{BOT_ID}"), Vec::new(), TELEGRAM_SECRET, gateway.now());
    webhook::remember(gateway.store(), BOT_ID, hook).await.unwrap();
    let (store, clock) = gateway.store_and_clock();
    let buffered = || async {
        webhook::buffered_updates(store.as_ref(), clock.as_ref(), BOT_ID, None, 100).await.unwrap().unwrap_or_default()
    };

    let mut names: Vec<String> =
        std::fs::read_dir(&events).unwrap().map(|e| e.unwrap().file_name().to_str().unwrap().to_owned()).collect();
    // The bad signature first, so that "nothing stored" is checked before the good one stores.
    names.sort_by_key(|name| !matches!(name.as_str(), "bad-signature.json" | "telegram-bad-secret.json"));
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
            "telegram-bad-secret.json" => {
                assert_eq!(status, 403, "{name}: {response}");
                assert!(buffered().await.is_empty(), "a forged update stores nothing");
            }
            "telegram-update.json" => {
                assert_eq!(status, 200, "{name}: {response}");
                let updates = buffered().await;
                assert_eq!(updates.len(), 1, "{updates:?}");
                assert_eq!((updates[0]["update_id"].as_i64(), updates[0]["message"]["text"].as_str()), (Some(830_172_101), Some("Is my order on its way?")));
            }
            other => panic!("events/webhooks/{other} has no expectation here: add one"),
        }
    }
    let _ = std::fs::remove_dir_all(&data_dir);
    assert_eq!(names.len(), 5, "{names:?}");
}
