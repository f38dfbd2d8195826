//! The authorization server against the real SQLite store, with a clock the tests move.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use serde_json::json;
use squaremcp_core::{
    AuthMethod, Clock, CustomerId, Gateway, Keyring, KeyringError, Principal, Registry, SealedSecret, Secret, SecretBinding,
    Timestamp,
};
use squaremcp_embedded::SqliteStore;

use crate::crypto::s256;
use crate::jwt::{ACCESS_TOKEN_TYP, AccessClaims};
use crate::{
    Auth, AuthSettings, AuthorizationRequest, AuthorizeError, AuthorizeParams, BearerCheck, ClientCredentials, ConsentError,
    LoginError, OAuthError, Session, TokenRequest, TokenResponse, store_password_hash,
};

struct ManualClock(AtomicI64);

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix(self.0.load(Ordering::SeqCst))
    }
}

struct NoKeyring;

#[async_trait]
impl Keyring for NoKeyring {
    async fn seal(&self, _: &SecretBinding, _: &[u8]) -> Result<SealedSecret, KeyringError> {
        Err(KeyringError::Unavailable("not in these tests".into()))
    }
    async fn open(&self, _: &SecretBinding, _: &SealedSecret) -> Result<Secret<Vec<u8>>, KeyringError> {
        Err(KeyringError::Unavailable("not in these tests".into()))
    }
}

const PUBLIC: &str = "https://mcp.example.com";
const REDIRECT: &str = "http://127.0.0.1:33418/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

struct Harness {
    auth: Auth,
    clock: Arc<ManualClock>,
    customer: CustomerId,
}

impl Harness {
    async fn new() -> Self {
        Self::with(|_| {}).await
    }

    /// With settings changed from the harness's.
    async fn with(change: impl FnOnce(&mut AuthSettings)) -> Self {
        let clock = Arc::new(ManualClock(AtomicI64::new(1_800_000_000)));
        let store = Arc::new(SqliteStore::open_temporary().unwrap());
        let gateway = Arc::new(Gateway::new(store, Arc::new(NoKeyring), clock.clone(), Arc::new(Registry::new(vec![])), None));
        let customer = gateway.create_customer("ada@example.com", "pro", Some(bcrypt::hash("correct horse", 4).unwrap())).await.unwrap();
        let mut settings = AuthSettings::new(PUBLIC);
        settings.login_free_failures = 3;
        settings.registrations_per_ip_per_hour = 5;
        change(&mut settings);
        let auth = Auth::new(gateway, settings, &Secret::new(vec![42; 32])).unwrap();
        Self { auth, clock, customer: customer.id }
    }

    fn advance(&self, seconds: i64) {
        self.clock.0.fetch_add(seconds, Ordering::SeqCst);
    }

