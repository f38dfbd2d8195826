//! What the gateway tells the metrics of every tool call. The domain only hands each finished
//! call to a [`CallObserver`]; the adapters turn it into CloudWatch Embedded Metric Format log
//! lines (the Lambdas) or Prometheus counters and histograms (`squaremcp serve`).
//!
//! The labels are chosen so that their number of combinations stays bounded: tool names come
//! from the registry, platforms from an enum, plans from the plan catalog and outcomes from a
//! fixed set of failure kinds (all plain `[a-z0-9_-]` names, so that neither a Prometheus
//! label nor an EMF dimension needs escaping). The customer id is deliberately absent: one time series per
//! customer would grow without bound (the call log answers per-customer questions).

use std::time::Duration;

use crate::Platform;

/// One finished `tools/call`, as the metrics see it.
#[derive(Clone, Debug, PartialEq)]
pub struct CallObservation<'a> {
    pub tool: &'a str,
    pub platform: Platform,
    /// The customer's plan; [`UNKNOWN_PLAN`] when it could not be read.
    pub plan: &'a str,
    /// `ok`, a failure kind (e.g. `rate_limited`) or `limit_reached`, as in the call log.
    pub outcome: &'a str,
    /// The whole call in the gateway: validation, credential, metering and the platform.
    pub duration: Duration,
    /// Time spent in the platform's handler (its requests to the platform, retries and uploads
    /// included); zero when the call was refused before reaching it.
    pub upstream: Duration,
    pub upstream_requests: u32,
}

/// The plan label of a call whose customer's plan could not be read.
pub const UNKNOWN_PLAN: &str = "unknown";

/// Receives every customer's tool call once, after its call record was built. Called on the
/// request's task, so an implementation must be quick and must not block (no I/O beyond a
/// buffered write).
pub trait CallObserver: Send + Sync {
    fn observe(&self, call: &CallObservation<'_>);
}
