//! Snapchat (Marketing API, `adsapi.snapchat.com/v1`), connected with the person's own Snapchat
//! business account through OAuth 2.0 ([`OAUTH`], scope `snapchat-marketing-api`). Access tokens
//! last one hour; the gateway refreshes them (`squaremcp_core::connections`).
//!
//! Three tools: the account (`get_me`, the health probe), the ad accounts across the person's
//! organizations, and `create_snap`, which is partner-only: no API sends a Snap to friends, and
//! the nearest real endpoint (a Story on a Public Profile, [`public_profile`]) is allow-listed.
//! Operators whose app Snap allow-listed declare it (`SQUAREMCP_PARTNER_ACCESS`) and connect with
//! the Public Profile scope too ([`PUBLIC_PROFILE_OAUTH`], `SQUAREMCP_SNAPCHAT_LOGIN`).

use serde_json::Value;
use squaremcp_core::Platform;

use crate::kit::oauth::{ClientAuth, Identity, LoginChoice, OAuthApp};
use crate::kit::{CredentialDocument, PlatformEntry};

mod credential;
mod dialect;
mod public_profile;
mod tools;

pub use public_profile::{PART_BYTES, PUBLIC_PROFILE_ORIGIN};

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
    login_choice: Some(&LOGIN_CHOICE),
    ..OAuthApp::DEFAULTS
};

/// `SQUAREMCP_SNAPCHAT_LOGIN=public_profile`: the same app asking for Snap's Public Profile API
/// scope as well (`snapchat-profile-api`), which `create_snap` needs. Only for apps Snap
/// allow-listed: Snap refuses the scope to others, so it is not asked for by default.
static LOGIN_CHOICE: LoginChoice = LoginChoice {
    default: "marketing",
    other: "public_profile",
    other_app: &PUBLIC_PROFILE_OAUTH,
};

/// [`OAUTH`] with the Public Profile API's scope added.
pub static PUBLIC_PROFILE_OAUTH: OAuthApp = OAuthApp {
    scopes: &["snapchat-marketing-api", "snapchat-profile-api"],
    login_choice: None,
    ..OAUTH
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

    #[test]
    fn the_public_profile_login_adds_only_the_profile_scope() {
        assert_eq!(PUBLIC_PROFILE_OAUTH.scopes, ["snapchat-marketing-api", "snapchat-profile-api"]);
        assert_eq!(OAUTH.scopes, ["snapchat-marketing-api"]);
        assert_eq!((PUBLIC_PROFILE_OAUTH.token_url, PUBLIC_PROFILE_OAUTH.pkce), (OAUTH.token_url, OAUTH.pkce));
        let choice = OAUTH.login_choice.expect("a login choice");
        assert_eq!((choice.default, choice.other), ("marketing", "public_profile"));
        assert!(std::ptr::eq(choice.other_app, &PUBLIC_PROFILE_OAUTH));
    }
}
