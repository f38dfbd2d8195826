//! The platform kit: what every platform is built from.
//!
//! - [`spec`]: a tool as data ([`ToolSpec`], [`Arg`]); schema, required list, log allow-list and
//!   request all come from one argument list.
//! - [`http`]: the generic handler for plain HTTP tools ([`HttpToolSpec`] rows run by [`HttpTool`]
//!   through a platform's [`Dialect`]).
//! - [`credential`]: typed credential documents with errors that name fields, never values.
//! - [`net`]: customer-supplied hosts resolved once and checked (the SSRF guard), and TLS trust.
//! - [`media`]: photos and videos given as a URL or inline, checked, and read in parts.
//! - [`poll`]: bounded waiting for a platform's long-running work (publishes, processing).
//! - [`partner`]: tools whose API only approved partners may call, answered honestly.
//! - [`PlatformEntry`]: one row of the registration table in the crate root.

use std::sync::Arc;

use serde_json::Value;
use squaremcp_core::Platform;
use squaremcp_core::tool::{PlatformModule, Tool};

pub mod client;
pub mod credential;
pub mod graph;
pub mod http;
pub mod media;
pub mod net;
pub mod oauth;
pub mod partner;
pub mod poll;
pub mod roots;
pub mod spec;

pub use client::HttpClient;
pub use credential::{CredentialDocument, CredentialError, Fields};
pub use http::{Answer, Dialect, HttpApi, HttpTool, HttpToolSpec, Output, RawAnswer};
pub use media::{Media, MediaInput, MediaSettings, MediaStream};
pub use partner::{PartnerAccess, partner_only};
pub use poll::{Progress, PublishWait, Waited};
pub use net::{GuardError, GuardedResolver, NetworkPolicy};
pub use spec::{Arg, Place, ToolSpec, UpstreamRequest, object_schema};

/// What a platform's tools are built with, once per cold start.
#[derive(Clone, Debug)]
pub struct PlatformContext {
    /// The shared HTTP client (one connection pool per process).
    pub http: HttpClient,
    /// The API origin, path and version included: the real one, or the operator's override of
    /// its scheme and host. Empty for a platform without an HTTP API ([`PlatformEntry::NO_ORIGIN`]).
    pub origin: String,
    /// What the operator allows for addresses customers supply (mail servers, endpoints).
    pub network: NetworkPolicy,
    /// The Graph API version Meta's platforms (WhatsApp) put in their paths, e.g. `v26.0`
    /// (`SQUAREMCP_GRAPH_API_VERSION`).
    pub graph_api_version: String,
    /// The `LinkedIn-Version` header LinkedIn's tools send, `YYYYMM` (`SQUAREMCP_LINKEDIN_VERSION`).
    pub linkedin_version: String,
    /// The gateway's own records, for tools that answer from them rather than from the platform
    /// (WhatsApp's message statuses arrive by webhook only). `None` where no store is at hand
    /// (declaration-only uses); such tools then say so.
    pub records: Option<Records>,
    /// Where directory vaults live and how their sync is inspected (Obsidian).
    pub obsidian: crate::obsidian::ObsidianSettings,
    /// Media checks and the guarded fetcher (caps from `SQUAREMCP_MEDIA_MAX_BYTES` and
    /// `SQUAREMCP_MEDIA_MAX_INLINE_BYTES`).
    pub media: Media,
    /// How long a publish may be waited for (`SQUAREMCP_PUBLISH_WAIT_SECONDS`).
    pub publish_wait: PublishWait,
    /// Partner-only tools the operator declared access to (`SQUAREMCP_PARTNER_ACCESS`).
    pub partner_access: PartnerAccess,
}

impl PlatformContext {
    /// The default [`NetworkPolicy`]: private hosts refused, only the platform's TLS roots.
    pub fn new(http: impl Into<HttpClient>, origin: String) -> Self {
        Self {
            http: http.into(),
            origin,
            network: NetworkPolicy::default(),
            graph_api_version: DEFAULT_GRAPH_API_VERSION.to_owned(),
            linkedin_version: DEFAULT_LINKEDIN_VERSION.to_owned(),
            records: None,
            obsidian: crate::obsidian::ObsidianSettings::default(),
            media: Media::default(),
            publish_wait: PublishWait::default(),
            partner_access: PartnerAccess::default(),
        }
    }
}

