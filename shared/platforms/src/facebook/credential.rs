//! The Facebook Page credential document, `{"page_id", "access_token"}`: the Page's id and a
//! Page access token (from `GET /me/accounts` with a long-lived user token: such Page tokens do
//! not expire). No message here repeats the token, not even a wrong one; no `Debug` either.

use reqwest::header::HeaderValue;
use serde_json::Value;

use super::CREDENTIAL_EXAMPLE;
use crate::kit::{CredentialDocument, CredentialError, Fields};

const TOKEN: &str = "access_token";
const PAGE_ID: &str = "page_id";

pub(crate) struct PageToken {
    token: String,
    /// `Bearer <token>`, built once and marked sensitive so that no debug output shows it.
    pub(crate) authorization: HeaderValue,
    pub(crate) page_id: String,
}

impl CredentialDocument for PageToken {
    const EXAMPLE: &'static str = CREDENTIAL_EXAMPLE;

    fn parse(document: &Value) -> Result<Self, CredentialError> {
        let fields = Fields::of(document, &[PAGE_ID, TOKEN], CREDENTIAL_EXAMPLE)?;
        let page_id = fields.string(PAGE_ID, "copy the Page ID from the Page's About → Page transparency, or from GET /me/accounts")?;
        let token = fields.string(
            TOKEN,
            "use the Page access token GET /me/accounts returns for a long-lived user token with pages_manage_posts and \
             pages_read_engagement",
        )?;
        if page_id.len() > 32 || !page_id.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(malformed(PAGE_ID, "must be the Page's numeric id (digits only), not its name or URL"));
        }
        let authorization = bearer(TOKEN, token)?;
        Ok(Self { token: token.to_owned(), authorization, page_id: page_id.to_owned() })
    }

    fn secrets(&self) -> Vec<&str> {
        vec![&self.token]
    }
}

fn malformed(field: &'static str, problem: &str) -> CredentialError {
    CredentialError::Malformed { field, problem: problem.to_owned() }
}

/// `Bearer <token>` as a sensitive header value, after the checks every Meta token gets.
pub(crate) fn bearer(field: &'static str, token: &str) -> Result<HeaderValue, CredentialError> {
    if token.get(..7).is_some_and(|prefix| prefix.eq_ignore_ascii_case("bearer ")) {
        return Err(malformed(field, "starts with `Bearer `: store the token alone; the gateway adds the prefix"));
    }
    if !token.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(malformed(field, "has characters that cannot go in an HTTP header (spaces, line breaks or non-ASCII); copy it again"));
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| malformed(field, "cannot go in an HTTP header"))?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_good_document_parses_and_bad_ones_name_the_field_not_the_value() {
        let example: Value = serde_json::from_str(CREDENTIAL_EXAMPLE).expect("JSON");
        let parsed = PageToken::parse(&example).expect("the example parses");
        assert_eq!(parsed.page_id, "104882489141131");
        assert!(parsed.authorization.is_sensitive());
        let token = "EAAGsecret-page-token";
        for (document, expected) in [
            (json!({"page_id": "1", "access_token": format!("Bearer {token}")}), "starts with `Bearer `"),
            (json!({"page_id": "my-page", "access_token": token}), "`page_id` must be the Page's numeric id"),
            (json!({"access_token": token}), "`page_id` is missing"),
            (json!({"page_id": "1", "access_token": "a b"}), "cannot go in an HTTP header"),
            (json!({"page_id": "1", "access_token": token, "extra": 1}), "unknown key `extra`"),
        ] {
            let message = PageToken::parse(&document).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains(expected), "{document}: {message}");
            assert!(!message.contains(token), "{message}");
        }
    }
}
