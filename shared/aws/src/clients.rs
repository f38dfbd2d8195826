//! SDK clients, built once per process from the standard AWS environment (`AWS_REGION`,
//! `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`, credentials…), sharing one HTTP client and
//! so one connection pool.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_smithy_http_client::ConnectorBuilder;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;

#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub kms: aws_sdk_kms::Client,
    pub sqs: aws_sdk_sqs::Client,
}

impl AwsClients {
    /// Reads the environment (and the shared config files); sends no request. Credentials are
    /// resolved lazily, on the first request.
    pub async fn from_env() -> Self {
        let config = with_timeouts(aws_config::defaults(BehaviorVersion::latest())).load().await;
        Self::new(&config)
    }

    /// Like [`AwsClients::from_env`], trusting exactly the DER certificates `roots` returns (the
    /// caller's one read of the system's roots) rather than reading them again. `roots` is
    /// called once, when the first request needs a TLS connector, so a process that answers
    /// without AWS (a cold start's `tools/list` for the admin key) never pays for them here.
    /// With no roots, the SDK reads the system's itself.
    pub async fn from_env_trusting<C: AsRef<[u8]> + Sync + 'static>(roots: fn() -> &'static [C]) -> Self {
        let mut loader = with_timeouts(aws_config::defaults(BehaviorVersion::latest()));
        loader = loader.http_client(https_client_trusting(roots));
        // Keys in the environment (always, on Lambda) are what the default chain would pick first;
        // naming that provider spares building the rest of the chain (profile files, web identity
        // with its STS client, ECS, IMDS) at every start.
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() && std::env::var_os("AWS_SECRET_ACCESS_KEY").is_some() {
            loader = loader.credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new());
        }
        Self::new(&loader.load().await)
    }

    pub fn new(config: &SdkConfig) -> Self {
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            kms: aws_sdk_kms::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
        }
    }

    /// The same clients, with every DynamoDB request also counted by `counter` (round-trip
    /// budgets in tests, diagnostics).
    #[must_use]
    pub fn counting_dynamodb_requests(mut self, counter: &RequestCounter) -> Self {
        let config = self.dynamodb.config().to_builder().interceptor(counter.clone()).build();
        self.dynamodb = aws_sdk_dynamodb::Client::from_conf(config);
        self
    }
}

/// Connecting to an AWS endpoint (TLS included); the SDK's default, made explicit.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// One attempt of a request: DynamoDB, KMS and SQS answer in milliseconds, so an attempt that
/// takes seconds is stuck (a dead connection, a throttled partition) and a fresh one does better.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// A request with all its retries. Inside the shortest function timeout (the webhooks Lambda's
/// 10 s; the API functions have 29 s), so that a stalled AWS call fails as an error the function
/// answers and logs, not as a Lambda timeout that loses the request's metering and call record.
/// Requests that wait on purpose (an SQS long poll) set their own (see `SqsQueue::receive`).
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(8);

/// The timeouts above on every client built from `loader` (DynamoDB, KMS, SQS, STS, S3): the
/// SDK's defaults have no attempt or operation timeout at all.
pub fn with_timeouts(loader: aws_config::ConfigLoader) -> aws_config::ConfigLoader {
    loader.timeout_config(
        TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .operation_timeout(OPERATION_TIMEOUT)
            .build(),
    )
}

/// Records the operation of every request a client transmits (retries included).
#[derive(Clone, Debug, Default)]
pub struct RequestCounter {
    operations: Arc<Mutex<Vec<String>>>,
    /// When set, every request also asks DynamoDB for the capacity it consumed.
    capacity: Option<Arc<Mutex<Vec<Consumed>>>>,
}

/// What one DynamoDB request consumed, as DynamoDB itself reported it (`ReturnConsumedCapacity`).
#[derive(Clone, Debug, PartialEq)]
pub struct Consumed {
    pub operation: String,
    pub capacity_units: f64,
    /// A read (`GetItem`, `Query`, …: read request units) or a write (write request units).
    pub read: bool,
    /// For a `TransactWriteItems`, its units by AWS's documented rule, from the sizes of the
    /// items sent: 2 per started KB of each item. DynamoDB Local reports less for transactions
    /// of several small items (2 for a Put and an Update, where DynamoDB charges 4).
    pub transaction_units_by_rule: Option<f64>,
}

/// The transaction units of a request, kept between sending it and reading its answer.
#[derive(Clone, Debug)]
struct RuleUnits(f64);

