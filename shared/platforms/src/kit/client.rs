//! A handle to the platforms' HTTP client that builds it at its first use.
//!
//! Building the client reads and parses every system root certificate; a process that only
//! answers `initialize` or `tools/list` (a Lambda's cold start, often) never needs it.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A cheap-to-clone handle to one `reqwest::Client`; every clone shares the client and its
/// connection pool. Dereferences to the client, building it on first use when it was made with
/// [`HttpClient::lazy`].
#[derive(Clone)]
pub struct HttpClient {
    client: Arc<OnceLock<reqwest::Client>>,
    request_timeout: Duration,
}

impl HttpClient {
    /// The process's platforms client ([`crate::http_client_with_timeout`]), built when a
    /// request first needs it.
    pub fn lazy(request_timeout: Duration) -> Self {
        Self { client: Arc::new(OnceLock::new()), request_timeout }
    }

    /// Whether the client has been built (by a request, or given ready-made).
    pub fn is_built(&self) -> bool {
        self.client.get().is_some()
    }

    /// The client, built now if no request has needed it yet.
    pub fn client(&self) -> &reqwest::Client {
        self.client.get_or_init(|| crate::http_client_with_timeout(self.request_timeout))
    }
}

impl From<reqwest::Client> for HttpClient {
    fn from(client: reqwest::Client) -> Self {
        Self { client: Arc::new(OnceLock::from(client)), request_timeout: crate::REQUEST_TIMEOUT }
    }
}

impl Deref for HttpClient {
    type Target = reqwest::Client;

    fn deref(&self) -> &reqwest::Client {
        self.client()
    }
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient").field("built", &self.is_built()).field("request_timeout", &self.request_timeout).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lazy_client_is_built_at_first_use_and_shared_by_its_clones() {
        let lazy = HttpClient::lazy(crate::REQUEST_TIMEOUT);
        let clone = lazy.clone();
        assert!(!lazy.is_built() && !clone.is_built(), "nothing built before a request needs it");
        let _ = clone.client();
        assert!(lazy.is_built(), "the clone's first use built the client for both");
    }

    #[test]
    fn a_ready_client_is_kept_as_given() {
        let given = HttpClient::from(reqwest::Client::new());
        assert!(given.is_built());
    }
}
