//! `upload_video`: X's v2 chunked media upload. `POST /2/media/upload/initialize` (JSON: type,
//! size, category) → `POST /2/media/upload/{id}/append` per chunk (multipart/form-data with
//! `segment_index` and `media`; the chunks are read from the source one at a time, so a large
//! video never sits whole in memory) → `POST /2/media/upload/{id}/finalize` → `GET
//! /2/media/upload?command=STATUS&media_id=…` until `processing_info.state` is `succeeded` or
//! `failed`, within the operator's wait budget ([`PublishWait`]). Called with `media_id` alone, it
//! only checks that status (after a budget ran out).
//!
//! The multipart body is built here by hand: the workspace's reqwest has no `multipart` feature,
//! and one text field and one binary field need nothing more.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use reqwest::Method;
use serde_json::{Map, Value, json};
use squaremcp_core::tool::{Annotations, FailureKind, Tool, ToolDefinition, ToolFailure, ToolOutput};
use squaremcp_core::{Platform, Secret};

use super::credential::UserToken;
use super::dialect::{self, XDialect};
use super::tools::BILLING;
use crate::kit::media::media_args;
use crate::kit::{Arg, HttpApi, Media, Progress, PublishWait, ToolSpec, UpstreamRequest, Waited};

/// Bytes per APPEND: X takes segments of up to 5 MB; 4 MiB leaves room for the multipart framing.
pub const CHUNK_BYTES: usize = 4 * 1024 * 1024;
/// X numbers segments 0 to 999.
const MAX_SEGMENTS: u64 = 1000;
/// The video types X's initialize accepts for `tweet_video`/`amplify_video`.
const VIDEO_TYPES: &[&str] = &["video/mp4", "video/quicktime", "video/webm"];

pub(super) struct UploadVideo {
    definition: ToolDefinition,
    api: Arc<HttpApi<XDialect>>,
    media: Media,
    wait: PublishWait,
}

impl UploadVideo {
    pub(super) fn new(api: Arc<HttpApi<XDialect>>, media: Media, wait: PublishWait) -> Self {
        let mut spec = ToolSpec::new(
            "upload_video",
            "X: upload a video",
            format!(
                "Uploads a video (MP4 with H.264/AAC is safest; up to 512 MB) in 4 MB chunks and waits a bounded time for X to \
                 process it. Returns {{media_id, state, ready}}: once `ready` is true pass media_id to twitter_create_tweet's \
                 media_ids. If X is still processing when the wait ends, `ready` is false: call this tool again with only \
                 `media_id` to check the status (no upload). Requests: 1 initialize + 1 per 4 MB chunk + 1 finalize + 1 per \
                 status check, counted in the answer's `x_requests`; {BILLING}."
            ),
            Annotations::WRITE,
        );
        for arg in media_args("the video") {
            spec = spec.arg(arg);
        }
        let mut spec = spec
            .arg(Arg::new("media_category", json!({"type": "string", "enum": ["tweet_video", "amplify_video"],
                "description": "tweet_video (default) for posts; amplify_video for Amplify (ads) videos."})).logged())
            .arg(Arg::new("media_id", json!({"type": "string", "minLength": 1, "maxLength": 19,
                "description": "Only check the processing status of a video uploaded earlier (its media_id); give no media then."})).logged())
            .output(json!({"type": "object", "properties": {
                "media_id": {"type": "string"}, "media_key": {"type": "string"}, "state": {"type": "string"},
                "ready": {"type": "boolean"}, "check_after_secs": {"type": "integer"}, "next_step": {"type": "string"},
                "x_requests": {"type": "integer", "description": "The requests this call made to X (each one billed)."}
            }, "required": ["media_id", "state", "ready"]}));
        Self { definition: spec.take_definition(Platform::Twitter), api, media, wait }
    }