    async fn register(&self, method: &str) -> (String, Option<String>) {
        let body = json!({"client_name": "Test client", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": method});
        let registered = self.auth.register_client(&body, "192.0.2.1").await.unwrap();
        let response = registered.response();
        (response["client_id"].as_str().unwrap().to_owned(), response["client_secret"].as_str().map(str::to_owned))
    }

    fn params(&self, client_id: &str) -> AuthorizeParams {
        AuthorizeParams {
            response_type: Some("code".into()),
            client_id: Some(client_id.into()),
            redirect_uri: Some(REDIRECT.into()),
            state: Some("st&te=1".into()),
            code_challenge: Some(s256(VERIFIER)),
            code_challenge_method: Some("S256".into()),
            scope: Some("mcp offline_access".into()),
            resource: Some(format!("{PUBLIC}/mcp")),
        }
    }

    async fn session(&self) -> Session {
        self.auth.login("ada@example.com", "correct horse", "192.0.2.1").await.unwrap().0
    }

    /// Authorize, consent, and return the code.
    async fn code(&self, client_id: &str) -> String {
        let request = self.auth.validate_authorization(&self.params(client_id), "192.0.2.1").await.unwrap();
        let session = self.session().await;
        let pending = self.auth.begin_consent(&session, request).await.unwrap();
        let location = self.auth.decide(&session, &pending.request_id, &pending.csrf, true).await.unwrap();
        let url = url::Url::parse(&location).unwrap();
        let pairs: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(pairs["state"], "st&te=1", "state is echoed verbatim");
        pairs["code"].clone()
    }

    async fn exchange(&self, client_id: &str, code: &str, verifier: Option<&str>) -> Result<TokenResponse, OAuthError> {
        let request = TokenRequest {
            grant_type: Some("authorization_code".into()),
            code: Some(code.into()),
            redirect_uri: Some(REDIRECT.into()),
            code_verifier: verifier.map(str::to_owned),
            client_id: Some(client_id.into()),
            ..TokenRequest::default()
        };
        self.auth.token(request, ClientCredentials { client_id: Some(client_id.into()), ..ClientCredentials::default() }).await
    }

    async fn refresh(&self, client_id: &str, refresh_token: &str) -> Result<TokenResponse, OAuthError> {
        let request = TokenRequest {
            grant_type: Some("refresh_token".into()),
            refresh_token: Some(refresh_token.into()),
            ..TokenRequest::default()
        };
        self.auth.token(request, ClientCredentials { client_id: Some(client_id.into()), ..ClientCredentials::default() }).await
    }

    async fn works_on_mcp(&self, access_token: &str) -> bool {
        matches!(self.auth.authenticate_bearer(access_token).await.unwrap(), BearerCheck::Valid(..))
    }
}

fn code_of(error: &OAuthError) -> &'static str {
    error.code()
}

#[tokio::test]
async fn the_whole_flow_issues_tokens_that_work_on_mcp() {
    let h = Harness::new().await;
    let (client, secret) = h.register("none").await;
    assert!(secret.is_none(), "public clients get no secret");
    let code = h.code(&client).await;
    let tokens = h.exchange(&client, &code, Some(VERIFIER)).await.unwrap();
    let body = tokens.to_json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "mcp");
    assert_eq!(body["expires_in"], 3600);
    match h.auth.authenticate_bearer(tokens.access_token.expose()).await.unwrap() {
        BearerCheck::Valid(Principal::Customer { id }, AuthMethod::OAuth) => assert_eq!(id, h.customer),
        other => panic!("{other:?}"),
    }
    let refreshed = h.refresh(&client, tokens.refresh_token.expose()).await.unwrap();
    assert_ne!(refreshed.refresh_token.expose(), tokens.refresh_token.expose());
    assert!(h.works_on_mcp(refreshed.access_token.expose()).await);
}

#[tokio::test]
async fn pkce_is_required_s256_only_and_checked() {
    let h = Harness::new().await;
    let (client, _) = h.register("none").await;
    let mut missing = h.params(&client);
    missing.code_challenge = None;
    missing.code_challenge_method = None;
    let mut plain = h.params(&client);
    plain.code_challenge = Some(VERIFIER.into());
    plain.code_challenge_method = Some("plain".into());
    let mut no_method = h.params(&client);
    no_method.code_challenge_method = None;
    for params in [missing, plain, no_method] {
        match h.auth.validate_authorization(&params, "192.0.2.1").await {
            Err(AuthorizeError::Redirect { location, error, .. }) => {
                assert_eq!(error, "invalid_request");
                assert!(location.starts_with(REDIRECT) && location.contains("state=st%26te%3D1"), "{location}");
            }
            other => panic!("{other:?}"),
        }
    }
    let code = h.code(&client).await;
    let wrong = "x".repeat(43);
    assert_eq!(code_of(&h.exchange(&client, &code, Some(&wrong)).await.err().unwrap()), "invalid_grant");
    let code = h.code(&client).await;
    assert_eq!(code_of(&h.exchange(&client, &code, None).await.err().unwrap()), "invalid_request");
}

#[tokio::test]
async fn a_replayed_code_fails_and_revokes_what_it_issued() {
    let h = Harness::new().await;
    let (client, _) = h.register("none").await;
    let code = h.code(&client).await;
    let tokens = h.exchange(&client, &code, Some(VERIFIER)).await.unwrap();
    assert!(h.works_on_mcp(tokens.access_token.expose()).await);
    assert_eq!(code_of(&h.exchange(&client, &code, Some(VERIFIER)).await.err().unwrap()), "invalid_grant");
    assert!(!h.works_on_mcp(tokens.access_token.expose()).await, "the access token from the code is revoked");
    assert_eq!(code_of(&h.refresh(&client, tokens.refresh_token.expose()).await.err().unwrap()), "invalid_grant");
}

