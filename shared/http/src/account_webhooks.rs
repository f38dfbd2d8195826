//! The account page's webhook endpoints: the section of `/account` (each endpoint's URL, event
//! types, state — active, failing since, disabled — and last delivery; the dead letters) and its
//! forms: add (the `whsec_` secret shown once, on the answer), remove, rotate the secret (the
//! new one shown once), enable a disabled endpoint, replay dead letters. Every form carries the
//! page's CSRF token; no secret is ever rendered back afterwards. Without queues (no outbound
//! webhooks on this gateway) the section says so.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use http::{HeaderMap, StatusCode};
use squaremcp_auth::Session;
use squaremcp_core::CustomerId;
use squaremcp_webhooks::delivery::{AttemptRecord, DeadLetter};
use squaremcp_webhooks::{EVENT_TYPES, Endpoint, NewEndpoint};

use crate::AppState;
use crate::account::FORM_PURPOSE;
use crate::login::session;
use crate::oauth::see_other;
use crate::pages::{self, escape};

/// Dead letters shown on the page (the CLI lists them all).
const DEAD_LETTERS_SHOWN: usize = 20;
/// Attempts read to find each endpoint's last delivery.
const ATTEMPTS_READ: usize = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account/webhooks", post(add))
        .route("/account/webhooks/remove", post(remove))
        .route("/account/webhooks/rotate", post(rotate))
        .route("/account/webhooks/enable", post(enable))
        .route("/account/webhooks/replay", post(replay))
}

fn when(at: squaremcp_core::Timestamp) -> String {
    let text = at.to_rfc3339();
    match (text.get(..10), text.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => text,
    }
}

fn hidden(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(csrf)
    )
}

fn state_text(endpoint: &Endpoint) -> String {
    match (
        endpoint.disabled,
        endpoint.disabled_at,
        endpoint.failing_since,
    ) {
        (true, Some(at), _) => format!(
            "<strong class=\"error\">Disabled</strong> since {} (every delivery failed)",
            when(at)
        ),
        (true, None, _) => "<strong class=\"error\">Disabled</strong>".to_owned(),
        (false, _, Some(since)) => format!("Failing since {}", when(since)),
        (false, _, None) => "Active".to_owned(),
    }
}

fn last_delivery(attempts: &[AttemptRecord], endpoint: &str) -> String {
    match attempts.iter().find(|a| a.endpoint == endpoint) {
        None => "none yet".to_owned(),
        Some(a) => {
            let status = a
                .status
                .map_or_else(|| "no answer".to_owned(), |s| format!("HTTP {s}"));
            format!(
                "{} — {} ({})",
                when(a.at),
                if a.delivered { "delivered" } else { "failed" },
                status
            )
        }
    }
}

