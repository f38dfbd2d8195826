//! Snapchat (Marketing API, `adsapi.snapchat.com/v1`), connected with the person's own Snapchat
//! business account through OAuth 2.0 ([`OAUTH`], scope `snapchat-marketing-api`). Access tokens
//! last one hour; the gateway refreshes them (`squaremcp_core::connections`).
//!
//! Three tools: the account (`get_me`, the health probe), the ad accounts across the person's
//! organizations, and `create_snap`, which is partner-only: no API sends a Snap to friends, and
//! the nearest real endpoint (a Story on a Public Profile) is allow-listed ([`tools`]).

use serde_json::Value;
use squaremcp_core::Platform;

use crate::kit::oauth::{ClientAuth, Identity, OAuthApp};
use crate::kit::{CredentialDocument, PlatformEntry};

mod credential;
mod dialect;
mod tools;

/// The real API, path and version included.
pub const DEFAULT_ORIGIN: &str = "https://adsapi.snapchat.com/v1";

/// What a connection stores (written by the Connect flow, not typed by people).
pub const CREDENTIAL_EXAMPLE: &str = r#"{"access_token": "eyJ…", "refresh_token": "…", "expires_at": 1767225600, "scopes": ["snapchat-marketing-api"], "account": {"id": "1a2b3c4d-…", "name": "Ada", "username": null}}"#;

/// Snapchat's row in the registration table.
pub static ENTRY: PlatformEntry = PlatformEntry {
    platform: Platform::Snapchat,
    origin: DEFAULT_ORIGIN,
    credential_example: CREDENTIAL_EXAMPLE,
    check_credential: |document| credential::UserToken::parse(document).map(drop),
    tools: tools::build,
    health_probe: Some("get_me"),
    oauth: Some(&OAUTH),
    routing_key: None,
};

/// Snap's OAuth 2.0 app (Snap Business Manager → Business Details → OAuth app): the client id and
/// secret go in the token form; the Marketing API's authorization flow does not use PKCE. Snap
/// may return a new refresh token on a refresh; the kit keeps whichever it gets.
pub static OAUTH: OAuthApp = OAuthApp {
    platform: Platform::Snapchat,
    authorize_url: "https://accounts.snapchat.com/login/oauth2/authorize",
    token_url: "https://accounts.snapchat.com/login/oauth2/access_token",
    profile_url: "https://adsapi.snapchat.com/v1/me",
    scopes: &["snapchat-marketing-api"],
    pkce: false,
    client_auth: ClientAuth::Post,
    rotates_refresh_tokens: false,
    identity,
    ..OAuthApp::DEFAULTS
};

/// Who the token belongs to, from `GET /v1/me`: `{"request_status", "me": {"id", "display_name", "email", …}}`.
fn identity(profile: &Value) -> Option<Identity> {
    let me = profile.get("me")?;
    Some(Identity {
        id: me
            .get("id")?
            .as_str()
            .filter(|id| !id.is_empty())?
            .to_owned(),
        name: me
            .get("display_name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        username: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_identity_is_the_me_id_and_display_name() {
        let profile = json!({"request_status": "SUCCESS", "me": {"id": "u1", "display_name": "Ada", "email": "a@example.com"}});
        assert_eq!(
            identity(&profile),
            Some(Identity {
                id: "u1".into(),
                name: "Ada".into(),
                username: None
            })
        );
        assert_eq!(identity(&json!({"request_status": "ERROR"})), None);
    }
}
