//! `squaremcp-bench`: runs SquareMCP, a TypeScript SDK baseline and a bare axum server side by
//! side on loopback, under the same load, and prints figures and ratios (and writes them as
//! JSON). `bench/run` builds everything and calls it; `--smoke` is a one-second pass for CI.

mod mocks;
mod open_loop;
mod procs;
mod wrk;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::process::Command;

use crate::procs::{Service, binary, free_port, output, peak_rss_mb};

const BOT_TOKEN: &str = "123456789:AAHbenchbenchbenchbenchbenchbenchbe";
const ADMIN_KEY: &str = "sample-admin-key";

struct Options {
    smoke: bool,
    repo: PathBuf,
    target_dir: PathBuf,
    out: PathBuf,
    zip_dir: Option<PathBuf>,
    /// DynamoDB requests of one warm authenticated tools/call, measured by `bench/run`.
    round_trips: Option<u32>,
}

impl Options {
    fn seconds(&self) -> u32 {
        if self.smoke { 1 } else { 10 }
    }
    fn connections(&self) -> Vec<u32> {
        if self.smoke { vec![4] } else { vec![1, 16, 64] }
    }
    fn moderate(&self) -> u32 {
        if self.smoke { 4 } else { 16 }
    }
    /// "Moderate load" for the overhead target: about the most the TypeScript baseline carries.
    fn moderate_rate(&self) -> u32 {
        if self.smoke { 200 } else { 1_000 }
    }
    fn cold_runs(&self) -> usize {
        if self.smoke { 2 } else { 15 }
    }
}

