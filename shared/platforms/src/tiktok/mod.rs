//! TikTok (Content Posting API and Display API, `open.tiktokapis.com/v2`), connected with the
//! creator's own account through OAuth 2.0 ([`OAUTH`], Login Kit for Web: no PKCE). Four tools: the profile (the
//! health probe), the creator info TikTok requires before a post, posting a video (direct post or
//! upload to the inbox, the file streamed in TikTok's chunks, [`publish`]) and the publish status.
//!
//! Every answer is `{"data": …, "error": {"code", "message", "log_id"}}`; success is
//! `error.code == "ok"` ([`dialect`]). Access tokens last about two hours and refresh tokens
//! rotate; the gateway refreshes them (`squaremcp_core::connections`).

use serde_json::Value;
use squaremcp_core::Platform;

use crate::kit::oauth::{ClientAuth, Identity, OAuthApp};
use crate::kit::{CredentialDocument, PlatformEntry};

mod credential;
mod dialect;
mod publish;
mod tools;

/// The real API, path and version included.
pub const DEFAULT_ORIGIN: &str = "https://open.tiktokapis.com/v2";

/// What a connection stores (written by the Connect flow, not typed by people).
pub const CREDENTIAL_EXAMPLE: &str = r#"{"access_token": "act.…", "refresh_token": "rft.…", "expires_at": 1767225600, "scopes": ["user.info.basic", "video.publish", "video.upload"], "account": {"id": "723f24d7-e717-40f8-a2b6-cb8464cd23b4", "name": "Ada", "username": null}}"#;

/// TikTok's row in the registration table.
pub static ENTRY: PlatformEntry = PlatformEntry {
    platform: Platform::Tiktok,
    origin: DEFAULT_ORIGIN,
    credential_example: CREDENTIAL_EXAMPLE,
    check_credential: |document| credential::UserToken::parse(document).map(drop),
    tools: tools::build,
    health_probe: Some("get_profile"),
    oauth: Some(&OAUTH),
    routing_key: None,
};

/// TikTok's OAuth 2.0 app (Login Kit for Web): `client_key` instead of `client_id`, scopes joined
/// with commas, the client key and secret in the token form, rotating refresh tokens. No PKCE:
/// TikTok's token endpoint says `code_verifier` is "required for mobile and desktop apps" only, and
/// Login Kit for Web's authorization request has no `code_challenge` (its desktop flow hashes the
/// challenge as hex, not RFC 7636's base64url, so sending one to the web flow is not safe). The
/// token answer carries `open_id`, `scope` (comma-separated), `expires_in`, `refresh_token` and
/// `refresh_expires_in`; the kit stores the tokens, `expires_at` and the scopes.
pub static OAUTH: OAuthApp = OAuthApp {
    platform: Platform::Tiktok,
    authorize_url: "https://www.tiktok.com/v2/auth/authorize/",
    token_url: "https://open.tiktokapis.com/v2/oauth/token/",
    // User info needs its fields named; these are the ones `user.info.basic` grants.
    profile_url: "https://open.tiktokapis.com/v2/user/info/?fields=open_id,union_id,avatar_url,display_name",
    scopes: &["user.info.basic", "video.publish", "video.upload"],
    pkce: false,
    client_auth: ClientAuth::Post,
    rotates_refresh_tokens: true,
    identity,
    client_id_param: "client_key",
    scope_separator: ",",
    ..OAuthApp::DEFAULTS
};

/// Who the token belongs to, from user info: `open_id` (per app) and `display_name`. TikTok's
/// `username` needs the `user.info.profile` scope, which the gateway does not ask for.
fn identity(profile: &Value) -> Option<Identity> {
    let user = profile.pointer("/data/user")?;
    Some(Identity {
        id: user
            .get("open_id")?
            .as_str()
            .filter(|id| !id.is_empty())?
            .to_owned(),
        name: user
            .get("display_name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        username: user
            .get("username")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
            .map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_identity_is_the_open_id_and_display_name() {
        let profile = json!({"data": {"user": {"open_id": "abc", "display_name": "Ada"}}, "error": {"code": "ok"}});
        assert_eq!(
            identity(&profile),
            Some(Identity {
                id: "abc".into(),
                name: "Ada".into(),
                username: None
            })
        );
        assert_eq!(
            identity(&json!({"data": {}, "error": {"code": "access_token_invalid"}})),
            None
        );
    }

    #[test]
    fn the_profile_endpoint_keeps_its_fields_under_an_override() {
        let url =
            crate::kit::origin(OAUTH.profile_url, Some("http://127.0.0.1:9")).expect("an origin");
        assert_eq!(
            url,
            "http://127.0.0.1:9/v2/user/info/?fields=open_id,union_id,avatar_url,display_name"
        );
    }
}
