//! The HTTP edge: one axum router per route group, mounted together by `squaremcp serve` and
//! one by one by the Lambda functions. Status codes and headers are decided here, once; the
//! protocol itself lives in `squaremcp_core::mcp`, sign-in in `squaremcp_auth`.

mod account;
mod account_password;
mod account_webhooks;
mod auth;
mod client_ip;
mod connect;
mod cookies;
mod cors;
mod forwarded;
mod health;
mod login;
mod mcp;
mod metrics;
mod oauth;
mod pages;
mod request_id;
mod request_log;
mod rest;
mod session_check;
mod signup;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use squaremcp_auth::Auth;
use squaremcp_core::mcp::McpServer;

pub use auth::Authenticated;
pub use client_ip::ClientIp;
pub use forwarded::{Cidr, TrustedProxies};
pub use health::RouteGroup;
pub use metrics::{CallMetrics, MetricsAccess, metrics_router};

/// Settings of the HTTP edge, read once at start.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// What clients type in, without a trailing slash, e.g. `https://mcp.example.com`.
    pub public_url: String,
    /// Browser origins allowed to call `/mcp` besides the public URL's own.
    pub allowed_origins: Vec<String>,
    pub max_body_bytes: usize,
    /// `Domain` of the session cookie; `None` keeps it on the public URL's host (`__Host-`).
    pub cookie_domain: Option<String>,
    /// Peers whose `X-Forwarded-For`/`X-Forwarded-Proto` are believed (the ingress).
    pub trusted_proxies: TrustedProxies,
}

impl HttpConfig {
    /// Origins that MCP clients running in a browser use (MCP Inspector, claude.ai, ChatGPT).
    pub const DEFAULT_ALLOWED_ORIGINS: [&'static str; 5] = [
        "http://localhost:6274",
        "http://127.0.0.1:6274",
        "https://claude.ai",
        "https://claude.com",
        "https://chatgpt.com",
    ];

    /// Served over HTTPS (directly or behind a proxy that terminates TLS).
    pub fn is_https(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    pub fn resource_metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource/mcp", self.public_url)
    }
}

#[derive(Clone)]
pub struct AppState {
    pub mcp: Arc<McpServer>,
    pub auth: Arc<Auth>,
    pub config: Arc<HttpConfig>,
    /// The inbound WhatsApp webhook (app secret, verify token, where notifications go).
    pub whatsapp: Arc<squaremcp_platforms::whatsapp::webhook::WhatsappWebhook>,
    /// Inbound Telegram updates for bots in webhook mode.
    pub telegram: Arc<squaremcp_platforms::telegram::webhook::TelegramWebhook>,
    /// Outbound webhooks (endpoints, dead letters) for the account page; `None` without queues.
    pub webhooks: Option<Arc<squaremcp_webhooks::Deliverer>>,
    /// The configured OAuth apps: the Connect flows of the account page.
    pub oauth: Arc<squaremcp_platforms::kit::oauth::OAuthClients>,
}

/// `POST /mcp` (and 405 for `GET`/`DELETE`), `GET /openapi.json` and `POST /tools/{name}`: the
/// `mcp` route group.
pub fn mcp_router(state: AppState) -> Router {
    let config = state.config.clone();
    edge(mcp::router().merge(rest::router()).with_state(state), &config)
}

/// Discovery, registration, authorization, token and revocation: the `oauth` route group.
pub fn oauth_router(state: AppState) -> Router {
    let config = state.config.clone();
    let checked = axum::middleware::from_fn_with_state(state.clone(), session_check::check);
    edge(oauth::router().layer(checked).with_state(state), &config)
}

/// `GET/POST /login`, `POST /logout`, and the account page (`/account…`): the `login` route
/// group, on the host of the session cookie.
pub fn login_router(state: AppState) -> Router {
    let config = state.config.clone();
    let checked = axum::middleware::from_fn_with_state(state.clone(), session_check::check);
    let routes = login::router().merge(account::router()).merge(account_password::router()).merge(account_webhooks::router()).merge(connect::router()).merge(signup::router());
    edge(routes.layer(checked).with_state(state), &config)
}

/// `GET/POST /webhooks/whatsapp` and `POST /webhooks/telegram/{bot_id}`: the `webhooks` route
/// group (platforms calling in).
pub fn webhooks_router(state: AppState) -> Router {
    let config = state.config.clone();
    edge(webhooks::router().with_state(state), &config)
}

/// Every route group on one router, for the container and local target.
pub fn gateway_router(state: AppState) -> Router {
    routes_router(state, &RouteGroup::ALL)
}

/// The chosen route groups, with `/healthz` (alive) and `/readyz` (store reachable) for the
/// probes: `squaremcp serve --routes`, one Deployment per group behind ingress path rules.
pub fn routes_router(state: AppState, groups: &[RouteGroup]) -> Router {
    let mut router = health::router(state.clone());
    for group in RouteGroup::ALL.iter().filter(|g| groups.contains(g)) {
        router = router.merge(match group {
            RouteGroup::Mcp => mcp_router(state.clone()),
            RouteGroup::Oauth => oauth_router(state.clone()),
            RouteGroup::Login => login_router(state.clone()),
            RouteGroup::Webhooks => webhooks_router(state.clone()),
        });
    }
    router
}

/// What every route group gets: HSTS on https, client addresses and scheme from trusted proxies.
fn edge(router: Router, config: &HttpConfig) -> Router {
    forwarded::layer(with_hsts(router, config.is_https()), config)
}

/// `Strict-Transport-Security` on every answer when the public URL is https, so that a browser
/// never sends the session cookie or a login form over plain HTTP to this host again. Not on
/// plain-HTTP deployments (local use), where it would be ignored or, behind a later TLS proxy,
/// pin a host that does not serve HTTPS yet.
fn with_hsts(router: Router, https: bool) -> Router {
    if !https {
        return router;
    }
    router.layer(axum::middleware::map_response(|mut response: axum::response::Response| async move {
        response
            .headers_mut()
            .insert(http::header::STRICT_TRANSPORT_SECURITY, http::HeaderValue::from_static("max-age=31536000"));
        response
    }))
}
