//! The store round trips of one authenticated `tools/call` through the `mcp` Lambda, on
//! DynamoDB (DynamoDB Local) and KMS (moto): every DynamoDB request is counted by an SDK
//! interceptor. Warm, on a plan with overage: 3 (API key, credentials, the call record written
//! with its usage counter), 1 while the key and the credentials are in the function's caches (a
//! few seconds after they were last read). A cold start adds the keyring (once per process), the customer's plan
//! (cached for a minute) and the key's last use (once an hour per key and process). The counts
//! are printed (`cargo test -- --nocapture`).
//!
//! The same run measures what the cost model (`bench/cost`, docs/cost.md) needs of a warm call
//! whose key is read again (the worst case, as for a key whose calls are further apart than
//! the cache's lifetime):
//! the capacity units DynamoDB reports for its requests, the bytes of JSON log lines the
//! function writes, and the time one invocation takes. With `SQUAREMCP_COST_INPUTS=FILE` they are
//! written there as JSON.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::{Value, json};
use squaremcp_aws::{AwsClients, RequestCounter};
use squaremcp_core::{AccountName, Platform, random};
use squaremcp_core::metrics::{CallObservation, CallObserver};
use squaremcp_runtime::{Backends, Config, app_state, emf, gateway, lambda, observed_gateway};
use squaremcp_platform_mocks::Mock;
use squaremcp_platform_mocks::telegram::Telegram;

const TOKEN: &str = "333333333:AAHround_trip_token_abcdefghijklmnopq";

