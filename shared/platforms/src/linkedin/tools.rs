//! The five LinkedIn tools: `get_profile` as a row of data, `create_post` and `upload_video` with
//! their upload flows ([`super::media`]), and the two partner-only APIs wrapped by
//! [`partner_only`].

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Map, Value, json};
use squaremcp_core::tool::{
    Annotations, FailureKind, Tool, ToolDefinition, ToolFailure, ToolOutput,
};
use squaremcp_core::{Platform, Secret};

use super::dialect::{self, LinkedinDialect};
use super::media::{self, Api, IMAGE_TYPES};
use crate::kit::media::{MEDIA_DATA, MEDIA_TYPE, MEDIA_URL};
use crate::kit::spec::{integer_between, string, text};
use crate::kit::{
    Arg, HttpApi, HttpTool, HttpToolSpec, Media, PlatformContext, PublishWait, ToolSpec, Waited,
    partner_only,
};

/// What LinkedIn requires for the Connections API.
const CONNECTIONS_RESTRICTION: &str = "LinkedIn's Connections API (scope r_1st_connections) is restricted to developers LinkedIn \
    has approved as partners; a self-serve app gets 403. It lists the member's own first-degree connections only: LinkedIn \
    offers no people search to any app.";
/// What LinkedIn requires for the Messages API.
const MESSAGES_RESTRICTION: &str = "LinkedIn's Messages API is open only to approved partners (messaging, Sales Navigator and \
    compliance partner programs); there is no self-serve way to send a LinkedIn message.";

/// Every LinkedIn tool, sharing one client.
pub(super) fn build(context: &PlatformContext) -> Vec<Arc<dyn Tool>> {
    let api: Api = Arc::new(HttpApi::new(
        context.http.clone(),
        context.origin.clone(),
        LinkedinDialect {
            version: context.linkedin_version.clone(),
        },
    ));
    let get_profile: Arc<dyn Tool> = Arc::new(HttpTool::new(get_profile(), api.clone()));
    let create_post = Arc::new(CreatePost {
        definition: create_post_spec().take_definition(Platform::Linkedin),
        api: api.clone(),
        media: context.media.clone(),
        wait: context.publish_wait,
    });
    let upload_video = Arc::new(UploadVideo {
        definition: upload_video_spec().take_definition(Platform::Linkedin),
        api: api.clone(),
        media: context.media.clone(),
        wait: context.publish_wait,
    });
    let connections: Arc<dyn Tool> = Arc::new(HttpTool::new(search_connections(), api));
    let message: Arc<dyn Tool> = Arc::new(NotPublished {
        definition: send_message_spec().take_definition(Platform::Linkedin),
    });
    vec![
        get_profile,
        create_post,
        upload_video,
        partner_only(
            &context.partner_access,
            connections,
            CONNECTIONS_RESTRICTION,
        ),
        partner_only(&context.partner_access, message, MESSAGES_RESTRICTION),
    ]
}

fn get_profile() -> HttpToolSpec {
    let text = json!({"type": "string"});
    HttpToolSpec::get(
        ToolSpec::new(
            "get_profile",
            "LinkedIn: get the connected member",
            "Returns the connected LinkedIn member from OpenID Connect's userinfo: `sub` (the member id; posts are authored as \
             urn:li:person:{sub}), name, given_name, family_name, picture, locale, and email when the connection has the email \
             scope. Use it to check that the connection works.",
            Annotations::READ,
        )
        .output(json!({"type": "object", "required": ["sub"], "properties": {
            "sub": text, "name": text, "given_name": text, "family_name": text, "picture": text, "email": text,
            "email_verified": {"type": "boolean"}, "locale": {"type": ["object", "string"]}}})),
        "/v2/userinfo",
    )
    .operation(dialect::USERINFO)
}

fn search_connections() -> HttpToolSpec {
    HttpToolSpec::get(
        ToolSpec::new(
            "search_connections",
            "LinkedIn: list first-degree connections",
            "Lists the connected member's first-degree connections as LinkedIn's Connections API returns them \
             ({\"elements\": [{\"to\": \"urn:li:person:…\"}], \"paging\": {...}}). LinkedIn offers no search: page with `start` \
             and `count`.",
            Annotations::READ,
        )
        .arg(Arg::new("start", integer_between(0, 100_000, "The index of the first connection (paging), default 0.")).logged().in_query())
        .arg(Arg::new("count", integer_between(1, 50, "How many connections per page (1 to 50).")).logged().in_query())
        .output(json!({"type": "object", "required": ["elements"], "properties": {
            "elements": {"type": "array", "items": {"type": "object"}}, "paging": {"type": "object"}}})),
        "/v2/connections",
    )
    .operation(dialect::CONNECTIONS)
    .fixed_query("q", "viewer")
}

