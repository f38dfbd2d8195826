//! A local stand-in for X (Twitter) API v2 and its OAuth 2.0 provider, on one origin.
//!
//! - API, with `Authorization: Bearer <access token>`: `GET /2/users/me`, `/2/users/by/username/{u}`,
//!   `/2/users/{id}`, `/2/users/{id}/tweets`, `/2/tweets/search/recent`, `POST /2/tweets` (201,
//!   with X's checks: text or media, poll vs media/quote), and the v2 chunked media upload
//!   (`/2/media/upload/initialize`, `/{id}/append` as multipart with `segment_index` and `media`,
//!   `/{id}/finalize`, `GET /2/media/upload?command=STATUS`): segments must come in order, and
//!   finalize checks the byte total. Processing takes [`X::set_processing_polls`] status checks,
//!   or fails ([`X::fail_processing`]). Refusals in X's problem envelope, `{"title", "type",
//!   "status", "detail"}`; [`MISSING_USERNAME`] and [`MISSING_ID`] do not exist.
//! - OAuth 2.0 with PKCE, as X runs it: `GET /i/oauth2/authorize` shows a consent page (a plain
//!   form, no script), whose answer (`POST /i/oauth2/authorize`) redirects to the client's
//!   `redirect_uri` with `code` and `state`, or `error=access_denied`. `POST /2/oauth2/token`
//!   takes the client's `Authorization: Basic` and exchanges a code (single use, bound to its
//!   redirect URI and PKCE S256 challenge) or a refresh token. Refresh tokens rotate: each works
//!   once, and a used one is refused with `invalid_request` (X's answer) and, as a reuse is a sign
//!   of a stolen token, revokes the whole grant: every refresh and access token issued from it
//!   ([`X::reused_refresh_tokens`] counts such reuses).
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
/// A username and a user id that do not exist.
pub const MISSING_USERNAME: &str = "nobody_here";
pub const MISSING_ID: &str = "404";

/// One chunked upload as the mock saw it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Upload {
    pub media_type: String,
    pub media_category: String,
    pub total_bytes: u64,
    /// Each APPEND's `segment_index` and byte count, in arrival order.
    pub segments: Vec<(u64, usize)>,
    pub finalized: bool,
    /// STATUS checks answered so far.
    pub status_checks: u32,
}

#[derive(Default)]
struct State {
    /// code → (redirect_uri, code_challenge, scope)
    codes: HashMap<String, (String, String, String)>,
    access: Vec<String>,
    /// refresh token → still usable
    refresh: HashMap<String, bool>,
    access_ttl: Option<i64>,
    /// Access tokens issued from each refresh token (its grant), for revoking a grant on reuse.
    grant_of: HashMap<String, u64>,
    reused: u64,
    uploads: HashMap<String, Upload>,
    processing_polls: u32,
    processing_fails: bool,
    posts: Vec<serde_json::Value>,
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

    /// Refresh tokens presented again after they were used (each revoked its grant).
    pub fn reused_refresh_tokens(&self) -> u64 {
        self.state.lock().unwrap().reused
    }

    /// The uploads so far, by media id.
    pub fn uploads(&self) -> HashMap<String, Upload> {
        self.state.lock().unwrap().uploads.clone()
    }

    /// The bodies of the posts created so far.
    pub fn posts(&self) -> Vec<serde_json::Value> {
        self.state.lock().unwrap().posts.clone()
    }

    /// How many STATUS checks answer `in_progress` before the final state; with 0 (the default)
    /// finalize answers `succeeded` at once.
    pub fn set_processing_polls(&self, polls: u32) {
        self.state.lock().unwrap().processing_polls = polls;
    }

    /// Processing ends in `failed` instead of `succeeded`.
    pub fn fail_processing(&self, fails: bool) {
        self.state.lock().unwrap().processing_fails = fails;
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
        let grant = self.next.load(Ordering::SeqCst);
        self.pair_in(state, grant)
    }

