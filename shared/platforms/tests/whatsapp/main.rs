//! The WhatsApp tools against the shared WhatsApp mock (each tool's exact request, the Graph
//! error mapping, the token kept out of URLs and messages), and the inbound side on a real
//! store: the status store behind `whatsapp_get_message_status`, the webhook's routing and
//! signature check, and the routing index the gateway keeps in step with credentials.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod inbound;

use std::sync::Arc;

use serde_json::{Value, json};
use squaremcp_core::tool::{Annotations, FailureKind, PlatformModule, Tool, ToolFailure, ToolOutput};
use squaremcp_core::{Clock, Platform, Secret, Store, SystemClock, schema};
use squaremcp_platform_mocks::whatsapp::{MISSING_ID, MISSING_TEMPLATE, OUTSIDE_WINDOW, PHONE_NUMBER_ID, WABA_ID, Whatsapp};
use squaremcp_platform_mocks::{Fault, Mock, RecordedRequest};
use squaremcp_platforms::kit::Records;
use squaremcp_platforms::{PlatformConfig, http_client, modules};

const TOKEN: &str = "EAAGm0PX4ZCpsBAtest-token_0123456789abcdefghijklmnopqrstuvwx";

fn config(base_url: &str) -> PlatformConfig {
    PlatformConfig::new(http_client()).with_base_url(Platform::Whatsapp, base_url).expect("a mock origin")
}

fn module_of(config: &PlatformConfig) -> Box<dyn PlatformModule> {
    modules(config).into_iter().find(|m| m.platform() == Platform::Whatsapp).expect("the WhatsApp module")
}

fn tool_of(module: &dyn PlatformModule, name: &str) -> Arc<dyn Tool> {
    module.tools().into_iter().find(|t| t.definition().name == name).expect(name)
}

async fn start() -> Mock<Whatsapp> {
    Mock::start(Whatsapp::accepting(&[TOKEN])).await
}

fn credential_for(phone_number_id: &str) -> Secret<Value> {
    Secret::new(json!({ "access_token": TOKEN, "phone_number_id": phone_number_id, "waba_id": WABA_ID }))
}

async fn run_with(tool: &Arc<dyn Tool>, credential: &Secret<Value>, arguments: Value) -> Result<ToolOutput, ToolFailure> {
    schema::validate(&tool.definition().input_schema, &arguments).expect("the arguments pass the input schema");
    let Value::Object(arguments) = arguments else { panic!("arguments must be an object") };
    tool.call(credential, arguments).await
}

/// Runs `name` as the gateway would: the arguments must pass the tool's input schema first.
async fn call(mock: &Mock<Whatsapp>, name: &str, arguments: Value) -> Result<ToolOutput, ToolFailure> {
    let tool = tool_of(module_of(&config(mock.base_url())).as_ref(), name);
    run_with(&tool, &credential_for(PHONE_NUMBER_ID), arguments).await
}

/// The one request the mock saw, checked for what every call carries: the bearer token in the
/// header and never in the URL.
fn only_request(mock: &Mock<Whatsapp>) -> RecordedRequest {
    let requests = mock.requests();
    assert_eq!(requests.len(), 1, "expected one request, got {requests:#?}");
    let request = requests.into_iter().next().unwrap();
    assert_eq!(request.header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));
    assert!(!request.path.contains(TOKEN) && !request.query.as_deref().unwrap_or("").contains(TOKEN), "the token went into the URL");
    request
}

fn assert_conforms(name: &str, output: &ToolOutput) {
    let tool = tool_of(module_of(&PlatformConfig::new(http_client())).as_ref(), name);
    let output_schema = tool.definition().output_schema.as_ref().expect("an output schema");
    schema::validate(output_schema, &output.structured).unwrap_or_else(|why| panic!("{name} output: {why}"));
}

fn assert_failure(failure: &ToolFailure, kind: FailureKind, contains: &str) {
    assert_eq!(failure.kind, kind, "{failure:?}");
    assert!(failure.message.contains(contains), "expected {contains:?} in {:?}", failure.message);
    assert!(!failure.message.contains(TOKEN), "the token leaked: {}", failure.message);
}

