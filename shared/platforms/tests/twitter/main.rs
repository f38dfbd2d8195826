//! The X tools against the X mock: each tool's exact request (method, path, query, body, the
//! bearer token in the header only), X's error shapes mapped to failure kinds (401, 429 with
//! `x-rate-limit-reset`, unknown users), the checks made before any billed request, and the v2
//! chunked video upload: several APPEND segments in order with the right byte totals, a
//! processing state that takes polls, one that fails, and a wait that runs out and is resumed
//! with `media_id`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use squaremcp_core::tool::{Annotations, FailureKind, PlatformModule, Tool, ToolFailure, ToolOutput};
use squaremcp_core::{Platform, Secret, schema};
use squaremcp_platform_mocks::x::{MISSING_USERNAME, USER_ID, X};
use squaremcp_platform_mocks::{Fault, Mock, RecordedRequest, Reply};
use squaremcp_platforms::kit::{NetworkPolicy, PublishWait};
use squaremcp_platforms::{PlatformConfig, http_client, modules};

const TOKEN: &str = "x-test-access-token-0123456789abcdefghij";
const CHUNK: usize = 4 * 1024 * 1024;

fn config(base_url: &str, budget: Duration) -> PlatformConfig {
    PlatformConfig::new(http_client())
        .with_base_url(Platform::Twitter, base_url)
        .expect("a mock origin")
        .with_network(NetworkPolicy::new(true))
        .with_publish_wait(PublishWait { budget, first_interval: Duration::from_millis(10), max_interval: Duration::from_millis(40) })
}

fn tool_with(config: &PlatformConfig, name: &str) -> Arc<dyn Tool> {
    let module: Box<dyn PlatformModule> = modules(config).into_iter().find(|m| m.platform() == Platform::Twitter).expect("the X module");
    module.tools().into_iter().find(|t| t.definition().name == name).expect(name)
}

async fn start() -> Mock<X> {
    Mock::start(X::accepting(&[TOKEN])).await
}

fn credential() -> Secret<Value> {
    Secret::new(json!({"access_token": TOKEN, "refresh_token": "r", "expires_at": 4_102_444_800_i64}))
}

async fn call_with(config: &PlatformConfig, name: &str, arguments: Value) -> Result<ToolOutput, ToolFailure> {
    let tool = tool_with(config, name);
    schema::validate(&tool.definition().input_schema, &arguments).expect("the arguments pass the input schema");
    let Value::Object(arguments) = arguments else { panic!("arguments must be an object") };
    let outcome = tool.call(&credential(), arguments).await;
    if let Ok(output) = &outcome
        && let Some(output_schema) = &tool.definition().output_schema
    {
        schema::validate(output_schema, &output.structured).unwrap_or_else(|why| panic!("{name} output: {why}\n{}", output.structured));
    }
    outcome
}

async fn call(mock: &Mock<X>, name: &str, arguments: Value) -> Result<ToolOutput, ToolFailure> {
    call_with(&config(mock.base_url(), Duration::from_secs(5)), name, arguments).await
}

fn checked(requests: Vec<RecordedRequest>) -> Vec<RecordedRequest> {
    for request in &requests {
        assert_eq!(request.header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));
        assert!(!request.path.contains(TOKEN) && !request.query.as_deref().unwrap_or("").contains(TOKEN), "the token went into the URL");
    }
    requests
}

fn only_request(mock: &Mock<X>) -> RecordedRequest {
    let requests = checked(mock.requests());
    assert_eq!(requests.len(), 1, "expected one request, got {requests:#?}");
    requests.into_iter().next().unwrap()
}

fn query(request: &RecordedRequest) -> Vec<(String, String)> {
    let mut pairs = request.query_pairs();
    pairs.sort();
    pairs
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    pairs.sort();
    pairs
}

const USER_FIELDS: &str = "created_at,description,location,profile_image_url,public_metrics,url,verified,verified_type";
const TWEET_FIELDS: &str = "attachments,author_id,conversation_id,created_at,lang,public_metrics,referenced_tweets";

#[test]
fn annotations_are_honest_and_descriptions_mention_billing() {
    let config = PlatformConfig::new(http_client());
    for (name, annotations) in [
        ("twitter_get_me", Annotations::READ),
        ("twitter_get_user_profile", Annotations::READ),
        ("twitter_get_user_tweets", Annotations::READ),
        ("twitter_search_tweets", Annotations::READ),
        ("twitter_create_tweet", Annotations::WRITE),
        ("twitter_upload_video", Annotations::WRITE),
    ] {
        let definition = tool_with(&config, name).definition().clone();
        assert_eq!(definition.annotations, annotations, "{name}");
        assert!(definition.description.contains("bills"), "{name} must say X bills per request");
    }
    let post = tool_with(&config, "twitter_create_tweet").definition().clone();
    assert!(!post.logged_arguments.contains(&"text") && !post.logged_arguments.contains(&"poll_options"), "content is never logged");
}

