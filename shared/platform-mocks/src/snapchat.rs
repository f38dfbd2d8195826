//! A local stand-in for Snap's Marketing API (`/v1/...`) and its token endpoint, on one origin.
//!
//! - `GET /v1/me`, `GET /v1/me/organizations`, `GET /v1/organizations/{id}/adaccounts` in Snap's
//!   envelope `{"request_status": "SUCCESS", "request_id", "<entity>s": [{"sub_request_status",
//!   "<entity>": {…}}]}`. Two organizations ([`ORGANIZATIONS`]) with one and two ad accounts; any
//!   other organization id answers 404 `E3003`. The token is read from `Authorization: Bearer …`
//!   (401 otherwise).
//! - `POST /login/oauth2/access_token`: `client_id`/`client_secret` in the form; answers
//!   `{"access_token", "token_type": "Bearer", "expires_in": 3600, "refresh_token", "scope"}`.
//! - The Public Profile API (on Snap's business host; here the same origin): `GET
//!   /v1/public_profiles/my_profile` → `{"public_profile": {"id": PROFILE_ID, …}}`; `POST
//!   /v1/public_profiles/{id}/media` with exactly `{"type", "name", "key", "iv"}` (a 32-byte key
//!   and a 16-byte IV, base64) → `{"media_id", "add_path", "finalize_path"}`; multipart `POST
//!   {add_path}` with exactly `action=ADD`, `part_number` (1, 2, … in order) and `file` (at most
//!   32 MiB; every part but the last exactly 32 MiB, as `split -b 32m` makes them), then exactly
//!   `action=FINALIZE`, when the parts must decrypt (AES-256-CBC, PKCS#7, the key and IV sent) or
//!   the upload is refused; `POST /v1/public_profiles/{id}/stories` with exactly `{"media_id"}` of
//!   a finalized media → a story ([`Snapchat::stories`] holds the decrypted media). Anything else
//!   answers 400 `E1008` in Snap's error envelope. The upload paths' format is this mock's own:
//!   the gateway takes whatever path Snap answers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::cipher::{AES_256, DecryptionContext, PaddedBlockDecryptingKey, UnboundCipherKey};
use aws_lc_rs::iv::FixedLength;
use axum::http::Method;
use base64::Engine as _;
use serde_json::{Value, json};

use crate::{Fault, PlatformMock, RecordedRequest, Reply};

pub const USER_ID: &str = "8f2b9c1e-4a5d-4c2b-9e1f-0a1b2c3d4e5f";
pub const DISPLAY_NAME: &str = "Ada Lovelace";
/// The organizations the user belongs to: (id, name, ad account ids).
pub const ORGANIZATIONS: [(&str, &str, &[&str]); 2] = [
    (
        "40d6719b-da09-410b-9185-0cc9c0dfed1d",
        "Analytical Engines Ltd",
        &["8adc3db7-8148-4fbf-999c-8d2266369d74"],
    ),
    (
        "507ff8d5-54d5-4cd0-a2c9-bc4b8bb15c82",
        "Difference Works",
        &[
            "3b0fbace-04b4-4a1f-8e5b-8a2c1d7e5f60",
            "c2d3e4f5-0a1b-4c2d-8e3f-9a0b1c2d3e4f",
        ],
    ),
];

/// The connected Snapchatter's Public Profile.
pub const PROFILE_ID: &str = "c4a1e0b2-7d3f-4e5a-9b8c-1d2e3f4a5b6c";
/// Snap's part size for encrypted media (`split -b 32m`).
pub const PART_BYTES: usize = 32 * 1024 * 1024;

/// A Story the mock accepted: the media as it decrypted, and how it came.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostedStory {
    pub media_id: String,
    /// `IMAGE` or `VIDEO`, as declared when the media was created.
    pub media_type: String,
    pub name: String,
    /// The decrypted media.
    pub media: Vec<u8>,
    /// The encrypted parts' sizes, in order.
    pub part_sizes: Vec<usize>,
}

#[derive(Default)]
struct UploadedMedia {
    media_type: String,
    name: String,
    key: Vec<u8>,
    iv: Vec<u8>,
    parts: Vec<Vec<u8>>,
    /// The decrypted media, once finalized.
    finalized: Option<Vec<u8>>,
}

