//! Events, delivery attempts, retries and dead letters.
//!
//! An event is queued once per subscribed endpoint as a [`Job`] on the retry queue with no
//! delay, so the first attempt happens right away (the worker long-polls the queue), and the
//! request that produced the event (e.g. Meta's webhook) is answered without waiting for the
//! customer's endpoint. [`Deliverer::process`] makes the attempt; after a failure (anything but
//! a 2xx) it queues the next attempt after the schedule's delay as a new message; after the
//! last one it sends the job to the dead-letter queue and writes a dead-letter record that can be
//! listed and replayed. A delay longer than the queue allows (15 minutes) is covered in hops: a
//! job received before it is due is sent again with the rest of the delay.
//!
//! Each retry is its own message, so a message's receive count only grows when processing
//! itself fails (store or queue down): those come back after the visibility timeout, and the
//! queue's redrive policy moves one that fails too often to the dead-letter queue.
//!
//! Every attempt is recorded (status, latency, error) in the attempt log. Nothing here logs a
//! body or a secret.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use squaremcp_core::events::{EventSink, PublishError};
use squaremcp_core::ports::queue_limits::MAX_DELAY;
use squaremcp_core::{
    Clock, CustomerId, Keyring, KeyringError, Mailer, NoMailer, OutgoingEmail, PutMode, Queue, QueueError, Store, StoreError, Timestamp,
};
use squaremcp_platforms::kit::NetworkPolicy;

use crate::endpoint::{Endpoint, Endpoints};
use crate::signing::signature_header;
use crate::transport::{Response, Transport};

/// How long an attempt in progress holds its claim: longer than an attempt and its records,
/// shorter than the wait before a crashed worker's job is tried again for good.
const CLAIM_SECONDS: i64 = 120;
/// When a copy of a job in progress comes back.
const COPY_RETRY_SECONDS: u64 = 15;
/// How long a finished attempt is remembered, to drop late copies of its message.
const DONE_SECONDS: i64 = 24 * 3600;

/// How long attempt records and dead-letter records are kept.
pub const RECORD_RETENTION_SECONDS: i64 = 30 * 86_400;

/// The delays between attempts, in seconds: `SQUAREMCP_WEBHOOK_RETRY_SCHEDULE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySchedule(Vec<u64>);

impl RetrySchedule {
    /// Svix's: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h after the first attempt.
    pub const DEFAULT: [u64; 6] = [5, 300, 1800, 7200, 18_000, 36_000];
    const MAX_DELAY_SECONDS: u64 = 7 * 86_400;

    /// `5,300,1800`: one to 20 whole numbers of seconds, each at most 7 days.
    pub fn parse(text: &str) -> Result<Self, String> {
        let delays = text
            .split(',')
            .map(|part| part.trim().parse::<u64>().ok().filter(|d| *d <= Self::MAX_DELAY_SECONDS))
            .collect::<Option<Vec<u64>>>()
            .ok_or_else(|| format!("`{text}` is not a comma-separated list of delays in seconds (each at most 7 days)"))?;
        if delays.is_empty() || delays.len() > 20 {
            return Err(format!("`{text}` must name 1 to 20 delays"));
        }
        Ok(Self(delays))
    }

    /// The delay before attempt `attempt + 1`, or `None` when `attempt` was the last.
    pub fn delay_after(&self, attempt: u32) -> Option<u64> {
        self.0.get(usize::try_from(attempt).ok()?.checked_sub(1)?).copied()
    }

    /// Attempts in all, the first included.
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.0.len()).unwrap_or(u32::MAX).saturating_add(1)
    }

    pub fn delays(&self) -> &[u64] {
        &self.0
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self(Self::DEFAULT.to_vec())
    }
}

/// An event as customers receive it: the body is `{"type", "timestamp", "data"}` and the id is
/// the `webhook-id` header, the same on every attempt and replay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// When it happened (RFC 3339).
    pub timestamp: String,
    pub data: Value,
}

impl Event {
    /// The id is derived from the customer, type and `dedupe_key`: the same occurrence published
    /// twice (a platform's redelivery) is the same event to the receiver.
    pub fn new(customer: &CustomerId, event_type: &str, dedupe_key: &str, data: Value, now: Timestamp) -> Self {
        let digest = Sha256::new()
            .chain_update(customer.as_str())
            .chain_update([0])
            .chain_update(event_type)
            .chain_update([0])
            .chain_update(dedupe_key)
            .finalize();
        let id = format!("msg_{}", digest.iter().take(16).map(|b| format!("{b:02x}")).collect::<String>());
        Self { id, event_type: event_type.to_owned(), timestamp: now.to_rfc3339(), data }
    }

