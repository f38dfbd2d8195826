//! A customer's connections (stored credentials) as the customer sees them: their health, the
//! platforms they make available, and the upkeep of OAuth tokens.
//!
//! - **Health** is the state of one connection: `ok`, `expiring`, `needs_reconnect`,
//!   `failing` (with a reason) or `unchecked`. It comes from the platform's health probe (a
//!   read-only tool such as `get_me`) or from a failed call, and is cached in the store as an
//!   item with a TTL (`health#<customer>#<platform>#<account>`).
//! - **Token refresh**: a credential document with an `expires_at` (Unix seconds) and a
//!   `refresh_token` is an OAuth token. It is refreshed before a call when it expires within
//!   [`REFRESH_MARGIN`] seconds, and after the platform answered `auth_expired` or
//!   `auth_revoked` (the call then runs once more). Only one refresh of a credential runs at a time across every process: the
//!   refresher holds a lease item (`lease#credential#…`, created only if absent), re-reads the
//!   credential under the lease (another process may just have refreshed it), stores the new
//!   tokens with a compare-and-swap on the sealed record, and only then uses them. The others
//!   wait for the record to change and use the stored result. A refresh the provider refuses
//!   marks the connection `needs_reconnect`.

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::gateway::GatewayError;
use crate::tool::FailureKind;
use crate::{
    AccountName, CredentialRecord, CustomerId, Gateway, Platform, PutMode, Secret, StoreError, Timestamp, Tool, ToolFailure,
    ToolOutput, random,
};

/// An access token expiring within this many seconds is refreshed before a call.
pub const REFRESH_MARGIN: i64 = 300;
/// A token that cannot be refreshed and expires within this many seconds is `expiring`.
pub const EXPIRING_WINDOW: i64 = 3 * 86_400;
/// How long a probe's `ok` is believed.
pub const HEALTH_TTL_OK: i64 = 900;
/// How long a bad state is kept before the next look probes again.
pub const HEALTH_TTL_BAD: i64 = 300;
/// How long one refresh may hold its lease.
const LEASE_SECONDS: i64 = 30;
/// How often a caller waiting for another process's refresh looks at the record again.
const WAIT_STEP: Duration = Duration::from_millis(50);
/// How long a caller waits for another process's refresh before giving up.
const WAIT_STEPS: u32 = 600;

/// The health of one connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Health {
    Ok,
    /// The token works but expires soon and cannot be refreshed: connect again before then.
    Expiring { expires_at: i64 },
    /// The platform rejected the credential (or its refresh) for good: connect again.
    NeedsReconnect,
    /// The probe or the last call failed for another reason.
    Failing { reason: String },
    /// Never checked, or the platform has no health probe.
    Unchecked,
}

impl Health {
    /// `ok`, `expiring`, `needs_reconnect`, `failing` or `unchecked`.
    pub fn name(&self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Expiring { .. } => "expiring",
            Health::NeedsReconnect => "needs_reconnect",
            Health::Failing { .. } => "failing",
            Health::Unchecked => "unchecked",
        }
    }

    /// A sentence for a person.
    pub fn describe(&self) -> String {
        match self {
            Health::Ok => "Working.".to_owned(),
            Health::Expiring { expires_at } => {
                format!("Working, but the access expires on {}; connect again before then.", Timestamp::from_unix(*expires_at).to_rfc3339())
            }
            Health::NeedsReconnect => "The platform no longer accepts this connection: connect it again.".to_owned(),
            Health::Failing { reason } => format!("Failing: {reason}"),
            Health::Unchecked => "Not checked yet.".to_owned(),
        }
    }

    /// What a failed call says about its connection; `None` when it says nothing (bad
    /// arguments, a missing item, a rate limit, the gateway's own refusal).
    pub fn after_failure(failure: &ToolFailure) -> Option<Self> {
        match failure.kind {
            FailureKind::AuthExpired | FailureKind::AuthRevoked => Some(Health::NeedsReconnect),
            FailureKind::PermissionMissing
            | FailureKind::QuotaExhausted
            | FailureKind::UpstreamTransient
            | FailureKind::Upstream
            | FailureKind::NotConfigured => Some(Health::Failing { reason: reason_of(failure) }),
            // `not_supported` is about the tool (a partner-only API), not the connection.
            FailureKind::InvalidInput
            | FailureKind::NotFound
            | FailureKind::RateLimited
            | FailureKind::Forbidden
            | FailureKind::NotSupported => None,
        }
    }
}

