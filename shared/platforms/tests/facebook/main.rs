//! The Facebook Page tools against the shared Meta mock: each tool's exact request (method,
//! path, query, headers, body), the token only ever in the `Authorization` header, the video
//! host, bounded waiting for a video's processing, and the Graph error mapping.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use squaremcp_core::tool::{FailureKind, PlatformModule, Tool, ToolFailure, ToolOutput};
use squaremcp_core::{Platform, Secret, schema};
use squaremcp_platform_mocks::meta::{BROKEN_MEDIA, Meta, PAGE_ID};
use squaremcp_platform_mocks::{Fault, Mock, RecordedRequest};
use squaremcp_platforms::facebook::{DEFAULT_ORIGIN, VIDEO_ORIGIN, video_origin};
use squaremcp_platforms::kit::PublishWait;
use squaremcp_platforms::{PlatformConfig, http_client, modules};

const TOKEN: &str = "EAAGpage-token_0123456789abcdefghijklmnopqrstuvwxyz";
const EXPIRED: &str = "EAAGexpired-token_0123456789abcdefghijklmnopqrstuv";

fn quick_wait(budget_ms: u64) -> PublishWait {
    PublishWait { budget: Duration::from_millis(budget_ms), first_interval: Duration::from_millis(5), max_interval: Duration::from_millis(10) }
}

fn module(mock: &Mock<Meta>, wait: PublishWait) -> Box<dyn PlatformModule> {
    let config = PlatformConfig::new(http_client())
        .with_base_url(Platform::Facebook, mock.base_url())
        .expect("a mock origin")
        .with_publish_wait(wait);
    modules(&config).into_iter().find(|m| m.platform() == Platform::Facebook).expect("the Facebook module")
}

fn tool(mock: &Mock<Meta>, name: &str, wait: PublishWait) -> Arc<dyn Tool> {
    module(mock, wait).tools().into_iter().find(|t| t.definition().name == name).expect(name)
}

async fn start() -> Mock<Meta> {
    Mock::start(Meta::accepting(&[TOKEN]).with_expired(&[EXPIRED])).await
}

async fn call_as(mock: &Mock<Meta>, token: &str, name: &str, arguments: Value, wait: PublishWait) -> Result<ToolOutput, ToolFailure> {
    let tool = tool(mock, name, wait);
    schema::validate(&tool.definition().input_schema, &arguments).expect("the arguments pass the input schema");
    let Value::Object(arguments) = arguments else { panic!("arguments must be an object") };
    let output = tool.call(&Secret::new(json!({"page_id": PAGE_ID, "access_token": token})), arguments).await;
    if let (Ok(output), Some(output_schema)) = (&output, &tool.definition().output_schema) {
        schema::validate(output_schema, &output.structured).expect("the output matches its schema");
    }
    output
}

async fn call(mock: &Mock<Meta>, name: &str, arguments: Value) -> Result<ToolOutput, ToolFailure> {
    call_as(mock, TOKEN, name, arguments, quick_wait(2_000)).await
}

/// Every request carries the token in the header and never in the URL.
fn requests(mock: &Mock<Meta>) -> Vec<RecordedRequest> {
    let requests = mock.requests();
    for request in &requests {
        assert_eq!(request.header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));
        assert!(!request.query.clone().unwrap_or_default().contains(TOKEN) && !request.path.contains(TOKEN));
    }
    requests
}

#[tokio::test]
async fn get_page_and_get_posts_send_the_documented_reads() {
    let mock = start().await;
    let page = call(&mock, "facebook_get_page", json!({})).await.expect("the page");
    assert_eq!(page.structured["id"], PAGE_ID);
    let sent = requests(&mock);
    assert_eq!((sent[0].method.as_str(), sent[0].path.as_str()), ("GET", format!("/v26.0/{PAGE_ID}").as_str()));
    assert_eq!(sent[0].query_pairs(), [("fields".to_owned(), "id,name,about,category,fan_count,followers_count,link,username,verification_status".to_owned())]);

    for n in 0..3 {
        call(&mock, "facebook_create_post", json!({"message": format!("post {n}")})).await.expect("a post");
    }
    mock.clear_requests();
    let first = call(&mock, "facebook_get_posts", json!({"limit": 2})).await.expect("posts");
    assert_eq!(first.structured["posts"].as_array().map(Vec::len), Some(2));
    assert_eq!(first.structured["posts"][0]["message"], "post 2", "newest first");
    let next = first.structured["next"].as_str().expect("a next cursor").to_owned();
    let sent = requests(&mock);
    assert_eq!(sent[0].path, format!("/v26.0/{PAGE_ID}/posts"));
    let query = sent[0].query_pairs();
    assert!(query.contains(&("limit".to_owned(), "2".to_owned())) && query.iter().filter(|(k, _)| k == "limit").count() == 1, "{query:?}");
    assert!(query.contains(&("fields".to_owned(), "id,message,created_time,permalink_url,full_picture,status_type".to_owned())));
    let last = call(&mock, "facebook_get_posts", json!({"limit": 2, "after": next})).await.expect("posts");
    assert_eq!(last.structured["posts"].as_array().map(Vec::len), Some(1));
    assert_eq!(last.structured["next"], Value::Null);
}