    async fn upload(&self, token: &UserToken, arguments: &Map<String, Value>, input: crate::kit::MediaInput, requests: &AtomicU64) -> Result<Value, ToolFailure> {
        let mut stream = self.media.open(input, VIDEO_TYPES).await?;
        if stream.part_count(CHUNK_BYTES as u64) > MAX_SEGMENTS {
            return Err(ToolFailure::invalid_arguments("The video needs more than X's 1000 upload segments; it is too large for X."));
        }
        let category = arguments.get("media_category").and_then(Value::as_str).unwrap_or("tweet_video");
        let mut body = Map::new();
        body.insert("media_type".to_owned(), json!(stream.content_type()));
        body.insert("total_bytes".to_owned(), json!(stream.len()));
        body.insert("media_category".to_owned(), json!(category));
        let initialized = self
            .api
            .send(token, &Method::POST, dialect::MEDIA_INITIALIZE, &UpstreamRequest { path: "/media/upload/initialize".to_owned(), body, ..Default::default() }, false)
            .await?;
        requests.fetch_add(1, Ordering::Relaxed);
        let id = id_of(&initialized, dialect::MEDIA_INITIALIZE)?;
        let encoded = percent_encode(&id);

        let mut segment = 0u64;
        while let Some(chunk) = stream.next_part(CHUNK_BYTES).await? {
            let boundary = format!("squaremcp-{}-{segment}", squaremcp_core::random::hex_id::<12>());
            let builder = self
                .api
                .client()
                .post(format!("{}/media/upload/{encoded}/append", self.api.origin()))
                .header(reqwest::header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
                .body(multipart(&boundary, segment, &chunk));
            let answer = self.api.send_raw(token, builder, dialect::MEDIA_APPEND, true).await?;
            requests.fetch_add(1, Ordering::Relaxed);
            if !answer.is_success() {
                return Err(self.api.interpret(token, dialect::MEDIA_APPEND, &answer).err().unwrap_or_else(|| {
                    ToolFailure::new(FailureKind::Upstream, format!("X refused {} with HTTP {}.", dialect::MEDIA_APPEND, answer.status))
                }));
            }
            segment += 1;
        }

        let finalized = self
            .api
            .send(token, &Method::POST, dialect::MEDIA_FINALIZE, &UpstreamRequest { path: format!("/media/upload/{encoded}/finalize"), ..Default::default() }, false)
            .await?;
        requests.fetch_add(1, Ordering::Relaxed);
        let data = finalized.get("data").cloned().unwrap_or(Value::Null);
        match read_state(&data) {
            // No processing_info: the media is ready at once.
            None => Ok(ready(&id, &data)),
            Some(Ok(Progress::Done(()))) => Ok(ready(&id, &data)),
            Some(Err(failure)) => Err(failure),
            Some(Ok(Progress::Pending(_))) => self.poll(token, &id, requests).await,
        }
    }

    /// Checks `STATUS` until done, failed, or the budget ends.
    async fn poll(&self, token: &UserToken, id: &str, requests: &AtomicU64) -> Result<Value, ToolFailure> {
        let cell = std::sync::Mutex::new(Value::Null);
        let last = &cell;
        let outcome = self
            .wait
            .wait(|| async move {
                let request = UpstreamRequest {
                    path: "/media/upload".to_owned(),
                    query: vec![("command", "STATUS".to_owned()), ("media_id", id.to_owned())],
                    ..Default::default()
                };
                requests.fetch_add(1, Ordering::Relaxed);
                let answer = self.api.send(token, &Method::GET, dialect::MEDIA_STATUS, &request, true).await?;
                let data = answer.get("data").cloned().unwrap_or(Value::Null);
                let progress = read_state(&data).unwrap_or(Ok(Progress::Done(())));
                if let Ok(mut slot) = last.lock() {
                    *slot = data;
                }
                progress
            })
            .await?;
        let data = cell.lock().map(|d| d.clone()).unwrap_or(Value::Null);
        Ok(match outcome {
            Waited::Done(()) => ready(id, &data),
            Waited::StillRunning { state, waited } => {
                let after = data.pointer("/processing_info/check_after_secs").and_then(Value::as_u64);
                let mut answer = json!({
                    "media_id": id,
                    "state": state,
                    "ready": false,
                    "next_step": format!(
                        "X was still processing the video after {} seconds. Call twitter_upload_video with only media_id \"{id}\" {} to check again; \
                         post it with twitter_create_tweet once ready is true.",
                        waited.as_secs(),
                        after.map_or(String::new(), |s| format!("in about {s} seconds")),
                    ),
                });
                if let Some(after) = after {
                    answer["check_after_secs"] = json!(after);
                }
                copy_key(&mut answer, &data);
                answer
            }
        })
    }
}

#[async_trait]
impl Tool for UploadVideo {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, credential: &Secret<Value>, arguments: Map<String, Value>) -> Result<ToolOutput, ToolFailure> {
        let token = self.api.credential(credential)?;
        let input = self.media.input(&arguments)?;
        let requests = AtomicU64::new(0);
        let media_id = arguments.get("media_id").and_then(Value::as_str).map(str::trim).filter(|id| !id.is_empty());
        let structured = match (input, media_id) {
            (Some(_), Some(_)) => return Err(ToolFailure::invalid_arguments("Give media_url or media_data to upload, or media_id alone to check a status, not both.")),
            (None, None) => return Err(ToolFailure::invalid_arguments("Give the video as media_url or media_data, or media_id alone to check an earlier upload.")),
            (None, Some(id)) => {
                if !id.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ToolFailure::invalid_arguments("`media_id` is X's numeric media id (digits only)."));
                }
                self.poll(&token, id, &requests).await?
            }
            (Some(input), None) => self.upload(&token, &arguments, input, &requests).await?,
        };
        let mut structured = structured;
        // What X bills: the requests this call made (a retried status check counts once).
        structured["x_requests"] = json!(requests.load(Ordering::Relaxed));
        Ok(ToolOutput { structured })
    }
}

