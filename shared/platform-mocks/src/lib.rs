//! Local stand-ins for the platforms' APIs, one module per platform, shared by the platforms'
//! unit tests, the end-to-end tests in `tests/` and the benchmark.
//!
//! Each mock follows the real API: its paths, how it reads the credential, its success shapes and
//! its error envelopes (as the platform documents them). Every mock counts the requests it is
//! sent and records each one (unless started with [`Mock::start_unrecorded`], for the benchmark),
//! and can be told to fail the next calls ([`Fault`]): a rejected credential, a missing
//! permission, a rate limit with a wait, a server error, or a slow answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

pub mod discord;
pub mod linkedin;
pub mod meta;
pub mod snapchat;
pub mod telegram;
pub mod tiktok;
pub mod whatsapp;
pub mod x;

/// One request as the mock saw it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON (`Value::Null` when it is empty or not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The pairs of an `application/x-www-form-urlencoded` body, decoded.
    pub fn form_pairs(&self) -> Vec<(String, String)> {
        let body = String::from_utf8_lossy(&self.body).into_owned();
        RecordedRequest { query: Some(body), ..self.clone() }.query_pairs()
    }

    /// The query string's pairs, decoded.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        let Some(query) = &self.query else { return Vec::new() };
        query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(key), percent_decode(value))
            })
            .collect()
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A canned answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub content_type: &'static str,
    pub body: String,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Self { status, headers: Vec::new(), content_type: "application/json", body: body.to_string() }
    }

    pub fn raw(status: u16, content_type: &'static str, body: &str) -> Self {
        Self { status, headers: Vec::new(), content_type, body: body.to_owned() }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// A failure to inject, rendered in the platform's own error envelope.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// The credential is rejected (401).
    Unauthorized,
    /// The credential works but lacks a permission (403).
    Forbidden,
    /// Too many requests (429), with the wait in seconds the platform asks for.
    RateLimited { retry_after: f64 },
    /// The platform fails (500).
    ServerError,
    /// The normal answer, after this long.
    Slow(Duration),
    /// Exactly this answer.
    Reply(Reply),
}

impl PartialEq for Reply {
    fn eq(&self, other: &Self) -> bool {
        self.status == other.status && self.body == other.body
    }
}

/// What makes a mock one platform's: its answers and its error envelopes.
pub trait PlatformMock: Send + Sync + 'static {
    /// The real answer to `request` (success, or the platform's own refusal of a bad credential or
    /// unknown path).
    fn answer(&self, request: &RecordedRequest) -> Reply;
    /// `fault` in the platform's error envelope (not called for [`Fault::Slow`] or [`Fault::Reply`]).
    fn fault(&self, fault: &Fault, request: &RecordedRequest) -> Reply;
}

struct Shared<P> {
    platform: P,
    /// False for the benchmark: a recording would grow without bound.
    record: bool,
    count: Arc<AtomicU64>,
    requests: Mutex<Vec<RecordedRequest>>,
    faults: Mutex<VecDeque<Fault>>,
    standing: Mutex<Option<Fault>>,
}

/// A running mock on a loopback port; it stops with the test's runtime.
pub struct Mock<P: PlatformMock> {
    base_url: String,
    shared: Arc<Shared<P>>,
}

impl<P: PlatformMock> Mock<P> {
    /// Starts `platform` on a free loopback port (inside the current tokio runtime).
    pub async fn start(platform: P) -> Self {
        Self::serve(platform, true).await
    }

    /// Like [`Mock::start`], but only counts requests ([`Mock::request_count`]), for long runs.
    pub async fn start_unrecorded(platform: P) -> Self {
        Self::serve(platform, false).await
    }

