//! Tools and the registry. A platform is a [`PlatformModule`]: its credential shape and its
//! tools. Adding a platform adds a module to the registry; the MCP layer never changes.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::{Platform, Secret};

/// The argument every tool accepts to pick one of several stored accounts for its platform.
pub const ACCOUNT_ARGUMENT: &str = "account";

#[derive(Clone, Debug)]
pub struct ToolDefinition {
    /// `{platform}_{tool}`, e.g. `telegram_send_message`.
    pub name: String,
    pub platform: Platform,
    pub title: String,
    pub description: String,
    /// JSON Schema of the arguments, including the optional `account`.
    pub input_schema: Value,
    /// When set, results carry `structuredContent` conforming to it.
    pub output_schema: Option<Value>,
    /// What the tool does to the world, as MCP's tool annotations tell clients.
    pub annotations: Annotations,
    /// Arguments whose values the call log may keep; every other value is redacted there.
    pub logged_arguments: Vec<&'static str>,
}

/// `{"type": "object", "properties": …, "required": …, "additionalProperties": false}`, built
/// by moving `properties` in: `json!` would copy the whole tree through the serializer, which
/// for every tool of every platform was a good part of a cold start's allocations.
fn object_schema(properties: Map<String, Value>, required: &[&str]) -> Value {
    let mut schema = Map::new();
    schema.insert("type".to_owned(), Value::from("object"));
    schema.insert("properties".to_owned(), Value::Object(properties));
    schema.insert("required".to_owned(), required.iter().map(|name| Value::from(*name)).collect());
    schema.insert("additionalProperties".to_owned(), Value::Bool(false));
    Value::Object(schema)
}

impl ToolDefinition {
    /// `properties` and `required` describe the tool's own arguments; the `account` argument is
    /// added here so that every tool offers it the same way.
    pub fn new(
        platform: Platform,
        short_name: &str,
        title: &str,
        description: &str,
        mut properties: Map<String, Value>,
        required: &[&str],
    ) -> Self {
        properties.insert(
            ACCOUNT_ARGUMENT.to_owned(),
            json!({
                "type": "string",
                "description": "Which stored account to use. Leave it out when only one is connected."
            }),
        );
        Self {
            name: format!("{}_{short_name}", platform.as_str()),
            platform,
            title: title.to_owned(),
            description: description.to_owned(),
            input_schema: object_schema(properties, required),
            output_schema: None,
            annotations: Annotations::WRITE,
            logged_arguments: vec![ACCOUNT_ARGUMENT],
        }
    }

    /// Names the arguments that carry no secret and no message content (ids, limits, flags),
    /// which the call log may therefore keep.
    pub fn log_arguments(mut self, names: &[&'static str]) -> Self {
        self.logged_arguments.extend_from_slice(names);
        self
    }

    pub fn with_output_schema(mut self, schema: Value) -> Self {
        self.output_schema = Some(schema);
        self
    }

    pub fn read_only(mut self) -> Self {
        self.annotations = Annotations::READ;
        self
    }

    pub fn with_annotations(mut self, annotations: Annotations) -> Self {
        self.annotations = annotations;
        self
    }
}

/// MCP's behaviour hints (`readOnlyHint`, `destructiveHint`, `idempotentHint`, `openWorldHint`).
/// Clients use them to decide whether to ask the person before a call, so they must be honest:
/// a tool that deletes or consumes something is destructive, one that posts twice when called
/// twice is not idempotent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Annotations {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    /// True when the tool reaches outside the gateway (every platform tool does).
    pub open_world: bool,
}

impl Annotations {
    /// Reads only: safe to call without asking, and to retry.
    pub const READ: Self = Self { read_only: true, destructive: false, idempotent: true, open_world: true };
    /// Creates something new (a message, a post): calling twice creates two.
    pub const WRITE: Self = Self { read_only: false, destructive: false, idempotent: false, open_world: true };
    /// Removes or consumes something that cannot be had back.
    pub const DESTRUCTIVE: Self = Self { read_only: false, destructive: true, idempotent: false, open_world: true };
}

/// A successful result: a JSON object, sent as `structuredContent` and as text.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolOutput {
    pub structured: Value,
}

