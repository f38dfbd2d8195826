//! Load from Debian's `wrk` (one thread, so the server keeps the other core), with a Lua script
//! that posts a fixed JSON-RPC body. Its output is parsed into figures.

use tokio::process::Command;

#[derive(Clone, Debug)]
pub struct Load {
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub requests: u64,
}

pub struct Request<'a> {
    pub url: &'a str,
    pub body: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
}

pub async fn run(request: &Request<'_>, connections: u32, seconds: u32, script: &std::path::Path) -> Result<Load, String> {
    let mut command = Command::new("wrk");
    command
        .args(["-t1", &format!("-c{connections}"), &format!("-d{seconds}s"), "--latency", "-s"])
        .arg(script)
        .env("WRK_BODY", request.body);
    for (name, value) in request.headers {
        command.args(["-H", &format!("{name}: {value}")]);
    }
    command.arg(request.url);
    let out = command.output().await.map_err(|e| format!("cannot run wrk: {e} (install it: apt-get install wrk)"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr)));
    }
    parse(&text)
}

fn parse(text: &str) -> Result<Load, String> {
    if let Some(line) = text.lines().find(|l| l.contains("Non-2xx or 3xx responses")) {
        return Err(format!("the server answered errors under load: {}", line.trim()));
    }
    if let Some(line) = text.lines().find(|l| l.contains("Socket errors")) {
        return Err(format!("socket errors under load: {}", line.trim()));
    }
    let field = |prefix: &str| -> Option<f64> {
        text.lines().find_map(|l| l.trim().strip_prefix(prefix)).and_then(|rest| duration_ms(rest.trim()))
    };
    let requests_per_second = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no Requests/sec in wrk's output: {text}"))?;
    let requests = text
        .lines()
        .find_map(|l| l.split_once(" requests in ").map(|(n, _)| n.trim().parse().ok()))
        .flatten()
        .unwrap_or(0);
    Ok(Load {
        requests_per_second,
        p50_ms: field("50%").ok_or("no p50")?,
        p90_ms: field("90%").ok_or("no p90")?,
        p99_ms: field("99%").ok_or("no p99")?,
        requests,
    })
}

/// `412.00us`, `1.23ms`, `2.00s` → milliseconds.
fn duration_ms(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
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
        assert!(parse("  Non-2xx or 3xx responses: 5\nRequests/sec: 1\n").is_err());
    }
}
