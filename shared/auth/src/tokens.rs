//! The token endpoint (RFC 6749 §4.1.3, §6), revocation (RFC 7009) and access-token checks on
//! `/mcp`.
//!
//! A grant is a refresh-token family (`oauth:family:<id>`): who, which client, which resource,
//! and the hashes of its refresh tokens. Refresh tokens rotate on every use. The token just
//! rotated stays usable for a short grace window, so that two concurrent refreshes both
//! succeed; a token used after that, or any older one, is a reuse: the whole family is
//! revoked. Access tokens are JWTs naming their family, so deleting the family revokes them.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use squaremcp_core::{AuthMethod, CustomerId, PutMode, Principal, Secret, StoreError, random};

use crate::authorize::{CodeGrant, code_key, used_code_key, valid_verifier};
use crate::clients::{Client, ClientCredentials};
use crate::crypto::{constant_time_eq, s256, sha256_hex};
use crate::jwt::{ACCESS_TOKEN_TYP, AccessClaims, Keys, Role, USER_TOKEN_TYP, UserClaims};
use crate::standing::standing;
use crate::uris::canonical_resource;
use crate::{Auth, AuthError, OAuthError, SCOPE};

/// Older refresh-token hashes kept per family for reuse detection.
const RETIRED_KEPT: usize = 32;
/// Tokens issued from the grace-window token that may coexist with the current one.
const MAX_CURRENT: usize = 4;
const CAS_ATTEMPTS: usize = 5;

/// The form of a token request, as sent.
#[derive(Debug, Default, Deserialize)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub resource: Option<String>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// RFC 6749 §5.1.
pub struct TokenResponse {
    pub access_token: Secret<String>,
    pub refresh_token: Secret<String>,
    pub expires_in: i64,
    pub scope: String,
}

impl TokenResponse {
    pub fn to_json(&self) -> Value {
        json!({
            "access_token": self.access_token.expose(),
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token.expose(),
            "scope": self.scope,
        })
    }
}

/// The result of checking `Authorization: Bearer <JWT>` on `/mcp`.
#[derive(Debug)]
pub enum BearerCheck {
    Valid(Principal, AuthMethod),
    /// Bad signature, wrong issuer or audience, expired, revoked or malformed.
    Invalid,
    /// Valid, but without the `mcp` scope: 403 `insufficient_scope`.
    InsufficientScope,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Family {
    customer_id: CustomerId,
    client_id: String,
    scope: String,
    resource: String,
    created_at: i64,
    /// Hashes of the refresh tokens that are valid now.
    current: Vec<String>,
    /// The token rotated last and until when it may still be used.
    previous: Option<(String, i64)>,
    /// Older hashes: presenting one of them is a reuse.
    retired: Vec<String>,
    /// The customer's sign-in generation when granted (`standing.rs`): checked on refresh.
    #[serde(default)]
    generation: u64,
}

pub(crate) fn family_key(id: &str) -> String {
    format!("oauth:family:{id}")
}

/// The customer a stored family belongs to, for the account page.
pub(crate) fn family_customer(bytes: &[u8]) -> Option<CustomerId> {
    decode_family(bytes).ok().map(|family| family.customer_id)
}

/// `sqr_<family: 32 hex>_<secret>`: the family is found without an index; only the hash of
/// the whole token is stored.
fn new_refresh_token(family_id: &str) -> Secret<String> {
    Secret::new(format!("sqr_{family_id}_{}", random::token::<32>()))
}

fn family_of(refresh_token: &str) -> Option<&str> {
    let rest = refresh_token.strip_prefix("sqr_")?;
    let (family, secret) = (rest.get(..32)?, rest.get(32..)?);
    let secret = secret.strip_prefix('_')?;
    let ok = family.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && secret.len() == 43
        && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(family)
}

fn invalid_grant(why: &str) -> OAuthError {
    OAuthError::InvalidGrant(why.to_owned())
}

fn decode_family(bytes: &[u8]) -> Result<Family, AuthError> {
    serde_json::from_slice(bytes).map_err(|_| AuthError::Corrupt("token family"))
}

fn encode_family(family: &Family) -> Result<Vec<u8>, AuthError> {
    serde_json::to_vec(family).map_err(|_| AuthError::Corrupt("token family"))
}

impl Auth {
    /// `POST /oauth/token`.
    pub async fn token(&self, request: TokenRequest, credentials: ClientCredentials) -> Result<TokenResponse, OAuthError> {
        let grant_type = request.grant_type.as_deref().unwrap_or_default();
        if !matches!(grant_type, "authorization_code" | "refresh_token") {
            return Err(if grant_type.is_empty() {
                OAuthError::InvalidRequest("grant_type is required".into())
            } else {
                OAuthError::UnsupportedGrantType(format!("grant_type `{grant_type}` is not supported"))
            });
        }
        let client = self.authenticate_client(&credentials).await?;
        match grant_type {
            "authorization_code" => self.exchange_code(&client, &request).await,
            _ => self.refresh(&client, &request).await,
        }
    }