/// What went wrong, in the same words for every platform (the call log keeps [`FailureKind::as_str`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The arguments, or what the platform made of them, are wrong: fix them and call again.
    InvalidInput,
    /// No credentials, or a stored credential of the wrong shape.
    NotConfigured,
    /// The access token expired: it is refreshed (where the platform allows) and the call re-run.
    AuthExpired,
    /// The platform rejected the credential for good: the person must connect again.
    AuthRevoked,
    /// The credential works but lacks a permission, scope or role this call needs.
    PermissionMissing,
    NotFound,
    /// Too many calls for now; `retry_after` says how long to wait when the platform said so.
    RateLimited,
    /// A daily or monthly allowance at the platform is used up; waiting minutes will not help.
    QuotaExhausted,
    /// The platform failed or did not answer (5xx, timeout, connection): the same call may work later.
    UpstreamTransient,
    /// The platform answered something the gateway does not understand.
    Upstream,
    /// The platform offers no way to do this for this account or app.
    NotSupported,
    /// The gateway refuses (plan, admin key, account state).
    Forbidden,
}

impl FailureKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            FailureKind::InvalidInput => "invalid_input",
            FailureKind::NotConfigured => "not_configured",
            FailureKind::AuthExpired => "auth_expired",
            FailureKind::AuthRevoked => "auth_revoked",
            FailureKind::PermissionMissing => "permission_missing",
            FailureKind::NotFound => "not_found",
            FailureKind::RateLimited => "rate_limited",
            FailureKind::QuotaExhausted => "quota_exhausted",
            FailureKind::UpstreamTransient => "upstream_transient",
            FailureKind::Upstream => "upstream_error",
            FailureKind::NotSupported => "not_supported",
            FailureKind::Forbidden => "forbidden",
        }
    }
}

/// A tool's own failure: reported to the model as `isError: true` with a message a person can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ToolFailure {
    pub kind: FailureKind,
    pub message: String,
    /// Seconds to wait before retrying, when the platform said so.
    pub retry_after: Option<u64>,
}

impl ToolFailure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), retry_after: None }
    }

    pub fn invalid_arguments(message: impl Into<String>) -> Self {
        Self::new(FailureKind::InvalidInput, message)
    }

    /// A rate limit, with the wait the platform asked for when it gave one.
    pub fn rate_limited(message: impl Into<String>, retry_after: Option<u64>) -> Self {
        Self { retry_after, ..Self::new(FailureKind::RateLimited, message) }
    }
}

tokio::task_local! {
    static CALLER: crate::CustomerId;
}

/// The customer on whose behalf the running tool call works, for the few tools that keep
/// per-customer state outside the credential (Obsidian's vault directory,
/// `<root>/<customer id>/<vault>`). Set by the gateway around every [`Tool::call`] it makes
/// ([`with_caller`]); `None` outside such a call (a tool called directly, as in platform tests).
pub fn caller() -> Option<crate::CustomerId> {
    CALLER.try_with(Clone::clone).ok()
}

/// Runs `call` (a [`Tool::call`]) with [`caller`] answering `customer`. Its time counts as the
/// call's time upstream ([`UpstreamUse::time`]): the platform's handler is where a call waits
/// for the platform.
pub async fn with_caller<F: std::future::Future>(customer: crate::CustomerId, call: F) -> F::Output {
    let started = std::time::Instant::now();
    let output = CALLER.scope(customer, call).await;
    let elapsed = started.elapsed();
    let _ = UPSTREAM.try_with(|used| {
        let mut sum = used.get();
        sum.time = sum.time.saturating_add(elapsed);
        used.set(sum);
    });
    output
}

/// What one tool call spent at the platform: its requests, and the time in the platform's
/// handler (a re-run after a token refresh adds to both).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpstreamUse {
    pub requests: u32,
    pub time: std::time::Duration,
}

tokio::task_local! {
    static UPSTREAM: std::cell::Cell<UpstreamUse>;
}

/// Counts one request sent to a platform's API for the running tool call. Platforms such as X
/// bill per request, and one tool call may make many (a chunked upload), so the call log keeps
/// the count ([`crate::CallRecord::upstream_requests`]). Outside [`counting_upstream_requests`]
/// (a tool called directly) it does nothing.
pub fn note_upstream_request() {
    let _ = UPSTREAM.try_with(|used| {
        let mut sum = used.get();
        sum.requests = sum.requests.saturating_add(1);
        used.set(sum);
    });
}

/// Runs `call` and returns its output with the upstream requests it noted and its time in
/// platform handlers ([`with_caller`]). Task-local counters rather than return values, so that
/// no tool has to thread them through its code.
pub async fn counting_upstream_requests<F: std::future::Future>(call: F) -> (F::Output, UpstreamUse) {
    UPSTREAM
        .scope(std::cell::Cell::new(UpstreamUse::default()), async {
            let output = call.await;
            (output, UPSTREAM.with(std::cell::Cell::get))
        })
        .await
}