impl aws_smithy_types::config_bag::Storable for RuleUnits {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

/// A `TransactWriteItems` body's write units by AWS's rule: each item written costs 2 per KB
/// (rounded up) of the item; an `Update` is sized by its key and the values it sets (a counter),
/// a `ConditionCheck` as a read-only check (2 units per KB of its key, as AWS bills it).
fn transaction_units(body: &serde_json::Value) -> f64 {
    let items = body["TransactItems"].as_array().map(Vec::as_slice).unwrap_or_default();
    items
        .iter()
        .map(|item| {
            let bytes = if let Some(put) = item.get("Put") {
                item_size(&put["Item"])
            } else if let Some(update) = item.get("Update") {
                let names = update["ExpressionAttributeNames"].as_object().map(|n| n.values().filter_map(|v| v.as_str()).map(str::len).sum()).unwrap_or(0);
                item_size(&update["Key"]) + names + attribute_values_size(&update["ExpressionAttributeValues"])
            } else {
                ["Delete", "ConditionCheck"].iter().find_map(|kind| item.get(*kind)).map_or(0, |op| item_size(&op["Key"]))
            };
            2.0 * (bytes.max(1) as f64 / 1024.0).ceil()
        })
        .sum()
}

/// An item's size as DynamoDB counts it: each attribute's name plus its value.
pub(crate) fn item_size(item: &serde_json::Value) -> usize {
    item.as_object().map_or(0, |attributes| attributes.iter().map(|(name, value)| name.len() + value_size(value)).sum())
}

fn attribute_values_size(values: &serde_json::Value) -> usize {
    values.as_object().map_or(0, |values| values.values().map(value_size).sum())
}

/// One typed value (`{"S": …}`, `{"N": …}`, …) by DynamoDB's item-size rules.
fn value_size(value: &serde_json::Value) -> usize {
    let Some((kind, inner)) = value.as_object().and_then(|v| v.iter().next()) else { return 0 };
    let text = |v: &serde_json::Value| v.as_str().map_or(0, str::len);
    let binary = |v: &serde_json::Value| v.as_str().map_or(0, |b| b.len() / 4 * 3 - b.bytes().rev().take_while(|c| *c == b'=').count());
    // A number: one byte per two significant digits, plus one.
    let number = |v: &serde_json::Value| {
        let digits = v.as_str().unwrap_or("0").trim_start_matches('-').replace('.', "");
        digits.trim_matches('0').len().max(1).div_ceil(2) + 1
    };
    let each = |v: &serde_json::Value, size: &dyn Fn(&serde_json::Value) -> usize| v.as_array().map_or(0, |a| a.iter().map(size).sum());
    match kind.as_str() {
        "S" => text(inner),
        "N" => number(inner),
        "B" => binary(inner),
        "BOOL" | "NULL" => 1,
        "SS" => each(inner, &text),
        "NS" => each(inner, &number),
        "BS" => each(inner, &binary),
        "L" => 3 + inner.as_array().map_or(0, |a| a.iter().map(|v| 1 + value_size(v)).sum()),
        "M" => 3 + inner.as_object().map_or(0, |m| m.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum()),
        _ => 0,
    }
}

impl RequestCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// A counter that also adds `ReturnConsumedCapacity: TOTAL` to every request and keeps the
    /// units each one consumed, for the cost model (`take_consumed`). Tests and benchmarks only:
    /// it rewrites request bodies.
    pub fn measuring_capacity() -> Self {
        Self { capacity: Some(Arc::default()), ..Self::default() }
    }

    /// The operations sent since the last call (e.g. `["GetItem", "Query"]`), and resets.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.operations.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The capacity consumed by each request answered since the last call, and resets (empty
    /// unless built with [`RequestCounter::measuring_capacity`]).
    pub fn take_consumed(&self) -> Vec<Consumed> {
        self.capacity.as_ref().map(|c| std::mem::take(&mut *c.lock().unwrap_or_else(PoisonError::into_inner))).unwrap_or_default()
    }
}

/// DynamoDB's JSON protocol names the operation in `X-Amz-Target: DynamoDB_20120810.GetItem`.
fn operation_of(headers: &aws_smithy_runtime_api::http::Headers) -> String {
    let target = headers.get("x-amz-target").unwrap_or("unknown");
    target.rsplit('.').next().unwrap_or(target).to_owned()
}

/// The units in a response's `ConsumedCapacity`: one object, or one per table (transactions).
fn capacity_units(body: &[u8]) -> f64 {
    let Ok(response) = serde_json::from_slice::<serde_json::Value>(body) else { return 0.0 };
    let units = |c: &serde_json::Value| c["CapacityUnits"].as_f64().unwrap_or(0.0);
    match &response["ConsumedCapacity"] {
        serde_json::Value::Array(tables) => tables.iter().map(units).sum(),
        one => units(one),
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = operation_of(context.request().headers());
        self.operations.lock().unwrap_or_else(PoisonError::into_inner).push(operation);
        Ok(())
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.capacity.is_none() {
            return Ok(());
        }
        let request = context.request_mut();
        let Some(mut body) = request.body().bytes().and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok()) else { return Ok(()) };
        let Some(fields) = body.as_object_mut() else { return Ok(()) };
        fields.insert("ReturnConsumedCapacity".to_owned(), "TOTAL".into());
        if operation_of(request.headers()) == "TransactWriteItems" {
            cfg.interceptor_state().store_put(RuleUnits(transaction_units(&body)));
        }
        let bytes = serde_json::to_vec(&body)?;
        request.headers_mut().insert("content-length", bytes.len().to_string());
        *request.body_mut() = bytes.into();
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(capacity) = &self.capacity else { return Ok(()) };
        let operation = cfg.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>().map_or("unknown", |m| m.name()).to_owned();
        let units = context.response().body().bytes().map_or(0.0, capacity_units);
        let read = matches!(operation.as_str(), "GetItem" | "Query" | "Scan" | "BatchGetItem" | "TransactGetItems");
        let transaction_units_by_rule = cfg.load::<RuleUnits>().map(|r| r.0);
        capacity.lock().unwrap_or_else(PoisonError::into_inner).push(Consumed { operation, capacity_units: units, read, transaction_units_by_rule });
        Ok(())
    }
}

