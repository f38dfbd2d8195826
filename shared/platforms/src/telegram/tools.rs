//! The five Telegram tools as rows of data, run by the kit's generic HTTP handler. Each is a
//! `POST /bot<token>/<method>` with a JSON body; arguments are flat and model-friendly, and the
//! nested Bot API objects (`reply_parameters`, `link_preview_options`) are built by conversions.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use squaremcp_core::Secret;
use squaremcp_core::tool::{Annotations, FailureKind, Tool, ToolDefinition, ToolFailure, ToolOutput};

use super::dialect::TelegramDialect;
use super::{schemas, webhook};
use crate::kit::spec::{flag, integer, integer_between, normalized, text};
use crate::kit::{Arg, HttpApi, HttpTool, HttpToolSpec, Output, PlatformContext, Records, ToolSpec};

/// The longest long poll actually sent. Callers may ask for up to 50 s, but the HTTP client gives
/// up after 30 s and so does an API Gateway request, so a longer wait would turn "no updates yet"
/// into a timeout that holds the Lambda to its limit.
const MAX_LONG_POLL_SECONDS: u64 = 20;

/// Passing `offset` confirms, i.e. deletes, earlier updates for every reader of the bot, yet the
/// same offset twice gives the same answer: destructive and idempotent, not read-only.
const GET_UPDATES: Annotations = Annotations { read_only: false, destructive: true, idempotent: true, open_world: true };

/// Every Telegram tool, sharing one client. `get_updates` reads the webhook buffer when the bot
/// is in webhook mode (see [`BufferedOrPolled`]).
pub(super) fn build(context: &PlatformContext) -> Vec<Arc<dyn Tool>> {
    let api = Arc::new(HttpApi::new(context.http.clone(), context.origin.clone(), TelegramDialect));
    rows()
        .into_iter()
        .map(|row| {
            let polled = row.spec.name == "get_updates";
            let tool = Arc::new(HttpTool::new(row, api.clone())) as Arc<dyn Tool>;
            match &context.records {
                Some(records) if polled => Arc::new(BufferedOrPolled { polling: tool, records: records.clone() }) as Arc<dyn Tool>,
                _ => tool,
            }
        })
        .collect()
}

/// `get_updates` for a bot in webhook mode answers from the updates the gateway received
/// (Telegram refuses `getUpdates` while a webhook is set); otherwise it polls Telegram.
struct BufferedOrPolled {
    polling: Arc<dyn Tool>,
    records: Records,
}

#[async_trait]
impl Tool for BufferedOrPolled {
    fn definition(&self) -> &ToolDefinition {
        self.polling.definition()
    }

    async fn call(&self, credential: &Secret<Value>, arguments: Map<String, Value>) -> Result<ToolOutput, ToolFailure> {
        let Some(bot_id) = webhook::bot_id_of(credential.expose()) else { return self.polling.call(credential, arguments).await };
        let offset = arguments.get("offset").and_then(Value::as_f64).map(|o| o as i64);
        let limit = arguments.get("limit").and_then(Value::as_f64).map_or(100, |l| l.clamp(1.0, 100.0) as usize);
        let (store, clock) = (self.records.store.as_ref(), self.records.clock.as_ref());
        match webhook::buffered_updates(store, clock, &bot_id, offset, limit).await {
            Ok(Some(updates)) => Ok(ToolOutput { structured: json!({ "updates": updates }) }),
            Ok(None) => self.polling.call(credential, arguments).await,
            Err(e) => {
                tracing::error!(error = %e, "the Telegram update buffer could not be read");
                Err(ToolFailure::new(FailureKind::UpstreamTransient, "The gateway could not read the bot's updates. Try again shortly."))
            }
        }
    }
}

