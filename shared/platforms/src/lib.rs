//! The platforms the gateway calls: one folder per platform, each a row of [`PLATFORMS`] (its API
//! origin, credential document and tools), built with the [`kit`].
//!
//! Build a [`PlatformConfig`] once per cold start and hand [`modules`] to the tool registry.

use std::collections::BTreeMap;
use std::time::Duration;

use squaremcp_core::Platform;
use squaremcp_core::tool::PlatformModule;

pub mod discord;
pub mod email;
pub mod facebook;
pub mod instagram;
pub mod kit;
pub mod linkedin;
pub mod obsidian;
pub mod snapchat;
pub mod telegram;
pub mod tiktok;
pub mod twitter;
pub mod whatsapp;

use kit::{NetworkPolicy, PlatformContext, PlatformEntry};

/// The registration table: every implemented platform, in the order `tools/list` shows them.
/// Adding a platform is one folder and one line here.
pub static PLATFORMS: &[&PlatformEntry] = &[
    &telegram::ENTRY,
    &discord::ENTRY,
    &email::ENTRY,
    &obsidian::ENTRY,
    &whatsapp::ENTRY,
    &twitter::ENTRY,
    &facebook::ENTRY,
    &instagram::ENTRY,
    &linkedin::ENTRY,
    &tiktok::ENTRY,
    &snapchat::ENTRY,
];

/// The OAuth apps of the platforms customers connect with their own account ("Connect X" on
/// `/account`), from the table. An app is offered only once the operator configures its client id
/// and secret ([`kit::oauth::OAuthClients`]).
pub fn oauth_apps() -> Vec<&'static kit::oauth::OAuthApp> {
    // Email's mailbox providers are apps of one platform, outside its row's single `oauth`.
    PLATFORMS.iter().filter_map(|entry| entry.oauth).chain(email::OAUTH_APPS.iter()).collect()
}

/// How a platform's inbound webhooks are routed to a customer (see `squaremcp_core::routing`),
/// for the platforms that declare it in the table.
pub fn routing_key(platform: Platform) -> Option<squaremcp_core::routing::RoutingKey> {
    entry(platform)?.routing_key
}

/// The table's row for `platform`, if it is implemented.
pub fn entry(platform: Platform) -> Option<&'static PlatformEntry> {
    PLATFORMS.iter().copied().find(|entry| entry.platform == platform)
}

/// What every platform needs from the outside: one shared HTTP client (connection pool) and the
/// operator's overrides of API origins.
#[derive(Clone, Debug)]
pub struct PlatformConfig {
    pub http: kit::HttpClient,
    /// Resolved origins of the platforms the operator pointed elsewhere (a mock, a proxy).
    origins: BTreeMap<Platform, String>,
    /// What the operator allows for addresses customers supply (a mail server).
    pub network: NetworkPolicy,
    /// The Graph API version in WhatsApp's paths ([`kit::DEFAULT_GRAPH_API_VERSION`] unless set).
    pub graph_api_version: String,
    /// The `LinkedIn-Version` header ([`kit::DEFAULT_LINKEDIN_VERSION`] unless set).
    pub linkedin_version: String,
    /// The gateway's store and clock, for tools that answer from its records.
    pub records: Option<kit::Records>,
    /// Where directory vaults live (`SQUAREMCP_OBSIDIAN_ROOT`) and the `ob` command.
    pub obsidian: obsidian::ObsidianSettings,
    /// Caps on media tools upload ([`kit::media`]).
    pub media: kit::MediaSettings,
    /// How long a publish may be waited for ([`kit::poll`]).
    pub publish_wait: kit::PublishWait,
    /// Partner-only tools the operator declared access to ([`kit::partner`]).
    pub partner_access: kit::PartnerAccess,
}

impl PlatformConfig {
    /// Every platform at its real API address.
    pub fn new(http: impl Into<kit::HttpClient>) -> Self {
        Self {
            http: http.into(),
            origins: BTreeMap::new(),
            network: NetworkPolicy::default(),
            graph_api_version: kit::DEFAULT_GRAPH_API_VERSION.to_owned(),
            linkedin_version: kit::DEFAULT_LINKEDIN_VERSION.to_owned(),
            records: None,
            obsidian: obsidian::ObsidianSettings::default(),
            media: kit::MediaSettings::default(),
            publish_wait: kit::PublishWait::default(),
            partner_access: kit::PartnerAccess::default(),
        }
    }

