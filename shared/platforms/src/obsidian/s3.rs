//! The S3 backend: a vault as the objects under a bucket and prefix (Remotely Save's layout), on
//! AWS or any S3-compatible store, over reqwest with hand-written SigV4 (checked against AWS's
//! published example below) and a minimal reader for ListObjectsV2's XML.
//!
//! Conditional writes: `PUT` with `If-Match: <etag>` to replace, `If-None-Match: *` to create; a
//! 412 (or 409) is a conflict. A store that ignores these headers cannot give that guarantee.

use std::time::SystemTime;

use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac as _};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::credential::S3Credential;
use super::paths::{NotePath, is_note};
use super::vault::{Condition, Entry, MAX_LISTED, MAX_NOTE_BYTES, Note, Vault, VaultError};
use crate::kit::NetworkPolicy;

/// Remotely Save's metadata objects at the root of the synced prefix (`.json`, later `.bin`),
/// written by its v2 sync algorithm only: v3 keeps its state on the device.
const REMOTELY_SAVE_METADATA: &[&str] = &["_remotely-save-metadata-on-remote.json", "_remotely-save-metadata-on-remote.bin"];
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

pub(super) struct S3Vault {
    http: reqwest::Client,
    /// `scheme://host[:port]`.
    origin: String,
    /// `host[:port]` as sent in `Host`.
    host: String,
    /// Path-style (`/bucket/key`) for custom endpoints, virtual-hosted for AWS.
    path_style: bool,
    credential: S3Credential,
}

impl S3Vault {
    /// Checks the endpoint's host with the SSRF guard and pins the connection to the address it
    /// resolved to.
    pub async fn open(credential: S3Credential, network: &NetworkPolicy) -> Result<Self, VaultError> {
        let (origin, path_style) = match &credential.endpoint {
            Some(endpoint) => (endpoint.clone(), true),
            None if credential.bucket.contains('.') => (format!("https://s3.{}.amazonaws.com", credential.region), true),
            None => (format!("https://{}.s3.{}.amazonaws.com", credential.bucket, credential.region), false),
        };
        let url = reqwest::Url::parse(&origin).map_err(|_| VaultError::NotConfigured("the S3 endpoint is not a URL".to_owned()))?;
        let host_name = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let address = network.resolve(&host_name, port).await.map_err(|error| match error {
            crate::kit::GuardError::Forbidden { .. } => VaultError::Blocked(format!("The S3 endpoint is refused: {error}")),
            crate::kit::GuardError::InvalidHost { .. } => VaultError::NotConfigured(format!("The S3 endpoint is not usable: {error}")),
            crate::kit::GuardError::Unresolved { .. } => VaultError::Transient(format!("The S3 endpoint is not reachable: {error}")),
        })?;
        let http = reqwest::Client::builder()
            .resolve(&host_name, address)
            .connect_timeout(crate::CONNECT_TIMEOUT)
            .timeout(crate::REQUEST_TIMEOUT)
            .user_agent(concat!("SquareMCP/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| VaultError::Transient("the HTTP client could not start".to_owned()))?;
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        Ok(Self { http, origin, host, path_style, credential })
    }

    /// The URI-encoded path of `key` (already including the prefix), or of the bucket when empty.
    fn path(&self, key: &str) -> String {
        let key = encode(key, false);
        if self.path_style { format!("/{}/{key}", self.credential.bucket) } else { format!("/{key}") }
    }

    async fn send(&self, method: Method, key: &str, query: &[(&str, &str)], body: Vec<u8>, condition: Option<(&str, &str)>) -> Result<reqwest::Response, VaultError> {
        let path = self.path(key);
        let mut pairs: Vec<(String, String)> = query.iter().map(|(k, v)| (encode(k, true), encode(v, true))).collect();
        pairs.sort();
        let canonical_query = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
        let payload_hash = hex(&Sha256::digest(&body));
        let now = time::OffsetDateTime::from(SystemTime::now());
        let amz_date = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            now.year(), u8::from(now.month()), now.day(), now.hour(), now.minute(), now.second()
        );
        let mut headers = vec![("host", self.host.as_str()), ("x-amz-content-sha256", payload_hash.as_str()), ("x-amz-date", amz_date.as_str())];
        if let Some(token) = &self.credential.session_token {
            headers.push(("x-amz-security-token", token.as_str()));
        }
        let request = Canonical { method: method.as_str(), path: &path, query: &canonical_query, headers: &headers, payload_hash: &payload_hash };
        let (signature, signed_headers, scope) = sigv4(&request, &amz_date, &self.credential.region, &self.credential.secret_access_key);
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            self.credential.access_key_id
        );
        let url = if canonical_query.is_empty() { format!("{}{path}", self.origin) } else { format!("{}{path}?{canonical_query}", self.origin) };
        let mut builder = self
            .http
            .request(method, url)
            .header("x-amz-content-sha256", &payload_hash)
            .header("x-amz-date", &amz_date)
            .header("authorization", authorization);
        if let Some(token) = &self.credential.session_token {
            builder = builder.header("x-amz-security-token", token);
        }
        if let Some((name, value)) = condition {
            builder = builder.header(name, value);
        }
        if !body.is_empty() {
            builder = builder.header("content-type", "text/markdown; charset=utf-8").body(body);
        }
        builder.send().await.map_err(|e| {
            if e.is_timeout() {
                VaultError::Transient("the S3 store did not answer in time".to_owned())
            } else {
                VaultError::Transient("the S3 store could not be reached".to_owned())
            }
        })
    }

