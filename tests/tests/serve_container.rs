//! `squaremcp serve` as a container runs it: SIGTERM with calls in flight, the probes, route
//! groups, JSON logs on stdout, and forwarding headers believed only from trusted proxies.
//! (The image, manifests, registry, podman and nginx: `scripts/container/test`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use squaremcp_platform_mocks::telegram::Telegram;
use squaremcp_platform_mocks::{Fault, Mock};
use squaremcp_tests::{Server, TempDir, backend_env, binary, cli_json, create_tenant, free_port};

const TOKEN: &str = "333333333:AAHcontainer_token_abcdefghijklmnopq";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_with_50_calls_in_flight_answers_each_and_records_each() {
    let telegram = Mock::start(Telegram::accepting(&[TOKEN])).await;
    let data = TempDir::new("sigterm");
    let tenant = create_tenant(data.path(), "drain@example.com");
    cli_json(data.path(), &["credentials", "set", "--customer", &tenant.id, "--platform", "telegram"], &json!({"bot_token": TOKEN}).to_string());
    let server = Server::start(data.path(), &[("SQUAREMCP_TELEGRAM_BASE_URL", telegram.base_url())]);
    // Every upstream answer takes 1.5 s: the calls are still running when SIGTERM arrives.
    telegram.fail_always(Fault::Slow(Duration::from_millis(1500)));

    let http = reqwest::Client::new();
    let mut calls = Vec::new();
    for i in 0..50 {
        let body = json!({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "telegram_send_message", "arguments": {"chat_id": 7, "text": format!("call {i}")}}});
        let request = http.post(server.mcp_url()).header("x-api-key", &tenant.key).json(&body);
        calls.push(tokio::spawn(async move { request.send().await }));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while telegram.request_count() < 50 {
        assert!(Instant::now() < deadline, "only {} calls reached the platform", telegram.request_count());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let base = server.base.clone();
    let started = Instant::now();
    let stopping = tokio::task::spawn_blocking(move || server.terminate());
    // Once the signal is handled, no new connection is accepted.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let late = reqwest::Client::new().get(format!("{base}/healthz")).timeout(Duration::from_secs(2)).send().await;
    assert!(late.is_err(), "a connection after SIGTERM must be refused: {late:?}");

    for call in calls {
        let response = call.await.unwrap().expect("every call in flight is answered");
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["result"]["isError"], false, "{answer}");
    }
    let status = stopping.await.unwrap();
    assert!(status.success(), "serve exits 0 after draining: {status:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "drained in {:?}", started.elapsed());

    // Metering and call records were written before the answers: the counter and the records agree.
    let usage = cli_json(data.path(), &["usage", "show", "--customer", &tenant.id], "");
    assert_eq!(usage["calls_counted"], 50, "{usage}");
    assert_eq!(usage["by_tool"]["telegram_send_message"], json!({"ok": 50}), "{usage}");
    let audit = cli_json(data.path(), &["audit", "tail", "--customer", &tenant.id, "--limit", "100"], "");
    assert_eq!(audit.as_array().unwrap().len(), 50, "one call record per call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_outliving_the_grace_period_does_not_hold_the_exit() {
    let telegram = Mock::start(Telegram::accepting(&[TOKEN])).await;
    let data = TempDir::new("grace");
    let tenant = create_tenant(data.path(), "grace@example.com");
    cli_json(data.path(), &["credentials", "set", "--customer", &tenant.id, "--platform", "telegram"], &json!({"bot_token": TOKEN}).to_string());
    let server = Server::start(data.path(), &[("SQUAREMCP_TELEGRAM_BASE_URL", telegram.base_url()), ("SQUAREMCP_SHUTDOWN_GRACE_SECONDS", "1")]);
    telegram.fail_always(Fault::Slow(Duration::from_secs(8)));
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "telegram_send_message", "arguments": {"chat_id": 7, "text": "slow"}}});
    let call = tokio::spawn(reqwest::Client::new().post(server.mcp_url()).header("x-api-key", &tenant.key).json(&body).send());
    let deadline = Instant::now() + Duration::from_secs(20);
    while telegram.request_count() < 1 {
        assert!(Instant::now() < deadline, "the call never reached the platform");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || server.terminate()).await.unwrap();
    let took = started.elapsed();
    assert!(!status.success(), "exiting with a call unanswered is a failure: {status:?}");
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(4), "exited after the 1 s grace period, not the call's 8 s: {took:?}");
    assert!(call.await.unwrap().is_err(), "the unfinished call's connection is closed");
}