fn reason_of(failure: &ToolFailure) -> String {
    let mut reason: String = failure.message.chars().take(200).collect();
    if reason.len() < failure.message.len() {
        reason.push('…');
    }
    format!("{} ({reason})", failure.kind.as_str())
}

/// The cached health of a connection, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthRecord {
    pub health: Health,
    pub checked_at: Timestamp,
}

/// One stored credential as the customer sees it: never its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Connection {
    pub platform: Platform,
    pub account: AccountName,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub health: Health,
    /// When the health was established; `None` while unchecked.
    pub checked_at: Option<Timestamp>,
}

/// How [`Gateway::connections`] treats health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Only what is cached; the rest is `unchecked`.
    CachedOnly,
    /// Probe the connections without a cached state (the account page).
    Missing,
    /// Probe every connection now (`squaremcp credentials check`).
    All,
}

/// Why a token refresh did not give new tokens.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The provider refused the refresh token (revoked, expired, reused): connect again.
    #[error("the provider refused the refresh: {0}")]
    Refused(String),
    /// The provider could not be reached or answered something unreadable: try again later.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
}

/// Renews OAuth access tokens with a platform's token endpoint (implemented with the platform
/// registration table's OAuth apps, outside the domain).
#[async_trait]
pub trait TokenRefresher: Send + Sync {
    /// Whether this platform's credentials are OAuth tokens this refresher can renew.
    fn refreshes(&self, platform: Platform) -> bool;
    /// Whether it can renew this document: by default one with a `refresh_token`. Some tokens
    /// are their own refresh grant (Instagram Login's long-lived tokens).
    fn can_refresh(&self, platform: Platform, document: &Value) -> bool {
        self.refreshes(platform) && has_refresh_token(document)
    }
    /// A token expiring within this many seconds is renewed before a call: [`REFRESH_MARGIN`],
    /// or longer where the platform renews only unexpired tokens that live for weeks, so that a
    /// connection used now and then is renewed in time (Instagram Login).
    fn refresh_margin(&self, _platform: Platform) -> i64 {
        REFRESH_MARGIN
    }
    /// When the document's access token expires (Unix seconds): its `expires_at` by default.
    /// A platform whose document keeps its tokens elsewhere says where (Email's `oauth2`).
    fn expires_at(&self, _platform: Platform, document: &Value) -> Option<i64> {
        expires_at(document)
    }
    /// Exchanges the document's `refresh_token`; returns the whole new credential document
    /// (`access_token`, `refresh_token`, `expires_at`, `scopes`, `account`).
    async fn refresh(&self, platform: Platform, document: &Secret<Value>) -> Result<Secret<Value>, RefreshError>;
}

pub fn health_key(customer: &CustomerId, platform: Platform, account: &AccountName) -> String {
    format!("health#{customer}#{platform}#{account}")
}

fn lease_key(record: &CredentialRecord) -> String {
    format!("lease#credential#{}#{}#{}", record.customer_id, record.platform, record.account)
}

/// `expires_at` of an OAuth credential document, in Unix seconds.
pub fn expires_at(document: &Value) -> Option<i64> {
    document.get("expires_at").and_then(Value::as_i64)
}

fn has_refresh_token(document: &Value) -> bool {
    document.get("refresh_token").and_then(Value::as_str).is_some_and(|t| !t.is_empty())
}

