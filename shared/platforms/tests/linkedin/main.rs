//! The LinkedIn tools against the shared LinkedIn mock: each tool's exact requests (headers,
//! bodies, the upload URLs LinkedIn returns, parts and ETags), the waits on video processing,
//! Rest.li refusals mapped to failure kinds, and the partner-only tools making no call.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use base64::Engine as _;
use serde_json::{Value, json};
use squaremcp_core::tool::{
    Annotations, FailureKind, PlatformModule, Tool, ToolFailure, ToolOutput,
};
use squaremcp_core::{Platform, Secret, schema};
use squaremcp_platform_mocks::linkedin::{Linkedin, PERSON_ID, error};
use squaremcp_platform_mocks::{Fault, Mock, RecordedRequest};
use squaremcp_platforms::kit::{NetworkPolicy, PartnerAccess, PublishWait};
use squaremcp_platforms::{PlatformConfig, http_client, modules};

const TOKEN: &str = "AQXlinkedin-test-token_0123456789abcdefghijklmnopqrstuvwxyz";

fn quick_wait(budget_ms: u64) -> PublishWait {
    PublishWait {
        budget: Duration::from_millis(budget_ms),
        first_interval: Duration::from_millis(5),
        max_interval: Duration::from_millis(10),
    }
}

fn config(base_url: &str) -> PlatformConfig {
    PlatformConfig::new(http_client())
        .with_base_url(Platform::Linkedin, base_url)
        .expect("a mock origin")
        .with_publish_wait(quick_wait(5_000))
        .with_network(NetworkPolicy::new(true))
}

fn tool_in(config: &PlatformConfig, name: &str) -> Arc<dyn Tool> {
    let module: Box<dyn PlatformModule> = modules(config)
        .into_iter()
        .find(|m| m.platform() == Platform::Linkedin)
        .expect("LinkedIn");
    module
        .tools()
        .into_iter()
        .find(|t| t.definition().name == name)
        .expect(name)
}

fn credential() -> Secret<Value> {
    Secret::new(
        json!({"access_token": TOKEN, "expires_at": 4_102_444_800_i64, "account": {"id": PERSON_ID, "name": "Ada"}}),
    )
}

async fn run(
    config: &PlatformConfig,
    name: &str,
    credential: &Secret<Value>,
    arguments: Value,
) -> Result<ToolOutput, ToolFailure> {
    let tool = tool_in(config, name);
    schema::validate(&tool.definition().input_schema, &arguments)
        .expect("the arguments pass the input schema");
    let Value::Object(arguments) = arguments else {
        panic!("an object")
    };
    let result = tool.call(credential, arguments).await;
    if let Ok(output) = &result {
        let output_schema = tool
            .definition()
            .output_schema
            .as_ref()
            .expect("an output schema");
        schema::validate(output_schema, &output.structured)
            .unwrap_or_else(|why| panic!("{name} output: {why}"));
    }
    result
}

async fn call(
    mock: &Mock<Linkedin>,
    name: &str,
    arguments: Value,
) -> Result<ToolOutput, ToolFailure> {
    run(&config(mock.base_url()), name, &credential(), arguments).await
}

/// What every API call carries: the bearer token, the version headers, and no token in the URL.
fn assert_api_headers(request: &RecordedRequest) {
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str()),
        "{} {}",
        request.method,
        request.path
    );
    assert_eq!(request.header("linkedin-version"), Some("202607"));
    assert_eq!(request.header("x-restli-protocol-version"), Some("2.0.0"));
    assert!(
        !request.path.contains(TOKEN) && !request.query.as_deref().unwrap_or("").contains(TOKEN)
    );
}

fn assert_failure(failure: &ToolFailure, kind: FailureKind, contains: &str) {
    assert_eq!(failure.kind, kind, "{failure:?}");
    assert!(
        failure.message.contains(contains),
        "expected {contains:?} in {:?}",
        failure.message
    );
    assert!(
        !failure.message.contains(TOKEN),
        "the token leaked: {}",
        failure.message
    );
}

