use async_trait::async_trait;
use serde_json::{Map, Value};
use squaremcp_core::tool::{Tool, ToolDefinition, ToolFailure, ToolOutput};
use squaremcp_core::{Platform, Secret};

use crate::telegram::api::{BotApi, object_output};
use crate::telegram::schemas;

/// `getMe`: who the bot is. Also the cheapest way to check that a token works.
pub(in crate::telegram) struct GetMe {
    definition: ToolDefinition,
    api: BotApi,
}

impl GetMe {
    pub(in crate::telegram) fn new(api: BotApi) -> Self {
        let definition = ToolDefinition::new(
            Platform::Telegram,
            "get_me",
            "Telegram: get the bot",
            "Returns the connected Telegram bot's own profile (id, name, @username, what it may do). \
             Use it to check that the bot token works.",
            Map::new(),
            &[],
        )
        .with_output_schema(schemas::user())
        .with_annotations(squaremcp_core::tool::Annotations::READ);
        Self { definition, api }
    }
}

#[async_trait]
impl Tool for GetMe {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, credential: &Secret<Value>, _arguments: Map<String, Value>) -> Result<ToolOutput, ToolFailure> {
        let user = self.api.call(credential, "getMe", Map::new()).await?;
        object_output("getMe", user)
    }
}
