//! Outbound webhooks end to end: the real `squaremcp serve` and CLI, and a receiver that
//! verifies every delivery with the published Standard Webhooks library (Python
//! `standardwebhooks`, installed in `.tools/webhooks` by scripts/test) and de-duplicates on
//! `webhook-id`. A signed inbound WhatsApp message becomes `whatsapp.message.received` at the
//! customer's endpoint (once, though Meta sends it twice); with the receiver down for the whole
//! (shortened) retry window the event lands in the dead-letter queue and record, and a replay
//! delivers it once; with a flapping receiver it is delivered exactly once to the receiver's
//! knowledge. Runs on SQLite with the in-process queues, and with `SQUAREMCP_STORE=dynamodb` on
//! DynamoDB Local and moto's SQS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use squaremcp_core::Timestamp;
use squaremcp_core::billing::Month;
use squaremcp_platforms::whatsapp::webhook::sign;
use squaremcp_tests::{Server, TempDir, cli_json_with_env, create_tenant_on_plan_with_env, free_port, on_dynamodb};

const APP_SECRET: &str = "e2e-app-secret-outbound-0123456789";
const PHONE_NUMBER_ID: &str = "106540352242922";

struct Receiver {
    child: Child,
    base: String,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Receiver {
    async fn start() -> Self {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let python = root.join(".tools/webhooks/bin/python");
        assert!(python.exists(), "{} is missing: scripts/test installs standardwebhooks there", python.display());
        let port = free_port();
        let child = Command::new(python)
            .arg(root.join("tests/webhook_receiver.py"))
            .arg(port.to_string())
            .stdout(Stdio::null())
            .spawn()
            .expect("start the receiver");
        let receiver = Self { child, base: format!("http://127.0.0.1:{port}") };
        for _ in 0..100 {
            if reqwest::get(format!("{}/_state", receiver.base)).await.is_ok() {
                return receiver;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the receiver did not start");
    }

    async fn control(&self, path: &str, body: Value) {
        let status = reqwest::Client::new().post(format!("{}{path}", self.base)).json(&body).send().await.unwrap().status();
        assert_eq!(status, 204);
    }

    async fn state(&self) -> Value {
        reqwest::get(format!("{}/_state", self.base)).await.unwrap().json().await.unwrap()
    }

    /// Waits until `check` holds on the receiver's state, or panics with it.
    async fn wait_for(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let state = self.state().await;
            if check(&state) {
                return state;
            }
            assert!(Instant::now() < deadline, "{what}: {state}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// On DynamoDB, the queues on the SQS emulator, named after this run's table (`init` makes
/// them); on SQLite none (the in-process queues).
fn queues(dir: &std::path::Path) -> Vec<(String, String)> {
    if !on_dynamodb() {
        return Vec::new();
    }
    let name = dir.file_name().unwrap().to_str().unwrap().to_owned();
    let made = cli_json_with_env(
        dir,
        &["init", "--retry-queue", &format!("e2e-{name}-retry"), "--dead-letter-queue", &format!("e2e-{name}-dlq")],
        "",
        &[],
    );
    vec![
        ("SQUAREMCP_RETRY_QUEUE_URL".into(), made["retry_queue_url"].as_str().unwrap().to_owned()),
        ("SQUAREMCP_DEAD_LETTER_QUEUE_URL".into(), made["dead_letter_queue_url"].as_str().unwrap().to_owned()),
    ]
}

fn inbound_message(wamid: &str, text: &str) -> String {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": "Kerry Fisher"}, "wa_id": "16315551234"}],
        "messages": [{"from": "16315551234", "id": wamid, "timestamp": "1751371200", "type": "text", "text": {"body": text}}]}}]}]})
    .to_string()
}