fn send_message_spec() -> ToolSpec {
    ToolSpec::new(
        "send_message",
        "LinkedIn: send a message",
        "Sends a LinkedIn message to a member.",
        Annotations::WRITE,
    )
    .arg(
        Arg::new(
            "recipient",
            string("The recipient's member URN, urn:li:person:…."),
        )
        .required()
        .logged(),
    )
    .arg(Arg::new("text", text(8000, "The message.")).required())
}

/// The Messages API's request shape is published to approved partners only, so this gateway has
/// no implementation to enable: even with declared access it answers `not_supported`.
struct NotPublished {
    definition: ToolDefinition,
}

#[async_trait]
impl Tool for NotPublished {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(
        &self,
        _credential: &Secret<Value>,
        _arguments: Map<String, Value>,
    ) -> Result<ToolOutput, ToolFailure> {
        Err(ToolFailure::new(
            FailureKind::NotSupported,
            format!(
                "{} is not implemented by this gateway: {MESSAGES_RESTRICTION} LinkedIn documents the Messages API's requests to \
                 those partners only.",
                self.definition.name
            ),
        ))
    }
}

fn organization() -> Arg {
    Arg::new(
        "organization",
        json!({"type": "string", "minLength": 22, "maxLength": 64, "description":
            "Post as this organization (urn:li:organization:{id}) instead of the member. Needs w_organization_social, which \
             LinkedIn grants to approved apps only, and an admin role on the page."}),
    )
    .logged()
}

fn media_arg_list(what: &str, types: &str) -> [Arg; 3] {
    [
        Arg::new(
            MEDIA_URL,
            json!({"type": "string", "minLength": 8, "maxLength": 2048, "description":
            format!("An https URL of {what} ({types}); the gateway downloads it in parts. Give this or media_data.")}),
        ),
        Arg::new(
            MEDIA_DATA,
            json!({"type": "string", "minLength": 4, "description":
            format!("{what}, base64-encoded, for small files only (a few MB). Give this or media_url.")}),
        ),
        Arg::new(
            MEDIA_TYPE,
            json!({"type": "string", "maxLength": 100, "description":
            format!("The MIME type ({types}): required with media_data; with media_url the server's Content-Type is used.")}),
        ),
    ]
}

fn create_post_spec() -> ToolSpec {
    let [url, data, kind] = media_arg_list(
        "an image or a video to attach",
        "image/jpeg, image/png, image/gif or video/mp4",
    );
    ToolSpec::new(
        "create_post",
        "LinkedIn: create a post",
        "Publishes a post to the member's feed (or an organization's, with `organization`) and returns its URN (`post_id`). \
         Text only, or with one attachment: an article link (`article_url`), an image or a video (media_url or media_data, \
         uploaded first), or a video already uploaded with linkedin_upload_video (`video_urn`). A video must finish LinkedIn's \
         processing before it can be posted: if it is still processing when the wait ends, no post is made and the answer \
         says how to post it later.",
        Annotations::WRITE,
    )
    .arg(Arg::new("text", text(3000, "The post's text, up to 3000 characters. Characters LinkedIn reserves (such as # @ * _) are escaped, so they show as typed.")).required())
    .arg(organization())
    .arg(Arg::new("visibility", json!({"type": "string", "enum": ["PUBLIC", "CONNECTIONS"], "description":
        "PUBLIC (default) or CONNECTIONS (member posts only)."})).logged())
    .arg(Arg::new("article_url", json!({"type": "string", "minLength": 8, "maxLength": 2048, "description":
        "A link to share as an article card."})))
    .arg(Arg::new("article_title", text(400, "The article card's title (with article_url).")))
    .arg(Arg::new("article_description", text(4086, "The article card's description (with article_url).")))
    .arg(url)
    .arg(data)
    .arg(kind)
    .arg(Arg::new("media_title", text(400, "A title for the attached image or video.")))
    .arg(Arg::new("video_urn", json!({"type": "string", "minLength": 14, "maxLength": 100, "description":
        "A video uploaded with linkedin_upload_video (urn:li:video:…), once its status is AVAILABLE."})).logged())
    .output(json!({"type": "object", "required": ["posted", "author"], "properties": {
        "posted": {"type": "boolean"}, "post_id": {"type": "string"}, "author": {"type": "string"},
        "url": {"type": "string"}, "media": {"type": "string"}, "status": {"type": "string"}, "note": {"type": "string"}}}))
}

