//! A local stand-in for api.telegram.org: records every request and answers with one canned reply.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub content_type: Option<String>,
    pub user_agent: Option<String>,
    pub body: Bytes,
}

/// What the mock answers to every request.
#[derive(Clone, Debug)]
pub struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
    location: Option<String>,
    delay: Duration,
}

impl Reply {
    /// `{"ok":true,"result":…}` with 200, as Telegram answers a successful call.
    pub fn ok(result: Value) -> Self {
        Self::json(200, json!({ "ok": true, "result": result }))
    }

    /// `{"ok":false,"error_code":…,"description":…}` with the same HTTP status, as Telegram does.
    pub fn error(status: u16, description: &str) -> Self {
        Self::json(status, json!({ "ok": false, "error_code": status, "description": description }))
    }

    /// An error envelope carrying `parameters` (`retry_after`, `migrate_to_chat_id`).
    pub fn error_with_parameters(status: u16, description: &str, parameters: Value) -> Self {
        Self::json(status, json!({ "ok": false, "error_code": status, "description": description, "parameters": parameters }))
    }

    pub fn json(status: u16, body: Value) -> Self {
        Self { status, content_type: "application/json", body: body.to_string(), location: None, delay: Duration::ZERO }
    }

    pub fn raw(status: u16, content_type: &'static str, body: &str) -> Self {
        Self { status, content_type, body: body.to_owned(), location: None, delay: Duration::ZERO }
    }

    /// A 307 to `location`, which a client that follows redirects would re-POST to.
    pub fn redirect(location: String) -> Self {
        Self { location: Some(location), ..Self::raw(307, "text/plain", "") }
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

struct Shared {
    reply: Reply,
    requests: Mutex<Vec<RecordedRequest>>,
}

pub struct MockTelegram {
    pub base_url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl MockTelegram {
    pub async fn start(reply: Reply) -> Self {
        let shared = Arc::new(Shared { reply, requests: Mutex::new(Vec::new()) });
        let router = Router::new().fallback(answer).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self { base_url, shared, server }
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Asserts that exactly one request came, and that it is the Bot API call `method` with
    /// exactly `expected_body`: POST, `/bot<token>/<method>`, JSON content type, no query string.
    pub fn assert_single_call(&self, token: &str, method: &str, expected_body: Value) {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "expected one request, got {requests:#?}");
        let request = &requests[0];
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.path, format!("/bot{token}/{method}"));
        assert_eq!(request.query, None);
        assert_eq!(request.content_type.as_deref(), Some("application/json"));
        let body: Value = serde_json::from_slice(&request.body).expect("the request body is JSON");
        assert_eq!(body, expected_body, "request body of {method}");
    }
}

impl Drop for MockTelegram {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let header_text = |name| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    shared.requests.lock().unwrap().push(RecordedRequest {
        method,
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        content_type: header_text(header::CONTENT_TYPE),
        user_agent: header_text(header::USER_AGENT),
        body,
    });
    let reply = shared.reply.clone();
    tokio::time::sleep(reply.delay).await;
    let status = StatusCode::from_u16(reply.status).unwrap();
    let mut response = (status, [(header::CONTENT_TYPE, reply.content_type)], reply.body).into_response();
    if let Some(location) = reply.location {
        response.headers_mut().insert(header::LOCATION, location.parse().unwrap());
    }
    response
}
