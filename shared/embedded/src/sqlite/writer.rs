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

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::Connection;
use squaremcp_core::StoreError;
use tokio::sync::oneshot;

use super::execute;

/// Enough to absorb every call in flight on a busy gateway; a bound keeps one commit short.
const MOST_PER_COMMIT: usize = 256;

/// One queued write: runs inside the group's transaction, then hears how the commit went.
trait Job: Send {
    /// Runs the operation; `false` when it failed (its savepoint is rolled back).
    fn run(&mut self, connection: &Connection) -> bool;
    /// Hands the caller its result, or the commit's failure if the group did not commit.
    fn finish(self: Box<Self>, commit: Result<(), &StoreError>);
}

struct Pending<T, F> {
    operation: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
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
}

/// The sending side; dropping it lets the thread finish the queue, close the connection and end.
pub(super) struct Writer {
    jobs: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    pub(super) fn start(connection: Connection) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel::<Box<dyn Job>>();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(&connection, &queue))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the SQLite writer thread: {e}")))?;
        Ok(Self { jobs: Some(jobs), thread: Some(thread) })
    }

    /// Runs `operation` in a `BEGIN IMMEDIATE` transaction (shared with other queued writes);
    /// an error rolls back this operation's changes only.
    pub(super) async fn write<T, F>(&self, operation: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, outcome) = oneshot::channel();
        let job = Box::new(Pending { operation: Some(operation), result: None, reply });
        let gone = || StoreError::Unavailable("the SQLite writer has stopped".into());
        self.jobs.as_ref().ok_or_else(gone)?.send(job).map_err(|_| gone())?;
        outcome.await.map_err(|_| gone())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(connection: &Connection, queue: &mpsc::Receiver<Box<dyn Job>>) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MOST_PER_COMMIT {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let committed = commit_group(connection, &mut group);
        if let Err(e) = &committed {
            tracing::error!(error = %e, writes = group.len(), "a group of writes could not be committed");
        }
        for job in group {
            job.finish(committed.as_ref().map(|_| ()));
        }
    }
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
