//! Who is calling `/mcp`, in this priority order:
//! 1. `x-api-key` equal to the admin key, 2. `x-api-key` a customer key,
//! 3. `Authorization: Bearer`: a JWT (an OAuth access token, or a user token
//!    `{sub, email, plan, role}` for this audience), or a customer/admin key for clients that can
//!    only send bearer tokens.
//!
//! Session cookies and query-string tokens are never accepted here.

use http::HeaderMap;
use http::header::AUTHORIZATION;
use squaremcp_auth::{Auth, AuthError, BearerCheck};
use squaremcp_core::{AuthMethod, Principal};

#[derive(Clone, Debug)]
pub struct Authenticated {
    pub principal: Principal,
    pub method: AuthMethod,
}

pub enum AuthOutcome {
    Authenticated(Authenticated),
    /// No credentials at all: the challenge tells clients where to start OAuth.
    Missing,
    /// Credentials were presented and are wrong, revoked, expired or malformed.
    Invalid,
    /// A valid token without the scope `/mcp` needs.
    InsufficientScope,
}

/// Three base64url segments: a JWT, not an API key.
fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.starts_with("eyJ")
}

pub async fn authenticate(auth: &Auth, headers: &HeaderMap) -> Result<AuthOutcome, AuthError> {
    let (presented, bearer) = match headers.get("x-api-key") {
        Some(value) => (value.to_str().ok().map(str::trim), false),
        None => match headers.get(AUTHORIZATION) {
            Some(value) => (
                value.to_str().ok().and_then(|v| {
                    let (scheme, token) = v.trim().split_once(' ')?;
                    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
                }),
                true,
            ),
            None => return Ok(AuthOutcome::Missing),
        },
    };
    let Some(presented) = presented.filter(|p| !p.is_empty()) else { return Ok(AuthOutcome::Invalid) };
    if bearer && looks_like_jwt(presented) {
        return Ok(match auth.authenticate_bearer(presented).await? {
            BearerCheck::Valid(principal, method) => AuthOutcome::Authenticated(Authenticated { principal, method }),
            BearerCheck::Invalid => AuthOutcome::Invalid,
            BearerCheck::InsufficientScope => AuthOutcome::InsufficientScope,
        });
    }
    Ok(match auth.gateway().authenticate_api_key(presented).await? {
        Some((principal, method)) => AuthOutcome::Authenticated(Authenticated { principal, method }),
        None => AuthOutcome::Invalid,
    })
}
