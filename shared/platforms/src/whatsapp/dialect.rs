//! How the Graph API differs: `Authorization: Bearer <token>` (never `access_token=` in a URL),
//! the API version and the credential's ids in the path, and refusals in Graph's envelope
//! `{"error": {"message", "type", "code", "error_subcode", "error_data": {"details"},
//! "fbtrace_id"}}`, keyed on `code` (Graph often answers 400 where others send 401 or 429).
//! Transport, retries, logging and scrubbing the token are the kit's.

use reqwest::header::AUTHORIZATION;
use serde_json::Value;
use squaremcp_core::Platform;
use squaremcp_core::tool::{FailureKind, ToolFailure};

use super::credential::CloudApiCredential;
use crate::kit::http::retry_after_header;
use crate::kit::{Answer, Dialect};

// The operations as Meta's documentation names them; messages use them.
pub(super) const SEND_MESSAGE: &str = "Send Message";
pub(super) const SEND_TEMPLATE: &str = "Send Template Message";
pub(super) const GET_TEMPLATES: &str = "Get Message Templates";

pub(crate) struct WhatsappDialect {
    /// The Graph API version, e.g. `v26.0`: the first segment of every path.
    pub(crate) version: String,
}

impl Dialect for WhatsappDialect {
    type Credential = CloudApiCredential;
    const PLATFORM: Platform = Platform::Whatsapp;
    const NAME: &'static str = "WhatsApp";

    fn path_values(&self, credential: &CloudApiCredential) -> Vec<(&'static str, String)> {
        vec![
            ("version", self.version.clone()),
            ("phone_number_id", credential.phone_number_id.clone()),
            ("waba_id", credential.waba_id.clone()),
        ]
    }

    fn authorize(&self, request: reqwest::RequestBuilder, credential: &CloudApiCredential) -> reqwest::RequestBuilder {
        request.header(AUTHORIZATION, credential.authorization.clone())
    }

    fn interpret(&self, operation: &str, answer: Answer<'_>) -> Result<Value, ToolFailure> {
        let (status, body) = (answer.status, serde_json::from_slice::<Value>(answer.body).ok());
        if (200..300).contains(&status) {
            let message = format!("WhatsApp answered {operation} with a body that is not JSON.");
            return body.ok_or(ToolFailure::new(FailureKind::Upstream, message));
        }
        let error = body.as_ref().and_then(|b| b.get("error")).filter(|e| e.is_object());
        let Some(error) = error else { return Err(without_envelope(operation, status, &answer)) };
        Err(graph_failure(operation, status, error, &answer))
    }
}

/// An answer without Graph's envelope: a proxy, a load balancer or an outage.
fn without_envelope(operation: &str, status: u16, answer: &Answer<'_>) -> ToolFailure {
    match status {
        401 => ToolFailure::new(FailureKind::AuthRevoked, format!("WhatsApp rejected the access token for {operation} (HTTP 401). {RECONNECT}")),
        429 => ToolFailure::rate_limited(format!("WhatsApp is rate limiting {operation}; wait and retry."), retry_after_header(answer.headers)),
        500..=599 => ToolFailure::new(FailureKind::UpstreamTransient, format!("WhatsApp had a problem with {operation} (HTTP {status}). Try again shortly.")),
        _ => ToolFailure::new(FailureKind::Upstream, format!("WhatsApp answered {operation} with HTTP {status} and no error details.")),
    }
}

const RECONNECT: &str = "Create a new System User token in Meta Business Settings (System users → Generate new token, \
    with whatsapp_business_messaging and whatsapp_business_management) and store it again.";

/// The 24-hour customer-service window, explained where 131047 comes back.
const OUTSIDE_WINDOW: &str = "More than 24 hours have passed since this person last messaged the business, so WhatsApp \
    accepts only an approved template now: send one with whatsapp_send_template (whatsapp_list_templates lists them). \
    Free-form messages work again for 24 hours after the person replies.";

