//! `squaremcp-bench webhooks-burst [--target-dir DIR] [--count N]`: N (1,000 by default) signed
//! inbound WhatsApp webhooks sent to `squaremcp serve` at once (32 in flight), each a new message
//! for a customer with one outbound endpoint, plus every tenth sent again (Meta redelivers). The
//! endpoint, a loopback receiver here, answers 2xx except for every fiftieth message, which it
//! always refuses, so those must end in the dead-letter queue. Reports the acknowledgement rate
//! and the time until every event was delivered or dead-lettered, and fails when a webhook was
//! not acknowledged, an event is missing, or one was delivered twice or both delivered and
//! dead-lettered.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use squaremcp_platforms::whatsapp::webhook::sign;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::procs::{Service, binary, free_port, output};

const APP_SECRET: &str = "bench-app-secret-0123456789abcdef";
const PHONE_NUMBER_ID: &str = "106540352242922";
const IN_FLIGHT: usize = 32;
/// Messages whose number is a multiple of this are refused by the receiver, always.
const REFUSED_EVERY: usize = 50;
const RESENT_EVERY: usize = 10;

/// What the receiver saw: successful deliveries per `webhook-id`, and refused attempts.
#[derive(Default)]
struct Seen {
    delivered: HashMap<String, u32>,
    refused: u64,
}

async fn receive(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let refuse = std::str::from_utf8(&body).is_ok_and(|text| text.contains("\"refuse me\""));
    let Ok(mut seen) = seen.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR;
    };
    if refuse {
        seen.refused += 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    *seen.delivered.entry(id).or_default() += 1;
    StatusCode::OK
}

async fn receiver(seen: Arc<Mutex<Seen>>) -> Result<String, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let app = Router::new().route("/hook", post(receive)).with_state(seen);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{address}/hook"))
}

fn message(n: usize) -> String {
    let text = if n.is_multiple_of(REFUSED_EVERY) {
        "refuse me".to_owned()
    } else {
        format!("message {n}")
    };
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": "Bench"}, "wa_id": "16315551234"}],
        "messages": [{"from": "16315551234", "id": format!("wamid.BENCH{n:06}"), "timestamp": "1751371200", "type": "text", "text": {"body": text}}]}}]}]})
    .to_string()
}