    fn key(&self, path: &str) -> String {
        format!("{}{path}", self.credential.prefix)
    }

    /// Every object under the prefix: (relative path, size, last modified).
    async fn objects(&self) -> Result<(Vec<Entry>, bool), VaultError> {
        let mut entries = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("list-type", "2"), ("prefix", self.credential.prefix.as_str())];
            if let Some(token) = &token {
                query.push(("continuation-token", token.as_str()));
            }
            let response = self.send(Method::GET, "", &query, Vec::new(), None).await?;
            let status = response.status();
            let text = response.text().await.map_err(|_| VaultError::Transient("the S3 listing was cut off".to_owned()))?;
            if !status.is_success() {
                return Err(failure(status, &text, None));
            }
            for contents in elements(&text, "Contents") {
                let Some(key) = element(contents, "Key") else { continue };
                let Some(path) = key.strip_prefix(self.credential.prefix.as_str()) else { continue };
                if path.is_empty() || path.ends_with('/') {
                    continue;
                }
                entries.push(Entry {
                    path: path.to_owned(),
                    size: element(contents, "Size").and_then(|s| s.parse().ok()).unwrap_or(0),
                    modified: element(contents, "LastModified"),
                });
            }
            token = element(&text, "NextContinuationToken");
            let truncated = element(&text, "IsTruncated").is_some_and(|t| t == "true");
            if entries.len() >= MAX_LISTED {
                return Ok((entries, false));
            }
            if !truncated || token.is_none() {
                return Ok((entries, true));
            }
        }
    }
}

#[async_trait]
impl Vault for S3Vault {
    async fn list(&self) -> Result<(Vec<Entry>, bool), VaultError> {
        let (entries, complete) = self.objects().await?;
        let visible = entries.into_iter().filter(|e| !e.path.split('/').rev().skip(1).any(|s| s.starts_with('.'))).collect();
        Ok((visible, complete))
    }

