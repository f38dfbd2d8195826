//! WhatsApp's inbound webhook, free of any HTTP framework: the subscription handshake, the
//! `X-Hub-Signature-256` check over the raw body (before anything is parsed), routing each
//! change to the customer who connected its phone number, and storing what it carries —
//! statuses into the status store ([`super::status`]), messages idempotently by id — and
//! handing each new message (`whatsapp.message.received`) and status change
//! (`whatsapp.message.status`) to the outbound-events port ([`EventSink`]), which delivers them
//! to the customer's webhook endpoints through the queue. Meta redelivers: an event is handed
//! over until a marker records that it was, so a redelivery after a failed hand-over tries
//! again, and one after a successful hand-over is not an event again (the event id is derived
//! from the message id, so a receiver also recognises a repeat). `squaremcp_http` maps the
//! outcomes to status codes.
//!
//! Nothing here logs a body, a token or a secret.

use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use squaremcp_core::events::EventSink;
use squaremcp_core::routing::{self, RouteOwner};
use squaremcp_core::{Clock, CustomerId, Platform, PutMode, Secret, Store, StoreError, Timestamp};

use super::status::{self, DeliveryStatus, Recorded, StatusRecord};

/// How long an inbound message is kept for the outbound-events step.
pub const MESSAGE_RETENTION_SECONDS: i64 = 7 * 86_400;
/// The longest message id accepted (Meta's are about 60 characters).
const MAX_ID_LENGTH: usize = 256;

/// Why a signature is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Hub-Signature-256 header is missing")]
    Missing,
    #[error("the X-Hub-Signature-256 header is not `sha256=` and 64 hex digits")]
    Malformed,
    #[error("the X-Hub-Signature-256 signature does not match the body")]
    Mismatch,
}

/// Checks `X-Hub-Signature-256: sha256=<hex>` against HMAC-SHA256 of the raw `body` keyed with
/// the app secret, in constant time. Call it before parsing the body.
pub fn verify_signature(app_secret: &[u8], header: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex = header.trim().strip_prefix("sha256=").ok_or(SignatureError::Malformed)?;
    let given = decode_hex(hex).ok_or(SignatureError::Malformed)?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(app_secret).map_err(|_| SignatureError::Mismatch)?;
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| SignatureError::Mismatch)
}

/// `sha256=` and the lowercase hex HMAC of `body`: what Meta sends (and tests sign with).
pub fn sign(app_secret: &[u8], body: &[u8]) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(app_secret) else { return String::new() };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    format!("sha256={}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn decode_hex(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(bytes)
}

/// Equal strings, compared through their digests in time independent of where they differ.
fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b): ([u8; 32], [u8; 32]) = (Sha256::digest(a.as_bytes()).into(), Sha256::digest(b.as_bytes()).into());
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a subscription handshake is refused (403).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeRefused {
    #[error("no verify token is configured (SQUAREMCP_WHATSAPP_VERIFY_TOKEN)")]
    NotConfigured,
    #[error("hub.mode is not `subscribe`")]
    NotSubscribe,
    #[error("hub.verify_token does not match")]
    WrongToken,
    #[error("hub.challenge is missing or not printable")]
    BadChallenge,
}

/// A body that is not a WhatsApp webhook payload. Says where, never what (it may quote content).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the body is not a WhatsApp webhook payload ({0})")]
pub struct MalformedPayload(String);

/// Why a notification was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("no app secret is configured (SQUAREMCP_WHATSAPP_APP_SECRET), so no signature can be checked")]
    NotConfigured,
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(transparent)]
    Malformed(#[from] MalformedPayload),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a notification carried and what became of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    pub statuses_advanced: usize,
    /// Duplicates and statuses older than the stored one.
    pub statuses_unchanged: usize,
    pub messages_stored: usize,
    pub messages_duplicate: usize,
    /// Changes for a phone number no customer connected: acknowledged, nothing stored.
    pub unrouted: usize,
    /// Changes of other fields, and items without an id.
    pub ignored: usize,
}

#[derive(Deserialize)]
struct Payload {
    object: String,
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    field: String,
    #[serde(default)]
    value: Value,
}

/// The inbound WhatsApp webhook: the operator's app secret and verify token, and where to
/// store what arrives. One per process.
pub struct WhatsappWebhook {
    app_secret: Option<Secret<String>>,
    verify_token: Option<Secret<String>>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    events: Option<Arc<dyn EventSink>>,
}

