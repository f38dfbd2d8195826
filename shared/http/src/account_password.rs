//! The account page's password change: `POST /account/password` (session and CSRF, the current
//! password and a new one). It revokes every other session and every grant of the customer and
//! re-issues this browser's cookie at the new generation, so the person stays signed in here.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use http::header::SET_COOKIE;
use http::{HeaderMap, StatusCode};
use squaremcp_auth::{MIN_PASSWORD_CHARS, PasswordChangeError};

use crate::AppState;
use crate::account::FORM_PURPOSE;
use crate::client_ip::PeerIp;
use crate::cookies::SESSION;
use crate::login::session;
use crate::oauth::see_other;
use crate::pages::{self, escape};

pub fn router() -> Router<AppState> {
    Router::new().route("/account/password", post(change))
}

/// The section of `/account`, with the page's CSRF token.
pub(crate) fn section(csrf: &str) -> String {
    format!(
        "<section aria-labelledby=\"password-title\"><h2 id=\"password-title\">Password</h2>\
         <p class=\"muted\">Changing it signs you out everywhere else and disconnects your MCP clients.</p>\
         <form method=\"post\" action=\"/account/password\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"current-password\">Current password</label>\
         <input id=\"current-password\" name=\"current\" type=\"password\" autocomplete=\"current-password\" required>\
         <label for=\"new-password\">New password</label>\
         <input id=\"new-password\" name=\"new\" type=\"password\" autocomplete=\"new-password\" minlength=\"{MIN_PASSWORD_CHARS}\" required>\
         <button type=\"submit\">Change password</button></form></section>",
        csrf = escape(csrf)
    )
}

fn refused(status: StatusCode, why: &str) -> Response {
    let body = format!(
        "<h1>Password not changed</h1><p class=\"error\" role=\"alert\">{}</p><p><a href=\"/account\">Back to your account</a></p>",
        escape(why)
    );
    pages::page(status, "Password not changed", &body, &[])
}

async fn change(
    State(state): State<AppState>,
    PeerIp(ip): PeerIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(current_session) = session(&state, &headers) else {
        return pages::error(
            StatusCode::UNAUTHORIZED,
            "Signed out",
            "Your session ended. Sign in again at /login.",
        );
    };
    let fields: HashMap<String, String> =
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
            .map(|pairs| pairs.into_iter().collect())
            .unwrap_or_default();
    let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
    if !state
        .auth
        .check_session_csrf(&current_session, FORM_PURPOSE, field("csrf"))
    {
        tracing::warn!(
            customer = current_session.customer_id.as_str(),
            "password change refused: bad CSRF token"
        );
        return refused(
            StatusCode::FORBIDDEN,
            "The form was not sent from your account page. Reload it and try again.",
        );
    }
    match state
        .auth
        .change_password(&current_session, field("current"), field("new"), &ip)
        .await
    {
        Ok((_, cookie)) => {
            let mut response = see_other("/account?done=password-changed");
            if let Some(value) =
                state
                    .config
                    .set_cookie(SESSION, cookie.expose(), state.auth.settings().session_ttl)
            {
                response.headers_mut().append(SET_COOKIE, value);
            }
            response
        }
        Err(PasswordChangeError::WrongPassword) => refused(
            StatusCode::BAD_REQUEST,
            "The current password is not correct.",
        ),
        Err(PasswordChangeError::Rejected(why)) => refused(StatusCode::BAD_REQUEST, why),
        Err(PasswordChangeError::RateLimited { retry_after }) => {
            let why = format!(
                "Too many failed attempts. Try again in {}.",
                crate::login::wait_text(retry_after)
            );
            let mut page = refused(StatusCode::TOO_MANY_REQUESTS, &why);
            page.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from(retry_after),
            );
            page
        }
        Err(PasswordChangeError::Server(e)) => {
            tracing::error!(error = %e, "password change failed");
            pages::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again shortly",
                "The service could not change your password.",
            )
        }
    }
}
