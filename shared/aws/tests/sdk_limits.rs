//! What the SDK may do on its own: no retry of a counter's `ADD` whose answer was lost (it may
//! have been applied), and no AWS call that outlives the functions' timeouts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_runtime_api::http::StatusCode;
use squaremcp_aws::DynamoStore;
use squaremcp_core::{Store, StoreError};

/// Replaces DynamoDB's answer to the first `failures` `UpdateItem` requests with a 500, after
/// DynamoDB applied them: what a lost answer looks like to the SDK.
#[derive(Debug)]
struct LoseAnswers {
    failures: usize,
    lost: Arc<AtomicUsize>,
}

impl Intercept for LoseAnswers {
    fn name(&self) -> &'static str {
        "LoseAnswers"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.lost.fetch_add(1, Ordering::SeqCst) < self.failures {
            *context.response_mut().status_mut() =
                StatusCode::try_from(500).expect("a status code");
            *context.response_mut().body_mut() =
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError"}"#.into();
        }
        Ok(())
    }
}

/// A store whose first `failures` answers are lost, and the plain store on the same table.
async fn stores_losing_answers(failures: usize) -> (DynamoStore, DynamoStore, Arc<AtomicUsize>) {
    let clients = common::clients().await;
    let table = common::fresh_table(&clients).await;
    let lost = Arc::new(AtomicUsize::new(0));
    let config = clients
        .dynamodb
        .config()
        .to_builder()
        .interceptor(LoseAnswers {
            failures,
            lost: Arc::clone(&lost),
        })
        .build();
    let losing = DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(config), table.clone());
    (losing, DynamoStore::new(clients.dynamodb, table), lost)
}

#[tokio::test]
async fn an_add_whose_answer_is_lost_is_not_sent_again() {
    for limit in [Some(100), None] {
        let (losing, plain, requests) = stores_losing_answers(usize::MAX).await;
        let error = losing.add_to_counter("usage", 1, limit).await;
        assert!(
            matches!(error, Err(StoreError::Unavailable(_))),
            "{error:?}"
        );
        assert_eq!(
            requests.load(Ordering::SeqCst),
            1,
            "one request, no retry (limit {limit:?})"
        );
        // DynamoDB applied the one request; a retry would have made it 2 or 3.
        assert_eq!(plain.counter("usage").await.unwrap(), 1, "limit {limit:?}");
    }
}

#[tokio::test]
async fn a_subtraction_whose_answer_is_lost_is_not_sent_again() {
    let (losing, plain, requests) = stores_losing_answers(usize::MAX).await;
    plain.add_to_counter("usage", 5, None).await.unwrap();
    assert!(losing.subtract_from_counter("usage", 1).await.is_err());
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    assert_eq!(plain.counter("usage").await.unwrap(), 4);
}

#[tokio::test]
async fn counters_still_work_when_answers_arrive() {
    let (losing, _plain, _) = stores_losing_answers(0).await;
    assert_eq!(losing.add_to_counter("usage", 2, Some(3)).await.unwrap(), 2);
    assert!(matches!(
        losing.add_to_counter("usage", 2, Some(3)).await,
        Err(StoreError::LimitReached {
            current: 2,
            limit: 3
        })
    ));
    assert!(losing.subtract_from_counter("usage", 2).await.unwrap());
    assert_eq!(losing.counter("usage").await.unwrap(), 0);
}

/// An endpoint that accepts connections and never answers: a stalled AWS call.
async fn silent_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_call_to_an_endpoint_that_never_answers_fails_within_the_operation_timeout() {
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(silent_endpoint().await)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "test",
        ));
    let config = squaremcp_aws::with_timeouts(loader).load().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), "table");
    let started = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(30), store.counter("usage")).await;
    let waited = started.elapsed();
    assert!(
        matches!(answer, Ok(Err(StoreError::Unavailable(_)))),
        "{answer:?} after {waited:?}"
    );
    assert!(
        waited < squaremcp_aws::OPERATION_TIMEOUT + Duration::from_secs(2),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_long_poll_may_wait_longer_than_the_attempt_timeout() {
    use squaremcp_core::Queue as _;
    let clients = common::clients().await;
    let url = clients.sqs.create_queue().queue_name(common::unique("poll")).send().await.unwrap().queue_url.unwrap();
    let queue = squaremcp_aws::SqsQueue::new(clients.sqs, url);
    let wait = squaremcp_aws::ATTEMPT_TIMEOUT + Duration::from_secs(2);
    let started = Instant::now();
    let received = queue.receive(1, wait, Duration::from_secs(30)).await;
    assert!(matches!(&received, Ok(messages) if messages.is_empty()), "{received:?} after {:?}", started.elapsed());
}
