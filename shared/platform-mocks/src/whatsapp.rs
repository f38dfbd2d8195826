//! A local stand-in for the WhatsApp Business Cloud API (Meta's Graph API).
//!
//! Paths are the real ones, `/{version}/{phone-number-id}/messages` and
//! `/{version}/{waba-id}/message_templates` under any Graph version `vNN.N`; the token is read
//! from `Authorization: Bearer <token>`; answers have the Cloud API's shapes and refusals Graph's
//! envelope, `{"error": {"message", "type", "code", "error_subcode", "error_data": {"details"},
//! "fbtrace_id"}}`, keyed on `code` (mostly HTTP 400, as Graph does). Its world: any numeric id
//! is a phone number or business account except [`MISSING_ID`]; three templates; the recipient
//! [`OUTSIDE_WINDOW`] last wrote more than 24 hours ago (free-form text is refused with 131047),
//! and any template name exists in any language except [`MISSING_TEMPLATE`] (132001), so
//! that any valid arguments succeed. Messages sent are kept.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::Method;
use serde_json::{Value, json};

use crate::{Fault, PlatformMock, RecordedRequest, Reply};

/// The business phone number's id in the tests' credentials.
pub const PHONE_NUMBER_ID: &str = "106540352242922";
/// The WhatsApp Business Account's id in the tests' credentials.
pub const WABA_ID: &str = "102290129340398";
/// An id Graph does not know, as a phone number or a business account.
pub const MISSING_ID: &str = "404404404404404";
/// A recipient whose customer-service window closed: free-form messages get 131047.
pub const OUTSIDE_WINDOW: &str = "15550000047";
/// A template name that does not exist in any language.
pub const MISSING_TEMPLATE: &str = "no_such_template";

/// The mock's state; start it with [`crate::Mock::start`].
pub struct Whatsapp {
    tokens: Vec<String>,
    sent: Mutex<Vec<Value>>,
    next_id: AtomicU64,
}

impl Whatsapp {
    /// A mock that accepts these access tokens, and no other.
    pub fn accepting(tokens: &[&str]) -> Self {
        Self { tokens: tokens.iter().map(|t| (*t).to_owned()).collect(), sent: Mutex::new(Vec::new()), next_id: AtomicU64::new(1) }
    }

    /// Every message sent so far, oldest first: the request body and the id it was given.
    pub fn sent(&self) -> Vec<Value> {
        self.sent.lock().unwrap().clone()
    }

    fn authorized(&self, request: &RecordedRequest) -> bool {
        let given = request.header("authorization").and_then(|value| value.strip_prefix("Bearer "));
        given.is_some_and(|token| self.tokens.iter().any(|t| t == token))
    }

