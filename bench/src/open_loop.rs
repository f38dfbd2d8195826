//! Latency at a fixed request rate ("moderate load"). `wrk` keeps N requests in flight and
//! sends the next as soon as one returns, so its latencies at saturation are mostly queueing.
//! Here requests leave on a schedule whatever the answers do (a millisecond timer: each tick
//! sends the requests due by then), so a server stall delays every request sent during it and
//! shows in full. A latency runs from the moment its request is handed to the client. A request
//! that fails or times out is counted, not timed, and the run goes on.
//!
//! The overhead target compares two such runs, straight to the upstream and through the gateway.
//! On a shared 2-vCPU machine the upstream's own p99 moved between 0.4 and 5 ms from one 5 s run
//! to the next, more than the target, so the two are measured alternately, in half-second
//! slices, over the same seconds: whatever the machine does meets both alike.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

pub struct Latencies {
    pub rate: u32,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Answers timed (the measured seconds only).
    pub answered: usize,
    /// Answers with a status outside 2xx.
    pub non_2xx: usize,
    /// No answer: connection errors, and requests still unanswered after `TIMEOUT`.
    pub errors: usize,
}

impl Latencies {
    pub fn failures(&self) -> usize {
        self.non_2xx + self.errors
    }
}

/// As `wrk`'s: long enough for any server here to answer, short enough that a run finishes.
const TIMEOUT: Duration = Duration::from_secs(crate::wrk::TIMEOUT_SECONDS as u64);

enum Outcome {
    Answered(f64),
    Non2xx,
    Error,
}

pub struct Target<'a> {
    pub url: &'a str,
    pub body: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
}

/// How long each target of [`run_alternating`] has the schedule before the other takes it.
const SLICE: Duration = Duration::from_millis(500);

/// `rate` requests a second for `seconds`, after one unmeasured second that opens the connections.
pub async fn run(target: &Target<'_>, rate: u32, seconds: u32) -> Result<Latencies, String> {
    let client = client()?;
    let request = request(&client, target)?;
    let _ = paced(&client, &request, rate, Duration::from_secs(1)).await;
    let mut answers = Answers::default();
    answers.add(paced(&client, &request, rate, Duration::from_secs(u64::from(seconds))).await);
    answers.latencies(target, rate)
}

/// `rate` requests a second to each target for `seconds` each, in alternating slices (after an
/// unmeasured second each), so that both are measured over the same stretch of time.
pub async fn run_alternating(targets: [&Target<'_>; 2], rate: u32, seconds: u32) -> [Result<Latencies, String>; 2] {
    let prepared = client().and_then(|client| Ok((request(&client, targets[0])?, request(&client, targets[1])?, client)));
    let (first, second, client) = match prepared {
        Ok(prepared) => prepared,
        Err(e) => return [Err(e.clone()), Err(e)],
    };
    for request in [&first, &second] {
        let _ = paced(&client, request, rate, Duration::from_secs(1)).await;
    }
    let mut answers = [Answers::default(), Answers::default()];
    let slices = (Duration::from_secs(u64::from(seconds)).as_millis() / SLICE.as_millis()).max(1);
    for _ in 0..slices {
        answers[0].add(paced(&client, &first, rate, SLICE).await);
        answers[1].add(paced(&client, &second, rate, SLICE).await);
    }
    let [a, b] = answers;
    [a.latencies(targets[0], rate), b.latencies(targets[1], rate)]
}

fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder().pool_max_idle_per_host(256).timeout(TIMEOUT).build().map_err(|e| e.to_string())
}

fn request(client: &reqwest::Client, target: &Target<'_>) -> Result<Arc<reqwest::Request>, String> {
    let mut request = client.post(target.url).header("content-type", "application/json").header("accept", "application/json");
    for (name, value) in target.headers {
        request = request.header(*name, *value);
    }
    Ok(Arc::new(request.body(target.body.to_owned()).build().map_err(|e| e.to_string())?))
}

/// The answers to one target, gathered over one or more paced stretches.
#[derive(Default)]
struct Answers {
    latencies: Vec<f64>,
    non_2xx: usize,
    errors: usize,
}

impl Answers {
    fn add(&mut self, (latencies, non_2xx, errors): (Vec<f64>, usize, usize)) {
        self.latencies.extend(latencies);
        self.non_2xx += non_2xx;
        self.errors += errors;
    }

    fn latencies(mut self, target: &Target<'_>, rate: u32) -> Result<Latencies, String> {
        let (non_2xx, errors) = (self.non_2xx, self.errors);
        if self.latencies.is_empty() {
            return Err(format!("no request to {} succeeded ({non_2xx} non-2xx, {errors} errors or timeouts)", target.url));
        }
        let latencies = &mut self.latencies;
        latencies.sort_by(f64::total_cmp);
        let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        Ok(Latencies { rate, p50_ms: at(0.50), p99_ms: at(0.99), max_ms: at(1.0), answered: latencies.len(), non_2xx, errors })
    }
}

/// The latencies of the answered requests, then the counts of non-2xx answers and of errors.
async fn paced(client: &reqwest::Client, request: &Arc<reqwest::Request>, rate: u32, length: Duration) -> (Vec<f64>, usize, usize) {
    let total = (f64::from(rate) * length.as_secs_f64()) as u64;
    let (done, mut results) = mpsc::unbounded_channel::<Outcome>();
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
                        Ok(response) if response.status().is_success() => match response.bytes().await {
                            Ok(_) => Outcome::Answered(sent_at.elapsed().as_secs_f64() * 1000.0),
                            Err(_) => Outcome::Error,
                        },
                        Ok(_) => Outcome::Non2xx,
                        Err(_) => Outcome::Error,
                    },
                    None => Outcome::Error,
                };
                let _ = done.send(outcome);
            });
            sent += 1;
        }
    }
    drop(done);
    let (mut latencies, mut non_2xx, mut errors) = (Vec::with_capacity(total as usize), 0, 0);
    while let Some(result) = results.recv().await {
        match result {
            Outcome::Answered(ms) => latencies.push(ms),
            Outcome::Non2xx => non_2xx += 1,
            Outcome::Error => errors += 1,
        }
    }
    (latencies, non_2xx, errors)
}
