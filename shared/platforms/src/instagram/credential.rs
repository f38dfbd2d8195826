//! The Instagram credential document, `{"login", "ig_user_id", "access_token"}`: which login the
//! token comes from (`instagram`: Instagram Login, a long-lived Instagram user token;
//! `facebook`: Facebook Login, a Facebook user or Page token with instagram_basic and
//! instagram_content_publish), the Instagram professional account's id, and the token. An
//! Instagram Login token may carry `expires_at` (Unix seconds): the gateway then renews it with
//! `ig_refresh_token` before it expires (`kit::oauth::meta`).

use reqwest::header::HeaderValue;
use serde_json::Value;

use super::CREDENTIAL_EXAMPLE;
use crate::facebook::credential::bearer;
use crate::kit::{CredentialDocument, CredentialError, Fields};

const LOGIN: &str = "login";
const USER_ID: &str = "ig_user_id";
const TOKEN: &str = "access_token";
const EXPIRES_AT: &str = "expires_at";

/// Which Meta login issued the token: it decides the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Login {
    Instagram,
    Facebook,
}

pub(crate) struct InstagramToken {
    token: String,
    pub(crate) authorization: HeaderValue,
    pub(crate) login: Login,
    pub(crate) ig_user_id: String,
}

impl CredentialDocument for InstagramToken {
    const EXAMPLE: &'static str = CREDENTIAL_EXAMPLE;

    fn parse(document: &Value) -> Result<Self, CredentialError> {
        let fields = Fields::of(document, &[LOGIN, USER_ID, TOKEN, EXPIRES_AT], CREDENTIAL_EXAMPLE)?;
        // Read by the refresher, not by the tools: checked here so a bad value is refused when stored.
        fields.optional_integer(EXPIRES_AT, 1, 32_503_680_000)?;
        let login = match fields.string(LOGIN, "say which login issued the token: \"instagram\" or \"facebook\"")? {
            "instagram" => Login::Instagram,
            "facebook" => Login::Facebook,
            _ => return Err(CredentialError::Malformed { field: LOGIN, problem: "must be \"instagram\" or \"facebook\"".to_owned() }),
        };
        let ig_user_id = fields.string(
            USER_ID,
            "copy the Instagram professional account's id (Instagram Login: `user_id` of GET /me; Facebook Login: \
             instagram_business_account of the Page)",
        )?;
        if ig_user_id.len() > 32 || !ig_user_id.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(CredentialError::Malformed { field: USER_ID, problem: "must be the numeric account id (digits only), not the @username".to_owned() });
        }
        let token = fields.string(TOKEN, "use a long-lived token with instagram_business_basic and instagram_business_content_publish")?;
        let authorization = bearer(TOKEN, token)?;
        Ok(Self { token: token.to_owned(), authorization, login, ig_user_id: ig_user_id.to_owned() })
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
    fn both_logins_parse_and_bad_documents_name_the_field_not_the_value() {
        let example: Value = serde_json::from_str(CREDENTIAL_EXAMPLE).expect("JSON");
        let parsed = InstagramToken::parse(&example).expect("the example parses");
        assert_eq!((parsed.login, parsed.ig_user_id.as_str()), (Login::Instagram, "17841405822304914"));
        let facebook = json!({"login": "facebook", "ig_user_id": "1", "access_token": "EAAG"});
        assert_eq!(InstagramToken::parse(&facebook).map(|t| t.login).ok(), Some(Login::Facebook));
        let renewable = json!({"login": "instagram", "ig_user_id": "1", "access_token": "IGAA", "expires_at": 4_102_444_800_i64});
        assert!(InstagramToken::parse(&renewable).is_ok(), "an Instagram Login token may say when it expires");
        let token = "IGAAsecret-token";
        for (document, expected) in [
            (json!({"login": "tiktok", "ig_user_id": "1", "access_token": token}), "`login` must be"),
            (json!({"login": "instagram", "ig_user_id": "@ada", "access_token": token}), "`ig_user_id` must be the numeric"),
            (json!({"ig_user_id": "1", "access_token": token}), "`login` is missing"),
            (json!({"login": "instagram", "ig_user_id": "1", "access_token": token, "expires_at": "soon"}), "`expires_at` must be a whole number"),
            (json!({"login": "instagram", "ig_user_id": "1", "access_token": format!("Bearer {token}")}), "starts with `Bearer `"),
        ] {
            let message = InstagramToken::parse(&document).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains(expected), "{document}: {message}");
            assert!(!message.contains(token), "{message}");
        }
    }
}
