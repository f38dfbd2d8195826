//! The real `squaremcp` binary end to end: CLI, `serve`, the official TypeScript SDK client,
//! MCP Inspector's CLI, a mock Telegram, and the HTTP edge's error handling.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::{Value, json};
use squaremcp_platform_mocks::Mock;
use squaremcp_platform_mocks::telegram::Telegram;
use squaremcp_tests::{Server, TempDir, cli, cli_json, create_tenant, node_dir};

const ALICE_TOKEN: &str = "111111111:AAHalice_token_abcdefghijklmnopqrstuvw";
const BOB_TOKEN: &str = "222222222:AAHbob_token_abcdefghijklmnopqrstuvwxy";

fn set_telegram(data: &std::path::Path, customer: &str, token: &str) {
    cli_json(data, &["credentials", "set", "--customer", customer, "--platform", "telegram"], &json!({"bot_token": token}).to_string());
}

async fn post(server: &Server, key: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(server.mcp_url()).header("accept", "application/json, text/event-stream").json(body);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn call(name: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_and_inspector_use_the_gateway_with_an_api_key() {
    let telegram = Mock::start(Telegram::accepting(&[ALICE_TOKEN])).await;
    let data = TempDir::new("sdk");
    let server = Server::start(data.path(), &[("SQUAREMCP_TELEGRAM_BASE_URL", telegram.base_url())]);
    // The CLI works on the data directory while the server runs.
    let alice = create_tenant(data.path(), "alice@example.com");
    set_telegram(data.path(), &alice.id, ALICE_TOKEN);

    let node = node_dir();
    let out = Command::new("node")
        .current_dir(&node)
        .args(["sdk-client.mjs", &server.mcp_url(), &alice.key, "telegram_send_message"])
        .arg(json!({"chat_id": 42, "text": "hello from the SDK"}).to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "SDK client failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["server"]["name"], "squaremcp");
    assert_eq!(report["protocolVersion"], "2025-11-25");
    assert_eq!(report["sessionId"], Value::Null, "the gateway is stateless and issues no session id");
    let tools: Vec<&str> = report["tools"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for expected in ["telegram_get_me", "telegram_send_message", "telegram_send_photo", "telegram_get_updates", "telegram_get_chat"] {
        assert!(tools.contains(&expected), "{expected} missing from {tools:?}");
    }
    let result = &report["result"];
    assert_eq!(result["isError"], false, "{result}");
    assert_eq!(result["structuredContent"]["message_id"], 4242);
    assert_eq!(result["structuredContent"]["text"], "hello from the SDK");

    let seen = telegram.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, format!("/bot{ALICE_TOKEN}/sendMessage"));
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert_eq!(seen[0].json(), json!({"chat_id": 42, "text": "hello from the SDK"}));

    // MCP Inspector's CLI lists the same tools. It runs from its own folder because it finds
    // its package.json relative to the working directory.
    let inspector = node.join("node_modules/@modelcontextprotocol/inspector-cli/build");
    let out = Command::new("node")
        .current_dir(&inspector)
        .arg("index.js")
        .args([&server.mcp_url(), "--transport", "http", "--method", "tools/list", "--header"])
        .arg(format!("x-api-key: {}", alice.key))
        .output()
        .unwrap();
    assert!(out.status.success(), "inspector CLI failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = listed["tools"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, tools, "Inspector and the SDK see the same tool list in the same order");

    // A wrong key is refused by the Inspector too.
    let out = Command::new("node")
        .current_dir(&inspector)
        .arg("index.js")
        .args([&server.mcp_url(), "--transport", "http", "--method", "tools/list", "--header", "x-api-key: sqm_wrong"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a wrong key must not list tools");

    let status = server.terminate();
    assert!(status.success(), "serve exits cleanly on SIGTERM: {status:?}");
}

/// The server's JSON log lines that carry `request_id`.
fn lines_of(log: &str, request_id: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["request_id"] == request_id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_writes_one_log_line_with_its_caller_and_tool_call() {
    let telegram = Mock::start(Telegram::accepting(&[ALICE_TOKEN])).await;
    let data = TempDir::new("request-log");
    let alice = create_tenant(data.path(), "alice@example.com");
    set_telegram(data.path(), &alice.id, ALICE_TOKEN);
    let log = data.path().join("server.log");
    let server = Server::start_with_log(data.path(), &[("SQUAREMCP_TELEGRAM_BASE_URL", telegram.base_url())], Some(&log));
    let http = reqwest::Client::new();
    let send = |request_id: &str, url: String, key: Option<&str>, body: Value| {
        let mut request = http.post(url).header("x-request-id", request_id).json(&body);
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        request.send()
    };
    let message = json!({"chat_id": 42, "text": "hi"});
    let single = send("req-single", server.mcp_url(), Some(&alice.key), call("telegram_send_message", message.clone())).await.unwrap();
    assert_eq!(single.status(), 200);
    let batch = json!([call("telegram_get_me", json!({})), {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "telegram_get_chat", "arguments": {}}}]);
    assert_eq!(send("req-batch", server.mcp_url(), Some(&alice.key), batch).await.unwrap().status(), 200);
    let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
    assert_eq!(send("req-list", server.mcp_url(), Some(&alice.key), list.clone()).await.unwrap().status(), 200);
    assert_eq!(send("req-anonymous", server.mcp_url(), None, list).await.unwrap().status(), 401);
    let rest = send("req-rest", format!("{}/tools/telegram_get_me", server.base), Some(&alice.key), json!({})).await.unwrap();
    assert_eq!(rest.status(), 200);
    drop(server);
    let log = std::fs::read_to_string(&log).unwrap();

    let single = lines_of(&log, "req-single");
    assert_eq!(single.len(), 1, "one line for a request with one call:\n{log}");
    let line = &single[0];
    assert_eq!((line["message"].as_str(), line["customer"].as_str(), line["status"].as_u64()), (Some("POST /mcp"), Some(alice.id.as_str()), Some(200)));
    assert_eq!((line["tool"].as_str(), line["outcome"].as_str(), line["upstream_requests"].as_u64()), (Some("telegram_send_message"), Some("ok"), Some(1)));
    let (elapsed, call) = (line["elapsed_ms"].as_f64().unwrap(), line["call_ms"].as_f64().unwrap());
    assert!(call > 0.0 && elapsed >= call, "the request's time includes its call's: {line}");

    // A batch: one line per call, then the request's line with the number of calls.
    let batch = lines_of(&log, "req-batch");
    assert_eq!(batch.len(), 3, "{log}");
    let mut calls: Vec<(&str, &str)> = batch[..2].iter().map(|l| (l["tool"].as_str().unwrap(), l["outcome"].as_str().unwrap())).collect();
    calls.sort_unstable();
    assert_eq!(calls, [("telegram_get_chat", "invalid_input"), ("telegram_get_me", "ok")]);
    assert!(batch[..2].iter().all(|l| l["message"] == "tool call" && l["customer"] == alice.id.as_str() && l["call_ms"].is_f64()), "{log}");
    assert_eq!((batch[2]["message"].as_str(), batch[2]["calls"].as_u64(), batch[2].get("tool")), (Some("POST /mcp"), Some(2), None));

    let listed = lines_of(&log, "req-list");
    assert_eq!(listed.len(), 1, "{log}");
    assert_eq!((listed[0]["customer"].as_str(), listed[0].get("tool")), (Some(alice.id.as_str()), None));
    let anonymous = lines_of(&log, "req-anonymous");
    assert_eq!(anonymous.len(), 1, "{log}");
    assert_eq!((anonymous[0]["status"].as_u64(), anonymous[0].get("customer")), (Some(401), None));

    let rest = lines_of(&log, "req-rest");
    assert_eq!(rest.len(), 1, "{log}");
    assert_eq!((rest[0]["message"].as_str(), rest[0]["tool"].as_str(), rest[0]["outcome"].as_str()), (Some("POST /tools/{name}"), Some("telegram_get_me"), Some("ok")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_never_use_each_others_credentials() {
    let telegram = Mock::start(Telegram::accepting(&[ALICE_TOKEN, BOB_TOKEN])).await;
    let data = TempDir::new("isolation");
    let alice = create_tenant(data.path(), "alice@example.com");
    let bob = create_tenant(data.path(), "bob@example.com");
    let carol = create_tenant(data.path(), "carol@example.com");
    set_telegram(data.path(), &alice.id, ALICE_TOKEN);
    set_telegram(data.path(), &bob.id, BOB_TOKEN);
    // Keys stay trusted for a second after they were last read (`SQUAREMCP_API_KEY_CACHE_SECONDS`).
    let server = Server::start(
        data.path(),
        &[("SQUAREMCP_TELEGRAM_BASE_URL", telegram.base_url()), ("SQUAREMCP_API_KEY_CACHE_SECONDS", "1")],
    );

    for (tenant, token) in [(&alice, ALICE_TOKEN), (&bob, BOB_TOKEN)] {
        let (status, body) = post(&server, Some(&tenant.key), &call("telegram_get_me", json!({}))).await;
        assert_eq!(status, 200);
        assert_eq!(body["result"]["isError"], false, "{body}");
        let last = telegram.requests().pop().unwrap();
        assert_eq!(last.path, format!("/bot{token}/getMe"), "each tenant's call uses its own token");
    }
    let before = telegram.requests().len();
    // Carol has no Telegram credentials: naming Alice's account does not reach Alice's token.
    for arguments in [json!({}), json!({"account": "default"})] {
        let (status, body) = post(&server, Some(&carol.key), &call("telegram_get_me", arguments.clone())).await;
        assert_eq!(status, 200);
        assert_eq!(body["result"]["isError"], true, "{arguments}: {body}");
        let text = body["result"]["content"][0]["text"].as_str().unwrap();
        assert!(text.contains("telegram"), "{text}");
        assert!(!text.contains(ALICE_TOKEN) && !text.contains(BOB_TOKEN));
    }
    assert_eq!(telegram.requests().len(), before, "no request reached Telegram for Carol");

    // A key revoked by another process (the CLI) stops working once the server's cache of it
    // ends: within a second here.
    cli_json(data.path(), &["api-keys", "revoke", "--customer", &bob.id, "--key", &bob.key_id], "");
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let (status, _) = post(&server, Some(&bob.key), &call("telegram_get_me", json!({}))).await;
    assert_eq!(status, 401);
    // Revocation is scoped to the owner: Alice's key id under Bob's customer id does nothing.
    let out = cli(data.path(), &["api-keys", "revoke", "--customer", &bob.id, "--key", &alice.key_id], "");
    assert!(!out.status.success());
    let (status, _) = post(&server, Some(&alice.key), &call("telegram_get_me", json!({}))).await;
    assert_eq!(status, 200, "Alice's key survives an attempt to revoke it under another customer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_edge_answers_bad_requests_clearly() {
    let data = TempDir::new("edge");
    let alice = create_tenant(data.path(), "alice@example.com");
    let server = Server::start(data.path(), &[("SQUAREMCP_MAX_BODY_BYTES", "4096")]);
    let http = reqwest::Client::new();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "curl", "version": "1"}}});

    // No credentials: 401 pointing at the protected resource metadata, even for initialize.
    let response = http.post(server.mcp_url()).json(&init).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert_eq!(challenge, format!(r#"Bearer resource_metadata="{}/.well-known/oauth-protected-resource/mcp", scope="mcp""#, server.base));
    // A wrong key: 401 with error="invalid_token".
    let (status, _) = post(&server, Some("sqm_not_a_real_key"), &init).await;
    assert_eq!(status, 401);
    let response = http.post(server.mcp_url()).header("x-api-key", "sqm_x").json(&init).send().await.unwrap();
    assert!(response.headers()["www-authenticate"].to_str().unwrap().contains(r#"error="invalid_token""#));
    // The key as a bearer token works too (clients that only send Authorization).
    let response = http.post(server.mcp_url()).bearer_auth(&alice.key).json(&init).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("mcp-session-id").is_none());
    assert!(response.headers().get("strict-transport-security").is_none(), "no HSTS on a plain-HTTP public URL");

    // GET and DELETE: 405 before auth.
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let response = http.request(method.clone(), server.mcp_url()).send().await.unwrap();
        assert_eq!(response.status(), 405, "{method}");
        assert_eq!(response.headers()["allow"], "POST");
    }
    // A foreign Origin: 403; an allowed one gets CORS headers.
    let response = http.post(server.mcp_url()).header("origin", "https://evil.example.com").header("x-api-key", &alice.key).json(&init).send().await.unwrap();
    assert_eq!(response.status(), 403);
    let response = http.post(server.mcp_url()).header("origin", "http://localhost:6274").header("x-api-key", &alice.key).json(&init).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], "http://localhost:6274");
    let preflight = http.request(reqwest::Method::OPTIONS, server.mcp_url()).header("origin", "https://claude.ai").header("access-control-request-method", "POST").send().await.unwrap();
    assert_eq!(preflight.status(), 204);
    assert!(preflight.headers()["access-control-allow-headers"].to_str().unwrap().contains("x-api-key"));

    // Too large: 413. Unacceptable Accept: 406. SSE-only Accept: one SSE event.
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x".repeat(5000)}});
    let response = http.post(server.mcp_url()).header("x-api-key", &alice.key).json(&big).send().await.unwrap();
    assert_eq!(response.status(), 413);
    let response = http.post(server.mcp_url()).header("x-api-key", &alice.key).header("accept", "text/html").json(&init).send().await.unwrap();
    assert_eq!(response.status(), 406);
    let response = http.post(server.mcp_url()).header("x-api-key", &alice.key).header("accept", "text/event-stream").json(&init).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["x-accel-buffering"], "no", "a proxy must not hold the event back");
    let text = response.text().await.unwrap();
    let data_line = text.lines().find_map(|l| l.strip_prefix("data: ")).expect("a data line");
    assert!(text.starts_with("event: message\n"), "{text}");
    assert_eq!(serde_json::from_str::<Value>(data_line).unwrap()["result"]["protocolVersion"], "2025-06-18");

    // Malformed JSON, a non-object body, an unknown method, an unknown tool, wrong argument types, missing credentials.
    let response = http.post(server.mcp_url()).header("x-api-key", &alice.key).header("content-type", "application/json").body("{\"jsonrpc\":").send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], -32700);
    let (status, body) = post(&server, Some(&alice.key), &json!("just a string")).await;
    assert_eq!((status, body["error"]["code"].as_i64()), (400, Some(-32600)));
    let (status, body) = post(&server, Some(&alice.key), &json!({"jsonrpc": "2.0", "id": 9, "method": "sampling/createMessage"})).await;
    assert_eq!((status, body["error"]["code"].as_i64(), body["id"].as_i64()), (200, Some(-32601), Some(9)));
    let (_, body) = post(&server, Some(&alice.key), &call("telegram_launch_rocket", json!({}))).await;
    assert_eq!(body["error"]["code"], -32602);
    let (_, body) = post(&server, Some(&alice.key), &call("telegram_send_message", json!({"chat_id": [1], "text": 5}))).await;
    assert_eq!(body["result"]["isError"], true);
    assert!(body["result"]["content"][0]["text"].as_str().unwrap().contains("`chat_id` must be an integer or a string"), "{body}");
    let (_, body) = post(&server, Some(&alice.key), &call("telegram_send_message", json!({"chat_id": 1, "text": "hi"}))).await;
    assert_eq!(body["result"]["isError"], true);
    assert!(body["result"]["content"][0]["text"].as_str().unwrap().contains("squaremcp credentials set"), "{body}");
    // An unsupported protocol version header on a non-initialize request: 400.
    let response = http.post(server.mcp_url()).header("x-api-key", &alice.key).header("mcp-protocol-version", "1999-01-01").json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})).send().await.unwrap();
    assert_eq!(response.status(), 400);
}

