//! Telegram Bot API: one bot token per account, five tools.
//!
//! Every call is `POST {base}/bot{token}/{method}` with a JSON body. The token sits in the URL
//! path, so URLs are never logged and every error is stripped of its URL (see [`api`]).

use std::sync::Arc;

use serde_json::Value;
use squaremcp_core::Platform;
use squaremcp_core::tool::{PlatformModule, Tool};

mod api;
mod credential;
mod schemas;
mod tools;

use api::BotApi;

/// The real Bot API address.
pub const DEFAULT_BASE_URL: &str = "https://api.telegram.org";

/// The credential document's shape, shown in help texts and error messages.
pub const CREDENTIAL_EXAMPLE: &str = r#"{"bot_token": "123456789:AAExampleExampleExampleExample12345"}"#;

pub struct TelegramModule {
    tools: Vec<Arc<dyn Tool>>,
}

impl TelegramModule {
    /// `base_url` without the `/bot…` part, e.g. [`DEFAULT_BASE_URL`] or a mock's address.
    pub fn new(http: reqwest::Client, base_url: &str) -> Self {
        let api = BotApi::new(http, base_url);
        Self {
            tools: vec![
                Arc::new(tools::GetMe::new(api.clone())),
                Arc::new(tools::SendMessage::new(api.clone())),
                Arc::new(tools::SendPhoto::new(api.clone())),
                Arc::new(tools::GetUpdates::new(api.clone())),
                Arc::new(tools::GetChat::new(api)),
            ],
        }
    }
}

impl PlatformModule for TelegramModule {
    fn platform(&self) -> Platform {
        Platform::Telegram
    }

    fn check_credential(&self, credential: &Value) -> Result<(), String> {
        credential::BotToken::from_document(credential).map(drop)
    }

    fn credential_example(&self) -> &'static str {
        CREDENTIAL_EXAMPLE
    }

    fn tools(&self) -> Vec<Arc<dyn Tool>> {
        self.tools.clone()
    }
}

/// Telegram's row in the registration table.
pub static ENTRY: crate::kit::PlatformEntry = crate::kit::PlatformEntry {
    platform: Platform::Telegram,
    origin: DEFAULT_BASE_URL,
    credential_example: CREDENTIAL_EXAMPLE,
    check_credential: |document| {
        credential::BotToken::from_document(document)
            .map(drop)
            .map_err(|problem| crate::kit::CredentialError::Malformed { field: "bot_token", problem })
    },
    tools: |context| TelegramModule::new(context.http.clone(), &context.origin).tools(),
    health_probe: Some("get_me"),
};