#[tokio::test]
async fn codes_expire_after_ten_minutes() {
    let h = Harness::new().await;
    let (client, _) = h.register("none").await;
    let code = h.code(&client).await;
    h.advance(AuthSettings::CODE_TTL);
    assert_eq!(code_of(&h.exchange(&client, &code, Some(VERIFIER)).await.err().unwrap()), "invalid_grant");
    let code = h.code(&client).await;
    h.advance(AuthSettings::CODE_TTL - 1);
    assert!(h.exchange(&client, &code, Some(VERIFIER)).await.is_ok());
}

#[tokio::test]
async fn codes_are_bound_to_client_and_redirect_uri() {
    let h = Harness::new().await;
    let (client, _) = h.register("none").await;
    let (other, _) = h.register("none").await;
    let code = h.code(&client).await;
    assert_eq!(code_of(&h.exchange(&other, &code, Some(VERIFIER)).await.err().unwrap()), "invalid_grant");
    let code = h.code(&client).await;
    let request = TokenRequest {
        grant_type: Some("authorization_code".into()),
        code: Some(code),
        redirect_uri: Some("http://127.0.0.1:33418/other".into()),
        code_verifier: Some(VERIFIER.into()),
        ..TokenRequest::default()
    };
    let error = h.auth.token(request, ClientCredentials { client_id: Some(client.clone()), ..Default::default() }).await.err().unwrap();
    assert_eq!(error.code(), "invalid_grant");
}

#[tokio::test]
async fn unknown_clients_and_foreign_redirects_are_never_redirected_to() {
    let h = Harness::new().await;
    let (client, _) = h.register("none").await;
    let mut unknown = h.params(&client);
    unknown.client_id = Some("mcp_nope".into());
    assert!(matches!(h.auth.validate_authorization(&unknown, "192.0.2.1").await, Err(AuthorizeError::UnknownClient)));
    let mut missing = h.params(&client);
    missing.client_id = None;
    assert!(matches!(h.auth.validate_authorization(&missing, "192.0.2.1").await, Err(AuthorizeError::MissingClient)));
    for uri in ["https://evil.example/callback", "http://127.0.0.1:33418/callback/../evil", "http://127.0.0.1:9/other"] {
        let mut bad = h.params(&client);
        bad.redirect_uri = Some(uri.into());
        assert!(matches!(h.auth.validate_authorization(&bad, "192.0.2.1").await, Err(AuthorizeError::BadRedirectUri(_))), "{uri}");
    }
    // A loopback port or name may vary (RFC 8252 §7.3; Codex and Claude Code drift).
    let mut drift = h.params(&client);
    drift.redirect_uri = Some("http://localhost:50123/callback".into());
    let request: AuthorizationRequest = h.auth.validate_authorization(&drift, "192.0.2.1").await.unwrap();
    assert_eq!(request.redirect_uri, "http://localhost:50123/callback");
    // Unknown client at the token endpoint: invalid_client (Claude re-registers on it).
    let error = h.exchange("mcp_unknown", "code", Some(VERIFIER)).await.err().unwrap();
    assert_eq!(error.code(), "invalid_client");
}

#[tokio::test]
async fn resource_is_checked_and_normalised() {
    let h = Harness::new().await;
    let (client, _) = h.register("none").await;
    for ok in ["https://MCP.example.com/mcp/", "https://mcp.example.com", "https://mcp.example.com/mcp"] {
        let mut params = h.params(&client);
        params.resource = Some(ok.into());
        assert_eq!(h.auth.validate_authorization(&params, "192.0.2.1").await.unwrap().resource, "https://mcp.example.com/mcp", "{ok}");
    }
    let mut params = h.params(&client);
    params.resource = None;
    assert_eq!(h.auth.validate_authorization(&params, "192.0.2.1").await.unwrap().resource, "https://mcp.example.com/mcp");
    let mut foreign = h.params(&client);
    foreign.resource = Some("https://other.example.com/mcp".into());
    assert!(matches!(h.auth.validate_authorization(&foreign, "192.0.2.1").await, Err(AuthorizeError::Redirect { error: "invalid_target", .. })));
}

