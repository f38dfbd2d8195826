//! A local stand-in for LinkedIn's REST API (the versioned `/rest/…` endpoints and OpenID's
//! `/v2/userinfo`), on one origin.
//!
//! It follows the real API: `Authorization: Bearer`, a `LinkedIn-Version: YYYYMM` and
//! `X-Restli-Protocol-Version: 2.0.0` on every `/rest/` call (400 `VERSION_MISSING` otherwise),
//! refusals in Rest.li's envelope `{"status", "serviceErrorCode", "code", "message"}`, `201` with
//! an empty body and the id in `x-restli-id` for a created post, and upload URLs that point back
//! at this mock (built from the request's `Host`): `PUT /dms-uploads/image/{id}` and
//! `PUT /dms-uploads/video/{id}/part/{n}`, each part answering its `ETag`. Videos are split at
//! [`Linkedin::set_part_size`] bytes (4 MiB, as LinkedIn does), checked at `finalizeUpload`
//! (the upload token and the ETags, in order), then report `PROCESSING` for
//! [`Linkedin::set_processing_polls`] status reads before `AVAILABLE` (or `PROCESSING_FAILED`
//! after [`Linkedin::fail_processing`]). Upload bodies are counted, never kept.
//!
//! The OAuth 2.0 provider is here too (point `SQUAREMCP_LINKEDIN_AUTHORIZE_BASE_URL` and
//! `_TOKEN_BASE_URL` at the mock): `GET /oauth/v2/authorization` shows a consent form whose answer
//! redirects with a single-use `code`, and `POST /oauth/v2/accessToken` exchanges it for an access
//! token (client id and secret in the form; no refresh token, as for self-serve apps).
//!
//! LinkedIn itself sends no `Retry-After` on 429 (its daily limits reset at midnight UTC); the
//! injected [`Fault::RateLimited`] adds one so that the contract suite's common check applies;
//! tests inject the bare shape with `Fault::Reply(error(429, …))`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use axum::http::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{Fault, PlatformMock, RecordedRequest, Reply};

/// The member every token belongs to (OpenID `sub`).
pub const PERSON_ID: &str = "782bbtaQ";
pub const PERSON_NAME: &str = "Ada Lovelace";
/// LinkedIn's part size for videos.
pub const PART_SIZE: usize = 4 * 1024 * 1024;

struct Video {
    owner: String,
    size: u64,
    upload_token: String,
    /// Per part: its expected length and, once uploaded, its ETag.
    parts: Vec<(u64, Option<String>)>,
    finalized: bool,
    polls: usize,
}

#[derive(Default)]
struct State {
    videos: HashMap<String, Video>,
    /// image URN → uploaded
    images: HashMap<String, bool>,
    posts: Vec<Value>,
}

/// The mock's state; start it with [`crate::Mock::start`].
pub struct Linkedin {
    tokens: Mutex<Vec<String>>,
    /// The OAuth client (id, secret) the provider side knows, and the codes it issued
    /// (code → redirect URI).
    client: (String, String),
    codes: Mutex<HashMap<String, String>>,
    expired: AtomicBool,
    part_size: AtomicUsize,
    processing_polls: AtomicUsize,
    failing: AtomicBool,
    next: AtomicU64,
    uploaded_bytes: AtomicU64,
    state: Mutex<State>,
}

impl Linkedin {
    /// A mock accepting these access tokens.
    pub fn accepting(tokens: &[&str]) -> Self {
        Self {
            tokens: Mutex::new(tokens.iter().map(|t| (*t).to_owned()).collect()),
            client: ("client".to_owned(), "secret".to_owned()),
            codes: Mutex::new(HashMap::new()),
            expired: AtomicBool::new(false),
            part_size: AtomicUsize::new(PART_SIZE),
            processing_polls: AtomicUsize::new(2),
            failing: AtomicBool::new(false),
            next: AtomicU64::new(1),
            uploaded_bytes: AtomicU64::new(0),
            state: Mutex::new(State::default()),
        }
    }

