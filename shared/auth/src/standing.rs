//! A customer's standing: the generation of their sign-ins and whether the account is disabled,
//! one small document per customer (`login:standing:<customer>`; absent means generation 0,
//! enabled).
//!
//! Every session cookie, OAuth grant (refresh-token family) and authorization code records the
//! generation it was issued under, and is refused once the customer's generation has moved on:
//! bumping it ends every sign-in at once without a list of them. Access tokens are checked
//! through their grant, which the per-call check already reads: a bump also deletes the grants
//! in the customer's grant index, so their access tokens stop at once too; a grant missing from
//! the index (an index write that failed) stops at its next refresh, and its access tokens when
//! they expire.

use serde::{Deserialize, Serialize};
use squaremcp_core::{CustomerId, PutMode, Store, StoreError, Timestamp};

use crate::account::{GrantIndex, index_key};
use crate::tokens::family_key;

const CAS_ATTEMPTS: usize = 8;

/// The generation and the disabled flag of one customer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    pub generation: u64,
    #[serde(default)]
    pub disabled: bool,
}

fn standing_key(customer: &CustomerId) -> String {
    format!("login:standing:{}", customer.as_str())
}

/// The customer's current standing (one store read).
pub async fn standing(
    store: &dyn Store,
    now: Timestamp,
    customer: &CustomerId,
) -> Result<Standing, StoreError> {
    match store.get_item(&standing_key(customer), now).await? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map_err(|_| StoreError::Corrupt("customer standing".into())),
        None => Ok(Standing::default()),
    }
}

/// Applies `change` to the standing with compare-and-swap; returns the new standing.
async fn update(
    store: &dyn Store,
    now: Timestamp,
    customer: &CustomerId,
    change: impl Fn(&mut Standing),
) -> Result<Standing, StoreError> {
    let key = standing_key(customer);
    for _ in 0..CAS_ATTEMPTS {
        let current = store.get_item(&key, now).await?;
        let mut next = match &current {
            Some(bytes) => serde_json::from_slice(bytes)
                .map_err(|_| StoreError::Corrupt("customer standing".into()))?,
            None => Standing::default(),
        };
        change(&mut next);
        let bytes = serde_json::to_vec(&next)
            .map_err(|_| StoreError::Corrupt("customer standing".into()))?;
        let written = match &current {
            Some(expected) => store.swap_item(&key, expected, &bytes, None, now).await?,
            None => match store
                .put_item(&key, &bytes, None, PutMode::CreateOnly, now)
                .await
            {
                Ok(()) => true,
                Err(StoreError::Conflict(_)) => false,
                Err(e) => return Err(e),
            },
        };
        if written {
            return Ok(next);
        }
    }
    Err(StoreError::Unavailable(
        "the customer's standing kept changing".into(),
    ))
}

/// Deletes every grant in the customer's index (their refresh and access tokens stop at once).
async fn delete_indexed_grants(
    store: &dyn Store,
    now: Timestamp,
    customer: &CustomerId,
) -> Result<usize, StoreError> {
    let Some(bytes) = store.get_item(&index_key(customer), now).await? else {
        return Ok(0);
    };
    let index: GrantIndex =
        serde_json::from_slice(&bytes).map_err(|_| StoreError::Corrupt("grant index".into()))?;
    let mut deleted = 0;
    for grant in &index.grants {
        if store.delete_item(&family_key(&grant.grant_id)).await? {
            deleted += 1;
        }
    }
    // The index entries of deleted grants are dropped the next time the account page reads it.
    Ok(deleted)
}

/// Ends every session and grant of the customer: bumps the generation, then deletes the indexed
/// grants. Returns the new standing.
pub async fn revoke_sessions(
    store: &dyn Store,
    now: Timestamp,
    customer: &CustomerId,
) -> Result<Standing, StoreError> {
    let standing = update(store, now, customer, |s| s.generation += 1).await?;
    let grants = delete_indexed_grants(store, now, customer).await?;
    tracing::info!(
        customer = customer.as_str(),
        generation = standing.generation,
        grants,
        "sessions and grants revoked"
    );
    Ok(standing)
}

/// Disables the account (no sign-in, no session, no grant) and ends what is signed in now. API
/// keys are the caller's to revoke (`Gateway`), as they live outside this crate.
pub async fn disable(
    store: &dyn Store,
    now: Timestamp,
    customer: &CustomerId,
) -> Result<Standing, StoreError> {
    update(store, now, customer, |s| s.disabled = true).await?;
    revoke_sessions(store, now, customer).await
}

/// Lets the customer sign in again. Nothing revoked by [`disable`] comes back.
pub async fn enable(
    store: &dyn Store,
    now: Timestamp,
    customer: &CustomerId,
) -> Result<Standing, StoreError> {
    update(store, now, customer, |s| s.disabled = false).await
}

impl Standing {
    /// Whether something issued under `generation` is still good.
    pub fn admits(&self, generation: u64) -> bool {
        !self.disabled && generation == self.generation
    }
}
