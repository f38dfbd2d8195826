//! The platforms the gateway calls: one module per platform, each a [`PlatformModule`] with its
//! credential check and its tools (JSON Schema, handler, HTTP client call).
//!
//! Build a [`PlatformConfig`] once per cold start and hand [`modules`] to the tool registry.

use std::collections::BTreeMap;
use std::time::Duration;

use squaremcp_core::Platform;
use squaremcp_core::tool::PlatformModule;

mod arguments;
pub mod telegram;

/// What every platform module needs from the outside: one shared HTTP client (connection pool)
/// and each platform's API base URL.
#[derive(Clone, Debug)]
pub struct PlatformConfig {
    pub http: reqwest::Client,
    /// Overrides only; [`PlatformConfig::base_url`] falls back to [`default_base_url`].
    base_urls: BTreeMap<Platform, String>,
}

impl PlatformConfig {
    /// Every platform at its real API address.
    pub fn new(http: reqwest::Client) -> Self {
        Self { http, base_urls: BTreeMap::new() }
    }

    /// Points `platform` at another address (a mock, a proxy). A trailing `/` is dropped.
    pub fn with_base_url(mut self, platform: Platform, base_url: impl Into<String>) -> Self {
        let base_url = base_url.into().trim().trim_end_matches('/').to_owned();
        self.base_urls.insert(platform, base_url);
        self
    }

    /// Applies the overrides `lookup` knows, by each platform's variable name
    /// ([`Platform::base_url_env`], e.g. `SQUAREMCP_TELEGRAM_BASE_URL`). Empty values are ignored.
    /// The binary passes `|name| std::env::var(name).ok()`; tests pass a map.
    pub fn with_base_urls_from(mut self, lookup: impl Fn(&str) -> Option<String>) -> Self {
        for platform in Platform::ALL {
            if let Some(url) = lookup(&platform.base_url_env()).filter(|url| !url.trim().is_empty()) {
                self = self.with_base_url(platform, url);
            }
        }
        self
    }

    /// The override for `platform`, else its real address; `None` for a platform without an HTTP API
    /// (or not implemented yet).
    pub fn base_url(&self, platform: Platform) -> Option<&str> {
        self.base_urls.get(&platform).map(String::as_str).or_else(|| default_base_url(platform))
    }
}

/// The real API address of each implemented HTTP platform.
pub fn default_base_url(platform: Platform) -> Option<&'static str> {
    match platform {
        Platform::Telegram => Some(telegram::DEFAULT_BASE_URL),
        _ => None,
    }
}

/// Every implemented platform, in the order the tool list shows them.
pub fn modules(config: &PlatformConfig) -> Vec<Box<dyn PlatformModule>> {
    let telegram_base = config.base_url(Platform::Telegram).unwrap_or(telegram::DEFAULT_BASE_URL);
    vec![Box::new(telegram::TelegramModule::new(config.http.clone(), telegram_base))]
}

/// The connect timeout of [`http_client`].
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The whole-request timeout of [`http_client`]; a tool call must end well inside a Lambda's limit.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The HTTP client for every platform: short timeouts, a `SquareMCP/<version>` user agent, and no
/// redirects, so that a URL carrying a token (Telegram puts it in the path) is never sent anywhere
/// else and a credential header never follows a redirect to another host.
///
/// # Panics
/// Only when the TLS backend cannot start, which no request could survive either; it is built
/// once per cold start.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("SquareMCP/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the HTTP client's TLS backend failed to start")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telegram_defaults_to_the_real_api() {
        let config = PlatformConfig::new(reqwest::Client::new());
        assert_eq!(config.base_url(Platform::Telegram), Some("https://api.telegram.org"));
        assert_eq!(config.base_url(Platform::Email), None);
    }

    #[test]
    fn overrides_come_from_the_platform_variable_and_lose_their_trailing_slash() {
        let config = PlatformConfig::new(reqwest::Client::new()).with_base_urls_from(|name| match name {
            "SQUAREMCP_TELEGRAM_BASE_URL" => Some("http://127.0.0.1:8081/ ".to_owned()),
            "SQUAREMCP_DISCORD_BASE_URL" => Some("  ".to_owned()),
            _ => None,
        });
        assert_eq!(config.base_url(Platform::Telegram), Some("http://127.0.0.1:8081"));
        assert_eq!(config.base_url(Platform::Discord), None, "an empty variable is no override");
    }

    #[test]
    fn modules_lists_telegram_with_its_five_tools() {
        let modules = modules(&PlatformConfig::new(http_client()));
        let platforms: Vec<Platform> = modules.iter().map(|m| m.platform()).collect();
        assert_eq!(platforms, [Platform::Telegram]);
        let names: Vec<String> = modules[0].tools().iter().map(|t| t.definition().name.clone()).collect();
        assert_eq!(
            names,
            ["telegram_get_me", "telegram_send_message", "telegram_send_photo", "telegram_get_updates", "telegram_get_chat"]
        );
    }
}
