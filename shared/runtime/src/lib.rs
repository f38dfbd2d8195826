//! Start-up shared by every binary: configuration from the environment (documented in
//! `docs/configuration.md`), backends, the gateway, logging, and the two ways to serve a
//! router (a TCP listener for `squaremcp serve`, the Lambda runtime for `functions/*`).

mod body_deadline;
mod call_budget;
mod client_documents;
mod config;
pub mod emf;
pub mod lambda;
mod logging;
mod serve;
mod signup;
mod vaults;

use std::sync::Arc;

use squaremcp_auth::{Auth, AuthSettings};
use squaremcp_aws::provision::{self, Plan, Provisioned};
use squaremcp_aws::{AwsClients, DynamoStore, KmsKeyring, SqsQueue};
use squaremcp_core::billing::InvoiceRun;
use squaremcp_core::gateway::Billing;
use squaremcp_core::mcp::{McpServer, ServerInfo};
use squaremcp_core::{Clock, Gateway, Keyring, Mailer, NoMailer, Queue, Registry, Secret, Store, SystemClock};
#[cfg(feature = "embedded")]
use squaremcp_embedded::{KeyFileKeyring, MemoryQueue, SqliteStore};
#[cfg(feature = "mail")]
use squaremcp_mail::SmtpMailer;
use squaremcp_http::{AppState, HttpConfig};
use squaremcp_platforms::PlatformConfig;
use squaremcp_platforms::telegram::webhook::TelegramWebhook;
use squaremcp_platforms::whatsapp::webhook::WhatsappWebhook;
use squaremcp_webhooks::Deliverer;

