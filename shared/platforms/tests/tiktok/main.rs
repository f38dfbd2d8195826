//! The TikTok tools against the TikTok mock: each tool's exact request, the envelope read
//! (`error.code == "ok"`), the privacy check before any upload, the chunked upload streamed with
//! `Content-Range`, bounded status polling, the error mapping, and the OAuth app (client_key,
//! comma-separated scopes, rotating refresh tokens) through the kit's OAuth client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use squaremcp_core::connections::TokenRefresher;
use squaremcp_core::tool::{FailureKind, PlatformModule, Tool, ToolFailure, ToolOutput};
use squaremcp_core::{Platform, Secret, schema};
use squaremcp_platform_mocks::tiktok::{
    DISPLAY_NAME, MISSING_PUBLISH_ID, OPEN_ID, Tiktok, VERIFIED_PREFIX,
};
use squaremcp_platform_mocks::{Fault, Mock, Reply};
use squaremcp_platforms::kit::oauth::{OAuthClients, OAuthSettings};
use squaremcp_platforms::kit::{MediaSettings, PublishWait};
use squaremcp_platforms::{PlatformConfig, http_client, modules, tiktok};

const TOKEN: &str = "act.1a2b3c4d5e6f7g8h9i0jTESTtoken0123456789abcdef";

fn wait(budget_ms: u64) -> PublishWait {
    PublishWait {
        budget: Duration::from_millis(budget_ms),
        first_interval: Duration::from_millis(5),
        max_interval: Duration::from_millis(20),
    }
}

fn module_with(base_url: &str, publish_wait: PublishWait) -> Box<dyn PlatformModule> {
    let config = PlatformConfig::new(http_client())
        .with_base_url(Platform::Tiktok, base_url)
        .expect("a mock origin")
        .with_media(MediaSettings {
            max_bytes: 64 * 1024 * 1024,
            max_inline_bytes: 32 * 1024 * 1024,
        })
        .with_publish_wait(publish_wait);
    modules(&config)
        .into_iter()
        .find(|m| m.platform() == Platform::Tiktok)
        .expect("the TikTok module")
}

fn tool(mock: &Mock<Tiktok>, name: &str, publish_wait: PublishWait) -> Arc<dyn Tool> {
    module_with(mock.base_url(), publish_wait)
        .tools()
        .into_iter()
        .find(|t| t.definition().name == name)
        .expect(name)
}

async fn call_with(
    mock: &Mock<Tiktok>,
    name: &str,
    arguments: Value,
    publish_wait: PublishWait,
) -> Result<ToolOutput, ToolFailure> {
    let tool = tool(mock, name, publish_wait);
    schema::validate(&tool.definition().input_schema, &arguments)
        .expect("the arguments pass the input schema");
    let Value::Object(arguments) = arguments else {
        panic!("an object")
    };
    let result = tool
        .call(&Secret::new(json!({"access_token": TOKEN})), arguments)
        .await;
    if let Some(output_schema) = &tool.definition().output_schema
        && let Ok(output) = &result
    {
        schema::validate(output_schema, &output.structured).expect("the output matches its schema");
    }
    if let Err(failure) = &result {
        assert!(
            !failure.message.contains(TOKEN),
            "the token reached a message"
        );
    }
    result
}

async fn call(
    mock: &Mock<Tiktok>,
    name: &str,
    arguments: Value,
) -> Result<ToolOutput, ToolFailure> {
    call_with(mock, name, arguments, wait(5_000)).await
}

async fn start() -> Mock<Tiktok> {
    Mock::start(Tiktok::accepting(&[TOKEN])).await
}

fn video(size: usize) -> String {
    let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Every API call carried the bearer token in its header and never in its URL; upload PUTs carry none.
fn check_authorization(mock: &Mock<Tiktok>) {
    for request in mock.requests() {
        assert!(
            !request.query.clone().unwrap_or_default().contains(TOKEN)
                && !request.path.contains(TOKEN)
        );
        if request.path == "/video/" {
            assert_eq!(
                request.header("authorization"),
                None,
                "the signed upload URL gets no token"
            );
        } else {
            assert_eq!(
                request.header("authorization"),
                Some(format!("Bearer {TOKEN}").as_str()),
                "{}",
                request.path
            );
        }
    }
}

#[tokio::test]
async fn get_profile_asks_for_the_basic_fields_and_returns_the_user() {
    let mock = start().await;
    let output = call(&mock, "tiktok_get_profile", json!({}))
        .await
        .expect("the profile");
    assert_eq!(output.structured["user"]["open_id"], OPEN_ID);
    assert_eq!(output.structured["user"]["display_name"], DISPLAY_NAME);
    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("GET", "/v2/user/info/")
    );
    assert_eq!(
        requests[0].query_pairs(),
        vec![(
            "fields".to_owned(),
            "open_id,union_id,avatar_url,display_name".to_owned()
        )]
    );
    check_authorization(&mock);
}

