//! The Discord tools against the shared Discord mock: each tool's exact request, Discord's real
//! answers, every error mapping, and the bot token kept out of every message and log line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Value, json};
use squaremcp_core::tool::{Annotations, FailureKind, PlatformModule, Tool, ToolFailure, ToolOutput};
use squaremcp_core::{Platform, Secret, schema};
use squaremcp_platform_mocks::discord::{self, CHANNEL_ID, Discord, GUILD_ID, MISSING_ID};
use squaremcp_platform_mocks::{Fault, Mock, RecordedRequest, Reply};
use squaremcp_platforms::{PlatformConfig, http_client, modules};

const TOKEN: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.GhIjKl.SquareMCP-test_token_0123456789abcdefghij";
const OTHER_TOKEN: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.GxYzAb.another-token_0123456789abcdefghijklm";
const USER_AGENT: &str = concat!("DiscordBot (https://github.com/squaremcp/squaremcp, ", env!("CARGO_PKG_VERSION"), ")");

fn module(base_url: &str) -> Box<dyn PlatformModule> {
    let config = PlatformConfig::new(http_client()).with_base_url(Platform::Discord, base_url).expect("a mock origin");
    modules(&config).into_iter().find(|m| m.platform() == Platform::Discord).expect("the Discord module")
}

fn tool_of(module: &dyn PlatformModule, name: &str) -> Arc<dyn Tool> {
    module.tools().into_iter().find(|t| t.definition().name == name).expect(name)
}

async fn start() -> Mock<Discord> {
    Mock::start(Discord::accepting(&[TOKEN])).await
}

fn credential() -> Secret<Value> {
    Secret::new(json!({ "bot_token": TOKEN }))
}

/// Runs `name` as the gateway would: the arguments must pass the tool's input schema first.
async fn call(mock: &Mock<Discord>, name: &str, arguments: Value) -> Result<ToolOutput, ToolFailure> {
    run(&tool_of(module(mock.base_url()).as_ref(), name), arguments).await
}

async fn run(tool: &Arc<dyn Tool>, arguments: Value) -> Result<ToolOutput, ToolFailure> {
    schema::validate(&tool.definition().input_schema, &arguments).expect("the arguments pass the input schema");
    let Value::Object(arguments) = arguments else { panic!("arguments must be an object") };
    tool.call(&credential(), arguments).await
}

