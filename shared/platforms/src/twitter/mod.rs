//! X (Twitter) API v2, connected with the customer's own account through OAuth 2.0 with PKCE
//! ([`OAUTH`]): for now the account check, `twitter_get_me`, which is also the health probe.
//! Access tokens last two hours and refresh tokens rotate; the gateway refreshes them
//! (`squaremcp_core::connections`). A 401 may be an expired token: the gateway refreshes once
//! and re-runs the call before it asks the person to reconnect.

use std::sync::Arc;

use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde_json::{Value, json};
use squaremcp_core::Platform;
use squaremcp_core::tool::{Annotations, FailureKind, Tool, ToolFailure};

use crate::kit::http::retry_after_header;
use crate::kit::oauth::{ClientAuth, Identity, OAuthApp};
use crate::kit::{Answer, CredentialDocument, CredentialError, Dialect, Fields, HttpApi, HttpTool, HttpToolSpec, PlatformContext, PlatformEntry, ToolSpec};

/// The real API, path and version included.
pub const DEFAULT_ORIGIN: &str = "https://api.x.com/2";

/// What a connection stores (written by the Connect flow, not typed by people).
pub const CREDENTIAL_EXAMPLE: &str = r#"{"access_token": "…", "refresh_token": "…", "expires_at": 1767225600, "scopes": ["tweet.read", "users.read", "offline.access"], "account": {"id": "2244994945", "name": "Ada", "username": "ada"}}"#;

/// X's row in the registration table.
pub static ENTRY: PlatformEntry = PlatformEntry {
    platform: Platform::Twitter,
    origin: DEFAULT_ORIGIN,
    credential_example: CREDENTIAL_EXAMPLE,
    check_credential: |document| UserToken::parse(document).map(drop),
    tools: build,
    health_probe: Some("get_me"),
    oauth: Some(&OAUTH),
    routing_key: None,
};

/// X's OAuth 2.0 app: authorization code with PKCE, confidential client (Basic), rotating
/// refresh tokens (`offline.access`).
pub static OAUTH: OAuthApp = OAuthApp {
    platform: Platform::Twitter,
    authorize_url: "https://x.com/i/oauth2/authorize",
    token_url: "https://api.x.com/2/oauth2/token",
    profile_url: "https://api.x.com/2/users/me",
    scopes: &["tweet.read", "users.read", "offline.access"],
    pkce: true,
    client_auth: ClientAuth::Basic,
    rotates_refresh_tokens: true,
    identity: |profile| {
        let data = profile.get("data")?;
        Some(Identity {
            id: data.get("id")?.as_str()?.to_owned(),
            name: data.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
            username: data.get("username").and_then(Value::as_str).map(str::to_owned),
        })
    },
};

const FIELDS: [&str; 5] = ["access_token", "refresh_token", "expires_at", "scopes", "account"];

/// The user access token of a connection. No `Debug`: nothing can print it.
pub(crate) struct UserToken {
    token: String,
    authorization: HeaderValue,
}

impl CredentialDocument for UserToken {
    const EXAMPLE: &'static str = CREDENTIAL_EXAMPLE;

    fn parse(document: &Value) -> Result<Self, CredentialError> {
        let token = Fields::of(document, &FIELDS, CREDENTIAL_EXAMPLE)?.string("access_token", "connect X on your account page (/account)")?;
        let malformed = |problem: &str| CredentialError::Malformed { field: "access_token", problem: problem.to_owned() };
        let mut authorization = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| malformed("cannot go in an HTTP header"))?;
        authorization.set_sensitive(true);
        Ok(Self { token: token.to_owned(), authorization })
    }

    fn secrets(&self) -> Vec<&str> {
        vec![&self.token]
    }
}

pub(crate) struct XDialect;

impl Dialect for XDialect {
    type Credential = UserToken;
    const PLATFORM: Platform = Platform::Twitter;
    const NAME: &'static str = "X";

    fn authorize(&self, request: reqwest::RequestBuilder, token: &UserToken) -> reqwest::RequestBuilder {
        request.header(AUTHORIZATION, token.authorization.clone())
    }

    fn interpret(&self, operation: &str, answer: Answer<'_>) -> Result<Value, ToolFailure> {
        let (status, body) = (answer.status, serde_json::from_slice::<Value>(answer.body).ok());
        if (200..300).contains(&status) {
            return body.ok_or_else(|| ToolFailure::new(FailureKind::Upstream, format!("X answered {operation} with a body that is not JSON.")));
        }
        let (kind, message) = match status {
            401 => (FailureKind::AuthRevoked, "X rejected the access token (401). Reconnect X on your account page (/account).".to_owned()),
            403 => (FailureKind::PermissionMissing, format!("X refused {operation} (403): the connection lacks a scope or the app an access level.")),
            404 => (FailureKind::NotFound, format!("X found nothing for {operation} (404).")),
            400 => (FailureKind::InvalidInput, format!("X rejected {operation} (400).")),
            429 => {
                let reset = answer.headers.get("x-rate-limit-reset").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
                let wait = retry_after_header(answer.headers).or_else(|| reset.map(|at| at.saturating_sub(now)));
                let text = wait.map_or("wait a little and retry".to_owned(), |s| format!("retry after {s} seconds"));
                return Err(ToolFailure::rate_limited(format!("X is rate limiting {operation}; {text}."), wait));
            }
            500..=599 => (FailureKind::UpstreamTransient, format!("X had a problem with {operation} (HTTP {status}). Try again shortly.")),
            _ => (FailureKind::Upstream, format!("X answered {operation} with HTTP {status}.")),
        };
        Err(ToolFailure::new(kind, message))
    }
}

fn build(context: &PlatformContext) -> Vec<Arc<dyn Tool>> {
    let api = Arc::new(HttpApi::new(context.http.clone(), context.origin.clone(), XDialect));
    let get_me = HttpToolSpec::get(
        ToolSpec::new(
            "get_me",
            "X: get the connected account",
            "Returns the connected X account (id, name, username) as {\"data\": {...}}. Use it to check that the connection works.",
            Annotations::READ,
        )
        .output(json!({
            "type": "object",
            "properties": {"data": {"type": "object", "properties": {
                "id": {"type": "string"}, "name": {"type": "string"}, "username": {"type": "string"}
            }, "required": ["id", "username"]}},
            "required": ["data"]
        })),
        "/users/me",
    )
    .operation("GET /2/users/me");
    vec![Arc::new(HttpTool::new(get_me, api))]
}
