//! How Snap's Marketing API reads: `Authorization: Bearer <token>`, answers in the envelope
//! `{"request_status": "SUCCESS"|"ERROR", "request_id", "<entity>s": [{"sub_request_status",
//! "<entity>": {…}}]}`, refusals with `debug_message`, `display_message` and `error_code`
//! (`E3003`: not found). The HTTP status decides the kind; Snap's `display_message` is quoted.

use reqwest::header::AUTHORIZATION;
use serde_json::Value;
use squaremcp_core::Platform;
use squaremcp_core::tool::{FailureKind, ToolFailure};

use super::credential::UserToken;
use crate::kit::http::retry_after_header;
use crate::kit::{Answer, Dialect};

pub(super) const GET_ME: &str = "Get the authenticated user (GET /v1/me)";
pub(super) const GET_ORGANIZATIONS: &str = "Get all organizations (GET /v1/me/organizations)";
pub(super) const GET_AD_ACCOUNTS: &str =
    "Get all ad accounts of an organization (GET /v1/organizations/{id}/adaccounts)";
// The Public Profile API (businessapi.snapchat.com), which Snap opens to allow-listed apps only.
pub(super) const GET_MY_PROFILE: &str = "Get my Public Profile (GET /v1/public_profiles/my_profile)";
pub(super) const CREATE_MEDIA: &str = "Create Public Profile media (POST /v1/public_profiles/{id}/media)";
pub(super) const UPLOAD_PART: &str = "Upload a media part (POST add_path, action ADD)";
pub(super) const FINALIZE_MEDIA: &str = "Finalize the media upload (POST finalize_path, action FINALIZE)";
pub(super) const POST_STORY: &str = "Post a Story (POST /v1/public_profiles/{id}/stories)";

/// Whether `operation` is one of the Public Profile API's, whose refusals mean other things.
fn is_public_profile(operation: &str) -> bool {
    [GET_MY_PROFILE, CREATE_MEDIA, UPLOAD_PART, FINALIZE_MEDIA, POST_STORY].contains(&operation)
}

const RECONNECT: &str = "Reconnect Snapchat on your account page (/account).";

pub(crate) struct SnapchatDialect;

impl Dialect for SnapchatDialect {
    type Credential = UserToken;
    const PLATFORM: Platform = Platform::Snapchat;
    const NAME: &'static str = "Snapchat";

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
        let request_status = body
            .as_ref()
            .and_then(|b| b.get("request_status"))
            .and_then(Value::as_str);
        if (200..300).contains(&status) && request_status != Some("ERROR") {
            return body.filter(Value::is_object).ok_or_else(|| {
                ToolFailure::new(
                    FailureKind::Upstream,
                    format!("Snapchat answered {operation} with a body that is not a JSON object."),
                )
            });
        }
        let text = |key: &str| {
            body.as_ref()
                .and_then(|b| b.get(key))
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
        };
        let code = text("error_code");
        // Snap's words for people, never the raw body.
        let said = text("display_message")
            .or_else(|| text("debug_message"))
            .map(|m| {
                format!(
                    " Snapchat said: \"{}\".",
                    m.chars().take(300).collect::<String>()
                )
            })
            .unwrap_or_default();
        let code_text = code.map(|c| format!(" ({c})")).unwrap_or_default();
        let (kind, message) = match status {
            401 => (
                FailureKind::AuthRevoked,
                format!(
                    "Snapchat did not accept the access token for {operation} (HTTP 401). {RECONNECT}"
                ),
            ),
            403 if is_public_profile(operation) => (
                FailureKind::PermissionMissing,
                format!(
                    "Snapchat refused {operation}{code_text}: Snap opens the Public Profile API to allow-listed apps only, and the \
                     connection needs the snapchat-profile-api scope (the operator sets SQUAREMCP_SNAPCHAT_LOGIN=public_profile; \
                     then reconnect Snapchat on your account page, /account).{said}"
                ),
            ),
            403 => (
                FailureKind::PermissionMissing,
                format!(
                    "Snapchat refused {operation}{code_text}: the account lacks access to this organization or ad account, or the connection the snapchat-marketing-api scope.{said}"
                ),
            ),
            404 => (
                FailureKind::NotFound,
                format!("Snapchat found nothing for {operation}{code_text}.{said}"),
            ),
            429 => {
                let wait = retry_after_header(answer.headers);
                let text = wait.map_or("wait a little and retry".to_owned(), |s| {
                    format!("retry after {s} seconds")
                });
                return Err(ToolFailure::rate_limited(
                    format!("Snapchat is rate limiting {operation}; {text}."),
                    wait,
                ));
            }
            500..=599 => (
                FailureKind::UpstreamTransient,
                format!(
                    "Snapchat had a problem with {operation} (HTTP {status}). Try again shortly."
                ),
            ),
            _ if code == Some("E3003") => (
                FailureKind::NotFound,
                format!("Snapchat found nothing for {operation} (E3003).{said}"),
            ),
            400 | 422 => (
                FailureKind::InvalidInput,
                format!("Snapchat rejected {operation}{code_text}.{said}"),
            ),
            _ => (
                FailureKind::Upstream,
                format!("Snapchat answered {operation} with HTTP {status}{code_text}.{said}"),
            ),
        };
        Err(ToolFailure::new(kind, message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;
    use serde_json::json;

    fn read(status: u16, body: &str) -> Result<Value, ToolFailure> {
        let headers = HeaderMap::new();
        SnapchatDialect.interpret(
            "op",
            Answer {
                status,
                headers: &headers,
                body: body.as_bytes(),
            },
        )
    }

    #[test]
    fn answers_and_refusals() {
        assert_eq!(
            read(200, r#"{"request_status":"SUCCESS","me":{"id":"u"}}"#).expect("ok")["me"]["id"],
            "u"
        );
        for (status, body, kind) in [
            (401, "Unauthorized", FailureKind::AuthRevoked),
            (
                403,
                r#"{"request_status":"ERROR","error_code":"E1002","display_message":"no"}"#,
                FailureKind::PermissionMissing,
            ),
            (
                404,
                r#"{"request_status":"ERROR","error_code":"E3003"}"#,
                FailureKind::NotFound,
            ),
            (
                200,
                r#"{"request_status":"ERROR","error_code":"E3003"}"#,
                FailureKind::NotFound,
            ),
            (
                400,
                r#"{"request_status":"ERROR","error_code":"E1008","debug_message":"bad"}"#,
                FailureKind::InvalidInput,
            ),
            (429, "", FailureKind::RateLimited),
            (503, "", FailureKind::UpstreamTransient),
        ] {
            assert_eq!(
                read(status, body).expect_err(body).kind,
                kind,
                "{status} {body}"
            );
        }
        let profile = SnapchatDialect
            .interpret(POST_STORY, Answer { status: 403, headers: &HeaderMap::new(), body: b"" })
            .expect_err("refused");
        assert_eq!(profile.kind, FailureKind::PermissionMissing);
        assert!(profile.message.contains("allow-listed") && profile.message.contains("snapchat-profile-api"), "{}", profile.message);
        assert!(read(403, "").expect_err("refused").message.contains("snapchat-marketing-api"));
        let said = read(
            400,
            &json!({"request_status": "ERROR", "display_message": "Name is too long"}).to_string(),
        )
        .expect_err("refused");
        assert!(
            said.message.contains("Name is too long"),
            "{}",
            said.message
        );
    }
}