/// The one request the mock saw, checked for what every call carries.
fn only_request(mock: &Mock<Discord>) -> RecordedRequest {
    let requests = mock.requests();
    assert_eq!(requests.len(), 1, "expected one request, got {requests:#?}");
    let request = requests.into_iter().next().unwrap();
    assert_eq!(request.header("authorization"), Some(format!("Bot {TOKEN}").as_str()));
    assert_eq!(request.header("user-agent"), Some(USER_AGENT));
    request
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// A successful output must satisfy the tool's declared output schema.
fn assert_conforms(name: &str, output: &ToolOutput) {
    let tool = tool_of(module("http://unused.invalid").as_ref(), name);
    let output_schema = tool.definition().output_schema.as_ref().expect("an output schema");
    schema::validate(output_schema, &output.structured).unwrap_or_else(|why| panic!("{name} output: {why}"));
}

/// Every failure: the expected kind, a hint of the expected text, and never the token.
fn assert_failure(failure: &ToolFailure, kind: FailureKind, contains: &str) {
    assert_eq!(failure.kind, kind, "{failure:?}");
    assert!(failure.message.contains(contains), "expected {contains:?} in {:?}", failure.message);
    assert!(!failure.message.contains(TOKEN), "the token leaked: {}", failure.message);
}

// Requests and successful outputs.

#[tokio::test]
async fn get_me_gets_the_bot_user_with_the_bot_authorization_and_discords_user_agent() {
    let mock = start().await;
    let output = call(&mock, "discord_get_me", json!({})).await.unwrap();
    let request = only_request(&mock);
    assert_eq!((request.method.as_str(), request.path.as_str(), request.query.as_deref()), ("GET", "/api/v10/users/@me", None));
    assert!(request.body.is_empty(), "a GET has no body");
    assert_eq!(output.structured["id"], discord::BOT_ID);
    assert_eq!(output.structured["bot"], true);
    assert_conforms("discord_get_me", &output);
}

#[tokio::test]
async fn get_guilds_sends_its_query_and_wraps_the_list() {
    let mock = start().await;
    let arguments = json!({"limit": 1, "after": "1000000000000000000", "with_counts": true});
    let output = call(&mock, "discord_get_guilds", arguments).await.unwrap();
    let request = only_request(&mock);
    assert_eq!((request.method.as_str(), request.path.as_str()), ("GET", "/api/v10/users/@me/guilds"));
    assert_eq!(request.query_pairs(), pairs(&[("limit", "1"), ("after", "1000000000000000000"), ("with_counts", "true")]));
    let guilds = output.structured["guilds"].as_array().expect("a list under `guilds`");
    assert_eq!(guilds.len(), 1);
    assert_eq!((guilds[0]["id"].as_str(), guilds[0]["approximate_member_count"].as_u64()), (Some(GUILD_ID), Some(42)));
    assert_conforms("discord_get_guilds", &output);

    mock.clear_requests();
    call(&mock, "discord_get_guilds", json!({})).await.unwrap();
    assert_eq!(only_request(&mock).query, None, "absent arguments are not sent");
}

#[tokio::test]
async fn get_channels_puts_the_guild_in_the_path() {
    let mock = start().await;
    let output = call(&mock, "discord_get_channels", json!({"guild_id": GUILD_ID})).await.unwrap();
    let request = only_request(&mock);
    assert_eq!((request.method.as_str(), request.path.as_str(), request.query.as_deref()), ("GET", "/api/v10/guilds/1100000000000000001/channels", None));
    let names: Vec<&str> = output.structured["channels"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["Text Channels", "general", "releases", "General"]);
    assert_conforms("discord_get_channels", &output);
}

#[tokio::test]
async fn send_message_posts_the_content_with_mentions_switched_off() {
    let mock = start().await;
    let output = call(&mock, "discord_send_message", json!({"channel_id": CHANNEL_ID, "content": "@everyone the build is green"})).await.unwrap();
    let request = only_request(&mock);
    assert_eq!((request.method.as_str(), request.path.as_str(), request.query.as_deref()), ("POST", "/api/v10/channels/1100000000000000101/messages", None));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.json(), json!({"content": "@everyone the build is green", "allowed_mentions": {"parse": []}}));
    assert_eq!(output.structured["content"], "@everyone the build is green");
    assert_eq!(output.structured["mention_everyone"], false, "nobody was pinged");
    assert_eq!(output.structured["author"]["id"], discord::BOT_ID);
    assert_conforms("discord_send_message", &output);
}

#[tokio::test]
async fn send_message_replies_and_pings_only_when_asked() {
    let mock = start().await;
    let arguments = json!({"channel_id": CHANNEL_ID, "content": "@everyone ship it", "reply_to": "1300000000000000002", "allow_mentions": true});
    let output = call(&mock, "discord_send_message", arguments).await.unwrap();
    assert_eq!(
        only_request(&mock).json(),
        json!({
            "content": "@everyone ship it",
            "message_reference": {"message_id": "1300000000000000002"},
            "allowed_mentions": {"parse": ["users", "roles", "everyone"]}
        })
    );
    assert_eq!(output.structured["message_reference"]["message_id"], "1300000000000000002");
    assert_eq!(output.structured["mention_everyone"], true);

    mock.clear_requests();
    call(&mock, "discord_send_message", json!({"channel_id": CHANNEL_ID, "content": "@here", "allow_mentions": false})).await.unwrap();
    assert_eq!(only_request(&mock).json()["allowed_mentions"], json!({"parse": []}));
}

#[tokio::test]
async fn get_messages_sends_its_query_and_wraps_the_list_without_a_note() {
    let mock = start().await;
    let output = call(&mock, "discord_get_messages", json!({"channel_id": CHANNEL_ID, "limit": 2, "before": "1300000000000000004"})).await.unwrap();
    let request = only_request(&mock);
    assert_eq!((request.method.as_str(), request.path.as_str()), ("GET", "/api/v10/channels/1100000000000000101/messages"));
    assert_eq!(request.query_pairs(), pairs(&[("limit", "2"), ("before", "1300000000000000004")]));
    assert_eq!(output.structured["messages"].as_array().map(Vec::len), Some(2));
    assert_eq!(output.structured.get("note"), None, "every message has its content");
    assert_conforms("discord_get_messages", &output);
}