fn parse_options() -> Result<Options, String> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut options = Options {
        smoke: false,
        target_dir: repo.join("target/release"),
        out: repo.join("target/bench/latest.json"),
        zip_dir: None,
        round_trips: None,
        repo,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().map(PathBuf::from).ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--smoke" => options.smoke = true,
            "--target-dir" => options.target_dir = value("--target-dir")?,
            "--out" => options.out = value("--out")?,
            "--zip-dir" => options.zip_dir = Some(value("--zip-dir")?),
            "--round-trips" => {
                let text = args.next().ok_or("--round-trips needs a value")?;
                options.round_trips = Some(text.parse().map_err(|_| format!("--round-trips {text}: not a number"))?);
            }
            "--help" | "-h" => {
                return Err("usage: squaremcp-bench [--smoke] [--target-dir DIR] [--out FILE] [--zip-dir DIR] [--round-trips N]".into());
            }
            other => return Err(format!("unknown argument {other}; see --help")),
        }
    }
    Ok(options)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    let result = if std::env::args().nth(1).as_deref() == Some("paced") {
        paced_only().await
    } else {
        match parse_options() {
            Ok(options) => run(&options).await,
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `squaremcp-bench paced URL RATE SECONDS BODY [HEADER: VALUE]...`: one fixed-rate run against
/// any server, for profiling a change without the whole bench (docs/performance.md).
async fn paced_only() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let usage = "usage: squaremcp-bench paced URL RATE SECONDS BODY [HEADER: VALUE]...";
    let [url, rate, seconds, body, headers @ ..] = args.as_slice() else { return Err(usage.into()) };
    let number = |text: &str| text.parse::<u32>().map_err(|_| format!("{text}: not a number; {usage}"));
    let headers: Vec<(&str, &str)> =
        headers.iter().filter_map(|h| h.split_once(':')).map(|(name, value)| (name.trim(), value.trim())).collect();
    let target = open_loop::Target { url, body, headers: &headers };
    let l = open_loop::run(&target, number(rate)?, number(seconds)?).await?;
    println!("{} req/s: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms, {} failed", l.rate, l.p50_ms, l.p99_ms, l.max_ms, l.failures);
    Ok(())
}

struct Row {
    target: &'static str,
    scenario: &'static str,
    connections: u32,
    load: wrk::Load,
}

async fn run(options: &Options) -> Result<(), String> {
    let scratch = options.out.parent().unwrap_or(Path::new(".")).join("scratch");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let script = scratch.join("post.lua");
    std::fs::write(&script, wrk::SCRIPT).map_err(|e| e.to_string())?;

    let (upstream, upstream_calls) = mocks::upstream().await;
    let bare = mocks::bare().await;
    let squaremcp = binary(&options.target_dir, "squaremcp")?;
    let data = scratch.join("data");
    let api_key = provision(&squaremcp, &data).await?;

    let port = free_port();
    let mut serve = Command::new(&squaremcp);
    serve
        .arg("serve")
        .env("SQUAREMCP_DATA_DIR", &data)
        .env("SQUAREMCP_LISTEN", format!("127.0.0.1:{port}"))
        .env("SQUAREMCP_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        .env("SQUAREMCP_TELEGRAM_BASE_URL", &upstream);
    let gateway = Service::spawn(serve, port).await?;

    let http = reqwest::Client::new();
    let tools = rpc(&http, &format!("{}/mcp", gateway.base), &api_key, &list_body()).await?["result"]["tools"].clone();
    let tools_file = scratch.join("tools.json");
    std::fs::write(&tools_file, tools.to_string()).map_err(|e| e.to_string())?;

    let node_dir = options.repo.join("bench/node");
    let ts_port = free_port();
    let mut ts = Command::new("node");
    ts.arg(node_dir.join("http-server.mjs"))
        .env("PORT", ts_port.to_string())
        .env("TOOLS_FILE", &tools_file)
        .env("UPSTREAM_URL", &upstream)
        .env("BOT_TOKEN", BOT_TOKEN)
        .env("API_KEY", &api_key);
    let baseline = Service::spawn(ts, ts_port).await?;

    // The baselines must do the same work, or the ratios mean nothing.
    let gateway_url = format!("{}/mcp", gateway.base);
    let baseline_url = format!("{}/mcp", baseline.base);
    same_work(&http, &gateway_url, &baseline_url, &api_key, &upstream_calls).await?;
    println!("check: the TypeScript baseline lists the same {} tools and makes the same upstream call", tools.as_array().map_or(0, Vec::len));

    let mut rows = Vec::new();
    let headers = [("x-api-key", api_key.as_str())];
    let (list, call) = (list_body().to_string(), call_body().to_string());
    let upstream_body = json!({"chat_id": 42, "text": "bench"}).to_string();
    let upstream_url = format!("{upstream}/bot{BOT_TOKEN}/sendMessage");
    for connections in options.connections() {
        for (target, url) in [("squaremcp", &gateway_url), ("ts-sdk", &baseline_url)] {
            for (scenario, body) in [("tools/list", &list), ("tools/call", &call)] {
                let request = wrk::Request { url, body, headers: &headers };
                let load = wrk::run(&request, connections, options.seconds(), &script).await?;
                rows.push(Row { target, scenario, connections, load });
            }
        }
        let request = wrk::Request { url: &format!("{bare}/mcp"), body: &list, headers: &[] };
        let load = wrk::run(&request, connections, options.seconds(), &script).await?;
        rows.push(Row { target: "bare-axum", scenario: "fixed body", connections, load });
    }
    let request = wrk::Request { url: &upstream_url, body: &upstream_body, headers: &[] };
    let upstream_load = wrk::run(&request, options.moderate(), options.seconds(), &script).await?;

    // The gateway's overhead at a fixed, moderate rate: the same schedule straight to the
    // upstream, then through the gateway.
    let rate = options.moderate_rate();
    let direct = open_loop::Target { url: &upstream_url, body: &upstream_body, headers: &[] };
    let direct = open_loop::run(&direct, rate, options.seconds()).await?;
    let through = open_loop::Target { url: &gateway_url, body: &call, headers: &headers };
    let through = open_loop::run(&through, rate, options.seconds()).await?;
    if direct.failures + through.failures > 0 {
        return Err(format!("{} requests failed at {rate} req/s", direct.failures + through.failures));
    }
    let paced = [("upstream (direct)", direct), ("squaremcp tools/call", through)];

    // Peak memory of the gateway under 100 concurrent clients.
    let request = wrk::Request { url: &gateway_url, body: &call, headers: &headers };
    wrk::run(&request, 100, options.seconds().max(3), &script).await?;
    let rss = gateway.pid().and_then(peak_rss_mb);
    drop(baseline);
    drop(gateway);

    let cold = cold_starts(options, &upstream, &tools_file, &scratch).await?;
    let sizes = sizes(options)?;
    let metering = metering_cost(options, &scratch).await?;
    let loads = Loads { rows, upstream: upstream_load, paced };
    report(options, &loads, rss, &cold, &sizes, &metering)
}

/// Everything measured under load: closed-loop rows (wrk), the upstream alone, fixed-rate runs.
struct Loads {
    rows: Vec<Row>,
    upstream: wrk::Load,
    paced: [(&'static str, open_loop::Latencies); 2],
}

fn list_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
}

fn call_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "telegram_send_message", "arguments": {"chat_id": 42, "text": "bench"}}})
}

