//! Issue 17, items 6 and 7, on the real `squaremcp serve`: rate limits that slow attackers down
//! without locking real users out. Sign-in waits grow per (email, client network); dynamic
//! client registration is limited per client network (IPv6 per /64) under a configurable
//! total; the client network is the forwarded one only behind a trusted proxy; names with
//! text-direction characters and short admin keys are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::{Value, json};
use squaremcp_tests::oauth::{Browser, Page};
use squaremcp_tests::{Server, TempDir, backend_env, binary, create_customer_with_password};

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery";

/// A browser whose every request says it was forwarded for `client` (believed only when the
/// server trusts loopback as its proxy).
fn browser_at(server: &Server, client: &str) -> Browser {
    let mut browser = Browser::new(&server.base);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", client.parse().unwrap());
    browser.http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap();
    browser
}

fn retry_after(page: &Page) -> u64 {
    page.headers
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guesser_waits_longer_each_time_and_the_customer_still_signs_in() {
    let data = TempDir::new("login-throttle");
    create_customer_with_password(data.path(), EMAIL, PASSWORD);
    let server = Server::start(data.path(), &[("SQUAREMCP_TRUSTED_PROXIES", "127.0.0.1")]);
    let mut attacker = browser_at(&server, "203.0.113.9");
    for i in 0..5 {
        let page = attacker.login(EMAIL, &format!("guess {i}"), "/login").await;
        assert_eq!(page.status, 400, "free attempt {i}: {}", page.body);
    }
    // The wait (2 s) counts from the last failure in whole seconds: 1 or 2 s are left now.
    let page = attacker.login(EMAIL, "guess 5", "/login").await;
    assert_eq!(page.status, 429, "{}", page.body);
    let wait = retry_after(&page);
    assert!((1..=2).contains(&wait), "{wait}");
    assert!(
        page.body.contains(&format!("Try again in {wait} second")),
        "shown on the form: {}",
        page.body
    );
    assert!(
        page.body.contains("name=\"csrf\""),
        "the form is shown again"
    );
    // The right password from the guesser's network waits too.
    assert_eq!(attacker.login(EMAIL, PASSWORD, "/login").await.status, 429);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(
        attacker.login(EMAIL, "guess 6", "/login").await.status,
        400,
        "the wait is over: one more guess"
    );
    let page = attacker.login(EMAIL, "guess 7", "/login").await;
    assert_eq!(page.status, 429, "{}", page.body);
    assert!(
        (3..=4).contains(&retry_after(&page)),
        "the next wait is twice as long: {}",
        retry_after(&page)
    );

    // The customer, from their own network, is not locked out, typo first or not.
    let mut customer = browser_at(&server, "198.51.100.44");
    assert_eq!(customer.login(EMAIL, "typo", "/login").await.status, 400);
    let page = customer.login(EMAIL, PASSWORD, "/login").await;
    assert_eq!(
        (page.status, page.location.as_deref()),
        (303, Some("/login")),
        "{}",
        page.body
    );
    // So is the customer on IPv6, though the guesser moves on to another address of its own /64.
    let mut from_v6 = browser_at(&server, "2001:db8:7:1::10");
    for i in 0..5 {
        assert_eq!(
            from_v6
                .login(EMAIL, &format!("v6 guess {i}"), "/login")
                .await
                .status,
            400
        );
    }
    assert_eq!(
        browser_at(&server, "2001:db8:7:1::beef")
            .login(EMAIL, "v6 guess", "/login")
            .await
            .status,
        429,
        "same /64"
    );
    assert_eq!(
        browser_at(&server, "2001:db8:7:2::1")
            .login(EMAIL, PASSWORD, "/login")
            .await
            .status,
        303,
        "another /64"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_trusted_proxy_forwarded_addresses_are_not_believed() {
    let data = TempDir::new("login-untrusted");
    create_customer_with_password(data.path(), EMAIL, PASSWORD);
    let server = Server::start(data.path(), &[]);
    // Five failures "from" five addresses are one network's (the TCP peer's) five.
    for i in 0..5 {
        let page = browser_at(&server, &format!("203.0.113.{i}"))
            .login(EMAIL, "guess", "/login")
            .await;
        assert_eq!(page.status, 400);
    }
    assert_eq!(
        browser_at(&server, "198.51.100.1")
            .login(EMAIL, PASSWORD, "/login")
            .await
            .status,
        429
    );
}

async fn register(server: &Server, client: &str, metadata: &Value) -> (u16, Value, Option<u64>) {
    let response = reqwest::Client::new()
        .post(format!("{}/oauth/register", server.base))
        .header("x-forwarded-for", client)
        .json(metadata)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        retry_after,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_are_limited_per_client_network_under_a_configurable_total() {
    let data = TempDir::new("register-limits");
    let server = Server::start(
        data.path(),
        &[
            ("SQUAREMCP_TRUSTED_PROXIES", "127.0.0.1"),
            ("SQUAREMCP_REGISTRATIONS_PER_IP_PER_HOUR", "3"),
            ("SQUAREMCP_REGISTRATIONS_PER_HOUR", "6"),
        ],
    );
    let metadata = json!({"client_name": "Limits", "redirect_uris": ["http://127.0.0.1:9/cb"], "token_endpoint_auth_method": "none"});
    for host in 1..=3 {
        assert_eq!(
            register(&server, &format!("2001:db8:1:2::{host}"), &metadata)
                .await
                .0,
            201
        );
    }
    let (status, body, wait) = register(&server, "2001:db8:1:2:ffff::1", &metadata).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("temporarily_unavailable")),
        "same /64: {body}"
    );
    assert!(wait.is_some_and(|w| (1..=3600).contains(&w)), "{wait:?}");
    for client in ["2001:db8:1:3::1", "198.51.100.1", "198.51.100.2"] {
        assert_eq!(
            register(&server, client, &metadata).await.0,
            201,
            "{client}"
        );
    }
    assert_eq!(
        register(&server, "198.51.100.3", &metadata).await.0,
        429,
        "the total of 6 is reached"
    );

    // A name that would read as another on the consent page.
    for name in ["Claude \u{202E}elgooG", "Cla\u{200B}ude"] {
        let bidi = json!({"client_name": name, "redirect_uris": ["http://127.0.0.1:9/cb"]});
        let (status, body, _) = register(&server, "192.0.2.200", &bidi).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_client_metadata")),
            "{name:?}: {body}"
        );
    }
}

#[test]
fn serve_refuses_a_short_admin_key_or_a_total_below_one_networks_share() {
    let data = TempDir::new("serve-config");
    for (variable, value, expected) in [
        ("SQUAREMCP_ADMIN_KEY", "short-key", "at least 16 characters"),
        (
            "SQUAREMCP_REGISTRATIONS_PER_HOUR",
            "10",
            "one caller could use it up",
        ),
    ] {
        let output = Command::new(binary("squaremcp"))
            .arg("serve")
            .env("SQUAREMCP_DATA_DIR", data.path())
            .envs(backend_env(data.path()))
            .env("SQUAREMCP_LISTEN", "127.0.0.1:0")
            .env(variable, value)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{variable}={value} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(variable) && stderr.contains(expected),
            "{variable}: {stderr}"
        );
        assert!(
            !stderr.contains(value) || variable != "SQUAREMCP_ADMIN_KEY",
            "the key itself is never printed: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
