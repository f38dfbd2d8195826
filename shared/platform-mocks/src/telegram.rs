//! A local stand-in for the Telegram Bot API (`POST /bot<token>/<method>`).
//!
//! The tokens it is started with get Telegram's real success shapes (`User`, `Message`,
//! `PhotoSize`, `Update`, `ChatFullInfo`, in the `{"ok":true,"result":…}` envelope); any other
//! token gets Telegram's real 401, an unknown method its real 404. Every sent message is
//! `message_id` 4242, which the end-to-end tests and the benchmark look for.
//!
//! Webhook mode as Telegram runs it: `setWebhook` checks its request as the Bot API does (an
//! HTTPS `url`, a `secret_token` of 1 to 256 of `A-Z a-z 0-9 _ -`, `allowed_updates` a list of
//! strings, no unknown parameter), `getWebhookInfo` reports it, and `getUpdates` answers 409
//! until `deleteWebhook`.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::{Fault, PlatformMock, RecordedRequest, Reply};

/// The Bot API for a set of bot tokens.
pub struct Telegram {
    tokens: Vec<String>,
    results: HashMap<String, Value>,
    /// Per token, the accepted `setWebhook` parameters while a webhook is set.
    webhooks: Mutex<HashMap<String, Value>>,
}

impl Telegram {
    /// Accepts exactly these tokens (`<bot id>:<secret>`); the bot's id is the part before the colon.
    pub fn accepting(tokens: &[&str]) -> Self {
        Self { tokens: tokens.iter().map(|t| (*t).to_owned()).collect(), results: HashMap::new(), webhooks: Mutex::default() }
    }

    /// Answers `method` (e.g. `getMe`) with exactly `result`, for tests that compare whole outputs.
    pub fn with_result(mut self, method: &str, result: Value) -> Self {
        self.results.insert(method.to_owned(), result);
        self
    }

    /// The parameters of the webhook set for `token`, if one is.
    pub fn webhook(&self, token: &str) -> Option<Value> {
        self.webhooks.lock().unwrap().get(token).cloned()
    }

    fn set_webhook(&self, token: &str, params: &Value) -> Reply {
        const KNOWN: [&str; 7] =
            ["url", "certificate", "ip_address", "max_connections", "allowed_updates", "drop_pending_updates", "secret_token"];
        let Some(fields) = params.as_object() else { return error(400, "Bad Request: bad webhook: request body is not an object") };
        if let Some(unknown) = fields.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return error(400, &format!("Bad Request: unknown parameter {unknown}"));
        }
        match fields.get("url").and_then(Value::as_str) {
            None | Some("") => return error(400, "Bad Request: bad webhook: URL must not be empty"),
            Some(url) if !url.starts_with("https://") => {
                return error(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook");
            }
            Some(_) => {}
        }
        if let Some(secret) = fields.get("secret_token") {
            let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
            if !secret.as_str().is_some_and(|s| !s.is_empty() && s.len() <= 256 && s.bytes().all(allowed)) {
                return error(400, "Bad Request: secret token contains unallowed characters");
            }
        }
        if let Some(kinds) = fields.get("allowed_updates")
            && !kinds.as_array().is_some_and(|kinds| kinds.iter().all(Value::is_string))
        {
            return error(400, "Bad Request: can't parse allowed updates JSON object");
        }
        self.webhooks.lock().unwrap().insert(token.to_owned(), params.clone());
        Reply::json(200, json!({ "ok": true, "result": true, "description": "Webhook was set" }))
    }

    fn delete_webhook(&self, token: &str) -> Reply {
        let was_set = self.webhooks.lock().unwrap().remove(token).is_some();
        let description = if was_set { "Webhook was deleted" } else { "Webhook is already deleted" };
        Reply::json(200, json!({ "ok": true, "result": true, "description": description }))
    }

    fn webhook_info(&self, token: &str) -> Value {
        match self.webhook(token) {
            Some(params) => json!({
                "url": params["url"], "has_custom_certificate": false, "pending_update_count": 0, "max_connections": 40,
                "allowed_updates": params.get("allowed_updates").cloned().unwrap_or_else(|| json!([]))
            }),
            None => json!({ "url": "", "has_custom_certificate": false, "pending_update_count": 0 }),
        }
    }
}

/// `{"ok":true,"result":…}` with 200, as Telegram answers a successful call.
pub fn ok(result: Value) -> Reply {
    Reply::json(200, json!({ "ok": true, "result": result }))
}

/// `{"ok":false,"error_code":…,"description":…}` with the same HTTP status, as Telegram does.
pub fn error(status: u16, description: &str) -> Reply {
    Reply::json(status, json!({ "ok": false, "error_code": status, "description": description }))
}