#[tokio::test]
async fn get_messages_without_the_message_content_intent_says_how_to_switch_it_on() {
    let mock = start().await;
    mock.platform().set_message_content_intent(false);
    let output = call(&mock, "discord_get_messages", json!({"channel_id": CHANNEL_ID})).await.unwrap();
    let messages = output.structured["messages"].as_array().unwrap();
    assert_eq!(messages[0]["content"], "Build finished: all green", "the bot's own message keeps its content");
    assert_eq!(messages[2]["content"], "");
    let note = output.structured["note"].as_str().expect("a note");
    assert!(note.contains("Message Content") && note.contains("Developer Portal") && note.contains("Privileged Gateway Intents"), "{note}");
    assert_conforms("discord_get_messages", &output);
}

#[tokio::test]
async fn get_messages_refuses_before_and_after_together_without_calling_discord() {
    let mock = start().await;
    let arguments = json!({"channel_id": CHANNEL_ID, "before": "1300000000000000004", "after": "1300000000000000001"});
    let failure = call(&mock, "discord_get_messages", arguments).await.unwrap_err();
    assert_failure(&failure, FailureKind::InvalidInput, "Give `before` or `after`, not both");
    assert!(mock.requests().is_empty());
}

// Error mapping.

#[tokio::test]
async fn a_rejected_token_is_auth_revoked_and_is_never_sent_again() {
    let mock = Mock::start(Discord::accepting(&[OTHER_TOKEN])).await;
    let discord = module(mock.base_url());
    let failure = run(&tool_of(discord.as_ref(), "discord_get_me"), json!({})).await.unwrap_err();
    assert_failure(&failure, FailureKind::AuthRevoked, "Discord rejected the bot token (401 Unauthorized)");
    assert!(failure.message.contains("Reset it in the Developer Portal") && failure.message.contains("store it again"), "{}", failure.message);
    assert_eq!(mock.requests().len(), 1);

    // The same token again, on any tool: nothing leaves the gateway.
    for (name, arguments) in [("discord_get_me", json!({})), ("discord_send_message", json!({"channel_id": CHANNEL_ID, "content": "hi"}))] {
        let failure = run(&tool_of(discord.as_ref(), name), arguments).await.unwrap_err();
        assert_failure(&failure, FailureKind::AuthRevoked, "no longer sends it");
    }
    assert_eq!(mock.requests().len(), 1, "a dead token is not sent again");

    // A new token is sent.
    let get_me = tool_of(discord.as_ref(), "discord_get_me");
    get_me.call(&Secret::new(json!({"bot_token": OTHER_TOKEN})), serde_json::Map::new()).await.unwrap();
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn missing_permissions_name_what_each_tool_needs() {
    let mock = start().await;
    mock.fail_next(Fault::Forbidden);
    let failure = call(&mock, "discord_send_message", json!({"channel_id": CHANNEL_ID, "content": "hi"})).await.unwrap_err();
    assert_failure(&failure, FailureKind::PermissionMissing, "Discord refused Create Message: Missing Permissions (50013)");
    assert!(failure.message.contains("View Channel and Send Messages"), "{}", failure.message);

    mock.fail_next(Fault::Forbidden);
    let failure = call(&mock, "discord_get_messages", json!({"channel_id": CHANNEL_ID})).await.unwrap_err();
    assert_failure(&failure, FailureKind::PermissionMissing, "Read Message History");

    mock.fail_next(Fault::Reply(Reply::json(403, json!({"message": "Missing Access", "code": 50001}))));
    let failure = call(&mock, "discord_get_channels", json!({"guild_id": GUILD_ID})).await.unwrap_err();
    assert_failure(&failure, FailureKind::PermissionMissing, "Missing Access (50001)");
    assert!(failure.message.contains("member of that server"), "{}", failure.message);
    assert_eq!(mock.requests().len(), 3, "a 403 is not retried");
}

#[tokio::test]
async fn a_rate_limit_carries_the_wait_rounded_up() {
    let mock = start().await;
    mock.fail_next(Fault::RateLimited { retry_after: 1.23 });
    let failure = call(&mock, "discord_send_message", json!({"channel_id": CHANNEL_ID, "content": "hi"})).await.unwrap_err();
    assert_failure(&failure, FailureKind::RateLimited, "retry after 2 seconds");
    assert_eq!(failure.retry_after, Some(2));

    // Without a Retry-After header, the body's float; a global limit says so.
    let global = json!({"message": "You are being rate limited.", "retry_after": 0.35, "global": true});
    mock.fail_next(Fault::Reply(Reply::json(429, global)));
    let failure = call(&mock, "discord_get_me", json!({})).await.unwrap_err();
    assert_failure(&failure, FailureKind::RateLimited, "all its requests (the global limit");
    assert_eq!(failure.retry_after, Some(1));

    // Discord's edge blocking the address answers without Discord's JSON.
    mock.fail_next(Fault::Reply(Reply::raw(429, "text/html", "<html>error code: 1015</html>").header("Retry-After", "600")));
    let failure = call(&mock, "discord_get_me", json!({})).await.unwrap_err();
    assert_failure(&failure, FailureKind::RateLimited, "the gateway's address");
    assert_eq!(failure.retry_after, Some(600));
    assert_eq!(mock.requests().len(), 3, "a 429 is not retried");
}

#[tokio::test]
async fn a_server_error_on_a_read_is_retried_once() {
    let mock = start().await;
    mock.fail_next(Fault::ServerError);
    let output = call(&mock, "discord_get_me", json!({})).await.unwrap();
    assert_eq!(output.structured["id"], discord::BOT_ID);
    assert_eq!(mock.requests().len(), 2, "one retry after the 500");

    mock.clear_requests();
    mock.fail_always(Fault::ServerError);
    let failure = call(&mock, "discord_get_messages", json!({"channel_id": CHANNEL_ID})).await.unwrap_err();
    assert_failure(&failure, FailureKind::UpstreamTransient, "Discord had a problem with Get Channel Messages (HTTP 500)");
    assert_eq!(mock.requests().len(), 2, "only one retry");
}

#[tokio::test]
async fn a_server_error_on_send_message_is_not_retried() {
    let mock = start().await;
    mock.fail_next(Fault::ServerError);
    let failure = call(&mock, "discord_send_message", json!({"channel_id": CHANNEL_ID, "content": "hi"})).await.unwrap_err();
    assert_failure(&failure, FailureKind::UpstreamTransient, "Try again shortly");
    assert_eq!(mock.requests().len(), 1, "a write that may have happened is never repeated");
    assert!(mock.platform().posted().is_empty());
}

#[tokio::test]
async fn unknown_ids_are_not_found_and_say_which_to_check() {
    let mock = start().await;
    let failure = call(&mock, "discord_send_message", json!({"channel_id": MISSING_ID, "content": "hi"})).await.unwrap_err();
    assert_failure(&failure, FailureKind::NotFound, "Discord answered Create Message with Unknown Channel (10003): check `channel_id`");
    let failure = call(&mock, "discord_get_channels", json!({"guild_id": MISSING_ID})).await.unwrap_err();
    assert_failure(&failure, FailureKind::NotFound, "Unknown Guild (10004): check `guild_id`");
    assert_eq!(mock.requests().len(), 2, "a 404 is not retried");
}

#[tokio::test]
async fn bad_requests_are_invalid_input_naming_the_field() {
    let mock = start().await;
    let failure = call(&mock, "discord_send_message", json!({"channel_id": CHANNEL_ID, "content": "   "})).await.unwrap_err();
    assert_failure(&failure, FailureKind::InvalidInput, "Discord rejected Create Message: Cannot send an empty message (50006).");
    let arguments = json!({"channel_id": CHANNEL_ID, "content": "hi", "reply_to": MISSING_ID});
    let failure = call(&mock, "discord_send_message", arguments).await.unwrap_err();
    assert_failure(&failure, FailureKind::InvalidInput, "Invalid Form Body (50035): `reply_to`: Unknown message.");
    let failure = call(&mock, "discord_get_messages", json!({"channel_id": "general-chat-channel"})).await.unwrap_err();
    assert_failure(&failure, FailureKind::InvalidInput, "`channel_id`: Value \"general-chat-channel\" is not snowflake.");
    let title = json!({"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 256 or fewer in length."}]});
    let nested = json!({"message": "Invalid Form Body", "code": 50035, "errors": {"embeds": {"0": {"title": title}}}});
    mock.fail_next(Fault::Reply(Reply::json(400, nested)));
    let failure = call(&mock, "discord_send_message", json!({"channel_id": CHANNEL_ID, "content": "hi"})).await.unwrap_err();
    assert_failure(&failure, FailureKind::InvalidInput, "`embeds.0.title`: Must be 256 or fewer in length.");
}

