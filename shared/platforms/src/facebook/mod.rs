//! Facebook Pages (Graph API): one Page per account, connected with a Page access token. Reads
//! (the Page, its posts, a video) are rows of data; posts, photo posts and video posts are small
//! tools of their own ([`tools`]), because they check arguments across fields, upload a photo
//! as multipart, or wait for a video's processing.
//!
//! Every call carries `Authorization: Bearer <Page token>` (never the URL). The Graph API
//! version (`SQUAREMCP_GRAPH_API_VERSION`) is the first segment of every path. Videos go to
//! Meta's video host, `graph-video.facebook.com`; when the operator points
//! `SQUAREMCP_FACEBOOK_BASE_URL` elsewhere, videos follow it to that same origin.

use squaremcp_core::Platform;

use crate::kit::oauth::meta::PAGES_URL;
use crate::kit::oauth::{ClientAuth, Connects, MetaAccounts, OAuthApp};
use crate::kit::{CredentialDocument, PlatformEntry};

pub(crate) mod credential;
mod dialect;
mod tools;

/// The real API origin; the version is part of each path.
pub const DEFAULT_ORIGIN: &str = "https://graph.facebook.com";
/// Where video uploads go (Meta's documented host for `/{page-id}/videos`).
pub const VIDEO_ORIGIN: &str = "https://graph-video.facebook.com";

/// The credential document's shape, shown in help texts and error messages.
pub const CREDENTIAL_EXAMPLE: &str = r#"{"page_id": "104882489141131", "access_token": "EAAGm0PX4ZCpsBAExamplePageToken"}"#;

/// Facebook's row in the registration table.
pub static ENTRY: PlatformEntry = PlatformEntry {
    platform: Platform::Facebook,
    origin: DEFAULT_ORIGIN,
    credential_example: CREDENTIAL_EXAMPLE,
    check_credential: |document| credential::PageToken::parse(document).map(drop),
    tools: tools::build,
    health_probe: Some("get_page"),
    oauth: Some(&OAUTH),
    routing_key: None,
};

/// Connect Facebook: Meta's Facebook Login dialog, where the person picks the Pages; each Page
/// granted is stored as an account with its Page token (`kit::oauth::meta`).
pub static OAUTH: OAuthApp = OAuthApp {
    platform: Platform::Facebook,
    authorize_url: "https://www.facebook.com/{version}/dialog/oauth",
    token_url: "https://graph.facebook.com/{version}/oauth/access_token",
    profile_url: PAGES_URL,
    scopes: &["pages_show_list", "pages_read_engagement", "pages_manage_posts"],
    pkce: false,
    client_auth: ClientAuth::Post,
    scope_separator: ",",
    connects: Connects::MetaPages(MetaAccounts::Pages),
    ..OAuthApp::DEFAULTS
};

/// The video host for `origin`: Meta's own unless the operator moved the API elsewhere (a mock,
/// a proxy), where videos follow it.
pub fn video_origin(origin: &str) -> String {
    if origin.trim_end_matches('/') == DEFAULT_ORIGIN { VIDEO_ORIGIN.to_owned() } else { origin.trim_end_matches('/').to_owned() }
}
