//! Self-service sign-up and password reset, when the operator opens them
//! (`SQUAREMCP_SIGNUP=open`).
//!
//! Sign-up keeps nothing but a pending record (`login:signup:<sha256 of the token>`: email,
//! password hash, plan) until the emailed link is confirmed; only then is the customer created.
//! So an unverified address never holds an account or blocks its owner, and nothing needs a
//! "verified" flag. A reset link (`login:reset:<sha256>`) names the customer and the sign-in
//! generation it was issued under: using it bumps the generation (every session and grant
//! ends), which also voids every other reset link still out.
//!
//! No answer tells whether an email has an account: sign-up of a known address mails that
//! address a notice instead of a link, and both paths hash the password; mail is sent in the
//! background, so the answer does not wait for SMTP in one case and not in the other. Links are
//! single-use items with a TTL, stored hashed, and requests are counted per email and per client
//! IP like failed sign-ins.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use squaremcp_core::gateway::GatewayError;
use squaremcp_core::{Customer, CustomerId, Email, Mailer, OutgoingEmail, StoreError, random};

use crate::crypto::sha256_hex;
use crate::login::store_password_hash;
use crate::password::{check_new_password, hash_password};
use crate::standing::{revoke_sessions, standing};
use crate::{Auth, AuthError};

/// What the operator allows. Closed by default: the pages answer 404.
#[derive(Clone, Debug)]
pub struct SignupPolicy {
    pub open: bool,
    /// The plan a new customer starts on.
    pub plan: String,
    /// How long a verification or reset link works, in seconds.
    pub link_ttl: i64,
    /// Sign-up and reset requests per email address, and per client IP, in one hour.
    pub requests_per_email_per_hour: u64,
    pub requests_per_ip_per_hour: u64,
    /// `None`: mail goes out in the background (a long-running server). `Some(floor)`: the
    /// request waits for its mail (a Lambda is frozen once it has answered, and a background
    /// send would stall), and every sign-up or reset request answers no sooner than `floor`
    /// after it arrived, mail or not, so that its timing does not tell a known address.
    pub answer_floor: Option<std::time::Duration>,
}