#[tokio::test]
async fn create_post_sends_message_and_link_and_schedules_as_unpublished() {
    let mock = start().await;
    let posted = call(&mock, "facebook_create_post", json!({"message": "Fresh rolls", "link": "https://adas.example/rolls"})).await.expect("posted");
    assert!(posted.structured["id"].as_str().is_some_and(|id| id.starts_with(&format!("{PAGE_ID}_"))));
    let sent = requests(&mock);
    assert_eq!((sent[0].method.as_str(), sent[0].path.as_str()), ("POST", format!("/v26.0/{PAGE_ID}/feed").as_str()));
    assert_eq!(sent[0].json(), json!({"message": "Fresh rolls", "link": "https://adas.example/rolls"}));
    mock.clear_requests();
    call(&mock, "facebook_create_post", json!({"link": "https://adas.example/menu"})).await.expect("a link alone");
    assert_eq!(requests(&mock)[0].json(), json!({"link": "https://adas.example/menu"}));

    mock.clear_requests();
    let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3_600;
    let scheduled = call(&mock, "facebook_create_post", json!({"message": "Later", "scheduled_publish_time": at})).await.expect("scheduled");
    assert_eq!(scheduled.structured["scheduled_publish_time"], at);
    assert_eq!(requests(&mock)[0].json(), json!({"message": "Later", "published": false, "scheduled_publish_time": at}));

    mock.clear_requests();
    for (arguments, expected) in [
        (json!({"message": "   "}), "Give `message`, `link` or both"),
        (json!({"message": "x", "link": "ftp://adas.example/x"}), "http(s) URL"),
        (json!({"message": "Too soon", "scheduled_publish_time": at - 3_500}), "10 minutes"),
    ] {
        let failure = call(&mock, "facebook_create_post", arguments).await.expect_err("refused");
        assert_eq!(failure.kind, FailureKind::InvalidInput);
        assert!(failure.message.contains(expected), "{}", failure.message);
    }
    assert!(mock.requests().is_empty(), "nothing is sent for refused arguments");
}

#[tokio::test]
async fn a_photo_goes_as_a_url_for_meta_to_fetch_or_inline_as_multipart() {
    let mock = start().await;
    let photo = call(&mock, "facebook_create_photo_post", json!({"media_url": "https://cdn.example/bread.jpg", "caption": "Bread"})).await.expect("photo");
    assert!(photo.structured["post_id"].as_str().is_some_and(|id| id.starts_with(&format!("{PAGE_ID}_"))));
    let sent = requests(&mock);
    assert_eq!(sent.len(), 1, "Meta fetches the URL; the gateway does not");
    assert_eq!(sent[0].path, format!("/v26.0/{PAGE_ID}/photos"));
    assert_eq!(sent[0].json(), json!({"url": "https://cdn.example/bread.jpg", "message": "Bread"}));

    mock.clear_requests();
    let png = b"\x89PNG\r\n\x1a\nnot-really-a-png-but-bytes".to_vec();
    let data = base64::engine::general_purpose::STANDARD.encode(&png);
    call(&mock, "facebook_create_photo_post", json!({"media_data": data, "media_type": "image/png", "caption": "Inline"})).await.expect("inline photo");
    let sent = requests(&mock);
    assert!(sent[0].header("content-type").is_some_and(|t| t.starts_with("multipart/form-data; boundary=")));
    let received = mock.platform().photos().pop().expect("a photo");
    assert_eq!(received, json!({"source_bytes": png.len(), "source_type": "image/png", "message": "Inline", "published": null}));

    let refused = call(&mock, "facebook_create_photo_post", json!({"media_data": data, "media_type": "image/png", "media_url": "https://cdn.example/x.jpg"})).await;
    assert_eq!(refused.expect_err("both").kind, FailureKind::InvalidInput);
}

