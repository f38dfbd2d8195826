#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::test_support::TestKeyring;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::*;
use crate::ports::Page;
use crate::tool::{FailureKind, PlatformModule};
use crate::gateway::CallContext;
use crate::{
    AccountName, ApiKeyHash, ApiKeyId, ApiKeyRecord, AuthMethod, CallRecord, Clock, CredentialRecord, Principal, Customer, CustomerId, Email, Keyring,
    Platform, Registry, Secret, SecretBinding, Store, StoreError, SystemClock, Timestamp,
    Tool, ToolFailure, ToolOutput,
};

/// Only what the protocol needs: credentials. Everything else is unused here.
#[derive(Default)]
struct CredentialsOnly {
    records: Mutex<Vec<CredentialRecord>>,
    calls: Mutex<Vec<CallRecord>>,
    /// Plays a broken adapter: `credentials` ignores the customer asked for.
    ignores_owner: std::sync::atomic::AtomicBool,
    api_keys: Mutex<Vec<ApiKeyRecord>>,
    /// How often a key was looked up by its hash.
    key_reads: std::sync::atomic::AtomicUsize,
    /// How often credentials were read.
    credential_reads: std::sync::atomic::AtomicUsize,
    /// When set, each call record waits for a permit before it is written.
    hold_records: Mutex<Option<Arc<tokio::sync::Semaphore>>>,
}

#[async_trait]
impl Store for CredentialsOnly {
    async fn insert_customer(&self, _: &Customer) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("not in this fake".into()))
    }
    /// Every customer exists, on the `pro` plan.
    async fn customer(&self, id: &CustomerId) -> Result<Option<Customer>, StoreError> {
        Ok(Some(Customer {
            id: id.clone(),
            email: Email::parse("someone@example.com").unwrap(),
            plan: crate::PlanName::parse("pro").unwrap(),
            password_hash: None,
            created_at: Timestamp::from_unix(0),
        }))
    }
    async fn set_customer_plan(&self, _: &CustomerId, _: &crate::PlanName) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn record_call(&self, record: &CallRecord, _: Option<(&str, i64)>) -> Result<(), StoreError> {
        let gate = self.hold_records.lock().unwrap().clone();
        if let Some(gate) = gate {
            gate.acquire().await.unwrap().forget();
        }
        self.calls.lock().unwrap().push(record.clone());
        Ok(())
    }
    async fn call_records(&self, _: &CustomerId, _: Timestamp, _: Timestamp, _: usize, _: Timestamp) -> Result<Vec<CallRecord>, StoreError> {
        Ok(self.calls.lock().unwrap().clone())
    }
    async fn customer_by_email(&self, _: &Email) -> Result<Option<Customer>, StoreError> {
        Ok(None)
    }
    async fn list_customers(&self, _: Option<&str>, _: usize) -> Result<Page<Customer>, StoreError> {
        Ok(Page { items: vec![], next: None })
    }
    async fn insert_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        self.api_keys.lock().unwrap().push(record.clone());
        Ok(())
    }
    async fn api_key_by_hash(&self, hash: &ApiKeyHash) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.key_reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(self.api_keys.lock().unwrap().iter().find(|k| &k.hash == hash).cloned())
    }
    async fn list_api_keys(&self, customer: &CustomerId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        Ok(self.api_keys.lock().unwrap().iter().filter(|k| &k.customer_id == customer).cloned().collect())
    }
    async fn revoke_api_key(&self, customer: &CustomerId, id: &ApiKeyId, at: Timestamp) -> Result<bool, StoreError> {
        let mut keys = self.api_keys.lock().unwrap();
        let Some(key) = keys.iter_mut().find(|k| &k.id == id && &k.customer_id == customer && k.revoked_at.is_none()) else {
            return Ok(false);
        };
        key.revoked_at = Some(at);
        Ok(true)
    }
    async fn put_credential(&self, record: &CredentialRecord) -> Result<(), StoreError> {
        let mut records = self.records.lock().unwrap();
        records.retain(|r| (&r.customer_id, r.platform, &r.account) != (&record.customer_id, record.platform, &record.account));
        records.push(record.clone());
        Ok(())
    }
    async fn credentials(&self, customer: &CustomerId, platform: Option<Platform>) -> Result<Vec<CredentialRecord>, StoreError> {
        self.credential_reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(self
            .records
            .lock()
            .unwrap()
            .iter()
            .filter(|r| {
                (&r.customer_id == customer || self.ignores_owner.load(std::sync::atomic::Ordering::Relaxed))
                    && platform.is_none_or(|p| p == r.platform)
            })
            .cloned()
            .collect())
    }
    async fn delete_credential(&self, _: &CustomerId, _: Platform, _: &AccountName) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn swap_credential(&self, _: &CredentialRecord, _: &crate::SealedSecret) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn add_to_counter(&self, _: &str, _: u64, _: Option<u64>) -> Result<u64, StoreError> {
        Ok(0)
    }
    async fn counter(&self, _: &str) -> Result<u64, StoreError> {
        Ok(0)
    }
    async fn subtract_from_counter(&self, _: &str, delta: u64) -> Result<bool, StoreError> {
        Ok(delta == 0)
    }
    async fn put_single_use(&self, _: &str, _: &[u8], _: Timestamp, _: Timestamp) -> Result<(), StoreError> {
        Ok(())
    }
    async fn take_single_use(&self, _: &str, _: Timestamp) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }
    async fn put_item(&self, _: &str, _: &[u8], _: Option<Timestamp>, _: crate::PutMode, _: Timestamp) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("not in this fake".into()))
    }
    async fn get_item(&self, _: &str, _: Timestamp) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }
    async fn swap_item(&self, _: &str, _: &[u8], _: &[u8], _: Option<Timestamp>, _: Timestamp) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn delete_item(&self, _: &str) -> Result<bool, StoreError> {
        Ok(false)
    }
}


/// Echoes its arguments and the credential's `label`, so tests see which credential was used.
struct EchoTool(crate::ToolDefinition);