#[tokio::test]
async fn a_stored_credential_of_the_wrong_shape_sends_nothing_and_names_the_field() {
    let mock = start().await;
    let get_me = tool_of(module(mock.base_url()).as_ref(), "discord_get_me");
    let documents = [
        (json!({ "bot_token": format!("Bot {TOKEN}") }), "`bot_token` starts with `Bot `"),
        (json!({ "bot_token": format!("{TOKEN}\u{7f}") }), "`bot_token` has characters that cannot go in an HTTP header"),
        (json!({ "bot_token": format!("{}é", &TOKEN[..20]) }), "`bot_token` has characters that cannot go in an HTTP header"),
        (json!({ "bot_token": format!("{TOKEN}\n") }), "`bot_token` has spaces or line breaks around it"),
        (json!({ "bot_token": 42 }), "`bot_token` must be a string"),
        (json!({ "token": TOKEN }), "unknown key `token`"),
        (json!(TOKEN), "must be a JSON object"),
    ];
    for (document, expected) in documents {
        let failure = get_me.call(&Secret::new(document.clone()), serde_json::Map::new()).await.unwrap_err();
        assert_failure(&failure, FailureKind::NotConfigured, expected);
        assert!(failure.message.contains("Store it again") && !failure.message.contains(&TOKEN[..20]), "{document}: {}", failure.message);
    }
    assert!(mock.requests().is_empty(), "nothing was sent");
}

