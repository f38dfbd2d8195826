//! The one generic handler for tools that are plain HTTP calls: a [`HttpToolSpec`] row (spec,
//! endpoint, output shape) run by [`HttpTool`] through a platform's [`Dialect`] (how its
//! credential is applied, how its answers and errors read).
//!
//! What every platform gets from here: the credential parsed once per call into its own type, no
//! URL or credential in any log line, every failure message scrubbed of the credential's secrets,
//! transport failures named in the same words, one retry of an idempotent read after a 5xx or a
//! timeout (never of a write), and optionally a memory of credentials the platform called dead
//! (some platforms ban an address that keeps sending them).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use squaremcp_core::tool::{FailureKind, Tool, ToolDefinition, ToolFailure, ToolOutput};
use squaremcp_core::{Platform, Secret};

use super::credential::{CredentialDocument, unusable};
use super::spec::{ToolSpec, UpstreamRequest};

/// An upstream answer as it arrived.
pub struct Answer<'a> {
    pub status: u16,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// What differs between HTTP platforms. Everything else is [`HttpApi`]'s.
pub trait Dialect: Send + Sync + 'static {
    type Credential: CredentialDocument;
    const PLATFORM: Platform;
    /// The platform's name in messages, e.g. `Discord`.
    const NAME: &'static str;
    /// True when a rejected credential must not be sent again (until it is replaced).
    const REMEMBER_DEAD_CREDENTIALS: bool = false;

    /// The full URL; the default appends the path to the origin. Telegram puts the token here.
    fn url(&self, origin: &str, request: &UpstreamRequest, _credential: &Self::Credential) -> String {
        format!("{origin}{}", request.path)
    }

    /// Values for `{name}` placeholders of the endpoint's path that come from the credential or
    /// the platform's configuration rather than from the arguments (WhatsApp's
    /// `{phone_number_id}` and the Graph API `{version}`). Filled before the arguments, and
    /// percent-encoded the same way; the default supplies none.
    fn path_values(&self, _credential: &Self::Credential) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// Adds the credential (and any fixed headers) to the request.
    fn authorize(&self, request: reqwest::RequestBuilder, credential: &Self::Credential) -> reqwest::RequestBuilder;

    /// The result of a call from its answer, or the failure it means. `operation` names the call
    /// in messages.
    fn interpret(&self, operation: &str, answer: Answer<'_>) -> Result<Value, ToolFailure>;
}

/// A platform's HTTP client: one shared connection pool, the resolved origin and the dialect.
pub struct HttpApi<D: Dialect> {
    http: super::HttpClient,
    origin: String,
    dialect: D,
    dead: Option<DeadCredentials>,
}

impl<D: Dialect> HttpApi<D> {
    /// `origin` is the API's base, path and version included (see [`super::origin`]).
    pub fn new(http: impl Into<super::HttpClient>, origin: String, dialect: D) -> Self {
        let dead = D::REMEMBER_DEAD_CREDENTIALS.then(DeadCredentials::default);
        Self { http: http.into(), origin, dialect, dead }
    }

    /// The dialect's own path values for this credential ([`Dialect::path_values`]).
    pub fn path_values(&self, credential: &D::Credential) -> Vec<(&'static str, String)> {
        self.dialect.path_values(credential)
    }

    /// Parses the stored document into the platform's credential type.
    pub fn credential(&self, document: &Secret<Value>) -> Result<D::Credential, ToolFailure> {
        D::Credential::parse(document.expose()).map_err(|error| unusable(D::NAME, &error))
    }

    /// The shared HTTP client, for requests [`Self::send`] cannot describe (uploads of raw bytes
    /// to URLs the platform returned, form bodies); send them with [`Self::send_raw`].
    pub fn client(&self) -> &reqwest::Client {
        &self.http
    }