#[async_trait]
impl Tool for EchoTool {
    fn definition(&self) -> &crate::ToolDefinition {
        &self.0
    }
    async fn call(&self, credential: &Secret<Value>, arguments: Map<String, Value>) -> Result<ToolOutput, ToolFailure> {
        // A slow platform, for cancellation and deadlines.
        if let Some(ms) = arguments.get("sleep_ms").and_then(Value::as_u64) {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        if arguments.get("fail") == Some(&json!(true)) {
            return Err(ToolFailure::new(FailureKind::Upstream, "upstream said no"));
        }
        Ok(ToolOutput { structured: json!({"label": credential.expose()["label"], "args": arguments}) })
    }
}

struct EchoPlatform(usize);

impl PlatformModule for EchoPlatform {
    fn platform(&self) -> Platform {
        Platform::Telegram
    }
    fn check_credential(&self, _: &Value) -> Result<(), String> {
        Ok(())
    }
    fn credential_example(&self) -> &'static str {
        r#"{"label": "..."}"#
    }
    fn tools(&self) -> Vec<Arc<dyn Tool>> {
        (0..self.0)
            .map(|i| {
                let mut props = Map::new();
                props.insert("text".into(), json!({"type": "string"}));
                props.insert("fail".into(), json!({"type": "boolean"}));
                props.insert("sleep_ms".into(), json!({"type": "integer", "minimum": 0}));
                let def = crate::ToolDefinition::new(Platform::Telegram, &format!("echo{i}"), "Echo", "Echoes", props, &["text"])
                    .with_output_schema(json!({"type": "object"}));
                Arc::new(EchoTool(def)) as Arc<dyn Tool>
            })
            .collect()
    }
}

struct Fixture {
    server: McpServer,
    gateway: Arc<Gateway>,
    store: Arc<CredentialsOnly>,
    alice: CallContext,
    bob: CallContext,
}

fn customer(id: &CustomerId) -> CallContext {
    CallContext::new(Principal::Customer { id: id.clone() }, AuthMethod::ApiKey)
}

async fn fixture(tools: usize, page_size: usize) -> Fixture {
    fixture_with_call_timeout(tools, page_size, crate::gateway::DEFAULT_CALL_TIMEOUT).await
}

async fn fixture_with_call_timeout(tools: usize, page_size: usize, call_timeout: std::time::Duration) -> Fixture {
    let store = Arc::new(CredentialsOnly::default());
    let registry = Arc::new(Registry::new(vec![Box::new(EchoPlatform(tools))]));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let gateway = Arc::new(
        Gateway::new(store.clone(), Arc::new(TestKeyring), clock, registry, Some(Secret::new("admin-secret".into())))
            .with_call_timeout(call_timeout),
    );
    let (alice, bob) = (CustomerId::generate(), CustomerId::generate());
    for (customer, label) in [(&alice, "alice-bot"), (&bob, "bob-bot")] {
        let binding = SecretBinding { customer_id: customer.clone(), platform: Platform::Telegram, account: Some(AccountName::default_account()) };
        let sealed = TestKeyring.seal(&binding, json!({"label": label}).to_string().as_bytes()).await.unwrap();
        store
            .put_credential(&CredentialRecord {
                customer_id: customer.clone(),
                platform: Platform::Telegram,
                account: AccountName::default_account(),
                sealed,
                created_at: Timestamp::from_unix(0),
                updated_at: Timestamp::from_unix(0),
            })
            .await
            .unwrap();
    }
    let info = ServerInfo { name: "squaremcp".into(), version: "test".into(), instructions: "Use the tools.".into() };
    Fixture {
        server: McpServer::new(gateway.clone(), info, page_size),
        gateway,
        store,
        alice: customer(&alice),
        bob: customer(&bob),
    }
}

async fn post(f: &Fixture, header: Option<&str>, body: Value) -> Reply {
    f.server.handle(&f.alice, header, body.to_string().as_bytes()).await
}

fn call(id: i64, name: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": arguments}})
}

fn error_code(reply: &Reply) -> i64 {
    reply.json().and_then(|b| b["error"]["code"].as_i64()).expect("an error reply")
}

#[tokio::test]
async fn initialize_negotiates_versions() {
    let f = fixture(1, 10).await;
    for (asked, answered) in [("2025-03-26", "2025-03-26"), ("2025-06-18", "2025-06-18"), ("2025-11-25", "2025-11-25"), ("2024-11-05", "2025-11-25"), ("2099-01-01", "2025-11-25")] {
        let reply = post(&f, None, json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": asked, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})).await;
        assert_eq!(reply.status, 200);
        let result = &reply.json().unwrap()["result"];
        assert_eq!(result["protocolVersion"], answered, "asked {asked}");
        assert_eq!(result["serverInfo"]["name"], "squaremcp");
        assert!(result["capabilities"]["tools"].is_object());
    }
}

#[tokio::test]
async fn initialize_is_never_rejected_over_the_version_header() {
    let f = fixture(1, 10).await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18"}});
    let reply = post(&f, Some("1999-01-01"), init).await;
    assert_eq!(reply.status, 200);
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});
    let rejected = post(&f, Some("1999-01-01"), ping.clone()).await;
    assert_eq!(rejected.status, 400);
    assert_eq!(error_code(&rejected), INVALID_REQUEST);
    assert_eq!(rejected.json().unwrap()["id"], 2);
    let ok = post(&f, Some("2025-06-18"), ping).await;
    assert_eq!((ok.status, ok.json().unwrap()["result"].clone()), (200, json!({})));
}

#[tokio::test]
async fn notifications_and_responses_are_accepted_without_a_body() {
    let f = fixture(1, 10).await;
    for message in [
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}),
        json!({"jsonrpc": "2.0", "method": "notifications/whatever"}),
        json!({"jsonrpc": "2.0", "id": 7, "result": {}}),
    ] {
        assert_eq!(post(&f, None, message).await, Reply { status: 202, body: None });
    }
}

