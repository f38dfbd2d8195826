//! `create_snap`: a Story on the connected person's Public Profile, through Snap's Public Profile
//! API (`businessapi.snapchat.com/v1`), which Snap opens to allow-listed apps only. The tool is
//! real only where the operator declared that access (`SQUAREMCP_PARTNER_ACCESS`); otherwise
//! [`crate::kit::partner_only`] answers the restriction without calling Snap.
//!
//! The flow, and where each part of it comes from:
//! 1. `GET /v1/public_profiles/my_profile` → `{"public_profile": {"id", …}}`: the profile the
//!    token's Snapchatter hosts. The path and answer are not in the part of Snap's reference the
//!    gateway could read; they are what several independent open-source clients call and parse
//!    (some also accept `{"public_profiles": [{"public_profile": …}]}`, read here too).
//! 2. The media is encrypted with AES-256-CBC under a random 32-byte key and 16-byte IV, PKCS#7
//!    padded (`openssl enc -aes-256-cbc` in Snap's Profile Asset Management guide), and the
//!    encrypted file is split into parts of 32 MB (`split -b 32m`, same guide).
//! 3. `POST /v1/public_profiles/{profile_id}/media` with `{"type": "IMAGE"|"VIDEO", "name",
//!    "key", "iv"}` (key and IV base64): the request is Snap's documented one. The answer's
//!    `media_id`, `add_path` and `finalize_path` are what the open-source clients read (Snap's page
//!    as read shows only `request_id`): unverified against Snap itself.
//! 4. Each part: multipart `POST {add_path}` with `action=ADD`, `part_number` (from 1) and `file`;
//!    then `action=FINALIZE` to `{finalize_path}` (`add_path` when Snap gives none): from the
//!    open-source clients, unverified.
//! 5. `POST /v1/public_profiles/{profile_id}/stories` with `{"media_id"}`: from the open-source
//!    clients; Snap's answer is not documented where the gateway could read it, so the tool
//!    reports the media id and Snap's `request_id`, not a story id.
//!
//! docs/platforms.md repeats which parts are sourced and which are unverified.

use std::sync::Arc;

use async_trait::async_trait;
use aws_lc_rs::cipher::{AES_256, EncryptionContext, StreamingEncryptingKey, UnboundCipherKey};
use aws_lc_rs::iv::FixedLength;
use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use reqwest::Method;
use serde_json::{Map, Value, json};
use squaremcp_core::tool::{
    Annotations, FailureKind, Tool, ToolDefinition, ToolFailure, ToolOutput,
};
use squaremcp_core::{Platform, Secret};
use url::Url;

use super::credential::UserToken;
use super::dialect::{self, SnapchatDialect};
use crate::kit::media::media_args;
use crate::kit::{HttpApi, Media, MediaStream, ToolSpec, UpstreamRequest};

/// The Public Profile API: the same `/v1` as the Marketing API, on Snap's business host.
pub const PUBLIC_PROFILE_ORIGIN: &str = "https://businessapi.snapchat.com/v1";

/// Snap's part size for the encrypted file (`split -b 32m`).
pub const PART_BYTES: usize = 32 * 1024 * 1024;

/// Photos and videos a Story takes (JPEG or PNG; MP4), by the types the media's source declares.
const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png"];
const VIDEO_TYPES: &[&str] = &["video/mp4"];

const KEY_BYTES: usize = 32;
const IV_BYTES: usize = 16;

/// Where the Public Profile API is called: Snap's business host, or, when the operator pointed
/// Snapchat elsewhere (`SQUAREMCP_SNAPCHAT_BASE_URL`, a mock or a proxy), that same origin, which
/// then serves both of Snap's hosts (their paths do not overlap).
pub(super) fn public_profile_origin(marketing_origin: &str) -> String {
    if marketing_origin == super::DEFAULT_ORIGIN {
        PUBLIC_PROFILE_ORIGIN.to_owned()
    } else {
        marketing_origin.to_owned()
    }
}

