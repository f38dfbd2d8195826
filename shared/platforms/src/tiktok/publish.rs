//! `tiktok_create_video`: a direct post (`/post/publish/video/init/`, scope `video.publish`) or an
//! upload to the creator's inbox (`/post/publish/inbox/video/init/`, `video.upload`), from a file
//! the gateway uploads (`FILE_UPLOAD`) or a URL TikTok pulls (`PULL_FROM_URL`).
//!
//! Before a direct post the creator info is read and the chosen `privacy_level` checked against
//! its options (TikTok's rules: the person picks it; unaudited apps only get `SELF_ONLY`), so a
//! refused level costs no upload. A file is checked (type, size) before the init, then sent in
//! TikTok's chunks, each one read from [`crate::kit::media`] as it goes (never the whole file in
//! memory), with `Content-Range`. Then the status is polled within the operator's budget
//! ([`crate::kit::poll`]); when it runs out the answer is the `publish_id` and the last state.

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE};
use serde_json::{Map, Value, json};
use squaremcp_core::tool::{
    Annotations, FailureKind, Tool, ToolDefinition, ToolFailure, ToolOutput,
};
use squaremcp_core::{Platform, Secret};

use super::DEFAULT_ORIGIN;
use super::dialect::{self, TiktokDialect};
use crate::kit::media::media_args;
use crate::kit::spec::{flag, integer_between, text};
use crate::kit::{
    Arg, HttpApi, HttpToolSpec, Media, MediaInput, PlatformContext, Progress, PublishWait,
    ToolSpec, UpstreamRequest, Waited,
};

/// The chunk the gateway sends: TikTok's own example size, between the 5 MB minimum and the 64 MB
/// maximum, and small enough to hold one (or, for the last, under two) in memory at a time.
pub const CHUNK_SIZE: u64 = 10_000_000;
/// TikTok's smallest chunk; smaller files go whole as one chunk. 5 MiB satisfies 5 MB either way.
pub const MIN_CHUNK: u64 = 5 * 1024 * 1024;
/// TikTok's largest chunk (the last one may reach 128 MB).
pub const MAX_CHUNK: u64 = 64_000_000;
const _: () = assert!(CHUNK_SIZE >= MIN_CHUNK && CHUNK_SIZE <= MAX_CHUNK);
/// TikTok accepts at most 1000 chunks.
pub const MAX_CHUNKS: u64 = 1000;
/// The video types TikTok accepts (MP4, MOV, WebM).
const VIDEO_TYPES: &[&str] = &["video/mp4", "video/quicktime", "video/webm"];
pub const PRIVACY_LEVELS: [&str; 4] = [
    "SELF_ONLY",
    "MUTUAL_FOLLOW_FRIENDS",
    "FOLLOWER_OF_CREATOR",
    "PUBLIC_TO_EVERYONE",
];

/// `chunk_size` and `total_chunk_count` for a file of `size` bytes, by TikTok's media transfer
/// rules: under the chunk size the file is one chunk of its own size; otherwise
/// `total_chunk_count = floor(video_size / chunk_size)` and the last chunk takes the remainder
/// (so it is under two chunks, far below TikTok's 128 MB cap for it).
pub fn chunk_plan(size: u64) -> Result<(u64, u64), ToolFailure> {
    if size == 0 {
        return Err(ToolFailure::new(
            FailureKind::InvalidInput,
            "The video is empty.",
        ));
    }
    if size < CHUNK_SIZE {
        return Ok((size, 1));
    }
    let count = size / CHUNK_SIZE;
    if count > MAX_CHUNKS {
        return Err(ToolFailure::new(
            FailureKind::InvalidInput,
            "The video is larger than TikTok accepts through the API (1000 chunks).",
        ));
    }
    Ok((CHUNK_SIZE, count))
}

pub(super) struct CreateVideo {
    definition: ToolDefinition,
    api: Arc<HttpApi<TiktokDialect>>,
    media: Media,
    wait: PublishWait,
    creator_info: HttpToolSpec,
    status: HttpToolSpec,
    /// Where upload URLs may point: TikTok's hosts, or the operator's override host.
    upload_hosts: UploadHosts,
}

