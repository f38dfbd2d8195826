//! The inbound side on a real (SQLite) store: the webhook's signature check and routing, the
//! status store's monotone merge under out-of-order and duplicate deliveries, the status tool's
//! answers, and the routing index kept by the gateway.

use std::sync::Arc;

use serde_json::{Value, json};
use squaremcp_core::routing::{self, RouteOwner};
use squaremcp_core::tool::FailureKind;
use squaremcp_core::{AccountName, Clock, CustomerId, Gateway, Platform, Registry, Secret, Store, SystemClock};
use squaremcp_platform_mocks::whatsapp::{PHONE_NUMBER_ID, WABA_ID};
use squaremcp_platforms::whatsapp::status::{self, DeliveryStatus};
use squaremcp_platforms::whatsapp::webhook::{self, SignatureError, WebhookError, WhatsappWebhook};
use squaremcp_platforms::{PlatformConfig, http_client, modules};

use super::{TOKEN, credential_for, module_of, records, run_with, tool_of};

const APP_SECRET: &str = "test-app-secret-0123456789";
const OTHER_NUMBER: &str = "106540352242999";

fn webhook(records: &squaremcp_platforms::kit::Records) -> WhatsappWebhook {
    WhatsappWebhook::new(records.store.clone(), records.clock.clone(), Some(Secret::new(APP_SECRET.to_owned())), Some(Secret::new("verify-me".to_owned())))
}

/// A `messages` notification for `phone_number_id`, as Meta sends it.
fn notification(phone_number_id: &str, value: Value) -> Vec<u8> {
    let mut value = value;
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] = json!({"display_phone_number": "15550783881", "phone_number_id": phone_number_id});
    json!({"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes": [{"field": "messages", "value": value}]}]})
        .to_string()
        .into_bytes()
}

fn statuses(id: &str, status: &str, timestamp: &str) -> Value {
    json!({"statuses": [{"id": id, "status": status, "timestamp": timestamp, "recipient_id": "16505551234"}]})
}

async fn deliver(hook: &WhatsappWebhook, body: &[u8]) -> Result<webhook::Accepted, WebhookError> {
    hook.deliver(Some(&webhook::sign(APP_SECRET.as_bytes(), body)), body).await
}

fn customer(n: u8) -> CustomerId {
    CustomerId::parse(&format!("cus_{:024x}", n)).expect("an id")
}

async fn claim(store: &dyn Store, number: &str, who: &CustomerId) {
    let owner = RouteOwner { customer_id: who.clone(), account: AccountName::default_account() };
    routing::claim(store, Platform::Whatsapp, number, &owner, SystemClock.now()).await.expect("claimed");
}

#[tokio::test]
async fn statuses_are_routed_to_the_numbers_customer_and_only_move_forward() {
    let records = records();
    let hook = webhook(&records);
    let (alice, bob) = (customer(1), customer(2));
    claim(records.store.as_ref(), PHONE_NUMBER_ID, &alice).await;
    claim(records.store.as_ref(), OTHER_NUMBER, &bob).await;
    let id = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI3QTA1";

    // Out of order and duplicated: read arrives first, then sent, delivered, read again.
    for (status, at) in [("read", "3"), ("sent", "1"), ("delivered", "2"), ("read", "3"), ("sent", "1")] {
        deliver(&hook, &notification(PHONE_NUMBER_ID, statuses(id, status, at))).await.expect("accepted");
    }
    let now = SystemClock.now();
    let stored = status::get(records.store.as_ref(), &alice, id, now).await.unwrap().expect("a status");
    assert_eq!((stored.status, stored.timestamp.as_str()), (DeliveryStatus::Read, "3"));
    assert_eq!(status::get(records.store.as_ref(), &bob, id, now).await.unwrap(), None, "stored for the number's customer only");

    // `failed` wins over everything, even after `read`.
    let failed = json!({"statuses": [{"id": id, "status": "failed", "timestamp": "4", "recipient_id": "16505551234",
        "errors": [{"code": 131026, "title": "Message undeliverable"}]}]});
    let accepted = deliver(&hook, &notification(PHONE_NUMBER_ID, failed)).await.expect("accepted");
    assert_eq!(accepted.statuses_advanced, 1);
    let accepted = deliver(&hook, &notification(PHONE_NUMBER_ID, statuses(id, "read", "5"))).await.expect("accepted");
    assert_eq!((accepted.statuses_advanced, accepted.statuses_unchanged), (0, 1));
    assert_eq!(status::get(records.store.as_ref(), &alice, id, now).await.unwrap().map(|s| s.status), Some(DeliveryStatus::Failed));
}