fn inline(bytes: &[u8], media_type: &str) -> (String, String) {
    (
        base64::engine::general_purpose::STANDARD.encode(bytes),
        media_type.to_owned(),
    )
}

#[test]
fn five_tools_with_honest_annotations_and_the_partner_apis_say_so() {
    let config = PlatformConfig::new(http_client());
    let module = modules(&config)
        .into_iter()
        .find(|m| m.platform() == Platform::Linkedin)
        .expect("LinkedIn");
    let tools: Vec<(String, Annotations, String)> = module
        .tools()
        .iter()
        .map(|t| {
            (
                t.definition().name.clone(),
                t.definition().annotations,
                t.definition().description.clone(),
            )
        })
        .collect();
    let names: Vec<&str> = tools.iter().map(|(n, _, _)| n.as_str()).collect();
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
    assert_eq!(tools[0].1, Annotations::READ);
    assert_eq!(tools[1].1, Annotations::WRITE);
    assert_eq!(tools[2].1, Annotations::WRITE);
    assert!(
        tools[3].2.contains("Partner-only") && tools[3].2.contains("approved"),
        "{}",
        tools[3].2
    );
    assert!(
        tools[4].2.contains("Partner-only") && tools[4].2.contains("Messages API"),
        "{}",
        tools[4].2
    );
    assert_eq!(module.health_probe(), Some("get_profile"));
}

#[tokio::test]
async fn get_profile_reads_openid_userinfo_with_the_version_headers() {
    let mock = Mock::start(Linkedin::accepting(&[TOKEN])).await;
    let output = call(&mock, "linkedin_get_profile", json!({}))
        .await
        .expect("the profile");
    assert_eq!(output.structured["sub"], PERSON_ID);
    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        (requests[0].method.clone(), requests[0].path.as_str()),
        (Method::GET, "/v2/userinfo")
    );
    assert_api_headers(&requests[0]);
}

#[tokio::test]
async fn the_version_header_follows_configuration() {
    let mock = Mock::start(Linkedin::accepting(&[TOKEN])).await;
    let config = config(mock.base_url())
        .with_linkedin_version("202511")
        .expect("a version");
    run(&config, "linkedin_get_profile", &credential(), json!({}))
        .await
        .expect("the profile");
    assert_eq!(
        mock.requests()[0].header("linkedin-version"),
        Some("202511")
    );
    assert!(
        PlatformConfig::new(http_client())
            .with_linkedin_version("2025-11")
            .is_err()
    );
}

#[tokio::test]
async fn a_text_post_is_authored_by_the_member_escaped_and_its_id_read_from_the_header() {
    let mock = Mock::start(Linkedin::accepting(&[TOKEN])).await;
    let output = call(
        &mock,
        "linkedin_create_post",
        json!({"text": "Hello #rust (v2) @team"}),
    )
    .await
    .expect("posted");
    let post_id = output.structured["post_id"].as_str().expect("an id");
    assert!(post_id.starts_with("urn:li:share:"), "{post_id}");
    assert_eq!(output.structured["posted"], true);
    assert_eq!(
        output.structured["url"],
        format!("https://www.linkedin.com/feed/update/{post_id}/")
    );
    let requests = mock.requests();
    assert_eq!(
        requests.len(),
        1,
        "the member id comes from the stored account"
    );
    assert_eq!(
        (requests[0].method.clone(), requests[0].path.as_str()),
        (Method::POST, "/rest/posts")
    );
    assert_api_headers(&requests[0]);
    assert_eq!(
        requests[0].json(),
        json!({"author": format!("urn:li:person:{PERSON_ID}"), "commentary": "Hello \\#rust \\(v2\\) \\@team", "visibility": "PUBLIC",
            "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
            "lifecycleState": "PUBLISHED", "isReshareDisabledByAuthor": false})
    );
}

