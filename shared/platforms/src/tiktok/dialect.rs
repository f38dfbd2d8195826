//! How TikTok's API reads: `Authorization: Bearer <token>`, and every answer in one envelope,
//! `{"data": …, "error": {"code", "message", "log_id"}}`, where success is `error.code == "ok"`
//! whatever the HTTP status. Refusals are keyed on `error.code`
//! (https://developers.tiktok.com/doc/tiktok-api-v2-error-handling); the HTTP status decides only
//! for answers without the envelope (a proxy, an outage).

use reqwest::header::AUTHORIZATION;
use serde_json::{Value, json};
use squaremcp_core::Platform;
use squaremcp_core::tool::{FailureKind, ToolFailure};

use super::credential::UserToken;
use crate::kit::http::retry_after_header;
use crate::kit::{Answer, Dialect};

// The operations as TikTok's reference names them; messages use them.
pub(super) const GET_USER_INFO: &str = "Get User Info";
pub(super) const CREATOR_INFO: &str = "Query Creator Info";
pub(super) const DIRECT_POST_INIT: &str = "Direct Post (video init)";
pub(super) const INBOX_INIT: &str = "Upload Video to inbox (video init)";
pub(super) const UPLOAD_CHUNK: &str = "video upload (PUT upload_url)";
pub(super) const GET_STATUS: &str = "Get Post Status";

const RECONNECT: &str = "Reconnect TikTok on your account page (/account).";

pub(crate) struct TiktokDialect;

impl Dialect for TiktokDialect {
    type Credential = UserToken;
    const PLATFORM: Platform = Platform::Tiktok;
    const NAME: &'static str = "TikTok";

    fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        token: &UserToken,
    ) -> reqwest::RequestBuilder {
        request.header(AUTHORIZATION, token.authorization())
    }

    fn interpret(&self, operation: &str, answer: Answer<'_>) -> Result<Value, ToolFailure> {
        let status = answer.status;
        let body = serde_json::from_slice::<Value>(answer.body).ok();
        let error = body
            .as_ref()
            .and_then(|b| b.get("error"))
            .filter(|e| e.is_object());
        let code = error.and_then(|e| e.get("code")).and_then(Value::as_str);
        match code {
            Some("ok") => Ok(body
                .as_ref()
                .and_then(|b| b.get("data"))
                .filter(|d| d.is_object())
                .cloned()
                .unwrap_or_else(|| json!({}))),
            Some(code) => {
                let said = error
                    .and_then(|e| e.get("message"))
                    .and_then(Value::as_str)
                    .filter(|m| !m.is_empty());
                let log_id = error
                    .and_then(|e| e.get("log_id"))
                    .and_then(Value::as_str)
                    .filter(|l| !l.is_empty());
                Err(refusal(operation, status, code, said, log_id, &answer))
            }
            // Upload URLs answer 201/206 with no envelope: a success without a body to read.
            None if (200..300).contains(&status)
                && answer.body.iter().all(u8::is_ascii_whitespace) =>
            {
                Ok(json!({}))
            }
            None if (200..300).contains(&status) => Err(ToolFailure::new(
                FailureKind::Upstream,
                format!("TikTok answered {operation} without its usual envelope."),
            )),
            None => Err(without_envelope(operation, status, &answer)),
        }
    }
}

/// A refusal in TikTok's envelope, by its `error.code`.
fn refusal(
    operation: &str,
    status: u16,
    code: &str,
    said: Option<&str>,
    log_id: Option<&str>,
    answer: &Answer<'_>,
) -> ToolFailure {
    // TikTok's own words and its log id (support asks for it); never the raw body.
    let detail = match (said, log_id) {
        (Some(said), Some(log_id)) => {
            format!(" TikTok said: \"{}\" (log_id {log_id}).", clip(said))
        }
        (Some(said), None) => format!(" TikTok said: \"{}\".", clip(said)),
        (None, Some(log_id)) => format!(" (log_id {log_id})"),
        (None, None) => String::new(),
    };
    let (kind, message) = match code {
        "access_token_invalid" => {
            (FailureKind::AuthExpired, format!("TikTok did not accept the access token for {operation} (access_token_invalid): it expired or was revoked. {RECONNECT}"))
        }
        "scope_not_authorized" | "scope_permission_missed" => (
            FailureKind::PermissionMissing,
            format!("The TikTok connection lacks a scope {operation} needs ({code}): reconnect TikTok on /account and allow every permission asked (user.info.basic, video.publish, video.upload)."),
        ),
        "rate_limit_exceeded" => {
            let wait = retry_after_header(answer.headers);
            let text = wait.map_or("wait a minute and retry".to_owned(), |s| format!("retry after {s} seconds"));
            return ToolFailure::rate_limited(format!("TikTok is rate limiting {operation} (rate_limit_exceeded); {text}."), wait);
        }
        "unaudited_client_can_only_post_to_private_accounts" => (
            FailureKind::Forbidden,
            "TikTok refused the post (unaudited_client_can_only_post_to_private_accounts): this gateway's TikTok app has not passed \
             TikTok's audit, so it may only post with privacy_level SELF_ONLY, to accounts set to private. Make the account \
             private and post with SELF_ONLY, or ask the gateway's operator to have the app audited."
                .to_owned(),
        ),
        "spam_risk_too_many_posts" => (
            FailureKind::QuotaExhausted,
            "TikTok refused the post (spam_risk_too_many_posts): this account reached its daily limit of posts through the API. Try again tomorrow.".to_owned(),
        ),
        "spam_risk_user_banned_from_posting" => (
            FailureKind::Forbidden,
            "TikTok refused the post (spam_risk_user_banned_from_posting): this account is currently banned from posting.".to_owned(),
        ),
        "reached_active_user_cap" => (
            FailureKind::QuotaExhausted,
            "TikTok refused the post (reached_active_user_cap): the gateway's TikTok app reached its daily cap of posting users. Try again tomorrow.".to_owned(),
        ),
        code if code.starts_with("spam_risk") => {
            (FailureKind::Forbidden, format!("TikTok refused {operation} as a spam risk ({code}).{detail}"))
        }
        "url_ownership_unverified" => (
            FailureKind::InvalidInput,
            "TikTok refused video_url (url_ownership_unverified): TikTok pulls only from domains or URL prefixes the app's owner verified. \
             Give the file as media_url or media_data instead, and the gateway uploads it."
                .to_owned(),
        ),
        "privacy_level_option_mismatch" => (
            FailureKind::InvalidInput,
            "TikTok refused privacy_level (privacy_level_option_mismatch): use one of the options tiktok_get_creator_info lists.".to_owned(),
        ),
        "invalid_params" | "invalid_file_upload" | "file_format_check_failed" => {
            (FailureKind::InvalidInput, format!("TikTok rejected the request for {operation} ({code}).{detail}"))
        }
        _ => match status {
            401 => (FailureKind::AuthRevoked, format!("TikTok refused the access token for {operation} ({code}). {RECONNECT}")),
            403 => (FailureKind::PermissionMissing, format!("TikTok refused {operation} ({code}).{detail}")),
            404 => (FailureKind::NotFound, format!("TikTok found nothing for {operation} ({code}).{detail}")),
            429 => return ToolFailure::rate_limited(format!("TikTok is rate limiting {operation} ({code}); wait and retry."), retry_after_header(answer.headers)),
            500..=599 => (FailureKind::UpstreamTransient, format!("TikTok had a problem with {operation} ({code}). Try again shortly.")),
            _ => (FailureKind::Upstream, format!("TikTok answered {operation} with {code} (HTTP {status}).{detail}")),
        },
    };
    ToolFailure::new(kind, message)
}

