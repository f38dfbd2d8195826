//! The `account` pages (served with the `login` route group, on the host of the session
//! cookie): `GET /account` and its forms. Server-rendered, no script: every action is a form
//! with a CSRF token bound to the session, answered by a 303 back to `/account` with a fixed
//! notice, except a new API key, which is shown once on the answer itself. Secrets are never
//! rendered: not stored credentials, not keys after creation.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode, Uri};
use serde_json::{Map, Value};
use squaremcp_auth::{GrantSummary, Session};
use squaremcp_core::account::AccountOverview;
use squaremcp_core::billing::money;
use squaremcp_core::connections::{Connection, Health, Probe};
use squaremcp_core::gateway::GatewayError;
use squaremcp_core::{AccountName, ApiKeyId, Platform, Timestamp};

use crate::AppState;
use crate::login::session;
use crate::oauth::see_other;
use crate::pages::{self, escape};

/// The CSRF purpose of every form on the account page.
pub(crate) const FORM_PURPOSE: &str = "account";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(show))
        .route("/account/keys", post(create_key))
        .route("/account/keys/revoke", post(revoke_key))
        .route("/account/clients/revoke", post(revoke_client))
        .route("/account/connections", post(set_connection))
        .route("/account/connections/remove", post(remove_connection))
        .route("/account/connections/rename", post(rename_connection))
        .route("/account/connections/check", post(check_connections))
}

/// Notices after an action, by code: the query never puts text of its own on the page.
const NOTICES: [(&str, &str); 10] = [
    ("password-changed", "Your password was changed. You were signed out everywhere else and your MCP clients were disconnected."),
    ("connection-renamed", "The connection was renamed. Tools pick it by its new name (the `account` argument)."),
    ("key-revoked", "The API key was revoked. It no longer works."),
    ("client-revoked", "The application was disconnected. Its tokens no longer work."),
    ("connection-saved", "The connection was saved."),
    ("connection-removed", "The connection was removed."),
    ("checked", "Every connection was checked just now."),
    ("connected", "The account was connected."),
    ("nothing", "Nothing changed: it was already gone."),
    ("connect-cancelled", "The connection was cancelled; nothing was stored."),
];

fn sign_in_first() -> Response {
    see_other("/login?return_to=%2Faccount")
}

/// Reads a form body; `None` when it is not form-encoded.
fn form(body: &[u8]) -> Option<HashMap<String, String>> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).ok().map(|pairs| pairs.into_iter().collect())
}

/// The session and a checked CSRF token, or the answer to send instead.
fn authorized(state: &AppState, headers: &HeaderMap, fields: &HashMap<String, String>) -> Result<Session, Box<Response>> {
    let Some(session) = session(state, headers) else {
        return Err(Box::new(pages::error(StatusCode::UNAUTHORIZED, "Signed out", "Your session ended. Sign in again at /login.")));
    };
    let token = fields.get("csrf").map(String::as_str).unwrap_or_default();
    if !state.auth.check_session_csrf(&session, FORM_PURPOSE, token) {
        tracing::warn!(customer = session.customer_id.as_str(), "account form refused: bad CSRF token");
        return Err(Box::new(pages::error(
            StatusCode::FORBIDDEN,
            "Request refused",
            "The form was not sent from your account page. Reload it and try again.",
        )));
    }
    Ok(session)
}

fn server_error(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "account page failed");
    pages::error(StatusCode::SERVICE_UNAVAILABLE, "Try again shortly", "The service could not load your account.")
}

async fn show(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let Some(session) = session(&state, &headers) else { return sign_in_first() };
    let notice = serde_urlencoded::from_str::<HashMap<String, String>>(uri.query().unwrap_or(""))
        .ok()
        .and_then(|q| q.get("done").cloned())
        .and_then(|code| NOTICES.iter().find(|(c, _)| *c == code).map(|(_, text)| *text));
    render(&state, &session, StatusCode::OK, notice.map(Notice::Info), None).await
}

enum Notice<'a> {
    Info(&'a str),
    Error(&'a str),
}

/// A key just created: shown once, on this answer only.
struct NewKey<'a> {
    name: &'a str,
    key: &'a str,
}

