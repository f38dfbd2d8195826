//! An endpoint that fails for the whole disable window is disabled, its customer is emailed,
//! queued events for it go to the dead-letter queue, a success in between resets the window,
//! and enabling it again starts afresh. A manual clock stands in for days passing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use squaremcp_core::{Clock, CustomerId, MailError, Mailer, OutgoingEmail, Store, Timestamp};
use squaremcp_embedded::{KeyFileKeyring, MemoryQueue, SqliteStore};
use squaremcp_platforms::kit::NetworkPolicy;
use squaremcp_webhooks::delivery::Processed;
use squaremcp_webhooks::transport::Response;
use squaremcp_webhooks::{Deliverer, Disabling, NewEndpoint, RetrySchedule, Transport};

const HOUR: i64 = 3600;

struct ManualClock(AtomicI64);

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix(self.0.load(Ordering::SeqCst))
    }
}

/// Answers `status` (settable) to every request.
struct Fixed(Mutex<u16>);

#[async_trait]
impl Transport for Fixed {
    async fn post(&self, _url: &str, _headers: &[(&str, String)], _body: &str) -> Response {
        let status = *self.0.lock().unwrap();
        let error =
            (!(200..300).contains(&status)).then(|| format!("the endpoint answered HTTP {status}"));
        Response {
            status: Some(status),
            latency_ms: 1,
            error,
        }
    }
}

#[derive(Default)]
struct Outbox(Mutex<Vec<OutgoingEmail>>);

#[async_trait]
impl Mailer for Outbox {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        self.0.lock().unwrap().push(email.clone());
        Ok(())
    }
}

struct Fixture {
    deliverer: Deliverer,
    clock: Arc<ManualClock>,
    transport: Arc<Fixed>,
    outbox: Arc<Outbox>,
    customer: CustomerId,
    endpoint: String,
}

async fn fixture() -> Fixture {
    let dir = std::env::temp_dir().join(format!(
        "squaremcp-disabling-{}",
        squaremcp_core::random::hex_id::<6>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join("db")).unwrap());
    let clock = Arc::new(ManualClock(AtomicI64::new(1_800_000_000)));
    let customer = squaremcp_core::Customer {
        id: CustomerId::generate(),
        email: squaremcp_core::Email::parse("ops@example.com").unwrap(),
        plan: squaremcp_core::PlanName::parse("free").unwrap(),
        password_hash: None,
        created_at: clock.now(),
    };
    store.insert_customer(&customer).await.unwrap();
    let transport = Arc::new(Fixed(Mutex::new(503)));
    let outbox = Arc::new(Outbox::default());
    let dead_letter = Arc::new(MemoryQueue::new());
    let deliverer = Deliverer {
        store,
        keyring: Arc::new(KeyFileKeyring::open_or_create(&dir.join("keyring.json")).unwrap()),
        clock: clock.clone(),
        network: NetworkPolicy::new(true),
        transport: transport.clone(),
        retry_queue: Arc::new(MemoryQueue::with_dead_letter(dead_letter.clone(), 4)),
        dead_letter_queue: dead_letter,
        schedule: RetrySchedule::parse("1").unwrap(),
        disabling: Disabling {
            after_seconds: 48 * HOUR,
            mailer: outbox.clone(),
        },
    };
    let new = NewEndpoint {
        url: "http://127.0.0.1:9/hook".to_owned(),
        events: Vec::new(),
    };
    let (endpoint, _) = deliverer.endpoints().add(&customer.id, new).await.unwrap();
    Fixture {
        deliverer,
        clock,
        transport,
        outbox,
        customer: customer.id,
        endpoint: endpoint.id,
    }
}

impl Fixture {
    /// Publishes an event and processes its first attempt; the retry is left in the queue.
    async fn attempt(&self, key: &str) -> Processed {
        self.deliverer
            .publish_event(&self.customer, "tool.call.failed", key, json!({"n": key}))
            .await
            .unwrap();
        let queue = &self.deliverer.retry_queue;
        // The retry of an earlier event may be waiting too: take this event's first attempt.
        loop {
            let messages = queue
                .receive(1, Duration::from_secs(3), Duration::from_secs(30))
                .await
                .unwrap();
            let message = messages.first().expect("a queued job");
            let is_first = message.body.contains("\"attempt\":1");
            let processed = if is_first {
                Some(self.deliverer.process(&message.body).await.unwrap())
            } else {
                None
            };
            queue.delete(&message.receipt).await.unwrap();
            if let Some(processed) = processed {
                return processed;
            }
        }
    }

