//! Writes still under way after their caller was answered, so that shutdown can wait for them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

#[derive(Debug, Default)]
pub(crate) struct PendingWrites {
    count: AtomicUsize,
    drained: Notify,
}

impl PendingWrites {
    /// Counts one write as under way until the returned guard is dropped; `None` when `most`
    /// are already under way (the caller then waits for its write, which bounds the memory
    /// they hold should the store fall behind).
    pub(crate) fn try_enter(self: &Arc<Self>, most: usize) -> Option<PendingWrite> {
        let mut current = self.count.load(Ordering::Acquire);
        loop {
            if current >= most {
                return None;
            }
            match self.count.compare_exchange_weak(current, current + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(PendingWrite(Arc::clone(self))),
                Err(now) => current = now,
            }
        }
    }

    /// Returns once no write is under way.
    pub(crate) async fn drained(&self) {
        loop {
            // Registered before the count is read, so a wake between the two is not missed.
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            drained.await;
        }
    }
}

/// One write under way (see [`PendingWrites::try_enter`]).
pub(crate) struct PendingWrite(Arc<PendingWrites>);

impl Drop for PendingWrite {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.drained.notify_waiters();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn drained_waits_for_every_write_under_way_and_the_count_is_bounded() {
        let pending = Arc::new(PendingWrites::default());
        tokio::time::timeout(Duration::from_millis(50), pending.drained()).await.expect("nothing under way: at once");
        let (first, second) = (pending.try_enter(2).unwrap(), pending.try_enter(2).unwrap());
        assert!(pending.try_enter(2).is_none(), "at most two under way");
        let waiting = tokio::spawn({
            let pending = Arc::clone(&pending);
            async move { pending.drained().await }
        });
        drop(first);
        let third = pending.try_enter(2).expect("room again for one");
        drop(third);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "one write is still under way");
        drop(second);
        tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("drained once the last write ended").unwrap();
    }
}
