//! OAuth 2.0 for platforms whose customers connect with their own account ("Connect X"): one
//! generic client, each platform's app declared as data ([`OAuthApp`], listed in
//! [`crate::oauth_apps`]).
//!
//! The operator registers an app with the platform and configures it with
//! `SQUAREMCP_<PLATFORM>_CLIENT_ID` and `SQUAREMCP_<PLATFORM>_CLIENT_SECRET`; a platform without
//! them offers no Connect button. The authorize and token endpoints default to the real ones;
//! `SQUAREMCP_<PLATFORM>_AUTHORIZE_BASE_URL` and `SQUAREMCP_<PLATFORM>_TOKEN_BASE_URL` point them
//! at another scheme, host and port (tests, proxies), like `SQUAREMCP_<PLATFORM>_BASE_URL` does
//! for the API, whose override the profile endpoint follows.
//!
//! The credential document an authorization produces is
//! `{"access_token", "refresh_token", "expires_at", "scopes", "account": {"id", "name", "username"}}`
//! (`expires_at` in Unix seconds). A refresh keeps everything but the tokens, and keeps the old
//! refresh token when the provider returns none (the platforms that do not rotate).
//!
//! One platform may have several apps, each with a Connect name of its own (Email: Gmail and
//! Microsoft 365, [`mailbox`]); the name is then the `<PLATFORM>` of the variables and the
//! `{name}` of `/connect/{name}`.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use squaremcp_core::connections::{RefreshError, TokenRefresher};
use squaremcp_core::{Platform, Secret};

pub mod mailbox;
pub mod meta;

pub use mailbox::MailboxApp;
pub use meta::MetaAccounts;

/// How the app authenticates at the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// `Authorization: Basic base64(id:secret)` (RFC 6749 §2.3.1).
    Basic,
    /// `client_id` and `client_secret` in the form.
    Post,
}

/// Who the connected account is, from the platform's profile endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub id: String,
    pub name: String,
    pub username: Option<String>,
}

impl Identity {
    /// A default account name for the connection: the username, else the id, as an
    /// [`squaremcp_core::AccountName`] allows.
    pub fn account_name(&self) -> String {
        let raw = self.username.as_deref().unwrap_or(&self.id);
        let cleaned: String =
            raw.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')).take(64).collect();
        if cleaned.is_empty() { "default".to_owned() } else { cleaned }
    }
}

/// What one authorization connects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connects {
    /// The account the token belongs to, named by the profile endpoint: one credential holding
    /// the tokens.
    TheUser,
    /// Meta's Facebook Login: the user token is exchanged for a long-lived one, and each Page the
    /// person granted (or the Instagram account linked to it) becomes a credential of its own
    /// with the Page's token; `profile_url` is `/me/accounts` ([`meta`]).
    MetaPages(MetaAccounts),
    /// Instagram Login: the code's token is exchanged for a long-lived one (`ig_exchange_token`)
    /// and stored with its expiry, renewed later with `ig_refresh_token` ([`meta`]).
    InstagramLogin,
    /// A mailbox signed in to with SASL XOAUTH2 (Gmail, Microsoft 365): an email credential
    /// with the provider's servers, its address read from the ID token ([`mailbox`]).
    Mailbox(&'static MailboxApp),
}

/// A platform with two login products (Instagram: Facebook Login or Instagram Login): the
/// operator picks one with `SQUAREMCP_<PLATFORM>_LOGIN`.
#[derive(Debug)]
pub struct LoginChoice {
    /// The value naming the app the row itself describes (the default), e.g. `facebook`.
    pub default: &'static str,
    /// The value naming the other app, e.g. `instagram`.
    pub other: &'static str,
    pub other_app: &'static OAuthApp,
}

