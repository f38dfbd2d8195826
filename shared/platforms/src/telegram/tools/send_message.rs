use async_trait::async_trait;
use serde_json::{Map, Value, json};
use squaremcp_core::tool::{Tool, ToolDefinition, ToolFailure, ToolOutput};
use squaremcp_core::{Platform, Secret};

use crate::arguments::RequestBody;
use crate::telegram::api::{BotApi, object_output};
use crate::telegram::schemas;

/// `sendMessage`: a text message. Flat, model-friendly arguments; the nested Bot API objects
/// (`reply_parameters`, `link_preview_options`) are built here.
pub(in crate::telegram) struct SendMessage {
    definition: ToolDefinition,
    api: BotApi,
}

impl SendMessage {
    pub(in crate::telegram) fn new(api: BotApi) -> Self {
        let properties = schemas::properties([
            ("chat_id", schemas::chat_id()),
            (
                "text",
                json!({
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 4096,
                    "description": "The message, 1 to 4096 characters after formatting is parsed."
                }),
            ),
            ("parse_mode", schemas::parse_mode("text")),
            ("disable_notification", schemas::flag("Deliver silently: recipients get no sound.")),
            ("protect_content", schemas::flag("Stop the message from being forwarded or saved.")),
            ("message_thread_id", schemas::integer("The forum topic to post in (supergroups with topics only).")),
            ("reply_to_message_id", schemas::integer("The id of a message in the same chat to reply to.")),
            ("link_preview_disabled", schemas::flag("True to send links without a preview.")),
        ]);
        let definition = ToolDefinition::new(
            Platform::Telegram,
            "send_message",
            "Telegram: send a message",
            "Sends a text message from the bot to a chat (a person who started the bot, a group or a \
             channel the bot belongs to). Returns the sent message.",
            properties,
            &["chat_id", "text"],
        )
        .with_output_schema(schemas::message())
        .log_arguments(&[
            "chat_id",
            "parse_mode",
            "disable_notification",
            "protect_content",
            "message_thread_id",
            "reply_to_message_id",
            "link_preview_disabled",
        ]);
        Self { definition, api }
    }
}

#[async_trait]
impl Tool for SendMessage {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, credential: &Secret<Value>, arguments: Map<String, Value>) -> Result<ToolOutput, ToolFailure> {
        let body = RequestBody::default()
            .copy(
                &arguments,
                &["chat_id", "text", "parse_mode", "disable_notification", "protect_content", "message_thread_id"],
            )
            .map(&arguments, "reply_to_message_id", "reply_parameters", |id| json!({ "message_id": id }))
            .map(&arguments, "link_preview_disabled", "link_preview_options", |disabled| json!({ "is_disabled": disabled }));
        let message = self.api.call(credential, "sendMessage", body.into_map()).await?;
        object_output("sendMessage", message)
    }
}
