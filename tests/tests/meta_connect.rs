//! Connect Facebook and Instagram on the real `squaremcp serve` against the Meta mock (Graph API
//! and token endpoint): the account page's link goes to Meta's dialog with the app's id, the
//! redirect URI and the scopes; the callback exchanges the code, then the user token for a
//! long-lived one (both as Meta documents, GET with the app secret), reads `/me/accounts` with a
//! bearer, and stores one account per Page (Facebook) or per linked Instagram account
//! (Instagram), each working with its Page token. Instagram Login (the operator's choice) stores
//! one account with a 60-day token, which the gateway renews in its last week. Runs on SQLite,
//! and on DynamoDB Local with `SQUAREMCP_STORE=dynamodb` (scripts/test).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use serde_json::json;
use squaremcp_platform_mocks::Mock;
use squaremcp_platform_mocks::meta::{
    APP_ID, APP_SECRET, CONNECT_CODE, IG_APP_ID, IG_APP_SECRET, IG_CONNECT_CODE, IG_LONG_TOKEN,
    IG_SHORT_TOKEN, IG_USER_ID, LONG_USER_TOKEN, Meta, PAGE_ID, SECOND_PAGE_ID, SECOND_PAGE_TOKEN,
    SHORT_USER_TOKEN,
};
use squaremcp_tests::oauth::{Browser, encode, query_of};
use squaremcp_tests::{Server, TempDir, cli_json};

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery";
const PAGE_TOKEN: &str = "EAApage-token-of-adas-bakery";

fn meta_env(mock: &str) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for platform in ["FACEBOOK", "INSTAGRAM"] {
        env.push((format!("SQUAREMCP_{platform}_CLIENT_ID"), APP_ID.to_owned()));
        env.push((
            format!("SQUAREMCP_{platform}_CLIENT_SECRET"),
            APP_SECRET.to_owned(),
        ));
        for base in ["AUTHORIZE_BASE_URL", "TOKEN_BASE_URL", "BASE_URL"] {
            env.push((format!("SQUAREMCP_{platform}_{base}"), mock.to_owned()));
        }
    }
    env
}

/// Follows the account page's Connect link for `platform`: Meta's dialog URL.
async fn begin(browser: &mut Browser, platform: &str) -> String {
    let account = browser.get("/account").await;
    let marker = format!("href=\"/connect/{platform}?");
    let start = account
        .body
        .split(&marker)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a Connect link");
    let started = browser
        .get(&format!(
            "/connect/{platform}?{}",
            start.replace("&amp;", "&")
        ))
        .await;
    assert_eq!(started.status, 303, "{}", started.body);
    started.location.unwrap()
}