#[test]
fn the_four_tools_have_honest_annotations() {
    let module = module_of(&PlatformConfig::new(http_client()));
    let hints: Vec<(String, Annotations)> = module.tools().iter().map(|t| (t.definition().name.clone(), t.definition().annotations)).collect();
    let local = Annotations { open_world: false, ..Annotations::READ };
    assert_eq!(
        hints,
        [
            ("whatsapp_send_message".to_owned(), Annotations::WRITE),
            ("whatsapp_send_template".to_owned(), Annotations::WRITE),
            ("whatsapp_list_templates".to_owned(), Annotations::READ),
            ("whatsapp_get_message_status".to_owned(), local),
        ]
    );
    assert_eq!(module.routing_key().map(|key_of| key_of(credential_for(PHONE_NUMBER_ID).expose())), Some(Some(PHONE_NUMBER_ID.to_owned())));
}

#[tokio::test]
async fn send_message_posts_a_text_to_the_numbers_messages_edge_with_the_bearer_token() {
    let mock = start().await;
    let output = call(&mock, "whatsapp_send_message", json!({"to": "15551234567", "text": "Hello *there*"})).await.expect("sent");
    let request = only_request(&mock);
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", format!("/v26.0/{PHONE_NUMBER_ID}/messages").as_str()));
    assert_eq!(request.query, None);
    assert_eq!(
        request.json(),
        json!({"messaging_product": "whatsapp", "recipient_type": "individual", "type": "text", "to": "15551234567",
            "text": {"body": "Hello *there*"}})
    );
    let id = output.structured["message_id"].as_str().expect("message_id");
    assert!(id.starts_with("wamid.") && output.structured["messages"][0]["id"] == id, "{}", output.structured);
    assert_conforms("whatsapp_send_message", &output);

    mock.clear_requests();
    let reply = json!({"to": "15551234567", "text": "see https://example.com", "preview_url": true, "reply_to": id});
    call(&mock, "whatsapp_send_message", reply).await.expect("sent");
    let body = only_request(&mock).json();
    assert_eq!(body["text"], json!({"body": "see https://example.com", "preview_url": true}));
    assert_eq!(body["context"], json!({"message_id": id}));
}

#[tokio::test]
async fn send_template_names_the_template_language_and_components() {
    let mock = start().await;
    let components = json!([{"type": "body", "parameters": [{"type": "text", "parameter_name": "customer_name", "text": "Ada"},
        {"type": "text", "parameter_name": "order_id", "text": "A-17"}]}]);
    let arguments = json!({"to": "15551234567", "name": "order_update", "language": "en_US", "components": components});
    let output = call(&mock, "whatsapp_send_template", arguments).await.expect("sent");
    let request = only_request(&mock);
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", format!("/v26.0/{PHONE_NUMBER_ID}/messages").as_str()));
    assert_eq!(
        request.json(),
        json!({"messaging_product": "whatsapp", "recipient_type": "individual", "type": "template", "to": "15551234567",
            "template": {"name": "order_update", "language": {"code": "en_US"}, "components": components}})
    );
    assert_eq!(output.structured["messages"][0]["message_status"], "accepted");
    assert_conforms("whatsapp_send_template", &output);

    let missing = call(&mock, "whatsapp_send_template", json!({"to": "1", "name": MISSING_TEMPLATE, "language": "en_US"})).await;
    assert_failure(&missing.expect_err("no such template"), FailureKind::InvalidInput, "whatsapp_list_templates");
}

#[tokio::test]
async fn list_templates_reads_the_business_accounts_templates_with_fields_and_pages() {
    let mock = start().await;
    let output = call(&mock, "whatsapp_list_templates", json!({"status": "APPROVED"})).await.expect("listed");
    let request = only_request(&mock);
    assert_eq!((request.method.as_str(), request.path.as_str()), ("GET", format!("/v26.0/{WABA_ID}/message_templates").as_str()));
    let query = request.query_pairs();
    let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        pairs,
        [("status", "APPROVED"), ("fields", "id,name,status,category,language,components,parameter_format"), ("limit", "100")]
    );
    let names: Vec<&str> = output.structured["templates"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["hello_world", "order_update"]);
    assert_eq!(output.structured["next"], Value::Null, "one page only");
    assert_conforms("whatsapp_list_templates", &output);

    let first = call(&mock, "whatsapp_list_templates", json!({"limit": 2})).await.expect("a page");
    assert_eq!(first.structured["templates"].as_array().map(Vec::len), Some(2));
    let next = first.structured["next"].as_str().expect("a next cursor").to_owned();
    let second = call(&mock, "whatsapp_list_templates", json!({"limit": 2, "after": next})).await.expect("the next page");
    assert_eq!(second.structured["templates"][0]["name"], "spring_sale");
    assert_eq!(second.structured["next"], Value::Null);
}

