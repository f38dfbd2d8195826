//! Client ID Metadata Documents and the authorization-response rules (RFC 9207 `iss`, RFC 9700
//! §4.11.2) against the real SQLite store, with a scripted fetcher and a clock the tests move.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};
use squaremcp_core::{Clock, Gateway, Keyring, KeyringError, Registry, SealedSecret, Secret, SecretBinding, Timestamp};
use squaremcp_embedded::SqliteStore;
use url::Url;

use crate::crypto::s256;
use crate::{
    Auth, AuthSettings, AuthorizeError, AuthorizeParams, ClientCredentials, ClientDocumentFetcher, FetchError, FetchedDocument, OAuthError,
    Session, TokenRequest,
};

const PUBLIC: &str = "https://mcp.example.com";
const CLIENT_ID: &str = "https://app.example.com/oauth/client.json";
const REDIRECT: &str = "http://127.0.0.1:33418/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

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

/// Answers from a script (the last answer repeats) and counts the fetches.
#[derive(Default)]
struct ScriptedFetcher {
    answers: Mutex<VecDeque<Result<FetchedDocument, FetchError>>>,
    fetches: AtomicUsize,
}

impl ScriptedFetcher {
    fn answer(&self, answer: Result<FetchedDocument, FetchError>) {
        self.answers.lock().unwrap().push_back(answer);
    }

