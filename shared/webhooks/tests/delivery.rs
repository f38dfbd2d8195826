//! The delivery domain on the embedded store, keyring and queues, with a scripted transport:
//! first attempt, retries on the schedule, the dead-letter queue and record, replay, secret
//! rotation, the SSRF guard.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use squaremcp_core::{Clock, CustomerId, Queue, SystemClock};
use squaremcp_embedded::{KeyFileKeyring, MemoryQueue, SqliteStore};
use squaremcp_platforms::kit::NetworkPolicy;
use squaremcp_webhooks::delivery::Processed;
use squaremcp_webhooks::signing::WebhookSecret;
use squaremcp_webhooks::transport::Response;
use squaremcp_webhooks::{Deliverer, Disabling, EndpointError, NewEndpoint, RetrySchedule, Transport};

/// Answers with the next scripted status (the last one repeats) and keeps what it was sent.
/// A request's headers and body.
type Seen = (Vec<(String, String)>, String);

#[derive(Default)]
struct Scripted {
    statuses: Mutex<Vec<u16>>,
    seen: Mutex<Vec<Seen>>,
    /// How long each request takes to be answered (none by default).
    answer_after: Mutex<Duration>,
}

#[async_trait]
impl Transport for Scripted {
    async fn post(&self, _url: &str, headers: &[(&str, String)], body: &str) -> Response {
        let answer_after = *self.answer_after.lock().unwrap();
        if !answer_after.is_zero() {
            tokio::time::sleep(answer_after).await;
        }
        self.seen.lock().unwrap().push((headers.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(), body.to_owned()));
        let mut statuses = self.statuses.lock().unwrap();
        let status = if statuses.len() > 1 { statuses.remove(0) } else { statuses.first().copied().unwrap_or(200) };
        let error = (!(200..300).contains(&status)).then(|| format!("the endpoint answered HTTP {status}"));
        Response { status: Some(status), latency_ms: 1, error }
    }
}

struct Fixture {
    deliverer: Arc<Deliverer>,
    transport: Arc<Scripted>,
    dead_letter: Arc<MemoryQueue>,
    _dir: std::path::PathBuf,
}

fn fixture(schedule: &str, statuses: &[u16]) -> Fixture {
    let dir = std::env::temp_dir().join(format!("squaremcp-webhooks-{}", squaremcp_core::random::hex_id::<6>()));
    std::fs::create_dir_all(&dir).unwrap();
    let transport = Arc::new(Scripted { statuses: Mutex::new(statuses.to_vec()), ..Scripted::default() });
    let dead_letter = Arc::new(MemoryQueue::new());
    let retry = Arc::new(MemoryQueue::with_dead_letter(dead_letter.clone(), 4));
    let deliverer = Arc::new(Deliverer {
        store: Arc::new(SqliteStore::open(&dir.join("db")).unwrap()),
        keyring: Arc::new(KeyFileKeyring::open_or_create(&dir.join("keyring.json")).unwrap()),
        clock: Arc::new(SystemClock),
        network: NetworkPolicy::new(true),
        transport: transport.clone(),
        retry_queue: retry,
        dead_letter_queue: dead_letter.clone(),
        schedule: RetrySchedule::parse(schedule).unwrap(),
        disabling: Disabling::default(),
    });
    Fixture { deliverer, transport, dead_letter, _dir: dir }
}

/// Receives one job from the retry queue (waiting for its delay) and processes it.
async fn step(deliverer: &Deliverer) -> Option<Processed> {
    let messages = deliverer.retry_queue.receive(1, Duration::from_secs(3), Duration::from_secs(30)).await.unwrap();
    let message = messages.first()?;
    let processed = deliverer.process(&message.body).await.unwrap();
    deliverer.retry_queue.delete(&message.receipt).await.unwrap();
    Some(processed)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap()
}

