//! The Instagram tools: the profile (its path and fields differ by login), the media list (a row
//! of data), and publishing through Meta's container flow: `create_post` (an image),
//! `create_reel` (a video) and `publish_container` (finishes a container that was still
//! processing when a create tool stopped waiting).

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Map, Value, json};
use squaremcp_core::tool::{Annotations, FailureKind, Tool, ToolDefinition, ToolFailure, ToolOutput};
use squaremcp_core::{Platform, Secret};

use super::credential::{InstagramToken, Login};
use super::dialect::{self, InstagramDialect};
use crate::kit::graph;
use crate::kit::media::MEDIA_URL;
use crate::kit::spec::{flag, integer_between, string, text};
use crate::kit::{
    Arg, HttpApi, HttpTool, HttpToolSpec, Media, MediaInput, Output, PlatformContext, Progress, PublishWait, ToolSpec, UpstreamRequest,
    Waited,
};

type Api = Arc<HttpApi<InstagramDialect>>;

pub(super) fn build(context: &PlatformContext) -> Vec<Arc<dyn Tool>> {
    let (instagram_origin, facebook_origin) = super::hosts(&context.origin);
    let dialect = InstagramDialect { version: context.graph_api_version.clone(), instagram_origin, facebook_origin };
    let api: Api = Arc::new(HttpApi::new(context.http.clone(), context.origin.clone(), dialect));
    let publisher = Publisher { api: api.clone(), wait: context.publish_wait };
    vec![
        Arc::new(GetProfile::new(api.clone())),
        Arc::new(HttpTool::new(media_row(), api.clone())),
        Arc::new(CreateContainer::post(publisher.clone(), context.media.clone())),
        Arc::new(CreateContainer::reel(publisher.clone(), context.media.clone())),
        Arc::new(PublishContainer::new(publisher)),
    ]
}

const MEDIA_FIELDS: &str = "id,caption,media_type,media_product_type,media_url,thumbnail_url,permalink,timestamp,like_count,comments_count";
/// Facebook Login reads the account by its id; Instagram Login reads `/me`, with its own fields.
const FACEBOOK_PROFILE_FIELDS: &str = "id,username,name,biography,profile_picture_url,followers_count,follows_count,media_count,website";
const INSTAGRAM_PROFILE_FIELDS: &str = "id,user_id,username,name,account_type,profile_picture_url,followers_count,follows_count,media_count";

fn media_row() -> HttpToolSpec {
    HttpToolSpec::get(
        ToolSpec::new("get_media", "Instagram: list the account's media", "Lists the account's posts and reels, newest first \
            (stories excluded), as {\"media\": [...], \"next\": cursor}: id, caption, media_type, media_product_type, \
            media_url, permalink, timestamp, like_count and comments_count. For the next page call again with `after` set \
            to `next`.", Annotations::READ)
        .arg(Arg::new("limit", integer_between(1, 100, "At most this many items (1 to 100, default 25).")).logged().in_query())
        .arg(Arg::new("after", string("The `next` cursor of the previous page.")).logged().in_query())
        .output(json!({ "type": "object", "required": ["media", "next"], "properties": {
            "media": { "type": "array", "items": { "type": "object", "required": ["id"], "properties": {
                "id": { "type": "string" }, "caption": { "type": "string" }, "media_type": { "type": "string" },
                "permalink": { "type": "string" }, "timestamp": { "type": "string" } } } },
            "next": { "type": ["string", "null"] } } })),
        "/{version}/{ig_user_id}/media",
    )
    .operation(dialect::GET_MEDIA)
    .fixed_query("fields", MEDIA_FIELDS)
    .fixed_query("limit", "25")
    .output(Output::Custom(|result| graph::page("Instagram", dialect::GET_MEDIA, "media", &result)))
}

fn get(path: String, fields: &str) -> UpstreamRequest {
    UpstreamRequest { path, query: vec![("fields", fields.to_owned())], ..UpstreamRequest::default() }
}

fn post(path: String, body: Map<String, Value>) -> UpstreamRequest {
    UpstreamRequest { path, body, ..UpstreamRequest::default() }
}

/// The version and account id of the path (the dialect's path values).
fn path_parts(api: &HttpApi<InstagramDialect>, credential: &InstagramToken) -> (String, String) {
    let values = api.path_values(credential);
    let get = |name: &str| values.iter().find(|(key, _)| *key == name).map(|(_, v)| v.clone()).unwrap_or_default();
    (get("version"), get("ig_user_id"))
}

/// `instagram_get_profile`.
struct GetProfile {
    definition: ToolDefinition,
    api: Api,
}

impl GetProfile {
    fn new(api: Api) -> Self {
        let mut spec = ToolSpec::new("get_profile", "Instagram: get the account's profile", "Returns the connected Instagram \
            professional account: id, username, name, profile_picture_url, followers_count, follows_count and media_count \
            (with Facebook Login also biography and website; with Instagram Login also user_id and account_type).",
            Annotations::READ)
            .output(json!({ "type": "object", "required": ["id", "username"], "properties": {
                "id": { "type": "string" }, "username": { "type": "string" }, "name": { "type": "string" },
                "followers_count": { "type": "integer" }, "follows_count": { "type": "integer" }, "media_count": { "type": "integer" } } }));
        Self { definition: spec.take_definition(Platform::Instagram), api }
    }
}