async fn render(state: &AppState, session: &Session, status: StatusCode, notice: Option<Notice<'_>>, new_key: Option<NewKey<'_>>) -> Response {
    let gateway = state.mcp.gateway();
    let overview = match gateway.account_overview(&session.customer_id).await {
        Ok(overview) => overview,
        Err(GatewayError::UnknownCustomer(_)) => {
            return pages::error(StatusCode::NOT_FOUND, "No such account", "This account no longer exists.");
        }
        Err(e) => return server_error(&e),
    };
    let connections = match gateway.connections(&session.customer_id, None, Probe::Missing).await {
        Ok(connections) => connections,
        Err(e) => return server_error(&e),
    };
    let grants = match state.auth.grants(&session.customer_id).await {
        Ok(grants) => grants,
        Err(e) => return server_error(&e),
    };
    let csrf = state.auth.session_csrf(session, FORM_PURPOSE);
    let mut body = String::new();
    body.push_str(&format!(
        "<div class=\"top\"><h1>Your account</h1><form method=\"post\" action=\"/logout\">\
         <button type=\"submit\" class=\"secondary\">Sign out</button></form></div>\
         <p class=\"muted\">Signed in as <strong>{}</strong></p>",
        escape(&session.email)
    ));
    match notice {
        Some(Notice::Info(text)) => body.push_str(&format!("<p class=\"notice\" role=\"status\">{}</p>", escape(text))),
        Some(Notice::Error(text)) => body.push_str(&format!("<p class=\"error\" role=\"alert\">{}</p>", escape(text))),
        None => {}
    }
    body.push_str(&plan_section(&overview));
    body.push_str(&connections_section(state, session, &connections, &csrf));
    body.push_str(&keys_section(&overview, new_key.as_ref(), &csrf));
    body.push_str(&clients_section(&grants, &csrf));
    body.push_str(&crate::account_password::section(&csrf));
    body.push_str(&crate::account_webhooks::section(state, session, &csrf).await);
    body.push_str(&invoices_section(&overview));
    pages::page_with_class(status, "Your account", &body, &[], "wide")
}

/// `2026-11-29 16:12 UTC`.
fn when(at: Timestamp) -> String {
    let text = at.to_rfc3339();
    match (text.get(..10), text.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => text,
    }
}

fn plan_section(overview: &AccountOverview) -> String {
    let used = overview.used;
    let (plan_line, usage) = match &overview.plan {
        Some(plan) => {
            let price = if plan.price_cents == 0 { "free".to_owned() } else { format!("{} a month", money(plan.price_cents)) };
            let over = match plan.overage_cents {
                Some(cents) => format!("calls over the limit cost {} each", money(cents)),
                None => "calls over the limit are refused until the reset".to_owned(),
            };
            (
                format!("<dl><dt>Email</dt><dd>{}</dd><dt>Plan</dt><dd>{} ({price})</dd></dl>", escape(overview.customer.email.as_str()), escape(plan.name.as_str())),
                format!(
                    "<p><strong>{used}</strong> of <strong>{limit}</strong> tool calls used in {month}; {over}. \
                     The count starts again on <strong>{reset}</strong>.</p>\
                     <meter min=\"0\" max=\"{limit}\" value=\"{shown}\" high=\"{high}\" aria-label=\"Tool calls used this month\">{used} of {limit}</meter>",
                    limit = plan.monthly_calls,
                    month = overview.month,
                    reset = escape(&overview.resets_on),
                    shown = used.min(plan.monthly_calls),
                    high = plan.monthly_calls.saturating_mul(9) / 10,
                ),
            )
        }
        None => (
            format!(
                "<dl><dt>Email</dt><dd>{}</dd><dt>Plan</dt><dd>{} (no longer offered)</dd></dl>",
                escape(overview.customer.email.as_str()),
                escape(overview.customer.plan.as_str())
            ),
            format!("<p><strong>{used}</strong> tool calls used in {}; the count starts again on {}.</p>", overview.month, escape(&overview.resets_on)),
        ),
    };
    format!("<section aria-labelledby=\"plan\"><h2 id=\"plan\">Plan and usage</h2>{plan_line}{usage}</section>")
}

fn badge(health: &Health) -> String {
    let class = match health {
        Health::Ok => "ok",
        Health::Expiring { .. } => "warn",
        Health::NeedsReconnect | Health::Failing { .. } => "bad",
        Health::Unchecked => "none",
    };
    format!("<span class=\"badge {class}\" data-health=\"{name}\">{name}</span>", name = health.name())
}

fn hidden_csrf(csrf: &str) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", escape(csrf))
}

