//! Connect Gmail and Connect Microsoft 365 on the real `squaremcp serve`: the account page's
//! link goes to the provider's authorization endpoint (PKCE, the mail scopes with `openid
//! email`, Google's offline access, Microsoft's configured tenant); the callback's code exchange
//! is checked field by field by a mock token endpoint on loopback, which also plays the
//! introspection endpoint of a real Dovecot (oauth2 passdb), so that every IMAP sign-in is SASL
//! XOAUTH2 with a token the mock issued. SMTP too: the submission server (aiosmtpd, over TLS from
//! the first byte for Gmail, after STARTTLS for Microsoft 365, as their servers do) takes only
//! SASL XOAUTH2 and checks each token at the same introspection endpoint; every sent message is
//! relayed into Dovecot and must arrive. Then the access token runs out: the next call refreshes
//! it first (the exact refresh request) and signs in, to IMAP and to SMTP, with the new one;
//! Microsoft's rotated refresh token is stored and the next refresh presents it (a reused one is
//! refused). A token the SMTP server refuses the way Gmail does (a `334` error challenge, then
//! `535 5.7.8`) is refreshed and the send re-run once. Runs on SQLite, and on DynamoDB Local
//! with `SQUAREMCP_STORE=dynamodb` (scripts/test).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use squaremcp_tests::dovecot::{Dovecot, Seed};
use squaremcp_tests::oauth::{Browser, query_of};
use squaremcp_tests::{Server, SmtpSink, SmtpTls, TempDir, cli_json};

const USER: (&str, &str) = ("alice@example.test", "alice-pw-7f3a9c");
const PASSWORD: &str = "correct horse battery";
const CLIENT_ID: &str = "mail-client-id";
const CLIENT_SECRET: &str = "mail-client-secret";
const CODE: &str = "auth-code-5f2a";
/// The first access token lives this long: within the gateway's refresh margin (300 s) a few
/// seconds after the Connect, so that the call after that refreshes first.
const SHORT_LIFE: i64 = 306;

/// One provider as the test drives it.
struct Provider {
    /// The Connect name (`/connect/{name}`, `SQUAREMCP_{NAME}_…`).
    name: &'static str,
    /// The token endpoint's path at the mock.
    token_path: &'static str,
    /// The scopes of the authorization request.
    scopes: &'static str,
    /// Refresh tokens rotate (Microsoft) and a refresh repeats the scopes.
    rotates: bool,
    /// Environment beyond the app and its endpoints.
    extra_env: &'static [(&'static str, &'static str)],
    /// How the provider's SMTP server speaks TLS (Gmail's 465, Microsoft's 587).
    smtp_tls: SmtpTls,
}

const GMAIL: Provider = Provider {
    name: "gmail",
    token_path: "/token",
    scopes: "https://mail.google.com/ openid email",
    rotates: false,
    extra_env: &[],
    smtp_tls: SmtpTls::Implicit,
};

const MICROSOFT: Provider = Provider {
    name: "microsoft365",
    token_path: "/contoso.onmicrosoft.com/oauth2/v2.0/token",
    scopes: "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send offline_access openid email",
    rotates: true,
    extra_env: &[("SQUAREMCP_MICROSOFT365_TENANT", "contoso.onmicrosoft.com")],
    smtp_tls: SmtpTls::StartTls,
};

/// What the mock provider knows and saw.
#[derive(Default)]
struct Mock {
    /// Access tokens the introspection endpoint calls active.
    active: BTreeSet<String>,
    /// The refresh token the token endpoint accepts now.
    refresh_token: String,
    issued: u32,
    /// `(path, form)` of every token request.
    token_requests: Vec<(String, BTreeMap<String, String>)>,
    /// The token of every introspection (every XOAUTH2 sign-in Dovecot checked).
    introspected: Vec<String>,
    reused_refresh_tokens: u32,
}