#[tokio::test]
async fn get_creator_info_posts_an_empty_json_body() {
    let mock = start().await;
    mock.platform().set_privacy_options(&["SELF_ONLY"]);
    let output = call(&mock, "tiktok_get_creator_info", json!({}))
        .await
        .expect("creator info");
    assert_eq!(
        output.structured["privacy_level_options"],
        json!(["SELF_ONLY"])
    );
    let request = &mock.requests()[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/v2/post/publish/creator_info/query/")
    );
    assert!(
        request
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(request.json(), json!({}));
}

#[tokio::test]
async fn a_direct_post_checks_privacy_uploads_one_chunk_and_waits_for_the_publish() {
    let mock = start().await;
    let output = call(
        &mock,
        "tiktok_create_video",
        json!({"privacy_level": "SELF_ONLY", "title": "Engines #maths", "disable_comment": true, "media_data": video(1000), "media_type": "video/mp4"}),
    )
    .await
    .expect("posted");
    assert_eq!(output.structured["done"], true);
    assert_eq!(output.structured["status"], "PUBLISH_COMPLETE");
    let publish_id = output.structured["publish_id"].as_str().unwrap().to_owned();

    let requests = mock.requests();
    let paths: Vec<(&str, &str)> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        paths,
        [
            ("POST", "/v2/post/publish/creator_info/query/"),
            ("POST", "/v2/post/publish/video/init/"),
            ("PUT", "/video/"),
            ("POST", "/v2/post/publish/status/fetch/"),
            ("POST", "/v2/post/publish/status/fetch/"),
        ]
    );
    assert_eq!(
        requests[1].json(),
        json!({"post_info": {"privacy_level": "SELF_ONLY", "title": "Engines #maths", "disable_comment": true},
               "source_info": {"source": "FILE_UPLOAD", "video_size": 1000, "chunk_size": 1000, "total_chunk_count": 1}})
    );
    assert_eq!(
        requests[2].header("content-range"),
        Some("bytes 0-999/1000")
    );
    assert_eq!(requests[2].header("content-type"), Some("video/mp4"));
    assert_eq!(requests[2].body.len(), 1000);
    assert_eq!(requests[3].json(), json!({"publish_id": publish_id}));
    check_authorization(&mock);
}

#[tokio::test]
async fn a_large_file_goes_in_chunks_by_tiktok_rules_with_content_range() {
    let mock = start().await;
    let size = 25_000_000;
    let output = call(
        &mock,
        "tiktok_create_video",
        json!({"mode": "inbox", "media_data": video(size), "media_type": "video/mp4"}),
    )
    .await
    .expect("uploaded");
    assert_eq!(output.structured["status"], "SEND_TO_USER_INBOX");
    let requests = mock.requests();
    // No creator info for an inbox upload, and no post_info.
    assert_eq!(requests[0].path, "/v2/post/publish/inbox/video/init/");
    assert_eq!(
        requests[0].json(),
        json!({"source_info": {"source": "FILE_UPLOAD", "video_size": size, "chunk_size": 10_000_000, "total_chunk_count": 2}})
    );
    let puts: Vec<_> = requests.iter().filter(|r| r.method == "PUT").collect();
    assert_eq!(puts.len(), 2);
    assert_eq!(
        puts[0].header("content-range"),
        Some("bytes 0-9999999/25000000")
    );
    assert_eq!(
        puts[1].header("content-range"),
        Some("bytes 10000000-24999999/25000000")
    );
    assert_eq!(
        (puts[0].body.len(), puts[1].body.len()),
        (10_000_000, 15_000_000)
    );
    let publish = mock
        .platform()
        .publishes()
        .remove(output.structured["publish_id"].as_str().unwrap())
        .expect("the publish");
    assert_eq!(
        publish.received, size as u64,
        "the mock checked and counted every byte"
    );
    check_authorization(&mock);
}