#[tokio::test]
async fn concurrent_deliveries_of_one_messages_statuses_keep_the_furthest() {
    let records = records();
    let hook = Arc::new(webhook(&records));
    let alice = customer(1);
    claim(records.store.as_ref(), PHONE_NUMBER_ID, &alice).await;
    let id = "wamid.concurrent";
    let mut tasks = Vec::new();
    for round in 0..4 {
        for (status, at) in [("sent", "1"), ("delivered", "2"), ("read", "3")] {
            let hook = hook.clone();
            let body = notification(PHONE_NUMBER_ID, statuses(id, status, at));
            tasks.push(tokio::spawn(async move {
                let _ = round;
                deliver(&hook, &body).await.expect("accepted")
            }));
        }
    }
    for task in tasks {
        task.await.expect("joined");
    }
    let stored = status::get(records.store.as_ref(), &alice, id, SystemClock.now()).await.unwrap().expect("a status");
    assert_eq!(stored.status, DeliveryStatus::Read);
}

#[tokio::test]
async fn messages_are_stored_once_and_unknown_numbers_store_nothing() {
    let records = records();
    let hook = webhook(&records);
    let alice = customer(1);
    claim(records.store.as_ref(), PHONE_NUMBER_ID, &alice).await;
    let message = json!({"contacts": [{"profile": {"name": "Kerry Fisher"}, "wa_id": "16315551234"}],
        "messages": [{"from": "16315551234", "id": "wamid.inbound1", "timestamp": "1750263773", "type": "text", "text": {"body": "Hi"}}]});
    let first = deliver(&hook, &notification(PHONE_NUMBER_ID, message.clone())).await.expect("accepted");
    let again = deliver(&hook, &notification(PHONE_NUMBER_ID, message.clone())).await.expect("accepted");
    assert_eq!((first.messages_stored, again.messages_stored, again.messages_duplicate), (1, 0, 1));
    let stored = records.store.get_item(&webhook::message_key(&alice, "wamid.inbound1"), SystemClock.now()).await.unwrap();
    let stored: Value = serde_json::from_slice(&stored.expect("kept for outbound events")).unwrap();
    assert_eq!(stored["message"]["text"]["body"], "Hi");

    let unknown = deliver(&hook, &notification("999999999999", statuses("wamid.stranger", "read", "1"))).await.expect("acknowledged");
    assert_eq!((unknown.unrouted, unknown.statuses_advanced, unknown.messages_stored), (1, 0, 0));
}

#[tokio::test]
async fn a_bad_signature_or_body_is_refused_before_anything_is_stored() {
    let records = records();
    let hook = webhook(&records);
    let alice = customer(1);
    claim(records.store.as_ref(), PHONE_NUMBER_ID, &alice).await;
    let body = notification(PHONE_NUMBER_ID, statuses("wamid.forged", "read", "1"));
    let forged = webhook::sign(b"not-the-app-secret", &body);
    assert!(matches!(hook.deliver(Some(&forged), &body).await, Err(WebhookError::Signature(SignatureError::Mismatch))));
    assert!(matches!(hook.deliver(None, &body).await, Err(WebhookError::Signature(SignatureError::Missing))));
    assert_eq!(status::get(records.store.as_ref(), &alice, "wamid.forged", SystemClock.now()).await.unwrap(), None);

    for malformed in [&b"not json"[..], br#"{"object": "page", "entry": []}"#, br#"{"object": "whatsapp_business_account"}"#] {
        assert!(matches!(deliver(&hook, malformed).await, Err(WebhookError::Malformed(_))), "{}", String::from_utf8_lossy(malformed));
    }
    let unconfigured = WhatsappWebhook::new(records.store.clone(), records.clock.clone(), None, None);
    assert!(matches!(unconfigured.deliver(Some("sha256=00"), &body).await, Err(WebhookError::NotConfigured)));
}