pub(super) struct CreateSnap {
    definition: ToolDefinition,
    api: Arc<HttpApi<SnapchatDialect>>,
    media: Media,
    part_bytes: usize,
}

impl CreateSnap {
    pub(super) fn new(http: crate::kit::HttpClient, marketing_origin: &str, media: Media) -> Self {
        let api = Arc::new(HttpApi::new(
            http,
            public_profile_origin(marketing_origin),
            SnapchatDialect,
        ));
        Self {
            definition: spec().take_definition(Platform::Snapchat),
            api,
            media,
            part_bytes: PART_BYTES,
        }
    }
}

pub(super) fn spec() -> ToolSpec {
    let [media_url, media_data, media_type] =
        media_args("the photo (JPEG or PNG) or video (MP4), 9:16");
    ToolSpec::new(
        "create_snap",
        "Snapchat: post a Story to the Public Profile",
        "Posts one photo or video as a Story on the connected person's Snapchat Public Profile (visible for 24 hours). \
         There is no API to send a Snap to friends; this is the nearest real one. The gateway encrypts the media as Snap \
         requires and uploads it in 32 MB parts. Returns {profile_id, media_id, parts, request_id}. Needs the Snapchat \
         connection made with the snapchat-profile-api scope.",
        Annotations::WRITE,
    )
    .arg(media_url)
    .arg(media_data)
    .arg(media_type)
    .output(json!({
        "type": "object",
        "properties": {
            "profile_id": {"type": "string"},
            "media_id": {"type": "string"},
            "parts": {"type": "integer", "description": "How many encrypted parts were uploaded."},
            "request_id": {"type": "string", "description": "Snap's id of the story request, for Snap's support."}
        },
        "required": ["profile_id", "media_id", "parts"]
    }))
}

#[async_trait]
impl Tool for CreateSnap {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(
        &self,
        credential: &Secret<Value>,
        arguments: Map<String, Value>,
    ) -> Result<ToolOutput, ToolFailure> {
        let token = self.api.credential(credential)?;
        // The media is checked (type, size, reachable) before anything is sent to Snap.
        let input = self.media.input(&arguments)?.ok_or_else(|| {
            ToolFailure::invalid_arguments("Give the photo or video as media_url or media_data.")
        })?;
        let accepted: Vec<&str> = IMAGE_TYPES.iter().chain(VIDEO_TYPES).copied().collect();
        let mut stream = self.media.open(input, &accepted).await?;
        let media_type = if stream.content_type().starts_with("video/") {
            "VIDEO"
        } else {
            "IMAGE"
        };

        let profile_id = self.my_profile(&token).await?;
        let key = random::<KEY_BYTES>()?;
        let iv = random::<IV_BYTES>()?;
        let container = self
            .create_media(&token, &profile_id, media_type, &key, &iv)
            .await?;
        let parts = self
            .upload(&token, &container, &mut stream, key, iv)
            .await?;
        let posted = self
            .api
            .send(
                &token,
                &Method::POST,
                dialect::POST_STORY,
                &UpstreamRequest {
                    path: format!("/public_profiles/{}/stories", segment(&profile_id)),
                    body: object(json!({"media_id": container.media_id})),
                    ..Default::default()
                },
                false,
            )
            .await?;
        tracing::info!(
            platform = "snapchat",
            parts,
            media_type,
            "posted a story to the public profile"
        );
        let mut structured =
            json!({"profile_id": profile_id, "media_id": container.media_id, "parts": parts});
        if let Some(request_id) = posted.get("request_id").and_then(Value::as_str) {
            structured["request_id"] = json!(request_id);
        }
        Ok(ToolOutput { structured })
    }
}

/// What `POST …/media` answers: the container's id and where its parts go.
#[derive(Debug, PartialEq, Eq)]
struct Container {
    media_id: String,
    add_url: String,
    finalize_url: String,
}

