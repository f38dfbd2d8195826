//! Media a tool uploads (a photo, a video): given by the customer as an HTTPS URL or as small
//! base64 data inline, checked (type, size) before any upload starts, and read in parts so that a
//! large video never sits whole in memory.
//!
//! A URL is the customer's, so it is fetched through the SSRF guard ([`NetworkPolicy`]): every
//! address its host resolves to must be public (unless the operator allows private hosts), IP
//! literals are checked the same way, and redirects are followed only a few times, each one
//! through the same checks. Platforms that pull a URL themselves (Instagram, Facebook) only use
//! [`Media::input`]; the gateway then never fetches it.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use reqwest::Url;
use serde_json::{Map, Value, json};
use squaremcp_core::tool::{FailureKind, ToolFailure};

use super::net::{GuardedResolver, NetworkPolicy, forbidden};
use super::spec::Arg;

/// The largest media file fetched from a URL unless the operator sets `SQUAREMCP_MEDIA_MAX_BYTES`.
pub const DEFAULT_MAX_MEDIA_BYTES: u64 = 512 * 1024 * 1024;
/// The largest inline (base64) media unless the operator sets `SQUAREMCP_MEDIA_MAX_INLINE_BYTES`:
/// its base64 form must fit, with the rest of the call, in a Lambda's 6 MB request.
pub const DEFAULT_MAX_INLINE_BYTES: usize = 4 * 1024 * 1024;
/// How long a media server may stay silent while its file is read.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_REDIRECTS: usize = 3;

/// The names of the media arguments every uploading tool takes ([`media_args`]).
pub const MEDIA_URL: &str = "media_url";
pub const MEDIA_DATA: &str = "media_data";
pub const MEDIA_TYPE: &str = "media_type";

/// The operator's caps on media.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaSettings {
    /// The largest file read from a URL, in bytes.
    pub max_bytes: u64,
    /// The largest inline file, in bytes (decoded).
    pub max_inline_bytes: usize,
}

impl Default for MediaSettings {
    fn default() -> Self {
        Self { max_bytes: DEFAULT_MAX_MEDIA_BYTES, max_inline_bytes: DEFAULT_MAX_INLINE_BYTES }
    }
}

/// The three media arguments (`media_url`, `media_data`, `media_type`); `what` names the media in
/// their descriptions (e.g. "the video"). None is required: the tool says which it needs.
pub fn media_args(what: &str) -> [Arg; 3] {
    [
        Arg::new(
            MEDIA_URL,
            json!({"type": "string", "minLength": 1, "description": format!("An https URL of {what}. Give this or media_data.")}),
        ),
        Arg::new(
            MEDIA_DATA,
            json!({"type": "string", "minLength": 1, "description": format!("{what}, base64-encoded, for small files only (a few MB). Give this or media_url.")}),
        ),
        Arg::new(
            MEDIA_TYPE,
            json!({"type": "string", "description": "The MIME type, e.g. image/jpeg or video/mp4: required with media_data; with media_url the server's Content-Type is used."}),
        ),
    ]
}

/// Where the media comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaInput {
    /// Checked: http(s), and https unless the operator allows private hosts.
    Url(Url),
    Inline { bytes: Bytes, content_type: String },
}

impl MediaInput {
    pub fn url(&self) -> Option<&Url> {
        match self {
            MediaInput::Url(url) => Some(url),
            MediaInput::Inline { .. } => None,
        }
    }
}

/// Media checks and the guarded fetcher, built once per cold start; the HTTP client behind it is
/// made on first use only, so that a gateway that never fetches media never pays for it.
#[derive(Clone, Debug, Default)]
pub struct Media {
    inner: Arc<MediaInner>,
}

#[derive(Debug, Default)]
struct MediaInner {
    policy: NetworkPolicy,
    settings: MediaSettings,
    client: OnceLock<Result<reqwest::Client, String>>,
}

impl Media {
    pub fn new(policy: NetworkPolicy, settings: MediaSettings) -> Self {
        Self { inner: Arc::new(MediaInner { policy, settings, client: OnceLock::new() }) }
    }

    pub fn settings(&self) -> MediaSettings {
        self.inner.settings
    }

