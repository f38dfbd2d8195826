//! A local stand-in for TikTok's API (`/v2/...`) and its token endpoint, on one origin.
//!
//! - Every answer is TikTok's envelope `{"data": …, "error": {"code", "message", "log_id"}}`;
//!   success is `error.code == "ok"`. The token is read from `Authorization: Bearer …`
//!   (401 `access_token_invalid` otherwise).
//! - `GET /v2/user/info/?fields=…` answers only the fields asked for (`invalid_params` without).
//! - `POST /v2/post/publish/creator_info/query/` answers the creator, with the privacy levels
//!   [`Tiktok::set_privacy_options`] allows.
//! - `POST /v2/post/publish/video/init/` (direct post) and `/v2/post/publish/inbox/video/init/`:
//!   the privacy level is checked against the options (`privacy_level_option_mismatch`), a
//!   `FILE_UPLOAD` against TikTok's chunk rules (`invalid_params`), a `PULL_FROM_URL` against the
//!   verified prefix [`VERIFIED_PREFIX`] (`url_ownership_unverified`). A file upload answers an
//!   `upload_url` on this origin (`/video/?upload_id=…`), where `PUT` takes the chunks in order,
//!   each checked (`Content-Range`, its size, `Content-Type`, no `Authorization`): 206 for each
//!   but the last, 201 for the last.
//! - `POST /v2/post/publish/status/fetch/`: `PROCESSING_UPLOAD`/`PROCESSING_DOWNLOAD` for
//!   [`Tiktok::set_processing_polls`] polls after the upload, then `PUBLISH_COMPLETE` (direct) or
//!   `SEND_TO_USER_INBOX` (inbox), or `FAILED` with the `fail_reason` of
//!   [`Tiktok::fail_publishes_with`]. A publish id the mock did not issue reads as published,
//!   except [`MISSING_PUBLISH_ID`].
//! - `POST /v2/oauth/token/`: `client_key`/`client_secret` in the form; `authorization_code`
//!   (from [`Tiktok::issue_code`]) or `refresh_token`, which rotates (each works once). Answers
//!   TikTok's token shape (`open_id`, `scope`, `expires_in`, `refresh_token`, `refresh_expires_in`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::Method;
use serde_json::{Map, Value, json};

use crate::{Fault, PlatformMock, RecordedRequest, Reply};

pub const OPEN_ID: &str = "723f24d7-e717-40f8-a2b6-cb8464cd23b4";
pub const UNION_ID: &str = "c9c60f44-a68e-4f5d-84dd-ce22faeb0ba1";
pub const DISPLAY_NAME: &str = "Ada Lovelace";
/// TikTok pulls only from URLs under this prefix (a "verified" domain).
pub const VERIFIED_PREFIX: &str = "https://media.example.com/";
pub const MISSING_PUBLISH_ID: &str = "v_pub_file~v2-1.missing";
pub const ALL_PRIVACY_LEVELS: [&str; 4] = [
    "PUBLIC_TO_EVERYONE",
    "MUTUAL_FOLLOW_FRIENDS",
    "FOLLOWER_OF_CREATOR",
    "SELF_ONLY",
];
/// TikTok's chunk rules.
pub const MIN_CHUNK: u64 = 5 * 1024 * 1024;
pub const MAX_CHUNK: u64 = 64 * 1024 * 1024;
pub const MAX_LAST_CHUNK: u64 = 128 * 1024 * 1024;

/// One publish as the mock tracks it.
#[derive(Clone, Debug)]
pub struct Publish {
    pub inbox: bool,
    pub pull: bool,
    pub video_size: u64,
    pub chunk_size: u64,
    pub total_chunk_count: u64,
    /// Bytes received so far, in order.
    pub received: u64,
    /// Chunks received (their `Content-Range`s).
    pub chunks: Vec<String>,
    pub post_info: Value,
    polls_left: u32,
}

#[derive(Default)]
struct State {
    access: Vec<String>,
    refresh: HashMap<String, bool>,
    codes: Vec<String>,
    privacy_options: Option<Vec<String>>,
    processing_polls: u32,
    fail_reason: Option<String>,
    publishes: HashMap<String, Publish>,
    /// upload id → publish id
    uploads: HashMap<String, String>,
}

pub struct Tiktok {
    client_key: String,
    client_secret: String,
    state: Mutex<State>,
    next: AtomicU64,
}

