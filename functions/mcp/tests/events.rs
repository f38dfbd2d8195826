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