impl CreateSnap {
    async fn my_profile(&self, token: &UserToken) -> Result<String, ToolFailure> {
        let request = UpstreamRequest {
            path: "/public_profiles/my_profile".to_owned(),
            ..Default::default()
        };
        let answer = self
            .api
            .send(token, &Method::GET, dialect::GET_MY_PROFILE, &request, true)
            .await?;
        profile_id(&answer).ok_or_else(|| {
            ToolFailure::new(
                FailureKind::NotFound,
                "Snapchat answered without a Public Profile for this account: the connected Snapchatter needs a Public Profile \
                 (created in the Snapchat app) to post Stories.",
            )
        })
    }

    async fn create_media(
        &self,
        token: &UserToken,
        profile_id: &str,
        media_type: &str,
        key: &[u8],
        iv: &[u8],
    ) -> Result<Container, ToolFailure> {
        let engine = base64::engine::general_purpose::STANDARD;
        let body = object(json!({
            "type": media_type,
            "name": format!("squaremcp-story-{}", squaremcp_core::random::hex_id::<6>()),
            "key": engine.encode(key),
            "iv": engine.encode(iv),
        }));
        let request = UpstreamRequest {
            path: format!("/public_profiles/{}/media", segment(profile_id)),
            body,
            ..Default::default()
        };
        let answer = self
            .api
            .send(token, &Method::POST, dialect::CREATE_MEDIA, &request, false)
            .await?;
        container(&answer, self.api.origin())
    }

    /// Encrypts the media as it is read and uploads the ciphertext in parts, then finalizes; the
    /// number of parts.
    async fn upload(
        &self,
        token: &UserToken,
        container: &Container,
        stream: &mut MediaStream,
        key: [u8; KEY_BYTES],
        iv: [u8; IV_BYTES],
    ) -> Result<u64, ToolFailure> {
        let add_url = container.add_url.as_str();
        let parts = encrypt_in_parts(stream, key, iv, self.part_bytes, |number, part| {
            self.send_part(token, add_url, number, part)
        })
        .await?;
        self.send_form(
            token,
            &container.finalize_url,
            dialect::FINALIZE_MEDIA,
            &[("action", "FINALIZE")],
            None,
        )
        .await?;
        Ok(parts)
    }

    async fn send_part(
        &self,
        token: &UserToken,
        url: &str,
        number: u64,
        part: Bytes,
    ) -> Result<(), ToolFailure> {
        let number = number.to_string();
        self.send_form(
            token,
            url,
            dialect::UPLOAD_PART,
            &[("action", "ADD"), ("part_number", &number)],
            Some(part),
        )
        .await
    }

    /// One multipart/form-data request (built by hand: the workspace's reqwest has no multipart
    /// feature); never retried, since Snap's parts are numbered and a repeat is Snap's to judge.
    async fn send_form(
        &self,
        token: &UserToken,
        url: &str,
        operation: &str,
        fields: &[(&str, &str)],
        file: Option<Bytes>,
    ) -> Result<(), ToolFailure> {
        let boundary = format!("squaremcp-{}", squaremcp_core::random::hex_id::<12>());
        let builder = self
            .api
            .client()
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(multipart(&boundary, fields, file.as_ref()));
        let answer = self.api.send_raw(token, builder, operation, true).await?;
        self.api.interpret(token, operation, &answer).map(drop)
    }
}