#[async_trait]
impl Tool for GetProfile {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, credential: &Secret<Value>, _arguments: Map<String, Value>) -> Result<ToolOutput, ToolFailure> {
        let credential = self.api.credential(credential)?;
        let (version, user_id) = path_parts(&self.api, &credential);
        let request = match credential.login {
            Login::Instagram => get(format!("/{version}/me"), INSTAGRAM_PROFILE_FIELDS),
            Login::Facebook => get(format!("/{version}/{user_id}"), FACEBOOK_PROFILE_FIELDS),
        };
        let structured = self.api.send(&credential, &Method::GET, dialect::GET_PROFILE, &request, true).await?;
        if structured.get("id").and_then(Value::as_str).is_none() {
            return Err(ToolFailure::new(FailureKind::Upstream, "Instagram answered Get IG User without the account's id."));
        }
        Ok(ToolOutput { structured })
    }
}

/// Waits for a container and publishes it: shared by the create tools and `publish_container`.
#[derive(Clone)]
struct Publisher {
    api: Api,
    wait: PublishWait,
}

impl Publisher {
    /// One look at the container's `status_code`.
    async fn check(&self, credential: &InstagramToken, version: &str, container: &str) -> Result<Progress<()>, ToolFailure> {
        let request = get(format!("/{version}/{container}"), "status_code,status");
        let result = self.api.send(credential, &Method::GET, dialect::GET_CONTAINER, &request, true).await?;
        let code = result.get("status_code").and_then(Value::as_str).unwrap_or("IN_PROGRESS");
        let status = result.get("status").and_then(Value::as_str).unwrap_or("no details");
        match code {
            "FINISHED" => Ok(Progress::Done(())),
            "ERROR" => Err(ToolFailure::new(
                FailureKind::Upstream,
                format!("Instagram could not process container {container}: {status}. Check the media (format, size, URL) and create the post again."),
            )),
            "EXPIRED" => Err(ToolFailure::new(
                FailureKind::Upstream,
                format!("Container {container} expired (containers must be published within 24 hours). Create the post again."),
            )),
            "PUBLISHED" => Err(ToolFailure::invalid_arguments(format!("Container {container} is already published."))),
            other => Ok(Progress::Pending(other.to_owned())),
        }
    }

    /// Waits within the budget, then `media_publish`. The answer says what happened either way.
    async fn finish(&self, credential: &InstagramToken, container: &str) -> Result<Value, ToolFailure> {
        let (version, user_id) = path_parts(&self.api, credential);
        match self.wait.wait(|| self.check(credential, &version, container)).await? {
            Waited::StillRunning { state, waited } => Ok(json!({ "container_id": container, "status": state, "published": false,
                "note": format!("Instagram is still processing the media (state `{state}` after {} seconds). Publish it later \
                    with instagram_publish_container and this container_id (within 24 hours); do not create it again.",
                    waited.as_secs()) })),
            Waited::Done(()) => {
                let mut body = Map::new();
                body.insert("creation_id".to_owned(), json!(container));
                let request = post(format!("/{version}/{user_id}/media_publish"), body);
                let result = self.api.send(credential, &Method::POST, dialect::PUBLISH, &request, false).await?;
                let Some(media_id) = result.get("id").and_then(Value::as_str) else {
                    return Err(ToolFailure::new(FailureKind::Upstream, "Instagram published the media but answered without its id."));
                };
                Ok(json!({ "container_id": container, "status": "PUBLISHED", "published": true, "media_id": media_id }))
            }
        }
    }
}

fn published_schema() -> Value {
    json!({ "type": "object", "required": ["container_id", "status", "published"], "properties": {
        "container_id": { "type": "string" }, "status": { "type": "string" }, "published": { "type": "boolean" },
        "media_id": { "type": "string" }, "note": { "type": "string" } } })
}

/// What kind of container a create tool makes.
#[derive(Clone, Copy)]
enum Kind {
    Image,
    Reel,
}

/// `instagram_create_post` and `instagram_create_reel`: a container from a public URL, then
/// [`Publisher::finish`].
struct CreateContainer {
    definition: ToolDefinition,
    kind: Kind,
    publisher: Publisher,
    media: Media,
}

impl CreateContainer {
    fn post(publisher: Publisher, media: Media) -> Self {
        let mut spec = ToolSpec::new("create_post", "Instagram: publish an image post", "Publishes an image post from `media_url`, a \
            public https URL of a JPEG (at most 8 MB) that Meta downloads itself. Creates the container, waits a short while \
            for it to be ready and publishes it: returns media_id when published; when still processing it returns \
            container_id for instagram_publish_container. Counts against the account's 50 API posts per 24 hours.",
            Annotations::WRITE)
            .arg(url_arg("the image (JPEG)"))
            .arg(Arg::new("caption", text(2200, "The caption, up to 2200 characters, 30 hashtags and 20 @mentions.")))
            .arg(Arg::new("alt_text", text(1000, "Alternative text describing the image for screen readers.")))
            .output(published_schema());
        Self { definition: spec.take_definition(Platform::Instagram), kind: Kind::Image, publisher, media }
    }