/// `squaremcp serve` with `args` and `env`, stdout piped (not a terminal, as in a container).
fn spawn_serve(data: &std::path::Path, port: u16, args: &[&str], env: &[(&str, &str)]) -> Child {
    Command::new(binary("squaremcp"))
        .arg("serve")
        .args(args)
        .env("SQUAREMCP_DATA_DIR", data)
        .envs(backend_env(data))
        .env("SQUAREMCP_LISTEN", format!("127.0.0.1:{port}"))
        .env("SQUAREMCP_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        .env_remove("SQUAREMCP_LOG_FORMAT")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn squaremcp serve")
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn status_of(url: &str) -> u16 {
    reqwest::get(url).await.map(|r| r.status().as_u16()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_groups_probes_and_json_logs_on_stdout() {
    let data = TempDir::new("routes");
    let port = free_port();
    let mut child = spawn_serve(data.path(), port, &["--routes", "mcp"], &[]);
    // Every line on stdout is JSON, up to the start-up announcement.
    let stdout = child.stdout.take().unwrap();
    let mut server = Killed(child);
    let announcement = tokio::task::spawn_blocking(move || {
        for line in BufReader::new(stdout).lines().take(10) {
            let line = line.unwrap();
            let entry: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
            if entry["message"].as_str().unwrap_or("").starts_with("SquareMCP is serving") {
                return Some(entry);
            }
        }
        None
    })
    .await
    .unwrap()
    .expect("the start-up announcement on stdout");
    assert_eq!(announcement["level"], "INFO", "{announcement}");
    assert_eq!(announcement["routes"], "mcp");

    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(status_of(&format!("{base}/healthz")).await, 200);
    assert_eq!(status_of(&format!("{base}/readyz")).await, 200);
    let mcp = reqwest::Client::new().post(format!("{base}/mcp")).json(&json!({})).send().await.unwrap();
    assert_eq!(mcp.status(), 401, "the mcp group is served");
    assert_eq!(status_of(&format!("{base}/login")).await, 404, "the login group is not");
    assert_eq!(status_of(&format!("{base}/.well-known/oauth-authorization-server")).await, 404, "nor oauth");
    let _ = server.0.kill();

    let out = Command::new(binary("squaremcp")).args(["serve", "--routes", "mcp,admin"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`admin` is not a route group"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_while_the_store_is_unreachable_and_healthz_does_not() {
    let data = TempDir::new("readyz");
    let port = free_port();
    // DynamoDB at a closed port: the process starts (start-up sends nothing), the store answers nothing.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let env = [
        ("SQUAREMCP_STORE", "dynamodb"),
        ("SQUAREMCP_TABLE", "unreachable"),
        ("AWS_ENDPOINT_URL", closed.as_str()),
        ("AWS_ENDPOINT_URL_DYNAMODB", closed.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("SQUAREMCP_JWT_SECRET", "0123456789abcdef0123456789abcdef0123"),
    ];
    let _server = Killed(spawn_serve(data.path(), port, &[], &env));
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while status_of(&format!("{base}/healthz")).await != 200 {
        assert!(Instant::now() < deadline, "serve did not start");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let started = Instant::now();
    assert_eq!(status_of(&format!("{base}/readyz")).await, 503);
    assert!(started.elapsed() < Duration::from_secs(2), "answered within a probe's timeout: {:?}", started.elapsed());
}

async fn register(base: &str, forwarded_for: &str) -> u16 {
    let body = json!({"client_name": "proxy test", "redirect_uris": ["http://127.0.0.1:9/cb"], "token_endpoint_auth_method": "none"});
    let response = reqwest::Client::new().post(format!("{base}/register")).header("x-forwarded-for", forwarded_for).json(&body).send().await.unwrap();
    response.status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_count_only_from_trusted_proxies() {
    // Not trusted (the default): 31 registrations "from" 31 addresses are one address's 31, and
    // the 31st is over the limit of 30 per address.
    let data = TempDir::new("untrusted");
    let server = Server::start(data.path(), &[]);
    let mut statuses = Vec::new();
    for i in 0..31 {
        statuses.push(register(&server.base, &format!("198.51.100.{}", i + 1)).await);
    }
    assert_eq!(&statuses[..30], &[201; 30]);
    assert_eq!(statuses[30], 429, "X-Forwarded-For from an untrusted peer is ignored");
    drop(server);

    // Loopback trusted: each forwarded address has its own limit; the same one again is limited.
    let data = TempDir::new("trusted");
    let server = Server::start(data.path(), &[("SQUAREMCP_TRUSTED_PROXIES", "127.0.0.1/32")]);
    for i in 0..31 {
        assert_eq!(register(&server.base, &format!("198.51.100.{}", i + 1)).await, 201, "client {i}");
    }
    for _ in 0..30 {
        assert_eq!(register(&server.base, "203.0.113.5, 127.0.0.1").await, 201, "a trusted hop is skipped");
    }
    assert_eq!(register(&server.base, "203.0.113.5").await, 429, "the forwarded client's own limit");
    drop(server);

    // The scheme: a trusted proxy reporting plain http to an https deployment sends the browser to https.
    let data = TempDir::new("proto");
    let port = free_port();
    let public = "https://mcp.example.test";
    let mut child = Command::new(binary("squaremcp"));
    child
        .arg("serve")
        .env("SQUAREMCP_DATA_DIR", data.path())
        .envs(backend_env(data.path()))
        .env("SQUAREMCP_LISTEN", format!("127.0.0.1:{port}"))
        .env("SQUAREMCP_PUBLIC_URL", public)
        .env("SQUAREMCP_TRUSTED_PROXIES", "127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _server = Killed(child.spawn().unwrap());
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while status_of(&format!("{base}/healthz")).await != 200 {
        assert!(Instant::now() < deadline, "serve did not start");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = http.get(format!("{base}/login?return_to=%2Faccount")).header("x-forwarded-proto", "http").send().await.unwrap();
    assert_eq!(response.status(), 308);
    assert_eq!(response.headers()["location"], format!("{public}/login?return_to=%2Faccount"));
    let response = http.post(format!("{base}/login")).header("x-forwarded-proto", "http").body("email=a&password=b").send().await.unwrap();
    assert_eq!(response.status(), 403, "a password is never taken over plain http");
    let response = http.get(format!("{base}/login")).header("x-forwarded-proto", "https").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    assert!(cookie.starts_with("__Host-") && cookie.contains("; Secure"), "{cookie}");
}
