//! The session and login-CSRF cookies. `HttpOnly`, `SameSite=Lax` (a `Strict` cookie is not
//! sent on the navigation from claude.ai to the consent page, which loops the login), `Secure`
//! and the `__Host-` prefix when the public URL is https and no cookie domain is configured.

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};

use crate::HttpConfig;

pub const SESSION: &str = "session";
pub const LOGIN_CSRF: &str = "login_csrf";

impl HttpConfig {
    fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// `__Host-<name>` where the browser can enforce it (https, no Domain), else `<name>`.
    pub fn cookie_name(&self, name: &str) -> String {
        if self.secure_cookies() && self.cookie_domain.is_none() { format!("__Host-{name}") } else { name.to_owned() }
    }

    /// A `Set-Cookie` value; `max_age` 0 deletes the cookie.
    pub fn set_cookie(&self, name: &str, value: &str, max_age: i64) -> Option<HeaderValue> {
        let mut cookie = format!("{}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax", self.cookie_name(name));
        if self.secure_cookies() {
            cookie.push_str("; Secure");
        }
        if let Some(domain) = &self.cookie_domain {
            cookie.push_str("; Domain=");
            cookie.push_str(domain);
        }
        HeaderValue::from_str(&cookie).ok()
    }

    /// The value of one of our cookies in the request.
    pub fn cookie(&self, headers: &HeaderMap, name: &str) -> Option<String> {
        let wanted = self.cookie_name(name);
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == wanted)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str, domain: Option<&str>) -> HttpConfig {
        HttpConfig {
            public_url: url.into(),
            allowed_origins: vec![],
            max_body_bytes: 1024,
            cookie_domain: domain.map(str::to_owned),
            trusted_proxies: crate::TrustedProxies::default(),
        }
    }

    #[test]
    fn attributes_follow_the_public_url() {
        let https = config("https://mcp.example.com", None);
        let cookie = https.set_cookie(SESSION, "jwt", 604_800).map(|v| v.to_str().unwrap_or_default().to_owned());
        assert_eq!(cookie.as_deref(), Some("__Host-session=jwt; Path=/; Max-Age=604800; HttpOnly; SameSite=Lax; Secure"));
        let shared = config("https://mcp.example.com", Some("example.com"));
        let cookie = shared.set_cookie(SESSION, "jwt", 10).map(|v| v.to_str().unwrap_or_default().to_owned());
        assert_eq!(cookie.as_deref(), Some("session=jwt; Path=/; Max-Age=10; HttpOnly; SameSite=Lax; Secure; Domain=example.com"));
        let local = config("http://127.0.0.1:3456", None);
        let cookie = local.set_cookie(SESSION, "jwt", 10).map(|v| v.to_str().unwrap_or_default().to_owned());
        assert_eq!(cookie.as_deref(), Some("session=jwt; Path=/; Max-Age=10; HttpOnly; SameSite=Lax"));
    }

    #[test]
    fn reading() {
        let https = config("https://mcp.example.com", None);
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_static("a=1; session=plain; __Host-session=abc.def"));
        assert_eq!(https.cookie(&headers, SESSION).as_deref(), Some("abc.def"));
        assert_eq!(config("http://localhost", None).cookie(&headers, SESSION).as_deref(), Some("plain"));
        assert_eq!(https.cookie(&headers, LOGIN_CSRF), None);
    }
}
