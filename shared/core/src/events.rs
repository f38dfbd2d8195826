//! The outbound-events port: what the domain hands over when something a customer subscribed to
//! happens (an inbound WhatsApp message routed to them, a status change, …). The adapter
//! (`squaremcp-webhooks`) signs and delivers it to the customer's endpoints, with retries and a
//! dead-letter queue; whoever publishes knows nothing of that.

use async_trait::async_trait;

use crate::CustomerId;

/// Why an event could not be handed over. The caller should fail its own request so that the
/// source retries (the event id is deterministic, so a retry is the same event).
#[derive(Debug, thiserror::Error)]
#[error("the event could not be queued for delivery: {0}")]
pub struct PublishError(pub String);

#[async_trait]
pub trait EventSink: Send + Sync {
    /// Queues `data` as an event of `event_type` for every endpoint of `customer` subscribed to
    /// it. `dedupe_key` names the occurrence (e.g. a message id): publishing the same type and
    /// key twice yields the same event id, which receivers use to de-duplicate. Returns how many
    /// endpoints the event was queued for.
    async fn publish(
        &self,
        customer: &CustomerId,
        event_type: &str,
        dedupe_key: &str,
        data: serde_json::Value,
    ) -> Result<usize, PublishError>;
}
