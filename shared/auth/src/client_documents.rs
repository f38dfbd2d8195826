//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document; MCP 2025-11-25
//! §Client ID Metadata Documents): a client whose `client_id` is an https URL publishes its
//! metadata at that URL, and is accepted without registration.
//!
//! The document is fetched through a [`ClientDocumentFetcher`] (a port: the edge implements it
//! with the SSRF-guarded HTTP client, so this crate never touches the network), validated, and
//! cached in the store with a TTL taken from its `Cache-Control`, so that every process (every
//! Lambda) shares one copy and the authorize and token steps of one sign-in fetch it once.
//!
//! Only public clients are accepted (`token_endpoint_auth_method` `none` or absent): a document
//! cannot carry a shared secret (the draft forbids it), and `private_key_jwt` is not supported.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use squaremcp_core::{PutMode, StoreError};
use url::{Host, Url};

use crate::client_network::{client_network, seconds_left_in};
use crate::clients::{Client, ClientAuthMethod, check_client_name, check_client_uri, list_field, text_field};
use crate::crypto::sha256_hex;
use crate::uris::check_redirect_uri;
use crate::{Auth, AuthError};

/// The draft's recommended maximum response size.
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
/// How long one fetch (connection included) may take: a person is waiting on the page.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest `client_id` URL accepted (it is shown on the consent page and kept in grants).
const MAX_URL_LEN: usize = 1000;
/// Bounds on how long a fetched document is trusted (the draft lets the server bound
/// `Cache-Control`): at least a minute, so that a sign-in's authorize and token steps share one
/// fetch; at most a day, so that a changed or withdrawn document takes effect.
const MIN_CACHE_SECONDS: i64 = 60;
const MAX_CACHE_SECONDS: i64 = 24 * 3600;
/// When the document says nothing about caching.
const DEFAULT_CACHE_SECONDS: i64 = 3600;

/// One HTTP answer, as the fetcher saw it. Redirects are never followed, so a 3xx arrives here.
#[derive(Clone, Debug)]
pub struct FetchedDocument {
    pub status: u16,
    pub cache_control: Option<String>,
    pub body: Vec<u8>,
}

/// Why no answer came.
#[derive(Clone, Debug, thiserror::Error)]
pub enum FetchError {
    /// The SSRF guard refused the host or one of its addresses.
    #[error("{0}")]
    Refused(String),
    #[error("the document is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    #[error("no answer within {} s", FETCH_TIMEOUT.as_secs())]
    Timeout,
    #[error("{0}")]
    Failed(String),
}

/// Fetches a client metadata document: a GET that follows no redirect, connects only to
/// addresses the network policy allows, gives up after [`FETCH_TIMEOUT`] and reads at most
/// `max_bytes` of body ([`FetchError::TooLarge`] beyond).
#[async_trait]
pub trait ClientDocumentFetcher: Send + Sync {
    async fn fetch(&self, url: &Url, max_bytes: usize) -> Result<FetchedDocument, FetchError>;
}