#[tokio::test]
async fn malformed_messages_get_json_rpc_errors() {
    let f = fixture(1, 10).await;
    let parse = f.server.handle(&f.alice, None, b"{not json").await;
    assert_eq!((parse.status, error_code(&parse)), (400, PARSE_ERROR));
    assert_eq!(parse.json().unwrap()["id"], Value::Null);
    for body in [json!(42), json!("hello"), json!({"jsonrpc": "1.0", "id": 1, "method": "ping"}), json!({"jsonrpc": "2.0", "id": 1}), json!({"jsonrpc": "2.0", "id": null, "method": "ping"}), json!({"jsonrpc": "2.0", "id": 1.5, "method": "ping"}), json!({"jsonrpc": "2.0", "id": 1, "method": 3})] {
        let reply = post(&f, None, body.clone()).await;
        assert_eq!((reply.status, error_code(&reply)), (400, INVALID_REQUEST), "{body}");
    }
    let unknown = post(&f, None, json!({"jsonrpc": "2.0", "id": "a", "method": "resources/list"})).await;
    assert_eq!((unknown.status, error_code(&unknown)), (200, METHOD_NOT_FOUND));
    assert_eq!(unknown.json().unwrap()["id"], "a");
    let bad_params = post(&f, None, json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": [1]})).await;
    assert_eq!(error_code(&bad_params), INVALID_PARAMS);
}

#[tokio::test]
async fn batches_only_in_2025_03_26() {
    let f = fixture(1, 10).await;
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "nope"}
    ]);
    for header in [None, Some("2025-03-26")] {
        let reply = post(&f, header, batch.clone()).await;
        assert_eq!(reply.status, 200);
        let replies = reply.json().unwrap();
        assert_eq!(replies.as_array().map(Vec::len), Some(2));
        assert_eq!(replies[0]["result"], json!({}));
        assert_eq!(replies[1]["error"]["code"], METHOD_NOT_FOUND);
    }
    for header in ["2025-06-18", "2025-11-25"] {
        let reply = post(&f, Some(header), batch.clone()).await;
        assert_eq!((reply.status, error_code(&reply)), (400, INVALID_REQUEST));
    }
    let empty = post(&f, None, json!([])).await;
    assert_eq!((empty.status, error_code(&empty)), (400, INVALID_REQUEST));
    let only_notes = post(&f, None, json!([{"jsonrpc": "2.0", "method": "notifications/initialized"}])).await;
    assert_eq!(only_notes, Reply { status: 202, body: None });
}

#[tokio::test]
async fn tools_list_pages_deterministically() {
    let f = fixture(5, 2).await;
    let mut names = Vec::new();
    let mut cursor = Value::Null;
    for _ in 0..5 {
        let params = if cursor.is_null() { json!({}) } else { json!({"cursor": cursor}) };
        let reply = post(&f, None, json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": params})).await;
        let result = reply.json().unwrap()["result"].clone();
        for tool in result["tools"].as_array().unwrap() {
            names.push(tool["name"].as_str().unwrap().to_owned());
            assert_eq!(tool["inputSchema"]["type"], "object");
            assert!(tool["inputSchema"]["properties"]["account"].is_object());
        }
        cursor = result.get("nextCursor").cloned().unwrap_or(Value::Null);
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(names, ["telegram_echo0", "telegram_echo1", "telegram_echo2", "telegram_echo3", "telegram_echo4"]);
    for bad in [json!("garbage"), json!(7), json!(super::cursor::encode(99)), json!(super::cursor::encode(1)), json!(super::cursor::encode(0))] {
        let reply = post(&f, None, json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"cursor": bad}})).await;
        assert_eq!(error_code(&reply), INVALID_PARAMS, "{bad}");
    }
}

#[tokio::test]
async fn tools_call_returns_structured_content_with_the_callers_credential() {
    let f = fixture(1, 10).await;
    let reply = post(&f, None, call(3, "telegram_echo0", json!({"text": "hi"}))).await;
    assert_eq!(reply.status, 200);
    let result = reply.json().unwrap()["result"].clone();
    assert_eq!(result["isError"], false);
    assert_eq!(result["structuredContent"], json!({"label": "alice-bot", "args": {"text": "hi"}}));
    let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text, result["structuredContent"]);
    let as_bob = f.server.handle(&f.bob, None, call(4, "telegram_echo0", json!({"text": "hi"})).to_string().as_bytes()).await;
    assert_eq!(as_bob.json().unwrap()["result"]["structuredContent"]["label"], "bob-bot");
}

#[tokio::test]
async fn tool_failures_are_results_and_unknown_tools_are_errors() {
    let f = fixture(1, 10).await;
    let unknown = post(&f, None, call(1, "telegram_nope", json!({}))).await;
    assert_eq!((unknown.status, error_code(&unknown)), (200, INVALID_PARAMS));
    let cases = [
        (json!({"text": 5}), "`text` must be a string, not a number"),
        (json!({}), "`text` is required"),
        (json!({"text": "x", "extra": 1}), "unknown argument `extra`"),
        (json!({"text": "x", "fail": true}), "upstream said no"),
        (json!({"text": "x", "account": "work"}), "No telegram account named `work` is connected. Connected accounts: default."),
    ];
    for (arguments, message) in cases {
        let reply = post(&f, None, call(2, "telegram_echo0", arguments.clone())).await;
        let result = reply.json().unwrap()["result"].clone();
        assert_eq!(result["isError"], true, "{arguments}");
        let text = result["content"][0]["text"].as_str().unwrap();
        assert!(text.contains(message), "{arguments}: {text}");
        assert!(result.get("structuredContent").is_none());
    }
    let not_object = post(&f, None, json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "telegram_echo0", "arguments": "x"}})).await;
    assert_eq!(error_code(&not_object), INVALID_PARAMS);
    let no_name = post(&f, None, json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {}})).await;
    assert_eq!(error_code(&no_name), INVALID_PARAMS);
}

#[tokio::test]
async fn a_key_is_read_once_per_cache_lifetime_and_refused_at_once_when_revoked_here() {
    let f = fixture(1, 10).await;
    let alice = f.alice.principal.customer_id().unwrap().clone();
    let (record, key) = f.gateway.create_api_key(&alice, "laptop").await.unwrap();
    let reads = || f.store.key_reads.load(std::sync::atomic::Ordering::SeqCst);
    for _ in 0..3 {
        let found = f.gateway.authenticate_api_key(key.expose()).await.unwrap();
        assert_eq!(found, Some((Principal::Customer { id: alice.clone() }, AuthMethod::ApiKey)));
    }
    assert_eq!(reads(), 1, "three requests within the cache's lifetime read the key once");

    // Revoked through this gateway (the account page, the CLI's own process): refused at once.
    assert!(f.gateway.revoke_api_key(&alice, &record.id).await.unwrap());
    assert_eq!(f.gateway.authenticate_api_key(key.expose()).await.unwrap(), None);
    assert_eq!(reads(), 2, "the revoked key was read again, not taken from the cache");
    assert_eq!(f.gateway.authenticate_api_key(key.expose()).await.unwrap(), None);
    assert_eq!(reads(), 3, "a refused key is never cached");
}