pub use config::{AwsSettings, Config, ConfigError, LogFormat, StoreKind};
pub use signup::SignupConfig;
pub use logging::{init_json_logging_with, init_logging, init_server_logging};
pub use serve::{bind, serve, serve_then, spawn_invoice_scheduler};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("cannot open the store: {0}")]
    Store(#[from] squaremcp_core::StoreError),
    #[error("cannot open the keyring: {0}")]
    Keyring(#[from] squaremcp_core::KeyringError),
    #[error("the JWT signing secret in {path}: {why}")]
    JwtSecret { path: String, why: String },
    #[error(transparent)]
    Auth(#[from] squaremcp_auth::AuthError),
    #[error("cannot create {0}")]
    Provision(#[from] provision::ProvisionError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("server error: {0}")]
    Serve(std::io::Error),
    #[error("requests still in flight {0} s after SIGTERM; exiting without them")]
    ShutdownTimeout(u64),
    #[cfg(feature = "mail")]
    #[error(transparent)]
    Mail(squaremcp_mail::MailConfigError),
    /// A Lambda links only the backends it uses; its configuration asked for another.
    #[error("{0}")]
    NotBuiltIn(&'static str),
}

#[cfg(not(feature = "embedded"))]
const NO_EMBEDDED_STORE: &str =
    "this binary is built without the embedded store (SQLite): set SQUAREMCP_STORE=dynamodb, or use `squaremcp`";

/// The ports' adapters, chosen by configuration (`SQUAREMCP_STORE`), in this one place.
#[derive(Clone)]
pub struct Backends {
    pub store: Arc<dyn Store>,
    pub keyring: Arc<dyn Keyring>,
    pub clock: Arc<dyn Clock>,
    /// The webhook retry queue and its dead-letter queue; `None` when not configured (a
    /// function that does not deliver webhooks gets no queue URLs and no SQS permission).
    pub queues: Option<Queues>,
}

#[derive(Clone)]
pub struct Queues {
    pub retry: Arc<dyn Queue>,
    pub dead_letter: Arc<dyn Queue>,
}

impl Backends {
    /// Whatever `config.store` names. For AWS, the SDK clients are built from the environment
    /// here, once; no request is sent (the data key is fetched on first use).
    pub async fn from_config(config: &Config) -> Result<Self, StartError> {
        match config.store {
            #[cfg(feature = "embedded")]
            StoreKind::Sqlite => Self::embedded(config),
            #[cfg(not(feature = "embedded"))]
            StoreKind::Sqlite => Err(StartError::NotBuiltIn(NO_EMBEDDED_STORE)),
            // The SDK trusts the roots the platforms' client read: the system's are read once.
            StoreKind::DynamoDb => {
                let clients = AwsClients::from_env_trusting(squaremcp_platforms::kit::roots::system_roots).await;
                Ok(Self::aws(config, &clients))
            }
        }
    }

    /// SQLite and a key file in the data directory, both created on first use, and in-process
    /// queues with the same redrive policy as the SQS ones.
    #[cfg(feature = "embedded")]
    pub fn embedded(config: &Config) -> Result<Self, StartError> {
        squaremcp_embedded::private_directory(&config.data_dir)
            .map_err(|source| StartError::DataDir { path: config.data_dir.display().to_string(), source })?;
        let store = SqliteStore::open(&config.data_dir.join("squaremcp.db"))?;
        let keyring = KeyFileKeyring::open_or_create(&config.data_dir.join("keyring.json"))?;
        let dead_letter = Arc::new(MemoryQueue::new());
        let retry = Arc::new(MemoryQueue::with_dead_letter(Arc::clone(&dead_letter), provision::MAX_RECEIVE_COUNT));
        Ok(Self {
            store: Arc::new(store),
            keyring: Arc::new(keyring),
            clock: clock(config),
            queues: Some(Queues { retry, dead_letter }),
        })
    }

    /// DynamoDB, KMS and SQS through `clients`. Sends nothing.
    pub fn aws(config: &Config, clients: &AwsClients) -> Self {
        let settings = &config.aws;
        let queues = match (&settings.retry_queue_url, &settings.dead_letter_queue_url) {
            (Some(retry), Some(dead_letter)) => Some(Queues {
                retry: Arc::new(SqsQueue::new(clients.sqs.clone(), retry)),
                dead_letter: Arc::new(SqsQueue::new(clients.sqs.clone(), dead_letter)),
            }),
            _ => None,
        };
        Self {
            store: Arc::new(DynamoStore::new(clients.dynamodb.clone(), &settings.table)),
            keyring: Arc::new(KmsKeyring::new(clients.kms.clone(), clients.dynamodb.clone(), &settings.table)),
            clock: clock(config),
            queues,
        }
    }
}

/// What `squaremcp init` set up.
#[derive(Debug)]
pub enum Initialized {
    Embedded { data_dir: std::path::PathBuf },
    Aws(Provisioned),
}

/// Creates what the configured backends need, idempotently: the data directory, database and
/// key file; or the table, KMS key and alias, queues and first data key.
pub async fn initialize(config: &Config, retry_queue: &str, dead_letter_queue: &str) -> Result<Initialized, StartError> {
    match config.store {
        #[cfg(feature = "embedded")]
        StoreKind::Sqlite => {
            Backends::embedded(config)?;
            Ok(Initialized::Embedded { data_dir: config.data_dir.clone() })
        }
        #[cfg(not(feature = "embedded"))]
        StoreKind::Sqlite => Err(StartError::NotBuiltIn(NO_EMBEDDED_STORE)),
        StoreKind::DynamoDb => {
            let plan = Plan {
                table: config.aws.table.clone(),
                kms_key_id: config.aws.kms_key_id.clone(),
                retry_queue: retry_queue.to_owned(),
                dead_letter_queue: dead_letter_queue.to_owned(),
            };
            let clients = AwsClients::from_env().await;
            Ok(Initialized::Aws(provision::provision(&clients, &plan, SystemClock.now()).await?))
        }
    }
}

/// Adds a data key and makes it the one new credentials are sealed with; returns its version.
/// Older records still open; `Gateway::rewrap_credentials` moves them to the new key.
pub async fn rotate_data_key(config: &Config) -> Result<u32, StartError> {
    match config.store {
        #[cfg(feature = "embedded")]
        StoreKind::Sqlite => Ok(KeyFileKeyring::rotate(&config.data_dir.join("keyring.json"))?),
        #[cfg(not(feature = "embedded"))]
        StoreKind::Sqlite => Err(StartError::NotBuiltIn(NO_EMBEDDED_STORE)),
        StoreKind::DynamoDb => {
            let clients = AwsClients::from_env().await;
            let keyring = KmsKeyring::new(clients.kms, clients.dynamodb, &config.aws.table);
            Ok(keyring.rotate(&config.aws.kms_key_id, SystemClock.now()).await?)
        }
    }
}

/// The system clock, or the fixed instant of `SQUAREMCP_NOW`.
pub fn clock(config: &Config) -> Arc<dyn Clock> {
    match config.now {
        Some(now) => Arc::new(FixedClock(now)),
        None => Arc::new(SystemClock),
    }
}

struct FixedClock(squaremcp_core::Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> squaremcp_core::Timestamp {
        self.0
    }
}

/// Every platform's tools, sharing one HTTP client (one connection pool per process), with the
/// store and clock for the tools that answer from the gateway's records.
pub fn registry(config: &Config, records: Option<squaremcp_platforms::kit::Records>) -> Arc<Registry> {
    let mut platforms = PlatformConfig::new(squaremcp_platforms::kit::HttpClient::lazy(config.call_timeout))
        .with_network(config.network.clone())
        .with_obsidian(config.obsidian.clone())
        .with_media(config.media)
        .with_publish_wait(config.publish_wait)
        .with_partner_access(config.partner_access.clone());
    // Checked when the configuration was read.
    platforms = match platforms.clone().with_graph_api_version(&config.graph_api_version) {
        Ok(updated) => updated,
        Err(why) => {
            tracing::error!(why, "ignoring SQUAREMCP_GRAPH_API_VERSION");
            platforms
        }
    };
    // Checked when the configuration was read.
    platforms = match platforms.clone().with_linkedin_version(&config.linkedin_version) {
        Ok(updated) => updated,
        Err(why) => {
            tracing::error!(why, "ignoring SQUAREMCP_LINKEDIN_VERSION");
            platforms
        }
    };
    if let Some(records) = records {
        platforms = platforms.with_records(records);
    }
    for (platform, url) in &config.platform_base_urls {
        // Checked when the configuration was read; a refusal here would be a bug in that check.
        platforms = match platforms.clone().with_base_url(*platform, url) {
            Ok(updated) => updated,
            Err(why) => {
                tracing::error!(%platform, why, "ignoring an API address override");
                platforms
            }
        };
    }
    Arc::new(Registry::new(squaremcp_platforms::modules(&platforms)))
}

pub fn gateway(config: &Config, backends: Backends) -> Arc<Gateway> {
    gateway_with_events(config, backends, None)
}

/// [`gateway`], publishing `tool.call.failed` and `connection.needs_reconnect` to `events`
/// (outbound webhooks).
pub fn gateway_with_events(config: &Config, backends: Backends, events: Option<Arc<dyn squaremcp_core::events::EventSink>>) -> Arc<Gateway> {
    observed_gateway(config, backends, events, None)
}

/// [`gateway_with_events`], handing every customer's tool call to `observer` (metrics: EMF
/// lines in the Lambdas, the `/metrics` registry in `serve`). Each call answers once its record
/// is written: a Lambda's process may be frozen as soon as it answers.
pub fn observed_gateway(
    config: &Config,
    backends: Backends,
    events: Option<Arc<dyn squaremcp_core::events::EventSink>>,
    observer: Option<Arc<dyn squaremcp_core::metrics::CallObserver>>,
) -> Arc<Gateway> {
    Arc::new(build_gateway(config, backends, events, observer))
}

/// [`observed_gateway`] for a long-running server (`squaremcp serve`): a call answers as soon
/// as its platform part is done and writes its record meanwhile, so the commit adds nothing to
/// its latency. Before the process ends, [`Gateway::records_written`] waits for those records.
pub fn served_gateway(
    config: &Config,
    backends: Backends,
    events: Option<Arc<dyn squaremcp_core::events::EventSink>>,
    observer: Option<Arc<dyn squaremcp_core::metrics::CallObserver>>,
) -> Arc<Gateway> {
    Arc::new(build_gateway(config, backends, events, observer).with_records_after_answers())
}

fn build_gateway(
    config: &Config,
    backends: Backends,
    events: Option<Arc<dyn squaremcp_core::events::EventSink>>,
    observer: Option<Arc<dyn squaremcp_core::metrics::CallObserver>>,
) -> Gateway {
    let billing = Billing {
        plans: config.plans.clone(),
        retention_seconds: i64::try_from(config.call_log_retention_days).unwrap_or(i64::MAX / 86_400) * 86_400,
    };
    let mut gateway = Gateway::new(
        backends.store.clone(),
        backends.keyring,
        backends.clock.clone(),
        registry(config, Some(squaremcp_platforms::kit::Records { store: backends.store, clock: backends.clock })),
        config.admin_key.clone(),
    )
    .with_billing(billing)
    .with_call_timeout(config.call_timeout)
    .with_api_key_cache(config.api_key_cache)
    .with_credential_cache(config.credential_cache)
    .with_refresher(oauth_clients(config));
    if let Some(events) = events {
        gateway = gateway.with_events(events);
    }
    if let Some(observer) = observer {
        gateway = gateway.with_observer(observer);
    }
    gateway
}

/// The OAuth apps of the platforms customers connect themselves: the gateway refreshes their
/// tokens with them and the account page runs the Connect flows.
pub fn oauth_clients(config: &Config) -> Arc<squaremcp_platforms::kit::oauth::OAuthClients> {
    Arc::new(squaremcp_platforms::kit::oauth::OAuthClients::new(
        squaremcp_platforms::kit::HttpClient::lazy(config.call_timeout),
        &config.oauth_apps,
    ))
}

/// SMTP when `SQUAREMCP_SMTP_URL` is set; otherwise a mailer that refuses, so invoices wait.
pub fn mailer(config: &Config) -> Result<Arc<dyn Mailer>, StartError> {
    Ok(match &config.smtp_url {
        #[cfg(feature = "mail")]
        Some(url) => Arc::new(SmtpMailer::new(url.expose(), &config.mail_from).map_err(StartError::Mail)?),
        #[cfg(not(feature = "mail"))]
        Some(_) => return Err(StartError::NotBuiltIn("this binary is built without SMTP, so it cannot send invoices")),
        None => Arc::new(NoMailer),
    })
}

/// The monthly invoice job on these backends.
pub fn invoice_run(config: &Config, backends: &Backends) -> Result<InvoiceRun, StartError> {
    Ok(InvoiceRun {
        store: backends.store.clone(),
        mailer: mailer(config)?,
        plans: config.plans.clone(),
        clock: backends.clock.clone(),
        from: config.mail_from.clone(),
        events: deliverer(config, backends)?.map(|d| d as Arc<dyn squaremcp_core::events::EventSink>),
    })
}

/// The JWT signing secret: `SQUAREMCP_JWT_SECRET`, or else one generated on first start and
/// kept in `<data dir>/jwt-secret` (mode 0600), so that sessions and tokens survive restarts.
pub fn jwt_secret(config: &Config) -> Result<Secret<Vec<u8>>, StartError> {
    if let Some(secret) = &config.jwt_secret {
        return Ok(Secret::new(secret.expose().as_bytes().to_vec()));
    }
    let path = config.data_dir.join("jwt-secret");
    let failed = |why: String| StartError::JwtSecret { path: path.display().to_string(), why };
    std::fs::create_dir_all(&config.data_dir).map_err(|e| failed(e.to_string()))?;
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= squaremcp_auth::MIN_SECRET_BYTES => return Ok(Secret::new(text.trim().as_bytes().to_vec())),
        Ok(_) => return Err(failed(format!("shorter than {} bytes; delete it to have a new one generated", squaremcp_auth::MIN_SECRET_BYTES))),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(failed(e.to_string())),
        Err(_) => {}
    }
    let secret = squaremcp_core::random::token::<48>();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            std::io::Write::write_all(&mut file, secret.as_bytes()).map_err(|e| failed(e.to_string()))?;
            tracing::info!(path = %path.display(), "generated a JWT signing secret");
            Ok(Secret::new(secret.into_bytes()))
        }
        // Another process (the CLI beside `serve`) created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(&path).map_err(|e| failed(e.to_string()))?;
            Ok(Secret::new(text.trim().as_bytes().to_vec()))
        }
        Err(e) => Err(failed(e.to_string())),
    }
}

