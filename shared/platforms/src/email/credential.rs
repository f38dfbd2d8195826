//! The email credential document: one mailbox, its IMAP and SMTP servers, and a password (an app
//! password for Gmail and Microsoft 365) or an OAuth 2.0 access token for SASL XOAUTH2. No
//! message here repeats a value, and the type has no `Debug`.

use serde_json::Value;

use super::CREDENTIAL_EXAMPLE;
use crate::kit::{CredentialDocument, CredentialError, Fields};

const KNOWN: &[&str] = &[
    "address",
    "username",
    "password",
    "oauth2",
    "imap_host",
    "imap_port",
    "imap_security",
    "smtp_host",
    "smtp_port",
    "smtp_security",
];
const OAUTH2_EXAMPLE: &str = r#"{"access_token": "ya29.…"}"#;
/// `oauth2`'s keys: a pasted token has only `access_token`; a Connect (Gmail, Microsoft 365)
/// adds what its refresh needs.
const OAUTH2_KNOWN: &[&str] = &["access_token", "refresh_token", "expires_at", "scopes", "provider"];

/// How a connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Security {
    /// TLS from the first byte (IMAP 993, SMTP 465).
    Tls,
    /// Plain, then upgraded with STARTTLS before anything secret is sent (IMAP 143, SMTP 587).
    StartTls,
    /// Plaintext: only to hosts the operator allows (private hosts).
    None,
}

/// A server: the customer's host name, port and protection.
pub(super) struct Server {
    pub host: String,
    pub port: u16,
    pub security: Security,
}

/// How the account logs in.
pub(super) enum Secret {
    Password(String),
    /// A current access token, used as SASL XOAUTH2. Refreshing it is the account connection's
    /// job; an expired token is reported as `auth_expired`. The refresh token is kept only to be
    /// kept out of messages.
    OAuth2 { access_token: String, refresh_token: Option<String> },
}

pub(super) struct Account {
    /// The mailbox's address, the `From` of what it sends.
    pub address: lettre::Address,
    pub username: String,
    pub secret: Secret,
    pub imap: Server,
    pub smtp: Server,
}

impl CredentialDocument for Account {
    const EXAMPLE: &'static str = CREDENTIAL_EXAMPLE;

    fn parse(document: &Value) -> Result<Self, CredentialError> {
        let fields = Fields::of(document, KNOWN, CREDENTIAL_EXAMPLE)?;
        let address = fields.string("address", "the mailbox's email address, e.g. you@example.com")?;
        let address: lettre::Address = address
            .parse()
            .map_err(|_| CredentialError::Malformed { field: "address", problem: "is not an email address".to_owned() })?;
        let username = fields.optional_string("username")?.map_or_else(|| address.to_string(), str::to_owned);
        let password = fields.optional_string("password")?;
        let oauth2 = fields.optional_object("oauth2", OAUTH2_KNOWN, OAUTH2_EXAMPLE)?;
        let secret = match (password, oauth2) {
            (Some(password), None) => Secret::Password(password.to_owned()),
            (None, Some(oauth2)) => Secret::OAuth2 {
                access_token: oauth2.string("access_token", "the provider's OAuth 2.0 access token for IMAP and SMTP")?.to_owned(),
                refresh_token: oauth2.optional_string("refresh_token")?.map(str::to_owned),
            },
            (Some(_), Some(_)) => {
                return Err(CredentialError::Malformed { field: "oauth2", problem: "and `password` are exclusive: give one".to_owned() });
            }
            (None, None) => {
                return Err(CredentialError::Missing {
                    field: "password",
                    hint: "the mailbox password, or an app password for Gmail (Google Account → Security → App passwords) \
                           and Microsoft 365; or give `oauth2` instead",
                });
            }
        };
        let imap = server(&fields, ["imap_host", "imap_port", "imap_security"], [993, 143])?;
        let smtp = server(&fields, ["smtp_host", "smtp_port", "smtp_security"], [465, 587])?;
        Ok(Self { address, username, secret, imap, smtp })
    }

