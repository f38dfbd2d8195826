#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::test_support::TestKeyring;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::*;
use crate::billing::{Month, usage_counter_key};
use crate::gateway::CallContext;
use crate::mcp::{McpServer, ServerInfo};
use crate::ports::Page;
use crate::tool::PlatformModule;
use crate::{
    ApiKeyHash, ApiKeyId, ApiKeyRecord, AuthMethod, CallRecord, Clock, Customer, Email, Keyring, PlanName,
    Principal, Registry, SealedSecret, SecretBinding, Store, SystemClock, ToolDefinition,
};

/// A value and its expiry.
type Item = (Vec<u8>, Option<Timestamp>);

/// Just enough of the store contract, in memory: credentials, items with expiry, counters.
#[derive(Default)]
struct MemoryStore {
    credentials: Mutex<BTreeMap<(String, Platform, String), CredentialRecord>>,
    items: Mutex<HashMap<String, Item>>,
    counters: Mutex<HashMap<String, u64>>,
}

fn live(entry: &Item, now: Timestamp) -> bool {
    entry.1.is_none_or(|at| now < at)
}

#[async_trait]
impl Store for MemoryStore {
    async fn insert_customer(&self, _: &Customer) -> Result<(), StoreError> {
        Ok(())
    }
    async fn customer(&self, id: &CustomerId) -> Result<Option<Customer>, StoreError> {
        Ok(Some(Customer {
            id: id.clone(),
            email: Email::parse("someone@example.com").unwrap(),
            plan: PlanName::parse("pro").unwrap(),
            password_hash: None,
            created_at: Timestamp::from_unix(0),
        }))
    }
    async fn customer_by_email(&self, _: &Email) -> Result<Option<Customer>, StoreError> {
        Ok(None)
    }
    async fn list_customers(&self, _: Option<&str>, _: usize) -> Result<Page<Customer>, StoreError> {
        Ok(Page { items: vec![], next: None })
    }
    async fn set_customer_plan(&self, _: &CustomerId, _: &PlanName) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn insert_api_key(&self, _: &ApiKeyRecord) -> Result<(), StoreError> {
        Ok(())
    }
    async fn api_key_by_hash(&self, _: &ApiKeyHash) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(None)
    }
    async fn list_api_keys(&self, _: &CustomerId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        Ok(vec![])
    }
    async fn revoke_api_key(&self, _: &CustomerId, _: &ApiKeyId, _: Timestamp) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn put_credential(&self, record: &CredentialRecord) -> Result<(), StoreError> {
        let key = (record.customer_id.as_str().to_owned(), record.platform, record.account.as_str().to_owned());
        self.credentials.lock().unwrap().insert(key, record.clone());
        Ok(())
    }
    async fn credentials(&self, customer: &CustomerId, platform: Option<Platform>) -> Result<Vec<CredentialRecord>, StoreError> {
        Ok(self
            .credentials
            .lock()
            .unwrap()
            .values()
            .filter(|r| &r.customer_id == customer && platform.is_none_or(|p| p == r.platform))
            .cloned()
            .collect())
    }
    async fn delete_credential(&self, customer: &CustomerId, platform: Platform, account: &AccountName) -> Result<bool, StoreError> {
        let key = (customer.as_str().to_owned(), platform, account.as_str().to_owned());
        Ok(self.credentials.lock().unwrap().remove(&key).is_some())
    }
    async fn swap_credential(&self, record: &CredentialRecord, expected: &SealedSecret) -> Result<bool, StoreError> {
        let key = (record.customer_id.as_str().to_owned(), record.platform, record.account.as_str().to_owned());
        let mut all = self.credentials.lock().unwrap();
        match all.get(&key) {
            Some(current) if &current.sealed == expected => {
                all.insert(key, record.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn add_to_counter(&self, key: &str, delta: u64, _: Option<u64>) -> Result<u64, StoreError> {
        let mut counters = self.counters.lock().unwrap();
        let value = counters.entry(key.to_owned()).or_default();
        *value += delta;
        Ok(*value)
    }
    async fn counter(&self, key: &str) -> Result<u64, StoreError> {
        Ok(self.counters.lock().unwrap().get(key).copied().unwrap_or_default())
    }
    async fn subtract_from_counter(&self, key: &str, delta: u64) -> Result<bool, StoreError> {
        let mut counters = self.counters.lock().unwrap();
        let value = counters.entry(key.to_owned()).or_default();
        match value.checked_sub(delta) {
            Some(left) => {
                *value = left;
                Ok(true)
            }
            None => Ok(false),
        }
    }
    async fn record_call(&self, _: &CallRecord, counter: Option<(&str, i64)>) -> Result<(), StoreError> {
        if let Some((key, delta)) = counter {
            let mut counters = self.counters.lock().unwrap();
            let value = counters.entry(key.to_owned()).or_default();
            *value = value.saturating_add_signed(delta);
        }
        Ok(())
    }
    async fn call_records(&self, _: &CustomerId, _: Timestamp, _: Timestamp, _: usize, _: Timestamp) -> Result<Vec<CallRecord>, StoreError> {
        Ok(vec![])
    }
    async fn put_single_use(&self, key: &str, value: &[u8], expires_at: Timestamp, now: Timestamp) -> Result<(), StoreError> {
        self.put_item(key, value, Some(expires_at), PutMode::CreateOnly, now).await
    }
    async fn take_single_use(&self, key: &str, now: Timestamp) -> Result<Option<Vec<u8>>, StoreError> {
        let taken = self.items.lock().unwrap().remove(key);
        Ok(taken.filter(|e| live(e, now)).map(|e| e.0))
    }
    async fn put_item(&self, key: &str, value: &[u8], expires_at: Option<Timestamp>, mode: PutMode, now: Timestamp) -> Result<(), StoreError> {
        let mut items = self.items.lock().unwrap();
        if mode == PutMode::CreateOnly && items.get(key).is_some_and(|e| live(e, now)) {
            return Err(StoreError::Conflict(key.to_owned()));
        }
        items.insert(key.to_owned(), (value.to_vec(), expires_at));
        Ok(())
    }
    async fn get_item(&self, key: &str, now: Timestamp) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.items.lock().unwrap().get(key).filter(|e| live(e, now)).map(|e| e.0.clone()))
    }
    async fn swap_item(&self, key: &str, expected: &[u8], value: &[u8], expires_at: Option<Timestamp>, now: Timestamp) -> Result<bool, StoreError> {
        let mut items = self.items.lock().unwrap();
        match items.get(key) {
            Some(e) if live(e, now) && e.0 == expected => {
                items.insert(key.to_owned(), (value.to_vec(), expires_at));
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn delete_item(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.items.lock().unwrap().remove(key).is_some())
    }
}


/// The platform's API: accepts only the current access token, answering with it.
struct Api {
    valid: Mutex<String>,
    calls: AtomicUsize,
}

struct WhoAmI {
    definition: ToolDefinition,
    api: Arc<Api>,
}

#[async_trait]
impl Tool for WhoAmI {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }
    async fn call(&self, credential: &Secret<Value>, _: Map<String, Value>) -> Result<ToolOutput, ToolFailure> {
        self.api.calls.fetch_add(1, Ordering::SeqCst);
        let token = credential.expose()["access_token"].as_str().unwrap_or_default().to_owned();
        if token == *self.api.valid.lock().unwrap() {
            Ok(ToolOutput { structured: json!({"token": token}) })
        } else {
            Err(ToolFailure::new(FailureKind::AuthExpired, "The access token expired."))
        }
    }
}

struct Twitter {
    api: Arc<Api>,
    probe: Option<&'static str>,
}

impl PlatformModule for Twitter {
    fn platform(&self) -> Platform {
        Platform::Twitter
    }
    fn check_credential(&self, _: &Value) -> Result<(), String> {
        Ok(())
    }
    fn credential_example(&self) -> &'static str {
        r#"{"access_token": "..."}"#
    }
    fn tools(&self) -> Vec<Arc<dyn Tool>> {
        let definition = ToolDefinition::new(Platform::Twitter, "get_me", "Who am I", "The account", Map::new(), &[]).read_only();
        vec![Arc::new(WhoAmI { definition, api: self.api.clone() })]
    }
    fn health_probe(&self) -> Option<&'static str> {
        self.probe
    }
}

