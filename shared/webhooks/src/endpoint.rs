//! A customer's webhook endpoints: one document per customer (`wh-endpoints#<customer>`),
//! changed by compare-and-swap so that concurrent edits cannot lose one another.
//!
//! Secrets are sealed with the keyring, like credentials: the customer sees a secret once, and
//! the gateway must be able to sign with it, so a hash would not do. The keyring binds a
//! ciphertext to a customer and a platform; a webhook secret is sealed under the customer's
//! binding with a purpose-and-endpoint tag inside the plaintext, checked on opening, so it opens
//! only as this endpoint's secret and no credential opens as one.

use serde::{Deserialize, Serialize};
use squaremcp_core::{
    Clock, CustomerId, Keyring, KeyringError, Platform, PutMode, SealedSecret, SecretBinding, Store, StoreError, Timestamp,
};
use squaremcp_platforms::kit::{GuardError, NetworkPolicy};

use crate::EVENT_TYPES;
use crate::signing::WebhookSecret;

/// After a rotation the previous secret keeps signing this long, so receivers can switch over.
pub const ROTATION_OVERLAP_SECONDS: i64 = 24 * 3600;
/// Endpoints per customer.
pub const MAX_ENDPOINTS: usize = 20;
const MAX_URL_LENGTH: usize = 2048;
/// The platform part of the keyring binding of webhook secrets (see the module docs).
const SEALING_PLATFORM: Platform = Platform::Whatsapp;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    /// `ep_` and 24 hex digits.
    pub id: String,
    pub url: String,
    /// The event types delivered; empty means all.
    pub events: Vec<String>,
    pub created_at: Timestamp,
    #[serde(default)]
    pub disabled: bool,
    /// When the current run of failed attempts began (no success since); `None` while healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<Timestamp>,
    /// When the gateway disabled the endpoint for failing too long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<Timestamp>,
    /// Newest first; the older one only until its `expires_at`.
    secrets: Vec<StoredSecret>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct StoredSecret {
    sealed: SealedSecret,
    created_at: Timestamp,
    expires_at: Option<Timestamp>,
}

impl Endpoint {
    pub fn wants(&self, event_type: &str) -> bool {
        !self.disabled && (self.events.is_empty() || self.events.iter().any(|e| e == event_type))
    }

    /// How many secrets currently sign (2 during a rotation).
    pub fn valid_secrets(&self, now: Timestamp) -> usize {
        self.secrets.iter().filter(|s| s.expires_at.is_none_or(|at| now < at)).count()
    }
}

/// What `webhooks add` asks for.
#[derive(Clone, Debug)]
pub struct NewEndpoint {
    pub url: String,
    pub events: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("the endpoint URL {0}")]
    InvalidUrl(String),
    #[error(transparent)]
    Forbidden(#[from] GuardError),
    #[error("unknown event type `{0}` (known: {known})", known = EVENT_TYPES.join(", "))]
    UnknownEvent(String),
    #[error("a customer has at most {MAX_ENDPOINTS} endpoints")]
    TooMany,
    #[error("no endpoint {0} for this customer")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keyring(#[from] KeyringError),
}

/// Endpoints on the store, secrets through the keyring.
pub struct Endpoints<'a> {
    pub store: &'a dyn Store,
    pub keyring: &'a dyn Keyring,
    pub clock: &'a dyn Clock,
    pub network: &'a NetworkPolicy,
}

fn document_key(customer: &CustomerId) -> String {
    format!("wh-endpoints#{}", customer.as_str())
}

fn binding(customer: &CustomerId) -> SecretBinding {
    // v1 associated data (no account): webhook secrets are not credentials.
    SecretBinding { customer_id: customer.clone(), platform: SEALING_PLATFORM, account: None }
}

fn tag(endpoint: &str) -> String {
    format!("squaremcp-webhook-secret:v1:{endpoint}\n")
}