/// In the order `tools/list` shows them.
fn rows() -> Vec<HttpToolSpec> {
    vec![
        HttpToolSpec::post(
            ToolSpec::new(
                "get_me",
                "Telegram: get the bot",
                "Returns the connected Telegram bot's own profile (id, name, @username, what it may do). \
                 Use it to check that the bot token works.",
                Annotations::READ,
            )
            .output(schemas::user()),
            "/getMe",
        )
        .operation("getMe"),
        HttpToolSpec::post(
            ToolSpec::new(
                "send_message",
                "Telegram: send a message",
                "Sends a text message from the bot to a chat (a person who started the bot, a group or a \
                 channel the bot belongs to). Returns the sent message.",
                Annotations::WRITE,
            )
            .arg(Arg::new("chat_id", schemas::chat_id()).required().logged())
            .arg(Arg::new("text", text(4096, "The message, 1 to 4096 characters after formatting is parsed.")).required())
            .arg(Arg::new("parse_mode", schemas::parse_mode("text")).logged())
            .arg(Arg::new("disable_notification", flag("Deliver silently: recipients get no sound.")).logged())
            .arg(Arg::new("protect_content", flag("Stop the message from being forwarded or saved.")).logged())
            .arg(Arg::new("message_thread_id", integer("The forum topic to post in (supergroups with topics only).")).logged())
            .arg(
                Arg::new("reply_to_message_id", integer("The id of a message in the same chat to reply to."))
                    .logged()
                    .renamed("reply_parameters")
                    .converted(|id| Ok(json!({ "message_id": normalized(id) }))),
            )
            .arg(
                Arg::new("link_preview_disabled", flag("True to send links without a preview."))
                    .logged()
                    .renamed("link_preview_options")
                    .converted(|disabled| Ok(json!({ "is_disabled": disabled }))),
            )
            .output(schemas::message()),
            "/sendMessage",
        )
        .operation("sendMessage"),
        // By reference only: a file_id Telegram already has, or an HTTPS URL it fetches itself.
        // Uploading bytes (multipart) is not offered: a tool call carries no file.
        HttpToolSpec::post(
            ToolSpec::new(
                "send_photo",
                "Telegram: send a photo",
                "Sends a photo from the bot to a chat, given its HTTPS URL or a Telegram file_id, with an \
                 optional caption. Returns the sent message with the photo's sizes.",
                Annotations::WRITE,
            )
            .arg(Arg::new("chat_id", schemas::chat_id()).required().logged())
            .arg(
                Arg::new(
                    "photo",
                    json!({
                        "type": "string",
                        "minLength": 1,
                        "description": "An https:// URL of the image (JPEG/PNG, at most 5 MB; Telegram downloads it) \
                                        or the file_id of a photo Telegram already has."
                    }),
                )
                .required()
                .converted(photo_reference),
            )
            .arg(Arg::new(
                "caption",
                json!({ "type": "string", "maxLength": 1024, "description": "Text under the photo, at most 1024 characters." }),
            ))
            .arg(Arg::new("parse_mode", schemas::parse_mode("caption")).logged())
            .arg(Arg::new("has_spoiler", flag("Blur the photo until it is tapped.")).logged())
            .arg(Arg::new("disable_notification", flag("Deliver silently: recipients get no sound.")).logged())
            .output(schemas::message()),
            "/sendPhoto",
        )
        .operation("sendPhoto"),
        HttpToolSpec::post(
            ToolSpec::new(
                "get_updates",
                "Telegram: get updates",
                "Returns the bot's incoming updates (messages sent to it, edits, channel posts, button presses), \
                 oldest first, as {\"updates\": [...]}. Unconfirmed updates are kept for 24 hours. When the bot is \
                 in webhook mode on this gateway, the updates it received are returned (at most the newest 100; \
                 `timeout` and `allowed_updates` do not apply).",
                GET_UPDATES,
            )
            .arg(
                Arg::new(
                    "offset",
                    integer(
                        "The first update_id to return: the last update_id you saw plus 1. This confirms (deletes) every \
                         earlier update for good. A negative value returns the last -offset updates. Leave it out to get \
                         the oldest unconfirmed updates.",
                    ),
                )
                .logged(),
            )
            .arg(Arg::new("limit", integer_between(1, 100, "At most this many updates (1 to 100, default 100).")).logged())
            .arg(
                Arg::new(
                    "timeout",
                    integer_between(
                        0,
                        50,
                        &format!(
                            "Seconds to wait for an update when there is none yet (long polling; default 0). \
                             Values above {MAX_LONG_POLL_SECONDS} wait {MAX_LONG_POLL_SECONDS} seconds."
                        ),
                    ),
                )
                .logged()
                .converted(capped_long_poll),
            )
            .arg(
                Arg::new(
                    "allowed_updates",
                    json!({
                        "type": "array",
                        "items": { "type": "string", "minLength": 1 },
                        "maxItems": 30,
                        "description": "Update kinds to receive, e.g. [\"message\", \"callback_query\"]. Telegram remembers \
                                        the list for later calls; an empty list means all kinds except a few opt-in ones."
                    }),
                )
                .logged(),
            )
            .output(schemas::updates()),
            "/getUpdates",
        )
        .operation("getUpdates")
        .output(Output::ListAs("updates")),
        HttpToolSpec::post(
            ToolSpec::new(
                "get_chat",
                "Telegram: get a chat",
                "Returns what the bot can see of a chat: type, title or name, @username, description, \
                 pinned message, permissions. The bot must be a member of groups and channels it asks about.",
                Annotations::READ,
            )
            .arg(Arg::new("chat_id", schemas::chat_id()).required().logged())
            .output(schemas::chat()),
            "/getChat",
        )
        .operation("getChat"),
    ]
}

/// A URL must be HTTPS: plain HTTP can be altered on the way, and other schemes mean nothing to
/// Telegram. Anything without `://` is taken as a file_id.
fn photo_reference(photo: &Value) -> Result<Value, ToolFailure> {
    match photo.as_str().unwrap_or_default().split_once("://") {
        Some((scheme, _)) if !scheme.eq_ignore_ascii_case("https") => Err(ToolFailure::invalid_arguments(format!(
            "`photo` must be an https:// URL or a Telegram file_id, not a {scheme}:// URL"
        ))),
        _ => Ok(photo.clone()),
    }
}

/// See [`MAX_LONG_POLL_SECONDS`].
fn capped_long_poll(seconds: &Value) -> Result<Value, ToolFailure> {
    let seconds = seconds.as_f64().ok_or_else(|| ToolFailure::invalid_arguments("`timeout` must be a number of seconds"))?;
    Ok(json!((seconds.max(0.0) as u64).min(MAX_LONG_POLL_SECONDS)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_urls_or_file_ids_are_sent_as_photos() {
        for given in ["https://example.com/a.png", "HTTPS://example.com/a.png", "AgACAgQAAxkDAAIScWd0"] {
            assert_eq!(photo_reference(&json!(given)), Ok(json!(given)));
        }
        let failure = photo_reference(&json!("http://example.com/a.png")).expect_err("plain http");
        assert_eq!(failure.message, "`photo` must be an https:// URL or a Telegram file_id, not a http:// URL");
    }

    #[test]
    fn the_long_poll_is_capped() {
        assert_eq!(capped_long_poll(&json!(50)), Ok(json!(20)));
        assert_eq!(capped_long_poll(&json!(5.0)), Ok(json!(5)));
        assert_eq!(capped_long_poll(&json!(0)), Ok(json!(0)));
    }
}
