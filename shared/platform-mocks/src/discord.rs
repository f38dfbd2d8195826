//! A local stand-in for Discord's bot REST API v10.
//!
//! Paths are the real ones under `/api/v10`, the token is read from `Authorization: Bot <token>`,
//! answers have Discord's shapes (User, PartialGuild, Channel, Message) and refusals its envelope,
//! `{"message": "…", "code": N}`. Its world: the bot user, two servers, four channels and a short
//! history in each text channel. Ids are open: any snowflake names an existing server or channel
//! (so that any valid arguments succeed), except [`MISSING_ID`], which Discord does not know.
//! Messages posted are kept and read back, newest first.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::Method;
use serde_json::{Value, json};

use crate::{Fault, PlatformMock, RecordedRequest, Reply};

/// The bot's user id (the first part of a real token is this id in base64).
pub const BOT_ID: &str = "1234567890123456789";
/// The first of the bot's servers.
pub const GUILD_ID: &str = "1100000000000000001";
/// `#general`, a text channel of every server.
pub const CHANNEL_ID: &str = "1100000000000000101";
/// An id Discord does not know, as a server, a channel or a message.
pub const MISSING_ID: &str = "1000000000000000404";

/// The mock's state; start it with [`crate::Mock::start`].
pub struct Discord {
    tokens: Vec<String>,
    message_content: AtomicBool,
    posted: Mutex<Vec<Value>>,
    next_id: AtomicU64,
}

impl Discord {
    /// A mock that accepts these bot tokens (without the `Bot ` prefix), and no other.
    pub fn accepting(tokens: &[&str]) -> Self {
        Self {
            tokens: tokens.iter().map(|t| (*t).to_owned()).collect(),
            message_content: AtomicBool::new(true),
            posted: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1_300_000_000_000_000_100),
        }
    }

    /// Whether the bot has the Message Content privileged intent (it has, at first). Without
    /// it, Discord empties the content, embeds, attachments and components of other people's
    /// messages, except those that mention the bot.
    pub fn set_message_content_intent(&self, enabled: bool) {
        self.message_content.store(enabled, Ordering::SeqCst);
    }

    /// Every message posted so far, oldest first, as Discord answered it.
    pub fn posted(&self) -> Vec<Value> {
        self.posted.lock().unwrap().clone()
    }

    fn authorized(&self, request: &RecordedRequest) -> bool {
        let given = request.header("authorization").and_then(|value| value.strip_prefix("Bot "));
        given.is_some_and(|token| self.tokens.iter().any(|t| t == token))
    }

    fn history(&self, channel_id: &str) -> Vec<Value> {
        let mut messages: Vec<Value> = self.posted().into_iter().filter(|m| m["channel_id"] == channel_id).collect();
        messages.reverse();
        messages.extend(fixture_history(channel_id));
        if !self.message_content.load(Ordering::SeqCst) {
            for message in &mut messages {
                let mentions_bot = message["mentions"].as_array().is_some_and(|m| m.iter().any(|u| u["id"] == BOT_ID));
                let exempt = message["author"]["id"] == BOT_ID || mentions_bot;
                if !exempt {
                    message["content"] = json!("");
                    for key in ["embeds", "attachments", "components"] {
                        message[key] = json!([]);
                    }
                }
            }
        }
        messages
    }

    fn get_messages(&self, request: &RecordedRequest, channel_id: &str) -> Reply {
        let query = request.query_pairs();
        let number = |key: &str| query.iter().find(|(k, _)| k == key).and_then(|(_, v)| v.parse::<u64>().ok());
        let id = |message: &Value| message["id"].as_str().and_then(|id| id.parse::<u64>().ok()).unwrap_or(0);
        let limit = number("limit").unwrap_or(50).clamp(1, 100);
        let page: Vec<Value> = self
            .history(channel_id)
            .into_iter()
            .filter(|m| number("before").is_none_or(|before| id(m) < before) && number("after").is_none_or(|after| id(m) > after))
            .take(usize::try_from(limit).unwrap())
            .collect();
        ok(json!(page))
    }

    fn create_message(&self, request: &RecordedRequest, channel_id: &str) -> Reply {
        let body = request.json();
        let content = body["content"].as_str().unwrap_or("");
        if content.trim().is_empty() && body.get("embeds").is_none() && body.get("sticker_ids").is_none() && body.get("poll").is_none() {
            return Reply::json(400, json!({"message": "Cannot send an empty message", "code": 50006}));
        }
        if content.chars().count() > 2000 {
            return form_error("content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.");
        }
        let reply_to = body["message_reference"]["message_id"].as_str();
        if reply_to == Some(MISSING_ID) {
            return form_error("message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message");
        }
        // Without `allowed_mentions` Discord parses every mention in the content.
        let parse = body.pointer("/allowed_mentions/parse").and_then(Value::as_array).cloned();
        let may = |kind: &str| parse.as_ref().is_none_or(|kinds| kinds.iter().any(|k| k == kind));
        let everyone = may("everyone") && (content.contains("@everyone") || content.contains("@here"));
        let id = self.next_id.fetch_add(1, Ordering::SeqCst).to_string();
        let mut message = message(&id, channel_id, bot_author(), content, json!([]));
        message["mention_everyone"] = json!(everyone);
        if let Some(reply_to) = reply_to {
            message["type"] = json!(19);
            message["message_reference"] = json!({"type": 0, "channel_id": channel_id, "message_id": reply_to, "guild_id": GUILD_ID});
            message["referenced_message"] = self.history(channel_id).into_iter().find(|m| m["id"] == reply_to).unwrap_or(Value::Null);
        }
        let mut posted = self.posted.lock().unwrap();
        // Bounded, for long benchmark runs; a page of history is at most 100 messages anyway.
        if posted.len() >= 1000 {
            posted.remove(0);
        }
        posted.push(message.clone());
        ok(message)
    }
}

