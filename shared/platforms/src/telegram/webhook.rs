//! Telegram's webhook mode, free of any HTTP framework.
//!
//! A customer switches a bot to webhook mode ([`switch_on`]): the gateway generates a secret
//! token, keeps its SHA-256 with the bot's owner in a hook record (`tg-hook#<bot id>`), and
//! calls `setWebhook` with `url` (`{public URL}/webhooks/telegram/<bot id>`), `secret_token`
//! and `allowed_updates`. Telegram then POSTs each update there with the token in
//! `X-Telegram-Bot-Api-Secret-Token`; [`TelegramWebhook::deliver`] checks it in constant time
//! before reading the body, buffers the update for `telegram_get_updates` (Telegram refuses
//! `getUpdates` while a webhook is set) and hands it to the outbound-events port as
//! `telegram.update`. [`switch_off`] calls `deleteWebhook` and removes the hook record.
//!
//! The buffer is one document per customer and bot (`tg-buf#<customer>#<bot id>`), changed by
//! compare-and-swap; like Telegram it keeps an update for 24 hours, and at most the newest
//! [`MAX_BUFFERED_UPDATES`]. Telegram redelivers until it gets a 2xx: an update id already
//! buffered or confirmed is not buffered again, and its event is handed over until a marker
//! records that it was (as for WhatsApp), so the receiver sees one event id per update.
//!
//! Nothing here logs a body, a token or a secret.

use std::sync::Arc;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use squaremcp_core::events::EventSink;
use squaremcp_core::routing::{self, ClaimError, RouteOwner};
use squaremcp_core::tool::ToolFailure;
use squaremcp_core::{Clock, CustomerId, Platform, PutMode, Secret, Store, StoreError, Timestamp};

use super::credential::BotToken;
use super::dialect::TelegramDialect;
use crate::kit::{CredentialDocument, HttpApi, PlatformContext, UpstreamRequest};

/// Where Telegram posts a bot's updates, after the gateway's public URL.
pub const PATH_PREFIX: &str = "/webhooks/telegram/";
/// Updates kept per bot; older ones are dropped first (they still went out as events).
pub const MAX_BUFFERED_UPDATES: usize = 100;
/// The buffer document's size cap, well under DynamoDB's 400 KB item limit.
const MAX_BUFFER_BYTES: usize = 300 * 1024;
/// Telegram keeps unconfirmed updates for 24 hours; so does the buffer.
const UPDATE_RETENTION_SECONDS: i64 = 86_400;
/// How long an "event handed over" marker stays: longer than Telegram keeps redelivering.
const EVENT_MARKER_SECONDS: i64 = 7 * 86_400;
/// The update kinds Telegram sends when none are named (its own default set).
pub const UPDATE_KINDS: [&str; 8] = [
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "callback_query",
    "inline_query",
    "my_chat_member",
    "chat_member",
];

/// A bot in webhook mode: who owns it and how its updates are recognised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    pub owner: RouteOwner,
    /// The URL given to Telegram.
    pub url: String,
    /// Empty: Telegram's default kinds.
    pub allowed_updates: Vec<String>,
    pub since: Timestamp,
    /// Hex SHA-256 of the secret token: the token itself is needed only once, by `setWebhook`.
    secret_sha256: String,
}

impl Hook {
    /// A hook for `owner` whose updates carry `secret` (kept only as its digest).
    pub fn new(
        owner: RouteOwner,
        url: String,
        allowed_updates: Vec<String>,
        secret: &str,
        since: Timestamp,
    ) -> Self {
        Self {
            owner,
            url,
            allowed_updates,
            since,
            secret_sha256: hex(&digest(secret)),
        }
    }
}

/// Stores `hook` as the bot's hook record (replacing one). [`switch_on`] does this before
/// `setWebhook`; sample events and tests use it to install a known secret.
pub async fn remember(store: &dyn Store, bot_id: &str, hook: Hook) -> Result<Hook, StoreError> {
    let bytes = serde_json::to_vec(&hook).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    store
        .put_item(
            &hook_key(bot_id),
            &bytes,
            None,
            PutMode::Replace,
            hook.since,
        )
        .await?;
    Ok(hook)
}