fn reconnect_failure(platform: Platform) -> ToolFailure {
    ToolFailure::new(
        FailureKind::AuthRevoked,
        format!("{platform} no longer accepts this connection. Reconnect {platform} on your account page (/account), then try again."),
    )
}

impl Gateway {
    /// The platforms a customer has connected (one store query): their tools are the ones
    /// `tools/list` shows the customer.
    pub async fn connected_platforms(&self, customer: &CustomerId) -> Result<BTreeSet<Platform>, StoreError> {
        Ok(self.store().credentials(customer, None).await?.into_iter().map(|r| r.platform).collect())
    }

    /// A customer's connections with their health, ordered by platform and account.
    pub async fn connections(
        &self,
        customer: &CustomerId,
        platform: Option<Platform>,
        probe: Probe,
    ) -> Result<Vec<Connection>, GatewayError> {
        let records = self.store().credentials(customer, platform).await?;
        let mut connections = Vec::with_capacity(records.len());
        for record in records {
            let cached = match probe {
                Probe::All => None,
                _ => self.cached_health(&record).await?,
            };
            let (health, checked_at) = match (cached, probe) {
                (Some(cached), _) => (cached.health, Some(cached.checked_at)),
                (None, Probe::CachedOnly) => (Health::Unchecked, None),
                (None, _) => {
                    let checked = self.probe(&record).await;
                    let at = (checked.health != Health::Unchecked).then_some(checked.checked_at);
                    (checked.health, at)
                }
            };
            connections.push(Connection {
                platform: record.platform,
                account: record.account,
                created_at: record.created_at,
                updated_at: record.updated_at,
                health,
                checked_at,
            });
        }
        Ok(connections)
    }