#[tokio::test]
async fn the_graph_api_version_is_configuration() {
    let mock = start().await;
    let config = config(mock.base_url()).with_graph_api_version("v25.0").expect("a version");
    let tool = tool_of(module_of(&config).as_ref(), "whatsapp_list_templates");
    run_with(&tool, &credential_for(PHONE_NUMBER_ID), json!({})).await.expect("listed");
    assert_eq!(only_request(&mock).path, format!("/v25.0/{WABA_ID}/message_templates"));
    assert!(config.clone().with_graph_api_version("25").is_err());
}

#[tokio::test]
async fn graph_refusals_become_normalised_kinds_with_actionable_messages() {
    let mock = start().await;
    let text = |to: &str| json!({"to": to, "text": "hi"});

    let window = call(&mock, "whatsapp_send_message", text(OUTSIDE_WINDOW)).await.expect_err("outside the window");
    assert_failure(&window, FailureKind::InvalidInput, "24 hours");
    assert!(window.message.contains("whatsapp_send_template") && window.message.contains("131047"), "{}", window.message);

    let tool = tool_of(module_of(&config(mock.base_url())).as_ref(), "whatsapp_send_message");
    let missing = run_with(&tool, &credential_for(MISSING_ID), text("15551234567")).await.expect_err("unknown number");
    assert_failure(&missing, FailureKind::NotFound, "phone_number_id");

    let stranger = Secret::new(json!({"access_token": "EAAGnot-the-right-token", "phone_number_id": PHONE_NUMBER_ID, "waba_id": WABA_ID}));
    let invalid = run_with(&tool, &stranger, text("15551234567")).await.expect_err("unknown token");
    assert_failure(&invalid, FailureKind::AuthExpired, "System User token");

    for (fault, kind, words) in [
        (Fault::Unauthorized, FailureKind::AuthRevoked, "no longer accepts"),
        (Fault::Forbidden, FailureKind::PermissionMissing, "whatsapp_business_messaging"),
        (Fault::RateLimited { retry_after: 2.5 }, FailureKind::RateLimited, "retry after 3 seconds"),
        (Fault::ServerError, FailureKind::UpstreamTransient, "Try again shortly"),
    ] {
        mock.fail_next(fault.clone());
        let failure = call(&mock, "whatsapp_send_message", text("15551234567")).await.expect_err("a fault");
        assert_failure(&failure, kind, words);
        if kind == FailureKind::RateLimited {
            assert_eq!(failure.retry_after, Some(3), "{fault:?}");
        }
    }
}

#[tokio::test]
async fn a_read_is_retried_once_after_a_server_error_and_a_send_never_is() {
    let mock = start().await;
    mock.fail_next(Fault::ServerError);
    call(&mock, "whatsapp_list_templates", json!({})).await.expect("the retry succeeds");
    assert_eq!(mock.requests().len(), 2);

    mock.clear_requests();
    mock.fail_next(Fault::ServerError);
    let failure = call(&mock, "whatsapp_send_message", json!({"to": "15551234567", "text": "once"})).await.expect_err("not retried");
    assert_eq!(failure.kind, FailureKind::UpstreamTransient);
    assert_eq!(mock.requests().len(), 1, "a message is never sent twice by the gateway");
    assert!(mock.platform().sent().is_empty());
}

#[tokio::test]
async fn a_malformed_stored_credential_sends_nothing() {
    let mock = start().await;
    let tool = tool_of(module_of(&config(mock.base_url())).as_ref(), "whatsapp_send_message");
    let bad = Secret::new(json!({"access_token": TOKEN, "phone_number_id": "+1 555 0100", "waba_id": WABA_ID}));
    let failure = run_with(&tool, &bad, json!({"to": "1", "text": "hi"})).await.expect_err("not usable");
    assert_failure(&failure, FailureKind::NotConfigured, "`phone_number_id`");
    assert!(mock.requests().is_empty());
}

/// The store and clock the status tool reads, on a temporary SQLite database.
fn records() -> Records {
    let store: Arc<dyn Store> = Arc::new(squaremcp_embedded::SqliteStore::open_temporary().expect("a temporary store"));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    Records { store, clock }
}
