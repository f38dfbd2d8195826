//! One line per platform: its mock, and a credential made of canaries (strings that must never
//! appear in a log or a result).

use squaremcp_core::Platform;
use squaremcp_platform_mocks::{Fault, Mock, PlatformMock, discord, telegram};
use squaremcp_platforms::kit::{PlatformEntry, origin};
use serde_json::{Value, json};

pub struct Fixture {
    mock: Box<dyn Control>,
    pub credential: Value,
    pub canaries: Vec<String>,
}

impl Fixture {
    pub fn origin(&self, entry: &PlatformEntry) -> String {
        origin(entry.origin, Some(self.mock.base_url())).expect("a mock origin")
    }

    pub fn fail_always(&self, fault: Fault) {
        self.mock.fail_always(fault);
    }

    pub fn recover(&self) {
        self.mock.recover();
    }
}

pub async fn start(platform: Platform) -> Fixture {
    match platform {
        Platform::Telegram => {
            let secret = "CANARYtelegram_0123456789abcdefghijkXYZ";
            let token = format!("7000000001:{secret}");
            let mock = Mock::start(telegram::Telegram::accepting(&[&token])).await;
            Fixture { mock: Box::new(mock), credential: json!({ "bot_token": token }), canaries: vec![secret.to_owned()] }
        }
        Platform::Discord => {
            let token = "MTA5CANARYdiscord.GhIjKl.0123456789abcdefghijklmnopqrstuvwxyz12";
            let mock = Mock::start(discord::Discord::accepting(&[token])).await;
            Fixture { mock: Box::new(mock), credential: json!({ "bot_token": token }), canaries: vec![token.to_owned()] }
        }
        other => panic!("{other} is registered but has no contract fixture: add its mock and credential here"),
    }
}

trait Control: Send + Sync {
    fn base_url(&self) -> &str;
    fn fail_always(&self, fault: Fault);
    fn recover(&self);
}

impl<P: PlatformMock> Control for Mock<P> {
    fn base_url(&self) -> &str {
        Mock::base_url(self)
    }

    fn fail_always(&self, fault: Fault) {
        Mock::fail_always(self, fault);
    }

    fn recover(&self) {
        Mock::recover(self);
    }
}