    async fn cached_health(&self, record: &CredentialRecord) -> Result<Option<HealthRecord>, StoreError> {
        let key = health_key(&record.customer_id, record.platform, &record.account);
        Ok(self.store().get_item(&key, self.now()).await?.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    }

    /// Caches a connection's health; a failure to write is logged, never fatal.
    async fn remember_health(&self, record: &CredentialRecord, health: &Health) -> HealthRecord {
        let now = self.now();
        let entry = HealthRecord { health: health.clone(), checked_at: now };
        if *health == Health::Unchecked {
            return entry;
        }
        let ttl = if *health == Health::Ok { HEALTH_TTL_OK } else { HEALTH_TTL_BAD };
        let key = health_key(&record.customer_id, record.platform, &record.account);
        let written = match serde_json::to_vec(&entry) {
            Ok(bytes) => self.store().put_item(&key, &bytes, Some(now.plus_seconds(ttl)), PutMode::Replace, now).await,
            Err(e) => Err(StoreError::Corrupt(e.to_string())),
        };
        if let Err(e) = written {
            tracing::warn!(customer = record.customer_id.as_str(), platform = %record.platform, error = %e, "health not cached");
        }
        entry
    }

    /// Runs the platform's health probe with the stored credential (refreshing an expiring
    /// token first) and caches the result.
    pub async fn probe(&self, record: &CredentialRecord) -> HealthRecord {
        let platform = record.platform;
        let probe = self.registry().module(platform).and_then(|m| m.health_probe());
        let tool = probe.and_then(|short| self.registry().tool(&format!("{platform}_{short}")).cloned());
        let document = match self.open_credential(record).await {
            Ok(document) => document,
            Err(failure) => {
                let health = Health::Failing { reason: reason_of(&failure) };
                return self.remember_health(record, &health).await;
            }
        };
        let Some(tool) = tool else {
            return self.remember_health(record, &self.health_without_probe(platform, document.expose())).await;
        };
        let health = match self.run_with_refresh(tool.as_ref(), record, document, Map::new()).await {
            Ok((_, used)) => self.health_without_probe(platform, used.expose()),
            Err(failure) => Health::after_failure(&failure).unwrap_or(Health::Failing { reason: reason_of(&failure) }),
        };
        self.remember_health(record, &health).await
    }

    /// `ok` or `expiring` for a credential that works: `expiring` when its token cannot be
    /// refreshed and ends soon. A platform without a probe is `unchecked`.
    fn health_without_probe(&self, platform: Platform, document: &Value) -> Health {
        let refreshable = self.refresher().is_some_and(|r| r.can_refresh(platform, document));
        let expiry = self.refresher().map_or_else(|| expires_at(document), |r| r.expires_at(platform, document));
        match expiry {
            Some(at) if !refreshable && at <= self.now().unix() + EXPIRING_WINDOW => Health::Expiring { expires_at: at },
            _ if self.registry().module(platform).and_then(|m| m.health_probe()).is_none() => Health::Unchecked,
            _ => Health::Ok,
        }
    }

    /// Opens a stored credential document.
    pub(crate) async fn open_credential(&self, record: &CredentialRecord) -> Result<Secret<Value>, ToolFailure> {
        let platform = record.platform;
        let plaintext = record.open(self.keyring()).await.map_err(|e| {
            tracing::error!(customer = record.customer_id.as_str(), %platform, error = %e, "credential could not be opened");
            ToolFailure::new(FailureKind::NotConfigured, format!("The stored {platform} credentials could not be decrypted. Store them again."))
        })?;
        serde_json::from_slice(plaintext.expose()).map(Secret::new).map_err(|_| {
            ToolFailure::new(FailureKind::NotConfigured, format!("The stored {platform} credentials are not valid JSON. Store them again."))
        })
    }

    /// Removes a connection (through [`Gateway::delete_credential`], which also releases what
    /// the credential held) and its cached health. `false` when there was none.
    pub async fn disconnect(&self, customer: &CustomerId, platform: Platform, account: &AccountName) -> Result<bool, GatewayError> {
        let deleted = self.delete_credential(customer, platform, account).await?;
        self.store().delete_item(&health_key(customer, platform, account)).await?;
        Ok(deleted)
    }

    /// Gives a connection another account name (the one tools' `account` argument picks):
    /// stored under the new name (checked as any new credential), then the old one removed.
    /// `false` when there is no connection by the old name.
    pub async fn rename_connection(
        &self,
        customer: &CustomerId,
        platform: Platform,
        from: &AccountName,
        to: AccountName,
    ) -> Result<bool, GatewayError> {
        let records = self.store().credentials(customer, Some(platform)).await?;
        let Some(record) = records.iter().find(|r| &r.account == from).cloned() else {
            return Ok(false);
        };
        if &to == from {
            return Ok(true);
        }
        if records.iter().any(|r| r.account == to) {
            return Err(crate::customer::InvalidInput::new("account", format!("another {platform} connection is named `{to}`")).into());
        }
        let document = self
            .open_credential(&record)
            .await
            .map_err(|failure| GatewayError::InvalidCredential { platform, why: failure.message })?;
        self.set_credential(customer, platform, to, document.expose()).await?;
        self.disconnect(customer, platform, from).await?;
        Ok(true)
    }

    /// A tool call with a stored credential: refresh and retry as the module docs say, then the
    /// connection's health after a failure.
    pub(crate) async fn call_with_credential(
        &self,
        tool: &dyn Tool,
        record: &CredentialRecord,
        credential: Secret<Value>,
        arguments: Map<String, Value>,
    ) -> Result<ToolOutput, ToolFailure> {
        match self.run_with_refresh(tool, record, credential, arguments).await {
            Ok((output, _)) => Ok(output),
            Err(failure) => {
                match Health::after_failure(&failure) {
                    Some(health) => {
                        self.remember_health(record, &health).await;
                        if health == Health::NeedsReconnect {
                            // One event per stored credential: a reconnect stores a new one.
                            let key = format!("{}/{}/{}", record.platform, record.account.as_str(), record.updated_at.unix());
                            let data = serde_json::json!({
                                "platform": record.platform.as_str(),
                                "account": record.account.as_str(),
                                "kind": failure.kind.as_str(),
                                "message": failure.message,
                                "at": self.now().to_rfc3339(),
                            });
                            self.publish(&record.customer_id, "connection.needs_reconnect", &key, data).await;
                        }
                    }
                    // Nothing learnt about the connection: the next look probes again.
                    None => {
                        let key = health_key(&record.customer_id, record.platform, &record.account);
                        if let Err(e) = self.store().delete_item(&key).await {
                            tracing::warn!(customer = record.customer_id.as_str(), error = %e, "health not cleared");
                        }
                    }
                }
                Err(failure)
            }
        }
    }

    /// Runs the tool, refreshing an expiring token before and an expired one after (then once
    /// more). Returns the output and the credential document that was used.
    async fn run_with_refresh(
        &self,
        tool: &dyn Tool,
        record: &CredentialRecord,
        mut credential: Secret<Value>,
        arguments: Map<String, Value>,
    ) -> Result<(ToolOutput, Secret<Value>), ToolFailure> {
        let platform = record.platform;
        let refreshable = self.renewable(platform, &credential);
        let mut refreshed = false;
        if self.expiring(platform, &credential) {
            credential = self.refresh(record, &credential).await?;
            refreshed = true;
        }
        let retry_arguments = (refreshable && !refreshed).then(|| arguments.clone());
        match crate::tool::with_caller(record.customer_id.clone(), tool.call(&credential, arguments)).await {
            Ok(output) => Ok((output, credential)),
            // A 401 is often an expired token even where the platform cannot say so (X): a
            // refreshable credential gets one refresh; a refused one then asks for a reconnect.
            Err(failure) if matches!(failure.kind, FailureKind::AuthExpired | FailureKind::AuthRevoked) => match retry_arguments {
                Some(arguments) => {
                    let renewed = self.refresh(record, &credential).await?;
                    let output = crate::tool::with_caller(record.customer_id.clone(), tool.call(&renewed, arguments)).await?;
                    Ok((output, renewed))
                }
                None => Err(failure),
            },
            Err(failure) => Err(failure),
        }
    }

    /// Whether `credential` holds a token this gateway renews (an OAuth refresh token).
    pub(crate) fn renewable(&self, platform: Platform, credential: &Secret<Value>) -> bool {
        self.refresher().is_some_and(|r| r.can_refresh(platform, credential.expose()))
    }

    /// Whether `credential` holds a token this gateway can renew and should before using it.
    fn expiring(&self, platform: Platform, credential: &Secret<Value>) -> bool {
        let Some(refresher) = self.refresher().filter(|r| r.can_refresh(platform, credential.expose())) else { return false };
        let margin = refresher.refresh_margin(platform);
        refresher.expires_at(platform, credential.expose()).is_some_and(|at| at <= self.now().unix() + margin)
    }

    /// New tokens for `record`, refreshed by this process under a lease or by another one
    /// meanwhile. `used` is the document the caller holds (the one found expiring or expired).
    async fn refresh(&self, record: &CredentialRecord, used: &Secret<Value>) -> Result<Secret<Value>, ToolFailure> {
        let Some(refresher) = self.refresher() else {
            return Err(reconnect_failure(record.platform));
        };
        let platform = record.platform;
        let unavailable = || {
            ToolFailure::new(FailureKind::UpstreamTransient, format!("{platform} could not renew the access token just now. Try again shortly."))
        };
        let owner = random::token::<16>();
        let lease = lease_key(record);
        for _ in 0..WAIT_STEPS {
            // Someone may have refreshed since the caller read the record.
            let current = self.current_record(record).await.map_err(|_| unavailable())?;
            let Some(current) = current else {
                return Err(ToolFailure::new(FailureKind::NotConfigured, format!("This {platform} connection was removed.")));
            };
            if current.sealed != record.sealed {
                return self.open_credential(&current).await;
            }
            let now = self.now();
            match self.store().put_item(&lease, owner.as_bytes(), Some(now.plus_seconds(LEASE_SECONDS)), PutMode::CreateOnly, now).await {
                Ok(()) => {
                    let result = self.refresh_under_lease(refresher, record, used).await;
                    self.release(&lease, &owner).await;
                    return result;
                }
                Err(StoreError::Conflict(_)) => tokio::time::sleep(WAIT_STEP).await,
                Err(e) => {
                    tracing::error!(customer = record.customer_id.as_str(), %platform, error = %e, "refresh lease unavailable");
                    return Err(unavailable());
                }
            }
        }
        Err(unavailable())
    }

    async fn refresh_under_lease(
        &self,
        refresher: &dyn TokenRefresher,
        record: &CredentialRecord,
        used: &Secret<Value>,
    ) -> Result<Secret<Value>, ToolFailure> {
        let platform = record.platform;
        let customer = record.customer_id.as_str();
        let unavailable = || {
            ToolFailure::new(FailureKind::UpstreamTransient, format!("{platform} could not renew the access token just now. Try again shortly."))
        };
        // The lease is ours: one more look, since the holder before us may have just finished.
        match self.current_record(record).await.map_err(|_| unavailable())? {
            Some(current) if current.sealed != record.sealed => return self.open_credential(&current).await,
            Some(_) => {}
            None => return Err(ToolFailure::new(FailureKind::NotConfigured, format!("This {platform} connection was removed."))),
        }
        match refresher.refresh(platform, used).await {
            Ok(document) => {
                let bytes = serde_json::to_vec(document.expose()).map_err(|_| unavailable())?;
                let sealed = self.keyring().seal(&record.binding(), &bytes).await.map_err(|e| {
                    tracing::error!(customer, %platform, error = %e, "refreshed token could not be sealed");
                    unavailable()
                })?;
                let next = CredentialRecord { sealed, updated_at: self.now(), ..record.clone() };
                // Stored before anything uses it: a rotated refresh token is never lost.
                let swapped = self.store().swap_credential(&next, &record.sealed).await;
                // Either way the stored record is newer than one this process may hold.
                self.forget_cached_credentials(&record.customer_id);
                match swapped {
                    Ok(true) => {
                        tracing::info!(customer, %platform, "access token refreshed");
                        self.remember_health(record, &Health::Ok).await;
                        Ok(document)
                    }
                    // Replaced meanwhile (a reconnect): the stored one wins.
                    Ok(false) => match self.current_record(record).await.map_err(|_| unavailable())? {
                        Some(current) => self.open_credential(&current).await,
                        None => Err(ToolFailure::new(FailureKind::NotConfigured, format!("This {platform} connection was removed."))),
                    },
                    Err(e) => {
                        tracing::error!(customer, %platform, error = %e, "refreshed token could not be stored");
                        Err(unavailable())
                    }
                }
            }
            Err(RefreshError::Refused(why)) => {
                tracing::warn!(customer, %platform, why, "token refresh refused: the connection needs a reconnect");
                self.remember_health(record, &Health::NeedsReconnect).await;
                Err(reconnect_failure(platform))
            }
            Err(RefreshError::Unavailable(why)) => {
                tracing::warn!(customer, %platform, why, "token refresh failed");
                Err(unavailable())
            }
        }
    }

    async fn current_record(&self, record: &CredentialRecord) -> Result<Option<CredentialRecord>, StoreError> {
        Ok(self
            .store()
            .credentials(&record.customer_id, Some(record.platform))
            .await?
            .into_iter()
            .find(|r| r.account == record.account))
    }

    async fn release(&self, lease: &str, owner: &str) {
        let held = self.store().get_item(lease, self.now()).await.ok().flatten();
        if held.as_deref() == Some(owner.as_bytes())
            && let Err(e) = self.store().delete_item(lease).await
        {
            tracing::warn!(error = %e, "refresh lease not released; it expires by itself");
        }
    }
}

#[cfg(test)]
mod tests;