/// A platform's OAuth app, as data: its row next to the registration table's.
#[derive(Debug)]
pub struct OAuthApp {
    pub platform: Platform,
    /// The real authorization endpoint, e.g. `https://x.com/i/oauth2/authorize`.
    pub authorize_url: &'static str,
    /// The real token endpoint.
    pub token_url: &'static str,
    /// An endpoint answering who the token belongs to (`GET`, bearer).
    pub profile_url: &'static str,
    pub scopes: &'static [&'static str],
    /// PKCE S256 on the authorization request.
    pub pkce: bool,
    pub client_auth: ClientAuth,
    /// Refresh tokens are single use (the new one must be stored before anything else).
    pub rotates_refresh_tokens: bool,
    /// Reads the identity from the profile endpoint's answer.
    pub identity: fn(&Value) -> Option<Identity>,
    /// The name of the client id parameter (`client_id`; TikTok says `client_key`).
    pub client_id_param: &'static str,
    /// How scopes are joined in the authorization request (a space; Meta and TikTok use commas).
    pub scope_separator: &'static str,
    /// One credential for the user, or one per Page (Meta).
    pub connects: Connects,
    /// Another login product the operator may choose instead.
    pub login_choice: Option<&'static LoginChoice>,
    /// The Connect name when the platform has several apps (`gmail`); else the platform's name.
    pub connect_name: Option<&'static str>,
    /// Further parameters of the authorization request (Google's `access_type=offline`).
    pub authorize_params: &'static [(&'static str, &'static str)],
}

impl OAuthApp {
    /// The usual values of the less common knobs: `..OAuthApp::DEFAULTS` in a platform's row.
    pub const DEFAULTS: OAuthApp = OAuthApp {
        platform: Platform::Email,
        authorize_url: "",
        token_url: "",
        profile_url: "",
        scopes: &[],
        pkce: true,
        client_auth: ClientAuth::Basic,
        rotates_refresh_tokens: false,
        identity: |_| None,
        client_id_param: "client_id",
        scope_separator: " ",
        connects: Connects::TheUser,
        login_choice: None,
        connect_name: None,
        authorize_params: &[],
    };

    /// The name in `/connect/{name}` and in `SQUAREMCP_<NAME>_…`.
    pub fn name(&self) -> &'static str {
        self.connect_name.unwrap_or(self.platform.as_str())
    }
}

/// What a customer can connect with an OAuth app: the Connect name and the platform it serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectTarget {
    pub name: &'static str,
    pub platform: Platform,
    /// The button's name where it is not the platform's ("Gmail").
    pub label: Option<&'static str>,
}

/// One credential a Connect produced: the account name to store it under, and the document.
pub struct ConnectedAccount {
    pub account_name: String,
    pub document: Secret<Value>,
}

/// Why a connection could not be completed or renewed. Never carries a token.
#[derive(Debug, thiserror::Error)]
pub enum OAuthClientError {
    #[error("no OAuth app is configured for {0}")]
    NotConfigured(Platform),
    /// The provider refused (an invalid or used code or refresh token).
    #[error("{platform} refused: {error}")]
    Refused { platform: Platform, error: String },
    #[error("{platform} could not be reached or answered something unreadable: {why}")]
    Unavailable { platform: Platform, why: String },
}

/// One configured app: credentials and resolved endpoints.
#[derive(Clone, Debug)]
struct Configured {
    app: &'static OAuthApp,
    client_id: String,
    client_secret: Secret<String>,
    authorize_url: String,
    token_url: String,
    profile_url: String,
    /// Where a connected mailbox is reached ([`Connects::Mailbox`] only).
    mail_servers: Option<mailbox::MailServers>,
}

/// The configured OAuth apps, read from the environment (secrets stay wrapped).
#[derive(Clone, Debug, Default)]
pub struct OAuthSettings {
    /// By Connect name.
    apps: BTreeMap<&'static str, Configured>,
    /// Where Instagram Login tokens are renewed (`graph.instagram.com`, or its override); empty
    /// for the real one. Needs no app: the token is its own grant.
    instagram_origin: String,
}

/// Every configured OAuth app with the HTTP client, built once per cold start. Renews tokens
/// for the gateway and runs the Connect flows.
pub struct OAuthClients {
    http: super::HttpClient,
    /// By Connect name.
    apps: BTreeMap<&'static str, Configured>,
    instagram_origin: String,
}

fn env_name(name: &str, suffix: &str) -> String {
    format!("SQUAREMCP_{}_{suffix}", name.to_uppercase())
}

