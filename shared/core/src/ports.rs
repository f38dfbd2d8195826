//! Ports: what the domain needs from the outside world. Adapters live in other crates
//! (`squaremcp-embedded` for SQLite, a key file and an in-process queue; `squaremcp-aws` for
//! DynamoDB, KMS and SQS).
//!
//! The store is shaped after DynamoDB's access patterns so that every backend can honour the
//! same contract: items by key, uniqueness by conditional writes, counters by conditional
//! atomic adds, single-use items by conditional deletes, and expiry by TTL (expired items are
//! filtered on read, because DynamoDB deletes them late). An item is expired when
//! `now >= expires_at`. Puts replace whole items, as DynamoDB's `PutItem` does.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::{
    AccountName, ApiKeyHash, ApiKeyId, ApiKeyRecord, CallRecord, CredentialRecord, Customer, CustomerId, Email,
    Platform, PlanName, SealedSecret, Secret, SecretBinding, Timestamp,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write found the item (or its uniqueness guard) already there.
    #[error("{0} already exists")]
    Conflict(String),
    /// A conditional add would have passed its limit; nothing was written.
    #[error("limit of {limit} reached (current value {current})")]
    LimitReached { current: u64, limit: u64 },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// Result of a page-wise listing: the items and where the next page starts, if anywhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

#[async_trait]
pub trait Store: Send + Sync {
    // Customers. The email is unique (a guard item in DynamoDB, a unique index in SQLite).
    async fn insert_customer(&self, customer: &Customer) -> Result<(), StoreError>;
    async fn customer(&self, id: &CustomerId) -> Result<Option<Customer>, StoreError>;
    async fn customer_by_email(&self, email: &Email) -> Result<Option<Customer>, StoreError>;
    /// Customers ordered by id; `after` is the `next` of the previous page.
    async fn list_customers(&self, after: Option<&str>, limit: usize) -> Result<Page<Customer>, StoreError>;
    /// Conditional on the customer existing; `false` when there is none.
    async fn set_customer_plan(&self, id: &CustomerId, plan: &PlanName) -> Result<bool, StoreError>;

    // API keys, found by hash on every request.
    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError>;
    async fn api_key_by_hash(&self, hash: &ApiKeyHash) -> Result<Option<ApiKeyRecord>, StoreError>;
    async fn list_api_keys(&self, customer: &CustomerId) -> Result<Vec<ApiKeyRecord>, StoreError>;
    /// Conditional: only an active key of this customer is revoked. `false` when there was none.
    async fn revoke_api_key(&self, customer: &CustomerId, id: &ApiKeyId, at: Timestamp) -> Result<bool, StoreError>;

    // Credentials, one per customer + platform + account (a put replaces).
    async fn put_credential(&self, record: &CredentialRecord) -> Result<(), StoreError>;
    /// One query: a customer's credentials, for one platform or all, ordered by platform then account.
    async fn credentials(
        &self,
        customer: &CustomerId,
        platform: Option<Platform>,
    ) -> Result<Vec<CredentialRecord>, StoreError>;
    async fn delete_credential(
        &self,
        customer: &CustomerId,
        platform: Platform,
        account: &AccountName,
    ) -> Result<bool, StoreError>;
    /// Compare-and-swap (re-encryption under a new data key while the gateway runs): replaces
    /// the record for `record`'s customer, platform and account only if it still holds
    /// `expected`. `false` when it was changed or deleted meanwhile; nothing is written then.
    async fn swap_credential(&self, record: &CredentialRecord, expected: &SealedSecret) -> Result<bool, StoreError>;