fn upload_video_spec() -> ToolSpec {
    let [url, data, kind] = media_arg_list("the video", "video/mp4");
    ToolSpec::new(
        "upload_video",
        "LinkedIn: upload a video",
        "Uploads a video (MP4, 3 seconds to 30 minutes, 75 KB to 500 MB) in parts for the member (or `organization`), waits a \
         bounded time for LinkedIn's processing, and returns the video URN and its status (AVAILABLE, or PROCESSING when the \
         wait ended first). Post it with linkedin_create_post and `video_urn`. To check a video's status again, call with \
         only `video_urn`.",
        Annotations::WRITE,
    )
    .arg(url)
    .arg(data)
    .arg(kind)
    .arg(organization())
    .arg(Arg::new("video_urn", json!({"type": "string", "minLength": 14, "maxLength": 100, "description":
        "Only check this video's processing status (urn:li:video:…), uploading nothing."})).logged())
    .output(json!({"type": "object", "required": ["video", "status"], "properties": {
        "video": {"type": "string"}, "status": {"type": "string"}, "parts": {"type": "integer"}, "bytes": {"type": "integer"},
        "note": {"type": "string"}}}))
}

fn argument<'a>(arguments: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    arguments
        .get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The author: the organization given (checked), else the member.
async fn author(
    api: &Api,
    token: &super::credential::MemberToken,
    arguments: &Map<String, Value>,
) -> Result<String, ToolFailure> {
    match argument(arguments, "organization") {
        Some(urn) => {
            let id = urn
                .strip_prefix("urn:li:organization:")
                .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()));
            id.map(|_| urn.to_owned()).ok_or_else(|| {
                ToolFailure::invalid_arguments(
                    "`organization` must be urn:li:organization:{numeric id}.",
                )
            })
        }
        None => media::member_urn(api, token).await,
    }
}

fn video_urn(arguments: &Map<String, Value>) -> Result<Option<String>, ToolFailure> {
    match argument(arguments, "video_urn") {
        None => Ok(None),
        Some(urn) if urn.starts_with("urn:li:video:") && urn.len() > "urn:li:video:".len() => {
            Ok(Some(urn.to_owned()))
        }
        Some(_) => Err(ToolFailure::invalid_arguments(
            "`video_urn` must be a urn:li:video:… from linkedin_upload_video.",
        )),
    }
}

fn still_processing(urn: &str, state: &str, tool: &str) -> String {
    format!(
        "LinkedIn is still processing {urn} ({state}). Call linkedin_upload_video with only video_urn to check again; once it \
         is AVAILABLE, {tool}"
    )
}

/// `linkedin_create_post`.
struct CreatePost {
    definition: ToolDefinition,
    api: Api,
    media: Media,
    wait: PublishWait,
}

#[async_trait]
impl Tool for CreatePost {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(
        &self,
        credential: &Secret<Value>,
        arguments: Map<String, Value>,
    ) -> Result<ToolOutput, ToolFailure> {
        let token = self.api.credential(credential)?;
        let text = argument(&arguments, "text")
            .ok_or_else(|| ToolFailure::invalid_arguments("`text` is required"))?;
        let input = self.media.input(&arguments)?;
        let given_video = video_urn(&arguments)?;
        let article = argument(&arguments, "article_url");
        let attachments = usize::from(input.is_some())
            + usize::from(given_video.is_some())
            + usize::from(article.is_some());
        if attachments > 1 {
            return Err(ToolFailure::invalid_arguments(
                "A post takes one attachment: give only one of article_url, media_url/media_data and video_urn.",
            ));
        }
        if let Some(url) = article {
            check_article_url(url)?;
        }
        let author = author(&self.api, &token, &arguments).await?;

        let mut media_urn = given_video;
        if let Some(input) = input {
            let accept: Vec<&str> = IMAGE_TYPES.iter().copied().chain(["video/mp4"]).collect();
            let stream = self.media.open(input, &accept).await?;
            if stream.content_type().starts_with("video/") {
                let video = media::upload_video(&self.api, &token, &author, stream).await?;
                if let Waited::StillRunning { state, .. } =
                    media::wait_available(&self.api, &token, &video.urn, &self.wait).await?
                {
                    let note = still_processing(
                        &video.urn,
                        &state,
                        "post it with linkedin_create_post and video_urn. No post was made yet.",
                    );
                    return Ok(ToolOutput {
                        structured: json!({"posted": false, "author": author, "media": video.urn, "status": state, "note": note}),
                    });
                }
                media_urn = Some(video.urn);
            } else {
                media_urn = Some(media::upload_image(&self.api, &token, &author, stream).await?);
            }
        }

        let visibility = argument(&arguments, "visibility").unwrap_or("PUBLIC");
        let mut body = json!({
            "author": author,
            "commentary": escape_little_text(text),
            "visibility": visibility,
            "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": false,
        });
        if let Some(urn) = &media_urn {
            let mut media = json!({"id": urn});
            if let Some(title) = argument(&arguments, "media_title") {
                media["title"] = json!(title);
            }
            body["content"] = json!({"media": media});
        } else if let Some(url) = article {
            let mut card = json!({"source": url});
            for (argument_name, key) in [
                ("article_title", "title"),
                ("article_description", "description"),
            ] {
                if let Some(value) = argument(&arguments, argument_name) {
                    card[key] = json!(value);
                }
            }
            body["content"] = json!({"article": card});
        }
        let url = format!("{}/rest/posts", self.api.origin());
        let builder = self.api.client().request(Method::POST, url).json(&body);
        let answer = self
            .api
            .send_raw(&token, builder, dialect::CREATE_POST, true)
            .await?;
        self.api.interpret(&token, dialect::CREATE_POST, &answer)?;
        let post_id = answer
            .header("x-restli-id")
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                ToolFailure::new(
                    FailureKind::Upstream,
                    "LinkedIn accepted the post but answered without its id (x-restli-id).",
                )
            })?;
        let mut structured = json!({"posted": true, "post_id": post_id, "author": author,
            "url": format!("https://www.linkedin.com/feed/update/{post_id}/")});
        if let Some(urn) = media_urn {
            structured["media"] = json!(urn);
        }
        Ok(ToolOutput { structured })
    }
}

