//! An outbound endpoint that fails for the whole disable window (shortened here to 4 s with
//! `SQUAREMCP_WEBHOOK_DISABLE_AFTER_HOURS=0.001`) is disabled by the real `squaremcp serve`: its
//! customer gets an email, `webhooks list` marks it, its events wait in the dead-letter queue,
//! and `webhooks enable` plus a replay deliver them once. Runs on SQLite, and on DynamoDB Local
//! and moto's SQS with `SQUAREMCP_STORE=dynamodb`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use squaremcp_platforms::whatsapp::webhook::sign;
use squaremcp_tests::receiver::{Receiver, queues};
use squaremcp_tests::{
    Server, SmtpSink, TempDir, cli_json_with_env, cli_with_env, create_tenant_on_plan_with_env,
};

const APP_SECRET: &str = "e2e-app-secret-health-0123456789";
const PHONE_NUMBER_ID: &str = "106540352242922";

fn inbound_message(wamid: &str) -> String {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
        "messages": [{"from": "16315551234", "id": wamid, "timestamp": "1751371200", "type": "text", "text": {"body": "hi"}}]}}]}]})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_failing_for_the_window_is_disabled_marked_and_its_customer_emailed() {
    let receiver = Receiver::start().await;
    receiver.control("/_mode", json!({"mode": "down"})).await;
    let smtp = SmtpSink::start(0);
    let data = TempDir::new("webhook-health");
    let dir = data.path();
    let mut env: Vec<(String, String)> = vec![
        ("SQUAREMCP_ALLOW_PRIVATE_HOSTS".into(), "1".into()),
        (
            "SQUAREMCP_WEBHOOK_RETRY_SCHEDULE".into(),
            "1,1,1,1,1,1,1,1,1,1,1,1".into(),
        ),
        (
            "SQUAREMCP_WEBHOOK_DISABLE_AFTER_HOURS".into(),
            "0.001".into(),
        ),
        ("SQUAREMCP_WHATSAPP_APP_SECRET".into(), APP_SECRET.into()),
        ("SQUAREMCP_WHATSAPP_VERIFY_TOKEN".into(), "unused".into()),
        ("SQUAREMCP_SMTP_URL".into(), smtp.url()),
        (
            "SQUAREMCP_MAIL_FROM".into(),
            "SquareMCP <hooks@squaremcp.test>".into(),
        ),
    ];
    env.extend(queues(dir));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let cli = |args: &[&str]| cli_json_with_env(dir, args, "", &env);

    let tenant = create_tenant_on_plan_with_env(dir, "hooks-health@example.com", "free", &env);
    let customer = tenant.id.as_str();
    let credential = json!({"access_token": "EAAGm0PX4ZCpsBAe2e-health_0123456789abcdefghijk", "phone_number_id": PHONE_NUMBER_ID, "waba_id": "102290129340398"});
    cli_json_with_env(
        dir,
        &[
            "credentials",
            "set",
            "--customer",
            customer,
            "--platform",
            "whatsapp",
        ],
        &credential.to_string(),
        &env,
    );
    let added = cli(&[
        "webhooks",
        "add",
        "--customer",
        customer,
        "--url",
        &format!("{}/hook", receiver.base),
    ]);
    receiver
        .control("/_secret", json!({"secret": added["secret"]}))
        .await;
    let endpoint = added["id"].as_str().unwrap().to_owned();

    let server = Server::start(dir, &env);
    let body = inbound_message("wamid.HEALTH1");
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

    // Attempts every second; after 4 s of nothing but failures the endpoint is disabled.
    let deadline = Instant::now() + Duration::from_secs(40);
    let listed = loop {
        let listed = cli(&["webhooks", "list", "--customer", customer]);
        if listed[0]["disabled"] == true || Instant::now() > deadline {
            break listed;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(listed[0]["disabled"], true, "{listed}");
    assert!(listed[0]["disabled_at"].is_string(), "{listed}");
    let human = cli_with_env(dir, &["webhooks", "list", "--customer", customer], "", &env);
    assert!(
        String::from_utf8_lossy(&human.stdout).contains("DISABLED since"),
        "{}",
        String::from_utf8_lossy(&human.stdout)
    );

    // The customer is told by email, once.
    let deadline = Instant::now() + Duration::from_secs(10);
    while smtp.messages().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(
        mails[0].contains("hooks-health@example.com") && mails[0].contains(&endpoint),
        "{}",
        mails[0]
    );
    assert!(!mails[0].contains(added["secret"].as_str().unwrap()));

    // The event waits in the dead-letter queue; enabled and replayed, it arrives once.
    let deadline = Instant::now() + Duration::from_secs(10);
    let letters: Value = loop {
        let letters = cli(&["webhooks", "dlq", "list", "--customer", customer]);
        if letters.as_array().is_some_and(|l| !l.is_empty()) || Instant::now() > deadline {
            break letters;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(letters.as_array().unwrap().len(), 1, "{letters}");
    let event_id = letters[0]["event_id"].as_str().unwrap().to_owned();
    receiver.control("/_mode", json!({"mode": "up"})).await;
    let enabled = cli(&[
        "webhooks",
        "enable",
        "--customer",
        customer,
        "--endpoint",
        &endpoint,
    ]);
    assert_eq!(
        (
            enabled["disabled"].as_bool(),
            enabled["failing_since"].clone()
        ),
        (Some(false), Value::Null),
        "{enabled}"
    );
    let replayed = cli(&["webhooks", "dlq", "replay", "--all", "--customer", customer]);
    assert_eq!(replayed["delivered"].as_u64(), Some(1), "{replayed}");
    let state = receiver.state().await;
    assert_eq!(state["events"].as_object().unwrap().len(), 1, "{state}");
    assert!(state["events"].get(&event_id).is_some());
    assert_eq!(smtp.messages().len(), 1, "told once only");
    drop(server);
}
