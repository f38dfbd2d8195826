//! How LinkedIn differs: the bearer token plus `LinkedIn-Version` and
//! `X-Restli-Protocol-Version: 2.0.0` on every call, answers that may be `201` with an empty body
//! (the id then is in `x-restli-id`), and refusals in Rest.li's envelope
//! `{"status", "serviceErrorCode", "code", "message"}`.

use reqwest::header::AUTHORIZATION;
use serde_json::{Value, json};
use squaremcp_core::Platform;
use squaremcp_core::tool::{FailureKind, ToolFailure};

use super::credential::MemberToken;
use crate::kit::http::retry_after_header;
use crate::kit::{Answer, Dialect};

// The operations as LinkedIn's documentation names them; messages use them.
pub(super) const USERINFO: &str = "userinfo";
pub(super) const CREATE_POST: &str = "Create Post";
pub(super) const INITIALIZE_IMAGE: &str = "Images initializeUpload";
pub(super) const UPLOAD_IMAGE: &str = "image upload";
pub(super) const INITIALIZE_VIDEO: &str = "Videos initializeUpload";
pub(super) const UPLOAD_VIDEO_PART: &str = "video part upload";
pub(super) const FINALIZE_VIDEO: &str = "Videos finalizeUpload";
pub(super) const GET_VIDEO: &str = "Get Video";
pub(super) const CONNECTIONS: &str = "Connections (q=viewer)";

const RECONNECT: &str = "Connect LinkedIn again on your account page (/account).";

pub(crate) struct LinkedinDialect {
    /// `YYYYMM`, sent as `LinkedIn-Version`.
    pub(crate) version: String,
}

impl Dialect for LinkedinDialect {
    type Credential = MemberToken;
    const PLATFORM: Platform = Platform::Linkedin;
    const NAME: &'static str = "LinkedIn";

    fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        token: &MemberToken,
    ) -> reqwest::RequestBuilder {
        request
            .header(AUTHORIZATION, token.authorization.clone())
            .header("LinkedIn-Version", self.version.as_str())
            .header("X-Restli-Protocol-Version", "2.0.0")
    }

    fn interpret(&self, operation: &str, answer: Answer<'_>) -> Result<Value, ToolFailure> {
        let status = answer.status;
        let body = serde_json::from_slice::<Value>(answer.body).ok();
        if (200..300).contains(&status) {
            if answer.body.iter().all(u8::is_ascii_whitespace) {
                // 201 Created and finalizeUpload's 200 carry no body.
                return Ok(json!({}));
            }
            return body.ok_or_else(|| {
                ToolFailure::new(
                    FailureKind::Upstream,
                    format!("LinkedIn answered {operation} with a body that is not JSON."),
                )
            });
        }
        Err(failure(
            operation,
            status,
            body.as_ref(),
            &answer,
            &self.version,
        ))
    }
}

/// A refusal, by status and Rest.li's `code`; LinkedIn's own message is quoted (never the body).
fn failure(
    operation: &str,
    status: u16,
    body: Option<&Value>,
    answer: &Answer<'_>,
    version: &str,
) -> ToolFailure {
    let text = |key: &str| {
        body.and_then(|b| b.get(key))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
    };
    let code = text("code").unwrap_or_default();
    let service_code = body
        .and_then(|b| b.get("serviceErrorCode"))
        .and_then(Value::as_i64);
    let said = match (text("message"), service_code) {
        (Some(message), Some(n)) => format!(": {} (serviceErrorCode {n})", clip(message)),
        (Some(message), None) => format!(": {}", clip(message)),
        (None, _) => String::new(),
    };
    let new = ToolFailure::new;
    match status {
        401 if code == "EXPIRED_ACCESS_TOKEN" || said.to_ascii_lowercase().contains("expired") => {
            new(
                FailureKind::AuthExpired,
                format!("LinkedIn says the access token expired{said}. {RECONNECT}"),
            )
        }
        401 => new(
            FailureKind::AuthRevoked,
            format!("LinkedIn rejected the access token for {operation} (401){said}. {RECONNECT}"),
        ),
        403 => new(
            FailureKind::PermissionMissing,
            format!(
                "LinkedIn refused {operation} (403){said}. Posting as a member needs the w_member_social scope (the Share on \
                 LinkedIn product); as an organization, w_organization_social and an admin role on the page."
            ),
        ),
        404 => new(
            FailureKind::NotFound,
            format!("LinkedIn found nothing for {operation} (404){said}."),
        ),
        426 => new(
            FailureKind::Upstream,
            format!(
                "LinkedIn no longer supports API version {version} (426){said}. An administrator must set \
                 SQUAREMCP_LINKEDIN_VERSION to a current YYYYMM version."
            ),
        ),
        429 => {
            // LinkedIn sends no Retry-After: its daily application and member limits reset at
            // midnight UTC. A Retry-After from a proxy in between still wins.
            let wait =
                retry_after_header(answer.headers).or_else(|| Some(seconds_to_midnight_utc()));
            let seconds = wait.unwrap_or_default();
            ToolFailure::rate_limited(
                format!(
                    "LinkedIn is rate limiting {operation}{said}; its daily limits reset at midnight UTC, retry after {seconds} seconds."
                ),
                wait,
            )
        }
        400 | 409 | 411 | 413 | 415 | 422 => new(
            FailureKind::InvalidInput,
            format!("LinkedIn rejected {operation} ({status}){said}."),
        ),
        500..=599 => new(
            FailureKind::UpstreamTransient,
            format!("LinkedIn had a problem with {operation} (HTTP {status}). Try again shortly."),
        ),
        _ => new(
            FailureKind::Upstream,
            format!("LinkedIn answered {operation} with HTTP {status}{said}."),
        ),
    }
}

