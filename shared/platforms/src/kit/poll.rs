//! Waiting for a platform's long-running work (a container being processed, a video being
//! transcoded) within a bounded time: a tool call polls with backoff and, when the budget runs
//! out, returns what it knows (the id and the state) instead of hanging past a Lambda's limit.

use std::future::Future;
use std::time::{Duration, Instant};

use squaremcp_core::tool::ToolFailure;

/// How long a tool waits for a publish unless the operator sets `SQUAREMCP_PUBLISH_WAIT_SECONDS`;
/// with the upload before it, it fits the `mcp` Lambda's 29 seconds.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(15);
/// The first pause between two checks unless `SQUAREMCP_PUBLISH_POLL_MILLISECONDS` says otherwise;
/// each pause doubles, up to [`MAX_INTERVAL`].
pub const DEFAULT_FIRST_INTERVAL: Duration = Duration::from_secs(1);
pub const MAX_INTERVAL: Duration = Duration::from_secs(5);

/// The operator's bounds on waiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishWait {
    /// The longest a tool waits in all.
    pub budget: Duration,
    pub first_interval: Duration,
    pub max_interval: Duration,
}

impl Default for PublishWait {
    fn default() -> Self {
        Self { budget: DEFAULT_BUDGET, first_interval: DEFAULT_FIRST_INTERVAL, max_interval: MAX_INTERVAL }
    }
}

/// What one check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress<T> {
    Done(T),
    /// Still running; the platform's own name for its state (e.g. `IN_PROGRESS`).
    Pending(String),
}

/// How the wait ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Waited<T> {
    Done(T),
    /// The budget ran out first: the tool answers with the id, this state and how to check again.
    StillRunning { state: String, waited: Duration },
}

impl PublishWait {
    /// Checks at once, then after each pause, until `check` is done, fails (a failed processing
    /// state is the check's `Err`), or the next pause would pass the budget.
    pub async fn wait<T, F, Fut>(&self, mut check: F) -> Result<Waited<T>, ToolFailure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Progress<T>, ToolFailure>>,
    {
        let started = Instant::now();
        let mut interval = self.first_interval;
        loop {
            let state = match check().await? {
                Progress::Done(value) => return Ok(Waited::Done(value)),
                Progress::Pending(state) => state,
            };
            let waited = started.elapsed();
            if waited + interval > self.budget {
                return Ok(Waited::StillRunning { state, waited });
            }
            tokio::time::sleep(interval).await;
            interval = (interval * 2).min(self.max_interval.max(self.first_interval));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use squaremcp_core::tool::FailureKind;

    fn quick(budget_ms: u64) -> PublishWait {
        PublishWait { budget: Duration::from_millis(budget_ms), first_interval: Duration::from_millis(5), max_interval: Duration::from_millis(20) }
    }

    #[tokio::test]
    async fn polls_until_done_with_growing_pauses() {
        let mut checks = 0;
        let outcome = quick(5_000)
            .wait(|| {
                checks += 1;
                let done = checks == 4;
                async move { Ok(if done { Progress::Done("published") } else { Progress::Pending("IN_PROGRESS".to_owned()) }) }
            })
            .await
            .expect("no failure");
        assert_eq!(outcome, Waited::Done("published"));
        assert_eq!(checks, 4);
    }

    #[tokio::test]
    async fn gives_up_with_the_last_state_when_the_budget_runs_out() {
        let started = Instant::now();
        let mut checks = 0;
        let outcome: Waited<()> = quick(60)
            .wait(|| {
                checks += 1;
                async { Ok(Progress::Pending("PROCESSING".to_owned())) }
            })
            .await
            .expect("no failure");
        let Waited::StillRunning { state, waited } = outcome else { panic!("the budget ran out") };
        assert_eq!(state, "PROCESSING");
        // Never a pause that starts past the budget (a loaded machine may oversleep a little).
        assert!(waited < Duration::from_millis(60) + Duration::from_millis(500), "{waited:?}");
        assert!(checks >= 2, "{checks}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_failed_state_ends_the_wait_with_its_failure() {
        let outcome: Result<Waited<()>, _> =
            quick(5_000).wait(|| async { Err(ToolFailure::new(FailureKind::Upstream, "processing failed: unsupported codec")) }).await;
        assert_eq!(outcome.expect_err("failed").message, "processing failed: unsupported codec");
    }
}
