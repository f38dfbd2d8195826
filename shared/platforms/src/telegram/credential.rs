//! The Telegram credential document, `{"bot_token": "<bot id>:<secret>"}`, and its token.
//!
//! Checking the shape before storing it gives the person a precise message at once instead of a
//! 404 on the first call, and it keeps `/`, `?` and the like out of the URL path the token goes into.
//! No message here repeats the token, not even a wrong one: it may be a real secret with a typo.

use std::fmt;

use serde_json::Value;

use crate::kit::{CredentialDocument, CredentialError, Fields};

use super::CREDENTIAL_EXAMPLE;

const FIELD: &str = "bot_token";
/// BotFather's secrets are 35 characters; longer is accepted in case Telegram lengthens them.
const MIN_SECRET_LEN: usize = 35;
const MISSING_HINT: &str = concat!("add the token @BotFather gave you, like ", credential_example!());

/// A bot token whose shape was checked. `Debug` never shows it.
pub(crate) struct BotToken(String);

impl CredentialDocument for BotToken {
    const EXAMPLE: &'static str = CREDENTIAL_EXAMPLE;

    /// An object with exactly one string `bot_token` of Telegram's token shape.
    fn parse(document: &Value) -> Result<Self, CredentialError> {
        Fields::of(document, &[FIELD], CREDENTIAL_EXAMPLE)?;
        // Read directly rather than with `Fields::string`: `null` is a wrong type here, not a
        // missing token, and an empty token gets the "no `:`" explanation.
        match document.get(FIELD) {
            None => Err(CredentialError::Missing { field: FIELD, hint: MISSING_HINT }),
            Some(Value::String(token)) => Self::check(token),
            Some(_) => Err(malformed(format!("must be a string, like {CREDENTIAL_EXAMPLE}"))),
        }
    }

    /// The whole token (it is in every URL) and its secret half on its own.
    fn secrets(&self) -> Vec<&str> {
        vec![&self.0, self.secret_part()]
    }
}

impl BotToken {
    /// Checks Telegram's token shape: `<digits>:<35 or more of A-Z a-z 0-9 _ ->`.
    fn check(token: &str) -> Result<Self, CredentialError> {
        if token.trim() != token {
            return Err(malformed("has spaces or line breaks around it; remove them".to_owned()));
        }
        let Some((bot_id, secret)) = token.split_once(':') else {
            return Err(malformed(
                "has no `:`; a Telegram bot token is the bot's numeric id, a colon and a secret, \
                 e.g. 123456789:AA…, as @BotFather shows it"
                    .to_owned(),
            ));
        };
        if bot_id.is_empty() || !bot_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed("must start with the bot's numeric id (digits only) before the `:`".to_owned()));
        }
        if !secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(malformed(
                "may hold only letters, digits, `_` and `-` after the `:`; copy the token again from @BotFather".to_owned(),
            ));
        }
        if secret.len() < MIN_SECRET_LEN {
            return Err(malformed(format!(
                "is cut off: the part after the `:` is {} characters long, but Telegram's are at least {MIN_SECRET_LEN}; \
                 copy the whole token from @BotFather",
                secret.len()
            )));
        }
        Ok(Self(token.to_owned()))
    }

    /// The token itself: only for building the request URL.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// The part after the colon, the actual secret.
    fn secret_part(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, secret)| secret)
    }
}

fn malformed(problem: String) -> CredentialError {
    CredentialError::Malformed { field: FIELD, problem }
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
        let example: Value = serde_json::from_str(BotToken::EXAMPLE).expect("example is JSON");
        assert!(BotToken::parse(&example).is_ok());
    }

    #[test]
    fn a_real_token_shape_is_accepted_and_debug_hides_it() {
        let token = BotToken::parse(&document(&format!("7012345678:{SECRET}"))).expect("good token");
        assert_eq!(format!("{token:?}"), "BotToken([REDACTED])");
        assert_eq!(token.secrets(), [format!("7012345678:{SECRET}").as_str(), SECRET]);
        assert!(BotToken::parse(&document(&format!("1:{SECRET}XYZ"))).is_ok(), "longer secrets are accepted");
    }

    #[test]
    fn each_bad_shape_gets_its_own_reason_without_echoing_the_token() {
        let cases = [
            (json!("just a string"), "must be a JSON object"),
            (json!({}), "`bot_token` is missing"),
            (json!({"bot_token": 123}), "must be a string"),
            (json!({"bot_token": null}), "must be a string"),
            (json!({"bot_token": format!("1:{SECRET}"), "chat_id": 5}), "unknown key `chat_id`"),
            (document(&format!(" 1:{SECRET}\n")), "spaces or line breaks"),
            (document(SECRET), "has no `:`"),
            (document(""), "has no `:`"),
            (document(&format!("bot12:{SECRET}")), "numeric id"),
            (document(&format!(":{SECRET}")), "numeric id"),
            (document(&format!("1:{}", &SECRET[..34])), "is 34 characters long"),
            (document(&format!("1:{SECRET}/getMe")), "only letters, digits"),
            (document(&format!("1:{SECRET}?x=1")), "only letters, digits"),
            (document(&format!("1:{SECRET}:2")), "only letters, digits"),
        ];
        for (document, expected) in cases {
            let message = BotToken::parse(&document).expect_err(&document.to_string()).to_string();
            assert!(message.contains(expected), "{document}: {message}");
            assert!(!message.contains(&SECRET[..20]), "{document}: the message repeats the secret: {message}");
        }
    }
}
