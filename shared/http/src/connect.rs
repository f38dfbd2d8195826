//! Connect flows for OAuth platforms, on the host of the session cookie:
//!
//! `{platform}` is the Connect name of an OAuth app: the platform's name, or the provider's
//! where one platform has several apps (Email: `gmail`, `microsoft365`).
//!
//! - `GET /connect/{platform}?csrf=…` (session + a CSRF token of the account page): a fresh
//!   `state` and PKCE verifier are kept server-side for ten minutes (a single-use item naming
//!   the session), and the browser goes to the platform's authorization page.
//! - `GET /connect/{platform}/callback?code&state`: the state is taken (single use) and must
//!   belong to this session and platform; the code is exchanged with the verifier, the account's
//!   identity read, and the tokens stored encrypted like every credential. Every refusal (the
//!   person said no, a bad or replayed state, another session's callback) ends on a page saying
//!   so, with nothing stored.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use http::{HeaderMap, StatusCode, Uri};
use serde::{Deserialize, Serialize};
use squaremcp_auth::Session;
use squaremcp_core::{AccountName, CustomerId, Platform, random};

use crate::AppState;
use crate::login::session;
use crate::oauth::see_other;
use crate::pages::{self, escape};

/// The CSRF purpose of the Connect links.
pub(crate) const PURPOSE: &str = "connect";
/// How long a started connection waits for its callback.
const STATE_TTL: i64 = 600;

pub fn router() -> Router<AppState> {
    Router::new().route("/connect/{platform}", get(start)).route("/connect/{platform}/callback", get(callback))
}

/// What a started connection remembers until its callback.
#[derive(Serialize, Deserialize)]
struct Pending {
    customer_id: CustomerId,
    sid: String,
    platform: Platform,
    /// The Connect name (absent in states started before there were several apps per platform).
    #[serde(default)]
    name: Option<String>,
    verifier: Option<String>,
}

fn state_key(state: &str) -> String {
    format!("connect:state:{state}")
}

/// The Connect buttons of the account page: one per platform with a configured OAuth app.
pub(crate) fn connect_buttons(state: &AppState, session: &Session) -> String {
    let csrf = state.auth.session_csrf(session, PURPOSE);
    state
        .oauth
        .targets()
        .into_iter()
        .filter(|target| state.mcp.gateway().registry().module(target.platform).is_some())
        .map(|target| {
            format!(
                "<a class=\"button\" data-connect=\"{p}\" href=\"/connect/{p}?csrf={csrf}\">Connect {name}</a>",
                p = escape(target.name),
                name = escape(target.label.unwrap_or_else(|| display_name(target.platform))),
                csrf = escape(&csrf),
            )
        })
        .collect()
}

fn display_name(platform: Platform) -> &'static str {
    match platform {
        Platform::Twitter => "X",
        Platform::Linkedin => "LinkedIn",
        Platform::Tiktok => "TikTok",
        Platform::Snapchat => "Snapchat",
        Platform::Facebook => "Facebook",
        Platform::Instagram => "Instagram",
        other => other.as_str(),
    }
}

/// Whether `platform` is connected through OAuth here (then it gets no credential form).
pub(crate) fn is_oauth(state: &AppState, platform: Platform) -> bool {
    state.oauth.is_configured(platform)
}

fn redirect_uri(state: &AppState, name: &str) -> String {
    format!("{}/connect/{name}/callback", state.config.public_url)
}

/// A page that ends a connection attempt, with the way back.
fn ended(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><p role=\"alert\">{}</p><p>Nothing was stored. <a href=\"/account\">Back to your account</a></p>",
        escape(title),
        escape(message)
    );
    pages::page(status, title, &body, &[])
}

fn query(uri: &Uri) -> std::collections::HashMap<String, String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(uri.query().unwrap_or("")).map(|pairs| pairs.into_iter().collect()).unwrap_or_default()
}

async fn start(State(state): State<AppState>, Path(name): Path<String>, headers: HeaderMap, uri: Uri) -> Response {
    let Some(session) = session(&state, &headers) else { return see_other("/login?return_to=%2Faccount") };
    let csrf = query(&uri).remove("csrf").unwrap_or_default();
    if !state.auth.check_session_csrf(&session, PURPOSE, &csrf) {
        tracing::warn!(customer = session.customer_id.as_str(), "connect refused: bad CSRF token");
        return ended(StatusCode::FORBIDDEN, "Request refused", "This link was not opened from your account page. Start again there.");
    }
    let Some(target) = state.oauth.target(&name) else {
        return ended(StatusCode::NOT_FOUND, "Not available", "This platform cannot be connected here.");
    };
    let platform = target.platform;
    let flow_state = random::token::<32>();
    let verifier = state.oauth.uses_pkce(target.name).then(random::token::<32>);
    let challenge = verifier.as_deref().map(s256);
    let pending =
        Pending { customer_id: session.customer_id.clone(), sid: session.sid.clone(), platform, name: Some(target.name.to_owned()), verifier };
    let Some(location) = state.oauth.authorize_url_for(target.name, &redirect_uri(&state, target.name), &flow_state, challenge.as_deref()) else {
        return ended(StatusCode::INTERNAL_SERVER_ERROR, "Not available", "This platform's authorization address is not valid.");
    };
    let gateway = state.mcp.gateway();
    let now = gateway.now();
    let stored = match serde_json::to_vec(&pending) {
        Ok(bytes) => gateway.store().put_single_use(&state_key(&flow_state), &bytes, now.plus_seconds(STATE_TTL), now).await,
        Err(e) => Err(squaremcp_core::StoreError::Corrupt(e.to_string())),
    };
    if let Err(e) = stored {
        tracing::error!(error = %e, "connect state not stored");
        return ended(StatusCode::SERVICE_UNAVAILABLE, "Try again shortly", "The service could not start the connection.");
    }
    tracing::info!(customer = session.customer_id.as_str(), %platform, "connect started");
    see_other(&location)
}

