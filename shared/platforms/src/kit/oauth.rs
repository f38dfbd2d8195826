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

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use squaremcp_core::connections::{RefreshError, TokenRefresher};
use squaremcp_core::{Platform, Secret};

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
    };
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
}

/// The configured OAuth apps, read from the environment (secrets stay wrapped).
#[derive(Clone, Debug, Default)]
pub struct OAuthSettings {
    apps: BTreeMap<Platform, Configured>,
}

/// Every configured OAuth app with the HTTP client, built once per cold start. Renews tokens
/// for the gateway and runs the Connect flows.
pub struct OAuthClients {
    http: reqwest::Client,
    apps: BTreeMap<Platform, Configured>,
}

fn env_name(platform: Platform, suffix: &str) -> String {
    format!("SQUAREMCP_{}_{suffix}", platform.as_str().to_uppercase())
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}

impl OAuthSettings {
    /// The apps whose client id and secret `lookup` knows, among `apps` (with the endpoint
    /// overrides; the profile endpoint follows the platform's API override). An app with only
    /// one of the two, or a bad override, is refused with the variable's name.
    pub fn from_lookup(apps: &[&'static OAuthApp], lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let mut configured = BTreeMap::new();
        for app in apps {
            let platform = app.platform;
            let (id_var, secret_var) = (env_name(platform, "CLIENT_ID"), env_name(platform, "CLIENT_SECRET"));
            let (client_id, client_secret) = match (get(&id_var), get(&secret_var)) {
                (Some(id), Some(secret)) => (id, Secret::new(secret)),
                (None, None) => continue,
                (Some(_), None) => return Err(format!("{secret_var}: required with {id_var}")),
                (None, Some(_)) => return Err(format!("{id_var}: required with {secret_var}")),
            };
            let resolve = |default: &str, variable: String| {
                super::origin(default, get(&variable).as_deref())
                    // `origin` trims a trailing slash (right for API bases); TikTok's OAuth
                    // endpoints are written with one, and are kept as written.
                    .map(|url| if default.ends_with('/') && !url.ends_with('/') { format!("{url}/") } else { url })
                    .map_err(|why| format!("{variable}: {why}"))
            };
            configured.insert(
                platform,
                Configured {
                    app,
                    client_id,
                    client_secret,
                    authorize_url: resolve(app.authorize_url, env_name(platform, "AUTHORIZE_BASE_URL"))?,
                    token_url: resolve(app.token_url, env_name(platform, "TOKEN_BASE_URL"))?,
                    profile_url: resolve(app.profile_url, platform.base_url_env())?,
                },
            );
        }
        Ok(Self { apps: configured })
    }

    pub fn platforms(&self) -> Vec<Platform> {
        self.apps.keys().copied().collect()
    }
}

impl OAuthClients {
    pub fn new(http: reqwest::Client, settings: &OAuthSettings) -> Self {
        Self { http, apps: settings.apps.clone() }
    }

    /// The platforms with a configured app.
    pub fn platforms(&self) -> Vec<Platform> {
        self.apps.keys().copied().collect()
    }

    pub fn is_configured(&self, platform: Platform) -> bool {
        self.apps.contains_key(&platform)
    }

    /// Whether the platform's app wants PKCE.
    pub fn uses_pkce(&self, platform: Platform) -> bool {
        self.apps.get(&platform).is_some_and(|c| c.app.pkce)
    }

    /// The authorization URL to send the browser to.
    pub fn authorize_url(&self, platform: Platform, redirect_uri: &str, state: &str, code_challenge: Option<&str>) -> Option<String> {
        let configured = self.apps.get(&platform)?;
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

    /// Exchanges an authorization code and reads who the account is: the credential document
    /// to store, and the identity.
    pub async fn exchange(
        &self,
        platform: Platform,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&str>,
    ) -> Result<(Secret<Value>, Identity), OAuthClientError> {
        let configured = self.apps.get(&platform).ok_or(OAuthClientError::NotConfigured(platform))?;
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

#[async_trait]
impl TokenRefresher for OAuthClients {
    fn refreshes(&self, platform: Platform) -> bool {
        self.apps.contains_key(&platform)
    }

    async fn refresh(&self, platform: Platform, document: &Secret<Value>) -> Result<Secret<Value>, RefreshError> {
        let configured = self.apps.get(&platform).ok_or_else(|| RefreshError::Refused(format!("no OAuth app is configured for {platform}")))?;
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
    fn account_names_come_from_the_username() {
        let identity = |username: Option<&str>| Identity { id: "42".into(), name: "Ada".into(), username: username.map(str::to_owned) };
        assert_eq!(identity(Some("ada_l")).account_name(), "ada_l");
        assert_eq!(identity(None).account_name(), "42");
        assert_eq!(identity(Some("ä ö")).account_name(), "default");
    }
}
