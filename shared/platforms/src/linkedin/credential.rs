//! The member access token a Connect stores, with the member's OpenID `sub` when the Connect
//! recorded it (`account.id`), from which posts get their author.

use reqwest::header::HeaderValue;
use serde_json::Value;

use super::CREDENTIAL_EXAMPLE;
use crate::kit::{CredentialDocument, CredentialError, Fields};

const FIELDS: [&str; 5] = [
    "access_token",
    "refresh_token",
    "expires_at",
    "scopes",
    "account",
];
const ACCOUNT_FIELDS: [&str; 3] = ["id", "name", "username"];
const ACCOUNT_EXAMPLE: &str = r#"{"id": "782bbtaQ", "name": "Ada Lovelace"}"#;

/// A connection's token. No `Debug`: nothing can print it.
pub(crate) struct MemberToken {
    token: String,
    pub(crate) authorization: HeaderValue,
    /// The member's OpenID `sub`, when stored; otherwise tools read it from `/v2/userinfo`.
    pub(crate) member_id: Option<String>,
}

impl CredentialDocument for MemberToken {
    const EXAMPLE: &'static str = CREDENTIAL_EXAMPLE;

    fn parse(document: &Value) -> Result<Self, CredentialError> {
        let fields = Fields::of(document, &FIELDS, CREDENTIAL_EXAMPLE)?;
        let token = fields.string(
            "access_token",
            "connect LinkedIn on your account page (/account)",
        )?;
        let malformed = |problem: &str| CredentialError::Malformed {
            field: "access_token",
            problem: problem.to_owned(),
        };
        let mut authorization = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| malformed("cannot go in an HTTP header"))?;
        authorization.set_sensitive(true);
        let member_id = match fields.optional_object("account", &ACCOUNT_FIELDS, ACCOUNT_EXAMPLE)? {
            Some(account) => account.optional_string("id")?.map(str::to_owned),
            None => None,
        };
        Ok(Self {
            token: token.to_owned(),
            authorization,
            member_id,
        })
    }

    fn secrets(&self) -> Vec<&str> {
        vec![&self.token]
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_example_parses_and_the_member_id_is_optional() {
        let example: Value = serde_json::from_str(CREDENTIAL_EXAMPLE).expect("JSON");
        let token = MemberToken::parse(&example).expect("the example parses");
        assert_eq!(token.member_id.as_deref(), Some("782bbtaQ"));
        let bare = MemberToken::parse(&json!({"access_token": "abc"})).expect("a bare token");
        assert_eq!(bare.member_id, None);
        let error = MemberToken::parse(&json!({"access_token": "secret-value\n"}))
            .err()
            .expect("refused");
        assert!(!error.to_string().contains("secret-value"), "{error}");
        assert!(MemberToken::parse(&json!({"token": "abc"})).is_err());
    }
}
