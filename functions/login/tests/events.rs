//! Every sample event in `events/login/` goes through the Lambda adapter and the `login`
//! router in-process, exactly as `lambda_http::run` would handle it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use serde_json::Value;
use squaremcp_runtime::lambda;

fn router(data_dir: &Path) -> axum::Router {
    squaremcp_http::login_router(lambda::sample_state(data_dir).unwrap().1)
}

fn header<'a>(response: &'a Value, name: &str) -> &'a str {
    response["headers"][name].as_str().unwrap_or("")
}

/// API Gateway v2 responses carry `Set-Cookie` in `cookies`.
fn cookies(response: &Value) -> Vec<String> {
    response["cookies"].as_array().map(|c| c.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

fn assert_page_headers(name: &str, response: &Value) {
    assert_eq!(header(response, "x-frame-options"), "DENY", "{name}");
    assert_eq!(header(response, "referrer-policy"), "no-referrer", "{name}");
    assert!(header(response, "content-security-policy").contains("frame-ancestors 'none'"), "{name}");
}

#[tokio::test]
async fn every_sample_event_gets_the_expected_response() {
    let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/login");
    let data_dir = std::env::temp_dir().join(format!("squaremcp-login-events-{}", std::process::id()));
    let router = router(&data_dir);
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&events).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let event = std::fs::read_to_string(&path).unwrap();
        let response = lambda::invoke(router.clone(), &event).await.unwrap();
        let status = response["statusCode"].as_u64().unwrap();
        match name.as_str() {
            "form.json" => {
                assert_eq!(status, 200, "{name}: {response}");
                assert_page_headers(&name, &response);
                let html = response["body"].as_str().unwrap();
                for field in [r#"name="email""#, r#"name="password""#, r#"name="return_to" value="/oauth/authorize?client_id=mcp_1""#, r#"name="csrf""#] {
                    assert!(html.contains(field), "{field} missing: {html}");
                }
                let cookies = cookies(&response);
                assert!(
                    cookies.iter().any(|c| c.starts_with("__Host-login_csrf=") && c.contains("Secure") && c.contains("HttpOnly")),
                    "{cookies:?}"
                );
            }
            "post-without-csrf.json" => {
                assert_eq!(status, 403, "{name}: {response}");
                assert_page_headers(&name, &response);
                assert!(cookies(&response).iter().all(|c| !c.starts_with("__Host-session=")), "no session without CSRF");
            }
            "logout.json" => {
                assert_eq!(status, 303, "{name}: {response}");
                assert_eq!(header(&response, "location"), "/login");
                let cookies = cookies(&response);
                assert!(cookies.iter().any(|c| c.starts_with("__Host-session=;") && c.contains("Max-Age=0")), "{cookies:?}");
            }
            other => panic!("events/login/{other} has no expectation here: add one"),
        }
        checked.push(name);
    }
    let _ = std::fs::remove_dir_all(&data_dir);
    assert_eq!(checked.len(), 3, "{checked:?}");
}
