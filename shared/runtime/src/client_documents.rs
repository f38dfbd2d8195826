//! The authorization server's client-document port ([`ClientDocumentFetcher`]) on reqwest,
//! behind the SSRF guard: the URL's host is checked before connecting (for a clear refusal),
//! and every name the client resolves goes through the same guard, so a DNS answer cannot swap
//! in a private address. No redirects, a time cap and a size cap read as the body arrives.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use squaremcp_auth::{ClientDocumentFetcher, FETCH_TIMEOUT, FetchError, FetchedDocument};
use squaremcp_platforms::kit::{GuardedResolver, NetworkPolicy};

/// Built at the first fetch, not at start: building a client reads every system root
/// certificate, and most invocations (every `mcp` call) never fetch a document.
pub struct GuardedDocumentFetcher {
    client: OnceLock<Result<reqwest::Client, String>>,
    network: NetworkPolicy,
}

impl GuardedDocumentFetcher {
    pub fn new(network: NetworkPolicy) -> Self {
        Self { client: OnceLock::new(), network }
    }

    fn client(&self) -> Result<&reqwest::Client, FetchError> {
        let built = self.client.get_or_init(|| {
            // The platform's roots plus the operator's own (SQUAREMCP_EXTRA_CA_FILE), as for
            // every other address the gateway is given.
            let extra_roots = self.network.extra_roots().iter().filter_map(|der| reqwest::Certificate::from_der(der).ok());
            reqwest::Client::builder()
                .tls_certs_merge(extra_roots)
                .timeout(FETCH_TIMEOUT)
                .connect_timeout(FETCH_TIMEOUT)
                // The draft: redirects are never followed; a 3xx reaches the caller as such.
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("SquareMCP-OAuth/", env!("CARGO_PKG_VERSION")))
                .dns_resolver(Arc::new(GuardedResolver(self.network.clone())))
                .build()
                .map_err(|e| format!("the HTTP client could not start: {e}"))
        });
        built.as_ref().map_err(|why| FetchError::Failed(why.clone()))
    }

    async fn get(&self, url: &reqwest::Url, max_bytes: usize) -> Result<FetchedDocument, FetchError> {
        let host = url.host_str().ok_or_else(|| FetchError::Failed("the URL has no host".into()))?;
        let port = url.port_or_known_default().unwrap_or(443);
        self.network.resolve(host, port).await.map_err(|e| FetchError::Refused(e.to_string()))?;
        let mut response = self.client()?.get(url.clone()).header("accept", "application/json").send().await.map_err(describe)?;
        if response.content_length().is_some_and(|length| length > max_bytes as u64) {
            return Err(FetchError::TooLarge);
        }
        let status = response.status().as_u16();
        let cache_control = response.headers().get("cache-control").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(describe)? {
            if body.len() + chunk.len() > max_bytes {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(FetchedDocument { status, cache_control, body })
    }
}

fn describe(e: reqwest::Error) -> FetchError {
    if e.is_timeout() {
        FetchError::Timeout
    } else if e.is_connect() {
        // The guard's refusal inside the resolver also lands here; `get` checks first so that
        // the usual case has the guard's own message.
        FetchError::Failed("could not connect".into())
    } else {
        FetchError::Failed("the request failed".into())
    }
}

#[async_trait]
impl ClientDocumentFetcher for GuardedDocumentFetcher {
    async fn fetch(&self, url: &reqwest::Url, max_bytes: usize) -> Result<FetchedDocument, FetchError> {
        // One deadline for everything, the guard's lookup and a slowly dribbled body included.
        tokio::time::timeout(FETCH_TIMEOUT, self.get(url, max_bytes)).await.map_err(|_| FetchError::Timeout)?
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A one-shot HTTP server on loopback answering `response` to the first request.
    async fn serve_once(response: Vec<u8>) -> reqwest::Url {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            if let Ok((mut socket, _)) = listener.accept().await {
                let mut request = [0u8; 2048];
                let _ = socket.read(&mut request).await;
                let _ = socket.write_all(&response).await;
                let _ = socket.shutdown().await;
            }
        });
        reqwest::Url::parse(&format!("http://127.0.0.1:{port}/client.json")).unwrap()
    }

    fn http(status: &str, headers: &str, body: &str) -> Vec<u8> {
        format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n{body}", body.len()).into_bytes()
    }

    #[tokio::test]
    async fn fetches_status_cache_control_and_body() {
        let url = serve_once(http("200 OK", "cache-control: max-age=600\r\n", "{\"a\":1}")).await;
        let fetched = GuardedDocumentFetcher::new(NetworkPolicy::new(true)).fetch(&url, 5120).await.unwrap();
        assert_eq!(fetched.status, 200);
        assert_eq!(fetched.cache_control.as_deref(), Some("max-age=600"));
        assert_eq!(fetched.body, b"{\"a\":1}");
    }

    #[tokio::test]
    async fn redirects_are_returned_not_followed() {
        let url = serve_once(http("302 Found", "location: http://127.0.0.1:9/elsewhere\r\n", "")).await;
        let fetched = GuardedDocumentFetcher::new(NetworkPolicy::new(true)).fetch(&url, 5120).await.unwrap();
        assert_eq!(fetched.status, 302);
    }

    #[tokio::test]
    async fn bodies_over_the_cap_are_refused_with_or_without_a_length() {
        let big = "x".repeat(6000);
        let url = serve_once(http("200 OK", "", &big)).await;
        let fetcher = GuardedDocumentFetcher::new(NetworkPolicy::new(true));
        assert!(matches!(fetcher.fetch(&url, 5120).await, Err(FetchError::TooLarge)));
        // No content-length: the cap is applied as the body arrives.
        let url = serve_once(format!("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n{big}").into_bytes()).await;
        assert!(matches!(fetcher.fetch(&url, 5120).await, Err(FetchError::TooLarge)));
    }

    #[tokio::test]
    async fn private_addresses_are_refused_by_default() {
        let url = serve_once(http("200 OK", "", "{}")).await;
        let refused = GuardedDocumentFetcher::new(NetworkPolicy::default()).fetch(&url, 5120).await;
        match refused {
            Err(FetchError::Refused(why)) => assert!(why.contains("loopback"), "{why}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