impl Tiktok {
    /// A mock that accepts these access tokens; status polls take one round by default.
    pub fn accepting(tokens: &[&str]) -> Self {
        let mock = Self::with_client("client-key", "client-secret");
        mock.state.lock().unwrap().access = tokens.iter().map(|t| (*t).to_owned()).collect();
        mock
    }

    /// A mock whose token endpoint knows this client.
    pub fn with_client(client_key: &str, client_secret: &str) -> Self {
        let state = State {
            processing_polls: 1,
            ..State::default()
        };
        Self {
            client_key: client_key.to_owned(),
            client_secret: client_secret.to_owned(),
            state: Mutex::new(state),
            next: AtomicU64::new(1),
        }
    }

    /// The privacy levels the creator may use (all four unless set).
    pub fn set_privacy_options(&self, options: &[&str]) {
        self.state.lock().unwrap().privacy_options =
            Some(options.iter().map(|o| (*o).to_owned()).collect());
    }

    /// How many status polls after the upload still answer a processing state.
    pub fn set_processing_polls(&self, polls: u32) {
        self.state.lock().unwrap().processing_polls = polls;
    }

    /// Publishes started from now on end `FAILED` with this `fail_reason`.
    pub fn fail_publishes_with(&self, reason: &str) {
        self.state.lock().unwrap().fail_reason = Some(reason.to_owned());
    }

    /// The publishes started so far, by publish id.
    pub fn publishes(&self) -> HashMap<String, Publish> {
        self.state.lock().unwrap().publishes.clone()
    }

    /// An authorization code as the consent page would give it.
    pub fn issue_code(&self) -> String {
        let code = format!("code-{}", self.next.fetch_add(1, Ordering::SeqCst));
        self.state.lock().unwrap().codes.push(code.clone());
        code
    }

    /// Every access token stops working (as after their two hours).
    pub fn expire_access_tokens(&self) {
        self.state.lock().unwrap().access.clear();
    }

    fn options(state: &State) -> Vec<String> {
        state
            .privacy_options
            .clone()
            .unwrap_or_else(|| ALL_PRIVACY_LEVELS.iter().map(|o| (*o).to_owned()).collect())
    }

    fn authorized(&self, request: &RecordedRequest) -> bool {
        let token = request
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        !token.is_empty() && self.state.lock().unwrap().access.iter().any(|t| t == token)
    }

    fn user_info(request: &RecordedRequest) -> Reply {
        let Some((_, fields)) = request
            .query_pairs()
            .into_iter()
            .find(|(k, _)| k == "fields")
        else {
            return refusal(400, "invalid_params", "fields is required");
        };
        let all = json!({"open_id": OPEN_ID, "union_id": UNION_ID, "avatar_url": "https://p16.tiktokcdn.com/ada.jpeg", "display_name": DISPLAY_NAME});
        let mut user = Map::new();
        for field in fields.split(',') {
            match all.get(field) {
                Some(value) => {
                    user.insert(field.to_owned(), value.clone());
                }
                None => {
                    return refusal(
                        401,
                        "scope_not_authorized",
                        "The user did not authorize the scope required for completing this request.",
                    );
                }
            }
        }
        ok(json!({"user": user}))
    }

    fn creator_info(&self) -> Reply {
        let options = Self::options(&self.state.lock().unwrap());
        ok(
            json!({"creator_avatar_url": "https://p16.tiktokcdn.com/ada.jpeg", "creator_username": "ada", "creator_nickname": DISPLAY_NAME,
            "privacy_level_options": options, "comment_disabled": false, "duet_disabled": false, "stitch_disabled": true,
            "max_video_post_duration_sec": 600}),
        )
    }

