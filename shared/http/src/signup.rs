//! Self-service sign-up and password reset pages (served with the `login` route group):
//! `GET/POST /signup`, `GET/POST /signup/verify/{token}`, `GET/POST /reset`,
//! `GET/POST /reset/{token}`. All of them answer a bare 404, like a path that does not exist,
//! unless the operator opened sign-up (`SQUAREMCP_SIGNUP=open`).
//!
//! Forms carry the login form's CSRF token (a signed double-submit cookie). A link's token is
//! used only by a POST from its page, never by the GET: mail scanners that open links must not
//! use them up. The answers to a sign-up or reset request are the same whether or not the
//! address has an account.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;
use squaremcp_auth::{MIN_PASSWORD_CHARS, SignupError};

use crate::AppState;
use crate::client_ip::PeerIp;
use crate::cookies::{LOGIN_CSRF, SESSION};
use crate::pages::{self, escape};

const CSRF_COOKIE_TTL: i64 = 3600;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/signup", get(show_signup).post(submit_signup))
        .route(
            "/signup/verify/{token}",
            get(show_verify).post(submit_verify),
        )
        .route("/reset", get(show_reset).post(submit_reset))
        .route(
            "/reset/{token}",
            get(show_new_password).post(submit_new_password),
        )
}

fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

/// The form's CSRF token, and the cookie to set when the browser has no nonce yet.
fn csrf(state: &AppState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    let existing = state
        .config
        .cookie(headers, LOGIN_CSRF)
        .filter(|n| n.len() == 43);
    let nonce = existing
        .clone()
        .unwrap_or_else(|| state.auth.new_csrf_nonce());
    let cookie = if existing.is_none() {
        state.config.set_cookie(LOGIN_CSRF, &nonce, CSRF_COOKIE_TTL)
    } else {
        None
    };
    (state.auth.login_csrf(&nonce), cookie)
}

fn csrf_ok(state: &AppState, headers: &HeaderMap, token: Option<&str>) -> bool {
    let nonce = state.config.cookie(headers, LOGIN_CSRF).unwrap_or_default();
    state.auth.check_login_csrf(&nonce, token.unwrap_or(""))
}

/// A page with a form: the CSRF field is added, and the nonce cookie set when new.
fn form_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    title: &str,
    body: impl Fn(&str) -> String,
) -> Response {
    let (token, cookie) = csrf(state, headers);
    let mut response = pages::page(
        status,
        title,
        &body(&format!(
            "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
            escape(&token)
        )),
        &[],
    );
    if let Some(cookie) = cookie {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    response
}

fn error_line(error: Option<&str>) -> String {
    error
        .map(|e| {
            format!(
                "<p class=\"error\" role=\"alert\" id=\"form-error\">{}</p>",
                escape(e)
            )
        })
        .unwrap_or_default()
}

fn message(status: StatusCode, title: &str, html: &str) -> Response {
    pages::page(
        status,
        title,
        &format!("<h1>{}</h1>{html}", escape(title)),
        &[],
    )
}

fn expired_form() -> Response {
    message(
        StatusCode::FORBIDDEN,
        "Form expired",
        "<p role=\"alert\">Your form expired. Go back, reload the page and try again.</p>",
    )
}

fn server_error(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "sign-up or reset failed");
    pages::error(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again shortly",
        "The service could not complete your request.",
    )
}

/// The answer to errors every form shares; `None` for the ones each form shows itself.
fn common_error(e: SignupError) -> Result<Response, SignupError> {
    match e {
        SignupError::Closed => Ok(not_found()),
        SignupError::RateLimited => Ok(message(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            "<p role=\"alert\">Too many requests for this address or from your network. Wait an hour and try again.</p>",
        )),
        SignupError::Server(e) => Ok(server_error(&e)),
        other => Err(other),
    }
}

#[derive(Deserialize)]
struct Fields {
    email: Option<String>,
    password: Option<String>,
    csrf: Option<String>,
}

fn read(body: &[u8]) -> Fields {
    serde_urlencoded::from_bytes(body).unwrap_or(Fields {
        email: None,
        password: None,
        csrf: None,
    })
}