impl PlatformMock for Discord {
    fn answer(&self, request: &RecordedRequest) -> Reply {
        let Some(path) = request.path.strip_prefix("/api/v10/") else { return not_found() };
        let segments: Vec<&str> = path.split('/').collect();
        // Discord matches the route before it reads the token.
        let route = match segments.as_slice() {
            ["users", "@me"] => Route::Me,
            ["users", "@me", "guilds"] => Route::Guilds,
            ["guilds", id, "channels"] => Route::Channels(id),
            ["channels", id, "messages"] => Route::Messages(id),
            _ => return not_found(),
        };
        if !self.authorized(request) {
            return Reply::json(401, json!({"message": "401: Unauthorized", "code": 0}));
        }
        let method = &request.method;
        match route {
            Route::Me if method == Method::GET => ok(bot_user()),
            Route::Guilds if method == Method::GET => ok(guilds(request)),
            Route::Channels(id) if method == Method::GET => match snowflake("guild_id", id) {
                Err(reply) => reply,
                Ok(MISSING_ID) => Reply::json(404, json!({"message": "Unknown Guild", "code": 10004})),
                Ok(guild_id) => ok(channels(guild_id)),
            },
            Route::Messages(id) if method == Method::GET || method == Method::POST => match snowflake("channel_id", id) {
                Err(reply) => reply,
                Ok(MISSING_ID) => Reply::json(404, json!({"message": "Unknown Channel", "code": 10003})),
                Ok(channel_id) if method == Method::GET => self.get_messages(request, channel_id),
                Ok(channel_id) => self.create_message(request, channel_id),
            },
            _ => Reply::json(405, json!({"message": "405: Method Not Allowed", "code": 0})),
        }
    }

    fn fault(&self, fault: &Fault, request: &RecordedRequest) -> Reply {
        match fault {
            Fault::Unauthorized => Reply::json(401, json!({"message": "401: Unauthorized", "code": 0})),
            Fault::Forbidden => Reply::json(403, json!({"message": "Missing Permissions", "code": 50013})),
            Fault::RateLimited { retry_after } => {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
                Reply::json(429, json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": false}))
                    .header("Retry-After", retry_after.ceil().to_string())
                    .header("X-RateLimit-Limit", "5")
                    .header("X-RateLimit-Remaining", "0")
                    .header("X-RateLimit-Reset", format!("{:.3}", now + retry_after))
                    .header("X-RateLimit-Reset-After", format!("{retry_after:.3}"))
                    .header("X-RateLimit-Bucket", BUCKET)
                    .header("X-RateLimit-Scope", "user")
            }
            Fault::ServerError => Reply::json(500, json!({"message": "500: Internal Server Error", "code": 0})),
            _ => self.answer(request),
        }
    }
}

enum Route<'a> {
    Me,
    Guilds,
    Channels(&'a str),
    Messages(&'a str),
}

const BUCKET: &str = "80c17d2f203122d936070c88c8d10f33";

/// 200 with the rate-limit headers Discord puts on every answer.
fn ok(body: Value) -> Reply {
    Reply::json(200, body)
        .header("X-RateLimit-Limit", "5")
        .header("X-RateLimit-Remaining", "4")
        .header("X-RateLimit-Reset-After", "1.000")
        .header("X-RateLimit-Bucket", BUCKET)
}

fn not_found() -> Reply {
    Reply::json(404, json!({"message": "404: Not Found", "code": 0}))
}

/// A path id as Discord checks it: digits, or 400 Invalid Form Body naming the field.
fn snowflake<'a>(field: &str, id: &'a str) -> Result<&'a str, Reply> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(id);
    }
    Err(form_error(field, "NUMBER_TYPE_COERCE", &format!("Value \"{id}\" is not snowflake.")))
}