    fn init(&self, request: &RecordedRequest, inbox: bool) -> Reply {
        if !request
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json"))
        {
            return refusal(
                400,
                "invalid_params",
                "Content-Type must be application/json",
            );
        }
        let body = request.json();
        let mut state = self.state.lock().unwrap();
        let post_info = body.get("post_info").cloned().unwrap_or(Value::Null);
        if inbox {
            if !post_info.is_null() {
                return refusal(
                    400,
                    "invalid_params",
                    "post_info is not accepted by inbox uploads",
                );
            }
        } else {
            let level = post_info
                .get("privacy_level")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !Self::options(&state).iter().any(|o| o == level) {
                return refusal(
                    400,
                    "privacy_level_option_mismatch",
                    "privacy_level is not one of the creator's options",
                );
            }
        }
        let source = &body["source_info"];
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let mut publish = Publish {
            inbox,
            pull: false,
            video_size: 0,
            chunk_size: 0,
            total_chunk_count: 0,
            received: 0,
            chunks: Vec::new(),
            post_info,
            polls_left: state.processing_polls,
        };
        let mut data = Map::new();
        match source.get("source").and_then(Value::as_str) {
            Some("FILE_UPLOAD") => {
                let number = |key: &str| source.get(key).and_then(Value::as_u64).unwrap_or(0);
                let (size, chunk, count) = (
                    number("video_size"),
                    number("chunk_size"),
                    number("total_chunk_count"),
                );
                if let Err(why) = check_chunks(size, chunk, count) {
                    return refusal(400, "invalid_params", &why);
                }
                let publish_id = format!("v_pub_file~v2-1.{n}");
                let upload_id = format!("upload-{n}");
                let host = request.header("host").unwrap_or("127.0.0.1");
                data.insert("publish_id".to_owned(), json!(publish_id));
                data.insert(
                    "upload_url".to_owned(),
                    json!(format!(
                        "http://{host}/video/?upload_id={upload_id}&upload_token=signed-{n}"
                    )),
                );
                (
                    publish.video_size,
                    publish.chunk_size,
                    publish.total_chunk_count,
                ) = (size, chunk, count);
                state.uploads.insert(upload_id, publish_id.clone());
                state.publishes.insert(publish_id, publish);
            }
            Some("PULL_FROM_URL") => {
                let url = source
                    .get("video_url")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !url.starts_with(VERIFIED_PREFIX) {
                    return refusal(
                        403,
                        "url_ownership_unverified",
                        "Please verify the ownership of the domain or URL prefix.",
                    );
                }
                let publish_id = format!("v_pub_url~v2-1.{n}");
                publish.pull = true;
                data.insert("publish_id".to_owned(), json!(publish_id));
                state.publishes.insert(publish_id, publish);
            }
            _ => {
                return refusal(
                    400,
                    "invalid_params",
                    "source_info.source must be FILE_UPLOAD or PULL_FROM_URL",
                );
            }
        }
        ok(Value::Object(data))
    }

    fn upload(&self, request: &RecordedRequest) -> Reply {
        let upload_id = request
            .query_pairs()
            .into_iter()
            .find(|(k, _)| k == "upload_id")
            .map(|(_, v)| v)
            .unwrap_or_default();
        let mut state = self.state.lock().unwrap();
        let Some(publish_id) = state.uploads.get(&upload_id).cloned() else {
            return refusal(404, "invalid_params", "unknown upload_id");
        };
        if request.header("authorization").is_some() {
            return refusal(
                400,
                "invalid_params",
                "upload URLs are signed: no Authorization header",
            );
        }
        if !request
            .header("content-type")
            .is_some_and(|t| t.starts_with("video/"))
        {
            return refusal(
                400,
                "invalid_file_upload",
                "Content-Type must be a video type",
            );
        }
        let publish = state
            .publishes
            .get_mut(&publish_id)
            .expect("an upload belongs to a publish");
        let range = request
            .header("content-range")
            .unwrap_or_default()
            .to_owned();
        let Some((first, last, total)) = parse_range(&range) else {
            return refusal(
                400,
                "invalid_file_upload",
                "Content-Range must be bytes first-last/total",
            );
        };
        let index = publish.chunks.len() as u64;
        let is_last = index + 1 == publish.total_chunk_count;
        let expected_len = if is_last {
            publish.video_size - publish.received
        } else {
            publish.chunk_size
        };
        if total != publish.video_size
            || first != publish.received
            || last + 1 - first != expected_len
            || request.body.len() as u64 != expected_len
        {
            return Reply::json(
                416,
                json!({"error": {"code": "invalid_file_upload", "message": format!("chunk {index} must be bytes {}-{}/{}", publish.received, publish.received + expected_len - 1, publish.video_size), "log_id": "mock"}}),
            );
        }
        publish.received += expected_len;
        publish.chunks.push(range);
        if is_last {
            Reply::raw(201, "text/plain", "")
        } else {
            Reply::raw(206, "text/plain", "")
        }
    }

