//! Latency at a fixed request rate ("moderate load"). `wrk` keeps N requests in flight and
//! sends the next as soon as one returns, so its latencies at saturation are mostly queueing.
//! Here requests leave on a schedule whatever the answers do (a millisecond timer: each tick
//! sends the requests due by then), so a server stall delays every request sent during it and
//! shows in full. A latency runs from the moment its request is handed to the client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

pub struct Latencies {
    pub rate: u32,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub failures: usize,
}

pub struct Target<'a> {
    pub url: &'a str,
    pub body: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
}

/// `rate` requests a second for `seconds`, after one unmeasured second that opens the connections.
pub async fn run(target: &Target<'_>, rate: u32, seconds: u32) -> Result<Latencies, String> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build().map_err(|e| e.to_string())?;
    let mut request = client.post(target.url).header("content-type", "application/json").header("accept", "application/json");
    for (name, value) in target.headers {
        request = request.header(*name, *value);
    }
    let request = Arc::new(request.body(target.body.to_owned()).build().map_err(|e| e.to_string())?);
    let _ = paced(&client, &request, rate, 1).await;
    let (mut latencies, failures) = paced(&client, &request, rate, seconds).await;
    if latencies.is_empty() {
        return Err(format!("no request to {} succeeded", target.url));
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Ok(Latencies { rate, p50_ms: at(0.50), p99_ms: at(0.99), max_ms: at(1.0), failures })
}

async fn paced(client: &reqwest::Client, request: &Arc<reqwest::Request>, rate: u32, seconds: u32) -> (Vec<f64>, usize) {
    let total = u64::from(rate) * u64::from(seconds);
    let (done, mut results) = mpsc::unbounded_channel::<Option<f64>>();
    let started = Instant::now();
    let mut sent = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    while sent < total {
        tick.tick().await;
        // Request k is due at k / rate: at time t, requests 0..=floor(t * rate) are due.
        let due_by_now = ((started.elapsed().as_secs_f64() * f64::from(rate)) as u64 + 1).min(total);
        while sent < due_by_now {
            let (client, done) = (client.clone(), done.clone());
            let request = request.try_clone();
            tokio::spawn(async move {
                let sent_at = Instant::now();
                let outcome = match request {
                    Some(request) => match client.execute(request).await {
                        Ok(response) if response.status().is_success() => response.bytes().await.ok().map(|_| ()),
                        _ => None,
                    },
                    None => None,
                };
                let _ = done.send(outcome.map(|()| sent_at.elapsed().as_secs_f64() * 1000.0));
            });
            sent += 1;
        }
    }
    drop(done);
    let (mut latencies, mut failures) = (Vec::with_capacity(total as usize), 0);
    while let Some(result) = results.recv().await {
        match result {
            Some(ms) => latencies.push(ms),
            None => failures += 1,
        }
    }
    (latencies, failures)
}