/// The authorization server and login, with the configured lifetimes.
pub fn auth(config: &Config, gateway: Arc<Gateway>) -> Result<Arc<Auth>, StartError> {
    let mut settings = AuthSettings::new(&config.public_url);
    settings.access_token_ttl = config.access_token_ttl;
    settings.refresh_token_ttl = config.refresh_token_ttl;
    settings.session_ttl = config.session_ttl;
    settings.refresh_grace = config.refresh_grace;
    settings.grant_max_age = config.grant_max_age;
    settings.registrations_per_ip_per_hour = config.registrations_per_ip_per_hour;
    settings.registrations_per_hour = config.registrations_per_hour;
    settings.signup = config.signup.policy(&config.plans)?;
    // Client ID Metadata Documents are fetched through the same guard as webhooks; http on
    // loopback only where private hosts are allowed (tests, local development).
    settings.allow_loopback_client_documents = config.network.allows_private_hosts();
    let fetcher = Arc::new(client_documents::GuardedDocumentFetcher::new(config.network.clone()));
    let mut auth = Auth::new(gateway, settings, &jwt_secret(config)?)?.with_client_documents(fetcher);
    // Only open sign-up mails from here: a function built without SMTP refuses to start with it.
    if config.signup.open {
        auth = auth.with_mailer(mailer(config).map_err(|e| match e {
            StartError::NotBuiltIn(_) => StartError::NotBuiltIn(
                "this binary is built without SMTP, so it cannot serve open sign-up (SQUAREMCP_SIGNUP=open): set it on the login function or `squaremcp serve` only",
            ),
            other => other,
        })?);
    }
    Ok(Arc::new(auth))
}

