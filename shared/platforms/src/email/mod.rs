//! Email over IMAP and SMTP: one mailbox per stored account (a customer may connect several and
//! pick one with `account`), five tools. Not an HTTP API, so the tools implement `Tool` directly
//! ([`tools`]) on an IMAP client ([`imap`]) and lettre for SMTP ([`smtp`]).
//!
//! Every host comes from the customer, so every connection goes through the kit's SSRF guard
//! ([`crate::kit::net`]): resolved once, private addresses refused unless the operator allows
//! them, and the connection made to that resolved address.
//!
//! Connections: one short-lived IMAP session per call (connect, log in, act, log out), in Lambda
//! and in `squaremcp serve` alike. A per-account pool would save a TLS handshake and a login per
//! call (roughly 100–300 ms against a remote server), but it would keep customers' passwords
//! live in long-held sessions, needs idle-timeout and reconnect handling (servers drop idle
//! sessions after about 30 minutes, and providers cap concurrent sessions per account), and
//! would behave differently in the two deployments. Calls are rare and human-paced, so the
//! simpler, identical behaviour wins; a pool can be added behind [`imap::connect`] later.

use squaremcp_core::Platform;

use crate::kit::{CredentialDocument, PlatformEntry};

mod credential;
mod imap;
mod smtp;
mod tools;

pub use imap::utf7;

/// The credential document's shape, shown in help texts and error messages.
pub const CREDENTIAL_EXAMPLE: &str = r#"{"address": "you@example.com", "username": "you@example.com", "password": "app-password", "imap_host": "imap.example.com", "imap_port": 993, "imap_security": "tls", "smtp_host": "smtp.example.com", "smtp_port": 465, "smtp_security": "tls"}"#;

/// Email's row in the registration table. It has no HTTP origin: nothing to override.
pub static ENTRY: PlatformEntry = PlatformEntry {
    platform: Platform::Email,
    origin: PlatformEntry::NO_ORIGIN,
    credential_example: CREDENTIAL_EXAMPLE,
    check_credential: |document| credential::Account::parse(document).map(drop),
    tools: tools::build,
    health_probe: Some("list_folders"),
    oauth: None,
    routing_key: None,
};
