//! The tools without MCP, through the real `squaremcp serve`: `GET /openapi.json` validated by a
//! published OpenAPI validator, and `POST /tools/{name}` authenticated, metered and logged like
//! `tools/call`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use squaremcp_platform_mocks::telegram::Telegram;
use squaremcp_platform_mocks::{Fault, Mock};
use squaremcp_tests::{Server, TempDir, cli_json, create_tenant, node_dir};

const TOKEN: &str = "333333333:AAHrest_token_abcdefghijklmnopqrstuvwxy";

async fn get(url: &str, key: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

async fn post(url: &str, key: &str, body: &str) -> (u16, Option<String>, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (status, retry_after, response.json().await.unwrap_or(Value::Null))
}

/// Runs tests/node/validate-openapi.mjs on `document`.
fn validate_openapi(document: &Value) -> Value {
    let mut child = Command::new("node")
        .current_dir(node_dir())
        .arg("validate-openapi.mjs")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(document.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("validator output: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_describes_every_tool_and_rest_calls_are_metered_like_tools_call() {
    let telegram = Mock::start(Telegram::accepting(&[TOKEN])).await;
    let data = TempDir::new("rest");
    let server = Server::start(data.path(), &[("SQUAREMCP_TELEGRAM_BASE_URL", telegram.base_url())]);
    let ada = create_tenant(data.path(), "ada@example.com");
    cli_json(data.path(), &["credentials", "set", "--customer", &ada.id, "--platform", "telegram"], &json!({"bot_token": TOKEN}).to_string());

    // The document needs the same credentials as /mcp.
    let openapi = format!("{}/openapi.json", server.base);
    let (status, body) = get(&openapi, None).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("unauthorized")));
    let (status, document) = get(&openapi, Some(&ada.key)).await;
    assert_eq!(status, 200);
    let verdict = validate_openapi(&document);
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(verdict["version"], "3.1");
    let paths = document["paths"].as_object().unwrap();
    for tool in ["telegram_get_me", "telegram_send_message"] {
        let operation = &paths[&format!("/tools/{tool}")]["post"];
        assert_eq!(operation["operationId"], tool);
        assert!(operation["x-mcp-annotations"]["readOnlyHint"].is_boolean(), "{tool}");
    }
    assert!(paths.keys().all(|path| path.starts_with("/tools/telegram_")), "only the connected platform's tools: {paths:?}");
    assert_eq!(document["servers"][0]["url"], server.base.as_str());

    // A call answers the structured result and reaches the platform once.
    let send = format!("{}/tools/telegram_send_message", server.base);
    let (status, _, result) = post(&send, &ada.key, r#"{"chat_id": 42, "text": "over REST"}"#).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["text"], "over REST");
    let seen = telegram.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, format!("/bot{TOKEN}/sendMessage"));
    assert_eq!(seen[0].json(), json!({"chat_id": 42, "text": "over REST"}));

    // Failures carry their kind, a status that fits it, and the wait for a rate limit.
    let (status, _, refused) = post(&send, &ada.key, r#"{"chat_id": 42}"#).await;
    assert_eq!((status, refused["error"]["kind"].as_str()), (400, Some("invalid_input")), "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("`text` is required"), "{refused}");
    let (status, _, refused) = post(&send, &ada.key, "[1, 2]").await;
    assert_eq!((status, refused["error"]["kind"].as_str()), (400, Some("invalid_input")));
    let (status, _, refused) = post(&format!("{}/tools/telegram_fly", server.base), &ada.key, "{}").await;
    assert_eq!((status, refused["error"]["kind"].as_str()), (404, Some("not_found")));
    telegram.fail_next(Fault::RateLimited { retry_after: 7.0 });
    let (status, retry_after, refused) = post(&send, &ada.key, r#"{"chat_id": 42, "text": "again"}"#).await;
    assert_eq!(status, 429, "{refused}");
    assert_eq!(refused["error"]["kind"], "rate_limited");
    assert_eq!(refused["error"]["retry_after"], 7);
    assert_eq!(retry_after.as_deref(), Some("7"));
    let (status, _, refused) = post(&send, "sqm_wrong", "{}").await;
    assert_eq!((status, refused["error"].as_str()), (401, Some("invalid_token")));

    // Metered and recorded exactly as tools/call: one counted call, the failures recorded by kind
    // (a body that is not an object, and an unknown tool, never reach a tool: nothing to record).
    let usage = squaremcp_tests::cli_json_settled(data.path(), &["usage", "show", "--customer", &ada.id], &[]);
    assert_eq!(usage["calls_counted"], 1, "{usage}");
    assert_eq!(usage["by_tool"]["telegram_send_message"], json!({"ok": 1, "invalid_input": 1, "rate_limited": 1}), "{usage}");
}