/// Why a URL `client_id` cannot be used. Shown to the person (authorize) or returned as
/// `invalid_client` (token): never a secret, only what the client itself published.
#[derive(Debug, thiserror::Error)]
pub enum ClientDocumentError {
    #[error("this server does not accept URL client ids; register the client first")]
    Unsupported,
    #[error("the client_id URL is not acceptable: {0}")]
    InvalidUrl(String),
    #[error("the client metadata document could not be fetched: {0}")]
    Unreachable(String),
    #[error("the client metadata document is invalid: {0}")]
    InvalidDocument(String),
    /// Too many fetches from this client network, or of this host, this hour.
    #[error("too many client metadata documents were fetched {0}; try again in {1} s")]
    TooManyFetches(&'static str, u64),
    #[error(transparent)]
    Server(#[from] AuthError),
}

/// A `client_id` that names a metadata document rather than a registration. Registered ids
/// start with `mcp_`, so the two never collide (the draft's §Supporting Both).
pub fn is_document_client_id(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

fn cache_key(client_id: &str) -> String {
    format!("oauth:client-document:{}", sha256_hex(client_id))
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The draft's §Client Identifier: https, a path, no dot segments, no fragment, no user info.
/// The URL must also be in normal form (what a URL parser would print), which rules out dot
/// segments, default ports, upper-case hosts and other spellings of the same URL: the document
/// names itself by simple string comparison, and the consent page must show what is fetched.
/// `http` is accepted only on loopback and only when private hosts are allowed (tests).
pub(crate) fn check_client_id_url(text: &str, allow_loopback_http: bool) -> Result<Url, String> {
    if text.len() > MAX_URL_LEN {
        return Err(format!("it must be at most {MAX_URL_LEN} characters"));
    }
    let url = Url::parse(text).map_err(|_| "it is not an absolute URL".to_owned())?;
    match url.scheme() {
        "https" => {}
        "http" if allow_loopback_http && is_loopback_host(&url) => {}
        _ => return Err("it must use https".into()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("it must not contain a user name or password".into());
    }
    if url.fragment().is_some() {
        return Err("it must not contain a fragment".into());
    }
    if text.split(['?', '#']).next().is_some_and(|before| before.split('/').any(|segment| segment == "." || segment == "..")) {
        return Err("it must not contain . or .. path segments".into());
    }
    if url.path() == "/" {
        return Err("it must have a path (the document's location on the host)".into());
    }
    if url.as_str() != text {
        return Err(format!("it must be written in normal form, as {}", url.as_str()));
    }
    Ok(url)
}

/// How long to keep a document, from its `Cache-Control` (RFC 9111): `None` when it must not be
/// kept (`no-store`, `no-cache`, `private` is fine for this one consumer, `max-age=0`).
pub(crate) fn cache_seconds(cache_control: Option<&str>) -> Option<i64> {
    let Some(header) = cache_control else { return Some(DEFAULT_CACHE_SECONDS) };
    let mut max_age = None;
    for directive in header.split(',') {
        let directive = directive.trim();
        let (name, value) = directive.split_once('=').map_or((directive, None), |(n, v)| (n.trim(), Some(v.trim().trim_matches('"'))));
        match name.to_ascii_lowercase().as_str() {
            "no-store" | "no-cache" => return None,
            "max-age" => max_age = value.and_then(|v| v.parse::<i64>().ok()),
            _ => {}
        }
    }
    match max_age {
        Some(seconds) if seconds <= 0 => None,
        Some(seconds) => Some(seconds.clamp(MIN_CACHE_SECONDS, MAX_CACHE_SECONDS)),
        None => Some(DEFAULT_CACHE_SECONDS),
    }
}

/// Validates a fetched document for `client_id` and turns it into a (public) client. Redirect
/// URIs this server would not accept at registration are left out; at least one must remain.
pub(crate) fn parse_document(client_id: &str, body: &[u8], now_unix: i64) -> Result<Client, String> {
    let value: Value = serde_json::from_slice(body).map_err(|_| "it is not JSON".to_owned())?;
    let Value::Object(object) = value else { return Err("it is not a JSON object".into()) };
    let field_error = |e: crate::OAuthError| e.to_string();
    match object.get("client_id") {
        Some(Value::String(id)) if id == client_id => {}
        Some(Value::String(id)) => return Err(format!("its client_id `{id}` differs from the URL it was fetched from")),
        _ => return Err("it has no client_id".into()),
    }
    if object.contains_key("client_secret") || object.contains_key("client_secret_expires_at") {
        return Err("it must not contain a client_secret".into());
    }
    match text_field(&object, "token_endpoint_auth_method").map_err(field_error)?.as_deref() {
        None | Some("none") => {}
        Some("client_secret_post" | "client_secret_basic" | "client_secret_jwt") => {
            return Err("a metadata document cannot use a shared secret (token_endpoint_auth_method)".into());
        }
        Some(other) => return Err(format!("token_endpoint_auth_method `{other}` is not supported; only public clients (none) are")),
    }
    if let Some(grants) = list_field(&object, "grant_types").map_err(field_error)?
        && !grants.iter().any(|g| g == "authorization_code")
    {
        return Err("its grant_types do not include authorization_code".into());
    }
    if let Some(types) = list_field(&object, "response_types").map_err(field_error)?
        && !types.iter().any(|t| t == "code")
    {
        return Err("its response_types do not include code".into());
    }
    let listed = list_field(&object, "redirect_uris").map_err(field_error)?.unwrap_or_default();
    let redirect_uris: Vec<String> = listed.into_iter().filter(|uri| check_redirect_uri(uri).is_ok()).take(20).collect();
    if redirect_uris.is_empty() {
        return Err("it lists no usable redirect_uris (https, or http on a loopback address)".into());
    }
    let client_name = text_field(&object, "client_name").map_err(field_error)?;
    if let Some(name) = &client_name {
        check_client_name(name)?;
    }
    let client_uri = text_field(&object, "client_uri").map_err(field_error)?;
    if let Some(uri) = &client_uri {
        check_client_uri(uri)?;
    }
    Ok(Client {
        client_id: client_id.to_owned(),
        client_name,
        client_uri,
        redirect_uris,
        token_endpoint_auth_method: ClientAuthMethod::None,
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        response_types: vec!["code".into()],
        scope: None,
        secret_hash: None,
        created_at: now_unix,
        used: false,
    })
}

impl Auth {
    /// The client a metadata-document `client_id` stands for: from the shared cache, or fetched
    /// and validated now. Failures are never cached (the draft forbids it).
    /// `client_ip` is the caller's: fetches are counted per client network and per host.
    pub(crate) async fn document_client(&self, client_id: &str, client_ip: &str) -> Result<Client, ClientDocumentError> {
        let Some(fetcher) = &self.client_documents else { return Err(ClientDocumentError::Unsupported) };
        let url = check_client_id_url(client_id, self.settings.allow_loopback_client_documents).map_err(ClientDocumentError::InvalidUrl)?;
        let store = self.gateway.store();
        let key = cache_key(client_id);
        if let Some(bytes) = store.get_item(&key, self.now()).await.map_err(AuthError::from)?
            && let Ok(client) = serde_json::from_slice::<Client>(&bytes)
        {
            return Ok(client);
        }
        self.count_document_fetch(&url, client_ip).await?;
        let fetched = fetcher.fetch(&url, MAX_DOCUMENT_BYTES).await.map_err(|e| {
            tracing::warn!(client_id, error = %e, "client metadata document fetch failed");
            ClientDocumentError::Unreachable(e.to_string())
        })?;
        let refuse = |why: String| {
            tracing::warn!(client_id, why, "client metadata document refused");
            why
        };
        match fetched.status {
            200 => {}
            300..=399 => {
                return Err(ClientDocumentError::Unreachable(refuse(format!(
                    "it answered with a redirect (HTTP {}); redirects are not followed",
                    fetched.status
                ))));
            }
            status => return Err(ClientDocumentError::Unreachable(refuse(format!("it answered HTTP {status}")))),
        }
        if fetched.body.len() > MAX_DOCUMENT_BYTES {
            return Err(ClientDocumentError::Unreachable(refuse(FetchError::TooLarge.to_string())));
        }
        let now = self.now();
        let client =
            parse_document(client_id, &fetched.body, now.unix()).map_err(|why| ClientDocumentError::InvalidDocument(refuse(why)))?;
        if let Some(seconds) = cache_seconds(fetched.cache_control.as_deref()) {
            let bytes = serde_json::to_vec(&client).map_err(|_| AuthError::Corrupt("client document"))?;
            store.put_item(&key, &bytes, Some(now.plus_seconds(seconds)), PutMode::Replace, now).await.map_err(AuthError::from)?;
        }
        tracing::info!(client_id, "accepted a client metadata document");
        Ok(client)
    }

    /// Counts one fetch against the caller's network and against the document's host, per
    /// hour. Only cache misses count, so a published document that allows caching is fetched
    /// once per cache period however many people sign in with it. A caller refused by its own
    /// limit does not use up the host's.
    async fn count_document_fetch(&self, url: &Url, client_ip: &str) -> Result<(), ClientDocumentError> {
        let network = client_network(client_ip);
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let now = self.now().unix();
        let hour = now / 3600;
        let limits = [
            (format!("ratelimit:document-fetch:ip:{network}:{hour}"), self.settings.document_fetches_per_ip_per_hour, "from your network"),
            (format!("ratelimit:document-fetch:host:{}:{hour}", sha256_hex(&host)), self.settings.document_fetches_per_host_per_hour, "from this host"),
        ];
        for (key, limit, which) in limits {
            let hour_ends = squaremcp_core::Timestamp::from_unix((hour + 1) * 3600);
            match self.gateway.store().add_to_expiring_counter(&key, 1, Some(limit), hour_ends).await {
                Ok(_) => {}
                Err(StoreError::LimitReached { .. }) => {
                    tracing::warn!(client_network = network, host, limit = which, "client metadata document fetch refused: rate limit");
                    return Err(ClientDocumentError::TooManyFetches(which, seconds_left_in(now, 3600)));
                }
                Err(e) => return Err(AuthError::from(e).into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn client_id_urls_follow_the_drafts_rules() {
        for ok in ["https://app.example.com/oauth/client.json", "https://example.com:8443/c", "https://example.com/c?v=1"] {
            assert_eq!(check_client_id_url(ok, false).map(|u| u.to_string()), Ok(ok.to_owned()), "{ok}");
        }
        for (bad, why) in [
            ("http://app.example.com/client.json", "https"),
            ("https://app.example.com", "path"),
            ("https://app.example.com/", "path"),
            ("https://app.example.com/a/../client.json", ". or .."),
            ("https://app.example.com/./client.json", ". or .."),
            ("https://app.example.com/client.json#x", "fragment"),
            ("https://user:pw@app.example.com/client.json", "user name"),
            ("https://APP.example.com/client.json", "normal form"),
            ("https://app.example.com:443/client.json", "normal form"),
            ("ftp://app.example.com/client.json", "https"),
            ("not a url", "absolute"),
        ] {
            let message = check_client_id_url(bad, false).expect_err(bad);
            assert!(message.contains(why), "{bad}: {message}");
        }
        assert!(check_client_id_url(&format!("https://example.com/{}", "a".repeat(MAX_URL_LEN)), false).is_err());
    }

    #[test]
    fn plain_http_only_on_loopback_and_only_when_allowed() {
        assert!(check_client_id_url("http://127.0.0.1:8080/client.json", true).is_ok());
        assert!(check_client_id_url("http://localhost:8080/client.json", true).is_ok());
        assert!(check_client_id_url("http://127.0.0.1:8080/client.json", false).is_err());
        assert!(check_client_id_url("http://example.com/client.json", true).is_err());
    }

    #[test]
    fn cache_lifetimes_follow_cache_control_within_bounds() {
        assert_eq!(cache_seconds(None), Some(DEFAULT_CACHE_SECONDS));
        assert_eq!(cache_seconds(Some("public, max-age=600")), Some(600));
        assert_eq!(cache_seconds(Some("max-age=\"900\"")), Some(900));
        assert_eq!(cache_seconds(Some("max-age=5")), Some(MIN_CACHE_SECONDS));
        assert_eq!(cache_seconds(Some("max-age=31536000")), Some(MAX_CACHE_SECONDS));
        assert_eq!(cache_seconds(Some("max-age=0")), None);
        assert_eq!(cache_seconds(Some("no-store")), None);
        assert_eq!(cache_seconds(Some("max-age=600, No-Cache")), None);
        assert_eq!(cache_seconds(Some("public")), Some(DEFAULT_CACHE_SECONDS));
        assert_eq!(cache_seconds(Some("max-age=soon")), Some(DEFAULT_CACHE_SECONDS));
    }

    const ID: &str = "https://app.example.com/client.json";

    fn parse(document: &Value) -> Result<Client, String> {
        parse_document(ID, document.to_string().as_bytes(), 0)
    }

    #[test]
    fn a_valid_document_becomes_a_public_client() {
        let client = parse(&serde_json::json!({
            "client_id": ID,
            "client_name": "Example App",
            "redirect_uris": ["http://127.0.0.1/callback", "cursor://nope", "https://app.example.com/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }))
        .unwrap();
        assert_eq!(client.client_id, ID);
        assert_eq!(client.display_name(), "Example App");
        assert_eq!(client.redirect_uris, ["http://127.0.0.1/callback", "https://app.example.com/cb"], "unusable schemes are left out");
        assert_eq!(client.token_endpoint_auth_method, ClientAuthMethod::None);
        assert!(client.secret_hash.is_none());
    }

    #[test]
    fn invalid_documents_are_refused_with_the_reason() {
        let base = serde_json::json!({"client_id": ID, "redirect_uris": ["https://app.example.com/cb"]});
        let with = |field: &str, value: Value| {
            let mut document = base.clone();
            document[field] = value;
            document
        };
        for (document, why) in [
            (with("client_id", "https://evil.example.com/client.json".into()), "differs"),
            (with("client_id", "https://app.example.com/client.json/".into()), "differs"),
            (serde_json::json!({"redirect_uris": ["https://app.example.com/cb"]}), "no client_id"),
            (with("client_secret", "s3cret".into()), "client_secret"),
            (with("token_endpoint_auth_method", "client_secret_basic".into()), "shared secret"),
            (with("token_endpoint_auth_method", "private_key_jwt".into()), "only public clients"),
            (with("redirect_uris", serde_json::json!(["cursor://cb", "http://evil.example/cb"])), "redirect_uris"),
            (with("redirect_uris", serde_json::json!("https://app.example.com/cb")), "array of strings"),
            (with("client_name", "Good\u{202E}moc.elgoog".into()), "text-direction"),
            (with("client_name", "Zero\u{200B}width".into()), "invisible"),
            (with("grant_types", serde_json::json!(["client_credentials"])), "authorization_code"),
            (serde_json::json!(["not", "an", "object"]), "JSON object"),
        ] {
            let message = parse(&document).expect_err(&document.to_string());
            assert!(message.contains(why), "{document}: {message}");
        }
        assert_eq!(parse_document(ID, b"<html>", 0).unwrap_err(), "it is not JSON");
    }

    #[test]
    fn only_urls_are_document_client_ids() {
        assert!(is_document_client_id("https://app.example.com/client.json"));
        assert!(!is_document_client_id("mcp_0123456789abcdef0123456789abcdef"));
    }
}