    /// A provider that also knows this OAuth client (`SQUAREMCP_LINKEDIN_CLIENT_ID`/`_SECRET`).
    pub fn with_client(mut self, id: &str, secret: &str) -> Self {
        self.client = (id.to_owned(), secret.to_owned());
        self
    }

    /// Videos initialized from now on are split into parts of this many bytes.
    pub fn set_part_size(&self, bytes: usize) {
        self.part_size.store(bytes.max(1), Ordering::SeqCst);
    }

    /// How many status reads of a finalized video answer `PROCESSING` first.
    pub fn set_processing_polls(&self, polls: usize) {
        self.processing_polls.store(polls, Ordering::SeqCst);
    }

    /// Processing ends in `PROCESSING_FAILED` instead of `AVAILABLE`.
    pub fn fail_processing(&self) {
        self.failing.store(true, Ordering::SeqCst);
    }

    /// Every token answers 401 as an expired one does.
    pub fn expire_tokens(&self) {
        self.expired.store(true, Ordering::SeqCst);
    }

    /// Bytes received by the upload URLs so far (counted; the bodies are not kept).
    pub fn uploaded_bytes(&self) -> u64 {
        self.uploaded_bytes.load(Ordering::SeqCst)
    }

    /// The bodies of the posts created so far.
    pub fn posts(&self) -> Vec<Value> {
        self.state.lock().unwrap().posts.clone()
    }

    fn next_id(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        format!("C5F10AQ{n:05}mock")
    }

    /// The bearer check, and on `/rest/` the version headers; `None` when they pass.
    fn refuse(&self, request: &RecordedRequest) -> Option<Reply> {
        let token = request
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !self.tokens.lock().unwrap().iter().any(|t| t == token) {
            return Some(error(
                401,
                65600,
                "INVALID_ACCESS_TOKEN",
                "Invalid access token",
            ));
        }
        if self.expired.load(Ordering::SeqCst) {
            return Some(error(
                401,
                65602,
                "EXPIRED_ACCESS_TOKEN",
                "The token used in the request has expired",
            ));
        }
        if request.path.starts_with("/rest/") {
            let version = request.header("linkedin-version").unwrap_or_default();
            if version.len() != 6 || !version.bytes().all(|b| b.is_ascii_digit()) {
                return Some(error(
                    400,
                    0,
                    "VERSION_MISSING",
                    "A version must be present. Please specify a version by adding the LinkedIn-Version header.",
                ));
            }
            if request.header("x-restli-protocol-version") != Some("2.0.0") {
                return Some(error(
                    400,
                    0,
                    "ILLEGAL_ARGUMENT",
                    "Rest.li protocol version 2.0.0 is required.",
                ));
            }
        }
        None
    }

    fn host(request: &RecordedRequest) -> String {
        format!("http://{}", request.header("host").unwrap_or("127.0.0.1"))
    }

    fn userinfo() -> Reply {
        Reply::json(
            200,
            json!({"sub": PERSON_ID, "email_verified": true, "name": PERSON_NAME, "locale": {"country": "GB", "language": "en"},
                "given_name": "Ada", "family_name": "Lovelace", "email": "ada@example.com",
                "picture": "https://media.licdn.com/dms/image/mock/profile-displayphoto-shrink_100_100/0/1"}),
        )
    }

    fn initialize_image(&self, request: &RecordedRequest) -> Reply {
        let body = request.json();
        let Some(owner) = body
            .pointer("/initializeUploadRequest/owner")
            .and_then(Value::as_str)
        else {
            return error(
                422,
                0,
                "",
                "ERROR :: /initializeUploadRequest/owner :: field is required but not found and has no default value",
            );
        };
        if !valid_author(owner) {
            return error(
                403,
                100,
                "ACCESS_DENIED",
                "Not enough permissions to access: images.CREATE",
            );
        }
        let id = self.next_id();
        let urn = format!("urn:li:image:{id}");
        self.state.lock().unwrap().images.insert(urn.clone(), false);
        Reply::json(
            200,
            json!({"value": {"uploadUrlExpiresAt": 1_767_225_600_000_i64,
            "uploadUrl": format!("{}/dms-uploads/image/{id}?ca=vector_feedshare&cn=uploads&m=AQ&app=1&sync=0&v=beta&ut=mock", Self::host(request)),
            "image": urn}}),
        )
    }

