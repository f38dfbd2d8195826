//! The `oauth` route group: discovery documents, registration, authorization (consent),
//! token and revocation endpoints, with the 2025-03-26 root aliases. Errors are RFC 6749 JSON
//! on the API endpoints and pages (never redirects) where the client or redirect URI is in
//! doubt. CORS is open on the endpoints MCP clients call from browsers, and absent from
//! `/oauth/authorize`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS,
    ACCESS_CONTROL_MAX_AGE, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, LOCATION, ORIGIN, PRAGMA, RETRY_AFTER, VARY,
    WWW_AUTHENTICATE,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use serde::Deserialize;
use serde_json::Value;
use squaremcp_auth::{AuthError, AuthorizeError, AuthorizeParams, ClientCredentials, ConsentError, OAuthError, TokenRequest};
use squaremcp_core::Secret;

use crate::client_ip::PeerIp;

use crate::pages::{self, Consent};
use crate::{AppState, login};

pub fn router() -> Router<AppState> {
    let api = Router::new()
        .route("/.well-known/oauth-authorization-server", get(authorization_server_metadata))
        .route("/.well-known/oauth-protected-resource", get(protected_resource_metadata))
        .route("/.well-known/oauth-protected-resource/mcp", get(protected_resource_metadata))
        .route("/oauth/register", post(register))
        .route("/register", post(register))
        .route("/oauth/token", post(token))
        .route("/token", post(token))
        .route("/oauth/revoke", post(revoke))
        .layer(from_fn(open_cors));
    let front = Router::new()
        .route("/oauth/authorize", get(authorize).post(decide))
        .route("/authorize", get(authorize).post(decide));
    api.merge(front)
}

/// These endpoints take no cookies, so any origin may call them (MCP Inspector and other
/// browser-based clients do); no credentials are allowed and `Vary: Origin` keeps caches honest.
async fn open_cors(request: Request, next: Next) -> Response {
    let origin = request.headers().get(ORIGIN).cloned();
    let mut response = if request.method() == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    if let Some(origin) = origin {
        let headers = response.headers_mut();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
        headers.insert(
            ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Authorization, Content-Type, MCP-Protocol-Version, Mcp-Session-Id, x-api-key"),
        );
        headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("WWW-Authenticate, Mcp-Session-Id"));
        headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
        headers.append(VARY, HeaderValue::from_static("Origin"));
    }
    response
}