/// Graph's error envelope, normalised by its `code` (and `error_subcode` for 190).
fn graph_failure(operation: &str, status: u16, error: &Value, answer: &Answer<'_>) -> ToolFailure {
    let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
    let subcode = error.get("error_subcode").and_then(Value::as_i64);
    let text = |key: &str| error.get(key).and_then(Value::as_str).filter(|t| !t.is_empty());
    let details = error.pointer("/error_data/details").and_then(Value::as_str).filter(|t| !t.is_empty());
    // Meta's own words: the message, its title-less detail, the code.
    let said = {
        let message = text("error_user_msg").or_else(|| text("message")).unwrap_or("no message");
        let details = details.map(|d| format!(" — {d}")).unwrap_or_default();
        format!("{message}{details} (code {code}{})", subcode.map(|s| format!(", subcode {s}")).unwrap_or_default())
    };
    let failure = |kind, message: String| ToolFailure::new(kind, message);
    match code {
        190 => match subcode {
            None | Some(463) => failure(
                FailureKind::AuthExpired,
                format!("WhatsApp says the access token expired or is invalid: {said}. {RECONNECT}"),
            ),
            Some(_) => failure(
                FailureKind::AuthRevoked,
                format!("WhatsApp no longer accepts the access token: {said}. {RECONNECT}"),
            ),
        },
        102 => failure(FailureKind::AuthExpired, format!("WhatsApp ended the token's session: {said}. {RECONNECT}")),
        10 | 200..=299 => failure(
            FailureKind::PermissionMissing,
            format!(
                "WhatsApp refused {operation}: {said}. The System User needs {} on this WhatsApp Business Account \
                 (Business Settings → System users → Assign assets).",
                if operation == GET_TEMPLATES { "whatsapp_business_management" } else { "whatsapp_business_messaging" }
            ),
        ),
        4 | 17 | 32 | 341 | 613 | 80007 | 130429 | 131056 => {
            let retry_after = retry_after_header(answer.headers).or_else(|| usage_wait(answer));
            let whom = match code {
                131056 => "messages to this recipient (too many in a short time)",
                130429 => "this phone number's message throughput",
                80007 => "this WhatsApp Business Account",
                _ => "this app",
            };
            let wait = retry_after.map_or("wait a little and retry".to_owned(), |seconds| format!("retry after {seconds} seconds"));
            ToolFailure::rate_limited(format!("WhatsApp is rate limiting {whom} ({said}); {wait}."), retry_after)
        }
        131048 | 368 => failure(
            FailureKind::QuotaExhausted,
            format!("WhatsApp is blocking sends from this number for now: {said}. Waiting minutes will not help; review the number's quality rating in WhatsApp Manager."),
        ),
        131047 => failure(FailureKind::InvalidInput, format!("WhatsApp refused {operation}: {said}. {OUTSIDE_WINDOW}")),
        100 if subcode == Some(33) => failure(
            FailureKind::NotFound,
            format!("WhatsApp does not know the object {operation} names: {said}. Check `phone_number_id` and `waba_id` in the stored credential."),
        ),
        132001 => failure(
            FailureKind::InvalidInput,
            format!("WhatsApp has no approved template with this name and language: {said}. whatsapp_list_templates lists them."),
        ),
        100 | 131008 | 131009 | 131026 | 131051 | 132000 | 132005 | 132007 | 132012 | 132015 | 132016 | 506 => {
            failure(FailureKind::InvalidInput, format!("WhatsApp rejected {operation}: {said}."))
        }
        1 | 2 | 131000 | 131016 | 133004 => {
            failure(FailureKind::UpstreamTransient, format!("WhatsApp had a temporary problem with {operation}: {said}. Try again shortly."))
        }
        _ if status >= 500 => {
            failure(FailureKind::UpstreamTransient, format!("WhatsApp had a problem with {operation} (HTTP {status}): {said}. Try again shortly."))
        }
        _ => failure(FailureKind::Upstream, format!("WhatsApp answered {operation} with HTTP {status}: {said}.")),
    }
}

