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

use crate::kit::oauth::{ClientAuth, Connects, MailboxApp, OAuthApp};
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

/// "Connect Gmail" and "Connect Microsoft 365" ([`crate::kit::oauth::mailbox`]): OAuth apps of
/// the email platform, whose tokens sign in to IMAP and SMTP with SASL XOAUTH2. Email keeps its
/// form for password accounts besides.
pub static OAUTH_APPS: [OAuthApp; 2] = [
    OAuthApp {
        platform: Platform::Email,
        connect_name: Some("gmail"),
        authorize_url: "https://accounts.google.com/o/oauth2/v2/auth",
        token_url: "https://oauth2.googleapis.com/token",
        // `openid email`: the ID token names the mailbox.
        scopes: &["https://mail.google.com/", "openid", "email"],
        client_auth: ClientAuth::Post,
        // A refresh token only with offline access, and again on a repeated consent.
        authorize_params: &[("access_type", "offline"), ("prompt", "consent")],
        connects: Connects::Mailbox(&MailboxApp {
            label: "Gmail",
            imap: "tls://imap.gmail.com:993",
            smtp: "tls://smtp.gmail.com:465",
            scope_on_refresh: false,
        }),
        ..OAuthApp::DEFAULTS
    },
    OAuthApp {
        platform: Platform::Email,
        connect_name: Some("microsoft365"),
        // `{tenant}`: SQUAREMCP_MICROSOFT365_TENANT, `common` unless set.
        authorize_url: "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
        token_url: "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        scopes: &[
            "https://outlook.office.com/IMAP.AccessAsUser.All",
            "https://outlook.office.com/SMTP.Send",
            "offline_access",
            "openid",
            "email",
        ],
        client_auth: ClientAuth::Post,
        // Microsoft rotates refresh tokens: the new one is stored before the token is used.
        rotates_refresh_tokens: true,
        connects: Connects::Mailbox(&MailboxApp {
            label: "Microsoft 365",
            imap: "tls://outlook.office365.com:993",
            smtp: "starttls://smtp.office365.com:587",
            scope_on_refresh: true,
        }),
        ..OAuthApp::DEFAULTS
    },
];
