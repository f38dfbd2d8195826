//! An MCP 2026-07-28 client written by hand from the spec (basic/transports/streamable-http,
//! basic/versioning, server/discover): no `initialize`, no session, every POST carrying
//! `MCP-Protocol-Version`, `Mcp-Method` and (for `tools/call`) `Mcp-Name`, mirrored from the
//! body's `method`, `params.name` and `params._meta`. Against the real `squaremcp serve`, with a
//! mock Telegram behind it; an older client shares the same server unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use squaremcp_platform_mocks::Mock;
use squaremcp_platform_mocks::telegram::Telegram;
use squaremcp_tests::{Server, TempDir, cli_json, create_tenant};

const VERSION: &str = "2026-07-28";
const TOKEN: &str = "111111111:AAHalice_token_abcdefghijklmnopqrstuvw";

/// What the client puts in every request's `params._meta`.
fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": VERSION,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "hand-written-2026", "version": "1.0.0"},
    })
}

fn request(id: i64, method: &str, mut params: Value) -> Value {
    params["_meta"] = meta();
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// One POST with the given MCP headers (`(name, value)` pairs); status, JSON body, and whether a
/// session id came back.
async fn post(
    server: &Server,
    key: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> (u16, Value, bool) {
    let mut builder = reqwest::Client::new()
        .post(server.mcp_url())
        .header("accept", "application/json, text/event-stream")
        .header("x-api-key", key)
        .json(body);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = builder.send().await.unwrap();
    let status = response.status().as_u16();
    let session = response.headers().contains_key("mcp-session-id");
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        session,
    )
}

/// The headers a conforming client derives from the body.
fn mirrored(body: &Value) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        ("mcp-protocol-version", VERSION.to_owned()),
        ("mcp-method", body["method"].as_str().unwrap().to_owned()),
    ];
    if let Some(name) = body["params"]["name"].as_str() {
        headers.push(("mcp-name", name.to_owned()));
    }
    headers
}