#[test]
fn the_handshake_echoes_the_challenge_only_for_the_right_token() {
    let records = records();
    let hook = webhook(&records);
    assert_eq!(hook.subscribe(Some("subscribe"), Some("verify-me"), Some("1158201444")), Ok("1158201444".to_owned()));
    assert!(hook.subscribe(Some("subscribe"), Some("verify-mf"), Some("1")).is_err());
    assert!(hook.subscribe(Some("unsubscribe"), Some("verify-me"), Some("1")).is_err());
    assert!(hook.subscribe(Some("subscribe"), None, Some("1")).is_err());
    assert!(hook.subscribe(Some("subscribe"), Some("verify-me"), Some("<script>")).is_ok(), "printable challenges are echoed as text/plain");
    assert!(hook.subscribe(Some("subscribe"), Some("verify-me"), Some("a b")).is_err());
    let unconfigured = WhatsappWebhook::new(records.store.clone(), records.clock.clone(), None, None);
    assert!(unconfigured.subscribe(Some("subscribe"), Some(""), Some("1")).is_err());
}

#[tokio::test]
async fn get_message_status_answers_from_the_store_for_the_numbers_customer_only() {
    let records = records();
    let config = PlatformConfig::new(http_client()).with_records(records.clone());
    let tool = tool_of(module_of(&config).as_ref(), "whatsapp_get_message_status");
    let id = "wamid.status1";
    let ask = || json!({"message_id": id});

    // Nobody connected the number through the gateway: nothing is routed to this credential.
    let unrouted = run_with(&tool, &credential_for(PHONE_NUMBER_ID), ask()).await.expect("an answer");
    assert_eq!(unrouted.structured["status"], "unknown");
    assert!(unrouted.structured["note"].as_str().unwrap().contains("store the WhatsApp credential again"));

    let (alice, bob) = (customer(1), customer(2));
    claim(records.store.as_ref(), PHONE_NUMBER_ID, &alice).await;
    claim(records.store.as_ref(), OTHER_NUMBER, &bob).await;
    let nothing_yet = run_with(&tool, &credential_for(PHONE_NUMBER_ID), ask()).await.expect("an answer");
    assert_eq!(nothing_yet.structured["status"], "unknown");
    assert!(nothing_yet.structured["note"].as_str().unwrap().starts_with("No status has arrived"), "{}", nothing_yet.structured);

    let hook = webhook(&records);
    for (status, at) in [("delivered", "2"), ("sent", "1")] {
        deliver(&hook, &notification(PHONE_NUMBER_ID, statuses(id, status, at))).await.expect("accepted");
    }
    let delivered = run_with(&tool, &credential_for(PHONE_NUMBER_ID), ask()).await.expect("an answer");
    assert_eq!(delivered.structured, json!({"id": id, "status": "delivered", "timestamp": "2", "recipient_id": "16505551234"}));
    let schema = tool.definition().output_schema.clone().expect("an output schema");
    squaremcp_core::schema::validate(&schema, &delivered.structured).expect("conforms");

    // Bob, with his own number, cannot read Alice's message.
    let bobs = run_with(&tool, &credential_for(OTHER_NUMBER), ask()).await.expect("an answer");
    assert_eq!(bobs.structured["status"], "unknown");

    let without_store = tool_of(module_of(&PlatformConfig::new(http_client())).as_ref(), "whatsapp_get_message_status");
    let failure = run_with(&without_store, &credential_for(PHONE_NUMBER_ID), ask()).await.expect_err("no store");
    assert_eq!(failure.kind, FailureKind::NotSupported);
    assert!(!failure.message.contains(TOKEN));
}

