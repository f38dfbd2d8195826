//! The five Discord tools as rows of data, run by the kit's generic HTTP handler, and their
//! schemas. Ids (snowflakes) are strings: they exceed what a JSON number holds exactly.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use squaremcp_core::Secret;
use squaremcp_core::tool::{Annotations, FailureKind, Tool, ToolDefinition, ToolFailure, ToolOutput};

use super::dialect::{self, DiscordDialect};
use crate::kit::object_schema as object;
use crate::kit::spec::{flag, integer_between, text};
use crate::kit::{Arg, HttpApi, HttpTool, HttpToolSpec, Output, PlatformContext, ToolSpec};

/// Every Discord tool, sharing one client.
pub(super) fn build(context: &PlatformContext) -> Vec<Arc<dyn Tool>> {
    let api = Arc::new(HttpApi::new(context.http.clone(), context.origin.clone(), DiscordDialect));
    let [get_me, get_guilds, get_channels, send_message, get_messages] = rows();
    let tool = |row| -> Arc<dyn Tool> { Arc::new(HttpTool::new(row, api.clone())) };
    let get_messages = Arc::new(OneDirection(HttpTool::new(get_messages, api.clone())));
    vec![tool(get_me), tool(get_guilds), tool(get_channels), tool(send_message), get_messages]
}

/// In the order `tools/list` shows them.
fn rows() -> [HttpToolSpec; 5] {
    let channel_id = || Arg::new("channel_id", snowflake("The channel or thread, from discord_get_channels."));
    let channel_id = || channel_id().required().logged().in_path();
    let query = |name, schema| Arg::new(name, schema).logged().in_query();
    [
        HttpToolSpec::get(
            ToolSpec::new("get_me", "Discord: get the bot", "Returns the connected Discord bot's own user (id, username, avatar; \
                `bot` is true). Use it to check that the bot token works.", Annotations::READ)
            .output(user()),
            "/users/@me",
        )
        .operation(dialect::GET_CURRENT_USER),
        HttpToolSpec::get(
            ToolSpec::new("get_guilds", "Discord: list the bot's servers", "Lists the servers (guilds) the bot is a member of, by id, \
                as {\"guilds\": [...]}, at most 200 at a time: for more, call again with `after` set to the last id. `permissions` \
                is the bot's permission bit set there, as a string.", Annotations::READ)
            .arg(query("limit", integer_between(1, 200, "At most this many servers (1 to 200, default 200).")))
            .arg(query("before", snowflake("Only servers with ids before this one.")))
            .arg(query("after", snowflake("Only servers with ids after this one.")))
            .arg(query("with_counts", flag("True to add approximate member and online counts.")))
            .output(list_of("guilds", guild())),
            "/users/@me/guilds",
        )
        .operation(dialect::GET_CURRENT_USER_GUILDS)
        .output(Output::ListAs("guilds")),
        HttpToolSpec::get(
            ToolSpec::new("get_channels", "Discord: list a server's channels", "Lists a server's channels as {\"channels\": [...]}: \
                `type` 0 is a text channel, 2 voice, 4 a category, 5 announcements, 13 stage, 15 forum, 16 media. Threads are not \
                included. The bot must be a member of the server.", Annotations::READ)
            .arg(Arg::new("guild_id", snowflake("The server, from discord_get_guilds.")).required().logged().in_path())
            .output(list_of("channels", channel())),
            "/guilds/{guild_id}/channels",
        )
        .operation(dialect::GET_GUILD_CHANNELS)
        .output(Output::ListAs("channels")),
        HttpToolSpec::post(
            ToolSpec::new("send_message", "Discord: send a message", "Posts a message as the bot in a channel or thread and returns \
                it. Mentions in `content` (@everyone, @here, roles, people) are shown but notify no one unless `allow_mentions` is \
                true. The bot needs View Channel and Send Messages there (Send Messages in Threads for a thread).", Annotations::WRITE)
            .arg(channel_id())
            .arg(Arg::new("content", text(2000, "The message, 1 to 2000 characters of Discord markdown.")).required())
            .arg(Arg::new("reply_to", snowflake("A message in the same channel to reply to.")).logged().renamed("message_reference")
                .converted(|id| Ok(json!({ "message_id": id }))))
            .arg(Arg::new("allow_mentions", flag("True to let mentions in `content` notify people, @everyone and @here included \
                    when the bot may use them. Only when the person asked to ping.")).logged().renamed("allowed_mentions")
                .converted(|allow| Ok(mentions(allow.as_bool() == Some(true)))))
            .output(message()),
            "/channels/{channel_id}/messages",
        )
        .operation(dialect::CREATE_MESSAGE)
        // Unless the caller opts in: text from a model must not ping a whole server.
        .fixed("allowed_mentions", mentions(false)),
        HttpToolSpec::get(
            ToolSpec::new("get_messages", "Discord: read a channel's messages", "Returns a channel's messages, newest first, as \
                {\"messages\": [...]}. `before` and `after` are exclusive: give at most one; the message with that id is not \
                included. The bot needs View Channel and Read Message History. Without the Message Content privileged intent, \
                other people's messages come back empty and the result has a `note` saying how to switch it on.", Annotations::READ)
            .arg(channel_id())
            .arg(query("limit", integer_between(1, 100, "At most this many messages (1 to 100, default 50).")))
            .arg(query("before", snowflake("Only messages older than this message.")))
            .arg(query("after", snowflake("Only messages newer than this message.")))
            .output(object(&["messages"], json!({ "messages": { "type": "array", "items": message() }, "note": { "type": "string" } }))),
            "/channels/{channel_id}/messages",
        )
        .operation(dialect::GET_CHANNEL_MESSAGES)
        .output(Output::Custom(with_intent_note)),
    ]
}