/// The Graph API version used unless the operator sets `SQUAREMCP_GRAPH_API_VERSION`.
pub const DEFAULT_GRAPH_API_VERSION: &str = "v26.0";

/// Checks a Graph API version: `v` and a version number like `26.0`.
pub fn graph_api_version(text: &str) -> Result<String, String> {
    let text = text.trim();
    let ok = text.strip_prefix('v').and_then(|number| number.split_once('.')).is_some_and(|(major, minor)| {
        !major.is_empty() && !minor.is_empty() && major.len() <= 3 && minor.len() <= 3
            && major.bytes().chain(minor.bytes()).all(|b| b.is_ascii_digit())
    });
    if ok { Ok(text.to_owned()) } else { Err(format!("`{text}` is not a Graph API version like {DEFAULT_GRAPH_API_VERSION}")) }
}

/// The `LinkedIn-Version` used unless the operator sets `SQUAREMCP_LINKEDIN_VERSION`: a monthly
/// release, each supported for at least a year.
pub const DEFAULT_LINKEDIN_VERSION: &str = "202607";

/// Checks a `LinkedIn-Version`: `YYYYMM`, a year from 2022 and a month 01 to 12.
pub fn linkedin_version(text: &str) -> Result<String, String> {
    let text = text.trim();
    let ok = text.len() == 6
        && text.bytes().all(|b| b.is_ascii_digit())
        && text[..4].parse::<u32>().is_ok_and(|year| (2022..=2099).contains(&year))
        && text[4..].parse::<u32>().is_ok_and(|month| (1..=12).contains(&month));
    if ok { Ok(text.to_owned()) } else { Err(format!("`{text}` is not a LinkedIn-Version like {DEFAULT_LINKEDIN_VERSION} (YYYYMM)")) }
}

/// The gateway's store and clock, handed to the few tools that read the gateway's own records.
#[derive(Clone)]
pub struct Records {
    pub store: Arc<dyn squaremcp_core::Store>,
    pub clock: Arc<dyn squaremcp_core::Clock>,
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Records")
    }
}

/// One row of the registration table: everything the gateway knows about a platform.
pub struct PlatformEntry {
    pub platform: Platform,
    /// The real API origin with its path and version, e.g. `https://discord.com/api/v10`;
    /// [`PlatformEntry::NO_ORIGIN`] for a platform that is not an HTTP API (email): it has no
    /// base URL to override.
    pub origin: &'static str,
    /// The credential document's shape, for help texts and error messages.
    pub credential_example: &'static str,
    /// Parses a credential document before it is stored.
    pub check_credential: fn(&Value) -> Result<(), CredentialError>,
    /// The platform's tools, in the order `tools/list` shows them.
    pub tools: fn(&PlatformContext) -> Vec<Arc<dyn Tool>>,
    /// A read-only tool (short name) that proves a credential works, for connection health.
    pub health_probe: Option<&'static str>,
    /// The OAuth app customers connect with ("Connect …" on `/account`), for platforms that sign
    /// in with OAuth; offered once the operator configures its client id and secret.
    pub oauth: Option<&'static oauth::OAuthApp>,
    /// For platforms that call in (webhooks): how to read, from a credential document, the
    /// resource that routes an inbound event to its customer (WhatsApp's phone number id).
    pub routing_key: Option<squaremcp_core::routing::RoutingKey>,
}

impl PlatformEntry {
    /// The `origin` of a platform that is not an HTTP API.
    pub const NO_ORIGIN: &'static str = "";

    /// The HTTP origin, unless the platform has none.
    pub fn http_origin(&self) -> Option<&'static str> {
        (!self.origin.is_empty()).then_some(self.origin)
    }

    /// Builds the platform's module with its tools.
    pub fn module(&'static self, context: &PlatformContext) -> Box<dyn PlatformModule> {
        Box::new(KitModule { entry: self, tools: (self.tools)(context) })
    }
}

struct KitModule {
    entry: &'static PlatformEntry,
    tools: Vec<Arc<dyn Tool>>,
}

impl PlatformModule for KitModule {
    fn platform(&self) -> Platform {
        self.entry.platform
    }

    fn check_credential(&self, credential: &Value) -> Result<(), String> {
        (self.entry.check_credential)(credential).map_err(|error| error.to_string())
    }