// Secrecy.

#[tokio::test]
async fn no_failure_message_contains_the_token_even_when_discord_echoes_it() {
    let echo = format!("token {TOKEN} is weird");
    let envelope = json!({"message": echo, "code": 10003, "errors": {"content": {"_errors": [{"message": echo}]}}});
    let replies = [400, 403, 404, 418, 429, 500].map(|status| Reply::json(status, envelope.clone()));
    for reply in replies.into_iter().chain([Reply::raw(502, "text/plain", &echo), Reply::raw(200, "text/plain", &echo)]) {
        let mock = start().await;
        mock.fail_always(Fault::Reply(reply.clone()));
        let failure = call(&mock, "discord_send_message", json!({"channel_id": CHANNEL_ID, "content": "hi"})).await.unwrap_err();
        assert!(!failure.message.contains(TOKEN), "{}: {}", reply.status, failure.message);
    }
}

/// Collects everything the crate logs, at every level, for the duration of one test.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_name_the_operation_but_never_the_token() {
    // Global, not per thread: a thread-local subscriber can miss events whose callsite another
    // test's thread registered first. The other tests' lines land here too, which is fine.
    static LOGS: OnceLock<CapturedLogs> = OnceLock::new();
    let logs = LOGS.get_or_init(|| {
        let logs = CapturedLogs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_ansi(false).with_writer(move || writer.clone()).finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        logs
    });

    let mock = start().await;
    call(&mock, "discord_get_me", json!({})).await.unwrap();
    mock.fail_next(Fault::Forbidden);
    call(&mock, "discord_send_message", json!({"channel_id": CHANNEL_ID, "content": "secret plans"})).await.unwrap_err();
    let refused = Mock::start(Discord::accepting(&[OTHER_TOKEN])).await;
    call(&refused, "discord_get_messages", json!({"channel_id": CHANNEL_ID})).await.unwrap_err();

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    for operation in ["Get Current User", "Create Message", "Get Channel Messages"] {
        assert!(text.contains(operation), "the log names {operation}:\n{text}");
    }
    assert!(!text.contains(TOKEN) && !text.contains("secret plans"), "a token or message content reached the log:\n{text}");
}