impl WhatsappWebhook {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        app_secret: Option<Secret<String>>,
        verify_token: Option<Secret<String>>,
    ) -> Self {
        Self { app_secret, verify_token, store, clock, events: None }
    }

    /// Hands new messages and status changes to `events` (outbound webhooks).
    #[must_use]
    pub fn with_events(mut self, events: Arc<dyn EventSink>) -> Self {
        self.events = Some(events);
        self
    }

    /// Hands an event over unless a marker says it already was; the marker is written after
    /// the hand-over. A failed hand-over fails the request (503), so that Meta redelivers.
    async fn emit(&self, customer: &CustomerId, event_type: &str, key: &str, data: Value, now: Timestamp) -> Result<(), StoreError> {
        let Some(events) = &self.events else { return Ok(()) };
        let marker = format!("wa-evt#{}#{event_type}#{key}", customer.as_str());
        if self.store.get_item(&marker, now).await?.is_some() {
            return Ok(());
        }
        events.publish(customer, event_type, key, data).await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let expires_at = Some(now.plus_seconds(MESSAGE_RETENTION_SECONDS));
        self.store.put_item(&marker, b"1", expires_at, PutMode::Replace, now).await
    }

    /// `GET /webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`: the
    /// challenge to echo, or why not.
    pub fn subscribe(&self, mode: Option<&str>, token: Option<&str>, challenge: Option<&str>) -> Result<String, HandshakeRefused> {
        let expected = self.verify_token.as_ref().ok_or(HandshakeRefused::NotConfigured)?;
        if mode != Some("subscribe") {
            return Err(HandshakeRefused::NotSubscribe);
        }
        if !constant_time_eq(token.unwrap_or_default(), expected.expose()) {
            return Err(HandshakeRefused::WrongToken);
        }
        let challenge = challenge.filter(|c| !c.is_empty() && c.len() <= 256 && c.bytes().all(|b| b.is_ascii_graphic()));
        challenge.map(str::to_owned).ok_or(HandshakeRefused::BadChallenge)
    }

    /// `POST /webhooks/whatsapp`: the signature first, then the payload, then each change.
    pub async fn deliver(&self, signature: Option<&str>, body: &[u8]) -> Result<Accepted, WebhookError> {
        let secret = self.app_secret.as_ref().ok_or(WebhookError::NotConfigured)?;
        verify_signature(secret.expose().as_bytes(), signature, body)?;
        let payload: Payload = serde_json::from_slice(body)
            .map_err(|e| MalformedPayload(format!("{:?} error at line {} column {}", e.classify(), e.line(), e.column())))?;
        if payload.object != "whatsapp_business_account" {
            return Err(MalformedPayload("`object` is not `whatsapp_business_account`".to_owned()).into());
        }
        let now = self.clock.now();
        let mut accepted = Accepted::default();
        for change in payload.entry.iter().flat_map(|entry| &entry.changes) {
            if change.field != "messages" {
                accepted.ignored += 1;
                continue;
            }
            let Some(phone_number_id) = change.value.pointer("/metadata/phone_number_id").and_then(Value::as_str) else {
                return Err(MalformedPayload("a `messages` change without `value.metadata.phone_number_id`".to_owned()).into());
            };
            match routing::owner(self.store.as_ref(), Platform::Whatsapp, phone_number_id, now).await? {
                Some(owner) => self.store_change(&owner, phone_number_id, &change.value, now, &mut accepted).await?,
                None => {
                    // Acknowledged all the same: Meta retries anything but a 200 for days, and no
                    // retry can route a number nobody connected. The id only, never the body.
                    tracing::warn!(phone_number_id, "a WhatsApp webhook for a phone number no customer connected; nothing stored");
                    accepted.unrouted += 1;
                }
            }
        }
        Ok(accepted)
    }

    async fn store_change(
        &self,
        owner: &RouteOwner,
        phone_number_id: &str,
        value: &Value,
        now: Timestamp,
        accepted: &mut Accepted,
    ) -> Result<(), StoreError> {
        let customer = &owner.customer_id;
        for item in value.get("statuses").and_then(Value::as_array).into_iter().flatten() {
            let Some(record) = status_record(item, phone_number_id) else {
                accepted.ignored += 1;
                continue;
            };
            let current = match status::record(self.store.as_ref(), customer, &record, now).await? {
                Recorded::Advanced => {
                    accepted.statuses_advanced += 1;
                    true
                }
                Recorded::Unchanged => {
                    accepted.statuses_unchanged += 1;
                    // A redelivery of the current status: an event if the first hand-over failed.
                    self.events.is_some()
                        && status::get(self.store.as_ref(), customer, &record.id, now).await?.is_some_and(|s| s.status == record.status)
                }
            };
            if current {
                let mut data = serde_json::to_value(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                if let Some(fields) = data.as_object_mut() {
                    fields.insert("account".to_owned(), Value::String(owner.account.as_str().to_owned()));
                }
                let key = format!("{}:{}", record.id, record.status.as_str());
                self.emit(customer, "whatsapp.message.status", &key, data, now).await?;
            }
        }
        for message in value.get("messages").and_then(Value::as_array).into_iter().flatten() {
            let Some(id) = message.get("id").and_then(Value::as_str).filter(|id| valid_id(id)) else {
                accepted.ignored += 1;
                continue;
            };
            // Kept whole for the outbound-events step, with the sender's profile when given.
            let stored = json!({
                "phone_number_id": phone_number_id,
                "account": owner.account.as_str(),
                "contacts": value.get("contacts").cloned().unwrap_or(Value::Null),
                "message": message,
            });
            let bytes = serde_json::to_vec(&stored).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let expires_at = Some(now.plus_seconds(MESSAGE_RETENTION_SECONDS));
            match self.store.put_item(&message_key(customer, id), &bytes, expires_at, PutMode::CreateOnly, now).await {
                Ok(()) => accepted.messages_stored += 1,
                Err(StoreError::Conflict(_)) => accepted.messages_duplicate += 1,
                Err(e) => return Err(e),
            }
            self.emit(customer, "whatsapp.message.received", id, stored, now).await?;
        }
        if let Some(errors) = value.get("errors").and_then(Value::as_array) {
            let codes: Vec<i64> = errors.iter().filter_map(|e| e.get("code").and_then(Value::as_i64)).collect();
            tracing::warn!(customer = customer.as_str(), phone_number_id, ?codes, "WhatsApp reported errors for this number");
        }
        Ok(())
    }
}

