//! The authorization endpoint: validating a request (RFC 6749 §4.1.1, RFC 7636, RFC 8707),
//! the pending request kept server-side while the person decides, remembered consent, and
//! authorization codes (single use, 10 minutes, bound to everything they grant).

use serde::{Deserialize, Serialize};
use squaremcp_core::{CustomerId, PutMode, random};
use url::Url;

use crate::client_documents::{ClientDocumentError, is_document_client_id};
use crate::crypto::{b64url, constant_time_eq, hmac_sha256, sha256_hex};
use crate::login::Session;
use crate::uris::{canonical_resource, display_host, redirect_uri_matches};
use crate::{Auth, AuthError, AuthSettings, SCOPE};

/// The query (GET) of an authorization request, as sent.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub scope: Option<String>,
    pub resource: Option<String>,
}

/// A validated authorization request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub client_name: String,
    /// As presented (or the only registered one when none was): codes are bound to it.
    pub redirect_uri: String,
    pub redirect_uri_given: bool,
    /// The registered URI it matched: consent is remembered against it.
    pub registered_redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge: String,
    pub resource: String,
    pub scope: String,
    /// For a metadata-document client, the host of its `client_id` URL: the one fact about it
    /// that a look-alike `client_name` cannot fake, shown prominently on the consent page.
    #[serde(default)]
    pub client_host: Option<String>,
}

impl AuthorizationRequest {
    /// The host the person will be sent back to, for the consent page.
    pub fn redirect_host(&self) -> String {
        display_host(&self.redirect_uri)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    /// Shown as an error page; never redirected (RFC 6749 §4.1.2.1).
    #[error("the request has no client_id")]
    MissingClient,
    #[error("unknown client")]
    UnknownClient,
    #[error("{0}")]
    BadRedirectUri(String),
    /// A metadata-document client whose document could not be fetched or is invalid: shown
    /// (`invalid_client`), never redirected, since its redirect URIs are unknown.
    #[error("{0}")]
    ClientDocument(String),
    /// A metadata-document client could not be fetched now: too many fetches from the caller's
    /// network or of the document's host this hour.
    #[error("{why}")]
    TooManyRequests { why: String, retry_after: u64 },
    /// An error for the client as `error`, `error_description`, `state` and `iss`. `trusted`
    /// says whether the redirect URI may be followed automatically (RFC 9700 §4.11.2): only for
    /// a registered client that has completed a token exchange before. Otherwise, the redirect
    /// URI is as unvetted as the request (a client registered a minute ago, a document anyone
    /// can publish), and the edge shows the error instead, so that an invalid request cannot
    /// turn this server into a redirector to a phishing page.
    #[error("{error}: {description}")]
    Redirect { location: String, error: &'static str, description: String, trusted: bool },
    #[error(transparent)]
    Server(#[from] AuthError),
}

/// The consent form could not be honoured; shown as an error page.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    #[error("the form's CSRF token is missing or wrong")]
    BadCsrf,
    #[error("the authorization request expired or was already answered")]
    Expired,
    #[error(transparent)]
    Server(#[from] AuthError),
}

/// What the consent page needs: the request and the form's hidden fields.
pub struct PendingConsent {
    pub request: AuthorizationRequest,
    pub request_id: String,
    pub csrf: String,
}

#[derive(Serialize, Deserialize)]
struct Pending {
    customer_id: CustomerId,
    request: AuthorizationRequest,
}

/// What a code stands for (`oauth:code:<sha256>`).
#[derive(Serialize, Deserialize)]
pub(crate) struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub redirect_uri_given: bool,
    pub code_challenge: String,
    pub resource: String,
    pub scope: String,
    pub customer_id: CustomerId,
    /// The grant the code will create, chosen now so that a replay can revoke it.
    pub family_id: String,
    /// The customer's sign-in generation when the code was issued (`standing.rs`).
    #[serde(default)]
    pub generation: u64,
    pub expires_at: i64,
}

pub(crate) fn code_key(hash: &str) -> String {
    format!("oauth:code:{hash}")
}

pub(crate) fn used_code_key(hash: &str) -> String {
    format!("oauth:code-used:{hash}")
}

fn pending_key(request_id: &str) -> String {
    format!("oauth:pending:{}", sha256_hex(request_id))
}

/// An authorization response (success or error) to `redirect_uri`, with `iss` (RFC 9207 §2):
/// the client can tell which server answered and resist mix-up attacks.
fn authorization_response(redirect_uri: &str, issuer: &str, pairs: &[(&str, &str)]) -> String {
    let mut all = pairs.to_vec();
    all.push(("iss", issuer));
    with_query(redirect_uri, &all)
}

/// `redirect_uri` with `pairs` added to its query.
fn with_query(redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (k, v) in pairs {
                    query.append_pair(k, v);
                }
            }
            url.into()
        }
        Err(_) => redirect_uri.to_owned(),
    }
}

