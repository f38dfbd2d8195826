//! SDK clients, built once per process from the standard AWS environment (`AWS_REGION`,
//! `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`, credentials…), sharing one HTTP client and
//! so one connection pool.

use std::sync::{Arc, Mutex, PoisonError};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_smithy_http_client::ConnectorBuilder;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
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
        let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
        Self::new(&config)
    }

    /// Like [`AwsClients::from_env`], trusting exactly `roots` (DER certificates the caller has
    /// already read) rather than reading the system's root certificates again. With no roots,
    /// the SDK reads them itself.
    pub async fn from_env_trusting<C: AsRef<[u8]>>(roots: &[C]) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if !roots.is_empty() {
            loader = loader.http_client(https_client_trusting(roots));
        }
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

/// Records the operation of every request a client transmits (retries included).
#[derive(Clone, Debug, Default)]
pub struct RequestCounter {
    operations: Arc<Mutex<Vec<String>>>,
}

impl RequestCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// The operations sent since the last call (e.g. `["GetItem", "Query"]`), and resets.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.operations.lock().unwrap_or_else(PoisonError::into_inner))
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
        // DynamoDB's JSON protocol names the operation in `X-Amz-Target: DynamoDB_20120810.GetItem`.
        let target = context.request().headers().get("x-amz-target").unwrap_or("unknown");
        let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
        self.operations.lock().unwrap_or_else(PoisonError::into_inner).push(operation);
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
fn https_client_trusting<C: AsRef<[u8]>>(roots: &[C]) -> SharedHttpClient {
    let trust = TrustStore::empty().with_native_roots(false).with_pem_certificate(pem_bundle(roots));
    // Building a context cannot fail today; if it ever does, the default reads the system's roots.
    let context = TlsContext::builder().with_trust_store(trust).build().unwrap_or_default();
    // What the SDK's own default client does (aws-smithy-runtime `default_https_client`), plus the context.
    aws_smithy_http_client::Builder::new().build_with_connector_fn(move |settings, components| {
        let Some(settings) = settings else {
            // The discarded validation connector: requests always pass their settings.
            return ConnectorBuilder::default().build_http();
        };
        let mut builder = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc));
        builder.set_tls_context(context.clone());
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
}