    /// The media the arguments name: exactly one of `media_url` and `media_data`; `None` when
    /// neither is given (the tool decides whether that is allowed).
    pub fn input(&self, arguments: &Map<String, Value>) -> Result<Option<MediaInput>, ToolFailure> {
        let text = |name: &str| arguments.get(name).and_then(Value::as_str).map(str::trim).filter(|t| !t.is_empty());
        match (text(MEDIA_URL), text(MEDIA_DATA)) {
            (Some(_), Some(_)) => Err(invalid("Give either media_url or media_data, not both.")),
            (None, None) => Ok(None),
            (Some(url), None) => self.checked_url(url).map(|url| Some(MediaInput::Url(url))),
            (None, Some(data)) => {
                let content_type = text(MEDIA_TYPE).ok_or_else(|| invalid("media_type is required with media_data (e.g. image/jpeg)."))?;
                let max = self.inner.settings.max_inline_bytes;
                // Rejected before decoding: base64 is 4 characters per 3 bytes.
                if data.len() / 4 * 3 > max + 3 {
                    return Err(invalid(format!("media_data is larger than the {} inline limit; give a media_url instead.", human(max as u64))));
                }
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .map_err(|_| invalid("media_data is not valid base64."))?;
                if bytes.len() > max {
                    return Err(invalid(format!("media_data is larger than the {} inline limit; give a media_url instead.", human(max as u64))));
                }
                if bytes.is_empty() {
                    return Err(invalid("media_data is empty."));
                }
                Ok(Some(MediaInput::Inline { bytes: Bytes::from(bytes), content_type: content_type.to_ascii_lowercase() }))
            }
        }
    }

    /// A customer's media URL: parsed, http(s) only, https unless private hosts are allowed (tests,
    /// internal networks), no credentials in it, and an IP-literal host checked at once.
    pub fn checked_url(&self, text: &str) -> Result<Url, ToolFailure> {
        let url = Url::parse(text).map_err(|_| invalid("media_url is not a URL."))?;
        let allowed_schemes: &[&str] = if self.inner.policy.allows_private_hosts() { &["https", "http"] } else { &["https"] };
        if !allowed_schemes.contains(&url.scheme()) {
            return Err(invalid("media_url must be an https:// URL."));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("media_url must not carry a user name or password."));
        }
        match url.host() {
            None => Err(invalid("media_url has no host.")),
            Some(url::Host::Ipv4(ip)) => self.check_ip(ip.into()).map(|()| url.clone()),
            Some(url::Host::Ipv6(ip)) => self.check_ip(ip.into()).map(|()| url.clone()),
            Some(url::Host::Domain(_)) => Ok(url.clone()),
        }
    }

    fn check_ip(&self, ip: std::net::IpAddr) -> Result<(), ToolFailure> {
        match forbidden(ip).filter(|_| !self.inner.policy.allows_private_hosts()) {
            Some(why) => Err(ToolFailure::new(FailureKind::Forbidden, format!("media_url points at {ip}, {why}: the gateway does not fetch from there."))),
            None => Ok(()),
        }
    }

    /// Opens the media for reading in parts, after checking its type against `accept` (exact
    /// types like `image/jpeg`, or families like `video/`) and its size against the caps. A URL
    /// must answer 2xx with a `Content-Length` (the platforms want the size before the upload).
    pub async fn open(&self, input: MediaInput, accept: &[&str]) -> Result<MediaStream, ToolFailure> {
        match input {
            MediaInput::Inline { bytes, content_type } => {
                check_type(&content_type, accept)?;
                let length = bytes.len() as u64;
                Ok(MediaStream { content_type, length, read: 0, source: Source::Inline(bytes), pending: Bytes::new() })
            }
            MediaInput::Url(url) => {
                let client = self.client()?;
                let response = client.get(url).send().await.map_err(fetch_failure)?;
                let status = response.status();
                if !status.is_success() {
                    return Err(invalid(format!("media_url answered HTTP {}; it must be a file the gateway can download.", status.as_u16())));
                }
                let content_type = response
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
                    .unwrap_or_default();
                check_type(&content_type, accept)?;
                let length = response.content_length().ok_or_else(|| {
                    invalid("media_url's server did not say how large the file is (no Content-Length); the platforms need the size before an upload starts.")
                })?;
                let max = self.inner.settings.max_bytes;
                if length > max {
                    return Err(invalid(format!("The file at media_url is {}, larger than this gateway's {} media limit.", human(length), human(max))));
                }
                if length == 0 {
                    return Err(invalid("The file at media_url is empty."));
                }
                Ok(MediaStream { content_type, length, read: 0, source: Source::Remote(response), pending: Bytes::new() })
            }
        }
    }

    fn client(&self) -> Result<&reqwest::Client, ToolFailure> {
        let built = self.inner.client.get_or_init(|| {
            let allow_private = self.inner.policy.allows_private_hosts();
            let redirects = reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= MAX_REDIRECTS {
                    return attempt.error("too many redirects");
                }
                let ip = match attempt.url().host() {
                    Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::from(ip)),
                    Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::from(ip)),
                    _ => None,
                };
                let https = attempt.url().scheme() == "https" || allow_private;
                match ip.and_then(forbidden) {
                    Some(_) if !allow_private => attempt.error("a redirect to a private address"),
                    _ if !https => attempt.error("a redirect away from https"),
                    _ => attempt.follow(),
                }
            });
            let mut builder = reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .read_timeout(READ_TIMEOUT)
                .user_agent(concat!("SquareMCP/", env!("CARGO_PKG_VERSION")))
                .redirect(redirects)
                .dns_resolver(Arc::new(GuardedResolver(self.inner.policy.clone())));
            for root in self.inner.policy.extra_roots() {
                if let Ok(certificate) = reqwest::Certificate::from_der(root) {
                    builder = builder.add_root_certificate(certificate);
                }
            }
            builder.build().map_err(|e| e.to_string())
        });
        built.as_ref().map_err(|why| {
            tracing::error!(error = %why, "the media HTTP client could not be built");
            ToolFailure::new(FailureKind::UpstreamTransient, "The gateway cannot fetch media right now.")
        })
    }
}