    fn put_image(&self, request: &RecordedRequest, id: &str) -> Reply {
        let urn = format!("urn:li:image:{id}");
        self.uploaded_bytes
            .fetch_add(request.body.len() as u64, Ordering::SeqCst);
        let mut state = self.state.lock().unwrap();
        match state.images.get_mut(&urn) {
            Some(uploaded) if !request.body.is_empty() => {
                *uploaded = true;
                Reply::raw(201, "text/plain", "")
            }
            Some(_) => Reply::raw(400, "text/plain", ""),
            None => Reply::raw(404, "text/plain", ""),
        }
    }

    fn initialize_video(&self, request: &RecordedRequest) -> Reply {
        let body = request.json();
        let init = body.get("initializeUploadRequest");
        let owner = init.and_then(|i| i.get("owner")).and_then(Value::as_str);
        let size = init
            .and_then(|i| i.get("fileSizeBytes"))
            .and_then(Value::as_u64);
        let flags = ["uploadCaptions", "uploadThumbnail"]
            .map(|k| init.and_then(|i| i.get(k)).and_then(Value::as_bool));
        let (Some(owner), Some(size), [Some(_), Some(_)]) = (owner, size, flags) else {
            return error(
                422,
                0,
                "",
                "ERROR :: /initializeUploadRequest :: owner, fileSizeBytes, uploadCaptions and uploadThumbnail are required",
            );
        };
        if !valid_author(owner) {
            return error(
                403,
                100,
                "ACCESS_DENIED",
                "Not enough permissions to access: videos.CREATE",
            );
        }
        if size == 0 {
            return error(400, 0, "", "fileSizeBytes must be positive");
        }
        let id = self.next_id();
        let urn = format!("urn:li:video:{id}");
        let part_size = self.part_size.load(Ordering::SeqCst) as u64;
        let host = Self::host(request);
        let mut parts = Vec::new();
        let mut instructions = Vec::new();
        let mut first = 0;
        while first < size {
            let last = (first + part_size).min(size) - 1;
            let n = parts.len();
            instructions.push(json!({"uploadUrl": format!("{host}/dms-uploads/video/{id}/part/{n}?ca=vector_feedshare&cn=uploads&sync=0&v=beta&ut=mock"),
                "firstByte": first, "lastByte": last}));
            parts.push((last - first + 1, None));
            first = last + 1;
        }
        // LinkedIn leaves the token empty for a single-part upload.
        let upload_token = if parts.len() > 1 {
            format!("token-{id}")
        } else {
            String::new()
        };
        self.state.lock().unwrap().videos.insert(
            urn.clone(),
            Video {
                owner: owner.to_owned(),
                size,
                upload_token: upload_token.clone(),
                parts,
                finalized: false,
                polls: 0,
            },
        );
        Reply::json(
            200,
            json!({"value": {"uploadUrlsExpireAt": 1_767_225_600_000_i64, "video": urn,
            "uploadInstructions": instructions, "uploadToken": upload_token}}),
        )
    }