#[tokio::test]
async fn without_a_stored_member_id_the_author_comes_from_userinfo_and_articles_and_organizations_work()
 {
    let mock = Mock::start(Linkedin::accepting(&[TOKEN])).await;
    let bare = Secret::new(json!({"access_token": TOKEN}));
    let arguments = json!({"text": "Read this", "article_url": "https://example.com/a", "article_title": "A", "visibility": "CONNECTIONS"});
    run(
        &config(mock.base_url()),
        "linkedin_create_post",
        &bare,
        arguments,
    )
    .await
    .expect("posted");
    let requests = mock.requests();
    assert_eq!(
        requests.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(),
        ["/v2/userinfo", "/rest/posts"]
    );
    let body = requests[1].json();
    assert_eq!(body["author"], format!("urn:li:person:{PERSON_ID}"));
    assert_eq!(body["visibility"], "CONNECTIONS");
    assert_eq!(
        body["content"],
        json!({"article": {"source": "https://example.com/a", "title": "A"}})
    );

    mock.clear_requests();
    call(
        &mock,
        "linkedin_create_post",
        json!({"text": "As the company", "organization": "urn:li:organization:2414183"}),
    )
    .await
    .expect("posted");
    assert_eq!(
        mock.requests()[0].json()["author"],
        "urn:li:organization:2414183"
    );
    let refused = call(
        &mock,
        "linkedin_create_post",
        json!({"text": "x", "organization": "urn:li:organization:abc-not-a-number"}),
    )
    .await
    .expect_err("bad urn");
    assert_failure(&refused, FailureKind::InvalidInput, "organization");
    let two = call(
        &mock,
        "linkedin_create_post",
        json!({"text": "x", "article_url": "https://e.com", "video_urn": "urn:li:video:C5F10AQ1"}),
    )
    .await;
    assert_failure(
        &two.expect_err("two attachments"),
        FailureKind::InvalidInput,
        "one attachment",
    );
}

#[tokio::test]
async fn an_image_post_initializes_uploads_to_the_returned_url_and_attaches_the_image() {
    let mock = Mock::start(Linkedin::accepting(&[TOKEN])).await;
    let png = [0x89, b'P', b'N', b'G', 1, 2, 3, 4, 5, 6];
    let (data, media_type) = inline(&png, "image/png");
    let output = call(&mock, "linkedin_create_post", json!({"text": "A picture", "media_data": data, "media_type": media_type, "media_title": "Chart"}))
        .await
        .expect("posted");
    let requests = mock.requests();
    assert_eq!(
        requests
            .iter()
            .map(|r| (r.method.as_str(), r.path.as_str()))
            .collect::<Vec<_>>()[..2],
        [("POST", "/rest/images"), ("PUT", requests[1].path.as_str())]
    );
    assert_eq!(
        requests[0].query.as_deref(),
        Some("action=initializeUpload")
    );
    assert_eq!(
        requests[0].json(),
        json!({"initializeUploadRequest": {"owner": format!("urn:li:person:{PERSON_ID}")}})
    );
    assert!(
        requests[1].path.starts_with("/dms-uploads/image/"),
        "{}",
        requests[1].path
    );
    assert_eq!(&requests[1].body[..], &png[..]);
    assert_eq!(requests[1].header("content-type"), Some("image/png"));
    let image = output.structured["media"].as_str().expect("the image urn");
    assert!(image.starts_with("urn:li:image:"), "{image}");
    assert_eq!(
        requests[2].json()["content"],
        json!({"media": {"id": image, "title": "Chart"}})
    );
    assert_eq!(mock.platform().uploaded_bytes(), png.len() as u64);

    // An image over the gateway's 10 MB cap is refused before anything is sent.
    mock.clear_requests();
    let big = serve_file(vec![0u8; 10 * 1024 * 1024 + 1], "image/jpeg").await;
    let refused = call(
        &mock,
        "linkedin_create_post",
        json!({"text": "Too big", "media_url": big}),
    )
    .await
    .expect_err("over the cap");
    assert_failure(&refused, FailureKind::InvalidInput, "10 MB");
    assert!(mock.requests().is_empty(), "{:?}", mock.requests());
}

