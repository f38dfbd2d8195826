//! The Snapchat tools against the Snapchat mock: each tool's exact requests, the ad accounts
//! gathered across organizations, the error mapping, `create_snap` answering its restriction with
//! no upstream call unless access is declared, then posting a Story (media encrypted, in parts,
//! decrypted by the mock with the key and IV sent), and the OAuth app through the kit's client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::{Value, json};
use squaremcp_core::connections::TokenRefresher;
use squaremcp_core::tool::{FailureKind, PlatformModule, Tool, ToolFailure, ToolOutput};
use squaremcp_core::{Platform, Secret, schema};
use base64::Engine as _;
use squaremcp_platform_mocks::snapchat::{ORGANIZATIONS, PROFILE_ID, Snapchat, USER_ID};
use squaremcp_platform_mocks::{Fault, Mock, Reply};
use squaremcp_platforms::kit::{NetworkPolicy, PartnerAccess};
use squaremcp_platforms::kit::oauth::{OAuthClients, OAuthSettings};
use squaremcp_platforms::{PlatformConfig, http_client, modules, snapchat};

const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.snapTESTtoken0123456789abcdef";

fn module_with(base_url: &str, access: PartnerAccess) -> Box<dyn PlatformModule> {
    let config = PlatformConfig::new(http_client())
        .with_base_url(Platform::Snapchat, base_url)
        .expect("a mock origin")
        .with_partner_access(access);
    modules(&config)
        .into_iter()
        .find(|m| m.platform() == Platform::Snapchat)
        .expect("the Snapchat module")
}

fn tool(mock: &Mock<Snapchat>, name: &str, access: PartnerAccess) -> Arc<dyn Tool> {
    module_with(mock.base_url(), access)
        .tools()
        .into_iter()
        .find(|t| t.definition().name == name)
        .expect(name)
}

async fn call(
    mock: &Mock<Snapchat>,
    name: &str,
    arguments: Value,
) -> Result<ToolOutput, ToolFailure> {
    let tool = tool(mock, name, PartnerAccess::default());
    schema::validate(&tool.definition().input_schema, &arguments)
        .expect("the arguments pass the input schema");
    let Value::Object(arguments) = arguments else {
        panic!("an object")
    };
    let result = tool
        .call(&Secret::new(json!({"access_token": TOKEN})), arguments)
        .await;
    if let (Some(output_schema), Ok(output)) = (&tool.definition().output_schema, &result) {
        schema::validate(output_schema, &output.structured).expect("the output matches its schema");
    }
    if let Err(failure) = &result {
        assert!(!failure.message.contains(TOKEN));
    }
    result
}

async fn start() -> Mock<Snapchat> {
    Mock::start(Snapchat::accepting(&[TOKEN])).await
}

#[tokio::test]
async fn get_me_reads_the_user_with_the_bearer_token() {
    let mock = start().await;
    let output = call(&mock, "snapchat_get_me", json!({})).await.expect("me");
    assert_eq!(output.structured["me"]["id"], USER_ID);
    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        (
            requests[0].method.as_str(),
            requests[0].path.as_str(),
            requests[0].query.as_deref()
        ),
        ("GET", "/v1/me", None)
    );
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

#[tokio::test]
async fn get_ad_accounts_lists_every_organizations_accounts() {
    let mock = start().await;
    let output = call(&mock, "snapchat_get_ad_accounts", json!({}))
        .await
        .expect("ad accounts");
    let paths: Vec<String> = mock
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        paths,
        [
            "GET /v1/me/organizations".to_owned(),
            format!("GET /v1/organizations/{}/adaccounts", ORGANIZATIONS[0].0),
            format!("GET /v1/organizations/{}/adaccounts", ORGANIZATIONS[1].0),
        ]
    );
    let ids: Vec<&str> = output.structured["ad_accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = ORGANIZATIONS
        .iter()
        .flat_map(|(_, _, accounts)| accounts.iter().copied())
        .collect();
    assert_eq!(ids, expected);
    assert_eq!(
        output.structured["ad_accounts"][1]["organization_id"],
        ORGANIZATIONS[1].0
    );
    assert_eq!(
        output.structured["organizations"][0],
        json!({"id": ORGANIZATIONS[0].0, "name": ORGANIZATIONS[0].1})
    );
    assert_eq!(output.structured["incomplete"], false);
}

