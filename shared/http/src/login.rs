//! The `login` route group: `GET/POST /login`, `POST /logout`. The session cookie is set by
//! the host that reads it (the MCP host), first-party inside the OAuth popup.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use http::header::{RETRY_AFTER, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use serde::Deserialize;
use squaremcp_auth::uris::safe_return_to;
use squaremcp_auth::{LoginError, Session};

use crate::AppState;
use crate::client_ip::PeerIp;
use crate::cookies::{LOGIN_CSRF, SESSION};
use crate::oauth::{is_authorize_path, see_other};
use crate::pages::{self, LoginForm};

/// Where a sign-in without (or with an unsafe) `return_to` lands.
const HOME: &str = "/login";
const CSRF_COOKIE_TTL: i64 = 3600;

pub fn router() -> Router<AppState> {
    Router::new().route("/login", get(show).post(submit)).route("/logout", post(logout))
}

/// The signed-in person, from the session cookie (never accepted on `/mcp`).
pub(crate) fn session(state: &AppState, headers: &HeaderMap) -> Option<Session> {
    state.config.cookie(headers, SESSION).and_then(|jwt| state.auth.session(&jwt))
}

#[derive(Deserialize)]
struct ShowQuery {
    return_to: Option<String>,
}

async fn show(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let query: Option<ShowQuery> = serde_urlencoded::from_str(uri.query().unwrap_or("")).ok();
    let return_to = query.and_then(|q| q.return_to).unwrap_or_default();
    let safe = safe_return_to(&return_to);
    if let Some(session) = session(&state, &headers) {
        return match safe {
            Some(target) => see_other(target),
            None => pages::signed_in(&session.email),
        };
    }
    form(&state, &headers, StatusCode::OK, safe.unwrap_or(""), "", None)
}

/// The login form, with a CSRF token bound to a cookie nonce (set here if missing).
fn form(state: &AppState, headers: &HeaderMap, status: StatusCode, return_to: &str, email: &str, error: Option<&str>) -> Response {
    let existing = state.config.cookie(headers, LOGIN_CSRF).filter(|n| n.len() == 43);
    let nonce = existing.clone().unwrap_or_else(|| state.auth.new_csrf_nonce());
    let csrf = state.auth.login_csrf(&nonce);
    let mut response = pages::login(
        status,
        &LoginForm { csrf: &csrf, return_to, email, error, for_authorization: is_authorize_path(return_to), signup_open: state.auth.signup_open() },
    );
    if existing.is_none()
        && let Some(cookie) = state.config.set_cookie(LOGIN_CSRF, &nonce, CSRF_COOKIE_TTL)
    {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    response
}

#[derive(Deserialize)]
struct Credentials {
    email: Option<String>,
    password: Option<String>,
    return_to: Option<String>,
    csrf: Option<String>,
}

async fn submit(State(state): State<AppState>, PeerIp(ip): PeerIp, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(form_data) = serde_urlencoded::from_bytes::<Credentials>(&body) else {
        return form(&state, &headers, StatusCode::BAD_REQUEST, "", "", Some("The form could not be read. Please try again."));
    };
    let return_to = form_data.return_to.as_deref().and_then(safe_return_to).unwrap_or("");
    let email = form_data.email.as_deref().unwrap_or("").trim();
    let nonce = state.config.cookie(&headers, LOGIN_CSRF).unwrap_or_default();
    if !state.auth.check_login_csrf(&nonce, form_data.csrf.as_deref().unwrap_or("")) {
        tracing::warn!(client_ip = ip, "login refused: bad CSRF token");
        let message = "Your sign-in form expired. Please try again.";
        return form(&state, &headers, StatusCode::FORBIDDEN, return_to, email, Some(message));
    }
    let password = form_data.password.unwrap_or_default();
    match state.auth.login(email, &password, &ip).await {
        Ok((_, jwt)) => {
            let mut response = see_other(if return_to.is_empty() { HOME } else { return_to });
            if let Some(cookie) = state.config.set_cookie(SESSION, jwt.expose(), state.auth.settings().session_ttl) {
                response.headers_mut().append(SET_COOKIE, cookie);
            }
            response
        }
        Err(LoginError::Invalid) => {
            form(&state, &headers, StatusCode::BAD_REQUEST, return_to, email, Some("The email or password is not correct."))
        }
        Err(LoginError::Disabled) => form(
            &state,
            &headers,
            StatusCode::FORBIDDEN,
            return_to,
            email,
            Some("This account is disabled. Contact the operator of this service."),
        ),
        Err(LoginError::RateLimited { retry_after }) => {
            let message = format!("Too many failed sign-in attempts. Try again in {}.", wait_text(retry_after));
            let mut page = form(&state, &headers, StatusCode::TOO_MANY_REQUESTS, return_to, email, Some(&message));
            page.headers_mut().insert(RETRY_AFTER, HeaderValue::from(retry_after));
            page
        }
        Err(LoginError::Server(e)) => {
            tracing::error!(error = %e, "login failed");
            pages::error(StatusCode::SERVICE_UNAVAILABLE, "Try again shortly", "The service could not check your sign-in.")
        }
    }
}

/// "5 seconds", "3 minutes": how long the form asks the person to wait.
pub(crate) fn wait_text(seconds: u64) -> String {
    match seconds {
        0..=1 => "1 second".to_owned(),
        2..=119 => format!("{seconds} seconds"),
        _ => format!("{} minutes", seconds.div_ceil(60)),
    }
}

/// Clears the session cookie and goes back to the login form (303 after a POST, RFC 9700 §4.12).
async fn logout(State(state): State<AppState>) -> Response {
    let mut response = see_other(HOME);
    if let Some(cookie) = state.config.set_cookie(SESSION, "", 0) {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::wait_text;

    #[test]
    fn waits_read_in_seconds_then_whole_minutes() {
        assert_eq!(wait_text(0), "1 second");
        assert_eq!(wait_text(1), "1 second");
        assert_eq!(wait_text(2), "2 seconds");
        assert_eq!(wait_text(119), "119 seconds");
        assert_eq!(wait_text(120), "2 minutes");
        assert_eq!(wait_text(121), "3 minutes", "rounded up: never earlier than the server allows");
        assert_eq!(wait_text(900), "15 minutes");
    }
}
