//! One log line per request that runs tools (`POST /mcp`, `POST /tools/{name}`): the request id,
//! the customer, the status, the time, and what the request's tool call did. A JSON-RPC batch
//! with several calls adds one `tool call` line per call, with the same request id.

use std::time::Instant;

use squaremcp_core::Principal;
use squaremcp_core::gateway::LoggedCall;

/// How a log line names the caller.
pub(crate) fn customer_name(principal: &Principal) -> &str {
    match principal {
        Principal::Customer { id } => id.as_str(),
        Principal::Superadmin => "superadmin",
    }
}

/// What a request's line says about its caller and calls, gathered while it runs.
#[derive(Default)]
pub(crate) struct RequestLog {
    pub customer: Option<String>,
    pub calls: Vec<LoggedCall>,
}

impl RequestLog {
    pub fn write(self, request_id: &str, route: &str, status: u16, started: Instant) {
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let customer = self.customer.as_deref();
        let (single, batch) = match self.calls.as_slice() {
            [call] => (Some(call), None),
            [] => (None, None),
            calls => (None, Some(calls)),
        };
        for call in batch.unwrap_or_default() {
            tracing::info!(
                request_id,
                customer,
                tool = call.tool,
                outcome = call.outcome,
                upstream_requests = call.upstream_requests,
                call_ms = call.elapsed_ms,
                "tool call"
            );
        }
        tracing::info!(
            request_id,
            customer,
            status,
            elapsed_ms,
            tool = single.map(|call| call.tool.as_str()),
            outcome = single.map(|call| call.outcome),
            upstream_requests = single.map(|call| call.upstream_requests),
            call_ms = single.map(|call| call.elapsed_ms),
            calls = batch.map(<[LoggedCall]>::len),
            "{route}"
        );
    }
}
