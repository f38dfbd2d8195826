//! How the Bot API differs from other HTTP APIs: the token is part of the URL path
//! (`{origin}/bot{token}/{method}`, no header), and every answer is an envelope,
//! `{"ok":true,"result":…}` or `{"ok":false,"error_code":N,"description":"…","parameters":{…}}`.
//! Transport, retries, logging and scrubbing the token from messages are the kit's.

use serde::Deserialize;
use serde_json::Value;
use squaremcp_core::Platform;
use squaremcp_core::tool::{FailureKind, ToolFailure};

use super::credential::BotToken;
use crate::kit::{Answer, Dialect, UpstreamRequest};

pub(crate) struct TelegramDialect;

#[derive(Deserialize)]
struct Envelope {
    ok: bool,
    result: Option<Value>,
    error_code: Option<u16>,
    description: Option<String>,
    parameters: Option<ResponseParameters>,
}

#[derive(Default, Deserialize)]
struct ResponseParameters {
    retry_after: Option<u64>,
    migrate_to_chat_id: Option<i64>,
}

impl Dialect for TelegramDialect {
    type Credential = BotToken;
    const PLATFORM: Platform = Platform::Telegram;
    const NAME: &'static str = "Telegram";

    fn url(&self, origin: &str, request: &UpstreamRequest, token: &BotToken) -> String {
        format!("{origin}/bot{}{}", token.expose(), request.path)
    }

    fn authorize(&self, request: reqwest::RequestBuilder, _token: &BotToken) -> reqwest::RequestBuilder {
        request
    }

    fn interpret(&self, method: &str, answer: Answer<'_>) -> Result<Value, ToolFailure> {
        let status = answer.status;
        let Ok(envelope) = serde_json::from_slice::<Envelope>(answer.body) else {
            tracing::warn!(platform = %Platform::Telegram, operation = method, status, "the answer is not a Bot API envelope");
            let kind = if (500..=599).contains(&status) { FailureKind::UpstreamTransient } else { FailureKind::Upstream };
            return Err(ToolFailure::new(
                kind,
                format!("Telegram answered {method} with HTTP {status} and a body that is not a Bot API response. Try again shortly."),
            ));
        };
        if envelope.ok {
            return envelope.result.ok_or_else(|| {
                ToolFailure::new(FailureKind::Upstream, format!("Telegram answered {method} with `ok` but no result. Try again shortly."))
            });
        }
        // Telegram mirrors `error_code` in the HTTP status; the envelope is the authority.
        let code = envelope.error_code.unwrap_or(status);
        Err(refusal(method, code, envelope))
    }
}

/// Maps an `ok: false` envelope to what the person can do about it.
fn refusal(method: &str, code: u16, envelope: Envelope) -> ToolFailure {
    let description = envelope.description.unwrap_or_else(|| "no description".to_owned());
    let parameters = envelope.parameters.unwrap_or_default();
    match code {
        401 => ToolFailure::new(
            FailureKind::AuthRevoked,
            "Telegram rejected the bot token (401 Unauthorized). Create a new token with @BotFather and store it again.",
        ),
        // Telegram answers 404 when the token is malformed (the bot id and secret don't parse).
        404 => ToolFailure::new(
            FailureKind::AuthRevoked,
            format!(
                "Telegram did not recognise the bot token (404 Not Found on {method}). \
                 Copy the whole token from @BotFather and store it again."
            ),
        ),
        403 => ToolFailure::new(FailureKind::PermissionMissing, format!("Telegram refused {method}: {description}.")),
        400 => match parameters.migrate_to_chat_id {
            Some(new_chat_id) => ToolFailure::invalid_arguments(format!(
                "Telegram rejected {method}: the group became a supergroup; use chat_id {new_chat_id} instead."
            )),
            None => ToolFailure::invalid_arguments(format!("Telegram rejected {method}: {description}.")),
        },
        // A webhook set on the bot is a standing setting (retrying won't help); a second poller
        // is usually gone after a while.
        409 if description.contains("webhook") => ToolFailure::new(
            FailureKind::NotConfigured,
            format!(
                "Telegram refused {method} because this bot has a webhook set, so Telegram delivers its updates \
                 there instead ({description}). Remove the webhook (deleteWebhook) to read updates here."
            ),
        ),
        409 => ToolFailure::new(
            FailureKind::Upstream,
            format!(
                "Telegram refused {method} because another program is reading this bot's updates at the same time \
                 ({description}). Telegram allows one reader per bot: stop the other one, or wait and retry."
            ),
        ),
        429 => ToolFailure::rate_limited(
            match parameters.retry_after {
                Some(seconds) => format!("Telegram is rate limiting this bot; retry after {seconds} seconds."),
                None => format!("Telegram is rate limiting this bot ({description}); wait a little and retry."),
            },
            parameters.retry_after,
        ),
        500..=599 => ToolFailure::new(
            FailureKind::UpstreamTransient,
            format!("Telegram had a problem with {method} ({code}: {description}). Try again shortly."),
        ),
        _ => ToolFailure::new(FailureKind::Upstream, format!("Telegram answered {method} with error {code}: {description}.")),
    }
}
