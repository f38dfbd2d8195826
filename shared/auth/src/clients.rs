//! Dynamic client registration (RFC 7591) and client authentication at the token endpoint.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use squaremcp_core::{PutMode, Secret, StoreError, random};

use crate::client_documents::{ClientDocumentError, is_document_client_id};
use crate::client_network::{client_network, seconds_left_in};
use crate::crypto::{constant_time_eq, sha256_hex};
use crate::uris::check_redirect_uri;
use crate::{Auth, AuthError, OAuthError};

const MAX_REDIRECT_URIS: usize = 10;
const MAX_NAME_CHARS: usize = 120;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// A public client: PKCE is its only proof.
    None,
    ClientSecretPost,
    ClientSecretBasic,
}

impl ClientAuthMethod {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "none" => Some(Self::None),
            "client_secret_post" => Some(Self::ClientSecretPost),
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretPost => "client_secret_post",
            Self::ClientSecretBasic => "client_secret_basic",
        }
    }
}

/// A registered client as stored (`oauth:client:<id>`). The secret is kept only as a hash.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Client {
    pub client_id: String,
    #[serde(default)]
    pub client_name: Option<String>,
    #[serde(default)]
    pub client_uri: Option<String>,
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: ClientAuthMethod,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub secret_hash: Option<String>,
    pub created_at: i64,
    /// Set by the first token exchange; until then the client expires.
    #[serde(default)]
    pub used: bool,
}

impl Client {
    /// What the consent page calls it.
    pub fn display_name(&self) -> &str {
        self.client_name.as_deref().unwrap_or("An unnamed application")
    }

    /// RFC 7591 §3.2.1: the registered metadata.
    fn metadata(&self) -> Value {
        let mut out = json!({
            "client_id": self.client_id,
            "client_id_issued_at": self.created_at,
            "redirect_uris": self.redirect_uris,
            "token_endpoint_auth_method": self.token_endpoint_auth_method.as_str(),
            "grant_types": self.grant_types,
            "response_types": self.response_types,
        });
        for (name, value) in [("client_name", &self.client_name), ("client_uri", &self.client_uri), ("scope", &self.scope)] {
            if let Some(value) = value {
                out[name] = json!(value);
            }
        }
        out
    }
}

/// A new registration: the client and, for confidential clients, the secret, shown once.
pub struct Registered {
    pub client: Client,
    pub secret: Option<Secret<String>>,
}

impl Registered {
    /// The 201 body. `client_secret_expires_at` is the integer 0 (never) whenever a secret is issued.
    pub fn response(&self) -> Value {
        let mut body = self.client.metadata();
        if let Some(secret) = &self.secret {
            body["client_secret"] = json!(secret.expose());
            body["client_secret_expires_at"] = json!(0);
        }
        body
    }
}

/// What the token and revocation endpoints were given to identify the client.
#[derive(Debug, Default)]
pub struct ClientCredentials {
    /// From `Authorization: Basic` (client_secret_basic).
    pub basic: Option<(String, Secret<String>)>,
    /// From the form (client_secret_post, or a public client's id).
    pub client_id: Option<String>,
    pub client_secret: Option<Secret<String>>,
    /// The caller's address, for the limits on fetching client metadata documents.
    pub client_ip: String,
}

pub(crate) fn client_key(client_id: &str) -> String {
    format!("oauth:client:{client_id}")
}

/// What the consent page shows must read as what it is (see [`is_format_character`]).
pub(crate) fn check_client_name(name: &str) -> Result<(), String> {
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(|c| c.is_control() || is_format_character(c)) {
        return Err(format!(
            "client_name must be 1-{MAX_NAME_CHARS} printable characters, without invisible or text-direction characters"
        ));
    }
    Ok(())
}

pub(crate) fn check_client_uri(uri: &str) -> Result<(), String> {
    if uri.len() <= 2000 && (uri.starts_with("https://") || uri.starts_with("http://")) && url::Url::parse(uri).is_ok() {
        Ok(())
    } else {
        Err("client_uri must be an http(s) URL".into())
    }
}

