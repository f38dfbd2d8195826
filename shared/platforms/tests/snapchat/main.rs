//! The Snapchat tools against the Snapchat mock: each tool's exact requests, the ad accounts
//! gathered across organizations, the error mapping, `create_snap` answering its restriction with
//! no upstream call, and the OAuth app's refresh through the kit's OAuth client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::{Value, json};
use squaremcp_core::connections::TokenRefresher;
use squaremcp_core::tool::{FailureKind, PlatformModule, Tool, ToolFailure, ToolOutput};
use squaremcp_core::{Platform, Secret, schema};
use squaremcp_platform_mocks::snapchat::{ORGANIZATIONS, Snapchat, USER_ID};
use squaremcp_platform_mocks::{Fault, Mock};
use squaremcp_platforms::kit::PartnerAccess;
use squaremcp_platforms::kit::oauth::{OAuthClients, OAuthSettings};
use squaremcp_platforms::{PlatformConfig, http_client, modules, snapchat};

const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.snapTESTtoken0123456789abcdef";

fn module_with(base_url: &str, access: PartnerAccess) -> Box<dyn PlatformModule> {
    let config = PlatformConfig::new(http_client())
        .with_base_url(Platform::Snapchat, base_url)
        .expect("a mock origin")
        .with_partner_access(access);
    modules(&config)
        .into_iter()
        .find(|m| m.platform() == Platform::Snapchat)
        .expect("the Snapchat module")
}

fn tool(mock: &Mock<Snapchat>, name: &str, access: PartnerAccess) -> Arc<dyn Tool> {
    module_with(mock.base_url(), access)
        .tools()
        .into_iter()
        .find(|t| t.definition().name == name)
        .expect(name)
}

async fn call(
    mock: &Mock<Snapchat>,
    name: &str,
    arguments: Value,
) -> Result<ToolOutput, ToolFailure> {
    let tool = tool(mock, name, PartnerAccess::default());
    schema::validate(&tool.definition().input_schema, &arguments)
        .expect("the arguments pass the input schema");
    let Value::Object(arguments) = arguments else {
        panic!("an object")
    };
    let result = tool
        .call(&Secret::new(json!({"access_token": TOKEN})), arguments)
        .await;
    if let (Some(output_schema), Ok(output)) = (&tool.definition().output_schema, &result) {
        schema::validate(output_schema, &output.structured).expect("the output matches its schema");
    }
    if let Err(failure) = &result {
        assert!(!failure.message.contains(TOKEN));
    }
    result
}

async fn start() -> Mock<Snapchat> {
    Mock::start(Snapchat::accepting(&[TOKEN])).await
}

#[tokio::test]
async fn get_me_reads_the_user_with_the_bearer_token() {
    let mock = start().await;
    let output = call(&mock, "snapchat_get_me", json!({})).await.expect("me");
    assert_eq!(output.structured["me"]["id"], USER_ID);
    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        (
            requests[0].method.as_str(),
            requests[0].path.as_str(),
            requests[0].query.as_deref()
        ),
        ("GET", "/v1/me", None)
    );
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

#[tokio::test]
async fn get_ad_accounts_lists_every_organizations_accounts() {
    let mock = start().await;
    let output = call(&mock, "snapchat_get_ad_accounts", json!({}))
        .await
        .expect("ad accounts");
    let paths: Vec<String> = mock
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        paths,
        [
            "GET /v1/me/organizations".to_owned(),
            format!("GET /v1/organizations/{}/adaccounts", ORGANIZATIONS[0].0),
            format!("GET /v1/organizations/{}/adaccounts", ORGANIZATIONS[1].0),
        ]
    );
    let ids: Vec<&str> = output.structured["ad_accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = ORGANIZATIONS
        .iter()
        .flat_map(|(_, _, accounts)| accounts.iter().copied())
        .collect();
    assert_eq!(ids, expected);
    assert_eq!(
        output.structured["ad_accounts"][1]["organization_id"],
        ORGANIZATIONS[1].0
    );
    assert_eq!(
        output.structured["organizations"][0],
        json!({"id": ORGANIZATIONS[0].0, "name": ORGANIZATIONS[0].1})
    );
    assert_eq!(output.structured["incomplete"], false);
}

#[tokio::test]
async fn refusals_map_to_kinds_and_reads_are_retried_once() {
    let mock = start().await;
    for (fault, kind) in [
        (Fault::Unauthorized, FailureKind::AuthRevoked),
        (Fault::Forbidden, FailureKind::PermissionMissing),
        (
            Fault::RateLimited { retry_after: 4.0 },
            FailureKind::RateLimited,
        ),
    ] {
        mock.fail_always(fault.clone());
        let failure = call(&mock, "snapchat_get_ad_accounts", json!({}))
            .await
            .expect_err("refused");
        mock.recover();
        assert_eq!(failure.kind, kind, "{fault:?}: {}", failure.message);
    }
    mock.clear_requests();
    mock.fail_next(Fault::ServerError);
    call(&mock, "snapchat_get_me", json!({}))
        .await
        .expect("a 500 on a read is retried once");
    assert_eq!(mock.requests().len(), 2);
    // A failure on the second organization fails the call: no partial list passed off as whole.
    mock.clear_requests();
    mock.fail_next(Fault::Slow(std::time::Duration::ZERO));
    mock.fail_next(Fault::Forbidden);
    let failure = call(&mock, "snapchat_get_ad_accounts", json!({}))
        .await
        .expect_err("refused");
    assert_eq!(failure.kind, FailureKind::PermissionMissing);
    assert!(
        failure.message.contains("does not have access"),
        "{}",
        failure.message
    );
}