    /// A token pair in `grant` (the authorization it descends from).
    fn pair_in(&self, state: &mut State, grant: u64) -> (String, String) {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let access = format!("x-access-{n}-{}", random_tail(n));
        let refresh = format!("x-refresh-{n}-{}", random_tail(n.wrapping_mul(31)));
        state.access.push(access.clone());
        state.refresh.insert(refresh.clone(), true);
        state.grant_of.insert(access.clone(), grant);
        state.grant_of.insert(refresh.clone(), grant);
        (access, refresh)
    }

    fn tokens(&self, state: &mut State, scope: &str, grant: Option<u64>) -> Reply {
        let (access, refresh) = match grant {
            Some(grant) => self.pair_in(state, grant),
            None => self.new_pair(state),
        };
        let ttl = state.access_ttl.unwrap_or(ACCESS_TTL);
        Reply::json(200, json!({"token_type": "bearer", "expires_in": ttl, "access_token": access, "scope": scope, "refresh_token": refresh}))
    }

    fn client_authenticated(&self, request: &RecordedRequest) -> bool {
        let expected = format!("Basic {}", STANDARD.encode(format!("{}:{}", self.client_id, self.client_secret)));
        request.header("authorization") == Some(expected.as_str())
    }

    fn authorized(&self, request: &RecordedRequest) -> bool {
        let token = request.header("authorization").and_then(|v| v.strip_prefix("Bearer ")).unwrap_or_default();
        self.state.lock().unwrap().access.iter().any(|t| t == token)
    }

    fn user(id: &str, username: &str, name: &str) -> serde_json::Value {
        json!({"id": id, "name": name, "username": username, "description": "Mock account", "created_at": "2013-12-14T04:35:55.000Z",
               "verified": false, "public_metrics": {"followers_count": 10, "following_count": 2, "tweet_count": 3, "listed_count": 0}})
    }

    fn users(&self, request: &RecordedRequest) -> Reply {
        let path = request.path.trim_start_matches("/2/users/");
        if path == "me" {
            return Reply::json(200, json!({"data": Self::user(USER_ID, USERNAME, USER_NAME)}));
        }
        if let Some(username) = path.strip_prefix("by/username/") {
            if username == MISSING_USERNAME {
                return not_found_user("username", username);
            }
            return Reply::json(200, json!({"data": Self::user("1000000001", username, "Someone")}));
        }
        if let Some(id) = path.strip_suffix("/tweets") {
            if id == MISSING_ID {
                return not_found_user("id", id);
            }
            return self.page(request, 5, 100, "pagination_token", &format!("from:{id}"));
        }
        if path == MISSING_ID {
            return not_found_user("id", path);
        }
        if !path.is_empty() && path.bytes().all(|b| b.is_ascii_digit()) {
            return Reply::json(200, json!({"data": Self::user(path, "someone", "Someone")}));
        }
        problem(404, "Not Found Error", "The requested resource could not be found.")
    }

    /// A page of posts, with X's bounds on `max_results` and a `next_token` until the third page.
    fn page(&self, request: &RecordedRequest, min: u64, max: u64, cursor: &str, about: &str) -> Reply {
        let query: HashMap<String, String> = request.query_pairs().into_iter().collect();
        let wanted = query.get("max_results").map_or(Ok(10), |v| v.parse::<u64>());
        let Ok(wanted) = wanted else { return invalid_query("max_results", "is not a number") };
        if wanted < min || wanted > max {
            return invalid_query("max_results", &format!("must be between {min} and {max}"));
        }
        let page: u64 = query.get(cursor).and_then(|t| t.strip_prefix("page-")).and_then(|n| n.parse().ok()).unwrap_or(1);
        let count = wanted.min(3);
        let data: Vec<_> = (0..count)
            .map(|i| json!({"id": format!("{}", 1_850_000_000_000_000_000_u64 + page * 100 + i), "text": format!("post {i} ({about})"),
                            "edit_history_tweet_ids": [format!("{}", 1_850_000_000_000_000_000_u64 + page * 100 + i)]}))
            .collect();
        let mut meta = json!({"result_count": count, "newest_id": data[0]["id"], "oldest_id": data[data.len() - 1]["id"]});
        if page < 3 {
            meta["next_token"] = json!(format!("page-{}", page + 1));
        }
        Reply::json(200, json!({"data": data, "meta": meta}))
    }