fn form_error(field: &str, code: &str, message: &str) -> Reply {
    let errors = json!({ field: { "_errors": [{ "code": code, "message": message }] } });
    Reply::json(400, json!({"message": "Invalid Form Body", "code": 50035, "errors": errors}))
}

fn user(id: &str, username: &str, global_name: Value, bot: bool) -> Value {
    let mut user = json!({
        "id": id, "username": username, "avatar": null, "discriminator": "0", "public_flags": 0, "flags": 0,
        "banner": null, "accent_color": null, "global_name": global_name, "avatar_decoration_data": null, "collectibles": null,
        "banner_color": null, "clan": null, "primary_guild": null
    });
    if bot {
        user["bot"] = json!(true);
    }
    user
}

fn bot_author() -> Value {
    user(BOT_ID, "squarebot", Value::Null, true)
}

/// `GET /users/@me` as a bot sees itself.
fn bot_user() -> Value {
    let mut me = bot_author();
    let private = [("mfa_enabled", json!(false)), ("locale", json!("en-US")), ("premium_type", json!(0)), ("email", Value::Null)];
    for (key, value) in private.into_iter().chain([("verified", json!(true)), ("bio", json!(""))]) {
        me[key] = value;
    }
    me
}

fn guilds(request: &RecordedRequest) -> Value {
    let query = request.query_pairs();
    let given = |key: &str| query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let number = |key: &str| given(key).and_then(|v| v.parse::<u64>().ok());
    let all = [(GUILD_ID, "SquareMCP Testers", 42, 7), ("1100000000000000002", "Release Crew", 5, 2)];
    let value = |id: &str| id.parse::<u64>().unwrap();
    all.iter()
        .filter(|(id, ..)| number("after").is_none_or(|after| value(id) > after) && number("before").is_none_or(|before| value(id) < before))
        .take(usize::try_from(number("limit").unwrap_or(200)).unwrap())
        .map(|(id, name, members, online)| {
            let mut guild = json!({
                "id": id, "name": name, "icon": null, "banner": null, "owner": false,
                "permissions": "2248473465835073", "features": ["COMMUNITY", "NEWS"]
            });
            if given("with_counts") == Some("true") {
                guild["approximate_member_count"] = json!(members);
                guild["approximate_presence_count"] = json!(online);
            }
            guild
        })
        .collect()
}

fn channels(guild_id: &str) -> Value {
    let channel = |id: &str, kind: u8, name: &str, position: u8, parent: Value| {
        json!({
            "id": id, "type": kind, "guild_id": guild_id, "name": name, "position": position, "flags": 0,
            "parent_id": parent, "permission_overwrites": [], "nsfw": false
        })
    };
    let category = "1100000000000000100";
    let mut general = channel(CHANNEL_ID, 0, "general", 0, json!(category));
    general["topic"] = json!("Builds and releases");
    general["last_message_id"] = json!("1300000000000000003");
    general["rate_limit_per_user"] = json!(0);
    let mut voice = channel("1100000000000000103", 2, "General", 0, json!(category));
    voice["bitrate"] = json!(64000);
    voice["user_limit"] = json!(0);
    voice["rtc_region"] = Value::Null;
    json!([
        channel(category, 4, "Text Channels", 0, Value::Null),
        general,
        channel("1100000000000000102", 5, "releases", 1, json!(category)),
        voice
    ])
}