/// A token endpoint with rotation: a refresh token works once; the new access token becomes
/// the one the API accepts. Slow, so that concurrent callers overlap.
struct Provider {
    api: Arc<Api>,
    current_refresh: Mutex<String>,
    requests: AtomicUsize,
    refuse: bool,
}

#[async_trait]
impl TokenRefresher for Provider {
    fn refreshes(&self, platform: Platform) -> bool {
        platform == Platform::Twitter
    }
    async fn refresh(&self, _: Platform, document: &Secret<Value>) -> Result<Secret<Value>, RefreshError> {
        let n = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let presented = document.expose()["refresh_token"].as_str().unwrap_or_default().to_owned();
        if self.refuse || presented != *self.current_refresh.lock().unwrap() {
            return Err(RefreshError::Refused("invalid_grant".into()));
        }
        let (access, refresh) = (format!("access-{n}"), format!("refresh-{n}"));
        *self.current_refresh.lock().unwrap() = refresh.clone();
        *self.api.valid.lock().unwrap() = access.clone();
        let mut next = document.expose().clone();
        next["access_token"] = json!(access);
        next["refresh_token"] = json!(refresh);
        next["expires_at"] = json!(SystemClock.now().unix() + 7200);
        Ok(Secret::new(next))
    }
}

struct Fixture {
    gateway: Arc<Gateway>,
    store: Arc<MemoryStore>,
    api: Arc<Api>,
    provider: Arc<Provider>,
    customer: CustomerId,
}

