//! The credential a X connection stores: the OAuth document the Connect flow writes. Only
//! the access token is used here; the gateway renews it with the refresh token.

use serde_json::Value;

use super::CREDENTIAL_EXAMPLE;
use crate::kit::credential::OAuthUserToken;
use crate::kit::{CredentialDocument, CredentialError};

/// The user access token. No `Debug`: nothing can print it.
pub(crate) struct UserToken(OAuthUserToken);

impl UserToken {
    /// `Bearer <token>`, marked sensitive.
    pub(crate) fn authorization(&self) -> reqwest::header::HeaderValue {
        self.0.authorization()
    }
}

impl CredentialDocument for UserToken {
    const EXAMPLE: &'static str = CREDENTIAL_EXAMPLE;

    fn parse(document: &Value) -> Result<Self, CredentialError> {
        OAuthUserToken::parse(document, CREDENTIAL_EXAMPLE, "connect X on your account page (/account)").map(Self)
    }

    fn secrets(&self) -> Vec<&str> {
        vec![self.0.token()]
    }
}
