//! Discord bot REST API v10 (being built).

use squaremcp_core::Platform;

use crate::kit::PlatformEntry;

pub const DEFAULT_ORIGIN: &str = "https://discord.com/api/v10";
pub const CREDENTIAL_EXAMPLE: &str = r#"{"bot_token": "MTExMjIyMzMzNDQ0NTU1NjY2.GAbCdE.ExampleExampleExampleExampleExample12"}"#;

pub static ENTRY: PlatformEntry = PlatformEntry {
    platform: Platform::Discord,
    origin: DEFAULT_ORIGIN,
    credential_example: CREDENTIAL_EXAMPLE,
    check_credential: |_| Ok(()),
    tools: |_| Vec::new(),
    health_probe: Some("get_me"),
};
