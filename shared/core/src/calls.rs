//! The record every tool call leaves: the usage log and the audit log in one. Arguments are
//! kept only where the tool says they are safe; secrets and message bodies never are.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{CustomerId, Platform, Timestamp, random};

pub const REDACTED: &str = "[redacted]";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// `<unix seconds, 10 digits>.<nanoseconds, 9 digits>-<random>`: unique, and sorts by time.
    pub id: String,
    pub customer_id: CustomerId,
    pub at: Timestamp,
    pub tool: String,
    pub platform: Platform,
    /// `api_key`, `admin_key`, `oauth`, `jwt`.
    pub auth_method: String,
    /// Who called: the OAuth client or the HTTP client's user agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    pub duration_ms: u64,
    /// Requests the tool sent to the platform's API (X bills each one; a chunked upload makes
    /// many). Records written before the count existed read as 0.
    #[serde(default)]
    pub upstream_requests: u32,
    /// `ok`, a failure kind (e.g. `rate_limited`), or `limit_reached`.
    pub outcome: String,
    /// Whether the call counts against the plan (successful calls only).
    pub counted: bool,
    pub arguments: Value,
    pub expires_at: Timestamp,
    /// How many calls the record stands for: 1, or the repeats of a refused or invalid call
    /// logged as one record (`refusals.rs`). Records written before it existed read as 1.
    #[serde(default = "one_call", skip_serializing_if = "is_one_call")]
    pub calls: u32,
}

fn one_call() -> u32 {
    1
}

// By reference: serde's `skip_serializing_if` passes one.
fn is_one_call(calls: &u32) -> bool {
    *calls == 1
}

impl CallRecord {
    /// The nanoseconds come from the system clock, so that calls within one second (of a fixed
    /// test clock, too) still sort in the order they were made.
    pub fn new_id(at: Timestamp) -> String {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        format!("{:010}.{nanos:09}-{}", at.unix().max(0), random::hex_id::<6>())
    }
}

/// Keeps the arguments named in `kept` and replaces every other value with `[redacted]`, so the
/// log shows which arguments were given without their content.
pub fn redact(arguments: &Map<String, Value>, kept: &[&str]) -> Value {
    Value::Object(
        arguments
            .iter()
            .map(|(k, v)| (k.clone(), if kept.contains(&k.as_str()) { v.clone() } else { Value::String(REDACTED.into()) }))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_listed_arguments_survive() {
        let args = json!({"chat_id": 42, "text": "secret plans", "account": "work"});
        let Value::Object(args) = args else { unreachable!() };
        assert_eq!(redact(&args, &["chat_id", "account"]), json!({"chat_id": 42, "text": "[redacted]", "account": "work"}));
    }

    #[test]
    fn records_without_an_upstream_count_read_as_zero() {
        let now = Timestamp::from_unix(1_700_000_000);
        let record = CallRecord {
            id: CallRecord::new_id(now),
            customer_id: CustomerId::generate(),
            at: now,
            tool: "twitter_upload_video".into(),
            platform: Platform::Twitter,
            auth_method: "api_key".into(),
            client: None,
            duration_ms: 5,
            upstream_requests: 6,
            outcome: "ok".into(),
            counted: true,
            arguments: json!({}),
            expires_at: now.plus_seconds(60),
            calls: 1,
        };
        let mut stored = serde_json::to_value(&record).expect("serialisable");
        assert_eq!(stored["upstream_requests"], 6);
        assert!(stored.get("calls").is_none(), "one call is the default and is not stored");
        let round_trip: CallRecord = serde_json::from_value(stored.clone()).expect("readable");
        assert_eq!(round_trip, record);
        stored.as_object_mut().expect("an object").remove("upstream_requests");
        let older: CallRecord = serde_json::from_value(stored).expect("an older record is readable");
        assert_eq!((older.upstream_requests, older.calls), (0, 1));
        let aggregate = CallRecord { calls: 40, ..record };
        let stored = serde_json::to_value(&aggregate).expect("serialisable");
        assert_eq!(stored["calls"], 40);
        assert_eq!(serde_json::from_value::<CallRecord>(stored).expect("readable"), aggregate);
    }

    #[test]
    fn ids_sort_by_time() {
        let a = CallRecord::new_id(Timestamp::from_unix(999));
        let b = CallRecord::new_id(Timestamp::from_unix(1000));
        assert!(a < b, "{a} < {b}");
        let c = CallRecord::new_id(Timestamp::from_unix(1000));
        std::thread::sleep(std::time::Duration::from_millis(2));
        let d = CallRecord::new_id(Timestamp::from_unix(1000));
        assert!(c < d, "within a second: {c} < {d}");
    }
}
