//! The routing index: which customer connected an upstream resource that inbound webhooks name
//! (WhatsApp's `phone_number_id`). A platform whose webhooks are routed this way says so with
//! [`crate::PlatformModule::routing_key`]; the gateway then keeps the index in step with
//! credential changes: storing a credential claims its key (one customer per key, refused for a
//! second one), replacing or deleting it releases the old one.
//!
//! An index entry is a generic store item (`route#<platform>#<key>`) written with
//! `PutMode::CreateOnly`, so that of two customers connecting the same number at once exactly
//! one wins, on every backend.

use serde::{Deserialize, Serialize};

use crate::{AccountName, CustomerId, Platform, PutMode, Store, StoreError, Timestamp};

/// Reads the routed resource's id from a credential document (`None` when it has none).
pub type RoutingKey = fn(&serde_json::Value) -> Option<String>;

/// Who connected a routed resource: the customer and the name of the credential (account).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteOwner {
    pub customer_id: CustomerId,
    pub account: AccountName,
}

/// Why a claim was refused.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// Another customer, or another account of the same customer, holds the key.
    #[error("already connected by {}", .0.customer_id)]
    Taken(RouteOwner),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The index item's key. Keys are short ids (digits for WhatsApp); `#` cannot occur in them
/// because [`crate::PlatformModule::routing_key`] implementations check their shape.
pub fn item_key(platform: Platform, key: &str) -> String {
    format!("route#{}#{key}", platform.as_str())
}

/// The owner of `key`, if anyone connected it.
pub async fn owner(store: &dyn Store, platform: Platform, key: &str, now: Timestamp) -> Result<Option<RouteOwner>, StoreError> {
    match store.get_item(&item_key(platform, key), now).await? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| StoreError::Corrupt(format!("route index: {e}"))),
    }
}

/// Claims `key` for `claimant`. Claiming what one already holds succeeds and changes nothing.
pub async fn claim(store: &dyn Store, platform: Platform, key: &str, claimant: &RouteOwner, now: Timestamp) -> Result<(), ClaimError> {
    let value = serde_json::to_vec(claimant).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let item = item_key(platform, key);
    // Twice at most: a claim released between our put and our read is taken on the second try.
    for _ in 0..2 {
        match store.put_item(&item, &value, None, PutMode::CreateOnly, now).await {
            Ok(()) => return Ok(()),
            Err(StoreError::Conflict(_)) => match owner(store, platform, key, now).await? {
                Some(holder) if holder == *claimant => return Ok(()),
                Some(holder) => return Err(ClaimError::Taken(holder)),
                None => continue,
            },
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Unavailable("the route index changed twice during one claim; try again".to_owned()).into())
}

/// Releases `key` if `holder` holds it; another holder's claim is left alone. `true` when an
/// entry was removed.
pub async fn release(store: &dyn Store, platform: Platform, key: &str, holder: &RouteOwner, now: Timestamp) -> Result<bool, StoreError> {
    match owner(store, platform, key, now).await? {
        Some(current) if current == *holder => store.delete_item(&item_key(platform, key)).await,
        _ => Ok(false),
    }
}
