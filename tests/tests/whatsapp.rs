//! WhatsApp end to end: the real `squaremcp serve` and CLI against the shared WhatsApp mock.
//! A message is sent with `whatsapp_send_message`; Meta's signed status webhooks arrive out of
//! order and duplicated at `/webhooks/whatsapp`; `whatsapp_get_message_status` then answers the
//! furthest status. A forged webhook stores nothing, another customer cannot read the status,
//! and a number belongs to one customer only. Runs on SQLite, and on DynamoDB Local with
//! `SQUAREMCP_STORE=dynamodb` (scripts/test).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use squaremcp_platform_mocks::Mock;
use squaremcp_platform_mocks::whatsapp::{PHONE_NUMBER_ID, WABA_ID, Whatsapp};
use squaremcp_platforms::whatsapp::webhook::sign;
use squaremcp_tests::{Server, TempDir, cli, cli_json, create_tenant};

const TOKEN: &str = "EAAGm0PX4ZCpsBAe2e-whatsapp_token_0123456789abcdefghijklmnop";
const OTHER_TOKEN: &str = "EAAGm0PX4ZCpsBAe2e-other_token_0123456789abcdefghijklmnopqr";
const OTHER_NUMBER: &str = "106540352242999";
const APP_SECRET: &str = "e2e-app-secret-0123456789abcdef";
const VERIFY_TOKEN: &str = "e2e-verify-token";

async fn call(server: &Server, key: &str, name: &str, arguments: Value) -> Value {
    server.call_tool(key, name, arguments).await
}

/// A `messages` notification for `phone_number_id` with one status, as Meta sends it.
fn status_notification(phone_number_id: &str, id: &str, status: &str, timestamp: &str) -> String {
    json!({"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
        "statuses": [{"id": id, "status": status, "timestamp": timestamp, "recipient_id": "15551234567",
            "pricing": {"billable": true, "pricing_model": "PMP", "category": "service"}}]}}]}]})
    .to_string()
}