fn config(table: &str, telegram: &str) -> Config {
    let vars = BTreeMap::from([
        ("SQUAREMCP_STORE", "dynamodb".to_owned()),
        ("SQUAREMCP_TABLE", table.to_owned()),
        ("SQUAREMCP_KMS_KEY_ID", "alias/squaremcp-round-trips".to_owned()),
        ("SQUAREMCP_TELEGRAM_BASE_URL", telegram.to_owned()),
        ("SQUAREMCP_PUBLIC_URL", "https://mcp.example.com".to_owned()),
        ("SQUAREMCP_JWT_SECRET", "round-trips-jwt-secret-0123456789abcdef".to_owned()),
    ]);
    Config::from_lookup(|name| vars.get(name).cloned()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_authenticated_tools_call_costs_three_dynamodb_requests_one_with_its_key_and_credentials_cached() {
    let log_bytes = Arc::new(AtomicUsize::new(0));
    let counted = log_bytes.clone();
    squaremcp_runtime::init_json_logging_with("info", move || CountingWriter(counted.clone()));
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_default();
    assert!(endpoint.starts_with("http://127.0.0.1"), "run through scripts/test: AWS_ENDPOINT_URL_DYNAMODB must point at DynamoDB Local");
    let telegram = Mock::start(Telegram::accepting(&[TOKEN])).await;
    let table = format!("round-trips-{}", random::hex_id::<6>());
    let config = config(&table, telegram.base_url());
    squaremcp_runtime::initialize(&config, "round-trips-retry", "round-trips-dlq").await.unwrap();

    // The administrator's side: a customer, a key and Telegram credentials.
    let admin = gateway(&config, Backends::aws(&config, &AwsClients::from_env().await));
    let customer = admin.create_customer("ada@example.com", "pro", None).await.unwrap();
    let (_, key) = admin.create_api_key(&customer.id, "lambda").await.unwrap();
    admin
        .set_credential(&customer.id, Platform::Telegram, AccountName::default_account(), &json!({"bot_token": TOKEN}))
        .await
        .unwrap();

    // A cold start of the function: fresh clients, counted.
    let counter = RequestCounter::measuring_capacity();
    let clients = AwsClients::from_env().await.counting_dynamodb_requests(&counter);
    // As deployed: with the EMF metric line per call, whose bytes count with the log lines.
    let observer: Arc<dyn CallObserver> = Arc::new(EmfBytes(log_bytes.clone()));
    let function = observed_gateway(&config, Backends::aws(&config, &clients), None, Some(observer.clone()));
    let router = squaremcp_http::mcp_router(app_state(&config, function).unwrap());
    assert!(counter.take().is_empty(), "building the function's state sends no DynamoDB request");

    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/mcp/tools-call.json");
    let event = std::fs::read_to_string(sample).unwrap().replace("sample-admin-key", key.expose());
    let mut counts = Vec::new();
    // The same function's calls, then (for the worst case) a function that keeps no key.
    let uncached = {
        let config = Config { api_key_cache: std::time::Duration::ZERO, credential_cache: std::time::Duration::ZERO, ..config.clone() };
        let function = observed_gateway(&config, Backends::aws(&config, &clients), None, Some(observer));
        squaremcp_http::mcp_router(app_state(&config, function).unwrap())
    };
    for (call, router) in [("cold start", &router), ("warm, key and credentials cached", &router), ("warm-up", &uncached), ("warm", &uncached)] {
        let response = lambda::invoke(router.clone(), &event).await.unwrap();
        assert_eq!(response["statusCode"], 200, "{response}");
        let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["result"]["isError"], false, "{body}");
        assert_eq!(body["result"]["structuredContent"]["username"], "square_test_bot", "{body}");
        let requests = counter.take();
        println!("DynamoDB requests for one authenticated tools/call ({call}): {} {requests:?}", requests.len());
        counts.push(requests);
    }
    // Cold: the keyring, the customer's plan, and the key's last use (written at most once an
    // hour per key and process, for the account page).
    assert!(counts[0].len() <= 6, "cold start: {:?}", counts[0]);
    assert_eq!(
        counts[1],
        ["TransactWriteItems"],
        "warm, a second after the first call: only the call record with its usage counter (the key and the credentials are cached)"
    );
    assert_eq!(
        counts[3],
        ["GetItem", "Query", "TransactWriteItems"],
        "warm, the key read again: the API key by hash, the credentials, then the call record with its usage counter"
    );
    assert_eq!(telegram.requests().len(), 4, "every call reached the platform");

    // The cost model's inputs, over more warm calls, each reading its key.
    const CALLS: usize = 20;
    counter.take_consumed();
    log_bytes.store(0, Ordering::SeqCst);
    let mut invoke_ms = Vec::new();
    for _ in 0..CALLS {
        let started = Instant::now();
        let response = lambda::invoke(uncached.clone(), &event).await.unwrap();
        invoke_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(response["statusCode"], 200, "{response}");
    }
    invoke_ms.sort_by(f64::total_cmp);
    let consumed = counter.take_consumed();
    assert_eq!(consumed.len(), 3 * CALLS, "{consumed:?}");
    assert!(consumed.iter().all(|c| c.capacity_units > 0.0), "DynamoDB reports the capacity of every request: {consumed:?}");
    // What DynamoDB reported, except for transactions: DynamoDB Local reports less than AWS
    // bills for them, so their units follow AWS's rule from the sizes of the items sent.
    let billed = |c: &squaremcp_aws::Consumed| c.transaction_units_by_rule.map_or(c.capacity_units, |rule| rule.max(c.capacity_units));
    let per_call = |sum: f64| (sum / CALLS as f64 * 100.0).round() / 100.0;
    let units = |read: bool| per_call(consumed.iter().filter(|c| c.read == read).map(billed).sum::<f64>());
    let per_operation: BTreeMap<&str, f64> = consumed.iter().fold(BTreeMap::new(), |mut sums, c| {
        *sums.entry(c.operation.as_str()).or_default() += billed(c);
        sums
    });
    let per_operation: BTreeMap<&str, f64> = per_operation.into_iter().map(|(operation, sum)| (operation, per_call(sum))).collect();
    let reported_by_emulator = per_call(consumed.iter().filter(|c| !c.read).map(|c| c.capacity_units).sum::<f64>());
    let logged = log_bytes.load(Ordering::SeqCst) as f64 / CALLS as f64;
    assert!(logged > 0.0, "a tools/call writes at least its request log line");
    let inputs = json!({
        "calls": CALLS,
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
        "dynamodb_requests_per_call": consumed.len() / CALLS,
        "read_request_units_per_call": units(true),
        "write_request_units_per_call": units(false),
        "write_request_units_reported_by_dynamodb_local": reported_by_emulator,
        "capacity_units_per_operation": per_operation,
        "log_bytes_per_call": logged,
        "invoke_ms_median": invoke_ms[CALLS / 2],
        "invoke_ms_p90": invoke_ms[CALLS * 9 / 10],
    });
    println!("cost inputs of one warm tools/call: {inputs}");
    if let Some(path) = std::env::var_os("SQUAREMCP_COST_INPUTS") {
        std::fs::write(path, serde_json::to_vec_pretty(&inputs).unwrap()).unwrap();
    }
}

/// Counts the bytes of the EMF line the function writes to stdout for each call.
struct EmfBytes(Arc<AtomicUsize>);

impl CallObserver for EmfBytes {
    fn observe(&self, call: &CallObservation<'_>) {
        let line = emf::emf_line("SquareMCP", call, 1_780_000_000_000);
        self.0.fetch_add(line.to_string().len() + 1, Ordering::SeqCst);
    }
}

/// Counts the bytes of log lines instead of writing them anywhere.
struct CountingWriter(Arc<AtomicUsize>);

impl Write for CountingWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.fetch_add(bytes.len(), Ordering::SeqCst);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
