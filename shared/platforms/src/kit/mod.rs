//! The platform kit: what every platform is built from.
//!
//! - [`spec`]: a tool as data ([`ToolSpec`], [`Arg`]); schema, required list, log allow-list and
//!   request all come from one argument list.
//! - [`http`]: the generic handler for plain HTTP tools ([`HttpToolSpec`] rows run by [`HttpTool`]
//!   through a platform's [`Dialect`]).
//! - [`credential`]: typed credential documents with errors that name fields, never values.
//! - [`PlatformEntry`]: one row of the registration table in the crate root.

use std::sync::Arc;

use serde_json::Value;
use squaremcp_core::Platform;
use squaremcp_core::tool::{PlatformModule, Tool};

pub mod credential;
pub mod http;
pub mod spec;

pub use credential::{CredentialDocument, CredentialError, Fields};
pub use http::{Answer, Dialect, HttpApi, HttpTool, HttpToolSpec, Output};
pub use spec::{Arg, Place, ToolSpec, UpstreamRequest};

/// What a platform's tools are built with, once per cold start.
#[derive(Clone, Debug)]
pub struct PlatformContext {
    /// The shared HTTP client (one connection pool per process).
    pub http: reqwest::Client,
    /// The API origin, path and version included: the real one, or the operator's override of
    /// its scheme and host.
    pub origin: String,
}

/// One row of the registration table: everything the gateway knows about a platform.
pub struct PlatformEntry {
    pub platform: Platform,
    /// The real API origin with its path and version, e.g. `https://discord.com/api/v10`.
    pub origin: &'static str,
    /// The credential document's shape, for help texts and error messages.
    pub credential_example: &'static str,
    /// Parses a credential document before it is stored.
    pub check_credential: fn(&Value) -> Result<(), CredentialError>,
    /// The platform's tools, in the order `tools/list` shows them.
    pub tools: fn(&PlatformContext) -> Vec<Arc<dyn Tool>>,
    /// A read-only tool (short name) that proves a credential works, for connection health.
    pub health_probe: Option<&'static str>,
}

impl PlatformEntry {
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
}

/// The origin to call: `default` itself, or `override_url`'s scheme, host and port with
/// `default`'s path (the API version stays the real one). The override must be a bare
/// `http(s)://host[:port]`; anything else is refused with the reason.
pub fn origin(default: &str, override_url: Option<&str>) -> Result<String, String> {
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
    let path = reqwest::Url::parse(default_trimmed).map(|d| d.path().trim_end_matches('/').to_owned()).unwrap_or_default();
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Ok(format!("{}://{host}{port}{path}", url.scheme()))
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
    }
}