/// An error envelope carrying `parameters` (`retry_after`, `migrate_to_chat_id`).
pub fn error_with_parameters(status: u16, description: &str, parameters: Value) -> Reply {
    Reply::json(status, json!({ "ok": false, "error_code": status, "description": description, "parameters": parameters }))
}

impl PlatformMock for Telegram {
    fn answer(&self, request: &RecordedRequest) -> Reply {
        let Some((token, method)) = request.path.strip_prefix("/bot").and_then(|rest| rest.split_once('/')) else {
            return error(404, "Not Found");
        };
        if !self.tokens.iter().any(|t| t == token) {
            return error(401, "Unauthorized");
        }
        if let Some(result) = self.results.get(method) {
            return ok(result.clone());
        }
        let params = request.json();
        match method {
            "getMe" => ok(bot(token, true)),
            "sendMessage" => match (&params["chat_id"], &params["text"]) {
                (Value::Null, _) => error(400, "Bad Request: chat_id is empty"),
                (_, Value::Null) => error(400, "Bad Request: message text is empty"),
                (chat_id, text) => ok(message(token, chat_id, json!({ "text": text }))),
            },
            "sendPhoto" => match (&params["chat_id"], &params["photo"]) {
                (Value::Null, _) => error(400, "Bad Request: chat_id is empty"),
                (_, Value::Null) => error(400, "Bad Request: there is no photo in the request"),
                (chat_id, _) => {
                    let mut extra = json!({ "photo": photo_sizes() });
                    if let Some(caption) = params.get("caption") {
                        extra["caption"] = caption.clone();
                    }
                    ok(message(token, chat_id, extra))
                }
            },
            "getUpdates" if self.webhook(token).is_some() => {
                error(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first")
            }
            "getUpdates" => ok(updates(params["offset"].as_i64())),
            "setWebhook" => self.set_webhook(token, &params),
            "deleteWebhook" => self.delete_webhook(token),
            "getWebhookInfo" => ok(self.webhook_info(token)),
            "getChat" => match &params["chat_id"] {
                Value::Null => error(400, "Bad Request: chat_id is empty"),
                chat_id => ok(chat_full_info(chat_id)),
            },
            _ => error(404, "Not Found"),
        }
    }

    fn fault(&self, fault: &Fault, request: &RecordedRequest) -> Reply {
        match fault {
            Fault::Unauthorized => error(401, "Unauthorized"),
            Fault::Forbidden => error(403, "Forbidden: bot was blocked by the user"),
            Fault::RateLimited { retry_after } => {
                // Telegram's waits are whole seconds.
                let seconds = retry_after.max(0.0).ceil() as u64;
                error_with_parameters(429, &format!("Too Many Requests: retry after {seconds}"), json!({ "retry_after": seconds }))
            }
            Fault::ServerError => error(500, "Internal Server Error"),
            Fault::Slow(_) | Fault::Reply(_) => self.answer(request),
        }
    }
}

/// The bot a token belongs to: its id is the token's numeric part. `getMe` adds the capabilities.
fn bot(token: &str, with_capabilities: bool) -> Value {
    let id = token.split_once(':').and_then(|(id, _)| id.parse::<i64>().ok()).unwrap_or(7_000_000_001);
    let mut user = json!({ "id": id, "is_bot": true, "first_name": "Square Bot", "username": "square_test_bot" });
    if with_capabilities {
        for (key, value) in [
            ("can_join_groups", true),
            ("can_read_all_group_messages", false),
            ("supports_inline_queries", false),
            ("can_connect_to_business", false),
            ("has_main_web_app", false),
        ] {
            user[key] = json!(value);
        }
    }
    user
}

/// The `Chat` a `chat_id` names: a person for a positive id, a supergroup for a negative one, a
/// channel for an `@username`.
fn chat(chat_id: &Value) -> Value {
    match chat_id {
        Value::String(name) if name.starts_with('@') => json!({
            "id": -1_001_234_567_890_i64, "title": "SquareMCP Releases", "username": name.trim_start_matches('@'), "type": "channel"
        }),
        Value::String(id) => chat(&id.parse::<i64>().map_or(Value::Null, Value::from)),
        Value::Number(id) if id.as_i64().is_some_and(|id| id < 0) => json!({ "id": id, "title": "SquareMCP Testers", "type": "supergroup" }),
        Value::Number(id) => json!({ "id": id, "first_name": "Ada", "last_name": "Lovelace", "username": "ada_l", "type": "private" }),
        _ => json!({ "id": 987_654_321, "first_name": "Ada", "type": "private" }),
    }
}

/// A `Message` the bot just sent to `chat_id`, with `content` (text, or photo and caption).
fn message(token: &str, chat_id: &Value, content: Value) -> Value {
    let mut message = json!({ "message_id": 4242, "from": bot(token, false), "chat": chat(chat_id), "date": 1_793_512_800 });
    if let (Some(message), Value::Object(content)) = (message.as_object_mut(), content) {
        message.extend(content);
    }
    message
}

/// The sizes Telegram makes of a sent photo, smallest first.
fn photo_sizes() -> Value {
    json!([
        { "file_id": "AgACAgQAAxkDAAIScWd0Sm9mAAFcdwQ2Y3Z0Ejq3dHbQAAK9tzEbPlKpU4x6c0QpPKbhAQADAgADcwADNgQ", "file_unique_id": "AQADvbcxGz5SqVN4", "file_size": 1422, "width": 90, "height": 60 },
        { "file_id": "AgACAgQAAxkDAAIScWd0Sm9mAAFcdwQ2Y3Z0Ejq3dHbQAAK9tzEbPlKpU4x6c0QpPKbhAQADAgADbQADNgQ", "file_unique_id": "AQADvbcxGz5SqVNy", "file_size": 18210, "width": 320, "height": 213 },
        { "file_id": "AgACAgQAAxkDAAIScWd0Sm9mAAFcdwQ2Y3Z0Ejq3dHbQAAK9tzEbPlKpU4x6c0QpPKbhAQADAgADeAADNgQ", "file_unique_id": "AQADvbcxGz5SqVN9", "file_size": 80117, "width": 800, "height": 533 }
    ])
}

/// One pending update (a person's `/start`); an `offset` past it confirms it, as Telegram does.
fn updates(offset: Option<i64>) -> Value {
    const UPDATE_ID: i64 = 830_172_001;
    if offset.is_some_and(|offset| offset > UPDATE_ID) {
        return json!([]);
    }
    json!([{
        "update_id": UPDATE_ID,
        "message": {
            "message_id": 12,
            "from": { "id": 987_654_321, "is_bot": false, "first_name": "Ada", "last_name": "Lovelace", "username": "ada_l", "language_code": "en" },
            "chat": chat(&json!(987_654_321)),
            "date": 1_793_512_000,
            "text": "/start",
            "entities": [{ "offset": 0, "length": 6, "type": "bot_command" }]
        }
    }])
}

/// `ChatFullInfo`: the chat, plus the fields Telegram always adds.
fn chat_full_info(chat_id: &Value) -> Value {
    let mut info = chat(chat_id);
    info["accent_color_id"] = json!(3);
    info["max_reaction_count"] = json!(11);
    if info["type"] != "private" {
        info["description"] = json!("Where the gateway's bots are tried out");
    }
    info
}

#[cfg(test)]
mod tests {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method};

