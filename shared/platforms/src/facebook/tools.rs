//! The Facebook Page tools. Reads are rows of data run by the kit; the three ways to publish are
//! tools of their own: `create_post` checks `message`/`link` and the schedule, `create_photo_post`
//! sends a URL for Meta to fetch or an inline photo as multipart, and `create_video_post` hands
//! Meta a video URL on the video host and waits (bounded) for its processing.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Map, Value, json};
use squaremcp_core::tool::{Annotations, FailureKind, Tool, ToolDefinition, ToolFailure, ToolOutput};
use squaremcp_core::{Platform, Secret};

use super::credential::PageToken;
use super::dialect::{self, FacebookDialect};
use crate::kit::graph;
use crate::kit::media::{MEDIA_DATA, MEDIA_TYPE, MEDIA_URL};
use crate::kit::spec::{integer_between, string, text};
use crate::kit::{
    Arg, HttpApi, HttpTool, HttpToolSpec, Media, MediaInput, Output, PlatformContext, Progress, PublishWait, ToolSpec, UpstreamRequest,
    Waited,
};

type Api = Arc<HttpApi<FacebookDialect>>;

/// Every Facebook tool, sharing one client (and one for the video host).
pub(super) fn build(context: &PlatformContext) -> Vec<Arc<dyn Tool>> {
    let dialect = || FacebookDialect { version: context.graph_api_version.clone() };
    let api: Api = Arc::new(HttpApi::new(context.http.clone(), context.origin.clone(), dialect()));
    let video_api: Api = Arc::new(HttpApi::new(context.http.clone(), super::video_origin(&context.origin), dialect()));
    let [get_page, get_posts, get_video] = rows();
    let row = |row| -> Arc<dyn Tool> { Arc::new(HttpTool::new(row, api.clone())) };
    vec![
        row(get_page),
        row(get_posts),
        Arc::new(CreatePost::new(api.clone())),
        Arc::new(CreatePhotoPost::new(api.clone(), context.media.clone())),
        Arc::new(CreateVideoPost::new(api.clone(), video_api, context.media.clone(), context.publish_wait)),
        row(get_video),
    ]
}

const PAGE_FIELDS: &str = "id,name,about,category,fan_count,followers_count,link,username,verification_status";
const POST_FIELDS: &str = "id,message,created_time,permalink_url,full_picture,status_type";
const VIDEO_FIELDS: &str = "id,title,description,permalink_url,created_time,length,status";

fn rows() -> [HttpToolSpec; 3] {
    [
        HttpToolSpec::get(
            ToolSpec::new("get_page", "Facebook: get the Page", "Returns the connected Facebook Page: id, name, about, category, \
                fan_count (likes), followers_count, link and username.", Annotations::READ)
            .output(json!({ "type": "object", "required": ["id", "name"], "properties": {
                "id": { "type": "string" }, "name": { "type": "string" }, "about": { "type": "string" },
                "category": { "type": "string" }, "fan_count": { "type": "integer" }, "followers_count": { "type": "integer" },
                "link": { "type": "string" }, "username": { "type": "string" } } })),
            "/{version}/{page_id}",
        )
        .operation(dialect::GET_PAGE)
        .fixed_query("fields", PAGE_FIELDS),
        HttpToolSpec::get(
            ToolSpec::new("get_posts", "Facebook: list the Page's posts", "Lists the Page's own posts, newest first, as \
                {\"posts\": [...], \"next\": cursor}: id, message, created_time, permalink_url, full_picture and status_type. \
                For the next page call again with `after` set to `next`.", Annotations::READ)
            .arg(Arg::new("limit", integer_between(1, 100, "At most this many posts (1 to 100, default 25).")).logged().in_query())
            .arg(Arg::new("after", string("The `next` cursor of the previous page.")).logged().in_query())
            .arg(Arg::new("since", unix_time("Only posts created at or after this time (Unix seconds).")).logged().in_query())
            .arg(Arg::new("until", unix_time("Only posts created before this time (Unix seconds).")).logged().in_query())
            .output(json!({ "type": "object", "required": ["posts", "next"], "properties": {
                "posts": { "type": "array", "items": { "type": "object", "required": ["id"], "properties": {
                    "id": { "type": "string" }, "message": { "type": "string" }, "created_time": { "type": "string" },
                    "permalink_url": { "type": "string" } } } },
                "next": { "type": ["string", "null"] } } })),
            "/{version}/{page_id}/posts",
        )
        .operation(dialect::GET_POSTS)
        .fixed_query("fields", POST_FIELDS)
        .fixed_query("limit", "25")
        .output(Output::Custom(|result| graph::page("Facebook", dialect::GET_POSTS, "posts", &result))),
        HttpToolSpec::get(
            ToolSpec::new("get_video", "Facebook: get a video and its processing status", "Returns one of the Page's videos: \
                title, description, permalink_url, length and `status` (status.video_status is processing, ready or error, \
                with the phases' details). Use it to follow a video facebook_create_video_post returned before it was ready.",
                Annotations::READ)
            .arg(Arg::new("video_id", graph_id("The video's id, as facebook_create_video_post returned it.")).required().logged().in_path())
            .output(json!({ "type": "object", "required": ["id"], "properties": {
                "id": { "type": "string" }, "status": { "type": "object" } } })),
            "/{version}/{video_id}",
        )
        .operation(dialect::GET_VIDEO)
        .fixed_query("fields", VIDEO_FIELDS),
    ]
}

