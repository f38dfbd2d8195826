//! `GET /metrics` of `squaremcp serve`: every customer's tool call as Prometheus counters and
//! histograms, in the text exposition format (version 0.0.4), written here rather than with a
//! client library: the format is a few lines of text, and the registry is one map.
//!
//! Labels are `tool`, `platform`, `plan` and `outcome`, each from a bounded set (see
//! `squaremcp_core::metrics`), so the number of series stays bounded; never the customer id.
//! Operator-only: the admin key as a bearer token, or a listener of its own
//! (`SQUAREMCP_METRICS_ADDR`) that the operator keeps off the public network.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use squaremcp_core::metrics::{CallObservation, CallObserver};
use squaremcp_core::{Gateway, Principal};

/// Upper bounds of the latency buckets, in seconds: from a fast local call to a video upload
/// near the Lambda's 29 s limit.
const BUCKETS: [f64; 13] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The label values of one series: tool, platform, plan, outcome.
type Labels = (String, String, String, String);

#[derive(Default)]
struct Histogram {
    /// Observations at most each bound of [`BUCKETS`] (not cumulative; summed when rendered).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&bound| seconds <= bound) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }
}

#[derive(Default)]
struct Series {
    calls: u64,
    upstream_requests: u64,
    latency: Histogram,
    upstream_latency: Histogram,
}

/// The registry `serve` keeps: one series per label combination, in memory (a restart starts
/// from zero, which Prometheus' `rate()` handles as a counter reset).
#[derive(Default)]
pub struct CallMetrics {
    series: Mutex<BTreeMap<Labels, Series>>,
}

impl CallObserver for CallMetrics {
    fn observe(&self, call: &CallObservation<'_>) {
        let labels = (call.tool.to_owned(), call.platform.as_str().to_owned(), call.plan.to_owned(), call.outcome.to_owned());
        // A poisoned lock (a panic while holding it, which nothing here can cause) still holds
        // consistent counts: keep counting rather than lose the metrics.
        let mut series = self.series.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = series.entry(labels).or_default();
        entry.calls += 1;
        entry.upstream_requests += u64::from(call.upstream_requests);
        entry.latency.observe(call.duration);
        entry.upstream_latency.observe(call.upstream);
    }
}

impl CallMetrics {
    /// The Prometheus text format of every series, in a stable order.
    pub fn render(&self) -> String {
        let series = self.series.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut text = String::new();
        family(&mut text, "squaremcp_tool_calls_total", "counter", "Tool calls by tool, platform, customer plan and outcome.");
        for (labels, s) in series.iter() {
            sample(&mut text, "squaremcp_tool_calls_total", &label_text(labels, None), &s.calls.to_string());
        }
        family(
            &mut text,
            "squaremcp_tool_call_upstream_requests_total",
            "counter",
            "Requests the tool calls sent to the platforms' APIs.",
        );
        for (labels, s) in series.iter() {
            sample(&mut text, "squaremcp_tool_call_upstream_requests_total", &label_text(labels, None), &s.upstream_requests.to_string());
        }
        histogram_family(
            &mut text,
            &series,
            "squaremcp_tool_call_duration_seconds",
            "Time of a tool call in the gateway, platform included.",
            |s| &s.latency,
        );
        histogram_family(
            &mut text,
            &series,
            "squaremcp_tool_call_upstream_duration_seconds",
            "Time of a tool call spent in the platform's handler (its requests to the platform).",
            |s| &s.upstream_latency,
        );
        text
    }
}

fn family(text: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(text, "# HELP {name} {help}");
    let _ = writeln!(text, "# TYPE {name} {kind}");
}

fn sample(text: &mut String, name: &str, labels: &str, value: &str) {
    let _ = writeln!(text, "{name}{{{labels}}} {value}");
}

fn histogram_family(
    text: &mut String,
    series: &BTreeMap<Labels, Series>,
    name: &str,
    help: &str,
    histogram_of: fn(&Series) -> &Histogram,
) {
    family(text, name, "histogram", help);
    for (labels, s) in series {
        histogram(text, name, labels, histogram_of(s));
    }
}

fn histogram(text: &mut String, name: &str, labels: &Labels, h: &Histogram) {
    let mut cumulative = 0;
    for (bound, count) in BUCKETS.iter().zip(h.buckets) {
        cumulative += count;
        sample(text, &format!("{name}_bucket"), &label_text(labels, Some(&bound.to_string())), &cumulative.to_string());
    }
    sample(text, &format!("{name}_bucket"), &label_text(labels, Some("+Inf")), &h.count.to_string());
    sample(text, &format!("{name}_sum"), &label_text(labels, None), &h.sum.to_string());
    sample(text, &format!("{name}_count"), &label_text(labels, None), &h.count.to_string());
}