#[async_trait]
pub trait Tool: Send + Sync {
    fn definition(&self) -> &ToolDefinition;
    /// `arguments` were validated against the input schema and no longer hold `account`.
    async fn call(&self, credential: &Secret<Value>, arguments: Map<String, Value>) -> Result<ToolOutput, ToolFailure>;
}

pub trait PlatformModule: Send + Sync {
    fn platform(&self) -> Platform;
    /// Checks a credential document before it is stored; the error says what is wrong.
    fn check_credential(&self, credential: &Value) -> Result<(), String>;
    /// The credential document's shape, for help texts, e.g. `{"bot_token": "123456:ABC..."}`.
    fn credential_example(&self) -> &'static str;
    fn tools(&self) -> Vec<Arc<dyn Tool>>;
    /// A read-only tool (short name, e.g. `get_me`) that proves a credential works, for
    /// connection health. `None`: the platform offers no cheap probe.
    fn health_probe(&self) -> Option<&'static str> {
        None
    }
    /// For platforms whose inbound webhooks name an upstream resource rather than a customer
    /// (WhatsApp's `phone_number_id`): reads that resource's id from a credential document.
    /// One customer alone may connect it; the gateway keeps the routing index
    /// ([`crate::routing`]) in step. `None` (the default): nothing is routed by credential.
    fn routing_key(&self) -> Option<crate::routing::RoutingKey> {
        None
    }
}

/// Every tool of every platform, in a fixed order, found by name in O(1).
pub struct Registry {
    modules: Vec<Box<dyn PlatformModule>>,
    tools: Vec<Arc<dyn Tool>>,
    by_name: HashMap<String, usize>,
}

impl Registry {
    pub fn new(modules: Vec<Box<dyn PlatformModule>>) -> Self {
        let tools: Vec<Arc<dyn Tool>> = modules.iter().flat_map(|m| m.tools()).collect();
        let by_name = tools.iter().enumerate().map(|(i, t)| (t.definition().name.clone(), i)).collect();
        Self { modules, tools, by_name }
    }

    pub fn tools(&self) -> &[Arc<dyn Tool>] {
        &self.tools
    }

    pub fn tool(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.by_name.get(name).map(|&i| &self.tools[i])
    }

    pub fn module(&self, platform: Platform) -> Option<&dyn PlatformModule> {
        self.modules.iter().find(|m| m.platform() == platform).map(|m| m.as_ref())
    }

    pub fn platforms(&self) -> impl Iterator<Item = Platform> + '_ {
        self.modules.iter().map(|m| m.platform())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_input_schema_takes_the_arguments_and_offers_the_account() {
        let mut properties = Map::new();
        properties.insert("text".to_owned(), json!({"type": "string"}));
        let definition = ToolDefinition::new(Platform::Telegram, "echo", "Echo", "Echoes", properties, &["text"]);
        assert_eq!(
            definition.input_schema,
            json!({
                "type": "object",
                "properties": {"text": {"type": "string"}, "account": {"type": "string", "description": "Which stored account to use. Leave it out when only one is connected."}},
                "required": ["text"],
                "additionalProperties": false,
            })
        );
        assert_eq!(definition.name, "telegram_echo");
    }

    #[tokio::test]
    async fn upstream_requests_are_counted_per_call_and_not_outside_one() {
        note_upstream_request(); // outside a counted call: ignored, no panic
        let ((), three) = counting_upstream_requests(async {
            for _ in 0..3 {
                tokio::task::yield_now().await;
                note_upstream_request();
            }
        })
        .await;
        assert_eq!(three.requests, 3);
        let ((), none) = counting_upstream_requests(async {}).await;
        assert_eq!(none, UpstreamUse::default(), "each call starts from zero");
    }

    #[tokio::test]
    async fn time_in_platform_handlers_is_summed_and_the_rest_is_not() {
        let customer = crate::CustomerId::generate();
        let ((), used) = counting_upstream_requests(async {
            // Outside the handler: the gateway's own work, not the platform's.
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            for _ in 0..2 {
                with_caller(customer.clone(), async {
                    note_upstream_request();
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                })
                .await;
            }
        })
        .await;
        assert_eq!(used.requests, 2);
        assert!(used.time >= std::time::Duration::from_millis(20), "both handler runs count: {:?}", used.time);
        assert!(used.time < std::time::Duration::from_millis(300), "the gateway's own wait does not: {:?}", used.time);
    }
}