    fn send(&self, request: &RecordedRequest) -> Reply {
        let body = request.json();
        if body["messaging_product"] != "whatsapp" {
            return graph_error(400, 100, None, "(#100) The parameter messaging_product is required.", None);
        }
        let Some(to) = body["to"].as_str().filter(|to| !to.is_empty()) else {
            return graph_error(400, 100, None, "(#100) The parameter to is required.", None);
        };
        let mut message = json!({});
        match body["type"].as_str() {
            Some("text") => {
                let text = body.pointer("/text/body").and_then(Value::as_str).unwrap_or("");
                if text.is_empty() {
                    return graph_error(400, 100, None, "(#100) Param text['body'] is required", None);
                }
                if text.chars().count() > 4096 {
                    return graph_error(400, 100, None, "(#100) Param text['body'] must be at most 4096 characters long.", None);
                }
                if to == OUTSIDE_WINDOW {
                    return graph_error(
                        400,
                        131_047,
                        None,
                        "Re-engagement message",
                        Some("Message failed to send because more than 24 hours have passed since the customer last replied to this number."),
                    );
                }
            }
            Some("template") => {
                let name = body.pointer("/template/name").and_then(Value::as_str).unwrap_or("");
                let language = body.pointer("/template/language/code").and_then(Value::as_str).unwrap_or("");
                if name.is_empty() || language.is_empty() {
                    return graph_error(400, 100, None, "(#100) The parameter template['name'] and template['language']['code'] are required.", None);
                }
                // Open, like the ids: any template exists in any language, except MISSING_TEMPLATE.
                if name == MISSING_TEMPLATE {
                    return graph_error(
                        404,
                        132_001,
                        None,
                        "(#132001) Template name does not exist in the translation",
                        Some(&format!("template name ({name}) does not exist in {language}")),
                    );
                }
                message["message_status"] = json!("accepted");
            }
            _ => return graph_error(400, 100, None, "(#100) Param type must be one of {TEXT, TEMPLATE, IMAGE, …}", None),
        }
        let id = format!("wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI{:012}", self.next_id.fetch_add(1, Ordering::SeqCst));
        message["id"] = json!(id);
        let mut sent = self.sent.lock().unwrap();
        if sent.len() >= 1000 {
            sent.remove(0);
        }
        sent.push(json!({"id": id, "request": body}));
        ok(json!({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}], "messages": [message]}))
    }

    fn templates(request: &RecordedRequest, waba_id: &str) -> Reply {
        let query = request.query_pairs();
        let param = |key: &str| query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let limit = param("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(25).clamp(1, 100);
        let start = param("after").and_then(|c| c.strip_prefix("cursor-")).and_then(|n| n.parse::<usize>().ok()).unwrap_or(0);
        let all: Vec<Value> = templates()
            .into_iter()
            .filter(|t| param("status").is_none_or(|s| t["status"] == s))
            .filter(|t| param("name").is_none_or(|n| t["name"].as_str().is_some_and(|name| name.contains(n))))
            .filter(|t| param("language").is_none_or(|l| t["language"] == l))
            .collect();
        let page: Vec<Value> = all.iter().skip(start).take(limit).cloned().collect();
        let end = start + page.len();
        let mut paging = json!({"cursors": {"before": format!("cursor-{start}"), "after": format!("cursor-{end}")}});
        if end < all.len() {
            paging["next"] = json!(format!("https://graph.facebook.com/v26.0/{waba_id}/message_templates?limit={limit}&after=cursor-{end}"));
        }
        ok(json!({"data": page, "paging": paging}))
    }
}

fn templates() -> Vec<Value> {
    let body = |text: &str| json!({"type": "BODY", "text": text});
    vec![
        json!({"id": "1402349860004321", "name": "hello_world", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
            "parameter_format": "POSITIONAL", "components": [{"type": "HEADER", "format": "TEXT", "text": "Hello World"},
            body("Welcome and congratulations!! This message demonstrates your ability to send a WhatsApp message notification.")]}),
        json!({"id": "1402349860004322", "name": "order_update", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
            "parameter_format": "NAMED", "components": [body("Hi {{customer_name}}, your order {{order_id}} has shipped.")]}),
        json!({"id": "1402349860004323", "name": "spring_sale", "language": "de", "status": "PENDING", "category": "MARKETING",
            "parameter_format": "POSITIONAL", "components": [body("Frühlingsangebot: {{1}} Rabatt.")]}),
    ]
}

fn ok(body: Value) -> Reply {
    Reply::json(200, body)
}

/// Graph's error envelope.
fn graph_error(status: u16, code: u64, subcode: Option<u64>, message: &str, details: Option<&str>) -> Reply {
    let mut error = json!({"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEfGhIjKlMnOp"});
    if let Some(subcode) = subcode {
        error["error_subcode"] = json!(subcode);
    }
    if let Some(details) = details {
        error["error_data"] = json!({"messaging_product": "whatsapp", "details": details});
    }
    Reply::json(status, json!({ "error": error }))
}