fn accounts(data: &TempDir, customer: &str, platform: &str) -> Vec<String> {
    let listed = cli_json(
        data.path(),
        &["credentials", "list", "--customer", customer],
        "",
    );
    let mut names: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["platform"] == platform)
        .map(|c| c["account"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facebook_login_stores_each_granted_page_and_each_linked_instagram_account() {
    let mock = Mock::start(Meta::accepting(&[PAGE_TOKEN, SECOND_PAGE_TOKEN])).await;
    let data = TempDir::new("meta-connect");
    let customer = cli_json(
        data.path(),
        &[
            "customers",
            "create",
            "--email",
            EMAIL,
            "--plan",
            "pro",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    let customer = customer["id"].as_str().unwrap().to_owned();
    let key = cli_json(
        data.path(),
        &[
            "api-keys",
            "create",
            "--customer",
            &customer,
            "--name",
            "e2e",
        ],
        "",
    )["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let env = meta_env(mock.base_url());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start(data.path(), &env);
    let mut browser = Browser::new(&server.base);
    browser.login(EMAIL, PASSWORD, "/account").await;

    // Facebook: the dialog of the configured Graph version, with the Page scopes, no PKCE.
    let dialog = begin(&mut browser, "facebook").await;
    let (path, _) = dialog.split_once('?').unwrap();
    assert_eq!(path, format!("{}/v26.0/dialog/oauth", mock.base_url()));
    let query = query_of(&dialog);
    let redirect_uri = format!("{}/connect/facebook/callback", server.base);
    assert_eq!(
        (
            query["response_type"].as_str(),
            query["client_id"].as_str(),
            query["redirect_uri"].as_str()
        ),
        ("code", APP_ID, redirect_uri.as_str())
    );
    assert_eq!(
        query["scope"],
        "pages_show_list,pages_read_engagement,pages_manage_posts"
    );
    assert!(!query.contains_key("code_challenge"));

    let done = browser
        .get(&format!(
            "/connect/facebook/callback?state={}&code={}",
            encode(&query["state"]),
            CONNECT_CODE
        ))
        .await;
    assert_eq!(
        (done.status, done.location.as_deref()),
        (303, Some("/account?done=connected")),
        "{}",
        done.body
    );
    assert_eq!(
        accounts(&data, &customer, "facebook"),
        ["adas-bakery", "adas-caf"],
        "one account per Page"
    );

    // The exact requests: code → short-lived token → long-lived token → the Pages, as a bearer.
    let requests = mock.requests();
    let token_queries: Vec<BTreeMap<String, String>> = requests
        .iter()
        .filter(|r| r.path == "/v26.0/oauth/access_token")
        .map(|r| r.query_pairs().into_iter().collect())
        .collect();
    let expected_code_exchange: BTreeMap<String, String> = [
        ("client_id", APP_ID),
        ("client_secret", APP_SECRET),
        ("code", CONNECT_CODE),
        ("redirect_uri", &redirect_uri),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let expected_long_lived: BTreeMap<String, String> = [
        ("grant_type", "fb_exchange_token"),
        ("client_id", APP_ID),
        ("client_secret", APP_SECRET),
        ("fb_exchange_token", SHORT_USER_TOKEN),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(token_queries, [expected_code_exchange, expected_long_lived]);
    let pages = requests
        .iter()
        .find(|r| r.path == "/v26.0/me/accounts")
        .expect("the Pages are read");
    assert_eq!(
        pages.header("authorization"),
        Some(format!("Bearer {LONG_USER_TOKEN}").as_str())
    );
    assert!(
        pages
            .query
            .as_deref()
            .is_some_and(|q| !q.contains(LONG_USER_TOKEN)),
        "no token in the URL"
    );

    // Each Page works with its own token.
    let page = server
        .call_tool_ok(&key, "facebook_get_page", json!({"account": "adas-bakery"}))
        .await;
    assert_eq!(page["id"], PAGE_ID, "{page}");
    let used = mock
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path == format!("/v26.0/{PAGE_ID}"))
        .unwrap();
    assert_eq!(
        used.header("authorization"),
        Some(format!("Bearer {PAGE_TOKEN}").as_str())
    );
    let second = server
        .call_tool(&key, "facebook_get_page", json!({"account": "adas-caf"}))
        .await;
    let asked = mock
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path == format!("/v26.0/{SECOND_PAGE_ID}"))
        .expect("the second Page is asked for");
    assert_eq!(
        asked.header("authorization"),
        Some(format!("Bearer {SECOND_PAGE_TOKEN}").as_str()),
        "{second}"
    );

    // Instagram through Facebook Login: only the Page with a linked professional account.
    let dialog = begin(&mut browser, "instagram").await;
    let query = query_of(&dialog);
    assert_eq!(
        query["scope"],
        "instagram_basic,instagram_content_publish,pages_show_list,pages_read_engagement"
    );
    let code = format!("{CONNECT_CODE}-instagram");
    let done = browser
        .get(&format!(
            "/connect/instagram/callback?state={}&code={}",
            encode(&query["state"]),
            encode(&code)
        ))
        .await;
    assert_eq!(
        done.location.as_deref(),
        Some("/account?done=connected"),
        "{}",
        done.body
    );
    assert_eq!(accounts(&data, &customer, "instagram"), ["adasbakery"]);
    let profile = server
        .call_tool_ok(
            &key,
            "instagram_get_profile",
            json!({"account": "adasbakery"}),
        )
        .await;
    assert_eq!(profile["id"], IG_USER_ID, "{profile}");

    // A code Meta refuses (used already): nothing more is stored.
    let dialog = begin(&mut browser, "instagram").await;
    let query = query_of(&dialog);
    let refused = browser
        .get(&format!(
            "/connect/instagram/callback?state={}&code={}",
            encode(&query["state"]),
            encode(&code)
        ))
        .await;
    assert_eq!(refused.status, 502, "{}", refused.body);
    assert!(refused.body.contains("Nothing was stored"));
    assert_eq!(accounts(&data, &customer, "instagram"), ["adasbakery"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instagram_login_tokens_are_renewed_once_in_their_last_week_and_a_refused_renewal_asks_for_a_reconnect()
 {
    const TOKEN: &str = "IGAAlong-lived-instagram-login-token";
    const LAPSED: &str = "IGAAlapsed-instagram-login-token";
    let mock = Mock::start(Meta::accepting(&[TOKEN]).with_expired(&[LAPSED])).await;
    let data = TempDir::new("instagram-renewal");
    let tenant = squaremcp_tests::create_tenant(data.path(), EMAIL);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let store = |account: &str, token: &str, expires_at: i64| {
        let document = json!({"login": "instagram", "ig_user_id": IG_USER_ID, "access_token": token, "expires_at": expires_at});
        cli_json(
            data.path(),
            &[
                "credentials",
                "set",
                "--customer",
                &tenant.id,
                "--platform",
                "instagram",
                "--account",
                account,
            ],
            &document.to_string(),
        );
    };
    // Three days left: inside the last week, so the first calls renew it.
    store("ada", TOKEN, now + 3 * 86_400);
    let server = Server::start(
        data.path(),
        &[("SQUAREMCP_INSTAGRAM_BASE_URL", mock.base_url())],
    );

    let calls: Vec<_> = (0..10)
        .map(|i| {
            let (url, key) = (server.mcp_url(), tenant.key.clone());
            tokio::spawn(async move {
                let params =
                    json!({"name": "instagram_get_profile", "arguments": {"account": "ada"}});
                let body =
                    json!({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": params});
                let response = reqwest::Client::new()
                    .post(url)
                    .header("x-api-key", key)
                    .header("accept", "application/json, text/event-stream")
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                response.json::<serde_json::Value>().await.unwrap()
            })
        })
        .collect();
    for call in calls {
        let answer = call.await.unwrap();
        assert_eq!(
            answer["result"]["structuredContent"]["id"], IG_USER_ID,
            "{answer}"
        );
    }
    assert_eq!(
        mock.platform().renewed_tokens(),
        ["IGAArenewed-1"],
        "ten concurrent calls, one renewal"
    );
    let renewal = mock
        .requests()
        .into_iter()
        .find(|r| r.path == "/refresh_access_token")
        .unwrap();
    let query: BTreeMap<String, String> = renewal.query_pairs().into_iter().collect();
    assert_eq!(
        query,
        BTreeMap::from([
            ("grant_type".to_owned(), "ig_refresh_token".to_owned()),
            ("access_token".to_owned(), TOKEN.to_owned())
        ])
    );

    // The renewed token is stored: the next call uses it and renews nothing (60 days left).
    server
        .call_tool_ok(
            &tenant.key,
            "instagram_get_profile",
            json!({"account": "ada"}),
        )
        .await;
    let last = mock
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path.ends_with("/me") || r.path.ends_with(IG_USER_ID))
        .unwrap();
    assert_eq!(last.header("authorization"), Some("Bearer IGAArenewed-1"));
    assert_eq!(mock.platform().renewed_tokens().len(), 1);

    // A token Meta no longer renews (expired there): the call says to reconnect, nothing is sent with it.
    store("lapsed", LAPSED, now + 86_400);
    let before = mock.requests().len();
    let refused = server
        .call_tool(
            &tenant.key,
            "instagram_get_profile",
            json!({"account": "lapsed"}),
        )
        .await;
    assert_eq!(
        refused["_meta"]["squaremcp/error"]["kind"], "auth_revoked",
        "{refused}"
    );
    let sent: Vec<String> = mock.requests()[before..]
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(sent, ["/refresh_access_token"], "only the refused renewal");
}

fn pairs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instagram_login_stores_one_account_with_a_long_lived_token_when_the_operator_chooses_it() {
    let mock = Mock::start(Meta::accepting(&[IG_LONG_TOKEN])).await;
    let data = TempDir::new("instagram-login");
    let customer = cli_json(
        data.path(),
        &[
            "customers",
            "create",
            "--email",
            EMAIL,
            "--plan",
            "pro",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    let customer = customer["id"].as_str().unwrap().to_owned();
    let key = cli_json(
        data.path(),
        &[
            "api-keys",
            "create",
            "--customer",
            &customer,
            "--name",
            "e2e",
        ],
        "",
    )["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let base = mock.base_url();
    let server = Server::start(
        data.path(),
        &[
            ("SQUAREMCP_INSTAGRAM_LOGIN", "instagram"),
            ("SQUAREMCP_INSTAGRAM_CLIENT_ID", IG_APP_ID),
            ("SQUAREMCP_INSTAGRAM_CLIENT_SECRET", IG_APP_SECRET),
            ("SQUAREMCP_INSTAGRAM_AUTHORIZE_BASE_URL", base),
            ("SQUAREMCP_INSTAGRAM_TOKEN_BASE_URL", base),
            ("SQUAREMCP_INSTAGRAM_BASE_URL", base),
        ],
    );
    let mut browser = Browser::new(&server.base);
    browser.login(EMAIL, PASSWORD, "/account").await;

    let dialog = begin(&mut browser, "instagram").await;
    assert_eq!(
        dialog.split_once('?').unwrap().0,
        format!("{base}/oauth/authorize")
    );
    let query = query_of(&dialog);
    let redirect_uri = format!("{}/connect/instagram/callback", server.base);
    assert_eq!(
        (query["client_id"].as_str(), query["redirect_uri"].as_str()),
        (IG_APP_ID, redirect_uri.as_str())
    );
    assert_eq!(
        query["scope"],
        "instagram_business_basic,instagram_business_content_publish"
    );
    let done = browser
        .get(&format!(
            "/connect/instagram/callback?state={}&code={}",
            encode(&query["state"]),
            IG_CONNECT_CODE
        ))
        .await;
    assert_eq!(
        done.location.as_deref(),
        Some("/account?done=connected"),
        "{}",
        done.body
    );
    assert_eq!(accounts(&data, &customer, "instagram"), ["adasbakery"]);

    // The code as a form POST, the long-lived exchange as a GET, then who the account is.
    let requests = mock.requests();
    let code = requests
        .iter()
        .find(|r| r.path == "/oauth/access_token")
        .expect("the code is exchanged");
    let form: BTreeMap<String, String> = code.form_pairs().into_iter().collect();
    assert_eq!(
        form,
        pairs(&[
            ("grant_type", "authorization_code"),
            ("code", IG_CONNECT_CODE),
            ("redirect_uri", &redirect_uri),
            ("client_id", IG_APP_ID),
            ("client_secret", IG_APP_SECRET)
        ])
    );
    let exchange = requests
        .iter()
        .find(|r| r.path == "/access_token")
        .expect("the token is made long-lived");
    let exchanged: BTreeMap<String, String> = exchange.query_pairs().into_iter().collect();
    assert_eq!(
        exchanged,
        pairs(&[
            ("grant_type", "ig_exchange_token"),
            ("client_secret", IG_APP_SECRET),
            ("access_token", IG_SHORT_TOKEN)
        ])
    );
    let me = requests
        .iter()
        .find(|r| r.path == "/v26.0/me")
        .expect("the account is identified");
    assert_eq!(
        me.header("authorization"),
        Some(format!("Bearer {IG_LONG_TOKEN}").as_str())
    );

    // The stored account works; its 60 days are far from the last week, so nothing is renewed.
    let profile = server
        .call_tool_ok(&key, "instagram_get_profile", json!({}))
        .await;
    assert_eq!(profile["user_id"], IG_USER_ID, "{profile}");
    assert!(mock.platform().renewed_tokens().is_empty());
}
