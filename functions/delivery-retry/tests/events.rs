//! The sample SQS batch in `events/delivery-retry/` through the function's handler in-process,
//! on the embedded store and queues: a due job is delivered (signed) to a local receiver, a job
//! not yet due is queued again for the rest of its delay, and a body that is no job goes to the
//! dead-letter queue; none of them is reported as failed. A record that cannot be processed is
//! named in `batchItemFailures`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};
use squaremcp_core::CustomerId;
use squaremcp_runtime::{Backends, Config, lambda};
use squaremcp_webhooks::NewEndpoint;

const SAMPLE_CUSTOMER: &str = "cus_0123456789abcdef01234567";
const SAMPLE_ENDPOINT: &str = "ep_0123456789abcdef01234567";

#[tokio::test]
async fn the_sample_batch_is_processed_without_failures() {
    // The receiver: keeps each request's webhook-id and signature.
    let seen: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let keep = seen.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: String| async move {
            let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            keep.lock().unwrap().push((get("webhook-id"), get("webhook-signature"), body));
            "ok"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let data_dir = std::env::temp_dir().join(format!("squaremcp-delivery-events-{}", std::process::id()));
    let dir = data_dir.display().to_string();
    let config = Config::from_lookup(|name| match name {
        "SQUAREMCP_DATA_DIR" => Some(dir.clone()),
        "SQUAREMCP_ALLOW_PRIVATE_HOSTS" => Some("1".to_owned()),
        _ => None,
    })
    .unwrap();
    let backends = Backends::embedded(&config).unwrap();
    let deliverer = squaremcp_runtime::deliverer(&config, &backends).unwrap().unwrap();
    let customer = CustomerId::generate();
    let (endpoint, secret) = deliverer.endpoints().add(&customer, NewEndpoint { url, events: vec![] }).await.unwrap();

    // The sample names placeholder ids; the job bodies are pointed at this customer's endpoint.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/delivery-retry/batch.json");
    let sample = std::fs::read_to_string(path).unwrap().replace(SAMPLE_CUSTOMER, customer.as_str()).replace(SAMPLE_ENDPOINT, &endpoint.id);
    let event: Value = serde_json::from_str(&sample).unwrap();
    let response = lambda::delivery_batch(&deliverer, &event).await;
    assert_eq!(response, json!({"batchItemFailures": []}));

    // Delivered once, signed with the endpoint's secret over the exact body.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (id, signature, body) = &seen[0];
    assert_eq!(id, "msg_5f2b1c7e9a0d4e3f8b6a1c2d3e4f5a6b");
    let attempts = deliverer.attempts(&customer, 10).await.unwrap();
    assert!(attempts[0].delivered);
    let ts = attempts[0].at.unix();
    assert!(signature.split(' ').any(|s| s == secret.sign(id, ts, body.as_bytes()) || s == secret.sign(id, ts - 1, body.as_bytes())), "{signature}");
    assert_eq!(serde_json::from_str::<Value>(body).unwrap()["data"]["message"]["text"]["body"], "Hello");

    // The job not yet due is back on the retry queue; the stray body is in the dead-letter queue.
    let queued = deliverer.retry_queue.receive(10, Duration::ZERO, Duration::from_secs(30)).await.unwrap();
    assert!(queued.is_empty(), "the postponed job is delayed, so not visible yet");
    let dead = deliverer.dead_letter_queue.receive(10, Duration::ZERO, Duration::from_secs(30)).await.unwrap();
    assert_eq!(dead.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["not a delivery job"]);

    // A record without a body cannot be processed: reported, alone.
    let broken = json!({"Records": [{"messageId": "m-1", "eventSource": "aws:sqs"}]});
    assert_eq!(lambda::delivery_batch(&deliverer, &broken).await, json!({"batchItemFailures": [{"itemIdentifier": "m-1"}]}));
    let _ = std::fs::remove_dir_all(&data_dir);
}
