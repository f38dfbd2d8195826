//! `/mcp`, Streamable HTTP without sessions. The order of checks is deliberate: method (405,
//! before auth, so clients don't loop on GET), Origin (403), Accept (406), credentials (401),
//! body size (413), then the protocol.

use std::time::Instant;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::header::{ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_TYPE, USER_AGENT, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::json;
use squaremcp_core::mcp::RequestHeaders;
use squaremcp_core::CallContext;

use crate::auth::{AuthOutcome, authenticate};
use crate::cors::{OriginCheck, add_cors_headers, add_preflight_headers, check_origin};
use crate::request_id::request_id;
use crate::request_log::{RequestLog, customer_name};
use crate::{AppState, HttpConfig};

const X_ACCEL_BUFFERING: http::HeaderName = http::HeaderName::from_static("x-accel-buffering");

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/mcp",
        post(post_mcp).get(method_not_allowed).delete(method_not_allowed).options(preflight),
    )
}

async fn method_not_allowed(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let mut response = (StatusCode::METHOD_NOT_ALLOWED, [(ALLOW, "POST")]).into_response();
    if let OriginCheck::Allowed(origin) = check_origin(&state.config, &headers) {
        add_cors_headers(response.headers_mut(), origin);
    }
    response
}

async fn preflight(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match check_origin(&state.config, &headers) {
        OriginCheck::Refused => StatusCode::FORBIDDEN.into_response(),
        OriginCheck::Absent => StatusCode::NO_CONTENT.into_response(),
        OriginCheck::Allowed(origin) => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            add_cors_headers(response.headers_mut(), origin);
            add_preflight_headers(response.headers_mut());
            response
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    Json,
    /// One `message` event: for clients (Anthropic's proxy among them) that accept only SSE.
    SingleSseEvent,
}

async fn post_mcp(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let request_id = request_id(&headers);
    let cors_origin = match check_origin(&state.config, &headers) {
        OriginCheck::Refused => {
            tracing::warn!(request_id, "refused a request from a foreign Origin");
            return plain_error(StatusCode::FORBIDDEN, "Origin not allowed");
        }
        OriginCheck::Allowed(origin) => Some(origin),
        OriginCheck::Absent => None,
    };
    let mut log = RequestLog::default();
    let mut response = handle(&state, &headers, body, &request_id, &mut log).await;
    if let Some(origin) = cors_origin {
        add_cors_headers(response.headers_mut(), origin);
    }
    log.write(&request_id, "POST /mcp", response.status().as_u16(), started);
    response
}

async fn handle(state: &AppState, headers: &HeaderMap, body: Body, request_id: &str, log: &mut RequestLog) -> Response {
    let Some(framing) = negotiate(headers) else {
        return plain_error(StatusCode::NOT_ACCEPTABLE, "Accept must include application/json or text/event-stream");
    };
    let auth = match authenticate(&state.auth, headers).await {
        Ok(AuthOutcome::Authenticated(auth)) => auth,
        Ok(AuthOutcome::Missing) => return unauthorized(&state.config, false),
        Ok(AuthOutcome::Invalid) => return unauthorized(&state.config, true),
        Ok(AuthOutcome::InsufficientScope) => return insufficient_scope(&state.config),
        Err(e) => {
            tracing::error!(request_id, error = %e, "authentication lookup failed");
            return plain_error(StatusCode::SERVICE_UNAVAILABLE, "The gateway's store is unavailable; retry shortly");
        }
    };
    let customer = customer_name(&auth.principal);
    tracing::debug!(request_id, customer, "authenticated");
    log.customer = Some(customer.to_owned());
    let mut context = CallContext::new(auth.principal.clone(), auth.method);
    context.client = headers.get(USER_AGENT).and_then(|v| v.to_str().ok()).map(|ua| ua.chars().take(120).collect());
    let bytes = match to_bytes(body, state.config.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return plain_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("Request body larger than {} bytes", state.config.max_body_bytes),
            );
        }
    };
    let mcp_headers = RequestHeaders {
        protocol_version: mcp_header(headers, "mcp-protocol-version"),
        method: mcp_header(headers, "mcp-method"),
        name: mcp_header(headers, "mcp-name"),
    };
    let reply = state.mcp.handle_request(&context, mcp_headers, &bytes).await;
    log.calls = context.calls.take();
    render(reply.status, reply.body, framing)
}

/// An MCP request header as text. A value that is not visible ASCII becomes a NUL, which
/// matches no body value and fails the 2026-07-28 header checks as malformed.
fn mcp_header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap_or("\0"))
}

fn negotiate(headers: &HeaderMap) -> Option<Framing> {
    let Some(accept) = headers.get(ACCEPT) else { return Some(Framing::Json) };
    let accept = accept.to_str().unwrap_or("").to_ascii_lowercase();
    let ranges: Vec<&str> = accept.split(',').map(|r| r.split(';').next().unwrap_or("").trim()).collect();
    if ranges.iter().any(|r| matches!(*r, "application/json" | "application/*" | "*/*" | "")) {
        Some(Framing::Json)
    } else if ranges.contains(&"text/event-stream") {
        Some(Framing::SingleSseEvent)
    } else {
        None
    }
}

fn render(status: u16, body: Option<String>, framing: Framing) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let Some(body) = body else { return status.into_response() };
    match framing {
        Framing::Json => (status, [(CONTENT_TYPE, "application/json")], body).into_response(),
        Framing::SingleSseEvent => (
            status,
            // nginx (and ingress-nginx) buffer proxied answers unless told not to.
            [(CONTENT_TYPE, "text/event-stream"), (CACHE_CONTROL, "no-cache"), (X_ACCEL_BUFFERING, "no")],
            format!("event: message\ndata: {body}\n\n"),
        )
            .into_response(),
    }
}

/// RFC 9728 §5.1: point clients at the protected resource metadata (absolute, path-inserted)
/// with the scope to ask for; `error` only when a credential was presented (RFC 6750 §3.1).
pub(crate) fn unauthorized(config: &HttpConfig, presented: bool) -> Response {
    let metadata = config.resource_metadata_url();
    let scope = squaremcp_auth::SCOPE;
    let (challenge, description) = if presented {
        (
            format!(
                r#"Bearer error="invalid_token", error_description="The API key or token is not valid", resource_metadata="{metadata}", scope="{scope}""#
            ),
            "The API key or token is not valid (unknown, revoked, expired or malformed).",
        )
    } else {
        (
            format!(r#"Bearer resource_metadata="{metadata}", scope="{scope}""#),
            "Authentication required: connect with OAuth, or send your SquareMCP API key in the x-api-key header.",
        )
    };
    let mut response = (
        StatusCode::UNAUTHORIZED,
        [(CONTENT_TYPE, "application/json")],
        json!({"error": if presented { "invalid_token" } else { "unauthorized" }, "error_description": description}).to_string(),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}

/// MCP authorization §Runtime Insufficient Scope: 403 naming the scope to ask for.
pub(crate) fn insufficient_scope(config: &HttpConfig) -> Response {
    let challenge = format!(
        r#"Bearer error="insufficient_scope", scope="{}", resource_metadata="{}""#,
        squaremcp_auth::SCOPE,
        config.resource_metadata_url()
    );
    let mut response = plain_error(StatusCode::FORBIDDEN, "The token lacks the scope this endpoint needs");
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}

pub(crate) fn plain_error(status: StatusCode, message: &str) -> Response {
    (status, [(CONTENT_TYPE, "application/json")], json!({"error": message}).to_string()).into_response()
}