#[tokio::test]
async fn get_user_profile_reads_self_by_username_or_by_id() {
    let mock = start().await;
    let me = call(&mock, "twitter_get_user_profile", json!({})).await.unwrap();
    assert_eq!(me.structured["data"]["id"], USER_ID);
    let request = only_request(&mock);
    assert_eq!((request.method.as_str(), request.path.as_str()), ("GET", "/2/users/me"));
    assert_eq!(query(&request), pairs(&[("user.fields", USER_FIELDS)]));

    mock.clear_requests();
    let named = call(&mock, "twitter_get_user_profile", json!({"username": "@XDevelopers", "user_fields": "created_at"})).await.unwrap();
    assert_eq!(named.structured["data"]["username"], "XDevelopers");
    let request = only_request(&mock);
    assert_eq!(request.path, "/2/users/by/username/XDevelopers");
    assert_eq!(query(&request), pairs(&[("user.fields", "created_at")]), "the caller's fields replace the default");

    mock.clear_requests();
    call(&mock, "twitter_get_user_profile", json!({"user_id": "783214"})).await.unwrap();
    assert_eq!(only_request(&mock).path, "/2/users/783214");

    mock.clear_requests();
    let both = call(&mock, "twitter_get_user_profile", json!({"username": "a", "user_id": "1"})).await.unwrap_err();
    assert_eq!(both.kind, FailureKind::InvalidInput);
    let bad = call(&mock, "twitter_get_user_profile", json!({"username": "a/../b"})).await.unwrap_err();
    assert_eq!(bad.kind, FailureKind::InvalidInput);
    assert!(mock.requests().is_empty(), "refused before any (billed) request");

    let missing = call(&mock, "twitter_get_user_profile", json!({"username": MISSING_USERNAME})).await.unwrap_err();
    assert_eq!(missing.kind, FailureKind::NotFound, "{missing:?}");
    assert!(missing.message.contains("Could not find user"), "{}", missing.message);
}

#[tokio::test]
async fn get_user_tweets_pages_with_pagination_token() {
    let mock = start().await;
    let page = call(&mock, "twitter_get_user_tweets", json!({"user_id": "2244994945", "max_results": 5, "exclude": "replies"})).await.unwrap();
    let next = page.structured["meta"]["next_token"].as_str().unwrap().to_owned();
    let request = only_request(&mock);
    assert_eq!((request.method.as_str(), request.path.as_str()), ("GET", "/2/users/2244994945/tweets"));
    assert_eq!(query(&request), pairs(&[("max_results", "5"), ("exclude", "replies"), ("tweet.fields", TWEET_FIELDS)]));

    mock.clear_requests();
    call(&mock, "twitter_get_user_tweets", json!({"user_id": "2244994945", "pagination_token": next, "start_time": "2026-01-01T00:00:00Z"})).await.unwrap();
    assert_eq!(
        query(&only_request(&mock)),
        pairs(&[("pagination_token", "page-2"), ("start_time", "2026-01-01T00:00:00Z"), ("tweet.fields", TWEET_FIELDS)])
    );
    let tool = tool_with(&PlatformConfig::new(http_client()), "twitter_get_user_tweets");
    assert!(schema::validate(&tool.definition().input_schema, &json!({"user_id": "1", "max_results": 4})).is_err(), "X's minimum is 5");
}

#[tokio::test]
async fn search_tweets_sends_the_operator_query_and_next_token() {
    let mock = start().await;
    let query_text = "from:XDevelopers -is:retweet \"api v2\" #dev";
    let found = call(&mock, "twitter_search_tweets", json!({"query": query_text, "max_results": 10, "sort_order": "recency"})).await.unwrap();
    assert_eq!(found.structured["meta"]["next_token"], "page-2");
    let request = only_request(&mock);
    assert_eq!((request.method.as_str(), request.path.as_str()), ("GET", "/2/tweets/search/recent"));
    assert_eq!(query(&request), pairs(&[("query", query_text), ("max_results", "10"), ("sort_order", "recency"), ("tweet.fields", TWEET_FIELDS)]));
    mock.clear_requests();
    call(&mock, "twitter_search_tweets", json!({"query": "a", "next_token": "page-3", "end_time": "2026-01-02T00:00:00Z"})).await.unwrap();
    assert_eq!(query(&only_request(&mock)), pairs(&[("query", "a"), ("next_token", "page-3"), ("end_time", "2026-01-02T00:00:00Z"), ("tweet.fields", TWEET_FIELDS)]));
}