fn is_version(segment: &str) -> bool {
    segment.strip_prefix('v').and_then(|v| v.split_once('.')).is_some_and(|(major, minor)| {
        !major.is_empty() && !minor.is_empty() && major.bytes().chain(minor.bytes()).all(|b| b.is_ascii_digit())
    })
}

impl PlatformMock for Whatsapp {
    fn answer(&self, request: &RecordedRequest) -> Reply {
        let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
        let unknown_path = || graph_error(400, 100, None, "Unknown path components", None);
        let (id, edge) = match segments.as_slice() {
            [version, id, edge] if is_version(version) && !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => (*id, *edge),
            _ => return unknown_path(),
        };
        if !self.authorized(request) {
            return graph_error(401, 190, None, "Invalid OAuth access token - Cannot parse access token", None);
        }
        if id == MISSING_ID {
            return graph_error(
                400,
                100,
                Some(33),
                &format!("Unsupported post request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."),
                None,
            );
        }
        match (edge, &request.method) {
            ("messages", &Method::POST) => self.send(request),
            ("message_templates", &Method::GET) => Self::templates(request, id),
            _ => unknown_path(),
        }
    }

    fn fault(&self, fault: &Fault, request: &RecordedRequest) -> Reply {
        match fault {
            Fault::Unauthorized => graph_error(
                401,
                190,
                Some(460),
                "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.",
                None,
            ),
            Fault::Forbidden => graph_error(403, 200, None, "(#200) Permissions error", None),
            Fault::RateLimited { retry_after } => graph_error(
                400,
                130_429,
                None,
                "(#130429) Rate limit hit",
                Some("Cloud API message throughput has been reached."),
            )
            .header("Retry-After", retry_after.to_string()),
            Fault::ServerError => graph_error(500, 2, None, "(#2) Service temporarily unavailable", None),
            _ => self.answer(request),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mock;

    #[tokio::test]
    async fn the_mock_follows_the_cloud_api_paths_auth_and_envelopes() {
        let mock = Mock::start(Whatsapp::accepting(&["good"])).await;
        let http = reqwest::Client::new();
        let url = |path: &str| format!("{}{path}", mock.base_url());
        let send = json!({"messaging_product": "whatsapp", "to": "15551234567", "type": "text", "text": {"body": "hi"}});

        let sent: Value = http.post(url(&format!("/v26.0/{PHONE_NUMBER_ID}/messages"))).bearer_auth("good").json(&send).send().await.unwrap().json().await.unwrap();
        assert!(sent.pointer("/messages/0/id").and_then(Value::as_str).is_some_and(|id| id.starts_with("wamid.")), "{sent}");
        assert_eq!(mock.platform().sent().len(), 1);

        let refused = http.post(url(&format!("/v26.0/{PHONE_NUMBER_ID}/messages"))).bearer_auth("bad").json(&send).send().await.unwrap();
        assert_eq!(refused.status(), 401);
        assert_eq!(refused.json::<Value>().await.unwrap()["error"]["code"], 190);

        let outside = json!({"messaging_product": "whatsapp", "to": OUTSIDE_WINDOW, "type": "text", "text": {"body": "hi"}});
        let window: Value = http.post(url(&format!("/v26.0/{PHONE_NUMBER_ID}/messages"))).bearer_auth("good").json(&outside).send().await.unwrap().json().await.unwrap();
        assert_eq!(window["error"]["code"], 131_047);

        let page: Value = http.get(url(&format!("/v25.0/{WABA_ID}/message_templates?limit=2"))).bearer_auth("good").send().await.unwrap().json().await.unwrap();
        assert_eq!(page["data"].as_array().map(Vec::len), Some(2));
        assert!(page["paging"]["next"].is_string() && page["paging"]["cursors"]["after"] == "cursor-2", "{page}");

        for path in ["/messages", "/26.0/1/messages", &format!("/v26.0/{WABA_ID}/unknown")] {
            let answer = http.get(url(path)).bearer_auth("good").send().await.unwrap();
            assert_eq!(answer.status(), 400, "{path}");
        }
    }
}