async fn rpc(http: &reqwest::Client, url: &str, key: &str, body: &Value) -> Result<Value, String> {
    let response = http
        .post(url)
        .header("x-api-key", key)
        .header("accept", "application/json, text/event-stream")
        .json(body)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    let value: Value = response.json().await.map_err(|e| format!("{url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{url} answered {status}: {value}"));
    }
    Ok(value)
}

/// A customer with an API key and Telegram credentials, made with the real CLI.
async fn provision(squaremcp: &Path, data: &Path) -> Result<String, String> {
    let cli = |args: &[&str]| {
        let mut command = Command::new(squaremcp);
        command.args(args).arg("--json").env("SQUAREMCP_DATA_DIR", data);
        command
    };
    let customer: Value = serde_json::from_str(&output(cli(&["customers", "create", "--email", "bench@example.com", "--plan", "pro"])).await?)
        .map_err(|e| e.to_string())?;
    let id = customer["id"].as_str().ok_or("no customer id")?.to_owned();
    let key: Value = serde_json::from_str(&output(cli(&["api-keys", "create", "--customer", &id])).await?).map_err(|e| e.to_string())?;
    let mut set = cli(&["credentials", "set", "--customer", &id, "--platform", "telegram"]);
    set.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    let mut child = set.spawn().map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        use tokio::io::AsyncWriteExt as _;
        stdin.write_all(json!({"bot_token": BOT_TOKEN}).to_string().as_bytes()).await.map_err(|e| e.to_string())?;
    }
    let status = child.wait().await.map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("storing the bench's Telegram credentials failed".into());
    }
    Ok(key["key"].as_str().ok_or("no key")?.to_owned())
}

async fn same_work(
    http: &reqwest::Client,
    gateway: &str,
    baseline: &str,
    key: &str,
    upstream_calls: &std::sync::atomic::AtomicU64,
) -> Result<(), String> {
    let ours = rpc(http, gateway, key, &list_body()).await?["result"]["tools"].clone();
    let theirs = rpc(http, baseline, key, &list_body()).await?["result"]["tools"].clone();
    let names = |tools: &Value| -> Vec<String> {
        tools.as_array().into_iter().flatten().filter_map(|t| t["name"].as_str().map(str::to_owned)).collect()
    };
    if names(&ours) != names(&theirs) || names(&ours).is_empty() {
        return Err(format!("tool lists differ: {:?} vs {:?}", names(&ours), names(&theirs)));
    }
    for url in [gateway, baseline] {
        let before = upstream_calls.load(Ordering::SeqCst);
        let result = rpc(http, url, key, &call_body()).await?["result"].clone();
        if result["isError"] != json!(false) || result["structuredContent"]["message_id"] != json!(4242) {
            return Err(format!("{url}: tools/call did not return the upstream's message: {result}"));
        }
        if upstream_calls.load(Ordering::SeqCst) != before + 1 {
            return Err(format!("{url}: tools/call did not make exactly one upstream call"));
        }
    }
    Ok(())
}

struct ColdStarts {
    rust_ms: Vec<f64>,
    node_ms: Vec<f64>,
}