#[tokio::test]
async fn create_tweet_sends_x_shapes_and_refuses_exclusive_parts_first() {
    let mock = start().await;
    let posted = call(&mock, "twitter_create_tweet", json!({"text": "Which?", "reply_to": "1850", "poll_options": ["a", "b"], "poll_duration_minutes": 60})).await.unwrap();
    assert!(posted.structured["data"]["id"].is_string());
    let request = only_request(&mock);
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/2/tweets"));
    assert_eq!(request.json(), json!({"text": "Which?", "reply": {"in_reply_to_tweet_id": "1850"}, "poll": {"options": ["a", "b"], "duration_minutes": 60}}));

    mock.clear_requests();
    call(&mock, "twitter_create_tweet", json!({"text": "Quoting", "quote_tweet_id": "1851"})).await.unwrap();
    assert_eq!(only_request(&mock).json(), json!({"text": "Quoting", "quote_tweet_id": "1851"}));

    mock.clear_requests();
    for refused in [
        json!({"text": "x", "media_ids": ["1"], "poll_options": ["a", "b"], "poll_duration_minutes": 5}),
        json!({"text": "x", "quote_tweet_id": "1", "media_ids": ["1"]}),
        json!({"text": "x", "poll_options": ["a", "b"]}),
        json!({}),
    ] {
        let failure = call(&mock, "twitter_create_tweet", refused.clone()).await.unwrap_err();
        assert_eq!(failure.kind, FailureKind::InvalidInput, "{refused}");
    }
    assert!(mock.requests().is_empty(), "refused before any (billed) request");

    let duplicate = call(&mock, "twitter_create_tweet", json!({"text": "Quoting"})).await.unwrap_err();
    assert_eq!(duplicate.kind, FailureKind::InvalidInput, "{duplicate:?}");
    assert!(duplicate.message.contains("duplicate"), "{}", duplicate.message);
}

