//! Load from Debian's `wrk` (one thread, so the server keeps the other core), with a Lua script
//! that posts a fixed JSON-RPC body. Its output is parsed into figures; socket errors, timeouts
//! and error answers are part of the figure, not a failure of the run (the caller decides whose
//! errors fail it).

use std::time::Duration;

use tokio::process::Command;

/// `wrk`'s per-request timeout. Its default (2 s) is below the TypeScript server's p99 at 64
/// connections on a 2-core machine (1.5–2.4 s), so a few of its requests counted as timeouts.
pub const TIMEOUT_SECONDS: u32 = 10;

#[derive(Clone, Debug)]
pub struct Load {
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub requests: u64,
    pub errors: Errors,
}

/// What `wrk` counted besides answers: its `Socket errors` line and `Non-2xx or 3xx responses`.
/// Timed-out requests are missing from the latencies, and error answers are in req/s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Errors {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    pub timeout: u64,
    pub non_2xx: u64,
}

impl Errors {
    pub fn any(&self) -> bool {
        *self != Self::default()
    }

    /// `timeout 4, non-2xx 12`: only the counts that are not zero.
    pub fn describe(&self) -> String {
        let counts = [
            ("connect", self.connect),
            ("read", self.read),
            ("write", self.write),
            ("timeout", self.timeout),
            ("non-2xx", self.non_2xx),
        ];
        counts.iter().filter(|(_, n)| *n > 0).map(|(name, n)| format!("{name} {n}")).collect::<Vec<_>>().join(", ")
    }
}

pub struct Request<'a> {
    pub url: &'a str,
    pub body: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
}

/// One `wrk` run. An error here means there is no figure at all (wrk did not run, hung, or no
/// request completed); errors during the run are in `Load::errors`.
pub async fn run(request: &Request<'_>, connections: u32, seconds: u32, script: &std::path::Path) -> Result<Load, String> {
    let mut command = Command::new("wrk");
    command
        .args(["-t1", &format!("-c{connections}"), &format!("-d{seconds}s"), &format!("--timeout={TIMEOUT_SECONDS}s"), "--latency", "-s"])
        .arg(script)
        .env("WRK_BODY", request.body)
        .kill_on_drop(true);
    for (name, value) in request.headers {
        command.args(["-H", &format!("{name}: {value}")]);
    }
    command.arg(request.url);
    // wrk stops at its duration whatever the server does; the margin only guards against a wrk
    // that never exits, so that the run still finishes.
    let limit = Duration::from_secs(u64::from(seconds + TIMEOUT_SECONDS + 30));
    let out = tokio::time::timeout(limit, command.output())
        .await
        .map_err(|_| format!("wrk did not finish within {} s", limit.as_secs()))?
        .map_err(|e| format!("cannot run wrk: {e} (install it: apt-get install wrk)"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!("wrk failed: {}{}", text.trim(), String::from_utf8_lossy(&out.stderr).trim()));
    }
    parse(&text)
}

pub fn parse(text: &str) -> Result<Load, String> {
    let line_after = |prefix: &str| text.lines().find_map(|l| l.trim().strip_prefix(prefix)).map(str::trim);
    let mut errors = Errors { non_2xx: line_after("Non-2xx or 3xx responses:").and_then(|n| n.parse().ok()).unwrap_or(0), ..Errors::default() };
    // `Socket errors: connect 0, read 0, write 0, timeout 4`
    if let Some(counts) = line_after("Socket errors:") {
        for (name, count) in counts.split(',').filter_map(|c| c.trim().split_once(' ')) {
            let count = count.trim().parse().map_err(|_| format!("unreadable Socket errors line: {counts}"))?;
            match name {
                "connect" => errors.connect = count,
                "read" => errors.read = count,
                "write" => errors.write = count,
                "timeout" => errors.timeout = count,
                _ => {}
            }
        }
    }
    let requests_per_second =
        line_after("Requests/sec:").and_then(|v| v.parse().ok()).ok_or_else(|| format!("no Requests/sec in wrk's output: {text}"))?;
    let requests = text
        .lines()
        .find_map(|l| l.split_once(" requests in ").map(|(n, _)| n.trim().parse().ok()))
        .flatten()
        .unwrap_or(0);
    if requests == 0 {
        let errors = if errors.any() { format!(" ({})", errors.describe()) } else { String::new() };
        return Err(format!("no request completed{errors}"));
    }
    let field = |prefix: &str| line_after(prefix).and_then(duration_ms).ok_or(format!("no {prefix} latency in wrk's output: {text}"));
    Ok(Load { requests_per_second, p50_ms: field("50%")?, p90_ms: field("90%")?, p99_ms: field("99%")?, requests, errors })
}