/// Checks an endpoint URL's shape and, through the SSRF guard, where it points. Called when an
/// endpoint is added and again before every delivery (DNS may have changed).
pub async fn check_url(network: &NetworkPolicy, text: &str) -> Result<url::Url, EndpointError> {
    if text.len() > MAX_URL_LENGTH {
        return Err(EndpointError::InvalidUrl(format!("is longer than {MAX_URL_LENGTH} characters")));
    }
    let url = url::Url::parse(text).map_err(|e| EndpointError::InvalidUrl(format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(EndpointError::InvalidUrl("must be http(s)".to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(EndpointError::InvalidUrl("must not carry a user name or password".to_owned()));
    }
    let host = url.host_str().ok_or_else(|| EndpointError::InvalidUrl("has no host".to_owned()))?;
    let port = url.port_or_known_default().unwrap_or(443);
    network.resolve(host, port).await?;
    Ok(url)
}

impl Endpoints<'_> {
    /// The customer's endpoints (none when the customer has none).
    pub async fn list(&self, customer: &CustomerId) -> Result<Vec<Endpoint>, StoreError> {
        Ok(self.read(customer).await?.map(|(endpoints, _)| endpoints).unwrap_or_default())
    }

    async fn read(&self, customer: &CustomerId) -> Result<Option<(Vec<Endpoint>, Vec<u8>)>, StoreError> {
        let Some(bytes) = self.store.get_item(&document_key(customer), self.clock.now()).await? else { return Ok(None) };
        let endpoints = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt(format!("webhook endpoints: {e}")))?;
        Ok(Some((endpoints, bytes)))
    }

    /// Reads, changes and writes back the document, retrying when another writer came first.
    async fn update<T>(
        &self,
        customer: &CustomerId,
        change: impl Fn(&mut Vec<Endpoint>) -> Result<T, EndpointError>,
    ) -> Result<T, EndpointError> {
        for _ in 0..8 {
            let now = self.clock.now();
            let current = self.read(customer).await?;
            let mut endpoints = current.as_ref().map(|(e, _)| e.clone()).unwrap_or_default();
            let result = change(&mut endpoints)?;
            let value = serde_json::to_vec(&endpoints).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let key = document_key(customer);
            let written = match &current {
                None => match self.store.put_item(&key, &value, None, PutMode::CreateOnly, now).await {
                    Ok(()) => true,
                    Err(StoreError::Conflict(_)) => false,
                    Err(e) => return Err(e.into()),
                },
                Some((_, expected)) => self.store.swap_item(&key, expected, &value, None, now).await?,
            };
            if written {
                return Ok(result);
            }
        }
        Err(StoreError::Unavailable("the webhook endpoints kept changing; try again".to_owned()).into())
    }

    async fn seal(&self, customer: &CustomerId, endpoint: &str, secret: &WebhookSecret) -> Result<StoredSecret, KeyringError> {
        let plaintext = format!("{}{}", tag(endpoint), secret.expose());
        let sealed = self.keyring.seal(&binding(customer), plaintext.as_bytes()).await?;
        Ok(StoredSecret { sealed, created_at: self.clock.now(), expires_at: None })
    }

    /// Registers an endpoint; returns it and its secret, which is shown this once.
    pub async fn add(&self, customer: &CustomerId, new: NewEndpoint) -> Result<(Endpoint, WebhookSecret), EndpointError> {
        let url = check_url(self.network, new.url.trim()).await?;
        let mut events = Vec::new();
        for event in new.events.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            if !EVENT_TYPES.contains(&event) {
                return Err(EndpointError::UnknownEvent(event.to_owned()));
            }
            if !events.iter().any(|e| e == event) {
                events.push(event.to_owned());
            }
        }
        let id = format!("ep_{}", squaremcp_core::random::hex_id::<12>());
        let secret = WebhookSecret::generate();
        let endpoint = Endpoint {
            id: id.clone(),
            url: url.to_string(),
            events,
            created_at: self.clock.now(),
            disabled: false,
            failing_since: None,
            disabled_at: None,
            secrets: vec![self.seal(customer, &id, &secret).await?],
        };
        let added = endpoint.clone();
        self.update(customer, move |endpoints| {
            if endpoints.len() >= MAX_ENDPOINTS {
                return Err(EndpointError::TooMany);
            }
            endpoints.push(added.clone());
            Ok(())
        })
        .await?;
        Ok((endpoint, secret))
    }

    pub async fn remove(&self, customer: &CustomerId, id: &str) -> Result<(), EndpointError> {
        self.update(customer, |endpoints| {
            let before = endpoints.len();
            endpoints.retain(|e| e.id != id);
            if endpoints.len() == before { Err(EndpointError::NotFound(id.to_owned())) } else { Ok(()) }
        })
        .await
    }

    /// A new secret signs from now on; the previous one also signs for
    /// [`ROTATION_OVERLAP_SECONDS`], then stops. Returns the new secret, shown this once.
    pub async fn rotate_secret(&self, customer: &CustomerId, id: &str) -> Result<(Endpoint, WebhookSecret), EndpointError> {
        let secret = WebhookSecret::generate();
        let fresh = self.seal(customer, id, &secret).await?;
        let now = self.clock.now();
        let endpoint = self
            .update(customer, |endpoints| {
                let endpoint = endpoints.iter_mut().find(|e| e.id == id).ok_or_else(|| EndpointError::NotFound(id.to_owned()))?;
                // Only the newest old secret overlaps; an older one (a second rotation within the
                // window) stops at once.
                let previous = endpoint.secrets.iter().find(|s| s.expires_at.is_none_or(|at| now < at)).cloned();
                endpoint.secrets = vec![fresh.clone()];
                if let Some(mut previous) = previous {
                    let end = now.plus_seconds(ROTATION_OVERLAP_SECONDS);
                    previous.expires_at = Some(previous.expires_at.map_or(end, |at| at.min(end)));
                    endpoint.secrets.push(previous);
                }
                Ok(endpoint.clone())
            })
            .await?;
        Ok((endpoint, secret))
    }

    /// Notes an attempt's outcome: a failure starts a failing run (or, once the run is
    /// `disable_after_seconds` old, disables the endpoint), a success ends it. Writes only on
    /// such a change. Returns the endpoint when this call disabled it.
    pub async fn record_outcome(
        &self,
        customer: &CustomerId,
        id: &str,
        delivered: bool,
        disable_after_seconds: i64,
    ) -> Result<Option<Endpoint>, EndpointError> {
        let now = self.clock.now();
        let due = |endpoint: &Endpoint| match (delivered, endpoint.failing_since) {
            (true, since) => since.is_some(),
            (false, None) => !endpoint.disabled,
            (false, Some(since)) => !endpoint.disabled && now.unix() - since.unix() >= disable_after_seconds,
        };
        let Some(current) = self.list(customer).await?.into_iter().find(|e| e.id == id) else { return Ok(None) };
        if !due(&current) {
            return Ok(None);
        }
        self.update(customer, |endpoints| {
            let Some(endpoint) = endpoints.iter_mut().find(|e| e.id == id) else { return Ok(None) };
            if !due(endpoint) {
                return Ok(None);
            }
            match (delivered, endpoint.failing_since) {
                (true, _) => endpoint.failing_since = None,
                (false, None) => endpoint.failing_since = Some(now),
                (false, Some(_)) => {
                    endpoint.disabled = true;
                    endpoint.disabled_at = Some(now);
                    return Ok(Some(endpoint.clone()));
                }
            }
            Ok(None)
        })
        .await
    }

    /// Turns a disabled endpoint back on, with a clean failure record.
    pub async fn enable(&self, customer: &CustomerId, id: &str) -> Result<Endpoint, EndpointError> {
        self.update(customer, |endpoints| {
            let endpoint = endpoints.iter_mut().find(|e| e.id == id).ok_or_else(|| EndpointError::NotFound(id.to_owned()))?;
            endpoint.disabled = false;
            endpoint.disabled_at = None;
            endpoint.failing_since = None;
            Ok(endpoint.clone())
        })
        .await
    }

    /// The secrets that sign now, newest first.
    pub async fn signing_secrets(&self, customer: &CustomerId, endpoint: &Endpoint) -> Result<Vec<WebhookSecret>, KeyringError> {
        let now = self.clock.now();
        let mut secrets = Vec::new();
        for stored in endpoint.secrets.iter().filter(|s| s.expires_at.is_none_or(|at| now < at)) {
            let opened = self.keyring.open(&binding(customer), &stored.sealed).await?;
            let text = std::str::from_utf8(opened.expose()).map_err(|_| KeyringError::Undecryptable)?;
            let secret = text
                .strip_prefix(&tag(&endpoint.id))
                .and_then(|s| WebhookSecret::parse(s).ok())
                .ok_or(KeyringError::Undecryptable)?;
            secrets.push(secret);
        }
        Ok(secrets)
    }
}
