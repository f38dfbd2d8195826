//! The queue contract (SQS semantics), run against SQS (moto) and the in-process twin.
//!
//! The factory hands each test a fresh pair: a queue whose messages are redriven to its
//! dead-letter queue once they were received `max_receive_count` times without being deleted.
//! Timings use whole seconds, because SQS counts delays and visibility in seconds.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use squaremcp_core::{Queue, QueueError, QueuedMessage};

/// A fresh queue, its dead-letter queue, and the receive count after which messages move there.
pub struct QueuePair {
    pub queue: Arc<dyn Queue>,
    pub dead_letter: Arc<dyn Queue>,
    pub max_receive_count: u32,
}

/// Expands to one `#[tokio::test]` per behaviour, each with a pair made by `$make_pair`
/// (an expression, possibly `.await`ing, of type [`QueuePair`]).
#[macro_export]
macro_rules! queue_conformance_tests {
    ($make_pair:expr) => {
        $crate::queue_conformance_tests!(@each $make_pair;
            queue_sends_receives_and_deletes,
            queue_redelivers_what_is_not_deleted,
            queue_retry_after_delays_redelivery,
            queue_delays_new_messages,
            queue_redrives_to_the_dead_letter_queue,
            queue_refuses_requests_beyond_its_limits,
        );
    };
    (@each $make_pair:expr; $($behaviour:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $behaviour() {
                let pair: $crate::queue::QueuePair = $make_pair;
                $crate::queue::$behaviour(pair).await;
            }
        )+
    };
}

const SECOND: Duration = Duration::from_secs(1);
const LONG: Duration = Duration::from_secs(30);

/// Receives until `count` messages arrived or `within` passed (SQS may return fewer per call).
async fn receive_n(queue: &dyn Queue, count: usize, within: Duration, visibility: Duration) -> Vec<QueuedMessage> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < count && Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now()).as_secs().clamp(1, 20);
        got.extend(queue.receive(10, Duration::from_secs(left), visibility).await.expect("receive"));
    }
    got
}

async fn nothing_within(queue: &dyn Queue, wait: Duration) -> bool {
    queue.receive(10, wait, LONG).await.expect("receive").is_empty()
}

pub async fn queue_sends_receives_and_deletes(pair: QueuePair) {
    let queue = pair.queue.as_ref();
    let first = queue.send("{\"n\":1}", Duration::ZERO).await.expect("send");
    let second = queue.send("ünïcode ✓", Duration::ZERO).await.expect("send");
    assert_ne!(first, second, "message ids differ");
    let got = receive_n(queue, 2, Duration::from_secs(10), LONG).await;
    let bodies: BTreeSet<&str> = got.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, BTreeSet::from(["{\"n\":1}", "ünïcode ✓"]), "both messages arrive intact");
    let ids: BTreeSet<&str> = got.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, BTreeSet::from([first.as_str(), second.as_str()]), "with the ids `send` returned");
    assert!(got.iter().all(|m| m.receive_count == 1), "first delivery: {got:?}");
    for message in &got {
        queue.delete(&message.receipt).await.expect("delete");
    }
    assert!(nothing_within(queue, 2 * SECOND).await, "deleted messages never come back");
}

pub async fn queue_redelivers_what_is_not_deleted(pair: QueuePair) {
    let queue = pair.queue.as_ref();
    queue.send("again", Duration::ZERO).await.unwrap();
    let got = receive_n(queue, 1, Duration::from_secs(10), SECOND).await;
    assert_eq!(got.len(), 1);
    assert!(nothing_within(queue, Duration::ZERO).await, "a received message is hidden from other receivers");
    let again = receive_n(queue, 1, Duration::from_secs(10), LONG).await;
    assert_eq!(again.len(), 1, "the message comes back once its visibility ran out");
    assert_eq!((again[0].id.as_str(), again[0].body.as_str()), (got[0].id.as_str(), "again"));
    assert_eq!(again[0].receive_count, 2, "the second delivery counts 2");
    let stale = queue.delete(&got[0].receipt).await;
    assert!(stale.is_ok() || matches!(stale, Err(QueueError::StaleReceipt)), "{stale:?}");
    queue.delete(&again[0].receipt).await.expect("the current receipt deletes");
    assert!(nothing_within(queue, 2 * SECOND).await);
}

