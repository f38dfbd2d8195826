//! Sign-in for SquareMCP: an OAuth 2.1 authorization server for MCP clients (RFC 8414, 9728,
//! 7591, 7636, 8707, 7009, with the OAuth security BCP, RFC 9700), first-party login sessions,
//! JWTs and CSRF tokens. HTTP lives in `squaremcp-http`; this crate decides.
//!
//! Only hashes of codes, refresh tokens and client secrets reach the store; access tokens are
//! signed JWTs tied to a grant that can be revoked. State lives in the store's generic
//! primitives (documents, single-use items, counters), keyed under `oauth:`, `login:` and
//! `ratelimit:`.

mod account;
mod authorize;
mod client_documents;
mod client_network;
mod clients;
mod crypto;
mod error;
pub mod jwt;
mod login;
mod login_throttle;
mod password;
mod signup;
pub mod standing;
mod tokens;
pub mod uris;

use std::sync::Arc;

use squaremcp_core::{Gateway, Mailer, NoMailer, Secret, Timestamp};

pub use account::GrantSummary;
pub use authorize::{AuthorizationRequest, AuthorizeError, AuthorizeParams, ConsentError, PendingConsent};
pub use client_documents::{
    ClientDocumentError, ClientDocumentFetcher, FETCH_TIMEOUT, FetchError, FetchedDocument, MAX_DOCUMENT_BYTES, is_document_client_id,
};
pub use clients::{Client, ClientAuthMethod, ClientCredentials, Registered};
pub use error::{AuthError, OAuthError};
pub use login::{LoginError, Session, store_password_hash};
pub use login_throttle::MAX_WAIT_SECONDS;
pub use password::{MIN_PASSWORD_CHARS, PasswordChangeError, check_new_password};
pub use signup::{SignupError, SignupPolicy};
pub use tokens::{BearerCheck, TokenRequest, TokenResponse};

/// The only scope there is: use of the MCP endpoint. Advertised identically in the AS and PRM
/// metadata and in `WWW-Authenticate`, because clients read it from different places.
pub const SCOPE: &str = "mcp";

/// Shortest accepted signing secret, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Lifetimes (seconds) and limits. [`AuthSettings::new`] has the defaults.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    /// What clients type in, without a trailing slash: the issuer.
    pub public_url: String,
    pub access_token_ttl: i64,
    pub refresh_token_ttl: i64,
    /// The absolute lifetime of a grant (refresh-token family): however often it is refreshed,
    /// it ends this long after the consent, and the person signs in again.
    pub grant_max_age: i64,
    /// How long a just-rotated refresh token stays usable, for clients that refresh concurrently.
    pub refresh_grace: i64,
    pub session_ttl: i64,
    /// A registered client that never completes a token exchange is forgotten after this.
    pub unused_client_ttl: i64,
    /// Client registrations per client network (an IPv4 address, an IPv6 /64) per hour, and
    /// in total per hour: the total bounds storage and is high enough not to be a switch that
    /// a few addresses can turn off.
    pub registrations_per_ip_per_hour: u64,
    pub registrations_per_hour: u64,
    /// Failed sign-ins per (email, client network) in a day before each further attempt of
    /// that pair waits, twice as long each time (`login_throttle.rs`).
    pub login_free_failures: u64,
    /// Failed sign-ins per client network, across emails, in one `login_window` (seconds).
    pub login_failures_per_ip: u64,
    pub login_window: i64,
    /// Client metadata document fetches (cache misses) per client network, and per document
    /// host, per hour: an unauthenticated authorize request must not make this server hammer
    /// a host.
    pub document_fetches_per_ip_per_hour: u64,
    pub document_fetches_per_host_per_hour: u64,
    /// Accept `http://` metadata-document client ids on loopback hosts (tests and local
    /// development, with `SQUAREMCP_ALLOW_PRIVATE_HOSTS=1`); otherwise only https.
    pub allow_loopback_client_documents: bool,
    /// Self-service sign-up and password reset (closed unless the operator opens them).
    pub signup: SignupPolicy,
}