#[tokio::test]
async fn without_a_key_cache_every_request_reads_the_key_and_sees_another_process_revoke_it() {
    let f = fixture(1, 10).await;
    let uncached = Gateway::new(
        f.store.clone(),
        Arc::new(TestKeyring),
        Arc::new(SystemClock),
        Arc::new(Registry::new(vec![Box::new(EchoPlatform(1))])),
        None,
    )
    .with_api_key_cache(std::time::Duration::ZERO);
    let alice = f.alice.principal.customer_id().unwrap().clone();
    let (record, key) = f.gateway.create_api_key(&alice, "laptop").await.unwrap();
    assert!(uncached.authenticate_api_key(key.expose()).await.unwrap().is_some());
    assert!(uncached.authenticate_api_key(key.expose()).await.unwrap().is_some());
    assert_eq!(f.store.key_reads.load(std::sync::atomic::Ordering::SeqCst), 2);
    // `f.gateway` stands for another process sharing the store.
    assert!(f.gateway.revoke_api_key(&alice, &record.id).await.unwrap());
    assert_eq!(uncached.authenticate_api_key(key.expose()).await.unwrap(), None);
}

/// The `label` of the credential a call by `who` used.
async fn label_used(gateway: &Arc<Gateway>, who: &CallContext) -> Value {
    let output = gateway.call_tool(who, "telegram_echo0", Some(json!({"text": "x"}))).await.unwrap().unwrap();
    output.structured["label"].clone()
}

/// Stores `label` as `customer`'s Telegram credential directly, as another process would.
async fn store_label(store: &CredentialsOnly, customer: &CustomerId, label: &str) {
    store_account_label(store, customer, AccountName::default_account(), label).await;
}

async fn store_account_label(store: &CredentialsOnly, customer: &CustomerId, account: AccountName, label: &str) {
    let binding = SecretBinding { customer_id: customer.clone(), platform: Platform::Telegram, account: Some(account.clone()) };
    let sealed = TestKeyring.seal(&binding, json!({"label": label}).to_string().as_bytes()).await.unwrap();
    let at = Timestamp::from_unix(1);
    let record = CredentialRecord { customer_id: customer.clone(), platform: Platform::Telegram, account, sealed, created_at: at, updated_at: at };
    store.put_credential(&record).await.unwrap();
}

#[tokio::test]
async fn credentials_read_for_a_call_serve_the_next_calls_until_changed_here_or_their_lifetime_ends() {
    let f = fixture(1, 10).await;
    let gateway = Arc::new(
        Gateway::new(f.store.clone(), Arc::new(TestKeyring), Arc::new(SystemClock), Arc::new(Registry::new(vec![Box::new(EchoPlatform(1))])), None)
            .with_credential_cache(std::time::Duration::from_millis(300)),
    );
    let alice = f.alice.principal.customer_id().unwrap().clone();
    let reads = || f.store.credential_reads.load(std::sync::atomic::Ordering::SeqCst);
    for _ in 0..3 {
        assert_eq!(label_used(&gateway, &f.alice).await, "alice-bot");
    }
    assert_eq!(reads(), 1, "three calls within the lifetime read the credentials once");
    assert_eq!(label_used(&gateway, &f.bob).await, "bob-bot", "each customer has their own entry");

    // Changed by another process: this one sees it once the lifetime has passed.
    store_label(&f.store, &alice, "alice-elsewhere").await;
    assert_eq!(label_used(&gateway, &f.alice).await, "alice-bot");
    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    assert_eq!(label_used(&gateway, &f.alice).await, "alice-elsewhere");

    // Changed or removed through this gateway: at once.
    gateway.set_credential(&alice, Platform::Telegram, AccountName::default_account(), &json!({"label": "alice-here"})).await.unwrap();
    assert_eq!(label_used(&gateway, &f.alice).await, "alice-here");

    // An account connected elsewhere is found at once: a kept list without it is read again.
    store_account_label(&f.store, &alice, AccountName::parse("work").unwrap(), "alice-work").await;
    let work = gateway.call_tool(&f.alice, "telegram_echo0", Some(json!({"text": "x", "account": "work"}))).await.unwrap().unwrap();
    assert_eq!(work.structured["label"], "alice-work");

    // None connected is not kept: a connection made elsewhere works on the next call.
    let carol = CustomerId::generate();
    let failure = gateway.call_tool(&customer(&carol), "telegram_echo0", Some(json!({"text": "x"}))).await.unwrap().unwrap_err();
    assert_eq!(failure.kind, FailureKind::NotConfigured);
    store_label(&f.store, &carol, "carol-bot").await;
    assert_eq!(label_used(&gateway, &customer(&carol)).await, "carol-bot");

    let uncached = Arc::new(
        Gateway::new(f.store.clone(), Arc::new(TestKeyring), Arc::new(SystemClock), Arc::new(Registry::new(vec![Box::new(EchoPlatform(1))])), None)
            .with_credential_cache(std::time::Duration::ZERO),
    );
    let before = reads();
    label_used(&uncached, &f.alice).await;
    label_used(&uncached, &f.alice).await;
    assert_eq!(reads() - before, 2, "a zero lifetime reads on every call");
}