#[derive(Default, Serialize, Deserialize)]
struct Buffer {
    /// Updates below this id were confirmed (an `offset` past them): redeliveries are ignored.
    #[serde(default)]
    confirmed_below: i64,
    updates: Vec<Buffered>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Buffered {
    update_id: i64,
    received_at: Timestamp,
    update: Value,
}

fn hook_key(bot_id: &str) -> String {
    format!("tg-hook#{bot_id}")
}

fn buffer_key(customer: &CustomerId, bot_id: &str) -> String {
    format!("tg-buf#{}#{bot_id}", customer.as_str())
}

fn event_marker(customer: &CustomerId, bot_id: &str, update_id: i64) -> String {
    format!("tg-evt#{}#{bot_id}#{update_id}", customer.as_str())
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A bot id as Telegram and the routing index use it: digits only, at most 20.
fn valid_bot_id(bot_id: &str) -> bool {
    !bot_id.is_empty() && bot_id.len() <= 20 && bot_id.bytes().all(|b| b.is_ascii_digit())
}

/// The bot's id in a credential document (the token's part before the colon): inbound updates
/// name it in their URL, and the routing index holds it while the bot is in webhook mode.
pub fn bot_id_of(document: &Value) -> Option<String> {
    let token = BotToken::parse(document).ok()?;
    token.expose().split_once(':').map(|(id, _)| id.to_owned())
}

/// The hook record of a bot, if it is in webhook mode.
pub async fn hook(
    store: &dyn Store,
    bot_id: &str,
    now: Timestamp,
) -> Result<Option<Hook>, StoreError> {
    if !valid_bot_id(bot_id) {
        return Ok(None);
    }
    match store.get_item(&hook_key(bot_id), now).await? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("telegram hook: {e}"))),
    }
}

/// Why a bot could not be switched.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error("the stored Telegram credential is not usable: {0}")]
    Credential(String),
    #[error("this bot is already connected by {0}")]
    Taken(String),
    #[error("unknown update kind `{0}` (known: {known})", known = UPDATE_KINDS.join(", "))]
    UnknownUpdateKind(String),
    #[error("the gateway's public URL `{0}` cannot carry a webhook path")]
    BadPublicUrl(String),
    #[error("Telegram refused: {0}")]
    Telegram(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ToolFailure> for SwitchError {
    fn from(failure: ToolFailure) -> Self {
        // The kit scrubs the token from every failure message.
        Self::Telegram(failure.message)
    }
}

/// Where the gateway tells Telegram to post updates for `bot_id`.
pub fn webhook_url(public_url: &str, bot_id: &str) -> Result<String, SwitchError> {
    let base = public_url.trim_end_matches('/');
    if !(base.starts_with("https://") || base.starts_with("http://")) || base.contains(['?', '#']) {
        return Err(SwitchError::BadPublicUrl(public_url.to_owned()));
    }
    Ok(format!("{base}{PATH_PREFIX}{bot_id}"))
}

/// What [`switch_on`] needs besides the credential.
pub struct SwitchOn<'a> {
    pub context: &'a PlatformContext,
    pub store: &'a dyn Store,
    pub clock: &'a dyn Clock,
    pub owner: &'a RouteOwner,
    pub public_url: &'a str,
    pub allowed_updates: &'a [String],
}

fn bot(
    context: &PlatformContext,
    credential: &Secret<Value>,
) -> Result<(HttpApi<TelegramDialect>, BotToken, String), SwitchError> {
    let api = HttpApi::new(
        context.http.clone(),
        context.origin.clone(),
        TelegramDialect,
    );
    let token = api
        .credential(credential)
        .map_err(|f| SwitchError::Credential(f.message))?;
    let bot_id = token
        .expose()
        .split_once(':')
        .map(|(id, _)| id.to_owned())
        .unwrap_or_default();
    Ok((api, token, bot_id))
}

