//! The message status store: what the inbound webhook learned about each message a customer
//! sent, read by `whatsapp_get_message_status` (the Cloud API has no endpoint for it).
//!
//! Meta delivers statuses out of order and more than once, so a status only ever moves forward:
//! `sent < delivered < read` (`played`, for voice messages, after `read`), and `failed` wins over
//! everything. Each record is one generic store item, `wa-status#<customer>#<message id>`,
//! changed only by conditional writes (create-only, then compare-and-swap), so concurrent
//! deliveries of the same message's statuses cannot lose the furthest one on any backend.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use squaremcp_core::{CustomerId, PutMode, Store, StoreError, Timestamp};

/// How long a status is kept after its last change.
pub const RETENTION_SECONDS: i64 = 30 * 86_400;

/// A message's delivery status, in the order it can only move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Sent,
    Delivered,
    Read,
    Played,
    Failed,
}

impl DeliveryStatus {
    /// `None` for statuses this store does not track (e.g. `deleted`, `warning`).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "sent" => Some(Self::Sent),
            "delivered" => Some(Self::Delivered),
            "read" => Some(Self::Read),
            "played" => Some(Self::Played),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Played => "played",
            Self::Failed => "failed",
        }
    }

    /// The progression; `failed` is final and wins.
    const fn rank(self) -> u8 {
        match self {
            Self::Sent => 1,
            Self::Delivered => 2,
            Self::Read => 3,
            Self::Played => 4,
            Self::Failed => u8::MAX,
        }
    }
}

/// One message's furthest known status, as `whatsapp_get_message_status` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusRecord {
    /// The message id (`wamid.…`).
    pub id: String,
    pub status: DeliveryStatus,
    /// When WhatsApp says the status happened (Unix seconds, as Meta sends it).
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_id: Option<String>,
    /// The business number the message was sent from.
    pub phone_number_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Value>,
    /// Why it failed, as WhatsApp said (`code`, `title`, `message`, `error_data.details`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Value>,
}

/// The record after `incoming`, or `None` when it changes nothing (a duplicate, or a status
/// that arrived after a further one).
pub fn merge(current: Option<&StatusRecord>, incoming: &StatusRecord) -> Option<StatusRecord> {
    let Some(current) = current else { return Some(incoming.clone()) };
    if incoming.status.rank() <= current.status.rank() {
        return None;
    }
    let mut merged = incoming.clone();
    // A later webhook may omit what an earlier one carried (billing details come with `sent`).
    merged.conversation = merged.conversation.or_else(|| current.conversation.clone());
    merged.pricing = merged.pricing.or_else(|| current.pricing.clone());
    merged.recipient_id = merged.recipient_id.or_else(|| current.recipient_id.clone());
    Some(merged)
}

/// What [`record`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// The status moved forward (or was the first one).
    Advanced,
    /// A duplicate, or older than what is stored: nothing written.
    Unchanged,
}

fn item_key(customer: &CustomerId, message_id: &str) -> String {
    format!("wa-status#{}#{message_id}", customer.as_str())
}

/// Merges `incoming` into the customer's record of that message with conditional writes.
pub async fn record(store: &dyn Store, customer: &CustomerId, incoming: &StatusRecord, now: Timestamp) -> Result<Recorded, StoreError> {
    let key = item_key(customer, &incoming.id);
    let expires_at = Some(now.plus_seconds(RETENTION_SECONDS));
    // Each lost race means another delivery moved the record meanwhile; a handful is plenty.
    for _ in 0..8 {
        let stored = store.get_item(&key, now).await?;
        let current = match &stored {
            Some(bytes) => Some(decode(bytes)?),
            None => None,
        };
        let Some(merged) = merge(current.as_ref(), incoming) else { return Ok(Recorded::Unchanged) };
        let value = serde_json::to_vec(&merged).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let written = match &stored {
            None => match store.put_item(&key, &value, expires_at, PutMode::CreateOnly, now).await {
                Ok(()) => true,
                Err(StoreError::Conflict(_)) => false,
                Err(e) => return Err(e),
            },
            Some(expected) => store.swap_item(&key, expected, &value, expires_at, now).await?,
        };
        if written {
            return Ok(Recorded::Advanced);
        }
    }
    Err(StoreError::Unavailable(format!("the status of message {} kept changing; try again", incoming.id)))
}

/// The customer's record of `message_id`, if a status arrived for it.
pub async fn get(store: &dyn Store, customer: &CustomerId, message_id: &str, now: Timestamp) -> Result<Option<StatusRecord>, StoreError> {
    match store.get_item(&item_key(customer, message_id), now).await? {
        Some(bytes) => decode(&bytes).map(Some),
        None => Ok(None),
    }
}

fn decode(bytes: &[u8]) -> Result<StatusRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("a WhatsApp status record: {e}")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn status(status: DeliveryStatus, timestamp: &str) -> StatusRecord {
        StatusRecord {
            id: "wamid.A".to_owned(),
            status,
            timestamp: timestamp.to_owned(),
            recipient_id: None,
            phone_number_id: "1".to_owned(),
            conversation: None,
            pricing: None,
            errors: None,
        }
    }

    /// Folds deliveries in the given order, as the store would.
    fn fold(deliveries: &[StatusRecord]) -> Option<StatusRecord> {
        deliveries.iter().fold(None, |current, incoming| merge(current.as_ref(), incoming).or(current))
    }

    #[test]
    fn a_status_only_moves_forward_whatever_the_order_and_failed_wins() {
        use DeliveryStatus::*;
        let (sent, delivered, read, failed) =
            (status(Sent, "1"), status(Delivered, "2"), status(Read, "3"), status(Failed, "4"));
        let orders: [&[StatusRecord]; 5] = [
            &[sent.clone(), delivered.clone(), read.clone()],
            &[read.clone(), sent.clone(), delivered.clone()],
            &[delivered.clone(), read.clone(), delivered.clone(), sent.clone(), read.clone()],
            &[read.clone(), read.clone()],
            &[sent.clone(), read.clone(), delivered.clone()],
        ];
        for order in orders {
            assert_eq!(fold(order).map(|r| r.status), Some(Read), "{order:?}");
        }
        assert_eq!(fold(&[read.clone(), failed.clone(), delivered.clone()]).map(|r| r.status), Some(Failed));
        assert_eq!(fold(&[failed.clone(), read.clone()]).map(|r| r.status), Some(Failed));
        assert_eq!(merge(Some(&read), &read), None, "a duplicate changes nothing");
        assert_eq!(merge(Some(&read), &delivered), None, "an older status changes nothing");
    }

    #[test]
    fn details_of_an_earlier_status_are_kept_when_a_later_one_lacks_them() {
        let mut sent = status(DeliveryStatus::Sent, "1");
        sent.pricing = Some(json!({"billable": true, "category": "service"}));
        sent.recipient_id = Some("15551234567".to_owned());
        let merged = merge(Some(&sent), &status(DeliveryStatus::Read, "3")).expect("moves forward");
        assert_eq!(merged.status, DeliveryStatus::Read);
        assert_eq!(merged.timestamp, "3");
        assert_eq!(merged.pricing, sent.pricing);
        assert_eq!(merged.recipient_id.as_deref(), Some("15551234567"));
    }
}
