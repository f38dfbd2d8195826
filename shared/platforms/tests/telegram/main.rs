//! The Telegram module against a local mock of the Bot API: exact requests, real response shapes,
//! every error mapping, and the bot token kept out of every message and log line.

#![allow(clippy::unwrap_used)]

mod payloads;
mod webhook;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};
use squaremcp_core::tool::{Annotations, FailureKind, PlatformModule, Tool, ToolFailure, ToolOutput};
use squaremcp_core::{Platform, Secret, schema};
use squaremcp_platform_mocks::telegram::{self as bot_api, Telegram};
use squaremcp_platform_mocks::{Fault, Mock, Reply};
use squaremcp_platforms::{PlatformConfig, http_client, modules};

const TOKEN: &str = "7012345678:AAFq3xZ-9kLmNoPqRsTuVwXyZ_0123456789ab";
const SECRET_PART: &str = "AAFq3xZ-9kLmNoPqRsTuVwXyZ_0123456789ab";

fn telegram(base_url: &str, http: reqwest::Client) -> Box<dyn PlatformModule> {
    let config = PlatformConfig::new(http).with_base_url(Platform::Telegram, base_url).expect("a mock origin");
    modules(&config).into_iter().find(|m| m.platform() == Platform::Telegram).expect("the Telegram module")
}

fn tool(base_url: &str, name: &str) -> Arc<dyn Tool> {
    tool_with_client(base_url, name, http_client())
}

fn tool_with_client(base_url: &str, name: &str, http: reqwest::Client) -> Arc<dyn Tool> {
    telegram(base_url, http).tools().into_iter().find(|t| t.definition().name == name).expect(name)
}

fn credential() -> Secret<Value> {
    Secret::new(json!({ "bot_token": TOKEN }))
}

/// Runs `name` as the gateway would: the arguments must pass the tool's input schema first.
async fn call_at(base_url: &str, name: &str, arguments: Value) -> Result<ToolOutput, ToolFailure> {
    run(tool(base_url, name), arguments).await
}

async fn run(tool: Arc<dyn Tool>, arguments: Value) -> Result<ToolOutput, ToolFailure> {
    schema::validate(&tool.definition().input_schema, &arguments).expect("the arguments pass the input schema");
    let Value::Object(arguments) = arguments else { panic!("arguments must be an object") };
    tool.call(&credential(), arguments).await
}

/// A successful output must be an object that satisfies the tool's declared output schema.
fn assert_conforms(name: &str, output: &ToolOutput) {
    let tool = tool("http://unused.invalid", name);
    let output_schema = tool.definition().output_schema.as_ref().expect("an output schema");
    assert!(output.structured.is_object());
    schema::validate(output_schema, &output.structured).unwrap_or_else(|why| panic!("{name} output: {why}"));
}

/// Every failure: the expected kind, a hint of the expected text, and never the token.
fn assert_failure(failure: &ToolFailure, kind: FailureKind, contains: &str) {
    assert_eq!(failure.kind, kind, "{failure:?}");
    assert!(failure.message.contains(contains), "expected {contains:?} in {:?}", failure.message);
    assert_token_absent(&failure.message);
}

fn assert_token_absent(text: &str) {
    assert!(!text.contains(TOKEN) && !text.contains(SECRET_PART), "the bot token leaked: {text}");
}

/// The Bot API accepting [`TOKEN`], answering `method` with exactly `result`.
async fn mock_answering(method: &str, result: Value) -> Mock<Telegram> {
    Mock::start(Telegram::accepting(&[TOKEN]).with_result(method, result)).await
}

/// The Bot API accepting [`TOKEN`], answering every request with `fault`.
async fn mock_failing(fault: Fault) -> Mock<Telegram> {
    let mock = Mock::start(Telegram::accepting(&[TOKEN])).await;
    mock.fail_always(fault);
    mock
}