fn form(body: &str) -> BTreeMap<String, String> {
    let url = reqwest::Url::parse(&format!("http://form.invalid/?{body}")).unwrap();
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn id_token(email: &str) -> String {
    let part =
        |value: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    format!(
        "{}.{}.{}",
        part(json!({"alg": "RS256"})),
        part(json!({"email": email, "email_verified": true, "sub": "1"})),
        part(json!("sig"))
    )
}

impl Mock {
    fn issue(&mut self, provider: &Provider, life: i64, with_refresh: bool) -> Value {
        self.issued += 1;
        let access = format!("{}-access-{}", provider.name, self.issued);
        self.active.insert(access.clone());
        let mut answer = json!({"access_token": access, "token_type": "Bearer", "expires_in": life, "scope": provider.scopes});
        if with_refresh {
            self.refresh_token = format!("{}-refresh-{}", provider.name, self.issued);
            answer["refresh_token"] = json!(self.refresh_token);
        }
        answer
    }

    /// The token endpoint: a code for the first tokens and an ID token; a refresh for a new
    /// access token (and a new refresh token where they rotate; the old one then fails).
    fn token(&mut self, provider: &Provider, path: &str, body: &str) -> (u16, Value) {
        let fields = form(body);
        self.token_requests.push((path.to_owned(), fields.clone()));
        if path != provider.token_path
            || fields.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
        {
            return (401, json!({"error": "invalid_client"}));
        }
        match fields.get("grant_type").map(String::as_str) {
            Some("authorization_code") if fields.get("code").map(String::as_str) == Some(CODE) => {
                let mut answer = self.issue(provider, SHORT_LIFE, true);
                answer["id_token"] = json!(id_token(USER.0));
                (200, answer)
            }
            Some("refresh_token") if fields.get("refresh_token") == Some(&self.refresh_token) => {
                (200, self.issue(provider, 3600, provider.rotates))
            }
            Some("refresh_token") => {
                self.reused_refresh_tokens += 1;
                (400, json!({"error": "invalid_grant"}))
            }
            _ => (400, json!({"error": "invalid_grant"})),
        }
    }

    fn introspect(&mut self, body: &str) -> (u16, Value) {
        let token = form(body).remove("token").unwrap_or_default();
        self.introspected.push(token.clone());
        if self.active.contains(&token) {
            (200, json!({"active": true, "email": USER.0}))
        } else {
            (200, json!({"active": false}))
        }
    }
}

/// Serves the mock on loopback: `/introspect` for Dovecot, anything else as the token endpoint.
async fn serve(provider: &'static Provider, mock: Arc<Mutex<Mock>>) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mock = mock.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0_u8; 8192];
                let (head, body) = loop {
                    let Ok(n) = socket.read(&mut buffer).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&request).into_owned();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if body.len() >= length {
                            break (head.to_owned(), body.to_owned());
                        }
                    }
                };
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let (status, answer) = {
                    let mut mock = mock.lock().unwrap();
                    if path == "/introspect" {
                        mock.introspect(&body)
                    } else {
                        mock.token(provider, &path, &body)
                    }
                };
                let answer = answer.to_string();
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    base
}