// Definitions and credentials.

#[test]
fn the_tools_are_declared_in_order_with_honest_annotations() {
    let discord = module("http://unused.invalid");
    let declared: Vec<(String, Annotations)> = discord.tools().iter().map(|t| (t.definition().name.clone(), t.definition().annotations)).collect();
    let expected = [
        ("discord_get_me", Annotations::READ),
        ("discord_get_guilds", Annotations::READ),
        ("discord_get_channels", Annotations::READ),
        ("discord_send_message", Annotations::WRITE),
        ("discord_get_messages", Annotations::READ),
    ];
    assert_eq!(declared, expected.map(|(name, hints)| (name.to_owned(), hints)));
    let logged: Vec<Vec<&str>> = discord.tools().iter().map(|t| t.definition().logged_arguments.clone()).collect();
    assert_eq!(
        logged,
        [
            vec!["account"],
            vec!["account", "limit", "before", "after", "with_counts"],
            vec!["account", "guild_id"],
            vec!["account", "channel_id", "reply_to", "allow_mentions"],
            vec!["account", "channel_id", "limit", "before", "after"],
        ],
        "ids, limits and flags only: never `content`"
    );
}

#[test]
fn input_schemas_hold_discords_limits() {
    let discord = module("http://unused.invalid");
    let schema_of = |name: &str| tool_of(discord.as_ref(), name).definition().input_schema.clone();
    let rejected = [
        ("discord_send_message", json!({"channel_id": CHANNEL_ID, "content": ""})),
        ("discord_send_message", json!({"channel_id": CHANNEL_ID, "content": "x".repeat(2001)})),
        ("discord_send_message", json!({"channel_id": 1_100_000_000_000_000_101_u64, "content": "hi"})),
        ("discord_send_message", json!({"content": "hi"})),
        ("discord_send_message", json!({"channel_id": CHANNEL_ID, "content": "hi", "allowed_mentions": {"parse": ["everyone"]}})),
        ("discord_get_guilds", json!({"limit": 0})),
        ("discord_get_guilds", json!({"limit": 201})),
        ("discord_get_messages", json!({"channel_id": CHANNEL_ID, "limit": 101})),
        ("discord_get_messages", json!({"channel_id": "1234"})),
        ("discord_get_channels", json!({})),
    ];
    for (name, arguments) in rejected {
        assert!(schema::validate(&schema_of(name), &arguments).is_err(), "{name} accepted {arguments}");
    }
    let accepted = [
        ("discord_send_message", json!({"channel_id": CHANNEL_ID, "content": "x".repeat(2000), "account": "work"})),
        ("discord_get_guilds", json!({"limit": 200, "before": "12345678901234567890"})),
        ("discord_get_messages", json!({"channel_id": CHANNEL_ID, "limit": 1, "after": "81384788765712384"})),
    ];
    for (name, arguments) in accepted {
        schema::validate(&schema_of(name), &arguments).unwrap_or_else(|why| panic!("{name} refused {arguments}: {why}"));
    }
}

#[test]
fn check_credential_accepts_a_bot_token_and_explains_bad_shapes_without_repeating_them() {
    let check = squaremcp_platforms::discord::ENTRY.check_credential;
    assert_eq!(check(&json!({ "bot_token": TOKEN })), Ok(()));
    let example: Value = serde_json::from_str(squaremcp_platforms::discord::CREDENTIAL_EXAMPLE).unwrap();
    assert_eq!(check(&example), Ok(()));
    let bad = [
        (json!({}), "`bot_token` is missing: copy it from the Developer Portal"),
        (json!({ "bot_token": "" }), "`bot_token` is empty"),
        (json!({ "bot_token": format!("bot {TOKEN}") }), "starts with `Bot `"),
        (json!({ "bot_token": format!("{TOKEN} x") }), "cannot go in an HTTP header"),
        (json!({ "bot_token": TOKEN, "client_secret": TOKEN }), "unknown key `client_secret`"),
    ];
    for (document, reason) in bad {
        let why = check(&document).unwrap_err().to_string();
        assert!(why.contains(reason), "{document}: {why}");
        assert!(!why.contains(&TOKEN[..20]), "{document}: the message repeats the token: {why}");
    }
}