/// Encrypts `stream` with AES-256-CBC and PKCS#7 as it is read, handing the ciphertext to `send`
/// in parts of `part_bytes` (numbered from 1; only the last is shorter); the number of parts. At
/// most about two parts are held at once, never the whole file.
async fn encrypt_in_parts<F, Sent>(
    stream: &mut MediaStream,
    key: [u8; KEY_BYTES],
    iv: [u8; IV_BYTES],
    part_bytes: usize,
    mut send: F,
) -> Result<u64, ToolFailure>
where
    F: FnMut(u64, Bytes) -> Sent,
    Sent: std::future::Future<Output = Result<(), ToolFailure>>,
{
    let cipher_failure = || {
        ToolFailure::new(
            FailureKind::UpstreamTransient,
            "The gateway could not encrypt the media for Snapchat; try again.",
        )
    };
    let part_bytes = part_bytes.max(IV_BYTES);
    let unbound = UnboundCipherKey::new(&AES_256, &key).map_err(|_| cipher_failure())?;
    // A caller-supplied IV ("less safe" in aws-lc-rs's terms) because Snap must be told the IV
    // before the upload; it is random and used once, with a key that is also used once.
    let mut cipher = StreamingEncryptingKey::less_safe_cbc_pkcs7(
        unbound,
        EncryptionContext::Iv128(FixedLength::from(iv)),
    )
    .map_err(|_| cipher_failure())?;
    let mut pending = BytesMut::new();
    let mut parts = 0u64;
    while let Some(plain) = stream.next_part(part_bytes).await? {
        let mut out = vec![0u8; plain.len() + IV_BYTES];
        let written = cipher
            .update(&plain, &mut out)
            .map_err(|_| cipher_failure())?
            .written()
            .len();
        pending.put_slice(&out[..written]);
        while pending.len() >= part_bytes {
            parts += 1;
            send(parts, pending.split_to(part_bytes).freeze()).await?;
        }
    }
    let mut last = [0u8; IV_BYTES];
    let (_, update) = cipher.finish(&mut last).map_err(|_| cipher_failure())?;
    pending.put_slice(update.written());
    while !pending.is_empty() {
        parts += 1;
        let size = pending.len().min(part_bytes);
        send(parts, pending.split_to(size).freeze()).await?;
    }
    Ok(parts)
}

/// The profile id from `my_profile`'s answer, in either shape the clients read.
fn profile_id(answer: &Value) -> Option<String> {
    answer
        .get("public_profile")
        .or_else(|| answer.pointer("/public_profiles/0/public_profile"))
        .and_then(|profile| profile.get("id"))
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

/// The container from `POST …/media`'s answer, its upload paths made into URLs on the origin.
fn container(answer: &Value, origin: &str) -> Result<Container, ToolFailure> {
    let text = |key: &str| {
        answer
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|t| !t.is_empty())
    };
    let missing = || {
        ToolFailure::new(
            FailureKind::Upstream,
            format!(
                "Snapchat answered {} without a media_id and an add_path; nothing was uploaded.",
                dialect::CREATE_MEDIA
            ),
        )
    };
    let (media_id, add_path) = text("media_id").zip(text("add_path")).ok_or_else(missing)?;
    let add_url = upload_url(origin, add_path)?;
    let finalize_url = match text("finalize_path") {
        Some(path) => upload_url(origin, path)?,
        None => add_url.clone(),
    };
    Ok(Container {
        media_id: media_id.to_owned(),
        add_url,
        finalize_url,
    })
}

/// An upload path Snap gave, as a URL: a path is taken on the API's host (not under `/v1`: Snap's
/// paths carry their own prefix); a full URL only on that same host, since the access token goes
/// with it.
fn upload_url(origin: &str, path: &str) -> Result<String, ToolFailure> {
    let foreign = || {
        ToolFailure::new(
            FailureKind::Upstream,
            "Snapchat gave an upload address outside its API host; the gateway does not send the access token there.",
        )
    };
    let base = Url::parse(origin).map_err(|_| foreign())?;
    let url = if path.starts_with("https://") || path.starts_with("http://") {
        Url::parse(path).map_err(|_| foreign())?
    } else {
        let absolute = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        base.join(&absolute).map_err(|_| foreign())?
    };
    let same_host = url.scheme() == base.scheme()
        && url.host_str() == base.host_str()
        && url.port_or_known_default() == base.port_or_known_default();
    if same_host && url.username().is_empty() && url.password().is_none() {
        Ok(url.into())
    } else {
        Err(foreign())
    }
}

