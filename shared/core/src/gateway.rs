//! The gateway's use cases: authenticate a caller, run a tool with the caller's own
//! credentials, and the administrative operations behind the CLI.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tracing::Instrument;
use sha2::{Digest, Sha256};

use crate::billing::{self, Month, Plan, PlanCatalog};
use crate::customer::InvalidInput;
use crate::recent::RecentReads;
use crate::routing::{self, ClaimError, RouteOwner};
use crate::tool::{ACCOUNT_ARGUMENT, FailureKind, PlatformModule};
use crate::{
    AccountName, ApiKey, ApiKeyId, ApiKeyRecord, AuthMethod, CallRecord, Clock, CredentialRecord, Customer,
    CustomerId, Email, Keyring, KeyringError, Platform, PlanName, Principal, Registry, Secret, SecretBinding, Store,
    StoreError, Tool, ToolFailure, ToolOutput, calls, schema,
};

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    InvalidInput(#[from] InvalidInput),
    #[error("a customer with email {0} already exists")]
    EmailTaken(String),
    #[error("no customer with id {0}")]
    UnknownCustomer(CustomerId),
    #[error("there is no plan `{plan}`; the plans are {offered}")]
    UnknownPlan { plan: String, offered: String },
    #[error("platform {0} is not available in this version of SquareMCP")]
    UnsupportedPlatform(Platform),
    #[error("invalid {platform} credentials: {why}")]
    InvalidCredential { platform: Platform, why: String },
    /// Inbound webhooks are routed by this resource, so one customer alone may connect it.
    #[error(
        "this {platform} credential connects {key}, which {holder} has already connected: inbound {platform} webhooks \
         are routed by it, so it can belong to one customer only (delete that credential first)"
    )]
    RouteTaken { platform: Platform, key: String, holder: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keyring(#[from] KeyringError),
}

/// The tool named in a `tools/call` does not exist: a protocol error, not a tool failure.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown tool `{0}`")]
pub struct UnknownTool(pub String);

/// Who is calling and how, for one request: the principal decides whose credentials and plan
/// apply; the rest goes into the call log. A copy shares the request's [`CallLog`].
#[derive(Clone, Debug)]
pub struct CallContext {
    pub principal: Principal,
    pub auth_method: AuthMethod,
    pub client: Option<String>,
    /// The request's tool calls as they answer, for the edge's one log line per request.
    pub calls: CallLog,
}

impl CallContext {
    pub fn new(principal: Principal, auth_method: AuthMethod) -> Self {
        Self { principal, auth_method, client: None, calls: CallLog::default() }
    }
}

/// What one tool call did, as its request's log line shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedCall {
    pub tool: String,
    /// `ok`, `limit_reached` or the failure's kind, as in the call record.
    pub outcome: &'static str,
    pub elapsed_ms: f64,
    pub upstream_requests: u32,
}

/// The tool calls of one request, filled in by [`Gateway::call_tool`] as each answers. The
/// gateway writes no log line of its own per call: the edge writes one per request, with the
/// request id, the customer and the call (CloudWatch bills log lines by the byte).
#[derive(Clone, Debug, Default)]
pub struct CallLog(Arc<Mutex<Vec<LoggedCall>>>);

impl CallLog {
    fn push(&self, call: LoggedCall) {
        if let Ok(mut calls) = self.0.lock() {
            calls.push(call);
        }
    }

    /// The calls logged so far, in the order they answered; the log is left empty.
    pub fn take(&self) -> Vec<LoggedCall> {
        self.0.lock().map(|mut calls| std::mem::take(&mut *calls)).unwrap_or_default()
    }
}

/// Billing settings the gateway applies on every call.
pub struct Billing {
    pub plans: Arc<PlanCatalog>,
    /// How long call records are kept.
    pub retention_seconds: i64,
}

impl Default for Billing {
    fn default() -> Self {
        Self { plans: Arc::new(PlanCatalog::builtin()), retention_seconds: 90 * 86_400 }
    }
}

/// How long a tool call's platform part may take unless configured: the `mcp` Lambda's 29 s
/// less [`RECORD_MARGIN`].
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(25);
/// How long a customer's credentials, once read, serve their calls unless configured
/// (`SQUAREMCP_CREDENTIAL_CACHE_SECONDS`): as long as an API key is trusted.
pub const DEFAULT_CREDENTIAL_CACHE: Duration = crate::key_cache::DEFAULT_API_KEY_CACHE;
/// What a function's time limit must leave after the call timeout: authentication and the
/// credential read before the call, the call record (or refund) and the answer after it.
pub const RECORD_MARGIN: Duration = Duration::from_secs(4);