pub struct Snapchat {
    client_id: String,
    client_secret: String,
    access: Mutex<Vec<String>>,
    refresh: Mutex<HashMap<String, bool>>,
    codes: Mutex<Vec<String>>,
    next: AtomicU64,
    media: Mutex<HashMap<String, UploadedMedia>>,
    stories: Mutex<Vec<PostedStory>>,
}

impl Snapchat {
    pub fn accepting(tokens: &[&str]) -> Self {
        let mock = Self::with_client("snap-client", "snap-secret");
        *mock.access.lock().unwrap() = tokens.iter().map(|t| (*t).to_owned()).collect();
        mock
    }

    pub fn with_client(client_id: &str, client_secret: &str) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            access: Mutex::new(Vec::new()),
            refresh: Mutex::new(HashMap::new()),
            codes: Mutex::new(Vec::new()),
            next: AtomicU64::new(1),
            media: Mutex::new(HashMap::new()),
            stories: Mutex::new(Vec::new()),
        }
    }

    /// The Stories posted so far, in order.
    pub fn stories(&self) -> Vec<PostedStory> {
        self.stories.lock().unwrap().clone()
    }

    /// A refresh token the token endpoint accepts (as from an earlier authorization).
    pub fn issue_refresh_token(&self) -> String {
        let token = format!("snap-refresh-{}", self.next.fetch_add(1, Ordering::SeqCst));
        self.refresh.lock().unwrap().insert(token.clone(), true);
        token
    }

    /// An authorization code as the consent page would give it (single use).
    pub fn issue_code(&self) -> String {
        let code = format!("snap-code-{}", self.next.fetch_add(1, Ordering::SeqCst));
        self.codes.lock().unwrap().push(code.clone());
        code
    }

    fn authorized(&self, request: &RecordedRequest) -> bool {
        let token = request
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        !token.is_empty() && self.access.lock().unwrap().iter().any(|t| t == token)
    }

    fn token(&self, request: &RecordedRequest) -> Reply {
        let form: HashMap<String, String> = RecordedRequest {
            query: Some(String::from_utf8_lossy(&request.body).into_owned()),
            ..request.clone()
        }
        .query_pairs()
        .into_iter()
        .collect();
        let get = |k: &str| form.get(k).cloned().unwrap_or_default();
        if get("client_id") != self.client_id || get("client_secret") != self.client_secret {
            return Reply::json(401, json!({"error": "invalid_client"}));
        }
        let refresh = match get("grant_type").as_str() {
            "refresh_token"
                if self.refresh.lock().unwrap().get(&get("refresh_token")) == Some(&true) =>
            {
                get("refresh_token")
            }
            "authorization_code" if !get("redirect_uri").is_empty() => {
                let mut codes = self.codes.lock().unwrap();
                let Some(at) = codes.iter().position(|c| *c == get("code")) else {
                    return Reply::json(400, json!({"error": "invalid_grant"}));
                };
                codes.remove(at);
                self.issue_refresh_token()
            }
            _ => return Reply::json(400, json!({"error": "invalid_grant"})),
        };
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let access = format!("snap-access-{n}-0123456789");
        self.access.lock().unwrap().push(access.clone());
        Reply::json(
            200,
            json!({"access_token": access, "token_type": "Bearer", "expires_in": 3600, "refresh_token": refresh, "scope": "snapchat-marketing-api"}),
        )
    }
}

fn success(key: &str, entity: &str, items: Vec<Value>) -> Reply {
    let list: Vec<Value> = items
        .into_iter()
        .map(|item| json!({"sub_request_status": "SUCCESS", entity: item}))
        .collect();
    Reply::json(
        200,
        json!({"request_status": "SUCCESS", "request_id": "5f2b1c3d00ff0a1b2c3d4e5f60001", key: list}),
    )
}

fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"request_status": "ERROR", "request_id": "5f2b1c3d00ff0a1b2c3d4e5f60002", "debug_message": message, "display_message": message, "error_code": code}),
    )
}

impl Snapchat {
    /// `/v1/public_profiles/…`: `rest` is what follows.
    fn public_profile(&self, request: &RecordedRequest, rest: &[&str]) -> Reply {
        match (&request.method, rest) {
            (&Method::GET, ["my_profile"]) => Reply::json(
                200,
                json!({"request_status": "SUCCESS", "request_id": "5f2b1c3d00ff0a1b2c3d4e5f60010", "public_profile": {
                    "id": PROFILE_ID, "organization_id": ORGANIZATIONS[0].0, "display_name": DISPLAY_NAME,
                    "snap_user_name": "ada.lovelace", "profile_type": "PUBLIC_PROFILE", "profile_tier": "TIER_PUBLIC"}}),
            ),
            (_, [profile, ..]) if *profile != PROFILE_ID => error(404, "E3003", "Resource can not be found"),
            (&Method::POST, [_, "media"]) => self.create_media(request),
            (&Method::POST, [_, "media", media_id, "multipart-upload"]) => self.upload(request, media_id),
            (&Method::POST, [_, "stories"]) => self.post_story(request),
            _ => error(404, "E3003", "Resource can not be found"),
        }
    }