    /// Caps on media (`SQUAREMCP_MEDIA_MAX_BYTES`, `SQUAREMCP_MEDIA_MAX_INLINE_BYTES`).
    pub fn with_media(mut self, settings: kit::MediaSettings) -> Self {
        self.media = settings;
        self
    }

    /// How long tools wait for a publish (`SQUAREMCP_PUBLISH_WAIT_SECONDS`, ...).
    pub fn with_publish_wait(mut self, wait: kit::PublishWait) -> Self {
        self.publish_wait = wait;
        self
    }

    /// Partner-only tools the operator has access to (`SQUAREMCP_PARTNER_ACCESS`).
    pub fn with_partner_access(mut self, access: kit::PartnerAccess) -> Self {
        self.partner_access = access;
        self
    }

    /// Where directory vaults live and how their sync is inspected (Obsidian).
    pub fn with_obsidian(mut self, settings: obsidian::ObsidianSettings) -> Self {
        self.obsidian = settings;
        self
    }

    /// The Graph API version (`SQUAREMCP_GRAPH_API_VERSION`), checked ([`kit::graph_api_version`]).
    pub fn with_graph_api_version(mut self, version: &str) -> Result<Self, String> {
        self.graph_api_version = kit::graph_api_version(version)?;
        Ok(self)
    }

    /// The `LinkedIn-Version` (`SQUAREMCP_LINKEDIN_VERSION`), checked ([`kit::linkedin_version`]).
    pub fn with_linkedin_version(mut self, version: &str) -> Result<Self, String> {
        self.linkedin_version = kit::linkedin_version(version)?;
        Ok(self)
    }

    /// The gateway's store and clock, for tools that answer from its records.
    pub fn with_records(mut self, records: kit::Records) -> Self {
        self.records = Some(records);
        self
    }

    /// Replaces the policy for customer-supplied addresses (private hosts, extra TLS roots).
    pub fn with_network(mut self, network: NetworkPolicy) -> Self {
        self.network = network;
        self
    }

    /// Points `platform` at another scheme, host and port (see [`kit::origin`]); the path and
    /// version stay the real API's. Refused with the reason when `url` is not a bare origin or
    /// the platform has no HTTP API here.
    pub fn with_base_url(mut self, platform: Platform, url: &str) -> Result<Self, String> {
        let entry = entry(platform)
            .filter(|entry| entry.http_origin().is_some())
            .ok_or_else(|| format!("{platform} has no HTTP API in this version"))?;
        let origin = kit::origin(entry.origin, Some(url))?;
        self.origins.insert(platform, origin);
        Ok(self)
    }

    /// Applies the overrides `lookup` knows, by each platform's variable name
    /// ([`Platform::base_url_env`], e.g. `SQUAREMCP_TELEGRAM_BASE_URL`). Empty values are ignored.
    /// The binary passes `|name| std::env::var(name).ok()`; tests pass a map.
    pub fn with_base_urls_from(mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        for entry in PLATFORMS.iter().filter(|entry| entry.http_origin().is_some()) {
            let variable = entry.platform.base_url_env();
            if let Some(url) = lookup(&variable).filter(|url| !url.trim().is_empty()) {
                self = self.with_base_url(entry.platform, &url).map_err(|why| format!("{variable}: {why}"))?;
            }
        }
        Ok(self)
    }

    /// The origin `platform`'s tools call: the override, else the real one; `None` for a
    /// platform that is not an HTTP API.
    pub fn origin(&self, platform: Platform) -> Option<String> {
        let entry = entry(platform).filter(|entry| entry.http_origin().is_some())?;
        Some(self.origins.get(&platform).cloned().unwrap_or_else(|| entry.origin.trim_end_matches('/').to_owned()))
    }
}

/// Every implemented platform's module, in table order.
pub fn modules(config: &PlatformConfig) -> Vec<Box<dyn PlatformModule>> {
    // One media fetcher for every platform, so its HTTP client is built at most once.
    let media = kit::Media::new(config.network.clone(), config.media);
    PLATFORMS
        .iter()
        .map(|entry| {
            let origin = config.origin(entry.platform).unwrap_or_else(|| entry.origin.to_owned());
            entry.module(&PlatformContext {
                http: config.http.clone(),
                origin,
                network: config.network.clone(),
                graph_api_version: config.graph_api_version.clone(),
                linkedin_version: config.linkedin_version.clone(),
                records: config.records.clone(),
                obsidian: config.obsidian.clone(),
                media: media.clone(),
                publish_wait: config.publish_wait,
                partner_access: config.partner_access.clone(),
            })
        })
        .collect()
}