fn signup_form(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    email: &str,
    error: Option<&str>,
) -> Response {
    form_page(state, headers, status, "Create an account", |csrf| {
        format!(
            "<h1>Create an account</h1><p class=\"muted\">We will email you a link to confirm the address.</p>{error}\
             <form method=\"post\" action=\"/signup\">{csrf}\
             <label for=\"email\">Email</label>\
             <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"email\" required autofocus value=\"{email}\">\
             <label for=\"password\">Password</label>\
             <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" minlength=\"{MIN_PASSWORD_CHARS}\" required>\
             <button type=\"submit\">Create account</button></form>\
             <p class=\"muted\">Already have an account? <a href=\"/login\">Sign in</a>.</p>",
            error = error_line(error),
            email = escape(email),
        )
    })
}

async fn show_signup(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !state.auth.signup_open() {
        return not_found();
    }
    signup_form(&state, &headers, StatusCode::OK, "", None)
}

async fn submit_signup(
    State(state): State<AppState>,
    PeerIp(ip): PeerIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !state.auth.signup_open() {
        return not_found();
    }
    let fields = read(&body);
    let email = fields.email.as_deref().unwrap_or("").trim();
    if !csrf_ok(&state, &headers, fields.csrf.as_deref()) {
        tracing::warn!(client_ip = ip, "sign-up refused: bad CSRF token");
        return expired_form();
    }
    match state
        .auth
        .signup(email, fields.password.as_deref().unwrap_or(""), &ip)
        .await
    {
        Ok(()) => message(
            StatusCode::OK,
            "Check your email",
            "<p role=\"status\">We sent a message to the address you gave. Open the link in it to finish; \
             it works once, for a limited time.</p><p class=\"muted\">Nothing arrived? Check your spam folder, \
             or <a href=\"/signup\">try again</a>.</p>",
        ),
        Err(e) => match common_error(e) {
            Ok(response) => response,
            Err(SignupError::InvalidEmail) => signup_form(
                &state,
                &headers,
                StatusCode::BAD_REQUEST,
                email,
                Some("Enter a valid email address."),
            ),
            Err(SignupError::Rejected(why)) => {
                signup_form(&state, &headers, StatusCode::BAD_REQUEST, email, Some(why))
            }
            Err(other) => server_error(&other),
        },
    }
}

async fn show_verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    if !state.auth.signup_open() {
        return not_found();
    }
    form_page(
        &state,
        &headers,
        StatusCode::OK,
        "Confirm your email",
        |csrf| {
            format!(
                "<h1>Confirm your email</h1><p>Confirm to create your SquareMCP account.</p>\
             <form method=\"post\" action=\"/signup/verify/{token}\">{csrf}<button type=\"submit\">Confirm and create account</button></form>",
                token = escape(&token),
            )
        },
    )
}

async fn submit_verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    if !state.auth.signup_open() {
        return not_found();
    }
    if !csrf_ok(&state, &headers, read(&body).csrf.as_deref()) {
        return expired_form();
    }
    match state.auth.verify_signup(&token).await {
        Ok(customer) => message(
            StatusCode::OK,
            "Your account is ready",
            &format!(
                "<p role=\"status\">The account for <strong>{}</strong> is created.</p><p><a class=\"button\" href=\"/login?return_to=%2Faccount\">Sign in</a></p>",
                escape(customer.email.as_str())
            ),
        ),
        Err(e) => match common_error(e) {
            Ok(response) => response,
            Err(SignupError::AlreadyExists) => message(
                StatusCode::CONFLICT,
                "You already have an account",
                "<p role=\"alert\">This address already has an account.</p><p><a href=\"/login\">Sign in</a> or \
                 <a href=\"/reset\">reset your password</a>.</p>",
            ),
            Err(_) => invalid_link("/signup", "sign up again"),
        },
    }
}

