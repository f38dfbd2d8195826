//! Discord end to end: the real `squaremcp serve` and CLI against the shared Discord mock. The
//! credential is stored with the CLI, the tools are called over JSON-RPC at `/mcp` with an API
//! key, and failures come back as `isError` results with their normalised kind in `_meta`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use squaremcp_platform_mocks::discord::{BOT_ID, CHANNEL_ID, Discord};
use squaremcp_platform_mocks::{Fault, Mock};
use squaremcp_tests::{Server, TempDir, cli, cli_json, create_tenant};

const TOKEN: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.GhIjKl.e2e-discord_token_0123456789abcdefghijk";

async fn rpc(server: &Server, key: &str, method: &str, params: Value) -> Value {
    server.rpc(key, method, params).await
}

/// `tools/call`; the call's `result`.
async fn call(server: &Server, key: &str, name: &str, arguments: Value) -> Value {
    let answer = rpc(server, key, "tools/call", json!({"name": name, "arguments": arguments})).await;
    answer["result"].clone()
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_tools_work_through_the_gateway_and_fail_with_normalised_kinds() {
    let discord = Mock::start(Discord::accepting(&[TOKEN])).await;
    let data = TempDir::new("discord");
    let alice = create_tenant(data.path(), "alice@example.com");
    cli_json(data.path(), &["credentials", "set", "--customer", &alice.id, "--platform", "discord"], &json!({"bot_token": TOKEN}).to_string());
    let server = Server::start(data.path(), &[("SQUAREMCP_DISCORD_BASE_URL", discord.base_url())]);

    // The five tools, with honest annotations: four reads, one write that is not idempotent.
    let listed = rpc(&server, &alice.key, "tools/list", json!({})).await;
    let all = listed["result"]["tools"].as_array().unwrap();
    let tools: Vec<&Value> = all.iter().filter(|t| t["name"].as_str().is_some_and(|n| n.starts_with("discord_"))).collect();
    let hints: Vec<(&str, bool, bool, bool, bool)> = tools
        .iter()
        .map(|t| {
            let a = &t["annotations"];
            let hint = |name: &str| a[name].as_bool().unwrap_or_else(|| panic!("{} lacks {name}", t["name"]));
            (t["name"].as_str().unwrap(), hint("readOnlyHint"), hint("destructiveHint"), hint("idempotentHint"), hint("openWorldHint"))
        })
        .collect();
    assert_eq!(
        hints,
        [
            ("discord_get_me", true, false, true, true),
            ("discord_get_guilds", true, false, true, true),
            ("discord_get_channels", true, false, true, true),
            ("discord_send_message", false, false, false, true),
            ("discord_get_messages", true, false, true, true),
        ]
    );

    let me = call(&server, &alice.key, "discord_get_me", json!({})).await;
    assert_eq!((me["isError"].as_bool(), me["structuredContent"]["id"].as_str()), (Some(false), Some(BOT_ID)), "{me}");

    // @everyone in the content reaches Discord with mentions switched off, and pings nobody.
    let sent = call(&server, &alice.key, "discord_send_message", json!({"channel_id": CHANNEL_ID, "content": "@everyone release 1.4 is out"})).await;
    assert_eq!(sent["isError"], false, "{sent}");
    assert_eq!(sent["structuredContent"]["mention_everyone"], false);
    let request = discord.requests().pop().unwrap();
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", format!("/api/v10/channels/{CHANNEL_ID}/messages").as_str()));
    assert_eq!(request.header("authorization"), Some(format!("Bot {TOKEN}").as_str()));
    assert!(request.header("user-agent").is_some_and(|agent| agent.starts_with("DiscordBot (")), "{:?}", request.header("user-agent"));
    assert_eq!(request.json(), json!({"content": "@everyone release 1.4 is out", "allowed_mentions": {"parse": []}}));

    // A rate limit: the wait, rounded up, for a program to act on.
    discord.fail_next(Fault::RateLimited { retry_after: 2.5 });
    let limited = call(&server, &alice.key, "discord_get_me", json!({})).await;
    assert_eq!(limited["isError"], true, "{limited}");
    assert_eq!(limited["_meta"]["squaremcp/error"], json!({"kind": "rate_limited", "retry_after": 3}));
    assert!(text(&limited).contains("retry after 3 seconds"), "{limited}");

    discord.fail_next(Fault::Forbidden);
    let forbidden = call(&server, &alice.key, "discord_send_message", json!({"channel_id": CHANNEL_ID, "content": "hi"})).await;
    assert_eq!(forbidden["_meta"]["squaremcp/error"], json!({"kind": "permission_missing"}), "{forbidden}");
    assert!(text(&forbidden).contains("Missing Permissions") && text(&forbidden).contains("Send Messages"), "{forbidden}");

    // A rejected token: auth_revoked, and the gateway stops sending it.
    discord.fail_next(Fault::Unauthorized);
    let revoked = call(&server, &alice.key, "discord_get_me", json!({})).await;
    assert_eq!(revoked["_meta"]["squaremcp/error"], json!({"kind": "auth_revoked"}), "{revoked}");
    assert!(text(&revoked).contains("Reset it in the Developer Portal"), "{revoked}");
    let before = discord.requests().len();
    let again = call(&server, &alice.key, "discord_get_messages", json!({"channel_id": CHANNEL_ID})).await;
    assert_eq!(again["_meta"]["squaremcp/error"], json!({"kind": "auth_revoked"}), "{again}");
    assert_eq!(discord.requests().len(), before, "the dead token was not sent again");

    for result in [&me, &sent, &limited, &forbidden, &revoked, &again] {
        assert!(!result.to_string().contains(TOKEN), "the token reached a result: {result}");
    }
}

#[test]
fn the_cli_refuses_a_malformed_discord_credential_with_the_reason() {
    let data = TempDir::new("discord-cli");
    let alice = create_tenant(data.path(), "alice@example.com");
    let pasted_header = json!({"bot_token": format!("Bot {TOKEN}")}).to_string();
    let out = cli(data.path(), &["credentials", "set", "--customer", &alice.id, "--platform", "discord"], &pasted_header);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("invalid discord credentials") && stderr.contains("starts with `Bot `"), "{stderr}");
    assert!(!stderr.contains(TOKEN), "{stderr}");
}