async fn post_inbound(server: &Server, body: &str) {
    let status = reqwest::Client::new()
        .post(format!("{}/webhooks/whatsapp", server.base))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", sign(APP_SECRET.as_bytes(), body.as_bytes()))
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_signed_retried_dead_lettered_replayed_and_never_doubled() {
    let receiver = Receiver::start().await;
    let data = TempDir::new("outbound");
    let dir = data.path();
    // The retry window shortened to 1 s then 2 s: three attempts in all.
    let mut env: Vec<(String, String)> = vec![
        ("SQUAREMCP_ALLOW_PRIVATE_HOSTS".into(), "1".into()),
        ("SQUAREMCP_WEBHOOK_RETRY_SCHEDULE".into(), "1,2".into()),
        ("SQUAREMCP_WHATSAPP_APP_SECRET".into(), APP_SECRET.into()),
        ("SQUAREMCP_WHATSAPP_VERIFY_TOKEN".into(), "unused".into()),
    ];
    env.extend(queues(dir));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let cli = |args: &[&str], stdin: &str| cli_json_with_env(dir, args, stdin, &env);

    let tenant = create_tenant_on_plan_with_env(dir, "hooks@example.com", "free", &env);
    let customer = tenant.id.as_str();
    let credential = json!({"access_token": "EAAGm0PX4ZCpsBAe2e-outbound_0123456789abcdefghijk", "phone_number_id": PHONE_NUMBER_ID, "waba_id": "102290129340398"});
    cli(&["credentials", "set", "--customer", customer, "--platform", "whatsapp"], &credential.to_string());
    let added = cli(
        &["webhooks", "add", "--customer", customer, "--url", &format!("{}/hook", receiver.base), "--events", "whatsapp.message.received,whatsapp.message.status"],
        "",
    );
    let secret = added["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{added}");
    receiver.control("/_secret", json!({"secret": secret})).await;
    let listed = cli(&["webhooks", "list", "--customer", customer], "");
    assert_eq!(listed[0]["id"], added["id"]);
    assert!(!listed.to_string().contains(secret), "a secret is shown once only");

    let server = Server::start(dir, &env);

    // 1. An inbound message, sent twice by Meta: one event, verified by the independent library.
    let body = inbound_message("wamid.OUTBOUND1", "Hello there");
    post_inbound(&server, &body).await;
    post_inbound(&server, &body).await;
    let state = receiver.wait_for("the message event", |s| s["events"].as_object().is_some_and(|e| e.len() == 1)).await;
    let (id, event) = state["events"].as_object().unwrap().iter().next().unwrap();
    assert_eq!(event["type"], "whatsapp.message.received");
    assert_eq!(event["data"]["message"]["text"]["body"], "Hello there");
    assert_eq!(event["data"]["phone_number_id"], PHONE_NUMBER_ID);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let state = receiver.state().await;
    assert_eq!((state["requests"][id].as_u64(), state["rejected"].as_u64()), (Some(1), Some(0)), "{state}");

    // 2. Receiver down for the whole retry window: three attempts, then the dead-letter queue.
    receiver.control("/_mode", json!({"mode": "down"})).await;
    post_inbound(&server, &inbound_message("wamid.OUTBOUND2", "Are you there?")).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let letters = loop {
        let letters = cli(&["webhooks", "dlq", "list", "--customer", customer], "");
        if letters.as_array().is_some_and(|l| !l.is_empty()) || Instant::now() > deadline {
            break letters;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let letters = letters.as_array().unwrap().clone();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let dead = &letters[0];
    assert_eq!((dead["attempts"].as_u64(), dead["event_type"].as_str()), (Some(3), Some("whatsapp.message.received")));
    assert_eq!(dead["event"]["data"]["message"]["text"]["body"], "Are you there?", "nothing lost");
    let dead_id = dead["event_id"].as_str().unwrap();
    let state = receiver.state().await;
    assert_eq!(state["requests"][dead_id].as_u64(), Some(3), "{state}");
    assert!(state["events"].get(dead_id).is_none());
    let attempts = cli(&["webhooks", "attempts", "--customer", customer, "--limit", "3"], "");
    assert!(attempts.as_array().unwrap().iter().all(|a| a["status"] == 503 && a["delivered"] == false), "{attempts}");

    // Replay, with the receiver back: delivered once, and the record is gone.
    receiver.control("/_mode", json!({"mode": "up"})).await;
    let replayed = cli(&["webhooks", "dlq", "replay", "--all", "--customer", customer], "");
    assert_eq!((replayed["delivered"].as_u64(), replayed["failed"].as_u64()), (Some(1), Some(0)), "{replayed}");
    let state = receiver.state().await;
    assert_eq!(state["events"][dead_id]["data"]["message"]["text"]["body"], "Are you there?");
    assert_eq!(cli(&["webhooks", "dlq", "list", "--customer", customer], ""), json!([]));
    let again = cli(&["webhooks", "dlq", "replay", "--all", "--customer", customer], "");
    assert_eq!(again["delivered"].as_u64(), Some(0), "a replay delivers once");

    // 3. Flapping: the first request of each id fails; delivered exactly once after a retry.
    receiver.control("/_mode", json!({"mode": "flap"})).await;
    post_inbound(&server, &inbound_message("wamid.OUTBOUND3", "Flap")).await;
    let state = receiver.wait_for("the flapped event", |s| s["events"].as_object().is_some_and(|e| e.len() == 3)).await;
    let flapped = state["events"].as_object().unwrap().iter().find(|(_, e)| e["data"]["message"]["text"]["body"] == "Flap").unwrap().0.clone();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let state = receiver.state().await;
    assert_eq!(state["requests"][&flapped].as_u64(), Some(2), "{state}");
    assert_eq!(state["events"].as_object().unwrap().len(), 3);
    assert_eq!(state["rejected"].as_u64(), Some(0), "every delivery verified");
    assert_eq!(cli(&["webhooks", "dlq", "list", "--customer", customer], ""), json!([]));

    // Rotation: the receiver still verifies with the old secret during the overlap.
    let rotated = cli(&["webhooks", "rotate-secret", "--customer", customer, "--endpoint", added["id"].as_str().unwrap()], "");
    assert_eq!(rotated["valid_secrets"].as_u64(), Some(2));
    receiver.control("/_mode", json!({"mode": "up"})).await;
    post_inbound(&server, &inbound_message("wamid.OUTBOUND4", "Rotated")).await;
    receiver.wait_for("the event after rotation", |s| s["events"].as_object().is_some_and(|e| e.len() == 4)).await;
    receiver.control("/_secret", json!({"secret": rotated["secret"]})).await;
    post_inbound(&server, &inbound_message("wamid.OUTBOUND5", "New secret")).await;
    let state = receiver.wait_for("the event with the new secret", |s| s["events"].as_object().is_some_and(|e| e.len() == 5)).await;
    assert_eq!(state["rejected"].as_u64(), Some(0));
    drop(server);
}

/// A failed tool call becomes `tool.call.failed` at the customer's endpoint, carrying what the
/// model was told and the call log's id, and never the credential.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_tool_call_is_published_as_tool_call_failed() {
    let receiver = Receiver::start().await;
    let data = TempDir::new("tool-failed");
    let dir = data.path();
    let mut env: Vec<(String, String)> = vec![
        ("SQUAREMCP_ALLOW_PRIVATE_HOSTS".into(), "1".into()),
        // WhatsApp's API at a closed port: the call fails before any answer.
        ("SQUAREMCP_WHATSAPP_BASE_URL".into(), format!("http://127.0.0.1:{}", free_port())),
    ];
    env.extend(queues(dir));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let cli = |args: &[&str], stdin: &str| cli_json_with_env(dir, args, stdin, &env);
    let tenant = create_tenant_on_plan_with_env(dir, "failed@example.com", "free", &env);
    let customer = tenant.id.as_str();
    let token = "EAAGm0PX4ZCpsBAe2e-failed_0123456789abcdefghijk";
    let credential = json!({"access_token": token, "phone_number_id": PHONE_NUMBER_ID, "waba_id": "102290129340398"});
    cli(&["credentials", "set", "--customer", customer, "--platform", "whatsapp"], &credential.to_string());
    let added = cli(&["webhooks", "add", "--customer", customer, "--url", &format!("{}/hook", receiver.base), "--events", "tool.call.failed"], "");
    receiver.control("/_secret", json!({"secret": added["secret"].as_str().unwrap()})).await;

    let server = Server::start(dir, &env);
    let result = server.call_tool(&tenant.key, "whatsapp_send_message", json!({"to": "16315551234", "text": "hi"})).await;
    assert_eq!(result["isError"], true, "{result}");
    let state = receiver.wait_for("the failure event", |s| s["events"].as_object().is_some_and(|e| e.len() == 1)).await;
    let (_, event) = state["events"].as_object().unwrap().iter().next().unwrap();
    assert_eq!(event["type"], "tool.call.failed");
    let data = &event["data"];
    assert_eq!((data["tool"].as_str(), data["platform"].as_str(), data["kind"].as_str()), (Some("whatsapp_send_message"), Some("whatsapp"), Some("upstream_transient")), "{event}");
    let told = result["content"][0]["text"].as_str().unwrap_or_default();
    assert!(data["message"].as_str().is_some_and(|m| !m.is_empty() && told.contains(m)), "{event} vs {result}");
    assert!(data["call_id"].as_str().is_some_and(|id| !id.is_empty()), "{event}");
    assert!(!event.to_string().contains(token), "no credential in an event");
    assert!(!event.to_string().contains("\"hi\""), "no message content in an event");
    // The call log has the same call.
    let calls = cli(&["audit", "tail", "--customer", customer], "");
    assert!(calls.to_string().contains(data["call_id"].as_str().unwrap()), "{calls}");
}

/// The monthly run's invoice becomes `invoice.created` at the customer's endpoint: queued by the
/// server's own monthly run (before the email, which fails here) and delivered by its worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issued_invoice_is_published_as_invoice_created() {
    let receiver = Receiver::start().await;
    let data = TempDir::new("invoice-created");
    let dir = data.path();
    let mut env: Vec<(String, String)> = vec![("SQUAREMCP_ALLOW_PRIVATE_HOSTS".into(), "1".into())];
    env.extend(queues(dir));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // A customer since the 5th of last month, on a paid plan: the server's run at start invoices
    // last month. Real time, so that the delivery's signature timestamp is current.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let last_month = Month::of(Timestamp::from_unix(i64::try_from(now).unwrap())).previous();
    let joined = last_month.start().plus_seconds(4 * 86_400).to_rfc3339();
    let mut joined_env = env.clone();
    joined_env.push(("SQUAREMCP_NOW", &joined));
    let tenant = create_tenant_on_plan_with_env(dir, "invoiced@example.com", "pro", &joined_env);
    let customer = tenant.id.as_str();
    let added = cli_json_with_env(
        dir,
        &["webhooks", "add", "--customer", customer, "--url", &format!("{}/hook", receiver.base), "--events", "invoice.created"],
        "",
        &env,
    );
    receiver.control("/_secret", json!({"secret": added["secret"].as_str().unwrap()})).await;
    let mut run_env = env.clone();
    run_env.push(("SQUAREMCP_SMTP_URL", "smtp://127.0.0.1:9"));
    let _server = Server::start(dir, &run_env);
    let state = receiver.wait_for("the invoice event", |s| s["events"].as_object().is_some_and(|e| e.len() == 1)).await;
    let (_, event) = state["events"].as_object().unwrap().iter().next().unwrap();
    assert_eq!(event["type"], "invoice.created");
    let invoice = &event["data"];
    let number = invoice["number"].as_str().unwrap();
    assert!(number.starts_with(&format!("SQM-{}-", last_month.compact())), "{event}");
    assert_eq!((invoice["month"].as_str(), invoice["plan"].as_str()), (Some(last_month.to_string().as_str()), Some("pro")), "{event}");
    assert!(invoice["total_cents"].as_u64().is_some_and(|cents| cents > 0), "{event}");
    let listed = cli_json_with_env(dir, &["invoices", "list", "--month", &last_month.to_string()], "", &env);
    assert!(listed.to_string().contains(number), "the stored invoice is the one published: {listed}");
}