async fn call(
    api: &HttpApi<TelegramDialect>,
    token: &BotToken,
    method: &'static str,
    body: Map<String, Value>,
) -> Result<Value, SwitchError> {
    let request = UpstreamRequest {
        path: format!("/{method}"),
        body,
        ..UpstreamRequest::default()
    };
    Ok(api
        .send(token, &Method::POST, method, &request, false)
        .await?)
}

/// Claims the bot's routing entry. A claim whose holder no longer has a Telegram credential of
/// that name is stale (the credential was deleted while in webhook mode) and is taken over.
async fn claim(
    store: &dyn Store,
    bot_id: &str,
    owner: &RouteOwner,
    now: Timestamp,
) -> Result<(), SwitchError> {
    for _ in 0..2 {
        match routing::claim(store, Platform::Telegram, bot_id, owner, now).await {
            Ok(()) => return Ok(()),
            Err(ClaimError::Store(e)) => return Err(e.into()),
            Err(ClaimError::Taken(holder)) => {
                if holder_has_credential(store, &holder, None).await? {
                    return Err(SwitchError::Taken(
                        if holder.customer_id == owner.customer_id {
                            format!("this customer's account `{}`", holder.account)
                        } else {
                            "another customer".to_owned()
                        },
                    ));
                }
                routing::release(store, Platform::Telegram, bot_id, &holder, now).await?;
            }
        }
    }
    Err(StoreError::Unavailable(
        "the routing index changed during the switch; try again".to_owned(),
    )
    .into())
}

/// Whether `owner` still has its Telegram credential, and (with `unchanged_since`) has not
/// replaced it since then: a replaced token may be another bot. No decryption needed.
async fn holder_has_credential(
    store: &dyn Store,
    owner: &RouteOwner,
    unchanged_since: Option<Timestamp>,
) -> Result<bool, StoreError> {
    let records = store
        .credentials(&owner.customer_id, Some(Platform::Telegram))
        .await?;
    Ok(records.iter().any(|r| {
        r.account == owner.account && unchanged_since.is_none_or(|since| r.updated_at <= since)
    }))
}

/// Puts the bot in webhook mode: claims its routing entry, stores a fresh secret's hash, then
/// calls `setWebhook`. Switching on again replaces the secret (Telegram uses the new one at once).
/// When Telegram refuses, the previous hook record (or none) is put back.
pub async fn switch_on(on: SwitchOn<'_>, credential: &Secret<Value>) -> Result<Hook, SwitchError> {
    let (api, token, bot_id) = bot(on.context, credential)?;
    let mut kinds = Vec::new();
    for kind in on
        .allowed_updates
        .iter()
        .map(|k| k.trim())
        .filter(|k| !k.is_empty())
    {
        // Telegram's full list is longer than its default set; anything of its shape is passed on.
        if !kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') || kind.len() > 40 {
            return Err(SwitchError::UnknownUpdateKind(kind.to_owned()));
        }
        if !kinds.iter().any(|k| k == kind) {
            kinds.push(kind.to_owned());
        }
    }
    let url = webhook_url(on.public_url, &bot_id)?;
    let now = on.clock.now();
    claim(on.store, &bot_id, on.owner, now).await?;
    // 32 random bytes, URL-safe base64: 43 characters of Telegram's allowed A-Z a-z 0-9 _ -.
    let secret = squaremcp_core::random::token::<32>();
    let previous = on.store.get_item(&hook_key(&bot_id), now).await?;
    let record = remember(
        on.store,
        &bot_id,
        Hook::new(on.owner.clone(), url.clone(), kinds.clone(), &secret, now),
    )
    .await?;
    let mut body = Map::new();
    body.insert("url".to_owned(), json!(url));
    body.insert("secret_token".to_owned(), json!(secret));
    body.insert("allowed_updates".to_owned(), json!(kinds));
    if let Err(refused) = call(&api, &token, "setWebhook", body).await {
        let restored = match previous {
            Some(old) => {
                on.store
                    .put_item(&hook_key(&bot_id), &old, None, PutMode::Replace, now)
                    .await
            }
            None => on.store.delete_item(&hook_key(&bot_id)).await.map(drop),
        };
        if let Err(e) = restored {
            tracing::error!(bot_id, error = %e, "the Telegram hook record could not be put back after setWebhook failed");
        }
        return Err(refused);
    }
    tracing::info!(
        customer = on.owner.customer_id.as_str(),
        bot_id,
        "Telegram bot switched to webhook mode"
    );
    Ok(record)
}