#[tokio::test]
async fn missing_credentials_and_the_admin_key_explain_themselves() {
    let f = fixture(1, 10).await;
    let stranger = customer(&CustomerId::generate());
    let reply = f.server.handle(&stranger, None, call(1, "telegram_echo0", json!({"text": "x"})).to_string().as_bytes()).await;
    let text = reply.json().unwrap()["result"]["content"][0]["text"].as_str().unwrap().to_owned();
    assert!(text.starts_with("No telegram credentials are connected"), "{text}");
    assert!(text.contains("squaremcp credentials set"), "{text}");

    let admin = f.gateway.authenticate_api_key("admin-secret").await.unwrap().map(|(p, _)| p);
    assert_eq!(admin, Some(Principal::Superadmin));
    assert_eq!(f.gateway.authenticate_api_key("admin-secreT").await.unwrap(), None);
    let admin_context = CallContext::new(Principal::Superadmin, AuthMethod::AdminKey);
    let reply = f.server.handle(&admin_context, None, call(1, "telegram_echo0", json!({"text": "x"})).to_string().as_bytes()).await;
    let result = reply.json().unwrap()["result"].clone();
    assert_eq!(result["isError"], true);
    assert!(result["content"][0]["text"].as_str().unwrap().contains("admin key has no platform credentials"));
}