    fn create_media(&self, request: &RecordedRequest) -> Reply {
        if request.header("content-type") != Some("application/json") {
            return invalid("The body must be JSON");
        }
        let body = request.json();
        let Some(fields) = body.as_object() else { return invalid("The body must be a JSON object") };
        let mut keys: Vec<&str> = fields.keys().map(String::as_str).collect();
        keys.sort_unstable();
        if keys != ["iv", "key", "name", "type"] {
            return invalid(&format!("Expected exactly type, name, key and iv; got {keys:?}"));
        }
        let text = |k: &str| fields.get(k).and_then(Value::as_str).unwrap_or_default();
        let decode = |k: &str| base64::engine::general_purpose::STANDARD.decode(text(k)).unwrap_or_default();
        let (key, iv) = (decode("key"), decode("iv"));
        if !["IMAGE", "VIDEO"].contains(&text("type")) || text("name").is_empty() {
            return invalid("type must be IMAGE or VIDEO and name must be set");
        }
        if key.len() != 32 || iv.len() != 16 {
            return invalid("key must be 32 bytes and iv 16 bytes, base64-encoded");
        }
        let media_id = format!("9e1d7c3a-0000-4000-8000-{:012}", self.next.fetch_add(1, Ordering::SeqCst));
        let path = format!("/v1/public_profiles/{PROFILE_ID}/media/{media_id}/multipart-upload");
        self.media.lock().unwrap().insert(
            media_id.clone(),
            UploadedMedia { media_type: text("type").to_owned(), name: text("name").to_owned(), key, iv, ..Default::default() },
        );
        Reply::json(
            200,
            json!({"request_status": "SUCCESS", "request_id": "5f2b1c3d00ff0a1b2c3d4e5f60011", "media_id": media_id,
                "add_path": path, "finalize_path": path}),
        )
    }

    fn upload(&self, request: &RecordedRequest, media_id: &str) -> Reply {
        let content_type = request.header("content-type").unwrap_or_default();
        let Some(boundary) = content_type.strip_prefix("multipart/form-data; boundary=") else {
            return invalid("The body must be multipart/form-data");
        };
        let Some(fields) = crate::meta::multipart_parts(&request.body, boundary) else {
            return invalid("The multipart body could not be parsed");
        };
        let names: Vec<&str> = fields.iter().map(|(name, _, _)| name.as_str()).collect();
        let field = |name: &str| fields.iter().find(|(n, _, _)| n == name).map(|(_, _, bytes)| bytes.as_slice()).unwrap_or_default();
        let mut all = self.media.lock().unwrap();
        let Some(media) = all.get_mut(media_id) else { return error(404, "E3003", "Resource can not be found") };
        if media.finalized.is_some() {
            return invalid("The media upload is already finalized");
        }
        match (names.as_slice(), field("action")) {
            (["action", "part_number", "file"], b"ADD") => {
                let expected = (media.parts.len() + 1).to_string();
                if field("part_number") != expected.as_bytes() {
                    return invalid(&format!("part_number must be {expected}"));
                }
                let file = field("file");
                if file.is_empty() || file.len() > PART_BYTES {
                    return invalid("A part must hold 1 byte to 32 MB");
                }
                media.parts.push(file.to_vec());
            }
            (["action"], b"FINALIZE") => {
                let Some((_, full)) = media.parts.split_last() else { return invalid("No part was uploaded") };
                if full.iter().any(|part| part.len() != PART_BYTES) {
                    return invalid("Every part but the last must be 32 MB");
                }
                let mut encrypted = media.parts.concat();
                let decrypted = UnboundCipherKey::new(&AES_256, &media.key)
                    .and_then(PaddedBlockDecryptingKey::cbc_pkcs7)
                    .ok()
                    .zip(<[u8; 16]>::try_from(media.iv.as_slice()).ok())
                    .and_then(|(key, iv)| key.decrypt(&mut encrypted, DecryptionContext::Iv128(FixedLength::from(iv))).ok().map(|plain| plain.to_vec()));
                let Some(decrypted) = decrypted else {
                    return invalid("The media does not decrypt with the key and iv it was created with");
                };
                media.finalized = Some(decrypted);
            }
            _ => return invalid(&format!("Expected action=ADD with part_number and file, or action=FINALIZE alone; got {names:?}")),
        }
        Reply::json(200, json!({"request_status": "SUCCESS", "request_id": "5f2b1c3d00ff0a1b2c3d4e5f60012"}))
    }

