//! The account page's webhook endpoints through the real `squaremcp serve`, signed in as the
//! customer with plain form posts (no script): add an endpoint (its `whsec_` secret shown once,
//! never on the page again), a form without the page's CSRF token refused, the endpoint disabled
//! after failing for the (shortened) window and marked, enabled again, its dead letter listed
//! and replayed to a receiver that verifies the signature, the secret rotated, the endpoint
//! removed. Runs on SQLite, and on DynamoDB Local and moto's SQS with `SQUAREMCP_STORE=dynamodb`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::json;
use squaremcp_platforms::whatsapp::webhook::sign;
use squaremcp_tests::oauth::{Browser, hidden_field};
use squaremcp_tests::receiver::{Receiver, queues};
use squaremcp_tests::{Server, TempDir, cli_json_with_env, create_customer_with_password};

const APP_SECRET: &str = "e2e-app-secret-account-0123456789";
const PHONE_NUMBER_ID: &str = "106540352242922";
const PASSWORD: &str = "correct horse battery";

fn secret_on(page: &str) -> String {
    let start = page.find("whsec_").expect("a secret on the page");
    page[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '/' | '='))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_managed_on_the_account_page_without_script() {
    let receiver = Receiver::start().await;
    receiver.control("/_mode", json!({"mode": "down"})).await;
    let data = TempDir::new("account-webhooks");
    let dir = data.path();
    let mut env: Vec<(String, String)> = vec![
        ("SQUAREMCP_ALLOW_PRIVATE_HOSTS".into(), "1".into()),
        (
            "SQUAREMCP_WEBHOOK_RETRY_SCHEDULE".into(),
            "1,1,1,1,1,1".into(),
        ),
        (
            "SQUAREMCP_WEBHOOK_DISABLE_AFTER_HOURS".into(),
            "0.0005".into(),
        ),
        ("SQUAREMCP_WHATSAPP_APP_SECRET".into(), APP_SECRET.into()),
        ("SQUAREMCP_WHATSAPP_VERIFY_TOKEN".into(), "unused".into()),
    ];
    env.extend(queues(dir));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let customer = create_customer_with_password(dir, "hooks-page@example.com", PASSWORD);
    let credential = json!({"access_token": "EAAGm0PX4ZCpsBAe2e-account_0123456789abcdefghijk", "phone_number_id": PHONE_NUMBER_ID, "waba_id": "102290129340398"});
    cli_json_with_env(
        dir,
        &[
            "credentials",
            "set",
            "--customer",
            &customer,
            "--platform",
            "whatsapp",
        ],
        &credential.to_string(),
        &env,
    );
    let server = Server::start(dir, &env);

    let mut browser = Browser::new(&server.base);
    let signed_in = browser
        .login("hooks-page@example.com", PASSWORD, "/account")
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let page = browser.get("/account").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Webhook endpoints") && page.body.contains("No endpoints yet"),
        "{}",
        page.body
    );
    let csrf = hidden_field(&page.body, "csrf").unwrap();

    // Without the page's token: refused, nothing added.
    let forged = browser
        .post_form(
            "/account/webhooks",
            &[("csrf", "forged"), ("url", "https://example.com/x")],
        )
        .await;
    assert_eq!(forged.status, 403);
    // A private address the operator did not allow would be refused; this one is allowed here.
    let hook_url = format!("{}/hook", receiver.base);
    let added = browser
        .post_form(
            "/account/webhooks",
            &[
                ("csrf", &csrf),
                ("url", &hook_url),
                ("event", "whatsapp.message.received"),
            ],
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.body);
    let secret = secret_on(&added.body);
    receiver
        .control("/_secret", json!({"secret": secret}))
        .await;
    let page = browser.get("/account").await;
    assert!(
        page.body.contains(&hook_url)
            && page.body.contains("whatsapp.message.received")
            && page.body.contains("Active"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains(&secret) && !page.body.contains("whsec_"),
        "no secret rendered back"
    );
    let endpoint = cli_json_with_env(
        dir,
        &["webhooks", "list", "--customer", &customer],
        "",
        &env,
    )[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The receiver is down: the endpoint fails for the whole (2 s) window and is disabled.
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
        "messages": [{"from": "16315551234", "id": "wamid.ACCOUNT1", "timestamp": "1751371200", "type": "text", "text": {"body": "hi"}}]}}]}]})
    .to_string();
    let status = reqwest::Client::new()
        .post(format!("{}/webhooks/whatsapp", server.base))
        .header(
            "x-hub-signature-256",
            sign(APP_SECRET.as_bytes(), body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    let page = loop {
        let page = browser.get("/account").await;
        if (page.body.contains("Disabled") && page.body.contains("dl_"))
            || Instant::now() > deadline
        {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        page.body.contains("Disabled</strong> since")
            && page.body.contains("/account/webhooks/enable"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("failed (HTTP 503)"),
        "the last delivery is shown: {}",
        page.body
    );
    assert!(
        page.body.contains("dl_") && page.body.contains("Replay all"),
        "{}",
        page.body
    );

    // Enabled and replayed with the receiver back: delivered once, verified.
    receiver.control("/_mode", json!({"mode": "up"})).await;
    let enabled = browser
        .post_form(
            "/account/webhooks/enable",
            &[("csrf", &csrf), ("endpoint", &endpoint)],
        )
        .await;
    assert_eq!(enabled.status, 303);
    let replayed = browser
        .post_form("/account/webhooks/replay", &[("csrf", &csrf), ("all", "1")])
        .await;
    assert_eq!(replayed.status, 200, "{}", replayed.body);
    assert!(
        replayed.body.contains("1 delivered, 0 not delivered"),
        "{}",
        replayed.body
    );
    let state = receiver.state().await;
    assert_eq!(
        (
            state["events"].as_object().unwrap().len(),
            state["rejected"].as_u64()
        ),
        (1, Some(0)),
        "{state}"
    );
    let page = browser.get("/account").await;
    assert!(
        page.body.contains("Active") && page.body.contains("None: every event was delivered"),
        "{}",
        page.body
    );

    // Rotation shows the new secret once; removal empties the list.
    let rotated = browser
        .post_form(
            "/account/webhooks/rotate",
            &[("csrf", &csrf), ("endpoint", &endpoint)],
        )
        .await;
    assert_eq!(rotated.status, 200);
    let new_secret = secret_on(&rotated.body);
    assert_ne!(new_secret, secret);
    assert!(rotated.body.contains("24 hours"));
    assert!(!browser.get("/account").await.body.contains(&new_secret));
    let removed = browser
        .post_form(
            "/account/webhooks/remove",
            &[("csrf", &csrf), ("endpoint", &endpoint)],
        )
        .await;
    assert_eq!(removed.status, 303);
    assert!(
        browser
            .get("/account")
            .await
            .body
            .contains("No endpoints yet")
    );
    drop(server);
}