#[tokio::test]
async fn refresh_rotation_grace_window_and_reuse_detection() {
    let h = Harness::new().await;
    let (client, _) = h.register("none").await;
    let code = h.code(&client).await;
    let first = h.exchange(&client, &code, Some(VERIFIER)).await.unwrap();
    let r0 = first.refresh_token.expose().clone();
    assert!(crate::tokens::parse_family(&r0).is_some());
    // Two concurrent refreshes with the same token both succeed, and both results keep working.
    let (a, b) = tokio::join!(h.refresh(&client, &r0), h.refresh(&client, &r0));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(h.works_on_mcp(a.access_token.expose()).await && h.works_on_mcp(b.access_token.expose()).await);
    let kept = h.refresh(&client, b.refresh_token.expose()).await.unwrap();
    assert!(h.works_on_mcp(kept.access_token.expose()).await);
    // After the grace window, the old token is a reuse: the family is revoked.
    h.advance(61);
    let reuse = h.refresh(&client, &r0).await.err().unwrap();
    assert_eq!(reuse.code(), "invalid_grant");
    assert!(!h.works_on_mcp(kept.access_token.expose()).await, "reuse revokes every access token of the family");
    assert_eq!(h.refresh(&client, kept.refresh_token.expose()).await.err().unwrap().code(), "invalid_grant");
    // A token of another client, or garbage, is invalid_grant without further ado.
    let code = h.code(&client).await;
    let fresh = h.exchange(&client, &code, Some(VERIFIER)).await.unwrap();
    let (other, _) = h.register("none").await;
    assert_eq!(h.refresh(&other, fresh.refresh_token.expose()).await.err().unwrap().code(), "invalid_grant");
    assert_eq!(h.refresh(&client, "sqr_garbage").await.err().unwrap().code(), "invalid_grant");
    assert!(h.refresh(&client, fresh.refresh_token.expose()).await.is_ok(), "a wrong client does not burn the token");
}

#[tokio::test]
async fn access_tokens_expire_and_need_the_mcp_audience() {
    let h = Harness::new().await;
    let (client, _) = h.register("none").await;
    let code = h.code(&client).await;
    let tokens = h.exchange(&client, &code, Some(VERIFIER)).await.unwrap();
    // Same key and issuer, another audience: refused.
    let now = h.clock.now().unix();
    let fam = crate::tokens::parse_family(tokens.refresh_token.expose()).unwrap().to_owned();
    let mut claims = AccessClaims {
        iss: PUBLIC.into(),
        aud: "https://other.example.com/mcp".into(),
        sub: h.customer.as_str().into(),
        client_id: client.clone(),
        scope: "mcp".into(),
        fam,
        generation: 0,
        jti: "x".into(),
        iat: now,
        exp: now + 60,
    };
    let foreign = h.auth.keys.sign(ACCESS_TOKEN_TYP, &claims).unwrap();
    assert!(!h.works_on_mcp(&foreign).await);
    claims.aud = format!("{PUBLIC}/mcp");
    claims.scope = "other".into();
    let unscoped = h.auth.keys.sign(ACCESS_TOKEN_TYP, &claims).unwrap();
    assert!(matches!(h.auth.authenticate_bearer(&unscoped).await.unwrap(), BearerCheck::InsufficientScope));
    // A session cookie's JWT is not a bearer token for /mcp.
    let (_, cookie) = h.auth.login("ada@example.com", "correct horse", "192.0.2.1").await.unwrap();
    assert!(!h.works_on_mcp(cookie.expose()).await);
    // A user JWT for /mcp is.
    let customer = h.auth.gateway().require_customer(&h.customer).await.unwrap();
    let user = h.auth.mint_user_token(&customer, 300).await.unwrap();
    assert!(matches!(h.auth.authenticate_bearer(user.expose()).await.unwrap(), BearerCheck::Valid(_, AuthMethod::Jwt)));
    h.advance(3600);
    assert!(!h.works_on_mcp(tokens.access_token.expose()).await, "expired");
    assert!(!h.works_on_mcp(user.expose()).await, "expired");
}