#[derive(Clone, Debug)]
enum UploadHosts {
    /// The real API: `*.tiktokapis.com` over https (`open-upload.tiktokapis.com`).
    Tiktok,
    /// An override (a mock, a proxy): its own host only.
    Override(String),
}

impl UploadHosts {
    fn of(origin: &str) -> Self {
        if origin.trim_end_matches('/') == DEFAULT_ORIGIN {
            return Self::Tiktok;
        }
        let host = reqwest::Url::parse(origin)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        Self::Override(host)
    }

    fn allows(&self, url: &reqwest::Url) -> bool {
        let host = url.host_str().unwrap_or_default();
        match self {
            Self::Tiktok => {
                url.scheme() == "https"
                    && (host == "tiktokapis.com" || host.ends_with(".tiktokapis.com"))
            }
            Self::Override(expected) => !expected.is_empty() && host == expected,
        }
    }
}

/// Where the video comes from.
enum Source {
    File(MediaInput),
    Pull(String),
}

impl CreateVideo {
    pub(super) fn new(
        api: Arc<HttpApi<TiktokDialect>>,
        context: &PlatformContext,
        creator_info: HttpToolSpec,
        status: HttpToolSpec,
    ) -> Self {
        Self {
            definition: spec().take_definition(Platform::Tiktok),
            upload_hosts: UploadHosts::of(api.origin()),
            api,
            media: context.media.clone(),
            wait: context.publish_wait,
            creator_info,
            status,
        }
    }

    fn source(&self, arguments: &Map<String, Value>) -> Result<Source, ToolFailure> {
        let video_url = arguments
            .get("video_url")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|u| !u.is_empty());
        match (video_url, self.media.input(arguments)?) {
            (Some(_), Some(_)) => Err(invalid(
                "Give either video_url (TikTok pulls it) or media_url/media_data (the gateway uploads it), not both.",
            )),
            (None, None) => Err(invalid(
                "Give the video: media_url or media_data (the gateway uploads it), or video_url on a domain your TikTok app verified.",
            )),
            (None, Some(input)) => Ok(Source::File(input)),
            (Some(url), None) => {
                let parsed =
                    reqwest::Url::parse(url).map_err(|_| invalid("video_url is not a URL."))?;
                if parsed.scheme() != "https" {
                    return Err(invalid(
                        "video_url must be an https:// URL on a domain your TikTok app verified.",
                    ));
                }
                Ok(Source::Pull(url.to_owned()))
            }
        }
    }

    /// Refuses a level the creator cannot use, with the ones they can.
    async fn check_privacy(
        &self,
        token: &super::credential::UserToken,
        level: &str,
    ) -> Result<(), ToolFailure> {
        let request = self.creator_info.request(&Map::new())?;
        let info = self
            .api
            .send(token, &Method::POST, dialect::CREATOR_INFO, &request, true)
            .await?;
        let options: Vec<&str> = info
            .get("privacy_level_options")
            .and_then(Value::as_array)
            .map(|o| o.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if options.contains(&level) {
            return Ok(());
        }
        let listed = if options.is_empty() {
            "none".to_owned()
        } else {
            options.join(", ")
        };
        let mut message = format!(
            "This TikTok account cannot post with privacy_level {level}; its options are: {listed}. Nothing was uploaded."
        );
        if options == ["SELF_ONLY"] {
            message.push_str(
                " (Apps TikTok has not audited may only post SELF_ONLY, to private accounts.)",
            );
        }
        Err(invalid(message))
    }

    async fn upload(
        &self,
        token: &super::credential::UserToken,
        upload_url: &str,
        mut stream: crate::kit::MediaStream,
        chunk_size: u64,
        count: u64,
    ) -> Result<(), ToolFailure> {
        let url = reqwest::Url::parse(upload_url)
            .ok()
            .filter(|url| self.upload_hosts.allows(url))
            .ok_or_else(|| {
                ToolFailure::new(
                    FailureKind::Upstream,
                    "TikTok returned an upload_url the gateway does not send files to.",
                )
            })?;
        let total = stream.len();
        let content_type = stream.content_type().to_owned();
        let mut first = 0u64;
        for index in 0..count {
            // The last chunk takes the remainder (floor rule).
            let size = if index + 1 == count {
                total - first
            } else {
                chunk_size
            };
            let part_size = usize::try_from(size)
                .map_err(|_| invalid("The video is too large for this gateway."))?;
            let part = stream
                .next_part(part_size)
                .await?
                .ok_or_else(|| invalid("The video ended before its announced size."))?;
            let last = first + part.len() as u64 - 1;
            let builder = self
                .api
                .client()
                .put(url.clone())
                .header(CONTENT_TYPE, &content_type)
                .header(CONTENT_RANGE, format!("bytes {first}-{last}/{total}"))
                .body(part);
            // The upload URL is signed: the access token does not go with it.
            let answer = self
                .api
                .send_raw(token, builder, dialect::UPLOAD_CHUNK, false)
                .await?;
            if !answer.is_success() {
                self.api.interpret(token, dialect::UPLOAD_CHUNK, &answer)?;
                return Err(ToolFailure::new(
                    FailureKind::Upstream,
                    format!(
                        "TikTok refused chunk {} of {count} (HTTP {}).",
                        index + 1,
                        answer.status
                    ),
                ));
            }
            first = last + 1;
        }
        Ok(())
    }

    async fn poll(
        &self,
        token: &super::credential::UserToken,
        publish_id: &str,
        done: &'static [&'static str],
    ) -> Result<Waited<Value>, ToolFailure> {
        let mut arguments = Map::new();
        arguments.insert("publish_id".to_owned(), json!(publish_id));
        let request = self.status.request(&arguments)?;
        self.wait
            .wait(|| {
                let request = request.clone();
                async move {
                    let status = self
                        .api
                        .send(token, &Method::POST, dialect::GET_STATUS, &request, true)
                        .await?;
                    let state = status
                        .get("status")
                        .and_then(Value::as_str)
                        .unwrap_or("UNKNOWN")
                        .to_owned();
                    if state == "FAILED" {
                        return Err(failed(
                            publish_id,
                            status
                                .get("fail_reason")
                                .and_then(Value::as_str)
                                .unwrap_or("unknown"),
                        ));
                    }
                    Ok(if done.contains(&state.as_str()) {
                        Progress::Done(status)
                    } else {
                        Progress::Pending(state)
                    })
                }
            })
            .await
    }
}

