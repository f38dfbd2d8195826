//! Connect flows and token refresh on the real `squaremcp serve` with the mock X (API and OAuth
//! provider): the refusals a Connect callback must make, and 50 concurrent calls with an expired
//! token across two processes on one store, which must cause exactly one refresh.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use squaremcp_platform_mocks::Mock;
use squaremcp_platform_mocks::x::X;
use squaremcp_tests::oauth::{Browser, encode, hidden_field, query_of};
use squaremcp_tests::{Server, TempDir, cli_json, create_customer_with_password, create_tenant};

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery";

fn provider_env(provider: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SQUAREMCP_TWITTER_CLIENT_ID", "client".to_owned()),
        ("SQUAREMCP_TWITTER_CLIENT_SECRET", "secret".to_owned()),
        ("SQUAREMCP_TWITTER_AUTHORIZE_BASE_URL", provider.to_owned()),
        ("SQUAREMCP_TWITTER_TOKEN_BASE_URL", provider.to_owned()),
        ("SQUAREMCP_TWITTER_BASE_URL", provider.to_owned()),
    ]
}

fn start(data: &TempDir, provider: &str) -> Server {
    let env = provider_env(provider);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start(data.path(), &env)
}

/// Follows the account page's Connect link (signed in): the provider's authorization URL.
async fn begin(browser: &mut Browser) -> String {
    let account = browser.get("/account").await;
    let start = account.body.split("href=\"/connect/twitter?").nth(1).and_then(|rest| rest.split('"').next()).expect("a Connect X link");
    let started = browser.get(&format!("/connect/twitter?{}", start.replace("&amp;", "&"))).await;
    assert_eq!(started.status, 303, "{}", started.body);
    started.location.unwrap()
}

