//! The Discord credential document, `{"bot_token": "…"}`: the token the Developer Portal shows
//! once (your application → Bot → Reset Token). No message here repeats it, not even a wrong one.
//! No `Debug` either, so that nothing can print it.

use reqwest::header::HeaderValue;
use serde_json::Value;

use super::CREDENTIAL_EXAMPLE;
use crate::kit::{CredentialDocument, CredentialError, Fields};

const FIELD: &str = "bot_token";

pub(crate) struct BotToken {
    token: String,
    /// `Bot <token>`, built once and marked sensitive so that no debug output of a request shows it.
    pub(super) authorization: HeaderValue,
}

impl CredentialDocument for BotToken {
    const EXAMPLE: &'static str = CREDENTIAL_EXAMPLE;

    fn parse(document: &Value) -> Result<Self, CredentialError> {
        let hint = "copy it from the Developer Portal (your application → Bot → Reset Token)";
        let token = Fields::of(document, &[FIELD], CREDENTIAL_EXAMPLE)?.string(FIELD, hint)?;
        let malformed = |problem: &str| CredentialError::Malformed { field: FIELD, problem: problem.to_owned() };
        // The whole header value pasted: it would go out as `Bot Bot …` and be rejected.
        if token.get(..4).is_some_and(|prefix| prefix.eq_ignore_ascii_case("bot ")) {
            return Err(malformed("starts with `Bot `: store the token alone; the gateway adds the prefix"));
        }
        // It travels in a header, which holds only visible ASCII; a token never has spaces.
        if !token.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(malformed(
                "has characters that cannot go in an HTTP header (spaces, line breaks or non-ASCII); \
                 copy it again from the Developer Portal",
            ));
        }
        let mut authorization = HeaderValue::from_str(&format!("Bot {token}")).map_err(|_| malformed("cannot go in an HTTP header"))?;
        authorization.set_sensitive(true);
        Ok(Self { token: token.to_owned(), authorization })
    }

    fn secrets(&self) -> Vec<&str> {
        vec![&self.token]
    }
}