    fn status(&self, request: &RecordedRequest) -> Reply {
        let id = request
            .json()
            .get("publish_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if id.is_empty() || id == MISSING_PUBLISH_ID {
            return refusal(400, "invalid_params", "publish_id is invalid");
        }
        let mut state = self.state.lock().unwrap();
        let fail_reason = state.fail_reason.clone();
        let Some(publish) = state.publishes.get_mut(&id) else {
            return ok(
                json!({"status": "PUBLISH_COMPLETE", "publicaly_available_post_id": [7_300_000_000_000_000_000_u64], "uploaded_bytes": 0}),
            );
        };
        let processing = if publish.pull {
            "PROCESSING_DOWNLOAD"
        } else {
            "PROCESSING_UPLOAD"
        };
        if !publish.pull && publish.received < publish.video_size {
            return ok(json!({"status": processing, "uploaded_bytes": publish.received}));
        }
        if publish.polls_left > 0 {
            publish.polls_left -= 1;
            return ok(json!({"status": processing, "uploaded_bytes": publish.received}));
        }
        if let Some(reason) = fail_reason {
            return ok(json!({"status": "FAILED", "fail_reason": reason}));
        }
        if publish.inbox {
            ok(json!({"status": "SEND_TO_USER_INBOX", "uploaded_bytes": publish.received}))
        } else {
            ok(
                json!({"status": "PUBLISH_COMPLETE", "publicaly_available_post_id": [], "uploaded_bytes": publish.received}),
            )
        }
    }

    fn token(&self, request: &RecordedRequest) -> Reply {
        let form: HashMap<String, String> = std::str::from_utf8(&request.body)
            .unwrap_or_default()
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (decode(k), decode(v)))
            .collect();
        let get = |k: &str| form.get(k).cloned().unwrap_or_default();
        if get("client_key") != self.client_key || get("client_secret") != self.client_secret {
            return Reply::json(
                401,
                json!({"error": "invalid_client", "error_description": "Client key or secret is invalid.", "log_id": "mock"}),
            );
        }
        let mut state = self.state.lock().unwrap();
        match get("grant_type").as_str() {
            "authorization_code" => {
                let code = get("code");
                let Some(at) = state.codes.iter().position(|c| *c == code) else {
                    return Reply::json(
                        400,
                        json!({"error": "invalid_grant", "error_description": "Authorization code is expired.", "log_id": "mock"}),
                    );
                };
                state.codes.remove(at);
                // Login Kit for Web: no code_verifier ("required for mobile and desktop apps" only).
                if get("redirect_uri").is_empty() {
                    return Reply::json(
                        400,
                        json!({"error": "invalid_request", "error_description": "redirect_uri is required.", "log_id": "mock"}),
                    );
                }
            }
            "refresh_token" => {
                let token = get("refresh_token");
                if state.refresh.get(&token) != Some(&true) {
                    return Reply::json(
                        400,
                        json!({"error": "invalid_grant", "error_description": "Refresh token is invalid or expired.", "log_id": "mock"}),
                    );
                }
                // Rotation: the old refresh token stops working.
                state.refresh.insert(token, false);
            }
            _ => {
                return Reply::json(
                    400,
                    json!({"error": "unsupported_grant_type", "log_id": "mock"}),
                );
            }
        }
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let (access, refresh) = (
            format!("act.mock{n}x0123456789"),
            format!("rft.mock{n}x0123456789"),
        );
        state.access.push(access.clone());
        state.refresh.insert(refresh.clone(), true);
        Reply::json(
            200,
            json!({"access_token": access, "expires_in": 7200, "open_id": OPEN_ID, "refresh_expires_in": 15_552_000,
            "refresh_token": refresh, "scope": "user.info.basic,video.publish,video.upload", "token_type": "Bearer"}),
        )
    }
}

