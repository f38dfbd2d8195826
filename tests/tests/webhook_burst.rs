//! A burst of signed inbound WhatsApp webhooks through the real `squaremcp serve` (200 here;
//! `bench/run --webhooks-burst` sends 1,000 and reports the throughput): every one is
//! acknowledged, every message becomes exactly one `whatsapp.message.received` delivery verified
//! by the Standard Webhooks library (Meta's re-sends included), and nothing is left in the
//! dead-letter queue. Runs on SQLite, and on DynamoDB Local and moto's SQS with
//! `SQUAREMCP_STORE=dynamodb`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use squaremcp_platforms::whatsapp::webhook::sign;
use squaremcp_tests::receiver::{Receiver, queues};
use squaremcp_tests::{Server, TempDir, cli_json_with_env, create_tenant_on_plan_with_env};

const APP_SECRET: &str = "e2e-app-secret-burst-0123456789";
const PHONE_NUMBER_ID: &str = "106540352242922";
const MESSAGES: usize = 200;
/// Every tenth message is sent twice, as Meta does.
const RESENT_EVERY: usize = 10;

fn inbound_message(n: usize) -> String {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": "Kerry Fisher"}, "wa_id": "16315551234"}],
        "messages": [{"from": "16315551234", "id": format!("wamid.BURST{n:05}"), "timestamp": "1751371200", "type": "text", "text": {"body": format!("message {n}")}}]}}]}]})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_inbound_webhooks_is_acknowledged_and_each_event_delivered_once() {
    let receiver = Receiver::start().await;
    let data = TempDir::new("webhook-burst");
    let dir = data.path();
    let mut env: Vec<(String, String)> = vec![
        ("SQUAREMCP_ALLOW_PRIVATE_HOSTS".into(), "1".into()),
        ("SQUAREMCP_WEBHOOK_RETRY_SCHEDULE".into(), "1,2".into()),
        ("SQUAREMCP_WHATSAPP_APP_SECRET".into(), APP_SECRET.into()),
        ("SQUAREMCP_WHATSAPP_VERIFY_TOKEN".into(), "unused".into()),
    ];
    env.extend(queues(dir));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let tenant = create_tenant_on_plan_with_env(dir, "burst@example.com", "free", &env);
    let customer = tenant.id.as_str();
    let credential = json!({"access_token": "EAAGm0PX4ZCpsBAe2e-burst_0123456789abcdefghijklm", "phone_number_id": PHONE_NUMBER_ID, "waba_id": "102290129340398"});
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
    let added = cli_json_with_env(
        dir,
        &[
            "webhooks",
            "add",
            "--customer",
            customer,
            "--url",
            &format!("{}/hook", receiver.base),
        ],
        "",
        &env,
    );
    receiver
        .control("/_secret", json!({"secret": added["secret"]}))
        .await;
    let server = Server::start(dir, &env);

    // All at once, 16 in flight at a time; the re-sends go last, as Meta's redeliveries would.
    let mut bodies: Vec<String> = (0..MESSAGES).map(inbound_message).collect();
    bodies.extend((0..MESSAGES).step_by(RESENT_EVERY).map(inbound_message));
    let http = reqwest::Client::new();
    let url = Arc::new(format!("{}/webhooks/whatsapp", server.base));
    let gate = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = Vec::new();
    for body in bodies {
        let (http, url, gate) = (http.clone(), url.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let signature = sign(APP_SECRET.as_bytes(), body.as_bytes());
            http.post(url.as_str())
                .header("x-hub-signature-256", signature)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(statuses.len(), MESSAGES + MESSAGES / RESENT_EVERY);
    assert!(
        statuses.iter().all(|s| *s == 200),
        "every webhook acknowledged: {:?}",
        statuses.iter().filter(|s| **s != 200).collect::<Vec<_>>()
    );

    let state = receiver
        .wait_for_within("every event delivered", Duration::from_secs(120), |s| {
            s["events"].as_object().is_some_and(|e| e.len() >= MESSAGES)
        })
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let state_after = receiver.state().await;
    let events = state_after["events"].as_object().unwrap();
    assert_eq!(events.len(), MESSAGES, "one event per message");
    assert_eq!(
        state_after["events"], state["events"],
        "nothing arrived later"
    );
    let mut bodies: Vec<String> = events
        .values()
        .map(|e| {
            e["data"]["message"]["text"]["body"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    bodies.sort();
    let mut expected: Vec<String> = (0..MESSAGES).map(|n| format!("message {n}")).collect();
    expected.sort();
    assert_eq!(bodies, expected, "every message, none twice");
    let requests = state_after["requests"].as_object().unwrap();
    assert!(
        requests.values().all(|n| n.as_u64() == Some(1)),
        "each event delivered once: {requests:?}"
    );
    assert_eq!(
        state_after["rejected"].as_u64(),
        Some(0),
        "every delivery verified"
    );
    let letters = cli_json_with_env(
        dir,
        &["webhooks", "dlq", "list", "--customer", customer],
        "",
        &env,
    );
    assert_eq!(letters, json!([]), "nothing dead-lettered");
    drop(server);
}
