//! The session cookie's generation, checked once per request at the edge of the route groups
//! that read the cookie (login and account pages, Connect, OAuth consent).
//!
//! Handlers read the session synchronously from the signed cookie; this layer makes sure the
//! cookie they see is still current: a cookie issued before the customer's sessions were revoked
//! (password change or reset, `squaremcp customers revoke-sessions`), or of a disabled account,
//! is taken out of the request and cleared in the browser, so every handler sees a signed-out
//! visitor. When the standing cannot be read the cookie is taken out too: it fails closed.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};

use crate::AppState;
use crate::cookies::SESSION;

pub(crate) async fn check(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(cookie) = state.config.cookie(request.headers(), SESSION) else {
        return next.run(request).await;
    };
    let current = match state.auth.current_session(&cookie).await {
        Ok(session) => session.is_some(),
        Err(error) => {
            tracing::error!(%error, "the session's standing could not be read; treating the visitor as signed out");
            false
        }
    };
    if current {
        return next.run(request).await;
    }
    let name = state.config.cookie_name(SESSION);
    without_cookie(request.headers_mut(), &name);
    let mut response = next.run(request).await;
    // A handler that signed someone in has set a new session cookie: leave that one alone.
    let prefix = format!("{name}=");
    let sets_session = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .any(|v| v.as_bytes().starts_with(prefix.as_bytes()));
    if !sets_session && let Some(clear) = state.config.set_cookie(SESSION, "", 0) {
        response.headers_mut().append(SET_COOKIE, clear);
    }
    response
}

/// Removes the cookie `name` from the request's `Cookie` headers, keeping the others.
fn without_cookie(headers: &mut HeaderMap, name: &str) {
    let kept: Vec<String> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| {
            !pair.is_empty() && pair.split_once('=').is_none_or(|(k, _)| k.trim() != name)
        })
        .map(str::to_owned)
        .collect();
    headers.remove(COOKIE);
    if !kept.is_empty()
        && let Ok(value) = HeaderValue::from_str(&kept.join("; "))
    {
        headers.insert(COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_cookie_is_taken_out() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; session=old.jwt"));
        headers.append(COOKIE, HeaderValue::from_static("login_csrf=n"));
        without_cookie(&mut headers, "session");
        let left: Vec<_> = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert_eq!(left, ["a=1; login_csrf=n"]);
        let mut only = HeaderMap::new();
        only.insert(COOKIE, HeaderValue::from_static("session=x"));
        without_cookie(&mut only, "session");
        assert!(only.get(COOKIE).is_none());
    }
}