#[async_trait]
impl Tool for CreateVideo {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(
        &self,
        credential: &Secret<Value>,
        arguments: Map<String, Value>,
    ) -> Result<ToolOutput, ToolFailure> {
        let token = self.api.credential(credential)?;
        let inbox = arguments.get("mode").and_then(Value::as_str) == Some("inbox");
        let privacy = arguments.get("privacy_level").and_then(Value::as_str);
        let source = self.source(&arguments)?;
        let post_info = if inbox {
            if let Some(given) = POST_FIELDS
                .iter()
                .find(|field| arguments.contains_key(**field))
            {
                return Err(invalid(format!(
                    "{given} applies to direct posts only: an inbox upload is finished (caption, privacy) by the creator in the TikTok app."
                )));
            }
            None
        } else {
            let level = privacy.ok_or_else(|| {
                invalid("privacy_level is required for a direct post: ask the person which one (tiktok_get_creator_info lists their options).")
            })?;
            self.check_privacy(&token, level).await?;
            Some(post_info(&arguments))
        };

        let (source_info, file) = match source {
            Source::Pull(url) => (json!({"source": "PULL_FROM_URL", "video_url": url}), None),
            Source::File(input) => {
                let stream = self.media.open(input, VIDEO_TYPES).await?;
                let (chunk_size, count) = chunk_plan(stream.len())?;
                let info = json!({"source": "FILE_UPLOAD", "video_size": stream.len(), "chunk_size": chunk_size, "total_chunk_count": count});
                (info, Some((stream, chunk_size, count)))
            }
        };
        let mut body = Map::new();
        if let Some(post_info) = post_info {
            body.insert("post_info".to_owned(), post_info);
        }
        body.insert("source_info".to_owned(), source_info);
        let (path, operation) = if inbox {
            ("/post/publish/inbox/video/init/", dialect::INBOX_INIT)
        } else {
            ("/post/publish/video/init/", dialect::DIRECT_POST_INIT)
        };
        let request = UpstreamRequest {
            path: path.to_owned(),
            body,
            ..UpstreamRequest::default()
        };
        let init = self
            .api
            .send(&token, &Method::POST, operation, &request, false)
            .await?;
        let publish_id = init
            .get("publish_id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                ToolFailure::new(
                    FailureKind::Upstream,
                    format!("TikTok answered {operation} without a publish_id."),
                )
            })?
            .to_owned();
        if let Some((stream, chunk_size, count)) = file {
            let upload_url = init.get("upload_url").and_then(Value::as_str).ok_or_else(|| {
                ToolFailure::new(FailureKind::Upstream, format!("TikTok answered {operation} without an upload_url (publish_id {publish_id})."))
            })?;
            self.upload(&token, upload_url, stream, chunk_size, count)
                .await?;
        }

        let mode = if inbox { "inbox" } else { "direct_post" };
        let done: &'static [&'static str] = if inbox {
            &["SEND_TO_USER_INBOX", "PUBLISH_COMPLETE"]
        } else {
            &["PUBLISH_COMPLETE"]
        };
        let structured = match self.poll(&token, &publish_id, done).await? {
            Waited::Done(status) => {
                let mut output = json!({"publish_id": publish_id, "mode": mode, "done": true, "status": status["status"]});
                if let Some(ids) = status.get("publicaly_available_post_id") {
                    output["publicaly_available_post_id"] = ids.clone();
                }
                output["note"] = json!(if inbox {
                    "The video is in the creator's TikTok inbox: they finish and post it in the app."
                } else {
                    "Published. A public post goes through moderation, so its post id may come later: check with tiktok_get_video_status."
                });
                output
            }
            Waited::StillRunning { state, waited } => json!({
                "publish_id": publish_id, "mode": mode, "done": false, "status": state,
                "note": format!("TikTok is still processing the video after {} seconds. Check again with tiktok_get_video_status and this publish_id.", waited.as_secs())
            }),
        };
        Ok(ToolOutput { structured })
    }
}

