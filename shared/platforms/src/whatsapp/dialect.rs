//! How the Graph API differs: `Authorization: Bearer <token>` (never `access_token=` in a URL),
//! the API version and the credential's ids in the path, and refusals in Graph's envelope
//! `{"error": {"message", "type", "code", "error_subcode", "error_data": {"details"},
//! "fbtrace_id"}}`, keyed on `code` (Graph often answers 400 where others send 401 or 429) and
//! read by `kit::graph` as for Facebook and Instagram, with WhatsApp's own codes first.
//! Transport, retries, logging and scrubbing the token are the kit's.

use reqwest::header::AUTHORIZATION;
use serde_json::Value;
use squaremcp_core::Platform;
use squaremcp_core::tool::{FailureKind, ToolFailure};

use super::credential::CloudApiCredential;
use crate::kit::graph::{self, GraphError, GraphWords};
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
        graph::interpret_with(&WORDS, operation, &answer, |error| whatsapp_failure(operation, error, &answer))
    }
}

const WORDS: GraphWords = GraphWords { name: "WhatsApp", reconnect: RECONNECT, permissions: "whatsapp_business_messaging" };

const RECONNECT: &str = "Create a new System User token in Meta Business Settings (System users → Generate new token, \
    with whatsapp_business_messaging and whatsapp_business_management) and store it again.";

/// The 24-hour customer-service window, explained where 131047 comes back.
const OUTSIDE_WINDOW: &str = "More than 24 hours have passed since this person last messaged the business, so WhatsApp \
    accepts only an approved template now: send one with whatsapp_send_template (whatsapp_list_templates lists them). \
    Free-form messages work again for 24 hours after the person replies.";

/// WhatsApp's own codes (and its own words for shared ones); `None` leaves the rest to the
/// reading every Graph platform shares (tokens 190/102, 1/2, 5xx…).
fn whatsapp_failure(operation: &str, error: &GraphError, answer: &Answer<'_>) -> Option<ToolFailure> {
    let said = &error.said;
    let failure = |kind, message: String| Some(ToolFailure::new(kind, message));
    match error.code {
        10 | 200..=299 => failure(
            FailureKind::PermissionMissing,
            format!(
                "WhatsApp refused {operation}: {said}. The System User needs {} on this WhatsApp Business Account \
                 (Business Settings → System users → Assign assets).",
                if operation == GET_TEMPLATES { "whatsapp_business_management" } else { "whatsapp_business_messaging" }
            ),
        ),
        4 | 17 | 32 | 341 | 613 | 80007 | 130429 | 131056 => {
            let whom = match error.code {
                131056 => "messages to this recipient (too many in a short time)",
                130429 => "this phone number's message throughput",
                80007 => "this WhatsApp Business Account",
                _ => "this app",
            };
            Some(graph::rate_limited(WORDS.name, whom, error, answer))
        }
        131048 | 368 => failure(
            FailureKind::QuotaExhausted,
            format!("WhatsApp is blocking sends from this number for now: {said}. Waiting minutes will not help; review the number's quality rating in WhatsApp Manager."),
        ),
        131047 => failure(FailureKind::InvalidInput, format!("WhatsApp refused {operation}: {said}. {OUTSIDE_WINDOW}")),
        100 if error.subcode == Some(33) => failure(
            FailureKind::NotFound,
            format!("WhatsApp does not know the object {operation} names: {said}. Check `phone_number_id` and `waba_id` in the stored credential."),
        ),
        132001 => failure(
            FailureKind::InvalidInput,
            format!("WhatsApp has no approved template with this name and language: {said}. whatsapp_list_templates lists them."),
        ),
        131008 | 131009 | 131026 | 131051 | 132000 | 132005 | 132007 | 132012 | 132015 | 132016 => {
            failure(FailureKind::InvalidInput, format!("WhatsApp rejected {operation}: {said}."))
        }
        131000 | 131016 | 133004 => {
            failure(FailureKind::UpstreamTransient, format!("WhatsApp had a temporary problem with {operation}: {said}. Try again shortly."))
        }
        _ => None,
    }
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