    async fn endpoint(&self) -> squaremcp_webhooks::Endpoint {
        self.deliverer
            .endpoints()
            .list(&self.customer)
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.id == self.endpoint)
            .unwrap()
    }

    fn pass(&self, hours: i64) {
        self.clock.0.fetch_add(hours * HOUR, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn an_endpoint_failing_for_the_whole_window_is_disabled_and_its_customer_emailed() {
    let f = fixture().await;
    assert!(matches!(f.attempt("a").await, Processed::Retrying { .. }));
    let started = f
        .endpoint()
        .await
        .failing_since
        .expect("a failing run began");
    f.pass(47);
    f.attempt("b").await;
    let endpoint = f.endpoint().await;
    assert!(!endpoint.disabled, "47 hours is inside the 48-hour window");
    assert_eq!(
        endpoint.failing_since,
        Some(started),
        "the run is not restarted by later failures"
    );
    assert!(f.outbox.0.lock().unwrap().is_empty());

    f.pass(1);
    f.attempt("c").await;
    let endpoint = f.endpoint().await;
    assert!(
        endpoint.disabled && endpoint.disabled_at == Some(f.clock.now()),
        "{endpoint:?}"
    );
    let sent = f.outbox.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "told once");
    assert_eq!(sent[0].to, "ops@example.com");
    assert!(
        sent[0].subject.contains(&f.endpoint)
            && sent[0].text.contains("48 hours")
            && sent[0].text.contains("webhooks enable"),
        "{}",
        sent[0].text
    );
    assert!(!sent[0].text.contains("whsec_"), "no secret in the email");

    // A disabled endpoint is offered no new events, and a job still queued for it is dead-lettered.
    let queued = f
        .deliverer
        .publish_event(&f.customer, "tool.call.failed", "d", json!({}))
        .await
        .unwrap();
    assert_eq!(queued, 0);
    let waiting = f
        .deliverer
        .retry_queue
        .receive(1, Duration::from_secs(3), Duration::from_secs(30))
        .await
        .unwrap();
    let processed = f.deliverer.process(&waiting[0].body).await.unwrap();
    assert!(
        matches!(processed, Processed::DeadLettered { .. }),
        "{processed:?}"
    );
    f.pass(100);
    f.attempt_none_left().await;
    assert_eq!(f.outbox.0.lock().unwrap().len(), 1, "not told again");

    // Enabled again: a clean record, events flow.
    let enabled = f
        .deliverer
        .endpoints()
        .enable(&f.customer, &f.endpoint)
        .await
        .unwrap();
    assert!(!enabled.disabled && enabled.failing_since.is_none() && enabled.disabled_at.is_none());
    *f.transport.0.lock().unwrap() = 200;
    assert_eq!(f.attempt("e").await, Processed::Delivered);
}

#[tokio::test]
async fn a_success_inside_the_window_resets_it() {
    let f = fixture().await;
    f.attempt("a").await;
    f.pass(40);
    *f.transport.0.lock().unwrap() = 204;
    assert_eq!(f.attempt("b").await, Processed::Delivered);
    assert_eq!(f.endpoint().await.failing_since, None);
    *f.transport.0.lock().unwrap() = 500;
    f.attempt("c").await;
    f.pass(40);
    f.attempt("d").await;
    assert!(
        !f.endpoint().await.disabled,
        "80 hours of failures, but never 48 in a row"
    );
    assert!(f.outbox.0.lock().unwrap().is_empty());
}

impl Fixture {
    /// Drains the retry queue's due jobs (each dead-lettered, the endpoint being disabled).
    async fn attempt_none_left(&self) {
        let queue = &self.deliverer.retry_queue;
        for message in queue
            .receive(10, Duration::from_secs(2), Duration::from_secs(30))
            .await
            .unwrap()
        {
            self.deliverer.process(&message.body).await.unwrap();
            queue.delete(&message.receipt).await.unwrap();
        }
    }
}
