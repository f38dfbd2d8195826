//! Telegram webhook mode end to end: the real `squaremcp serve` and CLI against the Telegram
//! mock. `squaremcp telegram webhook on` sends Telegram the exact `setWebhook` request; updates
//! posted to `/webhooks/telegram/<bot id>` with the secret token Telegram was given are buffered
//! for `telegram_get_updates` (which stops polling: Telegram would answer 409) and delivered as
//! `telegram.update` events, once each though Telegram redelivers; a wrong or missing secret
//! stores nothing. `off` deletes the webhook. Runs on SQLite, and on DynamoDB Local and moto's
//! SQS with `SQUAREMCP_STORE=dynamodb`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};
use squaremcp_platform_mocks::Mock;
use squaremcp_platform_mocks::telegram::Telegram;
use squaremcp_tests::receiver::{Receiver, queues};
use squaremcp_tests::{
    Server, TempDir, cli_json_with_env, cli_with_env, create_tenant_on_plan_with_env,
};

const TOKEN: &str = "7012345678:AAFq3xZ-9kLmNoPqRsTuVwXyZ_webhook_e2e_01";
const BOT_ID: &str = "7012345678";
const PUBLIC_URL: &str = "https://gateway.example";

fn update(update_id: i64, text: &str) -> String {
    json!({"update_id": update_id, "message": {"message_id": update_id - 99, "date": 1_793_512_000, "text": text,
        "from": {"id": 987_654_321, "is_bot": false, "first_name": "Ada"},
        "chat": {"id": 987_654_321, "first_name": "Ada", "type": "private"}}})
    .to_string()
}