impl AuthSettings {
    pub const CODE_TTL: i64 = 600;
    pub const CONSENT_TTL: i64 = 600;

    pub fn new(public_url: &str) -> Self {
        Self {
            public_url: public_url.trim_end_matches('/').to_owned(),
            access_token_ttl: 3600,
            refresh_token_ttl: 30 * 24 * 3600,
            grant_max_age: 90 * 24 * 3600,
            refresh_grace: 60,
            session_ttl: 7 * 24 * 3600,
            unused_client_ttl: 24 * 3600,
            registrations_per_ip_per_hour: 30,
            registrations_per_hour: 10_000,
            login_free_failures: 5,
            login_failures_per_ip: 50,
            login_window: 900,
            document_fetches_per_ip_per_hour: 30,
            document_fetches_per_host_per_hour: 120,
            allow_loopback_client_documents: false,
            signup: SignupPolicy::default(),
        }
    }

    /// `https://HOST`, byte-identical in the AS metadata, the PRM and every token.
    pub fn issuer(&self) -> &str {
        &self.public_url
    }

    /// `https://HOST/mcp`: the protected resource and the audience of access tokens.
    pub fn resource(&self) -> String {
        format!("{}/mcp", self.public_url)
    }

    pub(crate) fn session_audience(&self) -> String {
        format!("{}/login", self.public_url)
    }
}

/// The authorization server, login and token checks, built once per process.
pub struct Auth {
    gateway: Arc<Gateway>,
    settings: AuthSettings,
    keys: jwt::Keys,
    /// Fetches Client ID Metadata Documents; without it URL client ids are refused.
    client_documents: Option<Arc<dyn ClientDocumentFetcher>>,
    /// Sign-up and reset links; refuses until [`Auth::with_mailer`].
    mailer: Arc<dyn Mailer>,
}

impl Auth {
    /// `secret` signs JWTs and CSRF tokens; it must have at least [`MIN_SECRET_BYTES`] bytes.
    pub fn new(gateway: Arc<Gateway>, settings: AuthSettings, secret: &Secret<Vec<u8>>) -> Result<Self, AuthError> {
        if secret.expose().len() < MIN_SECRET_BYTES {
            return Err(AuthError::WeakSecret);
        }
        Ok(Self { gateway, settings, keys: jwt::Keys::derive(secret.expose()), client_documents: None, mailer: Arc::new(NoMailer) })
    }

    /// Accepts clients identified by a metadata-document URL, fetched with `fetcher`.
    pub fn with_client_documents(mut self, fetcher: Arc<dyn ClientDocumentFetcher>) -> Self {
        self.client_documents = Some(fetcher);
        self
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    fn now(&self) -> Timestamp {
        self.gateway.now()
    }

    /// RFC 8414 authorization server metadata.
    pub fn authorization_server_metadata(&self) -> serde_json::Value {
        let issuer = self.settings.issuer();
        let methods = ["none", "client_secret_post", "client_secret_basic"];
        serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/oauth/authorize"),
            "token_endpoint": format!("{issuer}/oauth/token"),
            "registration_endpoint": format!("{issuer}/oauth/register"),
            "revocation_endpoint": format!("{issuer}/oauth/revoke"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": methods,
            "revocation_endpoint_auth_methods_supported": methods,
            "scopes_supported": [SCOPE],
            // Every authorization response, success or error, carries `iss` (RFC 9207 §2, §3).
            "authorization_response_iss_parameter_supported": true,
            "client_id_metadata_document_supported": self.client_documents.is_some(),
        })
    }

    /// RFC 9728 protected resource metadata for `/mcp`.
    pub fn protected_resource_metadata(&self) -> serde_json::Value {
        serde_json::json!({
            "resource": self.settings.resource(),
            "authorization_servers": [self.settings.issuer()],
            "scopes_supported": [SCOPE],
            "bearer_methods_supported": ["header"],
            "resource_name": "SquareMCP",
        })
    }
}

#[cfg(test)]
mod client_document_tests;
#[cfg(test)]
mod tests;
