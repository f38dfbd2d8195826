//! WAL checkpoints on a thread of their own. SQLite's automatic checkpoint runs inside the
//! commit that crosses its threshold, so one tools/call in a thousand copied the log into the
//! database and waited for its fsync (tens of milliseconds on a busy disk) while holding the
//! write lock: that was the gateway's p99. A passive checkpoint here never blocks a writer or
//! a reader; it copies whatever the readers allow and tries again on the next tick.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use squaremcp_core::StoreError;

use super::error::db_error;

/// Often enough that the log stays small under load (a few thousand calls a second write a few
/// MB of log per tick); an idle database costs one cheap statement per tick.
const EVERY: Duration = Duration::from_millis(250);

pub(super) struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub(super) fn start(path: &Path, busy_timeout: Duration) -> Result<Self, StoreError> {
        let connection = Connection::open(path).map_err(db_error)?;
        connection.busy_timeout(busy_timeout).map_err(db_error)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
                    if let Err(e) = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        tracing::warn!(error = %e, "WAL checkpoint failed; retrying on the next tick");
                    }
                }
            })
            .map_err(|e| StoreError::Unavailable(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Self { stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