    fn put_video_part(&self, request: &RecordedRequest, id: &str, n: &str) -> Reply {
        let length = request.body.len() as u64;
        self.uploaded_bytes.fetch_add(length, Ordering::SeqCst);
        let urn = format!("urn:li:video:{id}");
        let mut state = self.state.lock().unwrap();
        let part = state
            .videos
            .get_mut(&urn)
            .and_then(|video| n.parse::<usize>().ok().and_then(|n| video.parts.get_mut(n)));
        let Some((expected, etag)) = part else {
            return Reply::raw(404, "text/plain", "");
        };
        if *expected != length {
            return Reply::raw(400, "text/plain", "");
        }
        let digest = Sha256::digest(&request.body);
        let tag = format!(
            "/ambry-video/signedId/{id}-{n}-{}",
            digest
                .iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        *etag = Some(tag.clone());
        Reply::raw(200, "text/plain", "").header("etag", tag)
    }

    fn finalize_video(&self, request: &RecordedRequest) -> Reply {
        let body = request.json();
        let Some(finalize) = body.get("finalizeUploadRequest") else {
            return error(
                422,
                0,
                "",
                "ERROR :: /finalizeUploadRequest :: field is required",
            );
        };
        let urn = finalize
            .get("video")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let token = finalize.get("uploadToken").and_then(Value::as_str);
        let ids: Option<Vec<String>> = finalize
            .get("uploadedPartIds")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            });
        let mut state = self.state.lock().unwrap();
        let Some(video) = state.videos.get_mut(urn) else {
            return error(404, 0, "", "Video not found");
        };
        let uploaded: Option<Vec<String>> =
            video.parts.iter().map(|(_, etag)| etag.clone()).collect();
        if token != Some(video.upload_token.as_str()) || uploaded.is_none() || ids != uploaded {
            return error(
                400,
                0,
                "",
                "Upload is not complete: the uploadToken or the uploadedPartIds do not match",
            );
        }
        video.finalized = true;
        Reply::raw(200, "application/json", "")
    }

    fn get_video(&self, encoded: &str) -> Reply {
        let urn = crate::percent_decode(encoded);
        let mut state = self.state.lock().unwrap();
        let Some(video) = state.videos.get_mut(&urn) else {
            return error(404, 0, "", "Video not found");
        };
        let status = if !video.finalized {
            "WAITING_UPLOAD"
        } else if video.polls < self.processing_polls.load(Ordering::SeqCst) {
            video.polls += 1;
            "PROCESSING"
        } else if self.failing.load(Ordering::SeqCst) {
            "PROCESSING_FAILED"
        } else {
            "AVAILABLE"
        };
        Reply::json(
            200,
            json!({"owner": video.owner, "id": urn, "status": status, "aspectRatioWidth": 16.0, "aspectRatioHeight": 9.0,
            "fileSizeBytes": video.size}),
        )
    }

    fn create_post(&self, request: &RecordedRequest) -> Reply {
        let body = request.json();
        let text = |key: &str| body.get(key).and_then(Value::as_str);
        let Some(author) = text("author") else {
            return error(
                422,
                0,
                "",
                "ERROR :: /author :: field is required but not found",
            );
        };
        if text("commentary").is_none()
            || text("visibility").is_none()
            || text("lifecycleState") != Some("PUBLISHED")
            || body.get("distribution").is_none()
        {
            return error(
                422,
                0,
                "",
                "ERROR :: /commentary, /visibility, /distribution and /lifecycleState are required",
            );
        }
        if !valid_author(author) {
            return error(
                403,
                100,
                "ACCESS_DENIED",
                "Not enough permissions to access: partnerApiPostsExternal.CREATE.20260701",
            );
        }
        let state = self.state.lock().unwrap();
        if let Some(id) = body.pointer("/content/media/id").and_then(Value::as_str) {
            let ready = match state.videos.get(id) {
                Some(video) => {
                    video.finalized
                        && video.polls >= self.processing_polls.load(Ordering::SeqCst)
                        && !self.failing.load(Ordering::SeqCst)
                }
                None => state.images.get(id).copied().unwrap_or(false),
            };
            if !ready {
                return error(400, 0, "", &format!("The media {id} is not available"));
            }
        }
        drop(state);
        let share = format!(
            "urn:li:share:7{:018}",
            self.next.fetch_add(1, Ordering::SeqCst)
        );
        self.state.lock().unwrap().posts.push(body);
        Reply::raw(201, "application/json", "").header("x-restli-id", share)
    }

    /// `GET /oauth/v2/authorization`: a consent page (a plain form, no script).
    fn authorization_page(&self, request: &RecordedRequest) -> Reply {
        let query: HashMap<String, String> = request.query_pairs().into_iter().collect();
        let get = |name: &str| query.get(name).cloned().unwrap_or_default();
        if get("response_type") != "code"
            || get("client_id") != self.client.0
            || get("redirect_uri").is_empty()
        {
            return Reply::raw(
                400,
                "text/html; charset=utf-8",
                "<!doctype html><title>Error</title><p>Invalid client or request.</p>",
            );
        }
        let hidden: String = ["redirect_uri", "state", "scope"]
            .iter()
            .map(|name| {
                format!(
                    "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                    escape(&get(name))
                )
            })
            .collect();
        let page = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>LinkedIn (mock)</title></head><body>\
             <h1>Allow SquareMCP to access your LinkedIn account?</h1><p>{PERSON_NAME}</p><p>Scopes: {}</p>\
             <form method=\"post\" action=\"/oauth/v2/authorization\">{hidden}\
             <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\
             <button type=\"submit\" name=\"decision\" value=\"deny\">Cancel</button></form></body></html>",
            escape(&get("scope"))
        );
        Reply::raw(200, "text/html; charset=utf-8", &page)
    }

    /// The consent form's answer: back to `redirect_uri` with `code` and `state`, or LinkedIn's
    /// `error=user_cancelled_authorize`.
    fn authorization_decision(&self, request: &RecordedRequest) -> Reply {
        let form = form_pairs(&request.body);
        let get = |name: &str| form.get(name).cloned().unwrap_or_default();
        let redirect_uri = get("redirect_uri");
        let separator = if redirect_uri.contains('?') { '&' } else { '?' };
        let location = if get("decision") == "allow" {
            let code = format!("AQT-code-{}", self.next_id());
            self.codes
                .lock()
                .unwrap()
                .insert(code.clone(), redirect_uri.clone());
            format!(
                "{redirect_uri}{separator}code={}&state={}",
                encode(&code),
                encode(&get("state"))
            )
        } else {
            format!(
                "{redirect_uri}{separator}error=user_cancelled_authorize&error_description=The+user+cancelled+the+authorization&state={}",
                encode(&get("state"))
            )
        };
        Reply::raw(302, "text/plain", "").header("location", location)
    }

    /// `POST /oauth/v2/accessToken`: the client id and secret in the form; codes are single use
    /// and bound to their redirect URI. No refresh token (self-serve apps get none).
    fn access_token(&self, request: &RecordedRequest) -> Reply {
        let form = form_pairs(&request.body);
        let get = |name: &str| form.get(name).cloned().unwrap_or_default();
        if get("client_id") != self.client.0 || get("client_secret") != self.client.1 {
            return Reply::json(
                401,
                json!({"error": "invalid_client", "error_description": "Client authentication failed"}),
            );
        }
        if get("grant_type") != "authorization_code" {
            return Reply::json(
                400,
                json!({"error": "unsupported_grant_type", "error_description": "grant_type is not supported"}),
            );
        }
        match self.codes.lock().unwrap().remove(&get("code")) {
            Some(redirect_uri) if redirect_uri == get("redirect_uri") => {
                let token = format!("AQV-mock-access-{}", self.next_id());
                self.tokens.lock().unwrap().push(token.clone());
                Reply::json(
                    200,
                    json!({"access_token": token, "expires_in": 5_184_000, "scope": "openid,profile,w_member_social", "token_type": "Bearer"}),
                )
            }
            _ => Reply::json(
                400,
                json!({"error": "invalid_grant", "error_description": "The provided authorization grant or refresh token is invalid, expired or revoked"}),
            ),
        }
    }

    fn connections(request: &RecordedRequest) -> Reply {
        if !request
            .query_pairs()
            .iter()
            .any(|(k, v)| k == "q" && v == "viewer")
        {
            return error(400, 0, "", "Finder q=viewer is required");
        }
        Reply::json(
            200,
            json!({"elements": [{"to": "urn:li:person:aBcD123"}, {"to": "urn:li:person:eFgH456"}],
            "paging": {"start": 0, "count": 10, "links": []}}),
        )
    }
}

