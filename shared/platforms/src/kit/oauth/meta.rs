//! Facebook Login for Pages (Meta's documented "manual flow"), after the person allowed the app
//! in Meta's dialog and picked the Pages it may use there:
//!
//! 1. `GET /{version}/oauth/access_token?client_id&redirect_uri&client_secret&code`: a
//!    short-lived user token;
//! 2. `GET /{version}/oauth/access_token?grant_type=fb_exchange_token&client_id&client_secret&fb_exchange_token`:
//!    a long-lived user token, so that the Page tokens read with it do not expire;
//! 3. `GET /{version}/me/accounts?fields=…` (the app's `profile_url`) with that token: the Pages
//!    granted, each with its Page token and the Instagram professional account linked to it.
//!
//! Each Page becomes a Facebook credential `{"page_id", "access_token"}`, or each linked
//! Instagram account an Instagram one `{"login": "facebook", "ig_user_id", "access_token"}`
//! (the Page token works for the Instagram account of its Page). The user token itself is not
//! kept: the tools act as the Page.
//!
//! Meta documents the token endpoint as a GET, so the client secret and the short-lived token go
//! in its query; that URL is never logged (transport errors drop it) and never shown.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use squaremcp_core::connections::RefreshError;
use squaremcp_core::{Platform, Secret};

use super::{Configured, ConnectedAccount, OAuthClientError};

/// Instagram Login's API host, where its long-lived tokens are renewed.
pub const INSTAGRAM_ORIGIN: &str = "https://graph.instagram.com";
/// Instagram Login tokens live 60 days and can be renewed once a day old, never once expired:
/// renewing in their last week keeps an account that is used weekly connected.
pub const INSTAGRAM_REFRESH_MARGIN: i64 = 7 * 86_400;

/// Whether `document` is an Instagram Login token that says when it expires: the gateway renews
/// those itself (Facebook Login's Page tokens do not expire).
pub(super) fn is_instagram_login(platform: Platform, document: &Value) -> bool {
    platform == Platform::Instagram
        && document.get("login").and_then(Value::as_str) == Some("instagram")
        && document.get("expires_at").and_then(Value::as_i64).is_some()
}

/// `GET /refresh_access_token?grant_type=ig_refresh_token&access_token=…` (Meta's documented
/// form, the token in the query): a new long-lived token; the rest of the document is kept.
pub(super) async fn refresh_instagram_login(
    http: &reqwest::Client,
    origin: &str,
    document: &Secret<Value>,
) -> Result<Secret<Value>, RefreshError> {
    let token = document
        .expose()
        .get("access_token")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let url = format!("{}/refresh_access_token", origin.trim_end_matches('/'));
    let response = http
        .get(url)
        .query(&[("grant_type", "ig_refresh_token"), ("access_token", token)])
        .send()
        .await
        .map_err(|e| RefreshError::Unavailable(e.without_url().to_string()))?;
    let body = match answer(Platform::Instagram, response).await {
        Ok(body) => body,
        Err(OAuthClientError::Refused { error, .. }) => return Err(RefreshError::Refused(error)),
        Err(e) => return Err(RefreshError::Unavailable(e.to_string())),
    };
    let renewed = body
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty());
    let (Some(renewed), Some(expires_in)) =
        (renewed, body.get("expires_in").and_then(Value::as_i64))
    else {
        return Err(RefreshError::Unavailable(
            "the renewal answer has no access_token or expires_in".into(),
        ));
    };
    let mut next = document.expose().clone();
    next["access_token"] = json!(renewed);
    next["expires_at"] = json!(super::now() + expires_in);
    Ok(Secret::new(next))
}

/// Which accounts a Facebook Login connects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaAccounts {
    /// Each Page granted: a Facebook credential.
    Pages,
    /// The Instagram professional account linked to each Page granted: an Instagram credential.
    InstagramOfPages,
}

/// The profile endpoint of both Meta apps: the Pages with what the credentials need. One page
/// of up to 100 Pages is read; a person granting more is rare enough to name in the docs.
pub const PAGES_URL: &str = "https://graph.facebook.com/{version}/me/accounts?fields=id,name,access_token,instagram_business_account%7Bid,username%7D&limit=100";