#[tokio::test]
async fn an_event_is_signed_delivered_at_once_and_recorded() {
    let f = fixture("0", &[200]);
    let customer = CustomerId::generate();
    let (endpoint, secret) = f
        .deliverer
        .endpoints()
        .add(&customer, NewEndpoint { url: "http://127.0.0.1:9/hook".into(), events: vec!["whatsapp.message.received".into()] })
        .await
        .unwrap();
    assert!(secret.expose().starts_with("whsec_"));
    // Not subscribed: nothing queued.
    assert_eq!(f.deliverer.publish_event(&customer, "telegram.update", "1", json!({})).await.unwrap(), 0);
    assert_eq!(f.deliverer.publish_event(&customer, "whatsapp.message.received", "wamid.1", json!({"text": "hi"})).await.unwrap(), 1);
    assert_eq!(step(&f.deliverer).await, Some(Processed::Delivered));
    let seen = f.transport.seen.lock().unwrap().clone();
    let (headers, body) = &seen[0];
    let (id, timestamp) = (header(headers, "webhook-id"), header(headers, "webhook-timestamp").parse::<i64>().unwrap());
    assert_eq!(header(headers, "webhook-signature"), secret.sign(id, timestamp, body.as_bytes()));
    assert!((timestamp - SystemClock.now().unix()).abs() < 5);
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!((body["type"].as_str(), &body["data"]), (Some("whatsapp.message.received"), &json!({"text": "hi"})));
    // The same occurrence is the same event id.
    let again = squaremcp_webhooks::delivery::Event::new(&customer, "whatsapp.message.received", "wamid.1", json!({}), SystemClock.now());
    assert_eq!(again.id, id);
    let attempts = f.deliverer.attempts(&customer, 10).await.unwrap();
    assert_eq!((attempts.len(), attempts[0].delivered, attempts[0].status, attempts[0].endpoint.as_str()), (1, true, Some(200), endpoint.id.as_str()));
}

