//! TikTok and Snapchat end to end: the real `squaremcp serve` and CLI against the shared TikTok
//! and Snapchat mocks. Connections are stored with the CLI; TikTok's profile is read, a video is
//! fetched from a media URL and uploaded in TikTok's chunks with `Content-Range`, its publish
//! waited for, and a privacy level the creator cannot use is refused before any upload;
//! Snapchat's ad accounts are gathered across organizations, and `snapchat_create_snap` answers
//! its restriction without calling Snapchat and without being metered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use squaremcp_platform_mocks::snapchat::{ORGANIZATIONS, Snapchat, USER_ID};
use squaremcp_platform_mocks::tiktok::{OPEN_ID, Tiktok};
use squaremcp_platform_mocks::{Fault, Mock, PlatformMock, RecordedRequest, Reply};
use squaremcp_tests::{Server, TempDir, cli_json, create_tenant};

const TIKTOK_TOKEN: &str = "act.e2e-tiktok-token_0123456789abcdefghijklmnopqrstuv";
const SNAP_TOKEN: &str = "eyJe2e-snapchat-token_0123456789abcdefghijklmnopqrstuv";
/// The video the media server serves (ASCII, so that the mock's text reply carries it as is).
const VIDEO: &str = "....ftypmp42....moov-e2e-video-bytes-0123456789";

/// A media server: any path answers the video with its length.
struct MediaServer;

impl PlatformMock for MediaServer {
    fn answer(&self, _request: &RecordedRequest) -> Reply {
        Reply::raw(200, "video/mp4", VIDEO)
    }

    fn fault(&self, _fault: &Fault, _request: &RecordedRequest) -> Reply {
        Reply::raw(500, "text/plain", "down")
    }
}