enum Source {
    Inline(Bytes),
    Remote(reqwest::Response),
}

/// Media being read, part by part.
pub struct MediaStream {
    content_type: String,
    length: u64,
    read: u64,
    source: Source,
    /// What the last network chunk held beyond the part it completed.
    pending: Bytes,
}

impl MediaStream {
    /// The MIME type (lowercase, without parameters).
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// The size in bytes, known before the first part is read.
    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// How many parts of `part_size` bytes the media makes (the last one may be shorter).
    pub fn part_count(&self, part_size: u64) -> u64 {
        self.length.div_ceil(part_size.max(1))
    }

    /// The next `size` bytes (fewer only for the last part); `None` once everything was read.
    /// A source that sends more or fewer bytes than it declared is a failure, not a short upload.
    pub async fn next_part(&mut self, size: usize) -> Result<Option<Bytes>, ToolFailure> {
        let size = size.max(1);
        let remaining = self.length - self.read;
        if remaining == 0 {
            return Ok(None);
        }
        let wanted = usize::try_from(remaining).unwrap_or(usize::MAX).min(size);
        let part = match &mut self.source {
            Source::Inline(bytes) => bytes.split_to(wanted),
            Source::Remote(response) => {
                let mut part = BytesMut::with_capacity(wanted);
                while part.len() < wanted {
                    if self.pending.is_empty() {
                        let received = self.read + part.len() as u64;
                        let chunk = response.chunk().await.map_err(|error| {
                            if error.is_body() || error.is_decode() {
                                tracing::info!(error = %error.without_url(), "media download broke off");
                                ToolFailure::new(
                                    FailureKind::UpstreamTransient,
                                    format!("The download of media_url broke off after {received} of {} bytes. Try again.", self.length),
                                )
                            } else {
                                fetch_failure(error)
                            }
                        })?;
                        match chunk {
                            Some(chunk) => self.pending = chunk,
                            None => {
                                return Err(invalid(format!(
                                    "media_url's file ended after {} of the {} bytes its server announced.",
                                    self.read + part.len() as u64,
                                    self.length
                                )));
                            }
                        }
                    }
                    let take = (wanted - part.len()).min(self.pending.len());
                    part.extend_from_slice(&self.pending.split_to(take));
                }
                part.freeze()
            }
        };
        self.read += part.len() as u64;
        if self.read == self.length && matches!(self.source, Source::Remote(_)) && !self.pending.is_empty() {
            return Err(invalid("media_url's file is longer than its server announced."));
        }
        Ok(Some(part))
    }
}