pub(crate) fn text_field(object: &Map<String, Value>, name: &str) -> Result<Option<String>, OAuthError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned()).filter(|s| !s.is_empty())),
        Some(_) => Err(OAuthError::InvalidClientMetadata(format!("`{name}` must be a string"))),
    }
}

pub(crate) fn list_field(object: &Map<String, Value>, name: &str) -> Result<Option<Vec<String>>, OAuthError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| OAuthError::InvalidClientMetadata(format!("`{name}` must be an array of strings")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(OAuthError::InvalidClientMetadata(format!("`{name}` must be an array of strings"))),
    }
}

impl Auth {
    /// RFC 7591 registration, rate-limited per client IP and overall.
    pub async fn register_client(&self, metadata: &Value, client_ip: &str) -> Result<Registered, OAuthError> {
        let Value::Object(object) = metadata else {
            return Err(OAuthError::InvalidClientMetadata("the body must be a JSON object".into()));
        };
        let redirect_uris = list_field(object, "redirect_uris")?
            .filter(|uris| !uris.is_empty())
            .ok_or_else(|| OAuthError::InvalidRedirectUri("`redirect_uris` must list at least one URI".into()))?;
        if redirect_uris.len() > MAX_REDIRECT_URIS {
            return Err(OAuthError::InvalidRedirectUri(format!("at most {MAX_REDIRECT_URIS} redirect URIs")));
        }
        for uri in &redirect_uris {
            check_redirect_uri(uri).map_err(OAuthError::InvalidRedirectUri)?;
        }
        // RFC 7591 §2: the default is client_secret_basic.
        let method = match text_field(object, "token_endpoint_auth_method")? {
            None => ClientAuthMethod::ClientSecretBasic,
            Some(text) => ClientAuthMethod::parse(&text).ok_or_else(|| {
                OAuthError::InvalidClientMetadata(format!(
                    "token_endpoint_auth_method `{text}` is not supported; use none, client_secret_post or client_secret_basic"
                ))
            })?,
        };
        if let Some(grants) = list_field(object, "grant_types")?
            && let Some(bad) = grants.iter().find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token"))
        {
            return Err(OAuthError::InvalidClientMetadata(format!("grant type `{bad}` is not supported")));
        }
        if let Some(types) = list_field(object, "response_types")?
            && let Some(bad) = types.iter().find(|t| t.as_str() != "code")
        {
            return Err(OAuthError::InvalidClientMetadata(format!("response type `{bad}` is not supported; use code")));
        }
        let client_name = text_field(object, "client_name")?;
        if let Some(name) = &client_name {
            check_client_name(name).map_err(OAuthError::InvalidClientMetadata)?;
        }
        let client_uri = text_field(object, "client_uri")?;
        if let Some(uri) = &client_uri {
            check_client_uri(uri).map_err(OAuthError::InvalidClientMetadata)?;
        }
        let scope = text_field(object, "scope")?.filter(|s| s.len() <= 1000);

        self.count_registration(client_ip).await?;
        let now = self.now();
        let secret = (method != ClientAuthMethod::None).then(|| Secret::new(format!("sqs_{}", random::token::<32>())));
        let client = Client {
            client_id: format!("mcp_{}", random::hex_id::<16>()),
            client_name,
            client_uri,
            redirect_uris,
            token_endpoint_auth_method: method,
            // Refresh tokens are always issued (ChatGPT and others depend on them).
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            response_types: vec!["code".into()],
            scope,
            secret_hash: secret.as_ref().map(|s| sha256_hex(s.expose())),
            created_at: now.unix(),
            used: false,
        };
        let bytes = serde_json::to_vec(&client).map_err(|_| AuthError::Corrupt("client"))?;
        let expires = Some(now.plus_seconds(self.settings.unused_client_ttl));
        self.gateway.store().put_item(&client_key(&client.client_id), &bytes, expires, PutMode::CreateOnly, now).await?;
        tracing::info!(client_id = client.client_id, method = method.as_str(), "registered an OAuth client");
        Ok(Registered { client, secret })
    }