/// Microsoft's tenant in its endpoints' paths: a tenant id, a domain or `common`,
/// `organizations`, `consumers`.
fn tenant(text: &str) -> Result<String, String> {
    let ok = !text.is_empty() && text.len() <= 128 && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'));
    if ok { Ok(text.to_owned()) } else { Err(format!("`{text}` is not a tenant id or domain")) }
}

pub(crate) fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}

impl OAuthSettings {
    /// The apps whose client id and secret `lookup` knows, among `apps` (with the endpoint
    /// overrides; the profile endpoint follows the platform's API override). An app with only
    /// one of the two, or a bad override, is refused with the variable's name.
    pub fn from_lookup(apps: &[&'static OAuthApp], lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        // Meta's endpoints carry the Graph API version in their path (`{version}`).
        let graph_version = match get("SQUAREMCP_GRAPH_API_VERSION") {
            Some(text) => super::graph_api_version(&text).map_err(|why| format!("SQUAREMCP_GRAPH_API_VERSION: {why}"))?,
            None => super::DEFAULT_GRAPH_API_VERSION.to_owned(),
        };
        let mut configured = BTreeMap::new();
        for &app in apps {
            let platform = app.name();
            let app = match (app.login_choice, get(&env_name(platform, "LOGIN"))) {
                (_, None) => app,
                (Some(choice), Some(login)) if login == choice.default => app,
                (Some(choice), Some(login)) if login == choice.other => choice.other_app,
                (Some(choice), Some(login)) => {
                    let variable = env_name(platform, "LOGIN");
                    return Err(format!("{variable}: `{login}` is neither `{}` nor `{}`", choice.default, choice.other));
                }
                (None, Some(_)) => return Err(format!("{}: {} has only one login", env_name(platform, "LOGIN"), app.platform)),
            };
            let (id_var, secret_var) = (env_name(platform, "CLIENT_ID"), env_name(platform, "CLIENT_SECRET"));
            let (client_id, client_secret) = match (get(&id_var), get(&secret_var)) {
                (Some(id), Some(secret)) => (id, Secret::new(secret)),
                (None, None) => continue,
                (Some(_), None) => return Err(format!("{secret_var}: required with {id_var}")),
                (None, Some(_)) => return Err(format!("{id_var}: required with {secret_var}")),
            };
            let tenant_variable = env_name(platform, "TENANT");
            let tenant = match get(&tenant_variable) {
                Some(text) => tenant(&text).map_err(|why| format!("{tenant_variable}: {why}"))?,
                None => "common".to_owned(),
            };
            let resolve = |default: &str, variable: String| {
                let default = default.replace("{version}", &graph_version).replace("{tenant}", &tenant);
                let default = default.as_str();
                super::origin(default, get(&variable).as_deref())
                    // `origin` trims a trailing slash (right for API bases); TikTok's OAuth
                    // endpoints are written with one, and are kept as written.
                    .map(|url| if default.ends_with('/') && !url.ends_with('/') { format!("{url}/") } else { url })
                    .map_err(|why| format!("{variable}: {why}"))
            };
            let mail_servers = match app.connects {
                Connects::Mailbox(mailbox) => {
                    let server = |default: &str, suffix: &str| {
                        let variable = env_name(platform, suffix);
                        mailbox::server(get(&variable).as_deref().unwrap_or(default)).map_err(|why| format!("{variable}: {why}"))
                    };
                    Some(mailbox::MailServers { imap: server(mailbox.imap, "IMAP_SERVER")?, smtp: server(mailbox.smtp, "SMTP_SERVER")? })
                }
                _ => None,
            };
            // Mailbox apps have no profile endpoint (the ID token says who), nor an API to point elsewhere.
            let profile_url = if app.profile_url.is_empty() { String::new() } else { resolve(app.profile_url, app.platform.base_url_env())? };
            configured.insert(
                platform,
                Configured {
                    app,
                    client_id,
                    client_secret,
                    authorize_url: resolve(app.authorize_url, env_name(platform, "AUTHORIZE_BASE_URL"))?,
                    token_url: resolve(app.token_url, env_name(platform, "TOKEN_BASE_URL"))?,
                    profile_url,
                    mail_servers,
                },
            );
        }
        let instagram_origin = super::origin(meta::INSTAGRAM_ORIGIN, get(&Platform::Instagram.base_url_env()).as_deref())
            .map_err(|why| format!("{}: {why}", Platform::Instagram.base_url_env()))?;
        Ok(Self { apps: configured, instagram_origin })
    }

    /// The platforms with a configured app.
    pub fn platforms(&self) -> Vec<Platform> {
        let platforms: std::collections::BTreeSet<Platform> = self.apps.values().map(|c| c.app.platform).collect();
        platforms.into_iter().collect()
    }
}

impl OAuthClients {
    pub fn new(http: impl Into<super::HttpClient>, settings: &OAuthSettings) -> Self {
        let instagram_origin =
            if settings.instagram_origin.is_empty() { meta::INSTAGRAM_ORIGIN.to_owned() } else { settings.instagram_origin.clone() };
        Self { http: http.into(), apps: settings.apps.clone(), instagram_origin }
    }

