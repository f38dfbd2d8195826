//! A local stand-in for X (Twitter) API v2 and its OAuth 2.0 provider, on one origin.
//!
//! - API: `GET /2/users/me` with `Authorization: Bearer <access token>`; refusals in X's problem
//!   envelope, `{"title", "type", "status", "detail"}`.
//! - OAuth 2.0 with PKCE, as X runs it: `GET /i/oauth2/authorize` shows a consent page (a plain
//!   form, no script), whose answer (`POST /i/oauth2/authorize`) redirects to the client's
//!   `redirect_uri` with `code` and `state`, or `error=access_denied`. `POST /2/oauth2/token`
//!   takes the client's `Authorization: Basic` and exchanges a code (single use, bound to its
//!   redirect URI and PKCE S256 challenge) or a refresh token. Refresh tokens rotate: each works
//!   once, and a used one is refused with `invalid_request` (X's answer).
//!
//! Tests read [`X::refresh_requests`] and can expire every access token ([`X::expire_access_tokens`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::Method;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{Fault, PlatformMock, RecordedRequest, Reply};

/// The user every token belongs to.
pub const USER_ID: &str = "2244994945";
pub const USER_NAME: &str = "Ada Lovelace";
pub const USERNAME: &str = "ada";
/// How long access tokens last unless [`X::set_access_ttl`] says otherwise (X's two hours).
pub const ACCESS_TTL: i64 = 7200;

#[derive(Default)]
struct State {
    /// code → (redirect_uri, code_challenge, scope)
    codes: HashMap<String, (String, String, String)>,
    access: Vec<String>,
    /// refresh token → still usable
    refresh: HashMap<String, bool>,
    access_ttl: Option<i64>,
}

/// The mock's state; start it with [`crate::Mock::start`].
pub struct X {
    client_id: String,
    client_secret: String,
    state: Mutex<State>,
    next: AtomicU64,
    refresh_requests: AtomicU64,
}

impl X {
    /// A provider that knows one confidential client.
    pub fn new(client_id: &str, client_secret: &str) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            state: Mutex::new(State::default()),
            next: AtomicU64::new(1),
            refresh_requests: AtomicU64::new(0),
        }
    }

    /// A mock that accepts these access tokens (for tests that store a token directly).
    pub fn accepting(tokens: &[&str]) -> Self {
        let mock = Self::new("client", "secret");
        mock.state.lock().unwrap().access = tokens.iter().map(|t| (*t).to_owned()).collect();
        mock
    }

    /// Issues a token pair as a finished authorization would (for tests that start connected).
    pub fn issue(&self) -> (String, String) {
        let mut state = self.state.lock().unwrap();
        self.new_pair(&mut state)
    }

    /// `grant_type=refresh_token` requests so far, refused ones included.
    pub fn refresh_requests(&self) -> u64 {
        self.refresh_requests.load(Ordering::SeqCst)
    }

    /// Every access token issued so far stops working (as after their two hours).
    pub fn expire_access_tokens(&self) {
        self.state.lock().unwrap().access.clear();
    }

    /// Every refresh token issued so far stops working (the person revoked the app).
    pub fn revoke_refresh_tokens(&self) {
        for usable in self.state.lock().unwrap().refresh.values_mut() {
            *usable = false;
        }
    }

    /// The `expires_in` of tokens issued from now on.
    pub fn set_access_ttl(&self, seconds: i64) {
        self.state.lock().unwrap().access_ttl = Some(seconds);
    }

    fn new_pair(&self, state: &mut State) -> (String, String) {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let access = format!("x-access-{n}-{}", random_tail(n));
        let refresh = format!("x-refresh-{n}-{}", random_tail(n.wrapping_mul(31)));
        state.access.push(access.clone());
        state.refresh.insert(refresh.clone(), true);
        (access, refresh)
    }

    fn tokens(&self, state: &mut State, scope: &str) -> Reply {
        let (access, refresh) = self.new_pair(state);
        let ttl = state.access_ttl.unwrap_or(ACCESS_TTL);
        Reply::json(200, json!({"token_type": "bearer", "expires_in": ttl, "access_token": access, "scope": scope, "refresh_token": refresh}))
    }

    fn client_authenticated(&self, request: &RecordedRequest) -> bool {
        let expected = format!("Basic {}", STANDARD.encode(format!("{}:{}", self.client_id, self.client_secret)));
        request.header("authorization") == Some(expected.as_str())
    }

    fn me(&self, request: &RecordedRequest) -> Reply {
        let token = request.header("authorization").and_then(|v| v.strip_prefix("Bearer ")).unwrap_or_default();
        if !self.state.lock().unwrap().access.iter().any(|t| t == token) {
            return problem(401, "Unauthorized", "Unauthorized");
        }
        Reply::json(200, json!({"data": {"id": USER_ID, "name": USER_NAME, "username": USERNAME}}))
    }

    fn authorize_page(&self, request: &RecordedRequest) -> Reply {
        let query: HashMap<String, String> = request.query_pairs().into_iter().collect();
        let get = |name: &str| query.get(name).cloned().unwrap_or_default();
        if get("client_id") != self.client_id || get("response_type") != "code" || get("redirect_uri").is_empty() {
            return Reply::raw(400, "text/html; charset=utf-8", "<!doctype html><title>Error</title><p>Invalid client or request.</p>");
        }
        if get("code_challenge_method") != "S256" || get("code_challenge").is_empty() {
            return Reply::raw(400, "text/html; charset=utf-8", "<!doctype html><title>Error</title><p>PKCE S256 is required.</p>");
        }
        let hidden: String = ["redirect_uri", "state", "code_challenge", "scope"]
            .iter()
            .map(|name| format!("<input type=\"hidden\" name=\"{name}\" value=\"{}\">", html_escape(&get(name))))
            .collect();
        let page = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Authorize app · X (mock)</title>\
             <style>body{{font:16px system-ui;margin:3rem auto;max-width:28rem}}button{{font:inherit;padding:.6rem 1rem;margin-right:.5rem}}</style></head>\
             <body><h1>Authorize SquareMCP to use your account?</h1><p>@{USERNAME} ({USER_NAME})</p><p>Scopes: {scope}</p>\
             <form method=\"post\" action=\"/i/oauth2/authorize\">{hidden}\
             <button type=\"submit\" name=\"decision\" value=\"allow\">Authorize app</button>\
             <button type=\"submit\" name=\"decision\" value=\"deny\">Cancel</button></form></body></html>",
            scope = html_escape(&get("scope")),
        );
        Reply::raw(200, "text/html; charset=utf-8", &page)
    }

    fn decide(&self, request: &RecordedRequest) -> Reply {
        let form = form_pairs(&request.body);
        let get = |name: &str| form.get(name).cloned().unwrap_or_default();
        let redirect_uri = get("redirect_uri");
        let separator = if redirect_uri.contains('?') { '&' } else { '?' };
        let location = if get("decision") == "allow" {
            let n = self.next.fetch_add(1, Ordering::SeqCst);
            let code = format!("x-code-{n}-{}", random_tail(n));
            self.state.lock().unwrap().codes.insert(code.clone(), (redirect_uri.clone(), get("code_challenge"), get("scope")));
            format!("{redirect_uri}{separator}state={}&code={}", url_encode(&get("state")), url_encode(&code))
        } else {
            format!("{redirect_uri}{separator}error=access_denied&state={}", url_encode(&get("state")))
        };
        Reply::raw(302, "text/plain", "").header("location", location)
    }

    fn token(&self, request: &RecordedRequest) -> Reply {
        let form = form_pairs(&request.body);
        let get = |name: &str| form.get(name).cloned().unwrap_or_default();
        if !self.client_authenticated(request) {
            return Reply::json(401, json!({"error": "unauthorized_client", "error_description": "Missing valid authorization header"}));
        }
        let invalid = |description: &str| Reply::json(400, json!({"error": "invalid_request", "error_description": description}));
        let mut state = self.state.lock().unwrap();
        match get("grant_type").as_str() {
            "authorization_code" => {
                let Some((redirect_uri, challenge, scope)) = state.codes.remove(&get("code")) else {
                    return invalid("Value passed for the authorization code was invalid.");
                };
                let verifier = get("code_verifier");
                let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
                if redirect_uri != get("redirect_uri") || verifier.is_empty() || computed != challenge {
                    return invalid("Value passed for the authorization code was invalid.");
                }
                self.tokens(&mut state, &scope)
            }
            "refresh_token" => {
                self.refresh_requests.fetch_add(1, Ordering::SeqCst);
                let presented = get("refresh_token");
                match state.refresh.get_mut(&presented) {
                    Some(usable) if *usable => {
                        // Rotation: this one never works again.
                        *usable = false;
                        self.tokens(&mut state, "tweet.read users.read offline.access")
                    }
                    _ => invalid("Value passed for the token was invalid."),
                }
            }
            _ => Reply::json(400, json!({"error": "unsupported_grant_type"})),
        }
    }
}

