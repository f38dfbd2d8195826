//! The platforms the gateway speaks to.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::customer::InvalidInput;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Email,
    Obsidian,
    Whatsapp,
    Linkedin,
    Tiktok,
    Facebook,
    Instagram,
    Twitter,
    Telegram,
    Discord,
    Snapchat,
}

impl Platform {
    pub const ALL: [Platform; 11] = [
        Platform::Email,
        Platform::Obsidian,
        Platform::Whatsapp,
        Platform::Linkedin,
        Platform::Tiktok,
        Platform::Facebook,
        Platform::Instagram,
        Platform::Twitter,
        Platform::Telegram,
        Platform::Discord,
        Platform::Snapchat,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Platform::Email => "email",
            Platform::Obsidian => "obsidian",
            Platform::Whatsapp => "whatsapp",
            Platform::Linkedin => "linkedin",
            Platform::Tiktok => "tiktok",
            Platform::Facebook => "facebook",
            Platform::Instagram => "instagram",
            Platform::Twitter => "twitter",
            Platform::Telegram => "telegram",
            Platform::Discord => "discord",
            Platform::Snapchat => "snapchat",
        }
    }

    /// The environment variable that overrides this platform's API base URL.
    pub fn base_url_env(self) -> String {
        format!("SQUAREMCP_{}_BASE_URL", self.as_str().to_uppercase())
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Platform {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        let wanted = if wanted == "x" { "twitter".to_owned() } else { wanted };
        Platform::ALL.into_iter().find(|p| p.as_str() == wanted).ok_or_else(|| {
            let names: Vec<_> = Platform::ALL.iter().map(|p| p.as_str()).collect();
            InvalidInput::new("platform", format!("`{s}` is not one of {}", names.join(", ")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Platform::ALL {
            assert_eq!(p.as_str().parse::<Platform>(), Ok(p));
        }
        assert_eq!("X".parse::<Platform>(), Ok(Platform::Twitter));
        assert!("myspace".parse::<Platform>().is_err());
        assert_eq!(Platform::Telegram.base_url_env(), "SQUAREMCP_TELEGRAM_BASE_URL");
    }
}