    /// What can be connected, in Connect-name order.
    pub fn targets(&self) -> Vec<ConnectTarget> {
        self.apps.values().map(|c| target(c.app)).collect()
    }

    /// The configured app of a Connect name (`twitter`, `gmail`).
    pub fn target(&self, name: &str) -> Option<ConnectTarget> {
        self.apps.get(name).map(|c| target(c.app))
    }

    /// Whether the platform is connected only through its OAuth app (then it gets no form of
    /// credential fields). Email has OAuth apps for two providers and keeps its form.
    pub fn is_configured(&self, platform: Platform) -> bool {
        self.apps.contains_key(platform.as_str())
    }

    /// Whether the app wants PKCE.
    pub fn uses_pkce(&self, name: &str) -> bool {
        self.apps.get(name).is_some_and(|c| c.app.pkce)
    }

    /// The authorization URL to send the browser to, for a platform's own app.
    pub fn authorize_url(&self, platform: Platform, redirect_uri: &str, state: &str, code_challenge: Option<&str>) -> Option<String> {
        self.authorize_url_for(platform.as_str(), redirect_uri, state, code_challenge)
    }

    /// The authorization URL of the app with this Connect name.
    pub fn authorize_url_for(&self, name: &str, redirect_uri: &str, state: &str, code_challenge: Option<&str>) -> Option<String> {
        let configured = self.apps.get(name)?;
        let mut url = reqwest::Url::parse(&configured.authorize_url).ok()?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair(configured.app.client_id_param, &configured.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("scope", &configured.app.scopes.join(configured.app.scope_separator))
                .append_pair("state", state);
            if let Some(challenge) = code_challenge.filter(|_| configured.app.pkce) {
                query.append_pair("code_challenge", challenge).append_pair("code_challenge_method", "S256");
            }
            for (name, value) in configured.app.authorize_params {
                query.append_pair(name, value);
            }
        }
        Some(url.into())
    }

    /// The token endpoint with a grant; the provider's JSON answer.
    async fn token_request(&self, configured: &Configured, mut form: Vec<(&str, String)>) -> Result<Value, OAuthClientError> {
        let platform = configured.app.platform;
        let mut request = self.http.post(&configured.token_url);
        match configured.app.client_auth {
            ClientAuth::Basic => {
                let basic = STANDARD.encode(format!("{}:{}", configured.client_id, configured.client_secret.expose()));
                let mut value = reqwest::header::HeaderValue::from_str(&format!("Basic {basic}"))
                    .map_err(|_| OAuthClientError::Unavailable { platform, why: "the client credentials cannot go in a header".into() })?;
                value.set_sensitive(true);
                request = request.header(reqwest::header::AUTHORIZATION, value);
                form.push((configured.app.client_id_param, configured.client_id.clone()));
            }
            ClientAuth::Post => {
                form.push((configured.app.client_id_param, configured.client_id.clone()));
                form.push(("client_secret", configured.client_secret.expose().clone()));
            }
        }
        let body = serde_urlencoded::to_string(&form)
            .map_err(|_| OAuthClientError::Unavailable { platform, why: "the token request could not be encoded".into() })?;
        let response = request
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| OAuthClientError::Unavailable { platform, why: e.without_url().to_string() })?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        // Instagram Login answers `{"data": [{"access_token", "user_id", "permissions"}]}`.
        let body = match body.pointer("/data/0") {
            Some(first) if body.get("access_token").is_none() => first.clone(),
            _ => body,
        };
        match status {
            200..=299 if body.get("access_token").and_then(Value::as_str).is_some() => Ok(body),
            200..=299 => Err(OAuthClientError::Unavailable { platform, why: "the token answer has no access_token".into() }),
            400..=499 => {
                // Only the error code: descriptions may quote what was sent.
                let error = body.get("error").and_then(Value::as_str).unwrap_or("refused").chars().take(64).collect();
                Err(OAuthClientError::Refused { platform, error })
            }
            _ => Err(OAuthClientError::Unavailable { platform, why: format!("HTTP {status}") }),
        }
    }

