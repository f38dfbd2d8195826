//! How Discord's API differs: `Authorization: Bot <token>`, a descriptive User-Agent, and
//! refusals as `{"code": N, "message": "…"}` (an `errors` tree for 50035, `retry_after` for 429).
//! Transport, retries, logging and scrubbing the token are the kit's.

use reqwest::header::{AUTHORIZATION, USER_AGENT};
use serde_json::Value;
use squaremcp_core::Platform;
use squaremcp_core::tool::{FailureKind, ToolFailure};

use super::credential::BotToken;
use crate::kit::http::{retry_after_header, seconds_rounded_up};
use crate::kit::{Answer, Dialect};

// The operations as Discord's documentation names them; messages and permission hints use them.
pub(super) const GET_CURRENT_USER: &str = "Get Current User";
pub(super) const GET_CURRENT_USER_GUILDS: &str = "Get Current User Guilds";
pub(super) const GET_GUILD_CHANNELS: &str = "Get Guild Channels";
pub(super) const CREATE_MESSAGE: &str = "Create Message";
pub(super) const GET_CHANNEL_MESSAGES: &str = "Get Channel Messages";

/// Discord asks bots for `DiscordBot ($url, $versionNumber)`.
const AGENT: &str = concat!("DiscordBot (https://github.com/squaremcp/squaremcp, ", env!("CARGO_PKG_VERSION"), ")");

pub(crate) struct DiscordDialect;

impl Dialect for DiscordDialect {
    type Credential = BotToken;
    const PLATFORM: Platform = Platform::Discord;
    const NAME: &'static str = "Discord";
    /// Discord bans an address for a while after 10,000 answers of 401, 403 or 429 in ten
    /// minutes, for every tenant behind it: a rejected token is not sent again.
    const REMEMBER_DEAD_CREDENTIALS: bool = true;

    fn authorize(&self, request: reqwest::RequestBuilder, token: &BotToken) -> reqwest::RequestBuilder {
        request.header(AUTHORIZATION, token.authorization.clone()).header(USER_AGENT, AGENT)
    }

    fn interpret(&self, operation: &str, answer: Answer<'_>) -> Result<Value, ToolFailure> {
        let (status, body) = (answer.status, serde_json::from_slice::<Value>(answer.body).ok());
        if (200..300).contains(&status) {
            let message = format!("Discord answered {operation} with a body that is not JSON.");
            return body.ok_or(ToolFailure::new(FailureKind::Upstream, message));
        }
        let body = body.unwrap_or(Value::Null);
        let code = body.get("code").and_then(Value::as_u64).unwrap_or(0);
        let said = format!("{} ({code})", body.get("message").and_then(Value::as_str).unwrap_or("no message"));
        let (kind, message) = match status {
            401 => (
                FailureKind::AuthRevoked,
                "Discord rejected the bot token (401 Unauthorized). Reset it in the Developer Portal \
                 (your application → Bot → Reset Token) and store it again."
                    .to_owned(),
            ),
            403 if matches!(code, 50001 | 50013) => {
                (FailureKind::PermissionMissing, format!("Discord refused {operation}: {said}. The bot needs {}.", needed(operation)))
            }
            403 => (FailureKind::PermissionMissing, format!("Discord refused {operation}: {said}.")),
            // 10xxx are Discord's "Unknown …" codes; a 404 without one is a path Discord lacks.
            404 if (10_000..11_000).contains(&code) => {
                (FailureKind::NotFound, format!("Discord answered {operation} with {said}: {}.", check(code)))
            }
            400 => {
                let field = body.get("errors").and_then(|errors| first_form_error(errors, "")).map(|e| format!(": {e}"));
                (FailureKind::InvalidInput, format!("Discord rejected {operation}: {said}{}.", field.unwrap_or_default()))
            }
            429 => return Err(rate_limited(operation, &answer, &body)),
            500..=599 => {
                (FailureKind::UpstreamTransient, format!("Discord had a problem with {operation} (HTTP {status}). Try again shortly."))
            }
            _ => (FailureKind::Upstream, format!("Discord answered {operation} with HTTP {status}: {said}.")),
        };
        Err(ToolFailure::new(kind, message))
    }
}

/// What each tool needs, for Missing Access (50001) and Missing Permissions (50013).
fn needed(operation: &str) -> &'static str {
    match operation {
        CREATE_MESSAGE => {
            "View Channel and Send Messages there (Send Messages in Threads for a thread); a server admin grants them \
             to its role or in the channel's settings"
        }
        GET_CHANNEL_MESSAGES => {
            "View Channel and Read Message History there; a server admin grants them to its role or in the channel's settings"
        }
        GET_GUILD_CHANNELS => "to be a member of that server: invite it with an OAuth2 link with the `bot` scope",
        _ => "a permission Discord did not name",
    }
}

fn check(code: u64) -> &'static str {
    match code {
        10003 => "check `channel_id` (discord_get_channels lists a server's channels)",
        10004 => "check `guild_id` (discord_get_guilds lists the bot's servers)",
        10008 => "check the message id (discord_get_messages lists a channel's messages)",
        _ => "check the ids given",
    }
}

/// The first offending field of a 50035 Invalid Form Body tree, e.g.
/// `{"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}}`.
fn first_form_error(errors: &Value, at: &str) -> Option<String> {
    let object = errors.as_object()?;
    if let Some(first) = object.get("_errors").and_then(|list| list.get(0)) {
        let what = first.get("message").and_then(Value::as_str).unwrap_or("invalid");
        // The model knows `reply_to`, which the tool sends as `message_reference`.
        let field = if at.starts_with("message_reference") { "reply_to" } else { at };
        return Some(if at.is_empty() { what.to_owned() } else { format!("`{field}`: {what}") });
    }
    object.iter().find_map(|(key, inner)| first_form_error(inner, &if at.is_empty() { key.clone() } else { format!("{at}.{key}") }))
}

/// A 429: the wait from `Retry-After`, else from the body's `retry_after` (float seconds), rounded up.
fn rate_limited(operation: &str, answer: &Answer<'_>, body: &Value) -> ToolFailure {
    let header = |name: &str| answer.headers.get(name).and_then(|v| v.to_str().ok());
    let retry_after =
        retry_after_header(answer.headers).or_else(|| body.get("retry_after").and_then(|s| seconds_rounded_up(&s.to_string())));
    let whom = if body.get("global").and_then(Value::as_bool) == Some(true) || header("x-ratelimit-global") == Some("true") {
        "this bot on all its requests (the global limit of 50 a second)".to_owned()
    } else if header("x-ratelimit-scope") == Some("shared") {
        format!("{operation} on this resource for everyone (a shared limit)")
    } else if body.is_null() {
        // Not Discord's JSON: its edge (Cloudflare) answers so when it blocks an address.
        "the gateway's address, possibly after too many invalid requests".to_owned()
    } else {
        format!("this bot on {operation}")
    };
    let wait = retry_after.map_or("wait a little and retry".to_owned(), |seconds| format!("retry after {seconds} seconds"));
    ToolFailure::rate_limited(format!("Discord is rate limiting {whom}; {wait}."), retry_after)
}