/// `fields` as form fields, then the encrypted part as `file`.
fn multipart(boundary: &str, fields: &[(&str, &str)], file: Option<&Bytes>) -> Bytes {
    let mut body = BytesMut::with_capacity(file.map_or(0, Bytes::len) + 512);
    for (name, value) in fields {
        body.put_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some(file) = file {
        body.put_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"media.enc\"\r\nContent-Type: application/octet-stream\r\n\r\n")
                .as_bytes(),
        );
        body.put_slice(file);
        body.put_slice(b"\r\n");
    }
    body.put_slice(format!("--{boundary}--\r\n").as_bytes());
    body.freeze()
}

/// Fresh random bytes from the same generator the TLS stack uses.
fn random<const N: usize>() -> Result<[u8; N], ToolFailure> {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| {
        ToolFailure::new(
            FailureKind::UpstreamTransient,
            "The gateway could not make an encryption key; try again.",
        )
    })?;
    Ok(bytes)
}

/// A path segment from an id Snap gave, percent-encoded so it stays one segment.
fn segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use aws_lc_rs::cipher::{DecryptionContext, PaddedBlockDecryptingKey};

    #[test]
    fn the_public_profile_host_is_snaps_business_host_unless_snapchat_is_pointed_elsewhere() {
        assert_eq!(
            public_profile_origin(super::super::DEFAULT_ORIGIN),
            "https://businessapi.snapchat.com/v1"
        );
        assert_eq!(
            public_profile_origin("http://127.0.0.1:4000/v1"),
            "http://127.0.0.1:4000/v1"
        );
    }

    #[test]
    fn the_profile_id_is_read_in_both_shapes() {
        assert_eq!(
            profile_id(&json!({"request_status": "SUCCESS", "public_profile": {"id": "p1"}})),
            Some("p1".into())
        );
        assert_eq!(
            profile_id(
                &json!({"public_profiles": [{"sub_request_status": "SUCCESS", "public_profile": {"id": "p2"}}]})
            ),
            Some("p2".into())
        );
        assert_eq!(profile_id(&json!({"public_profile": {"id": ""}})), None);
        assert_eq!(profile_id(&json!({"request_status": "SUCCESS"})), None);
    }

    #[test]
    fn upload_paths_stay_on_the_api_host() {
        let origin = "https://businessapi.snapchat.com/v1";
        assert_eq!(
            upload_url(origin, "/us/v1/media/m1/upload").unwrap(),
            "https://businessapi.snapchat.com/us/v1/media/m1/upload"
        );
        assert_eq!(
            upload_url(origin, "v1/media/m1/upload?x=1").unwrap(),
            "https://businessapi.snapchat.com/v1/media/m1/upload?x=1"
        );
        assert_eq!(
            upload_url(origin, "https://businessapi.snapchat.com/v1/m").unwrap(),
            "https://businessapi.snapchat.com/v1/m"
        );
        for foreign in [
            "https://evil.example/v1/m",
            "http://businessapi.snapchat.com/v1/m",
            "https://u:p@businessapi.snapchat.com/m",
            "https://businessapi.snapchat.com:444/m",
        ] {
            let refused = upload_url(origin, foreign).expect_err(foreign);
            assert_eq!(refused.kind, FailureKind::Upstream, "{foreign}");
        }
    }

    #[test]
    fn the_container_needs_an_id_and_an_add_path_and_finalizes_on_the_add_path_without_its_own() {
        let origin = "http://127.0.0.1:9/v1";
        let both = container(
            &json!({"media_id": "m", "add_path": "/a", "finalize_path": "/f"}),
            origin,
        )
        .unwrap();
        assert_eq!(
            (both.add_url.as_str(), both.finalize_url.as_str()),
            ("http://127.0.0.1:9/a", "http://127.0.0.1:9/f")
        );
        let one = container(&json!({"media_id": "m", "add_path": "/a"}), origin).unwrap();
        assert_eq!(one.finalize_url, "http://127.0.0.1:9/a");
        assert_eq!(
            container(&json!({"media_id": "m"}), origin)
                .unwrap_err()
                .kind,
            FailureKind::Upstream
        );
        assert_eq!(
            container(&json!({"add_path": "/a"}), origin)
                .unwrap_err()
                .kind,
            FailureKind::Upstream
        );
    }

    #[test]
    fn ids_stay_one_path_segment() {
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(segment("3b0fbace-04b4"), "3b0fbace-04b4");
    }

    #[test]
    fn the_multipart_body_has_the_fields_then_the_file() {
        let body = multipart(
            "b",
            &[("action", "ADD"), ("part_number", "2")],
            Some(&Bytes::from_static(b"\x00\r\n--b")),
        );
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.starts_with(
                "--b\r\nContent-Disposition: form-data; name=\"action\"\r\n\r\nADD\r\n--b\r\n"
            ),
            "{text}"
        );
        assert!(text.contains("name=\"part_number\"\r\n\r\n2\r\n"), "{text}");
        assert!(text.contains("name=\"file\"; filename=\"media.enc\"\r\nContent-Type: application/octet-stream\r\n\r\n\u{0}\r\n--b\r\n--b--\r\n"), "{text}");
        assert_eq!(multipart("b", &[("action", "FINALIZE")], None), Bytes::from_static(b"--b\r\nContent-Disposition: form-data; name=\"action\"\r\n\r\nFINALIZE\r\n--b--\r\n"));
    }

    /// The streamed encryption equals one-shot AES-256-CBC with PKCS#7 (what `openssl enc` makes)
    /// at every length around the block and part sizes, split into parts of the given size.
    #[tokio::test]
    async fn streamed_parts_decrypt_to_the_media_at_every_boundary() {
        let part = 64;
        for length in [1usize, 15, 16, 17, 63, 64, 65, 128, 200] {
            let plain: Vec<u8> = (0..length).map(|i| (i * 7 % 256) as u8).collect();
            let (key, iv) = ([7u8; KEY_BYTES], [9u8; IV_BYTES]);
            let parts = encrypt_in_parts(&plain, key, iv, part).await;
            assert!(
                parts.iter().all(|p| p.len() <= part),
                "{length}: parts of at most {part} bytes"
            );
            assert!(
                parts[..parts.len() - 1].iter().all(|p| p.len() == part),
                "{length}: only the last part is short"
            );
            let mut whole: Vec<u8> = parts.concat();
            assert_eq!(
                whole.len(),
                (length / 16 + 1) * 16,
                "{length}: PKCS#7 adds 1 to 16 bytes"
            );
            let decrypting =
                PaddedBlockDecryptingKey::cbc_pkcs7(UnboundCipherKey::new(&AES_256, &key).unwrap())
                    .unwrap();
            let decrypted = decrypting
                .decrypt(&mut whole, DecryptionContext::Iv128(FixedLength::from(iv)))
                .unwrap();
            assert_eq!(decrypted, plain.as_slice(), "{length}");
        }
    }

    /// The tool's encryption loop, its parts collected instead of sent.
    async fn encrypt_in_parts(
        plain: &[u8],
        key: [u8; KEY_BYTES],
        iv: [u8; IV_BYTES],
        part_bytes: usize,
    ) -> Vec<Vec<u8>> {
        let input = crate::kit::MediaInput::Inline {
            bytes: Bytes::copy_from_slice(plain),
            content_type: "image/png".into(),
        };
        let mut stream = Media::default().open(input, IMAGE_TYPES).await.unwrap();
        let mut parts = Vec::new();
        let count =
            super::encrypt_in_parts(&mut stream, key, iv, part_bytes, |number, part: Bytes| {
                assert_eq!(number, parts.len() as u64 + 1, "numbered from 1, in order");
                parts.push(part.to_vec());
                std::future::ready(Ok(()))
            })
            .await
            .unwrap();
        assert_eq!(count, parts.len() as u64);
        parts
    }
}