async fn fixture(expires_in: i64, api_accepts_stored: bool, refuse: bool, probe: Option<&'static str>) -> Fixture {
    let store = Arc::new(MemoryStore::default());
    let api = Arc::new(Api { valid: Mutex::new(if api_accepts_stored { "access-0".into() } else { "new".into() }), calls: AtomicUsize::new(0) });
    let provider =
        Arc::new(Provider { api: api.clone(), current_refresh: Mutex::new("refresh-0".into()), requests: AtomicUsize::new(0), refuse });
    let registry = Arc::new(Registry::new(vec![Box::new(Twitter { api: api.clone(), probe })]));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let gateway = Arc::new(Gateway::new(store.clone(), Arc::new(TestKeyring), clock, registry, None).with_refresher(provider.clone()));
    let customer = CustomerId::generate();
    let document = json!({
        "access_token": "access-0",
        "refresh_token": "refresh-0",
        "expires_at": SystemClock.now().unix() + expires_in,
        "scopes": ["users.read", "offline.access"],
        "account": {"id": "42", "name": "Ada"},
    });
    let binding = SecretBinding { customer_id: customer.clone(), platform: Platform::Twitter, account: Some(AccountName::default_account()) };
    let sealed = TestKeyring.seal(&binding, document.to_string().as_bytes()).await.unwrap();
    store
        .put_credential(&CredentialRecord {
            customer_id: customer.clone(),
            platform: Platform::Twitter,
            account: AccountName::default_account(),
            sealed,
            created_at: Timestamp::from_unix(0),
            updated_at: Timestamp::from_unix(0),
        })
        .await
        .unwrap();
    Fixture { gateway, store, api, provider, customer }
}

fn context(customer: &CustomerId) -> CallContext {
    CallContext::new(Principal::Customer { id: customer.clone() }, AuthMethod::ApiKey)
}

