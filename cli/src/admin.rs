//! The commands. Each opens the same backends `serve` uses (the data directory, or the
//! DynamoDB table); SQLite's locking and DynamoDB's conditional writes make that safe while
//! the server runs.

use std::collections::BTreeMap;
use std::io::{BufRead as _, Read as _};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};
use squaremcp_core::billing::run::invoice_key;
use squaremcp_core::connections::Probe;
use squaremcp_core::billing::{self, Invoice, InvoiceRun, Month, RunError, RunReport, money};
use squaremcp_core::customer::InvalidInput;
use squaremcp_core::gateway::GatewayError;
use squaremcp_core::rewrap::rewrap_credentials;
use squaremcp_core::{AccountName, ApiKeyId, CustomerId, Gateway, Keyring, Platform, Store, StoreError, Timestamp};
use squaremcp_runtime::{Backends, Config, Initialized, StartError, StoreKind};

use crate::args::{
    ApiKeysCommand, AuditCommand, Command, CredentialsCommand, CustomersCommand, InvoicesCommand, UsageCommand,
};
use crate::output::{Printer, connection_json, credential_json, customer_json, key_json};
use crate::progress::Progress;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Input(#[from] InvalidInput),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Invoices(#[from] RunError),
    #[error(transparent)]
    Endpoint(#[from] squaremcp_webhooks::EndpointError),
    #[error(transparent)]
    Delivery(#[from] squaremcp_webhooks::DeliveryError),
}

/// Global options that override the environment.
pub struct Options {
    pub data_dir: Option<PathBuf>,
    pub store: Option<String>,
}

fn config(options: Options) -> Result<Config, CliError> {
    let mut config = Config::from_env().map_err(StartError::from)?;
    if let Some(dir) = options.data_dir {
        config.data_dir = dir;
    }
    if let Some(store) = options.store {
        config.store = store.parse().map_err(CliError::Usage)?;
    }
    Ok(config)
}

/// Where the data lives, for people reading the log.
fn location(config: &Config) -> String {
    match config.store {
        StoreKind::Sqlite => format!("SQLite in {}", config.data_dir.display()),
        StoreKind::DynamoDb => format!("DynamoDB table {}", config.aws.table),
    }
}

pub async fn serve(options: Options, routes: &[squaremcp_http::RouteGroup]) -> Result<(), CliError> {
    let config = config(options)?;
    squaremcp_runtime::init_server_logging(&config.log_filter, config.log_format, config.log_format_set);
    let backends = Backends::from_config(&config).await?;
    let deliverer = squaremcp_runtime::deliverer(&config, &backends)?;
    let events = deliverer.clone().map(|d| d as Arc<dyn squaremcp_core::events::EventSink>);
    // Every customer's tool call, for `GET /metrics` (Prometheus).
    let metrics = Arc::new(squaremcp_http::CallMetrics::default());
    let observer: Arc<dyn squaremcp_core::metrics::CallObserver> = metrics.clone();
    let gateway = squaremcp_runtime::served_gateway(&config, backends.clone(), events.clone(), Some(observer));
    let mut state = squaremcp_runtime::app_state_with_events(&config, gateway.clone(), events)?;
    // The account page manages the customer's endpoints and dead letters.
    state.webhooks = deliverer.clone();
    match deliverer {
        // Outbound webhooks: first attempts and retries from the retry queue, in-process.
        Some(deliverer) => squaremcp_webhooks::worker::spawn(deliverer, 4),
        None => tracing::info!("outbound webhooks are off: no retry queue is configured"),
    }
    let listener = squaremcp_runtime::bind(config.listen).await?;
    if config.smtp_url.is_some() {
        let interval = std::time::Duration::from_secs(config.invoice_check_seconds as u64);
        squaremcp_runtime::spawn_invoice_scheduler(squaremcp_runtime::invoice_run(&config, &backends)?, interval);
    } else {
        tracing::info!("monthly invoices are off: set SQUAREMCP_SMTP_URL to send them");
    }
    let local = listener.local_addr().map_or_else(|_| config.listen.to_string(), |a| a.to_string());
    tracing::info!(
        listen = local,
        public_url = config.public_url,
        store = location(&config),
        admin_key = config.admin_key.is_some(),
        routes = routes.iter().map(|g| g.name()).collect::<Vec<_>>().join(","),
        trusted_proxies = !config.trusted_proxies.is_empty(),
        "SquareMCP is serving {}/mcp",
        config.public_url
    );
    let grace = std::time::Duration::from_secs(config.shutdown_grace_seconds);
    let mut router = squaremcp_http::routes_router(state, routes);
    match config.metrics_listen {
        // A listener of its own: the metrics stay off the public listener altogether.
        Some(address) => {
            let metrics_listener = squaremcp_runtime::bind(address).await?;
            let local = metrics_listener.local_addr().map_or_else(|_| address.to_string(), |a| a.to_string());
            tracing::info!(listen = local, "metrics are served at http://{local}/metrics");
            let metrics_router = squaremcp_http::metrics_router(metrics, squaremcp_http::MetricsAccess::Listener);
            tokio::spawn(async move {
                if let Err(e) = squaremcp_runtime::serve(metrics_listener, metrics_router, grace).await {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            });
        }
        None => {
            router = router.merge(squaremcp_http::metrics_router(metrics, squaremcp_http::MetricsAccess::AdminKey(gateway.clone())));
        }
    }
    // Calls answer before their records are written (`served_gateway`): the ones still being
    // written are finished before the process ends.
    squaremcp_runtime::serve_then(listener, router, grace, async move { gateway.records_written().await }).await?;
    Ok(())
}

pub async fn run(command: Command, options: Options, json: bool) -> Result<(), CliError> {
    let config = config(options)?;
    let out = Printer { json };
    match command {
        Command::Init { retry_queue, dead_letter_queue } => return init(&config, &retry_queue, &dead_letter_queue, out).await,
        Command::Credentials(CredentialsCommand::RotateKey) => {
            let version = squaremcp_runtime::rotate_data_key(&config).await?;
            out.print(&json!({"active_key_version": version}), || {
                format!("Data key {version} is now active. Run `squaremcp credentials rewrap` to re-encrypt older credentials.")
            });
            return Ok(());
        }
        _ => {}
    }
    let backends = Backends::from_config(&config).await?;
    if let Command::Credentials(CredentialsCommand::Rewrap) = command {
        return rewrap(backends.store.as_ref(), backends.keyring.as_ref(), out).await;
    }
    let gateway = squaremcp_runtime::gateway(&config, backends.clone());
    match command {
        Command::Serve(_) | Command::Init { .. } => Err(CliError::Usage("not an administration command".into())),
        Command::Invoices(InvoicesCommand::Run { month }) => {
            let mut job = squaremcp_runtime::invoice_run(&config, &backends)?;
            if config.aws.retry_queue_url.is_none() {
                // The embedded queue lives in this process and ends with it: no event is queued
                // where nothing would deliver it. `serve`'s own run publishes, as do SQS queues.
                job.events = None;
            }
            invoices_run(&gateway, &job, month, out).await
        }
        Command::Invoices(InvoicesCommand::List { month }) => invoices_list(&gateway, month, out).await,
        Command::Customers(c) => customers(&gateway, c, out).await,
        Command::ApiKeys(c) => api_keys(&gateway, c, out).await,
        Command::Credentials(c) => credentials(&gateway, c, out).await,
        Command::Usage(UsageCommand::Show { customer, month }) => usage(&gateway, &customer.customer, month, out).await,
        Command::Usage(UsageCommand::Top { month, limit }) => crate::usage_top::run(&gateway, month, limit, out).await,
        Command::Audit(AuditCommand::Tail { customer, limit }) => audit(&gateway, &customer.customer, limit, out).await,
        Command::Webhooks(c) => crate::webhooks::run(&config, &backends, &gateway, c, out).await,
        Command::Telegram(c) => crate::telegram::run(&config, &backends, &gateway, c, out).await,
    }
}

async fn customers(gateway: &Arc<Gateway>, command: CustomersCommand, out: Printer) -> Result<(), CliError> {
    match command {
        CustomersCommand::Create { email, plan, password_stdin } => {
            let password_hash = if password_stdin { Some(hash_password(&read_password()?)?) } else { None };
            let customer = gateway.create_customer(&email, &plan, password_hash).await?;
            out.print(&customer_json(&customer), || {
                format!("Created customer {} ({}, plan {})", customer.id, customer.email.as_str(), customer.plan.as_str())
            });
        }
        CustomersCommand::SetPlan { customer, plan } => {
            let customer = gateway.set_plan(&CustomerId::parse(&customer.customer)?, &plan).await?;
            out.print(&customer_json(&customer), || format!("{} is now on plan {}.", customer.id, customer.plan.as_str()));
        }
        CustomersCommand::List => {
            let mut all = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = gateway.store().list_customers(after.as_deref(), 100).await?;
                all.extend(page.items);
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            let rows: Vec<Value> = all.iter().map(customer_json).collect();
            out.print(&Value::Array(rows), || {
                if all.is_empty() {
                    return "No customers yet. Create one with `squaremcp customers create --email E --plan P`.".to_owned();
                }
                all.iter()
                    .map(|c| format!("{}  {}  plan={}  created={}", c.id, c.email.as_str(), c.plan.as_str(), c.created_at.to_rfc3339()))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        CustomersCommand::SetPassword { customer } => {
            let customer = CustomerId::parse(&customer.customer)?;
            gateway.require_customer(&customer).await?;
            let hash = hash_password(&read_password()?)?;
            squaremcp_auth::store_password_hash(gateway.store(), gateway.now(), &customer, &hash).await?;
            out.print(&json!({"id": customer.as_str(), "password_set": true}), || format!("Set the password of {customer}."));
        }
        CustomersCommand::RevokeSessions { customer } => crate::access::revoke_sessions(gateway, &customer.customer, out).await?,
        CustomersCommand::Disable { customer } => crate::access::disable(gateway, &customer.customer, out).await?,
        CustomersCommand::Enable { customer } => crate::access::enable(gateway, &customer.customer, out).await?,
    }
    Ok(())
}

async fn api_keys(gateway: &Arc<Gateway>, command: ApiKeysCommand, out: Printer) -> Result<(), CliError> {
    match command {
        ApiKeysCommand::Create { customer, name } => {
            let customer = CustomerId::parse(&customer.customer)?;
            let (record, key) = gateway.create_api_key(&customer, &name).await?;
            let mut shown = key_json(&record);
            shown["key"] = json!(key.expose());
            out.print(&shown, || {
                format!(
                    "{}\n\nThis is the only time the key is shown; it is stored only as a hash.\nKey id {} (name {:?}) for {}.",
                    key.expose(),
                    record.id,
                    record.name,
                    record.customer_id
                )
            });
        }
        ApiKeysCommand::List { customer } => {
            let customer = CustomerId::parse(&customer.customer)?;
            gateway.require_customer(&customer).await?;
            let keys = gateway.store().list_api_keys(&customer).await?;
            out.print(&Value::Array(keys.iter().map(key_json).collect()), || {
                if keys.is_empty() {
                    return format!("{customer} has no API keys.");
                }
                keys.iter()
                    .map(|k| {
                        let state = k.revoked_at.map_or_else(|| "active".to_owned(), |t| format!("revoked {}", t.to_rfc3339()));
                        format!("{}  {}…  {:?}  created={}  {state}", k.id, k.prefix, k.name, k.created_at.to_rfc3339())
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ApiKeysCommand::Revoke { customer, key } => {
            let customer = CustomerId::parse(&customer.customer)?;
            let key = ApiKeyId::parse(&key)?;
            if !gateway.store().revoke_api_key(&customer, &key, gateway.now()).await? {
                return Err(CliError::Usage(format!("{customer} has no active key {key}")));
            }
            out.print(&json!({"id": key.as_str(), "revoked": true}), || format!("Revoked {key}."));
        }
    }
    Ok(())
}

async fn credentials(gateway: &Arc<Gateway>, command: CredentialsCommand, out: Printer) -> Result<(), CliError> {
    match command {
        CredentialsCommand::Set { customer, platform, account } => {
            let customer = CustomerId::parse(&customer.customer)?;
            let platform: Platform = platform.parse()?;
            let account = AccountName::parse(&account)?;
            let document = read_json_document(gateway, platform)?;
            let record = gateway.set_credential(&customer, platform, account, &document).await?;
            out.print(&credential_json(&record), || {
                format!("Stored {} credentials {:?} for {} (encrypted, key version {}).", record.platform, record.account.as_str(), record.customer_id, record.sealed.key_version)
            });
        }
        CredentialsCommand::List { customer } => {
            let customer = CustomerId::parse(&customer.customer)?;
            gateway.require_customer(&customer).await?;
            let records = gateway.store().credentials(&customer, None).await?;
            out.print(&Value::Array(records.iter().map(credential_json).collect()), || {
                if records.is_empty() {
                    return format!("{customer} has no stored credentials.");
                }
                records
                    .iter()
                    .map(|r| format!("{}  {}  key_version={}  updated={}", r.platform, r.account, r.sealed.key_version, r.updated_at.to_rfc3339()))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        CredentialsCommand::Check { customer, platform } => {
            let customer = CustomerId::parse(&customer.customer)?;
            let platform = platform.map(|p| p.parse::<Platform>()).transpose()?;
            gateway.require_customer(&customer).await?;
            let connections = gateway.connections(&customer, platform, Probe::All).await?;
            out.print(&Value::Array(connections.iter().map(connection_json).collect()), || {
                if connections.is_empty() {
                    return format!("{customer} has no connections{}.", platform.map(|p| format!(" on {p}")).unwrap_or_default());
                }
                let mut lines = vec![format!("{:<10}  {:<20}  {:<15}  {}", "PLATFORM", "ACCOUNT", "HEALTH", "DETAIL")];
                lines.extend(connections.iter().map(|c| {
                    format!("{:<10}  {:<20}  {:<15}  {}", c.platform.as_str(), c.account.as_str(), c.health.name(), c.health.describe())
                }));
                lines.join("\n")
            });
        }
        CredentialsCommand::RotateKey | CredentialsCommand::Rewrap => {
            return Err(CliError::Usage("this command runs before the gateway is built".into()));
        }
        CredentialsCommand::Delete { customer, platform, account } => {
            let customer = CustomerId::parse(&customer.customer)?;
            let platform: Platform = platform.parse()?;
            let account = AccountName::parse(&account)?;
            // Through the gateway, which also releases the number's webhook routing (WhatsApp).
            if !gateway.delete_credential(&customer, platform, &account).await? {
                return Err(CliError::Usage(format!("{customer} has no {platform} credentials named {account:?}", account = account.as_str())));
            }
            out.print(&json!({"platform": platform, "account": account.as_str(), "deleted": true}), || {
                format!("Deleted {platform} credentials {:?}.", account.as_str())
            });
        }
    }
    Ok(())
}

async fn rewrap(store: &dyn Store, keyring: &dyn Keyring, out: Printer) -> Result<(), CliError> {
    let mut bar = Progress::new("re-encrypting credentials", out.json);
    let report = rewrap_credentials(store, keyring, |done, total| bar.update(done, total)).await?;
    bar.finish();
    let failed: Vec<Value> = report
        .failed
        .iter()
        .map(|(customer, platform, account)| json!({"customer_id": customer, "platform": platform, "account": account}))
        .collect();
    out.print(
        &json!({
            "examined": report.examined,
            "rewrapped": report.rewrapped,
            "current": report.current,
            "changed_meanwhile": report.changed_meanwhile,
            "failed": failed,
        }),
        || {
            let mut text = format!(
                "Examined {} credentials: {} re-encrypted, {} already current, {} changed by someone else meanwhile (run again to check).",
                report.examined, report.rewrapped, report.current, report.changed_meanwhile
            );
            for (customer, platform, account) in &report.failed {
                text.push_str(&format!("\nCould not open {platform} {:?} of {customer}: store it again.", account.as_str()));
            }
            text
        },
    );
    if !report.failed.is_empty() {
        return Err(CliError::Usage(format!("{} credentials could not be re-encrypted", report.failed.len())));
    }
    Ok(())
}

async fn init(config: &Config, retry_queue: &str, dead_letter_queue: &str, out: Printer) -> Result<(), CliError> {
    match squaremcp_runtime::initialize(config, retry_queue, dead_letter_queue).await? {
        Initialized::Embedded { data_dir } => {
            out.print(&json!({"store": "sqlite", "data_dir": data_dir.display().to_string()}), || {
                format!("Ready: SQLite store and key file in {} (back up keyring.json with the database).", data_dir.display())
            });
        }
        Initialized::Aws(done) => {
            let state = |created: bool| if created { "created" } else { "already there" };
            out.print(
                &json!({
                    "store": "dynamodb",
                    "table": done.table,
                    "table_created": done.table_created,
                    "kms_key_arn": done.kms_key_arn,
                    "kms_key_created": done.kms_key_created,
                    "retry_queue_url": done.retry_queue_url,
                    "dead_letter_queue_url": done.dead_letter_queue_url,
                    "data_key_version": done.data_key_version,
                }),
                || {
                    format!(
                        "Table {} ({}), KMS key {} ({}), data key {} active.\nQueues:\n  SQUAREMCP_RETRY_QUEUE_URL={}\n  SQUAREMCP_DEAD_LETTER_QUEUE_URL={}",
                        done.table,
                        state(done.table_created),
                        done.kms_key_arn,
                        state(done.kms_key_created),
                        done.data_key_version,
                        done.retry_queue_url,
                        done.dead_letter_queue_url
                    )
                },
            );
        }
    }
    Ok(())
}

fn read_json_document(gateway: &Gateway, platform: Platform) -> Result<Value, CliError> {
    let example = gateway.registry().module(platform).map(|m| m.credential_example()).unwrap_or("{…}");
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| CliError::Usage(format!("cannot read the credentials from stdin: {e}")))?;
    if text.trim().is_empty() {
        return Err(CliError::Usage(format!("pipe the {platform} credentials as JSON on stdin, e.g. {example}")));
    }
    // serde_json's message names line and column but never echoes the secret itself.
    serde_json::from_str(&text).map_err(|e| CliError::Usage(format!("the credentials on stdin are not valid JSON ({e}); expected e.g. {example}")))
}

fn read_password() -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Usage(format!("cannot read the password from stdin: {e}")))?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.chars().count() < 8 {
        return Err(CliError::Usage("the password on stdin must have at least 8 characters".into()));
    }
    if password.len() > 72 {
        return Err(CliError::Usage("the password must be at most 72 bytes (bcrypt's limit)".into()));
    }
    Ok(password)
}

fn hash_password(password: &str) -> Result<String, CliError> {
    bcrypt::hash(password, bcrypt::DEFAULT_COST).map_err(|e| CliError::Usage(format!("cannot hash the password: {e}")))
}

async fn usage(gateway: &Arc<Gateway>, customer: &str, month: Option<String>, out: Printer) -> Result<(), CliError> {
    let customer = gateway.require_customer(&CustomerId::parse(customer)?).await?;
    let month = match month {
        Some(text) => Month::parse(&text)?,
        None => Month::of(gateway.now()),
    };
    let used = gateway.store().counter(&billing::usage_counter_key(&customer.id, month)).await?;
    let plan = gateway.plans().get(&customer.plan);
    let records = gateway.store().call_records(&customer.id, month.start(), month.end(), 100_000, gateway.now()).await?;
    let mut by_tool: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    // Requests sent to the platforms, whatever the outcome: X bills each one.
    let mut upstream_by_tool: BTreeMap<String, u64> = BTreeMap::new();
    for record in &records {
        // A record may stand for several refused or invalid calls (`refusals.rs`).
        *by_tool.entry(record.tool.clone()).or_default().entry(record.outcome.clone()).or_default() += u64::from(record.calls);
        *upstream_by_tool.entry(record.tool.clone()).or_default() += u64::from(record.upstream_requests);
    }
    let upstream_requests: u64 = upstream_by_tool.values().sum();
    let included = plan.map(|p| p.monthly_calls);
    let over = included.map_or(0, |i| used.saturating_sub(i));
    let value = json!({
        "customer_id": customer.id,
        "month": month,
        "plan": customer.plan,
        "calls_counted": used,
        "calls_included": included,
        "calls_over_limit": over,
        "overage_cents_per_call": plan.and_then(|p| p.overage_cents),
        "resets_on": month.next().first_day(),
        "by_tool": by_tool,
        "upstream_requests": upstream_requests,
        "upstream_requests_by_tool": upstream_by_tool,
    });
    out.print(&value, || {
        let mut text = format!(
            "{} in {month}: {used} counted call(s) of {} included on plan {}; resets on {}.",
            customer.id,
            included.map_or_else(|| "?".to_owned(), |i| i.to_string()),
            customer.plan.as_str(),
            month.next().first_day()
        );
        if over > 0 {
            text.push_str(&format!("\n{over} call(s) over the limit."));
        }
        text.push_str(&format!("\n{upstream_requests} request(s) to the platforms."));
        for (tool, outcomes) in &by_tool {
            let parts: Vec<String> = outcomes.iter().map(|(o, n)| format!("{o} {n}")).collect();
            let requests = upstream_by_tool.get(tool).copied().unwrap_or(0);
            text.push_str(&format!("\n  {tool}: {}; {requests} upstream request(s)", parts.join(", ")));
        }
        text
    });
    Ok(())
}

async fn audit(gateway: &Arc<Gateway>, customer: &str, limit: usize, out: Printer) -> Result<(), CliError> {
    let customer = gateway.require_customer(&CustomerId::parse(customer)?).await?;
    let now = gateway.now();
    let records = gateway.store().call_records(&customer.id, Timestamp::from_unix(0), now.plus_seconds(1), limit, now).await?;
    let value = serde_json::to_value(&records).map_err(|e| CliError::Usage(e.to_string()))?;
    out.print(&value, || {
        if records.is_empty() {
            return format!("{} has made no tool calls yet.", customer.id);
        }
        records
            .iter()
            .map(|r| {
                format!(
                    "{}  {:<24} {:<16} {:>6} ms {:>4} req  {}  {}  {}",
                    r.at.to_rfc3339(),
                    r.tool,
                    // A record of several refused or invalid calls says how many.
                    if r.calls > 1 { format!("{} x{}", r.outcome, r.calls) } else { r.outcome.clone() },
                    r.duration_ms,
                    r.upstream_requests,
                    r.auth_method,
                    r.client.as_deref().unwrap_or("-"),
                    r.arguments
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

fn month_or_previous(gateway: &Gateway, month: Option<String>) -> Result<Month, CliError> {
    Ok(match month {
        Some(text) => Month::parse(&text)?,
        None => Month::of(gateway.now()).previous(),
    })
}

async fn invoices_run(gateway: &Gateway, job: &InvoiceRun, month: Option<String>, out: Printer) -> Result<(), CliError> {
    use std::io::{IsTerminal as _, Write as _};
    let month = month_or_previous(gateway, month)?;
    let show_progress = !out.json && std::io::stderr().is_terminal();
    let progress = move |report: &RunReport| {
        if show_progress {
            let _ = write!(
                std::io::stderr(),
                "\rinvoicing {month}: {} customers, {} invoices, {} emails sent   ",
                report.customers_seen, report.invoices_created, report.emails_sent
            );
        }
    };
    let report = job.run(month, &|| true, &progress).await?;
    if show_progress {
        eprintln!();
    }
    let value = serde_json::to_value(&report).map_err(|e| CliError::Usage(e.to_string()))?;
    out.print(&json!({"month": month, "report": value}), || {
        let state = if report.complete {
            "every invoice of the month is sent"
        } else {
            "some emails could not be sent; run again to retry them"
        };
        format!(
            "{month}: {} customers, {} invoices created, {} emails sent, {} sent before, {} failed; {state}.",
            report.customers_seen, report.invoices_created, report.emails_sent, report.already_sent, report.send_failures
        )
    });
    if report.complete { Ok(()) } else { Err(CliError::Usage(format!("{} invoice email(s) of {month} are not sent yet", report.send_failures))) }
}

async fn invoices_list(gateway: &Gateway, month: Option<String>, out: Printer) -> Result<(), CliError> {
    let month = month_or_previous(gateway, month)?;
    let mut invoices: Vec<Invoice> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = gateway.store().list_customers(after.as_deref(), 100).await?;
        for customer in &page.items {
            if let Some(bytes) = gateway.store().get_item(&invoice_key(&customer.id, month), gateway.now()).await? {
                invoices.push(serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?);
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let value = serde_json::to_value(&invoices).map_err(|e| CliError::Usage(e.to_string()))?;
    out.print(&value, || {
        if invoices.is_empty() {
            return format!("No invoices for {month}.");
        }
        invoices
            .iter()
            .map(|i| {
                let state = i.sent_at.map_or_else(|| "pending".to_owned(), |t| format!("sent {}", t.to_rfc3339()));
                format!("{}  {}  {}  {}  {state}", i.number, i.email, i.plan, money(i.total_cents))
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}
