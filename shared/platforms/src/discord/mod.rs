//! Discord bot REST API v10: one bot token per account, five tools. Every call carries
//! `Authorization: Bot <token>` and Discord's descriptive User-Agent ([`dialect`]); the tools are
//! rows of data run by the kit ([`tools`]).

use squaremcp_core::Platform;

use crate::kit::{CredentialDocument, PlatformEntry};

mod credential;
mod dialect;
mod tools;

/// The real API, path and version included.
pub const DEFAULT_ORIGIN: &str = "https://discord.com/api/v10";

/// The credential document's shape, shown in help texts and error messages.
pub const CREDENTIAL_EXAMPLE: &str = r#"{"bot_token": "MTExMjIyMzMzNDQ0NTU1NjY2.GAbCdE.ExampleExampleExampleExampleExample12"}"#;

/// Discord's row in the registration table.
pub static ENTRY: PlatformEntry = PlatformEntry {
    platform: Platform::Discord,
    origin: DEFAULT_ORIGIN,
    credential_example: CREDENTIAL_EXAMPLE,
    check_credential: |document| credential::BotToken::parse(document).map(drop),
    tools: tools::build,
    health_probe: Some("get_me"),
    oauth: None,
    routing_key: None,
};
