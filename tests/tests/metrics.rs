//! Operator metrics through the real binary: `GET /metrics` in Prometheus' text format (read
//! by the reference parser, `prometheus_client`), refused without the admin key, or served on a
//! listener of its own; and `squaremcp usage top` on the store the tests run on (SQLite, or
//! DynamoDB with `SQUAREMCP_STORE=dynamodb`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use squaremcp_platform_mocks::Mock;
use squaremcp_platform_mocks::telegram::Telegram;
use squaremcp_tests::{Server, TempDir, cli, cli_json, create_tenant, create_tenant_on_plan, free_port};

const TOKEN: &str = "555555555:AAHmetrics_token_abcdefghijklmnopqrs";
const ADMIN_KEY: &str = "metrics-admin-key-0123456789abcdef";

/// Parses a `/metrics` page with the Prometheus client's own text-format parser and returns
/// its families as JSON: `[{name, type, samples: [{name, labels, value}]}]`. The parser raises
/// on anything that is not valid exposition format, which fails the test.
fn parse_with_prometheus_client(page: &str) -> Value {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let python = root.join(".tools/prometheus/bin/python");
    assert!(python.exists(), "prometheus_client is not installed: run scripts/test (it creates .tools/prometheus)");
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
families = [
    {"name": f.name, "type": f.type, "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]}
    for f in text_string_to_metric_families(sys.stdin.read())
]
print(json.dumps(families))
"#;
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(page.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "prometheus_client refused the page: {}\n{page}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The value of the sample `name` with exactly these label values (others ignored).
fn sample(families: &Value, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    families.as_array().unwrap().iter().flat_map(|f| f["samples"].as_array().unwrap()).find_map(|s| {
        let matches = s["name"] == name && labels.iter().all(|(k, v)| s["labels"][k] == *v);
        matches.then(|| s["value"].as_f64().unwrap())
    })
}

async fn get(url: &str, bearer: Option<&str>) -> (u16, String, Option<String>) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(key) = bearer {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    (status, response.text().await.unwrap(), content_type)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text_and_only_the_admin_key_reads_them() {
    let telegram = Mock::start(Telegram::accepting(&[TOKEN])).await;
    let data = TempDir::new("metrics");
    let pro = create_tenant(data.path(), "pro@example.com");
    let free = create_tenant_on_plan(data.path(), "free@example.com", "free");
    for tenant in [&pro, &free] {
        cli_json(data.path(), &["credentials", "set", "--customer", &tenant.id, "--platform", "telegram"], &json!({"bot_token": TOKEN}).to_string());
    }
    let server = Server::start(data.path(), &[("SQUAREMCP_TELEGRAM_BASE_URL", telegram.base_url()), ("SQUAREMCP_ADMIN_KEY", ADMIN_KEY)]);
    for _ in 0..3 {
        server.call_tool_ok(&pro.key, "telegram_get_me", json!({})).await;
    }
    server.call_tool_ok(&free.key, "telegram_get_me", json!({})).await;
    let refused = server.call_tool(&pro.key, "telegram_send_message", json!({"chat_id": 1})).await;
    assert_eq!(refused["isError"], true, "a call without its required text fails: {refused}");

    let url = format!("{}/metrics", server.base);
    let (status, _, _) = get(&url, None).await;
    assert_eq!(status, 401, "no key");
    let (status, _, _) = get(&url, Some("not-the-admin-key-at-all")).await;
    assert_eq!(status, 401, "a wrong key");
    let (status, _, _) = get(&url, Some(&pro.key)).await;
    assert_eq!(status, 403, "a customer's key is not the operator's");

    let (status, page, content_type) = get(&url, Some(ADMIN_KEY)).await;
    assert_eq!(status, 200);
    assert_eq!(content_type.as_deref(), Some("text/plain; version=0.0.4; charset=utf-8"));
    for tenant in [&pro, &free] {
        assert!(!page.contains(&tenant.id), "no customer id in the metrics");
    }
    let families = parse_with_prometheus_client(&page);
    let types: Vec<(&str, &str)> =
        families.as_array().unwrap().iter().map(|f| (f["name"].as_str().unwrap(), f["type"].as_str().unwrap())).collect();
    assert_eq!(
        types,
        [
            ("squaremcp_tool_calls", "counter"),
            ("squaremcp_tool_call_upstream_requests", "counter"),
            ("squaremcp_tool_call_duration_seconds", "histogram"),
            ("squaremcp_tool_call_upstream_duration_seconds", "histogram"),
        ]
    );
    let pro_ok = [("tool", "telegram_get_me"), ("platform", "telegram"), ("plan", "pro"), ("outcome", "ok")];
    assert_eq!(sample(&families, "squaremcp_tool_calls_total", &pro_ok), Some(3.0));
    assert_eq!(sample(&families, "squaremcp_tool_call_upstream_requests_total", &pro_ok), Some(3.0), "one getMe each");
    let free_ok = [("tool", "telegram_get_me"), ("plan", "free"), ("outcome", "ok")];
    assert_eq!(sample(&families, "squaremcp_tool_calls_total", &free_ok), Some(1.0), "plans are told apart");
    let invalid = [("tool", "telegram_send_message"), ("plan", "pro"), ("outcome", "invalid_input")];
    assert_eq!(sample(&families, "squaremcp_tool_calls_total", &invalid), Some(1.0));
    assert_eq!(sample(&families, "squaremcp_tool_call_upstream_requests_total", &invalid), Some(0.0), "refused before the platform");
    let all = [pro_ok.as_slice(), &[("le", "+Inf")]].concat();
    assert_eq!(sample(&families, "squaremcp_tool_call_duration_seconds_bucket", &all), Some(3.0));
    assert_eq!(sample(&families, "squaremcp_tool_call_duration_seconds_count", &pro_ok), Some(3.0));
    let total = sample(&families, "squaremcp_tool_call_duration_seconds_sum", &pro_ok).unwrap();
    let upstream = sample(&families, "squaremcp_tool_call_upstream_duration_seconds_sum", &pro_ok).unwrap();
    assert!(total > 0.0 && upstream > 0.0 && upstream <= total, "the platform's time is part of the call's: {upstream} of {total}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_listener_of_its_own_keeps_them_off_the_public_one() {
    let data = TempDir::new("metrics-listener");
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let server = Server::start(data.path(), &[("SQUAREMCP_METRICS_ADDR", &metrics_addr), ("SQUAREMCP_ADMIN_KEY", ADMIN_KEY)]);
    let (status, _, _) = get(&format!("{}/metrics", server.base), Some(ADMIN_KEY)).await;
    assert_eq!(status, 404, "not on the public listener, even with the key");
    let mut page = None;
    for _ in 0..100 {
        // The metrics listener binds beside the main one; give it a moment.
        if let Ok(response) = reqwest::get(format!("http://{metrics_addr}/metrics")).await {
            page = Some((response.status().as_u16(), response.text().await.unwrap()));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, page) = page.expect("the metrics listener answers");
    assert_eq!(status, 200, "no key needed there");
    let families = parse_with_prometheus_client(&page);
    assert_eq!(families.as_array().unwrap().len(), 4, "the families are declared before any call: {page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_top_ranks_customers_and_tools_of_the_month() {
    let telegram = Mock::start(Telegram::accepting(&[TOKEN])).await;
    let data = TempDir::new("usage-top");
    let heavy = create_tenant(data.path(), "heavy@example.com");
    let light = create_tenant_on_plan(data.path(), "light@example.com", "free");
    let idle = create_tenant(data.path(), "idle@example.com");
    for tenant in [&heavy, &light] {
        cli_json(data.path(), &["credentials", "set", "--customer", &tenant.id, "--platform", "telegram"], &json!({"bot_token": TOKEN}).to_string());
    }
    let server = Server::start(data.path(), &[("SQUAREMCP_TELEGRAM_BASE_URL", telegram.base_url())]);
    for _ in 0..4 {
        server.call_tool_ok(&heavy.key, "telegram_get_me", json!({})).await;
    }
    server.call_tool_ok(&light.key, "telegram_get_me", json!({})).await;
    let failed = server.call_tool(&light.key, "telegram_send_message", json!({"chat_id": 1})).await;
    assert_eq!(failed["isError"], true);

    let top = squaremcp_tests::cli_json_settled(data.path(), &["usage", "top"], &[]);
    assert_eq!(top["active_customers"], 2, "the idle customer is left out: {top}");
    let customers: Vec<(&str, u64, u64, u64)> = top["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), c["counted"].as_u64().unwrap(), c["calls"].as_u64().unwrap(), c["failed"].as_u64().unwrap()))
        .collect();
    assert_eq!(customers, [(heavy.id.as_str(), 4, 4, 0), (light.id.as_str(), 1, 2, 1)]);
    assert!(!top.to_string().contains(&idle.id));
    let tools: Vec<(&str, u64, u64, u64)> = top["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["tool"].as_str().unwrap(), t["calls"].as_u64().unwrap(), t["customers"].as_u64().unwrap(), t["upstream_requests"].as_u64().unwrap()))
        .collect();
    assert_eq!(tools, [("telegram_get_me", 5, 2, 5), ("telegram_send_message", 1, 1, 0)]);

    let limited = cli_json(data.path(), &["usage", "top", "--limit", "1"], "");
    assert_eq!((limited["customers"].as_array().unwrap().len(), limited["tools"].as_array().unwrap().len()), (1, 1));
    assert_eq!(limited["customers"][0]["id"], heavy.id.as_str());

    let text = cli(data.path(), &["usage", "top"], "");
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("Heaviest customers in") && text.contains("Heaviest tools in"), "{text}");
    let heavy_row = text.lines().find(|l| l.contains(&heavy.id)).expect("a row for the heaviest customer");
    assert!(heavy_row.contains("heavy@example.com") && heavy_row.contains(" pro "), "{heavy_row}");

    let bad = cli(data.path(), &["usage", "top", "--month", "2026-13"], "");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).starts_with("error: "), "a readable error, not a panic");
    drop(server);
}