fn json(status: StatusCode, body: &Value) -> Response {
    (status, [(CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// Token-endpoint style: never cached (RFC 6749 §5.1).
fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// The one place OAuth errors become HTTP.
fn oauth_error(error: &OAuthError) -> Response {
    let status = match error {
        OAuthError::InvalidClient(_) => StatusCode::UNAUTHORIZED,
        OAuthError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        OAuthError::Server(AuthError::Store(_)) => StatusCode::SERVICE_UNAVAILABLE,
        OAuthError::Server(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    if let OAuthError::Server(e) = error {
        tracing::error!(error = %e, "OAuth request failed");
    }
    let body = serde_json::json!({"error": error.code(), "error_description": error.description()});
    let mut response = no_store(json(status, &body));
    match error {
        OAuthError::InvalidClient(_) => {
            response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static(r#"Basic realm="SquareMCP""#));
        }
        OAuthError::TooManyRequests { retry_after } => {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        _ => {}
    }
    response
}

async fn authorization_server_metadata(State(state): State<AppState>) -> Response {
    json(StatusCode::OK, &state.auth.authorization_server_metadata())
}

async fn protected_resource_metadata(State(state): State<AppState>) -> Response {
    json(StatusCode::OK, &state.auth.protected_resource_metadata())
}

async fn register(State(state): State<AppState>, PeerIp(ip): PeerIp, body: Bytes) -> Response {
    let metadata: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(_) => return oauth_error(&OAuthError::InvalidClientMetadata("the body must be a JSON object".into())),
    };
    match state.auth.register_client(&metadata, &ip).await {
        Ok(registered) => no_store(json(StatusCode::CREATED, &registered.response())),
        Err(e) => oauth_error(&e),
    }
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, Secret<String>)>, OAuthError> {
    let Some(value) = headers.get(AUTHORIZATION) else { return Ok(None) };
    let malformed = || OAuthError::InvalidClient("malformed Basic credentials".into());
    let text = value.to_str().map_err(|_| malformed())?;
    let Some((scheme, encoded)) = text.trim().split_once(' ') else { return Err(malformed()) };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let unescape = |s: &str| -> String { url::form_urlencoded::parse(format!("x={s}").as_bytes()).map(|(_, v)| v.into_owned()).next().unwrap_or_default() };
    Ok(Some((unescape(id), Secret::new(unescape(secret)))))
}

fn parse_form<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, OAuthError> {
    serde_urlencoded::from_bytes(body)
        .map_err(|_| OAuthError::InvalidRequest("the body must be form-encoded, with each parameter at most once".into()))
}

async fn token(State(state): State<AppState>, PeerIp(ip): PeerIp, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let basic = basic_credentials(&headers)?;
        let mut request: TokenRequest = parse_form(&body)?;
        let credentials =
            ClientCredentials { basic, client_id: request.client_id.clone(), client_secret: request.client_secret.take().map(Secret::new), client_ip: ip };
        state.auth.token(request, credentials).await
    }
    .await;
    match result {
        Ok(tokens) => no_store(json(StatusCode::OK, &tokens.to_json())),
        Err(e) => oauth_error(&e),
    }
}

#[derive(Deserialize)]
struct RevokeForm {
    token: Option<String>,
    #[serde(rename = "token_type_hint")]
    _hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

async fn revoke(State(state): State<AppState>, PeerIp(ip): PeerIp, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let basic = basic_credentials(&headers)?;
        let form: RevokeForm = parse_form(&body)?;
        let token = form.token.filter(|t| !t.is_empty()).ok_or_else(|| OAuthError::InvalidRequest("token is required".into()))?;
        let credentials = ClientCredentials { basic, client_id: form.client_id, client_secret: form.client_secret.map(Secret::new), client_ip: ip };
        state.auth.revoke(&token, credentials).await
    }
    .await;
    match result {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(e) => oauth_error(&e),
    }
}

pub(crate) fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            response.headers_mut().insert(LOCATION, value);
            pages::security_headers(response.headers_mut());
            response
        }
        Err(_) => pages::error(StatusCode::BAD_REQUEST, "Invalid redirect", "The redirect address is not valid."),
    }
}

fn authorize_error_page(error: &AuthorizeError) -> Response {
    match error {
        AuthorizeError::MissingClient => {
            pages::error(StatusCode::BAD_REQUEST, "Invalid request", "The request does not say which application is asking (client_id).")
        }
        AuthorizeError::UnknownClient => pages::error(
            StatusCode::BAD_REQUEST,
            "Unknown application",
            "This application is not registered here, or its registration expired. Connect again from the application.",
        ),
        AuthorizeError::BadRedirectUri(why) => {
            pages::error(StatusCode::BAD_REQUEST, "Invalid redirect address", &format!("The request was refused: {why}."))
        }
        AuthorizeError::ClientDocument(why) => pages::error(
            StatusCode::BAD_REQUEST,
            "Application not accepted",
            &format!("invalid_client: {why}. The application's publisher must fix it; nothing was sent back to the application."),
        ),
        AuthorizeError::TooManyRequests { why, retry_after } => {
            let mut page = pages::error(StatusCode::TOO_MANY_REQUESTS, "Try again later", &format!("The request was refused: {why}."));
            page.headers_mut().insert(RETRY_AFTER, HeaderValue::from(*retry_after));
            page
        }
        // Shown, not redirected: the caller redirects only trusted ones (see `authorize`).
        AuthorizeError::Redirect { error, description, .. } => pages::error(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            &format!("The application sent an invalid authorization request ({error}: {description})."),
        ),
        AuthorizeError::Server(e) => {
            tracing::error!(error = %e, "authorization request failed");
            pages::error(StatusCode::SERVICE_UNAVAILABLE, "Try again shortly", "The service could not handle the request.")
        }
    }
}

/// `GET /oauth/authorize`: validate, then sign in (303 to `/login`) or show the consent page.
async fn authorize(State(state): State<AppState>, PeerIp(ip): PeerIp, headers: HeaderMap, uri: Uri) -> Response {
    let params: AuthorizeParams = match serde_urlencoded::from_str(uri.query().unwrap_or("")) {
        Ok(params) => params,
        Err(_) => {
            return pages::error(StatusCode::BAD_REQUEST, "Invalid request", "Each parameter may appear only once.");
        }
    };
    let session = login::session(&state, &headers);
    let request = match state.auth.validate_authorization(&params, &ip).await {
        Ok(request) => request,
        // RFC 9700 §4.11.2: redirect an error only to a client this server has reason to trust,
        // and only for a signed-in person; anyone else sees the error here.
        Err(AuthorizeError::Redirect { location, trusted: true, .. }) if session.is_some() => return see_other(&location),
        Err(e) => return authorize_error_page(&e),
    };
    let Some(session) = session else {
        let here = uri.path_and_query().map_or("/oauth/authorize", |pq| pq.as_str());
        let return_to: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
        return see_other(&format!("/login?return_to={return_to}"));
    };
    let result = async {
        if state.auth.has_consent(&session.customer_id, &request).await? {
            return Ok(see_other(&state.auth.issue_code(&session.customer_id, &request).await?));
        }
        let pending = state.auth.begin_consent(&session, request).await?;
        let origin = url::Url::parse(&pending.request.redirect_uri).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
        let loopback = ["localhost", "127.0.0.1", "[::1]"]
            .iter()
            .any(|h| url::Url::parse(&pending.request.redirect_uri).is_ok_and(|u| u.host_str() == Some(*h)));
        Ok::<_, AuthError>(pages::consent(&Consent {
            client_name: &pending.request.client_name,
            client_host: pending.request.client_host.as_deref(),
            redirect_host: &pending.request.redirect_host(),
            redirect_origin: &origin,
            loopback,
            email: &session.email,
            request_id: &pending.request_id,
            csrf: &pending.csrf,
        }))
    }
    .await;
    result.unwrap_or_else(|e| authorize_error_page(&AuthorizeError::Server(e)))
}

#[derive(Deserialize)]
struct Decision {
    request: Option<String>,
    csrf: Option<String>,
    action: Option<String>,
}

/// `POST /oauth/authorize`: the consent form. CSRF-checked against the session.
async fn decide(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(form) = serde_urlencoded::from_bytes::<Decision>(&body) else {
        return pages::error(StatusCode::BAD_REQUEST, "Invalid request", "The form could not be read.");
    };
    let Some(session) = login::session(&state, &headers) else {
        return pages::error(StatusCode::UNAUTHORIZED, "Signed out", "Your session ended before you answered. Connect again from the application.");
    };
    let allow = match form.action.as_deref() {
        Some("allow") => true,
        Some("deny") => false,
        _ => return pages::error(StatusCode::BAD_REQUEST, "Invalid request", "Choose Allow or Deny."),
    };
    let request = form.request.unwrap_or_default();
    let csrf = form.csrf.unwrap_or_default();
    match state.auth.decide(&session, &request, &csrf, allow).await {
        Ok(location) => see_other(&location),
        Err(ConsentError::BadCsrf) => {
            tracing::warn!(customer = session.customer_id.as_str(), "consent refused: bad CSRF token");
            pages::error(StatusCode::FORBIDDEN, "Request refused", "The form was not sent from this site's consent page.")
        }
        Err(ConsentError::Expired) => pages::error(
            StatusCode::BAD_REQUEST,
            "Request expired",
            "This authorization request expired or was already answered. Connect again from the application.",
        ),
        Err(ConsentError::Server(e)) => authorize_error_page(&AuthorizeError::Server(e)),
    }
}

/// So that `login` can tell a sign-in for an authorization from a plain one.
pub(crate) fn is_authorize_path(path: &str) -> bool {
    path.starts_with("/oauth/authorize") || path.starts_with("/authorize")
}