#[tokio::test]
async fn a_privacy_level_the_creator_cannot_use_is_refused_with_the_options_before_any_upload() {
    let mock = start().await;
    mock.platform().set_privacy_options(&["SELF_ONLY"]);
    let failure = call(&mock, "tiktok_create_video", json!({"privacy_level": "PUBLIC_TO_EVERYONE", "media_data": video(100), "media_type": "video/mp4"}))
        .await
        .expect_err("refused");
    assert_eq!(failure.kind, FailureKind::InvalidInput);
    assert!(
        failure.message.contains("SELF_ONLY") && failure.message.contains("PUBLIC_TO_EVERYONE"),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("not audited"),
        "{}",
        failure.message
    );
    assert_eq!(mock.request_count(), 1, "only creator info was asked");
}

#[tokio::test]
async fn a_direct_post_needs_a_privacy_level_and_an_inbox_upload_takes_no_post_fields() {
    let mock = start().await;
    let failure = call(
        &mock,
        "tiktok_create_video",
        json!({"media_data": video(10), "media_type": "video/mp4"}),
    )
    .await
    .expect_err("refused");
    assert_eq!(failure.kind, FailureKind::InvalidInput);
    assert!(
        failure.message.contains("privacy_level"),
        "{}",
        failure.message
    );
    let failure = call(
        &mock,
        "tiktok_create_video",
        json!({"mode": "inbox", "title": "x", "media_data": video(10), "media_type": "video/mp4"}),
    )
    .await
    .expect_err("refused");
    assert!(failure.message.contains("title"), "{}", failure.message);
    let failure = call(
        &mock,
        "tiktok_create_video",
        json!({"privacy_level": "SELF_ONLY"}),
    )
    .await
    .expect_err("no video");
    assert_eq!(failure.kind, FailureKind::InvalidInput);
    let failure = call(
        &mock,
        "tiktok_create_video",
        json!({"privacy_level": "SELF_ONLY", "media_data": video(10), "media_type": "image/png"}),
    )
    .await
    .expect_err("not a video");
    assert_eq!(failure.kind, FailureKind::InvalidInput);
    assert!(
        mock.requests().iter().all(|r| !r.path.contains("init")),
        "nothing was started"
    );
}

#[tokio::test]
async fn pull_from_url_sends_the_url_and_an_unverified_domain_is_explained() {
    let mock = start().await;
    let url = format!("{VERIFIED_PREFIX}clips/engine.mp4");
    let output = call(
        &mock,
        "tiktok_create_video",
        json!({"privacy_level": "SELF_ONLY", "video_url": url}),
    )
    .await
    .expect("pulled");
    assert_eq!(output.structured["status"], "PUBLISH_COMPLETE");
    let init = mock
        .requests()
        .into_iter()
        .find(|r| r.path == "/v2/post/publish/video/init/")
        .unwrap();
    assert_eq!(
        init.json()["source_info"],
        json!({"source": "PULL_FROM_URL", "video_url": url})
    );

    let failure = call(
        &mock,
        "tiktok_create_video",
        json!({"privacy_level": "SELF_ONLY", "video_url": "https://elsewhere.example/v.mp4"}),
    )
    .await
    .expect_err("unverified");
    assert_eq!(failure.kind, FailureKind::InvalidInput);
    assert!(
        failure.message.contains("url_ownership_unverified")
            && failure.message.contains("media_url"),
        "{}",
        failure.message
    );
}

#[tokio::test]
async fn when_the_budget_runs_out_the_answer_is_the_publish_id_and_state() {
    let mock = start().await;
    mock.platform().set_processing_polls(1_000);
    let started = Instant::now();
    let output = call_with(
        &mock,
        "tiktok_create_video",
        json!({"privacy_level": "SELF_ONLY", "media_data": video(100), "media_type": "video/mp4"}),
        wait(60),
    )
    .await
    .expect("an answer, not a hang");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(output.structured["done"], false);
    assert_eq!(output.structured["status"], "PROCESSING_UPLOAD");
    assert!(
        output.structured["note"]
            .as_str()
            .unwrap()
            .contains("tiktok_get_video_status")
    );
    let publish_id = output.structured["publish_id"].as_str().unwrap();
    let polls = mock
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/status/fetch/"))
        .count();
    assert!(polls >= 2, "it polled more than once: {polls}");

    // The status tool reads the same publish.
    let status = call(
        &mock,
        "tiktok_get_video_status",
        json!({"publish_id": publish_id}),
    )
    .await
    .expect("status");
    assert_eq!(status.structured["status"], "PROCESSING_UPLOAD");
}