    fn secrets(&self) -> Vec<&str> {
        match &self.secret {
            Secret::Password(password) => vec![password],
            Secret::OAuth2 { access_token, refresh_token } => std::iter::once(access_token).chain(refresh_token).map(String::as_str).collect(),
        }
    }
}

/// `[host, port, security]` fields; the port defaults by security (`[tls, starttls and none]`).
fn server(fields: &Fields<'_>, [host, port, security]: [&'static str; 3], default_ports: [u16; 2]) -> Result<Server, CredentialError> {
    let name = fields.string(host, "the server's host name, from the provider's IMAP/SMTP settings page")?;
    if name.contains(['/', ':', ' ', '@']) && name.parse::<std::net::Ipv6Addr>().is_err() {
        return Err(CredentialError::Malformed { field: host, problem: "must be a bare host name, without scheme, port or path".to_owned() });
    }
    let security = match fields.optional_string(security)? {
        None | Some("tls") => Security::Tls,
        Some("starttls") => Security::StartTls,
        Some("none") => Security::None,
        Some(_) => return Err(CredentialError::Malformed { field: security, problem: "must be `tls`, `starttls` or `none`".to_owned() }),
    };
    let default = if security == Security::Tls { default_ports[0] } else { default_ports[1] };
    let port = fields.optional_integer(port, 1, u64::from(u16::MAX))?.and_then(|p| u16::try_from(p).ok()).unwrap_or(default);
    Ok(Server { host: name.to_owned(), port, security })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_example_parses_with_defaults_for_what_is_left_out() {
        let example: Value = serde_json::from_str(CREDENTIAL_EXAMPLE).expect("JSON");
        let account = Account::parse(&example).expect("the example parses");
        assert_eq!(account.imap.port, 993);
        assert_eq!(account.smtp.security, Security::Tls);
        let short = json!({"address": "a@b.test", "password": "pw-123456", "imap_host": "imap.b.test", "smtp_host": "smtp.b.test",
            "smtp_security": "starttls"});
        let account = Account::parse(&short).expect("minimal");
        assert_eq!(account.username, "a@b.test");
        assert_eq!((account.imap.port, account.smtp.port), (993, 587));
    }

    #[test]
    fn problems_name_the_field_and_never_the_value() {
        let secret = "hunter2-never-shown";
        let base = json!({"address": "a@b.test", "password": secret, "imap_host": "imap.b.test", "smtp_host": "smtp.b.test"});
        let with = |key: &str, value: Value| {
            let mut document = base.clone();
            document[key] = value;
            document
        };
        let cases = [
            (with("imap_security", json!("ssl")), "`imap_security` must be"),
            (with("imap_port", json!(70000)), "`imap_port` must be a whole number"),
            (with("address", json!("not-an-address")), "`address` is not an email address"),
            (with("imap_host", json!("imaps://imap.b.test:993")), "`imap_host` must be a bare host name"),
            (with("oauth2", json!({"access_token": secret})), "are exclusive"),
            (json!({"address": "a@b.test", "imap_host": "i", "smtp_host": "s"}), "`password` is missing"),
            (json!({"address": "a@b.test", "oauth2": {"token": secret}, "imap_host": "i", "smtp_host": "s"}), "unknown key `token`"),
        ];
        for (document, expected) in cases {
            let message = Account::parse(&document).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains(expected), "{document}: {message}");
            assert!(!message.contains(secret), "{message}");
        }
        let oauth = json!({"address": "a@b.test", "oauth2": {"access_token": secret}, "imap_host": "i", "smtp_host": "s"});
        let account = Account::parse(&oauth).expect("oauth2");
        assert_eq!(account.secrets(), [secret]);
        // What a Connect stores: the refresh token is a secret too.
        let connected = json!({"address": "a@b.test", "imap_host": "i", "smtp_host": "s", "oauth2": {"provider": "gmail",
            "access_token": secret, "refresh_token": "1//refresh-never-shown", "expires_at": 1_900_000_000, "scopes": ["openid"]}});
        let account = Account::parse(&connected).expect("a connected mailbox");
        assert_eq!(account.secrets(), [secret, "1//refresh-never-shown"]);
    }
}
