//! How X's API v2 is authorised (`Authorization: Bearer <user token>`) and how its answers read:
//! successes are JSON, refusals are problem details (`{"title", "detail", "type", "status"}`, or
//! the legacy `{"errors": [{"code", "message"}]}`), mapped to the gateway's failure kinds.

use reqwest::header::AUTHORIZATION;
use serde_json::Value;
use squaremcp_core::Platform;
use squaremcp_core::tool::{FailureKind, ToolFailure};

use super::credential::UserToken;
use crate::kit::http::retry_after_header;
use crate::kit::{Answer, Dialect};

/// Operation names, as messages name the calls.
pub const GET_ME: &str = "GET /2/users/me";
pub const GET_USER_BY_USERNAME: &str = "GET /2/users/by/username/{username}";
pub const GET_USER_BY_ID: &str = "GET /2/users/{id}";
pub const GET_USER_TWEETS: &str = "GET /2/users/{id}/tweets";
pub const SEARCH_RECENT: &str = "GET /2/tweets/search/recent";
pub const CREATE_TWEET: &str = "POST /2/tweets";
pub const MEDIA_INITIALIZE: &str = "POST /2/media/upload/initialize";
pub const MEDIA_APPEND: &str = "POST /2/media/upload/{id}/append";
pub const MEDIA_FINALIZE: &str = "POST /2/media/upload/{id}/finalize";
pub const MEDIA_STATUS: &str = "GET /2/media/upload?command=STATUS";

pub(crate) struct XDialect;

impl Dialect for XDialect {
    type Credential = UserToken;
    const PLATFORM: Platform = Platform::Twitter;
    const NAME: &'static str = "X";

    fn authorize(&self, request: reqwest::RequestBuilder, token: &UserToken) -> reqwest::RequestBuilder {
        request.header(AUTHORIZATION, token.authorization())
    }

    fn interpret(&self, operation: &str, answer: Answer<'_>) -> Result<Value, ToolFailure> {
        let (status, body) = (answer.status, serde_json::from_slice::<Value>(answer.body).ok());
        if (200..300).contains(&status) {
            let body = body.ok_or_else(|| ToolFailure::new(FailureKind::Upstream, format!("X answered {operation} with a body that is not JSON.")))?;
            // X answers a lookup of an unknown user or post with 200, no `data`, and the reason in `errors`.
            if body.get("data").is_none()
                && let Some(error) = body.pointer("/errors/0")
            {
                let said = detail(error).map(|d| format!(" X said: {d}")).unwrap_or_default();
                let missing = error.get("type").and_then(Value::as_str).is_some_and(|t| t.ends_with("resource-not-found"));
                let kind = if missing { FailureKind::NotFound } else { FailureKind::Upstream };
                return Err(ToolFailure::new(kind, format!("X found nothing for {operation}.{said}")));
            }
            return Ok(body);
        }
        if status == 429 {
            let wait = retry_after_header(answer.headers).or_else(|| reset_wait(answer.headers));
            let text = wait.map_or("wait a little and retry".to_owned(), |s| format!("retry after {s} seconds"));
            return Err(ToolFailure::rate_limited(format!("X is rate limiting {operation}; {text}."), wait));
        }
        let said = body.as_ref().and_then(detail).map(|d| format!(" X said: {d}")).unwrap_or_default();
        let (kind, message) = match status {
            // X answers an expired token with the same 401 as a revoked one: the gateway refreshes
            // once and re-runs the call before it asks the person to reconnect.
            401 => (FailureKind::AuthRevoked, "X rejected the access token (401). Reconnect X on your account page (/account).".to_owned()),
            // Pay-per-use: a request is refused once the app's prepaid credits are used up.
            402 => (FailureKind::QuotaExhausted, format!("X refused {operation} (402): the app's API credits are used up; the operator must add credits.{said}")),
            403 if said.to_ascii_lowercase().contains("duplicate") => {
                (FailureKind::InvalidInput, format!("X refused {operation} (403): the same text was posted recently.{said}"))
            }
            403 => (
                FailureKind::PermissionMissing,
                format!("X refused {operation} (403): the connection lacks a scope, the app an access level, or the account is protected.{said}"),
            ),
            404 => (FailureKind::NotFound, format!("X found nothing for {operation} (404).{said}")),
            400 => (FailureKind::InvalidInput, format!("X rejected {operation} (400).{said}")),
            500..=599 => (FailureKind::UpstreamTransient, format!("X had a problem with {operation} (HTTP {status}). Try again shortly.")),
            _ => (FailureKind::Upstream, format!("X answered {operation} with HTTP {status}.{said}")),
        };
        Err(ToolFailure::new(kind, message))
    }
}

/// Seconds until `x-rate-limit-reset` (epoch seconds), when X sent it.
fn reset_wait(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    let reset = headers.get("x-rate-limit-reset")?.to_str().ok()?.trim().parse::<u64>().ok()?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    Some(reset.saturating_sub(now).max(1))
}

/// What X said, from a problem (`detail`, else `title`) or the first of `errors[]`; bounded.
fn detail(body: &Value) -> Option<String> {
    let text = body
        .get("detail")
        .and_then(Value::as_str)
        .or_else(|| body.get("title").and_then(Value::as_str))
        .or_else(|| body.pointer("/errors/0/detail").and_then(Value::as_str))
        .or_else(|| body.pointer("/errors/0/message").and_then(Value::as_str))?;
    Some(text.chars().take(300).collect())
}