fn invalid_link(again: &str, what: &str) -> Response {
    message(
        StatusCode::BAD_REQUEST,
        "This link does not work",
        &format!(
            "<p role=\"alert\">The link is invalid, already used or expired.</p><p><a href=\"{again}\">{what}</a> to get a new one.</p>"
        ),
    )
}

fn reset_form(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    email: &str,
    error: Option<&str>,
) -> Response {
    form_page(state, headers, status, "Reset your password", |csrf| {
        format!(
            "<h1>Reset your password</h1><p class=\"muted\">Enter the email of your account: we will send a link to choose a new password.</p>{error}\
             <form method=\"post\" action=\"/reset\">{csrf}\
             <label for=\"email\">Email</label>\
             <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required autofocus value=\"{email}\">\
             <button type=\"submit\">Send the link</button></form>\
             <p class=\"muted\"><a href=\"/login\">Back to sign in</a></p>",
            error = error_line(error),
            email = escape(email),
        )
    })
}

async fn show_reset(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !state.auth.signup_open() {
        return not_found();
    }
    reset_form(&state, &headers, StatusCode::OK, "", None)
}

async fn submit_reset(
    State(state): State<AppState>,
    PeerIp(ip): PeerIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !state.auth.signup_open() {
        return not_found();
    }
    let fields = read(&body);
    let email = fields.email.as_deref().unwrap_or("").trim();
    if !csrf_ok(&state, &headers, fields.csrf.as_deref()) {
        tracing::warn!(client_ip = ip, "reset refused: bad CSRF token");
        return expired_form();
    }
    match state.auth.request_reset(email, &ip).await {
        Ok(()) => message(
            StatusCode::OK,
            "Check your email",
            "<p role=\"status\">If an account uses this address, we sent it a link to choose a new password. \
             The link works once, for a limited time.</p><p class=\"muted\"><a href=\"/login\">Back to sign in</a></p>",
        ),
        Err(e) => match common_error(e) {
            Ok(response) => response,
            Err(SignupError::InvalidEmail) => reset_form(
                &state,
                &headers,
                StatusCode::BAD_REQUEST,
                email,
                Some("Enter a valid email address."),
            ),
            Err(other) => server_error(&other),
        },
    }
}

fn new_password_form(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    token: &str,
    error: Option<&str>,
) -> Response {
    form_page(state, headers, status, "Choose a new password", |csrf| {
        format!(
            "<h1>Choose a new password</h1><p class=\"muted\">This signs you out everywhere and disconnects your MCP clients.</p>{error}\
             <form method=\"post\" action=\"/reset/{token}\">{csrf}\
             <label for=\"password\">New password</label>\
             <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" minlength=\"{MIN_PASSWORD_CHARS}\" required autofocus>\
             <button type=\"submit\">Set the password</button></form>",
            error = error_line(error),
            token = escape(token),
        )
    })
}

async fn show_new_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    if !state.auth.signup_open() {
        return not_found();
    }
    new_password_form(&state, &headers, StatusCode::OK, &token, None)
}

async fn submit_new_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    if !state.auth.signup_open() {
        return not_found();
    }
    let fields = read(&body);
    if !csrf_ok(&state, &headers, fields.csrf.as_deref()) {
        return expired_form();
    }
    match state
        .auth
        .reset_password(&token, fields.password.as_deref().unwrap_or(""))
        .await
    {
        Ok(_) => {
            let mut response = message(
                StatusCode::OK,
                "Your password is changed",
                "<p role=\"status\">You were signed out everywhere and your MCP clients were disconnected; \
                 connect them again after signing in.</p><p><a class=\"button\" href=\"/login?return_to=%2Faccount\">Sign in</a></p>",
            );
            if let Some(clear) = state.config.set_cookie(SESSION, "", 0) {
                response.headers_mut().append(SET_COOKIE, clear);
            }
            response
        }
        Err(e) => match common_error(e) {
            Ok(response) => response,
            Err(SignupError::Rejected(why)) => {
                new_password_form(&state, &headers, StatusCode::BAD_REQUEST, &token, Some(why))
            }
            Err(_) => invalid_link("/reset", "Ask for a new link"),
        },
    }
}
