//! The tools without MCP: `GET /openapi.json` describes every tool as an operation, and
//! `POST /tools/{name}` runs one with the JSON body as its arguments. Same authentication,
//! Origin check, body limit, metering and call log as `tools/call` (it is the same
//! `Gateway::call_tool`); the answer is the structured result, or `{"error": {kind, message,
//! retry_after}}` with a status that fits the kind.

use std::time::Instant;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::header::{CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Value, json};
use squaremcp_core::gateway::UnknownTool;
use squaremcp_core::{CallContext, Principal, openapi};

use crate::AppState;
use crate::auth::{AuthOutcome, Authenticated, authenticate};
use crate::cors::{OriginCheck, check_origin};
use crate::mcp::{insufficient_scope, plain_error, unauthorized};
use crate::request_id::request_id;
use crate::request_log::{RequestLog, customer_name};

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_document)).route("/tools/{name}", post(call_tool))
}

/// The caller, or the response that refuses them (403 foreign Origin, 401, 403 scope, 503).
async fn caller(state: &AppState, headers: &HeaderMap, request_id: &str) -> Result<Authenticated, Response> {
    if matches!(check_origin(&state.config, headers), OriginCheck::Refused) {
        tracing::warn!(request_id, "refused a request from a foreign Origin");
        return Err(plain_error(StatusCode::FORBIDDEN, "Origin not allowed"));
    }
    match authenticate(&state.auth, headers).await {
        Ok(AuthOutcome::Authenticated(auth)) => Ok(auth),
        Ok(AuthOutcome::Missing) => Err(unauthorized(&state.config, false)),
        Ok(AuthOutcome::Invalid) => Err(unauthorized(&state.config, true)),
        Ok(AuthOutcome::InsufficientScope) => Err(insufficient_scope(&state.config)),
        Err(e) => {
            tracing::error!(request_id, error = %e, "authentication lookup failed");
            Err(plain_error(StatusCode::SERVICE_UNAVAILABLE, "The gateway's store is unavailable; retry shortly"))
        }
    }
}

/// Like `tools/list`: a customer sees the tools of the platforms they connected, the admin key all.
async fn openapi_document(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let request_id = request_id(&headers);
    let auth = match caller(&state, &headers, &request_id).await {
        Ok(auth) => auth,
        Err(refusal) => return refusal,
    };
    let gateway = state.mcp.gateway();
    let connected = match &auth.principal {
        Principal::Superadmin => None,
        Principal::Customer { id } => match gateway.connected_platforms(id).await {
            Ok(platforms) => Some(platforms),
            Err(e) => {
                tracing::error!(request_id, customer = id.as_str(), error = %e, "openapi: connections unavailable");
                return plain_error(StatusCode::SERVICE_UNAVAILABLE, "The gateway could not read your connections; retry shortly");
            }
        },
    };
    let tools = gateway.registry().tools().iter().map(|t| t.definition());
    let visible = tools.filter(|definition| connected.as_ref().is_none_or(|platforms| platforms.contains(&definition.platform)));
    json_response(StatusCode::OK, &openapi::document(visible, &state.config.public_url))
}

async fn call_tool(State(state): State<AppState>, Path(name): Path<String>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let request_id = request_id(&headers);
    let mut log = RequestLog::default();
    let response = run_tool(&state, &name, &headers, body, &request_id, &mut log).await;
    log.write(&request_id, "POST /tools/{name}", response.status().as_u16(), started);
    response
}

async fn run_tool(state: &AppState, name: &str, headers: &HeaderMap, body: Body, request_id: &str, log: &mut RequestLog) -> Response {
    let auth = match caller(state, headers, request_id).await {
        Ok(auth) => auth,
        Err(refusal) => return refusal,
    };
    log.customer = Some(customer_name(&auth.principal).to_owned());
    let Ok(bytes) = to_bytes(body, state.config.max_body_bytes).await else {
        return plain_error(StatusCode::PAYLOAD_TOO_LARGE, &format!("Request body larger than {} bytes", state.config.max_body_bytes));
    };
    let arguments = if bytes.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(arguments @ Value::Object(_)) => Some(arguments),
            Ok(_) => return error_response(StatusCode::BAD_REQUEST, "invalid_input", "The body must be a JSON object of arguments.", None),
            Err(e) => return error_response(StatusCode::BAD_REQUEST, "invalid_input", &format!("The body is not JSON: {e}"), None),
        }
    };
    let mut context = CallContext::new(auth.principal, auth.method);
    context.client = headers.get(USER_AGENT).and_then(|v| v.to_str().ok()).map(|ua| ua.chars().take(120).collect());
    let outcome = state.mcp.gateway().call_tool(&context, name, arguments).await;
    log.calls = context.calls.take();
    match outcome {
        Err(UnknownTool(name)) => error_response(StatusCode::NOT_FOUND, "not_found", &format!("Unknown tool: {name}"), None),
        Ok(Ok(output)) => json_response(StatusCode::OK, &output.structured),
        Ok(Err(failure)) => {
            let status = StatusCode::from_u16(openapi::status_for(failure.kind)).unwrap_or(StatusCode::BAD_GATEWAY);
            error_response(status, failure.kind.as_str(), &failure.message, failure.retry_after)
        }
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [(CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn error_response(status: StatusCode, kind: &str, message: &str, retry_after: Option<u64>) -> Response {
    let mut error = json!({ "kind": kind, "message": message });
    if let Some(seconds) = retry_after {
        error["retry_after"] = json!(seconds);
    }
    let mut response = json_response(status, &json!({ "error": error }));
    if let Some(seconds) = retry_after
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    response
}
