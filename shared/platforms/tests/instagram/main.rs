//! The Instagram tools against the shared Meta mock: the profile for each login, the media list,
//! and the container flow (create, poll `status_code` over several checks, `media_publish`),
//! with a failed container (ERROR), a container still processing when the wait ends and
//! finished later with `instagram_publish_container`, and the Graph error mapping.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use squaremcp_core::tool::{FailureKind, PlatformModule, Tool, ToolFailure, ToolOutput};
use squaremcp_core::{Platform, Secret, schema};
use squaremcp_platform_mocks::meta::{BROKEN_MEDIA, IG_USER_ID, Meta};
use squaremcp_platform_mocks::{Fault, Mock, RecordedRequest};
use squaremcp_platforms::instagram::{DEFAULT_ORIGIN, FACEBOOK_LOGIN_ORIGIN, hosts};
use squaremcp_platforms::kit::PublishWait;
use squaremcp_platforms::{PlatformConfig, http_client, modules};

const TOKEN: &str = "IGAAinstagram-token_0123456789abcdefghijklmnopqrstuvwxyz";
const EXPIRED: &str = "IGAAexpired-token_0123456789abcdefghijklmnopqrstuvw";

fn quick_wait(budget_ms: u64) -> PublishWait {
    PublishWait { budget: Duration::from_millis(budget_ms), first_interval: Duration::from_millis(5), max_interval: Duration::from_millis(10) }
}

fn module(mock: &Mock<Meta>, wait: PublishWait) -> Box<dyn PlatformModule> {
    let config = PlatformConfig::new(http_client())
        .with_base_url(Platform::Instagram, mock.base_url())
        .expect("a mock origin")
        .with_publish_wait(wait);
    modules(&config).into_iter().find(|m| m.platform() == Platform::Instagram).expect("the Instagram module")
}

async fn start() -> Mock<Meta> {
    Mock::start(Meta::accepting(&[TOKEN]).with_expired(&[EXPIRED])).await
}

async fn call_with(mock: &Mock<Meta>, credential: Value, name: &str, arguments: Value, wait: PublishWait) -> Result<ToolOutput, ToolFailure> {
    let tool: Arc<dyn Tool> = module(mock, wait).tools().into_iter().find(|t| t.definition().name == name).expect(name);
    schema::validate(&tool.definition().input_schema, &arguments).expect("the arguments pass the input schema");
    let Value::Object(arguments) = arguments else { panic!("arguments must be an object") };
    let output = tool.call(&Secret::new(credential), arguments).await;
    if let (Ok(output), Some(output_schema)) = (&output, &tool.definition().output_schema) {
        schema::validate(output_schema, &output.structured).expect("the output matches its schema");
    }
    output
}

fn credential(login: &str, token: &str) -> Value {
    json!({"login": login, "ig_user_id": IG_USER_ID, "access_token": token})
}

async fn call(mock: &Mock<Meta>, name: &str, arguments: Value) -> Result<ToolOutput, ToolFailure> {
    call_with(mock, credential("instagram", TOKEN), name, arguments, quick_wait(2_000)).await
}

fn requests(mock: &Mock<Meta>) -> Vec<RecordedRequest> {
    let requests = mock.requests();
    for request in &requests {
        assert_eq!(request.header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));
        assert!(!request.query.clone().unwrap_or_default().contains(TOKEN));
    }
    requests
}

fn line(request: &RecordedRequest) -> (String, String) {
    (request.method.to_string(), request.path.clone())
}

#[tokio::test]
async fn the_profile_is_read_as_each_login_documents_it() {
    let mock = start().await;
    let profile = call(&mock, "instagram_get_profile", json!({})).await.expect("profile");
    assert_eq!(profile.structured["username"], "adasbakery");
    let sent = requests(&mock);
    assert_eq!(line(&sent[0]), ("GET".to_owned(), "/v26.0/me".to_owned()));
    assert_eq!(sent[0].query_pairs()[0].1, "id,user_id,username,name,account_type,profile_picture_url,followers_count,follows_count,media_count");

    mock.clear_requests();
    call_with(&mock, credential("facebook", TOKEN), "instagram_get_profile", json!({}), quick_wait(100)).await.expect("profile");
    let sent = requests(&mock);
    assert_eq!(line(&sent[0]), ("GET".to_owned(), format!("/v26.0/{IG_USER_ID}")));
    assert!(sent[0].query_pairs()[0].1.contains("biography"));
}

#[test]
fn each_login_has_its_host_and_an_override_moves_both() {
    assert_eq!(hosts(DEFAULT_ORIGIN), (DEFAULT_ORIGIN.to_owned(), FACEBOOK_LOGIN_ORIGIN.to_owned()));
    assert_eq!(hosts("http://127.0.0.1:9"), ("http://127.0.0.1:9".to_owned(), "http://127.0.0.1:9".to_owned()));
}