/// Asserts that exactly one request came, and that it is the Bot API call `method` with exactly
/// `expected_body`: POST, `/bot<token>/<method>`, JSON content type, no query string.
fn assert_single_call(mock: &Mock<Telegram>, method: &str, expected_body: Value) {
    let requests = mock.requests();
    assert_eq!(requests.len(), 1, "expected one request, got {requests:#?}");
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/bot{TOKEN}/{method}"));
    assert_eq!(request.query, None);
    assert_eq!(request.header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&request.body).expect("the request body is JSON");
    assert_eq!(body, expected_body, "request body of {method}");
}

// Requests and successful outputs.

#[tokio::test]
async fn get_me_posts_an_empty_json_object_and_returns_the_bot_user() {
    let mock = mock_answering("getMe", payloads::bot_user()).await;
    let output = call_at(mock.base_url(), "telegram_get_me", json!({})).await.unwrap();
    assert_single_call(&mock, "getMe", json!({}));
    let user_agent = mock.requests()[0].header("user-agent").map(str::to_owned);
    assert_eq!(user_agent, Some(format!("SquareMCP/{}", env!("CARGO_PKG_VERSION"))));
    assert_eq!(output.structured, payloads::bot_user());
    assert_conforms("telegram_get_me", &output);
}

#[tokio::test]
async fn send_message_with_only_the_required_arguments_sends_only_them() {
    let mock = mock_answering("sendMessage", payloads::sent_text_message()).await;
    let output = call_at(mock.base_url(), "telegram_send_message", json!({"chat_id": 987654321, "text": "Build finished: all green"}))
        .await
        .unwrap();
    assert_single_call(&mock, "sendMessage", json!({"chat_id": 987654321, "text": "Build finished: all green"}));
    assert_eq!(output.structured, payloads::sent_text_message());
    assert_conforms("telegram_send_message", &output);
}

#[tokio::test]
async fn send_message_maps_every_optional_argument_to_the_bot_api_shape() {
    let mock = mock_answering("sendMessage", payloads::sent_text_message()).await;
    let arguments = json!({
        "chat_id": "@squaremcp_releases",
        "text": "*Release* 1\\.4",
        "parse_mode": "MarkdownV2",
        "disable_notification": true,
        "protect_content": false,
        "message_thread_id": 7,
        "reply_to_message_id": 4700,
        "link_preview_disabled": true
    });
    call_at(mock.base_url(), "telegram_send_message", arguments).await.unwrap();
    assert_single_call(
        &mock,
        "sendMessage",
        json!({
            "chat_id": "@squaremcp_releases",
            "text": "*Release* 1\\.4",
            "parse_mode": "MarkdownV2",
            "disable_notification": true,
            "protect_content": false,
            "message_thread_id": 7,
            "reply_parameters": { "message_id": 4700 },
            "link_preview_options": { "is_disabled": true }
        }),
    );
}

#[tokio::test]
async fn send_photo_sends_the_url_and_caption_and_returns_the_photo_sizes() {
    let mock = mock_answering("sendPhoto", payloads::sent_photo_message()).await;
    let arguments = json!({
        "chat_id": -1001234567890_i64,
        "photo": "https://example.com/release-1.4.png",
        "caption": "<b>Release 1.4</b> is out",
        "parse_mode": "HTML",
        "has_spoiler": true,
        "disable_notification": true
    });
    let output = call_at(mock.base_url(), "telegram_send_photo", arguments.clone()).await.unwrap();
    assert_single_call(&mock, "sendPhoto", arguments);
    assert_eq!(output.structured["photo"].as_array().map(Vec::len), Some(3));
    assert_eq!(output.structured, payloads::sent_photo_message());
    assert_conforms("telegram_send_photo", &output);
}

#[tokio::test]
async fn send_photo_by_file_id_sends_only_chat_and_photo() {
    let mock = mock_answering("sendPhoto", payloads::sent_photo_message()).await;
    let file_id = "AgACAgQAAxkDAAIScWd0Sm9mAAFcdwQ2Y3Z0Ejq3dHbQAAK9tzEbPlKpU4x6c0QpPKbhAQADAgADeAADNgQ";
    call_at(mock.base_url(), "telegram_send_photo", json!({"chat_id": 987654321, "photo": file_id})).await.unwrap();
    assert_single_call(&mock, "sendPhoto", json!({"chat_id": 987654321, "photo": file_id}));
}