fn message(id: &str, channel_id: &str, author: Value, content: &str, mentions: Value) -> Value {
    json!({
        "type": 0, "content": content, "mentions": mentions, "mention_roles": [], "attachments": [], "embeds": [],
        "timestamp": "2026-11-02T09:30:00.000000+00:00", "edited_timestamp": null, "flags": 0, "components": [],
        "id": id, "channel_id": channel_id, "author": author, "pinned": false, "mention_everyone": false, "tts": false
    })
}

/// Three messages, newest first: the bot's own, a person mentioning the bot, a person with an attachment.
fn fixture_history(channel_id: &str) -> Vec<Value> {
    let ada = user("1200000000000000001", "ada", json!("Ada"), false);
    let grace = user("1200000000000000002", "grace", json!("Grace"), false);
    let mut with_file = message("1300000000000000001", channel_id, grace, "Release notes for 1.4 attached", json!([]));
    with_file["attachments"] = json!([{
        "id": "1300000000000000901", "filename": "notes.txt", "size": 2048, "content_type": "text/plain; charset=utf-8",
        "url": "https://cdn.discordapp.com/attachments/1/2/notes.txt", "proxy_url": "https://media.discordapp.net/attachments/1/2/notes.txt"
    }]);
    vec![
        message("1300000000000000003", channel_id, bot_author(), "Build finished: all green", json!([])),
        message("1300000000000000002", channel_id, ada, &format!("<@{BOT_ID}> is the build green?"), json!([bot_author()])),
        with_file,
    ]
}

#[cfg(test)]
mod tests {
    use axum::body::Bytes;
    use axum::http::HeaderMap;

    use super::*;

    const TOKEN: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.GhIjKl.mock-token-abcdefghijklmnopqrstuvwx";

    fn request(method: Method, path_and_query: &str, token: Option<&str>, body: Value) -> RecordedRequest {
        let (path, query) = path_and_query.split_once('?').map_or((path_and_query, None), |(p, q)| (p, Some(q.to_owned())));
        let mut headers = HeaderMap::new();
        if let Some(token) = token {
            headers.insert("authorization", format!("Bot {token}").parse().unwrap());
        }
        let body = if body.is_null() { Bytes::new() } else { Bytes::from(body.to_string()) };
        RecordedRequest { method, path: path.to_owned(), query, headers, body }
    }

    fn get(path: &str) -> Reply {
        Discord::accepting(&[TOKEN]).answer(&request(Method::GET, path, Some(TOKEN), Value::Null))
    }

    fn body(reply: &Reply) -> Value {
        serde_json::from_str(&reply.body).unwrap()
    }

    #[test]
    fn routes_answer_with_discords_shapes() {
        let me = get("/api/v10/users/@me");
        assert_eq!((me.status, body(&me)["id"].clone(), body(&me)["bot"].clone()), (200, json!(BOT_ID), json!(true)));
        let guilds = body(&get("/api/v10/users/@me/guilds?limit=1&with_counts=true"));
        assert_eq!(guilds.as_array().map(Vec::len), Some(1));
        assert_eq!(guilds[0]["approximate_member_count"], 42);
        let later = body(&get(&format!("/api/v10/users/@me/guilds?after={GUILD_ID}")));
        assert_eq!(later[0]["name"], "Release Crew");
        let channels = body(&get(&format!("/api/v10/guilds/{GUILD_ID}/channels")));
        assert_eq!(channels[1]["name"], "general");
        assert_eq!(channels[1]["guild_id"], GUILD_ID);
        let messages = body(&get(&format!("/api/v10/channels/{CHANNEL_ID}/messages?limit=2")));
        assert_eq!(messages.as_array().map(Vec::len), Some(2));
        let older = body(&get(&format!("/api/v10/channels/{CHANNEL_ID}/messages?before=1300000000000000002")));
        assert_eq!(older[0]["id"], "1300000000000000001");
    }