/// Process start to first answer under a local Lambda Runtime API, for the `mcp` binary and a
/// Node.js handler on the TypeScript SDK, answering the same `tools/list` event.
async fn cold_starts(options: &Options, upstream: &str, tools_file: &Path, scratch: &Path) -> Result<ColdStarts, String> {
    let event = std::fs::read_to_string(options.repo.join("events/mcp/tools-list.json")).map_err(|e| e.to_string())?;
    let (runtime, armed, mut answers) = mocks::runtime_api(event).await;
    let data = scratch.join("lambda-data");
    let mcp = binary(&options.target_dir, "mcp")?;
    let node_bootstrap = options.repo.join("bench/node/lambda-bootstrap.mjs");
    let mut times = [Vec::new(), Vec::new()];
    for (which, times) in times.iter_mut().enumerate() {
        // One unmeasured start first: it creates the data directory and warms the page cache.
        for run in 0..=options.cold_runs() {
            let mut command = if which == 0 { Command::new(&mcp) } else { Command::new("node") };
            if which == 1 {
                command.arg(&node_bootstrap);
            }
            command
                .env("AWS_LAMBDA_RUNTIME_API", &runtime)
                .env("AWS_LAMBDA_FUNCTION_NAME", "mcp")
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
                .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                // As deployed: DynamoDB, KMS and SQS clients are built at start; answering
                // tools/list for the admin key sends them nothing, so no endpoint is needed.
                .env("SQUAREMCP_STORE", "dynamodb")
                .env("AWS_REGION", "us-east-1")
                .env("AWS_ACCESS_KEY_ID", "bench")
                .env("AWS_SECRET_ACCESS_KEY", "bench")
                .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
                .env("SQUAREMCP_DATA_DIR", &data)
                .env("SQUAREMCP_ADMIN_KEY", ADMIN_KEY)
                .env("SQUAREMCP_JWT_SECRET", "bench-jwt-secret-0123456789abcdefghijklmnop")
                .env("SQUAREMCP_LOG", "warn")
                .env("SQUAREMCP_TELEGRAM_BASE_URL", upstream)
                .env("TOOLS_FILE", tools_file)
                .env("UPSTREAM_URL", upstream)
                .env("BOT_TOKEN", BOT_TOKEN)
                .env("API_KEY", ADMIN_KEY)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true);
            armed.store(true, Ordering::SeqCst);
            let started = Instant::now();
            let child = command.spawn().map_err(|e| format!("cannot start a Lambda process: {e}"))?;
            let (answered, status, body) = tokio::time::timeout(Duration::from_secs(20), answers.recv())
                .await
                .map_err(|_| "a Lambda process did not answer within 20 s".to_owned())?
                .ok_or("the runtime API stopped")?;
            drop(child);
            let tools = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|r| serde_json::from_str::<Value>(r["body"].as_str()?).ok())
                .and_then(|b| b["result"]["tools"].as_array().map(Vec::len))
                .unwrap_or(0);
            if status != 200 || tools == 0 {
                return Err(format!("a cold start answered {status} with {tools} tools: {body}"));
            }
            if run > 0 {
                times.push(answered.duration_since(started).as_secs_f64() * 1000.0);
            }
        }
    }
    let [rust_ms, node_ms] = times;
    Ok(ColdStarts { rust_ms, node_ms })
}

/// Each function's Lambda zip (from `--zip-dir`, built by `bench/run`), else the host binaries.
fn sizes(options: &Options) -> Result<Vec<(String, f64)>, String> {
    let mb = |path: &Path| std::fs::metadata(path).map(|m| m.len() as f64 / 1_048_576.0).map_err(|e| e.to_string());
    match &options.zip_dir {
        Some(dir) => {
            let mut sizes = Vec::new();
            for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
                let path = entry.map_err(|e| e.to_string())?.path();
                let zip = path.join("bootstrap.zip");
                if zip.exists() {
                    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    sizes.push((format!("{name} (arm64 zip)"), mb(&zip)?));
                }
            }
            sizes.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(sizes)
        }
        None => Ok(vec![("mcp (host binary, not a zip)".to_owned(), mb(&binary(&options.target_dir, "mcp")?)?)]),
    }
}

