//! The `webhooks` route group: platforms calling in. `GET /webhooks/whatsapp` answers Meta's
//! subscription handshake; `POST /webhooks/whatsapp` takes notifications; `POST
//! /webhooks/telegram/{bot_id}` takes a Telegram bot's updates in webhook mode. A thin adapter:
//! the signature and secret checks, routing and storage are `squaremcp_platforms`' (the
//! `whatsapp::webhook` and `telegram::webhook` modules); this decides status codes. No body,
//! token or secret reaches a log line.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;
use squaremcp_platforms::telegram::webhook::InboundError;
use squaremcp_platforms::whatsapp::webhook::{SignatureError, WebhookError};

use crate::AppState;
use crate::mcp::plain_error;
use crate::request_id::request_id;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks/whatsapp", get(whatsapp_handshake).post(whatsapp_notification))
        .route("/webhooks/telegram/{bot_id}", post(telegram_update))
}

#[derive(Deserialize)]
struct Handshake {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// 200 with the challenge as `text/plain` when the verify token matches; 403 otherwise.
async fn whatsapp_handshake(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<Handshake>, QueryRejection>,
) -> Response {
    let request_id = request_id(&headers);
    let Ok(Query(query)) = query else { return plain_error(StatusCode::FORBIDDEN, "Forbidden") };
    match state.whatsapp.subscribe(query.mode.as_deref(), query.verify_token.as_deref(), query.challenge.as_deref()) {
        Ok(challenge) => {
            tracing::info!(request_id, "WhatsApp webhook subscription verified");
            let mut response = (StatusCode::OK, challenge).into_response();
            response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
            response
        }
        Err(why) => {
            tracing::warn!(request_id, %why, "refused a WhatsApp webhook subscription");
            plain_error(StatusCode::FORBIDDEN, "Forbidden")
        }
    }
}

/// 200 once stored (an unknown number too: see `WhatsappWebhook::deliver`); 401 without a
/// signature, 403 with a wrong one, 400 for a body that is not a WhatsApp payload, 413 over the
/// body limit, 503 when the app secret is not configured or the store fails (Meta retries).
async fn whatsapp_notification(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let request_id = request_id(&headers);
    let Ok(bytes) = to_bytes(body, state.config.max_body_bytes).await else {
        tracing::warn!(request_id, "refused a WhatsApp webhook over the body limit");
        return plain_error(StatusCode::PAYLOAD_TOO_LARGE, &format!("Request body larger than {} bytes", state.config.max_body_bytes));
    };
    let signature = headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok());
    match state.whatsapp.deliver(signature, &bytes).await {
        Ok(accepted) => {
            tracing::info!(request_id, ?accepted, "WhatsApp webhook");
            (StatusCode::OK, "ok").into_response()
        }
        Err(WebhookError::Signature(why)) => {
            tracing::warn!(request_id, %why, bytes = bytes.len(), "refused a WhatsApp webhook");
            let status = if why == SignatureError::Missing { StatusCode::UNAUTHORIZED } else { StatusCode::FORBIDDEN };
            plain_error(status, "Invalid signature")
        }
        Err(WebhookError::Malformed(why)) => {
            tracing::warn!(request_id, %why, "refused a WhatsApp webhook");
            plain_error(StatusCode::BAD_REQUEST, "Not a WhatsApp webhook payload")
        }
        Err(WebhookError::NotConfigured) => {
            tracing::error!(request_id, "a WhatsApp webhook arrived but SQUAREMCP_WHATSAPP_APP_SECRET is not set");
            plain_error(StatusCode::SERVICE_UNAVAILABLE, "WhatsApp webhooks are not configured")
        }
        Err(WebhookError::Store(e)) => {
            tracing::error!(request_id, error = %e, "a WhatsApp webhook could not be stored; Meta will retry");
            plain_error(StatusCode::SERVICE_UNAVAILABLE, "Try again later")
        }
    }
}

/// 200 once buffered (a repeat and an update for a bot no longer connected too: Telegram retries
/// anything else for a day); 401 without `X-Telegram-Bot-Api-Secret-Token`, 403 with a wrong one
/// or for a bot not in webhook mode, 400 for a body that is not an update, 413 over the body
/// limit, 503 when the store fails (Telegram retries).
async fn telegram_update(State(state): State<AppState>, Path(bot_id): Path<String>, headers: HeaderMap, body: Body) -> Response {
    let request_id = request_id(&headers);
    let Ok(bytes) = to_bytes(body, state.config.max_body_bytes).await else {
        tracing::warn!(request_id, "refused a Telegram update over the body limit");
        return plain_error(StatusCode::PAYLOAD_TOO_LARGE, &format!("Request body larger than {} bytes", state.config.max_body_bytes));
    };
    let secret = headers.get("x-telegram-bot-api-secret-token").and_then(|v| v.to_str().ok());
    // The bot id only when it is one: the path is the caller's text.
    let bot = if bot_id.len() <= 20 && bot_id.bytes().all(|b| b.is_ascii_digit()) { bot_id.as_str() } else { "(not a bot id)" };
    match state.telegram.deliver(&bot_id, secret, &bytes).await {
        Ok(accepted) => {
            tracing::info!(request_id, bot_id = bot, ?accepted, "Telegram update");
            (StatusCode::OK, "ok").into_response()
        }
        Err(why @ InboundError::MissingSecret) => {
            tracing::warn!(request_id, bot_id = bot, %why, bytes = bytes.len(), "refused a Telegram update");
            plain_error(StatusCode::UNAUTHORIZED, "Missing secret token")
        }
        Err(why @ InboundError::WrongSecret) => {
            tracing::warn!(request_id, bot_id = bot, %why, bytes = bytes.len(), "refused a Telegram update");
            plain_error(StatusCode::FORBIDDEN, "Invalid secret token")
        }
        Err(why @ InboundError::Malformed(_)) => {
            tracing::warn!(request_id, bot_id = bot, %why, "refused a Telegram update");
            plain_error(StatusCode::BAD_REQUEST, "Not a Telegram update")
        }
        Err(InboundError::Store(e)) => {
            tracing::error!(request_id, bot_id = bot, error = %e, "a Telegram update could not be stored; Telegram will retry");
            plain_error(StatusCode::SERVICE_UNAVAILABLE, "Try again later")
        }
    }
}
