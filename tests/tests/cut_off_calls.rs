//! A tool call cut off halfway, through the real `squaremcp serve`: by a client that goes away
//! while the platform is still answering, and by the call's own deadline. Either way the usage
//! counter and the call log agree afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use squaremcp_platform_mocks::telegram::Telegram;
use squaremcp_platform_mocks::{Fault, Mock};
use squaremcp_tests::{Server, TempDir, Tenant, cli_json, cli_json_with_env};

const TOKEN: &str = "555555555:AAHcutoff_token_abcdefghijklmnopqrstu";
/// A plan with a hard limit: each call reserves a unit before the platform is called, the path
/// a cut-off call could leave half done.
const PLANS: &str = "[plans.tiny]\nmonthly_calls = 50\nprice_cents = 0\n";

struct Setup {
    telegram: Mock<Telegram>,
    data: TempDir,
    plans: String,
    tenant: Tenant,
}

async fn setup(label: &str) -> Setup {
    let telegram = Mock::start(Telegram::accepting(&[TOKEN])).await;
    let data = TempDir::new(label);
    let plans_path = data.path().join("plans.toml");
    std::fs::write(&plans_path, PLANS).unwrap();
    let plans = plans_path.to_str().unwrap().to_owned();
    let tenant = squaremcp_tests::create_tenant_on_plan_with_env(data.path(), "cutoff@example.com", "tiny", &[("SQUAREMCP_PLANS", &plans)]);
    cli_json(
        data.path(),
        &["credentials", "set", "--customer", &tenant.id, "--platform", "telegram"],
        &json!({"bot_token": TOKEN}).to_string(),
    );
    Setup {
        telegram,
        data,
        plans,
        tenant,
    }
}

fn get_me() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "telegram_get_me", "arguments": {}}})
}

/// `(usage counter, call records by outcome)` of the tenant this month.
fn usage(data: &Path, plans: &str, tenant: &Tenant) -> (u64, Value) {
    let usage = cli_json_with_env(
        data,
        &["usage", "show", "--customer", &tenant.id],
        "",
        &[("SQUAREMCP_PLANS", plans)],
    );
    (
        usage["calls_counted"].as_u64().unwrap(),
        usage["by_tool"]["telegram_get_me"].clone(),
    )
}

/// Polls the usage until `done` holds for it, for at most `within`.
async fn usage_once(data: &Path, plans: &str, tenant: &Tenant, within: Duration, done: impl Fn(u64, &Value) -> bool) -> (u64, Value) {
    let deadline = Instant::now() + within;
    loop {
        let (counted, records) = usage(data, plans, tenant);
        if done(counted, &records) || Instant::now() > deadline {
            return (counted, records);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_mid_call_leaves_a_counted_call_and_its_record() {
    let s = setup("cutoff-disconnect").await;
    let server = Server::start(
        s.data.path(),
        &[
            ("SQUAREMCP_TELEGRAM_BASE_URL", s.telegram.base_url()),
            ("SQUAREMCP_PLANS", &s.plans),
        ],
    );
    s.telegram.fail_next(Fault::Slow(Duration::from_millis(1_500)));

    // The client gives up 100 ms in and closes its connection; the platform answers later.
    let client = reqwest::Client::builder().timeout(Duration::from_millis(100)).build().unwrap();
    let gone = client
        .post(server.mcp_url())
        .header("x-api-key", &s.tenant.key)
        .json(&get_me())
        .send()
        .await;
    assert!(gone.as_ref().is_err_and(reqwest::Error::is_timeout), "the client gave up: {gone:?}");

    let (counted, records) = usage_once(s.data.path(), &s.plans, &s.tenant, Duration::from_secs(20), |_, records| {
        records["ok"].as_u64() == Some(1)
    })
    .await;
    assert_eq!(s.telegram.requests().len(), 1, "the platform was called once");
    assert_eq!(records, json!({"ok": 1}), "the call that happened is in the log");
    assert_eq!(counted, 1, "and counted once: the usage counter equals the counted records");

    // Nothing else arrives later (no second record, no refund of a call that happened).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(usage(s.data.path(), &s.plans, &s.tenant), (1, json!({"ok": 1})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_slower_than_the_call_timeout_is_stopped_refunded_and_recorded() {
    let s = setup("cutoff-deadline").await;
    let server = Server::start(
        s.data.path(),
        &[
            ("SQUAREMCP_TELEGRAM_BASE_URL", s.telegram.base_url()),
            ("SQUAREMCP_PLANS", &s.plans),
            ("SQUAREMCP_CALL_TIMEOUT_SECONDS", "1"),
        ],
    );
    s.telegram.fail_always(Fault::Slow(Duration::from_secs(6)));

    let started = Instant::now();
    let result = server.call_tool(&s.tenant.key, "telegram_get_me", json!({})).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(4),
        "stopped at the call timeout, not after the platform (or a retry): {elapsed:?}"
    );
    assert_eq!(result["isError"], true, "{result}");
    assert_eq!(result["_meta"]["squaremcp/error"]["kind"], "upstream_transient", "{result}");
    let text = result["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("did not finish within the call's time limit (1 s)"), "{text}");

    let (counted, records) = usage_once(s.data.path(), &s.plans, &s.tenant, Duration::from_secs(10), |_, records| {
        !records.is_null()
    })
    .await;
    assert_eq!(records, json!({"upstream_transient": 1}), "the stopped call is in the log");
    assert_eq!(
        counted, 0,
        "and its reserved unit was given back: no counted record, nothing counted"
    );
    s.telegram.recover();
}