#[tokio::test]
async fn a_video_is_uploaded_in_the_parts_linkedin_asks_for_finalized_with_the_etags_and_waited_for()
 {
    let mock = Mock::start(Linkedin::accepting(&[TOKEN])).await;
    mock.platform().set_part_size(10);
    mock.platform().set_processing_polls(3);
    let video: Vec<u8> = (0..25u8).collect();
    let (data, media_type) = inline(&video, "video/mp4");
    let output = call(
        &mock,
        "linkedin_upload_video",
        json!({"media_data": data, "media_type": media_type}),
    )
    .await
    .expect("uploaded");
    assert_eq!(output.structured["status"], "AVAILABLE");
    assert_eq!(
        (
            output.structured["parts"].as_u64(),
            output.structured["bytes"].as_u64()
        ),
        (Some(3), Some(25))
    );
    let urn = output.structured["video"]
        .as_str()
        .expect("a urn")
        .to_owned();

    let requests = mock.requests();
    let init = &requests[0];
    assert_eq!(
        (init.path.as_str(), init.query.as_deref()),
        ("/rest/videos", Some("action=initializeUpload"))
    );
    assert_api_headers(init);
    assert_eq!(
        init.json(),
        json!({"initializeUploadRequest": {"owner": format!("urn:li:person:{PERSON_ID}"), "fileSizeBytes": 25, "uploadCaptions": false, "uploadThumbnail": false}})
    );
    let parts: Vec<&RecordedRequest> = requests
        .iter()
        .filter(|r| r.method == Method::PUT)
        .collect();
    assert_eq!(
        parts.iter().map(|p| p.body.to_vec()).collect::<Vec<_>>(),
        [
            video[..10].to_vec(),
            video[10..20].to_vec(),
            video[20..].to_vec()
        ]
    );
    for part in &parts {
        assert_eq!(
            part.header("authorization"),
            None,
            "signed upload URLs get no token"
        );
        assert_eq!(
            part.header("content-type"),
            Some("application/octet-stream")
        );
    }
    let finalize = requests
        .iter()
        .find(|r| r.query.as_deref() == Some("action=finalizeUpload"))
        .expect("finalized");
    let ids = finalize.json()["finalizeUploadRequest"]["uploadedPartIds"].clone();
    assert_eq!(ids.as_array().map(Vec::len), Some(3));
    assert!(
        ids.as_array()
            .unwrap()
            .iter()
            .enumerate()
            .all(|(n, id)| id.as_str().unwrap().contains(&format!("-{n}-"))),
        "ETags in order: {ids}"
    );
    assert_eq!(
        finalize.json()["finalizeUploadRequest"]["video"],
        urn.as_str()
    );
    let polls: Vec<&RecordedRequest> = requests
        .iter()
        .filter(|r| r.method == Method::GET)
        .collect();
    assert_eq!(polls.len(), 4, "three PROCESSING answers, then AVAILABLE");
    assert_eq!(
        polls[0].path,
        format!("/rest/videos/{}", urn.replace(':', "%3A"))
    );

    // The uploaded video can be posted.
    let posted = call(
        &mock,
        "linkedin_create_post",
        json!({"text": "Watch", "video_urn": urn}),
    )
    .await
    .expect("posted");
    assert_eq!(posted.structured["media"], urn.as_str());
    assert_eq!(
        mock.platform().posts().last().unwrap()["content"]["media"]["id"],
        urn.as_str()
    );
}