#[tokio::test]
async fn rate_limits_read_x_rate_limit_reset_and_401_asks_to_reconnect() {
    let mock = start().await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let reply = Reply::json(429, json!({"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}))
        .header("x-rate-limit-reset", (now + 42).to_string())
        .header("x-rate-limit-remaining", "0");
    mock.fail_next(Fault::Reply(reply));
    let limited = call(&mock, "twitter_search_tweets", json!({"query": "a"})).await.unwrap_err();
    assert_eq!(limited.kind, FailureKind::RateLimited);
    let wait = limited.retry_after.unwrap();
    assert!((40..=42).contains(&wait), "{wait}");

    mock.fail_next(Fault::Unauthorized);
    let revoked = call(&mock, "twitter_create_tweet", json!({"text": "hi"})).await.unwrap_err();
    assert_eq!(revoked.kind, FailureKind::AuthRevoked);
    assert!(revoked.message.contains("/account"));
    let unknown = Secret::new(json!({"access_token": "not-a-token-at-all"}));
    let tool = tool_with(&config(mock.base_url(), Duration::from_secs(1)), "twitter_get_me");
    assert_eq!(tool.call(&unknown, Default::default()).await.unwrap_err().kind, FailureKind::AuthRevoked);
}

/// Serves `bytes` as an MP4 at `/video.mp4`, with its Content-Length.
async fn serve_video(bytes: Vec<u8>) -> String {
    let bytes = bytes::Bytes::from(bytes);
    let router = axum::Router::new().route(
        "/video.mp4",
        axum::routing::get(move || {
            let bytes = bytes.clone();
            async move { ([("content-type", "video/mp4")], bytes) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/video.mp4", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

#[tokio::test]
async fn a_large_video_goes_up_in_ordered_segments_and_waits_for_processing() {
    let mock = start().await;
    mock.platform().set_processing_polls(2);
    let size = 2 * CHUNK + 123_457;
    let video: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let url = serve_video(video).await;
    let uploaded = call(&mock, "twitter_upload_video", json!({"media_url": url})).await.unwrap();
    let media_id = uploaded.structured["media_id"].as_str().unwrap().to_owned();
    assert_eq!((uploaded.structured["ready"].clone(), uploaded.structured["state"].clone()), (json!(true), json!("succeeded")));
    assert_eq!(uploaded.structured["media_key"], format!("7_{media_id}"));

    let upload = mock.platform().uploads().remove(&media_id).expect("the upload");
    assert_eq!(upload.segments, vec![(0, CHUNK), (1, CHUNK), (2, 123_457)], "segments in order, 4 MiB each but the last");
    assert_eq!((upload.total_bytes, upload.media_type.as_str(), upload.media_category.as_str()), (size as u64, "video/mp4", "tweet_video"));
    assert_eq!(upload.status_checks, 3, "two in_progress answers, then succeeded");
    assert_eq!(uploaded.structured["x_requests"], 1 + 3 + 1 + 3, "every billed request counted");

    let requests = checked(mock.requests());
    let shape: Vec<(String, String)> = requests.iter().map(|r| (r.method.to_string(), r.path.clone())).collect();
    let append = format!("/2/media/upload/{media_id}/append");
    let mut expected = vec![("POST".to_owned(), "/2/media/upload/initialize".to_owned())];
    expected.extend((0..3).map(|_| ("POST".to_owned(), append.clone())));
    expected.push(("POST".to_owned(), format!("/2/media/upload/{media_id}/finalize")));
    expected.extend((0..3).map(|_| ("GET".to_owned(), "/2/media/upload".to_owned())));
    assert_eq!(shape, expected);
    assert_eq!(requests[0].json(), json!({"media_type": "video/mp4", "total_bytes": size, "media_category": "tweet_video"}));
    assert!(requests[1].header("content-type").unwrap().starts_with("multipart/form-data; boundary="));
    assert_eq!(query(&requests[5]), pairs(&[("command", "STATUS"), ("media_id", &media_id)]));

    // The media id is what create_tweet takes.
    mock.clear_requests();
    call(&mock, "twitter_create_tweet", json!({"media_ids": [media_id]})).await.unwrap();
    assert_eq!(only_request(&mock).json(), json!({"media": {"media_ids": [media_id]}}));
}

#[tokio::test]
async fn a_wait_that_runs_out_returns_the_id_and_state_and_media_id_checks_again() {
    let mock = start().await;
    mock.platform().set_processing_polls(1_000);
    let data = base64::engine::general_purpose::STANDARD.encode(b"small mp4 bytes");
    let quick = config(mock.base_url(), Duration::from_millis(120));
    let started = std::time::Instant::now();
    let pending = call_with(&quick, "twitter_upload_video", json!({"media_data": data, "media_type": "video/mp4", "media_category": "amplify_video"})).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "the call never hangs");
    let media_id = pending.structured["media_id"].as_str().unwrap().to_owned();
    assert_eq!((pending.structured["ready"].clone(), pending.structured["state"].clone()), (json!(false), json!("in_progress")));
    assert!(pending.structured["next_step"].as_str().unwrap().contains(&media_id));
    let upload = mock.platform().uploads().remove(&media_id).unwrap();
    assert_eq!((upload.segments.clone(), upload.media_category.as_str()), (vec![(0, 15)], "amplify_video"));

    mock.platform().set_processing_polls(0);
    mock.clear_requests();
    let done = call(&mock, "twitter_upload_video", json!({"media_id": media_id})).await.unwrap();
    assert_eq!(done.structured["ready"], true);
    let request = only_request(&mock);
    assert_eq!((request.method.as_str(), request.path.as_str()), ("GET", "/2/media/upload"), "a status check only: no upload");
    assert_eq!(done.structured["x_requests"], 1);

    let both = call(&mock, "twitter_upload_video", json!({"media_id": "1", "media_data": "AAAA", "media_type": "video/mp4"})).await.unwrap_err();
    assert_eq!(both.kind, FailureKind::InvalidInput);
    let image = call(&mock, "twitter_upload_video", json!({"media_data": "AAAA", "media_type": "image/png"})).await.unwrap_err();
    assert_eq!(image.kind, FailureKind::InvalidInput);
}

#[tokio::test]
async fn a_failed_processing_state_is_a_failure_with_x_reason() {
    let mock = start().await;
    mock.platform().set_processing_polls(1);
    mock.platform().fail_processing(true);
    let data = base64::engine::general_purpose::STANDARD.encode(b"not really a video");
    let failure = call(&mock, "twitter_upload_video", json!({"media_data": data, "media_type": "video/mp4"})).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::InvalidInput, "{failure:?}");
    assert!(failure.message.contains("Unsupported video codec"), "{}", failure.message);
}

#[tokio::test]
async fn an_upload_refused_midway_stops_at_once() {
    let mock = start().await;
    let data = base64::engine::general_purpose::STANDARD.encode(b"video");
    mock.fail_next(Fault::RateLimited { retry_after: 7.0 });
    let limited = call(&mock, "twitter_upload_video", json!({"media_data": data, "media_type": "video/mp4"})).await.unwrap_err();
    assert_eq!((limited.kind, limited.retry_after), (FailureKind::RateLimited, Some(7)));
    assert_eq!(mock.requests().len(), 1, "nothing after the refused initialize");
}