    /// The exact bytes that are signed and sent.
    pub fn body(&self) -> String {
        serde_json::json!({"type": self.event_type, "timestamp": self.timestamp, "data": self.data}).to_string()
    }
}

/// One delivery of one event to one endpoint: the retry queue's message body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub customer: CustomerId,
    pub endpoint: String,
    pub event: Event,
    /// The attempt to make, from 1.
    pub attempt: u32,
    /// Unix seconds before which the attempt must not be made.
    pub due_at: i64,
}

/// One attempt, for the delivery log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub event_id: String,
    pub event_type: String,
    pub endpoint: String,
    pub attempt: u32,
    pub at: Timestamp,
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
    pub delivered: bool,
    #[serde(default)]
    pub replay: bool,
}

/// An event that ran out of attempts, kept until replayed (or for [`RECORD_RETENTION_SECONDS`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// `dl_<n>`.
    pub id: String,
    pub job: Job,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub dead_at: Timestamp,
}

/// What [`Deliverer::process`] did with a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Processed {
    Delivered,
    /// Failed; the next attempt is queued.
    Retrying { next_attempt: u32, in_seconds: u64 },
    /// Failed for the last time, or the endpoint is disabled: in the dead-letter queue.
    DeadLettered { id: String },
    /// Received before it was due: queued again for the rest of the delay.
    Postponed,
    /// The endpoint was removed meanwhile, or the body was not a job (sent to the DLQ as is).
    Dropped(&'static str),
}

/// What a replay did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replayed {
    pub id: String,
    pub event_id: String,
    pub delivered: bool,
    pub error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
}

/// When an endpoint that keeps failing is disabled, and how its customer is told.
#[derive(Clone)]
pub struct Disabling {
    /// Failing without a single success for this long disables the endpoint
    /// (`SQUAREMCP_WEBHOOK_DISABLE_AFTER_HOURS`; Svix's 5 days by default).
    pub after_seconds: i64,
    /// Tells the customer by email. An event would go to the dead endpoint itself, so none is sent.
    pub mailer: Arc<dyn Mailer>,
}

impl Disabling {
    pub const DEFAULT_AFTER_HOURS: i64 = 5 * 24;
}

impl Default for Disabling {
    fn default() -> Self {
        Self { after_seconds: Self::DEFAULT_AFTER_HOURS * 3600, mailer: Arc::new(NoMailer) }
    }
}

/// Publishes events and delivers them. One per process.
pub struct Deliverer {
    pub store: Arc<dyn Store>,
    pub keyring: Arc<dyn Keyring>,
    pub clock: Arc<dyn Clock>,
    pub network: NetworkPolicy,
    pub transport: Arc<dyn Transport>,
    pub retry_queue: Arc<dyn Queue>,
    pub dead_letter_queue: Arc<dyn Queue>,
    pub schedule: RetrySchedule,
    pub disabling: Disabling,
}

fn seq_key(kind: &str, customer: &CustomerId) -> String {
    format!("wh-{kind}-seq#{}", customer.as_str())
}

fn record_key(kind: &str, customer: &CustomerId, n: u64) -> String {
    format!("wh-{kind}#{}#{n}", customer.as_str())
}

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

