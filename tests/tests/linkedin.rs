//! LinkedIn end to end: the real `squaremcp serve` and CLI against the shared LinkedIn mock. A
//! member's connection is stored with the CLI; the profile is read, a post is made, a video is
//! uploaded in parts to the URLs the mock returns and waited for; the partner-only tools answer
//! with the restriction, call nothing and are not metered; LinkedIn's refusals reach the client
//! as failure kinds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use serde_json::{Value, json};
use squaremcp_platform_mocks::linkedin::{Linkedin, PERSON_ID, error};
use squaremcp_platform_mocks::{Fault, Mock};
use squaremcp_tests::{Server, TempDir, cli_json, create_tenant};

const TOKEN: &str = "AQXe2e-linkedin-member-token_0123456789abcdefghijklmnopqrstuv";

fn calls_counted(data: &std::path::Path, customer: &str) -> u64 {
    squaremcp_tests::cli_json_settled(data, &["usage", "show", "--customer", customer], &[])["calls_counted"]
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_posts_uploads_a_video_and_meets_the_partner_only_apis() {
    let mock = Mock::start(Linkedin::accepting(&[TOKEN])).await;
    mock.platform().set_part_size(16);
    mock.platform().set_processing_polls(2);
    let data = TempDir::new("linkedin");
    let tenant = create_tenant(data.path(), "ada@example.com");
    let document = json!({"access_token": TOKEN, "expires_at": 4_102_444_800_i64, "account": {"id": PERSON_ID, "name": "Ada Lovelace"}});
    cli_json(
        data.path(),
        &[
            "credentials",
            "set",
            "--customer",
            &tenant.id,
            "--platform",
            "linkedin",
        ],
        &document.to_string(),
    );
    let server = Server::start(
        data.path(),
        &[
            ("SQUAREMCP_LINKEDIN_BASE_URL", mock.base_url()),
            ("SQUAREMCP_LINKEDIN_VERSION", "202511"),
            ("SQUAREMCP_PUBLISH_POLL_MILLISECONDS", "20"),
        ],
    );
    let key = tenant.key.as_str();

    let hints = server.tool_hints(key, "linkedin_").await;
    let names: Vec<&str> = hints.iter().map(|(n, ..)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "linkedin_get_profile",
            "linkedin_create_post",
            "linkedin_upload_video",
            "linkedin_search_connections",
            "linkedin_send_message"
        ]
    );
    assert!(
        hints[0].1 && !hints[1].1 && !hints[2].1,
        "get_profile reads; create_post and upload_video write: {hints:?}"
    );

    let profile = server
        .call_tool_ok(key, "linkedin_get_profile", json!({}))
        .await;
    assert_eq!(profile["sub"], PERSON_ID);
    assert_eq!(
        mock.requests()[0].header("linkedin-version"),
        Some("202511"),
        "the configured version"
    );

    let post = server
        .call_tool_ok(
            key,
            "linkedin_create_post",
            json!({"text": "Hello from the gateway #e2e"}),
        )
        .await;
    assert!(
        post["post_id"]
            .as_str()
            .unwrap()
            .starts_with("urn:li:share:"),
        "{post}"
    );
    assert_eq!(
        mock.platform().posts()[0]["commentary"],
        "Hello from the gateway \\#e2e"
    );

    let video: Vec<u8> = (0..40u8).collect();
    let data_b64 = base64::engine::general_purpose::STANDARD.encode(&video);
    let uploaded = server
        .call_tool_ok(
            key,
            "linkedin_upload_video",
            json!({"media_data": data_b64, "media_type": "video/mp4"}),
        )
        .await;
    assert_eq!(
        (uploaded["status"].as_str(), uploaded["parts"].as_u64()),
        (Some("AVAILABLE"), Some(3)),
        "{uploaded}"
    );
    assert_eq!(mock.platform().uploaded_bytes(), 40);
    let urn = uploaded["video"].as_str().unwrap();
    server
        .call_tool_ok(
            key,
            "linkedin_create_post",
            json!({"text": "Watch", "video_urn": urn}),
        )
        .await;
    assert_eq!(calls_counted(data.path(), &tenant.id), 4);

    // Partner-only: the restriction, no upstream call, nothing metered.
    let before = mock.request_count();
    for (name, arguments) in [
        ("linkedin_search_connections", json!({})),
        (
            "linkedin_send_message",
            json!({"recipient": "urn:li:person:aBcD123", "text": "Hi"}),
        ),
    ] {
        let refused = server.call_tool(key, name, arguments).await;
        assert_eq!(refused["isError"], true, "{refused}");
        assert_eq!(
            refused["_meta"]["squaremcp/error"]["kind"], "not_supported",
            "{refused}"
        );
        assert!(
            refused.to_string().contains("approved")
                && refused.to_string().contains("SQUAREMCP_PARTNER_ACCESS"),
            "{refused}"
        );
    }
    assert_eq!(mock.request_count(), before, "no upstream call");
    assert_eq!(calls_counted(data.path(), &tenant.id), 4, "not metered");

    // LinkedIn's daily limit: no Retry-After, so the wait is until midnight UTC.
    mock.fail_next(Fault::Reply(error(
        429,
        0,
        "",
        "Resource level throttle APPLICATION DAY limit for calls to this resource is reached.",
    )));
    let limited = server
        .call_tool(key, "linkedin_create_post", json!({"text": "again"}))
        .await;
    assert_eq!(
        limited["_meta"]["squaremcp/error"]["kind"], "rate_limited",
        "{limited}"
    );
    assert!(
        limited["_meta"]["squaremcp/error"]["retry_after"]
            .as_u64()
            .is_some_and(|s| s <= 86_400),
        "{limited}"
    );

    mock.platform().expire_tokens();
    let expired: Value = server
        .call_tool(key, "linkedin_get_profile", json!({}))
        .await;
    assert_eq!(expired["isError"], true, "{expired}");
    let kind = expired["_meta"]["squaremcp/error"]["kind"]
        .as_str()
        .unwrap();
    assert!(matches!(kind, "auth_expired" | "auth_revoked"), "{expired}");
    assert!(!expired.to_string().contains(TOKEN));
    assert_eq!(
        calls_counted(data.path(), &tenant.id),
        4,
        "failures are not counted"
    );
}

