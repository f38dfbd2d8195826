//! Self-service sign-up and password reset, and revocable sessions, end to end through the real
//! `squaremcp serve` and CLI, with mail through a real SMTP server (aiosmtpd): closed sign-up
//! answers 404; sign-up mails a verification link that creates the account once; answers do not
//! tell known addresses from unknown ones; a reset link is single-use, expires, and ends an old
//! session cookie and an OAuth refresh token; a password change on /account keeps only the
//! current browser signed in; `customers revoke-sessions`, `disable` and `enable`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use squaremcp_tests::oauth::{Browser, Page, encode, hidden_field, pkce, query_of};
use squaremcp_tests::{Server, SmtpSink, TempDir, cli, cli_json, create_customer_with_password};

const PASSWORD: &str = "analytical engine";
const REDIRECT: &str = "http://127.0.0.1:9/callback";

fn open_env(smtp: &SmtpSink) -> Vec<(&'static str, String)> {
    vec![
        ("SQUAREMCP_SIGNUP", "open".to_owned()),
        ("SQUAREMCP_SMTP_URL", smtp.url()),
        (
            "SQUAREMCP_MAIL_FROM",
            "SquareMCP <accounts@squaremcp.test>".to_owned(),
        ),
    ]
}

fn start(data: &TempDir, env: &[(&'static str, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start(data.path(), &env)
}

/// The text of a raw message with quoted-printable soft breaks and `=3D` undone.
fn decoded(message: &str) -> String {
    message
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

/// Waits for a message to `to` and returns the link under `path` in it (the first one).
fn link_for(smtp: &SmtpSink, to: &str, path: &str, skip: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let links: Vec<String> = smtp
            .messages()
            .iter()
            .map(|m| decoded(m))
            .filter(|m| {
                m.lines()
                    .any(|l| l.eq_ignore_ascii_case(&format!("To: {to}")))
            })
            .filter_map(|m| {
                let start = m.find(path)?;
                let token: String = m[start + path.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                Some(format!("{path}{token}"))
            })
            .collect();
        if links.len() > skip {
            return links[skip].clone();
        }
        assert!(
            Instant::now() < deadline,
            "no {path} link mailed to {to}: {:?}",
            smtp.messages()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn messages_to(smtp: &SmtpSink, to: &str) -> Vec<String> {
    smtp.messages()
        .into_iter()
        .filter(|m| {
            m.lines()
                .any(|l| l.eq_ignore_ascii_case(&format!("To: {to}")))
        })
        .collect()
}

/// GET the form at `path`, then POST it with its CSRF field and `fields`.
async fn submit(browser: &mut Browser, path: &str, fields: &[(&str, &str)]) -> Page {
    let form = browser.get(path).await;
    assert_eq!(form.status, 200, "{path}: {}", form.body);
    let csrf = hidden_field(&form.body, "csrf").expect("a csrf field");
    let mut all = fields.to_vec();
    all.push(("csrf", &csrf));
    browser.post_form(path, &all).await
}

/// An MCP client connected through OAuth by `email`: its client id and refresh token.
async fn connect_mcp_client(server: &Server, email: &str, password: &str) -> (String, String) {
    let mut browser = Browser::new(&server.base);
    let (status, client) =
        browser.register(&json!({"client_name": "Desk", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"})).await;
    assert_eq!(status, 201, "{client}");
    let client_id = client["client_id"].as_str().unwrap().to_owned();
    assert_eq!(browser.login(email, password, "/login").await.status, 303);
    let (verifier, challenge) = pkce();
    let path = format!(
        "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&code_challenge={challenge}&code_challenge_method=S256&state=s&scope=mcp",
        encode(&client_id),
        encode(REDIRECT)
    );
    let consent = browser.get(&path).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    let (request, csrf) = (
        hidden_field(&consent.body, "request").unwrap(),
        hidden_field(&consent.body, "csrf").unwrap(),
    );
    let done = browser
        .post_form(
            "/oauth/authorize",
            &[("request", &request), ("csrf", &csrf), ("action", "allow")],
        )
        .await;
    let code = query_of(&done.location.unwrap())["code"].clone();
    let (status, tokens, _) = browser
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("client_id", &client_id),
        ])
        .await;
    assert_eq!(status, 200, "{tokens}");
    (
        client_id,
        tokens["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// Refreshes; the status and the new refresh token (if any).
async fn refresh(server: &Server, client_id: &str, refresh_token: &str) -> (u16, Option<String>) {
    let (status, body, _) = Browser::new(&server.base)
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
        ])
        .await;
    (status, body["refresh_token"].as_str().map(str::to_owned))
}

async fn signed_in(browser: &mut Browser) -> bool {
    let page = browser.get("/account").await;
    match page.status {
        200 => true,
        303 => false,
        other => panic!("/account answered {other}: {}", page.body),
    }
}

async fn signed_in_browser(server: &Server, email: &str, password: &str) -> Browser {
    let mut browser = Browser::new(&server.base);
    assert_eq!(browser.login(email, password, "/account").await.status, 303);
    assert!(signed_in(&mut browser).await);
    browser
}

async fn mcp_status(server: &Server, key: &str) -> u16 {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    reqwest::Client::new()
        .post(server.mcp_url())
        .header("accept", "application/json, text/event-stream")
        .header("x-api-key", key)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_sign_up_answers_404_and_is_not_linked() {
    let data = TempDir::new("signup-closed");
    let server = start(&data, &[]);
    let mut browser = Browser::new(&server.base);
    for path in [
        "/signup",
        "/reset",
        "/reset/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "/signup/verify/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ] {
        assert_eq!(browser.get(path).await.status, 404, "GET {path}");
        assert_eq!(
            browser
                .post_form(
                    path,
                    &[("email", "ada@example.com"), ("password", "long enough")]
                )
                .await
                .status,
            404,
            "POST {path}"
        );
    }
    let login = browser.get("/login").await;
    assert!(
        !login.body.contains("/signup") && !login.body.contains("/reset"),
        "{}",
        login.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_verify_and_sign_in_without_telling_known_addresses_apart() {
    let smtp = SmtpSink::start(0);
    let data = TempDir::new("signup-open");
    create_customer_with_password(data.path(), "ada@example.com", PASSWORD);
    let server = start(&data, &open_env(&smtp));
    let mut browser = Browser::new(&server.base);
    let login = browser.get("/login").await;
    assert!(
        login.body.contains("href=\"/signup\"") && login.body.contains("href=\"/reset\""),
        "{}",
        login.body
    );

    let new = submit(
        &mut browser,
        "/signup",
        &[("email", "grace@example.com"), ("password", PASSWORD)],
    )
    .await;
    let known = submit(
        &mut browser,
        "/signup",
        &[
            ("email", "ada@example.com"),
            ("password", "another password"),
        ],
    )
    .await;
    assert_eq!((new.status, known.status), (200, 200));
    assert_eq!(
        new.body, known.body,
        "the answer does not tell a known address from a new one"
    );
    assert_eq!(new.headers.get("x-frame-options").unwrap(), "DENY");

    // The known address gets a notice, not a link; the new one a verification link.
    let deadline = Instant::now() + Duration::from_secs(20);
    while messages_to(&smtp, "ada@example.com").is_empty() {
        assert!(
            Instant::now() < deadline,
            "no notice mailed to the known address"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let notice = decoded(&messages_to(&smtp, "ada@example.com")[0]);
    assert!(
        notice.contains("already has an account") && !notice.contains("/signup/verify/"),
        "{notice}"
    );
    let link = link_for(&smtp, "grace@example.com", "/signup/verify/", 0);

    let mut visitor = Browser::new(&server.base);
    assert_eq!(
        visitor
            .login("grace@example.com", PASSWORD, "/account")
            .await
            .status,
        400,
        "no account before the link is confirmed"
    );
    let opened = visitor.get(&link).await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    assert_eq!(
        visitor
            .login("grace@example.com", PASSWORD, "/account")
            .await
            .status,
        400,
        "opening the link alone creates nothing"
    );
    let confirmed = submit(&mut visitor, &link, &[]).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    assert!(confirmed.body.contains("grace@example.com"));
    assert_eq!(
        submit(&mut visitor, &link, &[]).await.status,
        400,
        "the link works once"
    );
    let mut grace = signed_in_browser(&server, "grace@example.com", PASSWORD).await;
    assert!(
        grace
            .get("/account")
            .await
            .body
            .contains("grace@example.com")
    );
    let listed = cli_json(data.path(), &["customers", "list"], "");
    let plans: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["email"] == "grace@example.com")
        .map(|c| c["plan"].as_str().unwrap())
        .collect();
    assert_eq!(plans, ["free"], "the configured (default: cheapest) plan");

    // Bad input is refused with the form again; nothing is mailed for it.
    let before = smtp.messages().len();
    let short = submit(
        &mut browser,
        "/signup",
        &[("email", "eve@example.com"), ("password", "short")],
    )
    .await;
    assert_eq!(short.status, 400);
    assert!(
        short.body.contains("at least 8 characters"),
        "{}",
        short.body
    );
    let forged = browser
        .post_form(
            "/signup",
            &[
                ("email", "eve@example.com"),
                ("password", PASSWORD),
                ("csrf", "forged"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(smtp.messages().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_link_is_single_use_and_ends_old_sessions_and_grants() {
    let smtp = SmtpSink::start(0);
    let data = TempDir::new("signup-reset");
    create_customer_with_password(data.path(), "ada@example.com", PASSWORD);
    let server = start(&data, &open_env(&smtp));
    let mut stolen = signed_in_browser(&server, "ada@example.com", PASSWORD).await;
    let (client_id, refresh_token) = connect_mcp_client(&server, "ada@example.com", PASSWORD).await;

    let mut browser = Browser::new(&server.base);
    let known = submit(&mut browser, "/reset", &[("email", "ada@example.com")]).await;
    let unknown = submit(&mut browser, "/reset", &[("email", "nobody@example.com")]).await;
    assert_eq!((known.status, unknown.status), (200, 200));
    assert_eq!(
        known.body, unknown.body,
        "the answer does not tell a known address from an unknown one"
    );
    let link = link_for(&smtp, "ada@example.com", "/reset/", 0);
    assert!(messages_to(&smtp, "nobody@example.com").is_empty());

    let short = submit(&mut browser, &link, &[("password", "short")]).await;
    assert_eq!(short.status, 400, "{}", short.body);
    assert!(
        signed_in(&mut stolen).await,
        "a refused password uses nothing up"
    );
    let done = submit(&mut browser, &link, &[("password", "difference engine")]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(
        submit(&mut browser, &link, &[("password", "another engine")])
            .await
            .status,
        400,
        "the link works once"
    );

    assert!(
        !signed_in(&mut stolen).await,
        "the old session cookie no longer works"
    );
    assert_eq!(
        refresh(&server, &client_id, &refresh_token).await.0,
        400,
        "the OAuth refresh token no longer works"
    );
    assert_eq!(
        Browser::new(&server.base)
            .login("ada@example.com", PASSWORD, "/account")
            .await
            .status,
        400
    );
    signed_in_browser(&server, "ada@example.com", "difference engine").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_expire() {
    let smtp = SmtpSink::start(0);
    let data = TempDir::new("signup-expiry");
    create_customer_with_password(data.path(), "ada@example.com", PASSWORD);
    let mut env = open_env(&smtp);
    env.push(("SQUAREMCP_SIGNUP_LINK_TTL", "2".to_owned()));
    let server = start(&data, &env);
    let mut browser = Browser::new(&server.base);
    assert_eq!(
        submit(&mut browser, "/reset", &[("email", "ada@example.com")])
            .await
            .status,
        200
    );
    assert_eq!(
        submit(
            &mut browser,
            "/signup",
            &[("email", "grace@example.com"), ("password", PASSWORD)]
        )
        .await
        .status,
        200
    );
    let reset = link_for(&smtp, "ada@example.com", "/reset/", 0);
    let verify = link_for(&smtp, "grace@example.com", "/signup/verify/", 0);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        submit(&mut browser, &reset, &[("password", "difference engine")])
            .await
            .status,
        400
    );
    assert_eq!(submit(&mut browser, &verify, &[]).await.status, 400);
    signed_in_browser(&server, "ada@example.com", PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_keeps_only_the_current_browser_signed_in() {
    let data = TempDir::new("password-change");
    create_customer_with_password(data.path(), "ada@example.com", PASSWORD);
    let server = start(&data, &[]);
    let mut other = signed_in_browser(&server, "ada@example.com", PASSWORD).await;
    let (client_id, refresh_token) = connect_mcp_client(&server, "ada@example.com", PASSWORD).await;
    let mut this = signed_in_browser(&server, "ada@example.com", PASSWORD).await;
    let old_cookie = this.cookie("session").unwrap().to_owned();

    let page = this.get("/account").await;
    let csrf = hidden_field(&page.body, "csrf").unwrap();
    let refused = this
        .post_form(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current", "wrong"),
                ("new", "difference engine"),
            ],
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        signed_in(&mut other).await,
        "a refused change revokes nothing"
    );
    let forged = this
        .post_form(
            "/account/password",
            &[
                ("csrf", "forged"),
                ("current", PASSWORD),
                ("new", "difference engine"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);

    let changed = this
        .post_form(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current", PASSWORD),
                ("new", "difference engine"),
            ],
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert_eq!(
        changed.location.as_deref(),
        Some("/account?done=password-changed")
    );
    assert_ne!(
        this.cookie("session"),
        Some(old_cookie.as_str()),
        "this browser got a new cookie"
    );
    let after = this.get("/account?done=password-changed").await;
    assert_eq!(after.status, 200);
    assert!(
        after.body.contains("Your password was changed"),
        "{}",
        after.body
    );
    assert!(
        !signed_in(&mut other).await,
        "the other browser is signed out"
    );
    assert_eq!(
        refresh(&server, &client_id, &refresh_token).await.0,
        400,
        "the MCP client's grant is revoked"
    );
    signed_in_browser(&server, "ada@example.com", "difference engine").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_sessions_disable_and_enable_from_the_cli() {
    let data = TempDir::new("revoke-sessions");
    let ada = create_customer_with_password(data.path(), "ada@example.com", PASSWORD);
    let key = cli_json(
        data.path(),
        &["api-keys", "create", "--customer", &ada, "--name", "laptop"],
        "",
    )["key"]
        .as_str()
        .unwrap()
        .to_owned();
    // The CLI is another process: the server learns of a revoked key when its key cache's
    // entry ends (`SQUAREMCP_API_KEY_CACHE_SECONDS`, shortened here).
    let server = start(&data, &[("SQUAREMCP_API_KEY_CACHE_SECONDS", "1".to_owned())]);
    let mut browser = signed_in_browser(&server, "ada@example.com", PASSWORD).await;
    let (client_id, refresh_token) = connect_mcp_client(&server, "ada@example.com", PASSWORD).await;
    let (status, refresh_token) = refresh(&server, &client_id, &refresh_token).await;
    assert_eq!(status, 200, "the grant works before");

    let revoked: Value = cli_json(
        data.path(),
        &["customers", "revoke-sessions", "--customer", &ada],
        "",
    );
    assert_eq!(revoked["generation"], 1, "{revoked}");
    assert!(!signed_in(&mut browser).await, "the session ends");
    assert_eq!(
        refresh(&server, &client_id, &refresh_token.unwrap())
            .await
            .0,
        400,
        "the refresh token ends"
    );
    assert_eq!(
        mcp_status(&server, &key).await,
        200,
        "API keys are not sessions: they keep working"
    );
    let mut again = signed_in_browser(&server, "ada@example.com", PASSWORD).await;

    let disabled = cli_json(
        data.path(),
        &["customers", "disable", "--customer", &ada],
        "",
    );
    assert_eq!(
        (
            disabled["disabled"].clone(),
            disabled["api_keys_revoked"].clone()
        ),
        (json!(true), json!(1)),
        "{disabled}"
    );
    assert!(!signed_in(&mut again).await);
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(
        mcp_status(&server, &key).await,
        401,
        "the API key is revoked (after the server's key cache lifetime)"
    );
    let refused = Browser::new(&server.base)
        .login("ada@example.com", PASSWORD, "/account")
        .await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("disabled"), "{}", refused.body);
    let wrong = Browser::new(&server.base)
        .login("ada@example.com", "wrong password", "/account")
        .await;
    assert_eq!(
        wrong.status, 400,
        "a wrong password does not learn that the account is disabled"
    );

    cli_json(
        data.path(),
        &["customers", "enable", "--customer", &ada],
        "",
    );
    signed_in_browser(&server, "ada@example.com", PASSWORD).await;
    assert_eq!(
        mcp_status(&server, &key).await,
        401,
        "enabling brings no revoked key back"
    );

    let unknown = cli(
        data.path(),
        &[
            "customers",
            "disable",
            "--customer",
            "cus_000000000000000000000000",
        ],
        "",
    );
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("cus_000000000000000000000000"),
        "{unknown:?}"
    );
}
