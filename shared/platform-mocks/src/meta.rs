//! A local stand-in for Meta's Graph API as Facebook Pages and Instagram use it: one mock serves
//! `graph.facebook.com`, `graph-video.facebook.com` and `graph.instagram.com` (the gateway points
//! all of them at one base URL).
//!
//! Paths are the real ones under any version `vNN.N`: the Page [`PAGE_ID`] (`/{page}`,
//! `/{page}/posts`, `/{page}/feed`, `/{page}/photos` as JSON or multipart, `/{page}/videos`), a
//! video's `status`, the Instagram account [`IG_USER_ID`] (`/{ig-user}` and `/me`,
//! `/{ig-user}/media` to list or to create a container, `/{ig-user}/media_publish`) and a
//! container's `status_code`. The token is read from `Authorization: Bearer <token>`; refusals
//! use Graph's envelope keyed on `code`: an unknown token 190, an expired one
//! ([`Meta::with_expired`]) 190/463, [`MISSING_ID`] 100/33, publishing an unfinished container
//! 9007/2207027.
//!
//! Processing takes time: each new video or container answers `processing`/`IN_PROGRESS` for
//! [`Meta::set_processing_polls`] status checks before it is ready; media whose URL contains
//! [`BROKEN_MEDIA`] ends in `error`/`ERROR` instead.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::http::Method;
use serde_json::{Value, json};

use crate::{Fault, PlatformMock, RecordedRequest, Reply};

/// The Facebook Page of the tests' credentials.
pub const PAGE_ID: &str = "104882489141131";
/// The Instagram professional account of the tests' credentials.
pub const IG_USER_ID: &str = "17841405822304914";
/// An id Graph does not know.
pub const MISSING_ID: &str = "404404404404404";
/// Media whose URL contains this fails processing.
pub const BROKEN_MEDIA: &str = "broken";

// Facebook Login (Connect): the app, the code the dialog hands out, the user tokens, and a
// second Page (with no Instagram account) beside [`PAGE_ID`]. `/me/accounts` answers both Pages;
// [`PAGE_ID`]'s token is the first token the mock accepts.
pub const APP_ID: &str = "meta-app-id";
pub const APP_SECRET: &str = "meta-app-secret";
pub const CONNECT_CODE: &str = "meta-authorization-code";
pub const SHORT_USER_TOKEN: &str = "EAAshort-lived-user-token";
pub const LONG_USER_TOKEN: &str = "EAAlong-lived-user-token";
pub const SECOND_PAGE_ID: &str = "104882489141999";
pub const SECOND_PAGE_TOKEN: &str = "EAAsecond-page-token";

// Instagram Login (Connect with `SQUAREMCP_INSTAGRAM_LOGIN=instagram`): the Instagram app, its
// codes (any starting with [`IG_CONNECT_CODE`], each once), and the tokens. The long-lived
// token must be one the mock accepts for `/me` to answer.
pub const IG_APP_ID: &str = "instagram-app-id";
pub const IG_APP_SECRET: &str = "instagram-app-secret";
pub const IG_CONNECT_CODE: &str = "instagram-authorization-code";
pub const IG_SHORT_TOKEN: &str = "IGAAshort-lived-instagram-token";
pub const IG_LONG_TOKEN: &str = "IGAAlong-lived-instagram-token";

/// A video or container being processed.
struct Processing {
    checks_left: u32,
    broken: bool,
    published: Option<String>,
}

#[derive(Default)]
struct World {
    next_id: u64,
    /// Page posts, oldest first.
    posts: Vec<Value>,
    /// Photos: what came (`url`, or `source_bytes` for multipart) and the message.
    photos: Vec<Value>,
    videos: HashMap<String, Processing>,
    containers: HashMap<String, Processing>,
    /// Published Instagram media, oldest first.
    media: Vec<Value>,
    /// Codes exchanged so far: each is single use. Any code starting with [`CONNECT_CODE`] is one.
    used_codes: std::collections::HashSet<String>,
    /// Instagram Login tokens issued by `/refresh_access_token`, accepted like the given ones.
    renewed: Vec<String>,
}

/// The mock's state; start it with [`crate::Mock::start`].
pub struct Meta {
    tokens: Vec<String>,
    expired: Vec<String>,
    polls: AtomicU32,
    world: Mutex<World>,
}

