//! Embedded adapters for laptops and self-hosters: a SQLite file as the store, a local key
//! file standing in for KMS, and an in-process queue standing in for SQS.

mod keyring;
mod queue;
mod sqlite;

pub use keyring::KeyFileKeyring;
pub use queue::MemoryQueue;
pub use sqlite::{SqliteStore, private_directory};