fn calls_counted(data: &std::path::Path, customer: &str) -> u64 {
    squaremcp_tests::cli_json_settled(data, &["usage", "show", "--customer", customer], &[])["calls_counted"]
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creator_posts_to_tiktok_and_a_marketer_reads_snapchat_ad_accounts() {
    let tiktok = Mock::start(Tiktok::accepting(&[TIKTOK_TOKEN])).await;
    tiktok.platform().set_processing_polls(2);
    let snapchat = Mock::start(Snapchat::accepting(&[SNAP_TOKEN])).await;
    let media = Mock::start(MediaServer).await;
    let data = TempDir::new("tiktok_snapchat");
    let tenant = create_tenant(data.path(), "ada@example.com");
    let document = |token: &str, id: &str| json!({"access_token": token, "refresh_token": "r-e2e", "expires_at": 4_102_444_800_i64, "account": {"id": id, "name": "Ada"}});
    cli_json(
        data.path(),
        &[
            "credentials",
            "set",
            "--customer",
            &tenant.id,
            "--platform",
            "tiktok",
        ],
        &document(TIKTOK_TOKEN, OPEN_ID).to_string(),
    );
    cli_json(
        data.path(),
        &[
            "credentials",
            "set",
            "--customer",
            &tenant.id,
            "--platform",
            "snapchat",
        ],
        &document(SNAP_TOKEN, USER_ID).to_string(),
    );
    let server = Server::start(
        data.path(),
        &[
            ("SQUAREMCP_TIKTOK_BASE_URL", tiktok.base_url()),
            ("SQUAREMCP_SNAPCHAT_BASE_URL", snapchat.base_url()),
            ("SQUAREMCP_ALLOW_PRIVATE_HOSTS", "1"),
            ("SQUAREMCP_PUBLISH_POLL_MILLISECONDS", "20"),
        ],
    );
    let key = tenant.key.as_str();

    let hints = server.tool_hints(key, "tiktok_").await;
    let names: Vec<&str> = hints.iter().map(|(n, ..)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "tiktok_get_profile",
            "tiktok_get_creator_info",
            "tiktok_create_video",
            "tiktok_get_video_status"
        ]
    );
    assert!(
        hints[0].1 && hints[1].1 && !hints[2].1 && hints[3].1,
        "only create_video writes: {hints:?}"
    );
    let hints = server.tool_hints(key, "snapchat_").await;
    let names: Vec<&str> = hints.iter().map(|(n, ..)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "snapchat_get_me",
            "snapchat_get_ad_accounts",
            "snapchat_create_snap"
        ]
    );

    let profile = server
        .call_tool_ok(key, "tiktok_get_profile", json!({}))
        .await;
    assert_eq!(profile["user"]["open_id"], OPEN_ID);

    // The gateway fetches the media URL and uploads it as one chunk (it is under 5 MB).
    let media_url = format!("{}/clips/engine.mp4", media.base_url());
    let posted = server
        .call_tool_ok(
            key,
            "tiktok_create_video",
            json!({"privacy_level": "SELF_ONLY", "title": "Engines", "media_url": media_url}),
        )
        .await;
    assert_eq!(
        (posted["status"].as_str(), posted["done"].as_bool()),
        (Some("PUBLISH_COMPLETE"), Some(true)),
        "{posted}"
    );
    let put = tiktok
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .expect("the upload");
    let total = VIDEO.len();
    assert_eq!(
        put.header("content-range"),
        Some(format!("bytes 0-{}/{total}", total - 1).as_str())
    );
    assert_eq!(put.body.as_ref(), VIDEO.as_bytes());
    assert_eq!(put.header("authorization"), None);
    let status = server
        .call_tool_ok(
            key,
            "tiktok_get_video_status",
            json!({"publish_id": posted["publish_id"]}),
        )
        .await;
    assert_eq!(status["status"], "PUBLISH_COMPLETE");

    // A level outside the creator's options: refused with them, nothing uploaded.
    tiktok.platform().set_privacy_options(&["SELF_ONLY"]);
    tiktok.clear_requests();
    let refused = server
        .call_tool(
            key,
            "tiktok_create_video",
            json!({"privacy_level": "PUBLIC_TO_EVERYONE", "media_url": media_url}),
        )
        .await;
    assert_eq!(refused["isError"], true);
    assert_eq!(
        refused["_meta"]["squaremcp/error"]["kind"], "invalid_input",
        "{refused}"
    );
    assert!(
        refused["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("SELF_ONLY"),
        "{refused}"
    );
    assert_eq!(tiktok.requests().len(), 1, "creator info only");

    // TikTok's unaudited-app refusal reaches the client as `forbidden`, with what to do.
    tiktok.fail_next(Fault::Slow(std::time::Duration::ZERO));
    tiktok.fail_next(Fault::Reply(Reply::json(
        403,
        json!({"data": {}, "error": {"code": "unaudited_client_can_only_post_to_private_accounts", "message": "", "log_id": "x"}}),
    )));
    let refused = server
        .call_tool(
            key,
            "tiktok_create_video",
            json!({"privacy_level": "SELF_ONLY", "media_url": media_url}),
        )
        .await;
    assert_eq!(
        refused["_meta"]["squaremcp/error"]["kind"], "forbidden",
        "{refused}"
    );
    assert!(
        refused["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("private"),
        "{refused}"
    );

    let me = server.call_tool_ok(key, "snapchat_get_me", json!({})).await;
    assert_eq!(me["me"]["id"], USER_ID);
    let accounts = server
        .call_tool_ok(key, "snapchat_get_ad_accounts", json!({}))
        .await;
    assert_eq!(
        accounts["ad_accounts"].as_array().unwrap().len(),
        3,
        "{accounts}"
    );
    assert_eq!(accounts["organizations"][1]["id"], ORGANIZATIONS[1].0);

    let counted = calls_counted(data.path(), &tenant.id);
    let before = snapchat.request_count();
    let snap = server
        .call_tool(key, "snapchat_create_snap", json!({"media_url": media_url}))
        .await;
    assert_eq!(snap["isError"], true);
    assert_eq!(
        snap["_meta"]["squaremcp/error"]["kind"], "not_supported",
        "{snap}"
    );
    assert!(
        snap["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("no API to send a Snap"),
        "{snap}"
    );
    assert_eq!(snapchat.request_count(), before, "no upstream call");
    assert_eq!(
        calls_counted(data.path(), &tenant.id),
        counted,
        "not metered"
    );
}