/// The arguments that go in `post_info` (direct posts only).
const POST_FIELDS: [&str; 9] = [
    "privacy_level",
    "title",
    "disable_comment",
    "disable_duet",
    "disable_stitch",
    "video_cover_timestamp_ms",
    "brand_content_toggle",
    "brand_organic_toggle",
    "is_aigc",
];

fn post_info(arguments: &Map<String, Value>) -> Value {
    let info: Map<String, Value> = POST_FIELDS
        .iter()
        .filter_map(|field| {
            arguments
                .get(*field)
                .map(|value| ((*field).to_owned(), crate::kit::spec::normalized(value)))
        })
        .collect();
    Value::Object(info)
}

/// A `FAILED` status, by its `fail_reason`.
fn failed(publish_id: &str, reason: &str) -> ToolFailure {
    let kind = match reason {
        "auth_removed" => FailureKind::AuthRevoked,
        "spam_risk_too_many_posts" => FailureKind::QuotaExhausted,
        "internal" => FailureKind::UpstreamTransient,
        r if r.ends_with("_check_failed")
            || r == "video_pull_failed"
            || r == "file_format_check_failed" =>
        {
            FailureKind::InvalidInput
        }
        r if r.starts_with("spam_risk") => FailureKind::Forbidden,
        _ => FailureKind::Upstream,
    };
    let reason: String = reason.chars().take(100).collect();
    ToolFailure::new(
        kind,
        format!("TikTok could not publish the video (publish_id {publish_id}): {reason}."),
    )
}

fn invalid(message: impl Into<String>) -> ToolFailure {
    ToolFailure::new(FailureKind::InvalidInput, message)
}