#[tokio::test]
async fn revocation_ends_the_grant() {
    let h = Harness::new().await;
    let (client, secret) = h.register("client_secret_post").await;
    let secret = secret.unwrap();
    let credentials =
        || ClientCredentials { client_id: Some(client.clone()), client_secret: Some(Secret::new(secret.clone())), ..Default::default() };
    let code = h.code(&client).await;
    let request = TokenRequest {
        grant_type: Some("authorization_code".into()),
        code: Some(code),
        redirect_uri: Some(REDIRECT.into()),
        code_verifier: Some(VERIFIER.into()),
        ..TokenRequest::default()
    };
    // A confidential client without its secret is refused.
    let anonymous = ClientCredentials { client_id: Some(client.clone()), ..Default::default() };
    let error = h.auth.token(TokenRequest { grant_type: Some("refresh_token".into()), ..Default::default() }, anonymous).await;
    assert_eq!(error.err().unwrap().code(), "invalid_client");
    assert_eq!(h.auth.token(TokenRequest::default(), credentials()).await.err().unwrap().code(), "invalid_request");
    let wrong = ClientCredentials { basic: Some((client.clone(), Secret::new("sqs_wrong".into()))), ..Default::default() };
    let error = h.auth.token(TokenRequest { grant_type: Some("refresh_token".into()), ..Default::default() }, wrong).await;
    assert_eq!(error.err().unwrap().code(), "invalid_client");
    let tokens = h.auth.token(request, credentials()).await.unwrap();
    h.auth.revoke("not-a-token", credentials()).await.unwrap();
    assert!(h.works_on_mcp(tokens.access_token.expose()).await);
    h.auth.revoke(tokens.refresh_token.expose(), credentials()).await.unwrap();
    assert!(!h.works_on_mcp(tokens.access_token.expose()).await);
}

#[tokio::test]
async fn consent_needs_the_session_bound_csrf_token() {
    let h = Harness::new().await;
    let (client, _) = h.register("none").await;
    let request = h.auth.validate_authorization(&h.params(&client), "192.0.2.1").await.unwrap();
    let session = h.session().await;
    let pending = h.auth.begin_consent(&session, request.clone()).await.unwrap();
    assert!(matches!(h.auth.decide(&session, &pending.request_id, "", true).await, Err(ConsentError::BadCsrf)));
    let other_login = h.session().await;
    assert!(matches!(
        h.auth.decide(&other_login, &pending.request_id, &pending.csrf, true).await,
        Err(ConsentError::BadCsrf)
    ));
    assert!(!h.auth.has_consent(&session.customer_id, &request).await.unwrap());
    let denied = h.auth.decide(&session, &pending.request_id, &pending.csrf, false).await.unwrap();
    assert!(denied.starts_with(REDIRECT) && denied.contains("error=access_denied") && denied.contains("state="), "{denied}");
    assert!(matches!(h.auth.decide(&session, &pending.request_id, &pending.csrf, true).await, Err(ConsentError::Expired)));
    let pending = h.auth.begin_consent(&session, request.clone()).await.unwrap();
    h.auth.decide(&session, &pending.request_id, &pending.csrf, true).await.unwrap();
    assert!(h.auth.has_consent(&session.customer_id, &request).await.unwrap(), "consent is remembered");
}