#[tokio::test]
async fn a_failed_publish_reports_its_fail_reason() {
    let mock = start().await;
    mock.platform().fail_publishes_with("duration_check_failed");
    let failure = call(
        &mock,
        "tiktok_create_video",
        json!({"privacy_level": "SELF_ONLY", "media_data": video(100), "media_type": "video/mp4"}),
    )
    .await
    .expect_err("failed");
    assert_eq!(failure.kind, FailureKind::InvalidInput);
    assert!(
        failure.message.contains("duration_check_failed")
            && failure.message.contains("publish_id v_pub_file"),
        "{}",
        failure.message
    );
}

#[tokio::test]
async fn get_video_status_sends_the_publish_id() {
    let mock = start().await;
    let output = call(
        &mock,
        "tiktok_get_video_status",
        json!({"publish_id": "v_pub_file~v2-1.123"}),
    )
    .await
    .expect("status");
    assert_eq!(output.structured["status"], "PUBLISH_COMPLETE");
    let request = &mock.requests()[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/v2/post/publish/status/fetch/")
    );
    assert_eq!(request.json(), json!({"publish_id": "v_pub_file~v2-1.123"}));
    let failure = call(
        &mock,
        "tiktok_get_video_status",
        json!({"publish_id": MISSING_PUBLISH_ID}),
    )
    .await
    .expect_err("unknown");
    assert_eq!(failure.kind, FailureKind::InvalidInput);
}

#[tokio::test]
async fn refusals_map_to_kinds() {
    let mock = start().await;
    let envelope = |status: u16, code: &str| {
        Fault::Reply(Reply::json(
            status,
            json!({"data": {}, "error": {"code": code, "message": "m", "log_id": "L1"}}),
        ))
    };
    let post =
        json!({"privacy_level": "SELF_ONLY", "video_url": format!("{VERIFIED_PREFIX}v.mp4")});
    for (fault, kind, words) in [
        (
            Fault::Unauthorized,
            FailureKind::AuthExpired,
            "access_token_invalid",
        ),
        (Fault::Forbidden, FailureKind::PermissionMissing, "scope"),
        (
            envelope(403, "spam_risk_too_many_posts"),
            FailureKind::QuotaExhausted,
            "daily limit",
        ),
        (
            envelope(403, "unaudited_client_can_only_post_to_private_accounts"),
            FailureKind::Forbidden,
            "SELF_ONLY",
        ),
        (
            envelope(400, "invalid_params"),
            FailureKind::InvalidInput,
            "log_id L1",
        ),
    ] {
        mock.fail_always(fault.clone());
        let failure = call(&mock, "tiktok_create_video", post.clone())
            .await
            .expect_err("refused");
        mock.recover();
        assert_eq!(failure.kind, kind, "{fault:?}: {}", failure.message);
        assert!(
            failure.message.contains(words),
            "{fault:?}: {}",
            failure.message
        );
    }
    mock.fail_always(Fault::RateLimited { retry_after: 7.0 });
    let failure = call(&mock, "tiktok_get_profile", json!({}))
        .await
        .expect_err("limited");
    assert_eq!(
        (failure.kind, failure.retry_after),
        (FailureKind::RateLimited, Some(7))
    );
    mock.recover();
    // A 500 on a read is retried once; on the post's init, never.
    mock.clear_requests();
    mock.fail_always(Fault::ServerError);
    assert_eq!(
        call(&mock, "tiktok_get_profile", json!({}))
            .await
            .expect_err("down")
            .kind,
        FailureKind::UpstreamTransient
    );
    assert_eq!(mock.requests().len(), 2);
    mock.recover();
    mock.clear_requests();
    mock.fail_next(Fault::Slow(Duration::ZERO)); // creator info answers normally
    mock.fail_next(Fault::ServerError); // init fails
    mock.fail_next(Fault::ServerError);
    let failure = call(&mock, "tiktok_create_video", post)
        .await
        .expect_err("init failed");
    assert_eq!(failure.kind, FailureKind::UpstreamTransient);
    assert_eq!(
        mock.requests()
            .iter()
            .filter(|r| r.path.ends_with("/video/init/"))
            .count(),
        1,
        "a write is not retried"
    );
}