    fn reel(publisher: Publisher, media: Media) -> Self {
        let mut spec = ToolSpec::new("create_reel", "Instagram: publish a reel", "Publishes a reel from `media_url`, a public https \
            URL of the video (MP4 or MOV, H.264, up to 15 minutes) that Meta downloads itself. Creates the container, waits \
            a short while for processing and publishes it: returns media_id when published; videos often take longer, then \
            it returns container_id and the state for instagram_publish_container.", Annotations::WRITE)
            .arg(url_arg("the video"))
            .arg(Arg::new("caption", text(2200, "The caption, up to 2200 characters.")))
            .arg(Arg::new("share_to_feed", flag("True (the default) to show the reel in the feed too, not only in Reels.")).logged())
            .arg(Arg::new("cover_url", json!({ "type": "string", "minLength": 8, "maxLength": 2048, "description":
                "A public https URL of a cover image; otherwise the frame at thumb_offset." })))
            .arg(Arg::new("thumb_offset", integer_between(0, 900_000, "The cover frame's position, in milliseconds.")).logged())
            .output(published_schema());
        Self { definition: spec.take_definition(Platform::Instagram), kind: Kind::Reel, publisher, media }
    }
}

fn url_arg(what: &str) -> Arg {
    Arg::new(MEDIA_URL, json!({ "type": "string", "minLength": 8, "maxLength": 2048, "description":
        format!("A public https URL of {what}; Meta downloads it, so it must be reachable from the internet.") }))
    .required()
}

#[async_trait]
impl Tool for CreateContainer {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, credential: &Secret<Value>, arguments: Map<String, Value>) -> Result<ToolOutput, ToolFailure> {
        let api = &self.publisher.api;
        let credential = api.credential(credential)?;
        let Some(MediaInput::Url(url)) = self.media.input(&arguments)? else {
            return Err(ToolFailure::invalid_arguments("Give `media_url`: a public https URL Meta can download"));
        };
        let mut body = Map::new();
        match self.kind {
            Kind::Image => {
                body.insert("image_url".to_owned(), json!(url.as_str()));
            }
            Kind::Reel => {
                body.insert("media_type".to_owned(), json!("REELS"));
                body.insert("video_url".to_owned(), json!(url.as_str()));
                if let Some(cover) = arguments.get("cover_url").and_then(Value::as_str) {
                    let cover = self.media.checked_url(cover).map_err(|f| ToolFailure::new(f.kind, f.message.replace("media_url", "cover_url")))?;
                    body.insert("cover_url".to_owned(), json!(cover.as_str()));
                }
            }
        }
        for name in ["caption", "alt_text", "share_to_feed", "thumb_offset"] {
            if let Some(value) = arguments.get(name) {
                body.insert(name.to_owned(), crate::kit::spec::normalized(value));
            }
        }
        let (version, user_id) = path_parts(api, &credential);
        let request = post(format!("/{version}/{user_id}/media"), body);
        let created = api.send(&credential, &Method::POST, dialect::CREATE_CONTAINER, &request, false).await?;
        let container = container_id(created.get("id").and_then(Value::as_str))?;
        Ok(ToolOutput { structured: self.publisher.finish(&credential, &container).await? })
    }
}

/// A container id from Meta or the caller: it goes into a path, so only digits are accepted.
fn container_id(id: Option<&str>) -> Result<String, ToolFailure> {
    match id {
        Some(id) if !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_digit()) => Ok(id.to_owned()),
        _ => Err(ToolFailure::new(FailureKind::Upstream, "Instagram answered without a usable container id.")),
    }
}

/// `instagram_publish_container`.
struct PublishContainer {
    definition: ToolDefinition,
    publisher: Publisher,
}

impl PublishContainer {
    fn new(publisher: Publisher) -> Self {
        let mut spec = ToolSpec::new("publish_container", "Instagram: publish a processed container", "Publishes a container that \
            instagram_create_post or instagram_create_reel returned unpublished (`published: false`): checks its state, \
            waits a short while if it is still processing, and publishes it. Returns media_id when published.",
            Annotations::WRITE)
            .arg(Arg::new("container_id", json!({ "type": "string", "minLength": 1, "maxLength": 32, "description":
                "The container_id a create tool returned (digits)." })).required().logged())
            .output(published_schema());
        Self { definition: spec.take_definition(Platform::Instagram), publisher }
    }
}

#[async_trait]
impl Tool for PublishContainer {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, credential: &Secret<Value>, arguments: Map<String, Value>) -> Result<ToolOutput, ToolFailure> {
        let credential = self.publisher.api.credential(credential)?;
        let given = arguments.get("container_id").and_then(Value::as_str);
        let container = container_id(given).map_err(|_| ToolFailure::invalid_arguments("`container_id` must be the digits a create tool returned"))?;
        Ok(ToolOutput { structured: self.publisher.finish(&credential, &container).await? })
    }
}