async fn post_update(server: &Server, bot_id: &str, secret: Option<&str>, body: &str) -> u16 {
    let mut request = reqwest::Client::new()
        .post(format!("{}/webhooks/telegram/{bot_id}", server.base))
        .header("content-type", "application/json");
    if let Some(secret) = secret {
        request = request.header("x-telegram-bot-api-secret-token", secret);
    }
    request
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn update_ids(result: &Value) -> Vec<i64> {
    assert_eq!(result["isError"], false, "{result}");
    result["structuredContent"]["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["update_id"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_in_webhook_mode_buffers_signed_updates_and_emits_each_once() {
    let mock = Mock::start(Telegram::accepting(&[TOKEN])).await;
    let receiver = Receiver::start().await;
    let data = TempDir::new("telegram-webhook");
    let dir = data.path();
    let mut env: Vec<(String, String)> = vec![
        ("SQUAREMCP_ALLOW_PRIVATE_HOSTS".into(), "1".into()),
        (
            "SQUAREMCP_TELEGRAM_BASE_URL".into(),
            mock.base_url().to_owned(),
        ),
    ];
    env.extend(queues(dir));
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // The CLI tells Telegram the public (HTTPS) address; the test plays Telegram on loopback.
    let mut cli_env = env_refs.clone();
    cli_env.push(("SQUAREMCP_PUBLIC_URL", PUBLIC_URL));
    let cli = |args: &[&str], stdin: &str| cli_json_with_env(dir, args, stdin, &cli_env);

    let alice = create_tenant_on_plan_with_env(dir, "ada@example.com", "free", &env_refs);
    let bob = create_tenant_on_plan_with_env(dir, "bob@example.com", "free", &env_refs);
    for tenant in [&alice, &bob] {
        cli(
            &[
                "credentials",
                "set",
                "--customer",
                &tenant.id,
                "--platform",
                "telegram",
            ],
            &json!({"bot_token": TOKEN}).to_string(),
        );
    }
    let added = cli(
        &[
            "webhooks",
            "add",
            "--customer",
            &alice.id,
            "--url",
            &format!("{}/hook", receiver.base),
            "--events",
            "telegram.update",
        ],
        "",
    );
    receiver
        .control("/_secret", json!({"secret": added["secret"]}))
        .await;

    let server = Server::start(dir, &env_refs);
    // Polling first: getUpdates reaches Telegram.
    let polled = server
        .call_tool(&alice.key, "telegram_get_updates", json!({}))
        .await;
    assert_eq!(update_ids(&polled), [830_172_001]);
    assert!(
        mock.requests()
            .iter()
            .any(|r| r.path.ends_with("/getUpdates"))
    );

    // Switch on: the exact setWebhook request.
    mock.clear_requests();
    let on = cli(
        &[
            "telegram",
            "webhook",
            "on",
            "--customer",
            &alice.id,
            "--allowed-updates",
            "message,callback_query",
        ],
        "",
    );
    let url = format!("{PUBLIC_URL}/webhooks/telegram/{BOT_ID}");
    assert_eq!(
        (on["webhook"].as_bool(), on["url"].as_str()),
        (Some(true), Some(url.as_str())),
        "{on}"
    );
    let requests = mock.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].path, format!("/bot{TOKEN}/setWebhook"));
    let body = requests[0].json();
    let secret = body["secret_token"].as_str().unwrap().to_owned();
    assert_eq!(
        body,
        json!({"url": url, "secret_token": secret, "allowed_updates": ["message", "callback_query"]})
    );
    assert!(
        secret.len() >= 32
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
        "{secret}"
    );
    assert!(
        !on.to_string().contains(&secret),
        "the secret token is never printed"
    );
    assert_eq!(
        mock.platform().webhook(TOKEN),
        Some(body.clone()),
        "the mock holds the webhook"
    );

    // Bob stored the same bot token: he cannot take over its webhook.
    let taken = cli_with_env(
        dir,
        &["telegram", "webhook", "on", "--customer", &bob.id],
        "",
        &cli_env,
    );
    assert_eq!(taken.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&taken.stderr).contains("another customer"),
        "{}",
        String::from_utf8_lossy(&taken.stderr)
    );
    assert_eq!(
        mock.requests().len(),
        1,
        "nothing was sent to Telegram for Bob"
    );

    // Telegram posts updates, one of them twice; forgeries are refused and store nothing.
    for id in [100, 101, 100] {
        assert_eq!(
            post_update(
                &server,
                BOT_ID,
                Some(&secret),
                &update(id, &format!("hello {id}"))
            )
            .await,
            200,
            "{id}"
        );
    }
    assert_eq!(
        post_update(
            &server,
            BOT_ID,
            Some("wrong-secret"),
            &update(102, "forged")
        )
        .await,
        403
    );
    assert_eq!(
        post_update(&server, BOT_ID, None, &update(103, "unsigned")).await,
        401
    );
    assert_eq!(
        post_update(&server, "1234", Some(&secret), &update(104, "other bot")).await,
        403
    );
    assert_eq!(
        post_update(&server, BOT_ID, Some(&secret), "{\"message\": {}}").await,
        400
    );
    assert_eq!(
        post_update(&server, BOT_ID, Some(&secret), "not json").await,
        400
    );

    // get_updates reads the buffer; Telegram is not polled (it would answer 409).
    mock.clear_requests();
    let buffered = server
        .call_tool(&alice.key, "telegram_get_updates", json!({}))
        .await;
    assert_eq!(update_ids(&buffered), [100, 101]);
    assert_eq!(
        buffered["structuredContent"]["updates"][1]["message"]["text"],
        "hello 101"
    );
    let confirmed = server
        .call_tool(&alice.key, "telegram_get_updates", json!({"offset": 101}))
        .await;
    assert_eq!(update_ids(&confirmed), [101]);
    // A redelivery of a confirmed update is acknowledged and not buffered again.
    assert_eq!(
        post_update(&server, BOT_ID, Some(&secret), &update(100, "hello 100")).await,
        200
    );
    assert_eq!(
        update_ids(
            &server
                .call_tool(&alice.key, "telegram_get_updates", json!({}))
                .await
        ),
        [101]
    );
    assert_eq!(
        update_ids(
            &server
                .call_tool(&alice.key, "telegram_get_updates", json!({"offset": -1}))
                .await
        ),
        [101]
    );
    assert!(
        mock.requests().is_empty(),
        "no getUpdates while in webhook mode: {:?}",
        mock.requests()
    );

    // Each update is one telegram.update event, verified by the Standard Webhooks library.
    let state = receiver
        .wait_for("two telegram.update events", |s| {
            s["events"].as_object().is_some_and(|e| e.len() == 2)
        })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let state_after = receiver.state().await;
    assert_eq!(state_after["events"], state["events"], "no event twice");
    let mut seen: Vec<i64> = state["events"]
        .as_object()
        .unwrap()
        .values()
        .map(|e| {
            assert_eq!(
                (
                    e["type"].as_str(),
                    e["data"]["bot_id"].as_str(),
                    e["data"]["account"].as_str()
                ),
                (Some("telegram.update"), Some(BOT_ID), Some("default"))
            );
            e["data"]["update"]["update_id"].as_i64().unwrap()
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, [100, 101]);
    assert!(
        state_after["requests"]
            .as_object()
            .unwrap()
            .values()
            .all(|n| n.as_u64() == Some(1)),
        "{state_after}"
    );
    assert_eq!(state_after["rejected"].as_u64(), Some(0));

    let status = cli(
        &["telegram", "webhook", "status", "--customer", &alice.id],
        "",
    );
    assert_eq!(
        (
            status["webhook"].as_bool(),
            status["allowed_updates"].clone()
        ),
        (Some(true), json!(["message", "callback_query"]))
    );

    // Off: deleteWebhook; the old secret opens nothing; what was unread is still served, then polling.
    let off = cli(&["telegram", "webhook", "off", "--customer", &alice.id], "");
    assert_eq!(
        (off["webhook"].as_bool(), off["was_on"].as_bool()),
        (Some(false), Some(true)),
        "{off}"
    );
    assert_eq!(
        mock.requests().last().unwrap().path,
        format!("/bot{TOKEN}/deleteWebhook")
    );
    assert_eq!(mock.platform().webhook(TOKEN), None);
    assert_eq!(
        post_update(&server, BOT_ID, Some(&secret), &update(105, "late")).await,
        403
    );
    assert_eq!(
        update_ids(
            &server
                .call_tool(&alice.key, "telegram_get_updates", json!({}))
                .await
        ),
        [101]
    );
    mock.clear_requests();
    let polled = server
        .call_tool(&alice.key, "telegram_get_updates", json!({"offset": 102}))
        .await;
    assert_eq!(
        update_ids(&polled),
        [830_172_001],
        "the buffer is drained: Telegram is polled again"
    );
    assert!(
        mock.requests()
            .iter()
            .any(|r| r.path.ends_with("/getUpdates"))
    );
    let status = cli(
        &["telegram", "webhook", "status", "--customer", &alice.id],
        "",
    );
    assert_eq!(status["webhook"].as_bool(), Some(false));
    drop(server);
}