/// PKCE S256 of a verifier (RFC 7636 §4.2).
fn s256(verifier: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

async fn callback(State(state): State<AppState>, Path(name): Path<String>, headers: HeaderMap, uri: Uri) -> Response {
    let mut params = query(&uri);
    let Some(session) = session(&state, &headers) else {
        return ended(StatusCode::UNAUTHORIZED, "Signed out", "Your session ended during the connection. Sign in and connect again.");
    };
    let Some(target) = state.oauth.target(&name) else {
        return ended(StatusCode::NOT_FOUND, "Not available", "This platform cannot be connected here.");
    };
    let platform = target.platform;
    let gateway = state.mcp.gateway();
    let flow_state = params.remove("state").unwrap_or_default();
    let taken = if flow_state.is_empty() { Ok(None) } else { gateway.store().take_single_use(&state_key(&flow_state), gateway.now()).await };
    let pending = match taken {
        Ok(Some(bytes)) => serde_json::from_slice::<Pending>(&bytes).ok(),
        Ok(None) => None,
        Err(e) => {
            tracing::error!(error = %e, "connect state unavailable");
            return ended(StatusCode::SERVICE_UNAVAILABLE, "Try again shortly", "The service could not finish the connection.");
        }
    };
    let Some(pending) = pending else {
        tracing::warn!(customer = session.customer_id.as_str(), %platform, "connect callback with an unknown, expired or used state");
        return ended(
            StatusCode::BAD_REQUEST,
            "Connection expired",
            "This connection request is unknown, expired or was already used. Start again from your account page.",
        );
    };
    let started_for = pending.name.as_deref().unwrap_or(pending.platform.as_str());
    if pending.sid != session.sid || pending.customer_id != session.customer_id || pending.platform != platform || started_for != target.name {
        tracing::warn!(customer = session.customer_id.as_str(), %platform, "connect callback for another session");
        return ended(StatusCode::FORBIDDEN, "Request refused", "This connection was started in another session. Start again from your account page.");
    }
    if let Some(error) = params.remove("error") {
        let message = if error == "access_denied" {
            "You did not allow SquareMCP to use the account.".to_owned()
        } else {
            // Only a code the provider's standard defines; never its free text.
            let code: String = error.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(40).collect();
            format!("The platform refused the connection ({code}).")
        };
        return ended(StatusCode::BAD_REQUEST, "Connection cancelled", &message);
    }
    let Some(code) = params.remove("code").filter(|c| !c.is_empty()) else {
        return ended(StatusCode::BAD_REQUEST, "Connection failed", "The platform sent no authorization code.");
    };
    let accounts = match state.oauth.connect(target.name, &code, &redirect_uri(&state, target.name), pending.verifier.as_deref()).await {
        Ok(accounts) => accounts,
        Err(e) => {
            tracing::warn!(customer = session.customer_id.as_str(), %platform, error = %e, "connect: the code exchange failed");
            return ended(StatusCode::BAD_GATEWAY, "Connection failed", "The platform did not accept the authorization. Start again from your account page.");
        }
    };
    if accounts.is_empty() {
        // Meta: no Page granted, or none with a linked Instagram professional account.
        tracing::info!(customer = session.customer_id.as_str(), %platform, "connect: no account to store");
        return ended(StatusCode::BAD_REQUEST, "Nothing to connect", no_accounts_message(platform));
    }
    // One authorization may connect several accounts (Meta's Pages): each is stored and probed.
    for connected in accounts {
        let account = AccountName::parse(&connected.account_name).unwrap_or_else(|_| AccountName::default_account());
        match gateway.set_credential(&session.customer_id, platform, account, connected.document.expose()).await {
            // The page shows the new connection's health at once.
            Ok(record) => {
                gateway.probe(&record).await;
            }
            Err(e) => {
                tracing::error!(customer = session.customer_id.as_str(), %platform, error = %e, "connect: the tokens could not be stored");
                return ended(StatusCode::SERVICE_UNAVAILABLE, "Try again shortly", "The service could not store the connection.");
            }
        }
    }
    tracing::info!(customer = session.customer_id.as_str(), %platform, "connected");
    see_other("/account?done=connected")
}

fn no_accounts_message(platform: Platform) -> &'static str {
    match platform {
        Platform::Instagram => {
            "None of the Pages you allowed has an Instagram professional account linked to it. Link one to a Page in Meta's \
             settings, then connect again and allow that Page."
        }
        Platform::Facebook => "You allowed no Page. Connect again and pick the Pages SquareMCP may post to.",
        _ => "The platform named no account to connect.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc_7636_appendix_b() {
        assert_eq!(s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }
}