    fn credential_example(&self) -> &'static str {
        self.entry.credential_example
    }

    fn tools(&self) -> Vec<Arc<dyn Tool>> {
        self.tools.clone()
    }

    fn health_probe(&self) -> Option<&'static str> {
        self.entry.health_probe
    }

    fn routing_key(&self) -> Option<squaremcp_core::routing::RoutingKey> {
        self.entry.routing_key
    }
}

/// The origin to call: `default` itself, or `override_url`'s scheme, host and port with
/// `default`'s path (the API version stays the real one). The override must be a bare
/// `http(s)://host[:port]`; anything else is refused with the reason.
pub fn origin(default: &str, override_url: Option<&str>) -> Result<String, String> {
    if default.is_empty() && override_url.is_some_and(|u| !u.trim().is_empty()) {
        return Err("this platform is not an HTTP API: there is no base URL to override".to_owned());
    }
    let default_trimmed = default.trim_end_matches('/');
    let Some(given) = override_url.map(str::trim).filter(|u| !u.is_empty()) else {
        return Ok(default_trimmed.to_owned());
    };
    let url = reqwest::Url::parse(given).map_err(|e| format!("`{given}` is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{given}` must start with http:// or https://"));
    }
    let Some(host) = url.host_str() else {
        return Err(format!("`{given}` has no host"));
    };
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!(
            "`{given}` must be only a scheme, host and port (like http://127.0.0.1:8081): the path and version stay the real API's"
        ));
    }
    let default_url = reqwest::Url::parse(default_trimmed).ok();
    // A default with a query (TikTok's profile endpoint `/v2/user/info/?fields=…`) keeps it, and
    // its path as written (TikTok's paths end with a slash).
    let query = default_url.as_ref().and_then(|d| d.query()).map(|q| format!("?{q}")).unwrap_or_default();
    let path = default_url
        .as_ref()
        .map(|d| if query.is_empty() { d.path().trim_end_matches('/') } else { d.path() }.to_owned())
        .unwrap_or_default();
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Ok(format!("{}://{host}{port}{path}{query}", url.scheme()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_replaces_scheme_and_host_and_keeps_the_real_path() {
        assert_eq!(origin("https://discord.com/api/v10", None), Ok("https://discord.com/api/v10".to_owned()));
        assert_eq!(origin("https://discord.com/api/v10", Some("  ")), Ok("https://discord.com/api/v10".to_owned()));
        assert_eq!(
            origin("https://discord.com/api/v10", Some("http://127.0.0.1:9000/")),
            Ok("http://127.0.0.1:9000/api/v10".to_owned())
        );
        assert_eq!(origin("https://api.telegram.org", Some("http://localhost:81")), Ok("http://localhost:81".to_owned()));
        assert_eq!(origin("https://api.telegram.org", Some("http://[::1]:81")), Ok("http://[::1]:81".to_owned()));
    }

    #[test]
    fn an_override_that_is_not_a_bare_origin_is_refused_with_the_reason() {
        for (given, reason) in [
            ("ftp://x", "http:// or https://"),
            ("not a url", "is not a URL"),
            ("http://127.0.0.1:9000/api/v9", "only a scheme, host and port"),
            ("http://127.0.0.1:9000/?a=1", "only a scheme, host and port"),
        ] {
            let why = origin("https://discord.com/api/v10", Some(given)).expect_err(given);
            assert!(why.contains(reason), "{given}: {why}");
        }
        let why = origin(PlatformEntry::NO_ORIGIN, Some("http://127.0.0.1:1")).expect_err("no HTTP API");
        assert!(why.contains("not an HTTP API"), "{why}");
    }

    #[test]
    fn linkedin_versions_are_checked() {
        assert_eq!(linkedin_version(" 202511 "), Ok("202511".to_owned()));
        for bad in ["2025-11", "202513", "202500", "20251", "v202511", "199901"] {
            assert!(linkedin_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn graph_api_versions_are_checked() {
        assert_eq!(graph_api_version(" v25.0 "), Ok("v25.0".to_owned()));
        for bad in ["26.0", "v26", "v26.0/x", "vx.0", "v.0", "latest"] {
            assert!(graph_api_version(bad).is_err(), "{bad}");
        }
    }
}