/// Outbound webhooks on these backends: publishing events, delivering them, retries through
/// the retry queue, the dead-letter queue. `None` when no queues are configured.
pub fn deliverer(config: &Config, backends: &Backends) -> Result<Option<Arc<Deliverer>>, StartError> {
    let Some(queues) = &backends.queues else { return Ok(None) };
    let transport = squaremcp_webhooks::HttpTransport::new(config.network.clone());
    Ok(Some(Arc::new(Deliverer {
        store: backends.store.clone(),
        keyring: backends.keyring.clone(),
        clock: backends.clock.clone(),
        network: config.network.clone(),
        transport: Arc::new(transport),
        retry_queue: queues.retry.clone(),
        dead_letter_queue: queues.dead_letter.clone(),
        schedule: config.webhook_retry_schedule.clone(),
        disabling: squaremcp_webhooks::Disabling {
            after_seconds: config.webhook_disable_after_seconds,
            // A Lambda built without SMTP still disables; the customer sees the mark.
            mailer: mailer(config).unwrap_or_else(|_| Arc::new(NoMailer)),
        },
    })))
}

/// Everything a router needs, built once.
pub fn app_state(config: &Config, gateway: Arc<Gateway>) -> Result<AppState, StartError> {
    app_state_with_events(config, gateway, None)
}