#[tokio::test]
async fn refusals_map_to_kinds_and_reads_are_retried_once() {
    let mock = start().await;
    for (fault, kind) in [
        (Fault::Unauthorized, FailureKind::AuthRevoked),
        (Fault::Forbidden, FailureKind::PermissionMissing),
        (
            Fault::RateLimited { retry_after: 4.0 },
            FailureKind::RateLimited,
        ),
    ] {
        mock.fail_always(fault.clone());
        let failure = call(&mock, "snapchat_get_ad_accounts", json!({}))
            .await
            .expect_err("refused");
        mock.recover();
        assert_eq!(failure.kind, kind, "{fault:?}: {}", failure.message);
    }
    mock.clear_requests();
    mock.fail_next(Fault::ServerError);
    call(&mock, "snapchat_get_me", json!({}))
        .await
        .expect("a 500 on a read is retried once");
    assert_eq!(mock.requests().len(), 2);
    // A failure on the second organization fails the call: no partial list passed off as whole.
    mock.clear_requests();
    mock.fail_next(Fault::Slow(std::time::Duration::ZERO));
    mock.fail_next(Fault::Forbidden);
    let failure = call(&mock, "snapchat_get_ad_accounts", json!({}))
        .await
        .expect_err("refused");
    assert_eq!(failure.kind, FailureKind::PermissionMissing);
    assert!(
        failure.message.contains("does not have access"),
        "{}",
        failure.message
    );
}

#[tokio::test]
async fn create_snap_answers_its_restriction_without_calling_snapchat_unless_access_is_declared() {
    let mock = start().await;
    let restricted = tool(&mock, "snapchat_create_snap", PartnerAccess::default());
    assert!(restricted.definition().annotations.open_world && !restricted.definition().annotations.read_only);
    assert!(restricted.definition().description.contains("Partner-only: Snapchat has no API to send a Snap to friends"));
    let failure = restricted
        .call(&Secret::new(json!({"access_token": TOKEN})), json!({"media_url": "https://media.example.com/s.mp4"}).as_object().unwrap().clone())
        .await
        .expect_err("not supported");
    assert_eq!(failure.kind, FailureKind::NotSupported);
    assert!(failure.message.contains("snapchat_create_snap") && failure.message.contains("SQUAREMCP_PARTNER_ACCESS"), "{}", failure.message);
    assert_eq!(mock.request_count(), 0, "no upstream call");

    let declared = tool(&mock, "snapchat_create_snap", PartnerAccess::parse("snapchat_create_snap"));
    assert!(!declared.definition().description.contains("Partner-only"), "{}", declared.definition().description);
}

/// A module with Public Profile access declared and loopback media allowed (the test's server).
fn snap_tool(mock: &Mock<Snapchat>) -> Arc<dyn Tool> {
    let config = PlatformConfig::new(http_client())
        .with_base_url(Platform::Snapchat, mock.base_url())
        .expect("a mock origin")
        .with_network(NetworkPolicy::new(true))
        .with_partner_access(PartnerAccess::parse("snapchat_create_snap"));
    let module = modules(&config).into_iter().find(|m| m.platform() == Platform::Snapchat).expect("the Snapchat module");
    module.tools().into_iter().find(|t| t.definition().name == "snapchat_create_snap").expect("create_snap")
}