    /// The resolved origin (the real API's, or the operator's override), path and version included.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Sends a request the caller built from [`Self::client`]: the credential is added when
    /// `authorize` is set (an upload URL that is itself signed must not get it), transport
    /// failures read as for [`Self::send`], and the answer comes back as it arrived (status,
    /// headers, body) for the caller to read; [`Self::interpret`] reads it as the platform's JSON.
    /// Never retried: the caller knows whether the request may be repeated.
    pub async fn send_raw(
        &self,
        credential: &D::Credential,
        builder: reqwest::RequestBuilder,
        operation: &str,
        authorize: bool,
    ) -> Result<RawAnswer, ToolFailure> {
        let builder = if authorize { self.dialect.authorize(builder, credential) } else { builder };
        tracing::debug!(platform = %D::PLATFORM, operation, "calling the platform");
        let secrets = credential.secrets();
        // Counted when sent: a request that timed out may still have been billed.
        squaremcp_core::tool::note_upstream_request();
        let response = builder.send().await.map_err(|e| self.transport_failure(operation, e, &secrets))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| self.transport_failure(operation, e, &secrets))?;
        Ok(RawAnswer { status, headers, body })
    }

    /// Reads a [`RawAnswer`] through the dialect, as [`Self::send`] does, with the credential's
    /// secrets scrubbed from any failure message.
    pub fn interpret(&self, credential: &D::Credential, operation: &str, answer: &RawAnswer) -> Result<Value, ToolFailure> {
        self.dialect
            .interpret(operation, Answer { status: answer.status, headers: &answer.headers, body: &answer.body })
            .map_err(|mut failure| {
                failure.message = scrub(&failure.message, &credential.secrets());
                failure
            })
    }

    /// Sends `request`; a read (`retry_transient`) is sent once more after a 5xx or a timeout.
    pub async fn send(
        &self,
        credential: &D::Credential,
        method: &Method,
        operation: &str,
        request: &UpstreamRequest,
        retry_transient: bool,
    ) -> Result<Value, ToolFailure> {
        if let Some(dead) = &self.dead
            && dead.contains(credential)
        {
            tracing::debug!(platform = %D::PLATFORM, operation, "not sending a credential the platform rejected");
            return Err(ToolFailure::new(
                FailureKind::AuthRevoked,
                format!(
                    "{} rejected this credential earlier, so the gateway no longer sends it. Store a new one to go on.",
                    D::NAME
                ),
            ));
        }
        let mut outcome = self.send_once(credential, method, operation, request).await;
        if retry_transient && matches!(&outcome, Err(failure) if failure.kind == FailureKind::UpstreamTransient) {
            tracing::debug!(platform = %D::PLATFORM, operation, "retrying a read once after a transient failure");
            outcome = self.send_once(credential, method, operation, request).await;
        }
        outcome.map_err(|mut failure| {
            if failure.kind == FailureKind::AuthRevoked
                && let Some(dead) = &self.dead
            {
                dead.insert(credential);
            }
            failure.message = scrub(&failure.message, &credential.secrets());
            failure
        })
    }

    async fn send_once(
        &self,
        credential: &D::Credential,
        method: &Method,
        operation: &str,
        request: &UpstreamRequest,
    ) -> Result<Value, ToolFailure> {
        let url = self.dialect.url(&self.origin, request, credential);
        let mut builder = self.http.request(method.clone(), url);
        if !request.query.is_empty() {
            builder = builder.query(&request.query);
        }
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        if *method != Method::GET && *method != Method::DELETE {
            builder = builder.json(&request.body);
        }
        builder = self.dialect.authorize(builder, credential);
        tracing::debug!(platform = %D::PLATFORM, operation, "calling the platform");
        let secrets = credential.secrets();
        // Counted when sent: a request that timed out may still have been billed.
        squaremcp_core::tool::note_upstream_request();
        let response = builder.send().await.map_err(|e| self.transport_failure(operation, e, &secrets))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| self.transport_failure(operation, e, &secrets))?;
        let result = self.dialect.interpret(operation, Answer { status, headers: &headers, body: &body });
        if let Err(failure) = &result {
            tracing::debug!(platform = %D::PLATFORM, operation, status, kind = failure.kind.as_str(), "the platform refused the call");
        }
        result
    }

    /// A failure before an answer arrived. The URL (which may hold a token) is dropped first.
    fn transport_failure(&self, operation: &str, error: reqwest::Error, secrets: &[&str]) -> ToolFailure {
        let error = error.without_url();
        tracing::warn!(platform = %D::PLATFORM, operation, error = %scrub(&error_chain(&error), secrets), "the platform request failed");
        let name = D::NAME;
        if error.is_builder() {
            return ToolFailure::new(
                FailureKind::Upstream,
                format!("The gateway's {name} API address is invalid; an administrator must fix {}.", D::PLATFORM.base_url_env()),
            );
        }
        let message = if error.is_timeout() {
            format!("{name} did not answer {operation} in time. Try again shortly.")
        } else if error.is_connect() {
            format!("The gateway could not connect to the {name} API. Try again shortly.")
        } else {
            format!("The request to {name} for {operation} failed before an answer arrived. Try again shortly.")
        };
        ToolFailure::new(FailureKind::UpstreamTransient, message)
    }
}