/// The fields of a platform's credential document, from its example: `(name, example value)`.
fn credential_fields(example: &str) -> Option<Vec<(String, Value)>> {
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(example) else { return None };
    let fields: Vec<(String, Value)> = object.into_iter().collect();
    // Only flat documents get a form; nested ones are set with the CLI.
    fields.iter().all(|(_, v)| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))).then_some(fields)
}

fn is_secret_field(name: &str) -> bool {
    ["token", "secret", "password", "key"].iter().any(|word| name.contains(word))
}

fn connections_section(state: &AppState, session: &Session, connections: &[Connection], csrf: &str) -> String {
    let gateway = state.mcp.gateway();
    let mut out = String::from(
        "<section aria-labelledby=\"connections\"><h2 id=\"connections\">Connections</h2>\
         <p class=\"muted\">The platforms SquareMCP uses on your behalf. Your MCP clients see the tools of these platforms only.</p>",
    );
    if connections.is_empty() {
        out.push_str("<p>No platform is connected yet.</p>");
    } else {
        out.push_str("<div class=\"table\"><table><thead><tr><th>Platform</th><th>Account</th><th>Health</th><th>Connected</th><th><span class=\"muted\">Actions</span></th></tr></thead><tbody>");
        for c in connections {
            let checked = c.checked_at.map(|at| format!("<br><span class=\"muted\">checked {}</span>", when(at))).unwrap_or_default();
            out.push_str(&format!(
                "<tr data-platform=\"{platform}\" data-account=\"{account}\"><td>{platform}</td><td>{account}</td>\
                 <td>{badge}<br><span class=\"muted\">{detail}</span>{checked}</td><td>{created}</td>\
                 <td><form method=\"post\" action=\"/account/connections/remove\">{csrf}\
                 <input type=\"hidden\" name=\"platform\" value=\"{platform}\"><input type=\"hidden\" name=\"account\" value=\"{account}\">\
                 <button type=\"submit\" class=\"secondary small\">Disconnect</button></form>\
                 <details><summary>Rename</summary><form method=\"post\" action=\"/account/connections/rename\" class=\"inline\">{csrf}\
                 <input type=\"hidden\" name=\"platform\" value=\"{platform}\"><input type=\"hidden\" name=\"account\" value=\"{account}\">\
                 <div><label for=\"rename-{platform}-{account}\">New name</label>\
                 <input id=\"rename-{platform}-{account}\" name=\"to\" type=\"text\" value=\"{account}\" maxlength=\"64\" required></div>\
                 <button type=\"submit\" class=\"secondary small\">Rename</button></form></details></td></tr>",
                platform = escape(c.platform.as_str()),
                account = escape(c.account.as_str()),
                badge = badge(&c.health),
                detail = escape(&c.health.describe()),
                created = when(c.created_at),
                csrf = hidden_csrf(csrf),
            ));
        }
        out.push_str("</tbody></table></div>");
        out.push_str(&format!(
            "<form method=\"post\" action=\"/account/connections/check\">{}<button type=\"submit\" class=\"secondary small\">Check all connections now</button></form>",
            hidden_csrf(csrf)
        ));
    }
    let connectable = crate::connect::connect_buttons(state, session);
    if !connectable.is_empty() {
        out.push_str(&format!("<h3>Connect with your platform account</h3><div class=\"connect\">{connectable}</div>"));
    }
    for platform in gateway.registry().platforms().collect::<Vec<_>>() {
        if crate::connect::is_oauth(state, platform) {
            continue;
        }
        let Some(module) = gateway.registry().module(platform) else { continue };
        let Some(fields) = credential_fields(module.credential_example()) else { continue };
        let mut inputs = String::new();
        for (name, _) in &fields {
            let kind = if is_secret_field(name) { "password" } else { "text" };
            inputs.push_str(&format!(
                "<div><label for=\"{platform}-{name}\">{name}</label><input id=\"{platform}-{name}\" name=\"field.{name}\" type=\"{kind}\" autocomplete=\"off\" required></div>",
                platform = escape(platform.as_str()),
                name = escape(name),
            ));
        }
        out.push_str(&format!(
            "<details data-form=\"{platform}\"><summary>Add or replace {platform} credentials</summary>\
             <form method=\"post\" action=\"/account/connections\" class=\"inline\">{csrf}\
             <input type=\"hidden\" name=\"platform\" value=\"{platform}\">{inputs}\
             <div><label for=\"{platform}-account\">Account name</label><input id=\"{platform}-account\" name=\"account\" type=\"text\" value=\"default\" required></div>\
             <button type=\"submit\" class=\"small\">Save</button></form>\
             <p class=\"muted\">Stored encrypted; never shown again.</p></details>",
            platform = escape(platform.as_str()),
            csrf = hidden_csrf(csrf),
        ));
    }
    out.push_str("</section>");
    out
}

