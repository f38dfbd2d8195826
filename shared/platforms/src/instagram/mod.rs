//! Instagram (professional accounts, Instagram Platform on the Graph API). An account is one
//! Instagram professional account, connected either with **Instagram Login** (an Instagram user
//! token, host `graph.instagram.com`) or with **Facebook Login** (a Facebook user or Page token,
//! host `graph.facebook.com`, the Instagram account linked to a Page). The credential names which
//! (`login`), and the dialect picks the host per call.
//!
//! Publishing is Meta's container flow: create a container from a public URL (Meta downloads
//! it), wait for its `status_code` to be `FINISHED` (bounded, [`crate::kit::PublishWait`]), then
//! `media_publish`. A container still processing when the wait ends is returned with its id;
//! `instagram_publish_container` finishes it later.
//!
//! `SQUAREMCP_INSTAGRAM_BASE_URL` replaces both hosts' scheme, host and port (a mock serves both).

use squaremcp_core::Platform;

use crate::kit::oauth::meta::PAGES_URL;
use crate::kit::oauth::{ClientAuth, Connects, LoginChoice, MetaAccounts, OAuthApp};
use crate::kit::{CredentialDocument, PlatformEntry};

mod credential;
mod dialect;
mod tools;

/// Instagram Login's host, the entry's origin; the version is part of each path.
pub const DEFAULT_ORIGIN: &str = "https://graph.instagram.com";
/// Facebook Login's host for Instagram accounts linked to a Page.
pub const FACEBOOK_LOGIN_ORIGIN: &str = "https://graph.facebook.com";

/// The credential document's shape, shown in help texts and error messages.
pub const CREDENTIAL_EXAMPLE: &str =
    r#"{"login": "instagram", "ig_user_id": "17841405822304914", "access_token": "IGAAExampleInstagramUserToken"}"#;

/// Instagram's row in the registration table.
pub static ENTRY: PlatformEntry = PlatformEntry {
    platform: Platform::Instagram,
    origin: DEFAULT_ORIGIN,
    credential_example: CREDENTIAL_EXAMPLE,
    check_credential: |document| credential::InstagramToken::parse(document).map(drop),
    tools: tools::build,
    health_probe: Some("get_profile"),
    oauth: Some(&OAUTH),
    routing_key: None,
};

/// Connect Instagram through Facebook Login (the default): the person picks the Pages in Meta's
/// dialog, and the Instagram professional account linked to each becomes an account, used with
/// its Page's token (`kit::oauth::meta`). `SQUAREMCP_INSTAGRAM_LOGIN=instagram` connects through
/// Instagram Login instead ([`INSTAGRAM_LOGIN_OAUTH`]).
pub static OAUTH: OAuthApp = OAuthApp {
    platform: Platform::Instagram,
    authorize_url: "https://www.facebook.com/{version}/dialog/oauth",
    token_url: "https://graph.facebook.com/{version}/oauth/access_token",
    profile_url: PAGES_URL,
    scopes: &["instagram_basic", "instagram_content_publish", "pages_show_list", "pages_read_engagement"],
    pkce: false,
    client_auth: ClientAuth::Post,
    scope_separator: ",",
    connects: Connects::MetaPages(MetaAccounts::InstagramOfPages),
    login_choice: Some(&LOGIN_CHOICE),
    ..OAuthApp::DEFAULTS
};

static LOGIN_CHOICE: LoginChoice = LoginChoice { default: "facebook", other: "instagram", other_app: &INSTAGRAM_LOGIN_OAUTH };

/// Connect Instagram through Instagram Login (Business Login for Instagram, an Instagram app's id
/// and secret): one professional account per authorization, a 60-day token renewed before it ends.
pub static INSTAGRAM_LOGIN_OAUTH: OAuthApp = OAuthApp {
    platform: Platform::Instagram,
    authorize_url: "https://www.instagram.com/oauth/authorize",
    token_url: "https://api.instagram.com/oauth/access_token",
    profile_url: "https://graph.instagram.com/{version}/me?fields=user_id,username",
    scopes: &["instagram_business_basic", "instagram_business_content_publish"],
    pkce: false,
    client_auth: ClientAuth::Post,
    scope_separator: ",",
    connects: Connects::InstagramLogin,
    ..OAuthApp::DEFAULTS
};

/// The two hosts for `origin` (Instagram Login's, Facebook Login's): Meta's own, unless the
/// operator moved the API elsewhere (a mock, a proxy), where both follow it.
pub fn hosts(origin: &str) -> (String, String) {
    let origin = origin.trim_end_matches('/');
    if origin == DEFAULT_ORIGIN { (DEFAULT_ORIGIN.to_owned(), FACEBOOK_LOGIN_ORIGIN.to_owned()) } else { (origin.to_owned(), origin.to_owned()) }
}