/// An answer without TikTok's envelope: a proxy, a load balancer or an outage.
fn without_envelope(operation: &str, status: u16, answer: &Answer<'_>) -> ToolFailure {
    match status {
        401 => ToolFailure::new(
            FailureKind::AuthRevoked,
            format!("TikTok rejected the access token for {operation} (HTTP 401). {RECONNECT}"),
        ),
        403 => ToolFailure::new(
            FailureKind::PermissionMissing,
            format!("TikTok refused {operation} (HTTP 403)."),
        ),
        404 => ToolFailure::new(
            FailureKind::NotFound,
            format!("TikTok found nothing for {operation} (HTTP 404)."),
        ),
        429 => ToolFailure::rate_limited(
            format!("TikTok is rate limiting {operation}; wait and retry."),
            retry_after_header(answer.headers),
        ),
        500..=599 => ToolFailure::new(
            FailureKind::UpstreamTransient,
            format!("TikTok had a problem with {operation} (HTTP {status}). Try again shortly."),
        ),
        _ => ToolFailure::new(
            FailureKind::Upstream,
            format!("TikTok answered {operation} with HTTP {status} and no error details."),
        ),
    }
}

/// TikTok's message, kept short.
fn clip(text: &str) -> String {
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;

    fn read(status: u16, body: Value) -> Result<Value, ToolFailure> {
        let headers = HeaderMap::new();
        let bytes = body.to_string().into_bytes();
        TiktokDialect.interpret(
            "op",
            Answer {
                status,
                headers: &headers,
                body: &bytes,
            },
        )
    }

    #[test]
    fn success_is_the_ok_code_and_gives_the_data() {
        let data = read(200, json!({"data": {"publish_id": "p"}, "error": {"code": "ok", "message": "", "log_id": "l"}})).expect("ok");
        assert_eq!(data, json!({"publish_id": "p"}));
        // A 200 with another code is a refusal, not a success.
        let failure = read(200, json!({"data": {}, "error": {"code": "invalid_params", "message": "bad", "log_id": "l"}})).expect_err("refused");
        assert_eq!(failure.kind, FailureKind::InvalidInput);
        assert!(failure.message.contains("log_id l"), "{}", failure.message);
    }

    #[test]
    fn codes_map_to_kinds() {
        for (status, code, kind) in [
            (401, "access_token_invalid", FailureKind::AuthExpired),
            (401, "scope_not_authorized", FailureKind::PermissionMissing),
            (429, "rate_limit_exceeded", FailureKind::RateLimited),
            (403, "spam_risk_too_many_posts", FailureKind::QuotaExhausted),
            (403, "spam_risk_text", FailureKind::Forbidden),
            (
                403,
                "unaudited_client_can_only_post_to_private_accounts",
                FailureKind::Forbidden,
            ),
            (400, "invalid_params", FailureKind::InvalidInput),
            (500, "internal_error", FailureKind::UpstreamTransient),
        ] {
            let failure = read(
                status,
                json!({"data": {}, "error": {"code": code, "message": "m", "log_id": "x"}}),
            )
            .expect_err(code);
            assert_eq!(failure.kind, kind, "{code}");
        }
        let unaudited = read(
            403,
            json!({"error": {"code": "unaudited_client_can_only_post_to_private_accounts"}}),
        )
        .expect_err("refused");
        assert!(
            unaudited.message.contains("SELF_ONLY"),
            "{}",
            unaudited.message
        );
    }
}