/// Connect LinkedIn on `/account` against the mock provider: LinkedIn's consent, the code
/// exchanged with the client id and secret in the form (no PKCE, no Basic), the identity read
/// from OpenID userinfo, and the stored connection posting as the member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_linkedin_stores_the_member_and_its_tools_work() {
    use squaremcp_tests::create_customer_with_password;
    use squaremcp_tests::oauth::{Browser, encode, hidden_field};

    let provider =
        Mock::start(Linkedin::accepting(&[]).with_client("li-client", "li-secret")).await;
    let data = TempDir::new("linkedin-connect");
    let customer =
        create_customer_with_password(data.path(), "ada@example.com", "correct horse battery");
    let base = provider.base_url();
    let server = Server::start(
        data.path(),
        &[
            ("SQUAREMCP_LINKEDIN_CLIENT_ID", "li-client"),
            ("SQUAREMCP_LINKEDIN_CLIENT_SECRET", "li-secret"),
            ("SQUAREMCP_LINKEDIN_AUTHORIZE_BASE_URL", base),
            ("SQUAREMCP_LINKEDIN_TOKEN_BASE_URL", base),
            ("SQUAREMCP_LINKEDIN_BASE_URL", base),
        ],
    );
    let mut browser = Browser::new(&server.base);
    browser
        .login("ada@example.com", "correct horse battery", "/account")
        .await;
    let account = browser.get("/account").await;
    let link = account
        .body
        .split("href=\"/connect/linkedin?")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a Connect LinkedIn link");
    let started = browser
        .get(&format!("/connect/linkedin?{}", link.replace("&amp;", "&")))
        .await;
    assert_eq!(started.status, 303, "{}", started.body);
    let authorize = started.location.unwrap();
    assert!(
        authorize.starts_with(&format!("{base}/oauth/v2/authorization?")),
        "{authorize}"
    );
    assert!(
        authorize.contains("scope=openid+profile+w_member_social")
            || authorize.contains("scope=openid%20profile%20w_member_social"),
        "{authorize}"
    );
    assert!(
        !authorize.contains("code_challenge"),
        "LinkedIn's web flow has no PKCE: {authorize}"
    );

    // The member allows.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http
        .get(&authorize)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form: Vec<String> = ["redirect_uri", "state", "scope"]
        .iter()
        .map(|n| {
            format!(
                "{}={}",
                n,
                encode(&hidden_field(&page, n).unwrap_or_default())
            )
        })
        .chain(["decision=allow".to_owned()])
        .collect();
    let answer = http
        .post(format!("{base}/oauth/v2/authorization"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.join("&"))
        .send()
        .await
        .unwrap();
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    let callback = location
        .split_once("/connect/")
        .map(|(_, rest)| format!("/connect/{rest}"))
        .unwrap();
    let done = browser.get(&callback).await;
    assert_eq!(
        (done.status, done.location.as_deref()),
        (303, Some("/account?done=connected")),
        "{}",
        done.body
    );

    // The token request: the client's id and secret in the form.
    let token = provider
        .requests()
        .into_iter()
        .find(|r| r.path == "/oauth/v2/accessToken")
        .unwrap();
    let body = String::from_utf8_lossy(&token.body).into_owned();
    assert!(
        body.contains("client_id=li-client")
            && body.contains("client_secret=li-secret")
            && body.contains("grant_type=authorization_code"),
        "{body}"
    );
    assert!(token.header("authorization").is_none());

    let listed = cli_json(
        data.path(),
        &["credentials", "list", "--customer", &customer],
        "",
    );
    assert_eq!(listed[0]["platform"], "linkedin", "{listed}");
    assert_eq!(
        listed[0]["account"], PERSON_ID,
        "named after the member id: {listed}"
    );

    // The connection works: a post as urn:li:person:{sub}, with no extra userinfo call.
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
    provider.clear_requests();
    let post = server
        .call_tool_ok(&key, "linkedin_create_post", json!({"text": "Connected"}))
        .await;
    assert!(
        post["post_id"]
            .as_str()
            .unwrap()
            .starts_with("urn:li:share:"),
        "{post}"
    );
    assert_eq!(post["author"], format!("urn:li:person:{PERSON_ID}"));
    assert_eq!(
        provider
            .requests()
            .iter()
            .map(|r| r.path.as_str())
            .collect::<Vec<_>>(),
        ["/rest/posts"]
    );
}
