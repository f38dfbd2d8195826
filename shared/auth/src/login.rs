//! First-party login: bcrypt password check, throttled before bcrypt runs (per email and client
//! network with a growing wait, and per client network: `login_throttle.rs`), the session JWT
//! carried by the `session` cookie, and the login form's CSRF token (a signed double-submit
//! cookie). A successful login gives its admission back: the limits count failures (and
//! attempts still in flight), not sign-ins.

use std::sync::OnceLock;

use squaremcp_core::{Customer, CustomerId, Email, PutMode, Secret, Store, StoreError, Timestamp, random};

use crate::crypto::{b64url, constant_time_eq, hmac_sha256};
use crate::standing::standing;
use crate::jwt::{Role, USER_TOKEN_TYP, UserClaims};
use crate::{Auth, AuthError};

/// A signed-in person, from a valid session cookie.
#[derive(Clone, Debug)]
pub struct Session {
    pub customer_id: CustomerId,
    pub email: String,
    /// Random per login: CSRF tokens are bound to it.
    pub sid: String,
    pub expires_at: i64,
    /// The customer's sign-in generation the cookie was issued under (`standing.rs`).
    pub generation: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown email, wrong password, or no password set: one generic answer for all.
    #[error("the email or password is not correct")]
    Invalid,
    /// Too many failures from this client network, for this email or overall.
    #[error("too many failed attempts; try again in {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// The password was right, but the operator disabled the account.
    #[error("this account is disabled")]
    Disabled,
    #[error(transparent)]
    Server(#[from] AuthError),
}

impl From<StoreError> for LoginError {
    fn from(e: StoreError) -> Self {
        Self::Server(AuthError::Store(e))
    }
}

pub(crate) fn password_key(customer: &CustomerId) -> String {
    format!("login:password:{}", customer.as_str())
}

/// Sets (or replaces) a customer's login password, as a bcrypt hash. It takes precedence over
/// the hash given at creation.
pub async fn store_password_hash(store: &dyn Store, now: Timestamp, customer: &CustomerId, hash: &str) -> Result<(), StoreError> {
    store.put_item(&password_key(customer), hash.as_bytes(), None, PutMode::Replace, now).await
}

/// A hash to verify against when the email is unknown, so that both cases take as long.
pub(crate) fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        bcrypt::hash(random::token::<16>(), bcrypt::DEFAULT_COST)
            .unwrap_or_else(|_| "$2b$12$C6UzMDM.H6dfI/f/IKxGhuP0lOe5KoSV5AJ5sP5z5tZQk6JG6LJqa".to_owned())
    })
}

impl Auth {
    /// Checks the password and returns the session and its cookie value (a JWT).
    pub async fn login(&self, email: &str, password: &str, client_ip: &str) -> Result<(Session, Secret<String>), LoginError> {
        let normalized = email.trim().to_lowercase();
        let store = self.gateway.store();
        let admission = self.admit_login_attempt(&normalized, client_ip).await?;
        // From here on the admission counts as a failure unless the password is right. A
        // server error or a request dropped mid-check leaves it counted too: that fails
        // closed, and the count ends with its window.
        let customer = match Email::parse(&normalized) {
            Ok(email) => store.customer_by_email(&email).await?,
            Err(_) => None,
        };
        let hash = match &customer {
            Some(c) => match store.get_item(&password_key(&c.id), self.now()).await? {
                Some(bytes) => Some(String::from_utf8(bytes).map_err(|_| AuthError::Corrupt("password hash"))?),
                None => c.password_hash.clone(),
            },
            None => None,
        };
        let password = Secret::new(password.to_owned());
        let has_hash = hash.is_some();
        let verified = tokio::task::spawn_blocking(move || {
            let hash = hash.as_deref().unwrap_or_else(|| decoy_hash());
            bcrypt::verify(password.expose(), hash).unwrap_or(false)
        })
        .await
        .map_err(|e| AuthError::Password(e.to_string()))?;
        match customer {
            Some(customer) if verified && has_hash => {
                self.admitted_attempt_succeeded(admission).await;
                let standing = standing(store, self.now(), &customer.id).await?;
                if standing.disabled {
                    tracing::warn!(customer = customer.id.as_str(), "sign-in refused: the account is disabled");
                    return Err(LoginError::Disabled);
                }
                tracing::info!(customer = customer.id.as_str(), "signed in");
                Ok(self.new_session(&customer, standing.generation)?)
            }
            _ => {
                // The admission stays: it is this failure's count.
                self.admitted_attempt_failed(admission).await;
                tracing::info!(client_ip, "failed sign-in");
                Err(LoginError::Invalid)
            }
        }
    }

    pub(crate) fn new_session(&self, customer: &Customer, generation: u64) -> Result<(Session, Secret<String>), AuthError> {
        let now = self.now().unix();
        let sid = random::token::<16>();
        let claims = UserClaims {
            iss: self.settings.issuer().to_owned(),
            aud: self.settings.session_audience(),
            sub: customer.id.as_str().to_owned(),
            email: customer.email.as_str().to_owned(),
            plan: customer.plan.as_str().to_owned(),
            role: Role::Customer,
            iat: now,
            exp: now + self.settings.session_ttl,
            sid: Some(sid.clone()),
            generation,
        };
        let token = self.keys.sign(USER_TOKEN_TYP, &claims)?;
        let session = Session { customer_id: customer.id.clone(), email: claims.email, sid, expires_at: claims.exp, generation };
        Ok((session, Secret::new(token)))
    }

    /// The session a cookie value stands for, if it is a valid, unexpired session token. Its
    /// generation is not checked here: see [`Auth::current_session`].
    pub fn session(&self, cookie_value: &str) -> Option<Session> {
        let audience = self.settings.session_audience();
        let claims =
            self.keys.verify::<UserClaims>(cookie_value, USER_TOKEN_TYP, self.settings.issuer(), &audience, self.now().unix())?;
        Some(Session {
            customer_id: CustomerId::parse(&claims.sub).ok()?,
            email: claims.email,
            sid: claims.sid?,
            expires_at: claims.exp,
            generation: claims.generation,
        })
    }

    /// [`Auth::session`], then the customer's standing (one store read): a cookie issued before
    /// the sessions were revoked, or of a disabled account, is no session.
    pub async fn current_session(&self, cookie_value: &str) -> Result<Option<Session>, AuthError> {
        let Some(session) = self.session(cookie_value) else { return Ok(None) };
        let standing = standing(self.gateway.store(), self.now(), &session.customer_id).await?;
        Ok(standing.admits(session.generation).then_some(session))
    }

    /// A fresh nonce for the login form's CSRF cookie.
    pub fn new_csrf_nonce(&self) -> String {
        random::token::<32>()
    }

    /// The login form's hidden field for a CSRF cookie nonce.
    pub fn login_csrf(&self, nonce: &str) -> String {
        b64url(&hmac_sha256(&self.keys.csrf, format!("login\n{nonce}").as_bytes()))
    }

    pub fn check_login_csrf(&self, nonce: &str, token: &str) -> bool {
        !nonce.is_empty() && constant_time_eq(self.login_csrf(nonce).as_bytes(), token.as_bytes())
    }
}