    async fn read(&self, path: &NotePath) -> Result<Option<Note>, VaultError> {
        let response = self.send(Method::GET, &self.key(path.as_str()), &[], Vec::new(), None).await?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            let text = response.text().await.unwrap_or_default();
            return match element(&text, "Code").as_deref() {
                Some("NoSuchBucket") => Err(failure(status, &text, None)),
                _ => Ok(None),
            };
        }
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(failure(status, &text, Some(path.as_str())));
        }
        if response.content_length().is_some_and(|n| n > MAX_NOTE_BYTES) {
            return Err(VaultError::TooLarge(path.as_str().to_owned()));
        }
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let version = header("etag").unwrap_or_default();
        let modified = header("last-modified")
            .and_then(|t| time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc2822).ok())
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok());
        let content = response.bytes().await.map_err(|_| VaultError::Transient("the note's download was cut off".to_owned()))?;
        if content.len() as u64 > MAX_NOTE_BYTES {
            return Err(VaultError::TooLarge(path.as_str().to_owned()));
        }
        Ok(Some(Note { content: content.to_vec(), version, modified }))
    }

    async fn write(&self, path: &NotePath, content: &[u8], condition: &Condition) -> Result<String, VaultError> {
        let header = match condition {
            Condition::Absent => ("if-none-match", "*"),
            Condition::Version(etag) => ("if-match", etag.as_str()),
        };
        let response = self.send(Method::PUT, &self.key(path.as_str()), &[], content.to_vec(), Some(header)).await?;
        let status = response.status();
        let etag = response.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_owned);
        if status.is_success() {
            return Ok(etag.unwrap_or_default());
        }
        let text = response.text().await.unwrap_or_default();
        match (status, element(&text, "Code").as_deref()) {
            (StatusCode::PRECONDITION_FAILED | StatusCode::CONFLICT, _) => Err(VaultError::Conflict(path.as_str().to_owned())),
            // `If-Match` on a key that no longer exists: it was deleted or renamed meanwhile.
            (StatusCode::NOT_FOUND, Some("NoSuchKey")) => Err(VaultError::Conflict(path.as_str().to_owned())),
            (StatusCode::NOT_IMPLEMENTED, _) => Err(VaultError::NotSupported(
                "this S3 store does not support conditional writes (If-Match), so the note was not written rather than risk \
                 overwriting a concurrent change"
                    .to_owned(),
            )),
            _ => Err(failure(status, &text, Some(path.as_str()))),
        }
    }

    async fn sync_status(&self) -> Result<Value, VaultError> {
        let (entries, complete) = self.objects().await?;
        let notes = entries.iter().filter(|e| is_note(&e.path)).count();
        let newest = entries.iter().filter_map(|e| e.modified.as_deref()).max();
        let remotely_save = entries
            .iter()
            .find(|e| REMOTELY_SAVE_METADATA.contains(&e.path.as_str()))
            .map(|e| json!({ "key": format!("{}{}", self.credential.prefix, e.path), "size": e.size, "last_modified": e.modified }));
        Ok(json!({ "backend": "s3", "source": "s3", "bucket": self.credential.bucket, "prefix": self.credential.prefix,
            "note_count": notes, "object_count": entries.len(), "listing_complete": complete, "last_change": newest,
            "remotely_save": remotely_save }))
    }
}

/// An S3 error answer as a vault error (its `Code`, never the request's secrets).
fn failure(status: StatusCode, body: &str, path: Option<&str>) -> VaultError {
    let code = element(body, "Code").unwrap_or_else(|| status.as_u16().to_string());
    let what = path.map(|p| format!(" for `{p}`")).unwrap_or_default();
    match (status.as_u16(), code.as_str()) {
        (_, "NoSuchBucket") => VaultError::NotConfigured("the S3 bucket does not exist: check `bucket` and `region`".to_owned()),
        (_, "InvalidAccessKeyId" | "SignatureDoesNotMatch") => {
            VaultError::Auth(format!("the S3 store refused the access key ({code}): store the credential again"))
        }
        (_, "AuthorizationHeaderMalformed" | "PermanentRedirect") => {
            VaultError::NotConfigured(format!("the S3 store answered {code}: check `region` and `endpoint`"))
        }
        (401 | 403, _) => VaultError::Permission(format!("the S3 store refused access{what} ({code}): the key needs s3:ListBucket, s3:GetObject and s3:PutObject on the prefix")),
        (404, _) => VaultError::NotFound(path.unwrap_or("").to_owned()),
        (429 | 500..=599, _) => VaultError::Transient(format!("the S3 store is unavailable ({code}); try again shortly")),
        _ => VaultError::Upstream(format!("the S3 store answered {}{what} ({code})", status.as_u16())),
    }
}