    async fn exchange_code(&self, client: &Client, request: &TokenRequest) -> Result<TokenResponse, OAuthError> {
        let code = request.code.as_deref().filter(|c| !c.is_empty()).ok_or_else(|| OAuthError::InvalidRequest("code is required".into()))?;
        let hash = sha256_hex(code);
        let now = self.now();
        let store = self.gateway.store();
        let Some(bytes) = store.take_single_use(&code_key(&hash), now).await? else {
            // A replayed code revokes what it issued (RFC 6749 §4.1.2).
            if let Some(family_id) = store.get_item(&used_code_key(&hash), now).await? {
                let family_id = String::from_utf8_lossy(&family_id).into_owned();
                store.delete_item(&family_key(&family_id)).await?;
                tracing::warn!(client_id = client.client_id, "authorization code replayed: its grant is revoked");
            }
            return Err(invalid_grant("the authorization code is invalid, expired or already used"));
        };
        let grant: CodeGrant = serde_json::from_slice(&bytes).map_err(|_| AuthError::Corrupt("authorization code"))?;
        if grant.client_id != client.client_id {
            return Err(invalid_grant("the authorization code was issued to another client"));
        }
        match request.redirect_uri.as_deref() {
            Some(uri) if uri == grant.redirect_uri => {}
            None if !grant.redirect_uri_given => {}
            _ => return Err(invalid_grant("redirect_uri differs from the authorization request's")),
        }
        let Some(verifier) = request.code_verifier.as_deref() else {
            return Err(OAuthError::InvalidRequest("code_verifier is required (PKCE)".into()));
        };
        if !valid_verifier(verifier) || !constant_time_eq(s256(verifier).as_bytes(), grant.code_challenge.as_bytes()) {
            return Err(invalid_grant("the PKCE code_verifier does not match the code_challenge"));
        }
        self.check_resource(request.resource.as_deref(), &grant.resource)?;
        // A code issued before the customer's sessions were revoked (or the account disabled)
        // creates no grant.
        if !standing(store, now, &grant.customer_id).await?.admits(grant.generation) {
            return Err(invalid_grant("the authorization code was revoked; sign in again"));
        }

        let expires = Some(squaremcp_core::Timestamp::from_unix(grant.expires_at).plus_seconds(3600));
        match store.put_item(&used_code_key(&hash), grant.family_id.as_bytes(), expires, PutMode::CreateOnly, now).await {
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let refresh_token = new_refresh_token(&grant.family_id);
        let family = Family {
            customer_id: grant.customer_id,
            client_id: grant.client_id,
            scope: grant.scope,
            resource: grant.resource,
            created_at: now.unix(),
            current: vec![sha256_hex(refresh_token.expose())],
            previous: None,
            retired: Vec::new(),
            generation: grant.generation,
        };
        let family_expires = Some(now.plus_seconds(self.settings.refresh_token_ttl.min(self.settings.grant_max_age)));
        store.put_item(&family_key(&grant.family_id), &encode_family(&family)?, family_expires, PutMode::CreateOnly, now).await?;
        self.mark_used(client).await?;
        self.index_grant(&family.customer_id, &grant.family_id, &client.client_id, client.display_name()).await;
        tracing::info!(customer = family.customer_id.as_str(), client_id = client.client_id, "issued tokens for a code");
        self.respond(&grant.family_id, &family, refresh_token)
    }

    fn check_resource(&self, presented: Option<&str>, bound: &str) -> Result<(), OAuthError> {
        match presented {
            None | Some("") => Ok(()),
            Some(resource) => match canonical_resource(resource, &self.settings.public_url) {
                Some(canonical) if canonical == bound => Ok(()),
                _ => Err(OAuthError::InvalidTarget("resource must be this server's MCP endpoint".into())),
            },
        }
    }

    async fn refresh(&self, client: &Client, request: &TokenRequest) -> Result<TokenResponse, OAuthError> {
        let presented =
            request.refresh_token.as_deref().filter(|t| !t.is_empty()).ok_or_else(|| OAuthError::InvalidRequest("refresh_token is required".into()))?;
        let family_id = family_of(presented).ok_or_else(|| invalid_grant("the refresh token is invalid"))?;
        let hash = sha256_hex(presented);
        let store = self.gateway.store();
        let key = family_key(family_id);
        for _ in 0..CAS_ATTEMPTS {
            let now = self.now();
            let Some(bytes) = store.get_item(&key, now).await? else {
                return Err(invalid_grant("the refresh token is revoked or expired"));
            };
            let family = decode_family(&bytes)?;
            if family.client_id != client.client_id {
                return Err(invalid_grant("the refresh token was issued to another client"));
            }
            self.check_resource(request.resource.as_deref(), &family.resource)?;
            if now.unix() >= family.created_at.saturating_add(self.settings.grant_max_age) {
                store.delete_item(&key).await?;
                tracing::info!(customer = family.customer_id.as_str(), client_id = client.client_id, "grant reached its maximum age");
                return Err(invalid_grant("the grant has reached its maximum age; sign in again"));
            }
            if !standing(store, now, &family.customer_id).await?.admits(family.generation) {
                store.delete_item(&key).await?;
                tracing::info!(customer = family.customer_id.as_str(), client_id = client.client_id, "refresh refused: sessions were revoked");
                return Err(invalid_grant("the grant was revoked; sign in again"));
            }
            let refresh_token = new_refresh_token(family_id);
            let new_hash = sha256_hex(refresh_token.expose());
            let mut next = family.clone();
            if family.current.contains(&hash) {
                next.retired.extend(family.previous.iter().map(|(h, _)| h.clone()));
                next.retired.extend(family.current.iter().filter(|h| **h != hash).cloned());
                next.previous = Some((hash.clone(), now.unix() + self.settings.refresh_grace));
                next.current = vec![new_hash];
            } else if family.previous.as_ref().is_some_and(|(h, until)| *h == hash && now.unix() < *until) {
                // A concurrent refresh with the token just rotated: both callers get a working token.
                next.current.push(new_hash);
                if next.current.len() > MAX_CURRENT {
                    let oldest = next.current.remove(0);
                    next.retired.push(oldest);
                }
            } else if family.retired.contains(&hash) || family.previous.as_ref().is_some_and(|(h, _)| *h == hash) {
                store.delete_item(&key).await?;
                tracing::warn!(
                    customer = family.customer_id.as_str(),
                    client_id = client.client_id,
                    "refresh token reused: its family is revoked"
                );
                return Err(invalid_grant("the refresh token was already used; sign in again"));
            } else {
                return Err(invalid_grant("the refresh token is invalid"));
            }
            let excess = next.retired.len().saturating_sub(RETIRED_KEPT);
            next.retired.drain(..excess);
            // Never past the grant's absolute lifetime, however often it is refreshed.
            let ends = family.created_at.saturating_add(self.settings.grant_max_age);
            let expires = Some(squaremcp_core::Timestamp::from_unix((now.unix() + self.settings.refresh_token_ttl).min(ends)));
            if store.swap_item(&key, &bytes, &encode_family(&next)?, expires, now).await? {
                self.touch_grant(&next.customer_id, family_id).await;
                return self.respond(family_id, &next, refresh_token);
            }
            // Another refresh changed the family in between: read it again.
        }
        Err(OAuthError::Server(AuthError::Store(StoreError::Unavailable("token family kept changing".into()))))
    }

    fn respond(&self, family_id: &str, family: &Family, refresh_token: Secret<String>) -> Result<TokenResponse, OAuthError> {
        let now = self.now().unix();
        let claims = AccessClaims {
            iss: self.settings.issuer().to_owned(),
            aud: family.resource.clone(),
            sub: family.customer_id.as_str().to_owned(),
            client_id: family.client_id.clone(),
            scope: family.scope.clone(),
            fam: family_id.to_owned(),
            generation: family.generation,
            jti: random::hex_id::<16>(),
            iat: now,
            exp: now + self.settings.access_token_ttl,
        };
        let access_token = Secret::new(self.keys.sign(ACCESS_TOKEN_TYP, &claims)?);
        Ok(TokenResponse { access_token, refresh_token, expires_in: self.settings.access_token_ttl, scope: family.scope.clone() })
    }

    /// `POST /oauth/revoke` (RFC 7009): revokes the grant behind a refresh or access token of
    /// this client. Unknown tokens are not an error.
    pub async fn revoke(&self, token: &str, credentials: ClientCredentials) -> Result<(), OAuthError> {
        let client = self.authenticate_client(&credentials).await?;
        let now = self.now();
        let family_id = match family_of(token) {
            Some(family) => Some(family.to_owned()),
            None => self
                .keys
                .verify::<AccessClaims>(token, ACCESS_TOKEN_TYP, self.settings.issuer(), &self.settings.resource(), now.unix())
                .map(|claims| claims.fam),
        };
        let Some(family_id) = family_id else { return Ok(()) };
        let store = self.gateway.store();
        let key = family_key(&family_id);
        if let Some(bytes) = store.get_item(&key, now).await? {
            let family = decode_family(&bytes)?;
            if family.client_id == client.client_id {
                store.delete_item(&key).await?;
                tracing::info!(customer = family.customer_id.as_str(), client_id = client.client_id, "grant revoked");
            }
        }
        Ok(())
    }

    /// `Authorization: Bearer <JWT>` on `/mcp`: an OAuth access token (signature, issuer,
    /// audience, expiry, then its grant in the store) or a user token `{sub, email, plan, role}`
    /// for the MCP audience. A session cookie's token has another audience and is refused.
    pub async fn authenticate_bearer(&self, token: &str) -> Result<BearerCheck, AuthError> {
        let now = self.now().unix();
        let issuer = self.settings.issuer();
        let resource = self.settings.resource();
        match Keys::typ(token).as_deref() {
            Some(ACCESS_TOKEN_TYP) => {
                let Some(claims) = self.keys.verify::<AccessClaims>(token, ACCESS_TOKEN_TYP, issuer, &resource, now) else {
                    return Ok(BearerCheck::Invalid);
                };
                let Ok(customer) = CustomerId::parse(&claims.sub) else { return Ok(BearerCheck::Invalid) };
                let Some(bytes) = self.gateway.store().get_item(&family_key(&claims.fam), self.now()).await? else {
                    return Ok(BearerCheck::Invalid);
                };
                let family = decode_family(&bytes)?;
                // The grant is deleted when the customer's sessions are revoked; the generation
                // ties the token to this grant's, not to one recreated under the same id.
                if family.customer_id != customer || family.client_id != claims.client_id || family.generation != claims.generation {
                    return Ok(BearerCheck::Invalid);
                }
                if !claims.scope.split(' ').any(|s| s == SCOPE) {
                    return Ok(BearerCheck::InsufficientScope);
                }
                Ok(BearerCheck::Valid(Principal::Customer { id: customer }, AuthMethod::OAuth))
            }
            Some(USER_TOKEN_TYP) => {
                let Some(claims) = self.keys.verify::<UserClaims>(token, USER_TOKEN_TYP, issuer, &resource, now) else {
                    return Ok(BearerCheck::Invalid);
                };
                Ok(match claims.role {
                    Role::Admin => BearerCheck::Valid(Principal::Superadmin, AuthMethod::Jwt),
                    Role::Customer => match CustomerId::parse(&claims.sub) {
                        // Operator-minted tokens are long-lived: one read of the standing so
                        // that revoking sessions or disabling the account ends them too.
                        Ok(id) if standing(self.gateway.store(), self.now(), &id).await?.admits(claims.generation) => {
                            BearerCheck::Valid(Principal::Customer { id }, AuthMethod::Jwt)
                        }
                        _ => BearerCheck::Invalid,
                    },
                })
            }
            _ => Ok(BearerCheck::Invalid),
        }
    }

    /// A bearer JWT `{sub, email, plan, role}` for `/mcp`, for operators and tests.
    pub async fn mint_user_token(&self, customer: &squaremcp_core::Customer, ttl_seconds: i64) -> Result<Secret<String>, AuthError> {
        let generation = standing(self.gateway.store(), self.now(), &customer.id).await?.generation;
        let now = self.now().unix();
        let claims = UserClaims {
            iss: self.settings.issuer().to_owned(),
            aud: self.settings.resource(),
            sub: customer.id.as_str().to_owned(),
            email: customer.email.as_str().to_owned(),
            plan: customer.plan.as_str().to_owned(),
            role: Role::Customer,
            iat: now,
            exp: now + ttl_seconds,
            sid: None,
            generation,
        };
        self.keys.sign(USER_TOKEN_TYP, &claims).map(Secret::new)
    }
}

#[cfg(test)]
pub(crate) fn parse_family(token: &str) -> Option<&str> {
    family_of(token)
}