impl Meta {
    /// A mock that accepts these tokens (Page and Instagram alike), and no other.
    pub fn accepting(tokens: &[&str]) -> Self {
        Self {
            tokens: tokens.iter().map(|t| (*t).to_owned()).collect(),
            expired: Vec::new(),
            polls: AtomicU32::new(0),
            world: Mutex::new(World { next_id: 1, ..World::default() }),
        }
    }

    /// Tokens answered with 190/463 (expired).
    pub fn with_expired(mut self, tokens: &[&str]) -> Self {
        self.expired = tokens.iter().map(|t| (*t).to_owned()).collect();
        self
    }

    /// How many status checks new videos and containers stay in processing.
    pub fn set_processing_polls(&self, polls: u32) {
        self.polls.store(polls, Ordering::SeqCst);
    }

    /// Page posts created so far (feed posts, photo posts, video posts), oldest first.
    pub fn posts(&self) -> Vec<Value> {
        self.world.lock().unwrap().posts.clone()
    }

    /// Photos received: `{"url"}` or `{"source_bytes", "source_type"}`, with `message`.
    pub fn photos(&self) -> Vec<Value> {
        self.world.lock().unwrap().photos.clone()
    }

    /// Instagram media published so far, oldest first.
    pub fn published_media(&self) -> Vec<Value> {
        self.world.lock().unwrap().media.clone()
    }

    fn id(world: &mut World, prefix: &str) -> String {
        world.next_id += 1;
        format!("{prefix}{:09}", world.next_id)
    }

    fn token_check(&self, request: &RecordedRequest) -> Option<Reply> {
        let given = request.header("authorization").and_then(|value| value.strip_prefix("Bearer "));
        match given {
            Some(token) if self.expired.iter().any(|t| t == token) => Some(graph_error(
                400,
                190,
                Some(463),
                "Error validating access token: Session has expired on Tuesday, 01-Dec-26 12:00:00 PST. The current time is Wednesday, 02-Dec-26 13:00:00 PST.",
            )),
            Some(token) if self.tokens.iter().any(|t| t == token) => None,
            Some(token) if self.world.lock().unwrap().renewed.iter().any(|t| t == token) => None,
            _ => Some(graph_error(400, 190, None, "Invalid OAuth access token - Cannot parse access token")),
        }
    }

    /// `GET /oauth/access_token`: a code for a short-lived user token, then
    /// `fb_exchange_token` for a long-lived one; the app's id and secret must come with both.
    fn access_token(&self, request: &RecordedRequest) -> Reply {
        let query: HashMap<String, String> = request.query_pairs().into_iter().collect();
        let given = |name: &str| query.get(name).map(String::as_str);
        if request.method != Method::GET {
            return graph_error(400, 100, None, "Unsupported post request.");
        }
        if given("client_id") != Some(APP_ID) || given("client_secret") != Some(APP_SECRET) {
            return graph_error(400, 1, None, "Error validating application. Invalid application ID or secret.");
        }
        let token = |token: &str, expires_in: u64| ok(json!({"access_token": token, "token_type": "bearer", "expires_in": expires_in}));
        match (given("grant_type"), given("code"), given("fb_exchange_token")) {
            (None, Some(code), None)
                if code.starts_with(CONNECT_CODE)
                    && given("redirect_uri").is_some_and(|uri| !uri.is_empty())
                    && self.world.lock().unwrap().used_codes.insert(code.to_owned()) =>
            {
                token(SHORT_USER_TOKEN, 3_600)
            }
            (Some("fb_exchange_token"), None, Some(SHORT_USER_TOKEN)) => token(LONG_USER_TOKEN, 5_183_944),
            _ => graph_error(400, 100, None, "Invalid verification code format."),
        }
    }