/// RFC 7636 §4.2: a challenge is 43-128 unreserved characters (S256 gives exactly 43).
fn valid_pkce_text(text: &str) -> bool {
    (43..=128).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

pub(crate) fn valid_verifier(text: &str) -> bool {
    valid_pkce_text(text)
}

impl Auth {
    /// Checks a request in the order RFC 6749 §4.1.2.1 demands: the client and redirect URI
    /// first (failures shown, never redirected), then everything else (an error for the client,
    /// with `state`, redirected only when [`AuthorizeError::Redirect`] says it is `trusted`).
    /// `client_ip` is the caller's (a URL client id may make this server fetch a document).
    pub async fn validate_authorization(&self, params: &AuthorizeParams, client_ip: &str) -> Result<AuthorizationRequest, AuthorizeError> {
        let client_id = params.client_id.as_deref().filter(|c| !c.is_empty()).ok_or(AuthorizeError::MissingClient)?;
        let client = if is_document_client_id(client_id) {
            self.document_client(client_id, client_ip).await.map_err(|e| match e {
                ClientDocumentError::Server(e) => AuthorizeError::Server(e),
                ClientDocumentError::Unsupported => AuthorizeError::UnknownClient,
                refused @ ClientDocumentError::TooManyFetches(_, retry_after) => {
                    AuthorizeError::TooManyRequests { why: refused.to_string(), retry_after }
                }
                other => AuthorizeError::ClientDocument(other.to_string()),
            })?
        } else {
            self.client(client_id).await?.ok_or(AuthorizeError::UnknownClient)?
        };
        let trusted = client.used && !is_document_client_id(&client.client_id);
        let (redirect_uri, registered, given) = match params.redirect_uri.as_deref() {
            Some(presented) => {
                let registered = client
                    .redirect_uris
                    .iter()
                    .find(|r| redirect_uri_matches(r, presented))
                    .ok_or_else(|| AuthorizeError::BadRedirectUri(format!("`{presented}` is not registered for this client")))?;
                (presented.to_owned(), registered.clone(), true)
            }
            None => match client.redirect_uris.as_slice() {
                [only] => (only.clone(), only.clone(), false),
                _ => return Err(AuthorizeError::BadRedirectUri("redirect_uri is required: the client registered several".into())),
            },
        };
        let state = params.state.clone();
        let refuse = |error: &'static str, description: &str| {
            let mut pairs = vec![("error", error), ("error_description", description)];
            if let Some(state) = state.as_deref() {
                pairs.push(("state", state));
            }
            AuthorizeError::Redirect {
                location: authorization_response(&redirect_uri, self.settings.issuer(), &pairs),
                error,
                description: description.to_owned(),
                trusted,
            }
        };
        if params.response_type.as_deref() != Some("code") {
            return Err(refuse("unsupported_response_type", "response_type must be code"));
        }
        let Some(challenge) = params.code_challenge.as_deref() else {
            return Err(refuse("invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256"));
        };
        if params.code_challenge_method.as_deref() != Some("S256") {
            return Err(refuse("invalid_request", "code_challenge_method must be S256"));
        }
        if !valid_pkce_text(challenge) {
            return Err(refuse("invalid_request", "code_challenge is malformed"));
        }
        let resource = match params.resource.as_deref() {
            None | Some("") => self.settings.resource(),
            Some(resource) => canonical_resource(resource, &self.settings.public_url)
                .ok_or_else(|| refuse("invalid_target", "resource must be this server's MCP endpoint"))?,
        };
        let client_host = is_document_client_id(&client.client_id).then(|| display_host(&client.client_id));
        Ok(AuthorizationRequest {
            client_host,
            client_name: client.display_name().to_owned(),
            client_id: client.client_id,
            redirect_uri,
            redirect_uri_given: given,
            registered_redirect_uri: registered,
            state: params.state.clone(),
            code_challenge: challenge.to_owned(),
            resource,
            // Unknown scopes (offline_access, …) are ignored; there is one scope to grant.
            scope: SCOPE.to_owned(),
        })
    }

    fn consent_key(&self, customer: &CustomerId, request: &AuthorizationRequest) -> String {
        let subject = format!("{}\n{}\n{}", request.client_id, request.registered_redirect_uri, request.scope);
        format!("oauth:consent:{}:{}", customer.as_str(), sha256_hex(&subject))
    }

    /// Whether this person already allowed this client, redirect URI and scope.
    pub async fn has_consent(&self, customer: &CustomerId, request: &AuthorizationRequest) -> Result<bool, AuthError> {
        Ok(self.gateway.store().get_item(&self.consent_key(customer, request), self.now()).await?.is_some())
    }

    /// Keeps the request server-side for the consent form and returns the form's fields.
    pub async fn begin_consent(&self, session: &Session, request: AuthorizationRequest) -> Result<PendingConsent, AuthError> {
        let request_id = random::token::<32>();
        let pending = Pending { customer_id: session.customer_id.clone(), request };
        let bytes = serde_json::to_vec(&pending).map_err(|_| AuthError::Corrupt("pending request"))?;
        let now = self.now();
        self.gateway
            .store()
            .put_single_use(&pending_key(&request_id), &bytes, now.plus_seconds(AuthSettings::CONSENT_TTL), now)
            .await?;
        let csrf = self.consent_csrf(session, &request_id);
        Ok(PendingConsent { request: pending.request, request_id, csrf })
    }

    /// Bound to the session and the request: a token from another login or form is useless.
    fn consent_csrf(&self, session: &Session, request_id: &str) -> String {
        let message = format!("consent\n{}\n{}", session.sid, request_id);
        b64url(&hmac_sha256(&self.keys.csrf, message.as_bytes()))
    }

    /// The person's answer on the consent page. Returns where to send the browser (303).
    pub async fn decide(&self, session: &Session, request_id: &str, csrf: &str, allow: bool) -> Result<String, ConsentError> {
        let expected = self.consent_csrf(session, request_id);
        if request_id.is_empty() || !constant_time_eq(expected.as_bytes(), csrf.as_bytes()) {
            return Err(ConsentError::BadCsrf);
        }
        let now = self.now();
        let bytes = self.gateway.store().take_single_use(&pending_key(request_id), now).await.map_err(AuthError::from)?;
        let pending: Pending = match bytes {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|_| AuthError::Corrupt("pending request"))?,
            None => return Err(ConsentError::Expired),
        };
        if pending.customer_id != session.customer_id {
            return Err(ConsentError::BadCsrf);
        }
        let request = pending.request;
        if !allow {
            tracing::info!(customer = session.customer_id.as_str(), client_id = request.client_id, "consent denied");
            let mut pairs = vec![("error", "access_denied"), ("error_description", "The user denied the request")];
            if let Some(state) = request.state.as_deref() {
                pairs.push(("state", state));
            }
            return Ok(authorization_response(&request.redirect_uri, self.settings.issuer(), &pairs));
        }
        let key = self.consent_key(&session.customer_id, &request);
        let expires = Some(now.plus_seconds(self.settings.refresh_token_ttl));
        self.gateway.store().put_item(&key, b"1", expires, PutMode::Replace, now).await.map_err(AuthError::from)?;
        Ok(self.issue_code(&session.customer_id, &request).await?)
    }

    /// A fresh code for an allowed request; returns the redirect with `code` and `state`.
    pub async fn issue_code(&self, customer: &CustomerId, request: &AuthorizationRequest) -> Result<String, AuthError> {
        let code = random::token::<32>();
        let now = self.now();
        let expires_at = now.plus_seconds(AuthSettings::CODE_TTL);
        let generation = crate::standing::standing(self.gateway.store(), now, customer).await?.generation;
        let grant = CodeGrant {
            client_id: request.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            redirect_uri_given: request.redirect_uri_given,
            code_challenge: request.code_challenge.clone(),
            resource: request.resource.clone(),
            scope: request.scope.clone(),
            customer_id: customer.clone(),
            family_id: random::hex_id::<16>(),
            generation,
            expires_at: expires_at.unix(),
        };
        let bytes = serde_json::to_vec(&grant).map_err(|_| AuthError::Corrupt("authorization code"))?;
        self.gateway.store().put_single_use(&code_key(&sha256_hex(&code)), &bytes, expires_at, now).await?;
        tracing::info!(customer = customer.as_str(), client_id = request.client_id, "issued an authorization code");
        let mut pairs = vec![("code", code.as_str())];
        if let Some(state) = request.state.as_deref() {
            pairs.push(("state", state));
        }
        Ok(authorization_response(&request.redirect_uri, self.settings.issuer(), &pairs))
    }
}

