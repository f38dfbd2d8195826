//! JWTs, HS256 under a key derived from the configured secret. Two kinds, told apart by the
//! header's `typ` as well as by audience:
//! - access tokens (`at+jwt`, RFC 9068) issued by the token endpoint, audience `<public url>/mcp`;
//! - user tokens (`JWT`) with `{sub, email, plan, role}`: the session cookie (audience
//!   `<public url>/login`) and bearer tokens for `/mcp` (audience `<public url>/mcp`).
//!
//! Expiry is checked against the gateway's clock, not the system's, so that tests can move time.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::AuthError;
use crate::crypto::hmac_sha256;

pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
pub const USER_TOKEN_TYP: &str = "JWT";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Admin,
}

/// `{sub, email, plan, role}` plus the registered claims.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub email: String,
    pub plan: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    /// Session id: binds CSRF tokens to one login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The customer's sign-in generation when issued (`standing.rs`); absent on tokens from
    /// before generations, which counts as 0.
    #[serde(default)]
    pub generation: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub client_id: String,
    pub scope: String,
    /// The grant (refresh-token family) this token belongs to: revoking it revokes the token.
    pub fam: String,
    /// The grant's sign-in generation, compared with the grant's on every use.
    #[serde(default)]
    pub generation: u64,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
}

pub(crate) trait Expiring {
    fn exp(&self) -> i64;
}

impl Expiring for UserClaims {
    fn exp(&self) -> i64 {
        self.exp
    }
}

impl Expiring for AccessClaims {
    fn exp(&self) -> i64 {
        self.exp
    }
}

/// Keys derived once from the secret: one for JWTs, one for CSRF tokens.
pub(crate) struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    pub(crate) csrf: [u8; 32],
}

impl Keys {
    pub(crate) fn derive(secret: &[u8]) -> Self {
        let jwt = hmac_sha256(secret, b"squaremcp/jwt/hs256/v1");
        Self {
            encoding: EncodingKey::from_secret(&jwt),
            decoding: DecodingKey::from_secret(&jwt),
            csrf: hmac_sha256(secret, b"squaremcp/csrf/v1"),
        }
    }

    pub(crate) fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, AuthError> {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(typ.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| AuthError::Signing(e.to_string()))
    }

    /// `typ` of a token's header, if it is a JWT at all.
    pub(crate) fn typ(token: &str) -> Option<String> {
        jsonwebtoken::decode_header(token).ok().and_then(|h| h.typ)
    }

    /// Signature, algorithm, `typ`, issuer, audience and expiry; `None` on any failure.
    pub(crate) fn verify<T: DeserializeOwned + Expiring>(
        &self,
        token: &str,
        typ: &str,
        issuer: &str,
        audience: &str,
        now: i64,
    ) -> Option<T> {
        if Self::typ(token).as_deref() != Some(typ) {
            return None;
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<T>(token, &self.decoding, &validation).ok()?.claims;
        (claims.exp() > now).then_some(claims)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn claims(aud: &str, exp: i64) -> UserClaims {
        UserClaims {
            iss: "https://mcp.example.com".into(),
            aud: aud.into(),
            sub: "cus_0123456789abcdef01234567".into(),
            email: "ada@example.com".into(),
            plan: "pro".into(),
            role: Role::Customer,
            iat: 100,
            exp,
            sid: None,
            generation: 0,
        }
    }

    #[test]
    fn round_trip_and_every_refusal() {
        let keys = Keys::derive(&[7; 32]);
        let iss = "https://mcp.example.com";
        let aud = "https://mcp.example.com/mcp";
        let token = keys.sign(USER_TOKEN_TYP, &claims(aud, 200)).unwrap();
        assert!(keys.verify::<UserClaims>(&token, USER_TOKEN_TYP, iss, aud, 150).is_some());
        assert!(keys.verify::<UserClaims>(&token, USER_TOKEN_TYP, iss, aud, 200).is_none(), "expired");
        assert!(keys.verify::<UserClaims>(&token, USER_TOKEN_TYP, iss, "https://other.example/mcp", 150).is_none(), "audience");
        assert!(keys.verify::<UserClaims>(&token, USER_TOKEN_TYP, "https://mcp.example.com/", aud, 150).is_none(), "issuer");
        assert!(keys.verify::<UserClaims>(&token, ACCESS_TOKEN_TYP, iss, aud, 150).is_none(), "typ");
        assert!(Keys::derive(&[8; 32]).verify::<UserClaims>(&token, USER_TOKEN_TYP, iss, aud, 150).is_none(), "key");
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = keys.sign(USER_TOKEN_TYP, &claims("https://evil.example/mcp", 200)).unwrap();
        let forged_payload = forged.split('.').nth(1).unwrap().to_owned();
        parts[1] = &forged_payload;
        assert!(keys.verify::<UserClaims>(&parts.join("."), USER_TOKEN_TYP, iss, "https://evil.example/mcp", 150).is_none());
        // alg=none is never accepted.
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", token.split('.').nth(1).unwrap());
        assert!(keys.verify::<UserClaims>(&none, USER_TOKEN_TYP, iss, aud, 150).is_none());
    }
}
