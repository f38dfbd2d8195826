//! Snapchat Public Profile Stories end to end: the real `squaremcp serve` with the operator's
//! declared access (`SQUAREMCP_PARTNER_ACCESS=snapchat_create_snap`) against the Snapchat mock.
//! The gateway fetches the customer's media URL, encrypts it, uploads it in parts and posts the
//! Story; the mock decrypts the upload with the key and IV the gateway declared and must get the
//! served media back. The call is metered; a refusal from Snap reaches the client as
//! `permission_missing` with what Snap requires.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use squaremcp_platform_mocks::snapchat::{PROFILE_ID, Snapchat, USER_ID};
use squaremcp_platform_mocks::{Fault, Mock, PlatformMock, RecordedRequest, Reply};
use squaremcp_tests::{Server, TempDir, cli_json, create_tenant};

const SNAP_TOKEN: &str = "eyJe2e-snapchat-story-token_0123456789abcdefghijklmnopq";
/// The photo the media server serves (ASCII, so that the mock's text reply carries it as is).
const PHOTO: &str = "JFIF-e2e-story-photo-9:16-0123456789abcdefghijklmnopqrstuvwxyz";

/// A media server: any path answers the photo.
struct MediaServer;

impl PlatformMock for MediaServer {
    fn answer(&self, _request: &RecordedRequest) -> Reply {
        Reply::raw(200, "image/jpeg", PHOTO)
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
async fn an_allow_listed_operator_posts_a_story_to_the_public_profile() {
    let snapchat = Mock::start(Snapchat::accepting(&[SNAP_TOKEN])).await;
    let media = Mock::start(MediaServer).await;
    let data = TempDir::new("snapchat_story");
    let tenant = create_tenant(data.path(), "ada@example.com");
    let document = json!({"access_token": SNAP_TOKEN, "refresh_token": "r-e2e", "expires_at": 4_102_444_800_i64,
        "scopes": ["snapchat-marketing-api", "snapchat-profile-api"], "account": {"id": USER_ID, "name": "Ada"}});
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
        &document.to_string(),
    );
    let server = Server::start(
        data.path(),
        &[
            ("SQUAREMCP_SNAPCHAT_BASE_URL", snapchat.base_url()),
            ("SQUAREMCP_ALLOW_PRIVATE_HOSTS", "1"),
            ("SQUAREMCP_PARTNER_ACCESS", "snapchat_create_snap"),
        ],
    );
    let key = tenant.key.as_str();

    let hints = server.tool_hints(key, "snapchat_create_snap").await;
    assert_eq!(hints.len(), 1);
    assert!(!hints[0].1, "create_snap writes: {hints:?}");

    let counted = calls_counted(data.path(), &tenant.id);
    let media_url = format!("{}/stories/engine.jpg", media.base_url());
    let posted = server
        .call_tool_ok(key, "snapchat_create_snap", json!({"media_url": media_url}))
        .await;
    assert_eq!(posted["profile_id"], PROFILE_ID, "{posted}");
    assert_eq!(posted["parts"], 1, "{posted}");

    let stories = snapchat.platform().stories();
    assert_eq!(stories.len(), 1);
    assert_eq!(
        stories[0].media,
        PHOTO.as_bytes(),
        "Snap decrypts the served photo with the declared key and IV"
    );
    assert_eq!(
        (stories[0].media_type.as_str(), posted["media_id"].as_str()),
        ("IMAGE", Some(stories[0].media_id.as_str()))
    );
    let paths: Vec<String> = snapchat
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        paths.first().map(String::as_str),
        Some("GET /v1/public_profiles/my_profile"),
        "{paths:?}"
    );
    assert_eq!(
        paths.last().cloned(),
        Some(format!("POST /v1/public_profiles/{PROFILE_ID}/stories")),
        "{paths:?}"
    );
    assert_eq!(
        calls_counted(data.path(), &tenant.id),
        counted + 1,
        "a posted story is metered"
    );

    // An app Snap has not allow-listed is refused at the first call: said plainly, nothing posted.
    snapchat.fail_next(Fault::Forbidden);
    let refused = server
        .call_tool(key, "snapchat_create_snap", json!({"media_url": media_url}))
        .await;
    assert_eq!(refused["isError"], true);
    assert_eq!(
        refused["_meta"]["squaremcp/error"]["kind"], "permission_missing",
        "{refused}"
    );
    let text = refused["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("allow-listed") && text.contains("snapchat-profile-api"),
        "{refused}"
    );
    assert!(!text.contains(SNAP_TOKEN));
    assert_eq!(
        snapchat.platform().stories().len(),
        1,
        "nothing more posted"
    );
}
