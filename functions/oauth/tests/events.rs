//! Every sample event in `events/oauth/` goes through the Lambda adapter and the `oauth`
//! router in-process, exactly as `lambda_http::run` would handle it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use squaremcp_runtime::lambda;

fn setup(data_dir: &Path) -> (axum::Router, Arc<squaremcp_core::Gateway>) {
    let (gateway, state) = lambda::sample_state(data_dir).unwrap();
    (squaremcp_http::oauth_router(state), gateway)
}

fn body(response: &Value) -> Value {
    serde_json::from_str(response["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

fn header<'a>(response: &'a Value, name: &str) -> &'a str {
    response["headers"][name].as_str().unwrap_or("")
}

#[tokio::test]
async fn every_sample_event_gets_the_expected_response() {
    let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/oauth");
    let data_dir = std::env::temp_dir().join(format!("squaremcp-oauth-events-{}", std::process::id()));
    let (router, gateway) = setup(&data_dir);
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&events).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let event = std::fs::read_to_string(&path).unwrap();
        let response = lambda::invoke(router.clone(), &event).await.unwrap();
        let status = response["statusCode"].as_u64().unwrap();
        match name.as_str() {
            "authorization-server-metadata.json" => {
                assert_eq!(status, 200, "{name}: {response}");
                let metadata = body(&response);
                assert_eq!(metadata["issuer"], "https://mcp.example.com");
                assert_eq!(metadata["code_challenge_methods_supported"], serde_json::json!(["S256"]));
                assert_eq!(metadata["token_endpoint"], "https://mcp.example.com/oauth/token");
            }
            "protected-resource-metadata.json" => {
                assert_eq!(status, 200, "{name}: {response}");
                assert_eq!(body(&response)["resource"], "https://mcp.example.com/mcp");
                assert_eq!(body(&response)["authorization_servers"][0], "https://mcp.example.com");
            }
            "register.json" => {
                assert_eq!(status, 201, "{name}: {response}");
                let client = body(&response);
                assert!(client["client_id"].as_str().unwrap().starts_with("mcp_"));
                assert!(client["client_secret"].is_string());
                assert_eq!(client["client_secret_expires_at"], 0);
                assert_eq!(header(&response, "cache-control"), "no-store");
                // The rate limit counted the caller's address from API Gateway's sourceIp.
                let hour = gateway.now().unix() / 3600;
                let counted = gateway.store().counter(&format!("ratelimit:register:ip:203.0.113.7:{hour}")).await.unwrap();
                assert_eq!(counted, 1);
            }
            "register-preflight.json" => {
                assert_eq!(status, 204, "{name}: {response}");
                assert_eq!(header(&response, "access-control-allow-origin"), "https://claude.ai");
                assert!(header(&response, "access-control-allow-headers").contains("Content-Type"));
            }
            "authorize-unknown-client.json" => {
                assert_eq!(status, 400, "{name}: {response}");
                assert!(response["headers"]["location"].is_null(), "an unknown client is never redirected to");
                assert_eq!(header(&response, "x-frame-options"), "DENY");
                assert!(response["body"].as_str().unwrap().contains("Unknown application"));
            }
            "token-unsupported-grant.json" => {
                assert_eq!(status, 400, "{name}: {response}");
                assert_eq!(body(&response)["error"], "unsupported_grant_type");
                assert_eq!(header(&response, "cache-control"), "no-store");
            }
            other => panic!("events/oauth/{other} has no expectation here: add one"),
        }
        checked.push(name);
    }
    let _ = std::fs::remove_dir_all(&data_dir);
    assert_eq!(checked.len(), 6, "{checked:?}");
}
