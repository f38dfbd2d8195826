use async_trait::async_trait;
use serde_json::{Map, Value};
use squaremcp_core::tool::{Tool, ToolDefinition, ToolFailure, ToolOutput};
use squaremcp_core::{Platform, Secret};

use crate::arguments::RequestBody;
use crate::telegram::api::{BotApi, object_output};
use crate::telegram::schemas;

/// `getChat`: everything Telegram tells a bot about one chat (`ChatFullInfo`).
pub(in crate::telegram) struct GetChat {
    definition: ToolDefinition,
    api: BotApi,
}

impl GetChat {
    pub(in crate::telegram) fn new(api: BotApi) -> Self {
        let definition = ToolDefinition::new(
            Platform::Telegram,
            "get_chat",
            "Telegram: get a chat",
            "Returns what the bot can see of a chat: type, title or name, @username, description, \
             pinned message, permissions. The bot must be a member of groups and channels it asks about.",
            schemas::properties([("chat_id", schemas::chat_id())]),
            &["chat_id"],
        )
        .with_output_schema(schemas::chat())
        .log_arguments(&["chat_id"])
        .with_annotations(squaremcp_core::tool::Annotations::READ);
        Self { definition, api }
    }
}

#[async_trait]
impl Tool for GetChat {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, credential: &Secret<Value>, arguments: Map<String, Value>) -> Result<ToolOutput, ToolFailure> {
        let body = RequestBody::default().copy(&arguments, &["chat_id"]);
        let chat = self.api.call(credential, "getChat", body.into_map()).await?;
        object_output("getChat", chat)
    }
}