    fn search(&self, request: &RecordedRequest) -> Reply {
        let query: HashMap<String, String> = request.query_pairs().into_iter().collect();
        let Some(text) = query.get("query").filter(|q| !q.is_empty()) else { return invalid_query("query", "is required") };
        if text.chars().count() > 512 {
            return invalid_query("query", "is longer than 512 characters");
        }
        let text = text.clone();
        self.page(request, 10, 100, "next_token", &text)
    }

    fn create(&self, request: &RecordedRequest) -> Reply {
        let body = request.json();
        let has = |key: &str| body.get(key).is_some_and(|v| !v.is_null());
        let text = body.get("text").and_then(|t| t.as_str()).unwrap_or_default();
        if text.is_empty() && !has("media") {
            return problem_invalid("One or more parameters to your request was invalid.", "$.text");
        }
        if has("poll") && (has("media") || has("quote_tweet_id")) {
            return problem_invalid("poll is mutually exclusive from media and quote_tweet_id.", "$.poll");
        }
        if has("media") && has("quote_tweet_id") {
            return problem_invalid("media is mutually exclusive from quote_tweet_id.", "$.media");
        }
        let mut state = self.state.lock().unwrap();
        if let Some(ids) = body.pointer("/media/media_ids").and_then(|v| v.as_array()) {
            for id in ids {
                let ready = id.as_str().and_then(|id| state.uploads.get(id)).is_some_and(|u| u.finalized);
                if !ready {
                    return problem_invalid("Your media IDs are invalid.", "$.media.media_ids");
                }
            }
        }
        if state.posts.iter().any(|p| p.get("text").and_then(|t| t.as_str()) == Some(text) && !text.is_empty()) {
            return problem(403, "Forbidden", "You are not allowed to create a Tweet with duplicate content.");
        }
        state.posts.push(body.clone());
        let id = format!("{}", 1_860_000_000_000_000_000_u64 + state.posts.len() as u64);
        Reply::json(201, json!({"data": {"id": id, "text": text, "edit_history_tweet_ids": [id]}}))
    }

