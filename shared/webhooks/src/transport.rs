//! The POST to a customer's endpoint: through the SSRF guard (the URL's host is checked before
//! each attempt, and every name the HTTP client resolves goes through the same guard, so a DNS
//! answer cannot swap in a private address), 10 s timeout, no redirects (a 3xx is a failure).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use squaremcp_platforms::kit::{GuardedResolver, NetworkPolicy};

use crate::endpoint::check_url;

/// How long one delivery attempt may take, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The outcome of one POST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// `None` when no HTTP answer came (refused, timeout, guard).
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// Why it failed, for the attempt log: never the response body, never a header value.
    pub error: Option<String>,
}

impl Response {
    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

#[async_trait]
pub trait Transport: Send + Sync {
    async fn post(&self, url: &str, headers: &[(&str, String)], body: &str) -> Response;
}

/// reqwest, with the guard as its resolver. The client is built at the first delivery, not at
/// start: building one reads every system root certificate, and most Lambda invocations (every
/// `mcp` call) deliver nothing.
pub struct HttpTransport {
    client: std::sync::OnceLock<Result<reqwest::Client, String>>,
    network: NetworkPolicy,
}

impl HttpTransport {
    pub fn new(network: NetworkPolicy) -> Self {
        Self { client: std::sync::OnceLock::new(), network }
    }

    fn client(&self) -> Result<&reqwest::Client, &str> {
        let built = self.client.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(TIMEOUT)
                .connect_timeout(TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("SquareMCP-Webhooks/", env!("CARGO_PKG_VERSION")))
                .dns_resolver(Arc::new(GuardedResolver(self.network.clone())))
                .build()
                .map_err(|e| format!("the HTTP client could not start: {e}"))
        });
        built.as_ref().map_err(String::as_str)
    }
}

#[async_trait]
impl Transport for HttpTransport {
    async fn post(&self, url: &str, headers: &[(&str, String)], body: &str) -> Response {
        let started = Instant::now();
        let elapsed = |started: Instant| u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if let Err(e) = check_url(&self.network, url).await {
            return Response { status: None, latency_ms: elapsed(started), error: Some(e.to_string()) };
        }
        let client = match self.client() {
            Ok(client) => client,
            Err(why) => return Response { status: None, latency_ms: elapsed(started), error: Some(why.to_owned()) },
        };
        let mut request = client.post(url).header("content-type", "application/json").body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let latency_ms = elapsed(started);
                let error = (!(200..300).contains(&status)).then(|| format!("the endpoint answered HTTP {status}"));
                Response { status: Some(status), latency_ms, error }
            }
            Err(e) => {
                let why = if e.is_timeout() {
                    format!("no answer within {} s", TIMEOUT.as_secs())
                } else if e.is_connect() {
                    "could not connect".to_owned()
                } else {
                    "the request failed".to_owned()
                };
                Response { status: None, latency_ms: elapsed(started), error: Some(why) }
            }
        }
    }
}
