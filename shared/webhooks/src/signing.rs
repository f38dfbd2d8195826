//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>): the signed content is
//! `{webhook-id}.{webhook-timestamp}.{body}`, the MAC HMAC-SHA256 keyed with the secret's bytes
//! (the base64 after `whsec_`), and the header `v1,<base64 MAC>`, several space-separated when
//! more than one secret is valid (during a rotation).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use squaremcp_core::Secret;

/// The prefix of every endpoint secret.
pub const PREFIX: &str = "whsec_";
/// Bytes of entropy in a generated secret (Svix uses 24; the spec asks 24 to 64).
const SECRET_BYTES: usize = 32;

/// An endpoint's signing secret: `whsec_` and the base64 of its key bytes.
#[derive(Clone, Debug)]
pub struct WebhookSecret(Secret<String>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a webhook secret (`whsec_` and base64 of 24 to 64 bytes)")]
pub struct InvalidSecret;

impl WebhookSecret {
    pub fn generate() -> Self {
        let key = squaremcp_core::random::bytes::<SECRET_BYTES>();
        Self(Secret::new(format!("{PREFIX}{}", STANDARD.encode(key))))
    }

    pub fn parse(text: &str) -> Result<Self, InvalidSecret> {
        let key = STANDARD.decode(text.strip_prefix(PREFIX).ok_or(InvalidSecret)?).map_err(|_| InvalidSecret)?;
        if !(24..=64).contains(&key.len()) {
            return Err(InvalidSecret);
        }
        Ok(Self(Secret::new(text.to_owned())))
    }

    /// The `whsec_…` text, shown to the customer once.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    fn key(&self) -> Vec<u8> {
        self.0.expose().strip_prefix(PREFIX).and_then(|b64| STANDARD.decode(b64).ok()).unwrap_or_default()
    }

    /// `v1,<base64 HMAC-SHA256 of id.timestamp.body>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key()) else { return String::new() };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header for every valid secret, newest first.
pub fn signature_header(secrets: &[WebhookSecret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets.iter().map(|s| s.sign(id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of the Standard Webhooks reference libraries.
    #[test]
    fn the_reference_vector_signs_as_the_spec_says() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("a secret");
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_generated_secret_parses_and_two_secrets_give_two_signatures() {
        let (a, b) = (WebhookSecret::generate(), WebhookSecret::generate());
        assert!(a.expose().starts_with("whsec_") && WebhookSecret::parse(a.expose()).is_ok());
        let header = signature_header(&[a.clone(), b.clone()], "msg_1", 1, b"{}");
        assert_eq!(header, format!("{} {}", a.sign("msg_1", 1, b"{}"), b.sign("msg_1", 1, b"{}")));
        assert!(WebhookSecret::parse("whsec_short").is_err());
        assert!(WebhookSecret::parse("sk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(!format!("{a:?}").contains(a.expose()));
    }
}