/// A customer's plan is read once a minute at most: `set-plan` takes effect within that time,
/// and a tools/call needs no extra store read for it.
const PLAN_CACHE_SECONDS: u64 = 60;

/// With [`Gateway::with_records_after_answers`], how many answered calls may be writing their
/// records at once; beyond it a call answers after its record, as without (a store that falls
/// behind slows the callers instead of piling records up in memory).
const MOST_RECORDS_AFTER_ANSWERS: usize = 1024;

/// Everything a request needs, built once at start and shared by every request.
pub struct Gateway {
    store: Arc<dyn Store>,
    keyring: Arc<dyn Keyring>,
    clock: Arc<dyn Clock>,
    registry: Arc<Registry>,
    admin_key_digest: Option<[u8; 32]>,
    billing: Billing,
    plan_cache: Mutex<HashMap<CustomerId, (PlanName, Instant)>>,
    /// Keys authenticated in the last few seconds (`key_cache.rs`).
    key_cache: crate::key_cache::KeyCache,
    /// Each customer's credentials per platform as read in the last few seconds (`recent.rs`),
    /// sealed as stored: a call still opens its credential itself.
    credential_cache: RecentReads<(CustomerId, Platform), Arc<Vec<CredentialRecord>>>,
    /// Renews OAuth access tokens (`connections.rs`); `None`: no platform app is configured.
    refresher: Option<Arc<dyn crate::connections::TokenRefresher>>,
    /// Where `tool.call.failed` and `connection.needs_reconnect` go (outbound webhooks); `None`:
    /// no delivery is configured.
    events: Option<Arc<dyn crate::events::EventSink>>,
    /// How long a tool call's platform part may take, retries and waits included.
    call_timeout: Duration,
    /// Refused and invalid calls held for one record per kind and window (`refusals.rs`).
    refusals: crate::refusals::RefusalLog,
    /// Metrics of every customer's call (`metrics.rs`); `None`: none are kept.
    observer: Option<Arc<dyn crate::metrics::CallObserver>>,
    /// Calls answered before their records are written, still writing them
    /// ([`Gateway::with_records_after_answers`]); `None`: every answer waits for its record.
    records_after_answers: Option<Arc<crate::pending::PendingWrites>>,
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
        Self {
            store,
            keyring,
            clock,
            registry,
            admin_key_digest,
            billing: Billing::default(),
            plan_cache: Mutex::new(HashMap::new()),
            key_cache: crate::key_cache::KeyCache::new(crate::key_cache::DEFAULT_API_KEY_CACHE),
            credential_cache: RecentReads::new(DEFAULT_CREDENTIAL_CACHE),
            refresher: None,
            events: None,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            refusals: crate::refusals::RefusalLog::default(),
            observer: None,
            records_after_answers: None,
        }
    }

    /// Hands every customer's finished tool call to `observer` (metrics).
    pub fn with_observer(mut self, observer: Arc<dyn crate::metrics::CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Bounds the platform part of every tool call (`SQUAREMCP_CALL_TIMEOUT_SECONDS`).
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// How long an authenticated API key is trusted without reading the store
    /// (`SQUAREMCP_API_KEY_CACHE_SECONDS`); zero reads it on every request.
    pub fn with_api_key_cache(mut self, lifetime: Duration) -> Self {
        self.key_cache = crate::key_cache::KeyCache::new(lifetime);
        self
    }

    /// How long a customer's credentials for a platform, once read, serve their calls without
    /// reading the store again (`SQUAREMCP_CREDENTIAL_CACHE_SECONDS`); zero reads them on every
    /// call. A change made through this gateway applies at once; one made by another process
    /// (the CLI, the `login` Lambda's account page), once this time has passed.
    pub fn with_credential_cache(mut self, lifetime: Duration) -> Self {
        self.credential_cache = RecentReads::new(lifetime);
        self
    }

    /// Publishes `tool.call.failed` and `connection.needs_reconnect` to the customer's webhook
    /// endpoints through `events`.
    pub fn with_events(mut self, events: Arc<dyn crate::events::EventSink>) -> Self {
        self.events = Some(events);
        self
    }

    /// Hands an event over; a failure to queue it is logged, never turned into the caller's
    /// failure (the call itself happened).
    pub(crate) async fn publish(&self, customer: &CustomerId, event_type: &str, dedupe_key: &str, data: Value) {
        let Some(events) = &self.events else { return };
        if let Err(e) = events.publish(customer, event_type, dedupe_key, data).await {
            tracing::warn!(customer = customer.as_str(), event_type, error = %e, "event not queued");
        }
    }

    pub fn with_billing(mut self, billing: Billing) -> Self {
        self.billing = billing;
        self
    }

    /// Lets the gateway renew OAuth access tokens before they expire and after `auth_expired`.
    pub fn with_refresher(mut self, refresher: Arc<dyn crate::connections::TokenRefresher>) -> Self {
        self.refresher = Some(refresher);
        self
    }

    pub(crate) fn refresher(&self) -> Option<&dyn crate::connections::TokenRefresher> {
        self.refresher.as_deref()
    }

    pub(crate) fn forget_cached_key(&self, id: &ApiKeyId) {
        self.key_cache.forget(id);
    }

    /// After this process changed a customer's credentials: their next call reads the store.
    pub(crate) fn forget_cached_credentials(&self, customer: &CustomerId) {
        self.credential_cache.forget(|(holder, _), _| holder == customer);
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The store and clock, shared with what runs beside the gateway (inbound webhooks).
    pub fn store_and_clock(&self) -> (Arc<dyn Store>, Arc<dyn Clock>) {
        (self.store.clone(), self.clock.clone())
    }

    pub(crate) fn keyring(&self) -> &dyn Keyring {
        self.keyring.as_ref()
    }

    pub fn plans(&self) -> &PlanCatalog {
        &self.billing.plans
    }

    pub fn now(&self) -> crate::Timestamp {
        self.clock.now()
    }

    /// The admin key first, then customer keys (one store read, none for a key authenticated in
    /// the last few seconds: `key_cache.rs`). `None` means "not a valid key".
    pub async fn authenticate_api_key(&self, presented: &str) -> Result<Option<(Principal, AuthMethod)>, StoreError> {
        if let Some(admin) = &self.admin_key_digest
            && constant_time_eq(&digest(presented), admin)
        {
            return Ok(Some((Principal::Superadmin, AuthMethod::AdminKey)));
        }
        let Ok(key) = ApiKey::parse(presented) else { return Ok(None) };
        let hash = key.hash();
        let key = match self.key_cache.get(&hash) {
            Some(cached) => cached,
            None => {
                let started = self.key_cache.before_read();
                let Some(record) = self.store.api_key_by_hash(&hash).await?.filter(ApiKeyRecord::is_active) else {
                    return Ok(None);
                };
                self.key_cache.keep(&record, started);
                crate::key_cache::CachedKey { id: record.id, customer_id: record.customer_id }
            }
        };
        // At most one write an hour per key and process (`account.rs`).
        self.note_key_use(&key.id).await;
        Ok(Some((Principal::Customer { id: key.customer_id }, AuthMethod::ApiKey)))
    }

    /// Runs a tool for the caller. `Err` only for an unknown tool; every other failure is a
    /// [`ToolFailure`] the caller reports as `isError`. Customers' calls are metered against
    /// their plan and recorded; the admin key's are neither.
    ///
    /// The reservation, the platform call and the record (or refund) run as a task of their
    /// own: an edge drops the request's future when its client goes away (`serve` on a closed
    /// connection), and dropping the sequence halfway would leave a reserved unit without its
    /// record, or a platform call that happened without its log. The caller gets the outcome
    /// once the record is written, or as soon as the platform part is done with
    /// [`Gateway::with_records_after_answers`].
    pub async fn call_tool(
        self: &Arc<Self>,
        context: &CallContext,
        name: &str,
        arguments: Option<Value>,
    ) -> Result<Result<ToolOutput, ToolFailure>, UnknownTool> {
        let tool = self.registry.tool(name).ok_or_else(|| UnknownTool(name.to_owned()))?.clone();
        let started = Instant::now();
        let (answer, answered) = tokio::sync::oneshot::channel();
        let answer_first = self.records_after_answers.as_ref().and_then(|pending| pending.try_enter(MOST_RECORDS_AFTER_ANSWERS));
        let call = {
            let (gateway, context) = (Arc::clone(self), context.clone());
            async move {
                let (outcome, logged, finished) = gateway.run_call(&context, tool.as_ref(), arguments).await;
                let outcome = (outcome, logged);
                let Some(under_way) = answer_first else {
                    if let Some(finished) = finished {
                        gateway.record(finished).await;
                    }
                    let _ = answer.send(outcome);
                    return;
                };
                let _ = answer.send(outcome);
                // The woken request runs first and sends its answer; the record follows, in a
                // task of its own: this task's state, sized for the whole platform call, is
                // freed now rather than while the record waits for its commit.
                tokio::task::yield_now().await;
                if let Some(finished) = finished {
                    let record = async move {
                        gateway.record(finished).await;
                        // Counted as under way until here, for `records_written`.
                        drop(under_way);
                    };
                    tokio::spawn(record.instrument(tracing::Span::current()));
                }
            }
        };
        tokio::spawn(call.instrument(tracing::Span::current()));
        match answered.await {
            Ok((outcome, logged)) => {
                context.calls.push(logged);
                Ok(outcome)
            }
            Err(_) => {
                // A panic in a tool: the task is gone, the caller still gets an answer.
                tracing::error!(tool = name, "a tool call's task ended without an outcome");
                let failure = ToolFailure::new(FailureKind::Upstream, "The call failed inside the gateway. Try again shortly.");
                context.calls.push(LoggedCall {
                    tool: name.to_owned(),
                    outcome: failure.kind.as_str(),
                    elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
                    upstream_requests: 0,
                });
                Ok(Err(failure))
            }
        }
    }

    /// Lets callers have a tool call's outcome before its record is written (`squaremcp serve`:
    /// the record's commit no longer adds to every call's latency). The record is still
    /// written by the call's own task, whoever waits; [`Gateway::records_written`] waits for
    /// the ones under way. At most `MOST_RECORDS_AFTER_ANSWERS` wait at once; beyond that a
    /// call answers after its record. Not for a Lambda: its process may be frozen as soon as
    /// it answers.
    pub fn with_records_after_answers(mut self) -> Self {
        self.records_after_answers = Some(Arc::default());
        self
    }

    /// Waits until every tool call that has answered has also written its record (at shutdown).
    pub async fn records_written(&self) {
        if let Some(pending) = &self.records_after_answers {
            pending.drained().await;
        }
    }

    /// [`Gateway::call_tool`]'s platform part: the outcome, its log entry, and what its record
    /// needs (`None`: nothing to record now).
    async fn run_call(
        self: &Arc<Self>,
        context: &CallContext,
        tool: &dyn Tool,
        arguments: Option<Value>,
    ) -> (Result<ToolOutput, ToolFailure>, LoggedCall, Option<FinishedCall>) {
        let name = tool.definition().name.as_str();
        let started = Instant::now();
        let arguments = match arguments {
            None => Map::new(),
            Some(Value::Object(map)) => map,
            Some(_) => {
                let failure = ToolFailure::invalid_arguments("the arguments must be an object");
                let logged = LoggedCall { tool: name.to_owned(), outcome: failure.kind.as_str(), elapsed_ms: 0.0, upstream_requests: 0 };
                return (Err(failure), logged, None);
            }
        };
        let logged_arguments = calls::redact(&arguments, &tool.definition().logged_arguments);
        let ((outcome, metering), upstream) = match &context.principal {
            Principal::Superadmin => (
                (
                    Err(ToolFailure::new(
                        FailureKind::Forbidden,
                        "The admin key has no platform credentials of its own. Call tools with a customer's API key.",
                    )),
                    Metering::NotMetered,
                ),
                crate::tool::UpstreamUse::default(),
            ),
            Principal::Customer { id } => {
                crate::tool::counting_upstream_requests(self.run_metered(tool, id, arguments)).await
            }
        };
        let elapsed = started.elapsed();
        let upstream_requests = upstream.requests;
        let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
        let outcome_name = match (&outcome, &metering) {
            (Ok(_), _) => "ok",
            (Err(_), Metering::Refused) => "limit_reached",
            (Err(failure), _) => failure.kind.as_str(),
        };
        let logged = LoggedCall { tool: name.to_owned(), outcome: outcome_name, elapsed_ms, upstream_requests };
        let Principal::Customer { id } = &context.principal else { return (outcome, logged, None) };
        let now = self.clock.now();
        let record = CallRecord {
            id: CallRecord::new_id(now),
            customer_id: id.clone(),
            at: now,
            tool: name.to_owned(),
            platform: tool.definition().platform,
            auth_method: auth_method_name(context.auth_method).to_owned(),
            client: context.client.clone(),
            duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            upstream_requests,
            outcome: outcome_name.to_owned(),
            counted: outcome.is_ok() && !matches!(metering, Metering::NotMetered),
            arguments: logged_arguments,
            expires_at: now.plus_seconds(self.billing.retention_seconds),
            calls: 1,
        };
        // Metrics count the call before its answer, so that a scrape that follows it sees it.
        self.observe(&record, elapsed, upstream.time).await;
        let finished = FinishedCall { record, failure: outcome.as_ref().err().cloned(), metering };
        (outcome, logged, Some(finished))
    }

    /// Writes a customer's call record (with its counter change) and, for a failure, publishes
    /// `tool.call.failed`.
    async fn record(self: &Arc<Self>, finished: FinishedCall) {
        let FinishedCall { record, failure, metering } = finished;
        let customer = record.customer_id.as_str();
        // A call that never reached the platform is logged in bulk after the first of its
        // kind (`refusals.rs`): no store write, no event for each repeat.
        if matches!(metering, Metering::Refused | Metering::NotCounted) {
            match self.refusals.admit(&record) {
                crate::refusals::Admission::Held => return,
                crate::refusals::Admission::WriteNow(window) => self.close_refusal_window_later(window),
            }
        }
        let adjustment = metering.adjustment(failure.is_none());
        if let Err(e) = self.store.record_call(&record, adjustment.as_ref().map(|(k, d)| (k.as_str(), *d))).await {
            // The call itself happened; losing its record must not turn it into a failure.
            tracing::error!(customer, tool = record.tool, error = %e, "the call record could not be written");
        }
        if let Some(failure) = &failure {
            // The call record's id names the occurrence; the message is the one the model saw
            // (already free of credentials), the arguments only as the call log keeps them.
            let data = serde_json::json!({
                "call_id": record.id,
                "tool": record.tool,
                "platform": record.platform.as_str(),
                "kind": record.outcome,
                "message": failure.message,
                "retry_after": failure.retry_after,
                "arguments": record.arguments,
                "at": record.at.to_rfc3339(),
            });
            self.publish(&record.customer_id, "tool.call.failed", &record.id, data).await;
        }
    }

    /// Writes the one record of the refused or invalid calls held in `window` once it ends.
    fn close_refusal_window_later(self: &Arc<Self>, window: crate::refusals::WindowToken) {
        let gateway = Arc::clone(self);
        let task = async move {
            tokio::time::sleep(crate::refusals::REFUSAL_WINDOW).await;
            let Some(aggregate) = gateway.refusals.close(window) else { return };
            if let Err(e) = gateway.store.record_call(&aggregate, None).await {
                tracing::error!(customer = aggregate.customer_id.as_str(), tool = aggregate.tool, calls = aggregate.calls, error = %e, "the record of repeated refused calls could not be written");
            }
        };
        tokio::spawn(task.instrument(tracing::Span::current()));
    }

    /// Tells the observer, if any, about a recorded call. The plan comes from the plan cache
    /// (a store read at most once a minute per customer, and only with an observer).
    async fn observe(&self, record: &CallRecord, duration: std::time::Duration, upstream: std::time::Duration) {
        let Some(observer) = &self.observer else { return };
        let plan = self.plan_of(&record.customer_id).await.map(|plan| plan.name);
        observer.observe(&crate::metrics::CallObservation {
            tool: &record.tool,
            platform: record.platform,
            plan: plan.as_ref().map_or(crate::metrics::UNKNOWN_PLAN, PlanName::as_str),
            outcome: &record.outcome,
            duration,
            upstream,
            upstream_requests: record.upstream_requests,
        });
    }

    async fn run_metered(
        &self,
        tool: &dyn Tool,
        customer: &CustomerId,
        arguments: Map<String, Value>,
    ) -> (Result<ToolOutput, ToolFailure>, Metering) {
        let definition = tool.definition();
        // Validated as a JSON value without copying the arguments (this runs on every call).
        let arguments = Value::Object(arguments);
        if let Err(why) = schema::validate(&definition.input_schema, &arguments) {
            return (Err(ToolFailure::invalid_arguments(why)), Metering::NotCounted);
        }
        let Value::Object(mut arguments) = arguments else { unreachable!("built as an object just above") };
        let account = match arguments.remove(ACCOUNT_ARGUMENT) {
            Some(Value::String(name)) => match AccountName::parse(&name) {
                Ok(account) => Some(account),
                Err(e) => return (Err(ToolFailure::invalid_arguments(e.to_string())), Metering::NotCounted),
            },
            _ => None,
        };
        let (record, credential) = match self.credential_for(customer, definition.platform, account.as_ref()).await {
            Ok(found) => found,
            Err(failure) => return (Err(failure), Metering::NotCounted),
        };
        let plan = match self.plan_of(customer).await {
            Ok(plan) => plan,
            Err(failure) => return (Err(failure), Metering::NotCounted),
        };
        let month = Month::of(self.clock.now());
        let counter = billing::usage_counter_key(customer, month);
        let metering = match plan.hard_limit() {
            None => Metering::CountAfter(counter),
            Some(limit) => match self.store.add_to_counter(&counter, 1, Some(limit)).await {
                Ok(_) => Metering::Reserved(counter),
                Err(StoreError::LimitReached { .. }) => {
                    let message = format!(
                        "Your plan `{}` includes {limit} tool calls per month and they are used up; the limit resets on {}. \
                         Ask for a larger plan to continue now.",
                        plan.name.as_str(),
                        month.next().first_day()
                    );
                    return (Err(ToolFailure::new(FailureKind::Forbidden, message)), Metering::Refused);
                }
                Err(e) => {
                    tracing::error!(customer = customer.as_str(), error = %e, "usage counter unavailable");
                    return (
                        Err(ToolFailure::new(FailureKind::Upstream, "The gateway could not check your usage. Try again shortly.")),
                        Metering::NotCounted,
                    );
                }
            },
        };
        // Refreshes an expiring OAuth token first, re-runs once after `auth_expired`, and keeps
        // the connection's health current after a failure (`connections.rs`). The deadline
        // bounds every request, retry and wait of the call together, so that the record (or
        // refund) is written inside the function's own time limit.
        let call = self.call_with_credential(tool, &record, credential, arguments);
        let outcome = match tokio::time::timeout(self.call_timeout, call).await {
            Ok(outcome) => outcome,
            Err(_) => {
                tracing::warn!(
                    customer = customer.as_str(),
                    tool = definition.name,
                    timeout_s = self.call_timeout.as_secs_f64(),
                    "tool call stopped at its deadline"
                );
                Err(ToolFailure::new(
                    FailureKind::UpstreamTransient,
                    format!(
                        "The platform did not finish within the call's time limit ({} s), so the call was stopped. A write \
                         may still have taken effect at the platform: check before repeating it.",
                        self.call_timeout.as_secs_f64()
                    ),
                ))
            }
        };
        (outcome, metering)
    }

    /// The customer's plan, from a cache renewed once a minute.
    async fn plan_of(&self, customer: &CustomerId) -> Result<Plan, ToolFailure> {
        let cached = self.plan_cache.lock().ok().and_then(|cache| {
            cache.get(customer).filter(|(_, at)| at.elapsed().as_secs() < PLAN_CACHE_SECONDS).map(|(plan, _)| plan.clone())
        });
        let name = match cached {
            Some(name) => name,
            None => {
                let record = self.store.customer(customer).await.ok().flatten().ok_or_else(|| {
                    ToolFailure::new(FailureKind::Forbidden, "This account no longer exists.")
                })?;
                if let Ok(mut cache) = self.plan_cache.lock() {
                    cache.insert(customer.clone(), (record.plan.clone(), Instant::now()));
                }
                record.plan
            }
        };
        self.billing.plans.get(&name).cloned().ok_or_else(|| {
            tracing::error!(customer = customer.as_str(), plan = name.as_str(), "customer on an unknown plan");
            ToolFailure::new(
                FailureKind::Forbidden,
                format!("Your plan `{}` is not offered any more; ask for your account to be moved to a current plan.", name.as_str()),
            )
        })
    }

    /// One store query (or the credentials read in the last few seconds), then the pick: the
    /// named account, the only one, or `default`.
    ///
    /// Only credentials without a renewable token are kept: a renewal in another process
    /// replaces an OAuth credential, and a call with a kept copy of the old one would find its
    /// token dead and take up a stored one that may have expired since as well. Those are read
    /// on every call, as before the cache.
    async fn credential_for(
        &self,
        customer: &CustomerId,
        platform: Platform,
        account: Option<&AccountName>,
    ) -> Result<(CredentialRecord, Secret<Value>), ToolFailure> {
        let key = (customer.clone(), platform);
        if let Some(records) = self.credential_cache.get(&key) {
            match self.open_picked(customer, platform, account, &records).await {
                Ok(found) if !self.renewable(platform, &found.1) => return Ok(found),
                // Renewable, or the kept copy does not serve (an account connected since, a
                // key retired since): the store decides.
                _ => self.forget_cached_credentials(customer),
            }
        }
        let started = self.credential_cache.before_read();
        let records = self.store.credentials(customer, Some(platform)).await.map_err(|e| {
            tracing::error!(customer = customer.as_str(), error = %e, "credential lookup failed");
            ToolFailure::new(FailureKind::Upstream, "The gateway could not read your stored credentials. Try again shortly.")
        })?;
        let found = self.open_picked(customer, platform, account, &records).await?;
        // None connected is never kept either, so that a connection made elsewhere works at once.
        if !self.renewable(platform, &found.1) {
            self.credential_cache.keep(key, Arc::new(records), started);
        }
        Ok(found)
    }

    /// The account picked from `records`, checked and opened.
    async fn open_picked(
        &self,
        customer: &CustomerId,
        platform: Platform,
        account: Option<&AccountName>,
        records: &[CredentialRecord],
    ) -> Result<(CredentialRecord, Secret<Value>), ToolFailure> {
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
            None => match records {
                [] => {
                    let example = self.registry.module(platform).map(|m| m.credential_example()).unwrap_or("{}");
                    return Err(ToolFailure::new(
                        FailureKind::NotConfigured,
                        format!(
                            "No {platform} credentials are connected to this account. Connect {platform} on your account page \
                             (/account), or an administrator can add them with \
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
        let record = record.clone();
        // The store files records by key, so this holds unless an adapter broke its contract;
        // checked anyway, since a mix-up here would hand one customer's account to another.
        record.check_filed_under(customer, platform).map_err(|misfiled| {
            tracing::error!(customer = customer.as_str(), %platform, found_customer = misfiled.found_customer.as_str(), found_platform = %misfiled.found_platform, "a stored credential is filed under another customer or platform: refused as corrupt");
            ToolFailure::new(FailureKind::NotConfigured, format!("The stored {platform} credentials are damaged. Store them again."))
        })?;
        let plaintext = record.open(self.keyring.as_ref()).await.map_err(|e| {
            tracing::error!(customer = customer.as_str(), %platform, error = %e, "credential could not be opened");
            ToolFailure::new(
                FailureKind::NotConfigured,
                format!("The stored {platform} credentials could not be decrypted. Store them again."),
            )
        })?;
        let document = serde_json::from_slice(plaintext.expose()).map(Secret::new).map_err(|_| {
            ToolFailure::new(FailureKind::NotConfigured, format!("The stored {platform} credentials are not valid JSON. Store them again."))
        })?;
        Ok((record, document))
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
            plan: self.offered_plan(plan)?,
            password_hash,
            created_at: self.clock.now(),
        };
        match self.store.insert_customer(&customer).await {
            Ok(()) => Ok(customer),
            Err(StoreError::Conflict(_)) => Err(GatewayError::EmailTaken(customer.email.as_str().to_owned())),
            Err(e) => Err(e.into()),
        }
    }

    /// Moves a customer to another plan; running gateways apply it within a minute.
    pub async fn set_plan(&self, customer: &CustomerId, plan: &str) -> Result<Customer, GatewayError> {
        let plan = self.offered_plan(plan)?;
        // The plan being left stays the one this month (and an uninvoiced last month) is billed by.
        let before = self.require_customer(customer).await?;
        if !billing::history::change_plan(self.store.as_ref(), &self.billing.plans, &before, &plan, self.clock.now()).await? {
            return Err(GatewayError::UnknownCustomer(customer.clone()));
        }
        if let Ok(mut cache) = self.plan_cache.lock() {
            cache.remove(customer);
        }
        self.require_customer(customer).await
    }

    fn offered_plan(&self, plan: &str) -> Result<PlanName, GatewayError> {
        let name = PlanName::parse(plan)?;
        if self.billing.plans.get(&name).is_none() {
            return Err(GatewayError::UnknownPlan { plan: plan.to_owned(), offered: self.billing.plans.names().join(", ") });
        }
        Ok(name)
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
        let binding = SecretBinding { customer_id: customer.clone(), platform, account: Some(account.clone()) };
        let sealed = self.keyring.seal(&binding, plaintext.expose()).await?;
        let now = self.clock.now();
        let previous = self.store.credentials(customer, Some(platform)).await?.into_iter().find(|r| r.account == account);
        let created_at = previous.as_ref().map_or(now, |r| r.created_at);
        // Inbound webhooks are routed by a resource named in the credential (WhatsApp's phone
        // number): it is claimed first, so that a second customer is refused before anything
        // is stored, and the previous document's claim is released once the new one is stored.
        let owner = RouteOwner { customer_id: customer.clone(), account: account.clone() };
        let route = module.routing_key().and_then(|key_of| key_of(document));
        let previous_route = match &previous {
            Some(record) => self.routing_key_of(module, record).await,
            None => None,
        };
        if let Some(key) = &route {
            routing::claim(self.store.as_ref(), platform, key, &owner, now).await.map_err(|e| match e {
                ClaimError::Taken(holder) => GatewayError::RouteTaken {
                    platform,
                    key: key.clone(),
                    holder: if holder.customer_id == *customer {
                        format!("this customer's account `{}`", holder.account)
                    } else {
                        "another customer".to_owned()
                    },
                },
                ClaimError::Store(e) => GatewayError::Store(e),
            })?;
        }
        let record =
            CredentialRecord { customer_id: customer.clone(), platform, account, sealed, created_at, updated_at: now };
        let stored = self.store.put_credential(&record).await;
        self.forget_cached_credentials(customer);
        if let Err(e) = stored {
            if let Some(key) = route.as_ref().filter(|key| previous_route.as_ref() != Some(*key)) {
                let _ = routing::release(self.store.as_ref(), platform, key, &owner, now).await;
            }
            return Err(e.into());
        }
        if let Some(old) = previous_route.filter(|old| route.as_ref() != Some(old)) {
            routing::release(self.store.as_ref(), platform, &old, &owner, now).await?;
        }
        Ok(record)
    }

    /// Deletes a stored credential and releases its routing claim (see [`routing`]). `false`
    /// when there was none.
    pub async fn delete_credential(&self, customer: &CustomerId, platform: Platform, account: &AccountName) -> Result<bool, GatewayError> {
        let record = self.store.credentials(customer, Some(platform)).await?.into_iter().find(|r| &r.account == account);
        let Some(record) = record else { return Ok(false) };
        let route = match self.registry.module(platform) {
            Some(module) => self.routing_key_of(module, &record).await,
            None => None,
        };
        let deleted = self.store.delete_credential(customer, platform, account).await;
        self.forget_cached_credentials(customer);
        let deleted = deleted?;
        if let Some(key) = route {
            let owner = RouteOwner { customer_id: customer.clone(), account: account.clone() };
            routing::release(self.store.as_ref(), platform, &key, &owner, self.clock.now()).await?;
        }
        Ok(deleted)
    }

    /// The routing key of a stored credential, opened for the purpose; `None` when the platform
    /// routes nothing by it or the record cannot be opened (logged: its claim then stays).
    async fn routing_key_of(&self, module: &dyn PlatformModule, record: &CredentialRecord) -> Option<String> {
        // Platforms that route nothing by credential: no decryption.
        let key_of = module.routing_key()?;
        let plaintext = match record.open(self.keyring.as_ref()).await {
            Ok(plaintext) => plaintext,
            Err(e) => {
                tracing::warn!(customer = record.customer_id.as_str(), platform = %record.platform, error = %e, "a replaced credential could not be opened to release its routing claim");
                return None;
            }
        };
        let document: Value = serde_json::from_slice(plaintext.expose()).ok()?;
        key_of(&document)
    }
}

/// A customer's finished call, before its record is written.
struct FinishedCall {
    record: CallRecord,
    /// The failure the caller was told about; `None` for a success.
    failure: Option<ToolFailure>,
    metering: Metering,
}

/// How a call touches the usage counter.
enum Metering {
    /// The admin key, or a failure before the plan was consulted.
    NotMetered,
    /// A failure before the platform was called: recorded, not counted.
    NotCounted,
    /// Over a hard limit: refused, recorded, not counted.
    Refused,
    /// Hard-limit plan: one unit was reserved before the call; a failed call gives it back.
    Reserved(String),
    /// Plan with overage: nothing is refused, a successful call is counted afterwards.
    CountAfter(String),
}

impl Metering {
    /// The counter change written together with the call record.
    fn adjustment(self, succeeded: bool) -> Option<(String, i64)> {
        match self {
            Metering::Reserved(key) if !succeeded => Some((key, -1)),
            Metering::CountAfter(key) if succeeded => Some((key, 1)),
            _ => None,
        }
    }
}

fn auth_method_name(method: AuthMethod) -> &'static str {
    match method {
        AuthMethod::AdminKey => "admin_key",
        AuthMethod::ApiKey => "api_key",
        AuthMethod::OAuth => "oauth",
        AuthMethod::Jwt => "jwt",
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