#[tokio::test]
async fn a_malformed_credential_sends_nothing() {
    let mock = start().await;
    let tool = tool(&mock, "tiktok_get_profile", wait(100));
    let failure = tool
        .call(
            &Secret::new(json!({"token": TOKEN})),
            serde_json::Map::new(),
        )
        .await
        .expect_err("malformed");
    assert!(!failure.message.contains(TOKEN));
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn the_oauth_app_uses_client_key_commas_no_pkce_and_rotating_refresh_tokens() {
    let mock = Mock::start(Tiktok::with_client("awkey123", "tiktok-secret")).await;
    let lookup = |name: &str| match name {
        "SQUAREMCP_TIKTOK_CLIENT_ID" => Some("awkey123".to_owned()),
        "SQUAREMCP_TIKTOK_CLIENT_SECRET" => Some("tiktok-secret".to_owned()),
        "SQUAREMCP_TIKTOK_TOKEN_BASE_URL" | "SQUAREMCP_TIKTOK_BASE_URL" => {
            Some(mock.base_url().to_owned())
        }
        _ => None,
    };
    let settings = OAuthSettings::from_lookup(&[&tiktok::OAUTH], lookup).expect("configured");
    let clients = OAuthClients::new(http_client(), &settings);

    let url = clients
        .authorize_url(
            Platform::Tiktok,
            "https://gw.example/connect/tiktok/callback",
            "st",
            Some("challenge"),
        )
        .expect("a URL");
    let parsed = reqwest::Url::parse(&url).unwrap();
    assert_eq!(
        (parsed.host_str(), parsed.path()),
        (Some("www.tiktok.com"), "/v2/auth/authorize/")
    );
    let query: std::collections::HashMap<String, String> =
        parsed.query_pairs().into_owned().collect();
    assert_eq!(
        query.get("client_key").map(String::as_str),
        Some("awkey123")
    );
    assert!(!query.contains_key("client_id"));
    assert_eq!(
        query.get("scope").map(String::as_str),
        Some("user.info.basic,video.publish,video.upload")
    );
    assert!(
        !query.contains_key("code_challenge") && !query.contains_key("code_challenge_method"),
        "Login Kit for Web takes no PKCE: {query:?}"
    );

    let code = mock.platform().issue_code();
    let (document, identity) = clients
        .exchange(
            Platform::Tiktok,
            &code,
            "https://gw.example/connect/tiktok/callback",
            None,
        )
        .await
        .expect("exchanged");
    assert_eq!(identity.id, OPEN_ID);
    assert_eq!(identity.name, DISPLAY_NAME);
    let stored = document.expose().clone();
    assert_eq!(
        stored["scopes"],
        json!(["user.info.basic", "video.publish", "video.upload"])
    );
    assert_eq!(stored["account"]["id"], OPEN_ID);
    assert!(stored["expires_at"].as_i64().is_some());
    // The credential TikTok's tools read is the stored document itself.
    (tiktok::ENTRY.check_credential)(&stored).expect("the stored document is a TikTok credential");

    let token_request = mock
        .requests()
        .into_iter()
        .find(|r| r.path == "/v2/oauth/token/")
        .expect("the token endpoint, slash kept");
    let form = String::from_utf8(token_request.body.to_vec()).unwrap();
    assert!(
        form.contains("client_key=awkey123")
            && form.contains("client_secret=tiktok-secret")
            && !form.contains("client_id="),
        "{form}"
    );
    assert!(!form.contains("code_verifier"), "{form}");
    let profile = mock
        .requests()
        .into_iter()
        .find(|r| r.path == "/v2/user/info/")
        .expect("the profile");
    assert_eq!(
        profile.query.as_deref(),
        Some("fields=open_id,union_id,avatar_url,display_name")
    );

    // Refresh tokens rotate: the new one is stored, the old one no longer works.
    let renewed = clients
        .refresh(Platform::Tiktok, &document)
        .await
        .expect("refreshed");
    assert_ne!(renewed.expose()["refresh_token"], stored["refresh_token"]);
    assert_eq!(renewed.expose()["account"]["id"], OPEN_ID);
    assert!(
        clients.refresh(Platform::Tiktok, &document).await.is_err(),
        "the old refresh token was single use"
    );
}
