//! X end to end: the real `squaremcp serve` and CLI against the X mock. A connection stored with
//! `--platform x`; a video uploaded inline in one call (initialize → append → finalize → status
//! checks until processed) and posted with its media id; a poll with media refused before any
//! request; X's 429 with `x-rate-limit-reset` seen by the client as `rate_limited` with
//! `retryAfter`; and the call log keeps each call with its ids but not the post's text. Runs on
//! SQLite, and on DynamoDB Local with `SQUAREMCP_STORE=dynamodb` (scripts/test).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use serde_json::json;
use squaremcp_platform_mocks::x::X;
use squaremcp_platform_mocks::{Fault, Mock, Reply};
use squaremcp_tests::{Server, TempDir, cli_json, create_tenant};

const TOKEN: &str = "x-e2e-access-token-0123456789abcdefghijkl";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_is_uploaded_processed_and_posted_and_refusals_read_as_x_meant_them() {
    let mock = Mock::start(X::accepting(&[TOKEN])).await;
    mock.platform().set_processing_polls(2);
    let data = TempDir::new("x");
    let tenant = create_tenant(data.path(), "ada@example.com");
    let document = json!({"access_token": TOKEN, "refresh_token": "r-unused", "expires_at": 4_102_444_800_i64});
    cli_json(data.path(), &["credentials", "set", "--customer", &tenant.id, "--platform", "x"], &document.to_string());
    let server = Server::start(
        data.path(),
        &[("SQUAREMCP_TWITTER_BASE_URL", mock.base_url()), ("SQUAREMCP_PUBLISH_POLL_MILLISECONDS", "20"), ("SQUAREMCP_PUBLISH_WAIT_SECONDS", "10")],
    );
    let hints = server.tool_hints(&tenant.key, "twitter_").await;
    let names: Vec<&str> = hints.iter().map(|h| h.0.as_str()).collect();
    assert_eq!(names, ["twitter_get_me", "twitter_get_user_profile", "twitter_get_user_tweets", "twitter_search_tweets", "twitter_create_tweet", "twitter_upload_video"]);
    let read_only: Vec<bool> = hints.iter().map(|h| h.1).collect();
    assert_eq!(read_only, [true, true, true, true, false, false]);
    assert!(hints.iter().all(|h| !h.2), "nothing X does here is destructive");

    let video = base64::engine::general_purpose::STANDARD.encode(vec![7u8; 300_000]);
    let before_upload = mock.request_count();
    let uploaded = server.call_tool_ok(&tenant.key, "twitter_upload_video", json!({"media_data": video, "media_type": "video/mp4"})).await;
    assert_eq!(uploaded["ready"], true, "{uploaded}");
    let media_id = uploaded["media_id"].as_str().unwrap().to_owned();
    let upload = mock.platform().uploads().remove(&media_id).unwrap();
    assert_eq!((upload.segments, upload.status_checks), (vec![(0, 300_000)], 3));
    let upload_requests = mock.request_count() - before_upload;

    let posted = server.call_tool_ok(&tenant.key, "twitter_create_tweet", json!({"text": "secret launch text", "media_ids": [media_id]})).await;
    assert!(posted["data"]["id"].is_string());
    assert_eq!(mock.platform().posts(), vec![json!({"text": "secret launch text", "media": {"media_ids": [media_id]}})]);

    let before = mock.request_count();
    let refused = server.call_tool(&tenant.key, "twitter_create_tweet", json!({"text": "q", "media_ids": ["1"], "poll_options": ["a", "b"], "poll_duration_minutes": 5})).await;
    assert_eq!(refused["_meta"]["squaremcp/error"]["kind"], "invalid_input", "{refused}");
    assert_eq!(mock.request_count(), before, "refused before any billed request");

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    mock.fail_next(Fault::Reply(
        Reply::json(429, json!({"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}))
            .header("x-rate-limit-reset", (now + 60).to_string()),
    ));
    let limited = server.call_tool(&tenant.key, "twitter_search_tweets", json!({"query": "from:XDevelopers"})).await;
    assert_eq!(limited["_meta"]["squaremcp/error"]["kind"], "rate_limited", "{limited}");
    let wait = limited["_meta"]["squaremcp/error"]["retry_after"].as_u64();
    assert!(wait.is_some_and(|w| (55..=60).contains(&w)), "{limited}");

    let audit = squaremcp_tests::cli_json_settled(data.path(), &["audit", "tail", "--customer", &tenant.id, "--limit", "10"], &[]);
    let entries = audit.as_array().unwrap();
    let post = entries.iter().find(|e| e["tool"] == "twitter_create_tweet" && e["outcome"] == "ok").expect("the post is logged");
    assert_eq!(post["arguments"], json!({"text": "[redacted]", "media_ids": [media_id]}), "ids kept, text redacted");
    assert!(!audit.to_string().contains("secret launch text") && !audit.to_string().contains(TOKEN));

    // X bills per request: each call's record counts the requests it sent, as the mock saw them.
    let requests_of = |tool: &str, outcome: &str| {
        entries.iter().find(|e| e["tool"] == tool && e["outcome"] == outcome).map(|e| e["upstream_requests"].clone())
    };
    assert_eq!(upload_requests, 6, "initialize, one append, finalize and three status checks");
    assert_eq!(requests_of("twitter_upload_video", "ok"), Some(json!(upload_requests)));
    assert_eq!(requests_of("twitter_create_tweet", "ok"), Some(json!(1)));
    assert_eq!(requests_of("twitter_create_tweet", "invalid_input"), Some(json!(0)), "refused before any request");
    assert_eq!(requests_of("twitter_search_tweets", "rate_limited"), Some(json!(1)), "a refused request is billed too");
    let usage = squaremcp_tests::cli_json_settled(data.path(), &["usage", "show", "--customer", &tenant.id], &[]);
    assert_eq!(usage["upstream_requests"], json!(mock.request_count()), "{usage}");
    assert_eq!(usage["upstream_requests_by_tool"]["twitter_upload_video"], json!(upload_requests), "{usage}");
}