fn label_text((tool, platform, plan, outcome): &Labels, le: Option<&str>) -> String {
    let mut text = format!(
        "tool=\"{}\",platform=\"{}\",plan=\"{}\",outcome=\"{}\"",
        escape(tool),
        escape(platform),
        escape(plan),
        escape(outcome)
    );
    if let Some(le) = le {
        let _ = write!(text, ",le=\"{le}\"");
    }
    text
}

/// The format's escapes in label values: backslash, double quote and line feed. Today's values
/// never hold them; a tool name from a future platform must still not break the page.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Who may read `/metrics`.
#[derive(Clone)]
pub enum MetricsAccess {
    /// The main listener: the admin key as `Authorization: Bearer`.
    AdminKey(Arc<Gateway>),
    /// A listener of its own that only the operator's network reaches.
    Listener,
}

#[derive(Clone)]
struct MetricsState {
    metrics: Arc<CallMetrics>,
    access: MetricsAccess,
}

/// `GET /metrics`.
pub fn metrics_router(metrics: Arc<CallMetrics>, access: MetricsAccess) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state(MetricsState { metrics, access })
}

async fn scrape(State(state): State<MetricsState>, headers: HeaderMap) -> Response {
    if let MetricsAccess::AdminKey(gateway) = &state.access {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        let Some(presented) = presented else {
            return refused(StatusCode::UNAUTHORIZED, "the metrics need the admin key as a bearer token");
        };
        match gateway.authenticate_api_key(presented).await {
            Ok(Some((Principal::Superadmin, _))) => {}
            Ok(Some(_)) => return refused(StatusCode::FORBIDDEN, "the metrics are for the operator only"),
            Ok(None) => return refused(StatusCode::UNAUTHORIZED, "the metrics need the admin key as a bearer token"),
            Err(e) => {
                tracing::error!(error = %e, "the metrics' key check failed");
                return refused(StatusCode::SERVICE_UNAVAILABLE, "try again shortly");
            }
        }
    }
    ([(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))], state.metrics.render()).into_response()
}

fn refused(status: StatusCode, why: &'static str) -> Response {
    let mut response = (status, why).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use squaremcp_core::Platform;

    use super::*;

    fn call<'a>(tool: &'a str, outcome: &'a str, millis: u64) -> CallObservation<'a> {
        CallObservation {
            tool,
            platform: Platform::Telegram,
            plan: "pro",
            outcome,
            duration: Duration::from_millis(millis),
            upstream: Duration::from_millis(millis / 2),
            upstream_requests: 1,
        }
    }

    #[test]
    fn counts_and_cumulative_buckets_per_label_set() {
        let metrics = CallMetrics::default();
        metrics.observe(&call("telegram_get_me", "ok", 3));
        metrics.observe(&call("telegram_get_me", "ok", 300));
        metrics.observe(&call("telegram_get_me", "rate_limited", 20));
        let text = metrics.render();
        let ok = r#"tool="telegram_get_me",platform="telegram",plan="pro",outcome="ok""#;
        assert!(text.contains(&format!("squaremcp_tool_calls_total{{{ok}}} 2\n")), "{text}");
        assert!(text.contains(&format!("squaremcp_tool_call_upstream_requests_total{{{ok}}} 2\n")), "{text}");
        assert!(text.contains(&format!("squaremcp_tool_call_duration_seconds_bucket{{{ok},le=\"0.005\"}} 1\n")), "{text}");
        assert!(text.contains(&format!("squaremcp_tool_call_duration_seconds_bucket{{{ok},le=\"0.25\"}} 1\n")), "{text}");
        assert!(text.contains(&format!("squaremcp_tool_call_duration_seconds_bucket{{{ok},le=\"0.5\"}} 2\n")), "{text}");
        assert!(text.contains(&format!("squaremcp_tool_call_duration_seconds_bucket{{{ok},le=\"+Inf\"}} 2\n")), "{text}");
        assert!(text.contains(&format!("squaremcp_tool_call_duration_seconds_count{{{ok}}} 2\n")), "{text}");
        assert!(text.contains(&format!("squaremcp_tool_call_upstream_duration_seconds_sum{{{ok}}} 0.151\n")), "{text}");
        assert!(text.contains(r#"outcome="rate_limited"} 1"#), "{text}");
        assert_eq!(text.matches("# TYPE ").count(), 4, "one family each, declared once");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn an_empty_registry_is_still_a_valid_page() {
        let text = CallMetrics::default().render();
        assert!(text.lines().all(|l| l.starts_with("# ")), "{text}");
    }
}