pub(super) async fn connect(
    http: &reqwest::Client,
    configured: &Configured,
    accounts: MetaAccounts,
    code: &str,
    redirect_uri: &str,
) -> Result<Vec<ConnectedAccount>, OAuthClientError> {
    let platform = configured.app.platform;
    let (id, secret) = (
        configured.client_id.as_str(),
        configured.client_secret.expose().as_str(),
    );
    let short = token(
        http,
        platform,
        &configured.token_url,
        &[
            ("client_id", id),
            ("redirect_uri", redirect_uri),
            ("client_secret", secret),
            ("code", code),
        ],
    )
    .await?;
    let long = token(
        http,
        platform,
        &configured.token_url,
        &[
            ("grant_type", "fb_exchange_token"),
            ("client_id", id),
            ("client_secret", secret),
            ("fb_exchange_token", short.expose().as_str()),
        ],
    )
    .await?;
    let pages = get(http, platform, &configured.profile_url, long.expose()).await?;
    let pages = pages
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| unavailable(platform, "the Pages answer has no data list"))?;
    Ok(credentials(pages, accounts))
}

/// Instagram Login after the code exchange (`answer`, from `api.instagram.com/oauth/access_token`):
/// `GET graph.instagram.com/access_token?grant_type=ig_exchange_token&client_secret&access_token`
/// for a 60-day token, then `GET /{version}/me?fields=user_id,username` (the app's
/// `profile_url`) with it: one Instagram credential, renewed later ([`refresh_instagram_login`]).
pub(super) async fn connect_instagram_login(
    http: &reqwest::Client,
    configured: &Configured,
    origin: &str,
    answer: &Value,
) -> Result<ConnectedAccount, OAuthClientError> {
    let platform = Platform::Instagram;
    let short = answer
        .get("access_token")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let url = format!("{}/access_token", origin.trim_end_matches('/'));
    let query = [
        ("grant_type", "ig_exchange_token"),
        ("client_secret", configured.client_secret.expose().as_str()),
        ("access_token", short),
    ];
    let response = http
        .get(url)
        .query(&query)
        .send()
        .await
        .map_err(|e| unavailable(platform, &e.without_url().to_string()))?;
    let exchanged = self::answer(platform, response).await?;
    let long = exchanged
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty());
    let (Some(long), Some(expires_in)) =
        (long, exchanged.get("expires_in").and_then(Value::as_i64))
    else {
        return Err(unavailable(
            platform,
            "the long-lived token answer has no access_token or expires_in",
        ));
    };
    let profile = get(http, platform, &configured.profile_url, long).await?;
    // `user_id` is the professional account's id the API paths use (a string; a number is read too).
    let ig_user_id = match profile.get("user_id") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        Some(Value::Number(id)) => id.to_string(),
        _ => {
            return Err(unavailable(
                platform,
                "the profile does not name the account (user_id)",
            ));
        }
    };
    let label = profile
        .get("username")
        .and_then(Value::as_str)
        .unwrap_or(&ig_user_id)
        .to_owned();
    let document = json!({"login": "instagram", "ig_user_id": ig_user_id, "access_token": long, "expires_at": super::now() + expires_in});
    Ok(ConnectedAccount {
        account_name: account_name(&label, &ig_user_id),
        document: Secret::new(document),
    })
}

