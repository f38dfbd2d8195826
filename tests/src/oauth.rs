//! A scripted OAuth client over plain HTTP (no browser): registration, the login form with its
//! CSRF cookie, the consent form, the token endpoint. It follows no redirects, so that every
//! status and `Location` can be checked.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = format!("{:016x}{:016x}{:016x}", rand(), rand(), rand());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn rand() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::Instant::now())
}

/// The value of `<input … name="NAME" value="VALUE">` in a page.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&amp;", "&").replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">"))
}

/// The query parameters of a URL.
pub fn query_of(url: &str) -> BTreeMap<String, String> {
    reqwest::Url::parse(url).map(|u| u.query_pairs().into_owned().collect()).unwrap_or_default()
}

/// A browser-like HTTP client: a cookie jar, no automatic redirects.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    cookies: BTreeMap<String, String>,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Browser {
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { http, base: base.to_owned(), cookies: BTreeMap::new() }
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.cookies.insert(name.to_owned(), value.to_owned());
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn page(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = if self.cookies.is_empty() { request } else { request.header(COOKIE, self.cookie_header()) };
        let response = request.send().await.unwrap();
        for value in response.headers().get_all(SET_COOKIE) {
            let text = value.to_str().unwrap();
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = response.status().as_u16();
        let location = response.headers().get(LOCATION).map(|v| v.to_str().unwrap().to_owned());
        let headers = response.headers().clone();
        Page { status, location, headers, body: response.text().await.unwrap() }
    }

    /// GET a path (or absolute URL on this server).
    pub async fn get(&mut self, path: &str) -> Page {
        let url = if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", self.base) };
        let request = self.http.get(url);
        self.page(request).await
    }

    pub async fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded_pairs(form);
        let request =
            self.http.post(format!("{}{path}", self.base)).header("content-type", "application/x-www-form-urlencoded").body(body);
        self.page(request).await
    }

    /// The login form, filled in: GET for the CSRF cookie and field, then POST.
    pub async fn login(&mut self, email: &str, password: &str, return_to: &str) -> Page {
        let form = self.get(&format!("/login?return_to={}", encode(return_to))).await;
        assert_eq!(form.status, 200, "{}", form.body);
        let csrf = hidden_field(&form.body, "csrf").expect("a csrf field");
        self.post_form("/login", &[("email", email), ("password", password), ("return_to", return_to), ("csrf", &csrf)]).await
    }

    pub async fn register(&self, metadata: &Value) -> (u16, Value) {
        let response = self.http.post(format!("{}/oauth/register", self.base)).json(metadata).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `POST /oauth/token` with a form; returns the status, the JSON and the Cache-Control header.
    pub async fn token(&self, form: &[(&str, &str)]) -> (u16, Value, String) {
        let response = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded_pairs(form))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let cache = response.headers().get("cache-control").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        (status, response.json().await.unwrap_or(Value::Null), cache)
    }
}

/// Percent-encodes one query or form value.
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn serde_urlencoded_pairs(form: &[(&str, &str)]) -> String {
    form.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}