pub async fn run(args: &[String]) -> Result<Vec<String>, String> {
    let usage = "usage: squaremcp-bench webhooks-burst [--target-dir DIR] [--count N]";
    let mut target_dir = std::path::PathBuf::from("target/release");
    let mut count: usize = 1000;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--target-dir" => target_dir = args.next().ok_or(usage)?.into(),
            "--count" => {
                count = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n > 0)
                    .ok_or(usage)?
            }
            _ => return Err(usage.into()),
        }
    }
    let squaremcp = binary(&target_dir, "squaremcp")?;
    let scratch =
        std::env::temp_dir().join(format!("squaremcp-bench-burst-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let data = scratch.join("data");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let endpoint = receiver(seen.clone()).await?;
    let customer = provision(&squaremcp, &data, &endpoint).await?;

    let port = free_port();
    let mut serve = Command::new(&squaremcp);
    serve
        .arg("serve")
        .env("SQUAREMCP_DATA_DIR", &data)
        .env("SQUAREMCP_LISTEN", format!("127.0.0.1:{port}"))
        .env("SQUAREMCP_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        .env("SQUAREMCP_ALLOW_PRIVATE_HOSTS", "1")
        .env("SQUAREMCP_WHATSAPP_APP_SECRET", APP_SECRET)
        .env("SQUAREMCP_WHATSAPP_VERIFY_TOKEN", "bench")
        .env("SQUAREMCP_WEBHOOK_RETRY_SCHEDULE", "1,1");
    let gateway = Service::spawn(serve, port).await?;

    let mut bodies: Vec<String> = (0..count).map(message).collect();
    bodies.extend((0..count).step_by(RESENT_EVERY).map(message));
    let sent = bodies.len();
    eprintln!(
        "==> webhooks burst: {count} signed WhatsApp webhooks (+{} re-sent) through squaremcp serve, {IN_FLIGHT} in flight",
        sent - count
    );
    let http = reqwest::Client::new();
    let url = Arc::new(format!("{}/webhooks/whatsapp", gateway.base));
    let gate = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(sent);
    for body in bodies {
        let (http, url, gate) = (http.clone(), url.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.map_err(|e| e.to_string())?;
            let signature = sign(APP_SECRET.as_bytes(), body.as_bytes());
            let response = http
                .post(url.as_str())
                .header("x-hub-signature-256", signature)
                .body(body)
                .send()
                .await;
            response
                .map(|r| r.status().as_u16())
                .map_err(|e| e.to_string())
        }));
    }
    let mut acknowledged = 0;
    for task in tasks {
        if matches!(task.await, Ok(Ok(200))) {
            acknowledged += 1;
        }
    }
    let acked_in = started.elapsed();

    // Every event delivered or dead-lettered: refused ones take two retries (1 s, 1 s).
    let refused_events = (0..count)
        .filter(|n| n.is_multiple_of(REFUSED_EVERY))
        .count();
    let deadline = Instant::now() + Duration::from_secs(120);
    let (delivered, dead) = loop {
        let delivered = seen.lock().map(|s| s.delivered.len()).unwrap_or_default();
        let dead = dead_letters(&squaremcp, &data, &customer).await?;
        if (delivered >= count - refused_events && dead.len() >= refused_events)
            || Instant::now() > deadline
        {
            break (delivered, dead);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let settled_in = started.elapsed();
    // A little longer: anything delivered twice would show now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = seen
        .lock()
        .map_err(|_| "the receiver's record is poisoned")?;
    let twice = seen.delivered.values().filter(|n| **n > 1).count();
    let both = dead
        .iter()
        .filter(|id| seen.delivered.contains_key(*id))
        .count();
    println!(
        "webhooks burst: {count} inbound WhatsApp webhooks (+{} re-sent): {acknowledged}/{sent} acknowledged in {:.2} s ({:.0}/s); \
         {} events delivered once and {} dead-lettered after {:.2} s ({:.0} events/s end to end); delivered twice: {twice}, delivered and dead-lettered: {both}",
        sent - count,
        acked_in.as_secs_f64(),
        sent as f64 / acked_in.as_secs_f64(),
        seen.delivered.len(),
        dead.len(),
        settled_in.as_secs_f64(),
        count as f64 / settled_in.as_secs_f64(),
    );
    let mut failures = Vec::new();
    if acknowledged != sent {
        failures.push(format!(
            "{} of {sent} webhooks were not acknowledged",
            sent - acknowledged
        ));
    }
    if delivered + dead.len() != count {
        failures.push(format!(
            "{} events delivered + {} dead-lettered ≠ {count}",
            delivered,
            dead.len()
        ));
    }
    if twice > 0 || both > 0 {
        failures.push(format!(
            "{twice} events delivered twice, {both} both delivered and dead-lettered"
        ));
    }
    drop(gateway);
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(failures)
}

/// The event ids in the customer's dead-letter records.
async fn dead_letters(
    squaremcp: &Path,
    data: &Path,
    customer: &str,
) -> Result<Vec<String>, String> {
    let mut command = Command::new(squaremcp);
    command
        .args([
            "webhooks",
            "dlq",
            "list",
            "--customer",
            customer,
            "--limit",
            "100000",
            "--json",
        ])
        .env("SQUAREMCP_DATA_DIR", data);
    let listed: Value = serde_json::from_str(&output(command).await?).map_err(|e| e.to_string())?;
    Ok(listed
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["event_id"].as_str().map(str::to_owned))
        .collect())
}

/// A customer with a WhatsApp number and one endpoint (all events), made with the real CLI.
async fn provision(squaremcp: &Path, data: &Path, endpoint: &str) -> Result<String, String> {
    let cli = |args: &[&str]| {
        let mut command = Command::new(squaremcp);
        command
            .args(args)
            .arg("--json")
            .env("SQUAREMCP_DATA_DIR", data)
            .env("SQUAREMCP_ALLOW_PRIVATE_HOSTS", "1");
        command
    };
    let customer: Value = serde_json::from_str(
        &output(cli(&[
            "customers",
            "create",
            "--email",
            "burst@example.com",
            "--plan",
            "pro",
        ]))
        .await?,
    )
    .map_err(|e| e.to_string())?;
    let id = customer["id"].as_str().ok_or("no customer id")?.to_owned();
    let mut set = cli(&[
        "credentials",
        "set",
        "--customer",
        &id,
        "--platform",
        "whatsapp",
    ]);
    set.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = set.spawn().map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        let document = json!({"access_token": "EAAGbench_whatsapp_token_0123456789abcdefgh", "phone_number_id": PHONE_NUMBER_ID, "waba_id": "102290129340398"});
        stdin
            .write_all(document.to_string().as_bytes())
            .await
            .map_err(|e| e.to_string())?;
    }
    if !child.wait().await.map_err(|e| e.to_string())?.success() {
        return Err("storing the bench's WhatsApp credential failed".into());
    }
    output(cli(&[
        "webhooks",
        "add",
        "--customer",
        &id,
        "--url",
        endpoint,
    ]))
    .await?;
    Ok(id)
}