#[tokio::test]
async fn create_snap_answers_its_restriction_without_calling_snapchat() {
    let mock = start().await;
    for access in [
        PartnerAccess::default(),
        PartnerAccess::parse("snapchat_create_snap"),
    ] {
        let tool = tool(&mock, "snapchat_create_snap", access);
        assert!(
            tool.definition().annotations.open_world && !tool.definition().annotations.read_only
        );
        let failure = tool
            .call(
                &Secret::new(json!({"access_token": TOKEN})),
                json!({"media_url": "https://media.example.com/s.mp4"})
                    .as_object()
                    .unwrap()
                    .clone(),
            )
            .await
            .expect_err("not supported");
        assert_eq!(failure.kind, FailureKind::NotSupported);
        assert!(
            failure.message.contains("snapchat_create_snap"),
            "{}",
            failure.message
        );
    }
    let restricted = tool(&mock, "snapchat_create_snap", PartnerAccess::default());
    assert!(
        restricted
            .definition()
            .description
            .contains("Partner-only: Snapchat has no API to send a Snap to friends")
    );
    assert_eq!(mock.request_count(), 0, "no upstream call");
}

#[tokio::test]
async fn the_oauth_app_refreshes_with_the_client_in_the_form() {
    let mock = Mock::start(Snapchat::with_client(
        "snap-client-id",
        "snap-client-secret",
    ))
    .await;
    let lookup = |name: &str| match name {
        "SQUAREMCP_SNAPCHAT_CLIENT_ID" => Some("snap-client-id".to_owned()),
        "SQUAREMCP_SNAPCHAT_CLIENT_SECRET" => Some("snap-client-secret".to_owned()),
        "SQUAREMCP_SNAPCHAT_TOKEN_BASE_URL" | "SQUAREMCP_SNAPCHAT_BASE_URL" => {
            Some(mock.base_url().to_owned())
        }
        _ => None,
    };
    let clients = OAuthClients::new(
        http_client(),
        &OAuthSettings::from_lookup(&[&snapchat::OAUTH], lookup).expect("configured"),
    );
    let url = clients
        .authorize_url(
            Platform::Snapchat,
            "https://gw.example/cb",
            "st",
            Some("challenge"),
        )
        .expect("a URL");
    assert!(
        url.starts_with("https://accounts.snapchat.com/login/oauth2/authorize?"),
        "{url}"
    );
    assert!(
        url.contains("client_id=snap-client-id")
            && url.contains("scope=snapchat-marketing-api")
            && !url.contains("code_challenge"),
        "{url}"
    );

    // Connect: the code is exchanged without PKCE, and the account read from /v1/me.
    let code = mock.platform().issue_code();
    let (connected, identity) = clients
        .exchange(Platform::Snapchat, &code, "https://gw.example/cb", None)
        .await
        .expect("exchanged");
    assert_eq!(
        (identity.id.as_str(), identity.name.as_str()),
        (USER_ID, "Ada Lovelace")
    );
    assert_eq!(connected.expose()["account"]["id"], USER_ID);
    assert_eq!(
        connected.expose()["scopes"],
        json!(["snapchat-marketing-api"])
    );
    (snapchat::ENTRY.check_credential)(connected.expose())
        .expect("the stored document is a Snapchat credential");
    let exchange = mock
        .requests()
        .into_iter()
        .find(|r| r.path == "/login/oauth2/access_token")
        .expect("the token endpoint");
    let form = String::from_utf8(exchange.body.to_vec()).unwrap();
    assert!(
        form.contains("grant_type=authorization_code") && !form.contains("code_verifier"),
        "{form}"
    );
    mock.clear_requests();

    let refresh = mock.platform().issue_refresh_token();
    let document = Secret::new(
        json!({"access_token": "old", "refresh_token": refresh, "expires_at": 1, "account": {"id": USER_ID}}),
    );
    let renewed = clients
        .refresh(Platform::Snapchat, &document)
        .await
        .expect("refreshed");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let expires_at = renewed.expose()["expires_at"].as_i64().unwrap();
    assert!(
        (now + 3500..=now + 3700).contains(&expires_at),
        "an hour from now: {expires_at}"
    );
    assert_ne!(renewed.expose()["access_token"], "old");
    assert_eq!(
        renewed.expose()["scopes"],
        json!(["snapchat-marketing-api"])
    );
    let request = mock
        .requests()
        .into_iter()
        .find(|r| r.path == "/login/oauth2/access_token")
        .expect("the token endpoint");
    let form = String::from_utf8(request.body.to_vec()).unwrap();
    assert!(
        form.contains("grant_type=refresh_token")
            && form.contains("client_id=snap-client-id")
            && form.contains("client_secret=snap-client-secret"),
        "{form}"
    );
    assert_eq!(request.header("authorization"), None);
}