/// `412.00us`, `1.23ms`, `2.00s`, `1.02m` → milliseconds.
fn duration_ms(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

pub const SCRIPT: &str = r#"wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
"#;

/// What wrk 4.1 prints when a server falls behind (here the TypeScript one at 64 connections on a
/// 2-core machine): requests past `--timeout`, and answers outside 2xx.
#[cfg(test)]
pub const SAMPLE_WITH_ERRORS: &str = "\
Running 10s test @ http://127.0.0.1:41235/mcp
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    71.24ms  236.51ms   1.98s    96.71%
    Req/Sec     1.27k   301.18     1.71k    74.00%
  Latency Distribution
     50%   47.74ms
     75%   51.02ms
     90%   57.55ms
     99%    1.52s
  12593 requests in 10.01s, 6.98MB read
  Socket errors: connect 0, read 0, write 0, timeout 4
  Non-2xx or 3xx responses: 17
Requests/sec:   1258.36
Transfer/sec:    714.02KB
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_output() {
        let sample = "Running 1s test @ http://127.0.0.1:1/mcp\n  1 threads and 4 connections\n  Latency Distribution\n     50%  412.00us\n     75%  500.00us\n     90%    1.20ms\n     99%    2.50ms\n  12345 requests in 1.00s, 1.00MB read\nRequests/sec:  12345.67\nTransfer/sec:      1.00MB\n";
        let load = parse(sample).expect("parses");
        assert!((load.p50_ms - 0.412).abs() < 1e-9);
        assert!((load.p99_ms - 2.5).abs() < 1e-9);
        assert_eq!(load.requests, 12345);
        assert!((load.requests_per_second - 12345.67).abs() < 1e-9);
        assert!(!load.errors.any());
    }

    /// A run with socket errors and error answers is a figure with its errors, not a failure.
    #[test]
    fn socket_errors_and_error_answers_mark_the_figure() {
        let sample = SAMPLE_WITH_ERRORS;
        let load = parse(sample).expect("a figure, not a failure");
        assert!((load.requests_per_second - 1258.36).abs() < 1e-9);
        assert_eq!(load.requests, 12593);
        assert!((load.p50_ms - 47.74).abs() < 1e-9);
        assert!((load.p90_ms - 57.55).abs() < 1e-9);
        assert!((load.p99_ms - 1520.0).abs() < 1e-9);
        assert_eq!(load.errors, Errors { connect: 0, read: 0, write: 0, timeout: 4, non_2xx: 17 });
        assert!(load.errors.any());
        assert_eq!(load.errors.describe(), "timeout 4, non-2xx 17");
    }

    #[test]
    fn connect_and_read_errors_are_counted() {
        let sample = "  Latency Distribution\n     50%    6.05ms\n     75%    8.00ms\n     90%   10.13ms\n     99%   17.09ms\n  22440 requests in 10.00s, 9.87MB read\n  Socket errors: connect 3, read 12, write 1, timeout 0\nRequests/sec:   2244.00\nTransfer/sec:      0.99MB\n";
        let load = parse(sample).expect("parses");
        assert_eq!(load.errors, Errors { connect: 3, read: 12, write: 1, timeout: 0, non_2xx: 0 });
        assert_eq!(load.errors.describe(), "connect 3, read 12, write 1");
    }

    #[test]
    fn no_completed_request_is_no_figure() {
        let sample = "  Latency Distribution\n     50%    0.00us\n     75%    0.00us\n     90%    0.00us\n     99%    0.00us\n  0 requests in 10.00s, 0.00B read\n  Socket errors: connect 64, read 0, write 0, timeout 0\nRequests/sec:      0.00\nTransfer/sec:       0.00B\n";
        let error = parse(sample).expect_err("nothing to report");
        assert!(error.contains("connect 64"), "{error}");
        assert!(parse("Running 1s test\n").is_err());
    }
}
