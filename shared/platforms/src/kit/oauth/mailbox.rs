//! "Connect Gmail" and "Connect Microsoft 365": a mailbox whose IMAP and SMTP sign-in is SASL
//! XOAUTH2 with an OAuth 2.0 access token that the connection machinery keeps fresh.
//!
//! Both are apps of the one `email` platform, told apart by their Connect name (`gmail`,
//! `microsoft365`), which the stored document keeps as `oauth2.provider` so that a refresh finds
//! its token endpoint. The authorization asks for `openid email` besides the mail scopes, and the
//! mailbox's address is read from the ID token the token endpoint returns (`email`, else
//! Microsoft's `preferred_username`). That ID token came straight from the provider's token
//! endpoint over TLS, so its signature is not checked (OpenID Connect Core §3.1.3.7).
//!
//! The credential document is the email platform's, with the provider's servers:
//! `{"address", "imap_host", "imap_port", "imap_security", "smtp_host", "smtp_port",
//! "smtp_security", "oauth2": {"provider", "access_token", "refresh_token", "expires_at", "scopes"}}`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use squaremcp_core::Secret;
use squaremcp_core::connections::RefreshError;

use super::{ConnectedAccount, OAuthClientError, now};

/// What a mailbox provider's app needs besides its OAuth endpoints.
#[derive(Debug, PartialEq, Eq)]
pub struct MailboxApp {
    /// The button's name: "Gmail", "Microsoft 365".
    pub label: &'static str,
    /// The IMAP server, as `security://host:port` (security: `tls`, `starttls` or `none`).
    pub imap: &'static str,
    /// The SMTP server, likewise.
    pub smtp: &'static str,
    /// The scopes are sent again with a refresh (Microsoft's identity platform wants them).
    pub scope_on_refresh: bool,
}

/// A mail server where the connected mailbox is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailServer {
    pub security: String,
    pub host: String,
    pub port: u16,
}

/// The IMAP and SMTP servers of a configured mailbox app (the operator may point them elsewhere
/// with `SQUAREMCP_<NAME>_IMAP_SERVER` / `_SMTP_SERVER`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailServers {
    pub imap: MailServer,
    pub smtp: MailServer,
}

/// Reads `security://host:port`.
pub fn server(text: &str) -> Result<MailServer, String> {
    let shape = || {
        format!(
            "`{text}` must look like tls://imap.example.com:993 (tls, starttls or none, a host and a port)"
        )
    };
    let url = reqwest::Url::parse(text.trim()).map_err(|_| shape())?;
    if !matches!(url.scheme(), "tls" | "starttls" | "none") {
        return Err(shape());
    }
    if !matches!(url.path(), "" | "/")
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
    {
        return Err(shape());
    }
    let host = url
        .host_str()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
        .filter(|h| !h.is_empty())
        .ok_or_else(shape)?;
    let port = url.port().ok_or_else(shape)?;
    Ok(MailServer {
        security: url.scheme().to_owned(),
        host: host.to_owned(),
        port,
    })
}