async fn stored_document(f: &Fixture) -> Value {
    let record = f.store.credentials(&f.customer, Some(Platform::Twitter)).await.unwrap().remove(0);
    serde_json::from_slice(&record.sealed.ciphertext).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_calls_with_an_expired_token_refresh_once() {
    let f = fixture(-60, false, false, Some("get_me")).await;
    let calls = (0..50).map(|_| {
        let gateway = f.gateway.clone();
        let customer = f.customer.clone();
        tokio::spawn(async move { gateway.call_tool(&context(&customer), "twitter_get_me", None).await })
    });
    let mut tokens = Vec::new();
    for call in calls {
        let output = call.await.unwrap().unwrap().expect("every call succeeds");
        tokens.push(output.structured["token"].as_str().unwrap().to_owned());
    }
    assert_eq!(f.provider.requests.load(Ordering::SeqCst), 1, "exactly one refresh request");
    assert!(tokens.iter().all(|t| t == "access-1"), "{tokens:?}");
    // The rotated refresh token was stored before use.
    let stored = stored_document(&f).await;
    assert_eq!((stored["access_token"].as_str(), stored["refresh_token"].as_str()), (Some("access-1"), Some("refresh-1")));
    assert_eq!(stored["account"]["name"], "Ada", "the rest of the document is kept");
}

#[tokio::test]
async fn an_auth_expired_answer_refreshes_and_runs_the_call_once_more() {
    // Not near expiry by its own clock, but the platform says it expired (revoked early).
    let f = fixture(3600, false, false, Some("get_me")).await;
    let output = f.gateway.call_tool(&context(&f.customer), "twitter_get_me", None).await.unwrap().expect("re-run succeeds");
    assert_eq!(output.structured["token"], "access-1");
    assert_eq!(f.provider.requests.load(Ordering::SeqCst), 1);
    assert_eq!(f.api.calls.load(Ordering::SeqCst), 2, "the call, then once more");
}

#[tokio::test]
async fn a_valid_token_is_used_without_refreshing() {
    let f = fixture(3600, true, false, Some("get_me")).await;
    let output = f.gateway.call_tool(&context(&f.customer), "twitter_get_me", None).await.unwrap().unwrap();
    assert_eq!(output.structured["token"], "access-0");
    assert_eq!(f.provider.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_refused_refresh_asks_for_a_reconnect_and_marks_the_connection() {
    let f = fixture(-60, false, true, Some("get_me")).await;
    let failure = f.gateway.call_tool(&context(&f.customer), "twitter_get_me", None).await.unwrap().expect_err("refused");
    assert_eq!(failure.kind, FailureKind::AuthRevoked);
    assert!(failure.message.contains("/account") && failure.message.contains("Reconnect"), "{}", failure.message);
    let connections = f.gateway.connections(&f.customer, None, Probe::CachedOnly).await.unwrap();
    assert_eq!(connections[0].health, Health::NeedsReconnect);
    // The stored tokens are untouched (nothing to lose).
    assert_eq!(stored_document(&f).await["refresh_token"], "refresh-0");
}

#[tokio::test]
async fn a_refresh_done_elsewhere_meanwhile_is_reused() {
    let f = fixture(-60, false, false, Some("get_me")).await;
    // Another process holds the lease and finishes while we wait.
    let record = f.store.credentials(&f.customer, None).await.unwrap().remove(0);
    let now = SystemClock.now();
    f.store.put_item(&lease_key(&record), b"someone-else", Some(now.plus_seconds(30)), PutMode::CreateOnly, now).await.unwrap();
    let other = {
        let store = f.store.clone();
        let api = f.api.clone();
        let record = record.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let document = json!({"access_token": "elsewhere", "refresh_token": "refresh-x", "expires_at": now.unix() + 7200});
            *api.valid.lock().unwrap() = "elsewhere".into();
            let sealed = TestKeyring.seal(&record.binding(), document.to_string().as_bytes()).await.unwrap();
            assert!(store.swap_credential(&CredentialRecord { sealed, ..record.clone() }, &record.sealed).await.unwrap());
            store.delete_item(&lease_key(&record)).await.unwrap();
        })
    };
    let output = f.gateway.call_tool(&context(&f.customer), "twitter_get_me", None).await.unwrap().unwrap();
    other.await.unwrap();
    assert_eq!(output.structured["token"], "elsewhere");
    assert_eq!(f.provider.requests.load(Ordering::SeqCst), 0, "no refresh of our own");
}

#[tokio::test]
async fn health_comes_from_the_probe_and_is_cached_and_updated_by_failures() {
    let f = fixture(3600, true, false, Some("get_me")).await;
    let cached = f.gateway.connections(&f.customer, None, Probe::CachedOnly).await.unwrap();
    assert_eq!((cached[0].health.clone(), cached[0].checked_at), (Health::Unchecked, None));
    let probed = f.gateway.connections(&f.customer, None, Probe::Missing).await.unwrap();
    assert_eq!(probed[0].health, Health::Ok);
    assert_eq!(f.api.calls.load(Ordering::SeqCst), 1);
    // Cached: no second probe.
    let again = f.gateway.connections(&f.customer, None, Probe::Missing).await.unwrap();
    assert_eq!(again[0].health, Health::Ok);
    assert_eq!(f.api.calls.load(Ordering::SeqCst), 1);
    // A failed call updates it at once.
    *f.api.valid.lock().unwrap() = "revoked-everything".into();
    *f.provider.current_refresh.lock().unwrap() = "nothing-matches".into();
    let _ = f.gateway.call_tool(&context(&f.customer), "twitter_get_me", None).await;
    let after = f.gateway.connections(&f.customer, None, Probe::CachedOnly).await.unwrap();
    assert_eq!(after[0].health, Health::NeedsReconnect);
}

#[tokio::test]
async fn a_token_that_cannot_be_refreshed_and_ends_soon_is_expiring() {
    let f = fixture(86_400, true, false, Some("get_me")).await;
    // Without a refresh token, the token ends in a day: expiring.
    let record = f.store.credentials(&f.customer, None).await.unwrap().remove(0);
    let mut document = stored_document(&f).await;
    document.as_object_mut().unwrap().remove("refresh_token");
    let sealed = TestKeyring.seal(&record.binding(), document.to_string().as_bytes()).await.unwrap();
    f.store.put_credential(&CredentialRecord { sealed, ..record }).await.unwrap();
    let connections = f.gateway.connections(&f.customer, None, Probe::All).await.unwrap();
    assert_eq!(connections[0].health.name(), "expiring");
}

#[test]
fn failures_say_what_they_mean_for_the_connection() {
    let of = |kind| Health::after_failure(&ToolFailure::new(kind, "message"));
    assert_eq!(of(FailureKind::AuthRevoked), Some(Health::NeedsReconnect));
    assert_eq!(of(FailureKind::AuthExpired), Some(Health::NeedsReconnect));
    assert_eq!(of(FailureKind::PermissionMissing).map(|h| h.name()), Some("failing"));
    assert_eq!(of(FailureKind::InvalidInput), None);
    assert_eq!(of(FailureKind::RateLimited), None);
    let long = Health::after_failure(&ToolFailure::new(FailureKind::Upstream, "x".repeat(500))).unwrap();
    assert!(matches!(long, Health::Failing { reason } if reason.starts_with("upstream_error (") && reason.chars().count() < 230));
    assert_eq!(serde_json::to_value(Health::Failing { reason: "r".into() }).unwrap(), json!({"state": "failing", "reason": "r"}));
}

#[tokio::test]
async fn tools_list_shows_a_customer_only_the_connected_platforms() {
    let f = fixture(3600, true, false, Some("get_me")).await;
    let info = ServerInfo { name: "squaremcp".into(), version: "test".into(), instructions: String::new() };
    let server = McpServer::new(f.gateway.clone(), info, 10);
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string();
    let names = |reply: crate::mcp::Reply| -> Vec<String> {
        reply.json().unwrap()["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names(server.handle(&context(&f.customer), None, list.as_bytes()).await), ["twitter_get_me"]);
    let stranger = CustomerId::generate();
    assert!(names(server.handle(&context(&stranger), None, list.as_bytes()).await).is_empty());
    let admin = CallContext::new(Principal::Superadmin, AuthMethod::AdminKey);
    assert_eq!(names(server.handle(&admin, None, list.as_bytes()).await), ["twitter_get_me"]);
    // A tool of a platform the stranger has not connected still answers, with how to connect.
    let failure = f.gateway.call_tool(&context(&stranger), "twitter_get_me", None).await.unwrap().expect_err("not connected");
    assert_eq!(failure.kind, FailureKind::NotConfigured);
    assert!(failure.message.contains("/account"), "{}", failure.message);
    // Usage is untouched by failures before the platform was called.
    assert_eq!(f.store.counter(&usage_counter_key(&stranger, Month::of(SystemClock.now()))).await.unwrap(), 0);
}

#[tokio::test]
async fn a_connection_can_be_renamed_but_not_onto_another() {
    let f = fixture(3600, true, false, Some("get_me")).await;
    let (default, work) = (AccountName::default_account(), AccountName::parse("work").unwrap());
    assert!(f.gateway.rename_connection(&f.customer, Platform::Twitter, &default, work.clone()).await.unwrap());
    let names: Vec<String> =
        f.store.credentials(&f.customer, None).await.unwrap().iter().map(|r| r.account.as_str().to_owned()).collect();
    assert_eq!(names, ["work"]);
    // The tokens moved with it and still open.
    let arguments = json!({"account": "work"});
    let output = f.gateway.call_tool(&context(&f.customer), "twitter_get_me", Some(arguments)).await.unwrap().unwrap();
    assert_eq!(output.structured["token"], "access-0");
    assert!(!f.gateway.rename_connection(&f.customer, Platform::Twitter, &default, work.clone()).await.unwrap(), "no such connection");
    // Onto an existing name: refused, nothing lost.
    let other = AccountName::parse("other").unwrap();
    let record = f.store.credentials(&f.customer, None).await.unwrap().remove(0);
    f.store.put_credential(&CredentialRecord { account: other.clone(), ..record }).await.unwrap();
    assert!(f.gateway.rename_connection(&f.customer, Platform::Twitter, &work, other).await.is_err());
    assert_eq!(f.store.credentials(&f.customer, None).await.unwrap().len(), 2);
}

/// Every event handed over, as (customer, type, dedupe key, data).
#[derive(Default)]
struct RecordingSink(Mutex<Vec<(String, String, String, Value)>>);

#[async_trait]
impl crate::events::EventSink for RecordingSink {
    async fn publish(&self, customer: &CustomerId, event_type: &str, key: &str, data: Value) -> Result<usize, crate::events::PublishError> {
        self.0.lock().unwrap().push((customer.as_str().to_owned(), event_type.to_owned(), key.to_owned(), data));
        Ok(1)
    }
}

#[tokio::test]
async fn a_connection_that_needs_a_reconnect_and_each_failed_call_are_published() {
    let f = fixture(-60, false, true, Some("get_me")).await;
    let sink = Arc::new(RecordingSink::default());
    let registry = Arc::new(Registry::new(vec![Box::new(Twitter { api: f.api.clone(), probe: Some("get_me") })]));
    let gateway = Arc::new(
        Gateway::new(f.store.clone(), Arc::new(TestKeyring), Arc::new(SystemClock), registry, None)
            .with_refresher(f.provider.clone())
            .with_events(sink.clone()),
    );
    for _ in 0..2 {
        gateway.call_tool(&context(&f.customer), "twitter_get_me", None).await.unwrap().expect_err("refused");
    }
    let events = sink.0.lock().unwrap().clone();
    let of = |kind: &str| events.iter().filter(|e| e.1 == kind).cloned().collect::<Vec<_>>();
    let reconnects = of("connection.needs_reconnect");
    assert_eq!(reconnects.len(), 2, "{events:?}");
    // The same stored credential: one occurrence, so receivers see one event id.
    assert_eq!(reconnects[0].2, reconnects[1].2);
    assert_eq!(reconnects[0].0, f.customer.as_str());
    assert_eq!((reconnects[0].3["platform"].as_str(), reconnects[0].3["account"].as_str()), (Some("twitter"), Some("default")));
    assert_eq!(reconnects[0].3["kind"], "auth_revoked");
    let failed = of("tool.call.failed");
    assert_eq!(failed.len(), 2, "{events:?}");
    assert_ne!(failed[0].2, failed[1].2, "each failed call is its own event");
    assert_eq!((failed[0].3["tool"].as_str(), failed[0].3["kind"].as_str()), (Some("twitter_get_me"), Some("auth_revoked")));
    assert!(failed[0].3["message"].as_str().is_some_and(|m| m.contains("Reconnect")), "{:?}", failed[0].3);
    assert!(!failed[0].3.to_string().contains("refresh-0"), "no token in an event");
}

#[tokio::test]
async fn a_successful_call_publishes_nothing() {
    let f = fixture(3600, true, false, Some("get_me")).await;
    let sink = Arc::new(RecordingSink::default());
    let registry = Arc::new(Registry::new(vec![Box::new(Twitter { api: f.api.clone(), probe: Some("get_me") })]));
    let gateway =
        Arc::new(Gateway::new(f.store.clone(), Arc::new(TestKeyring), Arc::new(SystemClock), registry, None).with_events(sink.clone()));
    gateway.call_tool(&context(&f.customer), "twitter_get_me", None).await.unwrap().expect("ok");
    assert!(sink.0.lock().unwrap().is_empty());
}

/// A refresher whose documents keep their expiry somewhere else (as Email's `oauth2`): the
/// gateway asks it when the token expires, and here it always says "already".
struct ExpiryElsewhere(Arc<Provider>);

#[async_trait]
impl TokenRefresher for ExpiryElsewhere {
    fn refreshes(&self, platform: Platform) -> bool {
        self.0.refreshes(platform)
    }
    fn expires_at(&self, _: Platform, _: &Value) -> Option<i64> {
        Some(0)
    }
    async fn refresh(&self, platform: Platform, document: &Secret<Value>) -> Result<Secret<Value>, RefreshError> {
        self.0.refresh(platform, document).await
    }
}

#[tokio::test]
async fn the_refresher_says_where_a_document_keeps_its_expiry() {
    // The document's own `expires_at` is an hour away and the API accepts its token, but the
    // refresher reads the expiry elsewhere: the call refreshes first.
    let f = fixture(3600, true, false, Some("get_me")).await;
    let registry = Arc::new(Registry::new(vec![Box::new(Twitter { api: f.api.clone(), probe: Some("get_me") })]));
    let gateway = Arc::new(
        Gateway::new(f.store.clone(), Arc::new(TestKeyring), Arc::new(SystemClock), registry, None)
            .with_refresher(Arc::new(ExpiryElsewhere(f.provider.clone()))),
    );
    let output = gateway.call_tool(&context(&f.customer), "twitter_get_me", None).await.unwrap().expect("refreshed, then called");
    assert_eq!(output.structured["token"], "access-1");
    assert_eq!((f.provider.requests.load(Ordering::SeqCst), f.api.calls.load(Ordering::SeqCst)), (1, 1), "refreshed before the only call");
}