/// An answer kept whole, from [`HttpApi::send_raw`].
#[derive(Clone, Debug)]
pub struct RawAnswer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

impl RawAnswer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A header's value when it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// How a successful result becomes the tool's output (always a JSON object).
#[derive(Clone, Copy, Debug)]
pub enum Output {
    /// The result is an object and is the output.
    Object,
    /// The result is a list, given as `{"<key>": [...]}`.
    ListAs(&'static str),
    /// Anything else: checks or notes added to the result.
    Custom(fn(Value) -> Result<Value, ToolFailure>),
}

/// One plain HTTP tool as a row of data.
#[derive(Clone, Debug)]
pub struct HttpToolSpec {
    pub spec: ToolSpec,
    pub method: Method,
    /// Relative to the origin, with `{arg}` placeholders for path arguments.
    pub path: &'static str,
    /// How messages name the call (e.g. `getMe`); the path template when not set.
    pub operation: &'static str,
    /// Body fields every call sends, unless an argument sets the same key.
    pub fixed_body: Vec<(&'static str, Value)>,
    /// Query parameters every call sends, unless an argument sets the same one.
    pub fixed_query: Vec<(&'static str, &'static str)>,
    pub output: Output,
}

impl HttpToolSpec {
    pub fn new(spec: ToolSpec, method: Method, path: &'static str) -> Self {
        Self { spec, method, path, operation: path, fixed_body: Vec::new(), fixed_query: Vec::new(), output: Output::Object }
    }

    pub fn get(spec: ToolSpec, path: &'static str) -> Self {
        Self::new(spec, Method::GET, path)
    }

    pub fn post(spec: ToolSpec, path: &'static str) -> Self {
        Self::new(spec, Method::POST, path)
    }

    pub fn operation(mut self, operation: &'static str) -> Self {
        self.operation = operation;
        self
    }

    pub fn fixed(mut self, key: &'static str, value: Value) -> Self {
        self.fixed_body.push((key, value));
        self
    }

    pub fn output(mut self, output: Output) -> Self {
        self.output = output;
        self
    }

    /// A query parameter every call sends (e.g. Graph's `fields`), unless an argument sets it.
    pub fn fixed_query(mut self, key: &'static str, value: &'static str) -> Self {
        self.fixed_query.push((key, value));
        self
    }

    /// The request for these arguments: fixed fields first, then the arguments over them.
    pub fn request(&self, arguments: &Map<String, Value>) -> Result<UpstreamRequest, ToolFailure> {
        self.request_with(&[], arguments)
    }