#[tokio::test]
async fn processing_longer_than_the_wait_answers_with_the_state_and_how_to_check_again() {
    let mock = Mock::start(Linkedin::accepting(&[TOKEN])).await;
    mock.platform().set_processing_polls(1_000);
    let config = config(mock.base_url()).with_publish_wait(quick_wait(60));
    let (data, media_type) = inline(&[1u8; 40], "video/mp4");
    let output = run(
        &config,
        "linkedin_upload_video",
        &credential(),
        json!({"media_data": data, "media_type": media_type}),
    )
    .await
    .expect("an answer");
    assert_eq!(output.structured["status"], "PROCESSING");
    assert!(
        output.structured["note"]
            .as_str()
            .unwrap()
            .contains("video_urn"),
        "{}",
        output.structured
    );
    let urn = output.structured["video"].as_str().unwrap().to_owned();
    let checked = run(
        &config,
        "linkedin_upload_video",
        &credential(),
        json!({"video_urn": urn}),
    )
    .await
    .expect("a status");
    assert_eq!(checked.structured["status"], "PROCESSING");

    // A post with a video still processing is not made, and says so.
    let (data, media_type) = inline(&[2u8; 40], "video/mp4");
    let post = run(
        &config,
        "linkedin_create_post",
        &credential(),
        json!({"text": "Soon", "media_data": data, "media_type": media_type}),
    )
    .await
    .expect("an answer");
    assert_eq!(post.structured["posted"], false);
    assert!(mock.platform().posts().is_empty());
}

#[tokio::test]
async fn failed_processing_is_a_failure_naming_the_video() {
    let mock = Mock::start(Linkedin::accepting(&[TOKEN])).await;
    mock.platform().fail_processing();
    let (data, media_type) = inline(&[3u8; 40], "video/mp4");
    let failure = call(
        &mock,
        "linkedin_upload_video",
        json!({"media_data": data, "media_type": media_type}),
    )
    .await
    .expect_err("failed");
    assert_failure(&failure, FailureKind::Upstream, "PROCESSING_FAILED");
    let wrong = call(
        &mock,
        "linkedin_upload_video",
        json!({"media_data": data, "media_type": "image/png"}),
    )
    .await
    .expect_err("not a video");
    assert_failure(&wrong, FailureKind::InvalidInput, "video/mp4");
}

/// A one-shot HTTP server on loopback serving `body` as video/mp4.
async fn serve_video(body: Vec<u8>) -> String {
    serve_file(body, "video/mp4").await
}

/// A one-shot HTTP server on loopback serving `body` as `content_type`.
async fn serve_file(body: Vec<u8>, content_type: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        if let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 2048];
            let _ = socket.read(&mut request).await;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = socket.write_all(head.as_bytes()).await;
            for piece in body.chunks(if body.len() > 4096 { 65_536 } else { 7 }) {
                let _ = socket.write_all(piece).await;
            }
        }
    });
    format!("http://{address}/file")
}

#[tokio::test]
async fn a_video_url_is_streamed_part_by_part() {
    let mock = Mock::start(Linkedin::accepting(&[TOKEN])).await;
    mock.platform().set_part_size(64);
    mock.platform().set_processing_polls(0);
    let video: Vec<u8> = (0..=255u8).cycle().take(300).collect();
    let url = serve_video(video.clone()).await;
    let output = call(&mock, "linkedin_upload_video", json!({"media_url": url}))
        .await
        .expect("uploaded");
    assert_eq!(
        (
            output.structured["parts"].as_u64(),
            output.structured["status"].as_str()
        ),
        (Some(5), Some("AVAILABLE"))
    );
    let received: Vec<u8> = mock
        .requests()
        .iter()
        .filter(|r| r.method == Method::PUT)
        .flat_map(|r| r.body.to_vec())
        .collect();
    assert_eq!(received, video);
    assert_eq!(mock.platform().uploaded_bytes(), 300);
}