    fn post_story(&self, request: &RecordedRequest) -> Reply {
        let body = request.json();
        let media_id = body.get("media_id").and_then(Value::as_str).unwrap_or_default();
        if request.header("content-type") != Some("application/json") || body.as_object().map(|o| o.len()) != Some(1) {
            return invalid("Expected exactly {\"media_id\"} as JSON");
        }
        let all = self.media.lock().unwrap();
        let Some(UploadedMedia { media_type, name, parts, finalized: Some(decrypted), .. }) = all.get(media_id) else {
            return invalid("The media does not exist or is not finalized");
        };
        self.stories.lock().unwrap().push(PostedStory {
            media_id: media_id.to_owned(),
            media_type: media_type.clone(),
            name: name.clone(),
            media: decrypted.clone(),
            part_sizes: parts.iter().map(Vec::len).collect(),
        });
        Reply::json(200, json!({"request_status": "SUCCESS", "request_id": "5f2b1c3d00ff0a1b2c3d4e5f60013"}))
    }
}

fn invalid(message: &str) -> Reply {
    error(400, "E1008", message)
}

impl PlatformMock for Snapchat {
    fn answer(&self, request: &RecordedRequest) -> Reply {
        if request.method == Method::POST && request.path == "/login/oauth2/access_token" {
            return self.token(request);
        }
        if !self.authorized(request) {
            return Reply::raw(401, "text/plain", "Unauthorized");
        }
        let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
        if let ["v1", "public_profiles", ..] = segments.as_slice() {
            return self.public_profile(request, &segments[2..]);
        }
        if request.method != Method::GET {
            return error(405, "E1001", "Method not allowed");
        }
        match segments.as_slice() {
            ["v1", "me"] => Reply::json(200, json!({"request_status": "SUCCESS", "request_id": "5f2b1c3d00ff0a1b2c3d4e5f60000",
                "me": {"id": USER_ID, "updated_at": "2026-01-05T10:00:00.000Z", "created_at": "2024-03-01T09:00:00.000Z",
                    "email": "ada@example.com", "organization_id": ORGANIZATIONS[0].0, "display_name": DISPLAY_NAME, "member_status": "MEMBER"}})),
            ["v1", "me", "organizations"] => success("organizations", "organization",
                ORGANIZATIONS.iter().map(|(id, name, _)| json!({"id": id, "name": name, "type": "ENTERPRISE", "state": "ACTIVE"})).collect()),
            ["v1", "organizations", organization, "adaccounts"] => match ORGANIZATIONS.iter().find(|(id, _, _)| id == organization) {
                Some((id, name, accounts)) => success("adaccounts", "adaccount", accounts.iter().enumerate().map(|(i, account)| json!({
                    "id": account, "name": format!("{name} ad account {}", i + 1), "type": "PARTNER", "status": "ACTIVE",
                    "organization_id": id, "currency": "USD", "timezone": "America/Los_Angeles"})).collect()),
                None => error(404, "E3003", "Resource can not be found"),
            },
            _ => error(404, "E3003", "Resource can not be found"),
        }
    }

