//! Every setting comes from the environment, with defaults that are safe for local use.
//! `docs/configuration.md` documents each variable; keep the two in step.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use std::sync::Arc;

use squaremcp_core::billing::PlanCatalog;
use squaremcp_core::{Platform, Secret, Timestamp};


/// The shortest admin key accepted (`SQUAREMCP_ADMIN_KEY`).
pub const MIN_ADMIN_KEY_CHARS: usize = 16;

#[derive(Debug, thiserror::Error)]
#[error("{variable}: {why}")]
pub struct ConfigError {
    pub variable: String,
    pub why: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// Which adapters back the ports: embedded (SQLite, key file, in-process queues) or AWS
/// (DynamoDB, KMS, SQS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    DynamoDb,
}

impl std::str::FromStr for StoreKind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "sqlite" => Ok(Self::Sqlite),
            "dynamodb" => Ok(Self::DynamoDb),
            other => Err(format!("`{other}` is neither `sqlite` nor `dynamodb`")),
        }
    }
}

/// Where the AWS backends live. Region, credentials and endpoints come from the standard AWS
/// variables (`AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`, …), read by the SDK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsSettings {
    pub table: String,
    /// Key id, ARN or alias that wraps new data keys (`init`, `credentials rotate-key`).
    pub kms_key_id: String,
    pub retry_queue_url: Option<String>,
    pub dead_letter_queue_url: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub store: StoreKind,
    pub aws: AwsSettings,
    pub data_dir: PathBuf,
    pub public_url: String,
    pub admin_key: Option<Secret<String>>,
    pub allowed_origins: Vec<String>,
    pub max_body_bytes: usize,
    pub tools_page_size: usize,
    pub log_filter: String,
    pub log_format: LogFormat,
    /// Whether `SQUAREMCP_LOG_FORMAT` was given: `serve` otherwise logs JSON when its stdout is
    /// not a terminal (a container).
    pub log_format_set: bool,
    /// Peers whose `X-Forwarded-For`/`X-Forwarded-Proto` are believed (`SQUAREMCP_TRUSTED_PROXIES`).
    pub trusted_proxies: squaremcp_http::TrustedProxies,
    /// How long `serve` lets requests in flight finish after SIGTERM before it exits anyway.
    pub shutdown_grace_seconds: u64,
    /// A second listener of `serve` answering `GET /metrics` without a key
    /// (`SQUAREMCP_METRICS_ADDR`); unset: `/metrics` on the main listener, admin key only.
    pub metrics_listen: Option<SocketAddr>,
    /// The CloudWatch namespace of the Lambdas' metric log lines (`SQUAREMCP_METRICS_NAMESPACE`);
    /// `None` (`off`): no metric lines, and no custom metrics to pay for.
    pub metrics_namespace: Option<String>,
    /// Overrides of platform API base URLs (mocks, proxies); others use the real addresses.
    pub platform_base_urls: BTreeMap<Platform, String>,
    pub plans: Arc<PlanCatalog>,
    pub call_log_retention_days: usize,
    /// A fixed "now" for rehearsals and tests (closing a month by hand); unset: the system clock.
    pub now: Option<Timestamp>,
    /// Where invoices are sent from; it may hold a password, hence secret.
    pub smtp_url: Option<Secret<String>>,
    pub mail_from: String,
    /// How often `serve` checks whether last month still needs invoicing.
    pub invoice_check_seconds: usize,
    /// Signs session cookies, bearer JWTs, access tokens and CSRF tokens. Required in Lambda;
    /// locally, when unset, one is generated once and kept in the data directory.
    pub jwt_secret: Option<Secret<String>>,
    /// `Domain` of the session cookie; unset keeps it on the public URL's host.
    pub cookie_domain: Option<String>,
    pub access_token_ttl: i64,
    pub refresh_token_ttl: i64,
    pub session_ttl: i64,
    /// Seconds a just-rotated refresh token stays usable (concurrent refreshes).
    pub refresh_grace: i64,
    /// The absolute lifetime of an OAuth grant, however often refreshed (`SQUAREMCP_GRANT_MAX_AGE`).
    pub grant_max_age: i64,
    /// Dynamic client registrations per client network (an IPv4 address or an IPv6 /64) per
    /// hour, and in total per hour (`SQUAREMCP_REGISTRATIONS_PER_IP_PER_HOUR`,
    /// `SQUAREMCP_REGISTRATIONS_PER_HOUR`).
    pub registrations_per_ip_per_hour: u64,
    pub registrations_per_hour: u64,
    /// Self-service sign-up and password reset (`SQUAREMCP_SIGNUP`, `_SIGNUP_PLAN`, `_SIGNUP_LINK_TTL`).
    pub signup: crate::signup::SignupConfig,
    /// Customer-supplied hosts (mail servers): whether private addresses and plaintext are
    /// allowed (`SQUAREMCP_ALLOW_PRIVATE_HOSTS`), and extra trusted roots (`SQUAREMCP_EXTRA_CA_FILE`).
    pub network: squaremcp_platforms::kit::NetworkPolicy,
    /// The Graph API version in WhatsApp's paths, e.g. `v26.0`.
    pub graph_api_version: String,
    /// The `LinkedIn-Version` header LinkedIn's tools send, `YYYYMM`.
    pub linkedin_version: String,
    /// Where directory vaults live (`SQUAREMCP_OBSIDIAN_ROOT`), the Obsidian Headless Sync
    /// command for `obsidian_sync_status` (`SQUAREMCP_OBSIDIAN_OB`), and the deployment's vault
    /// bucket (`SQUAREMCP_OBSIDIAN_BUCKET`, `SQUAREMCP_OBSIDIAN_ROLE_ARN`).
    pub obsidian: squaremcp_platforms::obsidian::ObsidianSettings,
    /// Caps on media tools upload (`SQUAREMCP_MEDIA_MAX_BYTES`, `SQUAREMCP_MEDIA_MAX_INLINE_BYTES`).
    pub media: squaremcp_platforms::kit::MediaSettings,
    /// How long a tool waits for a publish (`SQUAREMCP_PUBLISH_WAIT_SECONDS`,
    /// `SQUAREMCP_PUBLISH_POLL_MILLISECONDS`).
    pub publish_wait: squaremcp_platforms::kit::PublishWait,
    /// How long a tool call's platform part may take, every request, retry and wait included
    /// (`SQUAREMCP_CALL_TIMEOUT_SECONDS`); also each platform request's own timeout. The `mcp`
    /// function's time limit must exceed it by [`squaremcp_core::gateway::RECORD_MARGIN`]
    /// (checked against `template.yaml` in `call_budget.rs`).
    pub call_timeout: std::time::Duration,
    /// How long an authenticated API key is trusted without reading the store
    /// (`SQUAREMCP_API_KEY_CACHE_SECONDS`, 0 to 300; 0 reads it on every request).
    pub api_key_cache: std::time::Duration,
    /// How long a customer's credentials, once read, serve their calls without reading the store
    /// (`SQUAREMCP_CREDENTIAL_CACHE_SECONDS`, 0 to 300; 0 reads them on every call).
    pub credential_cache: std::time::Duration,
    /// Partner-only tools the operator has access to (`SQUAREMCP_PARTNER_ACCESS`).
    pub partner_access: squaremcp_platforms::kit::PartnerAccess,
    /// The Meta app's secret: the key of `X-Hub-Signature-256` on WhatsApp webhooks.
    pub whatsapp_app_secret: Option<Secret<String>>,
    /// What Meta must present in the webhook subscription handshake (`hub.verify_token`).
    pub whatsapp_verify_token: Option<Secret<String>>,
    /// The delays between outbound webhook attempts (`SQUAREMCP_WEBHOOK_RETRY_SCHEDULE`).
    pub webhook_retry_schedule: squaremcp_webhooks::RetrySchedule,
    /// How long an outbound webhook endpoint may fail without a success before it is disabled,
    /// in seconds (`SQUAREMCP_WEBHOOK_DISABLE_AFTER_HOURS`, fractions allowed so tests can shorten it).
    pub webhook_disable_after_seconds: i64,
    /// The OAuth apps of the platforms customers connect themselves
    /// (`SQUAREMCP_<PLATFORM>_CLIENT_ID`, `_CLIENT_SECRET`, `_AUTHORIZE_BASE_URL`, `_TOKEN_BASE_URL`).
    pub oauth_apps: squaremcp_platforms::kit::oauth::OAuthSettings,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// `lookup` stands in for the environment, so tests need not mutate the process's.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let error = |variable: &str, why: String| ConfigError { variable: variable.to_owned(), why };

        let listen = match get("SQUAREMCP_LISTEN") {
            Some(text) => text.parse().map_err(|_| error("SQUAREMCP_LISTEN", format!("`{text}` is not an address like 127.0.0.1:3456")))?,
            None => SocketAddr::from(([127, 0, 0, 1], 3456)),
        };
        let public_url = match get("SQUAREMCP_PUBLIC_URL") {
            Some(url) => normalize_url(&url).ok_or_else(|| error("SQUAREMCP_PUBLIC_URL", format!("`{url}` is not an http(s) URL")))?,
            None => "http://localhost:3456".to_owned(),
        };
        let mut base_urls = BTreeMap::new();
        for entry in squaremcp_platforms::PLATFORMS {
            let variable = entry.platform.base_url_env();
            if let Some(url) = get(&variable).filter(|url| !url.trim().is_empty()) {
                squaremcp_platforms::kit::origin(entry.origin, Some(&url)).map_err(|why| error(&variable, why))?;
                base_urls.insert(entry.platform, url.trim().trim_end_matches('/').to_owned());
            }
        }
        let number = |variable: &str, default: usize| -> Result<usize, ConfigError> {
            match get(variable) {
                Some(text) => text
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| error(variable, format!("`{text}` is not a positive whole number"))),
                None => Ok(default),
            }
        };
        let registrations_per_ip_per_hour = number("SQUAREMCP_REGISTRATIONS_PER_IP_PER_HOUR", 30)? as u64;
        let registrations_per_hour = number("SQUAREMCP_REGISTRATIONS_PER_HOUR", 10_000)? as u64;
        // A total below one network's share would let a single caller switch registration off.
        if registrations_per_hour < registrations_per_ip_per_hour {
            return Err(error(
                "SQUAREMCP_REGISTRATIONS_PER_HOUR",
                format!("{registrations_per_hour} is below SQUAREMCP_REGISTRATIONS_PER_IP_PER_HOUR ({registrations_per_ip_per_hour}); one caller could use it up"),
            ));
        }
        let in_lambda = lookup("AWS_LAMBDA_RUNTIME_API").is_some();
        let jwt_secret = match get("SQUAREMCP_JWT_SECRET") {
            Some(secret) if secret.len() < squaremcp_auth::MIN_SECRET_BYTES => {
                return Err(error(
                    "SQUAREMCP_JWT_SECRET",
                    format!("too short: use at least {} random bytes (e.g. `openssl rand -base64 48`)", squaremcp_auth::MIN_SECRET_BYTES),
                ));
            }
            Some(secret) => Some(Secret::new(secret)),
            None if in_lambda => {
                return Err(error("SQUAREMCP_JWT_SECRET", "required in Lambda (pass it as a secret parameter)".to_owned()));
            }
            None => None,
        };
        let cookie_domain = match get("SQUAREMCP_COOKIE_DOMAIN") {
            Some(domain) => {
                let domain = domain.trim_start_matches('.').to_ascii_lowercase();
                let ok = !domain.is_empty()
                    && domain.len() <= 253
                    && domain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
                if !ok {
                    return Err(error("SQUAREMCP_COOKIE_DOMAIN", format!("`{domain}` is not a domain name")));
                }
                Some(domain)
            }
            None => None,
        };
        let seconds = |variable: &str, default: i64| -> Result<i64, ConfigError> {
            match get(variable) {
                Some(text) => text
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (60..=366 * 24 * 3600).contains(n))
                    .ok_or_else(|| error(variable, format!("`{text}` is not a number of seconds between 60 and 31622400"))),
                None => Ok(default),
            }
        };
        let graph_api_version = match get("SQUAREMCP_GRAPH_API_VERSION") {
            Some(text) => squaremcp_platforms::kit::graph_api_version(&text).map_err(|why| error("SQUAREMCP_GRAPH_API_VERSION", why))?,
            None => squaremcp_platforms::kit::DEFAULT_GRAPH_API_VERSION.to_owned(),
        };
        let linkedin_version = match get("SQUAREMCP_LINKEDIN_VERSION") {
            Some(text) => squaremcp_platforms::kit::linkedin_version(&text).map_err(|why| error("SQUAREMCP_LINKEDIN_VERSION", why))?,
            None => squaremcp_platforms::kit::DEFAULT_LINKEDIN_VERSION.to_owned(),
        };
        let allow_private_hosts = match get("SQUAREMCP_ALLOW_PRIVATE_HOSTS").as_deref() {
            None | Some("0" | "false") => false,
            Some("1" | "true") => true,
            Some(other) => return Err(error("SQUAREMCP_ALLOW_PRIVATE_HOSTS", format!("`{other}` is neither 1 nor 0"))),
        };
        let mut network = squaremcp_platforms::kit::NetworkPolicy::new(allow_private_hosts);
        if let Some(path) = get("SQUAREMCP_EXTRA_CA_FILE") {
            let pem = std::fs::read(&path).map_err(|e| error("SQUAREMCP_EXTRA_CA_FILE", format!("cannot read `{path}`: {e}")))?;
            network = network.with_extra_roots_pem(&pem).map_err(|why| error("SQUAREMCP_EXTRA_CA_FILE", format!("`{path}` {why}")))?;
        }
        let bounded = |variable: &'static str, range: std::ops::RangeInclusive<u64>, default: u64| -> Result<u64, ConfigError> {
            match get(variable) {
                Some(text) => text.trim().parse::<u64>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
                    error(variable, format!("`{text}` is not a whole number between {} and {}", range.start(), range.end()))
                }),
                None => Ok(default),
            }
        };
        let media = squaremcp_platforms::kit::MediaSettings {
            max_bytes: bounded("SQUAREMCP_MEDIA_MAX_BYTES", 1..=64 << 30, squaremcp_platforms::kit::media::DEFAULT_MAX_MEDIA_BYTES)?,
            max_inline_bytes: usize::try_from(bounded(
                "SQUAREMCP_MEDIA_MAX_INLINE_BYTES",
                0..=64 << 20,
                squaremcp_platforms::kit::media::DEFAULT_MAX_INLINE_BYTES as u64,
            )?)
            .unwrap_or(squaremcp_platforms::kit::media::DEFAULT_MAX_INLINE_BYTES),
        };
        let publish_wait = squaremcp_platforms::kit::PublishWait {
            budget: std::time::Duration::from_secs(bounded(
                "SQUAREMCP_PUBLISH_WAIT_SECONDS",
                0..=900,
                squaremcp_platforms::kit::poll::DEFAULT_BUDGET.as_secs(),
            )?),
            first_interval: std::time::Duration::from_millis(bounded(
                "SQUAREMCP_PUBLISH_POLL_MILLISECONDS",
                1..=60_000,
                squaremcp_platforms::kit::poll::DEFAULT_FIRST_INTERVAL.as_millis() as u64,
            )?),
            ..squaremcp_platforms::kit::PublishWait::default()
        };
        let call_timeout = std::time::Duration::from_secs(bounded(
            "SQUAREMCP_CALL_TIMEOUT_SECONDS",
            1..=900,
            squaremcp_core::gateway::DEFAULT_CALL_TIMEOUT.as_secs(),
        )?);
        let api_key_cache = std::time::Duration::from_secs(bounded(
            "SQUAREMCP_API_KEY_CACHE_SECONDS",
            0..=300,
            squaremcp_core::DEFAULT_API_KEY_CACHE.as_secs(),
        )?);
        let credential_cache = std::time::Duration::from_secs(bounded(
            "SQUAREMCP_CREDENTIAL_CACHE_SECONDS",
            0..=300,
            squaremcp_core::gateway::DEFAULT_CREDENTIAL_CACHE.as_secs(),
        )?);
        let partner_access = squaremcp_platforms::kit::PartnerAccess::parse(&get("SQUAREMCP_PARTNER_ACCESS").unwrap_or_default());
        let log_format = match get("SQUAREMCP_LOG_FORMAT").as_deref() {
            Some("json") => LogFormat::Json,
            Some("text") => LogFormat::Text,
            Some(other) => return Err(error("SQUAREMCP_LOG_FORMAT", format!("`{other}` is neither `json` nor `text`"))),
            None if in_lambda => LogFormat::Json,
            None => LogFormat::Text,
        };
        let store = match get("SQUAREMCP_STORE") {
            Some(text) => text.parse().map_err(|why| error("SQUAREMCP_STORE", why))?,
            None => StoreKind::Sqlite,
        };
        let table = get("SQUAREMCP_TABLE").unwrap_or_else(|| "squaremcp".to_owned());
        let table_ok = (3..=255).contains(&table.len())
            && table.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !table_ok {
            return Err(error("SQUAREMCP_TABLE", format!("`{table}` is not a DynamoDB table name (3-255 of a-z A-Z 0-9 _ - .)")));
        }
        let queue_url = |variable: &str| -> Result<Option<String>, ConfigError> {
            get(variable)
                .map(|url| normalize_url(&url).ok_or_else(|| error(variable, format!("`{url}` is not an http(s) queue URL"))))
                .transpose()
        };
        let aws = AwsSettings {
            table,
            kms_key_id: get("SQUAREMCP_KMS_KEY_ID").unwrap_or_else(|| "alias/squaremcp".to_owned()),
            retry_queue_url: queue_url("SQUAREMCP_RETRY_QUEUE_URL")?,
            dead_letter_queue_url: queue_url("SQUAREMCP_DEAD_LETTER_QUEUE_URL")?,
        };
        if aws.retry_queue_url.is_some() != aws.dead_letter_queue_url.is_some() {
            let (set, missing) = if aws.retry_queue_url.is_some() {
                ("SQUAREMCP_RETRY_QUEUE_URL", "SQUAREMCP_DEAD_LETTER_QUEUE_URL")
            } else {
                ("SQUAREMCP_DEAD_LETTER_QUEUE_URL", "SQUAREMCP_RETRY_QUEUE_URL")
            };
            return Err(error(set, format!("set both queue URLs or neither ({missing} is missing)")));
        }
        Ok(Self {
            listen,
            store,
            aws,
            data_dir: get("SQUAREMCP_DATA_DIR").map_or_else(|| PathBuf::from("data"), PathBuf::from),
            public_url,
            admin_key: match get("SQUAREMCP_ADMIN_KEY") {
                // A short operator key could be guessed over the network; it unlocks every tool list.
                Some(key) if key.chars().count() < MIN_ADMIN_KEY_CHARS => {
                    return Err(error(
                        "SQUAREMCP_ADMIN_KEY",
                        format!("the admin key must be at least {MIN_ADMIN_KEY_CHARS} characters long (e.g. `openssl rand -hex 24`)"),
                    ));
                }
                other => other.map(Secret::new),
            },
            allowed_origins: get("SQUAREMCP_ALLOWED_ORIGINS")
                .map(|list| list.split(',').map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()).collect())
                .unwrap_or_default(),
            max_body_bytes: number("SQUAREMCP_MAX_BODY_BYTES", 1024 * 1024)?,
            tools_page_size: number("SQUAREMCP_TOOLS_PAGE_SIZE", 100)?,
            log_filter: get("SQUAREMCP_LOG").unwrap_or_else(|| "info".to_owned()),
            log_format,
            log_format_set: get("SQUAREMCP_LOG_FORMAT").is_some(),
            trusted_proxies: match get("SQUAREMCP_TRUSTED_PROXIES") {
                Some(list) => squaremcp_http::TrustedProxies::parse(&list).map_err(|why| error("SQUAREMCP_TRUSTED_PROXIES", why))?,
                None => squaremcp_http::TrustedProxies::default(),
            },
            shutdown_grace_seconds: match get("SQUAREMCP_SHUTDOWN_GRACE_SECONDS") {
                Some(text) => text.parse::<u64>().ok().filter(|n| (1..=3600).contains(n)).ok_or_else(|| {
                    error("SQUAREMCP_SHUTDOWN_GRACE_SECONDS", format!("`{text}` is not a number of seconds between 1 and 3600"))
                })?,
                None => 25,
            },
            metrics_listen: match get("SQUAREMCP_METRICS_ADDR") {
                Some(text) => Some(text.parse().map_err(|_| {
                    error("SQUAREMCP_METRICS_ADDR", format!("`{text}` is not an address like 127.0.0.1:9464"))
                })?),
                None => None,
            },
            metrics_namespace: match get("SQUAREMCP_METRICS_NAMESPACE") {
                Some(text) if text.trim() == "off" => None,
                Some(text) => Some(metrics_namespace(&text).map_err(|why| error("SQUAREMCP_METRICS_NAMESPACE", why))?),
                None => Some("SquareMCP".to_owned()),
            },
            platform_base_urls: base_urls,
            oauth_apps: squaremcp_platforms::kit::oauth::OAuthSettings::from_lookup(&squaremcp_platforms::oauth_apps(), |name| get(name))
                .map_err(|why| match why.split_once(": ") {
                    Some((variable, reason)) => error(variable, reason.to_owned()),
                    None => error("SQUAREMCP_<PLATFORM>_CLIENT_ID", why),
                })?,
            plans: Arc::new(match get("SQUAREMCP_PLANS") {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| error("SQUAREMCP_PLANS", format!("cannot read {path}: {e}")))?;
                    PlanCatalog::from_toml(&text).map_err(|e| error("SQUAREMCP_PLANS", format!("{path}: {e}")))?
                }
                None => PlanCatalog::builtin(),
            }),
            call_log_retention_days: number("SQUAREMCP_CALL_LOG_RETENTION_DAYS", 90)?,
            now: match get("SQUAREMCP_NOW") {
                Some(text) => Some(Timestamp::parse_rfc3339(&text).map_err(|_| {
                    error("SQUAREMCP_NOW", format!("`{text}` is not an RFC 3339 instant like 2026-12-01T06:00:00Z"))
                })?),
                None => None,
            },
            smtp_url: get("SQUAREMCP_SMTP_URL").map(Secret::new),
            mail_from: get("SQUAREMCP_MAIL_FROM").unwrap_or_else(|| "SquareMCP <billing@localhost>".to_owned()),
            invoice_check_seconds: number("SQUAREMCP_INVOICE_CHECK_SECONDS", 3_600)?,
            jwt_secret,
            cookie_domain,
            access_token_ttl: seconds("SQUAREMCP_ACCESS_TOKEN_TTL", 3600)?,
            refresh_token_ttl: seconds("SQUAREMCP_REFRESH_TOKEN_TTL", 30 * 24 * 3600)?,
            session_ttl: seconds("SQUAREMCP_SESSION_TTL", 7 * 24 * 3600)?,
            grant_max_age: seconds("SQUAREMCP_GRANT_MAX_AGE", 90 * 24 * 3600)?,
            registrations_per_ip_per_hour,
            registrations_per_hour,
            signup: crate::signup::from_lookup(&get)?,
            refresh_grace: match get("SQUAREMCP_REFRESH_GRACE") {
                Some(text) => text
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (0..=300).contains(n))
                    .ok_or_else(|| error("SQUAREMCP_REFRESH_GRACE", format!("`{text}` is not a number of seconds between 0 and 300")))?,
                None => 60,
            },
            network,
            graph_api_version,
            linkedin_version,
            obsidian: squaremcp_platforms::obsidian::ObsidianSettings {
                root: get("SQUAREMCP_OBSIDIAN_ROOT").map(PathBuf::from),
                ob_command: get("SQUAREMCP_OBSIDIAN_OB").map(PathBuf::from),
                deployment_bucket: crate::vaults::deployment_bucket(&get)?,
                ..squaremcp_platforms::obsidian::ObsidianSettings::default()
            },
            media,
            publish_wait,
            call_timeout,
            api_key_cache,
            credential_cache,
            partner_access,
            whatsapp_app_secret: get("SQUAREMCP_WHATSAPP_APP_SECRET").map(Secret::new),
            whatsapp_verify_token: get("SQUAREMCP_WHATSAPP_VERIFY_TOKEN").map(Secret::new),
            webhook_retry_schedule: match get("SQUAREMCP_WEBHOOK_RETRY_SCHEDULE") {
                Some(text) => squaremcp_webhooks::RetrySchedule::parse(&text)
                    .map_err(|why| error("SQUAREMCP_WEBHOOK_RETRY_SCHEDULE", why))?,
                None => squaremcp_webhooks::RetrySchedule::default(),
            },
            webhook_disable_after_seconds: match get("SQUAREMCP_WEBHOOK_DISABLE_AFTER_HOURS") {
                Some(text) => disable_after_seconds(&text).ok_or_else(|| {
                    error("SQUAREMCP_WEBHOOK_DISABLE_AFTER_HOURS", format!("`{text}` is not a number of hours above 0 and at most 2160 (90 days)"))
                })?,
                None => squaremcp_webhooks::Disabling::DEFAULT_AFTER_HOURS * 3600,
            },
        })
    }
}