/// The connect timeout of [`http_client`].
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The whole-request timeout of [`http_client`]: the gateway's default call timeout, so that no
/// single request outlives the call it belongs to (which ends inside the Lambda's limit).
/// `SQUAREMCP_CALL_TIMEOUT_SECONDS` sets both ([`http_client_with_timeout`]).
pub const REQUEST_TIMEOUT: Duration = squaremcp_core::gateway::DEFAULT_CALL_TIMEOUT;

/// The HTTP client for every platform: short timeouts, a `SquareMCP/<version>` user agent, and no
/// redirects, so that a URL carrying a token (Telegram puts it in the path) is never sent anywhere
/// else and a credential header never follows a redirect to another host.
///
/// Built once per process and shared (a clone is a handle to the same pool), on the process's one
/// read of the system root certificates ([`kit::roots`]), which the AWS SDK's client shares.
///
/// # Panics
/// Only when the TLS backend cannot start, which no request could survive either.
pub fn http_client() -> reqwest::Client {
    http_client_with_timeout(REQUEST_TIMEOUT)
}

/// [`http_client`] with another whole-request timeout (the configured call timeout). The first
/// client built is kept for the process; asking for another timeout builds a separate one.
///
/// # Panics
/// Only when the TLS backend cannot start, which no request could survive either.
pub fn http_client_with_timeout(request_timeout: Duration) -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<(Duration, reqwest::Client)> = std::sync::OnceLock::new();
    let build = || {
        kit::roots::trusting_system_roots(reqwest::Client::builder())
            .connect_timeout(CONNECT_TIMEOUT.min(request_timeout))
            .timeout(request_timeout)
            .user_agent(concat!("SquareMCP/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the HTTP client's TLS backend failed to start")
    };
    let (kept_timeout, kept) = CLIENT.get_or_init(|| (request_timeout, build()));
    if *kept_timeout == request_timeout { kept.clone() } else { build() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_default_to_their_real_api() {
        let config = PlatformConfig::new(reqwest::Client::new());
        assert_eq!(config.origin(Platform::Telegram).as_deref(), Some("https://api.telegram.org"));
        assert_eq!(config.origin(Platform::Discord).as_deref(), Some("https://discord.com/api/v10"));
        assert_eq!(config.origin(Platform::Email), None);
    }

    #[test]
    fn overrides_come_from_the_platform_variable_and_keep_the_real_path() {
        let config = PlatformConfig::new(reqwest::Client::new())
            .with_base_urls_from(|name| match name {
                "SQUAREMCP_TELEGRAM_BASE_URL" => Some("http://127.0.0.1:8081/ ".to_owned()),
                "SQUAREMCP_DISCORD_BASE_URL" => Some("http://127.0.0.1:8082".to_owned()),
                "SQUAREMCP_EMAIL_BASE_URL" => Some("http://ignored".to_owned()),
                _ => None,
            })
            .expect("valid overrides");
        assert_eq!(config.origin(Platform::Telegram).as_deref(), Some("http://127.0.0.1:8081"));
        assert_eq!(config.origin(Platform::Discord).as_deref(), Some("http://127.0.0.1:8082/api/v10"));
        let refused = PlatformConfig::new(reqwest::Client::new())
            .with_base_urls_from(|name| (name == "SQUAREMCP_DISCORD_BASE_URL").then(|| "ftp://x".to_owned()))
            .expect_err("not http");
        assert!(refused.starts_with("SQUAREMCP_DISCORD_BASE_URL: "), "{refused}");
    }

    #[tokio::test]
    async fn the_client_gives_up_at_its_request_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let address = listener.local_addr().expect("its address");
        // Accepts connections and never answers, as a platform that hangs.
        let silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let started = std::time::Instant::now();
        let client = http_client_with_timeout(Duration::from_millis(300));
        let error = client.get(format!("http://{address}/")).send().await.expect_err("no answer");
        assert!(error.is_timeout(), "{error}");
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        silent.abort();
    }

    #[test]
    fn modules_follow_the_table() {
        let modules = modules(&PlatformConfig::new(http_client()));
        let platforms: Vec<Platform> = modules.iter().map(|m| m.platform()).collect();
        let table: Vec<Platform> = PLATFORMS.iter().map(|e| e.platform).collect();
        assert_eq!(platforms, table);
    }
}
