//! Embedded adapters for laptops and self-hosters: a SQLite file as the store and a local key
//! file standing in for KMS.

mod keyring;
mod sqlite;

pub use keyring::KeyFileKeyring;
pub use sqlite::SqliteStore;
