//! What the account page needs from sign-in: CSRF tokens bound to the session, and the
//! customer's grants (the MCP clients they connected) with revocation.
//!
//! A grant is a refresh-token family (`oauth:family:<id>`). Families are found by id only, so
//! each customer has an index document (`oauth:grants:<customer>`) listing theirs with the
//! client's name, when it was granted and when it was last used (a token issued from it). The
//! index is kept with compare-and-swap; entries whose family is gone (revoked, expired, reused)
//! are dropped when the list is read.

use serde::{Deserialize, Serialize};
use squaremcp_core::{CustomerId, PutMode, StoreError};

use crate::crypto::{b64url, constant_time_eq, hmac_sha256};
use crate::login::Session;
use crate::tokens::{family_customer, family_key};
use crate::{Auth, AuthError};

/// Entries kept per customer; the oldest go first.
const MAX_INDEXED: usize = 100;
const CAS_ATTEMPTS: usize = 8;

/// A connected MCP client as the account page lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantSummary {
    /// The family id: names the grant in the revoke form. Not a secret (a refresh token is
    /// this id plus 43 random characters, and only its hash is stored).
    pub grant_id: String,
    pub client_id: String,
    pub client_name: String,
    pub created_at: i64,
    pub last_used_at: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct GrantIndex {
    pub(crate) grants: Vec<GrantSummary>,
}

pub(crate) fn index_key(customer: &CustomerId) -> String {
    format!("oauth:grants:{customer}")
}

impl Auth {
    /// The hidden field of the account page's forms: bound to this session and the form's
    /// purpose, so a token from another login or another form is useless.
    pub fn session_csrf(&self, session: &Session, purpose: &str) -> String {
        let message = format!("session-form\n{}\n{purpose}", session.sid);
        b64url(&hmac_sha256(&self.keys.csrf, message.as_bytes()))
    }

    pub fn check_session_csrf(&self, session: &Session, purpose: &str, token: &str) -> bool {
        !token.is_empty() && constant_time_eq(self.session_csrf(session, purpose).as_bytes(), token.as_bytes())
    }

    /// Changes the customer's grant index with `change`, retrying on concurrent changes.
    async fn update_index(&self, customer: &CustomerId, change: impl Fn(&mut GrantIndex)) -> Result<(), AuthError> {
        let store = self.gateway.store();
        let key = index_key(customer);
        for _ in 0..CAS_ATTEMPTS {
            let now = self.now();
            let current = store.get_item(&key, now).await?;
            let mut index: GrantIndex = match &current {
                Some(bytes) => serde_json::from_slice(bytes).map_err(|_| AuthError::Corrupt("grant index"))?,
                None => GrantIndex::default(),
            };
            change(&mut index);
            let excess = index.grants.len().saturating_sub(MAX_INDEXED);
            index.grants.drain(..excess);
            let bytes = serde_json::to_vec(&index).map_err(|_| AuthError::Corrupt("grant index"))?;
            let written = match &current {
                Some(expected) => store.swap_item(&key, expected, &bytes, None, now).await?,
                None => match store.put_item(&key, &bytes, None, PutMode::CreateOnly, now).await {
                    Ok(()) => true,
                    Err(StoreError::Conflict(_)) => false,
                    Err(e) => return Err(e.into()),
                },
            };
            if written {
                return Ok(());
            }
        }
        Err(AuthError::Store(StoreError::Unavailable("the grant index kept changing".into())))
    }

    /// A new grant (the first token exchange of a code). Failing to index it is logged: the
    /// grant works, it is only missing from the account page.
    pub(crate) async fn index_grant(&self, customer: &CustomerId, family_id: &str, client_id: &str, client_name: &str) {
        let now = self.now().unix();
        let entry = GrantSummary {
            grant_id: family_id.to_owned(),
            client_id: client_id.to_owned(),
            client_name: client_name.to_owned(),
            created_at: now,
            last_used_at: now,
        };
        let result = self
            .update_index(customer, |index| {
                index.grants.retain(|g| g.grant_id != entry.grant_id);
                index.grants.push(entry.clone());
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(customer = customer.as_str(), error = %e, "grant not indexed for the account page");
        }
    }

    /// Notes a use of a grant (a refresh); at most one write an hour per grant.
    pub(crate) async fn touch_grant(&self, customer: &CustomerId, family_id: &str) {
        let now = self.now().unix();
        let store = self.gateway.store();
        let stale = match store.get_item(&index_key(customer), self.now()).await {
            Ok(Some(bytes)) => serde_json::from_slice::<GrantIndex>(&bytes)
                .map(|index| index.grants.iter().any(|g| g.grant_id == family_id && now - g.last_used_at >= 3600))
                .unwrap_or(false),
            _ => false,
        };
        if !stale {
            return;
        }
        let result = self
            .update_index(customer, |index| {
                for grant in index.grants.iter_mut().filter(|g| g.grant_id == family_id) {
                    grant.last_used_at = now;
                }
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(customer = customer.as_str(), error = %e, "grant use not noted");
        }
    }

    /// The customer's live grants, newest first.
    pub async fn grants(&self, customer: &CustomerId) -> Result<Vec<GrantSummary>, AuthError> {
        let store = self.gateway.store();
        let now = self.now();
        let Some(bytes) = store.get_item(&index_key(customer), now).await? else { return Ok(Vec::new()) };
        let index: GrantIndex = serde_json::from_slice(&bytes).map_err(|_| AuthError::Corrupt("grant index"))?;
        let mut live = Vec::with_capacity(index.grants.len());
        let mut gone = Vec::new();
        for grant in index.grants {
            let owner = store.get_item(&family_key(&grant.grant_id), now).await?.and_then(|bytes| family_customer(&bytes));
            if owner.as_ref() == Some(customer) {
                live.push(grant);
            } else {
                gone.push(grant.grant_id);
            }
        }
        if !gone.is_empty() {
            self.update_index(customer, |index| index.grants.retain(|g| !gone.contains(&g.grant_id))).await?;
        }
        live.sort_by_key(|grant| std::cmp::Reverse(grant.created_at));
        Ok(live)
    }

    /// Revokes one of the customer's grants: its refresh tokens and access tokens stop working
    /// at once. `false` when the customer has no such grant.
    pub async fn revoke_grant(&self, customer: &CustomerId, grant_id: &str) -> Result<bool, AuthError> {
        let store = self.gateway.store();
        let valid_id = grant_id.len() == 32 && grant_id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !valid_id {
            return Ok(false);
        }
        let key = family_key(grant_id);
        let owner = store.get_item(&key, self.now()).await?.and_then(|bytes| family_customer(&bytes));
        if owner.as_ref() != Some(customer) {
            return Ok(false);
        }
        store.delete_item(&key).await?;
        self.update_index(customer, |index| index.grants.retain(|g| g.grant_id != grant_id)).await?;
        tracing::info!(customer = customer.as_str(), "grant revoked from the account page");
        Ok(true)
    }
}