#[tokio::test]
async fn an_image_post_is_created_polled_over_several_checks_and_published() {
    let mock = start().await;
    mock.platform().set_processing_polls(2);
    let posted = call(&mock, "instagram_create_post", json!({"media_url": "https://cdn.example/bread.jpg", "caption": "Bread!", "alt_text": "A loaf"})).await.expect("posted");
    assert_eq!(posted.structured["published"], true);
    let media_id = posted.structured["media_id"].as_str().expect("a media id").to_owned();
    let container = posted.structured["container_id"].as_str().unwrap().to_owned();
    let sent = requests(&mock);
    let lines: Vec<(String, String)> = sent.iter().map(line).collect();
    let check = ("GET".to_owned(), format!("/v26.0/{container}"));
    assert_eq!(lines, [
        ("POST".to_owned(), format!("/v26.0/{IG_USER_ID}/media")),
        check.clone(), check.clone(), check,
        ("POST".to_owned(), format!("/v26.0/{IG_USER_ID}/media_publish")),
    ]);
    assert_eq!(sent[0].json(), json!({"image_url": "https://cdn.example/bread.jpg", "caption": "Bread!", "alt_text": "A loaf"}));
    assert_eq!(sent[1].query_pairs(), [("fields".to_owned(), "status_code,status".to_owned())]);
    assert_eq!(sent[4].json(), json!({"creation_id": container}));

    mock.clear_requests();
    let media = call(&mock, "instagram_get_media", json!({"limit": 10})).await.expect("media");
    assert_eq!(media.structured["media"][0]["id"], media_id.as_str());
    let sent = requests(&mock);
    assert_eq!(line(&sent[0]), ("GET".to_owned(), format!("/v26.0/{IG_USER_ID}/media")));
    assert!(sent[0].query_pairs().contains(&("limit".to_owned(), "10".to_owned())));
}

#[tokio::test]
async fn a_reel_sends_its_options_and_a_failed_container_is_not_published() {
    let mock = start().await;
    mock.platform().set_processing_polls(1);
    let reel = call(&mock, "instagram_create_reel", json!({"media_url": "https://cdn.example/clip.mp4", "caption": "Oven", "share_to_feed": true, "thumb_offset": 1500})).await.expect("reel");
    assert_eq!(reel.structured["published"], true);
    assert_eq!(requests(&mock)[0].json(), json!({"media_type": "REELS", "video_url": "https://cdn.example/clip.mp4", "caption": "Oven", "share_to_feed": true, "thumb_offset": 1500}));

    mock.clear_requests();
    let failure = call(&mock, "instagram_create_reel", json!({"media_url": format!("https://cdn.example/{BROKEN_MEDIA}.mp4")})).await.expect_err("ERROR");
    assert_eq!(failure.kind, FailureKind::Upstream);
    assert!(failure.message.contains("2207026"), "{}", failure.message);
    assert!(requests(&mock).iter().all(|r| !r.path.ends_with("media_publish")), "a failed container is never published");
}

#[tokio::test]
async fn a_container_still_processing_is_returned_and_published_later() {
    let mock = start().await;
    mock.platform().set_processing_polls(4);
    let pending = call_with(&mock, credential("instagram", TOKEN), "instagram_create_reel", json!({"media_url": "https://cdn.example/long.mp4"}), quick_wait(8)).await.expect("pending");
    assert_eq!((pending.structured["published"].as_bool(), pending.structured["status"].as_str()), (Some(false), Some("IN_PROGRESS")));
    assert!(pending.structured["note"].as_str().is_some_and(|n| n.contains("instagram_publish_container")));
    assert!(mock.requests().iter().all(|r| !r.path.ends_with("media_publish")));
    let container = pending.structured["container_id"].as_str().unwrap();
    let published = call(&mock, "instagram_publish_container", json!({"container_id": container})).await.expect("published");
    assert_eq!(published.structured["published"], true);
    assert_eq!(mock.platform().published_media().len(), 1);

    let again = call(&mock, "instagram_publish_container", json!({"container_id": container})).await.expect_err("already published");
    assert_eq!(again.kind, FailureKind::InvalidInput);
    let bad = call(&mock, "instagram_publish_container", json!({"container_id": "../me"})).await.expect_err("not an id");
    assert_eq!(bad.kind, FailureKind::InvalidInput);
}

#[tokio::test]
async fn graph_errors_map_to_kinds() {
    let mock = start().await;
    let expired = call_with(&mock, credential("instagram", EXPIRED), "instagram_get_profile", json!({}), quick_wait(100)).await.expect_err("expired");
    assert_eq!(expired.kind, FailureKind::AuthExpired);
    assert!(!expired.message.contains(EXPIRED));

    mock.fail_next(Fault::RateLimited { retry_after: 4.0 });
    let limited = call(&mock, "instagram_create_post", json!({"media_url": "https://cdn.example/a.jpg"})).await.expect_err("limited");
    assert_eq!((limited.kind, limited.retry_after), (FailureKind::RateLimited, Some(4)));
    assert!(limited.message.contains("(#4) Application request limit reached"), "{}", limited.message);

    mock.fail_next(Fault::Forbidden);
    let forbidden = call(&mock, "instagram_get_media", json!({})).await.expect_err("forbidden");
    assert_eq!(forbidden.kind, FailureKind::PermissionMissing);
    assert!(forbidden.message.contains("instagram_business_content_publish"), "{}", forbidden.message);

    let refused = call(&mock, "instagram_create_post", json!({"media_url": "http://cdn.example/a.jpg"})).await.expect_err("not https");
    assert_eq!(refused.kind, FailureKind::InvalidInput);
}