/// [`app_state`], with inbound webhooks handing their events to `events` (outbound webhooks).
pub fn app_state_with_events(
    config: &Config,
    gateway: Arc<Gateway>,
    events: Option<Arc<dyn squaremcp_core::events::EventSink>>,
) -> Result<AppState, StartError> {
    let auth = auth(config, gateway.clone())?;
    let info = ServerInfo {
        name: "squaremcp".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        instructions: "SquareMCP runs tools on your connected platforms with your own credentials. \
                       Tool names are `<platform>_<action>`; when several accounts of a platform are connected, \
                       pass `account`."
            .to_owned(),
    };
    let (store, clock) = gateway.store_and_clock();
    let mut telegram = TelegramWebhook::new(store.clone(), clock.clone());
    let mut whatsapp =
        WhatsappWebhook::new(store, clock, config.whatsapp_app_secret.clone(), config.whatsapp_verify_token.clone());
    if let Some(events) = events {
        telegram = telegram.with_events(events.clone());
        whatsapp = whatsapp.with_events(events);
    }
    Ok(AppState {
        webhooks: None,
        telegram: Arc::new(telegram),
        oauth: oauth_clients(config),
        whatsapp: Arc::new(whatsapp),
        mcp: Arc::new(McpServer::new(gateway, info, config.tools_page_size)),
        auth,
        config: Arc::new(HttpConfig {
            public_url: config.public_url.clone(),
            allowed_origins: config.allowed_origins.clone(),
            max_body_bytes: config.max_body_bytes,
            cookie_domain: config.cookie_domain.clone(),
            trusted_proxies: config.trusted_proxies.clone(),
        }),
    })
}