    fn fault(&self, fault: &Fault, _request: &RecordedRequest) -> Reply {
        match fault {
            Fault::Unauthorized => Reply::raw(401, "text/plain", "Unauthorized"),
            Fault::Forbidden => error(
                403,
                "E1002",
                "The user does not have access to this resource",
            ),
            Fault::RateLimited { retry_after } => error(429, "E1005", "Too many requests")
                .header("retry-after", retry_after.to_string()),
            Fault::ServerError | Fault::Slow(_) | Fault::Reply(_) => {
                error(500, "E2001", "Internal server error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn get(mock: &Snapchat, path: &str) -> Reply {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer t".parse().unwrap());
        mock.answer(&RecordedRequest {
            method: Method::GET,
            path: path.to_owned(),
            query: None,
            headers,
            body: Default::default(),
        })
    }

    #[test]
    fn routes() {
        let mock = Snapchat::accepting(&["t"]);
        assert!(get(&mock, "/v1/me").body.contains(USER_ID));
        assert!(
            get(
                &mock,
                &format!("/v1/organizations/{}/adaccounts", ORGANIZATIONS[1].0)
            )
            .body
            .contains(ORGANIZATIONS[1].2[1])
        );
        assert_eq!(get(&mock, "/v1/organizations/nope/adaccounts").status, 404);
    }

    fn post(mock: &Snapchat, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer t".parse().unwrap());
        headers.insert("content-type", content_type.parse().unwrap());
        mock.answer(&RecordedRequest { method: Method::POST, path: path.to_owned(), query: None, headers, body: body.into() })
    }

    fn form(fields: &[(&str, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(format!("--b\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes());
            body.extend_from_slice(value);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"--b--\r\n");
        body
    }

    #[test]
    fn a_story_needs_media_that_decrypts_with_its_own_key() {
        use aws_lc_rs::cipher::{EncryptionContext, PaddedBlockEncryptingKey};
        let mock = Snapchat::accepting(&["t"]);
        assert!(get(&mock, "/v1/public_profiles/my_profile").body.contains(PROFILE_ID));
        let (key, iv) = ([3u8; 32], [4u8; 16]);
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let create = |body: Value| post(&mock, &format!("/v1/public_profiles/{PROFILE_ID}/media"), "application/json", body.to_string().into_bytes());
        assert_eq!(create(json!({"type": "IMAGE", "name": "n", "key": b64(&key)})).status, 400, "iv missing");
        assert_eq!(create(json!({"type": "GIF", "name": "n", "key": b64(&key), "iv": b64(&iv)})).status, 400);
        let created: Value = serde_json::from_str(&create(json!({"type": "IMAGE", "name": "n", "key": b64(&key), "iv": b64(&iv)})).body).unwrap();
        let (media_id, add_path) = (created["media_id"].as_str().unwrap(), created["add_path"].as_str().unwrap());

        let mut encrypted = b"a photo".to_vec();
        PaddedBlockEncryptingKey::cbc_pkcs7(UnboundCipherKey::new(&AES_256, &key).unwrap())
            .unwrap()
            .less_safe_encrypt(&mut encrypted, EncryptionContext::Iv128(FixedLength::from(iv)))
            .unwrap();
        let upload = |fields: &[(&str, &[u8])]| post(&mock, add_path, "multipart/form-data; boundary=b", form(fields));
        let story = || post(&mock, &format!("/v1/public_profiles/{PROFILE_ID}/stories"), "application/json", json!({"media_id": media_id}).to_string().into_bytes());
        assert_eq!(upload(&[("action", b"ADD"), ("part_number", b"2"), ("file", &encrypted)]).status, 400, "parts start at 1");
        assert_eq!(upload(&[("action", b"FINALIZE")]).status, 400, "nothing uploaded yet");
        assert_eq!(upload(&[("action", b"ADD"), ("part_number", b"1"), ("file", &encrypted)]).status, 200);
        assert_eq!(story().status, 400, "not finalized");
        assert_eq!(upload(&[("action", b"FINALIZE")]).status, 200);
        assert_eq!(story().status, 200);
        let stories = mock.stories();
        assert_eq!((stories[0].media.as_slice(), stories[0].media_type.as_str(), stories[0].part_sizes.clone()), (&b"a photo"[..], "IMAGE", vec![16]));

        // Bytes that were not encrypted with the declared key do not finalize.
        let other: Value = serde_json::from_str(&create(json!({"type": "VIDEO", "name": "v", "key": b64(&[5u8; 32]), "iv": b64(&iv)})).body).unwrap();
        let other_path = other["add_path"].as_str().unwrap();
        let send = |fields: &[(&str, &[u8])]| post(&mock, other_path, "multipart/form-data; boundary=b", form(fields));
        assert_eq!(send(&[("action", b"ADD"), ("part_number", b"1"), ("file", &encrypted)]).status, 200);
        let refused = send(&[("action", b"FINALIZE")]);
        assert!(refused.status == 400 && refused.body.contains("does not decrypt"), "{}", refused.body);
        assert_eq!(post(&mock, "/v1/public_profiles/other/stories", "application/json", b"{}".to_vec()).status, 404);
    }
}
