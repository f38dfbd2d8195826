//! `squaremcp-bench`: runs SquareMCP, a TypeScript SDK baseline and a bare axum server side by
//! side on loopback, under the same load, and prints figures and ratios (and writes them as
//! JSON). `bench/run` builds everything and calls it; `--smoke` is a one-second pass for CI.

mod linkedin_video;
mod webhooks_burst;
mod vault_search;
mod mocks;
mod open_loop;
mod procs;
mod wrk;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::process::Command;

use crate::procs::{CpuTimes, Service, binary, cpu_us_per_request, free_port, output, peak_rss_mb};

const BOT_TOKEN: &str = "123456789:AAHbenchbenchbenchbenchbenchbenchbe";
const ADMIN_KEY: &str = "sample-admin-key";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The reference: every figure, 10 s each.
    Full,
    /// A before/after check in under 3 minutes: the 16-connection figures, the fixed-rate
    /// overhead and the cold starts, 5 s each.
    Quick,
    /// One second per figure on the debug build, so that the harness cannot rot (CI).
    Smoke,
}

struct Options {
    mode: Mode,
    repo: PathBuf,
    target_dir: PathBuf,
    out: PathBuf,
    zip_dir: Option<PathBuf>,
    /// DynamoDB requests of one warm authenticated tools/call, measured by `bench/run`.
    round_trips: Option<u32>,
}

impl Options {
    fn seconds(&self) -> u32 {
        match self.mode {
            Mode::Full => 10,
            Mode::Quick => 5,
            Mode::Smoke => 1,
        }
    }
    fn connections(&self) -> Vec<u32> {
        match self.mode {
            Mode::Full => vec![1, 16, 64],
            Mode::Quick => vec![16],
            Mode::Smoke => vec![4],
        }
    }
    fn moderate(&self) -> u32 {
        if self.mode == Mode::Smoke { 4 } else { 16 }
    }
    /// "Moderate load" for the overhead target: about the most the TypeScript baseline carries.
    fn moderate_rate(&self) -> u32 {
        if self.mode == Mode::Smoke { 200 } else { 1_000 }
    }
    fn cold_runs(&self) -> usize {
        if self.mode == Mode::Smoke { 2 } else { 15 }
    }
    /// Peak memory, metering cost and sizes: the full and smoke runs only.
    fn everything(&self) -> bool {
        self.mode != Mode::Quick
    }
    /// A debug build's figures say nothing about the targets: smoke runs print them unjudged.
    fn judged(&self) -> bool {
        self.mode != Mode::Smoke
    }
    fn name(&self) -> &'static str {
        match self.mode {
            Mode::Full => "full",
            Mode::Quick => "quick",
            Mode::Smoke => "smoke",
        }
    }
    /// Steps of the run, for the progress lines.
    fn steps(&self) -> usize {
        let closed_loop = self.connections().len() * 5 + 1;
        let (paced, cold) = (2, 2);
        let rss_and_metering = if self.everything() { 2 } else { 0 };
        closed_loop + paced + cold + rss_and_metering
    }
}

