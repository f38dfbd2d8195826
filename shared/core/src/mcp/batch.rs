//! JSON-RPC batches (MCP 2025-03-26 only): how many messages one may hold, and running them
//! side by side.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// The most messages one batch may hold. The calls of a batch run at once, so a batch ends within
/// one call's deadline (and inside the function's time limit); the cap bounds how many platform
/// calls, reservations and records one request can start.
pub const MAX_BATCH_MESSAGES: usize = 20;

/// Runs `futures` concurrently on the current task and returns their outputs in their order
/// (a batch's answers keep the order of its requests).
pub async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut running: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = running.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in running.iter_mut().zip(outputs.iter_mut()) {
            // A finished future is never polled again.
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending { Poll::Pending } else { Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[tokio::test]
    async fn outputs_keep_their_order_and_the_futures_overlap() {
        let started = Instant::now();
        let delays = [300_u64, 100, 200];
        let futures = delays
            .iter()
            .map(|&ms| async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                ms
            })
            .collect();
        assert_eq!(join_all(futures).await, vec![300, 100, 200]);
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_millis(550),
            "side by side, not one after another: {elapsed:?}"
        );
    }

    #[tokio::test]
    async fn nothing_to_run_is_nothing_returned() {
        assert!(join_all(Vec::<std::future::Ready<u8>>::new()).await.is_empty());
    }
}