/// A gateway on a temporary SQLite store and key file, with the platforms' modules.
fn gateway(dir: &std::path::Path) -> Gateway {
    let store: Arc<dyn Store> = Arc::new(squaremcp_embedded::SqliteStore::open_temporary().unwrap());
    let keyring = Arc::new(squaremcp_embedded::KeyFileKeyring::open_or_create(&dir.join("keyring.json")).unwrap());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    Gateway::new(store, keyring, clock, Arc::new(Registry::new(modules(&PlatformConfig::new(http_client())))), None)
}

#[tokio::test]
async fn the_gateway_keeps_one_customer_per_number_in_the_routing_index() {
    let dir = std::env::temp_dir().join(format!("squaremcp-wa-routing-{}", squaremcp_core::random::hex_id::<6>()));
    std::fs::create_dir_all(&dir).unwrap();
    let gateway = gateway(&dir);
    let alice = gateway.create_customer("alice@example.com", "free", None).await.unwrap().id;
    let bob = gateway.create_customer("bob@example.com", "free", None).await.unwrap().id;
    let default = AccountName::default_account;
    let document = |number: &str| json!({"access_token": TOKEN, "phone_number_id": number, "waba_id": WABA_ID});
    let owner_of = |number: &'static str| {
        let store = gateway.store();
        async move { routing::owner(store, Platform::Whatsapp, number, SystemClock.now()).await.unwrap().map(|o| o.customer_id) }
    };

    gateway.set_credential(&alice, Platform::Whatsapp, default(), &document(PHONE_NUMBER_ID)).await.expect("stored");
    assert_eq!(owner_of(PHONE_NUMBER_ID).await, Some(alice.clone()));
    // Storing the same credential again is fine; another customer is refused, with the reason.
    gateway.set_credential(&alice, Platform::Whatsapp, default(), &document(PHONE_NUMBER_ID)).await.expect("stored again");
    let refused = gateway.set_credential(&bob, Platform::Whatsapp, default(), &document(PHONE_NUMBER_ID)).await.expect_err("taken");
    let why = refused.to_string();
    assert!(why.contains(PHONE_NUMBER_ID) && why.contains("another customer") && why.contains("one customer only"), "{why}");
    assert!(!why.contains(TOKEN) && !why.contains(alice.as_str()), "{why}");
    assert!(gateway.store().credentials(&bob, Some(Platform::Whatsapp)).await.unwrap().is_empty(), "nothing stored for Bob");
    let second_account = AccountName::parse("second").unwrap();
    let same_customer = gateway.set_credential(&alice, Platform::Whatsapp, second_account, &document(PHONE_NUMBER_ID)).await;
    assert!(same_customer.expect_err("one account per number").to_string().contains("account `default`"));

    // A new number for the same account moves the claim; deleting the credential releases it.
    gateway.set_credential(&alice, Platform::Whatsapp, default(), &document(OTHER_NUMBER)).await.expect("replaced");
    assert_eq!((owner_of(PHONE_NUMBER_ID).await, owner_of(OTHER_NUMBER).await), (None, Some(alice.clone())));
    gateway.set_credential(&bob, Platform::Whatsapp, default(), &document(PHONE_NUMBER_ID)).await.expect("free again");
    assert_eq!(owner_of(PHONE_NUMBER_ID).await, Some(bob.clone()));
    assert!(gateway.delete_credential(&alice, Platform::Whatsapp, &default()).await.unwrap());
    assert_eq!(owner_of(OTHER_NUMBER).await, None);
    assert!(!gateway.delete_credential(&alice, Platform::Whatsapp, &default()).await.unwrap());
    // Another platform routes nothing and needs no claim.
    let telegram = json!({"bot_token": "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawXy"});
    gateway.set_credential(&alice, Platform::Telegram, default(), &telegram).await.expect("stored");
    let _ = std::fs::remove_dir_all(&dir);
}
