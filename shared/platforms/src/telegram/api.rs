//! The one way the Telegram tools reach the Bot API: build the URL, send the JSON body, read the
//! envelope, and turn every failure into a [`ToolFailure`] a person can act on.
//!
//! Secrecy: the token is part of the URL path. Only method names are logged, reqwest errors lose
//! their URL before anything reads them, and every failure message is scrubbed of the token in
//! case Telegram (or a proxy in front of it) ever echoes it back.

use serde::Deserialize;
use serde_json::{Map, Value};
use squaremcp_core::Secret;
use squaremcp_core::tool::{FailureKind, ToolFailure, ToolOutput};

use super::credential::BotToken;

const REDACTED: &str = "[bot token]";

#[derive(Clone, Debug)]
pub(crate) struct BotApi {
    http: reqwest::Client,
    base_url: String,
}

/// `{"ok":true,"result":…}` or `{"ok":false,"error_code":N,"description":"…","parameters":{…}}`.
#[derive(Deserialize)]
struct Envelope {
    ok: bool,
    result: Option<Value>,
    error_code: Option<u16>,
    description: Option<String>,
    parameters: Option<ResponseParameters>,
}

#[derive(Deserialize)]
struct ResponseParameters {
    retry_after: Option<u64>,
    migrate_to_chat_id: Option<i64>,
}

impl BotApi {
    pub(crate) fn new(http: reqwest::Client, base_url: &str) -> Self {
        Self { http, base_url: base_url.trim_end_matches('/').to_owned() }
    }

    /// Calls `method` with `params` as the JSON body and returns Telegram's `result`.
    pub(crate) async fn call(
        &self,
        credential: &Secret<Value>,
        method: &'static str,
        params: Map<String, Value>,
    ) -> Result<Value, ToolFailure> {
        let token = BotToken::from_document(credential.expose()).map_err(|why| {
            ToolFailure::new(
                FailureKind::NotConfigured,
                format!("The stored Telegram credential is not usable: {why}. Store it again."),
            )
        })?;
        self.send(&token, method, params).await.map_err(|mut failure| {
            failure.message = scrub(&failure.message, &token);
            failure
        })
    }

    async fn send(&self, token: &BotToken, method: &'static str, params: Map<String, Value>) -> Result<Value, ToolFailure> {
        let url = format!("{}/bot{}/{method}", self.base_url, token.expose());
        tracing::debug!(method, "calling the Telegram Bot API");
        let response = self.http.post(url).json(&params).send().await.map_err(|e| transport_failure(method, e, token))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| transport_failure(method, e, token))?;
        let Ok(envelope) = serde_json::from_slice::<Envelope>(&body) else {
            tracing::warn!(method, status, "Telegram's answer is not a Bot API envelope");
            return Err(upstream(format!(
                "Telegram answered {method} with HTTP {status} and a body that is not a Bot API response. Try again shortly."
            )));
        };
        if envelope.ok {
            return envelope
                .result
                .ok_or_else(|| upstream(format!("Telegram answered {method} with `ok` but no result. Try again shortly.")));
        }
        let code = envelope.error_code.unwrap_or(status);
        tracing::debug!(method, status, code, "Telegram refused the call");
        Err(refusal(method, code, envelope))
    }
}

/// The result as a tool output, which must be a JSON object.
pub(crate) fn object_output(method: &str, result: Value) -> Result<ToolOutput, ToolFailure> {
    if result.is_object() {
        Ok(ToolOutput { structured: result })
    } else {
        Err(upstream(format!("Telegram answered {method} with an unexpected result (not an object).")))
    }
}

/// Maps an `ok: false` envelope; `code` is its `error_code` (Telegram mirrors it in the HTTP status).
fn refusal(method: &str, code: u16, envelope: Envelope) -> ToolFailure {
    let description = envelope.description.unwrap_or_else(|| "no description".to_owned());
    let parameters = envelope.parameters.unwrap_or(ResponseParameters { retry_after: None, migrate_to_chat_id: None });
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
        409 => upstream(format!(
            "Telegram refused {method} because another program is reading this bot's updates at the same time \
             ({description}). Telegram allows one reader per bot: stop the other one, or wait and retry."
        )),
        429 => {
            let mut failure = ToolFailure::new(
                FailureKind::RateLimited,
                match parameters.retry_after {
                    Some(seconds) => format!("Telegram is rate limiting this bot; retry after {seconds} seconds."),
                    None => format!("Telegram is rate limiting this bot ({description}); wait a little and retry."),
                },
            );
            failure.retry_after = parameters.retry_after;
            failure
        }
        500..=599 => upstream(format!("Telegram had a problem with {method} ({code}: {description}). Try again shortly.")),
        _ => upstream(format!("Telegram answered {method} with error {code}: {description}.")),
    }
}

/// A failure before a Bot API answer arrived. The URL (with the token) is dropped first.
fn transport_failure(method: &str, error: reqwest::Error, token: &BotToken) -> ToolFailure {
    let error = error.without_url();
    tracing::warn!(method, error = %scrub(&error_chain(&error), token), "the Telegram request failed");
    let message = if error.is_timeout() {
        format!("Telegram did not answer {method} in time. Try again shortly.")
    } else if error.is_connect() {
        "The gateway could not connect to the Telegram Bot API. Try again shortly.".to_owned()
    } else if error.is_builder() {
        "The gateway's Telegram API address is invalid; an administrator must fix SQUAREMCP_TELEGRAM_BASE_URL.".to_owned()
    } else {
        format!("The request to Telegram for {method} failed before an answer arrived. Try again shortly.")
    };
    upstream(message)
}

fn upstream(message: String) -> ToolFailure {
    ToolFailure::new(FailureKind::Upstream, message)
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Removes the token, and its secret half on its own, from text bound for a person or a log.
fn scrub(text: &str, token: &BotToken) -> String {
    text.replace(token.expose(), REDACTED).replace(token.secret_part(), REDACTED)
}
