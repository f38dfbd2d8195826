use async_trait::async_trait;
use serde_json::{Map, Value, json};
use squaremcp_core::tool::{FailureKind, Tool, ToolDefinition, ToolFailure, ToolOutput};
use squaremcp_core::{Platform, Secret};

use crate::arguments::RequestBody;
use crate::telegram::api::BotApi;
use crate::telegram::schemas;

/// The longest long poll actually sent. Callers may ask for up to 50 s, but the HTTP client gives
/// up after 30 s and so does an API Gateway request, so a longer wait would turn "no updates yet"
/// into a timeout that holds the Lambda to its limit.
const MAX_LONG_POLL_SECONDS: u64 = 20;

/// `getUpdates`: the bot's incoming updates (messages, edits, button presses…).
///
/// Not marked read-only: passing `offset` confirms every earlier update, and Telegram then
/// deletes them for every reader of this bot. A client should ask before doing that.
pub(in crate::telegram) struct GetUpdates {
    definition: ToolDefinition,
    api: BotApi,
}

impl GetUpdates {
    pub(in crate::telegram) fn new(api: BotApi) -> Self {
        let properties = schemas::properties([
            (
                "offset",
                schemas::integer(
                    "The first update_id to return: the last update_id you saw plus 1. This confirms (deletes) every \
                     earlier update for good. A negative value returns the last -offset updates. Leave it out to get \
                     the oldest unconfirmed updates.",
                ),
            ),
            (
                "limit",
                json!({ "type": "integer", "minimum": 1, "maximum": 100, "description": "At most this many updates (1 to 100, default 100)." }),
            ),
            (
                "timeout",
                json!({
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 50,
                    "description": format!(
                        "Seconds to wait for an update when there is none yet (long polling; default 0). \
                         Values above {MAX_LONG_POLL_SECONDS} wait {MAX_LONG_POLL_SECONDS} seconds."
                    )
                }),
            ),
            (
                "allowed_updates",
                json!({
                    "type": "array",
                    "items": { "type": "string", "minLength": 1 },
                    "maxItems": 30,
                    "description": "Update kinds to receive, e.g. [\"message\", \"callback_query\"]. Telegram remembers \
                                    the list for later calls; an empty list means all kinds except a few opt-in ones."
                }),
            ),
        ]);
        let definition = ToolDefinition::new(
            Platform::Telegram,
            "get_updates",
            "Telegram: get updates",
            "Returns the bot's incoming updates (messages sent to it, edits, channel posts, button presses), \
             oldest first, as {\"updates\": [...]}. Telegram keeps unconfirmed updates for 24 hours. It fails \
             while the bot has a webhook set.",
            properties,
            &[],
        )
        .with_output_schema(schemas::updates())
        .log_arguments(&["offset", "limit", "timeout", "allowed_updates"]);
        Self { definition, api }
    }
}

#[async_trait]
impl Tool for GetUpdates {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, credential: &Secret<Value>, arguments: Map<String, Value>) -> Result<ToolOutput, ToolFailure> {
        let mut body = RequestBody::default().copy(&arguments, &["offset", "limit", "allowed_updates"]);
        if let Some(seconds) = arguments.get("timeout").and_then(Value::as_f64) {
            let capped = (seconds.max(0.0) as u64).min(MAX_LONG_POLL_SECONDS);
            body.insert("timeout", json!(capped));
        }
        let updates = self.api.call(credential, "getUpdates", body.into_map()).await?;
        if !updates.is_array() {
            return Err(ToolFailure::new(
                FailureKind::Upstream,
                "Telegram answered getUpdates with an unexpected result (not a list).",
            ));
        }
        Ok(ToolOutput { structured: json!({ "updates": updates }) })
    }
}