#[test]
fn the_cli_rejects_bad_input_with_clear_messages() {
    let data = TempDir::new("cli");
    let alice = create_tenant(data.path(), "alice@example.com");
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (vec!["customers", "create", "--email", "not-an-email", "--plan", "pro"], "", "invalid email"),
        (vec!["customers", "create", "--email", "ALICE@example.com", "--plan", "pro"], "", "already exists"),
        (vec!["customers", "create", "--email", "x@example.com", "--plan", "Gold Plan"], "", "invalid plan"),
        (vec!["customers", "create", "--email", "y@example.com", "--password-stdin"], "short\n", "at least 8 characters"),
        (vec!["api-keys", "create", "--customer", "cus_nope"], "", "invalid customer id"),
        (vec!["api-keys", "create", "--customer", "cus_000000000000000000000000"], "", "no customer with id"),
        (vec!["credentials", "set", "--customer", &alice.id, "--platform", "myspace"], "{}", "not one of"),
        (vec!["credentials", "set", "--customer", &alice.id, "--platform", "telegram"], "", "pipe the telegram credentials"),
        (vec!["credentials", "set", "--customer", &alice.id, "--platform", "telegram"], "{\"bot_token\": ", "not valid JSON"),
        (vec!["credentials", "set", "--customer", &alice.id, "--platform", "telegram"], "{\"bot_token\": \"nope\"}", "invalid telegram credentials"),
        (vec!["credentials", "set", "--customer", &alice.id, "--platform", "snapchat"], "{\"token\": \"x\"}", "unknown key `token`"),
        (vec!["credentials", "delete", "--customer", &alice.id, "--platform", "telegram"], "", "has no telegram credentials"),
        (vec!["api-keys", "revoke", "--customer", &alice.id, "--key", "sqm_secret"], "", "invalid API key id"),
    ];
    for (args, stdin, expected) in cases {
        let out = cli(data.path(), &args, stdin);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: expected {expected:?} in {stderr:?}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    // Usage errors come from clap with exit code 2.
    let out = cli(data.path(), &["customers", "create"], "");
    assert_eq!(out.status.code(), Some(2));
    // --json errors are JSON.
    let out = cli(data.path(), &["api-keys", "list", "--customer", "cus_000000000000000000000000", "--json"], "");
    let error: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert!(error["error"].as_str().unwrap().contains("no customer"));
}

