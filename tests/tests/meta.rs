//! Facebook Pages and Instagram end to end: the real `squaremcp serve` and CLI against the shared
//! Meta mock (one stand-in for graph.facebook.com, graph-video.facebook.com and
//! graph.instagram.com). Credentials are stored with the CLI; posts, a video whose processing
//! takes several checks, and an Instagram container that is polled and published go through
//! JSON-RPC at `/mcp`; failures come back with their normalised kind in `_meta`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use squaremcp_platform_mocks::meta::{BROKEN_MEDIA, IG_USER_ID, Meta, PAGE_ID};
use squaremcp_platform_mocks::{Fault, Mock};
use squaremcp_tests::{Server, TempDir, cli_json, create_tenant};

const PAGE_TOKEN: &str = "EAAGe2e-page-token_0123456789abcdefghijklmnopqrstuvwxyz";
const IG_TOKEN: &str = "IGAAe2e-instagram-token_0123456789abcdefghijklmnopqrstu";
const EXPIRED: &str = "IGAAe2e-expired-token_0123456789abcdefghijklmnopqrstuvw";

fn kind(result: &Value) -> &str {
    result["_meta"]["squaremcp/error"]["kind"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facebook_and_instagram_publish_through_the_gateway_and_fail_with_normalised_kinds() {
    let mock = Mock::start(Meta::accepting(&[PAGE_TOKEN, IG_TOKEN]).with_expired(&[EXPIRED])).await;
    let data = TempDir::new("meta");
    let alice = create_tenant(data.path(), "alice@example.com");
    let bob = create_tenant(data.path(), "bob@example.com");
    let set = |customer: &str, platform: &str, document: Value| {
        cli_json(data.path(), &["credentials", "set", "--customer", customer, "--platform", platform], &document.to_string());
    };
    set(&alice.id, "facebook", json!({"page_id": PAGE_ID, "access_token": PAGE_TOKEN}));
    set(&alice.id, "instagram", json!({"login": "instagram", "ig_user_id": IG_USER_ID, "access_token": IG_TOKEN}));
    set(&bob.id, "instagram", json!({"login": "facebook", "ig_user_id": IG_USER_ID, "access_token": EXPIRED}));
    let server = Server::start(
        data.path(),
        &[
            ("SQUAREMCP_FACEBOOK_BASE_URL", mock.base_url()),
            ("SQUAREMCP_INSTAGRAM_BASE_URL", mock.base_url()),
            ("SQUAREMCP_PUBLISH_WAIT_SECONDS", "5"),
            ("SQUAREMCP_PUBLISH_POLL_MILLISECONDS", "20"),
        ],
    );

    // Honest annotations: reads are read-only and idempotent, publishing is neither.
    let hints = server.tool_hints(&alice.key, "facebook_").await;
    let names: Vec<(&str, bool, bool)> = hints.iter().map(|(n, read, _, idem)| (n.as_str(), *read, *idem)).collect();
    assert_eq!(names, [
        ("facebook_get_page", true, true),
        ("facebook_get_posts", true, true),
        ("facebook_create_post", false, false),
        ("facebook_create_photo_post", false, false),
        ("facebook_create_video_post", false, false),
        ("facebook_get_video", true, true),
    ]);
    let hints = server.tool_hints(&alice.key, "instagram_").await;
    assert_eq!(hints.iter().filter(|(_, read, _, _)| *read).count(), 2, "{hints:?}");
    assert_eq!(hints.len(), 5, "{hints:?}");

    // Facebook: a post, then a video whose processing takes three checks.
    let page = server.call_tool_ok(&alice.key, "facebook_get_page", json!({})).await;
    assert_eq!(page["id"], PAGE_ID);
    let post = server.call_tool_ok(&alice.key, "facebook_create_post", json!({"message": "Fresh rolls at 7"})).await;
    assert!(post["id"].as_str().is_some_and(|id| id.starts_with(&format!("{PAGE_ID}_"))), "{post}");
    mock.platform().set_processing_polls(3);
    let video = server.call_tool_ok(&alice.key, "facebook_create_video_post", json!({"media_url": "https://cdn.example/oven.mp4", "title": "Oven"})).await;
    assert_eq!((video["done"].as_bool(), video["status"].as_str()), (Some(true), Some("ready")), "{video}");
    let video_id = video["video_id"].as_str().unwrap();
    let checks = mock.requests().iter().filter(|r| r.path.ends_with(&format!("/{video_id}"))).count();
    assert_eq!(checks, 4, "three processing answers, then ready");
    let posts = server.call_tool_ok(&alice.key, "facebook_get_posts", json!({"limit": 5})).await;
    assert_eq!(posts["posts"].as_array().map(Vec::len), Some(2), "{posts}");

    // Instagram: a container polled over several checks, then published.
    mock.platform().set_processing_polls(2);
    let published = server.call_tool_ok(&alice.key, "instagram_create_post", json!({"media_url": "https://cdn.example/bread.jpg", "caption": "Bread"})).await;
    assert_eq!(published["published"], true, "{published}");
    let media = server.call_tool_ok(&alice.key, "instagram_get_media", json!({})).await;
    assert_eq!(media["media"][0]["id"], published["media_id"]);

    // A container that fails processing is reported and never published.
    mock.platform().set_processing_polls(1);
    let failed = server.call_tool(&alice.key, "instagram_create_reel", json!({"media_url": format!("https://cdn.example/{BROKEN_MEDIA}.mp4")})).await;
    assert_eq!((failed["isError"].as_bool(), kind(&failed)), (Some(true), "upstream_error"), "{failed}");
    assert_eq!(mock.platform().published_media().len(), 1);

    // An expired token (190/463), a rate limit (code 4) and the tokens kept out of every URL.
    let expired = server.call_tool(&bob.key, "instagram_get_profile", json!({})).await;
    assert_eq!(kind(&expired), "auth_expired", "{expired}");
    mock.fail_next(Fault::RateLimited { retry_after: 3.0 });
    let limited = server.call_tool(&alice.key, "instagram_get_profile", json!({})).await;
    assert_eq!(limited["_meta"]["squaremcp/error"], json!({"kind": "rate_limited", "retry_after": 3}), "{limited}");
    for request in mock.requests() {
        let url = format!("{}?{}", request.path, request.query.unwrap_or_default());
        assert!(!url.contains(PAGE_TOKEN) && !url.contains(IG_TOKEN) && !url.contains(EXPIRED), "{url}");
    }
}