    use super::*;

    const TOKEN: &str = "7012345678:AAFq3xZ-9kLmNoPqRsTuVwXyZ_0123456789ab";

    fn post(path: &str, body: Value) -> RecordedRequest {
        RecordedRequest {
            method: Method::POST,
            path: path.to_owned(),
            query: None,
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_string()),
        }
    }

    fn call(mock: &Telegram, method: &str, body: Value) -> (u16, Value) {
        let reply = mock.answer(&post(&format!("/bot{TOKEN}/{method}"), body));
        (reply.status, serde_json::from_str(&reply.body).unwrap())
    }

    #[test]
    fn an_accepted_token_gets_real_success_shapes() {
        let mock = Telegram::accepting(&[TOKEN]);
        let (status, me) = call(&mock, "getMe", json!({}));
        assert_eq!(status, 200);
        assert_eq!(me["result"]["id"], 7_012_345_678_i64, "the bot id is the token's numeric part");
        assert_eq!(me["result"]["can_join_groups"], true);

        let (_, sent) = call(&mock, "sendMessage", json!({"chat_id": 42, "text": "hello"}));
        let sent = &sent["result"];
        assert_eq!((sent["message_id"].as_i64(), sent["text"].as_str()), (Some(4242), Some("hello")));
        assert_eq!(sent["chat"], json!({"id": 42, "first_name": "Ada", "last_name": "Lovelace", "username": "ada_l", "type": "private"}));
        assert_eq!(call(&mock, "sendMessage", json!({"chat_id": "@news", "text": "x"})).1["result"]["chat"]["username"], "news");

        let (_, photo) = call(&mock, "sendPhoto", json!({"chat_id": -100, "photo": "https://example.com/a.png", "caption": "c"}));
        assert_eq!((photo["result"]["photo"].as_array().map(Vec::len), photo["result"]["caption"].as_str()), (Some(3), Some("c")));
        assert_eq!(photo["result"]["chat"]["type"], "supergroup");

        assert_eq!(call(&mock, "getUpdates", json!({})).1["result"].as_array().map(Vec::len), Some(1));
        assert_eq!(call(&mock, "getUpdates", json!({"offset": 830_172_002})).1["result"], json!([]));
        assert_eq!(call(&mock, "getChat", json!({"chat_id": "-5"})).1["result"]["id"], -5);
    }

    #[test]
    fn other_tokens_unknown_methods_and_missing_parameters_get_telegrams_errors() {
        let mock = Telegram::accepting(&[TOKEN]);
        let wrong = mock.answer(&post("/bot1:other/getMe", json!({})));
        let wrong_body: Value = serde_json::from_str(&wrong.body).unwrap();
        assert_eq!((wrong.status, wrong_body), (401, json!({"ok": false, "error_code": 401, "description": "Unauthorized"})));
        assert_eq!(call(&mock, "getMee", json!({})), (404, json!({"ok": false, "error_code": 404, "description": "Not Found"})));
        assert_eq!(mock.answer(&post("/getMe", json!({}))).status, 404);
        assert_eq!(call(&mock, "sendMessage", json!({"chat_id": 1})).1["description"], "Bad Request: message text is empty");
        assert_eq!(call(&mock, "getChat", json!({})).0, 400);
    }

    #[test]
    fn set_webhook_is_checked_as_telegram_does_and_blocks_get_updates() {
        let mock = Telegram::accepting(&[TOKEN]);
        let refused = |body: Value| call(&mock, "setWebhook", body);
        assert_eq!(refused(json!({"url": "http://x.example/h"})).1["description"], "Bad Request: bad webhook: An HTTPS URL must be provided for webhook");
        assert_eq!(refused(json!({"url": "https://x.example/h", "secret_token": "a b"})).1["description"], "Bad Request: secret token contains unallowed characters");
        assert_eq!(refused(json!({"url": "https://x.example/h", "allowed_updates": "message"})).0, 400);
        assert_eq!(refused(json!({"url": "https://x.example/h", "secret": "x"})).1["description"], "Bad Request: unknown parameter secret");
        assert!(mock.webhook(TOKEN).is_none(), "nothing refused is set");

        let params = json!({"url": "https://x.example/h", "secret_token": "Ab_-9", "allowed_updates": ["message"]});
        assert_eq!(call(&mock, "setWebhook", params.clone()), (200, json!({"ok": true, "result": true, "description": "Webhook was set"})));
        assert_eq!(mock.webhook(TOKEN), Some(params));
        assert_eq!(call(&mock, "getWebhookInfo", json!({})).1["result"]["url"], "https://x.example/h");
        let (status, conflict) = call(&mock, "getUpdates", json!({}));
        assert_eq!((status, conflict["error_code"].as_i64()), (409, Some(409)));

        assert_eq!(call(&mock, "deleteWebhook", json!({})).1["description"], "Webhook was deleted");
        assert_eq!(call(&mock, "deleteWebhook", json!({})).1["description"], "Webhook is already deleted");
        assert_eq!(call(&mock, "getUpdates", json!({})).0, 200);
    }

    #[test]
    fn a_canned_result_replaces_the_built_in_one() {
        let mock = Telegram::accepting(&[TOKEN]).with_result("getChat", json!({"id": 1, "type": "private"}));
        assert_eq!(call(&mock, "getChat", json!({"chat_id": 99})).1, json!({"ok": true, "result": {"id": 1, "type": "private"}}));
    }

    #[test]
    fn faults_come_in_the_bot_api_envelope() {
        let mock = Telegram::accepting(&[TOKEN]);
        let request = post(&format!("/bot{TOKEN}/getMe"), json!({}));
        let rendered = |fault| {
            let reply = mock.fault(&fault, &request);
            (reply.status, serde_json::from_str::<Value>(&reply.body).unwrap())
        };
        assert_eq!(rendered(Fault::Unauthorized), (401, json!({"ok": false, "error_code": 401, "description": "Unauthorized"})));
        assert_eq!(rendered(Fault::Forbidden).1["description"], "Forbidden: bot was blocked by the user");
        assert_eq!(
            rendered(Fault::RateLimited { retry_after: 2.5 }),
            (429, json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 3", "parameters": {"retry_after": 3}}))
        );
        assert_eq!(rendered(Fault::ServerError), (500, json!({"ok": false, "error_code": 500, "description": "Internal Server Error"})));
    }
}