fn mentions(allow: bool) -> Value {
    if allow { json!({ "parse": ["users", "roles", "everyone"] }) } else { json!({ "parse": [] }) }
}

/// Discord answers `before` and `after` together with one page in one direction, silently; a
/// refusal tells the model instead.
struct OneDirection(HttpTool<DiscordDialect>);

#[async_trait]
impl Tool for OneDirection {
    fn definition(&self) -> &ToolDefinition {
        self.0.definition()
    }

    async fn call(&self, credential: &Secret<Value>, arguments: Map<String, Value>) -> Result<ToolOutput, ToolFailure> {
        if arguments.contains_key("before") && arguments.contains_key("after") {
            return Err(ToolFailure::invalid_arguments("Give `before` or `after`, not both: `before` pages back in time, `after` forward."));
        }
        self.0.call(credential, arguments).await
    }
}

const MESSAGE_CONTENT_NOTE: &str = "Some messages came back empty: the bot lacks the Message Content privileged intent, \
    which Discord requires to read other people's messages (its own, direct messages and messages that mention it are \
    exempt). Switch it on in the Developer Portal: your application → Bot → Privileged Gateway Intents → Message \
    Content Intent. Apps seen by 10,000 users or more must apply to Discord for it.";

/// Wraps the list, with [`MESSAGE_CONTENT_NOTE`] when a person's ordinary message came back with
/// nothing in it: that is how Discord withholds content from bots without the intent.
fn with_intent_note(result: Value) -> Result<Value, ToolFailure> {
    let unexpected = format!("Discord answered {} with an unexpected result (not a list).", dialect::GET_CHANNEL_MESSAGES);
    let Value::Array(messages) = result else { return Err(ToolFailure::new(FailureKind::Upstream, unexpected)) };
    let empty = |m: &Value, key: &str| m.get(key).is_none_or(|v| v.is_null() || v == "" || v.as_array().is_some_and(Vec::is_empty));
    let withheld = messages.iter().any(|m| {
        // Types 0 and 19 are plain messages and replies; system messages are empty by nature.
        let ordinary = matches!(m.get("type").and_then(Value::as_u64), None | Some(0 | 19));
        let from_bot = m.pointer("/author/bot").and_then(Value::as_bool) == Some(true);
        ordinary && !from_bot && ["content", "embeds", "attachments", "sticker_items", "poll"].iter().all(|key| empty(m, key))
    });
    let mut output = json!({ "messages": messages });
    if withheld {
        output["note"] = json!(MESSAGE_CONTENT_NOTE);
    }
    Ok(output)
}

// Schemas: inputs use only the keywords the gateway's validator knows; outputs promise the fields
// Discord always sends and let everything else through.

fn snowflake(description: &str) -> Value {
    let description = format!("{description} A Discord id: 17 to 20 digits, as a string.");
    json!({ "type": "string", "minLength": 17, "maxLength": 20, "description": description })
}

fn list_of(key: &str, item: Value) -> Value {
    object(&[key], json!({ key: { "type": "array", "items": item } }))
}

fn user() -> Value {
    let (text, maybe) = (json!({ "type": "string" }), json!({ "type": ["string", "null"] }));
    let properties = json!({ "id": text, "username": text, "global_name": maybe, "avatar": maybe, "bot": { "type": "boolean" } });
    object(&["id", "username"], properties)
}

fn guild() -> Value {
    let (text, maybe) = (json!({ "type": "string" }), json!({ "type": ["string", "null"] }));
    let properties = json!({ "id": text, "name": text, "icon": maybe, "owner": { "type": "boolean" }, "permissions": text,
        "features": { "type": "array", "items": text }, "approximate_member_count": { "type": "integer" } });
    object(&["id", "name"], properties)
}

fn channel() -> Value {
    let (text, maybe, integer) = (json!({ "type": "string" }), json!({ "type": ["string", "null"] }), json!({ "type": "integer" }));
    object(&["id", "type"], json!({ "id": text, "type": integer, "name": maybe, "position": integer, "parent_id": maybe }))
}

fn message() -> Value {
    let text = json!({ "type": "string" });
    let properties = json!({ "id": text, "channel_id": text, "author": user(), "content": text, "timestamp": text,
        "mention_everyone": { "type": "boolean" }, "message_reference": { "type": "object", "properties": { "message_id": text } } });
    object(&["id", "channel_id", "author", "content", "timestamp"], properties)
}