    fn initialize(&self, request: &RecordedRequest) -> Reply {
        let body = request.json();
        let media_type = body.get("media_type").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        let total_bytes = body.get("total_bytes").and_then(|v| v.as_u64()).unwrap_or_default();
        let media_category = body.get("media_category").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        if !request.header("content-type").is_some_and(|c| c.starts_with("application/json")) {
            return problem_invalid("The request body must be JSON.", "$");
        }
        if media_type.is_empty() || total_bytes == 0 || !matches!(media_category.as_str(), "tweet_video" | "amplify_video" | "tweet_image" | "tweet_gif") {
            return problem_invalid("One or more parameters to your request was invalid.", "$.media_type");
        }
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}", 1_880_000_000_000_000_000_u64 + n);
        self.state.lock().unwrap().uploads.insert(id.clone(), Upload { media_type, media_category, total_bytes, ..Upload::default() });
        Reply::json(200, json!({"data": {"id": id, "media_key": format!("7_{id}"), "expires_after_secs": 86399}}))
    }

    fn append(&self, request: &RecordedRequest, id: &str) -> Reply {
        let Some((index, media)) = multipart_segment(request) else {
            return problem_invalid("The request must be multipart/form-data with segment_index and media.", "$.media");
        };
        let mut state = self.state.lock().unwrap();
        let Some(upload) = state.uploads.get_mut(id) else { return problem(404, "Not Found Error", "The media id was not found.") };
        if upload.finalized || index != upload.segments.len() as u64 || index > 999 {
            return problem_invalid("segment_index is out of order.", "$.segment_index");
        }
        upload.segments.push((index, media));
        Reply::json(200, json!({"data": {"expires_at": 1_767_312_000}}))
    }

    fn finalize(&self, id: &str) -> Reply {
        let mut state = self.state.lock().unwrap();
        let (polls, fails) = (state.processing_polls, state.processing_fails);
        let Some(upload) = state.uploads.get_mut(id) else { return problem(404, "Not Found Error", "The media id was not found.") };
        let received: u64 = upload.segments.iter().map(|(_, n)| *n as u64).sum();
        if received != upload.total_bytes {
            return problem_invalid("File size does not match total_bytes.", "$.total_bytes");
        }
        upload.finalized = true;
        let info = if polls == 0 && !fails { json!({"state": "succeeded", "progress_percent": 100}) } else { json!({"state": "pending", "check_after_secs": 1}) };
        Reply::json(200, json!({"data": {"id": id, "media_key": format!("7_{id}"), "size": received, "expires_after_secs": 86400, "processing_info": info}}))
    }

    fn status(&self, request: &RecordedRequest) -> Reply {
        let query: HashMap<String, String> = request.query_pairs().into_iter().collect();
        if query.get("command").map(String::as_str) != Some("STATUS") {
            return invalid_query("command", "must be STATUS");
        }
        let id = query.get("media_id").cloned().unwrap_or_default();
        let mut state = self.state.lock().unwrap();
        let (polls, fails) = (state.processing_polls, state.processing_fails);
        let Some(upload) = state.uploads.get_mut(&id).filter(|u| u.finalized) else {
            return problem(404, "Not Found Error", "The media id was not found.");
        };
        upload.status_checks += 1;
        let info = if upload.status_checks <= polls {
            json!({"state": "in_progress", "check_after_secs": 1, "progress_percent": 10 * upload.status_checks})
        } else if fails {
            json!({"state": "failed", "progress_percent": 100, "error": {"code": 1, "name": "InvalidMedia", "message": "Unsupported video codec"}})
        } else {
            json!({"state": "succeeded", "progress_percent": 100})
        };
        Reply::json(200, json!({"data": {"id": id, "media_key": format!("7_{id}"), "processing_info": info}}))
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
                self.tokens(&mut state, &scope, None)
            }
            "refresh_token" => {
                self.refresh_requests.fetch_add(1, Ordering::SeqCst);
                let presented = get("refresh_token");
                let grant = state.grant_of.get(&presented).copied();
                match state.refresh.get_mut(&presented) {
                    Some(usable) if *usable => {
                        // Rotation: this one never works again.
                        *usable = false;
                        self.tokens(&mut state, "tweet.read tweet.write users.read media.write offline.access", grant)
                    }
                    Some(_) => {
                        // A used refresh token again: treated as stolen, so the whole grant ends.
                        state.reused += 1;
                        if let Some(grant) = grant {
                            let State { access, refresh, grant_of, .. } = &mut *state;
                            access.retain(|token| grant_of.get(token) != Some(&grant));
                            for (token, usable) in refresh.iter_mut() {
                                if grant_of.get(token) == Some(&grant) {
                                    *usable = false;
                                }
                            }
                        }
                        invalid("Value passed for the token was invalid.")
                    }
                    None => invalid("Value passed for the token was invalid."),
                }
            }
            _ => Reply::json(400, json!({"error": "unsupported_grant_type"})),
        }
    }
}