async fn snap(mock: &Mock<Snapchat>, arguments: Value) -> Result<ToolOutput, ToolFailure> {
    let tool = snap_tool(mock);
    schema::validate(&tool.definition().input_schema, &arguments).expect("the arguments pass the input schema");
    let result = tool.call(&Secret::new(json!({"access_token": TOKEN})), arguments.as_object().unwrap().clone()).await;
    if let Ok(output) = &result {
        schema::validate(tool.definition().output_schema.as_ref().unwrap(), &output.structured).expect("the output matches its schema");
    }
    if let Err(failure) = &result {
        assert!(!failure.message.contains(TOKEN));
    }
    result
}

/// Serves `bytes` as `content_type` on loopback; the URL.
async fn serve(bytes: Vec<u8>, content_type: &'static str) -> String {
    let bytes = bytes::Bytes::from(bytes);
    let router = axum::Router::new().route(
        "/media",
        axum::routing::get(move || {
            let bytes = bytes.clone();
            async move { ([("content-type", content_type)], bytes) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/media", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

#[tokio::test]
async fn create_snap_posts_a_photo_story_encrypted_with_the_key_it_declares() {
    let mock = start().await;
    let photo: Vec<u8> = b"\xff\xd8\xff\xe0 a JPEG of 9:16".iter().copied().chain((0..5000u32).map(|i| (i % 253) as u8)).collect();
    let output = snap(&mock, json!({"media_data": base64::engine::general_purpose::STANDARD.encode(&photo), "media_type": "image/jpeg"}))
        .await
        .expect("posted");

    let stories = mock.platform().stories();
    assert_eq!(stories.len(), 1);
    assert_eq!(stories[0].media, photo, "what Snap decrypts with the sent key and IV is the photo");
    assert_eq!((stories[0].media_type.as_str(), stories[0].part_sizes.clone()), ("IMAGE", vec![(photo.len() / 16 + 1) * 16]));
    assert_eq!(output.structured["profile_id"], PROFILE_ID);
    assert_eq!(output.structured["media_id"], stories[0].media_id);
    assert_eq!(output.structured["parts"], 1);
    assert_eq!(output.structured["request_id"], "5f2b1c3d00ff0a1b2c3d4e5f60013");

    let requests = mock.requests();
    let upload = format!("/v1/public_profiles/{PROFILE_ID}/media/{}/multipart-upload", stories[0].media_id);
    let lines: Vec<String> = requests.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    assert_eq!(
        lines,
        [
            "GET /v1/public_profiles/my_profile".to_owned(),
            format!("POST /v1/public_profiles/{PROFILE_ID}/media"),
            format!("POST {upload}"),
            format!("POST {upload}"),
            format!("POST /v1/public_profiles/{PROFILE_ID}/stories"),
        ]
    );
    for request in &requests {
        assert_eq!(request.header("authorization"), Some(format!("Bearer {TOKEN}").as_str()), "{}", request.path);
    }
    let created = requests[1].json();
    assert_eq!(created["type"], "IMAGE");
    assert!(created["name"].as_str().is_some_and(|name| name.starts_with("squaremcp-story-")), "{created}");
    assert!(requests[2].header("content-type").unwrap().starts_with("multipart/form-data; boundary="));
    assert_eq!(requests[4].json(), json!({"media_id": stories[0].media_id}));
}

#[tokio::test]
async fn a_video_over_32_mb_goes_up_in_32_mb_parts_in_order() {
    let mock = start().await;
    let size = 32 * 1024 * 1024 + 1000;
    let video: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let url = serve(video.clone(), "video/mp4").await;
    let output = snap(&mock, json!({"media_url": url})).await.expect("posted");
    assert_eq!(output.structured["parts"], 2);
    let stories = mock.platform().stories();
    assert_eq!(stories[0].media_type, "VIDEO");
    assert_eq!(stories[0].part_sizes, vec![32 * 1024 * 1024, (size / 16 + 1) * 16 - 32 * 1024 * 1024]);
    assert!(stories[0].media == video, "the video decrypts whole");
}

#[tokio::test]
async fn create_snap_refuses_bad_media_before_calling_snapchat() {
    let mock = start().await;
    for (arguments, kind) in [
        (json!({}), FailureKind::InvalidInput),
        (json!({"media_data": "R0lGODlh", "media_type": "image/gif"}), FailureKind::InvalidInput),
        (json!({"media_data": "not base64!", "media_type": "image/png"}), FailureKind::InvalidInput),
        (json!({"media_url": "ftp://media.example.com/a.mp4"}), FailureKind::InvalidInput),
    ] {
        let failure = snap(&mock, arguments.clone()).await.expect_err("refused");
        assert_eq!(failure.kind, kind, "{arguments}: {}", failure.message);
    }
    assert_eq!(mock.request_count(), 0, "nothing sent to Snapchat");
}

/// The contract suite's checks for a partner-only tool with access declared: each fault maps to
/// its kind, and a credential Snap echoes back never reaches the result.
#[tokio::test]
async fn create_snap_maps_snaps_refusals_and_never_shows_the_token() {
    let mock = start().await;
    let arguments = json!({"media_data": "iVBORw0KGgo=", "media_type": "image/png"});
    for (fault, kind) in [
        (Fault::Unauthorized, FailureKind::AuthRevoked),
        (Fault::Forbidden, FailureKind::PermissionMissing),
        (Fault::RateLimited { retry_after: 3.0 }, FailureKind::RateLimited),
        (Fault::ServerError, FailureKind::UpstreamTransient),
    ] {
        mock.fail_always(fault.clone());
        let failure = snap(&mock, arguments.clone()).await.expect_err("refused");
        mock.recover();
        assert_eq!(failure.kind, kind, "{fault:?}: {}", failure.message);
        if kind == FailureKind::PermissionMissing {
            assert!(failure.message.contains("allow-listed") && failure.message.contains("snapchat-profile-api"), "{}", failure.message);
        }
        if kind == FailureKind::RateLimited {
            assert_eq!(failure.retry_after, Some(3));
        }
    }
    // A refusal after the media was created (here: the story) fails the call; nothing is retried.
    mock.clear_requests();
    for _ in 0..4 {
        mock.fail_next(Fault::Slow(std::time::Duration::ZERO));
    }
    mock.fail_next(Fault::Reply(Reply::json(400, json!({"request_status": "ERROR", "error_code": "E1008", "display_message": format!("bad media {TOKEN}")}))));
    let failure = snap(&mock, arguments.clone()).await.expect_err("refused");
    assert_eq!(failure.kind, FailureKind::InvalidInput, "{}", failure.message);
    assert!(failure.message.contains("bad media"), "Snap's words are quoted: {}", failure.message);
    assert_eq!(mock.requests().len(), 5, "no retry of a write");
    assert!(mock.platform().stories().is_empty());
}

#[tokio::test]
async fn the_oauth_app_refreshes_with_the_client_in_the_form() {
    let mock = Mock::start(Snapchat::with_client(
        "snap-client-id",
        "snap-client-secret",
    ))
    .await;
    let lookup = |name: &str| match name {
        "SQUAREMCP_SNAPCHAT_CLIENT_ID" => Some("snap-client-id".to_owned()),
        "SQUAREMCP_SNAPCHAT_CLIENT_SECRET" => Some("snap-client-secret".to_owned()),
        "SQUAREMCP_SNAPCHAT_TOKEN_BASE_URL" | "SQUAREMCP_SNAPCHAT_BASE_URL" => {
            Some(mock.base_url().to_owned())
        }
        _ => None,
    };
    let clients = OAuthClients::new(
        http_client(),
        &OAuthSettings::from_lookup(&[&snapchat::OAUTH], lookup).expect("configured"),
    );
    let url = clients
        .authorize_url(
            Platform::Snapchat,
            "https://gw.example/cb",
            "st",
            Some("challenge"),
        )
        .expect("a URL");
    assert!(
        url.starts_with("https://accounts.snapchat.com/login/oauth2/authorize?"),
        "{url}"
    );
    assert!(
        url.contains("client_id=snap-client-id")
            && url.contains("scope=snapchat-marketing-api")
            && !url.contains("code_challenge"),
        "{url}"
    );

    // Connect: the code is exchanged without PKCE, and the account read from /v1/me.
    let code = mock.platform().issue_code();
    let (connected, identity) = clients
        .exchange(Platform::Snapchat, &code, "https://gw.example/cb", None)
        .await
        .expect("exchanged");
    assert_eq!(
        (identity.id.as_str(), identity.name.as_str()),
        (USER_ID, "Ada Lovelace")
    );
    assert_eq!(connected.expose()["account"]["id"], USER_ID);
    assert_eq!(
        connected.expose()["scopes"],
        json!(["snapchat-marketing-api"])
    );
    (snapchat::ENTRY.check_credential)(connected.expose())
        .expect("the stored document is a Snapchat credential");
    let exchange = mock
        .requests()
        .into_iter()
        .find(|r| r.path == "/login/oauth2/access_token")
        .expect("the token endpoint");
    let form = String::from_utf8(exchange.body.to_vec()).unwrap();
    assert!(
        form.contains("grant_type=authorization_code") && !form.contains("code_verifier"),
        "{form}"
    );
    mock.clear_requests();

    let refresh = mock.platform().issue_refresh_token();
    let document = Secret::new(
        json!({"access_token": "old", "refresh_token": refresh, "expires_at": 1, "account": {"id": USER_ID}}),
    );
    let renewed = clients
        .refresh(Platform::Snapchat, &document)
        .await
        .expect("refreshed");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let expires_at = renewed.expose()["expires_at"].as_i64().unwrap();
    assert!(
        (now + 3500..=now + 3700).contains(&expires_at),
        "an hour from now: {expires_at}"
    );
    assert_ne!(renewed.expose()["access_token"], "old");
    assert_eq!(
        renewed.expose()["scopes"],
        json!(["snapchat-marketing-api"])
    );
    let request = mock
        .requests()
        .into_iter()
        .find(|r| r.path == "/login/oauth2/access_token")
        .expect("the token endpoint");
    let form = String::from_utf8(request.body.to_vec()).unwrap();
    assert!(
        form.contains("grant_type=refresh_token")
            && form.contains("client_id=snap-client-id")
            && form.contains("client_secret=snap-client-secret"),
        "{form}"
    );
    assert_eq!(request.header("authorization"), None);
}

#[tokio::test]
async fn the_public_profile_login_asks_for_the_profile_scope_too() {
    let lookup = |login: Option<&'static str>| {
        move |name: &str| match name {
            "SQUAREMCP_SNAPCHAT_CLIENT_ID" => Some("snap-client-id".to_owned()),
            "SQUAREMCP_SNAPCHAT_CLIENT_SECRET" => Some("snap-client-secret".to_owned()),
            "SQUAREMCP_SNAPCHAT_LOGIN" => login.map(str::to_owned),
            _ => None,
        }
    };
    let scope = |login| {
        let clients = OAuthClients::new(http_client(), &OAuthSettings::from_lookup(&[&snapchat::OAUTH], lookup(login)).expect("configured"));
        let url = clients.authorize_url(Platform::Snapchat, "https://gw.example/cb", "st", None).expect("a URL");
        reqwest::Url::parse(&url).unwrap().query_pairs().find(|(k, _)| k == "scope").map(|(_, v)| v.into_owned())
    };
    assert_eq!(scope(None).as_deref(), Some("snapchat-marketing-api"));
    assert_eq!(scope(Some("marketing")).as_deref(), Some("snapchat-marketing-api"));
    assert_eq!(scope(Some("public_profile")).as_deref(), Some("snapchat-marketing-api snapchat-profile-api"));
    let wrong = OAuthSettings::from_lookup(&[&snapchat::OAUTH], lookup(Some("stories"))).err().unwrap_or_default();
    assert!(wrong.starts_with("SQUAREMCP_SNAPCHAT_LOGIN: `stories`"), "{wrong}");
}
