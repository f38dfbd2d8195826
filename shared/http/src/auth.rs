//! Who is calling `/mcp`: `x-api-key` (the admin key or a customer key), or a customer key sent
//! as `Authorization: Bearer sqm_…` for clients that can only send bearer tokens. Session
//! cookies and query-string tokens are never accepted here.

use http::HeaderMap;
use http::header::AUTHORIZATION;
use squaremcp_core::{AuthMethod, Gateway, Principal, StoreError};

#[derive(Clone, Debug)]
pub struct Authenticated {
    pub principal: Principal,
    pub method: AuthMethod,
}

pub enum AuthOutcome {
    Authenticated(Authenticated),
    /// No credentials at all: the challenge tells clients where to start OAuth.
    Missing,
    /// Credentials were presented and are wrong, revoked or malformed.
    Invalid,
}

pub async fn authenticate(gateway: &Gateway, headers: &HeaderMap) -> Result<AuthOutcome, StoreError> {
    let presented = match headers.get("x-api-key") {
        Some(value) => value.to_str().ok().map(str::trim),
        None => match headers.get(AUTHORIZATION) {
            Some(value) => value.to_str().ok().and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            }),
            None => return Ok(AuthOutcome::Missing),
        },
    };
    let Some(presented) = presented.filter(|p| !p.is_empty()) else { return Ok(AuthOutcome::Invalid) };
    Ok(match gateway.authenticate_api_key(presented).await? {
        Some((principal, method)) => AuthOutcome::Authenticated(Authenticated { principal, method }),
        None => AuthOutcome::Invalid,
    })
}