async fn exchange(server: &Server, key: &str, body: &Value) -> (u16, Value) {
    let headers = mirrored(body);
    let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let (status, json, session) = post(server, key, &pairs, body).await;
    assert!(!session, "2026-07-28 has no sessions");
    (status, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2026_07_28_client_discovers_lists_and_calls_without_initialize() {
    let telegram = Mock::start(Telegram::accepting(&[TOKEN])).await;
    let data = TempDir::new("mcp-2026");
    let server = Server::start(
        data.path(),
        &[("SQUAREMCP_TELEGRAM_BASE_URL", telegram.base_url())],
    );
    let alice = create_tenant(data.path(), "alice@example.com");
    cli_json(
        data.path(),
        &[
            "credentials",
            "set",
            "--customer",
            &alice.id,
            "--platform",
            "telegram",
        ],
        &json!({"bot_token": TOKEN}).to_string(),
    );

    // server/discover, the first (optional) request: versions, capabilities, identity.
    let (status, body) = exchange(
        &server,
        &alice.key,
        &request(1, "server/discover", json!({})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let discovered = &body["result"];
    assert_eq!(discovered["resultType"], "complete");
    let versions: Vec<&str> = discovered["supportedVersions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        versions.contains(&VERSION) && versions.contains(&"2025-11-25"),
        "{versions:?}"
    );
    assert!(
        discovered["capabilities"]["tools"].is_object(),
        "{discovered}"
    );
    assert_eq!(
        discovered["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "squaremcp"
    );

    // tools/list straight away, with cache hints.
    let (status, body) = exchange(&server, &alice.key, &request(2, "tools/list", json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let listed = &body["result"];
    assert_eq!(listed["resultType"], "complete");
    assert!(
        listed["ttlMs"].as_u64().is_some() && listed["cacheScope"].is_string(),
        "{listed}"
    );
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"telegram_send_message"), "{names:?}");

    // tools/call reaches Telegram with the customer's credential.
    let call = request(
        3,
        "tools/call",
        json!({"name": "telegram_send_message", "arguments": {"chat_id": 42, "text": "hello from 2026"}}),
    );
    let (status, body) = exchange(&server, &alice.key, &call).await;
    assert_eq!(status, 200, "{body}");
    let result = &body["result"];
    assert_eq!(
        (result["resultType"].as_str(), result["isError"].as_bool()),
        (Some("complete"), Some(false)),
        "{result}"
    );
    assert_eq!(
        result["structuredContent"]["text"], "hello from 2026",
        "{result}"
    );

    // Removed methods are 404 with Method not found, which tells a modern server from a missing endpoint.
    let (status, body) = exchange(&server, &alice.key, &request(4, "ping", json!({}))).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (404, Some(-32601)),
        "{body}"
    );

    // An older client on the same server, unchanged: initialize, then tools/call without the new headers.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "old", "version": "1"}}});
    let (status, body, _) = post(&server, &alice.key, &[], &init).await;
    assert_eq!(
        (status, body["result"]["protocolVersion"].as_str()),
        (200, Some("2025-11-25")),
        "{body}"
    );
    let old_call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "telegram_get_me", "arguments": {}}});
    let (status, body, _) = post(
        &server,
        &alice.key,
        &[("mcp-protocol-version", "2025-11-25")],
        &old_call,
    )
    .await;
    assert_eq!(
        (status, body["result"]["isError"].as_bool()),
        (200, Some(false)),
        "{body}"
    );
    assert!(
        body["result"].get("resultType").is_none(),
        "legacy results keep their old shape: {body}"
    );

    // Browsers may send the new headers: the preflight allows them.
    let preflight = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, server.mcp_url())
        .header("origin", "http://localhost:6274")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("mcp-method") && allowed.contains("mcp-name"),
        "{allowed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_that_disagree_with_the_body_are_refused_before_anything_runs() {
    let telegram = Mock::start(Telegram::accepting(&[TOKEN])).await;
    let data = TempDir::new("mcp-2026-mismatch");
    let server = Server::start(
        data.path(),
        &[("SQUAREMCP_TELEGRAM_BASE_URL", telegram.base_url())],
    );
    let alice = create_tenant(data.path(), "alice@example.com");
    cli_json(
        data.path(),
        &[
            "credentials",
            "set",
            "--customer",
            &alice.id,
            "--platform",
            "telegram",
        ],
        &json!({"bot_token": TOKEN}).to_string(),
    );

    let call = request(
        7,
        "tools/call",
        json!({"name": "telegram_send_message", "arguments": {"chat_id": 42, "text": "must not be sent"}}),
    );
    let cases: [(&str, &[(&str, &str)]); 5] = [
        // A gateway that rate-limits on Mcp-Method would count a harmless tools/list.
        (
            "method",
            &[
                ("mcp-protocol-version", VERSION),
                ("mcp-method", "tools/list"),
                ("mcp-name", "telegram_send_message"),
            ],
        ),
        (
            "name",
            &[
                ("mcp-protocol-version", VERSION),
                ("mcp-method", "tools/call"),
                ("mcp-name", "telegram_get_me"),
            ],
        ),
        (
            "missing name",
            &[
                ("mcp-protocol-version", VERSION),
                ("mcp-method", "tools/call"),
            ],
        ),
        (
            "missing method",
            &[
                ("mcp-protocol-version", VERSION),
                ("mcp-name", "telegram_send_message"),
            ],
        ),
        (
            "version",
            &[
                ("mcp-protocol-version", "2025-11-25"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "telegram_send_message"),
            ],
        ),
    ];
    for (case, headers) in cases {
        let (status, body, _) = post(&server, &alice.key, headers, &call).await;
        assert_eq!(status, 400, "{case}: {body}");
        assert_eq!(body["error"]["code"], -32020, "{case}: {body}");
        assert_eq!(body["id"], 7, "{case}: {body}");
    }
    assert_eq!(
        telegram.request_count(),
        0,
        "a refused request must not reach the platform"
    );

    // A version the server does not serve: 400 UnsupportedProtocolVersion naming the ones it does.
    let mut future = request(8, "tools/list", json!({}));
    future["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let (status, body, _) = post(
        &server,
        &alice.key,
        &[
            ("mcp-protocol-version", "2099-01-01"),
            ("mcp-method", "tools/list"),
        ],
        &future,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (400, Some(-32022)),
        "{body}"
    );
    assert_eq!(body["error"]["data"]["requested"], "2099-01-01");
    assert!(
        body["error"]["data"]["supported"]
            .as_array()
            .unwrap()
            .contains(&json!(VERSION)),
        "{body}"
    );
}