fn keys_section(overview: &AccountOverview, new_key: Option<&NewKey<'_>>, csrf: &str) -> String {
    let mut out = String::from(
        "<section aria-labelledby=\"keys\"><h2 id=\"keys\">API keys</h2>\
         <p class=\"muted\">For MCP clients that connect with a key (the <code>x-api-key</code> header) instead of signing in.</p>",
    );
    if let Some(new) = new_key {
        out.push_str(&format!(
            "<div class=\"notice\" role=\"status\" id=\"new-key\"><strong>Your new key “{}”.</strong> Copy it now: it is shown only this once.\
             <code class=\"secret\">{}</code></div>",
            escape(new.name),
            escape(new.key)
        ));
    }
    let active: Vec<_> = overview.keys.iter().filter(|k| k.record.revoked_at.is_none()).collect();
    if active.is_empty() {
        out.push_str("<p>No active key.</p>");
    } else {
        out.push_str("<div class=\"table\"><table><thead><tr><th>Name</th><th>Key</th><th>Created</th><th>Last used</th><th><span class=\"muted\">Actions</span></th></tr></thead><tbody>");
        for key in active {
            out.push_str(&format!(
                "<tr data-key=\"{id}\"><td>{name}</td><td><code>{prefix}…</code></td><td>{created}</td><td>{used}</td>\
                 <td><form method=\"post\" action=\"/account/keys/revoke\">{csrf}<input type=\"hidden\" name=\"key\" value=\"{id}\">\
                 <button type=\"submit\" class=\"secondary small\">Revoke</button></form></td></tr>",
                id = escape(key.record.id.as_str()),
                name = escape(&key.record.name),
                prefix = escape(&key.record.prefix),
                created = when(key.record.created_at),
                used = key.last_used_at.map_or_else(|| "never".to_owned(), when),
                csrf = hidden_csrf(csrf),
            ));
        }
        out.push_str("</tbody></table></div>");
    }
    out.push_str(&format!(
        "<form method=\"post\" action=\"/account/keys\" class=\"inline\">{}\
         <div><label for=\"key-name\">New key name</label><input id=\"key-name\" name=\"name\" type=\"text\" placeholder=\"claude-desktop\" maxlength=\"100\" required></div>\
         <button type=\"submit\" class=\"small\">Create key</button></form></section>",
        hidden_csrf(csrf)
    ));
    out
}

fn clients_section(grants: &[GrantSummary], csrf: &str) -> String {
    let mut out = String::from(
        "<section aria-labelledby=\"clients\"><h2 id=\"clients\">Connected MCP clients</h2>\
         <p class=\"muted\">Applications you allowed to use your account by signing in. Disconnecting one stops its tokens at once.</p>",
    );
    if grants.is_empty() {
        out.push_str("<p>No application is connected.</p>");
    } else {
        out.push_str("<div class=\"table\"><table><thead><tr><th>Application</th><th>Connected</th><th>Last used</th><th><span class=\"muted\">Actions</span></th></tr></thead><tbody>");
        for grant in grants {
            out.push_str(&format!(
                "<tr data-grant=\"{id}\"><td>{name}</td><td>{created}</td><td>{used}</td>\
                 <td><form method=\"post\" action=\"/account/clients/revoke\">{csrf}<input type=\"hidden\" name=\"grant\" value=\"{id}\">\
                 <button type=\"submit\" class=\"secondary small\">Disconnect</button></form></td></tr>",
                id = escape(&grant.grant_id),
                name = escape(&grant.client_name),
                created = when(Timestamp::from_unix(grant.created_at)),
                used = when(Timestamp::from_unix(grant.last_used_at)),
                csrf = hidden_csrf(csrf),
            ));
        }
        out.push_str("</tbody></table></div>");
    }
    out.push_str("</section>");
    out
}