/// The provider's answer (allow or deny) to an authorization URL: the callback path and query.
async fn decide(provider: &str, authorize: &str, decision: &str) -> String {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = http.get(authorize).send().await.unwrap().text().await.unwrap();
    let mut form: Vec<(String, String)> =
        ["redirect_uri", "state", "code_challenge", "scope"].iter().map(|n| ((*n).to_owned(), hidden_field(&page, n).unwrap_or_default())).collect();
    form.push(("decision".into(), decision.into()));
    let body: Vec<String> = form.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
    let answer = http
        .post(format!("{provider}/i/oauth2/authorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.join("&"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 302);
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    location.split_once("/connect/").map(|(_, rest)| format!("/connect/{rest}")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_callbacks_refuse_replays_other_sessions_denials_and_foreign_links() {
    let provider = Mock::start(X::new("client", "secret")).await;
    let data = TempDir::new("connect-refusals");
    let customer = create_customer_with_password(data.path(), EMAIL, PASSWORD);
    let server = start(&data, provider.base_url());
    let stored = || cli_json(data.path(), &["credentials", "list", "--customer", &customer], "").as_array().unwrap().len();

    // A Connect link without the page's CSRF token is refused.
    let mut browser = Browser::new(&server.base);
    browser.login(EMAIL, PASSWORD, "/account").await;
    assert_eq!(browser.get("/connect/twitter?csrf=forged").await.status, 403);
    assert_eq!(browser.get("/connect/twitter").await.status, 403);

    // The person says no: a clear page, nothing stored.
    let authorize = begin(&mut browser).await;
    let callback = decide(provider.base_url(), &authorize, "deny").await;
    let page = browser.get(&callback).await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("did not allow") && page.body.contains("Nothing was stored"), "{}", page.body);

    // A callback for another session (same person, another login) is refused.
    let authorize = begin(&mut browser).await;
    let callback = decide(provider.base_url(), &authorize, "allow").await;
    let mut other = Browser::new(&server.base);
    other.login(EMAIL, PASSWORD, "/account").await;
    assert_eq!(other.get(&callback).await.status, 403);
    assert_eq!(stored(), 0);

    // The right session connects; replaying its callback is refused and stores nothing more.
    let authorize = begin(&mut browser).await;
    let challenge = query_of(&authorize)["code_challenge"].clone();
    let callback = decide(provider.base_url(), &authorize, "allow").await;
    let done = browser.get(&callback).await;
    assert_eq!((done.status, done.location.as_deref()), (303, Some("/account?done=connected")), "{}", done.body);
    assert_eq!(stored(), 1);
    let replay = browser.get(&callback).await;
    assert_eq!(replay.status, 400);
    assert!(replay.body.contains("already used"), "{}", replay.body);
    // The code was exchanged with the PKCE verifier of that challenge.
    let token = provider.requests().into_iter().filter(|r| r.path == "/2/oauth2/token").last().unwrap();
    let form: std::collections::BTreeMap<String, String> = String::from_utf8_lossy(&token.body)
        .split('&')
        .filter_map(|pair| pair.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code_verifier"].len(), 43, "{form:?}");
    assert!(token.header("authorization").unwrap().starts_with("Basic "));
    assert_ne!(challenge, form["code_verifier"], "only the challenge travels in the browser");

    // A state that never existed.
    assert_eq!(browser.get("/connect/twitter/callback?state=nope&code=x").await.status, 400);

    // The connection was named after the X username; the customer can rename it.
    let listed = cli_json(data.path(), &["credentials", "list", "--customer", &customer], "");
    assert_eq!(listed[0]["account"], squaremcp_platform_mocks::x::USERNAME);
    let page = browser.get("/account").await;
    let csrf = hidden_field(&page.body, "csrf").unwrap();
    let renamed = browser
        .post_form("/account/connections/rename", &[("csrf", &csrf), ("platform", "twitter"), ("account", "ada"), ("to", "ada-work")])
        .await;
    assert_eq!(renamed.location.as_deref(), Some("/account?done=connection-renamed"), "{}", renamed.body);
    let listed = cli_json(data.path(), &["credentials", "list", "--customer", &customer], "");
    assert_eq!((listed.as_array().unwrap().len(), listed[0]["account"].as_str()), (1, Some("ada-work")));
}

async fn call(server: &Server, key: &str) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "twitter_get_me", "arguments": {}}});
    let response = reqwest::Client::new()
        .post(server.mcp_url())
        .header("x-api-key", key)
        .header("accept", "application/json, text/event-stream")
        .json(&body)
        .send()
        .await
        .unwrap();
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_calls_on_two_processes_with_an_expired_token_refresh_once() {
    let provider = Mock::start(X::new("client", "secret")).await;
    let data = TempDir::new("connect-refresh");
    let tenant = create_tenant(data.path(), "ada@example.com");
    // Connected earlier: the access token has expired by its own clock (and at X).
    let (access, refresh) = provider.platform().issue();
    provider.platform().expire_access_tokens();
    let document = json!({"access_token": access, "refresh_token": refresh, "expires_at": 1_000_000_000, "scopes": ["users.read"]});
    // `x` names the platform as well as `twitter` does.
    cli_json(data.path(), &["credentials", "set", "--customer", &tenant.id, "--platform", "x"], &document.to_string());
    let (one, two) = (start(&data, provider.base_url()), start(&data, provider.base_url()));

    let calls = (0..50).map(|i| {
        let server = if i % 2 == 0 { one.base.clone() } else { two.base.clone() };
        let key = tenant.key.clone();
        // Two different tools on one connection share its refresh.
        let tool = if i % 3 == 0 { "twitter_get_user_profile" } else { "twitter_get_me" };
        tokio::spawn(async move {
            let body = json!({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": tool, "arguments": {}}});
            let response = reqwest::Client::new()
                .post(format!("{server}/mcp"))
                .header("x-api-key", key)
                .header("accept", "application/json, text/event-stream")
                .json(&body)
                .send()
                .await
                .unwrap();
            response.json::<Value>().await.unwrap()
        })
    });
    for answer in calls {
        let answer = answer.await.unwrap();
        assert_eq!(answer["result"]["isError"], false, "{answer}");
    }
    assert_eq!(provider.platform().refresh_requests(), 1, "exactly one refresh across both processes");
    // The old refresh token was never presented again (X would have ended the grant).
    assert_eq!(provider.platform().reused_refresh_tokens(), 0, "a used refresh token was sent again");

    // The rotated refresh token was stored: once the new access token is dead too, the next
    // call refreshes again with it (a lost rotation would be refused as a reuse).
    provider.platform().expire_access_tokens();
    assert_eq!(call(&one, &tenant.key).await["result"]["isError"], false);
    assert_eq!(provider.platform().refresh_requests(), 2);
    // And the other process, whose cached copy of the credential predates both refreshes, reads
    // the stored one: still no reuse.
    provider.platform().expire_access_tokens();
    assert_eq!(call(&two, &tenant.key).await["result"]["isError"], false);
    assert_eq!((provider.platform().refresh_requests(), provider.platform().reused_refresh_tokens()), (3, 0));

    // X refuses the refresh (every refresh token revoked): reconnect at /account, health shows it.
    provider.platform().expire_access_tokens();
    provider.platform().revoke_refresh_tokens();
    let refused = call(&two, &tenant.key).await;
    assert_eq!(refused["result"]["isError"], true, "{refused}");
    assert_eq!(refused["result"]["_meta"]["squaremcp/error"]["kind"], "auth_revoked");
    assert!(refused["result"]["content"][0]["text"].as_str().unwrap().contains("/account"), "{refused}");
    let env = provider_env(provider.base_url());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let health = squaremcp_tests::cli_json_with_env(data.path(), &["credentials", "check", "--customer", &tenant.id, "--platform", "twitter"], "", &env);
    assert_eq!(health[0]["health"]["state"], "needs_reconnect", "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_check_reports_health_as_a_table_and_as_json() {
    let provider = Mock::start(X::new("client", "secret")).await;
    let data = TempDir::new("connect-check");
    let tenant = create_tenant(data.path(), "ada@example.com");
    let (access, refresh) = provider.platform().issue();
    let document = json!({"access_token": access, "refresh_token": refresh, "expires_at": 4_102_444_800_i64});
    cli_json(data.path(), &["credentials", "set", "--customer", &tenant.id, "--platform", "twitter"], &document.to_string());
    let env = provider_env(provider.base_url());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let checked = squaremcp_tests::cli_json_with_env(data.path(), &["credentials", "check", "--customer", &tenant.id], "", &env);
    assert_eq!(checked[0]["platform"], "twitter");
    assert_eq!(checked[0]["health"]["state"], "ok", "{checked}");
    assert!(checked[0]["health"]["checked_at"].is_string());
    let table = squaremcp_tests::cli_with_env(data.path(), &["credentials", "check", "--customer", &tenant.id, "--platform", "twitter"], "", &env);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("PLATFORM") && text.contains("twitter") && text.contains("ok"), "{text}");
    assert!(!text.contains(&access), "no secret in the table");
}