    async fn serve(platform: P, record: bool) -> Self {
        let shared = Arc::new(Shared {
            platform,
            record,
            count: Arc::new(AtomicU64::new(0)),
            requests: Mutex::new(Vec::new()),
            faults: Mutex::new(VecDeque::new()),
            standing: Mutex::new(None),
        });
        // Real platforms take upload chunks of several MB (X's APPEND up to 5 MB); axum's default
        // body limit is 2 MB.
        let router = Router::new()
            .fallback(handle::<P>)
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let base_url = format!("http://{}", listener.local_addr().expect("local address"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { base_url, shared }
    }

    /// `http://127.0.0.1:<port>`: what `SQUAREMCP_<PLATFORM>_BASE_URL` is set to.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn platform(&self) -> &P {
        &self.shared.platform
    }

    /// How many requests arrived so far (recorded or not).
    pub fn request_count(&self) -> u64 {
        self.shared.count.load(Ordering::SeqCst)
    }

    /// The counter behind [`Mock::request_count`], to read after the mock itself is dropped.
    pub fn counter(&self) -> Arc<AtomicU64> {
        self.shared.count.clone()
    }

    /// Every request so far, oldest first (none when started unrecorded).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn clear_requests(&self) {
        self.shared.requests.lock().unwrap().clear();
    }

    /// The next request gets `fault` (queued after any earlier ones).
    pub fn fail_next(&self, fault: Fault) {
        self.shared.faults.lock().unwrap().push_back(fault);
    }

    /// Every request gets `fault` until [`Mock::recover`].
    pub fn fail_always(&self, fault: Fault) {
        *self.shared.standing.lock().unwrap() = Some(fault);
    }

    pub fn recover(&self) {
        *self.shared.standing.lock().unwrap() = None;
        self.shared.faults.lock().unwrap().clear();
    }
}

async fn handle<P: PlatformMock>(State(shared): State<Arc<Shared<P>>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let request = RecordedRequest {
        method,
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers,
        body,
    };
    shared.count.fetch_add(1, Ordering::SeqCst);
    if shared.record {
        shared.requests.lock().unwrap().push(request.clone());
    }
    let fault = shared.faults.lock().unwrap().pop_front().or_else(|| shared.standing.lock().unwrap().clone());
    let reply = match fault {
        None => shared.platform.answer(&request),
        Some(Fault::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            shared.platform.answer(&request)
        }
        Some(Fault::Reply(reply)) => reply,
        Some(fault) => shared.platform.fault(&fault, &request),
    };
    render(reply)
}

fn render(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, reply.body).into_response();
    let headers = response.headers_mut();
    headers.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.insert(name, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_are_decoded() {
        let request = RecordedRequest {
            method: Method::GET,
            path: "/".to_owned(),
            query: Some("a=1&b=x%20y&c=%2F+z&d".to_owned()),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        };
        let pairs = request.query_pairs();
        let expected = [("a", "1"), ("b", "x y"), ("c", "/ z"), ("d", "")];
        assert_eq!(pairs, expected.map(|(k, v)| (k.to_owned(), v.to_owned())));
    }

    struct Echo;

    impl PlatformMock for Echo {
        fn answer(&self, request: &RecordedRequest) -> Reply {
            Reply::raw(200, "text/plain", &request.path)
        }

        fn fault(&self, _: &Fault, _: &RecordedRequest) -> Reply {
            Reply::raw(500, "text/plain", "fault")
        }
    }

    #[tokio::test]
    async fn every_request_is_counted_and_an_unrecorded_mock_keeps_none() {
        let http = reqwest::Client::new();
        for (mock, kept) in [(Mock::start(Echo).await, 2), (Mock::start_unrecorded(Echo).await, 0)] {
            let counter = mock.counter();
            for _ in 0..2 {
                let answer = http.get(format!("{}/ping", mock.base_url())).send().await.unwrap();
                assert_eq!(answer.text().await.unwrap(), "/ping");
            }
            assert_eq!(mock.request_count(), 2);
            assert_eq!(mock.requests().len(), kept);
            drop(mock);
            assert_eq!(counter.load(Ordering::SeqCst), 2, "the counter outlives the handle");
        }
    }
}
