//! OAuth, login and tokens on the real `squaremcp serve`, over plain HTTP: discovery as clients
//! compare it, registration for every auth method, the whole flow, every refusal the issue
//! lists, and bugs real MCP clients have hit elsewhere, as regressions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use squaremcp_tests::oauth::{Browser, hidden_field, pkce, query_of};
use squaremcp_tests::{Server, TempDir, cli, cli_json, create_customer_with_password};

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery";

fn init() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}}})
}

fn tools_list() -> Value {
    json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
}

/// POST /mcp with a bearer token (or none); the status and body.
async fn mcp(server: &Server, bearer: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(server.mcp_url()).header("accept", "application/json, text/event-stream").json(body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null))
}

/// A registered public client, a signed-in browser, and the authorization request's query.
struct Flow {
    browser: Browser,
    client_id: String,
    redirect_uri: String,
    verifier: String,
    challenge: String,
}

impl Flow {
    async fn start(server: &Server, redirect_uri: &str) -> Self {
        let mut browser = Browser::new(&server.base);
        let (status, client) = browser
            .register(&json!({"client_name": "Flow <test>", "redirect_uris": [redirect_uri], "token_endpoint_auth_method": "none"}))
            .await;
        assert_eq!(status, 201, "{client}");
        let page = browser.login(EMAIL, PASSWORD, "/login").await;
        assert_eq!(page.status, 303, "{}", page.body);
        let (verifier, challenge) = pkce();
        Self { browser, client_id: client["client_id"].as_str().unwrap().to_owned(), redirect_uri: redirect_uri.to_owned(), verifier, challenge }
    }