#[tokio::test]
async fn send_photo_refuses_a_plain_http_url_without_calling_telegram() {
    let mock = mock_answering("sendPhoto", payloads::sent_photo_message()).await;
    let failure = call_at(mock.base_url(), "telegram_send_photo", json!({"chat_id": 1, "photo": "http://example.com/a.png"}))
        .await
        .unwrap_err();
    assert_failure(&failure, FailureKind::InvalidInput, "https://");
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn get_updates_wraps_the_update_list_in_an_object() {
    let mock = mock_answering("getUpdates", payloads::update_list()).await;
    let arguments = json!({"offset": 830172001, "limit": 10, "timeout": 5, "allowed_updates": ["message", "edited_message"]});
    let output = call_at(mock.base_url(), "telegram_get_updates", arguments.clone()).await.unwrap();
    assert_single_call(&mock, "getUpdates", arguments);
    assert_eq!(output.structured, json!({ "updates": payloads::update_list() }));
    assert_conforms("telegram_get_updates", &output);
}

#[tokio::test]
async fn get_updates_without_arguments_sends_an_empty_body_and_an_empty_list_is_an_empty_array() {
    let mock = mock_answering("getUpdates", json!([])).await;
    let output = call_at(mock.base_url(), "telegram_get_updates", json!({})).await.unwrap();
    assert_single_call(&mock, "getUpdates", json!({}));
    assert_eq!(output.structured, json!({ "updates": [] }));
}

#[tokio::test]
async fn get_updates_caps_the_long_poll_so_a_call_cannot_hang() {
    let mock = mock_answering("getUpdates", json!([])).await;
    call_at(mock.base_url(), "telegram_get_updates", json!({"timeout": 50})).await.unwrap();
    assert_single_call(&mock, "getUpdates", json!({"timeout": 20}));
}

#[tokio::test]
async fn get_chat_returns_the_chat_full_info() {
    let mock = mock_answering("getChat", payloads::supergroup_full_info()).await;
    let output = call_at(mock.base_url(), "telegram_get_chat", json!({"chat_id": "@squaremcp_testers"})).await.unwrap();
    assert_single_call(&mock, "getChat", json!({"chat_id": "@squaremcp_testers"}));
    assert_eq!(output.structured, payloads::supergroup_full_info());
    assert_conforms("telegram_get_chat", &output);
}

#[tokio::test]
async fn every_tool_succeeds_on_the_mocks_own_answers() {
    let mock = Mock::start(Telegram::accepting(&[TOKEN])).await;
    let calls = [
        ("telegram_get_me", json!({})),
        ("telegram_send_message", send_hello()),
        ("telegram_send_photo", json!({"chat_id": 987654321, "photo": "https://example.com/a.png", "caption": "hi"})),
        ("telegram_get_updates", json!({})),
        ("telegram_get_chat", json!({"chat_id": -1001234567890_i64})),
    ];
    for (name, arguments) in calls {
        let output = call_at(mock.base_url(), name, arguments).await.unwrap_or_else(|f| panic!("{name}: {f:?}"));
        assert_conforms(name, &output);
    }
    assert_eq!(mock.request_count(), 5);
}

// Error mapping.

/// The failure of `name` when every answer is `fault`, and that `requests` reached the mock.
async fn failure_after(fault: Fault, name: &str, arguments: Value, requests: usize) -> ToolFailure {
    let mock = mock_failing(fault).await;
    let failure = call_at(mock.base_url(), name, arguments).await.unwrap_err();
    assert_eq!(mock.requests().len(), requests, "requests that reached the mock");
    failure
}

/// Like [`failure_after`], for a failure that is not retried: one request.
async fn failure_for(fault: Fault, name: &str, arguments: Value) -> ToolFailure {
    failure_after(fault, name, arguments, 1).await
}

fn send_hello() -> Value {
    json!({"chat_id": 987654321, "text": "hello"})
}

#[tokio::test]
async fn unauthorized_means_the_token_was_rejected() {
    let failure = failure_for(Fault::Unauthorized, "telegram_get_me", json!({})).await;
    assert_failure(&failure, FailureKind::AuthRevoked, "@BotFather");
    assert_eq!(
        failure.message,
        "Telegram rejected the bot token (401 Unauthorized). Create a new token with @BotFather and store it again."
    );
}

#[tokio::test]
async fn a_token_telegram_does_not_know_is_rejected() {
    let mock = Mock::start(Telegram::accepting(&[])).await;
    let failure = call_at(mock.base_url(), "telegram_get_me", json!({})).await.unwrap_err();
    assert_failure(&failure, FailureKind::AuthRevoked, "401 Unauthorized");
}

#[tokio::test]
async fn not_found_means_a_malformed_token() {
    let failure = failure_for(Fault::Reply(bot_api::error(404, "Not Found")), "telegram_get_me", json!({})).await;
    assert_failure(&failure, FailureKind::AuthRevoked, "404 Not Found on getMe");
}

#[tokio::test]
async fn forbidden_is_a_missing_permission_with_telegrams_reason() {
    let failure = failure_for(Fault::Forbidden, "telegram_send_message", send_hello()).await;
    assert_failure(&failure, FailureKind::PermissionMissing, "Forbidden: bot was blocked by the user");
}

#[tokio::test]
async fn chat_not_found_is_an_invalid_argument_with_telegrams_reason() {
    let reply = bot_api::error(400, "Bad Request: chat not found");
    let failure = failure_for(Fault::Reply(reply), "telegram_get_chat", json!({"chat_id": 42})).await;
    assert_failure(&failure, FailureKind::InvalidInput, "Bad Request: chat not found");
    assert_eq!(failure.retry_after, None);
}

#[tokio::test]
async fn a_migrated_group_names_the_new_chat_id() {
    let reply = bot_api::error_with_parameters(
        400,
        "Bad Request: group chat was upgraded to a supergroup chat",
        json!({"migrate_to_chat_id": -1001234567890_i64}),
    );
    let failure = failure_for(Fault::Reply(reply), "telegram_send_message", json!({"chat_id": -4567890, "text": "hello"})).await;
    assert_failure(&failure, FailureKind::InvalidInput, "the group became a supergroup; use chat_id -1001234567890");
}

#[tokio::test]
async fn rate_limiting_carries_retry_after() {
    let failure = failure_for(Fault::RateLimited { retry_after: 35.0 }, "telegram_send_message", send_hello()).await;
    assert_failure(&failure, FailureKind::RateLimited, "retry after 35 seconds");
    assert_eq!(failure.retry_after, Some(35));
}

#[tokio::test]
async fn get_updates_while_a_webhook_is_set_says_how_to_fix_it() {
    let reply = bot_api::error(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first");
    let failure = failure_for(Fault::Reply(reply), "telegram_get_updates", json!({})).await;
    assert_failure(&failure, FailureKind::NotConfigured, "Remove the webhook (deleteWebhook)");
}

#[tokio::test]
async fn get_updates_beside_another_poller_says_one_reader_per_bot() {
    let reply = bot_api::error(409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running");
    let failure = failure_for(Fault::Reply(reply), "telegram_get_updates", json!({})).await;
    assert_failure(&failure, FailureKind::Upstream, "one reader per bot");
}

#[tokio::test]
async fn a_server_error_is_transient_and_a_read_tries_twice() {
    let failure = failure_after(Fault::Reply(bot_api::error(502, "Bad Gateway")), "telegram_get_me", json!({}), 2).await;
    assert_failure(&failure, FailureKind::UpstreamTransient, "Try again shortly");
}

#[tokio::test]
async fn a_read_is_retried_once_after_a_server_error_and_a_write_is_not() {
    let mock = Mock::start(Telegram::accepting(&[TOKEN])).await;
    mock.fail_next(Fault::ServerError);
    let output = call_at(mock.base_url(), "telegram_get_me", json!({})).await.unwrap();
    assert_eq!(output.structured["is_bot"], true, "the retry got the answer");
    assert_eq!(mock.requests().len(), 2);

    mock.clear_requests();
    mock.fail_next(Fault::ServerError);
    let failure = call_at(mock.base_url(), "telegram_send_message", send_hello()).await.unwrap_err();
    assert_failure(&failure, FailureKind::UpstreamTransient, "Internal Server Error");
    assert_eq!(mock.requests().len(), 1, "a message is never sent twice");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_upstream() {
    let reply = Reply::raw(502, "text/html", "<html><body><h1>502 Bad Gateway</h1>nginx</body></html>");
    let failure = failure_after(Fault::Reply(reply), "telegram_get_me", json!({}), 2).await;
    assert_failure(&failure, FailureKind::UpstreamTransient, "HTTP 502");
    let reply = Reply::raw(200, "text/html", "<html>captive portal</html>");
    let failure = failure_for(Fault::Reply(reply), "telegram_get_me", json!({})).await;
    assert_failure(&failure, FailureKind::Upstream, "HTTP 200 and a body that is not a Bot API response");
}

#[tokio::test]
async fn ok_without_a_list_from_get_updates_is_upstream() {
    let failure = failure_for(Fault::Reply(bot_api::ok(json!({"unexpected": true}))), "telegram_get_updates", json!({})).await;
    assert_failure(&failure, FailureKind::Upstream, "not a list");
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let failure = call_at(&format!("http://{closed_port}"), "telegram_get_me", json!({})).await.unwrap_err();
    assert_failure(&failure, FailureKind::UpstreamTransient, "could not connect");
}

#[tokio::test]
async fn a_timeout_is_transient() {
    let mock = mock_failing(Fault::Slow(Duration::from_secs(5))).await;
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(200)).build().unwrap();
    let failure = run(tool_with_client(mock.base_url(), "telegram_get_me", impatient), json!({})).await.unwrap_err();
    assert_failure(&failure, FailureKind::UpstreamTransient, "did not answer getMe in time");
}

#[tokio::test]
async fn a_redirect_is_not_followed_so_the_token_in_the_path_stays_home() {
    let elsewhere = Mock::start(Telegram::accepting(&[TOKEN])).await;
    let redirect = Reply::raw(307, "text/plain", "").header("location", format!("{}/bot{TOKEN}/getMe", elsewhere.base_url()));
    let failure = failure_for(Fault::Reply(redirect), "telegram_get_me", json!({})).await;
    assert_failure(&failure, FailureKind::Upstream, "HTTP 307");
    assert!(elsewhere.requests().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn a_stored_credential_of_the_wrong_shape_is_not_configured_and_sends_nothing() {
    let mock = Mock::start(Telegram::accepting(&[TOKEN])).await;
    let get_me = tool(mock.base_url(), "telegram_get_me");
    let broken = Secret::new(json!({ "bot_token": SECRET_PART }));
    let failure = get_me.call(&broken, Map::new()).await.unwrap_err();
    assert_failure(&failure, FailureKind::NotConfigured, "Store it again");
    assert!(mock.requests().is_empty());
}

// Secrecy.

#[tokio::test]
async fn no_failure_message_contains_the_token_even_when_telegram_echoes_it() {
    let echoing = format!("Bad Request: token {TOKEN} is weird, secret {SECRET_PART}");
    let replies = [
        bot_api::error(400, &echoing),
        bot_api::error(403, &echoing),
        bot_api::error(409, &echoing),
        bot_api::error(429, &echoing),
        bot_api::error(500, &echoing),
        bot_api::error(418, &echoing),
        Reply::raw(200, "text/plain", &echoing),
    ];
    for reply in replies {
        let failure = failure_for(Fault::Reply(reply.clone()), "telegram_send_message", send_hello()).await;
        assert_token_absent(&failure.message);
        if failure.kind != FailureKind::RateLimited && failure.message.contains("token") {
            assert!(failure.message.contains("[credential]"), "{reply:?} → {failure:?}");
        }
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
async fn logs_name_the_method_but_never_the_token() {
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // A current-thread test runtime: the thread-local subscriber sees every call below.
    let _guard = tracing::subscriber::set_default(subscriber);

    let ok = Mock::start(Telegram::accepting(&[TOKEN])).await;
    call_at(ok.base_url(), "telegram_get_me", json!({})).await.unwrap();
    let refused = Mock::start(Telegram::accepting(&[])).await;
    call_at(refused.base_url(), "telegram_send_message", send_hello()).await.unwrap_err();
    let garbled = mock_failing(Fault::Reply(Reply::raw(502, "text/html", "<html>bad gateway</html>"))).await;
    call_at(garbled.base_url(), "telegram_get_chat", json!({"chat_id": 1})).await.unwrap_err();
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    call_at(&format!("http://{closed_port}"), "telegram_get_updates", json!({})).await.unwrap_err();

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    for method in ["getMe", "sendMessage", "getChat", "getUpdates"] {
        assert!(text.contains(method), "the log names {method}:\n{text}");
    }
    assert!(text.contains("the platform request failed") && text.contains("telegram"), "the transport failure is logged:\n{text}");
    assert_token_absent(&text);
    assert!(!text.contains("/bot") && !text.contains("[credential]"), "no request URL reaches the log, not even scrubbed:\n{text}");
}

// Definitions and credentials.

#[test]
fn the_tools_declare_names_honest_hints_and_object_output_schemas() {
    let module = telegram("http://unused.invalid", http_client());
    let declared: Vec<(String, Annotations)> =
        module.tools().iter().map(|t| (t.definition().name.clone(), t.definition().annotations)).collect();
    let expected = [
        ("telegram_get_me", Annotations::READ),
        ("telegram_send_message", Annotations::WRITE),
        ("telegram_send_photo", Annotations::WRITE),
        // Not read-only: `offset` confirms, i.e. deletes, earlier updates; the same offset twice
        // gives the same answer.
        ("telegram_get_updates", Annotations { read_only: false, destructive: true, idempotent: true, open_world: true }),
        ("telegram_get_chat", Annotations::READ),
    ];
    assert_eq!(declared, expected.map(|(name, hints)| (name.to_owned(), hints)));
    for tool in module.tools() {
        let definition = tool.definition();
        assert_eq!(definition.platform, Platform::Telegram);
        assert_eq!(definition.output_schema.as_ref().map(|s| &s["type"]), Some(&json!("object")), "{}", definition.name);
        assert!(definition.input_schema["properties"]["account"].is_object(), "{} offers `account`", definition.name);
    }
}

#[test]
fn required_and_logged_arguments_are_declared_per_tool() {
    let module = telegram("http://unused.invalid", http_client());
    let expected: [(&str, &[&str], &[&str]); 5] = [
        ("telegram_get_me", &[], &["account"]),
        (
            "telegram_send_message",
            &["chat_id", "text"],
            &[
                "account",
                "chat_id",
                "parse_mode",
                "disable_notification",
                "protect_content",
                "message_thread_id",
                "reply_to_message_id",
                "link_preview_disabled",
            ],
        ),
        ("telegram_send_photo", &["chat_id", "photo"], &["account", "chat_id", "parse_mode", "has_spoiler", "disable_notification"]),
        ("telegram_get_updates", &[], &["account", "offset", "limit", "timeout", "allowed_updates"]),
        ("telegram_get_chat", &["chat_id"], &["account", "chat_id"]),
    ];
    for (tool, (name, required, logged)) in module.tools().iter().zip(expected) {
        let definition = tool.definition();
        assert_eq!(definition.name, name);
        assert_eq!(definition.input_schema["required"], json!(required), "{name}");
        assert_eq!(definition.logged_arguments, logged, "{name}: message text and captions stay out of the call log");
    }
}

#[test]
fn input_schemas_use_only_keywords_the_gateway_validator_knows() {
    const KNOWN: [&str; 13] = [
        "type", "properties", "required", "additionalProperties", "enum", "minLength", "maxLength", "minimum",
        "maximum", "items", "minItems", "maxItems", "description",
    ];
    fn check(schema: &Value, at: &str) {
        let object = schema.as_object().unwrap_or_else(|| panic!("{at} is not a schema object"));
        for (keyword, inner) in object {
            assert!(KNOWN.contains(&keyword.as_str()), "{at} uses `{keyword}`");
            match keyword.as_str() {
                "properties" => inner.as_object().unwrap().iter().for_each(|(name, s)| check(s, &format!("{at}.{name}"))),
                "items" => check(inner, &format!("{at}[]")),
                _ => {}
            }
        }
    }
    for tool in telegram("http://unused.invalid", http_client()).tools() {
        check(&tool.definition().input_schema, &tool.definition().name);
    }
}

#[test]
fn input_schemas_hold_telegrams_limits() {
    let module = telegram("http://unused.invalid", http_client());
    let schema_of = |name: &str| {
        module.tools().into_iter().find(|t| t.definition().name == name).unwrap().definition().input_schema.clone()
    };
    let rejected = [
        ("telegram_send_message", json!({"chat_id": 1, "text": ""})),
        ("telegram_send_message", json!({"chat_id": 1, "text": "x".repeat(4097)})),
        ("telegram_send_message", json!({"chat_id": true, "text": "hi"})),
        ("telegram_send_message", json!({"chat_id": 1, "text": "hi", "parse_mode": "markdown"})),
        ("telegram_send_message", json!({"chat_id": 1})),
        ("telegram_send_photo", json!({"chat_id": 1, "photo": "x", "caption": "c".repeat(1025)})),
        ("telegram_get_updates", json!({"limit": 0})),
        ("telegram_get_updates", json!({"limit": 101})),
        ("telegram_get_updates", json!({"timeout": 51})),
        ("telegram_get_updates", json!({"allowed_updates": [1]})),
        ("telegram_get_chat", json!({})),
        ("telegram_get_chat", json!({"chat_id": 1, "bot_token": TOKEN})),
    ];
    for (name, arguments) in rejected {
        assert!(schema::validate(&schema_of(name), &arguments).is_err(), "{name} accepted {arguments}");
    }
    let accepted = [
        ("telegram_send_message", json!({"chat_id": "@channel", "text": "x".repeat(4096), "account": "work"})),
        ("telegram_send_photo", json!({"chat_id": 1, "photo": "x", "caption": "c".repeat(1024)})),
        ("telegram_get_updates", json!({"offset": -1, "limit": 100, "timeout": 0, "allowed_updates": []})),
    ];
    for (name, arguments) in accepted {
        schema::validate(&schema_of(name), &arguments).unwrap_or_else(|why| panic!("{name} refused {arguments}: {why}"));
    }
}

#[test]
fn check_credential_accepts_a_bot_token_and_explains_bad_shapes() {
    let module = telegram("http://unused.invalid", http_client());
    assert_eq!(module.check_credential(&json!({ "bot_token": TOKEN })), Ok(()));
    let example: Value = serde_json::from_str(module.credential_example()).unwrap();
    assert_eq!(module.check_credential(&example), Ok(()));

    let bad = [
        (json!(TOKEN), "JSON object"),
        (json!({ "token": TOKEN }), "unknown key `token`"),
        (json!({ "bot_token": TOKEN, "extra": 1 }), "unknown key `extra`"),
        (json!({ "bot_token": null }), "must be a string"),
        (json!({ "bot_token": "7012345678-AAFq3xZ-9kLmNoPqRsTuVwXyZ_0123456789ab" }), "no `:`"),
        (json!({ "bot_token": "7012345678:AAFq3xZ" }), "cut off"),
    ];
    for (document, reason) in bad {
        let why = module.check_credential(&document).unwrap_err();
        assert!(why.contains(reason), "{document}: {why}");
        assert_token_absent(&why);
    }
}