/// The claims of an ID token, unverified (see the module documentation for why that is sound).
fn id_token_claims(id_token: &str) -> Option<Value> {
    let payload = id_token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The mailbox's address from the token answer's ID token.
pub(super) fn address(answer: &Value) -> Result<String, String> {
    let id_token = answer
        .get("id_token")
        .and_then(Value::as_str)
        .ok_or("the token answer has no ID token (are `openid email` among the scopes?)")?;
    let claims = id_token_claims(id_token).ok_or("the ID token is not readable")?;
    if claims.get("email_verified").and_then(Value::as_bool) == Some(false) {
        return Err("the account's email address is not verified".to_owned());
    }
    ["email", "preferred_username"]
        .iter()
        .filter_map(|claim| claims.get(*claim).and_then(Value::as_str))
        .find(|candidate| candidate.parse::<lettre::Address>().is_ok())
        .map(str::to_owned)
        .ok_or_else(|| "the ID token names no email address".to_owned())
}

fn server_fields(document: &mut Value, prefix: &str, server: &MailServer) {
    document[format!("{prefix}_host")] = json!(server.host);
    document[format!("{prefix}_port")] = json!(server.port);
    document[format!("{prefix}_security")] = json!(server.security);
}

/// Puts a token answer's tokens into `oauth2`: the access token, the refresh token when one was
/// sent (Microsoft rotates them; Google sends none on a refresh and the old one stays), the
/// expiry and the granted scopes.
fn merge_tokens(oauth2: &mut Value, answer: &Value) {
    oauth2["access_token"] = answer["access_token"].clone();
    if let Some(refresh) = answer
        .get("refresh_token")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
    {
        oauth2["refresh_token"] = json!(refresh);
    }
    match answer.get("expires_in").and_then(Value::as_i64) {
        Some(seconds) => oauth2["expires_at"] = json!(now() + seconds),
        None => {
            if let Some(map) = oauth2.as_object_mut() {
                map.remove("expires_at");
            }
        }
    }
    if let Some(scope) = answer.get("scope").and_then(Value::as_str) {
        let scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
        oauth2["scopes"] = json!(scopes);
    }
}

/// The email credential a Connect produces, named after the mailbox's address.
pub(super) fn connected(
    name: &str,
    servers: &MailServers,
    answer: &Value,
) -> Result<ConnectedAccount, OAuthClientError> {
    let address = address(answer).map_err(|why| OAuthClientError::Unavailable {
        platform: squaremcp_core::Platform::Email,
        why,
    })?;
    let mut document = json!({"address": address});
    server_fields(&mut document, "imap", &servers.imap);
    server_fields(&mut document, "smtp", &servers.smtp);
    let mut oauth2 = json!({"provider": name});
    merge_tokens(&mut oauth2, answer);
    document["oauth2"] = oauth2;
    let account_name: String = address.chars().take(64).collect();
    Ok(ConnectedAccount {
        account_name,
        document: Secret::new(document),
    })
}

/// The Connect name of the app that issued a stored document's tokens.
pub(super) fn provider(document: &Value) -> Option<&str> {
    document.pointer("/oauth2/provider").and_then(Value::as_str)
}

pub(super) fn refresh_token(document: &Value) -> Option<&str> {
    document
        .pointer("/oauth2/refresh_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
}

pub(super) fn expires_at(document: &Value) -> Option<i64> {
    document
        .pointer("/oauth2/expires_at")
        .and_then(Value::as_i64)
}

/// The document after a refresh: everything kept but the tokens.
pub(super) fn refreshed(previous: &Value, answer: &Value) -> Result<Secret<Value>, RefreshError> {
    let mut document = previous.clone();
    let Some(oauth2) = document.get_mut("oauth2").filter(|o| o.is_object()) else {
        return Err(RefreshError::Refused(
            "the connection holds no OAuth tokens".into(),
        ));
    };
    merge_tokens(oauth2, answer);
    Ok(Secret::new(document))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_token(claims: Value) -> String {
        format!(
            "eyJhbGciOiJSUzI1NiJ9.{}.c2lnbmF0dXJl",
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    #[test]
    fn servers_are_security_host_and_port() {
        assert_eq!(
            server("tls://imap.gmail.com:993"),
            Ok(MailServer {
                security: "tls".into(),
                host: "imap.gmail.com".into(),
                port: 993
            })
        );
        assert_eq!(
            server("starttls://[::1]:143").map(|s| s.host),
            Ok("::1".to_owned())
        );
        for wrong in [
            "imap.gmail.com:993",
            "ssl://imap.gmail.com:993",
            "tls://imap.gmail.com",
            "tls://imap.gmail.com:993/x",
            "tls://u@h:1",
        ] {
            assert!(
                server(wrong).is_err_and(|why| why.contains("must look like")),
                "{wrong}"
            );
        }
    }

    #[test]
    fn the_address_comes_from_the_id_token() {
        let answer = |claims: Value| json!({"access_token": "a", "id_token": id_token(claims)});
        assert_eq!(
            address(&answer(
                json!({"email": "ada@gmail.com", "email_verified": true})
            )),
            Ok("ada@gmail.com".to_owned())
        );
        // Microsoft: no `email` claim for many work accounts, the sign-in name instead.
        assert_eq!(
            address(&answer(json!({"preferred_username": "ada@contoso.com"}))),
            Ok("ada@contoso.com".to_owned())
        );
        assert_eq!(
            address(&answer(
                json!({"email": "not an address", "preferred_username": "ada@contoso.com"})
            )),
            Ok("ada@contoso.com".into())
        );
        assert!(
            address(&answer(
                json!({"email": "ada@gmail.com", "email_verified": false})
            ))
            .is_err_and(|w| w.contains("not verified"))
        );
        assert!(
            address(&answer(json!({"sub": "1"}))).is_err_and(|w| w.contains("no email address"))
        );
        assert!(address(&json!({"access_token": "a"})).is_err_and(|w| w.contains("no ID token")));
        assert!(
            address(&json!({"id_token": "not-a-jwt"})).is_err_and(|w| w.contains("not readable"))
        );
    }

    #[test]
    fn a_connect_stores_the_servers_and_a_refresh_only_the_tokens() {
        let servers = MailServers {
            imap: server("tls://imap.gmail.com:993").unwrap_or_else(|e| panic!("{e}")),
            smtp: server("tls://smtp.gmail.com:465").unwrap_or_else(|e| panic!("{e}")),
        };
        let answer = json!({"access_token": "a1", "refresh_token": "r1", "expires_in": 3599, "scope": "https://mail.google.com/ openid",
            "id_token": id_token(json!({"email": "ada@gmail.com"}))});
        let connected = connected("gmail", &servers, &answer).unwrap_or_else(|e| panic!("{e}"));
        let document = connected.document.expose().clone();
        assert_eq!(connected.account_name, "ada@gmail.com");
        assert_eq!(
            (
                document["imap_host"].as_str(),
                document["imap_port"].as_u64(),
                document["smtp_security"].as_str()
            ),
            (Some("imap.gmail.com"), Some(993), Some("tls"))
        );
        assert_eq!(document["oauth2"]["provider"], "gmail");
        assert_eq!(refresh_token(&document), Some("r1"));
        assert!(expires_at(&document).is_some_and(|at| at > now() + 3000));
        assert_eq!(
            document["oauth2"]["scopes"],
            json!(["https://mail.google.com/", "openid"])
        );
        assert!(document.get("id_token").is_none() && document["oauth2"].get("id_token").is_none());

        // Google sends no new refresh token: the old one stays; Microsoft rotates it.
        let google = refreshed(
            &document,
            &json!({"access_token": "a2", "expires_in": 3599}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (
                google.expose()["oauth2"]["access_token"].as_str(),
                refresh_token(google.expose())
            ),
            (Some("a2"), Some("r1"))
        );
        let microsoft = refreshed(
            &document,
            &json!({"access_token": "a3", "refresh_token": "r2", "expires_in": 10}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(refresh_token(microsoft.expose()), Some("r2"));
        assert_eq!(microsoft.expose()["address"], "ada@gmail.com");
        assert!(
            refreshed(
                &json!({"address": "a@b.c", "password": "x"}),
                &json!({"access_token": "a"})
            )
            .is_err()
        );
    }
}