    // Counters (usage per customer per month, rate limits): one atomic conditional add.
    /// Adds `delta` unless the result would exceed `limit`; returns the new value.
    async fn add_to_counter(&self, key: &str, delta: u64, limit: Option<u64>) -> Result<u64, StoreError>;
    /// [`Store::add_to_counter`] for the counter of a time window (a rate limit): the store
    /// deletes it some time after `expires_at` (DynamoDB's TTL, SQLite's sweep), so that the
    /// windows gone by do not pile up. Until then it keeps its value: callers name the window in
    /// the key, so an expired counter is never added to again. Each add sets the expiry.
    async fn add_to_expiring_counter(
        &self,
        key: &str,
        delta: u64,
        limit: Option<u64>,
        expires_at: Timestamp,
    ) -> Result<u64, StoreError> {
        // A store without expiry (test doubles) keeps the counter: the same answers, never deleted.
        let _ = expires_at;
        self.add_to_counter(key, delta, limit).await
    }
    async fn counter(&self, key: &str) -> Result<u64, StoreError>;
    /// Takes `delta` off the counter `key` (giving back a reservation made with
    /// `add_to_counter`), atomically. A counter never goes below zero: `false`, and nothing is
    /// written, when it holds less than `delta` (a missing counter holds zero).
    async fn subtract_from_counter(&self, key: &str, delta: u64) -> Result<bool, StoreError>;

    // Tool-call records (usage and audit log), per customer by time, expiring after retention.
    /// Writes the record and, in the same atomic write, adds `delta` (which may be negative,
    /// never taking the value below zero) to the counter `key`: one round trip per call.
    async fn record_call(&self, record: &CallRecord, counter: Option<(&str, i64)>) -> Result<(), StoreError>;
    /// Live records with `from <= at < until`, newest first, at most `limit`.
    async fn call_records(
        &self,
        customer: &CustomerId,
        from: Timestamp,
        until: Timestamp,
        limit: usize,
        now: Timestamp,
    ) -> Result<Vec<CallRecord>, StoreError>;

    // Single-use items with a TTL (authorization codes, CSRF nonces, leases).
    /// Conditional put: `Conflict` while an unexpired item with this key exists.
    async fn put_single_use(&self, key: &str, value: &[u8], expires_at: Timestamp, now: Timestamp)
    -> Result<(), StoreError>;
    /// Conditional delete returning the value: of two concurrent takers, exactly one gets it.
    /// An expired item is never returned.
    async fn take_single_use(&self, key: &str, now: Timestamp) -> Result<Option<Vec<u8>>, StoreError>;

    // Items: small documents by key with an optional expiry, for state the domain keeps whole
    // (OAuth clients, refresh-token families, consents, leases). Callers namespace the keys.
    /// `PutMode::CreateOnly` fails with `Conflict` while a live item with the key exists.
    async fn put_item(
        &self,
        key: &str,
        value: &[u8],
        expires_at: Option<Timestamp>,
        mode: PutMode,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// The value of a live item; an expired one is never returned.
    async fn get_item(&self, key: &str, now: Timestamp) -> Result<Option<Vec<u8>>, StoreError>;
    /// Compare-and-swap: replaces a live item's value only if it is still `expected`. Of several
    /// concurrent swaps from the same value, exactly one returns `true`.
    async fn swap_item(
        &self,
        key: &str,
        expected: &[u8],
        value: &[u8],
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    async fn delete_item(&self, key: &str) -> Result<bool, StoreError>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutMode {
    CreateOnly,
    Replace,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// Wrong binding, tampered ciphertext or wrong key: indistinguishable by design.
    #[error("the secret could not be decrypted")]
    Undecryptable,
    #[error("no data key with version {0}")]
    UnknownKeyVersion(u32),
    #[error("keyring unavailable: {0}")]
    Unavailable(String),
}

/// Envelope encryption of credentials: AES-256-GCM under a data key, with the binding as
/// associated data and the key version recorded on every sealed secret.
#[async_trait]
pub trait Keyring: Send + Sync {
    async fn seal(&self, binding: &SecretBinding, plaintext: &[u8]) -> Result<SealedSecret, KeyringError>;
    async fn open(&self, binding: &SecretBinding, sealed: &SealedSecret) -> Result<Secret<Vec<u8>>, KeyringError>;
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// An argument outside the limits every backend honours (see [`Queue`]).
    #[error("invalid queue request: {0}")]
    Invalid(String),
    /// The receipt is not that of a message currently received (it was deleted, or its
    /// visibility ran out and it was received again).
    #[error("the message is no longer held by this receiver")]
    StaleReceipt,
    #[error("queue unavailable: {0}")]
    Unavailable(String),
}

/// A message as a receiver gets it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedMessage {
    pub id: String,
    pub body: String,
    /// Names this delivery: deleting or delaying the message needs it.
    pub receipt: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
}

/// An at-least-once work queue with SQS semantics (the embedded twin behaves the same):
/// a received message stays hidden for its visibility timeout and comes back unless deleted;
/// a queue may redrive a message received too often to its dead-letter queue.
///
/// Limits (SQS's, in [`queue_limits`]): a body of 1 byte to 256 KiB, a delay of at most 15 minutes,
/// 1 to 10 messages per receive, a wait of at most 20 s, a visibility of at most 12 hours.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Enqueues `body`, visible to receivers after `delay`; returns the message id.
    async fn send(&self, body: &str, delay: Duration) -> Result<String, QueueError>;
    /// Up to `max` messages, waiting up to `wait` for the first; each stays hidden from other
    /// receivers for `visibility`. Empty when nothing arrived in time.
    async fn receive(&self, max: usize, wait: Duration, visibility: Duration) -> Result<Vec<QueuedMessage>, QueueError>;
    /// Acknowledges a received message: it is never delivered again.
    async fn delete(&self, receipt: &str) -> Result<(), QueueError>;
    /// Hands a received message back, to be delivered again after `delay` (retry with backoff).
    async fn retry_after(&self, receipt: &str, delay: Duration) -> Result<(), QueueError>;
}

/// The limits of [`Queue`], checked the same way by every backend.
pub mod queue_limits {
    use std::time::Duration;

