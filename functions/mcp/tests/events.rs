//! Every sample event in `events/mcp/` goes through the Lambda adapter and the `mcp` router
//! in-process, exactly as `lambda_http::run` would handle it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use serde_json::Value;
use squaremcp_runtime::lambda;

fn router(data_dir: &Path) -> axum::Router {
    squaremcp_http::mcp_router(lambda::sample_state(data_dir).unwrap().1)
}

fn body(response: &Value) -> Value {
    serde_json::from_str(response["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

#[tokio::test]
async fn every_sample_event_gets_the_expected_response() {
    let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/mcp");
    let data_dir = std::env::temp_dir().join(format!("squaremcp-events-{}", std::process::id()));
    let router = router(&data_dir);
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&events).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let event = std::fs::read_to_string(&path).unwrap();
        let response = lambda::invoke(router.clone(), &event).await.unwrap();
        let status = response["statusCode"].as_u64().unwrap();
        match name.as_str() {
            "initialize.json" => {
                assert_eq!(status, 200, "{name}: {response}");
                // The sample public URL is https: browsers are told to stay on it.
                assert_eq!(response["headers"]["strict-transport-security"], "max-age=31536000", "{name}: {response}");
                assert_eq!(body(&response)["result"]["protocolVersion"], "2025-11-25");
                assert_eq!(body(&response)["result"]["serverInfo"]["name"], "squaremcp");
            }
            "tools-list.json" => {
                assert_eq!(status, 200, "{name}: {response}");
                let tools = body(&response)["result"]["tools"].as_array().unwrap().len();
                assert!(tools >= 5, "{name}: {tools} tools");
            }
            "tools-call.json" => {
                assert_eq!(status, 200, "{name}: {response}");
                let result = &body(&response)["result"];
                assert_eq!(result["isError"], true, "the admin key has no credentials: {result}");
            }
            "notification.json" => {
                assert_eq!(status, 202, "{name}: {response}");
                assert!(response["body"].as_str().is_none_or(str::is_empty));
            }
            "unauthenticated.json" => {
                assert_eq!(status, 401, "{name}: {response}");
                let challenge = response["headers"]["www-authenticate"].as_str().unwrap();
                assert_eq!(
                    challenge,
                    r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="mcp""#
                );
            }
            "get.json" => assert_eq!(status, 405, "{name}: {response}"),
            "openapi.json" => {
                assert_eq!(status, 200, "{name}: {response}");
                let document = body(&response);
                assert_eq!(document["openapi"], "3.1.0");
                assert!(document["paths"]["/tools/telegram_get_me"]["post"].is_object(), "{document}");
            }
            "rest-tool.json" => {
                // The admin key has no platform credentials of its own.
                assert_eq!(status, 403, "{name}: {response}");
                assert_eq!(body(&response)["error"]["kind"], "forbidden");
            }
            other => panic!("events/mcp/{other} has no expectation here: add one"),
        }
        checked.push(name);
    }
    let _ = std::fs::remove_dir_all(&data_dir);
    assert_eq!(checked.len(), 8, "{checked:?}");
}

/// An MCP 2026-07-28 request (no `initialize`, headers mirrored from the body) through the
/// Lambda adapter, built from the `tools/list` sample event; then the same with a lying header.
#[tokio::test]
async fn a_2026_07_28_request_is_served_and_a_header_mismatch_refused_through_the_adapter() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/mcp/tools-list.json");
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(sample).unwrap()).unwrap();
    let meta = serde_json::json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    event["headers"]["mcp-protocol-version"] = "2026-07-28".into();
    event["headers"]["mcp-method"] = "server/discover".into();
    event["body"] = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta}}).to_string().into();
    let data_dir = std::env::temp_dir().join(format!("squaremcp-events-2026-{}", std::process::id()));
    let router = router(&data_dir);

    let response = lambda::invoke(router.clone(), &event.to_string()).await.unwrap();
    assert_eq!(response["statusCode"], 200, "{response}");
    let result = &body(&response)["result"];
    assert_eq!(result["resultType"], "complete", "{response}");
    assert_eq!(result["supportedVersions"][0], "2026-07-28", "{response}");

    event["headers"]["mcp-method"] = "tools/list".into();
    let response = lambda::invoke(router, &event.to_string()).await.unwrap();
    assert_eq!(response["statusCode"], 400, "{response}");
    assert_eq!(body(&response)["error"]["code"], -32020, "{response}");
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// LinkedIn's publishing tools through the Lambda adapter, against the LinkedIn mock: a post, a
/// video uploaded in parts to the URLs the mock returns and waited for, and a partner-only tool
/// answering with the restriction without calling LinkedIn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linkedin_tools_run_through_the_lambda_adapter() {
    use squaremcp_core::{AccountName, Platform};
    use squaremcp_platform_mocks::Mock;
    use squaremcp_platform_mocks::linkedin::{Linkedin, PERSON_ID};
    use squaremcp_runtime::{Backends, Config, app_state, gateway};

    const TOKEN: &str = "AQXlambda-linkedin-token_0123456789abcdefghijklmnopqrstuvwxyz";
    let mock = Mock::start(Linkedin::accepting(&[TOKEN])).await;
    mock.platform().set_part_size(16);
    mock.platform().set_processing_polls(1);
    let data_dir = std::env::temp_dir().join(format!("squaremcp-events-linkedin-{}", std::process::id()));
    let data = data_dir.display().to_string();
    let base_url = mock.base_url().to_owned();
    let config = Config::from_lookup(|name| match name {
        "SQUAREMCP_DATA_DIR" => Some(data.clone()),
        "SQUAREMCP_PUBLIC_URL" => Some("https://mcp.example.com".to_owned()),
        "SQUAREMCP_JWT_SECRET" => Some("sample-jwt-secret-of-at-least-32-bytes!!".to_owned()),
        "SQUAREMCP_LINKEDIN_BASE_URL" => Some(base_url.clone()),
        "SQUAREMCP_PUBLISH_POLL_MILLISECONDS" => Some("20".to_owned()),
        _ => None,
    })
    .unwrap();
    let gateway = gateway(&config, Backends::embedded(&config).unwrap());
    let customer = gateway.create_customer("ada@example.com", "pro", None).await.unwrap();
    let (_, key) = gateway.create_api_key(&customer.id, "lambda").await.unwrap();
    let document = serde_json::json!({"access_token": TOKEN, "account": {"id": PERSON_ID, "name": "Ada"}});
    gateway.set_credential(&customer.id, Platform::Linkedin, AccountName::default_account(), &document).await.unwrap();
    let router = squaremcp_http::mcp_router(app_state(&config, gateway).unwrap());

    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/mcp/tools-call.json");
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(sample).unwrap()).unwrap();
    event["headers"]["x-api-key"] = Value::from(key.expose().to_owned());
    let mut call = |name: &str, arguments: Value| {
        let rpc = serde_json::json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": name, "arguments": arguments}});
        event["body"] = Value::from(rpc.to_string());
        let event = event.to_string();
        let router = router.clone();
        async move {
            let response = lambda::invoke(router, &event).await.unwrap();
            assert_eq!(response["statusCode"], 200, "{response}");
            body(&response)["result"].clone()
        }
    };

    let post = call("linkedin_create_post", serde_json::json!({"text": "From Lambda"})).await;
    assert_eq!(post["isError"], false, "{post}");
    assert!(post["structuredContent"]["post_id"].as_str().unwrap().starts_with("urn:li:share:"), "{post}");

    let video = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJw==";
    let uploaded = call("linkedin_upload_video", serde_json::json!({"media_data": video, "media_type": "video/mp4"})).await;
    assert_eq!(uploaded["isError"], false, "{uploaded}");
    assert_eq!(uploaded["structuredContent"]["status"], "AVAILABLE", "{uploaded}");
    assert_eq!(uploaded["structuredContent"]["parts"], 3, "{uploaded}");
    assert_eq!(mock.platform().uploaded_bytes(), 40);

    let before = mock.request_count();
    let restricted = call("linkedin_send_message", serde_json::json!({"recipient": "urn:li:person:aBcD123", "text": "Hi"})).await;
    assert_eq!(restricted["isError"], true, "{restricted}");
    assert_eq!(restricted["_meta"]["squaremcp/error"]["kind"], "not_supported", "{restricted}");
    assert_eq!(mock.request_count(), before, "no call to LinkedIn");
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// TikTok's and Snapchat's tools reach a Lambda client through the adapter, in table order and
/// with honest annotations (only the posting tools write).
#[tokio::test]
async fn the_tiktok_and_snapchat_tools_are_listed_through_the_adapter() {
    let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/mcp");
    let data_dir = std::env::temp_dir().join(format!("squaremcp-events-tiktok-snapchat-{}", std::process::id()));
    let event = std::fs::read_to_string(events.join("tools-list.json")).unwrap();
    let response = lambda::invoke(router(&data_dir), &event).await.unwrap();
    let _ = std::fs::remove_dir_all(&data_dir);
    assert_eq!(response["statusCode"], 200, "{response}");
    let listed = body(&response);
    let tools: Vec<(&str, bool)> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str().map(|n| (n, t["annotations"]["readOnlyHint"] == true)))
        .filter(|(name, _)| name.starts_with("tiktok_") || name.starts_with("snapchat_"))
        .collect();
    assert_eq!(
        tools,
        [
            ("tiktok_get_profile", true),
            ("tiktok_get_creator_info", true),
            ("tiktok_create_video", false),
            ("tiktok_get_video_status", true),
            ("snapchat_get_me", true),
            ("snapchat_get_ad_accounts", true),
            ("snapchat_create_snap", false),
        ]
    );
}

