//! Client ID Metadata Documents on the real `squaremcp serve`: a client whose `client_id` is the
//! URL of its metadata document signs in without registering; documents that are mismatched,
//! oversized, redirected, deceptive or on a private address are refused with a clear
//! `invalid_client` (an error page at /oauth/authorize, RFC 6749 JSON at /oauth/token).
//!
//! The documents are served by a tiny HTTP server in the test, on loopback: plain http on
//! loopback is accepted only because the server runs with `SQUAREMCP_ALLOW_PRIVATE_HOSTS=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use squaremcp_tests::oauth::{Browser, encode, hidden_field, pkce, query_of};
use squaremcp_tests::{Server, TempDir, create_customer_with_password};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery";
const REDIRECT: &str = "http://127.0.0.1:45679/callback";

/// Serves fixed HTTP answers by path on 127.0.0.1 and counts the requests for each path.
struct DocumentServer {
    base: String,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl DocumentServer {
    async fn start(answers: impl Fn(&str) -> HashMap<String, Vec<u8>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let answers = Arc::new(answers(&base));
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let counted = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let answers = answers.clone();
                let counted = counted.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&request);
                    let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    *counted.lock().unwrap().entry(path.clone()).or_default() += 1;
                    let not_found = http("404 Not Found", "", "");
                    let _ = socket.write_all(answers.get(&path).unwrap_or(&not_found)).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self { base, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    fn total_hits(&self) -> usize {
        self.hits.lock().unwrap().values().sum()
    }
}

fn http(status: &str, headers: &str, body: &str) -> Vec<u8> {
    format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n{body}", body.len()).into_bytes()
}

fn json_answer(document: &Value, cache_control: &str) -> Vec<u8> {
    http("200 OK", &format!("content-type: application/json\r\ncache-control: {cache_control}\r\n"), &document.to_string())
}

/// The documents: one good, and one for each way a document is refused.
fn documents(base: &str) -> HashMap<String, Vec<u8>> {
    let document = |path: &str, name: &str| json!({"client_id": format!("{base}{path}"), "client_name": name, "redirect_uris": [REDIRECT]});
    let mut big = document("/big.json", "Big Tool");
    big["padding"] = json!("x".repeat(6000));
    let mut secret = document("/secret.json", "Secret Tool");
    secret["token_endpoint_auth_method"] = json!("client_secret_basic");
    HashMap::from([
        ("/good.json".to_owned(), json_answer(&document("/good.json", "Loopback Tool"), "max-age=300")),
        ("/mismatch.json".to_owned(), json_answer(&document("/other.json", "Mismatched Tool"), "max-age=300")),
        ("/big.json".to_owned(), json_answer(&big, "max-age=300")),
        ("/redirect.json".to_owned(), http("302 Found", &format!("location: {base}/good.json\r\n"), "")),
        ("/bidi.json".to_owned(), json_answer(&document("/bidi.json", "Safe\u{202E}looT liveE"), "max-age=300")),
        ("/secret.json".to_owned(), json_answer(&secret, "max-age=300")),
        ("/no-store.json".to_owned(), json_answer(&document("/no-store.json", "Uncached Tool"), "no-store")),
    ])
}

fn authorize_path(client_id: &str, challenge: &str) -> String {
    let pairs = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("state", "cimd-state"),
        ("scope", "mcp"),
    ];
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
    format!("/oauth/authorize?{}", query.join("&"))
}

async fn signed_in(server: &Server) -> Browser {
    let mut browser = Browser::new(&server.base);
    let page = browser.login(EMAIL, PASSWORD, "/login").await;
    assert_eq!(page.status, 303, "{}", page.body);
    browser
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metadata_document_client_signs_in_without_registration() {
    let documents = DocumentServer::start(documents).await;
    let data = TempDir::new("cimd-flow");
    create_customer_with_password(data.path(), EMAIL, PASSWORD);
    let server = Server::start(data.path(), &[("SQUAREMCP_ALLOW_PRIVATE_HOSTS", "1")]);
    let metadata: Value =
        reqwest::get(format!("{}/.well-known/oauth-authorization-server", server.base)).await.unwrap().json().await.unwrap();
    assert_eq!(metadata["client_id_metadata_document_supported"], true);
    assert_eq!(metadata["authorization_response_iss_parameter_supported"], true);

    let client_id = documents.url("/good.json");
    let host = client_id.trim_start_matches("http://").trim_end_matches("/good.json").to_owned();
    let mut browser = signed_in(&server).await;
    let (verifier, challenge) = pkce();
    let consent = browser.get(&authorize_path(&client_id, &challenge)).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    // The name is the document's; the host of the URL is in the question itself.
    assert!(consent.body.contains(&format!("<h1>Allow Loopback Tool (from <strong>{host}</strong>)")), "{}", consent.body);
    assert!(consent.body.contains(&format!("<dt>Published by</dt><dd>{host}</dd>")), "{}", consent.body);
    let request = hidden_field(&consent.body, "request").unwrap();
    let csrf = hidden_field(&consent.body, "csrf").unwrap();
    let done = browser.post_form("/oauth/authorize", &[("request", &request), ("csrf", &csrf), ("action", "allow")]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let location = done.location.unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    let query = query_of(&location);
    assert_eq!((query["state"].as_str(), query["iss"].as_str()), ("cimd-state", server.base.as_str()));

    let (status, tokens, _) = browser
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &query["code"]),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("client_id", &client_id),
        ])
        .await;
    assert_eq!(status, 200, "{tokens}");
    let listed: Value = reqwest::Client::new()
        .post(server.mcp_url())
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(listed["result"]["tools"].is_array(), "{listed}");
    // Refreshing works for the document client too.
    let (status, refreshed, _) = browser
        .token(&[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap()), ("client_id", &client_id)])
        .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(documents.hits("/good.json"), 1, "authorize, token and refresh share the cached document (max-age=300)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_documents_are_refused_with_invalid_client() {
    let documents = DocumentServer::start(documents).await;
    let data = TempDir::new("cimd-refusals");
    create_customer_with_password(data.path(), EMAIL, PASSWORD);
    let server = Server::start(data.path(), &[("SQUAREMCP_ALLOW_PRIVATE_HOSTS", "1")]);
    let mut browser = signed_in(&server).await;
    let (_, challenge) = pkce();
    for (path, why) in [
        ("/mismatch.json", "differs from the URL"),
        ("/big.json", "larger than 5120 bytes"),
        ("/redirect.json", "redirects are not followed"),
        ("/bidi.json", "text-direction"),
        ("/secret.json", "shared secret"),
        ("/missing.json", "HTTP 404"),
    ] {
        let client_id = documents.url(path);
        let page = browser.get(&authorize_path(&client_id, &challenge)).await;
        assert_eq!((page.status, page.location.is_none()), (400, true), "{path}: {}", page.body);
        assert!(page.body.contains("invalid_client") && page.body.contains(why), "{path}: {}", page.body);
        let (status, body, _) = browser
            .token(&[("grant_type", "authorization_code"), ("code", "x"), ("redirect_uri", REDIRECT), ("client_id", &client_id)])
            .await;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{path}: {body}");
        assert!(body["error_description"].as_str().unwrap().contains(why), "{path}: {body}");
        assert_eq!(documents.hits(path), 2, "{path}: refusals are not cached, so each endpoint fetched it");
    }
    // The redirect was not followed.
    assert_eq!(documents.hits("/good.json"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_on_private_addresses_are_refused_without_a_request() {
    let documents = DocumentServer::start(documents).await;
    let data = TempDir::new("cimd-private");
    create_customer_with_password(data.path(), EMAIL, PASSWORD);
    // Private hosts are not allowed here: the default.
    let server = Server::start(data.path(), &[]);
    let mut browser = signed_in(&server).await;
    let (_, challenge) = pkce();
    let plain_http = documents.url("/good.json");
    let https_loopback = plain_http.replace("http://", "https://");
    for (client_id, why) in [
        (https_loopback.as_str(), "loopback address"),
        ("https://10.1.2.3/client.json", "private address"),
        ("https://169.254.169.254/latest/meta-data", "cloud metadata address"),
        (plain_http.as_str(), "must use https"),
        ("https://app.example.com/", "must have a path"),
    ] {
        let page = browser.get(&authorize_path(client_id, &challenge)).await;
        assert_eq!((page.status, page.location.is_none()), (400, true), "{client_id}: {}", page.body);
        assert!(page.body.contains("invalid_client") && page.body.contains(why), "{client_id}: {}", page.body);
        let (status, body, _) = browser.token(&[("grant_type", "authorization_code"), ("code", "x"), ("client_id", client_id)]).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{client_id}: {body}");
    }
    assert_eq!(documents.total_hits(), 0, "the guard refused before connecting");
}

/// Issue 17, item 7: an unauthenticated authorize request with a URL client id makes the server
/// fetch it; fetches are limited per client network (30 an hour), so that the gateway cannot be
/// used to hammer a host. The network is the forwarded client's behind a trusted proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_fetches_are_limited_per_client_network() {
    let documents = DocumentServer::start(documents).await;
    let data = TempDir::new("cimd-fetch-limit");
    let server = Server::start(data.path(), &[("SQUAREMCP_ALLOW_PRIVATE_HOSTS", "1"), ("SQUAREMCP_TRUSTED_PROXIES", "127.0.0.1")]);
    let client_id = documents.url("/no-store.json");
    let (_, challenge) = pkce();
    let from = |network: &str| {
        let mut browser = Browser::new(&server.base);
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-forwarded-for", network.parse().unwrap());
        browser.http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).default_headers(headers).build().unwrap();
        browser
    };
    let mut caller = from("203.0.113.30");
    for i in 0..30 {
        let page = caller.get(&authorize_path(&client_id, &challenge)).await;
        assert_eq!(page.status, 303, "request {i}: not signed in, so on to /login: {}", page.body);
    }
    let page = caller.get(&authorize_path(&client_id, &challenge)).await;
    assert_eq!(page.status, 429, "{}", page.body);
    let retry_after: u64 = page.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    assert!(page.body.contains("try again in"), "{}", page.body);
    assert_eq!(documents.hits("/no-store.json"), 30, "the refused request fetched nothing");
    // Another network has its own budget.
    let page = from("198.51.100.30").get(&authorize_path(&client_id, &challenge)).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(documents.hits("/no-store.json"), 31);
}
