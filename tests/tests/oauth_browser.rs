//! A real client, end to end: the TypeScript SDK's OAuth client (discovery, dynamic
//! registration, PKCE) against `squaremcp serve`, with headless Chromium signing in and
//! clicking Allow, then tools/list, a refresh, and tools/list again. Screenshots of the login
//! and consent pages land in `target/artifacts/oauth/` (not committed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use squaremcp_tests::{Server, TempDir, cli_json, create_customer_with_password, node_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_client_connects_through_the_browser_login_and_consent() {
    assert!(Path::new("/usr/bin/chromium").exists(), "Debian chromium is missing: run scripts/test, which installs it");
    let data = TempDir::new("oauth-browser");
    let grace = create_customer_with_password(data.path(), "grace@example.com", "analytical engine");
    // A customer sees the tools of the platforms they connected.
    let document = serde_json::json!({"bot_token": "123456789:AAHgrace_token_abcdefghijklmnopqrstu"}).to_string();
    cli_json(data.path(), &["credentials", "set", "--customer", &grace, "--platform", "telegram"], &document);
    let server = Server::start(data.path(), &[]);
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/artifacts/oauth");
    let _ = std::fs::remove_dir_all(&artifacts);

    let out = Command::new("node")
        .current_dir(node_dir())
        .arg("oauth-client.mjs")
        .args([&server.mcp_url(), "grace@example.com", "analytical engine"])
        .arg(&artifacts)
        .output()
        .unwrap();
    assert!(out.status.success(), "oauth-client.mjs failed:\n{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));

    // What the SDK sent: PKCE S256, the resource, a state; registered as a public client.
    let authorization = &report["authorization"];
    assert_eq!(authorization["code_challenge_method"], "S256");
    assert_eq!(authorization["resource"], server.mcp_url());
    assert_eq!(authorization["response_type"], "code");
    assert!(authorization["state"].is_string());
    assert_eq!(report["registeredClient"]["token_endpoint_auth_method"], "none");
    assert!(report["registeredClient"]["client_secret"].is_null());

    // The browser was sent to the login page first, which carries the anti-framing headers.
    let login = &report["login"];
    assert!(login["url"].as_str().unwrap().starts_with(&format!("{}/login?return_to=%2Foauth%2Fauthorize", server.base)), "{login}");
    assert_eq!(login["status"], 200);
    assert_eq!(login["title"], "Sign in · SquareMCP");
    assert_eq!(login["headers"]["x-frame-options"], "DENY");
    assert_eq!(login["headers"]["referrer-policy"], "no-referrer");
    assert!(login["headers"]["content-security-policy"].as_str().unwrap().contains("frame-ancestors 'none'"));
    // The consent page names the client, where it returns to, and the account.
    let consent = report["consent"]["text"].as_str().unwrap();
    assert!(consent.contains("Allow SquareMCP end-to-end test to use your SquareMCP account?"), "{consent}");
    assert!(consent.contains("127.0.0.1:") && consent.contains("grace@example.com"), "{consent}");
    assert_eq!(report["stateEchoed"], true);

    // Tokens, tools, refresh, tools.
    assert_eq!(report["tokens"]["token_type"], "Bearer");
    assert_eq!(report["tokens"]["scope"], "mcp");
    assert_eq!(report["tokens"]["refresh"], true);
    let before: Vec<&str> = report["toolsBefore"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(before.contains(&"telegram_send_message"), "{before:?}");
    assert_eq!(report["refresh"]["outcome"], "AUTHORIZED");
    assert_eq!(report["refresh"]["newAccessToken"], true);
    assert_eq!(report["refresh"]["rotatedRefreshToken"], true);
    assert_eq!(report["toolsAfter"], report["toolsBefore"]);

    for name in ["login", "login-mobile", "consent", "consent-mobile"] {
        let file = artifacts.join(format!("{name}.png"));
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        assert!(size > 5_000, "{} is missing or empty", file.display());
    }
}

/// A client identified by a Client ID Metadata Document (no registration): the document is
/// served on loopback by the Node script (allowed here by `SQUAREMCP_ALLOW_PRIVATE_HOSTS=1`),
/// Chromium signs in and allows, and the consent page names the document's host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metadata_document_client_connects_through_the_browser() {
    assert!(Path::new("/usr/bin/chromium").exists(), "Debian chromium is missing: run scripts/test, which installs it");
    let data = TempDir::new("oauth-browser-cimd");
    let grace = create_customer_with_password(data.path(), "grace@example.com", "analytical engine");
    let document = serde_json::json!({"bot_token": "123456789:AAHgrace_token_abcdefghijklmnopqrstu"}).to_string();
    cli_json(data.path(), &["credentials", "set", "--customer", &grace, "--platform", "telegram"], &document);
    let server = Server::start(data.path(), &[("SQUAREMCP_ALLOW_PRIVATE_HOSTS", "1")]);
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/artifacts/oauth-cimd");
    let _ = std::fs::remove_dir_all(&artifacts);

    let out = Command::new("node")
        .current_dir(node_dir())
        .arg("cimd-client.mjs")
        .args([&server.base, &server.mcp_url(), "grace@example.com", "analytical engine"])
        .arg(&artifacts)
        .output()
        .unwrap();
    assert!(out.status.success(), "cimd-client.mjs failed:\n{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));

    assert_eq!(report["metadata"]["client_id_metadata_document_supported"], true);
    assert_eq!(report["metadata"]["authorization_response_iss_parameter_supported"], true);
    // The consent page asks about the document's name, with the document's host in the question.
    let client_id = report["clientId"].as_str().unwrap();
    let host = client_id.trim_start_matches("http://").split('/').next().unwrap();
    assert_eq!(report["consent"]["strong"], host, "{report}");
    let heading = report["consent"]["heading"].as_str().unwrap();
    assert_eq!(heading, format!("Allow CIMD end-to-end test (from {host}) to use your SquareMCP account?"));
    assert!(report["consent"]["text"].as_str().unwrap().contains(&format!("Published by{host}")), "{report}");
    // The authorization response carries the state and the issuer (RFC 9207).
    assert_eq!(report["callback"]["stateEchoed"], true);
    assert_eq!(report["callback"]["iss"], server.base.as_str());
    assert_eq!(report["callback"]["code"], true);
    assert_eq!(report["tokens"]["token_type"], "Bearer");
    assert_eq!(report["tokens"]["refresh"], true);
    assert_eq!(report["toolsStatus"], 200);
    assert!(report["tools"].as_array().unwrap().iter().any(|t| t == "telegram_send_message"), "{report}");
    // One fetch served the authorization, the consent and the token exchange (max-age=300).
    assert_eq!(report["documentFetches"], 1);
    let screenshot = artifacts.join("consent-cimd.png");
    assert!(std::fs::metadata(&screenshot).map(|m| m.len()).unwrap_or(0) > 5_000, "{} is missing or empty", screenshot.display());
}