/// What metering and the call log add to one tools/call on the embedded store, measured on the
/// store itself: the record written with its counter change (plans with overage), and the
/// reservation before the call plus that write (plans with a hard limit).
struct MeteringCost {
    record_us: f64,
    reserve_and_record_us: f64,
}

async fn metering_cost(options: &Options, scratch: &Path) -> Result<MeteringCost, String> {
    use squaremcp_core::{CallRecord, Customer, CustomerId, Email, Platform, PlanName, Store, Timestamp};
    let store = squaremcp_embedded::SqliteStore::open(&scratch.join("metering/squaremcp.db")).map_err(|e| e.to_string())?;
    let now = Timestamp::from_unix(1_800_000_000);
    let customer = Customer {
        id: CustomerId::generate(),
        email: Email::parse("meter@example.com").map_err(|e| e.to_string())?,
        plan: PlanName::parse("pro").map_err(|e| e.to_string())?,
        password_hash: None,
        created_at: now,
    };
    store.insert_customer(&customer).await.map_err(|e| e.to_string())?;
    let record = |i: u64| CallRecord {
        id: CallRecord::new_id(now.plus_seconds(i as i64)),
        customer_id: customer.id.clone(),
        at: now,
        tool: "telegram_send_message".into(),
        platform: Platform::Telegram,
        auth_method: "api_key".into(),
        client: Some("bench".into()),
        duration_ms: 1,
        outcome: "ok".into(),
        counted: true,
        arguments: json!({"chat_id": 42, "text": "[redacted]"}),
        expires_at: now.plus_seconds(86_400),
    };
    let n: u64 = if options.smoke { 200 } else { 5_000 };
    let started = Instant::now();
    for i in 0..n {
        store.record_call(&record(i), Some(("usage#bench", 1))).await.map_err(|e| e.to_string())?;
    }
    let record_us = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    let started = Instant::now();
    for i in 0..n {
        store.add_to_counter("usage#bench-limited", 1, Some(u64::MAX / 2)).await.map_err(|e| e.to_string())?;
        store.record_call(&record(n + i), None).await.map_err(|e| e.to_string())?;
    }
    let reserve_and_record_us = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    Ok(MeteringCost { record_us, reserve_and_record_us })
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

fn report(
    options: &Options,
    loads: &Loads,
    rss_mb: Option<f64>,
    cold: &ColdStarts,
    sizes: &[(String, f64)],
    metering: &MeteringCost,
) -> Result<(), String> {
    let Loads { rows, upstream, paced } = loads;
    let find = |target: &str, scenario: &str, c: u32| rows.iter().find(|r| r.target == target && r.scenario == scenario && r.connections == c);
    println!("\n{:<11} {:<11} {:>5} {:>10} {:>9} {:>9} {:>9}", "server", "request", "conns", "req/s", "p50 ms", "p90 ms", "p99 ms");
    for r in rows {
        println!(
            "{:<11} {:<11} {:>5} {:>10.0} {:>9.3} {:>9.3} {:>9.3}",
            r.target, r.scenario, r.connections, r.load.requests_per_second, r.load.p50_ms, r.load.p90_ms, r.load.p99_ms
        );
    }
    println!("{:<11} {:<11} {:>5} {:>10.0} {:>9.3} {:>9.3} {:>9.3}", "upstream", "sendMessage", options.moderate(), upstream.requests_per_second, upstream.p50_ms, upstream.p90_ms, upstream.p99_ms);
    println!("\n{:<22} {:>8} {:>9} {:>9} {:>9}", "at a fixed rate", "req/s", "p50 ms", "p99 ms", "max ms");
    for (name, l) in paced {
        println!("{:<22} {:>8} {:>9.3} {:>9.3} {:>9.3}", name, l.rate, l.p50_ms, l.p99_ms, l.max_ms);
    }

    let mut targets = Vec::new();
    let mut check = |name: String, value: f64, goal: &str, met: bool| {
        println!("{:<58} {:>10.2}  target {goal:<8} {}", name, value, if met { "met" } else { "MISSED" });
        targets.push(json!({"name": name, "value": value, "target": goal, "met": met}));
    };
    println!();
    for c in options.connections() {
        for scenario in ["tools/list", "tools/call"] {
            if let (Some(ours), Some(ts), Some(bare)) = (find("squaremcp", scenario, c), find("ts-sdk", scenario, c), find("bare-axum", "fixed body", c)) {
                let vs_ts = ours.load.requests_per_second / ts.load.requests_per_second;
                let vs_bare = ours.load.requests_per_second / bare.load.requests_per_second;
                check(format!("{scenario} req/s vs TypeScript SDK, {c} conns (x)"), vs_ts, ">= 10", vs_ts >= 10.0);
                check(format!("{scenario} req/s vs bare axum, {c} conns (share)"), vs_bare, ">= 0.5", vs_bare >= 0.5);
            }
        }
    }
    let [(_, direct), (_, through)] = paced;
    let overhead = through.p99_ms - direct.p99_ms;
    check(format!("tools/call p99 overhead over upstream at {} req/s (ms)", direct.rate), overhead, "<= 1", overhead <= 1.0);
    let (rust, node) = (median(&cold.rust_ms), median(&cold.node_ms));
    check("cold start, mcp Lambda, median (ms)".into(), rust, "<= 15", rust <= 15.0);
    check("cold start, Node.js on the TS SDK / mcp Lambda (x)".into(), node / rust, ">= 5", node / rust >= 5.0);
    if let Some(rss) = rss_mb {
        check("squaremcp serve peak RSS, 100 concurrent clients (MB)".into(), rss, "<= 40", rss <= 40.0);
    }
    for (name, size) in sizes {
        check(format!("size: {name} (MB)"), *size, "<= 6", *size <= 6.0);
    }
    if let Some(round_trips) = options.round_trips {
        let value = f64::from(round_trips);
        check("DynamoDB requests per warm authenticated tools/call".into(), value, "<= 3", round_trips <= 3);
    }
    println!(
        "\nmetering + call log on the embedded store, per tools/call: {:.1} us (record with its counter), {:.1} us (reservation + record, hard-limit plans)",
        metering.record_us, metering.reserve_and_record_us
    );
    println!("\ncold starts (ms): mcp {:?}\n                  node {:?}", rounded(&cold.rust_ms), rounded(&cold.node_ms));

    let results = json!({
        "mode": if options.smoke { "smoke" } else { "full" },
        "machine": {"cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), "os": std::env::consts::OS, "arch": std::env::consts::ARCH},
        "throughput": rows.iter().map(|r| json!({
            "server": r.target, "request": r.scenario, "connections": r.connections,
            "requests_per_second": r.load.requests_per_second, "requests": r.load.requests,
            "p50_ms": r.load.p50_ms, "p90_ms": r.load.p90_ms, "p99_ms": r.load.p99_ms,
        })).collect::<Vec<_>>(),
        "upstream": {"connections": options.moderate(), "requests_per_second": upstream.requests_per_second, "p99_ms": upstream.p99_ms},
        "fixed_rate": paced.iter().map(|(name, l)| json!({
            "target": name, "requests_per_second": l.rate, "p50_ms": l.p50_ms, "p99_ms": l.p99_ms, "max_ms": l.max_ms,
        })).collect::<Vec<_>>(),
        "cold_start_ms": {"mcp": cold.rust_ms, "node_ts_sdk": cold.node_ms},
        "peak_rss_mb": rss_mb,
        "sizes_mb": sizes.iter().map(|(n, s)| json!({"name": n, "mb": s})).collect::<Vec<_>>(),
        "metering_us": {"record_with_counter": metering.record_us, "reservation_and_record": metering.reserve_and_record_us},
        "dynamodb_requests_per_warm_tools_call": options.round_trips,
        "targets": targets,
    });
    if let Some(dir) = options.out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    std::fs::write(&options.out, format!("{results:#}\n")).map_err(|e| e.to_string())?;
    println!("results written to {}", options.out.display());
    Ok(())
}

fn rounded(values: &[f64]) -> Vec<f64> {
    values.iter().map(|v| (v * 10.0).round() / 10.0).collect()
}
