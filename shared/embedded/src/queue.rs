//! The in-process twin of an SQS queue, for `squaremcp serve` and tests: the same visibility,
//! delay, receive-count and dead-letter semantics, held in memory (messages do not survive a
//! restart, which is acceptable for retries of a single process).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use squaremcp_core::ports::queue_limits;
use squaremcp_core::{Queue, QueueError, QueuedMessage, random};
use tokio::sync::Notify;

/// How often a waiting receiver looks again, at most: it is also woken by every send.
const POLL: Duration = Duration::from_millis(50);

pub struct MemoryQueue {
    state: Mutex<State>,
    arrived: Notify,
    dead_letter: Option<(Arc<MemoryQueue>, u32)>,
}

#[derive(Default)]
struct State {
    messages: Vec<Stored>,
}

struct Stored {
    id: String,
    body: String,
    visible_at: Instant,
    receive_count: u32,
    /// The receipt of the current delivery, if the message is out with a receiver.
    receipt: Option<String>,
}

impl std::fmt::Debug for MemoryQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryQueue").field("redrives", &self.dead_letter.is_some()).finish_non_exhaustive()
    }
}

impl MemoryQueue {
    /// A queue with no dead-letter queue: messages come back until deleted.
    pub fn new() -> Self {
        Self { state: Mutex::new(State::default()), arrived: Notify::new(), dead_letter: None }
    }

    /// A queue that moves a message to `dead_letter` when a receive finds it already received
    /// `max_receive_count` times (SQS's redrive policy).
    pub fn with_dead_letter(dead_letter: Arc<MemoryQueue>, max_receive_count: u32) -> Self {
        Self { dead_letter: Some((dead_letter, max_receive_count.max(1))), ..Self::new() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update below leaves the state consistent, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, stored: Stored) {
        self.lock().messages.push(stored);
        self.arrived.notify_waiters();
    }

    /// One pass: redrives what ran out of tries, then hands out what is visible.
    fn take_visible(&self, max: usize, visibility: Duration) -> Vec<QueuedMessage> {
        let now = Instant::now();
        let mut redriven = Vec::new();
        let mut delivered = Vec::new();
        {
            let mut state = self.lock();
            if let Some((_, max_receive_count)) = &self.dead_letter {
                let (dead, alive): (Vec<Stored>, Vec<Stored>) = std::mem::take(&mut state.messages)
                    .into_iter()
                    .partition(|m| m.visible_at <= now && m.receive_count >= *max_receive_count);
                state.messages = alive;
                redriven = dead;
            }
            for message in state.messages.iter_mut().filter(|m| m.visible_at <= now).take(max) {
                let receipt = format!("{}-{}", message.id, random::hex_id::<8>());
                message.receive_count += 1;
                message.visible_at = now + visibility;
                message.receipt = Some(receipt.clone());
                delivered.push(QueuedMessage {
                    id: message.id.clone(),
                    body: message.body.clone(),
                    receipt,
                    receive_count: message.receive_count,
                });
            }
        }
        if let Some((dead_letter, _)) = &self.dead_letter {
            for message in redriven {
                tracing::warn!(message_id = %message.id, receives = message.receive_count, "moved a message to the dead-letter queue");
                dead_letter.push(Stored { visible_at: now, receive_count: 0, receipt: None, ..message });
            }
        }
        delivered
    }

    fn with_receipt<T>(&self, receipt: &str, change: impl FnOnce(&mut State, usize) -> T) -> Result<T, QueueError> {
        let mut state = self.lock();
        let index = state
            .messages
            .iter()
            .position(|m| m.receipt.as_deref() == Some(receipt))
            .ok_or(QueueError::StaleReceipt)?;
        Ok(change(&mut state, index))
    }
}

impl Default for MemoryQueue {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn send(&self, body: &str, delay: Duration) -> Result<String, QueueError> {
        queue_limits::check_send(body, delay)?;
        let id = random::hex_id::<16>();
        self.push(Stored {
            id: id.clone(),
            body: body.to_owned(),
            visible_at: Instant::now() + delay,
            receive_count: 0,
            receipt: None,
        });
        Ok(id)
    }

    async fn receive(&self, max: usize, wait: Duration, visibility: Duration) -> Result<Vec<QueuedMessage>, QueueError> {
        queue_limits::check_receive(max, wait, visibility)?;
        let deadline = Instant::now() + wait;
        loop {
            let arrived = self.arrived.notified();
            let delivered = self.take_visible(max, visibility);
            let left = deadline.saturating_duration_since(Instant::now());
            if !delivered.is_empty() || left.is_zero() {
                return Ok(delivered);
            }
            // Woken by a send, or by the poll interval for messages whose delay runs out.
            let _ = tokio::time::timeout(left.min(POLL), arrived).await;
        }
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.with_receipt(receipt, |state, index| {
            state.messages.remove(index);
        })
    }

    async fn retry_after(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        queue_limits::check_delay("delay", delay, queue_limits::MAX_VISIBILITY)?;
        self.with_receipt(receipt, |state, index| {
            state.messages[index].visible_at = Instant::now() + delay;
        })?;
        self.arrived.notify_waiters();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_by_a_send() {
        let queue = Arc::new(MemoryQueue::new());
        let receiver = {
            let queue = Arc::clone(&queue);
            tokio::spawn(async move { queue.receive(1, Duration::from_secs(10), Duration::from_secs(30)).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        queue.send("wake up", Duration::ZERO).await.unwrap();
        let got = receiver.await.unwrap().unwrap();
        assert_eq!(got.len(), 1);
        assert!(started.elapsed() < Duration::from_secs(1), "woken promptly: {:?}", started.elapsed());
    }
}
