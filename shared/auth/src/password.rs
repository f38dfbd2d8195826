//! Choosing and changing a password: the rules a new one must meet, hashing it off the async
//! threads, and the account page's change, which ends every other sign-in of the customer.

use squaremcp_core::{Secret, StoreError};

use crate::login::{LoginError, Session, password_key, store_password_hash};
use crate::standing::revoke_sessions;
use crate::{Auth, AuthError};

pub const MIN_PASSWORD_CHARS: usize = 8;
/// bcrypt ignores what follows its 72nd byte: refuse longer ones rather than truncate silently.
pub const MAX_PASSWORD_BYTES: usize = 72;

/// Why a new password is refused; the text is shown to the person.
pub fn check_new_password(password: &str) -> Result<(), &'static str> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err("The password must have at least 8 characters.");
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err("The password must be at most 72 bytes long.");
    }
    Ok(())
}

/// A bcrypt hash at the default cost, computed on a blocking thread.
pub(crate) async fn hash_password(password: &str) -> Result<String, AuthError> {
    let password = Secret::new(password.to_owned());
    tokio::task::spawn_blocking(move || bcrypt::hash(password.expose(), bcrypt::DEFAULT_COST))
        .await
        .map_err(|e| AuthError::Password(e.to_string()))?
        .map_err(|e| AuthError::Password(e.to_string()))
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    #[error("the current password is not correct")]
    WrongPassword,
    #[error("{0}")]
    Rejected(&'static str),
    #[error("too many failed attempts; try again in {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error(transparent)]
    Server(#[from] AuthError),
}

impl From<StoreError> for PasswordChangeError {
    fn from(e: StoreError) -> Self {
        Self::Server(AuthError::Store(e))
    }
}

impl Auth {
    /// Changes the signed-in customer's password after checking the current one (counted
    /// against the same failure limits as sign-in), then revokes every session and grant and
    /// returns a new session (and cookie) for this browser only.
    pub async fn change_password(
        &self,
        session: &Session,
        current: &str,
        new: &str,
        client_ip: &str,
    ) -> Result<(Session, Secret<String>), PasswordChangeError> {
        check_new_password(new).map_err(PasswordChangeError::Rejected)?;
        let store = self.gateway.store();
        let customer = self
            .gateway
            .require_customer(&session.customer_id)
            .await
            .map_err(|_| PasswordChangeError::WrongPassword)?;
        // The same throttle as sign-in: the current password is guessed the same way.
        let admission = self
            .admit_login_attempt(customer.email.as_str(), client_ip)
            .await
            .map_err(|e| match e {
                LoginError::RateLimited { retry_after } => PasswordChangeError::RateLimited { retry_after },
                LoginError::Server(e) => PasswordChangeError::Server(e),
                LoginError::Invalid | LoginError::Disabled => PasswordChangeError::WrongPassword,
            })?;
        let hash = match store
            .get_item(&password_key(&customer.id), self.now())
            .await?
        {
            Some(bytes) => {
                Some(String::from_utf8(bytes).map_err(|_| AuthError::Corrupt("password hash"))?)
            }
            None => customer.password_hash.clone(),
        };
        let Some(hash) = hash else {
            return Err(PasswordChangeError::WrongPassword);
        };
        let presented = Secret::new(current.to_owned());
        let verified = tokio::task::spawn_blocking(move || {
            bcrypt::verify(presented.expose(), &hash).unwrap_or(false)
        })
        .await
        .map_err(|e| AuthError::Password(e.to_string()))?;
        if !verified {
            self.admitted_attempt_failed(admission).await;
            tracing::info!(
                customer = customer.id.as_str(),
                "password change refused: wrong current password"
            );
            return Err(PasswordChangeError::WrongPassword);
        }
        self.admitted_attempt_succeeded(admission).await;
        let new_hash = hash_password(new).await?;
        store_password_hash(store, self.now(), &customer.id, &new_hash).await?;
        let standing = revoke_sessions(store, self.now(), &customer.id).await?;
        tracing::info!(
            customer = customer.id.as_str(),
            "password changed; other sessions and grants revoked"
        );
        Ok(self.new_session(&customer, standing.generation)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_passwords_are_checked_for_length() {
        assert!(check_new_password("1234567").is_err());
        assert!(check_new_password("12345678").is_ok());
        assert!(check_new_password(&"x".repeat(72)).is_ok());
        assert!(check_new_password(&"x".repeat(73)).is_err());
        // Characters, not bytes, count towards the minimum.
        assert!(check_new_password("ééééééé").is_err());
    }
}