impl Deliverer {
    pub fn endpoints(&self) -> Endpoints<'_> {
        Endpoints { store: self.store.as_ref(), keyring: self.keyring.as_ref(), clock: self.clock.as_ref(), network: &self.network }
    }

    /// Queues the event for each endpoint of the customer that wants it; returns how many.
    pub async fn publish_event(&self, customer: &CustomerId, event_type: &str, dedupe_key: &str, data: Value) -> Result<usize, DeliveryError> {
        let endpoints = self.endpoints().list(customer).await?;
        let wanted: Vec<&Endpoint> = endpoints.iter().filter(|e| e.wants(event_type)).collect();
        if wanted.is_empty() {
            return Ok(0);
        }
        let now = self.clock.now();
        let event = Event::new(customer, event_type, dedupe_key, data, now);
        for endpoint in &wanted {
            let job = Job { customer: customer.clone(), endpoint: endpoint.id.clone(), event: event.clone(), attempt: 1, due_at: now.unix() };
            self.enqueue(&job, 0).await?;
        }
        tracing::info!(customer = customer.as_str(), event_id = event.id, event_type, endpoints = wanted.len(), "queued an outbound event");
        Ok(wanted.len())
    }

    async fn enqueue(&self, job: &Job, delay_seconds: u64) -> Result<(), DeliveryError> {
        let body = serde_json::to_string(job).map_err(corrupt)?;
        let delay = Duration::from_secs(delay_seconds.min(MAX_DELAY.as_secs()));
        self.retry_queue.send(&body, delay).await?;
        Ok(())
    }

    /// Handles one message of the retry queue. `Ok` means the message may be deleted (whatever
    /// became of the event is recorded or queued); `Err` means it should come back later.
    pub async fn process(&self, body: &str) -> Result<Processed, DeliveryError> {
        let Ok(job) = serde_json::from_str::<Job>(body) else {
            // Nothing this gateway sent: kept in the dead-letter queue for a person to look at.
            tracing::error!(bytes = body.len(), "a retry-queue message is not a delivery job; moved to the dead-letter queue");
            self.dead_letter_queue.send(body, Duration::ZERO).await?;
            return Ok(Processed::Dropped("not a delivery job"));
        };
        let now = self.clock.now();
        if job.due_at > now.unix() {
            let rest = u64::try_from(job.due_at - now.unix()).unwrap_or(0);
            self.enqueue(&job, rest).await?;
            return Ok(Processed::Postponed);
        }
        let endpoints = self.endpoints().list(&job.customer).await?;
        let Some(endpoint) = endpoints.iter().find(|e| e.id == job.endpoint) else {
            tracing::info!(customer = job.customer.as_str(), endpoint = job.endpoint, event_id = job.event.id, "the endpoint was removed; the event is not delivered");
            return Ok(Processed::Dropped("endpoint removed"));
        };
        if endpoint.disabled {
            let id = self.dead_letter(&job, job.attempt.saturating_sub(1), Some("the endpoint is disabled".to_owned())).await?;
            return Ok(Processed::DeadLettered { id });
        }
        // The queue hands a message out at least once, and a copy can reach another worker
        // while this one is on it. A finished attempt leaves a mark that drops later copies; an
        // attempt in progress holds a claim, and a copy meanwhile comes back later (a crashed
        // worker's claim expires, so its job is not lost).
        let attempt_key = format!("{}:{}:{}", job.endpoint, job.event.id, job.attempt);
        if self.store.get_item(&format!("webhook:done:{attempt_key}"), now).await?.is_some() {
            tracing::info!(event_id = job.event.id, endpoint = job.endpoint, attempt = job.attempt, "a copy of a finished delivery job; dropped");
            return Ok(Processed::Dropped("duplicate"));
        }
        match self.store.put_single_use(&format!("webhook:claim:{attempt_key}"), b"1", now.plus_seconds(CLAIM_SECONDS), now).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                self.enqueue(&job, COPY_RETRY_SECONDS).await?;
                return Ok(Processed::Postponed);
            }
            Err(e) => return Err(e.into()),
        }
        let outcome = self.attempt_and_follow_up(job, endpoint, now).await?;
        let done = format!("webhook:done:{attempt_key}");
        self.store.put_item(&done, b"1", Some(now.plus_seconds(DONE_SECONDS)), PutMode::Replace, now).await?;
        Ok(outcome)
    }

    /// One attempt, then what follows: delivered, the next attempt queued, or a dead letter.
    async fn attempt_and_follow_up(&self, job: Job, endpoint: &Endpoint, now: Timestamp) -> Result<Processed, DeliveryError> {
        let response = self.attempt(&job, endpoint, false).await?;
        self.note_health(&job.customer, &endpoint.id, response.delivered()).await?;
        if response.delivered() {
            return Ok(Processed::Delivered);
        }
        match self.schedule.delay_after(job.attempt) {
            Some(delay) => {
                let next = Job { attempt: job.attempt + 1, due_at: now.unix().saturating_add(i64::try_from(delay).unwrap_or(i64::MAX)), ..job };
                self.enqueue(&next, delay).await?;
                tracing::info!(event_id = next.event.id, endpoint = next.endpoint, attempt = next.attempt - 1, error = ?response.error, in_seconds = delay, "webhook delivery failed; will retry");
                Ok(Processed::Retrying { next_attempt: next.attempt, in_seconds: delay })
            }
            None => {
                let id = self.dead_letter(&job, job.attempt, response.error).await?;
                Ok(Processed::DeadLettered { id })
            }
        }
    }

    /// Tracks the endpoint's failing run; when this attempt disabled it, tells the customer.
    async fn note_health(&self, customer: &CustomerId, endpoint: &str, delivered: bool) -> Result<(), DeliveryError> {
        let disabled = self.endpoints().record_outcome(customer, endpoint, delivered, self.disabling.after_seconds).await.map_err(|e| match e {
            crate::EndpointError::Store(e) => DeliveryError::Store(e),
            other => DeliveryError::Invalid(other.to_string()),
        })?;
        let Some(disabled) = disabled else { return Ok(()) };
        tracing::warn!(customer = customer.as_str(), endpoint, "a webhook endpoint kept failing and was disabled");
        self.tell_disabled(customer, &disabled).await;
        Ok(())
    }

    /// An email to the customer, when a mail server is configured; a failure is logged, not
    /// retried (the mark on the account page and in `webhooks list` stays).
    async fn tell_disabled(&self, customer: &CustomerId, endpoint: &Endpoint) {
        let email = match self.store.customer(customer).await {
            Ok(Some(found)) => found.email,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(customer = customer.as_str(), error = %e, "the customer of a disabled endpoint could not be read");
                return;
            }
        };
        let hours = self.disabling.after_seconds / 3600;
        let text = format!(
            "Your SquareMCP webhook endpoint {id} ({url}) has failed every delivery for {hours} hours, so it was disabled: \
             no new events are sent to it, and events still queued for it go to your dead-letter queue.\n\n\
             Once the endpoint answers 2xx again, enable it on your account page or with \
             `squaremcp webhooks enable --endpoint {id}`, then replay the dead letters.\n",
            id = endpoint.id,
            url = endpoint.url
        );
        let html = format!("<p>{}</p>", html_escape(&text).replace("\n\n", "</p><p>"));
        let message = OutgoingEmail {
            to: email.as_str().to_owned(),
            subject: format!("Webhook endpoint {} disabled", endpoint.id),
            text,
            html,
            message_id: format!("<endpoint-disabled.{}.{}@squaremcp>", endpoint.id, self.clock.now().unix()),
        };
        match self.disabling.mailer.send(&message).await {
            Ok(()) => tracing::info!(customer = customer.as_str(), endpoint = endpoint.id, "told the customer that an endpoint was disabled"),
            Err(e) => tracing::warn!(customer = customer.as_str(), endpoint = endpoint.id, error = %e, "could not email that an endpoint was disabled"),
        }
    }

    /// Signs and POSTs the event once, and records the attempt.
    async fn attempt(&self, job: &Job, endpoint: &Endpoint, replay: bool) -> Result<Response, DeliveryError> {
        let secrets = self.endpoints().signing_secrets(&job.customer, endpoint).await?;
        let body = job.event.body();
        let timestamp = self.clock.now().unix();
        let headers = [
            ("webhook-id", job.event.id.clone()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature_header(&secrets, &job.event.id, timestamp, body.as_bytes())),
        ];
        let response = self.transport.post(&endpoint.url, &headers, &body).await;
        let record = AttemptRecord {
            event_id: job.event.id.clone(),
            event_type: job.event.event_type.clone(),
            endpoint: endpoint.id.clone(),
            attempt: job.attempt,
            at: self.clock.now(),
            status: response.status,
            latency_ms: response.latency_ms,
            error: response.error.clone(),
            delivered: response.delivered(),
            replay,
        };
        self.append("attempt", &job.customer, &record).await?;
        Ok(response)
    }

    /// Appends to a per-customer log (`attempt`, `dead`): a counter gives the next number, the
    /// record is an item under it. Returns the number.
    async fn append<T: Serialize>(&self, kind: &str, customer: &CustomerId, record: &T) -> Result<u64, StoreError> {
        let n = self.store.add_to_counter(&seq_key(kind, customer), 1, None).await?;
        let now = self.clock.now();
        let value = serde_json::to_vec(record).map_err(corrupt)?;
        let expires = Some(now.plus_seconds(RECORD_RETENTION_SECONDS));
        self.store.put_item(&record_key(kind, customer, n), &value, expires, PutMode::Replace, now).await?;
        Ok(n)
    }

    /// The newest records of a per-customer log, newest first.
    async fn newest<T: for<'de> Deserialize<'de>>(&self, kind: &str, customer: &CustomerId, limit: usize) -> Result<Vec<(u64, T)>, StoreError> {
        let last = self.store.counter(&seq_key(kind, customer)).await?;
        let now = self.clock.now();
        let mut found = Vec::new();
        for n in (1..=last).rev() {
            if found.len() >= limit {
                break;
            }
            if let Some(bytes) = self.store.get_item(&record_key(kind, customer, n), now).await? {
                found.push((n, serde_json::from_slice(&bytes).map_err(corrupt)?));
            }
        }
        Ok(found)
    }

    /// Into the dead-letter queue and a dead-letter record.
    async fn dead_letter(&self, job: &Job, attempts: u32, last_error: Option<String>) -> Result<String, DeliveryError> {
        self.dead_letter_queue.send(&serde_json::to_string(job).map_err(corrupt)?, Duration::ZERO).await?;
        let given = self.store.add_to_counter(&seq_key("dead", &job.customer), 1, None).await?;
        let letter = DeadLetter { id: format!("dl_{given}"), job: job.clone(), attempts, last_error, dead_at: self.clock.now() };
        let value = serde_json::to_vec(&letter).map_err(corrupt)?;
        let now = self.clock.now();
        let expires = Some(now.plus_seconds(RECORD_RETENTION_SECONDS));
        self.store.put_item(&record_key("dead", &job.customer, given), &value, expires, PutMode::Replace, now).await?;
        tracing::warn!(customer = job.customer.as_str(), event_id = job.event.id, endpoint = job.endpoint, attempts, dead_letter = letter.id, "webhook delivery gave up; the event is in the dead-letter queue");
        Ok(letter.id)
    }

    /// The customer's dead letters, newest first.
    pub async fn dead_letters(&self, customer: &CustomerId, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        Ok(self.newest("dead", customer, limit).await?.into_iter().map(|(_, letter)| letter).collect())
    }

    /// The customer's newest delivery attempts, newest first.
    pub async fn attempts(&self, customer: &CustomerId, limit: usize) -> Result<Vec<AttemptRecord>, StoreError> {
        Ok(self.newest("attempt", customer, limit).await?.into_iter().map(|(_, record)| record).collect())
    }

    /// One attempt now for the dead letter `id` (`dl_<n>`); delivered, the record is removed,
    /// otherwise it stays for another replay. The event keeps its id, so a receiver that got it
    /// before recognises it.
    pub async fn replay(&self, customer: &CustomerId, id: &str) -> Result<Replayed, DeliveryError> {
        let n: u64 = id
            .strip_prefix("dl_")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| DeliveryError::Invalid(format!("`{id}` is not a dead-letter id (dl_…)")))?;
        let key = record_key("dead", customer, n);
        let now = self.clock.now();
        let bytes = self.store.get_item(&key, now).await?.ok_or_else(|| DeliveryError::NotFound(format!("no dead letter {id} for this customer")))?;
        let mut letter: DeadLetter = serde_json::from_slice(&bytes).map_err(corrupt)?;
        let endpoints = self.endpoints().list(customer).await?;
        let endpoint = endpoints
            .iter()
            .find(|e| e.id == letter.job.endpoint)
            .ok_or_else(|| DeliveryError::NotFound(format!("the endpoint {} of {id} was removed", letter.job.endpoint)))?;
        let job = Job { attempt: letter.attempts + 1, ..letter.job.clone() };
        let response = self.attempt(&job, endpoint, true).await?;
        if response.delivered() {
            self.store.delete_item(&key).await?;
        } else {
            letter.attempts += 1;
            letter.last_error.clone_from(&response.error);
            let value = serde_json::to_vec(&letter).map_err(corrupt)?;
            self.store.swap_item(&key, &bytes, &value, Some(now.plus_seconds(RECORD_RETENTION_SECONDS)), now).await?;
        }
        Ok(Replayed { id: id.to_owned(), event_id: letter.job.event.id, delivered: response.delivered(), error: response.error })
    }
}

#[async_trait]
impl EventSink for Deliverer {
    async fn publish(&self, customer: &CustomerId, event_type: &str, dedupe_key: &str, data: Value) -> Result<usize, PublishError> {
        self.publish_event(customer, event_type, dedupe_key, data).await.map_err(|e| PublishError(e.to_string()))
    }
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