/// The parts of a request SigV4 signs. `headers` are lowercase names, values as sent.
pub(super) struct Canonical<'a> {
    pub method: &'a str,
    /// URI-encoded, as sent.
    pub path: &'a str,
    /// Sorted and encoded `k=v&…`.
    pub query: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub payload_hash: &'a str,
}

/// SigV4 for S3: `(signature, signed headers, credential scope)`.
pub(super) fn sigv4(request: &Canonical<'_>, amz_date: &str, region: &str, secret: &str) -> (String, String, String) {
    let mut headers: Vec<(String, String)> = request.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned())).collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(";");
    let canonical = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        request.method, request.path, request.query, request.payload_hash
    );
    let date = amz_date.get(..8).unwrap_or(amz_date);
    let scope = format!("{date}/{region}/s3/aws4_request");
    let string_to_sign = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex(&Sha256::digest(canonical.as_bytes())));
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    for part in [region, "s3", "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    (hex(&hmac(&key, string_to_sign.as_bytes())), signed_headers, scope)
}

/// The signature of AWS's published SigV4 example for S3 (GET Object with a Range), exposed so
/// the example test can run outside this module.
pub fn sigv4_signature(method: &str, path: &str, headers: &[(&str, &str)], amz_date: &str, region: &str, secret: &str) -> String {
    let payload_hash = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("x-amz-content-sha256")).map_or(EMPTY_SHA256, |(_, v)| v);
    sigv4(&Canonical { method, path, query: "", headers, payload_hash }, amz_date, region, secret).0
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        // HMAC accepts keys of any length.
        Err(_) => Vec::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SigV4's URI encoding: everything but `A-Za-z0-9-._~` (and `/` in paths) as `%XX`.
fn encode(text: &str, slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') || (byte == b'/' && !slash) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The text of the first `<name>…</name>` in `xml`, entities decoded.
fn element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(unescape(&xml[start..end]))
}

/// The insides of every `<name>…</name>` (not nested in itself, as in ListObjectsV2).
fn elements<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let inner = &rest[start + open.len()..];
        let Some(end) = inner.find(&close) else { break };
        found.push(&inner[..end]);
        rest = &inner[end + close.len()..];
    }
    found
}

fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';').filter(|&e| e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_published_example_get_object_signature() {
        // "Example: GET Object" in AWS's S3 docs, Signature Calculations for the Authorization
        // Header (Transferring Payload in a Single Chunk).
        let signature = sigv4_signature(
            "GET",
            "/test.txt",
            &[("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9"), ("x-amz-content-sha256", EMPTY_SHA256),
                ("x-amz-date", "20130524T000000Z")],
            "20130524T000000Z",
            "us-east-1",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        );
        assert_eq!(signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    }

    #[test]
    fn list_xml_is_read() {
        let xml = "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>v/a &amp; b.md</Key><LastModified>2026-01-02T03:04:05.000Z</LastModified><Size>12</Size></Contents><Contents><Key>v/c.md</Key><Size>3</Size></Contents><NextContinuationToken>t&#x2F;1</NextContinuationToken></ListBucketResult>";
        let contents = elements(xml, "Contents");
        assert_eq!(contents.len(), 2);
        assert_eq!(element(contents[0], "Key").as_deref(), Some("v/a & b.md"));
        assert_eq!(element(xml, "NextContinuationToken").as_deref(), Some("t/1"));
        assert_eq!(encode("a b/ü.md", false), "a%20b/%C3%BC.md");
        assert_eq!(encode("a/b", true), "a%2Fb");
    }
}