/// The member or a numeric organization (the mock grants organization posting).
fn valid_author(urn: &str) -> bool {
    urn == format!("urn:li:person:{PERSON_ID}")
        || urn
            .strip_prefix("urn:li:organization:")
            .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
}

impl PlatformMock for Linkedin {
    fn answer(&self, request: &RecordedRequest) -> Reply {
        let path = request.path.as_str();
        // The signed upload URLs carry no bearer token.
        match (&request.method, path) {
            (&Method::GET, "/oauth/v2/authorization") => return self.authorization_page(request),
            (&Method::POST, "/oauth/v2/authorization") => {
                return self.authorization_decision(request);
            }
            (&Method::POST, "/oauth/v2/accessToken") => return self.access_token(request),
            _ => {}
        }
        if request.method == Method::PUT {
            let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            return match segments.as_slice() {
                ["dms-uploads", "image", id] => self.put_image(request, id),
                ["dms-uploads", "video", id, "part", n] => self.put_video_part(request, id, n),
                _ => error(404, 0, "", "Not Found"),
            };
        }
        if let Some(refusal) = self.refuse(request) {
            return refusal;
        }
        let action = request
            .query_pairs()
            .into_iter()
            .find(|(k, _)| k == "action")
            .map(|(_, v)| v)
            .unwrap_or_default();
        match (&request.method, path, action.as_str()) {
            (&Method::GET, "/v2/userinfo", _) => Self::userinfo(),
            (&Method::GET, "/v2/connections", _) => Self::connections(request),
            (&Method::POST, "/rest/posts", _) => self.create_post(request),
            (&Method::POST, "/rest/images", "initializeUpload") => self.initialize_image(request),
            (&Method::POST, "/rest/videos", "initializeUpload") => self.initialize_video(request),
            (&Method::POST, "/rest/videos", "finalizeUpload") => self.finalize_video(request),
            (&Method::GET, _, _) if path.starts_with("/rest/videos/") => {
                self.get_video(&path["/rest/videos/".len()..])
            }
            _ => error(404, 0, "", "Not Found"),
        }
    }

