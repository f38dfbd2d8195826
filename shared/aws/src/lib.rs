//! AWS adapters of the ports: the DynamoDB store, the KMS keyring and the SQS queue, plus
//! [`provision`] for `squaremcp init` (table, key, alias, queues, first data key).
//!
//! Nothing here makes a network call when it is built: clients are created from the
//! environment once per process (Lambda cold start) and share one connection pool; the data
//! key is fetched and decrypted on first use.

mod clients;
mod error;
mod item;
mod keyring;
pub mod provision;
mod queue;
mod scoped_keys;
mod store;
pub mod table;

pub use clients::{ATTEMPT_TIMEOUT, AwsClients, Consumed, OPERATION_TIMEOUT, RequestCounter, with_timeouts};
pub use keyring::KmsKeyring;
pub use queue::SqsQueue;
pub use scoped_keys::{PrefixKeys, ScopedKeys, ScopedKeysError};
pub use store::DynamoStore;
