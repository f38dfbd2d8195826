//! Telegram Bot API: one bot token per account, five tools; webhook mode in [`webhook`].
//!
//! Every call is `POST {origin}/bot{token}/{method}` with a JSON body. The token sits in the URL
//! path: the kit never logs a URL and scrubs the token from every failure message.

use squaremcp_core::Platform;

use crate::kit::{CredentialDocument, PlatformEntry};

/// The example document as a literal, so that messages can include it with `concat!`.
macro_rules! credential_example {
    () => {
        r#"{"bot_token": "123456789:AAExampleExampleExampleExample12345"}"#
    };
}

mod credential;
mod dialect;
mod schemas;
mod tools;
pub mod webhook;

use credential::BotToken;

/// The real Bot API address.
pub const DEFAULT_BASE_URL: &str = "https://api.telegram.org";

/// The credential document's shape, shown in help texts and error messages.
pub const CREDENTIAL_EXAMPLE: &str = credential_example!();

/// Telegram's row in the registration table.
pub static ENTRY: PlatformEntry = PlatformEntry {
    platform: Platform::Telegram,
    origin: DEFAULT_BASE_URL,
    credential_example: CREDENTIAL_EXAMPLE,
    check_credential: |document| BotToken::parse(document).map(drop),
    tools: tools::build,
    health_probe: Some("get_me"),
    oauth: None,
    // Routed by bot id only while in webhook mode: `webhook` claims the index when switched on
    // (one bot token may be stored by several accounts; a webhook has one owner).
    routing_key: None,
};
