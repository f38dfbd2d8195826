//! The Telegram credential document, `{"bot_token": "<bot id>:<secret>"}`, and its token.
//!
//! Checking the shape before storing it gives the person a precise message at once instead of a
//! 404 on the first call, and it keeps `/`, `?` and the like out of the URL path the token goes into.
//! No message here repeats the token, not even a wrong one: it may be a real secret with a typo.

use std::fmt;

use serde_json::Value;

use super::CREDENTIAL_EXAMPLE;

const FIELD: &str = "bot_token";
/// BotFather's secrets are 35 characters; longer is accepted in case Telegram lengthens them.
const MIN_SECRET_LEN: usize = 35;

/// A bot token whose shape was checked. `Debug` never shows it.
pub(crate) struct BotToken(String);

impl BotToken {
    /// Reads and checks a whole credential document: an object with exactly one string `bot_token`.
    pub(crate) fn from_document(document: &Value) -> Result<Self, String> {
        let Some(fields) = document.as_object() else {
            return Err(format!("the Telegram credential must be a JSON object like {CREDENTIAL_EXAMPLE}"));
        };
        if let Some(unknown) = fields.keys().find(|key| key.as_str() != FIELD) {
            return Err(format!("unknown key `{unknown}`: the Telegram credential has only `{FIELD}`, like {CREDENTIAL_EXAMPLE}"));
        }
        match fields.get(FIELD) {
            None => Err(format!("`{FIELD}` is missing: add the token @BotFather gave you, like {CREDENTIAL_EXAMPLE}")),
            Some(Value::String(token)) => Self::parse(token),
            Some(_) => Err(format!("`{FIELD}` must be a string, like {CREDENTIAL_EXAMPLE}")),
        }
    }

    /// Checks Telegram's token shape: `<digits>:<35 or more of A-Z a-z 0-9 _ ->`.
    pub(crate) fn parse(token: &str) -> Result<Self, String> {
        if token.trim() != token {
            return Err(format!("`{FIELD}` has spaces or line breaks around it; remove them"));
        }
        let Some((bot_id, secret)) = token.split_once(':') else {
            return Err(format!(
                "`{FIELD}` has no `:`; a Telegram bot token is the bot's numeric id, a colon and a secret, \
                 e.g. 123456789:AA…, as @BotFather shows it"
            ));
        };
        if bot_id.is_empty() || !bot_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("`{FIELD}` must start with the bot's numeric id (digits only) before the `:`"));
        }
        if !secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(format!(
                "the part of `{FIELD}` after the `:` may hold only letters, digits, `_` and `-`; copy the token again from @BotFather"
            ));
        }
        if secret.len() < MIN_SECRET_LEN {
            return Err(format!(
                "the part of `{FIELD}` after the `:` is {} characters long, but Telegram's are at least {MIN_SECRET_LEN}; \
                 it looks cut off, so copy the whole token from @BotFather",
                secret.len()
            ));
        }
        Ok(Self(token.to_owned()))
    }

    /// The token itself: only for building the request URL and for scrubbing text.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// The part after the colon, the actual secret.
    pub(crate) fn secret_part(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, secret)| secret)
    }
}

impl fmt::Debug for BotToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BotToken([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SECRET: &str = "AAFq3xZ-9kLmNoPqRsTuVwXyZ_0123456789ab";

    fn document(token: &str) -> Value {
        json!({ "bot_token": token })
    }

    #[test]
    fn the_example_is_a_valid_credential() {
        let example: Value = serde_json::from_str(CREDENTIAL_EXAMPLE).expect("example is JSON");
        assert!(BotToken::from_document(&example).is_ok());
    }

    #[test]
    fn a_real_token_shape_is_accepted_and_debug_hides_it() {
        let token = BotToken::from_document(&document(&format!("7012345678:{SECRET}"))).expect("good token");
        assert_eq!(format!("{token:?}"), "BotToken([REDACTED])");
        assert_eq!(token.secret_part(), SECRET);
        assert!(BotToken::parse(&format!("1:{SECRET}XYZ")).is_ok(), "longer secrets are accepted");
    }

    #[test]
    fn each_bad_shape_gets_its_own_reason_without_echoing_the_token() {
        let cases = [
            (json!("just a string"), "must be a JSON object"),
            (json!({}), "`bot_token` is missing"),
            (json!({"bot_token": 123}), "must be a string"),
            (json!({"bot_token": format!("1:{SECRET}"), "chat_id": 5}), "unknown key `chat_id`"),
            (document(&format!(" 1:{SECRET}\n")), "spaces or line breaks"),
            (document(SECRET), "has no `:`"),
            (document(&format!("bot12:{SECRET}")), "numeric id"),
            (document(&format!(":{SECRET}")), "numeric id"),
            (document(&format!("1:{}", &SECRET[..34])), "is 34 characters long"),
            (document(&format!("1:{SECRET}/getMe")), "only letters, digits"),
            (document(&format!("1:{SECRET}?x=1")), "only letters, digits"),
            (document(&format!("1:{SECRET}:2")), "only letters, digits"),
        ];
        for (document, expected) in cases {
            let message = BotToken::from_document(&document).expect_err(&document.to_string());
            assert!(message.contains(expected), "{document}: {message}");
            assert!(!message.contains(&SECRET[..20]), "{document}: the message repeats the secret: {message}");
        }
    }
}