#[test]
fn the_cli_manages_keys_and_credentials_without_printing_secrets() {
    let data = TempDir::new("cli-secrets");
    let customer = cli_json(data.path(), &["customers", "create", "--email", "Dora@Example.com", "--plan", "business", "--password-stdin"], "correct horse battery\n");
    assert_eq!(customer["email"], "dora@example.com");
    assert_eq!(customer["plan"], "business");
    assert_eq!(customer["has_password"], true);
    let id = customer["id"].as_str().unwrap();

    let created = cli_json(data.path(), &["api-keys", "create", "--customer", id, "--name", "laptop"], "");
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("sqm_") && key.len() == 47, "{key}");
    let listed = cli_json(data.path(), &["api-keys", "list", "--customer", id], "");
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["name"], "laptop");
    assert!(!listed.to_string().contains(&key[8..]), "listings never show the key");

    set_telegram(data.path(), id, ALICE_TOKEN);
    cli_json(data.path(), &["credentials", "set", "--customer", id, "--platform", "telegram", "--account", "news"], &json!({"bot_token": BOB_TOKEN}).to_string());
    let out = cli(data.path(), &["credentials", "list", "--customer", id], "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("telegram  default") && text.contains("telegram  news"), "{text}");
    assert!(!text.contains("AAH"), "no secret in listings: {text}");
    let listed = cli_json(data.path(), &["credentials", "list", "--customer", id], "");
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(!listed.to_string().contains("AAH"));
    // Nothing in the data directory holds the token in plain text.
    for entry in std::fs::read_dir(data.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(ALICE_TOKEN.len()).any(|w| w == ALICE_TOKEN.as_bytes()), "plaintext token at rest");
    }
    cli_json(data.path(), &["credentials", "delete", "--customer", id, "--platform", "telegram", "--account", "news"], "");
    assert_eq!(cli_json(data.path(), &["credentials", "list", "--customer", id], "").as_array().unwrap().len(), 1);
}