fn graph_id(description: &str) -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 64, "description": description })
}

fn unix_time(description: &str) -> Value {
    json!({ "type": "integer", "minimum": 0, "maximum": 4_102_444_800_i64, "description": description })
}

fn schedule_arg() -> Arg {
    Arg::new("scheduled_publish_time", unix_time("Publish later instead of now: a Unix time 10 minutes to 30 days ahead. \
        The post stays unpublished until then.")).logged()
}

/// Graph's rule for scheduled posts: 10 minutes to 30 days (75 days for videos) from now.
fn checked_schedule(arguments: &Map<String, Value>, max_days: u64) -> Result<Option<u64>, ToolFailure> {
    let Some(value) = arguments.get("scheduled_publish_time") else { return Ok(None) };
    let at = value.as_u64().ok_or_else(|| ToolFailure::invalid_arguments("`scheduled_publish_time` must be a Unix time in seconds"))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    if at < now + 600 || at > now + max_days * 86_400 {
        return Err(ToolFailure::invalid_arguments(format!(
            "`scheduled_publish_time` must be between 10 minutes and {max_days} days from now (now is {now})"
        )));
    }
    Ok(Some(at))
}

fn text_arg<'a>(arguments: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    arguments.get(name).and_then(Value::as_str).filter(|text| !text.trim().is_empty())
}

fn request(path: String, body: Map<String, Value>) -> UpstreamRequest {
    UpstreamRequest { path, body, ..UpstreamRequest::default() }
}

fn version_of(api: &HttpApi<FacebookDialect>, credential: &PageToken) -> (String, String) {
    let values = api.path_values(credential);
    let get = |name: &str| values.iter().find(|(key, _)| *key == name).map(|(_, v)| v.clone()).unwrap_or_default();
    (get("version"), get("page_id"))
}

/// `facebook_create_post`: a text and/or link post on the Page's feed, now or scheduled.
struct CreatePost {
    definition: ToolDefinition,
    api: Api,
}

impl CreatePost {
    fn new(api: Api) -> Self {
        let mut spec = ToolSpec::new("create_post", "Facebook: publish a post on the Page", "Publishes a post on the Page's feed with \
            `message` and/or a `link` Facebook previews (at least one), at once or at `scheduled_publish_time`. Returns \
            the post's id ({page-id}_{post-id}).", Annotations::WRITE)
            .arg(Arg::new("message", text(63_206, "The post's text.")))
            .arg(Arg::new("link", json!({ "type": "string", "minLength": 8, "maxLength": 2048, "description":
                "An http(s) URL to share; Facebook shows its preview." })))
            .arg(schedule_arg())
            .output(json!({ "type": "object", "required": ["id"], "properties": {
                "id": { "type": "string" }, "scheduled_publish_time": { "type": "integer" } } }));
        Self { definition: spec.take_definition(Platform::Facebook), api }
    }
}