fn invoices_section(overview: &AccountOverview) -> String {
    let mut out = String::from("<section aria-labelledby=\"invoices\"><h2 id=\"invoices\">Invoices</h2>");
    if overview.invoices.is_empty() {
        out.push_str("<p>No invoice yet. Invoices are emailed after each month with usage or a paid plan.</p>");
    } else {
        out.push_str("<div class=\"table\"><table><thead><tr><th>Number</th><th>Month</th><th>Plan</th><th>Calls</th><th>Total</th><th>Emailed</th></tr></thead><tbody>");
        for invoice in &overview.invoices {
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td></tr>",
                escape(&invoice.number),
                invoice.month,
                escape(&invoice.plan),
                invoice.calls,
                money(invoice.total_cents),
                escape(&invoice.currency),
                invoice.sent_at.map_or_else(|| "not yet".to_owned(), when),
            ));
        }
        out.push_str("</tbody></table></div>");
    }
    out.push_str("</section>");
    out
}

async fn create_key(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(fields) = form(&body) else { return pages::error(StatusCode::BAD_REQUEST, "Invalid request", "The form could not be read.") };
    let session = match authorized(&state, &headers, &fields) {
        Ok(session) => session,
        Err(response) => return *response,
    };
    let name = fields.get("name").map(|n| n.trim()).unwrap_or_default();
    match state.mcp.gateway().create_api_key(&session.customer_id, name).await {
        Ok((record, key)) => {
            tracing::info!(customer = session.customer_id.as_str(), key = record.id.as_str(), "API key created on the account page");
            render(&state, &session, StatusCode::OK, None, Some(NewKey { name: &record.name, key: key.expose() })).await
        }
        Err(GatewayError::InvalidInput(_)) => {
            render(&state, &session, StatusCode::BAD_REQUEST, Some(Notice::Error("Give the key a name of 1 to 100 printable characters.")), None).await
        }
        Err(e) => server_error(&e),
    }
}

async fn revoke_key(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(fields) = form(&body) else { return pages::error(StatusCode::BAD_REQUEST, "Invalid request", "The form could not be read.") };
    let session = match authorized(&state, &headers, &fields) {
        Ok(session) => session,
        Err(response) => return *response,
    };
    let Ok(id) = ApiKeyId::parse(fields.get("key").map(String::as_str).unwrap_or_default()) else {
        return see_other("/account?done=nothing");
    };
    match state.mcp.gateway().revoke_api_key(&session.customer_id, &id).await {
        Ok(true) => see_other("/account?done=key-revoked"),
        Ok(false) => see_other("/account?done=nothing"),
        Err(e) => server_error(&e),
    }
}

async fn revoke_client(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(fields) = form(&body) else { return pages::error(StatusCode::BAD_REQUEST, "Invalid request", "The form could not be read.") };
    let session = match authorized(&state, &headers, &fields) {
        Ok(session) => session,
        Err(response) => return *response,
    };
    let grant = fields.get("grant").map(String::as_str).unwrap_or_default();
    match state.auth.revoke_grant(&session.customer_id, grant).await {
        Ok(true) => see_other("/account?done=client-revoked"),
        Ok(false) => see_other("/account?done=nothing"),
        Err(e) => server_error(&e),
    }
}

fn platform_and_account(fields: &HashMap<String, String>) -> Option<(Platform, AccountName)> {
    let platform = fields.get("platform")?.parse::<Platform>().ok()?;
    let account = AccountName::parse(fields.get("account").map(|a| a.trim()).unwrap_or(AccountName::DEFAULT)).ok()?;
    Some((platform, account))
}

async fn set_connection(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(fields) = form(&body) else { return pages::error(StatusCode::BAD_REQUEST, "Invalid request", "The form could not be read.") };
    let session = match authorized(&state, &headers, &fields) {
        Ok(session) => session,
        Err(response) => return *response,
    };
    let gateway = state.mcp.gateway();
    let Some((platform, account)) = platform_and_account(&fields) else {
        let message = "Choose a platform, and an account name of 1-64 letters, digits, `.`, `_`, `-` or `@`.";
        return render(&state, &session, StatusCode::BAD_REQUEST, Some(Notice::Error(message)), None).await;
    };
    let Some(example) = gateway.registry().module(platform).map(|m| m.credential_example()) else {
        return render(&state, &session, StatusCode::BAD_REQUEST, Some(Notice::Error("This platform is not available.")), None).await;
    };
    let Some(expected) = credential_fields(example) else {
        return render(&state, &session, StatusCode::BAD_REQUEST, Some(Notice::Error("This platform's credentials are set by an administrator.")), None).await;
    };
    let mut document = Map::new();
    for (name, example) in expected {
        let given = fields.get(&format!("field.{name}")).map(|v| v.trim()).unwrap_or_default();
        let value = match example {
            Value::Number(_) => given.parse::<i64>().map(Value::from).ok(),
            Value::Bool(_) => match given {
                "true" | "on" | "yes" => Some(Value::Bool(true)),
                "false" | "off" | "no" => Some(Value::Bool(false)),
                _ => None,
            },
            _ => (!given.is_empty()).then(|| Value::String(given.to_owned())),
        };
        let Some(value) = value else {
            let message = format!("Fill in `{name}` for {platform}.");
            return render(&state, &session, StatusCode::BAD_REQUEST, Some(Notice::Error(&message)), None).await;
        };
        document.insert(name, value);
    }
    match gateway.set_credential(&session.customer_id, platform, account, &Value::Object(document)).await {
        Ok(record) => {
            // The cached health was the old credential's.
            let _ = gateway.probe(&record).await;
            see_other("/account?done=connection-saved")
        }
        // The reason names the field, never its value.
        Err(GatewayError::InvalidCredential { why, .. }) => {
            let message = format!("These {platform} credentials are not valid: {why}");
            render(&state, &session, StatusCode::BAD_REQUEST, Some(Notice::Error(&message)), None).await
        }
        Err(e) => server_error(&e),
    }
}