#[tokio::test]
async fn a_record_the_store_files_under_another_customer_is_refused() {
    let f = fixture(1, 10).await;
    let Principal::Customer { id: bob } = &f.bob.principal else { unreachable!() };
    // Only Alice's record is left, and the store hands it out to Bob too.
    f.store.records.lock().unwrap().retain(|r| &r.customer_id != bob);
    f.store.ignores_owner.store(true, std::sync::atomic::Ordering::Relaxed);
    let reply = f.server.handle(&f.bob, None, call(1, "telegram_echo0", json!({"text": "x"})).to_string().as_bytes()).await;
    let result = reply.json().unwrap()["result"].clone();
    assert_eq!(result["isError"], true, "{result}");
    let text = result["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("damaged") && !text.contains("alice-bot"), "{text}");
}

#[tokio::test]
async fn a_credential_copied_to_another_customer_does_not_open() {
    let f = fixture(1, 10).await;
    let Principal::Customer { id: alice } = &f.alice.principal else { unreachable!() };
    let Principal::Customer { id: bob } = &f.bob.principal else { unreachable!() };
    let store = f.gateway.store();
    let mut stolen = store.credentials(alice, None).await.unwrap().remove(0);
    stolen.customer_id = bob.clone();
    stolen.account = AccountName::parse("stolen").unwrap();
    store.put_credential(&stolen).await.unwrap();
    let reply = f.server.handle(&f.bob, None, call(1, "telegram_echo0", json!({"text": "x", "account": "stolen"})).to_string().as_bytes()).await;
    let result = reply.json().unwrap()["result"].clone();
    assert_eq!(result["isError"], true);
    assert!(result["content"][0]["text"].as_str().unwrap().contains("could not be decrypted"));
}

#[tokio::test]
async fn each_answered_call_lands_in_its_requests_call_log() {
    let f = fixture(1, 10).await;
    let request = f.alice.clone();
    assert!(request.calls.take().is_empty());
    let batch = json!([
        call(1, "telegram_echo0", json!({"text": "x"})),
        call(2, "telegram_echo0", json!({"text": "x", "fail": true})),
        call(3, "telegram_echo0", json!({"text": 7})),
        call(4, "no_such_tool", json!({})),
        {"jsonrpc": "2.0", "id": 5, "method": "tools/list"},
    ]);
    let reply = f.server.handle(&request, None, batch.to_string().as_bytes()).await;
    assert_eq!(reply.status, 200);
    let mut logged: Vec<(String, &str)> = request.calls.take().into_iter().map(|c| (c.tool, c.outcome)).collect();
    logged.sort_unstable();
    let echo = || "telegram_echo0".to_owned();
    assert_eq!(logged, [(echo(), "invalid_input"), (echo(), "ok"), (echo(), "upstream_error")], "the calls that ran, nothing else");
    assert!(request.calls.take().is_empty(), "taking empties the log");

    let alone = CallContext::new(Principal::Superadmin, AuthMethod::AdminKey);
    f.server.handle(&alone, None, call(6, "telegram_echo0", json!({"text": "x"})).to_string().as_bytes()).await;
    let logged = alone.calls.take();
    assert_eq!((logged.len(), logged[0].outcome, logged[0].upstream_requests), (1, "forbidden", 0), "the admin key's call is logged, not recorded");
}

#[tokio::test]
async fn every_customer_call_is_recorded_with_redacted_arguments() {
    let f = fixture(1, 10).await;
    let canary = "canary-4f9c-secret-text";
    post(&f, None, call(1, "telegram_echo0", json!({"text": canary}))).await;
    post(&f, None, call(2, "telegram_echo0", json!({"text": canary, "fail": true}))).await;
    post(&f, None, call(3, "telegram_echo0", json!({"text": 7}))).await;
    let admin = CallContext::new(Principal::Superadmin, AuthMethod::AdminKey);
    f.server.handle(&admin, None, call(4, "telegram_echo0", json!({"text": canary})).to_string().as_bytes()).await;
    let calls = f.store.calls.lock().unwrap().clone();
    let outcomes: Vec<(&str, bool)> = calls.iter().map(|c| (c.outcome.as_str(), c.counted)).collect();
    assert_eq!(outcomes, [("ok", true), ("upstream_error", false), ("invalid_input", false)], "the admin key is not recorded");
    for record in &calls {
        assert_eq!(record.tool, "telegram_echo0");
        assert_eq!(record.auth_method, "api_key");
        assert!(!serde_json::to_string(record).unwrap().contains(canary), "message bodies never reach the log: {record:?}");
        assert!(record.expires_at > record.at);
    }
    assert_eq!(calls[0].arguments, json!({"text": "[redacted]"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_waits_for_its_record_unless_records_come_after_answers() {
    use std::time::Duration;
    let f = fixture(1, 10).await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    *f.store.hold_records.lock().unwrap() = Some(gate.clone());
    let recorded = || f.store.calls.lock().unwrap().len();

    // By default (the Lambdas), the answer comes after the record.
    let waiting = tokio::spawn({
        let (gateway, alice) = (f.gateway.clone(), f.alice.clone());
        async move { gateway.call_tool(&alice, "telegram_echo0", Some(json!({"text": "x"}))).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "no answer while the record is held");
    gate.add_permits(1);
    let outcome = tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap().unwrap();
    assert!(outcome.is_ok());
    assert_eq!(recorded(), 1);

    // With records after answers (`squaremcp serve`), the answer does not wait; the record is
    // still written, and `records_written` waits for it.
    let registry = Arc::new(Registry::new(vec![Box::new(EchoPlatform(1))]));
    let early = Arc::new(Gateway::new(f.store.clone(), Arc::new(TestKeyring), Arc::new(SystemClock), registry, None).with_records_after_answers());
    let answered = tokio::time::timeout(Duration::from_secs(5), early.call_tool(&f.alice, "telegram_echo0", Some(json!({"text": "y"}))))
        .await
        .expect("answered while the record is held");
    assert_eq!(answered.unwrap().unwrap().structured["args"]["text"], "y");
    assert_eq!(recorded(), 1, "the record is not written yet");
    let written = tokio::spawn({
        let early = early.clone();
        async move { early.records_written().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!written.is_finished(), "records_written waits for the held record");
    gate.add_permits(1);
    tokio::time::timeout(Duration::from_secs(5), written).await.unwrap().unwrap();
    assert_eq!(recorded(), 2);
    assert_eq!(f.store.calls.lock().unwrap()[1].outcome, "ok");
}

// --- MCP 2026-07-28: stateless requests, mirrored headers ---

const MODERN: &str = "2026-07-28";

/// A 2026-07-28 request: `_meta` in the body and the matching headers.
fn modern_body(id: i64, method: &str, mut params: Value) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "hand-written", "version": "1"},
    });
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

async fn post_modern(f: &Fixture, method: Option<&str>, name: Option<&str>, body: &Value) -> Reply {
    let headers = RequestHeaders { protocol_version: Some(MODERN), method, name };
    f.server.handle_request(&f.alice, headers, body.to_string().as_bytes()).await
}

#[tokio::test]
async fn server_discover_answers_without_initialize() {
    let f = fixture(1, 10).await;
    let reply = post_modern(&f, Some("server/discover"), None, &modern_body(1, "server/discover", json!({}))).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let result = &reply.json().unwrap()["result"];
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["supportedVersions"], json!(["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"]));
    assert!(result["capabilities"]["tools"].is_object());
    assert_eq!(result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "squaremcp");
    assert_eq!(result["instructions"], "Use the tools.");
    assert!(result["ttlMs"].is_u64() && result["cacheScope"] == "public", "{result}");
}

#[tokio::test]
async fn modern_tools_list_and_call_carry_result_type_and_cache_hints() {
    let f = fixture(3, 2).await;
    let reply = post_modern(&f, Some("tools/list"), None, &modern_body(2, "tools/list", json!({}))).await;
    assert_eq!(reply.status, 200);
    let result = &reply.json().unwrap()["result"];
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["cacheScope"], "private");
    assert!(result["ttlMs"].as_u64().unwrap() > 0);
    assert_eq!(result["tools"].as_array().unwrap().len(), 2);
    let cursor = result["nextCursor"].as_str().unwrap().to_owned();
    let next = post_modern(&f, Some("tools/list"), None, &modern_body(3, "tools/list", json!({"cursor": cursor}))).await;
    assert_eq!(next.json().unwrap()["result"]["tools"].as_array().unwrap().len(), 1);

    let body = modern_body(4, "tools/call", json!({"name": "telegram_echo0", "arguments": {"text": "hi"}}));
    let reply = post_modern(&f, Some("tools/call"), Some("telegram_echo0"), &body).await;
    assert_eq!(reply.status, 200);
    let result = &reply.json().unwrap()["result"];
    assert_eq!((result["resultType"].as_str(), result["isError"].as_bool()), (Some("complete"), Some(false)), "{result}");
    assert_eq!(result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "squaremcp");
    // A tool failure keeps its own `_meta` beside the server's.
    let body = modern_body(5, "tools/call", json!({"name": "telegram_echo0", "arguments": {"text": "x", "fail": true}}));
    let result = post_modern(&f, Some("tools/call"), Some("telegram_echo0"), &body).await.json().unwrap()["result"].clone();
    assert_eq!(result["isError"], true, "{result}");
    assert_eq!(result["_meta"]["squaremcp/error"]["kind"], "upstream_error", "{result}");
    assert_eq!(result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "squaremcp", "{result}");
}

#[tokio::test]
async fn header_body_mismatch_is_refused_with_400_and_header_mismatch() {
    let f = fixture(2, 10).await;
    let body = modern_body(7, "tools/call", json!({"name": "telegram_echo0", "arguments": {"text": "hi"}}));
    for (method, name) in [(Some("tools/list"), Some("telegram_echo0")), (Some("tools/call"), Some("telegram_echo1")), (None, Some("telegram_echo0")), (Some("tools/call"), None)] {
        let reply = post_modern(&f, method, name, &body).await;
        assert_eq!(reply.status, 400, "{method:?} {name:?}");
        assert_eq!(error_code(&reply), -32020);
        assert_eq!(reply.json().unwrap()["id"], 7);
    }
    // Nothing ran: the refused call left no record.
    assert!(f.store.calls.lock().unwrap().is_empty());
    // `_meta` names a version the header contradicts.
    let headers = RequestHeaders { protocol_version: Some("2025-11-25"), method: Some("tools/call"), name: Some("telegram_echo0") };
    let reply = f.server.handle_request(&f.alice, headers, body.to_string().as_bytes()).await;
    assert_eq!((reply.status, error_code(&reply)), (400, -32020));
}

#[tokio::test]
async fn an_unsupported_declared_version_lists_the_supported_ones() {
    let f = fixture(1, 10).await;
    let mut body = modern_body(8, "tools/list", json!({}));
    body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let headers = RequestHeaders { protocol_version: Some("2099-01-01"), method: Some("tools/list"), name: None };
    let reply = f.server.handle_request(&f.alice, headers, body.to_string().as_bytes()).await;
    assert_eq!(reply.status, 400);
    let error = &reply.json().unwrap()["error"];
    assert_eq!(error["code"], -32022);
    assert_eq!(error["data"]["requested"], "2099-01-01");
    assert_eq!(error["data"]["supported"][0], MODERN);
}

#[tokio::test]
async fn methods_of_the_old_revisions_are_404_in_2026_07_28() {
    let f = fixture(1, 10).await;
    for method in ["ping", "initialize", "resources/list"] {
        let reply = post_modern(&f, Some(method), None, &modern_body(9, method, json!({}))).await;
        assert_eq!((reply.status, error_code(&reply)), (404, METHOD_NOT_FOUND), "{method}");
    }
}

#[tokio::test]
async fn modern_requests_need_client_capabilities_and_no_batches() {
    let f = fixture(1, 10).await;
    let mut body = modern_body(10, "tools/list", json!({}));
    body["params"]["_meta"].as_object_mut().unwrap().remove("io.modelcontextprotocol/clientCapabilities");
    let reply = post_modern(&f, Some("tools/list"), None, &body).await;
    assert_eq!(error_code(&reply), INVALID_PARAMS);
    let batch = json!([modern_body(11, "tools/list", json!({}))]);
    let reply = post_modern(&f, Some("tools/list"), None, &batch).await;
    assert_eq!((reply.status, error_code(&reply)), (400, INVALID_REQUEST));
}

#[tokio::test]
async fn older_clients_are_unaffected_by_the_new_revision() {
    let f = fixture(1, 10).await;
    // initialize asking for 2026-07-28 (even under that header) is a legacy handshake: offer the newest legacy revision.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": MODERN, "capabilities": {}}});
    let reply = post(&f, Some(MODERN), init).await;
    assert_eq!(reply.json().unwrap()["result"]["protocolVersion"], LATEST_VERSION);
    // A 2025-11-25 tools/call without Mcp-* headers or `_meta`, and its result as before (no resultType).
    let reply = post(&f, Some("2025-11-25"), call(2, "telegram_echo0", json!({"text": "hi"}))).await;
    let result = &reply.json().unwrap()["result"];
    assert_eq!(result["isError"], false);
    assert!(result.get("resultType").is_none(), "{result}");
    let ping = post(&f, Some("2025-11-25"), json!({"jsonrpc": "2.0", "id": 3, "method": "ping"})).await;
    assert_eq!(ping.json().unwrap()["result"], json!({}));
}

// --- Metrics: every customer's call reaches the observer once, with bounded labels ---

/// What the observer kept of one call.
#[derive(Clone, Debug)]
struct Seen {
    tool: String,
    platform: Platform,
    plan: String,
    outcome: String,
    duration: std::time::Duration,
    upstream: std::time::Duration,
}

#[derive(Default)]
struct SeenCalls(Mutex<Vec<Seen>>);

impl crate::metrics::CallObserver for SeenCalls {
    fn observe(&self, call: &crate::metrics::CallObservation<'_>) {
        let seen = Seen {
            tool: call.tool.into(),
            platform: call.platform,
            plan: call.plan.into(),
            outcome: call.outcome.into(),
            duration: call.duration,
            upstream: call.upstream,
        };
        self.0.lock().unwrap().push(seen);
    }
}

#[tokio::test]
async fn the_observer_sees_each_customer_call_with_its_plan_outcome_and_upstream_time() {
    let f = fixture(1, 10).await;
    let seen = Arc::new(SeenCalls::default());
    let (store, clock) = f.gateway.store_and_clock();
    let registry = Arc::new(Registry::new(vec![Box::new(EchoPlatform(1))]));
    let gateway = Arc::new(
        Gateway::new(store, Arc::new(TestKeyring), clock, registry, Some(Secret::new("admin-secret".into()))).with_observer(seen.clone()),
    );
    gateway.call_tool(&f.alice, "telegram_echo0", Some(json!({"text": "hi"}))).await.unwrap().unwrap();
    gateway.call_tool(&f.alice, "telegram_echo0", Some(json!({"text": "hi", "fail": true}))).await.unwrap().unwrap_err();
    gateway.call_tool(&f.bob, "telegram_echo0", Some(json!({"text": 7}))).await.unwrap().unwrap_err();
    let admin = CallContext::new(Principal::Superadmin, AuthMethod::AdminKey);
    gateway.call_tool(&admin, "telegram_echo0", Some(json!({"text": "hi"}))).await.unwrap().unwrap_err();
    let seen = seen.0.lock().unwrap().clone();
    let labels: Vec<(&str, Platform, &str, &str)> =
        seen.iter().map(|s| (s.tool.as_str(), s.platform, s.plan.as_str(), s.outcome.as_str())).collect();
    assert_eq!(
        labels,
        [
            ("telegram_echo0", Platform::Telegram, "pro", "ok"),
            ("telegram_echo0", Platform::Telegram, "pro", "upstream_error"),
            ("telegram_echo0", Platform::Telegram, "pro", "invalid_input"),
        ],
        "customers' calls only, as their call records say"
    );
    for call in &seen {
        assert!(call.upstream <= call.duration, "{call:?}: the platform's time is part of the call's");
    }
    assert!(seen[0].upstream > std::time::Duration::ZERO, "a call that reached the platform's handler spent time there");
    assert_eq!(seen[2].upstream, std::time::Duration::ZERO, "refused before the platform: no upstream time");
}

#[tokio::test]
async fn a_call_whose_caller_goes_away_still_ends_with_its_record() {
    let f = fixture(1, 10).await;
    let body = call(1, "telegram_echo0", json!({"text": "hi", "sleep_ms": 300})).to_string();
    let request = f.server.handle(&f.alice, None, body.as_bytes());
    // The edge drops the request's future 100 ms in, as `serve` does when the client disconnects.
    assert!(tokio::time::timeout(std::time::Duration::from_millis(100), request).await.is_err(), "still running at 100 ms");
    assert!(f.store.calls.lock().unwrap().is_empty(), "not finished yet");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while f.store.calls.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let calls = f.store.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "the call ran to its end and was recorded");
    assert_eq!((calls[0].tool.as_str(), calls[0].outcome.as_str(), calls[0].counted), ("telegram_echo0", "ok", true));
}

#[tokio::test]
async fn a_call_past_its_deadline_is_stopped_recorded_and_explained() {
    let f = fixture_with_call_timeout(1, 10, std::time::Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let reply = post(&f, None, call(1, "telegram_echo0", json!({"text": "hi", "sleep_ms": 5_000}))).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "stopped at the deadline, not after the platform: {:?}", started.elapsed());
    let result = &reply.json().unwrap()["result"];
    assert_eq!(result["isError"], true);
    assert_eq!(result["_meta"]["squaremcp/error"]["kind"], "upstream_transient");
    let text = result["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("did not finish within the call's time limit (0.2 s)"), "{text}");
    let calls = f.store.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!((calls[0].outcome.as_str(), calls[0].counted), ("upstream_transient", false));
}

#[tokio::test]
async fn a_batch_holds_at_most_the_cap() {
    let f = fixture(1, 10).await;
    let pings = |n: usize| Value::Array((0..n).map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "ping"})).collect());
    let full = post(&f, None, pings(MAX_BATCH_MESSAGES)).await;
    assert_eq!(full.status, 200);
    assert_eq!(full.json().unwrap().as_array().map(Vec::len), Some(MAX_BATCH_MESSAGES));
    let over = post(&f, None, pings(MAX_BATCH_MESSAGES + 1)).await;
    assert_eq!((over.status, error_code(&over)), (400, INVALID_REQUEST));
    let message = over.json().unwrap()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains(&format!("at most {MAX_BATCH_MESSAGES} messages")), "{message}");
    assert!(f.store.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_calls_of_a_batch_run_side_by_side_and_answer_in_order() {
    let f = fixture(1, 10).await;
    let batch = Value::Array((0..4).map(|i| call(i, "telegram_echo0", json!({"text": format!("n{i}"), "sleep_ms": 300 - 50 * i}))).collect());
    let started = std::time::Instant::now();
    let reply = post(&f, None, batch).await;
    let elapsed = started.elapsed();
    assert!(elapsed < std::time::Duration::from_millis(700), "one call's time, not four: {elapsed:?}");
    let replies = reply.json().unwrap();
    let ids: Vec<i64> = replies.as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![0, 1, 2, 3]);
    assert_eq!(replies[2]["result"]["structuredContent"]["args"]["text"], "n2");
    assert_eq!(f.store.calls.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn repeated_invalid_calls_cost_one_record_per_window() {
    let f = fixture(1, 10).await;
    for i in 0..6 {
        let reply = post(&f, None, call(i, "telegram_echo0", json!({"text": 7}))).await;
        assert_eq!(reply.json().unwrap()["result"]["_meta"]["squaremcp/error"]["kind"], "invalid_input");
    }
    let first = f.store.calls.lock().unwrap().clone();
    assert_eq!(first.len(), 1, "the first invalid call is written at once, the repeats are held");
    assert_eq!((first[0].outcome.as_str(), first[0].calls), ("invalid_input", 1));
    tokio::time::sleep(crate::refusals::REFUSAL_WINDOW + std::time::Duration::from_millis(300)).await;
    let calls = f.store.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "the window's repeats as one record");
    assert_eq!((calls[1].outcome.as_str(), calls[1].calls, calls[1].counted), ("invalid_input", 5, false));
    let valid = post(&f, None, call(9, "telegram_echo0", json!({"text": "fine"}))).await;
    assert_eq!(valid.json().unwrap()["result"]["isError"], false);
    assert_eq!(f.store.calls.lock().unwrap().len(), 3, "a call that reaches the platform is written at once");
}

/// The text rendering prints exactly what the `Value` tree it replaced printed (same keys, same
/// order), with and without an output schema, on pages with and without a next cursor.
#[test]
fn rendered_tools_and_pages_print_as_their_json_values_would() {
    let mut props = Map::new();
    props.insert("text".into(), json!({"type": "string", "description": "Say \"hi\" \u{2014} or not"}));
    let plain = crate::ToolDefinition::new(Platform::Telegram, "echo", "Echo", "Echoes\nlines", props.clone(), &["text"]);
    let mut with_output = crate::ToolDefinition::new(Platform::Discord, "send", "Send", "Sends", props, &[])
        .with_annotations(crate::tool::Annotations::WRITE);
    with_output.output_schema = Some(json!({"type": "object", "properties": {"id": {"type": "string"}}}));
    let as_value = |def: &crate::ToolDefinition| {
        let mut tool = json!({
            "name": def.name, "title": def.title, "description": def.description, "inputSchema": def.input_schema,
            "annotations": {
                "title": def.title, "readOnlyHint": def.annotations.read_only, "destructiveHint": def.annotations.destructive,
                "idempotentHint": def.annotations.idempotent, "openWorldHint": def.annotations.open_world,
            },
        });
        if let Some(schema) = &def.output_schema {
            tool["outputSchema"] = schema.clone();
        }
        tool
    };
    for def in [&plain, &with_output] {
        assert_eq!(&*render_tool(def), as_value(def).to_string());
    }
    let rendered = [render_tool(&plain), render_tool(&with_output), render_tool(&plain)];
    let tools: Vec<&str> = rendered.iter().map(|t| &**t).collect();
    let values = [as_value(&plain), as_value(&with_output), as_value(&plain)];
    let pages = paginate(&tools, 2);
    assert_eq!(pages.len(), 2);
    assert_eq!(&*pages[0], json!({"tools": &values[..2], "nextCursor": cursor::encode(2)}).to_string());
    assert_eq!(&*pages[1], json!({"tools": &values[2..]}).to_string());
    assert_eq!(&*paginate(&[], 2)[0], r#"{"tools":[]}"#);
}

#[test]
fn a_successful_result_serialized_once_is_the_tree_it_replaced() {
    let structured = json!({"text": "Say \"hi\"\n\u{2014} <b>&</b> \\ \u{1f600}", "id": 42, "nested": {"ok": true, "list": [1, null]}});
    let text = structured.to_string();
    let expected = json!({"content": [{"type": "text", "text": text}], "structuredContent": structured, "isError": false});
    let legacy: Value = serde_json::from_str(&succeeded_call(&structured, "")).unwrap();
    assert_eq!(legacy, expected);

    let modern: Value = serde_json::from_str(&succeeded_call(&structured, r#""resultType":"complete","_meta":{"a":1},"#)).unwrap();
    let mut expected_modern = expected.clone();
    expected_modern["resultType"] = json!("complete");
    expected_modern["_meta"] = json!({"a": 1});
    assert_eq!(modern, expected_modern);
}