fn check_article_url(url: &str) -> Result<(), ToolFailure> {
    match reqwest::Url::parse(url) {
        Ok(parsed)
            if matches!(parsed.scheme(), "https" | "http") && parsed.host_str().is_some() =>
        {
            Ok(())
        }
        _ => Err(ToolFailure::invalid_arguments(
            "`article_url` must be an http(s) URL.",
        )),
    }
}

/// LinkedIn's "little text" format reserves these characters; unescaped they cut the text off or
/// make LinkedIn refuse it.
fn escape_little_text(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '|' | '{'
                | '}'
                | '@'
                | '['
                | ']'
                | '('
                | ')'
                | '<'
                | '>'
                | '#'
                | '\\'
                | '*'
                | '_'
                | '~'
        ) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// `linkedin_upload_video`.
struct UploadVideo {
    definition: ToolDefinition,
    api: Api,
    media: Media,
    wait: PublishWait,
}

#[async_trait]
impl Tool for UploadVideo {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(
        &self,
        credential: &Secret<Value>,
        arguments: Map<String, Value>,
    ) -> Result<ToolOutput, ToolFailure> {
        let token = self.api.credential(credential)?;
        let input = self.media.input(&arguments)?;
        let structured = match (input, video_urn(&arguments)?) {
            (Some(_), Some(_)) => {
                return Err(ToolFailure::invalid_arguments(
                    "Give either a video to upload (media_url or media_data) or video_urn to check, not both.",
                ));
            }
            (None, None) => {
                return Err(ToolFailure::invalid_arguments(
                    "Give the video as media_url or media_data, or video_urn to check one.",
                ));
            }
            (None, Some(urn)) => {
                let status = media::video_status(&self.api, &token, &urn).await?;
                if status == "PROCESSING_FAILED" {
                    return Err(ToolFailure::new(
                        FailureKind::Upstream,
                        format!(
                            "LinkedIn could not process video {urn} (PROCESSING_FAILED); upload it again."
                        ),
                    ));
                }
                json!({"video": urn, "status": status})
            }
            (Some(input), None) => {
                let owner = author(&self.api, &token, &arguments).await?;
                let stream = self.media.open(input, &["video/mp4"]).await?;
                let video = media::upload_video(&self.api, &token, &owner, stream).await?;
                let mut result =
                    json!({"video": video.urn, "parts": video.parts, "bytes": video.bytes});
                match media::wait_available(&self.api, &token, &video.urn, &self.wait).await? {
                    Waited::Done(()) => result["status"] = json!("AVAILABLE"),
                    Waited::StillRunning { state, .. } => {
                        result["note"] = json!(still_processing(
                            &video.urn,
                            &state,
                            "post it with linkedin_create_post and video_urn."
                        ));
                        result["status"] = json!(state);
                    }
                }
                result
            }
        };
        Ok(ToolOutput { structured })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_characters_are_escaped() {
        assert_eq!(
            escape_little_text("Hi @team #rust (v2) *x* a_b ~ [l] {c} <t> | \\"),
            "Hi \\@team \\#rust \\(v2\\) \\*x\\* a\\_b \\~ \\[l\\] \\{c\\} \\<t\\> \\| \\\\"
        );
        assert_eq!(escape_little_text("plain, text."), "plain, text.");
    }
}
