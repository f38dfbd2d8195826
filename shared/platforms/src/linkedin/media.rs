//! Uploads to the URLs LinkedIn returns: an image (Images API, one PUT) and a video (Videos API:
//! initializeUpload → one PUT per byte range → finalizeUpload with the parts' ETags → status
//! polls). Media is read part by part from [`MediaStream`], so a video never sits whole in memory.

use std::sync::Arc;

use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Map, Value, json};
use squaremcp_core::tool::{FailureKind, ToolFailure};

use super::credential::MemberToken;
use super::dialect::{self, LinkedinDialect};
use crate::kit::{HttpApi, MediaStream, Progress, PublishWait, UpstreamRequest, Waited};

pub(super) type Api = Arc<HttpApi<LinkedinDialect>>;

/// The image types the Images API takes.
pub(super) const IMAGE_TYPES: [&str; 3] = ["image/jpeg", "image/png", "image/gif"];

/// `urn:li:person:{sub}`: from the stored `account.id`, else from `/v2/userinfo`.
pub(super) async fn member_urn(api: &Api, token: &MemberToken) -> Result<String, ToolFailure> {
    if let Some(id) = &token.member_id {
        return Ok(format!("urn:li:person:{id}"));
    }
    let request = UpstreamRequest {
        path: "/v2/userinfo".to_owned(),
        ..UpstreamRequest::default()
    };
    let profile = api
        .send(token, &Method::GET, dialect::USERINFO, &request, true)
        .await?;
    let sub = profile
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let sub = sub.ok_or_else(|| unexpected(dialect::USERINFO, "no `sub`"))?;
    Ok(format!("urn:li:person:{sub}"))
}

fn unexpected(operation: &str, what: &str) -> ToolFailure {
    ToolFailure::new(
        FailureKind::Upstream,
        format!("LinkedIn answered {operation} with an unexpected result ({what})."),
    )
}

