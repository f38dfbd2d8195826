//! Every write goes through one thread that owns the write connection and commits in groups:
//! the writes that queued while the previous transaction ran are committed together, each in
//! its own savepoint, so one failing write rolls back alone. Under load a tools/call's record
//! shares its commit (and its WAL pages) with the other calls of the moment instead of paying
//! for a transaction of its own; a lone write pays the hand-off to the thread (tens of
//! microseconds on a small virtual machine). Callers await their own outcome, which arrives only
//! after the commit: a write that returned `Ok` is in the database. The queue needs no bound:
//! every caller waits for its write, so it never holds more than the writes in flight.
//!
//! The thread also keeps SQLite's blocking work (locks, WAL writes, the busy wait on another
//! process's write lock) off the async runtime's worker threads.
//!
//! A write nobody waits on to answer a request (a call record of `squaremcp serve`, written
//! after its call answered) is queued with [`Writer::write_soon`]: the thread then gathers the
//! writes of the next few milliseconds into the same commit. Under load that makes one commit
//! and one wakeup of the thread per [`GATHERING`] instead of one per handful of calls, and the
//! records share their WAL pages; a [`Writer::write`] queued meanwhile ends the gathering at once.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use squaremcp_core::StoreError;
use tokio::sync::oneshot;

use super::execute;

/// Enough to absorb every call in flight on a busy gateway; a bound keeps one commit short.
const MOST_PER_COMMIT: usize = 256;

/// How long writes queued with [`Writer::write_soon`] wait for others to share their commit.
const GATHERING: Duration = Duration::from_millis(5);

/// One queued write: runs inside the group's transaction, then hears how the commit went.
trait Job: Send {
    /// Runs the operation; `false` when it failed (its savepoint is rolled back).
    fn run(&mut self, connection: &Connection) -> bool;
    /// Hands the caller its result, or the commit's failure if the group did not commit.
    fn finish(self: Box<Self>, commit: Result<(), &StoreError>);
    /// Someone waits on this write to answer a request: its group commits without gathering.
    fn urgent(&self) -> bool;
}

struct Pending<T, F> {
    operation: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
    urgent: bool,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, connection: &Connection) -> bool {
        let Some(operation) = self.operation.take() else { return false };
        let result = catch_unwind(AssertUnwindSafe(|| operation(connection)))
            .unwrap_or_else(|_| Err(StoreError::Unavailable("a write failed unexpectedly and was rolled back".into())));
        let succeeded = result.is_ok();
        self.result = Some(result);
        succeeded
    }

    fn finish(self: Box<Self>, commit: Result<(), &StoreError>) {
        let outcome = match (self.result, commit) {
            (Some(Err(own)), _) => Err(own),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (Some(Ok(_)), Err(e)) => Err(StoreError::Unavailable(format!("the write was not committed: {e}"))),
            (None, Err(e)) => Err(StoreError::Unavailable(format!("the write did not run: {e}"))),
            (None, Ok(())) => Err(StoreError::Unavailable("the write did not run".into())),
        };
        // The caller may have gone (a dropped request); the write stands either way.
        let _ = self.reply.send(outcome);
    }

    fn urgent(&self) -> bool {
        self.urgent
    }
}

/// The sending side; dropping it lets the thread finish the queue, close the connection and end.
pub(super) struct Writer {
    jobs: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
    /// Transactions committed (or attempted), for tests and diagnostics.
    commits: Arc<AtomicU64>,
}

impl Writer {
    pub(super) fn start(connection: Connection) -> Result<Self, StoreError> {
        Self::start_gathering(connection, GATHERING)
    }

    fn start_gathering(connection: Connection, gathering: Duration) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel::<Box<dyn Job>>();
        let commits = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&commits);
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(&connection, &queue, gathering, &counted))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the SQLite writer thread: {e}")))?;
        Ok(Self { jobs: Some(jobs), thread: Some(thread), commits })
    }

    #[cfg(test)]
    fn commits(&self) -> u64 {
        self.commits.load(Ordering::SeqCst)
    }

    /// Runs `operation` in a `BEGIN IMMEDIATE` transaction (shared with other queued writes);
    /// an error rolls back this operation's changes only.
    pub(super) async fn write<T, F>(&self, operation: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.queue(operation, true).await
    }

    /// [`Writer::write`] for a write no request's answer waits on: it may wait up to
    /// [`GATHERING`] for other writes to share its commit.
    pub(super) async fn write_soon<T, F>(&self, operation: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.queue(operation, false).await
    }

    async fn queue<T, F>(&self, operation: F, urgent: bool) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, outcome) = oneshot::channel();
        let job = Box::new(Pending { operation: Some(operation), result: None, reply, urgent });
        let gone = || StoreError::Unavailable("the SQLite writer has stopped".into());
        self.jobs.as_ref().ok_or_else(gone)?.send(job).map_err(|_| gone())?;
        if urgent && let Some(thread) = &self.thread {
            // Ends a gathering under way (a no-op for a thread that is not parked).
            thread.thread().unpark();
        }
        outcome.await.map_err(|_| gone())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        tracing::debug!(commits = self.commits.load(Ordering::SeqCst), "the SQLite writer stopped");
    }
}