impl PlatformMock for X {
    fn answer(&self, request: &RecordedRequest) -> Reply {
        let path = request.path.as_str();
        let api = path.starts_with("/2/") && path != "/2/oauth2/token";
        if api && !self.authorized(request) {
            return problem(401, "Unauthorized", "Unauthorized");
        }
        match (&request.method, path) {
            (&Method::GET, "/i/oauth2/authorize") => self.authorize_page(request),
            (&Method::POST, "/i/oauth2/authorize") => self.decide(request),
            (&Method::POST, "/2/oauth2/token") => self.token(request),
            (&Method::GET, "/2/tweets/search/recent") => self.search(request),
            (&Method::POST, "/2/tweets") => self.create(request),
            (&Method::POST, "/2/media/upload/initialize") => self.initialize(request),
            (&Method::GET, "/2/media/upload") => self.status(request),
            (&Method::POST, p) if p.starts_with("/2/media/upload/") && p.ends_with("/append") => {
                self.append(request, p.trim_start_matches("/2/media/upload/").trim_end_matches("/append"))
            }
            (&Method::POST, p) if p.starts_with("/2/media/upload/") && p.ends_with("/finalize") => {
                self.finalize(p.trim_start_matches("/2/media/upload/").trim_end_matches("/finalize"))
            }
            (&Method::GET, p) if p.starts_with("/2/users/") => self.users(request),
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

fn not_found_user(parameter: &str, value: &str) -> Reply {
    // X answers an unknown user with 200 and an `errors` list, not a 404.
    Reply::json(200, json!({"errors": [{"value": value, "detail": format!("Could not find user with {parameter}: [{value}]."),
        "title": "Not Found Error", "resource_type": "user", "parameter": parameter, "resource_id": value,
        "type": "https://api.twitter.com/2/problems/resource-not-found"}]}))
}

fn invalid_query(parameter: &str, problem_text: &str) -> Reply {
    Reply::json(400, json!({"errors": [{"parameters": {parameter: []}, "message": format!("The `{parameter}` query parameter {problem_text}")}],
        "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request"}))
}

fn problem_invalid(message: &str, path: &str) -> Reply {
    Reply::json(400, json!({"errors": [{"message": message, "path": path}], "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.", "type": "https://api.twitter.com/2/problems/invalid-request"}))
}

/// `segment_index` and the byte count of `media` from a multipart/form-data body.
fn multipart_segment(request: &RecordedRequest) -> Option<(u64, usize)> {
    let content_type = request.header("content-type")?;
    let boundary = content_type.strip_prefix("multipart/form-data")?.split("boundary=").nth(1)?.trim_matches('"');
    let delimiter = format!("--{boundary}");
    let body = &request.body[..];
    let (mut index, mut media) = (None, None);
    let mut rest = body.strip_prefix(delimiter.as_bytes())?;
    loop {
        if rest.starts_with(b"--") {
            break;
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let header_end = find(rest, b"\r\n\r\n")?;
        let headers = String::from_utf8_lossy(&rest[..header_end]).to_ascii_lowercase();
        let content = &rest[header_end + 4..];
        let end = find(content, format!("\r\n{delimiter}").as_bytes())?;
        let value = &content[..end];
        if headers.contains("name=\"segment_index\"") {
            index = std::str::from_utf8(value).ok()?.trim().parse().ok();
        } else if headers.contains("name=\"media\"") {
            media = Some(value.len());
        }
        rest = &content[end + 2 + delimiter.len()..];
    }
    Some((index?, media?))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(content_type: &str, body: &[u8]) -> RecordedRequest {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("content-type", content_type.parse().unwrap());
        RecordedRequest { method: Method::POST, path: "/2/media/upload/1/append".into(), query: None, headers, body: body.to_vec().into() }
    }

    #[test]
    fn multipart_segments_are_read_and_malformed_ones_refused() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"segment_index\"\r\n\r\n2\r\n--b\r\nContent-Disposition: form-data; name=\"media\"; filename=\"blob\"\r\nContent-Type: application/octet-stream\r\n\r\n\x00\r\n--\r\n\r\n--b--\r\n";
        assert_eq!(multipart_segment(&request("multipart/form-data; boundary=b", body)), Some((2, 7)), "CRLF and dashes inside the media are data");
        assert_eq!(multipart_segment(&request("application/json", body)), None);
        let no_media = b"--b\r\nContent-Disposition: form-data; name=\"segment_index\"\r\n\r\n0\r\n--b--\r\n";
        assert_eq!(multipart_segment(&request("multipart/form-data; boundary=b", no_media)), None);
    }

    #[test]
    fn a_reused_refresh_token_ends_its_grant() {
        let x = X::new("client", "secret");
        let (access, refresh) = x.issue();
        let auth = format!("Basic {}", STANDARD.encode("client:secret"));
        let refresh_with = |token: &str| {
            let mut request = request("application/x-www-form-urlencoded", format!("grant_type=refresh_token&refresh_token={token}").as_bytes());
            request.path = "/2/oauth2/token".into();
            request.headers.insert("authorization", auth.parse().unwrap());
            x.token(&request)
        };
        assert_eq!(refresh_with(&refresh).status, 200);
        assert_eq!(refresh_with(&refresh).status, 400, "a used refresh token is refused");
        assert_eq!(x.reused_refresh_tokens(), 1);
        let state = x.state.lock().unwrap();
        assert!(state.access.is_empty(), "every access token of the grant ended, {access} and the rotated one");
        assert!(state.refresh.values().all(|usable| !usable), "and every refresh token");
    }
}