    fn fault(&self, fault: &Fault, _request: &RecordedRequest) -> Reply {
        match fault {
            Fault::Unauthorized => error(401, 65600, "INVALID_ACCESS_TOKEN", "Invalid access token"),
            Fault::Forbidden => error(403, 100, "ACCESS_DENIED", "Not enough permissions to access: partnerApiPostsExternal.CREATE.20260701"),
            Fault::RateLimited { retry_after } => {
                error(429, 0, "", "Resource level throttle APPLICATION DAY limit for calls to this resource is reached.")
                    .header("retry-after", format!("{}", retry_after.ceil() as u64))
            }
            Fault::ServerError => error(500, 0, "", "Internal Server Error"),
            Fault::Slow(_) | Fault::Reply(_) => error(500, 0, "", "unreachable"),
        }
    }
}

fn form_pairs(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(body).into_owned();
    RecordedRequest {
        method: Method::POST,
        path: String::new(),
        query: Some(text),
        headers: Default::default(),
        body: Default::default(),
    }
    .query_pairs()
    .into_iter()
    .collect()
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Rest.li's error envelope.
pub fn error(status: u16, service_code: i64, code: &str, message: &str) -> Reply {
    let mut body = json!({"status": status, "message": message});
    if service_code != 0 {
        body["serviceErrorCode"] = json!(service_code);
    }
    if !code.is_empty() {
        body["code"] = json!(code);
    }
    Reply::json(status, body)
}
