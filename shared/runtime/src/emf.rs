//! The Lambdas' metrics: one CloudWatch Embedded Metric Format (EMF) line per tool call on
//! stdout. CloudWatch Logs extracts the metrics from the log line itself, so a call costs no
//! extra request (`PutMetricData` would add one per call, or a flush to get wrong at freeze).
//!
//! CloudWatch bills every distinct (metric name, dimension values) as one custom metric a month
//! ($0.30 each), so the line names three small dimension sets rather than their product: `tool`,
//! `platform, outcome` and `plan` (51 + 11 × outcomes + plans series at most, where
//! `tool, platform, plan, outcome` together would be thousands). Two metrics only: a call count is
//! the `SampleCount` of `Latency`. The customer id is never in the line (the request's log line
//! has it); the number of upstream requests is a plain member (Logs Insights, not a metric).

use std::io::Write as _;

use serde_json::{Value, json};
use squaremcp_core::metrics::{CallObservation, CallObserver};

/// The dimension members every line carries.
pub const DIMENSIONS: [&str; 4] = ["tool", "platform", "plan", "outcome"];

/// The dimension sets CloudWatch aggregates by (see the module's comment for why not one set).
const DIMENSION_SETS: [&[&str]; 3] = [&["tool"], &["platform", "outcome"], &["plan"]];

/// Writes one EMF line per call to stdout, where the Lambda runtime hands it to CloudWatch Logs.
pub struct EmfObserver {
    namespace: String,
}

impl EmfObserver {
    pub fn new(namespace: impl Into<String>) -> Self {
        Self { namespace: namespace.into() }
    }
}

impl CallObserver for EmfObserver {
    fn observe(&self, call: &CallObservation<'_>) {
        let line = emf_line(&self.namespace, call, unix_millis());
        // One `write_all` of the whole line under stdout's lock, so that a line is never
        // interleaved with another task's output (CloudWatch needs the JSON object whole).
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = stdout.write_all(format!("{line}\n").as_bytes()).and_then(|()| stdout.flush()) {
            tracing::warn!(error = %e, "a metrics line could not be written");
        }
    }
}

/// The EMF document of one call: the `_aws` metadata naming the metrics and their units, the
/// dimension values and the metric values as top-level members.
pub fn emf_line(namespace: &str, call: &CallObservation<'_>, timestamp_ms: u64) -> Value {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": DIMENSION_SETS,
                "Metrics": [
                    {"Name": "Latency", "Unit": "Milliseconds"},
                    {"Name": "UpstreamLatency", "Unit": "Milliseconds"},
                ],
            }],
        },
        "tool": call.tool,
        "platform": call.platform.as_str(),
        "plan": call.plan,
        "outcome": call.outcome,
        "Latency": millis(call.duration),
        "UpstreamLatency": millis(call.upstream),
        "UpstreamRequests": call.upstream_requests,
    })
}

/// Milliseconds with microsecond precision: CloudWatch's statistics keep fractions.
fn millis(duration: std::time::Duration) -> f64 {
    (duration.as_micros() as f64) / 1000.0
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use serde_json::Map;
    use squaremcp_core::Platform;

    use super::*;

    fn call(outcome: &str) -> CallObservation<'_> {
        CallObservation {
            tool: "telegram_send_message",
            platform: Platform::Telegram,
            plan: "pro",
            outcome,
            duration: Duration::from_micros(12_345),
            upstream: Duration::from_micros(9_870),
            upstream_requests: 2,
        }
    }

    /// The members the EMF specification requires, checked on the parsed line: `_aws` with an
    /// integer `Timestamp` and a non-empty `CloudWatchMetrics`; each directive with a
    /// `Namespace`, `Dimensions` (arrays of at most 30 names, each a top-level string member)
    /// and `Metrics` (at most 100, each a `Name` with a top-level number and a valid `Unit`).
    fn check_emf(document: &Map<String, Value>) {
        const UNITS: [&str; 27] = [
            "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
            "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
            "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
            "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
        ];
        let aws = document["_aws"].as_object().expect("`_aws` is an object");
        assert!(aws["Timestamp"].is_u64(), "Timestamp: milliseconds since the epoch as an integer");
        let directives = aws["CloudWatchMetrics"].as_array().expect("CloudWatchMetrics is an array");
        assert!(!directives.is_empty());
        for directive in directives {
            let namespace = directive["Namespace"].as_str().expect("a Namespace string");
            assert!((1..=255).contains(&namespace.len()));
            let sets = directive["Dimensions"].as_array().expect("Dimensions is an array of arrays");
            for set in sets {
                let names = set.as_array().expect("a dimension set is an array");
                assert!(!names.is_empty() && names.len() <= 30);
                for name in names {
                    let name = name.as_str().expect("dimension names are strings");
                    assert!(document.get(name).is_some_and(Value::is_string), "dimension `{name}` is a top-level string");
                }
            }
            let metrics = directive["Metrics"].as_array().expect("Metrics is an array");
            assert!(!metrics.is_empty() && metrics.len() <= 100);
            for metric in metrics {
                let name = metric["Name"].as_str().expect("a metric Name");
                assert!(document.get(name).is_some_and(Value::is_number), "metric `{name}` is a top-level number");
                let unit = metric["Unit"].as_str().expect("a Unit");
                assert!(UNITS.contains(&unit), "`{unit}` is a CloudWatch unit");
            }
        }
    }

    #[test]
    fn a_call_is_one_valid_emf_line_with_bounded_dimensions() {
        let line = emf_line("SquareMCP", &call("rate_limited"), 1_780_000_000_123).to_string();
        assert!(!line.contains('\n'), "one line");
        let parsed: Value = serde_json::from_str(&line).expect("the line is JSON");
        let document = parsed.as_object().expect("an object");
        check_emf(document);
        assert_eq!(parsed["_aws"]["Timestamp"], 1_780_000_000_123_u64);
        assert_eq!(parsed["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["tool"], ["platform", "outcome"], ["plan"]]));
        let metrics = &parsed["_aws"]["CloudWatchMetrics"][0]["Metrics"];
        assert_eq!(metrics.as_array().map(Vec::len), Some(2), "a count is Latency's SampleCount: {metrics}");
        assert_eq!(
            (&parsed["tool"], &parsed["platform"], &parsed["plan"], &parsed["outcome"]),
            (&json!("telegram_send_message"), &json!("telegram"), &json!("pro"), &json!("rate_limited"))
        );
        assert_eq!(parsed["UpstreamRequests"], json!(2), "a plain member, not a metric");
        assert_eq!((parsed["Latency"].as_f64(), parsed["UpstreamLatency"].as_f64()), (Some(12.345), Some(9.87)));
        assert!(
            !document.keys().any(|k| k.contains("customer")),
            "no customer id in a metric line: {line}"
        );
    }

    #[test]
    fn the_checker_rejects_what_cloudwatch_would_drop() {
        // The checker must be able to fail: a dimension without its value is not EMF.
        let mut document = emf_line("SquareMCP", &call("ok"), 1).as_object().unwrap().clone();
        document.remove("plan");
        let outcome = std::panic::catch_unwind(|| check_emf(&document));
        assert!(outcome.is_err(), "a missing dimension value is caught");
    }
}