    /// The credential document from a token answer, over `previous` (a refresh keeps the rest).
    fn document(answer: &Value, previous: Option<&Value>) -> Value {
        let mut document = previous.cloned().filter(Value::is_object).unwrap_or_else(|| json!({}));
        document["access_token"] = answer["access_token"].clone();
        if let Some(refresh) = answer.get("refresh_token").and_then(Value::as_str).filter(|r| !r.is_empty()) {
            document["refresh_token"] = json!(refresh);
        }
        match answer.get("expires_in").and_then(Value::as_i64) {
            Some(seconds) => document["expires_at"] = json!(now() + seconds),
            None => {
                if let Some(map) = document.as_object_mut() {
                    map.remove("expires_at");
                }
            }
        }
        if let Some(scope) = answer.get("scope").and_then(Value::as_str) {
            let scopes: Vec<&str> = scope.split([' ', ',']).filter(|s| !s.is_empty()).collect();
            document["scopes"] = json!(scopes);
        }
        document
    }

    /// Completes a Connect: the credentials to store, one per connected account (several for
    /// Meta's Pages; none when the person granted no Page that fits).
    /// `name` is the Connect name ([`ConnectTarget`]).
    pub async fn connect(
        &self,
        name: &str,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&str>,
    ) -> Result<Vec<ConnectedAccount>, OAuthClientError> {
        let configured = self.apps.get(name).ok_or(OAuthClientError::NotConfigured(Platform::Email))?;
        let platform = configured.app.platform;
        match configured.app.connects {
            Connects::TheUser => {
                let (document, identity) = self.exchange(platform, code, redirect_uri, verifier).await?;
                Ok(vec![ConnectedAccount { account_name: identity.account_name(), document }])
            }
            Connects::MetaPages(accounts) => meta::connect(&self.http, configured, accounts, code, redirect_uri).await,
            Connects::InstagramLogin => {
                let form = vec![("grant_type", "authorization_code".to_owned()), ("code", code.to_owned()), ("redirect_uri", redirect_uri.to_owned())];
                let answer = self.token_request(configured, form).await?;
                meta::connect_instagram_login(&self.http, configured, &self.instagram_origin, &answer).await.map(|account| vec![account])
            }
            Connects::Mailbox(_) => {
                let mut form =
                    vec![("grant_type", "authorization_code".to_owned()), ("code", code.to_owned()), ("redirect_uri", redirect_uri.to_owned())];
                if let Some(verifier) = verifier {
                    form.push(("code_verifier", verifier.to_owned()));
                }
                let answer = self.token_request(configured, form).await?;
                let servers = configured.mail_servers.as_ref().ok_or(OAuthClientError::NotConfigured(platform))?;
                mailbox::connected(configured.app.name(), servers, &answer).map(|account| vec![account])
            }
        }
    }

    /// Exchanges an authorization code and reads who the account is: the credential document
    /// to store, and the identity.
    pub async fn exchange(
        &self,
        platform: Platform,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&str>,
    ) -> Result<(Secret<Value>, Identity), OAuthClientError> {
        let configured = self.apps.get(platform.as_str()).ok_or(OAuthClientError::NotConfigured(platform))?;
        let mut form = vec![("grant_type", "authorization_code".to_owned()), ("code", code.to_owned()), ("redirect_uri", redirect_uri.to_owned())];
        if let Some(verifier) = verifier {
            form.push(("code_verifier", verifier.to_owned()));
        }
        let answer = self.token_request(configured, form).await?;
        let mut document = Self::document(&answer, None);
        let identity = self.identity(configured, document["access_token"].as_str().unwrap_or_default()).await?;
        document["account"] = json!({"id": identity.id, "name": identity.name, "username": identity.username});
        Ok((Secret::new(document), identity))
    }