async fn post_webhook(server: &Server, body: &str, signature: Option<String>) -> u16 {
    let mut request = reqwest::Client::new().post(format!("{}/webhooks/whatsapp", server.base)).header("content-type", "application/json");
    if let Some(signature) = signature {
        request = request.header("x-hub-signature-256", signature);
    }
    request.body(body.to_owned()).send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_arrive_by_signed_webhook_out_of_order_and_are_read_by_their_customer_only() {
    let mock = Mock::start(Whatsapp::accepting(&[TOKEN, OTHER_TOKEN])).await;
    let data = TempDir::new("whatsapp");
    let alice = create_tenant(data.path(), "alice@example.com");
    let bob = create_tenant(data.path(), "bob@example.com");
    let document = |token: &str, number: &str| json!({"access_token": token, "phone_number_id": number, "waba_id": WABA_ID}).to_string();
    let set = |customer: &str| ["credentials", "set", "--customer", customer, "--platform", "whatsapp"].map(str::to_owned);
    cli_json(data.path(), &set(&alice.id).each_ref().map(String::as_str), &document(TOKEN, PHONE_NUMBER_ID));

    // Bob cannot connect Alice's number: the CLI says why, and nothing is stored.
    let refused = cli(data.path(), &set(&bob.id).each_ref().map(String::as_str), &document(OTHER_TOKEN, PHONE_NUMBER_ID));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(PHONE_NUMBER_ID) && stderr.contains("another customer") && stderr.contains("one customer only"), "{stderr}");
    assert!(!stderr.contains(OTHER_TOKEN) && !stderr.contains(&alice.id), "{stderr}");
    cli_json(data.path(), &set(&bob.id).each_ref().map(String::as_str), &document(OTHER_TOKEN, OTHER_NUMBER));

    let server = Server::start(
        data.path(),
        &[
            ("SQUAREMCP_WHATSAPP_BASE_URL", mock.base_url()),
            ("SQUAREMCP_WHATSAPP_APP_SECRET", APP_SECRET),
            ("SQUAREMCP_WHATSAPP_VERIFY_TOKEN", VERIFY_TOKEN),
        ],
    );

    // The subscription handshake.
    let http = reqwest::Client::new();
    let handshake = |token: &str| {
        let url = format!("{}/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444", server.base);
        http.get(url).send()
    };
    let verified = handshake(VERIFY_TOKEN).await.unwrap();
    assert_eq!(verified.status(), 200);
    assert!(verified.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert_eq!(verified.text().await.unwrap(), "1158201444");
    assert_eq!(handshake("wrong").await.unwrap().status(), 403);

    // Alice sends a message.
    let sent = call(&server, &alice.key, "whatsapp_send_message", json!({"to": "15551234567", "text": "Your order shipped"})).await;
    assert_eq!(sent["isError"], false, "{sent}");
    let id = sent["structuredContent"]["message_id"].as_str().unwrap().to_owned();
    let request = mock.requests().pop().unwrap();
    assert_eq!(request.path, format!("/v26.0/{PHONE_NUMBER_ID}/messages"));
    assert_eq!(request.header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));

    let ask = json!({"message_id": id});
    let before = call(&server, &alice.key, "whatsapp_get_message_status", ask.clone()).await;
    assert_eq!(before["structuredContent"]["status"], "unknown", "{before}");
    assert!(before["structuredContent"]["note"].as_str().unwrap().contains("No status has arrived"), "{before}");

    // Meta's webhooks, out of order and duplicated.
    for (state, at) in [("read", "1795638603"), ("sent", "1795638601"), ("delivered", "1795638602"), ("read", "1795638603"), ("sent", "1795638601")] {
        let body = status_notification(PHONE_NUMBER_ID, &id, state, at);
        assert_eq!(post_webhook(&server, &body, Some(sign(APP_SECRET.as_bytes(), body.as_bytes()))).await, 200, "{state}");
    }
    // A forged `failed` (signed with another secret) and an unsigned one: refused, nothing stored.
    let forged = status_notification(PHONE_NUMBER_ID, &id, "failed", "1795638604");
    assert_eq!(post_webhook(&server, &forged, Some(sign(b"not-the-app-secret", forged.as_bytes()))).await, 403);
    assert_eq!(post_webhook(&server, &forged, None).await, 401);
    // A number nobody connected is acknowledged (Meta would retry for days) and stores nothing;
    // a body that is not a WhatsApp payload is a 400.
    let stranger = status_notification("999999999999", "wamid.stranger", "read", "1");
    assert_eq!(post_webhook(&server, &stranger, Some(sign(APP_SECRET.as_bytes(), stranger.as_bytes()))).await, 200);
    let garbage = "{\"object\": 5}";
    assert_eq!(post_webhook(&server, garbage, Some(sign(APP_SECRET.as_bytes(), garbage.as_bytes()))).await, 400);

    let after = call(&server, &alice.key, "whatsapp_get_message_status", ask.clone()).await;
    assert_eq!(after["isError"], false, "{after}");
    assert_eq!(
        after["structuredContent"],
        json!({"id": id, "status": "read", "timestamp": "1795638603", "recipient_id": "15551234567"}),
        "the furthest status, not the forged one"
    );

    // Bob, with his own number connected, cannot read Alice's message.
    let bobs = call(&server, &bob.key, "whatsapp_get_message_status", ask.clone()).await;
    assert_eq!(bobs["structuredContent"]["status"], "unknown", "{bobs}");

    for result in [&sent, &before, &after, &bobs] {
        assert!(!result.to_string().contains(TOKEN), "the token reached a result: {result}");
    }

    // Deleting Alice's credential frees the number for Bob.
    cli_json(data.path(), &["credentials", "delete", "--customer", &alice.id, "--platform", "whatsapp"], "");
    cli_json(data.path(), &["credentials", "set", "--customer", &bob.id, "--platform", "whatsapp", "--account", "second"], &document(OTHER_TOKEN, PHONE_NUMBER_ID));
}
