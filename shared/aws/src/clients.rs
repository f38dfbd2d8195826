//! SDK clients, built once per process from the standard AWS environment (`AWS_REGION`,
//! `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`, credentials…), sharing one HTTP client and
//! so one connection pool.

use std::sync::{Arc, Mutex, PoisonError};

use aws_config::{BehaviorVersion, SdkConfig};
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