/// `processing_info.state`: `None` without processing_info, pending/in_progress → `Pending`,
/// succeeded → `Done`, failed → the failure with X's reason.
fn read_state(data: &Value) -> Option<Result<Progress<()>, ToolFailure>> {
    let info = data.get("processing_info")?;
    let state = info.get("state").and_then(Value::as_str).unwrap_or("pending");
    Some(match state {
        "succeeded" => Ok(Progress::Done(())),
        "failed" => {
            let reason = info.pointer("/error/message").or_else(|| info.pointer("/error/name")).and_then(Value::as_str).unwrap_or("no reason given");
            let reason: String = reason.chars().take(300).collect();
            Err(ToolFailure::new(FailureKind::InvalidInput, format!("X could not process the video: {reason}. Check its format (MP4, H.264/AAC) and upload it again.")))
        }
        other => Ok(Progress::Pending(other.to_owned())),
    })
}

fn ready(id: &str, data: &Value) -> Value {
    let mut answer = json!({"media_id": id, "state": "succeeded", "ready": true,
        "next_step": format!("Post it with twitter_create_tweet and media_ids [\"{id}\"].")});
    copy_key(&mut answer, data);
    answer
}

fn copy_key(answer: &mut Value, data: &Value) {
    if let Some(key) = data.get("media_key").and_then(Value::as_str) {
        answer["media_key"] = json!(key);
    }
}

fn id_of(result: &Value, operation: &str) -> Result<String, ToolFailure> {
    let id = result.pointer("/data/id").or_else(|| result.pointer("/data/media_id"));
    match id {
        Some(Value::String(id)) if !id.is_empty() => Ok(id.clone()),
        Some(Value::Number(id)) => Ok(id.to_string()),
        _ => Err(ToolFailure::new(FailureKind::Upstream, format!("X answered {operation} without a media id."))),
    }
}

/// `multipart/form-data` with `segment_index` and the chunk as `media`.
fn multipart(boundary: &str, segment: u64, chunk: &Bytes) -> Bytes {
    let mut body = BytesMut::with_capacity(chunk.len() + 512);
    body.put_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"segment_index\"\r\n\r\n{segment}\r\n").as_bytes());
    body.put_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"media\"; filename=\"blob\"\r\nContent-Type: application/octet-stream\r\n\r\n")
            .as_bytes(),
    );
    body.put_slice(chunk);
    body.put_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body.freeze()
}

/// Digits only in practice; encoded anyway so that an id can never add a path segment.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_multipart_body_frames_the_index_and_the_bytes() {
        let body = multipart("b0", 3, &Bytes::from_static(b"\x00\x01abc"));
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with("--b0\r\nContent-Disposition: form-data; name=\"segment_index\"\r\n\r\n3\r\n--b0\r\n"), "{text}");
        assert!(body.ends_with(b"\r\n\x00\x01abc\r\n--b0--\r\n"));
    }

    #[test]
    fn states_read_as_progress() {
        assert!(read_state(&json!({"id": "1"})).is_none());
        assert_eq!(read_state(&json!({"processing_info": {"state": "in_progress"}})), Some(Ok(Progress::Pending("in_progress".to_owned()))));
        assert_eq!(read_state(&json!({"processing_info": {"state": "succeeded"}})), Some(Ok(Progress::Done(()))));
        let failed = read_state(&json!({"processing_info": {"state": "failed", "error": {"message": "Unsupported codec"}}})).expect("a state");
        assert!(failed.expect_err("failed").message.contains("Unsupported codec"));
    }
}
