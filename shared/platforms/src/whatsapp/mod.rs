//! WhatsApp Business (Cloud API, on Meta's Graph API): one business phone number per account,
//! four tools. Every call carries `Authorization: Bearer <token>` (never the URL); the Graph API
//! version is configuration and part of each path, with the credential's `phone_number_id` and
//! `waba_id` ([`dialect`]). Three tools are rows of data ([`tools`]); message statuses have no
//! REST endpoint and are answered from the status store ([`status`]) that the inbound webhook
//! ([`webhook`]) fills.

use serde_json::Value;
use squaremcp_core::Platform;

use crate::kit::{CredentialDocument, PlatformEntry};

mod credential;
mod dialect;
pub mod status;
mod tools;
pub mod webhook;

/// The real API origin. The Graph API version (`SQUAREMCP_GRAPH_API_VERSION`) is the first
/// segment of every path, so an override of the origin keeps it.
pub const DEFAULT_ORIGIN: &str = "https://graph.facebook.com";

/// The credential document's shape, shown in help texts and error messages.
pub const CREDENTIAL_EXAMPLE: &str =
    r#"{"access_token": "EAAGm0PX4ZCpsBAExampleSystemUserToken", "phone_number_id": "106540352242922", "waba_id": "102290129340398"}"#;

/// WhatsApp's row in the registration table.
pub static ENTRY: PlatformEntry = PlatformEntry {
    platform: Platform::Whatsapp,
    origin: DEFAULT_ORIGIN,
    credential_example: CREDENTIAL_EXAMPLE,
    check_credential: |document| credential::CloudApiCredential::parse(document).map(drop),
    tools: tools::build,
    health_probe: Some("list_templates"),
    oauth: None,
    routing_key: Some(routing_key),
};

/// The business phone number's id in a credential document: inbound webhooks name it
/// (`value.metadata.phone_number_id`), so it routes them to the customer who connected it.
pub fn routing_key(document: &Value) -> Option<String> {
    credential::CloudApiCredential::parse(document).ok().map(|credential| credential.phone_number_id)
}