fn run(connection: &Connection, queue: &mpsc::Receiver<Box<dyn Job>>, gathering: Duration, commits: &AtomicU64) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        gather(queue, &mut group, gathering);
        let committed = commit_group(connection, &mut group);
        commits.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = &committed {
            tracing::error!(error = %e, writes = group.len(), "a group of writes could not be committed");
        }
        for job in group {
            job.finish(committed.as_ref().map(|_| ()));
        }
    }
}

/// Adds what is queued to `group`; when nothing in it is urgent, also what comes within
/// `gathering` (or until an urgent write arrives or the group is full).
fn gather(queue: &mpsc::Receiver<Box<dyn Job>>, group: &mut Vec<Box<dyn Job>>, gathering: Duration) {
    let mut urgent = drain(queue, group, group.iter().any(|job| job.urgent()));
    let deadline = Instant::now() + gathering;
    while !urgent && group.len() < MOST_PER_COMMIT {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        // Senders of writes that can wait do not wake the thread; urgent ones unpark it.
        std::thread::park_timeout(deadline - now);
        urgent = drain(queue, group, urgent);
    }
}

/// Moves queued jobs into `group` (up to its bound); whether an urgent one is in it now.
fn drain(queue: &mpsc::Receiver<Box<dyn Job>>, group: &mut Vec<Box<dyn Job>>, mut urgent: bool) -> bool {
    while group.len() < MOST_PER_COMMIT {
        match queue.try_recv() {
            Ok(job) => {
                urgent |= job.urgent();
                group.push(job);
            }
            Err(_) => break,
        }
    }
    urgent
}

fn commit_group(connection: &Connection, group: &mut [Box<dyn Job>]) -> Result<(), StoreError> {
    execute(connection, "BEGIN IMMEDIATE", [])?;
    let outcome = run_each(connection, group).and_then(|()| execute(connection, "COMMIT", []).map(|_| ()));
    if outcome.is_err() && !connection.is_autocommit() {
        let _ = connection.execute_batch("ROLLBACK");
    }
    outcome
}

fn run_each(connection: &Connection, group: &mut [Box<dyn Job>]) -> Result<(), StoreError> {
    for job in group {
        execute(connection, "SAVEPOINT write", [])?;
        if !job.run(connection) {
            execute(connection, "ROLLBACK TO write", [])?;
        }
        execute(connection, "RELEASE write", [])?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn writer(gathering: Duration) -> Arc<Writer> {
        let connection = Connection::open_in_memory().unwrap();
        connection.execute_batch("CREATE TABLE t (n INTEGER)").unwrap();
        Arc::new(Writer::start_gathering(connection, gathering).unwrap())
    }

    fn insert(n: i64) -> impl FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static {
        move |connection| execute(connection, "INSERT INTO t (n) VALUES (?1)", [n]).map(|_| ())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_that_can_wait_share_one_commit_and_an_urgent_write_ends_the_wait() {
        let writer = writer(Duration::from_secs(60));
        let mut waiting = tokio::task::JoinSet::new();
        for n in 0..20 {
            let writer = Arc::clone(&writer);
            waiting.spawn(async move { writer.write_soon(insert(n)).await });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(writer.commits(), 0, "still gathering");
        // Far sooner than the minute the others would wait for.
        tokio::time::timeout(Duration::from_secs(20), writer.write(insert(20))).await.expect("not held").unwrap();
        while let Some(joined) = waiting.join_next().await {
            joined.unwrap().unwrap();
        }
        assert_eq!(writer.commits(), 1, "the 21 writes shared one commit");
        let count = writer.write(|c| c.query_row("SELECT COUNT(*) FROM t", [], |row| row.get::<_, i64>(0)).map_err(super::super::db_error));
        assert_eq!(count.await.unwrap(), 21);
    }

    #[tokio::test]
    async fn a_write_that_can_wait_commits_when_the_gathering_ends() {
        let writer = writer(Duration::from_millis(50));
        tokio::time::timeout(Duration::from_secs(20), writer.write_soon(insert(1))).await.expect("committed").unwrap();
        assert_eq!(writer.commits(), 1);
        writer.write(insert(2)).await.unwrap();
        assert_eq!(writer.commits(), 2, "an urgent write commits without gathering");
    }
}