    /// Renews a connected mailbox's token with the app that issued it (`oauth2.provider`).
    async fn refresh_mailbox(&self, document: &Secret<Value>) -> Result<Secret<Value>, RefreshError> {
        let previous = document.expose();
        let configured = mailbox::provider(previous)
            .and_then(|name| self.apps.get(name))
            .filter(|c| c.app.platform == Platform::Email)
            .ok_or_else(|| RefreshError::Refused("the mailbox's OAuth app is not configured".into()))?;
        let refresh_token = mailbox::refresh_token(previous).ok_or_else(|| RefreshError::Refused("the connection has no refresh token".into()))?;
        let mut form = vec![("grant_type", "refresh_token".to_owned()), ("refresh_token", refresh_token.to_owned())];
        if matches!(configured.app.connects, Connects::Mailbox(m) if m.scope_on_refresh) {
            form.push(("scope", configured.app.scopes.join(configured.app.scope_separator)));
        }
        match self.token_request(configured, form).await {
            Ok(answer) => mailbox::refreshed(previous, &answer),
            Err(OAuthClientError::Refused { error, .. }) => Err(RefreshError::Refused(error)),
            Err(e) => Err(RefreshError::Unavailable(e.to_string())),
        }
    }

    async fn identity(&self, configured: &Configured, access_token: &str) -> Result<Identity, OAuthClientError> {
        let platform = configured.app.platform;
        let unavailable = |why: String| OAuthClientError::Unavailable { platform, why };
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {access_token}"))
            .map_err(|_| unavailable("the access token cannot go in a header".into()))?;
        value.set_sensitive(true);
        let response = self
            .http
            .get(&configured.profile_url)
            .header(reqwest::header::AUTHORIZATION, value)
            .send()
            .await
            .map_err(|e| unavailable(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(unavailable(format!("the profile endpoint answered HTTP {status}")));
        }
        let body: Value = response.json().await.map_err(|_| unavailable("the profile is not JSON".into()))?;
        (configured.app.identity)(&body).ok_or_else(|| unavailable("the profile does not say who the account is".into()))
    }
}

fn target(app: &'static OAuthApp) -> ConnectTarget {
    let label = match app.connects {
        Connects::Mailbox(mailbox) => Some(mailbox.label),
        _ => None,
    };
    ConnectTarget { name: app.name(), platform: app.platform, label }
}

#[async_trait]
impl TokenRefresher for OAuthClients {
    fn refreshes(&self, platform: Platform) -> bool {
        self.apps.values().any(|c| c.app.platform == platform)
    }

    fn can_refresh(&self, platform: Platform, document: &Value) -> bool {
        if platform == Platform::Email {
            return mailbox::refresh_token(document).is_some() && mailbox::provider(document).is_some_and(|name| self.apps.contains_key(name));
        }
        meta::is_instagram_login(platform, document)
            || (self.refreshes(platform) && document.get("refresh_token").and_then(Value::as_str).is_some_and(|t| !t.is_empty()))
    }

    fn expires_at(&self, platform: Platform, document: &Value) -> Option<i64> {
        if platform == Platform::Email { mailbox::expires_at(document) } else { squaremcp_core::connections::expires_at(document) }
    }

    fn refresh_margin(&self, platform: Platform) -> i64 {
        if platform == Platform::Instagram { meta::INSTAGRAM_REFRESH_MARGIN } else { squaremcp_core::connections::REFRESH_MARGIN }
    }