fn parse_options() -> Result<Options, String> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut options = Options {
        mode: Mode::Full,
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
            "--smoke" | "--quick" if options.mode != Mode::Full => return Err("--smoke and --quick exclude each other".into()),
            "--smoke" => options.mode = Mode::Smoke,
            "--quick" => options.mode = Mode::Quick,
            "--target-dir" => options.target_dir = value("--target-dir")?,
            "--out" => options.out = value("--out")?,
            "--zip-dir" => options.zip_dir = Some(value("--zip-dir")?),
            "--round-trips" => {
                let text = args.next().ok_or("--round-trips needs a value")?;
                options.round_trips = Some(text.parse().map_err(|_| format!("--round-trips {text}: not a number"))?);
            }
            "--help" | "-h" => {
                return Err("usage: squaremcp-bench [--smoke | --quick] [--target-dir DIR] [--out FILE] [--zip-dir DIR] [--round-trips N]".into());
            }
            other => return Err(format!("unknown argument {other}; see --help")),
        }
    }
    Ok(options)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    let result = if std::env::args().nth(1).as_deref() == Some("paced") {
        paced_only().await.map(|()| Vec::new())
    } else if std::env::args().nth(1).as_deref() == Some("linkedin-video") {
        linkedin_video::run(&std::env::args().skip(2).collect::<Vec<_>>()).await
    } else if std::env::args().nth(1).as_deref() == Some("webhooks-burst") {
        webhooks_burst::run(&std::env::args().skip(2).collect::<Vec<_>>()).await
    } else if std::env::args().nth(1).as_deref() == Some("vault-search") {
        vault_search::run(&std::env::args().skip(2).collect::<Vec<_>>()).await
    } else {
        match parse_options() {
            Ok(options) => run(&options).await,
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(failures) if failures.is_empty() => std::process::ExitCode::SUCCESS,
        Ok(failures) => {
            for failure in failures {
                eprintln!("bench: {failure}");
            }
            std::process::ExitCode::FAILURE
        }
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
    println!(
        "{} req/s: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms, {} non-2xx, {} errors or timeouts",
        l.rate, l.p50_ms, l.p99_ms, l.max_ms, l.non_2xx, l.errors
    );
    Ok(())
}

/// One closed-loop figure: what `wrk` measured, or why there is none. Either way the run goes on.
struct Figure {
    server: &'static str,
    scenario: &'static str,
    connections: u32,
    outcome: Result<wrk::Load, String>,
    cpu: CpuPerRequest,
}

/// Where a closed-loop figure's CPU went, per request answered: the server's process, `wrk`, and
/// this process (the mock upstream the servers call). For the servers that run in this process
/// (bare axum, the upstream alone) the server's figure is this process's and `harness_us` is
/// `None`. Read from `/proc`, so `None` off Linux.
#[derive(Clone, Copy, Debug, Default)]
struct CpuPerRequest {
    server_us: Option<f64>,
    wrk_us: Option<f64>,
    harness_us: Option<f64>,
}

impl CpuPerRequest {
    /// `250 us/req (wrk 40, harness 30)`, or empty when nothing was read.
    fn describe(&self) -> String {
        let Some(server) = self.server_us else { return String::new() };
        let others: Vec<String> =
            [("wrk", self.wrk_us), ("harness", self.harness_us)].iter().filter_map(|(n, v)| v.map(|v| format!("{n} {v:.0}"))).collect();
        if others.is_empty() { format!("{server:.0} us/req") } else { format!("{server:.0} us/req ({})", others.join(", ")) }
    }

    fn json(&self) -> Value {
        json!({"server": self.server_us, "wrk": self.wrk_us, "harness": self.harness_us})
    }
}

impl Figure {
    fn label(&self) -> String {
        format!("{} {}, {} conns", self.server, self.scenario, self.connections)
    }

    fn load(&self) -> Option<&wrk::Load> {
        self.outcome.as_ref().ok()
    }

    /// Why this figure is not clean: what `wrk` counted besides answers, or why there is no figure.
    fn trouble(&self) -> Option<String> {
        match &self.outcome {
            Ok(load) if load.errors.any() => Some(load.errors.describe()),
            Ok(_) => None,
            Err(e) => Some(format!("no figure: {e}")),
        }
    }

    fn summary(&self) -> String {
        match &self.outcome {
            Ok(l) => {
                let affected = self.trouble().map(|t| format!(" — AFFECTED: {t}")).unwrap_or_default();
                let cpu = self.cpu.server_us.map(|_| format!(", CPU {}", self.cpu.describe())).unwrap_or_default();
                format!("{:.0} req/s, p50 {:.3} ms, p99 {:.3} ms{cpu}{affected}", l.requests_per_second, l.p50_ms, l.p99_ms)
            }
            Err(e) => format!("FAILED, no figure (the run goes on): {e}"),
        }
    }

    fn json(&self) -> Value {
        let load = self.load();
        json!({
            "server": self.server, "request": self.scenario, "connections": self.connections,
            "requests_per_second": load.map(|l| l.requests_per_second), "requests": load.map(|l| l.requests),
            "p50_ms": load.map(|l| l.p50_ms), "p90_ms": load.map(|l| l.p90_ms), "p99_ms": load.map(|l| l.p99_ms),
            "errors": load.map(|l| json!({
                "connect": l.errors.connect, "read": l.errors.read, "write": l.errors.write,
                "timeout": l.errors.timeout, "non_2xx": l.errors.non_2xx,
            })),
            "cpu_us_per_request": self.cpu.json(),
            "affected": self.trouble().is_some(),
            "failed": self.outcome.as_ref().err(),
        })
    }
}

/// One fixed-rate run, or why there is none.
struct Paced {
    name: &'static str,
    rate: u32,
    outcome: Result<open_loop::Latencies, String>,
    /// The gateway's CPU per request over the run (its unmeasured first second included); `None`
    /// for the upstream, which runs in this process with the load generator.
    cpu_us: Option<f64>,
}

impl Paced {
    fn label(&self) -> String {
        format!("{} at {} req/s", self.name, self.rate)
    }

    fn trouble(&self) -> Option<String> {
        match &self.outcome {
            Ok(l) if l.failures() > 0 => Some(format!("non-2xx {}, errors or timeouts {}", l.non_2xx, l.errors)),
            Ok(_) => None,
            Err(e) => Some(format!("no figure: {e}")),
        }
    }

    fn summary(&self) -> String {
        match &self.outcome {
            Ok(l) => {
                let affected = self.trouble().map(|t| format!(" — AFFECTED: {t}")).unwrap_or_default();
                let cpu = self.cpu_us.map(|us| format!(", CPU {us:.0} us/req")).unwrap_or_default();
                format!("p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms{cpu}{affected}", l.p50_ms, l.p99_ms, l.max_ms)
            }
            Err(e) => format!("FAILED, no figure (the run goes on): {e}"),
        }
    }
}

/// Progress on stderr, so that stdout keeps the report: a line as each step starts and as it
/// ends, with how far along the run is (`[7/22 1:32]`: step, steps, minutes since the start).
struct Progress {
    step: usize,
    steps: usize,
    started: Instant,
}

impl Progress {
    fn new(steps: usize) -> Self {
        Self { step: 0, steps, started: Instant::now() }
    }

    fn position(&self) -> String {
        let s = self.started.elapsed().as_secs();
        format!("[{:>2}/{} {}:{:02}]", self.step, self.steps, s / 60, s % 60)
    }

    fn note(&self, text: &str) {
        eprintln!("{} {text}", self.position());
    }

    fn start(&mut self, what: &str) {
        self.step += 1;
        self.note(&format!("{what} ..."));
    }

    fn end(&self, what: &str, result: &str) {
        self.note(&format!("{what}: {result}"));
    }
}

/// `server_pid` is the server's process, `None` for a server in this process.
async fn closed_loop(
    progress: &mut Progress,
    (server, scenario, connections): (&'static str, &'static str, u32),
    (request, server_pid): (&wrk::Request<'_>, Option<u32>),
    seconds: u32,
    script: &Path,
) -> Figure {
    let label = format!("{server} {scenario}, {connections} conns");
    progress.start(&format!("{label}, {seconds} s"));
    let (server_before, here_before) = (server_pid.and_then(CpuTimes::of), CpuTimes::of_this_process());
    let outcome = wrk::run(request, connections, seconds, script).await;
    let (server_after, here_after) = (server_pid.and_then(CpuTimes::of), CpuTimes::of_this_process());
    let requests = outcome.as_ref().map_or(0, |l| l.requests);
    let own = |times: Option<CpuTimes>| times.map(|t| t.own_ms);
    let here = cpu_us_per_request(own(here_before), own(here_after), requests);
    // wrk is this process's only child that ends meanwhile, so the children's time is wrk's.
    let children = |times: Option<CpuTimes>| times.map(|t| t.children_ms);
    let cpu = CpuPerRequest {
        server_us: if server_pid.is_some() { cpu_us_per_request(own(server_before), own(server_after), requests) } else { here },
        wrk_us: cpu_us_per_request(children(here_before), children(here_after), requests),
        harness_us: server_pid.and(here),
    };
    let figure = Figure { server, scenario, connections, outcome, cpu };
    progress.end(&label, &figure.summary());
    figure
}

/// The two fixed-rate runs of the overhead target, alternating in half-second slices.
/// `gateway_pid` is the second target's process, whose CPU per request is read.
async fn fixed_rate_pair(
    progress: &mut Progress,
    named: [(&'static str, &open_loop::Target<'_>); 2],
    (rate, seconds): (u32, u32),
    gateway_pid: Option<u32>,
) -> [Paced; 2] {
    let [(first, _), (second, _)] = named;
    progress.start(&format!("{first} and {second} at {rate} req/s, alternating every 0.5 s, 2 × (1 + {seconds}) s"));
    let before = gateway_pid.and_then(CpuTimes::of);
    let [a, b] = open_loop::run_alternating([named[0].1, named[1].1], rate, seconds).await;
    let after = gateway_pid.and_then(CpuTimes::of);
    // Every request sent to it: the unmeasured second's, then the measured ones.
    let sent = b.as_ref().map_or(0, |l| u64::from(rate) + (l.answered + l.failures()) as u64);
    let cpu_us = cpu_us_per_request(before.map(|t| t.own_ms), after.map(|t| t.own_ms), sent);
    let paced = [Paced { name: first, rate, outcome: a, cpu_us: None }, Paced { name: second, rate, outcome: b, cpu_us }];
    progress.end(&paced[0].label(), &paced[0].summary());
    progress.step += 1;
    progress.end(&paced[1].label(), &paced[1].summary());
    paced
}

/// Runs every figure, writes the report, and returns why the run fails (SquareMCP's errors,
/// missed targets), empty if it passes. `Err` only when there is nothing to measure: setting up
/// the servers or checking that they do the same work failed.
async fn run(options: &Options) -> Result<Vec<String>, String> {
    let mut progress = Progress::new(options.steps());
    let scratch = options.out.parent().unwrap_or(Path::new(".")).join("scratch");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let script = scratch.join("post.lua");
    std::fs::write(&script, wrk::SCRIPT).map_err(|e| e.to_string())?;

    progress.note(&format!("{} run: {} steps, {} s of load each; starting the servers", options.name(), options.steps(), options.seconds()));
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
    // For profiling: the gateway's own log (JSON, each request's handler time in `elapsed_ms`).
    let gateway_log = std::env::var_os("SQUAREMCP_BENCH_GATEWAY_LOG").map(PathBuf::from);
    let gateway = Service::spawn_logging(serve, port, gateway_log.as_deref()).await?;

    // A timeout so that a server that never answers fails the set-up instead of hanging it.
    let http = reqwest::Client::builder().timeout(Duration::from_secs(u64::from(wrk::TIMEOUT_SECONDS))).build().map_err(|e| e.to_string())?;
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

    let seconds = options.seconds();
    let mut rows = Vec::new();
    let headers = [("x-api-key", api_key.as_str())];
    let (list, call) = (list_body().to_string(), call_body().to_string());
    let upstream_body = json!({"chat_id": 42, "text": "bench"}).to_string();
    let upstream_url = format!("{upstream}/bot{BOT_TOKEN}/sendMessage");
    let bare_url = format!("{bare}/mcp");
    for connections in options.connections() {
        for (server, url, pid) in [("squaremcp", &gateway_url, gateway.pid()), ("ts-sdk", &baseline_url, baseline.pid())] {
            for (scenario, body) in [("tools/list", &list), ("tools/call", &call)] {
                let request = wrk::Request { url, body, headers: &headers };
                rows.push(closed_loop(&mut progress, (server, scenario, connections), (&request, pid), seconds, &script).await);
            }
        }
        let request = wrk::Request { url: &bare_url, body: &list, headers: &[] };
        rows.push(closed_loop(&mut progress, ("bare-axum", "fixed body", connections), (&request, None), seconds, &script).await);
    }
    let request = wrk::Request { url: &upstream_url, body: &upstream_body, headers: &[] };
    let upstream_load = closed_loop(&mut progress, ("upstream", "sendMessage", options.moderate()), (&request, None), seconds, &script).await;

    // The gateway's overhead at a fixed, moderate rate: the same schedule straight to the
    // upstream and through the gateway, taking turns.
    let rate = options.moderate_rate();
    let direct = open_loop::Target { url: &upstream_url, body: &upstream_body, headers: &[] };
    let through = open_loop::Target { url: &gateway_url, body: &call, headers: &headers };
    let named = [("upstream (direct)", &direct), ("squaremcp tools/call", &through)];
    let paced = fixed_rate_pair(&mut progress, named, (rate, seconds), gateway.pid()).await;

    // Peak memory of the gateway under 100 concurrent clients.
    let (rss_load, rss) = if options.everything() {
        let request = wrk::Request { url: &gateway_url, body: &call, headers: &headers };
        let figure = closed_loop(&mut progress, ("squaremcp", "tools/call", 100), (&request, gateway.pid()), seconds.max(3), &script).await;
        let rss = gateway.pid().and_then(peak_rss_mb);
        progress.note(&format!("peak RSS of squaremcp serve: {}", rss.map_or("unknown".into(), |mb| format!("{mb:.1} MB"))));
        (Some(figure), rss)
    } else {
        (None, None)
    };
    drop(baseline);
    drop(gateway);

    let cold = cold_starts(options, &mut progress, &upstream, &tools_file, &scratch).await?;
    let sizes = if options.everything() || options.zip_dir.is_some() { sizes(options)? } else { Vec::new() };
    let metering = if options.everything() {
        progress.start("metering + call log on the embedded store");
        let metering = metering_cost(options, &scratch).await;
        let summary = match &metering {
            Ok(m) => format!("{:.1} us per record, {:.1} us with the reservation", m.record_us, m.reserve_and_record_us),
            Err(e) => format!("FAILED: {e}"),
        };
        progress.end("metering", &summary);
        Some(metering)
    } else {
        None
    };
    let loads = Loads { rows, upstream: upstream_load, paced, rss_load };
    report(options, &loads, rss, &cold, &sizes, metering.as_ref())
}

/// Everything measured under load: closed-loop rows (wrk), the upstream alone, fixed-rate runs,
/// and the load under which peak memory was taken.
struct Loads {
    rows: Vec<Figure>,
    upstream: Figure,
    paced: [Paced; 2],
    rss_load: Option<Figure>,
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

/// Cold start times in ms, or why a runtime has none.
struct ColdStarts {
    rust_ms: Result<Vec<f64>, String>,
    node_ms: Result<Vec<f64>, String>,
    /// Each process's peak resident memory after its first answer (MB; cost.md's memory setting).
    rust_rss_mb: Vec<f64>,
    node_rss_mb: Vec<f64>,
}

/// What every Lambda process of the cold-start runs is started with.
struct LambdaEnv<'a> {
    runtime: &'a str,
    upstream: &'a str,
    tools_file: &'a Path,
    data: &'a Path,
}

/// Process start to first answer under a local Lambda Runtime API, for the `mcp` binary and a
/// Node.js handler on the TypeScript SDK, answering the same `tools/list` event.
async fn cold_starts(options: &Options, progress: &mut Progress, upstream: &str, tools_file: &Path, scratch: &Path) -> Result<ColdStarts, String> {
    let event = std::fs::read_to_string(options.repo.join("events/mcp/tools-list.json")).map_err(|e| e.to_string())?;
    let (runtime, armed, mut answers) = mocks::runtime_api(event).await;
    let data = scratch.join("lambda-data");
    let lambda = LambdaEnv { runtime: &runtime, upstream, tools_file, data: &data };
    let node_bootstrap = options.repo.join("bench/node/lambda-bootstrap.mjs");
    let mut starts = Starts { lambda, armed: &armed, answers: &mut answers, runs: options.cold_runs(), rss_mb: Vec::new() };
    let rust_ms = starts.measure(progress, "mcp Lambda", binary(&options.target_dir, "mcp"), &[]).await;
    let rust_rss_mb = std::mem::take(&mut starts.rss_mb);
    let node_ms = starts.measure(progress, "Node.js on the TS SDK", Ok(PathBuf::from("node")), &[node_bootstrap]).await;
    Ok(ColdStarts { rust_ms, node_ms, rust_rss_mb, node_rss_mb: starts.rss_mb })
}

/// The cold-start runs of one Lambda program after another, under the same Runtime API.
struct Starts<'a> {
    lambda: LambdaEnv<'a>,
    armed: &'a std::sync::atomic::AtomicBool,
    answers: &'a mut tokio::sync::mpsc::UnboundedReceiver<(Instant, u16, String)>,
    runs: usize,
    rss_mb: Vec<f64>,
}

impl Starts<'_> {
    async fn measure(&mut self, progress: &mut Progress, name: &str, program: Result<PathBuf, String>, args: &[PathBuf]) -> Result<Vec<f64>, String> {
        let what = format!("cold start, {name}");
        progress.start(&format!("{what}, {} starts", self.runs));
        // An answer left over from a process of the other program would be taken for this one's.
        while self.answers.try_recv().is_ok() {}
        let result = match program {
            Ok(program) => self.run(&program, args).await,
            Err(e) => Err(e),
        };
        let summary = match &result {
            Ok(ms) => format!("median {:.1} ms", median(ms)),
            Err(e) => format!("FAILED: {e}"),
        };
        progress.end(&what, &summary);
        result
    }

    /// `runs` measured starts of one Lambda program, after one unmeasured start that creates
    /// the data directory and warms the page cache.
    async fn run(&mut self, program: &Path, args: &[PathBuf]) -> Result<Vec<f64>, String> {
        let lambda = &self.lambda;
        let mut times = Vec::new();
        for run in 0..=self.runs {
            let mut command = Command::new(program);
            // As on Lambda, the process sees the function's variables only: none of the
            // harness's own (this machine's SSL_CERT_DIR, for one, would make it read every file
            // of the certificate directory, which a Lambda does not).
            command
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .args(args)
                .env("AWS_LAMBDA_RUNTIME_API", lambda.runtime)
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
                .env("SQUAREMCP_DATA_DIR", lambda.data)
                .env("SQUAREMCP_ADMIN_KEY", ADMIN_KEY)
                .env("SQUAREMCP_JWT_SECRET", "bench-jwt-secret-0123456789abcdefghijklmnop")
                .env("SQUAREMCP_LOG", "warn")
                .env("SQUAREMCP_TELEGRAM_BASE_URL", lambda.upstream)
                .env("TOOLS_FILE", lambda.tools_file)
                .env("UPSTREAM_URL", lambda.upstream)
                .env("BOT_TOKEN", BOT_TOKEN)
                .env("API_KEY", ADMIN_KEY)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true);
            let mut retried = false;
            let (started, (answered, status, body)) = loop {
                self.armed.store(true, Ordering::SeqCst);
                let started = Instant::now();
                let mut child = command.spawn().map_err(|e| format!("cannot start {}: {e}", program.display()))?;
                let answer = tokio::time::timeout(Duration::from_secs(10), self.answers.recv()).await;
                // A process asks for its next event as soon as it has answered. Killed, waited
                // for, and given a moment for that request to be taken: armed sooner, the next
                // start's event could go to this dead process.
                if let Some(peak) = child.id().and_then(procs::peak_rss_mb) {
                    self.rss_mb.push(peak);
                }
                let _ = child.kill().await;
                tokio::time::sleep(Duration::from_millis(20)).await;
                match answer {
                    Ok(answer) => break (started, answer.ok_or("the runtime API stopped")?),
                    // Its event may have gone to the previous process all the same: once more.
                    Err(_) if !retried => retried = true,
                    Err(_) => return Err("a Lambda process did not answer within 10 s, twice".into()),
                }
            };
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
        Ok(times)
    }
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
/// reservation before the call plus that write (plans with a hard limit). As under load in
/// `serve`: [`METERING_CALLERS`] callers at once, each writing its calls' records one after the
/// other; the figure is this process's CPU time per record, the store's writer thread included
/// (a record waits up to 5 ms for others to share its commit, so its latency is no measure of
/// its cost; the harness does nothing else meanwhile).
struct MeteringCost {
    record_us: f64,
    reserve_and_record_us: f64,
}

/// Concurrent callers in the metering figure: the 16-connection load's calls in flight.
const METERING_CALLERS: u64 = 16;

async fn metering_cost(options: &Options, scratch: &Path) -> Result<MeteringCost, String> {
    use squaremcp_core::{CallRecord, Customer, CustomerId, Email, Platform, PlanName, Store, Timestamp};
    let store = std::sync::Arc::new(squaremcp_embedded::SqliteStore::open(&scratch.join("metering/squaremcp.db")).map_err(|e| e.to_string())?);
    let now = Timestamp::from_unix(1_800_000_000);
    let customer = Customer {
        id: CustomerId::generate(),
        email: Email::parse("meter@example.com").map_err(|e| e.to_string())?,
        plan: PlanName::parse("pro").map_err(|e| e.to_string())?,
        password_hash: None,
        created_at: now,
    };
    store.insert_customer(&customer).await.map_err(|e| e.to_string())?;
    let record = move |customer_id: &CustomerId, i: u64| CallRecord {
        id: CallRecord::new_id(now.plus_seconds(i as i64)),
        customer_id: customer_id.clone(),
        at: now,
        tool: "telegram_send_message".into(),
        platform: Platform::Telegram,
        auth_method: "api_key".into(),
        client: Some("bench".into()),
        duration_ms: 1,
        upstream_requests: 1,
        outcome: "ok".into(),
        counted: true,
        arguments: json!({"chat_id": 42, "text": "[redacted]"}),
        expires_at: now.plus_seconds(86_400),
        calls: 1,
    };
    // Enough CPU time to read from /proc (10 ms ticks) even in a smoke run.
    let per_caller: u64 = if options.mode == Mode::Smoke { 200 } else { 500 };
    let n = per_caller * METERING_CALLERS;
    // Each caller's records, one after the other; `reserve` adds the hard-limit reservation.
    let run = |offset: u64, reserve: bool| {
        let mut callers = tokio::task::JoinSet::new();
        for caller in 0..METERING_CALLERS {
            let (store, customer_id) = (store.clone(), customer.id.clone());
            callers.spawn(async move {
                for i in 0..per_caller {
                    let id = offset + caller * per_caller + i;
                    if reserve {
                        store.add_to_counter("usage#bench-limited", 1, Some(u64::MAX / 2)).await.map_err(|e| e.to_string())?;
                        store.record_call(&record(&customer_id, id), None).await.map_err(|e| e.to_string())?;
                    } else {
                        store.record_call(&record(&customer_id, id), Some(("usage#bench", 1))).await.map_err(|e| e.to_string())?;
                    }
                }
                Ok::<(), String>(())
            });
        }
        async move {
            let before = CpuTimes::of_this_process().map(|t| t.own_ms);
            while let Some(joined) = callers.join_next().await {
                joined.map_err(|e| e.to_string())??;
            }
            let after = CpuTimes::of_this_process().map(|t| t.own_ms);
            cpu_us_per_request(before, after, n).ok_or_else(|| "no CPU time readable in /proc".to_owned())
        }
    };
    let record_us = run(0, false).await?;
    let reserve_and_record_us = run(n, true).await?;
    Ok(MeteringCost { record_us, reserve_and_record_us })
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// A target's figure and verdict (`None`: a figure it needs is missing), and the troubles of the
/// figures it was computed from.
struct Judged {
    name: String,
    value: Option<f64>,
    goal: &'static str,
    met: Option<bool>,
    affected: Vec<String>,
}

/// `label: trouble` for each figure that has one.
fn troubles(figures: impl IntoIterator<Item = (String, Option<String>)>) -> Vec<String> {
    figures.into_iter().filter_map(|(label, trouble)| Some(format!("{label}: {}", trouble?))).collect()
}

fn no_figure<T>(result: &Result<T, String>) -> Option<String> {
    result.as_ref().err().map(|e| format!("no figure: {e}"))
}

/// Prints the figures, targets and verdict, writes the JSON, and returns why the run fails.
fn report(
    options: &Options,
    loads: &Loads,
    rss_mb: Option<f64>,
    cold: &ColdStarts,
    sizes: &[(String, f64)],
    metering: Option<&Result<MeteringCost, String>>,
) -> Result<Vec<String>, String> {
    let Loads { rows, upstream, paced, rss_load } = loads;
    let rate = options.moderate_rate();
    let find = |server: &str, scenario: &str, c: u32| rows.iter().find(|r| r.server == server && r.scenario == scenario && r.connections == c);
    let figure_troubles = |figures: &[Option<&Figure>]| troubles(figures.iter().flatten().map(|f| (f.label(), f.trouble())));

    println!(
        "\n{:<11} {:<11} {:>5} {:>10} {:>9} {:>9} {:>9}  {:<34} errors",
        "server", "request", "conns", "req/s", "p50 ms", "p90 ms", "p99 ms", "CPU per request (server, wrk, harness)"
    );
    for r in rows.iter().chain([upstream]) {
        match &r.outcome {
            Ok(l) => println!(
                "{:<11} {:<11} {:>5} {:>10.0} {:>9.3} {:>9.3} {:>9.3}  {:<34} {}",
                r.server,
                r.scenario,
                r.connections,
                l.requests_per_second,
                l.p50_ms,
                l.p90_ms,
                l.p99_ms,
                r.cpu.describe(),
                l.errors.describe()
            ),
            Err(e) => println!("{:<11} {:<11} {:>5}  no figure: {e}", r.server, r.scenario, r.connections),
        }
    }
    println!("\n{:<22} {:>8} {:>9} {:>9} {:>9} {:>14}  errors", "at a fixed rate", "req/s", "p50 ms", "p99 ms", "max ms", "CPU us/req");
    for p in paced {
        match &p.outcome {
            Ok(l) => {
                let errors = if l.failures() > 0 { format!("non-2xx {}, errors or timeouts {}", l.non_2xx, l.errors) } else { String::new() };
                let cpu = p.cpu_us.map_or("-".to_owned(), |us| format!("{us:.0}"));
                println!("{:<22} {:>8} {:>9.3} {:>9.3} {:>9.3} {cpu:>14}  {errors}", p.name, rate, l.p50_ms, l.p99_ms, l.max_ms);
            }
            Err(e) => println!("{:<22} {:>8}  no figure: {e}", p.name, rate),
        }
    }

    let mut targets = Vec::new();
    let mut check = |name: String, value: Option<f64>, goal: &'static str, meets: fn(f64) -> bool, affected: Vec<String>| {
        targets.push(Judged { met: value.map(meets), name, value, goal, affected });
    };
    for c in options.connections() {
        let bare = find("bare-axum", "fixed body", c);
        for scenario in ["tools/list", "tools/call"] {
            let (ours, ts) = (find("squaremcp", scenario, c), find("ts-sdk", scenario, c));
            let ratio = |other: Option<&Figure>| Some(ours?.load()?.requests_per_second / other?.load()?.requests_per_second);
            check(format!("{scenario} req/s vs TypeScript SDK, {c} conns (x)"), ratio(ts), ">= 10", |v| v >= 10.0, figure_troubles(&[ours, ts]));
            check(format!("{scenario} req/s vs bare axum, {c} conns (share)"), ratio(bare), ">= 0.5", |v| v >= 0.5, figure_troubles(&[ours, bare]));
        }
    }
    let [direct, through] = paced;
    let overhead = match (&direct.outcome, &through.outcome) {
        (Ok(direct), Ok(through)) => Some(through.p99_ms - direct.p99_ms),
        _ => None,
    };
    let paced_troubles = troubles(paced.iter().map(|p| (p.label(), p.trouble())));
    check(format!("tools/call p99 overhead over upstream at {rate} req/s (ms)"), overhead, "<= 1", |v| v <= 1.0, paced_troubles);
    let (rust, node) = (cold.rust_ms.as_ref().ok().map(|ms| median(ms)), cold.node_ms.as_ref().ok().map(|ms| median(ms)));
    let rust_trouble = ("cold start, mcp Lambda".to_owned(), no_figure(&cold.rust_ms));
    let node_trouble = ("cold start, Node.js".to_owned(), no_figure(&cold.node_ms));
    check("cold start, mcp Lambda, median (ms)".into(), rust, "<= 10", |v| v <= 10.0, troubles([rust_trouble.clone()]));
    let node_over_rust = rust.zip(node).map(|(rust, node)| node / rust);
    check("cold start, Node.js on the TS SDK / mcp Lambda (x)".into(), node_over_rust, ">= 5", |v| v >= 5.0, troubles([rust_trouble, node_trouble]));
    if let Some(load) = rss_load {
        check("squaremcp serve peak RSS, 100 concurrent clients (MB)".into(), rss_mb, "<= 40", |v| v <= 40.0, figure_troubles(&[Some(load)]));
    }
    // The size target is on the arm64 zips; a host binary's size is shown, not judged.
    let (zips, binaries) = if options.zip_dir.is_some() { (sizes, &[][..]) } else { (&[][..], sizes) };
    for (name, size) in zips {
        check(format!("size: {name} (MB)"), Some(*size), "<= 6", |v| v <= 6.0, Vec::new());
    }
    if let Some(round_trips) = options.round_trips {
        check("DynamoDB requests per warm authenticated tools/call".into(), Some(f64::from(round_trips)), "<= 3", |v| v <= 3.0, Vec::new());
    }
    println!();
    for t in &targets {
        let value = t.value.map_or("-".to_owned(), |v| format!("{v:.2}"));
        let verdict = match t.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not measured",
        };
        let affected = if t.affected.is_empty() { String::new() } else { format!("  (affected: {})", t.affected.join("; ")) };
        println!("{:<58} {value:>10}  target {:<8} {verdict}{affected}", t.name, t.goal);
    }
    for (name, size) in binaries {
        println!("size: {name}: {size:.2} MB (the target, <= 6 MB, is on the zips: bench/run --zips)");
    }
    if let Some(Ok(metering)) = metering {
        println!(
            "\nmetering + call log on the embedded store, CPU per tools/call ({METERING_CALLERS} callers at once): {:.1} us (record with its counter), {:.1} us (reservation + record, hard-limit plans)",
            metering.record_us, metering.reserve_and_record_us
        );
    }
    let listed = |ms: &Result<Vec<f64>, String>| ms.as_ref().map_or_else(|e| format!("none: {e}"), |ms| format!("{:?}", rounded(ms)));
    println!("\ncold starts (ms): mcp {}\n                  node {}", listed(&cold.rust_ms), listed(&cold.node_ms));
    println!("peak RSS after the first answer (MB, median): mcp {:.1}, node {:.1}", median(&cold.rust_rss_mb), median(&cold.node_rss_mb));

    let affected_figures: Vec<String> = troubles(
        rows.iter()
            .chain([upstream])
            .chain(rss_load)
            .map(|f| (f.label(), f.trouble()))
            .chain(paced.iter().map(|p| (p.label(), p.trouble())))
            .chain([("cold start, mcp Lambda".to_owned(), no_figure(&cold.rust_ms)), ("cold start, Node.js".to_owned(), no_figure(&cold.node_ms))])
            .chain(metering.map(|m| ("metering".to_owned(), no_figure(m)))),
    );
    if !affected_figures.is_empty() {
        println!("\naffected figures (req/s counts error answers; latencies leave out the requests that failed or timed out):");
        for figure in &affected_figures {
            println!("  {figure}");
        }
    }

    let failures = failures(loads, cold, metering, &targets, options.judged());
    let unmeasured: Vec<&str> = targets.iter().filter(|t| t.met.is_none()).map(|t| t.name.as_str()).collect();
    if !unmeasured.is_empty() {
        println!("\nnot measured (a figure they need is missing; see above): {}", unmeasured.join("; "));
    }
    let missed = if options.judged() { targets.iter().filter(|t| t.met == Some(false)).count() } else { 0 };
    let ours = failures.len() - missed;
    let verdict = match (failures.is_empty(), options.judged()) {
        (true, true) => "every target met, no errors from SquareMCP".to_owned(),
        (true, false) => "no errors from SquareMCP; targets not judged on a smoke run (debug build)".to_owned(),
        (false, _) => format!("FAILED: {ours} SquareMCP error(s), {missed} target(s) missed (listed on stderr)"),
    };
    println!("\nresult: {verdict}");

    let results = json!({
        "mode": options.name(),
        "seconds_per_figure": options.seconds(),
        "wrk_timeout_s": wrk::TIMEOUT_SECONDS,
        "machine": {"cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), "os": std::env::consts::OS, "arch": std::env::consts::ARCH},
        "throughput": rows.iter().map(Figure::json).collect::<Vec<_>>(),
        "upstream": upstream.json(),
        "fixed_rate": paced.iter().map(|p| {
            let l = p.outcome.as_ref().ok();
            json!({
                "target": p.name, "requests_per_second": rate,
                "p50_ms": l.map(|l| l.p50_ms), "p99_ms": l.map(|l| l.p99_ms), "max_ms": l.map(|l| l.max_ms),
                "answered": l.map(|l| l.answered), "non_2xx": l.map(|l| l.non_2xx), "errors": l.map(|l| l.errors),
                "cpu_us_per_request": p.cpu_us,
                "affected": p.trouble().is_some(), "failed": p.outcome.as_ref().err(),
            })
        }).collect::<Vec<_>>(),
        "cold_start_ms": {
            "mcp": cold.rust_ms.as_ref().ok(), "node_ts_sdk": cold.node_ms.as_ref().ok(),
            "failed": {"mcp": cold.rust_ms.as_ref().err(), "node_ts_sdk": cold.node_ms.as_ref().err()},
            "peak_rss_mb": {"mcp": rounded(&cold.rust_rss_mb), "node_ts_sdk": rounded(&cold.node_rss_mb)},
        },
        "peak_rss_mb": rss_mb,
        "peak_rss_load": rss_load.as_ref().map(Figure::json),
        "sizes_mb": sizes.iter().map(|(n, s)| json!({"name": n, "mb": s})).collect::<Vec<_>>(),
        "metering_us": metering.and_then(|m| m.as_ref().ok()).map(|m| json!({"record_with_counter": m.record_us, "reservation_and_record": m.reserve_and_record_us})),
        "dynamodb_requests_per_warm_tools_call": options.round_trips,
        "targets": targets.iter().map(|t| json!({
            "name": t.name, "value": t.value, "target": t.goal, "met": t.met, "affected_by": t.affected,
        })).collect::<Vec<_>>(),
        "targets_judged": options.judged(),
        "affected_figures": affected_figures,
        "failures": failures,
        "passed": failures.is_empty(),
    });
    if let Some(dir) = options.out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    std::fs::write(&options.out, format!("{results:#}\n")).map_err(|e| e.to_string())?;
    println!("results written to {}", options.out.display());
    Ok(failures)
}

/// Why the run fails: SquareMCP's own errors (in its figures, its fixed-rate run, its cold start,
/// its store), then the missed targets if they are judged. A baseline's errors only mark its
/// figures and the targets computed from them: the TypeScript server timing out under 64
/// connections says nothing wrong about SquareMCP.
fn failures(loads: &Loads, cold: &ColdStarts, metering: Option<&Result<MeteringCost, String>>, targets: &[Judged], judged: bool) -> Vec<String> {
    let Loads { rows, paced: [_, through], rss_load, .. } = loads;
    let ours = rows
        .iter()
        .chain(rss_load)
        .filter(|f| f.server == "squaremcp")
        .map(|f| (f.label(), f.trouble()))
        .chain([(through.label(), through.trouble()), ("cold start, mcp Lambda".to_owned(), no_figure(&cold.rust_ms))])
        .chain(metering.map(|m| ("metering on the embedded store".to_owned(), no_figure(m))));
    let mut failures: Vec<String> = troubles(ours).into_iter().map(|e| format!("SquareMCP answered errors or gave no figure: {e}")).collect();
    if judged {
        let missed = targets.iter().filter(|t| t.met == Some(false));
        failures.extend(missed.map(|t| format!("target missed: {} = {:.2}, target {}", t.name, t.value.unwrap_or(f64::NAN), t.goal)));
    }
    failures
}

fn rounded(values: &[f64]) -> Vec<f64> {
    values.iter().map(|v| (v * 10.0).round() / 10.0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(server: &'static str, wrk_output: &str) -> Figure {
        Figure { server, scenario: "tools/call", connections: 64, outcome: wrk::parse(wrk_output), cpu: CpuPerRequest::default() }
    }

    const CLEAN: &str = "  Latency Distribution\n     50%    6.77ms\n     75%    8.00ms\n     90%    9.86ms\n     99%   15.72ms\n  91470 requests in 10.00s, 40.1MB read\nRequests/sec:   9147.00\nTransfer/sec:      4.01MB\n";

    fn loads(rows: Vec<Figure>) -> Loads {
        let paced = |name| Paced {
            name,
            rate: 1_000,
            outcome: Ok(open_loop::Latencies { rate: 1_000, p50_ms: 0.4, p99_ms: 1.1, max_ms: 5.9, answered: 10_000, non_2xx: 0, errors: 0 }),
            cpu_us: None,
        };
        Loads { rows, upstream: figure("upstream", CLEAN), paced: [paced("upstream (direct)"), paced("squaremcp tools/call")], rss_load: None }
    }

    /// The parsed `wrk` output with socket errors and timeouts: an affected figure, and a run that
    /// goes on and passes when the errors are the baseline's.
    #[test]
    fn a_baselines_socket_errors_mark_its_figure_and_do_not_fail_the_run() {
        let cold = ColdStarts { rust_ms: Ok(vec![10.0]), node_ms: Ok(vec![240.0]), rust_rss_mb: vec![], node_rss_mb: vec![] };
        let baseline = figure("ts-sdk", wrk::SAMPLE_WITH_ERRORS);
        assert_eq!(baseline.trouble().as_deref(), Some("timeout 4, non-2xx 17"));
        assert_eq!(baseline.json()["affected"], json!(true));
        assert_eq!(baseline.json()["errors"]["timeout"], json!(4));
        assert!(failures(&loads(vec![figure("squaremcp", CLEAN), baseline]), &cold, None, &[], true).is_empty());

        let ours = failures(&loads(vec![figure("squaremcp", wrk::SAMPLE_WITH_ERRORS)]), &cold, None, &[], true);
        assert_eq!(ours, ["SquareMCP answered errors or gave no figure: squaremcp tools/call, 64 conns: timeout 4, non-2xx 17"]);
    }

    #[test]
    fn a_figure_shows_and_keeps_the_cpu_it_read() {
        let cpu = CpuPerRequest { server_us: Some(251.4), wrk_us: Some(40.2), harness_us: Some(29.6) };
        assert_eq!(cpu.describe(), "251 us/req (wrk 40, harness 30)");
        assert_eq!(CpuPerRequest { server_us: Some(90.0), wrk_us: Some(35.0), harness_us: None }.describe(), "90 us/req (wrk 35)");
        assert_eq!(CpuPerRequest::default().describe(), "");
        let measured = Figure { cpu, ..figure("squaremcp", CLEAN) };
        assert_eq!(measured.json()["cpu_us_per_request"], json!({"server": 251.4, "wrk": 40.2, "harness": 29.6}));
        assert!(measured.summary().ends_with("p99 15.720 ms, CPU 251 us/req (wrk 40, harness 30)"), "{}", measured.summary());
        assert!(!figure("squaremcp", CLEAN).summary().contains("CPU"));
    }

    #[test]
    fn missed_targets_fail_only_judged_runs() {
        let cold = ColdStarts { rust_ms: Ok(vec![10.0]), node_ms: Err("node: not found".into()), rust_rss_mb: vec![], node_rss_mb: vec![] };
        let missed = Judged { name: "tools/call req/s vs TypeScript SDK, 16 conns (x)".into(), value: Some(7.6), goal: ">= 10", met: Some(false), affected: Vec::new() };
        let loads = loads(vec![figure("squaremcp", CLEAN)]);
        assert_eq!(failures(&loads, &cold, None, std::slice::from_ref(&missed), true), ["target missed: tools/call req/s vs TypeScript SDK, 16 conns (x) = 7.60, target >= 10"]);
        assert!(failures(&loads, &cold, None, &[missed], false).is_empty());
    }
}