impl PlatformMock for X {
    fn answer(&self, request: &RecordedRequest) -> Reply {
        match (&request.method, request.path.as_str()) {
            (&Method::GET, "/2/users/me") => self.me(request),
            (&Method::GET, "/i/oauth2/authorize") => self.authorize_page(request),
            (&Method::POST, "/i/oauth2/authorize") => self.decide(request),
            (&Method::POST, "/2/oauth2/token") => self.token(request),
            _ => problem(404, "Not Found Error", "The requested resource could not be found."),
        }
    }

    fn fault(&self, fault: &Fault, _request: &RecordedRequest) -> Reply {
        match fault {
            Fault::Unauthorized => problem(401, "Unauthorized", "Unauthorized"),
            Fault::Forbidden => problem(403, "Forbidden", "You are not permitted to perform this action."),
            Fault::RateLimited { retry_after } => {
                let reset = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64() + retry_after)
                    .unwrap_or_default();
                problem(429, "Too Many Requests", "Too Many Requests")
                    .header("retry-after", format!("{}", retry_after.ceil() as u64))
                    .header("x-rate-limit-reset", format!("{}", reset.ceil() as u64))
                    .header("x-rate-limit-remaining", "0")
            }
            Fault::ServerError => problem(503, "Service Unavailable", "Service Unavailable"),
            Fault::Slow(_) | Fault::Reply(_) => problem(500, "Internal Error", "unreachable"),
        }
    }
}

fn problem(status: u16, title: &str, detail: &str) -> Reply {
    Reply::json(status, json!({"title": title, "type": "about:blank", "status": status, "detail": detail}))
}

fn random_tail(seed: u64) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(Sha256::digest(format!("{seed}:{nanos}").as_bytes()))[..24].to_owned()
}

fn form_pairs(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    RecordedRequest {
        method: Method::POST,
        path: String::new(),
        query: Some(text.into_owned()),
        headers: Default::default(),
        body: Default::default(),
    }
    .query_pairs()
    .into_iter()
    .collect()
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