/// Back to polling: `deleteWebhook`, then the hook record goes. Updates still buffered stay
/// readable by `telegram_get_updates` until confirmed or 24 hours old. `false` when the bot was
/// not in webhook mode here (Telegram is told all the same).
pub async fn switch_off(
    context: &PlatformContext,
    store: &dyn Store,
    clock: &dyn Clock,
    owner: &RouteOwner,
    credential: &Secret<Value>,
) -> Result<bool, SwitchError> {
    let (api, token, bot_id) = bot(context, credential)?;
    let now = clock.now();
    let current = hook(store, &bot_id, now).await?;
    if let Some(current) = &current
        && current.owner != *owner
    {
        return Err(SwitchError::Taken("another customer".to_owned()));
    }
    call(&api, &token, "deleteWebhook", Map::new()).await?;
    // The routing claim stays: the bot is still this customer's, and unread updates in its
    // buffer are found through it.
    let removed = store.delete_item(&hook_key(&bot_id)).await?;
    tracing::info!(
        customer = owner.customer_id.as_str(),
        bot_id,
        "Telegram bot switched back to polling"
    );
    Ok(removed && current.is_some())
}

/// Why an inbound update was refused. No variant carries the body or the token.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    #[error("the X-Telegram-Bot-Api-Secret-Token header is missing")]
    MissingSecret,
    /// A wrong token, or a bot that is not in webhook mode here: one answer for both, so that
    /// probing reveals nothing.
    #[error("the secret token does not match this bot's webhook")]
    WrongSecret,
    #[error("the body is not a Telegram update ({0})")]
    Malformed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What became of an accepted update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    Buffered,
    /// A redelivery of an update already buffered or confirmed.
    Duplicate,
    /// The bot's credential was deleted or replaced since it was switched: acknowledged (else
    /// Telegram retries for a day), nothing stored.
    Unrouted,
}

/// The inbound side: where updates go. One per process.
pub struct TelegramWebhook {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    events: Option<Arc<dyn EventSink>>,
}

