//! The commands. Each opens the same backends `serve` uses (the data directory, or the
//! DynamoDB table); SQLite's locking and DynamoDB's conditional writes make that safe while
//! the server runs.

use std::io::{BufRead as _, Read as _};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};
use squaremcp_core::customer::InvalidInput;
use squaremcp_core::gateway::GatewayError;
use squaremcp_core::rewrap::rewrap_credentials;
use squaremcp_core::{AccountName, ApiKeyId, CustomerId, Gateway, Keyring, Platform, Store, StoreError};
use squaremcp_runtime::{Backends, Config, Initialized, StartError, StoreKind};

use crate::args::{ApiKeysCommand, Command, CredentialsCommand, CustomersCommand};
use crate::output::{Printer, credential_json, customer_json, key_json};
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

pub async fn serve(options: Options) -> Result<(), CliError> {
    let config = config(options)?;
    squaremcp_runtime::init_logging(&config.log_filter, config.log_format);
    let gateway = squaremcp_runtime::gateway(&config, Backends::from_config(&config).await?);
    let state = squaremcp_runtime::app_state(&config, gateway);
    let listener = squaremcp_runtime::bind(config.listen).await?;
    let local = listener.local_addr().map_or_else(|_| config.listen.to_string(), |a| a.to_string());
    tracing::info!(
        listen = local,
        public_url = config.public_url,
        store = location(&config),
        admin_key = config.admin_key.is_some(),
        "SquareMCP is serving {}/mcp",
        config.public_url
    );
    squaremcp_runtime::serve(listener, squaremcp_http::gateway_router(state)).await?;
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
    let gateway = squaremcp_runtime::gateway(&config, backends);
    match command {
        Command::Serve | Command::Init { .. } => Err(CliError::Usage("not an administration command".into())),
        Command::Customers(c) => customers(&gateway, c, out).await,
        Command::ApiKeys(c) => api_keys(&gateway, c, out).await,
        Command::Credentials(c) => credentials(&gateway, c, out).await,
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
        CredentialsCommand::RotateKey | CredentialsCommand::Rewrap => {
            return Err(CliError::Usage("this command runs before the gateway is built".into()));
        }
        CredentialsCommand::Delete { customer, platform, account } => {
            let customer = CustomerId::parse(&customer.customer)?;
            let platform: Platform = platform.parse()?;
            let account = AccountName::parse(&account)?;
            if !gateway.store().delete_credential(&customer, platform, &account).await? {
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