    use super::QueueError;

    pub const MAX_BODY_BYTES: usize = 256 * 1024;
    pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
    pub const MAX_WAIT: Duration = Duration::from_secs(20);
    pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);
    pub const MAX_BATCH: usize = 10;

    pub fn check_send(body: &str, delay: Duration) -> Result<(), QueueError> {
        if body.is_empty() || body.len() > MAX_BODY_BYTES {
            return Err(QueueError::Invalid(format!("a body must have 1 to {MAX_BODY_BYTES} bytes, not {}", body.len())));
        }
        check_delay("delay", delay, MAX_DELAY)
    }

    pub fn check_receive(max: usize, wait: Duration, visibility: Duration) -> Result<(), QueueError> {
        if !(1..=MAX_BATCH).contains(&max) {
            return Err(QueueError::Invalid(format!("receive 1 to {MAX_BATCH} messages at a time, not {max}")));
        }
        check_delay("wait", wait, MAX_WAIT)?;
        check_delay("visibility", visibility, MAX_VISIBILITY)
    }

    pub fn check_delay(what: &str, delay: Duration, max: Duration) -> Result<(), QueueError> {
        if delay > max || delay.subsec_nanos() != 0 {
            return Err(QueueError::Invalid(format!(
                "the {what} must be whole seconds up to {} s, not {:?}",
                max.as_secs(),
                delay
            )));
        }
        Ok(())
    }
}

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        Timestamp::from_unix(seconds)
    }
}

impl<T: Clock + ?Sized> Clock for Arc<T> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

/// An email to send: text and HTML alternatives, with a stable `Message-ID` so that a resend
/// after a crash is recognisable as the same message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingEmail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub message_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("no SMTP server is configured (SQUAREMCP_SMTP_URL)")]
    NotConfigured,
    #[error("the SMTP server refused the message: {0}")]
    Rejected(String),
    #[error("the SMTP server could not be reached: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Mailer: Send + Sync {
    /// `Ok` only once the SMTP server accepted the message.
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError>;
}

/// For deployments without SMTP: every send fails, so invoices stay pending until one is set.
pub struct NoMailer;

#[async_trait]
impl Mailer for NoMailer {
    async fn send(&self, _: &OutgoingEmail) -> Result<(), MailError> {
        Err(MailError::NotConfigured)
    }
}