async fn remove_connection(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(fields) = form(&body) else { return pages::error(StatusCode::BAD_REQUEST, "Invalid request", "The form could not be read.") };
    let session = match authorized(&state, &headers, &fields) {
        Ok(session) => session,
        Err(response) => return *response,
    };
    let Some((platform, account)) = platform_and_account(&fields) else { return see_other("/account?done=nothing") };
    match state.mcp.gateway().disconnect(&session.customer_id, platform, &account).await {
        Ok(true) => see_other("/account?done=connection-removed"),
        Ok(false) => see_other("/account?done=nothing"),
        Err(e) => server_error(&e),
    }
}

async fn rename_connection(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(fields) = form(&body) else { return pages::error(StatusCode::BAD_REQUEST, "Invalid request", "The form could not be read.") };
    let session = match authorized(&state, &headers, &fields) {
        Ok(session) => session,
        Err(response) => return *response,
    };
    let Some((platform, from)) = platform_and_account(&fields) else { return see_other("/account?done=nothing") };
    let Ok(to) = AccountName::parse(fields.get("to").map(|t| t.trim()).unwrap_or_default()) else {
        let message = "Give the connection a name of 1-64 letters, digits, `.`, `_`, `-` or `@`.";
        return render(&state, &session, StatusCode::BAD_REQUEST, Some(Notice::Error(message)), None).await;
    };
    match state.mcp.gateway().rename_connection(&session.customer_id, platform, &from, to).await {
        Ok(true) => see_other("/account?done=connection-renamed"),
        Ok(false) => see_other("/account?done=nothing"),
        Err(GatewayError::InvalidInput(why)) => {
            let message = format!("The connection could not be renamed: {why}.");
            render(&state, &session, StatusCode::BAD_REQUEST, Some(Notice::Error(&message)), None).await
        }
        Err(GatewayError::InvalidCredential { why, .. }) => {
            let message = format!("The connection could not be renamed: {why}");
            render(&state, &session, StatusCode::BAD_REQUEST, Some(Notice::Error(&message)), None).await
        }
        Err(e) => server_error(&e),
    }
}

async fn check_connections(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(fields) = form(&body) else { return pages::error(StatusCode::BAD_REQUEST, "Invalid request", "The form could not be read.") };
    let session = match authorized(&state, &headers, &fields) {
        Ok(session) => session,
        Err(response) => return *response,
    };
    match state.mcp.gateway().connections(&session.customer_id, None, Probe::All).await {
        Ok(_) => see_other("/account?done=checked"),
        Err(e) => server_error(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_forms_come_from_flat_examples() {
        let fields = credential_fields(r#"{"bot_token": "123456:ABC...", "port": 993, "tls": true}"#).unwrap_or_default();
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["bot_token", "port", "tls"]);
        assert!(credential_fields(r#"{"imap": {"host": "x"}}"#).is_none());
        assert!(credential_fields("not json").is_none());
        assert!(is_secret_field("bot_token") && is_secret_field("app_secret") && !is_secret_field("host"));
    }

    #[test]
    fn times_are_shown_to_the_minute_in_utc() {
        assert_eq!(when(Timestamp::from_unix(1_793_512_800)), "2026-11-01 06:00 UTC");
    }

    #[test]
    fn notices_are_fixed_texts() {
        assert!(NOTICES.iter().all(|(code, text)| !code.is_empty() && text.ends_with('.')));
    }
}