    #[test]
    fn refusals_use_discords_envelope() {
        let discord = Discord::accepting(&[TOKEN]);
        let cases = [
            (request(Method::GET, "/api/v10/users/@me", None, Value::Null), 401, 0),
            (request(Method::GET, "/api/v10/users/@me", Some("other"), Value::Null), 401, 0),
            (request(Method::GET, "/api/v9/users/@me", Some(TOKEN), Value::Null), 404, 0),
            (request(Method::GET, &format!("/api/v10/channels/{MISSING_ID}/messages"), Some(TOKEN), Value::Null), 404, 10003),
            (request(Method::GET, &format!("/api/v10/guilds/{MISSING_ID}/channels"), Some(TOKEN), Value::Null), 404, 10004),
            (request(Method::GET, "/api/v10/channels/general/messages", Some(TOKEN), Value::Null), 400, 50035),
            (request(Method::POST, &format!("/api/v10/channels/{CHANNEL_ID}/messages"), Some(TOKEN), json!({"content": " "})), 400, 50006),
            (request(Method::DELETE, "/api/v10/users/@me", Some(TOKEN), Value::Null), 405, 0),
        ];
        for (request, status, code) in cases {
            let reply = discord.answer(&request);
            assert_eq!((reply.status, body(&reply)["code"].as_u64()), (status, Some(code)), "{} {}", request.method, request.path);
        }
        assert!(discord.posted().is_empty());
    }

    #[test]
    fn a_post_echoes_the_message_and_honours_allowed_mentions() {
        let discord = Discord::accepting(&[TOKEN]);
        let path = format!("/api/v10/channels/{CHANNEL_ID}/messages");
        let quiet = json!({"content": "@everyone ship it", "allowed_mentions": {"parse": []}, "message_reference": {"message_id": "1300000000000000002"}});
        let sent = body(&discord.answer(&request(Method::POST, &path, Some(TOKEN), quiet)));
        assert_eq!((sent["content"].as_str(), sent["mention_everyone"].as_bool(), sent["type"].as_u64()), (Some("@everyone ship it"), Some(false), Some(19)));
        assert_eq!(sent["message_reference"]["message_id"], "1300000000000000002");
        assert_eq!(sent["referenced_message"]["author"]["username"], "ada");
        let loud = body(&discord.answer(&request(Method::POST, &path, Some(TOKEN), json!({"content": "@everyone ship it"}))));
        assert_eq!(loud["mention_everyone"], true, "without allowed_mentions Discord parses every mention");
        let unknown = discord.answer(&request(Method::POST, &path, Some(TOKEN), json!({"content": "hi", "message_reference": {"message_id": MISSING_ID}})));
        assert_eq!(body(&unknown)["errors"]["message_reference"]["_errors"][0]["code"], "MESSAGE_REFERENCE_UNKNOWN_MESSAGE");
        let history = body(&discord.answer(&request(Method::GET, &path, Some(TOKEN), Value::Null)));
        assert_eq!(history[0]["id"], loud["id"], "posted messages come back newest first");
        assert_eq!(discord.posted().len(), 2);
    }

    #[test]
    fn without_the_message_content_intent_other_peoples_messages_come_back_empty() {
        let discord = Discord::accepting(&[TOKEN]);
        discord.set_message_content_intent(false);
        let history = body(&discord.answer(&request(Method::GET, &format!("/api/v10/channels/{CHANNEL_ID}/messages"), Some(TOKEN), Value::Null)));
        let contents: Vec<&str> = history.as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
        assert_eq!(contents, ["Build finished: all green", &format!("<@{BOT_ID}> is the build green?"), ""]);
        assert_eq!(history[2]["attachments"], json!([]));
    }

    #[test]
    fn faults_are_rendered_as_discord_sends_them() {
        let discord = Discord::accepting(&[TOKEN]);
        let any = request(Method::GET, "/api/v10/users/@me", Some(TOKEN), Value::Null);
        let limited = discord.fault(&Fault::RateLimited { retry_after: 1.25 }, &any);
        assert_eq!((limited.status, body(&limited)["retry_after"].as_f64(), body(&limited)["global"].as_bool()), (429, Some(1.25), Some(false)));
        let header = |name: &str| limited.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
        assert_eq!(header("Retry-After"), Some("2"));
        assert_eq!(header("X-RateLimit-Reset-After"), Some("1.250"));
        assert_eq!(header("X-RateLimit-Scope"), Some("user"));
        assert_eq!(body(&discord.fault(&Fault::Forbidden, &any))["code"], 50013);
        assert_eq!(discord.fault(&Fault::ServerError, &any).status, 500);
        assert_eq!(discord.fault(&Fault::Unauthorized, &any).status, 401);
    }
}