#[async_trait]
impl Tool for CreatePost {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, credential: &Secret<Value>, arguments: Map<String, Value>) -> Result<ToolOutput, ToolFailure> {
        let credential = self.api.credential(credential)?;
        let (message, link) = (text_arg(&arguments, "message"), text_arg(&arguments, "link"));
        if message.is_none() && link.is_none() {
            return Err(ToolFailure::invalid_arguments("Give `message`, `link` or both"));
        }
        if let Some(link) = link
            && !url::Url::parse(link).is_ok_and(|url| matches!(url.scheme(), "http" | "https"))
        {
            return Err(ToolFailure::invalid_arguments("`link` must be an http(s) URL"));
        }
        let scheduled = checked_schedule(&arguments, 30)?;
        let mut body = Map::new();
        if let Some(message) = message {
            body.insert("message".to_owned(), json!(message));
        }
        if let Some(link) = link {
            body.insert("link".to_owned(), json!(link));
        }
        if let Some(at) = scheduled {
            // Graph schedules only unpublished posts.
            body.insert("published".to_owned(), json!(false));
            body.insert("scheduled_publish_time".to_owned(), json!(at));
        }
        let (version, page_id) = version_of(&self.api, &credential);
        let request = request(format!("/{version}/{page_id}/feed"), body);
        let mut result = self.api.send(&credential, &Method::POST, dialect::CREATE_POST, &request, false).await?;
        if result.get("id").and_then(Value::as_str).is_none() {
            return Err(ToolFailure::new(FailureKind::Upstream, "Facebook accepted the post but answered without its id."));
        }
        if let (Some(at), Some(object)) = (scheduled, result.as_object_mut()) {
            object.insert("scheduled_publish_time".to_owned(), json!(at));
        }
        Ok(ToolOutput { structured: result })
    }
}

/// The media arguments, in the kit's names, with schemas the gateway's validator knows.
fn media_url_arg(what: &str) -> Arg {
    Arg::new(MEDIA_URL, json!({ "type": "string", "minLength": 8, "maxLength": 2048, "description":
        format!("A public https URL of {what}; Meta downloads it itself, so it must be reachable from the internet.") }))
}

/// `facebook_create_photo_post`: a photo on the Page, from a URL Meta fetches or inline data
/// sent as multipart (`source`).
struct CreatePhotoPost {
    definition: ToolDefinition,
    api: Api,
    media: Media,
}

const PHOTO_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/bmp", "image/tiff"];

impl CreatePhotoPost {
    fn new(api: Api, media: Media) -> Self {
        let mut spec = ToolSpec::new("create_photo_post", "Facebook: publish a photo on the Page", "Publishes a photo on the Page \
            with an optional caption: give `media_url` (a public https URL Meta downloads) or small inline `media_data` \
            (base64) with `media_type` (JPEG, PNG, GIF, BMP or TIFF). Returns the photo's id and its post's id (post_id).",
            Annotations::WRITE)
            .arg(media_url_arg("the photo"))
            .arg(Arg::new(MEDIA_DATA, json!({ "type": "string", "minLength": 4, "description":
                "The photo, base64-encoded, for small files only (a few MB). Give this or media_url." })))
            .arg(Arg::new(MEDIA_TYPE, json!({ "type": "string", "enum": PHOTO_TYPES, "description":
                "The photo's MIME type; required with media_data." })).logged())
            .arg(Arg::new("caption", text(63_206, "The text shown with the photo.")))
            .arg(schedule_arg())
            .output(json!({ "type": "object", "required": ["id"], "properties": {
                "id": { "type": "string" }, "post_id": { "type": "string" } } }));
        Self { definition: spec.take_definition(Platform::Facebook), api, media }
    }
}

