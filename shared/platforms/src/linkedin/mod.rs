//! LinkedIn, connected with the member's own account through OAuth 2.0 ([`OAUTH`], the
//! self-serve products *Sign In with LinkedIn using OpenID Connect* and *Share on LinkedIn*).
//!
//! Every call carries `Authorization: Bearer`, `LinkedIn-Version: YYYYMM` (configuration,
//! `SQUAREMCP_LINKEDIN_VERSION`) and `X-Restli-Protocol-Version: 2.0.0` ([`dialect`]). Tools:
//! `get_profile` (OpenID userinfo, also the health probe), `create_post` (Posts API; text,
//! article, image or video), `upload_video` (Videos API: initialize, upload the parts to the URLs
//! LinkedIn returns, finalize, wait for processing), and two partner-only APIs that answer with
//! the restriction unless the operator declares access ([`crate::kit::partner`]).

use serde_json::Value;
use squaremcp_core::Platform;

use crate::kit::oauth::{ClientAuth, Identity, OAuthApp};
use crate::kit::{CredentialDocument, PlatformEntry};

mod credential;
mod dialect;
mod media;
mod tools;

/// The real API origin: the versioned `/rest/…` endpoints and OpenID's `/v2/userinfo` both live
/// under it, so an override of it moves both.
pub const DEFAULT_ORIGIN: &str = "https://api.linkedin.com";

/// What a connection stores (written by the Connect flow, not typed by people). `account.id` is
/// the member's OpenID `sub`: posts are authored as `urn:li:person:{sub}`.
pub const CREDENTIAL_EXAMPLE: &str = r#"{"access_token": "AQXdSP_W41_UPs5ioT_t8HESyODB4FqbkJ8LrV_5mff4gPODzOYR", "expires_at": 1767225600, "scopes": ["openid", "profile", "w_member_social"], "account": {"id": "782bbtaQ", "name": "Ada Lovelace"}}"#;

/// LinkedIn's row in the registration table.
pub static ENTRY: PlatformEntry = PlatformEntry {
    platform: Platform::Linkedin,
    origin: DEFAULT_ORIGIN,
    credential_example: CREDENTIAL_EXAMPLE,
    check_credential: |document| credential::MemberToken::parse(document).map(drop),
    tools: tools::build,
    health_probe: Some("get_profile"),
    oauth: Some(&OAUTH),
    routing_key: None,
};

/// LinkedIn's OAuth 2.0 app (3-legged authorization code flow): client id and secret in the
/// token request's form, no PKCE (LinkedIn uses it for native apps only). Refresh tokens are
/// issued to approved Marketing Developer Platform partners only; without one the member
/// connects again when the 60-day access token ends.
pub static OAUTH: OAuthApp = OAuthApp {
    platform: Platform::Linkedin,
    authorize_url: "https://www.linkedin.com/oauth/v2/authorization",
    token_url: "https://www.linkedin.com/oauth/v2/accessToken",
    profile_url: "https://api.linkedin.com/v2/userinfo",
    scopes: &["openid", "profile", "w_member_social"],
    pkce: false,
    client_auth: ClientAuth::Post,
    rotates_refresh_tokens: false,
    identity: member_identity,
    ..OAuthApp::DEFAULTS
};

/// The member from OpenID's userinfo: `sub` is the id posts are authored with.
fn member_identity(profile: &Value) -> Option<Identity> {
    let sub = profile.get("sub")?.as_str().filter(|s| !s.is_empty())?;
    Some(Identity {
        id: sub.to_owned(),
        name: profile.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
        username: None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_identity_is_the_openid_subject() {
        let identity = member_identity(&json!({"sub": "782bbtaQ", "name": "Ada Lovelace", "given_name": "Ada"})).expect("an identity");
        assert_eq!((identity.id.as_str(), identity.name.as_str(), identity.username.as_deref()), ("782bbtaQ", "Ada Lovelace", None));
        assert_eq!(identity.account_name(), "782bbtaQ");
        assert!(member_identity(&json!({"name": "no sub"})).is_none());
    }
}
