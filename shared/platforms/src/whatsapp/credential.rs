//! The WhatsApp credential document, `{"access_token", "phone_number_id", "waba_id"}`: a System
//! User access token (Business Settings → System users → Generate new token, with
//! `whatsapp_business_messaging` and `whatsapp_business_management`), the business phone
//! number's id and the WhatsApp Business Account's id (WhatsApp Manager → API Setup). No message
//! here repeats the token, not even a wrong one; no `Debug` either.

use reqwest::header::HeaderValue;
use serde_json::Value;

use super::CREDENTIAL_EXAMPLE;
use crate::kit::{CredentialDocument, CredentialError, Fields};

const TOKEN: &str = "access_token";
const PHONE_NUMBER_ID: &str = "phone_number_id";
const WABA_ID: &str = "waba_id";

pub(crate) struct CloudApiCredential {
    token: String,
    /// `Bearer <token>`, built once and marked sensitive so that no debug output shows it.
    pub(super) authorization: HeaderValue,
    pub(crate) phone_number_id: String,
    pub(super) waba_id: String,
}

impl CredentialDocument for CloudApiCredential {
    const EXAMPLE: &'static str = CREDENTIAL_EXAMPLE;

    fn parse(document: &Value) -> Result<Self, CredentialError> {
        let fields = Fields::of(document, &[TOKEN, PHONE_NUMBER_ID, WABA_ID], CREDENTIAL_EXAMPLE)?;
        let token = fields.string(
            TOKEN,
            "create a System User token in Meta Business Settings (System users → Generate new token) with \
             whatsapp_business_messaging and whatsapp_business_management",
        )?;
        let phone_number_id = fields.string(PHONE_NUMBER_ID, "copy the Phone number ID from WhatsApp Manager → API Setup")?;
        let waba_id = fields.string(WABA_ID, "copy the WhatsApp Business Account ID from WhatsApp Manager → API Setup")?;
        let malformed = |field, problem: &str| CredentialError::Malformed { field, problem: problem.to_owned() };
        if token.get(..7).is_some_and(|prefix| prefix.eq_ignore_ascii_case("bearer ")) {
            return Err(malformed(TOKEN, "starts with `Bearer `: store the token alone; the gateway adds the prefix"));
        }
        if !token.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(malformed(
                TOKEN,
                "has characters that cannot go in an HTTP header (spaces, line breaks or non-ASCII); copy it again",
            ));
        }
        for (field, id) in [(PHONE_NUMBER_ID, phone_number_id), (WABA_ID, waba_id)] {
            if id.len() > 32 || !id.bytes().all(|byte| byte.is_ascii_digit()) {
                return Err(malformed(field, "must be the numeric id WhatsApp Manager shows (digits only), not a phone number with + or spaces"));
            }
        }
        let mut authorization =
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| malformed(TOKEN, "cannot go in an HTTP header"))?;
        authorization.set_sensitive(true);
        Ok(Self {
            token: token.to_owned(),
            authorization,
            phone_number_id: phone_number_id.to_owned(),
            waba_id: waba_id.to_owned(),
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
    fn a_good_document_parses_and_bad_ones_name_the_field_not_the_value() {
        let example: Value = serde_json::from_str(CREDENTIAL_EXAMPLE).expect("JSON");
        let parsed = CloudApiCredential::parse(&example).expect("the example parses");
        assert_eq!((parsed.phone_number_id.as_str(), parsed.waba_id.as_str()), ("106540352242922", "102290129340398"));
        assert!(parsed.authorization.is_sensitive());
        let token = "EAAGsecret-token-value";
        for (document, expected) in [
            (json!({"access_token": format!("Bearer {token}"), "phone_number_id": "1", "waba_id": "2"}), "starts with `Bearer `"),
            (json!({"access_token": token, "phone_number_id": "+1 555", "waba_id": "2"}), "`phone_number_id` must be the numeric id"),
            (json!({"access_token": token, "phone_number_id": "1"}), "`waba_id` is missing"),
            (json!({"access_token": "a b", "phone_number_id": "1", "waba_id": "2"}), "cannot go in an HTTP header"),
        ] {
            let message = CloudApiCredential::parse(&document).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains(expected), "{document}: {message}");
            assert!(!message.contains(token), "{message}");
        }
    }
}