    fn count(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl ClientDocumentFetcher for ScriptedFetcher {
    async fn fetch(&self, url: &Url, _max_bytes: usize) -> Result<FetchedDocument, FetchError> {
        assert_eq!(url.as_str(), CLIENT_ID, "the client_id URL itself is fetched");
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let mut answers = self.answers.lock().unwrap();
        let answer = if answers.len() > 1 { answers.pop_front() } else { answers.front().cloned() };
        answer.unwrap_or_else(|| Err(FetchError::Failed("nothing scripted".into())))
    }
}

fn document(value: &Value, cache_control: Option<&str>) -> Result<FetchedDocument, FetchError> {
    Ok(FetchedDocument { status: 200, cache_control: cache_control.map(str::to_owned), body: value.to_string().into_bytes() })
}

fn good_document() -> Value {
    json!({
        "client_id": CLIENT_ID,
        "client_name": "Example Code",
        "redirect_uris": ["http://127.0.0.1/callback"],
        "token_endpoint_auth_method": "none",
    })
}

struct Harness {
    auth: Auth,
    clock: Arc<ManualClock>,
    fetcher: Arc<ScriptedFetcher>,
}

impl Harness {
    async fn new(with_documents: bool) -> Self {
        Self::with_settings(with_documents, AuthSettings::new(PUBLIC)).await
    }

    async fn with_settings(with_documents: bool, settings: AuthSettings) -> Self {
        let clock = Arc::new(ManualClock(AtomicI64::new(1_800_000_000)));
        let store = Arc::new(SqliteStore::open_temporary().unwrap());
        let gateway = Arc::new(Gateway::new(store, Arc::new(NoKeyring), clock.clone(), Arc::new(Registry::new(vec![])), None));
        gateway.create_customer("ada@example.com", "pro", Some(bcrypt::hash("correct horse", 4).unwrap())).await.unwrap();
        let fetcher = Arc::new(ScriptedFetcher::default());
        let mut auth = Auth::new(gateway, settings, &Secret::new(vec![42; 32])).unwrap();
        if with_documents {
            auth = auth.with_client_documents(fetcher.clone());
        }
        Self { auth, clock, fetcher }
    }

    fn advance(&self, seconds: i64) {
        self.clock.0.fetch_add(seconds, Ordering::SeqCst);
    }

    fn params(&self, client_id: &str) -> AuthorizeParams {
        AuthorizeParams {
            response_type: Some("code".into()),
            client_id: Some(client_id.into()),
            redirect_uri: Some(REDIRECT.into()),
            state: Some("xyz".into()),
            code_challenge: Some(s256(VERIFIER)),
            code_challenge_method: Some("S256".into()),
            scope: Some("mcp".into()),
            resource: None,
        }
    }

    async fn session(&self) -> Session {
        self.auth.login("ada@example.com", "correct horse", "192.0.2.1").await.unwrap().0
    }

    /// Authorize and consent; returns the redirect's query.
    async fn consent(&self, client_id: &str, allow: bool) -> HashMap<String, String> {
        let request = self.auth.validate_authorization(&self.params(client_id), "192.0.2.1").await.unwrap();
        let session = self.session().await;
        let pending = self.auth.begin_consent(&session, request).await.unwrap();
        let location = self.auth.decide(&session, &pending.request_id, &pending.csrf, allow).await.unwrap();
        assert!(location.starts_with("http://127.0.0.1:33418/callback?"), "{location}");
        Url::parse(&location).unwrap().query_pairs().into_owned().collect()
    }

    async fn exchange(&self, client_id: &str, code: &str) -> Result<crate::TokenResponse, OAuthError> {
        let request = TokenRequest {
            grant_type: Some("authorization_code".into()),
            code: Some(code.into()),
            redirect_uri: Some(REDIRECT.into()),
            code_verifier: Some(VERIFIER.into()),
            client_id: Some(client_id.into()),
            ..TokenRequest::default()
        };
        self.auth.token(request, ClientCredentials { client_id: Some(client_id.into()), ..ClientCredentials::default() }).await
    }

    async fn refused(&self) -> String {
        match self.auth.validate_authorization(&self.params(CLIENT_ID), "192.0.2.1").await {
            Err(AuthorizeError::ClientDocument(why)) => why,
            other => panic!("expected a refused document, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_document_client_signs_in_without_registration_with_one_fetch() {
    let h = Harness::new(true).await;
    h.fetcher.answer(document(&good_document(), Some("max-age=600")));
    let request = h.auth.validate_authorization(&h.params(CLIENT_ID), "192.0.2.1").await.unwrap();
    assert_eq!(request.client_name, "Example Code");
    assert_eq!(request.client_host.as_deref(), Some("app.example.com"), "the consent page gets the URL's host");
    let query = h.consent(CLIENT_ID, true).await;
    let tokens = h.exchange(CLIENT_ID, &query["code"]).await.unwrap();
    assert!(!tokens.access_token.expose().is_empty());
    assert_eq!(h.fetcher.count(), 1, "authorize, consent and token share the cached document");
    assert!(h.auth.client(CLIENT_ID).await.unwrap().is_none(), "no registration is stored for it");
}

#[tokio::test]
async fn the_cache_follows_max_age_and_no_store() {
    let h = Harness::new(true).await;
    h.fetcher.answer(document(&good_document(), Some("max-age=600")));
    h.auth.validate_authorization(&h.params(CLIENT_ID), "192.0.2.1").await.unwrap();
    h.advance(599);
    h.auth.validate_authorization(&h.params(CLIENT_ID), "192.0.2.1").await.unwrap();
    assert_eq!(h.fetcher.count(), 1);
    h.advance(2);
    h.auth.validate_authorization(&h.params(CLIENT_ID), "192.0.2.1").await.unwrap();
    assert_eq!(h.fetcher.count(), 2, "fetched again once max-age passed");

    let h = Harness::new(true).await;
    h.fetcher.answer(document(&good_document(), Some("no-store")));
    h.auth.validate_authorization(&h.params(CLIENT_ID), "192.0.2.1").await.unwrap();
    h.auth.validate_authorization(&h.params(CLIENT_ID), "192.0.2.1").await.unwrap();
    assert_eq!(h.fetcher.count(), 2, "no-store is not cached");
}

#[tokio::test]
async fn failures_are_refused_clearly_and_never_cached() {
    let h = Harness::new(true).await;
    h.fetcher.answer(Ok(FetchedDocument { status: 302, cache_control: Some("max-age=600".into()), body: Vec::new() }));
    h.fetcher.answer(Ok(FetchedDocument { status: 404, cache_control: None, body: Vec::new() }));
    h.fetcher.answer(Err(FetchError::TooLarge));
    h.fetcher.answer(Err(FetchError::Refused("`x` is 10.0.0.1, a private address".into())));
    let mut mismatched = good_document();
    mismatched["client_id"] = json!("https://app.example.com/other.json");
    h.fetcher.answer(document(&mismatched, Some("max-age=600")));
    h.fetcher.answer(document(&good_document(), None));
    for expected in ["redirects are not followed", "HTTP 404", "larger than 5120 bytes", "private address", "differs from the URL"] {
        let why = h.refused().await;
        assert!(why.contains(expected), "{expected}: {why}");
    }
    assert!(h.auth.validate_authorization(&h.params(CLIENT_ID), "192.0.2.1").await.is_ok(), "the fixed document is fetched, not a cached error");
    assert_eq!(h.fetcher.count(), 6);
}

/// Issue 17, item 7: an unauthenticated request naming a URL client id makes this server fetch
/// it, so fetches are limited per client network and per host.
#[tokio::test]
async fn document_fetches_are_limited_per_client_network_and_per_host() {
    let mut settings = AuthSettings::new(PUBLIC);
    settings.document_fetches_per_ip_per_hour = 3;
    settings.document_fetches_per_host_per_hour = 5;
    let h = Harness::with_settings(true, settings).await;
    // Not cacheable, so that every request is a fetch.
    h.fetcher.answer(document(&good_document(), Some("no-store")));
    let refusal = |outcome: Result<crate::AuthorizationRequest, AuthorizeError>| match outcome {
        Err(AuthorizeError::TooManyRequests { why, retry_after }) => {
            assert!((1..=3600).contains(&retry_after), "{retry_after}");
            why
        }
        other => panic!("expected a refused fetch, got {other:?}"),
    };
    for _ in 0..3 {
        h.auth.validate_authorization(&h.params(CLIENT_ID), "203.0.113.1").await.unwrap();
    }
    let why = refusal(h.auth.validate_authorization(&h.params(CLIENT_ID), "203.0.113.1").await);
    assert!(why.contains("from your network"), "{why}");
    assert_eq!(h.fetcher.count(), 3, "a refused request fetches nothing");
    // Other networks share the host's budget.
    for _ in 0..2 {
        h.auth.validate_authorization(&h.params(CLIENT_ID), "203.0.113.2").await.unwrap();
    }
    let why = refusal(h.auth.validate_authorization(&h.params(CLIENT_ID), "203.0.113.3").await);
    assert!(why.contains("from this host"), "{why}");
    // The token endpoint fetches too, and is refused the same way.
    let request = TokenRequest { grant_type: Some("authorization_code".into()), code: Some("x".into()), ..TokenRequest::default() };
    let credentials = ClientCredentials { client_id: Some(CLIENT_ID.into()), client_ip: "203.0.113.4".into(), ..ClientCredentials::default() };
    let refused = h.auth.token(request, credentials).await.err().unwrap();
    assert!(matches!(refused, OAuthError::TooManyRequests { .. }), "{refused:?}");
    assert_eq!(h.fetcher.count(), 5);
    h.advance(3600);
    assert!(h.auth.validate_authorization(&h.params(CLIENT_ID), "203.0.113.1").await.is_ok(), "the hour moved on");
}

#[tokio::test]
async fn the_token_endpoint_answers_invalid_client_for_a_bad_document() {
    let h = Harness::new(true).await;
    let mut mismatched = good_document();
    mismatched["client_id"] = json!("https://evil.example.com/client.json");
    h.fetcher.answer(document(&mismatched, None));
    let error = h.exchange(CLIENT_ID, "some-code").await.err().unwrap();
    assert_eq!(error.code(), "invalid_client");
    assert!(error.description().contains("differs"), "{}", error.description());
}

#[tokio::test]
async fn redirect_uris_must_be_listed_in_the_document() {
    let h = Harness::new(true).await;
    h.fetcher.answer(document(&good_document(), None));
    let mut params = h.params(CLIENT_ID);
    params.redirect_uri = Some("https://evil.example.com/callback".into());
    assert!(matches!(h.auth.validate_authorization(&params, "192.0.2.1").await, Err(AuthorizeError::BadRedirectUri(_))));
    params.redirect_uri = Some("http://localhost:50000/callback".into());
    assert!(h.auth.validate_authorization(&params, "192.0.2.1").await.is_ok(), "loopback ports and names may vary (RFC 8252 §7.3)");
}

#[tokio::test]
async fn without_a_fetcher_url_client_ids_are_unknown_and_not_advertised() {
    let h = Harness::new(false).await;
    assert!(matches!(h.auth.validate_authorization(&h.params(CLIENT_ID), "192.0.2.1").await, Err(AuthorizeError::UnknownClient)));
    assert_eq!(h.fetcher.count(), 0);
    assert_eq!(h.auth.authorization_server_metadata()["client_id_metadata_document_supported"], false);
    let h = Harness::new(true).await;
    let metadata = h.auth.authorization_server_metadata();
    assert_eq!(metadata["client_id_metadata_document_supported"], true);
    assert_eq!(metadata["authorization_response_iss_parameter_supported"], true);
}

#[tokio::test]
async fn every_authorization_response_carries_iss() {
    let h = Harness::new(true).await;
    h.fetcher.answer(document(&good_document(), None));
    let allowed = h.consent(CLIENT_ID, true).await;
    assert_eq!(allowed["iss"], PUBLIC);
    assert_eq!(allowed["state"], "xyz");
    let denied = h.consent(CLIENT_ID, false).await;
    assert_eq!((denied["error"].as_str(), denied["iss"].as_str()), ("access_denied", PUBLIC));
    let mut params = h.params(CLIENT_ID);
    params.code_challenge_method = Some("plain".into());
    match h.auth.validate_authorization(&params, "192.0.2.1").await {
        Err(AuthorizeError::Redirect { location, .. }) => {
            let query: HashMap<String, String> = Url::parse(&location).unwrap().query_pairs().into_owned().collect();
            assert_eq!((query["error"].as_str(), query["iss"].as_str()), ("invalid_request", PUBLIC));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn error_redirects_are_trusted_only_for_clients_that_completed_an_exchange() {
    let h = Harness::new(true).await;
    let registered = h
        .auth
        .register_client(&json!({"client_name": "New", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}), "192.0.2.1")
        .await
        .unwrap();
    let client_id = registered.client.client_id.clone();
    let trusted = |result: Result<_, AuthorizeError>| match result {
        Err(AuthorizeError::Redirect { trusted, .. }) => trusted,
        other => panic!("{other:?}"),
    };
    let mut bad = h.params(&client_id);
    bad.response_type = Some("token".into());
    assert!(!trusted(h.auth.validate_authorization(&bad, "192.0.2.1").await), "a just-registered client's URI is not trusted");
    let query = h.consent(&client_id, true).await;
    h.exchange(&client_id, &query["code"]).await.unwrap();
    assert!(trusted(h.auth.validate_authorization(&bad, "192.0.2.1").await), "after a token exchange it is");

    h.fetcher.answer(document(&good_document(), None));
    let mut bad = h.params(CLIENT_ID);
    bad.response_type = Some("token".into());
    assert!(!trusted(h.auth.validate_authorization(&bad, "192.0.2.1").await), "a metadata document is not a vetted registration");
}