fn check_type(content_type: &str, accept: &[&str]) -> Result<(), ToolFailure> {
    let accepted = accept.iter().any(|wanted| if wanted.ends_with('/') { content_type.starts_with(wanted) } else { content_type == *wanted });
    if accepted {
        Ok(())
    } else {
        let shown = if content_type.is_empty() { "no type" } else { content_type };
        Err(invalid(format!("The media is {shown}; this tool takes {}.", accept.iter().map(|t| t.trim_end_matches('/')).collect::<Vec<_>>().join(", "))))
    }
}

fn fetch_failure(error: reqwest::Error) -> ToolFailure {
    let error = error.without_url();
    let mut chain = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    tracing::info!(error = %chain, "fetching media failed");
    if chain.contains("does not connect there") || chain.contains("private address") {
        return ToolFailure::new(FailureKind::Forbidden, "media_url leads to a private address: the gateway does not fetch from there.");
    }
    if error.is_redirect() {
        return invalid("media_url redirects too often, or away from https.");
    }
    if error.is_timeout() {
        return ToolFailure::new(FailureKind::UpstreamTransient, "The server at media_url stopped sending the file in time.");
    }
    if chain.contains("could not be resolved") {
        return invalid("media_url's host could not be resolved.");
    }
    ToolFailure::new(FailureKind::UpstreamTransient, "The gateway could not download media_url. Check that it is reachable and try again.")
}

fn invalid(message: impl Into<String>) -> ToolFailure {
    ToolFailure::invalid_arguments(message)
}

