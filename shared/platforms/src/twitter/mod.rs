//! X (Twitter) API v2, connected with the customer's own account through OAuth 2.0 with PKCE
//! ([`OAUTH`]). Access tokens last two hours and refresh tokens rotate; the gateway refreshes them
//! (`squaremcp_core::connections`, one refresh per connection at a time, under a store lease). A
//! 401 may be an expired token: the gateway refreshes once and re-runs the call before it asks the
//! person to reconnect.
//!
//! X bills per request (pay-per-use credits): every tool description says how many requests a
//! call makes, and the call log keeps one record per call with its tool.

use serde_json::Value;
use squaremcp_core::Platform;

use crate::kit::oauth::{ClientAuth, Identity, OAuthApp};
use crate::kit::{CredentialDocument, PlatformEntry};

mod credential;
pub(crate) mod dialect;
mod tools;
mod upload;

/// The real API, path and version included. Media uploads use the same origin
/// (`/2/media/upload/…`), so `SQUAREMCP_TWITTER_BASE_URL` moves them too.
pub const DEFAULT_ORIGIN: &str = "https://api.x.com/2";

/// What a connection stores (written by the Connect flow, not typed by people).
pub const CREDENTIAL_EXAMPLE: &str = r#"{"access_token": "…", "refresh_token": "…", "expires_at": 1767225600, "scopes": ["tweet.read", "tweet.write", "users.read", "media.write", "offline.access"], "account": {"id": "2244994945", "name": "Ada", "username": "ada"}}"#;

/// X's row in the registration table. `get_me` stays the health probe: one cheap read of the
/// connected account, the same call the Connect flow makes.
pub static ENTRY: PlatformEntry = PlatformEntry {
    platform: Platform::Twitter,
    origin: DEFAULT_ORIGIN,
    credential_example: CREDENTIAL_EXAMPLE,
    check_credential: |document| credential::UserToken::parse(document).map(drop),
    tools: tools::build,
    health_probe: Some("get_me"),
    oauth: Some(&OAUTH),
    routing_key: None,
};

/// X's OAuth 2.0 app: authorization code with PKCE, confidential client (Basic), rotating
/// refresh tokens (`offline.access`). Scopes: reading (`tweet.read users.read`), posting
/// (`tweet.write`), uploading media (`media.write`) and refreshing (`offline.access`).
pub static OAUTH: OAuthApp = OAuthApp {
    platform: Platform::Twitter,
    authorize_url: "https://x.com/i/oauth2/authorize",
    token_url: "https://api.x.com/2/oauth2/token",
    profile_url: "https://api.x.com/2/users/me",
    scopes: &["tweet.read", "tweet.write", "users.read", "media.write", "offline.access"],
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
    ..OAuthApp::DEFAULTS
};