    fn authorize_path(&self, extra: &[(&str, &str)]) -> String {
        let mut pairs = vec![
            ("response_type", "code"),
            ("client_id", self.client_id.as_str()),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("code_challenge", self.challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("state", "s t&a=te"),
            ("scope", "mcp offline_access"),
        ];
        for (k, v) in extra {
            pairs.retain(|(key, _)| key != k);
            if !v.is_empty() {
                pairs.push((k, v));
            }
        }
        let query: Vec<String> =
            pairs.iter().map(|(k, v)| format!("{k}={}", squaremcp_tests::oauth::encode(v))).collect();
        format!("/oauth/authorize?{}", query.join("&"))
    }

    /// Authorize and allow; the redirect's query.
    async fn code_with(&mut self, extra: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
        let path = self.authorize_path(extra);
        let consent = self.browser.get(&path).await;
        let location = if consent.status == 303 {
            // Consent already given for this client, redirect URI and scope.
            consent.location.unwrap()
        } else {
            assert_eq!(consent.status, 200, "{}", consent.body);
            let request = hidden_field(&consent.body, "request").unwrap();
            let csrf = hidden_field(&consent.body, "csrf").unwrap();
            let done = self.browser.post_form("/oauth/authorize", &[("request", &request), ("csrf", &csrf), ("action", "allow")]).await;
            assert_eq!(done.status, 303, "{}", done.body);
            done.location.unwrap()
        };
        assert!(location.starts_with(&self.redirect_uri) || extra.iter().any(|(k, _)| *k == "redirect_uri"), "{location}");
        query_of(&location)
    }

    async fn code(&mut self) -> String {
        let query = self.code_with(&[]).await;
        assert_eq!(query["state"], "s t&a=te", "state echoed verbatim");
        assert_eq!(query["iss"], self.browser.base, "RFC 9207: iss is the issuer");
        query["code"].clone()
    }

    async fn exchange(&self, code: &str) -> (u16, Value, String) {
        self.browser
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &self.redirect_uri),
                ("code_verifier", &self.verifier),
                ("client_id", &self.client_id),
                ("resource", &format!("{}/mcp", self.browser.base)),
            ])
            .await
    }

    async fn refresh(&self, refresh_token: &str) -> (u16, Value) {
        let (status, body, _) =
            self.browser.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", &self.client_id)]).await;
        (status, body)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_is_byte_identical_to_what_clients_compare() {
    let data = TempDir::new("oauth-discovery");
    let server = Server::start(data.path(), &[]);
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{}{path}", server.base)).header("origin", "http://localhost:6274").send();

    let response = get("/.well-known/oauth-authorization-server").await.unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "http://localhost:6274");
    let metadata: Value = response.json().await.unwrap();
    // Regression 3: the issuer has no trailing slash and equals the PRM's authorization server.
    assert_eq!(metadata["issuer"], server.base.as_str());
    assert_eq!(metadata["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(metadata["response_types_supported"], json!(["code"]));
    assert_eq!(metadata["grant_types_supported"], json!(["authorization_code", "refresh_token"]));
    assert_eq!(metadata["token_endpoint_auth_methods_supported"], json!(["none", "client_secret_post", "client_secret_basic"]));
    assert_eq!(metadata["registration_endpoint"], format!("{}/oauth/register", server.base));
    assert_eq!(metadata["authorization_response_iss_parameter_supported"], true, "every redirect carries iss");
    assert_eq!(metadata["client_id_metadata_document_supported"], true);
    for path in ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"] {
        let prm: Value = get(path).await.unwrap().json().await.unwrap();
        // Regression 2: the resource is the URL users paste, without a trailing slash.
        assert_eq!(prm["resource"], format!("{}/mcp", server.base), "{path}");
        assert_eq!(prm["authorization_servers"], json!([metadata["issuer"]]), "{path}");
        // Regression 10: one scope list everywhere.
        assert_eq!(prm["scopes_supported"], metadata["scopes_supported"], "{path}");
        assert_eq!(prm["bearer_methods_supported"], json!(["header"]));
    }
    // Regression 1: the challenge points at the absolute, path-inserted PRM, with the scope.
    let (status, _) = mcp(&server, None, &init()).await;
    assert_eq!(status, 401, "an unauthenticated initialize gets 401 (claude.ai would otherwise pick no auth)");
    let response = http.post(server.mcp_url()).json(&init()).send().await.unwrap();
    let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
    let prm_url = format!("{}/.well-known/oauth-protected-resource/mcp", server.base);
    assert_eq!(challenge, format!(r#"Bearer resource_metadata="{prm_url}", scope="mcp""#));
    assert_eq!(http.get(&prm_url).send().await.unwrap().status(), 200);
    // No OpenID document rather than an incomplete one.
    assert_eq!(get("/.well-known/openid-configuration").await.unwrap().status(), 404);
    // Preflights on the API endpoints; none on /oauth/authorize.
    for path in ["/oauth/register", "/oauth/token", "/register", "/token", "/.well-known/oauth-authorization-server"] {
        let response = http
            .request(reqwest::Method::OPTIONS, format!("{}{path}", server.base))
            .header("origin", "https://claude.ai")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "{path}");
        assert_eq!(response.headers()["access-control-allow-origin"], "https://claude.ai", "{path}");
        assert_eq!(response.headers()["vary"], "Origin", "{path}");
        assert!(response.headers().get("access-control-allow-credentials").is_none());
    }
    let response = http.get(format!("{}/oauth/authorize", server.base)).header("origin", "https://claude.ai").send().await.unwrap();
    assert!(response.headers().get("access-control-allow-origin").is_none(), "no CORS on /oauth/authorize");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_works_for_every_auth_method_and_real_redirect_uris() {
    let data = TempDir::new("oauth-register");
    create_customer_with_password(data.path(), EMAIL, PASSWORD);
    let server = Server::start(data.path(), &[]);
    let browser = Browser::new(&server.base);
    // Regression 5: Claude's user agent and a 127.0.0.1 redirect URI are not blocked.
    let http = reqwest::Client::new();
    let redirects = [
        "https://claude.ai/api/mcp/auth_callback",
        "https://claude.com/api/mcp/auth_callback",
        "https://chatgpt.com/connector_platform_oauth_redirect",
        "https://chatgpt.com/connector/oauth/abc123",
        "http://localhost:33418/callback",
        "http://127.0.0.1:1455/callback/xyz",
        "http://127.0.0.1:19876/mcp/oauth/callback",
        "http://localhost:6274/oauth/callback",
        "http://localhost:6274/oauth/callback/debug",
    ];
    let response = http
        .post(format!("{}/register", server.base))
        .header("user-agent", "Claude-User")
        .json(&json!({"client_name": "Claude", "redirect_uris": redirects, "token_endpoint_auth_method": "client_secret_post"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "the root alias /register works");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let claude: Value = response.json().await.unwrap();
    // Regression 4: the requested method is honoured; the secret expiry is the integer 0.
    assert_eq!(claude["token_endpoint_auth_method"], "client_secret_post");
    assert!(claude["client_secret"].as_str().unwrap().starts_with("sqs_"));
    assert_eq!(claude["client_secret_expires_at"], json!(0));
    assert_eq!(claude["redirect_uris"].as_array().unwrap().len(), redirects.len());
    assert!(claude["client_id_issued_at"].is_i64());
    let (_, public) = browser.register(&json!({"redirect_uris": ["http://127.0.0.1:1/cb"], "token_endpoint_auth_method": "none"})).await;
    assert!(public.get("client_secret").is_none() && public.get("client_secret_expires_at").is_none(), "{public}");
    let (_, default) = browser.register(&json!({"redirect_uris": ["https://a.example/cb"]})).await;
    assert_eq!(default["token_endpoint_auth_method"], "client_secret_basic");
    assert!(default["client_secret"].is_string());
    for (body, error) in [
        (json!({"redirect_uris": ["http://evil.example/cb"]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": "https://a.example/cb"}), "invalid_client_metadata"),
        (json!({}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "tls_client_auth"}), "invalid_client_metadata"),
    ] {
        let (status, answer) = browser.register(&body).await;
        assert_eq!((status, answer["error"].as_str()), (400, Some(error)), "{body}: {answer}");
    }
    let response = http.post(format!("{}/oauth/register", server.base)).body("not json").send().await.unwrap();
    assert_eq!(response.status(), 400);

    // Both confidential methods complete a token exchange; a wrong secret is invalid_client (401).
    for (client, basic) in [(&claude, false), (&default, true)] {
        let mut browser = Browser::new(&server.base);
        let id = client["client_id"].as_str().unwrap();
        let secret = client["client_secret"].as_str().unwrap();
        let redirect = client["redirect_uris"][0].as_str().unwrap();
        browser.login(EMAIL, PASSWORD, "/login").await;
        let (verifier, challenge) = pkce();
        let consent = browser
            .get(&format!(
                "/authorize?response_type=code&client_id={id}&redirect_uri={}&code_challenge={challenge}&code_challenge_method=S256",
                squaremcp_tests::oauth::encode(redirect)
            ))
            .await;
        assert_eq!(consent.status, 200, "the root alias /authorize works: {}", consent.body);
        assert!(consent.body.contains(&format!("<dd>{}</dd>", reqwest::Url::parse(redirect).unwrap().host_str().unwrap())));
        let fields = [
            ("request", hidden_field(&consent.body, "request").unwrap()),
            ("csrf", hidden_field(&consent.body, "csrf").unwrap()),
            ("action", "allow".to_owned()),
        ];
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let done = browser.post_form("/authorize", &fields).await;
        let code = query_of(done.location.as_deref().unwrap())["code"].clone();
        assert!(!query_of(done.location.as_deref().unwrap()).contains_key("state"), "no state sent, none returned");
        let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", redirect), ("code_verifier", verifier.as_str())];
        let mut request = http.post(format!("{}/token", server.base)).header("content-type", "application/x-www-form-urlencoded");
        let mut wrong = http.post(format!("{}/oauth/token", server.base)).header("content-type", "application/x-www-form-urlencoded");
        let encoded = |extra: &[(&str, &str)]| {
            form.iter().chain(extra).map(|(k, v)| format!("{k}={}", squaremcp_tests::oauth::encode(v))).collect::<Vec<_>>().join("&")
        };
        if basic {
            request = request.basic_auth(id, Some(secret)).body(encoded(&[]));
            wrong = wrong.basic_auth(id, Some("sqs_wrong")).body(encoded(&[]));
        } else {
            request = request.body(encoded(&[("client_id", id), ("client_secret", secret)]));
            wrong = wrong.body(encoded(&[("client_id", id), ("client_secret", "sqs_wrong")]));
        }
        let refused = wrong.send().await.unwrap();
        assert_eq!(refused.status(), 401);
        assert_eq!(refused.json::<Value>().await.unwrap()["error"], "invalid_client");
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "basic={basic}");
        let tokens: Value = response.json().await.unwrap();
        assert_eq!(tokens["token_type"], "Bearer");
        let (status, _) = mcp(&server, tokens["access_token"].as_str(), &tools_list()).await;
        assert_eq!(status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flow_and_every_refusal() {
    let data = TempDir::new("oauth-flow");
    let customer = create_customer_with_password(data.path(), EMAIL, PASSWORD);
    // tools/list shows a customer the tools of the platforms they connected.
    let document = json!({"bot_token": "123456789:AAHoauth_flow_token_abcdefghijklmnop"}).to_string();
    cli_json(data.path(), &["credentials", "set", "--customer", &customer, "--platform", "telegram"], &document);
    let server = Server::start(data.path(), &[]);
    let redirect = "http://127.0.0.1:45678/callback";
    let mut flow = Flow::start(&server, redirect).await;

    // Without a session: 303 to /login, which returns to the request after sign-in.
    let mut anonymous = Browser::new(&server.base);
    let path = flow.authorize_path(&[]);
    let page = anonymous.get(&path).await;
    assert_eq!(page.status, 303);
    let login = page.location.unwrap();
    assert!(login.starts_with("/login?return_to=%2Foauth%2Fauthorize%3F"), "{login}");
    assert_eq!(query_of(&format!("{}{login}", server.base))["return_to"], path);
    let signed_in = anonymous.login(EMAIL, PASSWORD, &path).await;
    assert_eq!((signed_in.status, signed_in.location.as_deref()), (303, Some(path.as_str())));
    let session = anonymous.cookie("session").unwrap().to_owned();
    let consent = anonymous.get(&path).await;
    assert_eq!(consent.status, 200);
    assert!(consent.body.contains("Flow &lt;test&gt;") && consent.body.contains("127.0.0.1:45678"), "client name (escaped) and redirect host");
    for (header, value) in [("x-frame-options", "DENY"), ("referrer-policy", "no-referrer"), ("cache-control", "no-store")] {
        assert_eq!(consent.headers[header], value);
    }
    assert!(consent.headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));

    // Open redirect through return_to: anything but a local path falls back to /login.
    for evil in ["//evil.example/x", "https://evil.example/x", "/\\evil.example", "javascript:alert(1)"] {
        let mut browser = Browser::new(&server.base);
        let page = browser.login(EMAIL, PASSWORD, evil).await;
        assert_eq!((page.status, page.location.as_deref()), (303, Some("/login")), "{evil}");
        let page = browser.get(&format!("/login?return_to={}", squaremcp_tests::oauth::encode(evil))).await;
        assert_eq!(page.status, 200, "signed in: the page, not a redirect, for {evil}");
    }
    // The login form refuses a POST without its CSRF token, and says nothing specific on a wrong password.
    let mut browser = Browser::new(&server.base);
    let page = browser.post_form("/login", &[("email", EMAIL), ("password", PASSWORD), ("return_to", "/login")]).await;
    assert_eq!(page.status, 403);
    assert!(browser.cookie("session").is_none());
    let page = browser.login(EMAIL, "wrong password", "/login").await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("The email or password is not correct."));
    let page = browser.login("nobody@example.com", PASSWORD, "/login").await;
    assert!(page.body.contains("The email or password is not correct."));

    // Consent POST without (or with a wrong) CSRF token: 403, no redirect.
    let consent = flow.browser.get(&flow.authorize_path(&[])).await;
    let request = hidden_field(&consent.body, "request").unwrap();
    for csrf in [None, Some("forged")] {
        let mut form = vec![("request", request.as_str()), ("action", "allow")];
        if let Some(csrf) = csrf {
            form.push(("csrf", csrf));
        }
        let page = flow.browser.post_form("/oauth/authorize", &form).await;
        assert_eq!((page.status, page.location.is_none()), (403, true), "{csrf:?}");
    }
    // Deny: access_denied with the state.
    let csrf = hidden_field(&consent.body, "csrf").unwrap();
    let page = flow.browser.post_form("/oauth/authorize", &[("request", &request), ("csrf", &csrf), ("action", "deny")]).await;
    let denied = query_of(page.location.as_deref().unwrap());
    assert_eq!((denied["error"].as_str(), denied["state"].as_str()), ("access_denied", "s t&a=te"));
    assert_eq!(denied["iss"], server.base, "RFC 9207: the issuer on every authorization response");

    // Unknown client and redirect URI mismatch: an error page, never a redirect.
    for extra in [
        [("client_id", "mcp_00000000000000000000000000000000")],
        [("redirect_uri", "https://evil.example/callback")],
    ] {
        let page = flow.browser.get(&flow.authorize_path(&extra)).await;
        assert_eq!((page.status, page.location.is_none()), (400, true), "{extra:?}: {}", page.body);
        assert_eq!(page.headers["x-frame-options"], "DENY");
    }
    // PKCE missing or plain, a foreign resource, another response type. The client has not
    // completed a token exchange yet, so its redirect URI is as unvetted as the request
    // (RFC 9700 §4.11.2): the error is shown here, not redirected.
    let invalid = [
        (vec![("code_challenge", ""), ("code_challenge_method", "")], "invalid_request"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("resource", "https://evil.example/mcp")], "invalid_target"),
        (vec![("response_type", "token")], "unsupported_response_type"),
    ];
    for (extra, error) in &invalid {
        let page = flow.browser.get(&flow.authorize_path(extra)).await;
        assert_eq!((page.status, page.location.is_none()), (400, true), "{extra:?}: {}", page.body);
        assert!(page.body.contains(error), "{extra:?}: {}", page.body);
    }

    // Wrong verifier: invalid_grant (and the code is spent).
    let code = flow.code().await;
    let (status, body, _) = flow
        .browser
        .token(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", redirect), ("code_verifier", &pkce().0), ("client_id", &flow.client_id)])
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    // Redirect URI differing from the authorization request's: invalid_grant.
    let code = flow.code().await;
    let (status, body, _) = flow
        .browser
        .token(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", "http://127.0.0.1:45678/other"), ("code_verifier", &flow.verifier), ("client_id", &flow.client_id)])
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    // Unknown client at the token endpoint: 401 invalid_client.
    let (status, body, _) = flow.browser.token(&[("grant_type", "authorization_code"), ("code", "x"), ("client_id", "mcp_unknown")]).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    let (status, body, _) = flow.browser.token(&[("grant_type", "password"), ("client_id", &flow.client_id)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unsupported_grant_type")));

    // The real exchange: no-store, Bearer, expires_in, a refresh token and the scope.
    let code = flow.code().await;
    let (status, tokens, cache) = flow.exchange(&code).await;
    assert_eq!((status, cache.as_str()), (200, "no-store"), "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "mcp");
    assert_eq!(tokens["expires_in"], 3600);
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    // Now that the client has completed an exchange, a signed-in person's invalid request goes
    // back to it with the error, the state and `iss`; without a session it is still a page.
    for (extra, error) in &invalid {
        let page = flow.browser.get(&flow.authorize_path(extra)).await;
        assert_eq!(page.status, 303, "{extra:?}: {}", page.body);
        let location = page.location.unwrap();
        assert!(location.starts_with(redirect), "{location}");
        let query = query_of(&location);
        assert_eq!((query["error"].as_str(), query["state"].as_str(), query["iss"].as_str()), (*error, "s t&a=te", server.base.as_str()));
        let page = Browser::new(&server.base).get(&flow.authorize_path(extra)).await;
        assert_eq!((page.status, page.location.is_none()), (400, true), "signed out, {extra:?}: {}", page.body);
    }
    // Regression 11: the resource server accepts what its own token endpoint issued.
    let (status, listed) = mcp(&server, Some(&access), &tools_list()).await;
    assert_eq!(status, 200, "{listed}");
    assert!(listed["result"]["tools"].as_array().unwrap().len() >= 5);
    // Regressions 6-8 with a token: GET is 405, SSE-only Accept works, initialize ignores a bad version header.
    let http = reqwest::Client::new();
    assert_eq!(http.get(server.mcp_url()).bearer_auth(&access).send().await.unwrap().status(), 405);
    let response = http.post(server.mcp_url()).bearer_auth(&access).header("accept", "text/event-stream").json(&tools_list()).send().await.unwrap();
    assert_eq!((response.status().as_u16(), response.headers()["content-type"].to_str().unwrap()), (200, "text/event-stream"));
    let response = http.post(server.mcp_url()).bearer_auth(&access).header("mcp-protocol-version", "2099-01-01").json(&init()).send().await.unwrap();
    assert_eq!(response.status(), 200);

    // A session cookie is not accepted on /mcp, as a cookie or as a bearer token.
    let response = http.post(server.mcp_url()).header("cookie", format!("session={session}")).json(&tools_list()).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let (status, _) = mcp(&server, Some(&session), &tools_list()).await;
    assert_eq!(status, 401);
    // A token for another audience: a second server on the same store and secret but another URL.
    let other = Server::start(data.path(), &[]);
    let (status, _) = mcp(&other, Some(&access), &tools_list()).await;
    assert_eq!(status, 401, "a token for {} is refused by {}", server.base, other.base);
    let response = http.post(other.mcp_url()).bearer_auth(&access).json(&tools_list()).send().await.unwrap();
    assert!(response.headers()["www-authenticate"].to_str().unwrap().contains(r#"error="invalid_token""#));
    // A tampered token.
    let mut tampered = access.clone();
    tampered.pop();
    tampered.push(if access.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(mcp(&server, Some(&tampered), &tools_list()).await.0, 401);

    // Code replay: invalid_grant, and the tokens it issued stop working.
    let (status, body, _) = flow.exchange(&code).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(mcp(&server, Some(&access), &tools_list()).await.0, 401, "replay revoked the access token");
    assert_eq!(flow.refresh(tokens["refresh_token"].as_str().unwrap()).await.0, 400);

    // Regression 12: registered with 127.0.0.1, authorized with localhost on another port.
    let drifted = "http://localhost:50999/callback";
    let query = flow.code_with(&[("redirect_uri", drifted)]).await;
    let (status, body, _) = flow
        .browser
        .token(&[("grant_type", "authorization_code"), ("code", &query["code"]), ("redirect_uri", drifted), ("code_verifier", &flow.verifier), ("client_id", &flow.client_id)])
        .await;
    assert_eq!(status, 200, "{body}");
    // Consent is remembered for this client, redirect URI and scope: no second consent page.
    let page = flow.browser.get(&flow.authorize_path(&[])).await;
    assert_eq!(page.status, 303);
    assert!(query_of(page.location.as_deref().unwrap()).contains_key("code"));
    // Regression 11 again: a resource with a trailing slash and an upper-case scheme is the same resource.
    let shouty = format!("{}/mcp/", server.base.replacen("http", "HTTP", 1));
    let query = flow.code_with(&[("resource", &shouty)]).await;
    assert!(query.contains_key("code"), "{query:?}");

    // Revocation ends the grant.
    let code = flow.code().await;
    let (_, tokens, _) = flow.exchange(&code).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(mcp(&server, Some(access), &tools_list()).await.0, 200);
    let response = http
        .post(format!("{}/oauth/revoke", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}&client_id={}", tokens["refresh_token"].as_str().unwrap(), flow.client_id))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(mcp(&server, Some(access), &tools_list()).await.0, 401);

    // Logout clears the session: authorize asks for a login again.
    let page = flow.browser.post_form("/logout", &[]).await;
    assert_eq!((page.status, page.location.as_deref()), (303, Some("/login")));
    assert!(flow.browser.cookie("session").is_none());
    assert_eq!(flow.browser.get(&flow.authorize_path(&[])).await.status, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_rotate_survive_races_and_detect_reuse() {
    let data = TempDir::new("oauth-refresh");
    create_customer_with_password(data.path(), EMAIL, PASSWORD);
    let server = Server::start(data.path(), &[("SQUAREMCP_REFRESH_GRACE", "2")]);
    let mut flow = Flow::start(&server, "http://127.0.0.1:45679/callback").await;
    let code = flow.code().await;
    let (_, tokens, _) = flow.exchange(&code).await;
    let r0 = tokens["refresh_token"].as_str().unwrap().to_owned();

    // Regression 9: two concurrent refreshes with the same token both succeed, and whichever
    // result the client keeps goes on working.
    let (a, b) = tokio::join!(flow.refresh(&r0), flow.refresh(&r0));
    assert_eq!((a.0, b.0), (200, 200), "{a:?} {b:?}");
    for result in [&a.1, &b.1] {
        assert_ne!(result["refresh_token"], r0.as_str(), "rotated");
        assert_eq!(mcp(&server, result["access_token"].as_str(), &tools_list()).await.0, 200);
    }
    let (status, kept) = flow.refresh(b.1["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{kept}");
    let kept_access = kept["access_token"].as_str().unwrap().to_owned();

    // After the grace window, the first token is a reuse: the whole family is revoked.
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let (status, body) = flow.refresh(&r0).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(mcp(&server, Some(&kept_access), &tools_list()).await.0, 401, "reuse revoked the family's access tokens");
    assert_eq!(flow.refresh(kept["refresh_token"].as_str().unwrap()).await.0, 400, "and its refresh tokens");
}

#[test]
fn set_password_changes_the_login_password() {
    let data = TempDir::new("set-password");
    let id = create_customer_with_password(data.path(), EMAIL, PASSWORD);
    let out = cli_json(data.path(), &["customers", "set-password", "--customer", &id], "a brand new password\n");
    assert_eq!(out["password_set"], true);
    for (args, stdin, expected) in [
        (vec!["customers", "set-password", "--customer", &id], "short\n", "at least 8 characters"),
        (vec!["customers", "set-password", "--customer", "cus_000000000000000000000000"], "long enough pw\n", "no customer with id"),
    ] {
        let out = cli(data.path(), &args, stdin);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains(expected), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let server = Server::start(data.path(), &[]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut browser = Browser::new(&server.base);
        assert_eq!(browser.login(EMAIL, PASSWORD, "/login").await.status, 400, "the old password no longer works");
        assert_eq!(browser.login(EMAIL, "a brand new password", "/login").await.status, 303);
        let page = browser.get("/login").await;
        assert!(page.body.contains("Signed in as <strong>ada@example.com</strong>"), "{}", page.body);
    });
    // Nothing in the data directory holds the password.
    for entry in std::fs::read_dir(data.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(20).any(|w| w == b"a brand new password"));
    }
}