async fn connect_then_refresh(provider: &'static Provider) {
    let mock = Arc::new(Mutex::new(Mock::default()));
    let base = serve(provider, mock.clone()).await;
    let seeds = [Seed {
        user: USER.0,
        folder: "INBOX",
        message: "From: Carol <carol@example.test>\nTo: alice@example.test\nSubject: Hello\nMessage-ID: <hello@example.test>\n\nHi.\n"
            .to_owned(),
    }];
    let dovecot =
        Dovecot::start_with_oauth2(&[USER], &[], &seeds, Some(&format!("{base}/introspect")));
    // SMTP signs in with XOAUTH2 only, its tokens checked at the same introspection endpoint,
    // over TLS with Dovecot's certificate (trusted through SQUAREMCP_EXTRA_CA_FILE below).
    let (cert, tls_key) = dovecot.server_certificate();
    let smtp = SmtpSink::start_xoauth2(
        dovecot.lmtp_port,
        &format!("{base}/introspect"),
        provider.smtp_tls,
        (&cert, &tls_key),
    );
    let data = TempDir::new(&format!("email-connect-{}", provider.name));
    let customer = squaremcp_tests::create_customer_with_password(data.path(), USER.0, PASSWORD);
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

    let upper = provider.name.to_uppercase();
    let mut env: Vec<(String, String)> = vec![
        (format!("SQUAREMCP_{upper}_CLIENT_ID"), CLIENT_ID.to_owned()),
        (
            format!("SQUAREMCP_{upper}_CLIENT_SECRET"),
            CLIENT_SECRET.to_owned(),
        ),
        (
            format!("SQUAREMCP_{upper}_AUTHORIZE_BASE_URL"),
            base.clone(),
        ),
        (format!("SQUAREMCP_{upper}_TOKEN_BASE_URL"), base.clone()),
        // The mailbox is the test's Dovecot, not the provider's servers.
        (
            format!("SQUAREMCP_{upper}_IMAP_SERVER"),
            format!("starttls://127.0.0.1:{}", dovecot.imap_port),
        ),
        (
            format!("SQUAREMCP_{upper}_SMTP_SERVER"),
            match provider.smtp_tls {
                SmtpTls::Implicit => format!("tls://127.0.0.1:{}", smtp.port),
                SmtpTls::StartTls => format!("starttls://127.0.0.1:{}", smtp.port),
            },
        ),
        ("SQUAREMCP_ALLOW_PRIVATE_HOSTS".to_owned(), "1".to_owned()),
        (
            "SQUAREMCP_EXTRA_CA_FILE".to_owned(),
            dovecot.ca_file().display().to_string(),
        ),
    ];
    env.extend(
        provider
            .extra_env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    // The other provider's app too: a state started for one is refused by the other's callback.
    let other = if provider.rotates {
        "gmail"
    } else {
        "microsoft365"
    };
    for (suffix, value) in [("CLIENT_ID", "other-id"), ("CLIENT_SECRET", "other-secret")] {
        env.push((
            format!("SQUAREMCP_{}_{suffix}", other.to_uppercase()),
            value.to_owned(),
        ));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start(data.path(), &env);

    // The account page offers the provider; its link goes to the authorization endpoint.
    let mut browser = Browser::new(&server.base);
    browser.login(USER.0, PASSWORD, "/account").await;
    let account = browser.get("/account").await;
    let marker = format!("href=\"/connect/{}?", provider.name);
    let link = account
        .body
        .split(&marker)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a Connect link");
    assert!(
        account.body.contains(if provider.rotates {
            "Connect Microsoft 365"
        } else {
            "Connect Gmail"
        }),
        "{}",
        account.body
    );
    assert!(
        account.body.contains("data-form=\"email\""),
        "email keeps its form for password accounts"
    );
    let start = format!("/connect/{}?{}", provider.name, link.replace("&amp;", "&"));
    let started = browser.get(&start).await;
    assert_eq!(started.status, 303, "{}", started.body);
    let foreign_state = query_of(&started.location.unwrap())["state"].clone();
    let foreign = browser
        .get(&format!(
            "/connect/{other}/callback?state={foreign_state}&code={CODE}"
        ))
        .await;
    assert_eq!(foreign.status, 403, "{}", foreign.body);
    assert!(
        mock.lock().unwrap().token_requests.is_empty(),
        "no code exchanged"
    );
    let started = browser.get(&start).await;
    assert_eq!(started.status, 303, "{}", started.body);
    let authorize = started.location.unwrap();
    let expected_path = if provider.rotates {
        "/contoso.onmicrosoft.com/oauth2/v2.0/authorize"
    } else {
        "/o/oauth2/v2/auth"
    };
    assert!(
        authorize.starts_with(&format!("{base}{expected_path}?")),
        "{authorize}"
    );
    let query = query_of(&authorize);
    let redirect_uri = format!("{}/connect/{}/callback", server.base, provider.name);
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["redirect_uri"], redirect_uri);
    assert_eq!(query["scope"], provider.scopes);
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["code_challenge"].len(), 43);
    if provider.rotates {
        assert!(!query.contains_key("access_type"), "{query:?}");
    } else {
        assert_eq!(
            (query["access_type"].as_str(), query["prompt"].as_str()),
            ("offline", "consent")
        );
    }

    // The person consents; the provider sends the browser back with a code.
    let done = browser
        .get(&format!(
            "/connect/{}/callback?state={}&code={CODE}",
            provider.name, query["state"]
        ))
        .await;
    assert_eq!(
        (done.status, done.location.as_deref()),
        (303, Some("/account?done=connected")),
        "{}",
        done.body
    );
    let connected_at = std::time::Instant::now();
    {
        let mock = mock.lock().unwrap();
        assert_eq!(mock.token_requests.len(), 1);
        let (path, exchange) = &mock.token_requests[0];
        assert_eq!(path, provider.token_path);
        let verifier = exchange.get("code_verifier").cloned().unwrap_or_default();
        assert_eq!(verifier.len(), 43, "{exchange:?}");
        let expected: BTreeMap<String, String> = [
            ("grant_type", "authorization_code"),
            ("code", CODE),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", &verifier),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(exchange, &expected);
    }
    // Stored as an email account named after the address the ID token gave.
    let listed = cli_json(
        data.path(),
        &["credentials", "list", "--customer", &customer],
        "",
    );
    assert_eq!(
        (
            listed[0]["platform"].as_str(),
            listed[0]["account"].as_str()
        ),
        (Some("email"), Some(USER.0)),
        "{listed}"
    );
    assert_eq!(listed.as_array().unwrap().len(), 1);

    // A tool signs in with XOAUTH2 and the first token.
    let first = format!("{}-access-1", provider.name);
    let folders = server
        .call_tool_ok(
            &key,
            "email_list_folders",
            json!({"account": USER.0, "with_counts": true}),
        )
        .await;
    let inbox = folders["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "INBOX")
        .cloned()
        .unwrap_or_default();
    assert_eq!(inbox["messages"], 1, "{folders}");
    assert!(mock.lock().unwrap().introspected.contains(&first));
    assert!(
        connected_at.elapsed() < Duration::from_secs(5),
        "the first call came too late to test the refresh margin"
    );
    // Sending signs in to SMTP with XOAUTH2 and the same token.
    send_and_check(
        &server,
        &key,
        &smtp,
        &dovecot,
        "Sent with the first token",
        &first,
    )
    .await;
    assert!(
        connected_at.elapsed() < Duration::from_secs(5),
        "the first send came too late to test the refresh margin"
    );
    assert_eq!(
        mock.lock().unwrap().token_requests.len(),
        1,
        "no refresh while the token has time left"
    );

    // The access token runs into the refresh margin (and the provider stops accepting it): the
    // next call refreshes first, then signs in with the new token only.
    tokio::time::sleep(
        Duration::from_secs(SHORT_LIFE as u64 - 300 + 1).saturating_sub(connected_at.elapsed()),
    )
    .await;
    let seen_before = {
        let mut mock = mock.lock().unwrap();
        mock.active.remove(&first);
        mock.introspected.len()
    };
    let found = server
        .call_tool_ok(
            &key,
            "email_search_messages",
            json!({"account": USER.0, "subject": "Hello"}),
        )
        .await;
    assert_eq!(found["total"], 1, "{found}");
    let second = format!("{}-access-2", provider.name);
    {
        let mock = mock.lock().unwrap();
        assert_eq!(
            &mock.introspected[seen_before..],
            std::slice::from_ref(&second),
            "refreshed before signing in"
        );
        assert_eq!(mock.token_requests.len(), 2);
        let (path, refresh) = &mock.token_requests[1];
        assert_eq!(path, provider.token_path);
        let mut expected: BTreeMap<String, String> = [
            ("grant_type", "refresh_token"),
            ("refresh_token", &format!("{}-refresh-1", provider.name)),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        if provider.rotates {
            expected.insert("scope".to_owned(), provider.scopes.to_owned());
        }
        assert_eq!(refresh, &expected);
    }
    // SMTP gets the refreshed token too.
    send_and_check(
        &server,
        &key,
        &smtp,
        &dovecot,
        "Sent with the refreshed token",
        &second,
    )
    .await;
    assert_eq!(mock.lock().unwrap().token_requests.len(), 2);

    // The provider refuses the second token before its time: the call is refreshed and re-run
    // once, presenting the refresh token stored last: Microsoft's rotated one, Google's first.
    mock.lock().unwrap().active.remove(&second);
    let folders = server
        .call_tool_ok(&key, "email_list_folders", json!({"account": USER.0}))
        .await;
    assert!(
        folders["folders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "INBOX"),
        "{folders}"
    );
    {
        let mock = mock.lock().unwrap();
        assert_eq!(mock.token_requests.len(), 3);
        let presented = &mock.token_requests[2].1["refresh_token"];
        let stored = if provider.rotates {
            format!("{}-refresh-2", provider.name)
        } else {
            format!("{}-refresh-1", provider.name)
        };
        assert_eq!(presented, &stored);
        assert_eq!(mock.reused_refresh_tokens, 0);
        assert_eq!(
            mock.introspected.last(),
            Some(&format!("{}-access-3", provider.name))
        );
    }

    // The SMTP server refuses the third token the way Gmail does (a 334 error challenge, then
    // 535): the send is refreshed and re-run once, and the message goes out once.
    let third = format!("{}-access-3", provider.name);
    mock.lock().unwrap().active.remove(&third);
    let attempts_before = smtp.auth_attempts().len();
    let fourth = format!("{}-access-4", provider.name);
    send_and_check(
        &server,
        &key,
        &smtp,
        &dovecot,
        "Sent after a refused token",
        &fourth,
    )
    .await;
    let attempts = smtp.auth_attempts();
    assert_eq!(
        attempts[attempts_before..]
            .iter()
            .map(|a| (a["token"].as_str().unwrap(), a["accepted"] == true))
            .collect::<Vec<_>>(),
        [(third.as_str(), false), (fourth.as_str(), true)],
        "refused, refreshed, signed in again"
    );
    assert_eq!(mock.lock().unwrap().token_requests.len(), 4);

    // No token in what the customer sees.
    let page = browser.get("/account").await;
    assert!(
        !page.body.contains("-access-") && !page.body.contains("-refresh-"),
        "no token on the page"
    );
}

/// Sends a message to the account's own address with `email_send_email` and checks that the SMTP
/// server signed the sender in with XOAUTH2 and `token` (its last sign-in, accepted), took the
/// message once, and that the message arrived in the mailbox (relayed into Dovecot over LMTP).
async fn send_and_check(
    server: &Server,
    key: &str,
    smtp: &SmtpSink,
    dovecot: &Dovecot,
    subject: &str,
    token: &str,
) {
    let sent = server
        .call_tool_ok(
            key,
            "email_send_email",
            json!({"account": USER.0, "to": [USER.0], "subject": subject, "body": "Sent through XOAUTH2."}),
        )
        .await;
    assert_eq!(sent["accepted"], json!([USER.0]), "{sent}");
    assert_eq!(
        smtp.auth_attempts().last(),
        Some(&json!({"mechanism": "XOAUTH2", "user": USER.0, "token": token, "accepted": true})),
        "the SMTP server's last sign-in"
    );
    let taken = smtp
        .messages()
        .iter()
        .filter(|m| m.contains(&format!("Subject: {subject}")))
        .count();
    assert_eq!(taken, 1, "the SMTP server took the message once");
    assert_eq!(sent["sent_copy"]["folder"], "Sent", "{sent}");
    let search = format!("UID SEARCH SUBJECT \"{subject}\"");
    let inbox = dovecot.imap(USER.0, USER.1, &["SELECT INBOX", &search]);
    let found = inbox
        .lines()
        .find_map(|line| line.strip_prefix("* SEARCH"))
        .map(|uids| uids.split_whitespace().count());
    assert_eq!(found, Some(1), "arrived in the INBOX once: {inbox}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_gmail_signs_in_with_xoauth2_and_refreshes_before_expiry() {
    connect_then_refresh(&GMAIL).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_microsoft_365_stores_the_rotated_refresh_token() {
    connect_then_refresh(&MICROSOFT).await;
}