/// The store key of an inbound message (for the outbound-events step).
pub fn message_key(customer: &CustomerId, message_id: &str) -> String {
    format!("wa-msg#{}#{message_id}", customer.as_str())
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LENGTH && !id.chars().any(char::is_control)
}

/// One `statuses[]` item, or `None` when it is not one this store tracks.
fn status_record(item: &Value, phone_number_id: &str) -> Option<StatusRecord> {
    let text = |key: &str| item.get(key).and_then(Value::as_str);
    let id = text("id").filter(|id| valid_id(id))?;
    let status = DeliveryStatus::parse(text("status")?)?;
    let present = |key: &str| item.get(key).filter(|v| !v.is_null()).cloned();
    Some(StatusRecord {
        id: id.to_owned(),
        status,
        timestamp: match item.get("timestamp") {
            Some(Value::String(t)) => t.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        },
        recipient_id: text("recipient_id").map(str::to_owned),
        phone_number_id: phone_number_id.to_owned(),
        conversation: present("conversation"),
        pricing: present("pricing"),
        errors: present("errors"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_a_known_vector() {
        // HMAC-SHA256(key = "It's a Secret to Everybody", "Hello, World!"), GitHub's documented
        // example of the same `sha256=` scheme.
        let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign(b"It's a Secret to Everybody", b"Hello, World!"), expected);
        assert_eq!(verify_signature(b"It's a Secret to Everybody", Some(expected), b"Hello, World!"), Ok(()));
    }

    #[test]
    fn a_wrong_or_missing_signature_is_refused() {
        let secret = b"app-secret";
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let good = sign(secret, body);
        assert_eq!(verify_signature(secret, Some(&good), body), Ok(()));
        assert_eq!(verify_signature(secret, None, body), Err(SignatureError::Missing));
        assert_eq!(verify_signature(secret, Some("sha1=abc"), body), Err(SignatureError::Malformed));
        assert_eq!(verify_signature(secret, Some("sha256=zz"), body), Err(SignatureError::Malformed));
        assert_eq!(verify_signature(b"other-secret", Some(&good), body), Err(SignatureError::Mismatch));
        // The raw bytes count: the same JSON re-serialised differently does not verify.
        let reformatted = br#"{"object": "whatsapp_business_account", "entry": []}"#;
        assert_eq!(verify_signature(secret, Some(&good), reformatted), Err(SignatureError::Mismatch));
        let mut flipped = good.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(verify_signature(secret, std::str::from_utf8(&flipped).ok(), body), Err(SignatureError::Mismatch));
    }

    #[test]
    fn the_status_items_meta_documents_are_read_and_unknown_ones_skipped() {
        let item = json!({"id": "wamid.X", "status": "delivered", "timestamp": "1750263773", "recipient_id": "16505551234",
            "pricing": {"billable": true, "pricing_model": "PMP", "category": "utility"}});
        let record = status_record(&item, "106540352242922").expect("a status");
        assert_eq!((record.status, record.timestamp.as_str()), (DeliveryStatus::Delivered, "1750263773"));
        assert!(record.pricing.is_some() && record.errors.is_none());
        assert!(status_record(&json!({"id": "wamid.X", "status": "deleted"}), "1").is_none());
        assert!(status_record(&json!({"status": "read"}), "1").is_none());
    }
}