    /// `POST /oauth/access_token` on `api.instagram.com` (form): an Instagram Login code for a
    /// short-lived token, in the `{"data": [...]}` shape.
    fn instagram_code(&self, request: &RecordedRequest) -> Reply {
        let form: HashMap<String, String> = request.form_pairs().into_iter().collect();
        let given = |name: &str| form.get(name).map(String::as_str);
        if request.method != Method::POST || request.header("content-type") != Some("application/x-www-form-urlencoded") {
            return Reply::json(400, json!({"error_type": "OAuthException", "code": 400, "error_message": "Invalid request: use a form POST"}));
        }
        if given("client_id") != Some(IG_APP_ID) || given("client_secret") != Some(IG_APP_SECRET) {
            return Reply::json(400, json!({"error_type": "OAuthException", "code": 400, "error_message": "Invalid platform app"}));
        }
        let fresh = given("code").is_some_and(|code| code.starts_with(IG_CONNECT_CODE) && self.world.lock().unwrap().used_codes.insert(code.to_owned()));
        if given("grant_type") != Some("authorization_code") || given("redirect_uri").is_none_or(str::is_empty) || !fresh {
            return Reply::json(400, json!({"error_type": "OAuthException", "code": 400, "error_message": "Invalid authorization code"}));
        }
        ok(json!({"data": [{"access_token": IG_SHORT_TOKEN, "user_id": IG_USER_ID, "permissions": "instagram_business_basic,instagram_business_content_publish"}]}))
    }

    /// `GET /access_token?grant_type=ig_exchange_token&client_secret&access_token` on
    /// `graph.instagram.com`: the short-lived token for a 60-day one.
    fn instagram_exchange(&self, request: &RecordedRequest) -> Reply {
        let query: HashMap<String, String> = request.query_pairs().into_iter().collect();
        let given = |name: &str| query.get(name).map(String::as_str);
        match (given("grant_type"), given("client_secret"), given("access_token")) {
            (Some("ig_exchange_token"), Some(IG_APP_SECRET), Some(IG_SHORT_TOKEN)) if request.method == Method::GET => {
                ok(json!({"access_token": IG_LONG_TOKEN, "token_type": "bearer", "expires_in": 5_183_944}))
            }
            _ => graph_error(400, 100, None, "Invalid ig_exchange_token request."),
        }
    }

    /// Instagram Login tokens renewed so far (`/refresh_access_token`), oldest first.
    pub fn renewed_tokens(&self) -> Vec<String> {
        self.world.lock().unwrap().renewed.clone()
    }

    /// `GET /refresh_access_token?grant_type=ig_refresh_token&access_token=…` (no version in
    /// the path): a new 60-day token for a valid, unexpired one.
    fn refresh_access_token(&self, request: &RecordedRequest) -> Reply {
        let query: HashMap<String, String> = request.query_pairs().into_iter().collect();
        if request.method != Method::GET || query.get("grant_type").map(String::as_str) != Some("ig_refresh_token") {
            return graph_error(400, 100, None, "Unsupported request: grant_type must be ig_refresh_token.");
        }
        let token = query.get("access_token").cloned().unwrap_or_default();
        if self.expired.contains(&token) {
            return graph_error(400, 190, Some(463), "Error validating access token: Session has expired.");
        }
        let mut world = self.world.lock().unwrap();
        if !self.tokens.contains(&token) && !world.renewed.contains(&token) {
            return graph_error(400, 190, None, "Invalid OAuth access token - Cannot parse access token");
        }
        let renewed = format!("IGAArenewed-{}", world.renewed.len() + 1);
        world.renewed.push(renewed.clone());
        ok(json!({"access_token": renewed, "token_type": "bearer", "expires_in": 5_183_944}))
    }

    /// `GET /me/accounts` with the long-lived user token: the Pages granted with their tokens.
    fn accounts(&self, request: &RecordedRequest) -> Reply {
        if request.header("authorization") != Some(&format!("Bearer {LONG_USER_TOKEN}")) {
            return graph_error(400, 190, None, "Invalid OAuth access token - Cannot parse access token");
        }
        let fields = request.query_pairs().into_iter().find(|(k, _)| k == "fields").map(|(_, v)| v).unwrap_or_default();
        let has = |field: &str| fields.split([',', '{', '}']).any(|f| f == field);
        if !(has("id") && has("name") && has("access_token") && has("instagram_business_account") && has("username")) {
            return graph_error(400, 100, None, "The gateway must ask for the Page tokens and the linked Instagram accounts.");
        }
        let page_token = self.tokens.first().cloned().unwrap_or_default();
        page(
            request,
            vec![
                json!({"id": PAGE_ID, "name": "Ada's Bakery", "category": "Bakery", "access_token": page_token,
                    "tasks": ["ADVERTISE", "ANALYZE", "CREATE_CONTENT", "MESSAGING", "MODERATE", "MANAGE"],
                    "instagram_business_account": {"id": IG_USER_ID, "username": "adasbakery"}}),
                json!({"id": SECOND_PAGE_ID, "name": "Ada's Café", "category": "Cafe", "access_token": SECOND_PAGE_TOKEN,
                    "tasks": ["CREATE_CONTENT"]}),
            ],
        )
    }