    /// Like [`Self::request`], with `{name}` placeholders of the path first filled from
    /// `path_values` (see [`Dialect::path_values`]).
    pub fn request_with(&self, path_values: &[(&'static str, String)], arguments: &Map<String, Value>) -> Result<UpstreamRequest, ToolFailure> {
        let mut request = self.spec.request_with(self.path, path_values, arguments)?;
        for (key, value) in &self.fixed_body {
            request.body.entry(*key).or_insert_with(|| value.clone());
        }
        for (key, value) in &self.fixed_query {
            if !request.query.iter().any(|(given, _)| given == key) {
                request.query.push((key, (*value).to_owned()));
            }
        }
        Ok(request)
    }

    fn shape(&self, platform: &str, result: Value) -> Result<Value, ToolFailure> {
        let unexpected = |what: &str| {
            ToolFailure::new(FailureKind::Upstream, format!("{platform} answered {} with an unexpected result ({what}).", self.operation))
        };
        match self.output {
            Output::Object if result.is_object() => Ok(result),
            Output::Object => Err(unexpected("not an object")),
            Output::ListAs(key) if result.is_array() => Ok(json!({ key: result })),
            Output::ListAs(_) => Err(unexpected("not a list")),
            Output::Custom(shape) => shape(result),
        }
    }
}

/// The generic handler: runs an [`HttpToolSpec`] through its platform's [`HttpApi`].
pub struct HttpTool<D: Dialect> {
    definition: ToolDefinition,
    row: HttpToolSpec,
    api: Arc<HttpApi<D>>,
}

impl<D: Dialect> HttpTool<D> {
    pub fn new(mut row: HttpToolSpec, api: Arc<HttpApi<D>>) -> Self {
        Self { definition: row.spec.take_definition(D::PLATFORM), row, api }
    }
}

#[async_trait]
impl<D: Dialect> Tool for HttpTool<D> {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, credential: &Secret<Value>, arguments: Map<String, Value>) -> Result<ToolOutput, ToolFailure> {
        let credential = self.api.credential(credential)?;
        let request = self.row.request_with(&self.api.path_values(&credential), &arguments)?;
        let retry = self.definition.annotations.read_only;
        let result = self.api.send(&credential, &self.row.method, self.row.operation, &request, retry).await?;
        let structured = self.row.shape(D::NAME, result)?;
        Ok(ToolOutput { structured })
    }
}

/// Hashes of credentials a platform rejected; bounded, so a flood of bad tokens costs no memory.
#[derive(Default)]
struct DeadCredentials(Mutex<HashSet<[u8; 32]>>);

impl DeadCredentials {
    const CAPACITY: usize = 10_000;

    fn key(credential: &impl CredentialDocument) -> [u8; 32] {
        let mut hasher = Sha256::new();
        for secret in credential.secrets() {
            hasher.update(secret.as_bytes());
            hasher.update([0]);
        }
        hasher.finalize().into()
    }

    fn contains(&self, credential: &impl CredentialDocument) -> bool {
        let key = Self::key(credential);
        self.0.lock().is_ok_and(|set| set.contains(&key))
    }

    fn insert(&self, credential: &impl CredentialDocument) {
        let key = Self::key(credential);
        if let Ok(mut set) = self.0.lock() {
            if set.len() >= Self::CAPACITY {
                set.clear();
            }
            set.insert(key);
        }
    }
}

/// Replaces each secret (of four characters or more) in text bound for a person or a log.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut text = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        if text.contains(secret) {
            text = text.replace(secret, "[credential]");
        }
    }
    text
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Seconds to wait from a `Retry-After` header (whole or fractional seconds), rounded up.
pub fn retry_after_header(headers: &HeaderMap) -> Option<u64> {
    headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok().and_then(seconds_rounded_up)
}

/// `"1.23"` → 2; `"5"` → 5; anything else → `None`.
pub fn seconds_rounded_up(text: &str) -> Option<u64> {
    let seconds: f64 = text.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| seconds.ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_hides_every_secret_but_not_short_fragments() {
        let text = "token abcdef and abcdef again, id 12";
        assert_eq!(scrub(text, &["abcdef", "12"]), "token [credential] and [credential] again, id 12");
    }

    #[test]
    fn retry_after_rounds_fractional_seconds_up() {
        assert_eq!(seconds_rounded_up("1.23"), Some(2));
        assert_eq!(seconds_rounded_up("5"), Some(5));
        assert_eq!(seconds_rounded_up("soon"), None);
        assert_eq!(seconds_rounded_up("-1"), None);
        let mut headers = HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, "0.5".parse().expect("a header value"));
        assert_eq!(retry_after_header(&headers), Some(1));
    }
}