/// Hours (a fraction too, e.g. `0.001` for 3.6 s in tests) as whole seconds, at least one.
fn disable_after_seconds(text: &str) -> Option<i64> {
    let hours = text.trim().parse::<f64>().ok().filter(|h| h.is_finite() && *h > 0.0 && *h <= 2160.0)?;
    Some(((hours * 3600.0).round() as i64).max(1))
}

/// `scheme://host[:port][/path]` with the scheme and host lowercased and no trailing slash,
/// so that what the server prints matches what clients compare byte for byte.
fn normalize_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains(char::is_whitespace) || authority.contains('@') {
        return None;
    }
    Some(format!("{scheme}://{}{}", authority.to_ascii_lowercase(), path.trim_end_matches('/')))
}

/// CloudWatch's rule for a namespace: 1 to 255 of letters, digits and `.-_/#:`, and not
/// `AWS/…` (reserved for AWS's own services).
fn metrics_namespace(text: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || ".-_/#:".contains(c);
    if text.len() > 255 || !text.chars().all(allowed) {
        return Err(format!("`{text}` is not a CloudWatch namespace: up to 255 letters, digits and . - _ / # :"));
    }
    if text.starts_with("AWS/") {
        return Err("namespaces starting with `AWS/` are reserved for AWS's own services".to_owned());
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn the_linkedin_version_defaults_and_is_checked() {
        assert_eq!(config(&[]).unwrap().linkedin_version, squaremcp_platforms::kit::DEFAULT_LINKEDIN_VERSION);
        assert_eq!(config(&[("SQUAREMCP_LINKEDIN_VERSION", "202511")]).unwrap().linkedin_version, "202511");
        let refused = config(&[("SQUAREMCP_LINKEDIN_VERSION", "2025-11")]).expect_err("not YYYYMM").to_string();
        assert!(refused.contains("SQUAREMCP_LINKEDIN_VERSION"), "{refused}");
    }

    #[test]
    fn defaults_are_local_and_safe() {
        let c = config(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:3456");
        assert_eq!(c.data_dir, PathBuf::from("data"));
        assert_eq!(c.public_url, "http://localhost:3456");
        assert!(c.admin_key.is_none());
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.max_body_bytes, 1 << 20);
        assert!(c.jwt_secret.is_none() && c.cookie_domain.is_none());
        assert_eq!((c.access_token_ttl, c.refresh_token_ttl, c.session_ttl), (3600, 2_592_000, 604_800));
        assert_eq!(c.store, StoreKind::Sqlite);
        assert_eq!(c.aws.table, "squaremcp");
        assert_eq!(c.aws.kms_key_id, "alias/squaremcp");
        assert_eq!((c.aws.retry_queue_url, c.aws.dead_letter_queue_url), (None, None));
        assert!(!c.network.allows_private_hosts() && c.network.extra_roots().is_empty());
    }

    #[test]
    fn the_webhook_disable_window_is_hours_with_fractions() {
        assert_eq!(config(&[]).unwrap().webhook_disable_after_seconds, 5 * 24 * 3600);
        assert_eq!(config(&[("SQUAREMCP_WEBHOOK_DISABLE_AFTER_HOURS", "48")]).unwrap().webhook_disable_after_seconds, 48 * 3600);
        assert_eq!(config(&[("SQUAREMCP_WEBHOOK_DISABLE_AFTER_HOURS", "0.001")]).unwrap().webhook_disable_after_seconds, 4);
        for bad in ["0", "-1", "abc", "NaN", "2161"] {
            let why = config(&[("SQUAREMCP_WEBHOOK_DISABLE_AFTER_HOURS", bad)]).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(why.contains("SQUAREMCP_WEBHOOK_DISABLE_AFTER_HOURS"), "{bad}: {why}");
        }
    }

    #[test]
    fn proxies_grace_and_log_format_for_the_container() {
        let c = config(&[]).unwrap();
        assert!(c.trusted_proxies.is_empty() && !c.log_format_set);
        assert_eq!(c.shutdown_grace_seconds, 25);
        let c = config(&[
            ("SQUAREMCP_TRUSTED_PROXIES", "10.1.0.0/16, 127.0.0.1"),
            ("SQUAREMCP_SHUTDOWN_GRACE_SECONDS", "50"),
            ("SQUAREMCP_LOG_FORMAT", "text"),
        ])
        .unwrap();
        assert!(c.trusted_proxies.trusts("10.1.2.3".parse().unwrap()) && c.trusted_proxies.trusts("127.0.0.1".parse().unwrap()));
        assert!(!c.trusted_proxies.trusts("10.2.0.1".parse().unwrap()));
        assert_eq!(c.shutdown_grace_seconds, 50);
        assert!(c.log_format_set);
    }

    #[test]
    fn obsidian_vault_root_and_ob_command_are_read() {
        let c = config(&[]).unwrap();
        assert!(c.obsidian.root.is_none() && c.obsidian.ob_command.is_none());
        let c = config(&[("SQUAREMCP_OBSIDIAN_ROOT", "/srv/vaults"), ("SQUAREMCP_OBSIDIAN_OB", "/usr/local/bin/ob")]).unwrap();
        assert_eq!(c.obsidian.root.as_deref(), Some(std::path::Path::new("/srv/vaults")));
        assert_eq!(c.obsidian.ob_command.as_deref(), Some(std::path::Path::new("/usr/local/bin/ob")));
    }

    #[test]
    fn the_call_timeout_is_read_and_checked() {
        assert_eq!(config(&[]).unwrap().call_timeout, squaremcp_core::gateway::DEFAULT_CALL_TIMEOUT);
        assert_eq!(config(&[("SQUAREMCP_CALL_TIMEOUT_SECONDS", "7")]).unwrap().call_timeout, std::time::Duration::from_secs(7));
        for bad in ["0", "-1", "2.5", "901", "soon"] {
            let why = config(&[("SQUAREMCP_CALL_TIMEOUT_SECONDS", bad)]).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(why.contains("SQUAREMCP_CALL_TIMEOUT_SECONDS") && why.contains("between 1 and 900"), "{bad}: {why}");
        }
    }

    #[test]
    fn the_cache_lifetimes_are_read_and_checked() {
        let c = config(&[]).unwrap();
        assert_eq!((c.api_key_cache, c.credential_cache), (squaremcp_core::DEFAULT_API_KEY_CACHE, squaremcp_core::gateway::DEFAULT_CREDENTIAL_CACHE));
        assert_eq!(config(&[("SQUAREMCP_API_KEY_CACHE_SECONDS", "0")]).unwrap().api_key_cache, std::time::Duration::ZERO);
        assert_eq!(config(&[("SQUAREMCP_CREDENTIAL_CACHE_SECONDS", "0")]).unwrap().credential_cache, std::time::Duration::ZERO);
        for variable in ["SQUAREMCP_API_KEY_CACHE_SECONDS", "SQUAREMCP_CREDENTIAL_CACHE_SECONDS"] {
            for bad in ["-1", "1.5", "301", "off"] {
                let why = config(&[(variable, bad)]).err().map(|e| e.to_string()).unwrap_or_default();
                assert!(why.contains(variable) && why.contains("between 0 and 300"), "{variable}={bad}: {why}");
            }
        }
    }

    #[test]
    fn media_caps_publish_wait_and_partner_access_are_read_and_checked() {
        let c = config(&[]).unwrap();
        assert_eq!(c.media, squaremcp_platforms::kit::MediaSettings::default());
        assert_eq!(c.publish_wait, squaremcp_platforms::kit::PublishWait::default());
        assert!(!c.partner_access.allows("linkedin_send_message"));
        let c = config(&[
            ("SQUAREMCP_MEDIA_MAX_BYTES", "1048576"),
            ("SQUAREMCP_MEDIA_MAX_INLINE_BYTES", "1024"),
            ("SQUAREMCP_PUBLISH_WAIT_SECONDS", "3"),
            ("SQUAREMCP_PUBLISH_POLL_MILLISECONDS", "50"),
            ("SQUAREMCP_PARTNER_ACCESS", "linkedin_send_message, snapchat_create_snap"),
        ])
        .unwrap();
        assert_eq!((c.media.max_bytes, c.media.max_inline_bytes), (1_048_576, 1024));
        assert_eq!(c.publish_wait.budget, std::time::Duration::from_secs(3));
        assert_eq!(c.publish_wait.first_interval, std::time::Duration::from_millis(50));
        assert!(c.partner_access.allows("snapchat_create_snap") && !c.partner_access.allows("linkedin_search_connections"));
        for (variable, value) in [
            ("SQUAREMCP_MEDIA_MAX_BYTES", "0"),
            ("SQUAREMCP_MEDIA_MAX_BYTES", "lots"),
            ("SQUAREMCP_PUBLISH_WAIT_SECONDS", "901"),
            ("SQUAREMCP_PUBLISH_POLL_MILLISECONDS", "0"),
        ] {
            let e = config(&[(variable, value)]).expect_err(value);
            assert_eq!(e.variable, variable);
        }
    }

    #[test]
    fn private_hosts_are_allowed_only_when_asked_and_an_empty_ca_file_is_refused() {
        assert!(config(&[("SQUAREMCP_ALLOW_PRIVATE_HOSTS", "1")]).unwrap().network.allows_private_hosts());
        let empty = std::env::temp_dir().join(format!("squaremcp-empty-ca-{}.pem", std::process::id()));
        std::fs::write(&empty, "").unwrap();
        let e = config(&[("SQUAREMCP_EXTRA_CA_FILE", empty.to_str().unwrap())]).expect_err("no certificate");
        assert_eq!(e.variable, "SQUAREMCP_EXTRA_CA_FILE");
        let _ = std::fs::remove_file(empty);
    }

    #[test]
    fn the_jwt_secret_is_required_in_lambda_and_never_shown() {
        let e = config(&[("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")]).expect_err("no secret");
        assert_eq!(e.variable, "SQUAREMCP_JWT_SECRET");
        let secret = "k".repeat(40);
        let c = config(&[("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"), ("SQUAREMCP_JWT_SECRET", &secret)]).unwrap();
        assert_eq!(c.jwt_secret.as_ref().map(|s| s.expose().len()), Some(40));
        assert!(!format!("{c:?}").contains(&secret), "Debug never shows the secret");
        let c = config(&[("SQUAREMCP_COOKIE_DOMAIN", ".Example.com"), ("SQUAREMCP_SESSION_TTL", "3600")]).unwrap();
        assert_eq!(c.cookie_domain.as_deref(), Some("example.com"));
        assert_eq!(c.session_ttl, 3600);
    }

    #[test]
    fn aws_backends_are_chosen_and_named() {
        let c = config(&[
            ("SQUAREMCP_STORE", "DynamoDB"),
            ("SQUAREMCP_TABLE", "sqm-prod"),
            ("SQUAREMCP_KMS_KEY_ID", "arn:aws:kms:eu-west-1:123456789012:key/abc"),
            ("SQUAREMCP_RETRY_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/123456789012/retry"),
            ("SQUAREMCP_DEAD_LETTER_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/123456789012/dlq"),
        ])
        .unwrap();
        assert_eq!(c.store, StoreKind::DynamoDb);
        assert_eq!(c.aws.table, "sqm-prod");
        assert_eq!(c.aws.kms_key_id, "arn:aws:kms:eu-west-1:123456789012:key/abc");
        assert_eq!(c.aws.retry_queue_url.as_deref(), Some("https://sqs.eu-west-1.amazonaws.com/123456789012/retry"));
    }

    #[test]
    fn values_are_read_and_normalized() {
        let c = config(&[
            ("SQUAREMCP_LISTEN", "0.0.0.0:8080"),
            ("SQUAREMCP_PUBLIC_URL", "HTTPS://MCP.Example.com/"),
            ("SQUAREMCP_ADMIN_KEY", "s3cret-admin-key-0123"),
            ("SQUAREMCP_TELEGRAM_BASE_URL", "http://127.0.0.1:9999/"),
            ("SQUAREMCP_ALLOWED_ORIGINS", "https://a.example, https://b.example"),
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
            ("SQUAREMCP_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ])
        .unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(c.public_url, "https://mcp.example.com");
        assert_eq!(c.admin_key.map(|k| k.expose().clone()), Some("s3cret-admin-key-0123".to_owned()));
        assert_eq!(c.platform_base_urls.get(&Platform::Telegram).map(String::as_str), Some("http://127.0.0.1:9999"));
        assert_eq!(c.allowed_origins, ["https://a.example", "https://b.example"]);
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn plans_come_from_a_toml_file() {
        let path = std::env::temp_dir().join(format!("squaremcp-plans-{}.toml", std::process::id()));
        std::fs::write(&path, "[plans.tiny]\nmonthly_calls = 5\nprice_cents = 0\n").unwrap();
        let c = config(&[("SQUAREMCP_PLANS", path.to_str().unwrap())]).unwrap();
        assert_eq!(c.plans.names(), ["tiny"]);
        std::fs::write(&path, "[plans.tiny]\nmonthly_calls = \"many\"\n").unwrap();
        assert_eq!(config(&[("SQUAREMCP_PLANS", path.to_str().unwrap())]).expect_err("bad file").variable, "SQUAREMCP_PLANS");
        let _ = std::fs::remove_file(&path);
        assert_eq!(config(&[]).unwrap().plans.names(), ["business", "free", "pro"]);
    }

    #[test]
    fn metrics_listener_and_namespace() {
        let c = config(&[]).unwrap();
        assert_eq!((c.metrics_listen, c.metrics_namespace.as_deref()), (None, Some("SquareMCP")));
        let c = config(&[("SQUAREMCP_METRICS_ADDR", "127.0.0.1:9464"), ("SQUAREMCP_METRICS_NAMESPACE", "Acme/SquareMCP-prod")]).unwrap();
        assert_eq!(c.metrics_listen, Some(SocketAddr::from(([127, 0, 0, 1], 9464))));
        assert_eq!(c.metrics_namespace.as_deref(), Some("Acme/SquareMCP-prod"));
        let off = config(&[("SQUAREMCP_METRICS_NAMESPACE", "off")]).unwrap();
        assert_eq!(off.metrics_namespace, None, "`off` turns the metric lines off");
        for bad in ["AWS/Lambda", "spaces are not allowed", "ünïcode", &"n".repeat(256)] {
            let e = config(&[("SQUAREMCP_METRICS_NAMESPACE", bad)]).expect_err(bad);
            assert_eq!(e.variable, "SQUAREMCP_METRICS_NAMESPACE");
        }
    }

    #[test]
    fn registration_limits() {
        let c = config(&[]).unwrap();
        assert_eq!((c.registrations_per_ip_per_hour, c.registrations_per_hour), (30, 10_000));
        let c = config(&[("SQUAREMCP_REGISTRATIONS_PER_IP_PER_HOUR", "5"), ("SQUAREMCP_REGISTRATIONS_PER_HOUR", "50000")]).unwrap();
        assert_eq!((c.registrations_per_ip_per_hour, c.registrations_per_hour), (5, 50_000));
        let e = config(&[("SQUAREMCP_REGISTRATIONS_PER_IP_PER_HOUR", "100"), ("SQUAREMCP_REGISTRATIONS_PER_HOUR", "99")]).unwrap_err();
        assert_eq!(e.variable, "SQUAREMCP_REGISTRATIONS_PER_HOUR");
        assert!(e.why.contains("one caller could use it up"), "{}", e.why);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (variable, value) in [
            ("SQUAREMCP_LISTEN", "localhost"),
            ("SQUAREMCP_ADMIN_KEY", "short"),
            ("SQUAREMCP_PUBLIC_URL", "mcp.example.com"),
            ("SQUAREMCP_TELEGRAM_BASE_URL", "ftp://x"),
            ("SQUAREMCP_DISCORD_BASE_URL", "http://127.0.0.1:9/api/v9"),
            ("SQUAREMCP_MAX_BODY_BYTES", "-1"),
            ("SQUAREMCP_LOG_FORMAT", "xml"),
            ("SQUAREMCP_NOW", "next tuesday"),
            ("SQUAREMCP_CALL_LOG_RETENTION_DAYS", "0"),
            ("SQUAREMCP_JWT_SECRET", "short"),
            ("SQUAREMCP_COOKIE_DOMAIN", "exa mple.com"),
            ("SQUAREMCP_ACCESS_TOKEN_TTL", "5"),
            ("SQUAREMCP_REFRESH_TOKEN_TTL", "forever"),
            ("SQUAREMCP_REFRESH_GRACE", "3600"),
            ("SQUAREMCP_STORE", "postgres"),
            ("SQUAREMCP_TABLE", "no spaces"),
            ("SQUAREMCP_RETRY_QUEUE_URL", "queue"),
            ("SQUAREMCP_DEAD_LETTER_QUEUE_URL", "https://sqs.example/dlq"),
            ("SQUAREMCP_ALLOW_PRIVATE_HOSTS", "yes"),
            ("SQUAREMCP_EXTRA_CA_FILE", "/nonexistent/ca.pem"),
            ("SQUAREMCP_EMAIL_BASE_URL", "http://127.0.0.1:1"),
            ("SQUAREMCP_TRUSTED_PROXIES", "10.1.0.0/16,ingress"),
            ("SQUAREMCP_TRUSTED_PROXIES", "10.1.0.0/40"),
            ("SQUAREMCP_SHUTDOWN_GRACE_SECONDS", "0"),
            ("SQUAREMCP_METRICS_ADDR", "metrics"),
            ("SQUAREMCP_REGISTRATIONS_PER_HOUR", "0"),
            ("SQUAREMCP_REGISTRATIONS_PER_HOUR", "5"),
            ("SQUAREMCP_REGISTRATIONS_PER_IP_PER_HOUR", "many"),
        ] {
            let e = config(&[(variable, value)]).expect_err(variable);
            assert_eq!(e.variable, variable);
        }
    }
}