#[async_trait]
impl Tool for CreatePhotoPost {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, credential: &Secret<Value>, arguments: Map<String, Value>) -> Result<ToolOutput, ToolFailure> {
        let credential = self.api.credential(credential)?;
        let input = self.media.input(&arguments)?.ok_or_else(|| ToolFailure::invalid_arguments("Give `media_url` or `media_data`"))?;
        let scheduled = checked_schedule(&arguments, 30)?;
        let mut fields = Map::new();
        if let Some(caption) = text_arg(&arguments, "caption") {
            fields.insert("message".to_owned(), json!(caption));
        }
        if let Some(at) = scheduled {
            fields.insert("published".to_owned(), json!(false));
            fields.insert("scheduled_publish_time".to_owned(), json!(at));
        }
        let (version, page_id) = version_of(&self.api, &credential);
        let path = format!("/{version}/{page_id}/photos");
        let result = match input {
            MediaInput::Url(url) => {
                fields.insert("url".to_owned(), json!(url.as_str()));
                self.api.send(&credential, &Method::POST, dialect::CREATE_PHOTO, &request(path, fields), false).await?
            }
            MediaInput::Inline { .. } => {
                let mut stream = self.media.open(input, PHOTO_TYPES).await?;
                let content_type = stream.content_type().to_owned();
                let bytes = stream.next_part(usize::try_from(stream.len()).unwrap_or(usize::MAX)).await?.unwrap_or_default();
                let (boundary, body) = multipart(&fields, "source", &content_type, &bytes);
                let builder = self
                    .api
                    .client()
                    .post(format!("{}{path}", self.api.origin()))
                    .header(reqwest::header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
                    .body(body);
                let answer = self.api.send_raw(&credential, builder, dialect::CREATE_PHOTO, true).await?;
                self.api.interpret(&credential, dialect::CREATE_PHOTO, &answer)?
            }
        };
        if result.get("id").and_then(Value::as_str).is_none() {
            return Err(ToolFailure::new(FailureKind::Upstream, "Facebook accepted the photo but answered without its id."));
        }
        Ok(ToolOutput { structured: result })
    }
}

/// A `multipart/form-data` body, built by hand (the workspace's reqwest has no multipart
/// feature): the text fields, then the file. The boundary is chosen so that it does not occur
/// in the file.
pub(crate) fn multipart(fields: &Map<String, Value>, file_field: &str, content_type: &str, file: &[u8]) -> (String, Vec<u8>) {
    let mut salt = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let boundary = loop {
        let candidate = format!("squaremcp-{salt:032x}");
        if !file.windows(candidate.len()).any(|window| window == candidate.as_bytes()) {
            break candidate;
        }
        salt = salt.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    };
    let mut body = Vec::with_capacity(file.len() + 512);
    for (name, value) in fields {
        let value = match value {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes());
    }
    let extension = content_type.rsplit('/').next().unwrap_or("bin");
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{file_field}\"; filename=\"upload.{extension}\"\r\nContent-Type: {content_type}\r\n\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (boundary, body)
}

/// `facebook_create_video_post`: Meta downloads the video from `media_url` (on the video host),
/// then processes it; the tool waits for processing within the operator's budget.
struct CreateVideoPost {
    definition: ToolDefinition,
    api: Api,
    video_api: Api,
    media: Media,
    wait: PublishWait,
}

impl CreateVideoPost {
    fn new(api: Api, video_api: Api, media: Media, wait: PublishWait) -> Self {
        let mut spec = ToolSpec::new("create_video_post", "Facebook: publish a video on the Page", "Publishes a video on the Page \
            from `media_url`, a public https URL Meta downloads itself (inline video data is not accepted: host the file). \
            Facebook then processes the video; the tool waits a short while and returns the video's id with \
            `status` (processing, ready) and `done`. When it is still processing, follow it with facebook_get_video.",
            Annotations::WRITE)
            .arg(media_url_arg("the video (MP4 or MOV recommended)").required())
            .arg(Arg::new("title", text(255, "The video's title.")))
            .arg(Arg::new("description", text(63_206, "The text shown with the video.")))
            .arg(Arg::new("scheduled_publish_time", unix_time("Publish later instead of now: a Unix time 10 minutes to 75 days ahead.")).logged())
            .output(json!({ "type": "object", "required": ["video_id", "status", "done"], "properties": {
                "video_id": { "type": "string" }, "status": { "type": "string" }, "done": { "type": "boolean" },
                "note": { "type": "string" } } }));
        Self { definition: spec.take_definition(Platform::Facebook), api, video_api, media, wait }
    }

