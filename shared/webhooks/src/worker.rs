//! The in-process delivery worker of `squaremcp serve`: long-polls the retry queue and hands
//! each message to [`Deliverer::process`], a batch at a time, concurrently. A message whose
//! processing failed (store or queue unavailable) is handed back to come again shortly; the
//! queue's redrive policy moves one that keeps failing to the dead-letter queue.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use crate::delivery::Deliverer;

/// How long a received message stays hidden: longer than an attempt (10 s) and its records.
pub const VISIBILITY: Duration = Duration::from_secs(60);
/// How long a message whose processing failed waits before it comes back.
pub const BACKOFF_AFTER_ERROR: Duration = Duration::from_secs(10);
const WAIT: Duration = Duration::from_secs(20);

/// Starts `receivers` polling loops on the current runtime; they run until the process ends.
pub fn spawn(deliverer: Arc<Deliverer>, receivers: usize) {
    for _ in 0..receivers.max(1) {
        let deliverer = Arc::clone(&deliverer);
        tokio::spawn(async move { run(&deliverer).await });
    }
}

async fn run(deliverer: &Deliverer) {
    let queue = Arc::clone(&deliverer.retry_queue);
    loop {
        let messages = match queue.receive(10, WAIT, VISIBILITY).await {
            Ok(messages) => messages,
            Err(e) => {
                tracing::warn!(error = %e, "the webhook retry queue could not be read; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        join_all(messages.iter().map(|message| async {
            match deliverer.process(&message.body).await {
                Ok(_) => {
                    if let Err(e) = queue.delete(&message.receipt).await {
                        tracing::warn!(message_id = message.id, error = %e, "a processed delivery job could not be deleted; it may be attempted again");
                    }
                }
                Err(e) => {
                    tracing::warn!(message_id = message.id, error = %e, "a delivery job could not be processed; it comes back later");
                    let _ = queue.retry_after(&message.receipt, BACKOFF_AFTER_ERROR).await;
                }
            }
        }))
        .await;
    }
}
