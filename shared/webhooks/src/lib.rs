//! Outbound webhooks: SquareMCP calling its customers.
//!
//! - [`endpoint`]: the endpoints a customer registers (URL, event types, `whsec_` secrets sealed
//!   with the keyring; two valid during a rotation).
//! - [`signing`]: the Standard Webhooks signature (`webhook-id`, `webhook-timestamp`,
//!   `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`).
//! - [`delivery`]: the event envelope, publishing, one delivery attempt, retries with growing
//!   backoff through the [`Queue`](squaremcp_core::Queue) port, the dead-letter queue and the
//!   dead-letter records that can be listed and replayed, and the attempt log.
//! - [`transport`]: the HTTP POST, through the SSRF guard, 10 s timeout, no redirects.
//!
//! Free of axum and AWS: the queue and store are ports; the Lambda and the in-process worker
//! are thin loops around [`delivery::Deliverer::process`].

pub mod delivery;
pub mod endpoint;
pub mod signing;
pub mod transport;
pub mod worker;

pub use delivery::{Deliverer, DeliveryError, Disabling, Job, RetrySchedule};
pub use endpoint::{Endpoint, EndpointError, Endpoints, NewEndpoint};
pub use transport::{HttpTransport, Transport};

/// The event types a customer can subscribe to.
pub const EVENT_TYPES: [&str; 6] = [
    "whatsapp.message.received",
    "whatsapp.message.status",
    "telegram.update",
    "connection.needs_reconnect",
    "invoice.created",
    "tool.call.failed",
];