/// The wait from `X-Business-Use-Case-Usage` (`estimated_time_to_regain_access`, in minutes),
/// when Graph sends no `Retry-After`.
fn usage_wait(answer: &Answer<'_>) -> Option<u64> {
    let header = answer.headers.get("x-business-use-case-usage")?.to_str().ok()?;
    let usage: Value = serde_json::from_str(header).ok()?;
    let minutes = usage
        .as_object()?
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|entry| entry.get("estimated_time_to_regain_access").and_then(Value::as_u64))
        .max()?;
    (minutes > 0).then_some(minutes * 60)
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderMap;
    use serde_json::json;

    use super::*;

    fn kind_of(status: u16, error: Value, headers: &HeaderMap) -> ToolFailure {
        let body = json!({ "error": error }).to_string();
        WhatsappDialect { version: "v26.0".to_owned() }
            .interpret(SEND_MESSAGE, Answer { status, headers, body: body.as_bytes() })
            .expect_err("a refusal")
    }

    #[test]
    fn graph_codes_map_to_normalised_kinds() {
        let headers = HeaderMap::new();
        let cases = [
            (json!({"code": 190, "message": "Error validating access token"}), FailureKind::AuthExpired),
            (json!({"code": 190, "error_subcode": 463}), FailureKind::AuthExpired),
            (json!({"code": 190, "error_subcode": 460}), FailureKind::AuthRevoked),
            (json!({"code": 190, "error_subcode": 458}), FailureKind::AuthRevoked),
            (json!({"code": 10}), FailureKind::PermissionMissing),
            (json!({"code": 200}), FailureKind::PermissionMissing),
            (json!({"code": 299}), FailureKind::PermissionMissing),
            (json!({"code": 4}), FailureKind::RateLimited),
            (json!({"code": 80007}), FailureKind::RateLimited),
            (json!({"code": 130429}), FailureKind::RateLimited),
            (json!({"code": 131056}), FailureKind::RateLimited),
            (json!({"code": 131048}), FailureKind::QuotaExhausted),
            (json!({"code": 131047}), FailureKind::InvalidInput),
            (json!({"code": 100}), FailureKind::InvalidInput),
            (json!({"code": 100, "error_subcode": 33}), FailureKind::NotFound),
            (json!({"code": 131008}), FailureKind::InvalidInput),
            (json!({"code": 131009}), FailureKind::InvalidInput),
            (json!({"code": 132001}), FailureKind::InvalidInput),
            (json!({"code": 1}), FailureKind::UpstreamTransient),
            (json!({"code": 2}), FailureKind::UpstreamTransient),
            (json!({"code": 131000}), FailureKind::UpstreamTransient),
            (json!({"code": 131016}), FailureKind::UpstreamTransient),
            (json!({"code": 99999}), FailureKind::Upstream),
        ];
        for (error, kind) in cases {
            assert_eq!(kind_of(400, error.clone(), &headers).kind, kind, "{error}");
        }
        assert_eq!(kind_of(503, json!({"code": 99999}), &headers).kind, FailureKind::UpstreamTransient);
    }

    #[test]
    fn outside_the_24_hour_window_the_message_explains_it_and_suggests_a_template() {
        let error = json!({"code": 131047, "message": "Re-engagement message", "error_data": {"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."}});
        let failure = kind_of(400, error, &HeaderMap::new());
        assert!(failure.message.contains("24 hours") && failure.message.contains("whatsapp_send_template"), "{}", failure.message);
        assert!(failure.message.contains("code 131047"), "{}", failure.message);
    }

    #[test]
    fn rate_limits_carry_the_wait_from_retry_after_or_the_business_usage_header() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "3".parse().expect("a header"));
        assert_eq!(kind_of(400, json!({"code": 130429}), &headers).retry_after, Some(3));
        let mut headers = HeaderMap::new();
        let usage = r#"{"102290129340398":[{"type":"whatsapp","call_count":100,"estimated_time_to_regain_access":2}]}"#;
        headers.insert("x-business-use-case-usage", usage.parse().expect("a header"));
        assert_eq!(kind_of(400, json!({"code": 80007}), &headers).retry_after, Some(120));
    }

    #[test]
    fn the_version_and_the_credentials_ids_fill_the_path() {
        let document = serde_json::from_str(super::super::CREDENTIAL_EXAMPLE).expect("JSON");
        let credential = <CloudApiCredential as crate::kit::CredentialDocument>::parse(&document).expect("parses");
        let values = WhatsappDialect { version: "v25.0".to_owned() }.path_values(&credential);
        assert_eq!(
            values,
            [("version", "v25.0".to_owned()), ("phone_number_id", "106540352242922".to_owned()), ("waba_id", "102290129340398".to_owned())]
        );
    }
}
