//! The gateway's use cases: authenticate a caller, run a tool with the caller's own
//! credentials, and the administrative operations behind the CLI.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::customer::InvalidInput;
use crate::tool::{ACCOUNT_ARGUMENT, FailureKind};
use crate::{
    AccountName, ApiKey, ApiKeyId, ApiKeyRecord, AuthMethod, Clock, CredentialRecord, Customer, CustomerId, Email,
    Keyring, KeyringError, Platform, PlanName, Principal, Registry, Secret, SecretBinding, Store, StoreError, Tool,
    ToolFailure, ToolOutput, schema,
};

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    InvalidInput(#[from] InvalidInput),
    #[error("a customer with email {0} already exists")]
    EmailTaken(String),
    #[error("no customer with id {0}")]
    UnknownCustomer(CustomerId),
    #[error("platform {0} is not available in this version of SquareMCP")]
    UnsupportedPlatform(Platform),
    #[error("invalid {platform} credentials: {why}")]
    InvalidCredential { platform: Platform, why: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keyring(#[from] KeyringError),
}

/// The tool named in a `tools/call` does not exist: a protocol error, not a tool failure.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown tool `{0}`")]
pub struct UnknownTool(pub String);

/// Everything a request needs, built once at start and shared by every request.
pub struct Gateway {
    store: Arc<dyn Store>,
    keyring: Arc<dyn Keyring>,
    clock: Arc<dyn Clock>,
    registry: Arc<Registry>,
    admin_key_digest: Option<[u8; 32]>,
}

impl Gateway {
    pub fn new(
        store: Arc<dyn Store>,
        keyring: Arc<dyn Keyring>,
        clock: Arc<dyn Clock>,
        registry: Arc<Registry>,
        admin_key: Option<Secret<String>>,
    ) -> Self {
        let admin_key_digest = admin_key.filter(|k| !k.expose().is_empty()).map(|k| digest(k.expose()));
        Self { store, keyring, clock, registry, admin_key_digest }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    pub fn now(&self) -> crate::Timestamp {
        self.clock.now()
    }

    /// The admin key first, then customer keys (one store read). `None` means "not a valid key".
    pub async fn authenticate_api_key(&self, presented: &str) -> Result<Option<(Principal, AuthMethod)>, StoreError> {
        if let Some(admin) = &self.admin_key_digest
            && constant_time_eq(&digest(presented), admin)
        {
            return Ok(Some((Principal::Superadmin, AuthMethod::AdminKey)));
        }
        let Ok(key) = ApiKey::parse(presented) else { return Ok(None) };
        Ok(self
            .store
            .api_key_by_hash(&key.hash())
            .await?
            .filter(ApiKeyRecord::is_active)
            .map(|record| (Principal::Customer { id: record.customer_id }, AuthMethod::ApiKey)))
    }

    /// Runs a tool for `principal`. `Err` only for an unknown tool; every other failure is a
    /// [`ToolFailure`] the caller reports as `isError`.
    pub async fn call_tool(
        &self,
        principal: &Principal,
        name: &str,
        arguments: Option<Value>,
    ) -> Result<Result<ToolOutput, ToolFailure>, UnknownTool> {
        let tool = self.registry.tool(name).ok_or_else(|| UnknownTool(name.to_owned()))?;
        let started = Instant::now();
        let outcome = self.run_tool(tool.as_ref(), principal, arguments).await;
        let customer = principal.customer_id().map(CustomerId::as_str).unwrap_or("superadmin");
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        match &outcome {
            Ok(_) => tracing::info!(customer, tool = name, elapsed_ms, outcome = "ok", "tool call"),
            Err(failure) => tracing::info!(
                customer,
                tool = name,
                elapsed_ms,
                outcome = failure.kind.as_str(),
                "tool call failed"
            ),
        }
        Ok(outcome)
    }

    async fn run_tool(
        &self,
        tool: &dyn Tool,
        principal: &Principal,
        arguments: Option<Value>,
    ) -> Result<ToolOutput, ToolFailure> {
        let definition = tool.definition();
        let arguments = arguments.unwrap_or_else(|| Value::Object(Map::new()));
        schema::validate(&definition.input_schema, &arguments).map_err(ToolFailure::invalid_arguments)?;
        let Value::Object(mut arguments) = arguments else {
            return Err(ToolFailure::invalid_arguments("the arguments must be an object"));
        };
        let account = match arguments.remove(ACCOUNT_ARGUMENT) {
            Some(Value::String(name)) => {
                Some(AccountName::parse(&name).map_err(|e| ToolFailure::invalid_arguments(e.to_string()))?)
            }
            _ => None,
        };
        let Principal::Customer { id: customer } = principal else {
            return Err(ToolFailure::new(
                FailureKind::Forbidden,
                "The admin key has no platform credentials of its own. Call tools with a customer's API key.",
            ));
        };
        let credential = self.credential_for(customer, definition.platform, account.as_ref()).await?;
        tool.call(&credential, arguments).await
    }

    /// One store query, then the pick: the named account, the only one, or `default`.
    async fn credential_for(
        &self,
        customer: &CustomerId,
        platform: Platform,
        account: Option<&AccountName>,
    ) -> Result<Secret<Value>, ToolFailure> {
        let records = self.store.credentials(customer, Some(platform)).await.map_err(|e| {
            tracing::error!(customer = customer.as_str(), error = %e, "credential lookup failed");
            ToolFailure::new(FailureKind::Upstream, "The gateway could not read your stored credentials. Try again shortly.")
        })?;
        let names = || records.iter().map(|r| r.account.as_str()).collect::<Vec<_>>().join(", ");
        let record = match account {
            Some(wanted) => records.iter().find(|r| &r.account == wanted).ok_or_else(|| {
                let message = if records.is_empty() {
                    format!("No {platform} account named `{wanted}` is connected, and no other {platform} account either.")
                } else {
                    format!("No {platform} account named `{wanted}` is connected. Connected accounts: {}.", names())
                };
                ToolFailure::new(FailureKind::NotConfigured, message)
            })?,
            None => match records.as_slice() {
                [] => {
                    let example = self.registry.module(platform).map(|m| m.credential_example()).unwrap_or("{}");
                    return Err(ToolFailure::new(
                        FailureKind::NotConfigured,
                        format!(
                            "No {platform} credentials are connected to this account. An administrator can add them with \
                             `squaremcp credentials set --customer {customer} --platform {platform}` and the JSON {example} on stdin."
                        ),
                    ));
                }
                [only] => only,
                several => several.iter().find(|r| r.account.as_str() == AccountName::DEFAULT).ok_or_else(|| {
                    ToolFailure::invalid_arguments(format!(
                        "Several {platform} accounts are connected ({}); say which one with the `account` argument.",
                        names()
                    ))
                })?,
            },
        };
        let plaintext = self.keyring.open(&record.binding(), &record.sealed).await.map_err(|e| {
            tracing::error!(customer = customer.as_str(), %platform, error = %e, "credential could not be opened");
            ToolFailure::new(
                FailureKind::NotConfigured,
                format!("The stored {platform} credentials could not be decrypted. Store them again."),
            )
        })?;
        serde_json::from_slice(plaintext.expose()).map(Secret::new).map_err(|_| {
            ToolFailure::new(FailureKind::NotConfigured, format!("The stored {platform} credentials are not valid JSON. Store them again."))
        })
    }

    // Administration (the CLI, later the admin API).

    pub async fn create_customer(
        &self,
        email: &str,
        plan: &str,
        password_hash: Option<String>,
    ) -> Result<Customer, GatewayError> {
        let customer = Customer {
            id: CustomerId::generate(),
            email: Email::parse(email)?,
            plan: PlanName::parse(plan)?,
            password_hash,
            created_at: self.clock.now(),
        };
        match self.store.insert_customer(&customer).await {
            Ok(()) => Ok(customer),
            Err(StoreError::Conflict(_)) => Err(GatewayError::EmailTaken(customer.email.as_str().to_owned())),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn require_customer(&self, id: &CustomerId) -> Result<Customer, GatewayError> {
        self.store.customer(id).await?.ok_or_else(|| GatewayError::UnknownCustomer(id.clone()))
    }

    /// The plaintext key is returned once, here, and never stored.
    pub async fn create_api_key(&self, customer: &CustomerId, name: &str) -> Result<(ApiKeyRecord, ApiKey), GatewayError> {
        self.require_customer(customer).await?;
        let name = name.trim();
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err(InvalidInput::new("key name", "use 1-100 printable characters").into());
        }
        let key = ApiKey::generate();
        let record = ApiKeyRecord {
            id: ApiKeyId::generate(),
            customer_id: customer.clone(),
            name: name.to_owned(),
            hash: key.hash(),
            prefix: key.display_prefix(),
            created_at: self.clock.now(),
            revoked_at: None,
        };
        self.store.insert_api_key(&record).await?;
        Ok((record, key))
    }

    pub async fn set_credential(
        &self,
        customer: &CustomerId,
        platform: Platform,
        account: AccountName,
        document: &Value,
    ) -> Result<CredentialRecord, GatewayError> {
        let module = self.registry.module(platform).ok_or(GatewayError::UnsupportedPlatform(platform))?;
        module.check_credential(document).map_err(|why| GatewayError::InvalidCredential { platform, why })?;
        self.require_customer(customer).await?;
        let plaintext = Secret::new(serde_json::to_vec(document).map_err(|e| StoreError::Corrupt(e.to_string()))?);
        let binding = SecretBinding { customer_id: customer.clone(), platform };
        let sealed = self.keyring.seal(&binding, plaintext.expose()).await?;
        let now = self.clock.now();
        let created_at = self
            .store
            .credentials(customer, Some(platform))
            .await?
            .into_iter()
            .find(|r| r.account == account)
            .map_or(now, |r| r.created_at);
        let record =
            CredentialRecord { customer_id: customer.clone(), platform, account, sealed, created_at, updated_at: now };
        self.store.put_credential(&record).await?;
        Ok(record)
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
