use async_trait::async_trait;
use serde_json::{Map, Value, json};
use squaremcp_core::tool::{Tool, ToolDefinition, ToolFailure, ToolOutput};
use squaremcp_core::{Platform, Secret};

use crate::arguments::RequestBody;
use crate::telegram::api::{BotApi, object_output};
use crate::telegram::schemas;

/// `sendPhoto` by reference: a `file_id` Telegram already has, or an HTTPS URL Telegram fetches
/// itself. Uploading bytes (multipart) is not offered: a tool call carries no file.
pub(in crate::telegram) struct SendPhoto {
    definition: ToolDefinition,
    api: BotApi,
}

impl SendPhoto {
    pub(in crate::telegram) fn new(api: BotApi) -> Self {
        let properties = schemas::properties([
            ("chat_id", schemas::chat_id()),
            (
                "photo",
                json!({
                    "type": "string",
                    "minLength": 1,
                    "description": "An https:// URL of the image (JPEG/PNG, at most 5 MB; Telegram downloads it) \
                                    or the file_id of a photo Telegram already has."
                }),
            ),
            (
                "caption",
                json!({ "type": "string", "maxLength": 1024, "description": "Text under the photo, at most 1024 characters." }),
            ),
            ("parse_mode", schemas::parse_mode("caption")),
            ("has_spoiler", schemas::flag("Blur the photo until it is tapped.")),
            ("disable_notification", schemas::flag("Deliver silently: recipients get no sound.")),
        ]);
        let definition = ToolDefinition::new(
            Platform::Telegram,
            "send_photo",
            "Telegram: send a photo",
            "Sends a photo from the bot to a chat, given its HTTPS URL or a Telegram file_id, with an \
             optional caption. Returns the sent message with the photo's sizes.",
            properties,
            &["chat_id", "photo"],
        )
        .with_output_schema(schemas::message())
        .log_arguments(&["chat_id", "parse_mode", "has_spoiler", "disable_notification"]);
        Self { definition, api }
    }
}

#[async_trait]
impl Tool for SendPhoto {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, credential: &Secret<Value>, arguments: Map<String, Value>) -> Result<ToolOutput, ToolFailure> {
        let photo = arguments.get("photo").and_then(Value::as_str).unwrap_or_default();
        check_photo_reference(photo)?;
        let body = RequestBody::default().copy(
            &arguments,
            &["chat_id", "photo", "caption", "parse_mode", "has_spoiler", "disable_notification"],
        );
        let message = self.api.call(credential, "sendPhoto", body.into_map()).await?;
        object_output("sendPhoto", message)
    }
}

/// A URL must be HTTPS: plain HTTP can be altered on the way, and other schemes mean nothing to
/// Telegram. Anything without `://` is taken as a file_id.
fn check_photo_reference(photo: &str) -> Result<(), ToolFailure> {
    match photo.split_once("://") {
        Some((scheme, _)) if !scheme.eq_ignore_ascii_case("https") => Err(ToolFailure::invalid_arguments(format!(
            "`photo` must be an https:// URL or a Telegram file_id, not a {scheme}:// URL"
        ))),
        _ => Ok(()),
    }
}
