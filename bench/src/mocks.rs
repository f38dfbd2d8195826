//! In-process servers the harness needs: an instant Telegram upstream (the shared mock), a bare
//! axum server answering a fixed body (the ceiling of an HTTP service here), and a Lambda Runtime
//! API that hands out one event and times the answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use squaremcp_platform_mocks::Mock;
use squaremcp_platform_mocks::telegram::Telegram;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub async fn listen(router: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
    let base = format!("http://{}", listener.local_addr().expect("local address"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

/// The shared Telegram mock, accepting [`crate::BOT_TOKEN`]: it counts requests but records none,
/// so that a long run holds no growing list.
pub async fn upstream() -> (String, Arc<AtomicU64>) {
    let mock = Mock::start_unrecorded(Telegram::accepting(&[crate::BOT_TOKEN])).await;
    // The server keeps running after the handle is dropped, until the runtime stops.
    (mock.base_url().to_owned(), mock.counter())
}

/// `POST /mcp` answering a fixed JSON-RPC result: no parsing, no auth, no work.
pub async fn bare() -> String {
    let body: &'static str = r#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
    listen(Router::new().route("/mcp", post(move || async move { ([(header::CONTENT_TYPE, "application/json")], body) }))).await
}

/// A Lambda Runtime API serving `event` once per process; each answer is sent on the channel.
#[derive(Clone)]
pub struct RuntimeApi {
    event: Arc<String>,
    answers: mpsc::UnboundedSender<(Instant, u16, String)>,
    /// Set before each process starts: its first `next` gets the event. A process asks again as
    /// soon as it answered; that `next` waits until the bench kills the process.
    pub armed: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
}

pub async fn runtime_api(event: String) -> (String, Arc<AtomicBool>, mpsc::UnboundedReceiver<(Instant, u16, String)>) {
    let (answers, received) = mpsc::unbounded_channel();
    let armed = Arc::new(AtomicBool::new(false));
    let state = RuntimeApi { event: Arc::new(event), answers, armed: armed.clone(), served: Arc::new(AtomicU64::new(0)) };
    let router = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(invocation_response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(invocation_error))
        .route("/2018-06-01/runtime/init/error", post(invocation_error))
        .with_state(state);
    let base = listen(router).await;
    (base.trim_start_matches("http://").to_owned(), armed, received)
}

async fn next_invocation(State(api): State<RuntimeApi>) -> impl IntoResponse {
    if !api.armed.swap(false, Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    let id = format!("bench-{}", api.served.fetch_add(1, Ordering::SeqCst) + 1);
    let mut headers = HeaderMap::new();
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() + 30_000)
        .unwrap_or_default();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", id),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:mcp".to_owned()),
        ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned()),
        ("content-type", "application/json".to_owned()),
    ] {
        if let Ok(value) = value.parse() {
            headers.insert(name, value);
        }
    }
    (headers, api.event.as_str().to_owned())
}

async fn invocation_response(State(api): State<RuntimeApi>, body: Bytes) -> StatusCode {
    let payload = String::from_utf8_lossy(&body).into_owned();
    let status = serde_json::from_str::<serde_json::Value>(&payload)
        .ok()
        .and_then(|v| v["statusCode"].as_u64())
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(0);
    let _ = api.answers.send((Instant::now(), status, payload));
    StatusCode::ACCEPTED
}

async fn invocation_error(State(api): State<RuntimeApi>, body: Bytes) -> StatusCode {
    let _ = api.answers.send((Instant::now(), 0, String::from_utf8_lossy(&body).into_owned()));
    StatusCode::ACCEPTED
}