    /// One look at the video's `status`: ready, still processing, or failed.
    async fn check(&self, credential: &PageToken, version: &str, video_id: &str) -> Result<Progress<()>, ToolFailure> {
        let mut request = request(format!("/{version}/{video_id}"), Map::new());
        request.query.push(("fields", "status".to_owned()));
        let result = self.api.send(credential, &Method::GET, dialect::GET_VIDEO, &request, true).await?;
        let state = result.pointer("/status/video_status").and_then(Value::as_str).unwrap_or("processing");
        match state {
            "ready" => Ok(Progress::Done(())),
            "error" | "expired" | "upload_failed" => {
                let why = result
                    .pointer("/status/processing_phase/errors/0/message")
                    .or_else(|| result.pointer("/status/uploading_phase/errors/0/message"))
                    .and_then(Value::as_str)
                    .unwrap_or("no reason given");
                Err(ToolFailure::new(
                    FailureKind::Upstream,
                    format!("Facebook could not process video {video_id} ({state}): {why}. Check the file and post it again."),
                ))
            }
            other => Ok(Progress::Pending(other.to_owned())),
        }
    }
}

#[async_trait]
impl Tool for CreateVideoPost {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, credential: &Secret<Value>, arguments: Map<String, Value>) -> Result<ToolOutput, ToolFailure> {
        let credential = self.api.credential(credential)?;
        let Some(MediaInput::Url(url)) = self.media.input(&arguments)? else {
            return Err(ToolFailure::invalid_arguments("Give `media_url`: a public https URL of the video"));
        };
        let scheduled = checked_schedule(&arguments, 75)?;
        let mut body = Map::new();
        body.insert("file_url".to_owned(), json!(url.as_str()));
        for name in ["title", "description"] {
            if let Some(value) = text_arg(&arguments, name) {
                body.insert(name.to_owned(), json!(value));
            }
        }
        if let Some(at) = scheduled {
            body.insert("published".to_owned(), json!(false));
            body.insert("scheduled_publish_time".to_owned(), json!(at));
        }
        let (version, page_id) = version_of(&self.api, &credential);
        let request = request(format!("/{version}/{page_id}/videos"), body);
        let created = self.video_api.send(&credential, &Method::POST, dialect::CREATE_VIDEO, &request, false).await?;
        let Some(video_id) = created.get("id").and_then(Value::as_str).map(str::to_owned) else {
            return Err(ToolFailure::new(FailureKind::Upstream, "Facebook accepted the video but answered without its id."));
        };
        // An id from Facebook goes into a path: only digits are taken at face value.
        if !video_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ToolFailure::new(FailureKind::Upstream, "Facebook answered with a video id that is not numeric."));
        }
        let structured = match self.wait.wait(|| self.check(&credential, &version, &video_id)).await? {
            Waited::Done(()) => json!({ "video_id": video_id, "status": "ready", "done": true }),
            Waited::StillRunning { state, waited } => json!({ "video_id": video_id, "status": state, "done": false, "note": format!(
                "The video is uploaded and Facebook is still processing it (state `{state}` after {} seconds). Check again \
                 with facebook_get_video and this video_id; do not post it again.", waited.as_secs()) }),
        };
        Ok(ToolOutput { structured })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_multipart_body_has_the_fields_then_the_file_and_a_boundary_not_in_the_file() {
        let mut fields = Map::new();
        fields.insert("message".to_owned(), json!("Hello"));
        let (boundary, body) = multipart(&fields, "source", "image/png", b"\x89PNG-bytes");
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\nHello\r\n")), "{text}");
        assert!(text.contains("name=\"source\"; filename=\"upload.png\"\r\nContent-Type: image/png\r\n\r\n\u{FFFD}PNG-bytes\r\n"), "{text}");
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
    }
}
