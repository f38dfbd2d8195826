//! The SquareMCP domain. Nothing here knows about AWS, axum or Lambda: adapters implement the
//! ports in [`ports`], and the HTTP edge maps the errors defined here.

pub mod account;
pub mod api_key;
pub mod auth;
pub mod billing;
pub mod calls;
pub mod connections;
pub mod credentials;
pub mod customer;
pub mod events;
pub mod gateway;
mod key_cache;
pub mod mcp;
pub mod metrics;
pub mod openapi;
mod pending;
pub mod platform;
pub mod ports;
pub mod random;
mod recent;
pub mod refusals;
pub mod rewrap;
pub mod routing;
pub mod schema;
pub mod secret;
pub mod timestamp;
pub mod tool;
#[cfg(test)]
mod test_support;

pub use api_key::{ApiKey, ApiKeyHash, ApiKeyId, ApiKeyRecord};
pub use auth::{AuthMethod, Principal};
pub use calls::CallRecord;
pub use credentials::{AccountName, BindingVersion, CredentialRecord, MisfiledCredential, SealedSecret, SecretBinding};
pub use customer::{Customer, CustomerId, Email, PlanName};
pub use gateway::{CallContext, Gateway};
pub use key_cache::DEFAULT_API_KEY_CACHE;
pub use platform::Platform;
pub use ports::{
    Clock, Keyring, KeyringError, MailError, Mailer, NoMailer, OutgoingEmail, Page, PutMode, Queue, QueueError,
    QueuedMessage, Store, StoreError, SystemClock,
};
pub use secret::Secret;
pub use timestamp::Timestamp;
pub use tool::{FailureKind, PlatformModule, Registry, Tool, ToolDefinition, ToolFailure, ToolOutput};