/// X's chunked video upload and post through the Lambda adapter: the upload's status checks fit
/// in one invocation, and a check with `media_id` alone resumes a wait that ran out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_upload_and_post_run_through_the_lambda_adapter() {
    use squaremcp_core::{AccountName, Platform};
    use squaremcp_platform_mocks::Mock;
    use squaremcp_platform_mocks::x::X;
    use squaremcp_runtime::{Backends, Config, app_state, gateway};

    const TOKEN: &str = "x-lambda-access-token-0123456789abcdefghij";
    let mock = Mock::start(X::accepting(&[TOKEN])).await;
    mock.platform().set_processing_polls(1);
    let data_dir = std::env::temp_dir().join(format!("squaremcp-events-x-{}", std::process::id()));
    let data = data_dir.display().to_string();
    let base_url = mock.base_url().to_owned();
    let config = Config::from_lookup(|name| match name {
        "SQUAREMCP_DATA_DIR" => Some(data.clone()),
        "SQUAREMCP_PUBLIC_URL" => Some("https://mcp.example.com".to_owned()),
        "SQUAREMCP_JWT_SECRET" => Some("sample-jwt-secret-of-at-least-32-bytes!!".to_owned()),
        "SQUAREMCP_TWITTER_BASE_URL" => Some(base_url.clone()),
        "SQUAREMCP_PUBLISH_POLL_MILLISECONDS" => Some("20".to_owned()),
        _ => None,
    })
    .unwrap();
    let gateway = gateway(&config, Backends::embedded(&config).unwrap());
    let customer = gateway.create_customer("ada@example.com", "pro", None).await.unwrap();
    let (_, key) = gateway.create_api_key(&customer.id, "lambda").await.unwrap();
    let document = serde_json::json!({"access_token": TOKEN, "refresh_token": "r", "expires_at": 4_102_444_800_i64});
    gateway.set_credential(&customer.id, Platform::Twitter, AccountName::default_account(), &document).await.unwrap();
    let router = squaremcp_http::mcp_router(app_state(&config, gateway).unwrap());

    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/mcp/tools-call.json");
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(sample).unwrap()).unwrap();
    event["headers"]["x-api-key"] = Value::from(key.expose().to_owned());
    let mut call = |name: &str, arguments: Value| {
        let rpc = serde_json::json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": name, "arguments": arguments}});
        event["body"] = Value::from(rpc.to_string());
        let event = event.to_string();
        let router = router.clone();
        async move {
            let response = lambda::invoke(router, &event).await.unwrap();
            assert_eq!(response["statusCode"], 200, "{response}");
            body(&response)["result"].clone()
        }
    };

    let video = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJw==";
    let uploaded = call("twitter_upload_video", serde_json::json!({"media_data": video, "media_type": "video/mp4"})).await;
    assert_eq!(uploaded["isError"], false, "{uploaded}");
    assert_eq!(uploaded["structuredContent"]["ready"], true, "{uploaded}");
    let media_id = uploaded["structuredContent"]["media_id"].as_str().unwrap().to_owned();
    assert_eq!(mock.platform().uploads()[&media_id].segments, vec![(0, 40)]);

    let checked = call("twitter_upload_video", serde_json::json!({"media_id": media_id})).await;
    assert_eq!(checked["structuredContent"]["ready"], true, "{checked}");
    let post = call("twitter_create_tweet", serde_json::json!({"text": "From Lambda", "media_ids": [media_id]})).await;
    assert_eq!(post["isError"], false, "{post}");
    assert!(post["structuredContent"]["data"]["id"].is_string(), "{post}");
    let _ = std::fs::remove_dir_all(&data_dir);
}
