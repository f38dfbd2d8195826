//! Plans and metering through the real gateway: exact limits under concurrency, failed calls
//! not counted, plan changes, and a call log that never holds a secret.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use squaremcp_platform_mocks::Mock;
use squaremcp_platform_mocks::telegram::Telegram;
use squaremcp_tests::{Server, TempDir, cli, cli_json, cli_json_with_env};
use tokio::task::JoinSet;

const TOKEN: &str = "333333333:AAHmeter_token_abcdefghijklmnopqrstuv";
const REVOKED_TOKEN: &str = "444444444:AAHrevoked_token_abcdefghijklmnopqrs";
const PLANS: &str = "[plans.tiny]\nmonthly_calls = 50\nprice_cents = 0\n\n[plans.metered]\nmonthly_calls = 2\nprice_cents = 500\noverage_cents = 3\n";

fn plans_file(dir: &std::path::Path) -> String {
    let path = dir.join("plans.toml");
    std::fs::write(&path, PLANS).unwrap();
    path.to_str().unwrap().to_owned()
}

async fn get_me(http: &reqwest::Client, url: &str, key: &str) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "telegram_get_me", "arguments": {}}});
    let response = http.post(url).header("x-api-key", key).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["result"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_the_limit_succeeds_under_200_concurrent_calls() {
    let telegram = Mock::start(Telegram::accepting(&[TOKEN])).await;
    let data = TempDir::new("limit");
    let plans = plans_file(data.path());
    let env = [("SQUAREMCP_PLANS", plans.as_str())];
    let tenant = squaremcp_tests::create_tenant_on_plan_with_env(data.path(), "tiny@example.com", "tiny", &env);
    cli_json(data.path(), &["credentials", "set", "--customer", &tenant.id, "--platform", "telegram"], &json!({"bot_token": TOKEN}).to_string());
    let server = Server::start(data.path(), &[("SQUAREMCP_TELEGRAM_BASE_URL", telegram.base_url()), ("SQUAREMCP_PLANS", &plans)]);

    let http = reqwest::Client::new();
    let mut calls = JoinSet::new();
    for _ in 0..200 {
        let (http, url, key) = (http.clone(), server.mcp_url(), tenant.key.clone());
        calls.spawn(async move { get_me(&http, &url, &key).await });
    }
    let results = calls.join_all().await;
    let succeeded = results.iter().filter(|r| r["isError"] == false).count();
    assert_eq!(succeeded, 50, "exactly the plan's 50 calls succeed");
    let refused: Vec<&str> = results.iter().filter(|r| r["isError"] == true).map(|r| r["content"][0]["text"].as_str().unwrap()).collect();
    assert_eq!(refused.len(), 150);
    let month_end = squaremcp_tests::first_day_of_next_month();
    for text in &refused {
        assert!(text.contains("`tiny`") && text.contains("50 tool calls per month") && text.contains(&month_end), "{text}");
    }
    assert_eq!(telegram.requests().len(), 50, "refused calls never reach the platform");

    let usage = squaremcp_tests::cli_json_settled(data.path(), &["usage", "show", "--customer", &tenant.id], &env);
    assert_eq!(usage["calls_counted"], 50);
    assert_eq!(usage["calls_included"], 50);
    // Refused calls are logged in bulk: the first at once, its repeats as one record when its
    // window ends (shared/core `refusals.rs`), so that a refusal does not cost a store write.
    let mut by_tool = usage["by_tool"]["telegram_get_me"].clone();
    for _ in 0..60 {
        if by_tool["limit_reached"] == 150 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        by_tool = cli_json_with_env(data.path(), &["usage", "show", "--customer", &tenant.id], "", &env)["by_tool"]["telegram_get_me"].clone();
    }
    assert_eq!(by_tool, json!({"ok": 50, "limit_reached": 150}));
    let log = cli_json(data.path(), &["audit", "tail", "--customer", &tenant.id, "--limit", "1000"], "");
    let refusal_records = log.as_array().unwrap().iter().filter(|r| r["outcome"] == "limit_reached").count();
    assert!(refusal_records < 10, "150 refusals in a few records, not a write each: {refusal_records}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_calls_are_recorded_but_not_counted_and_overage_plans_never_refuse() {
    let telegram = Mock::start(Telegram::accepting(&[TOKEN])).await;
    let data = TempDir::new("overage");
    let plans = plans_file(data.path());
    let env = [("SQUAREMCP_PLANS", plans.as_str())];
    let tiny = squaremcp_tests::create_tenant_on_plan_with_env(data.path(), "tiny@example.com", "tiny", &env);
    let metered = squaremcp_tests::create_tenant_on_plan_with_env(data.path(), "metered@example.com", "metered", &env);
    cli_json(data.path(), &["credentials", "set", "--customer", &tiny.id, "--platform", "telegram"], &json!({"bot_token": REVOKED_TOKEN}).to_string());
    cli_json(data.path(), &["credentials", "set", "--customer", &metered.id, "--platform", "telegram"], &json!({"bot_token": TOKEN}).to_string());
    let server = Server::start(data.path(), &[("SQUAREMCP_TELEGRAM_BASE_URL", telegram.base_url()), ("SQUAREMCP_PLANS", &plans)]);
    let http = reqwest::Client::new();

    for _ in 0..3 {
        let result = get_me(&http, &server.mcp_url(), &tiny.key).await;
        assert_eq!(result["isError"], true, "Telegram rejects this token");
    }
    let usage = squaremcp_tests::cli_json_settled(data.path(), &["usage", "show", "--customer", &tiny.id], &env);
    assert_eq!(usage["calls_counted"], 0, "failed upstream calls do not count");
    assert_eq!(usage["by_tool"]["telegram_get_me"], json!({"auth_revoked": 3}), "but they are recorded");

    for _ in 0..5 {
        assert_eq!(get_me(&http, &server.mcp_url(), &metered.key).await["isError"], false, "a plan with overage never refuses");
    }
    let usage = squaremcp_tests::cli_json_settled(data.path(), &["usage", "show", "--customer", &metered.id], &env);
    assert_eq!((usage["calls_counted"].as_u64(), usage["calls_over_limit"].as_u64()), (Some(5), Some(3)));
    assert_eq!(usage["overage_cents_per_call"], 3);

    // Plans are checked when set.
    let out = cli(data.path(), &["customers", "set-plan", "--customer", &tiny.id, "--plan", "gold"], "");
    assert!(String::from_utf8_lossy(&out.stderr).contains("there is no plan `gold`; the plans are business, free, pro"));
    let moved = cli_json(data.path(), &["customers", "set-plan", "--customer", &tiny.id, "--plan", "free"], "");
    assert_eq!(moved["plan"], "free");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_log_and_the_server_log_never_hold_a_secret() {
    let canary_token = "555555555:AAHcanaryTOKENcanaryTOKENcanaryTOKEN";
    let canary_password = "canary-password-7d1e";
    let canary_text = "canary-message-body-93b2";
    let telegram = Mock::start(Telegram::accepting(&[canary_token])).await;
    let data = TempDir::new("canary");
    let customer = cli_json(data.path(), &["customers", "create", "--email", "canary@example.com", "--plan", "pro", "--password-stdin"], &format!("{canary_password}\n"));
    let id = customer["id"].as_str().unwrap();
    let key = cli_json(data.path(), &["api-keys", "create", "--customer", id], "")["key"].as_str().unwrap().to_owned();
    cli_json(data.path(), &["credentials", "set", "--customer", id, "--platform", "telegram"], &json!({"bot_token": canary_token}).to_string());
    let log = data.path().join("server.log");
    let server = Server::start_with_log(data.path(), &[("SQUAREMCP_TELEGRAM_BASE_URL", telegram.base_url()), ("SQUAREMCP_LOG", "debug")], Some(&log));

    let http = reqwest::Client::new();
    for arguments in [json!({"chat_id": 42, "text": canary_text}), json!({"chat_id": 42, "text": canary_text, "parse_mode": "HTML"}), json!({"chat_id": 42, "photo": format!("https://example.com/{canary_text}.png"), "caption": canary_text})] {
        let tool = if arguments.get("photo").is_some() { "telegram_send_photo" } else { "telegram_send_message" };
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}});
        let response = http.post(server.mcp_url()).header("x-api-key", &key).header("user-agent", "claude-code/2.1.0").json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let audit = cli_json(data.path(), &["audit", "tail", "--customer", id, "--limit", "10"], "");
    let entries = audit.as_array().unwrap();
    assert_eq!(entries.len(), 3, "{audit}");
    assert_eq!(entries[2]["arguments"], json!({"chat_id": 42, "text": "[redacted]"}), "ids kept, bodies redacted");
    assert_eq!(entries[0]["tool"], "telegram_send_photo");
    assert_eq!(entries[0]["auth_method"], "api_key");
    assert_eq!(entries[0]["client"], "claude-code/2.1.0", "the client is recorded");
    let text = cli(data.path(), &["audit", "tail", "--customer", id], "");
    drop(server);
    let server_log = std::fs::read_to_string(&log).unwrap();
    assert!(server_log.contains(r#""tool":"telegram_send_photo""#), "the server did log the calls");
    for (what, haystack) in [("audit --json", audit.to_string()), ("audit text", String::from_utf8_lossy(&text.stdout).into_owned()), ("server log", server_log)] {
        for canary in [canary_token, &canary_token[10..], canary_password, canary_text, key.as_str()] {
            assert!(!haystack.contains(canary), "{what} contains the canary {canary:?}");
        }
    }
}
