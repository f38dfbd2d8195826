//! Data key rotation end to end, with the real binary: `init`, `credentials rotate-key` and
//! `credentials rewrap` while `squaremcp serve` keeps answering with the rewrapped credentials.
//! Runs on SQLite and a key file, and (with `SQUAREMCP_STORE=dynamodb`) on DynamoDB and KMS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use squaremcp_platform_mocks::Mock;
use squaremcp_platform_mocks::telegram::Telegram;
use squaremcp_tests::{Server, TempDir, cli, cli_json, create_tenant, on_dynamodb};

const TOKEN: &str = "444444444:AAHrotation_token_abcdefghijklmnopqrs";

async fn get_me(server: &Server, key: &str) -> Value {
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "telegram_get_me", "arguments": {}}});
    let response = reqwest::Client::new()
        .post(server.mcp_url())
        .header("accept", "application/json, text/event-stream")
        .header("x-api-key", key)
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn key_versions(data: &std::path::Path, customer: &str) -> Vec<u64> {
    let listed = cli_json(data, &["credentials", "list", "--customer", customer], "");
    listed.as_array().unwrap().iter().map(|c| c["key_version"].as_u64().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_rewrapped_under_a_new_data_key_while_the_gateway_serves() {
    let telegram = Mock::start(Telegram::accepting(&[TOKEN])).await;
    let data = TempDir::new("rotation");
    let init = cli_json(data.path(), &["init"], "");
    assert_eq!(init["store"], if on_dynamodb() { "dynamodb" } else { "sqlite" }, "{init}");
    let again = cli_json(data.path(), &["init"], "");
    if on_dynamodb() {
        assert_eq!((again["table_created"].as_bool(), again["kms_key_created"].as_bool()), (Some(false), Some(false)), "{again}");
    }

    let alice = create_tenant(data.path(), "alice@example.com");
    for account in ["default", "backup"] {
        let document = json!({"bot_token": TOKEN}).to_string();
        cli_json(data.path(), &["credentials", "set", "--customer", &alice.id, "--platform", "telegram", "--account", account], &document);
    }
    assert_eq!(key_versions(data.path(), &alice.id), [1, 1]);

    let server = Server::start(data.path(), &[("SQUAREMCP_TELEGRAM_BASE_URL", telegram.base_url())]);
    let before = get_me(&server, &alice.key).await;
    assert_eq!(before["result"]["isError"], false, "{before}");

    let rotated = cli_json(data.path(), &["credentials", "rotate-key"], "");
    assert_eq!(rotated["active_key_version"], 2);
    assert_eq!(key_versions(data.path(), &alice.id), [1, 1], "rotation alone leaves records as they are");

    // The text form shows the progress bar on stderr (one line per tenth when not a terminal).
    let out = cli(data.path(), &["credentials", "rewrap"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(progress.contains("re-encrypting credentials [") && progress.contains("] 2/2"), "{progress}");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("Examined 2 credentials: 2 re-encrypted"), "{summary}");
    assert_eq!(key_versions(data.path(), &alice.id), [2, 2]);
    let again = cli_json(data.path(), &["credentials", "rewrap"], "");
    assert_eq!((again["rewrapped"].as_u64(), again["current"].as_u64()), (Some(0), Some(2)), "{again}");

    // The server started before the rotation opens the rewrapped credentials.
    let after = get_me(&server, &alice.key).await;
    assert_eq!(after["result"]["isError"], false, "{after}");
    assert_eq!(telegram.requests().len(), 2, "both calls reached Telegram with the token");
}