    fn create_post(&self, body: &Value) -> Reply {
        let (message, link) = (body["message"].as_str(), body["link"].as_str());
        if message.is_none_or(str::is_empty) && link.is_none_or(str::is_empty) {
            return graph_error(400, 100, None, "(#100) Missing message or attachment");
        }
        if body.get("scheduled_publish_time").is_some() && body["published"] != false {
            return graph_error(400, 100, None, "(#100) Cannot specify a scheduled publish time on a published post");
        }
        let mut world = self.world.lock().unwrap();
        let id = format!("{PAGE_ID}_{}", Self::id(&mut world, "8"));
        world.posts.push(json!({"id": id, "message": message, "link": link, "created_time": "2026-12-02T12:00:00+0000",
            "permalink_url": format!("https://www.facebook.com/{id}"), "status_type": "mobile_status_update",
            "scheduled_publish_time": body.get("scheduled_publish_time")}));
        ok(json!({"id": id}))
    }

    fn create_photo(&self, request: &RecordedRequest) -> Reply {
        let content_type = request.header("content-type").unwrap_or_default();
        let received = if let Some(boundary) = content_type.strip_prefix("multipart/form-data; boundary=") {
            let Some(parts) = multipart_parts(&request.body, boundary) else {
                return graph_error(400, 100, None, "(#100) The multipart body could not be parsed");
            };
            let field = |name: &str| parts.iter().find(|p| p.0 == name);
            let Some((_, source_type, bytes)) = field("source").filter(|p| !p.2.is_empty()) else {
                return graph_error(400, 324, None, "(#324) Requires upload file");
            };
            let message = field("message").map(|p| String::from_utf8_lossy(&p.2).into_owned());
            json!({"source_bytes": bytes.len(), "source_type": source_type, "message": message, "published": field("published").map(|p| String::from_utf8_lossy(&p.2).into_owned())})
        } else {
            let body = request.json();
            let Some(url) = body["url"].as_str().filter(|u| u.starts_with("http")) else {
                return graph_error(400, 324, None, "(#324) Requires upload file");
            };
            json!({"url": url, "message": body["message"], "published": body.get("published")})
        };
        let mut world = self.world.lock().unwrap();
        let photo_id = Self::id(&mut world, "5");
        let post_id = format!("{PAGE_ID}_{}", Self::id(&mut world, "8"));
        world.photos.push(received.clone());
        world.posts.push(json!({"id": post_id, "message": received["message"], "created_time": "2026-12-02T12:00:00+0000",
            "permalink_url": format!("https://www.facebook.com/{post_id}"), "status_type": "added_photos"}));
        ok(json!({"id": photo_id, "post_id": post_id}))
    }

    fn create_video(&self, body: &Value) -> Reply {
        let Some(url) = body["file_url"].as_str().filter(|u| u.starts_with("http")) else {
            return graph_error(400, 100, None, "(#100) Invalid parameter: file_url or source is required");
        };
        let mut world = self.world.lock().unwrap();
        let id = Self::id(&mut world, "10");
        let processing = Processing { checks_left: self.polls.load(Ordering::SeqCst), broken: url.contains(BROKEN_MEDIA), published: None };
        world.videos.insert(id.clone(), processing);
        world.posts.push(json!({"id": format!("{PAGE_ID}_{id}"), "message": body["description"], "created_time": "2026-12-02T12:00:00+0000", "status_type": "added_video"}));
        ok(json!({"id": id}))
    }