pub async fn queue_retry_after_delays_redelivery(pair: QueuePair) {
    let queue = pair.queue.as_ref();
    queue.send("retry me", Duration::ZERO).await.unwrap();
    let got = receive_n(queue, 1, Duration::from_secs(10), LONG).await;
    queue.retry_after(&got[0].receipt, Duration::ZERO).await.expect("retry now");
    let now = receive_n(queue, 1, Duration::from_secs(5), LONG).await;
    assert_eq!(now.len(), 1, "a message handed back with no delay is delivered again at once");
    queue.retry_after(&now[0].receipt, 3 * SECOND).await.expect("retry later");
    let started = Instant::now();
    assert!(nothing_within(queue, SECOND).await, "not before its delay");
    let later = receive_n(queue, 1, Duration::from_secs(10), LONG).await;
    assert_eq!(later.len(), 1, "delivered again after its delay");
    assert!(started.elapsed() >= 2 * SECOND, "redelivered too early: {:?}", started.elapsed());
    assert_eq!(later[0].receive_count, 3);
    queue.delete(&later[0].receipt).await.unwrap();
}

pub async fn queue_delays_new_messages(pair: QueuePair) {
    let queue = pair.queue.as_ref();
    let started = Instant::now();
    queue.send("later", 2 * SECOND).await.unwrap();
    assert!(nothing_within(queue, Duration::ZERO).await, "a delayed message is hidden at first");
    let got = receive_n(queue, 1, Duration::from_secs(10), LONG).await;
    assert_eq!(got.len(), 1, "and delivered after its delay");
    assert!(started.elapsed() >= SECOND, "delivered too early: {:?}", started.elapsed());
    queue.delete(&got[0].receipt).await.unwrap();
}

pub async fn queue_redrives_to_the_dead_letter_queue(pair: QueuePair) {
    let (queue, dead_letter) = (pair.queue.as_ref(), pair.dead_letter.as_ref());
    let id = queue.send("poison", Duration::ZERO).await.unwrap();
    for attempt in 1..=pair.max_receive_count {
        let got = receive_n(queue, 1, Duration::from_secs(10), LONG).await;
        assert_eq!(got.len(), 1, "delivery {attempt} of {}", pair.max_receive_count);
        assert_eq!(got[0].receive_count, attempt);
        queue.retry_after(&got[0].receipt, Duration::ZERO).await.unwrap();
    }
    assert!(nothing_within(queue, 2 * SECOND).await, "after the last try the message leaves the queue");
    let dead = receive_n(dead_letter, 1, Duration::from_secs(10), LONG).await;
    assert_eq!(dead.len(), 1, "it lands in the dead-letter queue");
    assert_eq!((dead[0].id.as_str(), dead[0].body.as_str()), (id.as_str(), "poison"), "intact, with its id");
    dead_letter.delete(&dead[0].receipt).await.unwrap();
}

pub async fn queue_refuses_requests_beyond_its_limits(pair: QueuePair) {
    let queue = pair.queue.as_ref();
    let invalid = |result: Result<(), QueueError>| matches!(result, Err(QueueError::Invalid(_)));
    assert!(invalid(queue.send("", Duration::ZERO).await.map(|_| ())), "an empty body");
    assert!(invalid(queue.send(&"x".repeat(256 * 1024 + 1), Duration::ZERO).await.map(|_| ())), "a body over 256 KiB");
    assert!(invalid(queue.send("x", Duration::from_secs(901)).await.map(|_| ())), "a delay over 15 minutes");
    assert!(invalid(queue.send("x", Duration::from_millis(1500)).await.map(|_| ())), "a delay in fractions of seconds");
    assert!(invalid(queue.receive(0, Duration::ZERO, LONG).await.map(|_| ())), "receiving 0");
    assert!(invalid(queue.receive(11, Duration::ZERO, LONG).await.map(|_| ())), "receiving 11");
    assert!(invalid(queue.receive(1, Duration::from_secs(21), LONG).await.map(|_| ())), "waiting over 20 s");
    assert!(nothing_within(queue, Duration::ZERO).await, "refused sends enqueue nothing");
}