#[tokio::test]
async fn restli_refusals_become_failure_kinds() {
    let mock = Mock::start(Linkedin::accepting(&[TOKEN])).await;
    mock.platform().expire_tokens();
    let expired = call(&mock, "linkedin_get_profile", json!({}))
        .await
        .expect_err("expired");
    assert_failure(&expired, FailureKind::AuthExpired, "expired");

    let mock = Mock::start(Linkedin::accepting(&["another-token"])).await;
    let revoked = call(&mock, "linkedin_create_post", json!({"text": "x"}))
        .await
        .expect_err("invalid");
    assert_failure(&revoked, FailureKind::AuthRevoked, "Connect LinkedIn again");

    let mock = Mock::start(Linkedin::accepting(&[TOKEN])).await;
    mock.fail_next(Fault::Reply(error(
        429,
        0,
        "",
        "Resource level throttle APPLICATION DAY limit for calls to this resource is reached.",
    )));
    let limited = call(&mock, "linkedin_create_post", json!({"text": "x"}))
        .await
        .expect_err("limited");
    assert_failure(&limited, FailureKind::RateLimited, "midnight UTC");
    assert!(
        limited
            .retry_after
            .is_some_and(|s| (1..=86_400).contains(&s)),
        "{limited:?}"
    );
    assert_eq!(mock.request_count(), 1, "a write is never retried");

    mock.fail_next(Fault::Forbidden);
    let forbidden = call(&mock, "linkedin_create_post", json!({"text": "x"}))
        .await
        .expect_err("forbidden");
    assert_failure(
        &forbidden,
        FailureKind::PermissionMissing,
        "w_member_social",
    );

    mock.fail_next(Fault::ServerError);
    call(&mock, "linkedin_get_profile", json!({}))
        .await
        .expect("a read is retried once after a 5xx");
}

#[tokio::test]
async fn partner_only_tools_make_no_call_unless_access_is_declared() {
    let mock = Mock::start(Linkedin::accepting(&[TOKEN])).await;
    for (name, arguments, words) in [
        ("linkedin_search_connections", json!({}), "Connections API"),
        (
            "linkedin_send_message",
            json!({"recipient": "urn:li:person:aBcD123", "text": "hi"}),
            "Messages API",
        ),
    ] {
        let failure = call(&mock, name, arguments).await.expect_err("restricted");
        assert_failure(&failure, FailureKind::NotSupported, words);
        assert!(failure.message.contains("approved"), "{}", failure.message);
    }
    assert_eq!(mock.request_count(), 0, "no upstream call");

    let declared = config(mock.base_url()).with_partner_access(PartnerAccess::parse(
        "linkedin_search_connections, linkedin_send_message",
    ));
    let output = run(
        &declared,
        "linkedin_search_connections",
        &credential(),
        json!({"count": 10}),
    )
    .await
    .expect("connections");
    assert_eq!(
        output.structured["elements"][0]["to"],
        "urn:li:person:aBcD123"
    );
    let request = &mock.requests()[0];
    assert_eq!(request.path, "/v2/connections");
    assert_eq!(
        request.query_pairs(),
        [
            ("count".to_owned(), "10".to_owned()),
            ("q".to_owned(), "viewer".to_owned())
        ]
    );
    assert_api_headers(request);
    // The Messages API's requests are documented to partners only: nothing to enable here.
    let message = run(
        &declared,
        "linkedin_send_message",
        &credential(),
        json!({"recipient": "urn:li:person:aBcD123", "text": "hi"}),
    )
    .await;
    assert_failure(
        &message.expect_err("not implemented"),
        FailureKind::NotSupported,
        "not implemented",
    );
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn a_malformed_stored_credential_sends_nothing() {
    let mock = Mock::start(Linkedin::accepting(&[TOKEN])).await;
    let broken = Secret::new(json!({"access_token": format!(" {TOKEN}")}));
    let failure = run(
        &config(mock.base_url()),
        "linkedin_get_profile",
        &broken,
        json!({}),
    )
    .await
    .expect_err("unusable");
    assert_failure(&failure, FailureKind::NotConfigured, "access_token");
    assert_eq!(mock.request_count(), 0);
}