/// TikTok's chunk rules for an init's `source_info`.
pub fn check_chunks(size: u64, chunk: u64, count: u64) -> Result<(), String> {
    if size == 0 || chunk == 0 || count == 0 || chunk > size {
        return Err("video_size, chunk_size and total_chunk_count must be positive, chunk_size at most video_size".to_owned());
    }
    if size < MIN_CHUNK && (chunk != size || count != 1) {
        return Err(
            "a video under 5 MB is uploaded whole: chunk_size = video_size, total_chunk_count = 1"
                .to_owned(),
        );
    }
    if size >= MIN_CHUNK && !(MIN_CHUNK..=MAX_CHUNK).contains(&chunk) {
        return Err("chunk_size must be between 5 MB and 64 MB".to_owned());
    }
    if count != size / chunk || count > 1000 {
        return Err(
            "total_chunk_count must be floor(video_size / chunk_size), at most 1000".to_owned(),
        );
    }
    if size - (count - 1) * chunk > MAX_LAST_CHUNK {
        return Err("the last chunk may be at most 128 MB".to_owned());
    }
    Ok(())
}

fn parse_range(range: &str) -> Option<(u64, u64, u64)> {
    let (span, total) = range.strip_prefix("bytes ")?.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let (first, last, total) = (first.parse().ok()?, last.parse().ok()?, total.parse().ok()?);
    (first <= last && last < total).then_some((first, last, total))
}

fn decode(text: &str) -> String {
    crate::RecordedRequest {
        method: Method::GET,
        path: String::new(),
        query: Some(format!("x={text}")),
        headers: Default::default(),
        body: Default::default(),
    }
    .query_pairs()
    .pop()
    .map(|(_, v)| v)
    .unwrap_or_default()
}

fn ok(data: Value) -> Reply {
    Reply::json(
        200,
        json!({"data": data, "error": {"code": "ok", "message": "", "log_id": "20261202mock"}}),
    )
}

fn refusal(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"data": {}, "error": {"code": code, "message": message, "log_id": "20261202mock"}}),
    )
}

impl PlatformMock for Tiktok {
    fn answer(&self, request: &RecordedRequest) -> Reply {
        let path = request.path.as_str();
        if request.method == Method::POST && path == "/v2/oauth/token/" {
            return self.token(request);
        }
        if request.method == Method::PUT && path == "/video/" {
            return self.upload(request);
        }
        if !self.authorized(request) {
            return refusal(
                401,
                "access_token_invalid",
                "The access token is invalid or not found in the request.",
            );
        }
        match (&request.method, path) {
            (&Method::GET, "/v2/user/info/") => Self::user_info(request),
            (&Method::POST, "/v2/post/publish/creator_info/query/") => self.creator_info(),
            (&Method::POST, "/v2/post/publish/video/init/") => self.init(request, false),
            (&Method::POST, "/v2/post/publish/inbox/video/init/") => self.init(request, true),
            (&Method::POST, "/v2/post/publish/status/fetch/") => self.status(request),
            _ => Reply::json(
                404,
                json!({"data": {}, "error": {"code": "not_found", "message": "Not found", "log_id": "mock"}}),
            ),
        }
    }

    fn fault(&self, fault: &Fault, _request: &RecordedRequest) -> Reply {
        match fault {
            Fault::Unauthorized => refusal(
                401,
                "access_token_invalid",
                "The access token is invalid or not found in the request.",
            ),
            Fault::Forbidden => refusal(
                401,
                "scope_not_authorized",
                "The user did not authorize the scope required for completing this request.",
            ),
            Fault::RateLimited { retry_after } => {
                refusal(429, "rate_limit_exceeded", "API rate limit was exceeded.")
                    .header("retry-after", retry_after.to_string())
            }
            Fault::ServerError => refusal(500, "internal_error", "Something went wrong."),
            Fault::Slow(_) | Fault::Reply(_) => {
                refusal(500, "internal_error", "Something went wrong.")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_rules() {
        assert!(check_chunks(1000, 1000, 1).is_ok());
        assert!(
            check_chunks(1000, 500, 2).is_err(),
            "a small file goes whole"
        );
        assert!(check_chunks(25_000_000, 10_000_000, 2).is_ok());
        assert!(
            check_chunks(25_000_000, 10_000_000, 3).is_err(),
            "floor, not ceil"
        );
        assert!(
            check_chunks(25_000_000, 4_000_000, 6).is_err(),
            "chunks of at least 5 MB"
        );
        assert!(
            check_chunks(200_000_000, 70_000_000, 2).is_err(),
            "chunks of at most 64 MB"
        );
        assert_eq!(parse_range("bytes 0-9/10"), Some((0, 9, 10)));
        assert_eq!(parse_range("bytes 5-4/10"), None);
    }
}