/// The credentials the Pages answer holds, named after the Page (or the Instagram username) and
/// unique among themselves. Entries without an id or a token are skipped.
fn credentials(pages: &[Value], accounts: MetaAccounts) -> Vec<ConnectedAccount> {
    let mut names = BTreeSet::new();
    let mut connected = Vec::new();
    for page in pages {
        let text = |value: &Value, field: &str| {
            value
                .get(field)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let (Some(page_id), Some(page_token)) = (text(page, "id"), text(page, "access_token"))
        else {
            continue;
        };
        let (label, id, document) = match accounts {
            MetaAccounts::Pages => {
                let label = text(page, "name").unwrap_or_else(|| page_id.clone());
                (
                    label,
                    page_id.clone(),
                    json!({"page_id": page_id, "access_token": page_token}),
                )
            }
            MetaAccounts::InstagramOfPages => {
                let Some(instagram) = page.get("instagram_business_account") else {
                    continue;
                };
                let Some(ig_user_id) = text(instagram, "id") else {
                    continue;
                };
                let label = text(instagram, "username").unwrap_or_else(|| ig_user_id.clone());
                (
                    label,
                    ig_user_id.clone(),
                    json!({"login": "facebook", "ig_user_id": ig_user_id, "access_token": page_token}),
                )
            }
        };
        let mut name = account_name(&label, &id);
        if !names.insert(name.clone()) {
            // Two Pages with the same name: the id tells them apart.
            name = account_name(&format!("{label}-{id}"), &id);
            names.insert(name.clone());
        }
        connected.push(ConnectedAccount {
            account_name: name,
            document: Secret::new(document),
        });
    }
    connected
}

/// An account name from a Page name or username: lower case, spaces as `-`, only the characters
/// an account name allows; the id when nothing is left.
fn account_name(label: &str, id: &str) -> String {
    let cleaned: String = label
        .trim()
        .chars()
        .map(|c| {
            if c.is_whitespace() {
                '-'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
        .take(64)
        .collect();
    if cleaned.trim_matches('-').is_empty() {
        id.chars().take(64).collect()
    } else {
        cleaned
    }
}

fn unavailable(platform: Platform, why: &str) -> OAuthClientError {
    OAuthClientError::Unavailable {
        platform,
        why: why.to_owned(),
    }
}

/// A token from Meta's token endpoint (a GET with the grant in the query).
async fn token(
    http: &reqwest::Client,
    platform: Platform,
    url: &str,
    query: &[(&str, &str)],
) -> Result<Secret<String>, OAuthClientError> {
    let response = http
        .get(url)
        .query(query)
        .send()
        .await
        .map_err(|e| unavailable(platform, &e.without_url().to_string()))?;
    let body = answer(platform, response).await?;
    body.get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(|t| Secret::new(t.to_owned()))
        .ok_or_else(|| unavailable(platform, "the token answer has no access_token"))
}

/// A Graph read with the user token as a bearer (never in the URL).
async fn get(
    http: &reqwest::Client,
    platform: Platform,
    url: &str,
    user_token: &str,
) -> Result<Value, OAuthClientError> {
    let mut bearer = reqwest::header::HeaderValue::from_str(&format!("Bearer {user_token}"))
        .map_err(|_| unavailable(platform, "the access token cannot go in a header"))?;
    bearer.set_sensitive(true);
    let response = http
        .get(url)
        .header(reqwest::header::AUTHORIZATION, bearer)
        .send()
        .await
        .map_err(|e| unavailable(platform, &e.without_url().to_string()))?;
    answer(platform, response).await
}

/// Graph's answer: the JSON of a success; a 4xx is a refusal named by Graph's error `type` and
/// `code` (never its message, which may quote what was sent).
async fn answer(
    platform: Platform,
    response: reqwest::Response,
) -> Result<Value, OAuthClientError> {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    match status {
        200..=299 if body.is_object() => Ok(body),
        200..=299 => Err(unavailable(platform, "the answer is not a JSON object")),
        400..=499 => {
            let error = &body["error"];
            let kind: String = error["type"]
                .as_str()
                .unwrap_or("refused")
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .take(40)
                .collect();
            let code = error["code"]
                .as_u64()
                .map(|c| format!(" {c}"))
                .unwrap_or_default();
            Err(OAuthClientError::Refused {
                platform,
                error: format!("{kind}{code}"),
            })
        }
        _ => Err(unavailable(platform, &format!("HTTP {status}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages() -> Vec<Value> {
        vec![
            json!({"id": "1001", "name": "Ada's Bakery", "access_token": "p1", "instagram_business_account": {"id": "1789", "username": "adasbakery"}}),
            json!({"id": "1002", "name": "Ada's Bakery", "access_token": "p2"}),
            json!({"id": "1003", "name": "☕", "access_token": "p3"}),
            json!({"id": "1004", "name": "No token"}),
        ]
    }

    #[test]
    fn each_page_with_a_token_is_a_facebook_credential_under_a_unique_name() {
        let connected = credentials(&pages(), MetaAccounts::Pages);
        let names: Vec<&str> = connected.iter().map(|c| c.account_name.as_str()).collect();
        assert_eq!(names, ["adas-bakery", "adas-bakery-1002", "1003"]);
        assert_eq!(
            connected[1].document.expose(),
            &json!({"page_id": "1002", "access_token": "p2"})
        );
    }

    #[test]
    fn only_pages_with_a_linked_instagram_account_give_instagram_credentials() {
        let connected = credentials(&pages(), MetaAccounts::InstagramOfPages);
        assert_eq!(connected.len(), 1);
        assert_eq!(connected[0].account_name, "adasbakery");
        assert_eq!(
            connected[0].document.expose(),
            &json!({"login": "facebook", "ig_user_id": "1789", "access_token": "p1"})
        );
    }
}