#[tokio::test]
async fn registration_rules_and_rate_limit() {
    let h = Harness::new().await;
    let ok = |method: Option<&str>| {
        let mut body = json!({"redirect_uris": ["https://claude.ai/api/mcp/auth_callback"]});
        if let Some(m) = method {
            body["token_endpoint_auth_method"] = json!(m);
        }
        body
    };
    let post = h.auth.register_client(&ok(Some("client_secret_post")), "198.51.100.7").await.unwrap().response();
    assert!(post["client_secret"].as_str().unwrap().starts_with("sqs_"));
    assert_eq!(post["client_secret_expires_at"], json!(0));
    assert_eq!(post["token_endpoint_auth_method"], "client_secret_post");
    let default = h.auth.register_client(&ok(None), "198.51.100.7").await.unwrap().response();
    assert_eq!(default["token_endpoint_auth_method"], "client_secret_basic", "RFC 7591 default");
    assert!(default["client_secret"].is_string());
    for (body, code) in [
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["http://example.com/cb"]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}), "invalid_client_metadata"),
        (json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"]}), "invalid_client_metadata"),
        (json!("nope"), "invalid_client_metadata"),
        // Text-direction and invisible characters would let a name read as another on the consent page.
        (json!({"redirect_uris": ["https://a.example/cb"], "client_name": "Claude \u{202E}elgooG"}), "invalid_client_metadata"),
        (json!({"redirect_uris": ["https://a.example/cb"], "client_name": "Cla\u{200B}ude"}), "invalid_client_metadata"),
        (json!({"redirect_uris": ["https://a.example/cb"], "client_name": "Clau\u{2067}de"}), "invalid_client_metadata"),
    ] {
        assert_eq!(h.auth.register_client(&body, "198.51.100.8").await.err().unwrap().code(), code, "{body}");
    }
    for _ in 0..3 {
        h.auth.register_client(&ok(Some("none")), "198.51.100.7").await.unwrap();
    }
    assert!(matches!(h.auth.register_client(&ok(Some("none")), "198.51.100.7").await, Err(OAuthError::TooManyRequests { .. })));
    assert!(h.auth.register_client(&ok(Some("none")), "198.51.100.9").await.is_ok(), "per IP");
    h.advance(3600);
    assert!(h.auth.register_client(&ok(Some("none")), "198.51.100.7").await.is_ok(), "the window moves on");
}

#[tokio::test]
async fn unused_clients_expire_used_ones_stay() {
    let h = Harness::new().await;
    let (unused, _) = h.register("none").await;
    let (used, _) = h.register("none").await;
    let code = h.code(&used).await;
    h.exchange(&used, &code, Some(VERIFIER)).await.unwrap();
    h.advance(24 * 3600);
    assert!(h.auth.client(&unused).await.unwrap().is_none());
    assert!(h.auth.client(&used).await.unwrap().is_some());
}

#[tokio::test]
async fn login_failures_are_generic_and_rate_limited() {
    let h = Harness::new().await;
    assert!(matches!(h.auth.login("nobody@example.com", "whatever1", "192.0.2.5").await, Err(LoginError::Invalid)));
    for _ in 0..3 {
        assert!(matches!(h.auth.login("ADA@example.com", "wrong password", "192.0.2.5").await, Err(LoginError::Invalid)));
    }
    // The guesser now waits; the customer, from another network, is not locked out.
    assert!(matches!(h.auth.login("ada@example.com", "correct horse", "192.0.2.5").await, Err(LoginError::RateLimited { .. })));
    let (session, cookie) = h.auth.login("ada@example.com", "correct horse", "192.0.2.6").await.unwrap();
    assert_eq!(h.auth.session(cookie.expose()).unwrap().customer_id, session.customer_id);
    // A new password replaces the one given at creation.
    store_password_hash(h.auth.gateway().store(), h.clock.now(), &h.customer, &bcrypt::hash("new password 9", 4).unwrap()).await.unwrap();
    assert!(matches!(h.auth.login("ada@example.com", "correct horse", "192.0.2.6").await, Err(LoginError::Invalid)));
    assert!(h.auth.login("ada@example.com", "new password 9", "192.0.2.6").await.is_ok());
    // Sessions expire.
    h.advance(7 * 24 * 3600);
    assert!(h.auth.session(cookie.expose()).is_none());
    // The login form's CSRF token is bound to its cookie nonce.
    let nonce = h.auth.new_csrf_nonce();
    let token = h.auth.login_csrf(&nonce);
    assert!(h.auth.check_login_csrf(&nonce, &token));
    assert!(!h.auth.check_login_csrf(&h.auth.new_csrf_nonce(), &token));
    assert!(!h.auth.check_login_csrf("", &h.auth.login_csrf("")));
}

