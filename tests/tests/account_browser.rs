//! The account page end to end, in headless Chromium with JavaScript off, against the real
//! `squaremcp serve`: sign in, usage, connections with health (a mock Telegram), API keys created
//! and revoked, a connected MCP client disconnected (its refresh token fails at once), and X
//! connected through the mock provider's consent page, then used by a tools/call.
//! Screenshots land in `target/artifacts/account/` (not committed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use squaremcp_platform_mocks::Mock;
use squaremcp_platform_mocks::telegram::Telegram;
use squaremcp_platform_mocks::x::{self, X};
use squaremcp_tests::oauth::{Browser, encode, hidden_field, pkce, query_of};
use squaremcp_tests::{Server, TempDir, cli_json, create_customer_with_password, node_dir};

const EMAIL: &str = "grace@example.com";
const PASSWORD: &str = "analytical engine";
const TOKEN: &str = "123456789:AAHgrace_token_abcdefghijklmnopqrstu";
const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// An MCP client connected through OAuth (register, sign in, allow, exchange): its client id
/// and refresh token.
async fn connect_mcp_client(server: &Server) -> (String, String) {
    let mut browser = Browser::new(&server.base);
    let (status, client) = browser
        .register(&json!({"client_name": "Desk <Client>", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}))
        .await;
    assert_eq!(status, 201, "{client}");
    let client_id = client["client_id"].as_str().unwrap().to_owned();
    assert_eq!(browser.login(EMAIL, PASSWORD, "/login").await.status, 303);
    let (verifier, challenge) = pkce();
    let path = format!(
        "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&code_challenge={challenge}&code_challenge_method=S256&state=s&scope=mcp",
        encode(&client_id),
        encode(REDIRECT)
    );
    let consent = browser.get(&path).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    let (request, csrf) = (hidden_field(&consent.body, "request").unwrap(), hidden_field(&consent.body, "csrf").unwrap());
    let done = browser.post_form("/oauth/authorize", &[("request", &request), ("csrf", &csrf), ("action", "allow")]).await;
    let code = query_of(&done.location.unwrap())["code"].clone();
    let (status, tokens, _) = browser
        .token(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &verifier), ("client_id", &client_id)])
        .await;
    assert_eq!(status, 200, "{tokens}");
    (client_id, tokens["refresh_token"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_page_works_in_a_browser_without_javascript() {
    assert!(Path::new("/usr/bin/chromium").exists(), "Debian chromium is missing: run scripts/test, which installs it");
    let telegram = Mock::start(Telegram::accepting(&[TOKEN])).await;
    let data = TempDir::new("account-browser");
    let grace = create_customer_with_password(data.path(), EMAIL, PASSWORD);
    cli_json(data.path(), &["credentials", "set", "--customer", &grace, "--platform", "telegram"], &json!({"bot_token": TOKEN}).to_string());
    let key = cli_json(data.path(), &["api-keys", "create", "--customer", &grace, "--name", "cli key"], "");
    let provider = Mock::start(X::new("sqm-test-client", "sqm-test-secret")).await;
    let server = Server::start(
        data.path(),
        &[
            ("SQUAREMCP_TELEGRAM_BASE_URL", telegram.base_url()),
            ("SQUAREMCP_TWITTER_CLIENT_ID", "sqm-test-client"),
            ("SQUAREMCP_TWITTER_CLIENT_SECRET", "sqm-test-secret"),
            ("SQUAREMCP_TWITTER_AUTHORIZE_BASE_URL", provider.base_url()),
            ("SQUAREMCP_TWITTER_TOKEN_BASE_URL", provider.base_url()),
            ("SQUAREMCP_TWITTER_BASE_URL", provider.base_url()),
        ],
    );

    // One counted call, so that usage shows it.
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "telegram_get_me", "arguments": {}}});
    let response = reqwest::Client::new()
        .post(server.mcp_url())
        .header("x-api-key", key["key"].as_str().unwrap())
        .header("accept", "application/json, text/event-stream")
        .json(&call)
        .send()
        .await
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    let (client_id, refresh_token) = connect_mcp_client(&server).await;

    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/artifacts/account");
    let _ = std::fs::remove_dir_all(&artifacts);
    let out = Command::new("node")
        .current_dir(node_dir())
        .arg("account-client.mjs")
        .args([&server.base, EMAIL, PASSWORD])
        .arg(&artifacts)
        .arg("twitter")
        .output()
        .unwrap();
    assert!(out.status.success(), "account-client.mjs failed:\n{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));

    // Signed out, /account went through the login form and came back.
    assert!(report["loginUrl"].as_str().unwrap().ends_with("/login?return_to=%2Faccount"), "{report}");
    // The page: the same security headers as /login, no caching.
    assert_eq!(report["status"], 200);
    let headers = &report["headers"];
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-store");
    let csp = headers["content-security-policy"].as_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"), "{csp}");
    let account = &report["account"];
    assert_eq!(account["title"], "Your account · SquareMCP");
    let text = account["text"].as_str().unwrap();
    assert!(text.contains(EMAIL) && text.contains("pro"), "{text}");
    assert!(text.contains("1 of ") && text.contains("tool calls used"), "{text}");
    assert!(text.contains(&squaremcp_tests::first_day_of_next_month()), "the reset date: {text}");
    // The connection, probed with the platform's get_me: ok. Its token is never on the page.
    assert_eq!(account["connections"][0]["platform"], "telegram");
    assert_eq!(account["health"][0], "ok");
    assert!(!text.contains(TOKEN) && !text.contains("AAHgrace"), "a secret reached the page");
    assert!(account["keys"].as_array().unwrap().iter().any(|k| k["text"].as_str().unwrap().contains("cli key")));
    let clients = account["clients"].as_array().unwrap();
    assert_eq!(clients.len(), 1, "{clients:?}");
    assert!(clients[0]["text"].as_str().unwrap().contains("Desk <Client>"), "escaped and shown: {clients:?}");
    // Every POST form carries a CSRF token.
    for form in account["forms"].as_array().unwrap() {
        if form["method"] == "post" && form["action"] != "/logout" {
            assert_eq!(form["csrf"], true, "{form}");
        }
    }

    // The new key was shown once, worked, and stopped working when revoked.
    let new_key = &report["newKey"];
    assert_eq!(new_key["shown"], true);
    assert_eq!(new_key["shownAgain"], false, "a key is shown only once");
    assert_eq!(new_key["statusBeforeRevoke"], 200);
    assert_eq!(new_key["statusAfterRevoke"], 401);
    assert!(report["afterKeyRevoke"]["notice"].as_str().unwrap().contains("revoked"));

    // The disconnected client is gone, and its refresh token fails at once.
    assert_eq!(report["afterClientRevoke"]["clients"].as_array().unwrap().len(), 0);
    let (status, body, _) =
        Browser::new(&server.base).token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh_token), ("client_id", &client_id)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");

    // Connect X: the provider's consent page (PKCE S256, state, the callback on this host), back on
    // /account with the connection ok, under the X username.
    let consent_url = report["providerConsent"]["url"].as_str().unwrap();
    assert!(consent_url.starts_with(&format!("{}/i/oauth2/authorize?", provider.base_url())), "{consent_url}");
    let authorize = provider.requests().into_iter().find(|r| r.path == "/i/oauth2/authorize").unwrap();
    let query: std::collections::BTreeMap<String, String> = authorize.query_pairs().into_iter().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["redirect_uri"], format!("{}/connect/twitter/callback", server.base));
    assert!(query["state"].len() >= 43 && query["code_challenge"].len() == 43, "{query:?}");
    let connected = &report["afterConnect"];
    assert!(connected["notice"].as_str().unwrap().contains("connected"), "{connected}");
    let twitter = connected["connections"].as_array().unwrap().iter().position(|c| c["platform"] == "twitter").expect("an X connection");
    assert_eq!(connected["connections"][twitter]["account"], x::USERNAME);
    assert_eq!(connected["health"][twitter], "ok", "{connected}");
    let text = connected["text"].as_str().unwrap();
    assert!(!text.contains("x-access-") && !text.contains("x-refresh-"), "a token reached the page");
    // The stored tokens work for a tools/call, and the customer now sees X's tools.
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "twitter_get_me", "arguments": {}}});
    let answer: Value = reqwest::Client::new()
        .post(server.mcp_url())
        .header("x-api-key", key["key"].as_str().unwrap())
        .header("accept", "application/json, text/event-stream")
        .json(&call)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    assert_eq!(answer["result"]["structuredContent"]["data"]["username"], x::USERNAME);
    let used = provider.requests().into_iter().filter(|r| r.path == "/2/users/me").last().unwrap();
    assert!(used.header("authorization").unwrap().starts_with("Bearer x-access-"), "the connection's token was used");
    let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
    let listed: Value = reqwest::Client::new()
        .post(server.mcp_url())
        .header("x-api-key", key["key"].as_str().unwrap())
        .header("accept", "application/json, text/event-stream")
        .json(&list)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = listed["result"]["tools"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains(&"twitter_get_me") && names.contains(&"telegram_get_me"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("discord_")), "only connected platforms: {names:?}");

    for name in [
        "account",
        "account-mobile",
        "key-created",
        "key-created-mobile",
        "after-revoke",
        "after-revoke-mobile",
        "provider-consent",
        "connected",
        "connected-mobile",
    ] {
        let file = artifacts.join(format!("{name}.png"));
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        assert!(size > 5_000, "{} is missing or empty", file.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_forms_refuse_a_missing_or_foreign_csrf_token_and_signed_out_visitors() {
    let data = TempDir::new("account-csrf");
    create_customer_with_password(data.path(), EMAIL, PASSWORD);
    let server = Server::start(data.path(), &[]);
    let mut anonymous = Browser::new(&server.base);
    let page = anonymous.get("/account").await;
    assert_eq!((page.status, page.location.as_deref()), (303, Some("/login?return_to=%2Faccount")));
    assert_eq!(anonymous.post_form("/account/keys", &[("name", "x")]).await.status, 401);

    let mut browser = Browser::new(&server.base);
    assert_eq!(browser.login(EMAIL, PASSWORD, "/account").await.location.as_deref(), Some("/account"));
    let page = browser.get("/account").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = hidden_field(&page.body, "csrf").unwrap();
    assert_eq!(browser.post_form("/account/keys", &[("name", "no token")]).await.status, 403);
    assert_eq!(browser.post_form("/account/keys", &[("name", "wrong"), ("csrf", "AAAA")]).await.status, 403);
    // A token from another session of the same person is refused too.
    let mut other = Browser::new(&server.base);
    other.login(EMAIL, PASSWORD, "/account").await;
    assert_eq!(other.post_form("/account/keys", &[("name", "foreign"), ("csrf", &csrf)]).await.status, 403);
    let created = browser.post_form("/account/keys", &[("name", "mine"), ("csrf", &csrf)]).await;
    assert_eq!(created.status, 200);
    assert!(created.body.contains("sqm_"), "the new key is shown once");
    let customers = cli_json(data.path(), &["customers", "list"], "");
    let keys = cli_json(data.path(), &["api-keys", "list", "--customer", customers[0]["id"].as_str().unwrap()], "");
    assert_eq!(keys.as_array().unwrap().len(), 1, "only the form with the right token created a key: {keys}");
}