    fn video_status(world: &mut World, id: &str) -> Option<Reply> {
        let video = world.videos.get_mut(id)?;
        let status = if video.checks_left > 0 {
            video.checks_left -= 1;
            json!({"video_status": "processing", "uploading_phase": {"status": "complete"}, "processing_phase": {"status": "in_progress"}, "publishing_phase": {"status": "not_started"}})
        } else if video.broken {
            json!({"video_status": "error", "uploading_phase": {"status": "complete"}, "processing_phase": {"status": "error",
                "errors": [{"code": 1_363_008, "message": "Video Format Not Supported: the video file you tried to upload is in a format we do not support."}]},
                "publishing_phase": {"status": "not_started"}})
        } else {
            json!({"video_status": "ready", "uploading_phase": {"status": "complete"}, "processing_phase": {"status": "complete"},
                "publishing_phase": {"status": "complete", "publish_status": "published"}})
        };
        Some(ok(json!({"id": id, "status": status})))
    }

    fn create_container(&self, body: &Value) -> Reply {
        let url = match body["media_type"].as_str() {
            Some("REELS") => match body["video_url"].as_str() {
                Some(url) => url,
                None => return graph_error(400, 100, None, "(#100) The parameter video_url is required."),
            },
            Some(other) if other != "IMAGE" => return graph_error(400, 100, None, "(#100) Param media_type must be one of {REELS, STORIES, CAROUSEL}"),
            _ => match body["image_url"].as_str() {
                Some(url) => url,
                None => return graph_error(400, 100, None, "(#100) The parameter image_url is required."),
            },
        };
        if !url.starts_with("http") {
            return graph_error(400, 9004, Some(2_207_052), "The media could not be fetched from this URI");
        }
        let mut world = self.world.lock().unwrap();
        let id = Self::id(&mut world, "179");
        let processing = Processing { checks_left: self.polls.load(Ordering::SeqCst), broken: url.contains(BROKEN_MEDIA), published: None };
        world.containers.insert(id.clone(), processing);
        ok(json!({"id": id}))
    }

    fn container_status(world: &mut World, id: &str) -> Option<Reply> {
        let container = world.containers.get_mut(id)?;
        let (code, status) = if container.published.is_some() {
            ("PUBLISHED", "Published: the media was published.")
        } else if container.checks_left > 0 {
            container.checks_left -= 1;
            ("IN_PROGRESS", "In Progress: the media is still being processed.")
        } else if container.broken {
            ("ERROR", "Error: Media upload has failed with error code 2207026")
        } else {
            ("FINISHED", "Finished: the media is ready to be published.")
        };
        Some(ok(json!({"id": id, "status_code": code, "status": status})))
    }

    fn publish(&self, body: &Value) -> Reply {
        let creation_id = body["creation_id"].as_str().unwrap_or_default();
        let mut world = self.world.lock().unwrap();
        let ready = match world.containers.get(creation_id) {
            None => return graph_error(400, 100, Some(33), "Unsupported post request. Object with this creation_id does not exist."),
            Some(c) => c.published.is_none() && c.checks_left == 0 && !c.broken,
        };
        if !ready {
            return graph_error(400, 9007, Some(2_207_027), "Media ID is not available: the media is not ready for publishing, please wait for a moment");
        }
        let media_id = Self::id(&mut world, "180");
        if let Some(container) = world.containers.get_mut(creation_id) {
            container.published = Some(media_id.clone());
        }
        world.media.push(json!({"id": media_id, "media_type": "IMAGE", "media_product_type": "FEED", "timestamp": "2026-12-02T12:00:00+0000",
            "permalink": format!("https://www.instagram.com/p/{media_id}/"), "like_count": 0, "comments_count": 0}));
        ok(json!({"id": media_id}))
    }
}