    async fn refresh(&self, platform: Platform, document: &Secret<Value>) -> Result<Secret<Value>, RefreshError> {
        if meta::is_instagram_login(platform, document.expose()) {
            return meta::refresh_instagram_login(&self.http, &self.instagram_origin, document).await;
        }
        if platform == Platform::Email {
            return self.refresh_mailbox(document).await;
        }
        let configured = self.apps.get(platform.as_str()).ok_or_else(|| RefreshError::Refused(format!("no OAuth app is configured for {platform}")))?;
        let refresh_token = document.expose().get("refresh_token").and_then(Value::as_str).unwrap_or_default();
        if refresh_token.is_empty() {
            return Err(RefreshError::Refused("the connection has no refresh token".into()));
        }
        let form = vec![("grant_type", "refresh_token".to_owned()), ("refresh_token", refresh_token.to_owned())];
        match self.token_request(configured, form).await {
            Ok(answer) => Ok(Secret::new(Self::document(&answer, Some(document.expose())))),
            Err(OAuthClientError::Refused { error, .. }) => Err(RefreshError::Refused(error)),
            Err(e) => Err(RefreshError::Unavailable(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_keeps_the_account_and_an_unrotated_refresh_token() {
        let previous = json!({"access_token": "a1", "refresh_token": "r1", "expires_at": 1, "account": {"id": "7"}});
        let rotated = OAuthClients::document(&json!({"access_token": "a2", "refresh_token": "r2", "expires_in": 60, "scope": "a b"}), Some(&previous));
        assert_eq!((rotated["access_token"].as_str(), rotated["refresh_token"].as_str()), (Some("a2"), Some("r2")));
        assert_eq!(rotated["account"]["id"], "7");
        assert_eq!(rotated["scopes"], json!(["a", "b"]));
        assert!(rotated["expires_at"].as_i64().unwrap_or_default() > now());
        let kept = OAuthClients::document(&json!({"access_token": "a3"}), Some(&previous));
        assert_eq!(kept["refresh_token"], "r1");
        assert!(kept.get("expires_at").is_none());
    }

    #[test]
    fn the_operator_picks_instagrams_login_and_meta_urls_carry_the_graph_version() {
        let apps = [&crate::instagram::OAUTH];
        let env = |login: Option<&'static str>| {
            move |name: &str| match name {
                "SQUAREMCP_INSTAGRAM_CLIENT_ID" => Some("app".to_owned()),
                "SQUAREMCP_INSTAGRAM_CLIENT_SECRET" => Some("secret".to_owned()),
                "SQUAREMCP_GRAPH_API_VERSION" => Some("v25.0".to_owned()),
                "SQUAREMCP_INSTAGRAM_LOGIN" => login.map(str::to_owned),
                _ => None,
            }
        };
        let dialog = |settings: &OAuthSettings| {
            let clients = OAuthClients::new(reqwest::Client::new(), settings);
            let url = clients.authorize_url(Platform::Instagram, "https://gw.example/cb", "s", None).unwrap_or_default();
            url.split_once('?').map(|(path, _)| path.to_owned()).unwrap_or_default()
        };
        let facebook = OAuthSettings::from_lookup(&apps, env(None)).expect("valid");
        assert_eq!(dialog(&facebook), "https://www.facebook.com/v25.0/dialog/oauth");
        assert_eq!(facebook.apps["instagram"].token_url, "https://graph.facebook.com/v25.0/oauth/access_token");
        let named = OAuthSettings::from_lookup(&apps, env(Some("facebook"))).expect("valid");
        assert_eq!(dialog(&named), "https://www.facebook.com/v25.0/dialog/oauth");
        let instagram = OAuthSettings::from_lookup(&apps, env(Some("instagram"))).expect("valid");
        assert_eq!(dialog(&instagram), "https://www.instagram.com/oauth/authorize");
        assert_eq!(instagram.apps["instagram"].profile_url, "https://graph.instagram.com/v25.0/me?fields=user_id,username");
        let wrong = OAuthSettings::from_lookup(&apps, env(Some("tiktok"))).err().unwrap_or_default();
        assert!(wrong.starts_with("SQUAREMCP_INSTAGRAM_LOGIN: `tiktok`"), "{wrong}");
        let only_one = OAuthSettings::from_lookup(&[&crate::twitter::OAUTH], |name| (name == "SQUAREMCP_TWITTER_LOGIN").then(|| "x".to_owned()));
        assert!(only_one.is_err_and(|why| why.contains("only one login")));
    }

    #[test]
    fn gmail_and_microsoft_365_are_two_apps_of_the_email_platform() {
        let apps: Vec<&'static OAuthApp> = crate::email::OAUTH_APPS.iter().collect();
        let env = |extra: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                let base = [
                    ("SQUAREMCP_GMAIL_CLIENT_ID", "g-id"),
                    ("SQUAREMCP_GMAIL_CLIENT_SECRET", "g-secret"),
                    ("SQUAREMCP_MICROSOFT365_CLIENT_ID", "m-id"),
                    ("SQUAREMCP_MICROSOFT365_CLIENT_SECRET", "m-secret"),
                ];
                extra.iter().chain(base.iter()).find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
            }
        };
        let settings = OAuthSettings::from_lookup(&apps, env(&[])).expect("valid");
        assert_eq!(settings.platforms(), [Platform::Email]);
        let clients = OAuthClients::new(reqwest::Client::new(), &settings);
        let names: Vec<_> = clients.targets().iter().map(|t| (t.name, t.label)).collect();
        assert_eq!(names, [("gmail", Some("Gmail")), ("microsoft365", Some("Microsoft 365"))]);
        // Email keeps its credential form: it is not connected through OAuth only.
        assert!(!clients.is_configured(Platform::Email) && clients.refreshes(Platform::Email));
        let google = clients.authorize_url_for("gmail", "https://gw.example/cb", "s", Some("c")).unwrap_or_default();
        assert!(google.starts_with("https://accounts.google.com/o/oauth2/v2/auth?"), "{google}");
        assert!(google.contains("&access_type=offline&prompt=consent") && google.contains("scope=https%3A%2F%2Fmail.google.com%2F+openid+email"));
        let microsoft = clients.authorize_url_for("microsoft365", "https://gw.example/cb", "s", None).unwrap_or_default();
        assert!(microsoft.starts_with("https://login.microsoftonline.com/common/oauth2/v2.0/authorize?"), "{microsoft}");
        assert_eq!(settings.apps["microsoft365"].mail_servers.as_ref().map(|s| (s.smtp.host.as_str(), s.smtp.port)), Some(("smtp.office365.com", 587)));

        let tenant = OAuthSettings::from_lookup(&apps, env(&[("SQUAREMCP_MICROSOFT365_TENANT", "contoso.onmicrosoft.com")])).expect("valid");
        assert_eq!(tenant.apps["microsoft365"].token_url, "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token");
        let bad_tenant = OAuthSettings::from_lookup(&apps, env(&[("SQUAREMCP_MICROSOFT365_TENANT", "../x")])).err().unwrap_or_default();
        assert!(bad_tenant.starts_with("SQUAREMCP_MICROSOFT365_TENANT:"), "{bad_tenant}");
        let bad_server = OAuthSettings::from_lookup(&apps, env(&[("SQUAREMCP_GMAIL_IMAP_SERVER", "imap.example.com")])).err().unwrap_or_default();
        assert!(bad_server.starts_with("SQUAREMCP_GMAIL_IMAP_SERVER:"), "{bad_server}");

        // A connected mailbox refreshes with the app that issued it, on `oauth2`'s expiry.
        let mailbox = json!({"address": "a@b.c", "oauth2": {"provider": "gmail", "access_token": "a", "refresh_token": "r", "expires_at": 5}});
        assert!(clients.can_refresh(Platform::Email, &mailbox));
        assert_eq!(clients.expires_at(Platform::Email, &mailbox), Some(5));
        let mut other = mailbox.clone();
        other["oauth2"]["provider"] = json!("yahoo");
        assert!(!clients.can_refresh(Platform::Email, &other));
        let password = json!({"address": "a@b.c", "password": "p", "refresh_token": "r", "expires_at": 5});
        assert!(!clients.can_refresh(Platform::Email, &password) && clients.expires_at(Platform::Email, &password).is_none());
    }

    #[test]
    fn account_names_come_from_the_username() {
        let identity = |username: Option<&str>| Identity { id: "42".into(), name: "Ada".into(), username: username.map(str::to_owned) };
        assert_eq!(identity(Some("ada_l")).account_name(), "ada_l");
        assert_eq!(identity(None).account_name(), "42");
        assert_eq!(identity(Some("ä ö")).account_name(), "default");
    }
}