/// Issue 17, item 1: each attempt is reserved before bcrypt, so guesses in flight at once cannot
/// all pass a check made before any of them is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_passwords_cannot_pass_the_limit() {
    let h = Arc::new(Harness::new().await);
    let mut logins = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let h = h.clone();
        // One client IP: the (email, network) pair's 3 free attempts are all there is.
        logins.spawn(async move { h.auth.login("ada@example.com", "wrong password", "198.51.100.1").await });
    }
    let (mut invalid, mut limited) = (0, 0);
    while let Some(outcome) = logins.join_next().await {
        match outcome.unwrap() {
            Err(LoginError::Invalid) => invalid += 1,
            Err(LoginError::RateLimited { .. }) => limited += 1,
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert!(invalid <= 3, "{invalid} guesses reached bcrypt's verdict; the limit is 3");
    assert_eq!(invalid + limited, 50);
    // The right password waits too from that network, and not from another.
    assert!(matches!(h.auth.login("ada@example.com", "correct horse", "198.51.100.1").await, Err(LoginError::RateLimited { .. })));
    assert!(h.auth.login("ada@example.com", "correct horse", "192.0.2.9").await.is_ok());
}

/// A success gives its reservation back: the limits count failures, not sign-ins.
#[tokio::test]
async fn successful_logins_do_not_use_up_the_failure_budget() {
    let h = Harness::new().await;
    for _ in 0..5 {
        assert!(h.auth.login("ada@example.com", "correct horse", "192.0.2.7").await.is_ok());
    }
    for _ in 0..3 {
        assert!(matches!(h.auth.login("ada@example.com", "wrong password", "192.0.2.7").await, Err(LoginError::Invalid)));
    }
    assert!(matches!(h.auth.login("ada@example.com", "correct horse", "192.0.2.7").await, Err(LoginError::RateLimited { .. })));
}

#[tokio::test]
async fn the_account_page_lists_grants_and_revoking_one_stops_its_tokens_at_once() {
    let h = Harness::new().await;
    let (client_id, _) = h.register("none").await;
    let code = h.code(&client_id).await;
    let tokens = h.exchange(&client_id, &code, Some(VERIFIER)).await.unwrap();
    let grants = h.auth.grants(&h.customer).await.unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!((grants[0].client_name.as_str(), grants[0].client_id.as_str()), ("Test client", client_id.as_str()));
    // Another customer cannot revoke it, nor can a made-up id.
    let stranger = CustomerId::generate();
    assert!(!h.auth.revoke_grant(&stranger, &grants[0].grant_id).await.unwrap());
    assert!(!h.auth.revoke_grant(&h.customer, "not-an-id").await.unwrap());
    assert!(h.auth.grants(&stranger).await.unwrap().is_empty());
    // A use an hour later is noted.
    h.advance(3600);
    let refreshed = h.refresh(&client_id, tokens.refresh_token.expose()).await.unwrap();
    let noted = h.auth.grants(&h.customer).await.unwrap();
    assert!(noted[0].last_used_at > noted[0].created_at, "{noted:?}");
    assert!(h.auth.revoke_grant(&h.customer, &grants[0].grant_id).await.unwrap());
    assert!(h.auth.grants(&h.customer).await.unwrap().is_empty());
    assert!(h.refresh(&client_id, refreshed.refresh_token.expose()).await.is_err(), "the refresh token stops at once");
    assert!(matches!(h.auth.authenticate_bearer(refreshed.access_token.expose()).await.unwrap(), BearerCheck::Invalid));
}

#[tokio::test]
async fn account_forms_need_the_csrf_token_of_this_session_and_purpose() {
    let h = Harness::new().await;
    let (one, two) = (h.session().await, h.session().await);
    let token = h.auth.session_csrf(&one, "account");
    assert!(h.auth.check_session_csrf(&one, "account", &token));
    assert!(!h.auth.check_session_csrf(&two, "account", &token), "another login");
    assert!(!h.auth.check_session_csrf(&one, "connect", &token), "another purpose");
    assert!(!h.auth.check_session_csrf(&one, "account", ""));
}

mod revocation;
mod throttling;