impl Default for SignupPolicy {
    fn default() -> Self {
        Self {
            open: false,
            plan: "free".to_owned(),
            link_ttl: 3600,
            requests_per_email_per_hour: 5,
            requests_per_ip_per_hour: 30,
            answer_floor: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignupError {
    #[error("sign-up is closed")]
    Closed,
    #[error("that is not an email address")]
    InvalidEmail,
    #[error("{0}")]
    Rejected(&'static str),
    #[error("too many requests; wait an hour")]
    RateLimited,
    /// Unknown, used or expired, or voided by a later password change.
    #[error("the link is invalid, used or expired")]
    InvalidLink,
    /// The address got an account between the sign-up and its confirmation.
    #[error("an account with this email already exists")]
    AlreadyExists,
    #[error(transparent)]
    Server(#[from] AuthError),
}

impl From<StoreError> for SignupError {
    fn from(e: StoreError) -> Self {
        Self::Server(AuthError::Store(e))
    }
}

#[derive(Serialize, Deserialize)]
struct PendingSignup {
    email: String,
    password_hash: String,
    plan: String,
}

#[derive(Serialize, Deserialize)]
struct PendingReset {
    customer_id: CustomerId,
    generation: u64,
}

fn signup_key(token: &str) -> String {
    format!("login:signup:{}", sha256_hex(token))
}

fn reset_key(token: &str) -> String {
    format!("login:reset:{}", sha256_hex(token))
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A link token as it appears in a path: 43 URL-safe characters, checked before any store read.
fn well_formed(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Auth {
    /// Sends mail through `mailer` (sign-up and reset links).
    pub fn with_mailer(mut self, mailer: Arc<dyn Mailer>) -> Self {
        self.mailer = mailer;
        self
    }

    pub fn signup_open(&self) -> bool {
        self.settings.signup.open
    }

    fn require_open(&self) -> Result<(), SignupError> {
        if self.settings.signup.open {
            Ok(())
        } else {
            Err(SignupError::Closed)
        }
    }

    /// Counts one request against the hourly limits of this email and this client IP.
    async fn count_request(
        &self,
        what: &str,
        email: &str,
        client_ip: &str,
    ) -> Result<(), SignupError> {
        let policy = &self.settings.signup;
        let hour = self.now().unix() / 3600;
        let store = self.gateway.store();
        let keys: [(String, u64); 2] = [
            (
                format!("ratelimit:{what}:ip:{client_ip}:{hour}"),
                policy.requests_per_ip_per_hour,
            ),
            (
                format!("ratelimit:{what}:email:{}:{hour}", sha256_hex(email)),
                policy.requests_per_email_per_hour,
            ),
        ];
        // The hour's counters are of no use once it is over: the store deletes them after.
        let hour_ends = squaremcp_core::Timestamp::from_unix((hour + 1) * 3600);
        for (key, limit) in &keys {
            match store.add_to_expiring_counter(key, 1, Some(*limit), hour_ends).await {
                Ok(_) => {}
                Err(StoreError::LimitReached { .. }) => {
                    tracing::warn!(client_ip, what, "refused: too many requests");
                    return Err(SignupError::RateLimited);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Hands `email` to the mailer: in the background, so that the answer to the request does
    /// not take longer when a mail goes out than when none does; or, with an answer floor, within
    /// it (see [`SignupPolicy::answer_floor`]). A failure is logged (without the address).
    async fn send_mail(&self, email: OutgoingEmail) {
        let mailer = self.mailer.clone();
        let send = async move {
            if let Err(error) = mailer.send(&email).await {
                tracing::error!(%error, subject = email.subject, "sign-up or reset mail not sent");
            }
        };
        match self.settings.signup.answer_floor {
            None => drop(tokio::spawn(send)),
            Some(floor) => {
                if tokio::time::timeout(floor, send).await.is_err() {
                    tracing::error!("sign-up or reset mail not sent within the answer floor");
                }
            }
        }
    }

    /// Runs a sign-up or reset request, then waits out the answer floor if there is one.
    async fn paced<T>(&self, request: impl std::future::Future<Output = T>) -> T {
        let Some(floor) = self.settings.signup.answer_floor else { return request.await };
        let started = tokio::time::Instant::now();
        let answer = request.await;
        tokio::time::sleep_until(started + floor).await;
        answer
    }

    fn mail(&self, to: &str, subject: &str, text: String) -> OutgoingEmail {
        let html = format!(
            "<p>{}</p>",
            text.split("\n\n")
                .map(|p| escape_html(p).replace('\n', "<br>"))
                .collect::<Vec<_>>()
                .join("</p><p>")
        );
        OutgoingEmail {
            to: to.to_owned(),
            subject: subject.to_owned(),
            text,
            html,
            message_id: format!("<{}@squaremcp.account>", random::hex_id::<16>()),
        }
    }

    /// `POST /signup`: the same `Ok` whether or not the email already has an account.
    pub async fn signup(&self, email: &str, password: &str, client_ip: &str) -> Result<(), SignupError> {
        self.require_open()?;
        self.paced(self.signup_unpaced(email, password, client_ip)).await
    }

    async fn signup_unpaced(&self, email: &str, password: &str, client_ip: &str) -> Result<(), SignupError> {
        let normalized = email.trim().to_lowercase();
        let parsed = Email::parse(&normalized).map_err(|_| SignupError::InvalidEmail)?;
        check_new_password(password).map_err(SignupError::Rejected)?;
        self.count_request("signup", &normalized, client_ip).await?;
        // Hashed in both cases, so that a known address answers as slowly as a new one.
        let password_hash = hash_password(password).await?;
        let store = self.gateway.store();
        let public = self.settings.public_url.clone();
        if store.customer_by_email(&parsed).await?.is_some() {
            let text = format!(
                "Someone (perhaps you) tried to sign up for SquareMCP with this address, which already has an account.\n\n\
                 Sign in: {public}/login\n\nForgot your password? Reset it: {public}/reset\n\n\
                 If this was not you, ignore this mail; nothing changed."
            );
            self.send_mail(self.mail(&normalized, "You already have a SquareMCP account", text)).await;
            tracing::info!(client_ip, "sign-up of a known address: notice mailed");
            return Ok(());
        }
        let token = random::token::<32>();
        let pending = PendingSignup {
            email: normalized.clone(),
            password_hash,
            plan: self.settings.signup.plan.clone(),
        };
        let bytes =
            serde_json::to_vec(&pending).map_err(|_| AuthError::Corrupt("pending sign-up"))?;
        let now = self.now();
        store
            .put_single_use(
                &signup_key(&token),
                &bytes,
                now.plus_seconds(self.settings.signup.link_ttl),
                now,
            )
            .await?;
        let minutes = self.settings.signup.link_ttl / 60;
        let text = format!(
            "Confirm your email address to create your SquareMCP account:\n\n{public}/signup/verify/{token}\n\n\
             The link works once, for {minutes} minutes. If you did not sign up, ignore this mail."
        );
        self.send_mail(self.mail(&normalized, "Confirm your SquareMCP account", text)).await;
        tracing::info!(client_ip, "sign-up: verification link mailed");
        Ok(())
    }

    /// The confirmation of a sign-up link: creates the customer (once; the link is used up).
    pub async fn verify_signup(&self, token: &str) -> Result<Customer, SignupError> {
        self.require_open()?;
        if !well_formed(token) {
            return Err(SignupError::InvalidLink);
        }
        let Some(bytes) = self
            .gateway
            .store()
            .take_single_use(&signup_key(token), self.now())
            .await?
        else {
            return Err(SignupError::InvalidLink);
        };
        let pending: PendingSignup =
            serde_json::from_slice(&bytes).map_err(|_| AuthError::Corrupt("pending sign-up"))?;
        match self
            .gateway
            .create_customer(&pending.email, &pending.plan, Some(pending.password_hash))
            .await
        {
            Ok(customer) => {
                tracing::info!(
                    customer = customer.id.as_str(),
                    plan = customer.plan.as_str(),
                    "signed up"
                );
                Ok(customer)
            }
            Err(GatewayError::EmailTaken(_)) => Err(SignupError::AlreadyExists),
            Err(GatewayError::Store(e)) => Err(e.into()),
            Err(e) => {
                tracing::error!(error = %e, "a confirmed sign-up could not create the customer");
                Err(SignupError::Server(AuthError::Corrupt("pending sign-up")))
            }
        }
    }

    /// `POST /reset`: the same `Ok` whether or not the email has an account.
    pub async fn request_reset(&self, email: &str, client_ip: &str) -> Result<(), SignupError> {
        self.require_open()?;
        self.paced(self.request_reset_unpaced(email, client_ip)).await
    }

    async fn request_reset_unpaced(&self, email: &str, client_ip: &str) -> Result<(), SignupError> {
        let normalized = email.trim().to_lowercase();
        let parsed = Email::parse(&normalized).map_err(|_| SignupError::InvalidEmail)?;
        self.count_request("reset", &normalized, client_ip).await?;
        let store = self.gateway.store();
        let now = self.now();
        let Some(customer) = store.customer_by_email(&parsed).await? else {
            tracing::info!(
                client_ip,
                "reset requested for an unknown address: nothing sent"
            );
            return Ok(());
        };
        let standing = standing(store, now, &customer.id).await?;
        if standing.disabled {
            tracing::info!(
                customer = customer.id.as_str(),
                "reset requested for a disabled account: nothing sent"
            );
            return Ok(());
        }
        let token = random::token::<32>();
        let pending = PendingReset {
            customer_id: customer.id.clone(),
            generation: standing.generation,
        };
        let bytes =
            serde_json::to_vec(&pending).map_err(|_| AuthError::Corrupt("pending reset"))?;
        store
            .put_single_use(
                &reset_key(&token),
                &bytes,
                now.plus_seconds(self.settings.signup.link_ttl),
                now,
            )
            .await?;
        let public = &self.settings.public_url;
        let minutes = self.settings.signup.link_ttl / 60;
        let text = format!(
            "To choose a new password for your SquareMCP account, open:\n\n{public}/reset/{token}\n\n\
             The link works once, for {minutes} minutes. Setting a new password signs you out everywhere and \
             disconnects your MCP clients. If you did not ask for this, ignore this mail; nothing changed."
        );
        self.send_mail(self.mail(customer.email.as_str(), "Reset your SquareMCP password", text)).await;
        tracing::info!(customer = customer.id.as_str(), "reset link mailed");
        Ok(())
    }

    /// `POST /reset/{token}`: sets the new password (the link is used up only by a password
    /// that meets the rules) and revokes every session and grant of the customer.
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: &str,
    ) -> Result<CustomerId, SignupError> {
        self.require_open()?;
        if !well_formed(token) {
            return Err(SignupError::InvalidLink);
        }
        check_new_password(new_password).map_err(SignupError::Rejected)?;
        let store = self.gateway.store();
        let Some(bytes) = store.take_single_use(&reset_key(token), self.now()).await? else {
            return Err(SignupError::InvalidLink);
        };
        let pending: PendingReset =
            serde_json::from_slice(&bytes).map_err(|_| AuthError::Corrupt("pending reset"))?;
        if !standing(store, self.now(), &pending.customer_id)
            .await?
            .admits(pending.generation)
        {
            tracing::info!(
                customer = pending.customer_id.as_str(),
                "reset link refused: issued before a later change"
            );
            return Err(SignupError::InvalidLink);
        }
        let hash = hash_password(new_password).await?;
        store_password_hash(store, self.now(), &pending.customer_id, &hash).await?;
        revoke_sessions(store, self.now(), &pending.customer_id).await?;
        tracing::info!(
            customer = pending.customer_id.as_str(),
            "password reset; sessions and grants revoked"
        );
        Ok(pending.customer_id)
    }
}