/// The SDK's default HTTPS client (rustls on aws-lc, proxies from the environment), with its
/// trust store given rather than read from the system.
///
/// Every SDK client built on the default client builds a TLS connector at construction only to
/// throw it away (aws-smithy-http-client `validate_base_client_config`: "so that native certs
/// load at client initialization time"), parsing every root each time: four times at start
/// (STS, DynamoDB, KMS, SQS). That call is the one without connector settings; it gets a plain
/// connector here, and the TLS connector is built once, on the first request, and then cached
/// by the SDK for every client sharing this HTTP client.
fn https_client_trusting<C: AsRef<[u8]> + Sync + 'static>(roots: fn() -> &'static [C]) -> SharedHttpClient {
    let context = std::sync::Arc::new(std::sync::OnceLock::new());
    let context_from_roots = move || {
        let roots = roots();
        if roots.is_empty() {
            return TlsContext::default();
        }
        let trust = TrustStore::empty().with_native_roots(false).with_pem_certificate(pem_bundle(roots));
        // Building a context cannot fail today; if it ever does, the default reads the system's roots.
        TlsContext::builder().with_trust_store(trust).build().unwrap_or_default()
    };
    // What the SDK's own default client does (aws-smithy-runtime `default_https_client`), plus the context.
    aws_smithy_http_client::Builder::new().build_with_connector_fn(move |settings, components| {
        let Some(settings) = settings else {
            // The discarded validation connector: requests always pass their settings.
            return ConnectorBuilder::default().build_http();
        };
        let mut builder = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc));
        builder.set_tls_context(context.get_or_init(context_from_roots).clone());
        builder.set_connector_settings(Some(settings.clone()));
        if let Some(components) = components {
            builder.set_sleep_impl(components.sleep_impl());
        }
        builder.set_proxy_config(Some(ProxyConfig::from_env()));
        builder.build()
    })
}

/// DER certificates as one PEM bundle, the only form the SDK's trust store takes.
fn pem_bundle<C: AsRef<[u8]>>(roots: &[C]) -> Vec<u8> {
    let mut pem = String::new();
    for der in roots {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let encoded = STANDARD.encode(der.as_ref());
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pem_bundle_holds_every_certificate_in_64_column_lines() {
        let roots = [vec![0u8; 100], vec![1u8; 10]];
        let pem = String::from_utf8(pem_bundle(&roots)).unwrap_or_default();
        assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----").count(), 2);
        assert!(pem.lines().all(|line| line.len() <= 64), "{pem}");
        let first: String = pem.lines().skip(1).take_while(|l| !l.starts_with("-----")).collect();
        assert_eq!(STANDARD.decode(first).unwrap_or_default(), roots[0]);
    }

    #[test]
    fn item_sizes_follow_dynamodbs_rules() {
        // Names count; strings by UTF-8 bytes, numbers by significant digits, binary decoded.
        assert_eq!(item_size(&serde_json::json!({"pk": {"S": "ab"}, "é": {"S": "ü"}})), 2 + 2 + 2 + 2);
        assert_eq!(item_size(&serde_json::json!({"n": {"N": "12345"}, "z": {"N": "1000"}})), 1 + 4 + 1 + 2);
        assert_eq!(item_size(&serde_json::json!({"b": {"B": "AAECAw=="}, "t": {"BOOL": true}})), 1 + 4 + 1 + 1);
        assert_eq!(item_size(&serde_json::json!({"m": {"M": {"k": {"S": "v"}}}, "l": {"L": [{"N": "1"}]}})), 1 + (3 + 1 + 1 + 1) + 1 + (3 + 1 + 2));
    }

    #[test]
    fn a_transaction_costs_two_units_per_started_kilobyte_of_each_item() {
        let big = "x".repeat(1500);
        let body = serde_json::json!({"TransactItems": [
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}, "x": {"S": big}}}},
            {"Update": {"TableName": "t", "Key": {"pk": {"S": "c"}}, "UpdateExpression": "ADD #value :delta",
                        "ExpressionAttributeNames": {"#value": "value"}, "ExpressionAttributeValues": {":delta": {"N": "1"}}}},
        ]});
        assert_eq!(transaction_units(&body), 2.0 * 2.0 + 2.0);
        assert_eq!(transaction_units(&serde_json::json!({})), 0.0);
    }
}