fn spec() -> ToolSpec {
    let [media_url, media_data, media_type] = media_args("the video (MP4, MOV or WebM)");
    ToolSpec::new(
        "create_video",
        "TikTok: post a video",
        "Posts a video to the connected TikTok account (mode direct_post, scope video.publish) or sends it to the creator's \
         TikTok inbox to finish in the app (mode inbox, scope video.upload). Give the file as media_url or media_data (the \
         gateway uploads it in TikTok's chunks) or video_url (TikTok pulls it; only from domains the app verified). Before a \
         direct post, show the person tiktok_get_creator_info and let them pick privacy_level; it is checked against their \
         options and nothing is uploaded otherwise. Apps TikTok has not audited may only post SELF_ONLY to private accounts. \
         Returns publish_id and the status; when processing takes longer than the gateway waits, check again with \
         tiktok_get_video_status.",
        Annotations::WRITE,
    )
    .arg(Arg::new("mode", json!({"type": "string", "enum": ["direct_post", "inbox"], "description":
        "direct_post (default) publishes; inbox uploads a draft the creator finishes in the TikTok app."})).logged())
    .arg(Arg::new("privacy_level", json!({"type": "string", "enum": PRIVACY_LEVELS, "description":
        "Who may see the post (direct posts; required there): one of the creator's privacy_level_options, picked by the person."})).logged())
    .arg(Arg::new("title", text(2200, "The caption, with #hashtags and @mentions (direct posts).")))
    .arg(Arg::new("disable_comment", flag("True to turn comments off (direct posts).")).logged())
    .arg(Arg::new("disable_duet", flag("True to turn duets off (direct posts).")).logged())
    .arg(Arg::new("disable_stitch", flag("True to turn stitches off (direct posts).")).logged())
    .arg(Arg::new("video_cover_timestamp_ms", integer_between(0, 86_400_000, "The frame used as the cover, in milliseconds (direct posts).")).logged())
    .arg(Arg::new("brand_content_toggle", flag("True for paid partnership content promoting a third party (direct posts).")).logged())
    .arg(Arg::new("brand_organic_toggle", flag("True for content promoting the creator's own business (direct posts).")).logged())
    .arg(Arg::new("is_aigc", flag("True when the video is AI-generated (direct posts).")).logged())
    .arg(Arg::new("video_url", json!({"type": "string", "minLength": 1, "maxLength": 2048, "description":
        "An https URL TikTok pulls the video from (PULL_FROM_URL): only on a domain or URL prefix the app's owner verified with TikTok. Otherwise use media_url."})))
    .arg(media_url)
    .arg(media_data)
    .arg(media_type)
    .output(json!({
        "type": "object",
        "properties": {"publish_id": {"type": "string"}, "mode": {"type": "string"}, "done": {"type": "boolean"},
            "status": {"type": "string"}, "note": {"type": "string"}},
        "required": ["publish_id", "done", "status"]
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_follow_tiktok_rules() {
        assert_eq!(chunk_plan(1_000).expect("small"), (1_000, 1));
        assert_eq!(
            chunk_plan(CHUNK_SIZE - 1).expect("under a chunk"),
            (CHUNK_SIZE - 1, 1)
        );
        assert_eq!(chunk_plan(CHUNK_SIZE).expect("one chunk"), (CHUNK_SIZE, 1));
        // floor: 25 MB is two chunks, the last one 15 MB.
        assert_eq!(chunk_plan(25_000_000).expect("two"), (CHUNK_SIZE, 2));
        assert!(chunk_plan(0).is_err());
        assert!(chunk_plan(CHUNK_SIZE * 1001).is_err());
    }

    #[test]
    fn upload_urls_must_be_tiktok_or_the_override() {
        let url = |u: &str| reqwest::Url::parse(u).expect("url");
        let real = UploadHosts::of(DEFAULT_ORIGIN);
        assert!(real.allows(&url(
            "https://open-upload.tiktokapis.com/video/?upload_id=1"
        )));
        assert!(!real.allows(&url("http://open-upload.tiktokapis.com/video/")));
        assert!(!real.allows(&url("https://evil.example/tiktokapis.com")));
        let mock = UploadHosts::of("http://127.0.0.1:8080/v2");
        assert!(mock.allows(&url("http://127.0.0.1:9/upload")));
        assert!(!mock.allows(&url("https://open-upload.tiktokapis.com/video/")));
    }
}