/// `(name, content type, bytes)` of each part; `None` when the body is not well-formed.
pub(crate) fn multipart_parts(body: &[u8], boundary: &str) -> Option<Vec<(String, String, Vec<u8>)>> {
    let delimiter = format!("--{boundary}");
    let text = body;
    let mut parts = Vec::new();
    let mut rest = text.strip_prefix(delimiter.as_bytes())?;
    loop {
        if rest.starts_with(b"--") {
            return Some(parts);
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let header_end = rest.windows(4).position(|w| w == b"\r\n\r\n")?;
        let headers = String::from_utf8_lossy(&rest[..header_end]).into_owned();
        let content = &rest[header_end + 4..];
        let end_marker = format!("\r\n{delimiter}");
        let end = content.windows(end_marker.len()).position(|w| w == end_marker.as_bytes())?;
        let name = headers.split("name=\"").nth(1)?.split('"').next()?.to_owned();
        let content_type = headers.lines().find_map(|l| l.strip_prefix("Content-Type: ")).unwrap_or("text/plain").to_owned();
        parts.push((name, content_type, content[..end].to_vec()));
        rest = &content[end + end_marker.len()..];
    }
}

fn ok(body: Value) -> Reply {
    Reply::json(200, body)
}

/// Graph's error envelope.
fn graph_error(status: u16, code: u64, subcode: Option<u64>, message: &str) -> Reply {
    let mut error = json!({"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEfGhIjKlMnOp"});
    if let Some(subcode) = subcode {
        error["error_subcode"] = json!(subcode);
    }
    if code == 2 {
        error["is_transient"] = json!(true);
    }
    Reply::json(status, json!({ "error": error }))
}

fn is_version(segment: &str) -> bool {
    segment.strip_prefix('v').and_then(|v| v.split_once('.')).is_some_and(|(major, minor)| {
        !major.is_empty() && !minor.is_empty() && major.bytes().chain(minor.bytes()).all(|b| b.is_ascii_digit())
    })
}

fn page(request: &RecordedRequest, items: Vec<Value>) -> Reply {
    let query = request.query_pairs();
    let param = |key: &str| query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let limit = param("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(25).clamp(1, 100);
    let start = param("after").and_then(|c| c.strip_prefix("cursor-")).and_then(|n| n.parse::<usize>().ok()).unwrap_or(0);
    let chunk: Vec<Value> = items.iter().skip(start).take(limit).cloned().collect();
    let end = start + chunk.len();
    let mut paging = json!({"cursors": {"before": format!("cursor-{start}"), "after": format!("cursor-{end}")}});
    if end < items.len() {
        paging["next"] = json!(format!("https://graph.facebook.com/v26.0/next?after=cursor-{end}"));
    }
    ok(json!({"data": chunk, "paging": paging}))
}

impl PlatformMock for Meta {
    fn answer(&self, request: &RecordedRequest) -> Reply {
        let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
        let unknown_path = || graph_error(400, 100, None, "Unknown path components");
        match request.path.as_str() {
            "/refresh_access_token" => return self.refresh_access_token(request),
            "/oauth/access_token" => return self.instagram_code(request),
            "/access_token" => return self.instagram_exchange(request),
            _ => {}
        }
        let (id, edge) = match segments.as_slice() {
            [version, id] if is_version(version) => (*id, None),
            [version, id, edge] if is_version(version) => (*id, Some(*edge)),
            _ => return unknown_path(),
        };
        match (id, edge) {
            ("oauth", Some("access_token")) => return self.access_token(request),
            ("me", Some("accounts")) => return self.accounts(request),
            _ => {}
        }
        if let Some(refusal) = self.token_check(request) {
            return refusal;
        }
        if id == MISSING_ID {
            return graph_error(400, 100, Some(33), &format!("Unsupported get request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."));
        }
        let method = &request.method;
        match (id, edge, method) {
            (PAGE_ID, None, &Method::GET) => ok(json!({"id": PAGE_ID, "name": "Ada's Bakery", "about": "Fresh bread daily.", "category": "Bakery",
                "fan_count": 1204, "followers_count": 1311, "link": "https://www.facebook.com/adasbakery", "username": "adasbakery",
                "verification_status": "not_verified"})),
            (PAGE_ID, Some("posts"), &Method::GET) => page(request, self.posts().into_iter().rev().filter(|p| p["scheduled_publish_time"].is_null()).collect()),
            (PAGE_ID, Some("feed"), &Method::POST) => self.create_post(&request.json()),
            (PAGE_ID, Some("photos"), &Method::POST) => self.create_photo(request),
            (PAGE_ID, Some("videos"), &Method::POST) => self.create_video(&request.json()),
            (IG_USER_ID | "me", None, &Method::GET) => ok(json!({"id": IG_USER_ID, "user_id": IG_USER_ID, "username": "adasbakery",
                "name": "Ada's Bakery", "account_type": "BUSINESS", "biography": "Fresh bread daily.", "website": "https://adas.example",
                "profile_picture_url": "https://scontent.cdninstagram.com/ada.jpg", "followers_count": 980, "follows_count": 12, "media_count": 57})),
            (IG_USER_ID, Some("media"), &Method::GET) => page(request, self.published_media().into_iter().rev().collect()),
            (IG_USER_ID, Some("media"), &Method::POST) => self.create_container(&request.json()),
            (IG_USER_ID, Some("media_publish"), &Method::POST) => self.publish(&request.json()),
            (other, None, &Method::GET) => {
                let mut world = self.world.lock().unwrap();
                if !world.videos.contains_key(other) && !world.containers.contains_key(other) {
                    if other.is_empty() || !other.bytes().all(|b| b.is_ascii_digit()) {
                        return graph_error(400, 100, Some(33), &format!("Unsupported get request. Object with ID '{other}' does not exist."));
                    }
                    // An open world, like the ids: any other numeric id is a container (when its
                    // status_code is asked for) or a video made earlier, and ready.
                    let asks_container = request.query_pairs().iter().any(|(k, v)| k == "fields" && v.contains("status_code"));
                    let done = Processing { checks_left: 0, broken: false, published: None };
                    if asks_container { world.containers.insert(other.to_owned(), done) } else { world.videos.insert(other.to_owned(), done) };
                }
                Self::video_status(&mut world, other)
                    .or_else(|| Self::container_status(&mut world, other))
                    .unwrap_or_else(|| graph_error(400, 100, Some(33), &format!("Unsupported get request. Object with ID '{other}' does not exist.")))
            }
            _ => unknown_path(),
        }
    }

    fn fault(&self, fault: &Fault, request: &RecordedRequest) -> Reply {
        match fault {
            Fault::Unauthorized => graph_error(
                400,
                190,
                Some(460),
                "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.",
            ),
            Fault::Forbidden => graph_error(403, 200, None, "(#200) The user hasn't authorized the application to perform this action"),
            Fault::RateLimited { retry_after } => {
                // Page paths hit the Page-level limit (32); the rest the app-level one (4).
                let (code, message) = if request.path.contains(PAGE_ID) { (32, "(#32) Page request limit reached") } else { (4, "(#4) Application request limit reached") };
                graph_error(400, code, None, message).header("Retry-After", retry_after.to_string())
            }
            Fault::ServerError => graph_error(500, 2, None, "An unexpected error has occurred. Please retry your request later."),
            _ => self.answer(request),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mock;

    #[tokio::test]
    async fn containers_take_the_set_polls_and_publishing_early_is_refused() {
        let mock = Mock::start(Meta::accepting(&["good"]).with_expired(&["old"])).await;
        mock.platform().set_processing_polls(1);
        let http = reqwest::Client::new();
        let url = |path: &str| format!("{}{path}", mock.base_url());
        let created: Value = http.post(url(&format!("/v26.0/{IG_USER_ID}/media"))).bearer_auth("good")
            .json(&json!({"image_url": "https://cdn.example/a.jpg"})).send().await.unwrap().json().await.unwrap();
        let container = created["id"].as_str().unwrap().to_owned();
        let early: Value = http.post(url(&format!("/v26.0/{IG_USER_ID}/media_publish"))).bearer_auth("good")
            .json(&json!({"creation_id": container})).send().await.unwrap().json().await.unwrap();
        assert_eq!(early["error"]["code"], 9007);
        for expected in ["IN_PROGRESS", "FINISHED"] {
            let status: Value = http.get(url(&format!("/v26.0/{container}?fields=status_code"))).bearer_auth("good").send().await.unwrap().json().await.unwrap();
            assert_eq!(status["status_code"], expected);
        }
        let expired: Value = http.get(url(&format!("/v26.0/{PAGE_ID}"))).bearer_auth("old").send().await.unwrap().json().await.unwrap();
        assert_eq!((expired["error"]["code"].as_u64(), expired["error"]["error_subcode"].as_u64()), (Some(190), Some(463)));
    }

    #[test]
    fn multipart_parts_are_read() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\nhi\r\n--b\r\nContent-Disposition: form-data; name=\"source\"; filename=\"x.png\"\r\nContent-Type: image/png\r\n\r\nPNG\r\n--b--\r\n";
        let parts = multipart_parts(body, "b").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1], ("source".to_owned(), "image/png".to_owned(), b"PNG".to_vec()));
    }
}