/// Configuration, the configured backends and the app state, from the environment: the
/// Lambdas' start, with an EMF metrics line per tool call on stdout.
pub async fn build_from_env() -> Result<(Config, AppState), StartError> {
    let config = Config::from_env()?;
    let backends = Backends::from_config(&config).await?;
    let deliverer = deliverer(&config, &backends)?;
    let events = deliverer.clone().map(|d| d as Arc<dyn squaremcp_core::events::EventSink>);
    let metrics = config.metrics_namespace.clone().map(|namespace| Arc::new(emf::EmfObserver::new(namespace)) as Arc<dyn squaremcp_core::metrics::CallObserver>);
    let gateway = observed_gateway(&config, backends, events.clone(), metrics);
    let mut state = app_state_with_events(&config, gateway, events)?;
    state.webhooks = deliverer;
    Ok((config, state))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The Lambdas are built without the embedded store: asking for it must say so plainly.
    #[cfg(not(feature = "embedded"))]
    #[tokio::test]
    async fn a_build_without_the_embedded_store_refuses_sqlite_by_name() {
        let config = Config::from_lookup(|name| (name == "SQUAREMCP_STORE").then(|| "sqlite".to_owned())).unwrap();
        let refused = Backends::from_config(&config).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused.contains("SQUAREMCP_STORE=dynamodb"), "{refused}");
    }

    #[cfg(not(feature = "mail"))]
    #[test]
    fn a_build_without_smtp_refuses_an_smtp_url() {
        let config = Config::from_lookup(|name| (name == "SQUAREMCP_SMTP_URL").then(|| "smtp://localhost:25".to_owned())).unwrap();
        let refused = mailer(&config).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused.contains("without SMTP"), "{refused}");
    }

    #[cfg(feature = "embedded")]
    #[tokio::test]
    async fn the_default_build_opens_the_embedded_store() {
        let dir = std::env::temp_dir().join(format!("squaremcp-runtime-{}", squaremcp_core::random::hex_id::<6>()));
        let data_dir = dir.display().to_string();
        let config = Config::from_lookup(|name| (name == "SQUAREMCP_DATA_DIR").then(|| data_dir.clone())).unwrap();
        let backends = Backends::from_config(&config).await;
        assert!(backends.is_ok(), "{:?}", backends.err().map(|e| e.to_string()));
        assert!(dir.join("squaremcp.db").exists());
        drop(backends);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