#[tokio::test]
async fn a_video_is_posted_on_the_video_host_and_its_processing_is_polled() {
    let mock = start().await;
    mock.platform().set_processing_polls(2);
    let video = call(&mock, "facebook_create_video_post", json!({"media_url": "https://cdn.example/clip.mp4", "title": "Clip", "description": "Our oven"})).await.expect("video");
    assert_eq!((video.structured["status"].as_str(), video.structured["done"].as_bool()), (Some("ready"), Some(true)));
    let video_id = video.structured["video_id"].as_str().unwrap().to_owned();
    let sent = requests(&mock);
    assert_eq!(sent.len(), 4, "create, then processing, processing, ready: {sent:#?}");
    assert_eq!((sent[0].method.as_str(), sent[0].path.as_str()), ("POST", format!("/v26.0/{PAGE_ID}/videos").as_str()));
    assert_eq!(sent[0].json(), json!({"file_url": "https://cdn.example/clip.mp4", "title": "Clip", "description": "Our oven"}));
    for check in &sent[1..] {
        assert_eq!((check.method.as_str(), check.path.as_str()), ("GET", format!("/v26.0/{video_id}").as_str()));
        assert_eq!(check.query_pairs(), [("fields".to_owned(), "status".to_owned())]);
    }

    // The budget runs out: the answer carries the id, the state and how to check again.
    mock.platform().set_processing_polls(100);
    let pending = call_as(&mock, TOKEN, "facebook_create_video_post", json!({"media_url": "https://cdn.example/long.mp4"}), quick_wait(30)).await.expect("pending");
    assert_eq!((pending.structured["status"].as_str(), pending.structured["done"].as_bool()), (Some("processing"), Some(false)));
    assert!(pending.structured["note"].as_str().is_some_and(|n| n.contains("facebook_get_video")));
    let id = pending.structured["video_id"].as_str().unwrap();
    let followed = call(&mock, "facebook_get_video", json!({"video_id": id})).await.expect("the video");
    assert_eq!(followed.structured["status"]["video_status"], "processing");

    mock.platform().set_processing_polls(1);
    let failure = call(&mock, "facebook_create_video_post", json!({"media_url": format!("https://cdn.example/{BROKEN_MEDIA}.mp4")})).await.expect_err("failed processing");
    assert_eq!(failure.kind, FailureKind::Upstream);
    assert!(failure.message.contains("Video Format Not Supported"), "{}", failure.message);
}

#[test]
fn the_video_host_follows_an_override_of_the_origin() {
    assert_eq!(video_origin(DEFAULT_ORIGIN), VIDEO_ORIGIN);
    assert_eq!(video_origin("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
}

#[tokio::test]
async fn graph_errors_map_to_kinds_and_keep_metas_words() {
    let mock = start().await;
    let expired = call_as(&mock, EXPIRED, "facebook_get_page", json!({}), quick_wait(100)).await.expect_err("expired");
    assert_eq!(expired.kind, FailureKind::AuthExpired);
    assert!(expired.message.contains("Session has expired") && expired.message.contains("subcode 463"), "{}", expired.message);
    assert!(!expired.message.contains(EXPIRED));

    mock.fail_next(Fault::RateLimited { retry_after: 7.0 });
    let limited = call(&mock, "facebook_create_post", json!({"message": "x"})).await.expect_err("limited");
    assert_eq!((limited.kind, limited.retry_after), (FailureKind::RateLimited, Some(7)));
    assert!(limited.message.contains("(#32) Page request limit reached"), "{}", limited.message);

    mock.fail_next(Fault::Unauthorized);
    assert_eq!(call(&mock, "facebook_get_page", json!({})).await.expect_err("revoked").kind, FailureKind::AuthRevoked);
    mock.fail_next(Fault::Forbidden);
    let forbidden = call(&mock, "facebook_create_post", json!({"message": "x"})).await.expect_err("forbidden");
    assert_eq!(forbidden.kind, FailureKind::PermissionMissing);
    assert!(forbidden.message.contains("pages_manage_posts"), "{}", forbidden.message);

    // A read is retried once after a transient failure; a write never is.
    mock.clear_requests();
    mock.fail_next(Fault::ServerError);
    call(&mock, "facebook_get_page", json!({})).await.expect("retried");
    assert_eq!(mock.requests().len(), 2);
    mock.clear_requests();
    mock.fail_next(Fault::ServerError);
    assert_eq!(call(&mock, "facebook_create_post", json!({"message": "x"})).await.expect_err("a write").kind, FailureKind::UpstreamTransient);
    assert_eq!(mock.requests().len(), 1);

    let missing = call(&mock, "facebook_get_video", json!({"video_id": squaremcp_platform_mocks::meta::MISSING_ID})).await.expect_err("missing");
    assert_eq!(missing.kind, FailureKind::NotFound);
}

#[tokio::test]
async fn a_malformed_stored_credential_sends_nothing() {
    let mock = start().await;
    let tool = tool(&mock, "facebook_get_page", quick_wait(100));
    let failure = tool.call(&Secret::new(json!({"page_id": "my-page", "access_token": TOKEN})), serde_json::Map::new()).await.expect_err("unusable");
    assert_eq!(failure.kind, FailureKind::NotConfigured);
    assert!(!failure.message.contains(TOKEN));
    assert!(mock.requests().is_empty());
}