    /// Counts a registration per client network (IPv6 per /64, so that one host cannot take
    /// a fresh budget per address) and in total; the hour's count ends with the hour.
    async fn count_registration(&self, client_ip: &str) -> Result<(), OAuthError> {
        let network = client_network(client_ip);
        let now = self.now().unix();
        let hour = now / 3600;
        let limits = [
            (format!("ratelimit:register:ip:{network}:{hour}"), self.settings.registrations_per_ip_per_hour, "client network"),
            (format!("ratelimit:register:all:{hour}"), self.settings.registrations_per_hour, "total"),
        ];
        for (key, limit, which) in limits {
            let hour_ends = squaremcp_core::Timestamp::from_unix((hour + 1) * 3600);
            match self.gateway.store().add_to_expiring_counter(&key, 1, Some(limit), hour_ends).await {
                Ok(_) => {}
                Err(StoreError::LimitReached { .. }) => {
                    tracing::warn!(client_network = network, limit = which, "client registration rate limit reached");
                    return Err(OAuthError::TooManyRequests { retry_after: seconds_left_in(now, 3600) });
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// A live registered client.
    pub async fn client(&self, client_id: &str) -> Result<Option<Client>, AuthError> {
        if client_id.is_empty() || client_id.len() > 200 {
            return Ok(None);
        }
        let Some(bytes) = self.gateway.store().get_item(&client_key(client_id), self.now()).await? else { return Ok(None) };
        serde_json::from_slice(&bytes).map(Some).map_err(|_| AuthError::Corrupt("client"))
    }

    /// The client, if its credentials are right. A confidential client may send its secret by
    /// either method (both are equally safe); a public client needs only its id.
    pub(crate) async fn authenticate_client(&self, credentials: &ClientCredentials) -> Result<Client, OAuthError> {
        let (client_id, secret) = match (&credentials.basic, &credentials.client_id) {
            (Some((id, _)), Some(form_id)) if id != form_id => {
                return Err(OAuthError::InvalidClient("the client ids in the header and the body differ".into()));
            }
            (Some((id, secret)), _) => (id.as_str(), Some(secret)),
            (None, Some(id)) => (id.as_str(), credentials.client_secret.as_ref()),
            (None, None) => return Err(OAuthError::InvalidClient("client authentication is required (client_id)".into())),
        };
        let client = if is_document_client_id(client_id) {
            self.document_client(client_id, &credentials.client_ip).await.map_err(|e| match e {
                ClientDocumentError::Server(e) => OAuthError::Server(e),
                ClientDocumentError::TooManyFetches(_, retry_after) => OAuthError::TooManyRequests { retry_after },
                other => OAuthError::InvalidClient(other.to_string()),
            })?
        } else {
            self.client(client_id).await?.ok_or_else(|| OAuthError::InvalidClient("unknown client: register again".into()))?
        };
        if let Some(expected) = &client.secret_hash {
            let presented = secret.map(|s| sha256_hex(s.expose())).unwrap_or_default();
            if !constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
                return Err(OAuthError::InvalidClient("client authentication failed".into()));
            }
        }
        Ok(client)
    }

    /// A client that completed a token exchange no longer expires.
    pub(crate) async fn mark_used(&self, client: &Client) -> Result<(), AuthError> {
        // A metadata-document client is not stored as a registration: its document is its record.
        if client.used || is_document_client_id(&client.client_id) {
            return Ok(());
        }
        let mut used = client.clone();
        used.used = true;
        let bytes = serde_json::to_vec(&used).map_err(|_| AuthError::Corrupt("client"))?;
        let now = self.now();
        self.gateway.store().put_item(&client_key(&client.client_id), &bytes, None, PutMode::Replace, now).await?;
        Ok(())
    }
}

/// Unicode's format characters (category Cf): text-direction overrides and isolates, zero-width
/// characters, soft hyphens. The consent page shows `client_name` to the person deciding, so a
/// name must read as what it is: `\u{202E}` could make "moc.elgoog" read as a trusted name.
fn is_format_character(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}