/// The section of `/account`, with the page's CSRF token.
pub(crate) async fn section(state: &AppState, session: &Session, csrf: &str) -> String {
    let mut html = String::from(
        "<section aria-labelledby=\"webhooks-title\"><h2 id=\"webhooks-title\">Webhook endpoints</h2>",
    );
    let Some(deliverer) = &state.webhooks else {
        html.push_str("<p class=\"muted\">Outbound webhooks are not configured on this gateway.</p></section>");
        return html;
    };
    let customer = &session.customer_id;
    let (endpoints, attempts, letters) = match (
        deliverer.endpoints().list(customer).await,
        deliverer.attempts(customer, ATTEMPTS_READ).await,
        deliverer.dead_letters(customer, DEAD_LETTERS_SHOWN).await,
    ) {
        (Ok(e), Ok(a), Ok(d)) => (e, a, d),
        _ => {
            tracing::error!(
                customer = customer.as_str(),
                "the webhook endpoints could not be read for the account page"
            );
            html.push_str("<p class=\"error\">Your webhook endpoints could not be loaded. Reload the page shortly.</p></section>");
            return html;
        }
    };
    html.push_str(
        "<p class=\"muted\">Signed events (Standard Webhooks) are POSTed to these URLs. An endpoint that fails every \
         delivery for days is disabled; enable it once it answers again, then replay what it missed.</p>",
    );
    if endpoints.is_empty() {
        html.push_str("<p>No endpoints yet.</p>");
    } else {
        html.push_str("<table><thead><tr><th>URL</th><th>Events</th><th>State</th><th>Last delivery</th><th></th></tr></thead><tbody>");
        for endpoint in &endpoints {
            let events = if endpoint.events.is_empty() {
                "all".to_owned()
            } else {
                endpoint.events.join(", ")
            };
            let id = escape(&endpoint.id);
            let mut actions = String::new();
            if endpoint.disabled {
                actions.push_str(&format!(
                    "<form method=\"post\" action=\"/account/webhooks/enable\">{}<input type=\"hidden\" name=\"endpoint\" value=\"{id}\"><button type=\"submit\">Enable</button></form>",
                    hidden(csrf)
                ));
            }
            actions.push_str(&format!(
                "<form method=\"post\" action=\"/account/webhooks/rotate\">{}<input type=\"hidden\" name=\"endpoint\" value=\"{id}\"><button type=\"submit\" class=\"secondary\">Rotate secret</button></form>\
                 <form method=\"post\" action=\"/account/webhooks/remove\">{}<input type=\"hidden\" name=\"endpoint\" value=\"{id}\"><button type=\"submit\" class=\"secondary\">Remove</button></form>",
                hidden(csrf),
                hidden(csrf)
            ));
            html.push_str(&format!(
                "<tr><td><code>{}</code><br><span class=\"muted\">{id}</span></td><td>{}</td><td>{}</td><td>{}</td><td>{actions}</td></tr>",
                escape(&endpoint.url),
                escape(&events),
                state_text(endpoint),
                escape(&last_delivery(&attempts, &endpoint.id)),
            ));
        }
        html.push_str("</tbody></table>");
    }
    let boxes: String = EVENT_TYPES
        .iter()
        .map(|event| format!("<label><input type=\"checkbox\" name=\"event\" value=\"{event}\"> <code>{event}</code></label>"))
        .collect();
    html.push_str(&format!(
        "<form method=\"post\" action=\"/account/webhooks\">{}<label for=\"webhook-url\">Endpoint URL</label>\
         <input id=\"webhook-url\" name=\"url\" type=\"url\" placeholder=\"https://example.com/hooks/squaremcp\" required>\
         <fieldset><legend>Events (none ticked: all)</legend>{boxes}</fieldset><button type=\"submit\">Add endpoint</button></form>",
        hidden(csrf)
    ));
    html.push_str("<h3>Dead letters</h3>");
    if letters.is_empty() {
        html.push_str("<p class=\"muted\">None: every event was delivered.</p>");
    } else {
        html.push_str("<table><thead><tr><th>Id</th><th>Event</th><th>Attempts</th><th>Last error</th><th></th></tr></thead><tbody>");
        for letter in &letters {
            html.push_str(&dead_letter_row(letter, csrf));
        }
        html.push_str(&format!(
            "</tbody></table><form method=\"post\" action=\"/account/webhooks/replay\">{}<input type=\"hidden\" name=\"all\" value=\"1\"><button type=\"submit\">Replay all</button></form>",
            hidden(csrf)
        ));
    }
    html.push_str("</section>");
    html
}

fn dead_letter_row(letter: &DeadLetter, csrf: &str) -> String {
    format!(
        "<tr><td>{id}</td><td><code>{}</code><br><span class=\"muted\">{} · {}</span></td><td>{}</td><td>{}</td>\
         <td><form method=\"post\" action=\"/account/webhooks/replay\">{}<input type=\"hidden\" name=\"id\" value=\"{id}\"><button type=\"submit\" class=\"secondary\">Replay</button></form></td></tr>",
        escape(&letter.job.event.event_type),
        escape(&letter.job.event.id),
        when(letter.dead_at),
        letter.attempts,
        escape(letter.last_error.as_deref().unwrap_or("")),
        hidden(csrf),
        id = escape(&letter.id),
    )
}

/// A form sent from the account page: whose, its fields, and its ticked `event` boxes.
struct Submitted {
    session: Session,
    fields: HashMap<String, String>,
    events: Vec<String>,
}

/// The form's fields (repeated `event` boxes collected), the session and a checked CSRF token.
fn authorized(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Submitted, Box<Response>> {
    let pairs = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).unwrap_or_default();
    let events = pairs
        .iter()
        .filter(|(k, _)| k == "event")
        .map(|(_, v)| v.clone())
        .collect();
    let fields: HashMap<String, String> = pairs.into_iter().collect();
    let Some(session) = session(state, headers) else {
        return Err(Box::new(pages::error(
            StatusCode::UNAUTHORIZED,
            "Signed out",
            "Your session ended. Sign in again at /login.",
        )));
    };
    if !state.auth.check_session_csrf(
        &session,
        FORM_PURPOSE,
        fields.get("csrf").map(String::as_str).unwrap_or_default(),
    ) {
        tracing::warn!(
            customer = session.customer_id.as_str(),
            "webhook form refused: bad CSRF token"
        );
        return Err(Box::new(pages::error(
            StatusCode::FORBIDDEN,
            "Request refused",
            "The form was not sent from your account page. Reload it and try again.",
        )));
    }
    Ok(Submitted { session, fields, events })
}

fn not_configured() -> Response {
    pages::error(
        StatusCode::NOT_FOUND,
        "Not available",
        "Outbound webhooks are not configured on this gateway.",
    )
}

/// An answer page with a fixed title and a message (escaped), and the way back.
fn answer(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><p>{}</p><p><a href=\"/account\">Back to your account</a></p>",
        escape(title),
        escape(message)
    );
    pages::page(status, title, &body, &[])
}

