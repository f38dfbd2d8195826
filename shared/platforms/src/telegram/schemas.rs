//! JSON Schemas shared by the Telegram tools: common arguments and the Bot API objects they return
//! (generic ones, like flags and integers, are the kit's).
//! Input schemas use only the keywords the gateway's validator knows (see `squaremcp_core::schema`).
//! Output schemas are loose on purpose: they promise the fields Telegram always sends and let
//! everything else through, so a new Bot API field never breaks a call.

use serde_json::{Value, json};

pub(super) fn chat_id() -> Value {
    json!({
        "type": ["integer", "string"],
        "minLength": 1,
        "description": "The chat: its numeric id (e.g. 123456789 for a person, -1001234567890 for a supergroup or channel) \
                        or the @username of a public channel or supergroup."
    })
}

pub(super) fn parse_mode(what: &str) -> Value {
    json!({
        "type": "string",
        "enum": ["MarkdownV2", "HTML", "Markdown"],
        "description": format!("How Telegram formats the {what}. Leave it out for plain text. Markdown is the legacy mode; prefer MarkdownV2 or HTML.")
    })
}

/// Telegram's `User`, as returned by getMe and inside messages.
pub(super) fn user() -> Value {
    json!({
        "type": "object",
        "required": ["id", "is_bot", "first_name"],
        "properties": {
            "id": { "type": "integer" },
            "is_bot": { "type": "boolean" },
            "first_name": { "type": "string" },
            "username": { "type": "string" }
        }
    })
}

/// Telegram's `Message`, as returned by the send methods.
pub(super) fn message() -> Value {
    json!({
        "type": "object",
        "required": ["message_id", "date", "chat"],
        "properties": {
            "message_id": { "type": "integer" },
            "date": { "type": "integer", "description": "Unix time" },
            "chat": chat(),
            "from": user(),
            "text": { "type": "string" },
            "caption": { "type": "string" },
            "photo": {
                "type": "array",
                "description": "The photo in each size Telegram made, smallest first.",
                "items": {
                    "type": "object",
                    "required": ["file_id", "file_unique_id", "width", "height"],
                    "properties": {
                        "file_id": { "type": "string" },
                        "file_unique_id": { "type": "string" },
                        "width": { "type": "integer" },
                        "height": { "type": "integer" },
                        "file_size": { "type": "integer" }
                    }
                }
            }
        }
    })
}

/// Telegram's `Chat` (in messages) and the `ChatFullInfo` of getChat share these fields.
pub(super) fn chat() -> Value {
    json!({
        "type": "object",
        "required": ["id", "type"],
        "properties": {
            "id": { "type": "integer" },
            "type": { "type": "string", "description": "private, group, supergroup or channel" },
            "title": { "type": "string" },
            "username": { "type": "string" }
        }
    })
}

/// getUpdates' list, wrapped because tool output must be an object.
pub(super) fn updates() -> Value {
    json!({
        "type": "object",
        "required": ["updates"],
        "properties": {
            "updates": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["update_id"],
                    "properties": {
                        "update_id": { "type": "integer" },
                        "message": message()
                    }
                }
            }
        }
    })
}