/// `5 MB`, `512 KB`: sizes in messages.
fn human(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB { format!("{} MB", bytes.div_ceil(MIB)) } else { format!("{} KB", bytes.div_ceil(1024)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn arguments(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    fn media(allow_private: bool) -> Media {
        Media::new(NetworkPolicy::new(allow_private), MediaSettings { max_bytes: 1000, max_inline_bytes: 8 })
    }

    #[test]
    fn exactly_one_source_and_inline_data_is_checked() {
        let m = media(false);
        assert_eq!(m.input(&arguments(json!({}))).expect("none"), None);
        let both = m.input(&arguments(json!({"media_url": "https://a.example/x", "media_data": "AA=="}))).expect_err("both");
        assert!(both.message.contains("not both"), "{}", both.message);
        let untyped = m.input(&arguments(json!({"media_data": "AAEC"}))).expect_err("no type");
        assert!(untyped.message.contains("media_type is required"), "{}", untyped.message);
        let bad = m.input(&arguments(json!({"media_data": "***", "media_type": "image/png"}))).expect_err("not base64");
        assert!(bad.message.contains("not valid base64"), "{}", bad.message);
        let big = m.input(&arguments(json!({"media_data": "AAAAAAAAAAAAAAAA", "media_type": "image/png"}))).expect_err("12 bytes > 8");
        assert!(big.message.contains("inline limit"), "{}", big.message);
        let ok = m.input(&arguments(json!({"media_data": "AAEC", "media_type": "Image/PNG"}))).expect("valid").expect("some");
        assert_eq!(ok, MediaInput::Inline { bytes: Bytes::from_static(&[0, 1, 2]), content_type: "image/png".to_owned() });
    }

    #[test]
    fn urls_must_be_https_public_and_without_credentials() {
        let m = media(false);
        for (url, why) in [
            ("http://cdn.example/v.mp4", "https://"),
            ("ftp://cdn.example/v.mp4", "https://"),
            ("https://user:pw@cdn.example/v.mp4", "user name"),
            ("https://127.0.0.1/v.mp4", "127.0.0.1"),
            ("https://[::1]/v.mp4", "::1"),
            ("https://169.254.169.254/latest", "169.254.169.254"),
            ("not a url", "not a URL"),
        ] {
            let failure = m.input(&arguments(json!({"media_url": url}))).expect_err(url);
            assert!(failure.message.contains(why), "{url}: {}", failure.message);
        }
        assert!(m.input(&arguments(json!({"media_url": "https://cdn.example/v.mp4"}))).is_ok());
        // Tests and internal networks: loopback over http when the operator allows private hosts.
        assert!(media(true).input(&arguments(json!({"media_url": "http://127.0.0.1:9/v.mp4"}))).is_ok());
    }

    #[tokio::test]
    async fn inline_media_is_read_in_parts_after_its_type_is_checked() {
        let m = media(false);
        let input = MediaInput::Inline { bytes: Bytes::from_static(b"abcdefg"), content_type: "video/mp4".to_owned() };
        let refused = m.open(input.clone(), &["image/jpeg", "image/png"]).await.err().expect("a video is not an image");
        assert!(refused.message.contains("video/mp4") && refused.message.contains("image/jpeg"), "{}", refused.message);
        let mut stream = m.open(input, &["video/"]).await.expect("a video");
        assert_eq!((stream.len(), stream.part_count(3)), (7, 3));
        let mut parts = Vec::new();
        while let Some(part) = stream.next_part(3).await.expect("a part") {
            parts.push(part);
        }
        assert_eq!(parts, [Bytes::from_static(b"abc"), Bytes::from_static(b"def"), Bytes::from_static(b"g")]);
    }

    /// A one-shot HTTP server on loopback answering `head` then `body` to the first request.
    async fn serve_once(head: String, body: Vec<u8>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            if let Ok((mut socket, _)) = listener.accept().await {
                let mut request = [0u8; 2048];
                let _ = socket.read(&mut request).await;
                let _ = socket.write_all(head.as_bytes()).await;
                // In small pieces, so that parts span several network chunks.
                for piece in body.chunks(5) {
                    let _ = socket.write_all(piece).await;
                    let _ = socket.flush().await;
                }
            }
        });
        format!("http://{address}/file")
    }

    #[tokio::test]
    async fn a_url_is_streamed_in_exact_parts_and_its_size_and_type_are_checked_first() {
        let m = media(true);
        let body: Vec<u8> = (0..=255u8).cycle().take(600).collect();
        let url = serve_once(format!("HTTP/1.1 200 OK\r\nContent-Type: video/mp4; codecs=x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()), body.clone()).await;
        let input = m.input(&arguments(json!({"media_url": url}))).expect("valid").expect("some");
        let mut stream = m.open(input, &["video/"]).await.expect("opened");
        assert_eq!((stream.content_type(), stream.len()), ("video/mp4", 600));
        let mut received = Vec::new();
        let mut sizes = Vec::new();
        while let Some(part) = stream.next_part(256).await.expect("a part") {
            sizes.push(part.len());
            received.extend_from_slice(&part);
        }
        assert_eq!(sizes, [256, 256, 88]);
        assert_eq!(received, body);

        let too_big = serve_once("HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n".to_owned(), Vec::new()).await;
        let input = m.input(&arguments(json!({"media_url": too_big}))).expect("valid").expect("some");
        let failure = m.open(input, &["video/"]).await.err().expect("over the cap");
        assert!(failure.message.contains("media limit"), "{}", failure.message);

        let wrong_type = serve_once("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 4\r\nConnection: close\r\n\r\n".to_owned(), b"<p/>".to_vec()).await;
        let input = m.input(&arguments(json!({"media_url": wrong_type}))).expect("valid").expect("some");
        let failure = m.open(input, &["video/"]).await.err().expect("not a video");
        assert!(failure.message.contains("text/html"), "{}", failure.message);
    }

    #[tokio::test]
    async fn a_file_shorter_than_announced_is_a_failure() {
        let m = media(true);
        let url = serve_once("HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 100\r\nConnection: close\r\n\r\n".to_owned(), vec![7; 40]).await;
        let input = m.input(&arguments(json!({"media_url": url}))).expect("valid").expect("some");
        let mut stream = m.open(input, &["image/png"]).await.expect("opened");
        let failure = stream.next_part(64).await.expect_err("ends early");
        assert!(failure.message.contains("broke off after") || failure.message.contains("ended after"), "{}", failure.message);
        assert!(failure.message.contains("of 100 bytes"), "{}", failure.message);
    }

    #[tokio::test]
    async fn a_host_resolving_to_a_private_address_is_not_fetched() {
        let m = media(false);
        // `localhost` passes the URL check (a name) and is refused where it resolves.
        let input = MediaInput::Url(Url::parse("https://localhost:9/v.mp4").expect("url"));
        let failure = m.open(input, &["video/"]).await.err().expect("private");
        assert_eq!(failure.kind, FailureKind::Forbidden, "{}", failure.message);
    }
}