impl TelegramWebhook {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            events: None,
        }
    }

    /// Hands each new update to `events` as `telegram.update`.
    #[must_use]
    pub fn with_events(mut self, events: Arc<dyn EventSink>) -> Self {
        self.events = Some(events);
        self
    }

    /// `POST /webhooks/telegram/{bot_id}`: the secret first, then the body.
    pub async fn deliver(
        &self,
        bot_id: &str,
        secret: Option<&str>,
        body: &[u8],
    ) -> Result<Accepted, InboundError> {
        let secret = secret.ok_or(InboundError::MissingSecret)?;
        let now = self.clock.now();
        let hook = hook(self.store.as_ref(), bot_id, now).await?;
        // Compared as digests, so the time taken does not depend on where the tokens differ.
        let expected = hook
            .as_ref()
            .map_or_else(String::new, |h| h.secret_sha256.clone());
        let given = hex(&digest(secret));
        let same = expected.len() == given.len()
            && expected
                .bytes()
                .zip(given.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        let Some(hook) = hook.filter(|_| same) else {
            return Err(InboundError::WrongSecret);
        };
        let update: Value = serde_json::from_slice(body).map_err(|e| {
            InboundError::Malformed(format!(
                "{:?} error at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        let Some(update_id) = update
            .get("update_id")
            .and_then(Value::as_i64)
            .filter(|id| *id >= 0)
        else {
            return Err(InboundError::Malformed(
                "no non-negative integer `update_id`".to_owned(),
            ));
        };
        if !update.is_object() {
            return Err(InboundError::Malformed("not a JSON object".to_owned()));
        }
        // The credential may have been removed or given to another account since the switch.
        let owner = routing::owner(self.store.as_ref(), Platform::Telegram, bot_id, now).await?;
        if owner.as_ref() != Some(&hook.owner)
            || !holder_has_credential(self.store.as_ref(), &hook.owner, Some(hook.since)).await?
        {
            tracing::warn!(
                bot_id,
                update_id,
                "a Telegram update for a bot whose credential is no longer connected; nothing stored"
            );
            return Ok(Accepted::Unrouted);
        }
        let customer = &hook.owner.customer_id;
        let buffered = self
            .buffer(customer, bot_id, update_id, &update, now)
            .await?;
        self.emit(&hook.owner, bot_id, update_id, update, now)
            .await?;
        Ok(if buffered {
            Accepted::Buffered
        } else {
            Accepted::Duplicate
        })
    }

    /// Adds the update unless its id is already there or confirmed; `false` for a repeat.
    async fn buffer(
        &self,
        customer: &CustomerId,
        bot_id: &str,
        update_id: i64,
        update: &Value,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let key = buffer_key(customer, bot_id);
        let added = Buffered {
            update_id,
            received_at: now,
            update: update.clone(),
        };
        change_buffer(self.store.as_ref(), &key, now, |buffer| {
            if update_id < buffer.confirmed_below
                || buffer.updates.iter().any(|u| u.update_id == update_id)
            {
                return false;
            }
            buffer.updates.push(added.clone());
            buffer.updates.sort_by_key(|u| u.update_id);
            true
        })
        .await
    }

    async fn emit(
        &self,
        owner: &RouteOwner,
        bot_id: &str,
        update_id: i64,
        update: Value,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let Some(events) = &self.events else {
            return Ok(());
        };
        let marker = event_marker(&owner.customer_id, bot_id, update_id);
        if self.store.get_item(&marker, now).await?.is_some() {
            return Ok(());
        }
        let data = json!({ "bot_id": bot_id, "account": owner.account.as_str(), "update": update });
        let key = format!("{bot_id}:{update_id}");
        events
            .publish(&owner.customer_id, "telegram.update", &key, data)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        self.store
            .put_item(
                &marker,
                b"1",
                Some(now.plus_seconds(EVENT_MARKER_SECONDS)),
                PutMode::Replace,
                now,
            )
            .await
    }
}

/// Reads, changes (dropping what is too old or too much) and writes back a buffer, retrying
/// when another writer came first. Nothing is written when `change` returns `false` and
/// nothing had to be dropped.
async fn change_buffer(
    store: &dyn Store,
    key: &str,
    now: Timestamp,
    change: impl Fn(&mut Buffer) -> bool,
) -> Result<bool, StoreError> {
    for _ in 0..8 {
        let current = store.get_item(key, now).await?;
        let mut buffer: Buffer = match &current {
            Some(bytes) => serde_json::from_slice(bytes)
                .map_err(|e| StoreError::Corrupt(format!("telegram buffer: {e}")))?,
            None => Buffer::default(),
        };
        let before = buffer.updates.len();
        let changed = change(&mut buffer);
        let oldest_kept = now.plus_seconds(-UPDATE_RETENTION_SECONDS);
        buffer.updates.retain(|u| u.received_at >= oldest_kept);
        let mut value =
            serde_json::to_vec(&buffer).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        while !buffer.updates.is_empty()
            && (buffer.updates.len() > MAX_BUFFERED_UPDATES || value.len() > MAX_BUFFER_BYTES)
        {
            let dropped = buffer.updates.remove(0);
            tracing::warn!(
                key,
                update_id = dropped.update_id,
                "the Telegram update buffer is full; the oldest update was dropped"
            );
            value = serde_json::to_vec(&buffer).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        }
        if !changed && buffer.updates.len() == before {
            return Ok(false);
        }
        // Kept a little past the newest update's own retention; confirmation marks go with it.
        let expires_at = Some(now.plus_seconds(2 * UPDATE_RETENTION_SECONDS));
        let written = match &current {
            None => match store
                .put_item(key, &value, expires_at, PutMode::CreateOnly, now)
                .await
            {
                Ok(()) => true,
                Err(StoreError::Conflict(_)) => false,
                Err(e) => return Err(e),
            },
            Some(expected) => {
                store
                    .swap_item(key, expected, &value, expires_at, now)
                    .await?
            }
        };
        if written {
            return Ok(changed);
        }
    }
    Err(StoreError::Unavailable(
        "the Telegram update buffer kept changing; try again".to_owned(),
    ))
}

/// `telegram_get_updates` for a bot in webhook mode, with `getUpdates`' meaning of `offset` and
/// `limit`: a positive offset confirms (drops) every earlier update; a negative one returns the
/// last `-offset` updates. `None` when the bot is not in webhook mode and has nothing buffered:
/// then Telegram is polled.
pub async fn buffered_updates(
    store: &dyn Store,
    clock: &dyn Clock,
    bot_id: &str,
    offset: Option<i64>,
    limit: usize,
) -> Result<Option<Vec<Value>>, StoreError> {
    let now = clock.now();
    let current = hook(store, bot_id, now).await?;
    let in_webhook_mode = current.is_some();
    let owner = match current {
        Some(hook) => hook.owner,
        // Switched off with updates left unread: those are still served first.
        None => match routing::owner(store, Platform::Telegram, bot_id, now).await? {
            Some(owner) => owner,
            None => return Ok(None),
        },
    };
    let key = buffer_key(&owner.customer_id, bot_id);
    if let Some(offset) = offset.filter(|o| *o > 0) {
        change_buffer(store, &key, now, |buffer| {
            buffer.confirmed_below = buffer.confirmed_below.max(offset);
            buffer.updates.retain(|u| u.update_id >= offset);
            true
        })
        .await?;
    }
    let buffer: Buffer = match store.get_item(&key, now).await? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::Corrupt(format!("telegram buffer: {e}")))?,
        None => Buffer::default(),
    };
    if !in_webhook_mode && buffer.updates.is_empty() {
        return Ok(None);
    }
    let oldest_kept = now.plus_seconds(-UPDATE_RETENTION_SECONDS);
    let live: Vec<&Buffered> = buffer
        .updates
        .iter()
        .filter(|u| u.received_at >= oldest_kept)
        .collect();
    let chosen: Vec<Value> = match offset {
        Some(offset) if offset < 0 => {
            let last = usize::try_from(offset.unsigned_abs()).unwrap_or(usize::MAX);
            live[live.len().saturating_sub(last)..]
                .iter()
                .take(limit)
                .map(|u| u.update.clone())
                .collect()
        }
        _ => live.iter().take(limit).map(|u| u.update.clone()).collect(),
    };
    Ok(Some(chosen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_routing_key_is_the_bot_id() {
        let document = json!({"bot_token": "7012345678:AAFq3xZ-9kLmNoPqRsTuVwXyZ_0123456789ab"});
        assert_eq!(bot_id_of(&document).as_deref(), Some("7012345678"));
        assert_eq!(bot_id_of(&json!({"bot_token": "nonsense"})), None);
    }

    #[test]
    fn the_webhook_url_is_the_public_url_and_the_bot_id() {
        assert_eq!(
            webhook_url("https://gw.example/", "42").ok().as_deref(),
            Some("https://gw.example/webhooks/telegram/42")
        );
        assert!(webhook_url("gw.example", "42").is_err());
        assert!(webhook_url("https://gw.example/?x", "42").is_err());
    }

    #[test]
    fn only_digits_are_bot_ids() {
        assert!(valid_bot_id("7012345678"));
        for bad in ["", "12a", "1#2", "123456789012345678901"] {
            assert!(!valid_bot_id(bad), "{bad}");
        }
    }
}
