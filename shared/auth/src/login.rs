//! First-party login: bcrypt password check with rate limits on failures (per email and per
//! client IP, in the store), the session JWT carried by the `session` cookie, and the login
//! form's CSRF token (a signed double-submit cookie).
//!
//! Each attempt reserves its place in both failure counters before bcrypt runs, with one atomic
//! conditional add each, so that guesses in flight at the same time cannot all pass a check made
//! before any of them is counted. A successful login gives its reservations back: the limits
//! count failures (and attempts still in flight), not sign-ins.

use std::sync::OnceLock;

use squaremcp_core::{Customer, CustomerId, Email, PutMode, Secret, Store, StoreError, Timestamp, random};

use crate::crypto::{b64url, constant_time_eq, hmac_sha256, sha256_hex};
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
    #[error("too many failed attempts; wait a few minutes")]
    RateLimited,
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

/// Reserves one attempt in the failure counter `key`: `RateLimited` once it holds `limit`
/// (failures, and attempts still being checked).
pub(crate) async fn reserve_attempt(store: &dyn Store, key: &str, limit: u64, client_ip: &str) -> Result<(), LoginError> {
    match store.add_to_counter(key, 1, Some(limit)).await {
        Ok(_) => Ok(()),
        Err(StoreError::LimitReached { .. }) => {
            tracing::warn!(client_ip, "login refused: too many failed attempts");
            Err(LoginError::RateLimited)
        }
        Err(e) => Err(e.into()),
    }
}

/// Gives back an attempt reserved by `reserve_attempt`.
pub(crate) async fn give_back(store: &dyn Store, key: &str) {
    // Failing to give it back only leaves the attempt counted until its window ends, so the
    // answer to the caller does not change; the counter is not named, as it holds the client IP.
    if let Err(error) = store.subtract_from_counter(key, 1).await {
        tracing::warn!(%error, "a login attempt's reservation could not be given back");
    }
}

impl Auth {
    /// Checks the password and returns the session and its cookie value (a JWT).
    pub async fn login(&self, email: &str, password: &str, client_ip: &str) -> Result<(Session, Secret<String>), LoginError> {
        let normalized = email.trim().to_lowercase();
        let window = self.now().unix() / self.settings.login_window.max(1);
        let email_key = format!("ratelimit:login:email:{}:{window}", sha256_hex(&normalized));
        let ip_key = format!("ratelimit:login:ip:{client_ip}:{window}");
        let store = self.gateway.store();
        reserve_attempt(store, &email_key, self.settings.login_failures_per_email, client_ip).await?;
        if let Err(refused) = reserve_attempt(store, &ip_key, self.settings.login_failures_per_ip, client_ip).await {
            // This attempt never reaches bcrypt, so it is no failure for the email: give its
            // reservation back, or a caller at its IP limit could still use up (and so lock)
            // someone's email budget with requests that are refused anyway.
            give_back(store, &email_key).await;
            return Err(refused);
        }
        // From here on both reservations are spent unless the password is right. A server error
        // or a request dropped mid-check leaves them spent too: that fails closed, and they end
        // with the window.
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
                give_back(store, &email_key).await;
                give_back(store, &ip_key).await;
                let standing = standing(store, self.now(), &customer.id).await?;
                if standing.disabled {
                    tracing::warn!(customer = customer.id.as_str(), "sign-in refused: the account is disabled");
                    return Err(LoginError::Disabled);
                }
                tracing::info!(customer = customer.id.as_str(), "signed in");
                Ok(self.new_session(&customer, standing.generation)?)
            }
            _ => {
                // The reservations stay: they are this failure's count.
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