#[tokio::test]
async fn a_receiver_down_for_every_attempt_leaves_the_event_in_the_dead_letter_queue_and_replay_delivers_it_once() {
    let f = fixture("0,1", &[503, 500, 502, 200]);
    let customer = CustomerId::generate();
    f.deliverer.endpoints().add(&customer, NewEndpoint { url: "http://127.0.0.1:9/hook".into(), events: vec![] }).await.unwrap();
    f.deliverer.publish_event(&customer, "tool.call.failed", "call-1", json!({"tool": "x"})).await.unwrap();
    assert_eq!(step(&f.deliverer).await, Some(Processed::Retrying { next_attempt: 2, in_seconds: 0 }));
    assert_eq!(step(&f.deliverer).await, Some(Processed::Retrying { next_attempt: 3, in_seconds: 1 }));
    let Some(Processed::DeadLettered { id }) = step(&f.deliverer).await else { panic!("not dead-lettered") };
    assert_eq!(step(&f.deliverer).await, None, "nothing left to retry");
    // In the dead-letter queue, whole…
    let dead = f.dead_letter.receive(10, Duration::ZERO, Duration::from_secs(30)).await.unwrap();
    assert_eq!(dead.len(), 1);
    let job: squaremcp_webhooks::Job = serde_json::from_str(&dead[0].body).unwrap();
    assert_eq!((job.attempt, job.event.data.clone()), (3, json!({"tool": "x"})));
    // …and listed.
    let letters = f.deliverer.dead_letters(&customer, 10).await.unwrap();
    assert_eq!((letters.len(), letters[0].id.as_str(), letters[0].attempts), (1, id.as_str(), 3));
    assert_eq!(letters[0].job.event.id, job.event.id);
    let attempts = f.deliverer.attempts(&customer, 10).await.unwrap();
    assert_eq!(attempts.iter().map(|a| a.status).collect::<Vec<_>>(), [Some(502), Some(500), Some(503)]);
    // Replay: one attempt, delivered, then gone from the list; a second replay finds nothing.
    let replayed = f.deliverer.replay(&customer, &id).await.unwrap();
    assert!(replayed.delivered && replayed.event_id == job.event.id);
    assert!(f.deliverer.dead_letters(&customer, 10).await.unwrap().is_empty());
    assert!(f.deliverer.replay(&customer, &id).await.is_err());
    let seen = f.transport.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|(h, _)| header(h, "webhook-id") == job.event.id));
    // Another customer cannot see or replay it.
    assert!(f.deliverer.dead_letters(&CustomerId::generate(), 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_rotation_signs_with_both_secrets_until_the_overlap_ends() {
    let f = fixture("0", &[200]);
    let customer = CustomerId::generate();
    let endpoints = f.deliverer.endpoints();
    let (endpoint, old) = endpoints.add(&customer, NewEndpoint { url: "http://127.0.0.1:9/".into(), events: vec![] }).await.unwrap();
    let (rotated, new) = endpoints.rotate_secret(&customer, &endpoint.id).await.unwrap();
    assert_eq!(rotated.valid_secrets(SystemClock.now()), 2);
    f.deliverer.publish_event(&customer, "invoice.created", "inv-1", json!({})).await.unwrap();
    step(&f.deliverer).await;
    let seen = f.transport.seen.lock().unwrap().clone();
    let (headers, body) = &seen[0];
    let (id, ts) = (header(headers, "webhook-id"), header(headers, "webhook-timestamp").parse().unwrap());
    assert_eq!(header(headers, "webhook-signature"), format!("{} {}", new.sign(id, ts, body.as_bytes()), old.sign(id, ts, body.as_bytes())));
    // A second rotation: the newest two only.
    let (twice, _) = endpoints.rotate_secret(&customer, &endpoint.id).await.unwrap();
    assert_eq!(twice.valid_secrets(SystemClock.now()), 2);
    // No secret in what is stored or listed.
    let listed = format!("{:?}", endpoints.list(&customer).await.unwrap());
    assert!(!listed.contains(old.expose()) && !listed.contains(new.expose()));
    endpoints.remove(&customer, &endpoint.id).await.unwrap();
    assert!(matches!(endpoints.remove(&customer, &endpoint.id).await, Err(EndpointError::NotFound(_))));
}

#[tokio::test]
async fn private_and_malformed_urls_and_unknown_events_are_refused() {
    let f = fixture("0", &[200]);
    let guarded = Deliverer { network: NetworkPolicy::new(false), ..clone_deliverer(&f.deliverer) };
    let customer = CustomerId::generate();
    for url in ["http://127.0.0.1/hook", "http://169.254.169.254/latest", "http://10.0.0.1/", "http://[::1]/", "http://192.168.1.1/"] {
        let refused = guarded.endpoints().add(&customer, NewEndpoint { url: url.into(), events: vec![] }).await;
        assert!(matches!(refused, Err(EndpointError::Forbidden(_))), "{url}");
    }
    for url in ["ftp://example.com/", "not a url", "http://user:pw@example.com/"] {
        let refused = guarded.endpoints().add(&customer, NewEndpoint { url: url.into(), events: vec![] }).await;
        assert!(matches!(refused, Err(EndpointError::InvalidUrl(_))), "{url}");
    }
    let unknown = f.deliverer.endpoints().add(&customer, NewEndpoint { url: "http://127.0.0.1/".into(), events: vec!["nope".into()] }).await;
    assert!(matches!(unknown, Err(EndpointError::UnknownEvent(_))));
    assert!(WebhookSecret::parse("whsec_").is_err());
}

#[test]
fn the_schedule_parses_and_names_the_delays_between_attempts() {
    let schedule = RetrySchedule::default();
    assert_eq!(schedule.delays(), [5, 300, 1800, 7200, 18_000, 36_000]);
    assert_eq!((schedule.delay_after(1), schedule.delay_after(6), schedule.delay_after(7), schedule.attempts()), (Some(5), Some(36_000), None, 7));
    assert_eq!(RetrySchedule::parse(" 1, 2 ").unwrap().delays(), [1, 2]);
    for bad in ["", "a", "1,,2", "-1", "999999999"] {
        assert!(RetrySchedule::parse(bad).is_err(), "{bad}");
    }
}

fn clone_deliverer(d: &Deliverer) -> Deliverer {
    Deliverer {
        store: d.store.clone(),
        keyring: d.keyring.clone(),
        clock: d.clock.clone(),
        network: d.network.clone(),
        transport: d.transport.clone(),
        retry_queue: d.retry_queue.clone(),
        dead_letter_queue: d.dead_letter_queue.clone(),
        schedule: d.schedule.clone(),
        disabling: d.disabling.clone(),
    }
}

/// A queue may hand out a message more than once (SQS standard queues do): a copy of a job
/// whose attempt was made is dropped, and a copy that arrives while another worker holds the
/// attempt comes back later instead of sending the event a second time.
#[tokio::test]
async fn copies_of_a_delivery_job_do_not_send_the_event_twice() {
    let f = fixture("0", &[200]);
    let customer = CustomerId::generate();
    f.deliverer
        .endpoints()
        .add(&customer, NewEndpoint { url: "http://127.0.0.1:9/hook".into(), events: vec!["whatsapp.message.received".into()] })
        .await
        .unwrap();
    assert_eq!(f.deliverer.publish_event(&customer, "whatsapp.message.received", "wamid.copy", json!({})).await.unwrap(), 1);
    let messages = f.deliverer.retry_queue.receive(1, Duration::from_secs(3), Duration::from_secs(30)).await.unwrap();
    let body = messages[0].body.clone();
    // Two workers with the same message at once: one sends, the other is told to come back.
    // The send takes a while, so the second finds the attempt held whichever order the two
    // are polled in (without it, the first could finish before the second looks).
    *f.transport.answer_after.lock().unwrap() = Duration::from_millis(300);
    let (first, second) = tokio::join!(f.deliverer.process(&body), f.deliverer.process(&body));
    let mut outcomes = [first.unwrap(), second.unwrap()];
    outcomes.sort_by_key(|p| format!("{p:?}"));
    assert_eq!(outcomes, [Processed::Delivered, Processed::Postponed]);
    // A late copy of the finished job is dropped.
    assert_eq!(f.deliverer.process(&body).await.unwrap(), Processed::Dropped("duplicate"));
    assert_eq!(f.transport.seen.lock().unwrap().len(), 1, "sent once");
}