/// At most 300 characters of LinkedIn's message.
fn clip(text: &str) -> String {
    text.chars().take(300).collect()
}

fn seconds_to_midnight_utc() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    86_400 - now % 86_400
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderMap;

    use super::*;

    fn refusal(status: u16, body: Value, headers: &HeaderMap) -> ToolFailure {
        let body = body.to_string();
        LinkedinDialect {
            version: "202607".to_owned(),
        }
        .interpret(
            CREATE_POST,
            Answer {
                status,
                headers,
                body: body.as_bytes(),
            },
        )
        .expect_err("a refusal")
    }

    #[test]
    fn restli_refusals_map_to_normalised_kinds() {
        let headers = HeaderMap::new();
        let cases = [
            (
                401,
                json!({"status": 401, "serviceErrorCode": 65600, "code": "INVALID_ACCESS_TOKEN", "message": "Invalid access token"}),
                FailureKind::AuthRevoked,
            ),
            (
                401,
                json!({"status": 401, "serviceErrorCode": 65601, "code": "REVOKED_ACCESS_TOKEN", "message": "The token used in the request has been revoked by the user"}),
                FailureKind::AuthRevoked,
            ),
            (
                401,
                json!({"status": 401, "code": "EXPIRED_ACCESS_TOKEN", "message": "The token used in the request has expired"}),
                FailureKind::AuthExpired,
            ),
            (
                403,
                json!({"status": 403, "serviceErrorCode": 100, "code": "ACCESS_DENIED", "message": "Not enough permissions to access: partnerApiPostsExternal.CREATE.20260701"}),
                FailureKind::PermissionMissing,
            ),
            (
                404,
                json!({"status": 404, "message": "Not Found"}),
                FailureKind::NotFound,
            ),
            (
                422,
                json!({"status": 422, "message": "ERROR :: /commentary :: is required"}),
                FailureKind::InvalidInput,
            ),
            (
                426,
                json!({"status": 426, "code": "NONEXISTENT_VERSION", "message": "Requested version 20200101 is not active"}),
                FailureKind::Upstream,
            ),
            (503, json!({}), FailureKind::UpstreamTransient),
        ];
        for (status, body, kind) in cases {
            assert_eq!(
                refusal(status, body.clone(), &headers).kind,
                kind,
                "{status} {body}"
            );
        }
        let sunset = refusal(426, json!({"status": 426}), &headers);
        assert!(
            sunset.message.contains("SQUAREMCP_LINKEDIN_VERSION")
                && sunset.message.contains("202607"),
            "{}",
            sunset.message
        );
    }

    #[test]
    fn a_rate_limit_waits_until_midnight_utc_unless_told_otherwise() {
        let failure = refusal(
            429,
            json!({"status": 429, "message": "Resource level throttle APPLICATION DAY limit for calls to this resource is reached."}),
            &HeaderMap::new(),
        );
        assert_eq!(failure.kind, FailureKind::RateLimited);
        let wait = failure.retry_after.expect("a wait");
        assert!((1..=86_400).contains(&wait), "{wait}");
        assert!(
            failure.message.contains("midnight UTC"),
            "{}",
            failure.message
        );
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "3".parse().expect("a header"));
        assert_eq!(refusal(429, json!({}), &headers).retry_after, Some(3));
    }

    #[test]
    fn an_empty_created_answer_is_an_empty_object() {
        let headers = HeaderMap::new();
        let ok = LinkedinDialect {
            version: "202607".to_owned(),
        }
        .interpret(
            CREATE_POST,
            Answer {
                status: 201,
                headers: &headers,
                body: b"",
            },
        );
        assert_eq!(ok.expect("created"), json!({}));
    }
}