/// A new secret, shown on this answer only.
fn secret_page(title: &str, endpoint: &Endpoint, secret: &str, note: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><p>Endpoint <code>{}</code> → <code>{}</code></p>\
         <p>Its signing secret, shown this once — copy it into your receiver now:</p>\
         <p><code class=\"secret\">{}</code></p><p class=\"muted\">{}</p><p><a href=\"/account\">Back to your account</a></p>",
        escape(title),
        escape(&endpoint.id),
        escape(&endpoint.url),
        escape(secret),
        escape(note)
    );
    let mut response = pages::page(StatusCode::OK, title, &body, &[]);
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

/// Refusals the customer can act on are shown (they name only what was typed); the rest is a 503.
fn endpoint_failure(customer: &CustomerId, e: &squaremcp_webhooks::EndpointError) -> Response {
    use squaremcp_webhooks::EndpointError as E;
    match e {
        E::InvalidUrl(_) | E::Forbidden(_) | E::UnknownEvent(_) | E::TooMany | E::NotFound(_) => {
            answer(StatusCode::BAD_REQUEST, "Not changed", &e.to_string())
        }
        E::Store(_) | E::Keyring(_) => {
            tracing::error!(customer = customer.as_str(), error = %e, "a webhook endpoint change failed");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again shortly",
                "The change could not be saved.",
            )
        }
    }
}

async fn add(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Submitted { session, fields, events } = match authorized(&state, &headers, &body) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let Some(deliverer) = &state.webhooks else {
        return not_configured();
    };
    let url = fields.get("url").cloned().unwrap_or_default();
    match deliverer
        .endpoints()
        .add(&session.customer_id, NewEndpoint { url, events })
        .await
    {
        Ok((endpoint, secret)) => secret_page(
            "Endpoint added",
            &endpoint,
            secret.expose(),
            "It is not shown again; rotate the secret if it is lost.",
        ),
        Err(e) => endpoint_failure(&session.customer_id, &e),
    }
}

async fn rotate(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Submitted { session, fields, .. } = match authorized(&state, &headers, &body) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let Some(deliverer) = &state.webhooks else {
        return not_configured();
    };
    let id = fields
        .get("endpoint")
        .map(String::as_str)
        .unwrap_or_default();
    match deliverer
        .endpoints()
        .rotate_secret(&session.customer_id, id)
        .await
    {
        Ok((endpoint, secret)) => secret_page(
            "New signing secret",
            &endpoint,
            secret.expose(),
            "The previous secret also signs for 24 hours, so your receiver can switch over without losing a delivery.",
        ),
        Err(e) => endpoint_failure(&session.customer_id, &e),
    }
}

async fn remove(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Submitted { session, fields, .. } = match authorized(&state, &headers, &body) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let Some(deliverer) = &state.webhooks else {
        return not_configured();
    };
    let id = fields
        .get("endpoint")
        .map(String::as_str)
        .unwrap_or_default();
    match deliverer.endpoints().remove(&session.customer_id, id).await {
        Ok(()) | Err(squaremcp_webhooks::EndpointError::NotFound(_)) => {
            see_other("/account#webhooks-title")
        }
        Err(e) => endpoint_failure(&session.customer_id, &e),
    }
}

async fn enable(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Submitted { session, fields, .. } = match authorized(&state, &headers, &body) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let Some(deliverer) = &state.webhooks else {
        return not_configured();
    };
    let id = fields
        .get("endpoint")
        .map(String::as_str)
        .unwrap_or_default();
    match deliverer.endpoints().enable(&session.customer_id, id).await {
        Ok(_) => see_other("/account#webhooks-title"),
        Err(e) => endpoint_failure(&session.customer_id, &e),
    }
}

/// One attempt now for the dead letter `id`, or for every one (`all`); the answer says how many
/// were delivered.
async fn replay(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Submitted { session, fields, .. } = match authorized(&state, &headers, &body) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let Some(deliverer) = &state.webhooks else {
        return not_configured();
    };
    let customer = &session.customer_id;
    let ids: Vec<String> = if fields.contains_key("all") {
        match deliverer.dead_letters(customer, usize::MAX).await {
            Ok(letters) => letters.into_iter().rev().map(|d| d.id).collect(),
            Err(e) => {
                tracing::error!(customer = customer.as_str(), error = %e, "dead letters could not be read");
                return answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Try again shortly",
                    "The dead letters could not be read.",
                );
            }
        }
    } else {
        fields.get("id").cloned().into_iter().collect()
    };
    let (mut delivered, mut failed) = (0, 0);
    for id in &ids {
        match deliverer.replay(customer, id).await {
            Ok(result) if result.delivered => delivered += 1,
            Ok(_) => failed += 1,
            Err(e) => {
                tracing::warn!(customer = customer.as_str(), dead_letter = id.as_str(), error = %e, "a replay from the account page failed");
                failed += 1;
            }
        }
    }
    let status = if failed == 0 {
        StatusCode::OK
    } else {
        StatusCode::BAD_GATEWAY
    };
    answer(
        status,
        "Replayed",
        &format!(
            "{delivered} delivered, {failed} not delivered (those stay in the list and can be replayed again)."
        ),
    )
}