fn post(path: &str, body: Value) -> UpstreamRequest {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let query = query
        .split_once('=')
        .map(|(_, action)| vec![("action", action.to_owned())])
        .unwrap_or_default();
    let body = match body {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    UpstreamRequest {
        path: path.to_owned(),
        query,
        body,
        headers: Vec::new(),
    }
}

/// Whether the bearer token may go with a PUT to `url`: only to LinkedIn's own hosts (or the
/// operator's override of the API origin), never to a host an answer named elsewhere.
fn is_linkedin_host(api: &Api, url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let origin_host = reqwest::Url::parse(api.origin())
        .ok()
        .and_then(|o| o.host_str().map(str::to_owned));
    host == "www.linkedin.com"
        || host.ends_with(".linkedin.com")
        || origin_host.as_deref() == Some(host)
}

/// The largest image this gateway uploads: the Images API takes one PUT of the whole file, which
/// is held in memory for it (videos go in parts).
pub(super) const IMAGE_MAX_BYTES: u64 = 10 * 1024 * 1024;

/// Uploads an image (at most [`IMAGE_MAX_BYTES`]) and returns its `urn:li:image:…`.
pub(super) async fn upload_image(
    api: &Api,
    token: &MemberToken,
    owner: &str,
    mut stream: MediaStream,
) -> Result<String, ToolFailure> {
    if stream.len() > IMAGE_MAX_BYTES {
        return Err(ToolFailure::invalid_arguments(format!(
            "The image is {} bytes; this gateway uploads images of up to {IMAGE_MAX_BYTES} bytes (10 MB) to LinkedIn.",
            stream.len()
        )));
    }
    let init = post(
        "/rest/images?action=initializeUpload",
        json!({"initializeUploadRequest": {"owner": owner}}),
    );
    let answer = api
        .send(
            token,
            &Method::POST,
            dialect::INITIALIZE_IMAGE,
            &init,
            false,
        )
        .await?;
    let value = answer
        .get("value")
        .ok_or_else(|| unexpected(dialect::INITIALIZE_IMAGE, "no `value`"))?;
    let image = value
        .get("image")
        .and_then(Value::as_str)
        .ok_or_else(|| unexpected(dialect::INITIALIZE_IMAGE, "no `image`"))?;
    let url = upload_url(value.get("uploadUrl"), dialect::INITIALIZE_IMAGE)?;
    // The Images API takes one PUT of the whole file; the cap above bounds it.
    let size = usize::try_from(stream.len())
        .map_err(|_| unexpected(dialect::UPLOAD_IMAGE, "too large"))?;
    let bytes = stream.next_part(size).await?.unwrap_or_default();
    let authorize = is_linkedin_host(api, &url);
    let builder = api
        .client()
        .put(url)
        .header(CONTENT_TYPE, stream.content_type().to_owned())
        .body(bytes);
    let answer = api
        .send_raw(token, builder, dialect::UPLOAD_IMAGE, authorize)
        .await?;
    if !answer.is_success() {
        api.interpret(token, dialect::UPLOAD_IMAGE, &answer)?;
    }
    Ok(image.to_owned())
}

fn upload_url(value: Option<&Value>, operation: &str) -> Result<reqwest::Url, ToolFailure> {
    let text = value
        .and_then(Value::as_str)
        .ok_or_else(|| unexpected(operation, "no `uploadUrl`"))?;
    let url = reqwest::Url::parse(text)
        .map_err(|_| unexpected(operation, "an `uploadUrl` that is not a URL"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(unexpected(operation, "an `uploadUrl` that is not http(s)"));
    }
    Ok(url)
}

/// A video uploaded and finalized; its processing may still be running.
pub(super) struct UploadedVideo {
    pub(super) urn: String,
    pub(super) parts: usize,
    pub(super) bytes: u64,
}

/// initializeUpload → PUT each part → finalizeUpload. The part ranges are LinkedIn's
/// (`firstByte`/`lastByte`, 4 MiB each today), read in order from `stream`.
pub(super) async fn upload_video(
    api: &Api,
    token: &MemberToken,
    owner: &str,
    mut stream: MediaStream,
) -> Result<UploadedVideo, ToolFailure> {
    let length = stream.len();
    let init = post(
        "/rest/videos?action=initializeUpload",
        json!({"initializeUploadRequest": {"owner": owner, "fileSizeBytes": length, "uploadCaptions": false, "uploadThumbnail": false}}),
    );
    let answer = api
        .send(
            token,
            &Method::POST,
            dialect::INITIALIZE_VIDEO,
            &init,
            false,
        )
        .await?;
    let value = answer
        .get("value")
        .ok_or_else(|| unexpected(dialect::INITIALIZE_VIDEO, "no `value`"))?;
    let urn = value
        .get("video")
        .and_then(Value::as_str)
        .ok_or_else(|| unexpected(dialect::INITIALIZE_VIDEO, "no `video`"))?
        .to_owned();
    let upload_token = value
        .get("uploadToken")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let instructions = value
        .get("uploadInstructions")
        .and_then(Value::as_array)
        .filter(|i| !i.is_empty());
    let instructions = instructions
        .ok_or_else(|| unexpected(dialect::INITIALIZE_VIDEO, "no `uploadInstructions`"))?;

    let mut expected_first = 0u64;
    let mut etags = Vec::with_capacity(instructions.len());
    for instruction in instructions {
        let byte = |key: &str| instruction.get(key).and_then(Value::as_u64);
        let (Some(first), Some(last)) = (byte("firstByte"), byte("lastByte")) else {
            return Err(unexpected(
                dialect::INITIALIZE_VIDEO,
                "an instruction without its byte range",
            ));
        };
        // The ranges must tile the file in order: that is what lets the parts be streamed.
        if first != expected_first || last < first || last >= length {
            return Err(unexpected(
                dialect::INITIALIZE_VIDEO,
                "byte ranges that do not cover the file in order",
            ));
        }
        expected_first = last + 1;
        let url = upload_url(instruction.get("uploadUrl"), dialect::INITIALIZE_VIDEO)?;
        let size = usize::try_from(last - first + 1)
            .map_err(|_| unexpected(dialect::INITIALIZE_VIDEO, "a part too large"))?;
        let part = stream
            .next_part(size)
            .await?
            .ok_or_else(|| unexpected(dialect::UPLOAD_VIDEO_PART, "the file ended early"))?;
        // Signed URLs: LinkedIn's example sends no Authorization header with the parts.
        let builder = api
            .client()
            .put(url)
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(part);
        let answer = api
            .send_raw(token, builder, dialect::UPLOAD_VIDEO_PART, false)
            .await?;
        if !answer.is_success() {
            api.interpret(token, dialect::UPLOAD_VIDEO_PART, &answer)?;
        }
        let etag = answer
            .header("etag")
            .filter(|e| !e.is_empty())
            .ok_or_else(|| unexpected(dialect::UPLOAD_VIDEO_PART, "no ETag"))?;
        etags.push(etag.to_owned());
    }
    if expected_first != length {
        return Err(unexpected(
            dialect::INITIALIZE_VIDEO,
            "byte ranges that do not cover the whole file",
        ));
    }
    let finalize = post(
        "/rest/videos?action=finalizeUpload",
        json!({"finalizeUploadRequest": {"video": urn, "uploadToken": upload_token, "uploadedPartIds": etags}}),
    );
    api.send(
        token,
        &Method::POST,
        dialect::FINALIZE_VIDEO,
        &finalize,
        false,
    )
    .await?;
    Ok(UploadedVideo {
        urn,
        parts: etags.len(),
        bytes: length,
    })
}

/// `GET /rest/videos/{urn}`: the video's `status` (`AVAILABLE`, `PROCESSING`, …).
pub(super) async fn video_status(
    api: &Api,
    token: &MemberToken,
    urn: &str,
) -> Result<String, ToolFailure> {
    let request = UpstreamRequest {
        path: format!("/rest/videos/{}", encode(urn)),
        ..UpstreamRequest::default()
    };
    let video = api
        .send(token, &Method::GET, dialect::GET_VIDEO, &request, true)
        .await?;
    video
        .get("status")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| unexpected(dialect::GET_VIDEO, "no `status`"))
}

/// Polls the status within `wait`: `AVAILABLE` is done, `PROCESSING_FAILED` a failure.
pub(super) async fn wait_available(
    api: &Api,
    token: &MemberToken,
    urn: &str,
    wait: &PublishWait,
) -> Result<Waited<()>, ToolFailure> {
    wait.wait(|| async {
        match video_status(api, token, urn).await?.as_str() {
            "AVAILABLE" => Ok(Progress::Done(())),
            "PROCESSING_FAILED" => Err(ToolFailure::new(
                FailureKind::Upstream,
                format!("LinkedIn could not process video {urn} (PROCESSING_FAILED). Check that it is an MP4 of 3 seconds to 30 minutes and 75 KB to 500 MB, and upload it again."),
            )),
            other => Ok(Progress::Pending(other.to_owned())),
        }
    })
    .await
}

/// Percent-encodes a URN for a path segment (`urn%3Ali%3Avideo%3A…`).
pub(super) fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
