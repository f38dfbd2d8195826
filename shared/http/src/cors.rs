//! Origin checks and CORS for `/mcp`. A present `Origin` that is not allowed is refused (DNS
//! rebinding protection, MCP 2025-11-25 transports); an absent one is fine (non-browser clients).

use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue};

use crate::HttpConfig;

pub enum OriginCheck {
    Absent,
    Allowed(HeaderValue),
    Refused,
}

pub fn check_origin(config: &HttpConfig, headers: &HeaderMap) -> OriginCheck {
    let Some(origin) = headers.get(ORIGIN) else { return OriginCheck::Absent };
    let Ok(text) = origin.to_str() else { return OriginCheck::Refused };
    let text = text.trim_end_matches('/');
    let own = origin_of(&config.public_url);
    let allowed = text.eq_ignore_ascii_case(own)
        || HttpConfig::DEFAULT_ALLOWED_ORIGINS.iter().any(|o| text.eq_ignore_ascii_case(o))
        || config.allowed_origins.iter().any(|o| text.eq_ignore_ascii_case(o.trim_end_matches('/')));
    if allowed { OriginCheck::Allowed(origin.clone()) } else { OriginCheck::Refused }
}

/// Headers on every answer to an allowed cross-origin request. No credentials are allowed.
pub fn add_cors_headers(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("WWW-Authenticate, Mcp-Session-Id"));
    headers.append(VARY, HeaderValue::from_static("Origin"));
}

pub fn add_preflight_headers(headers: &mut HeaderMap) {
    headers.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, GET, DELETE, OPTIONS"));
    headers.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type, Accept, MCP-Protocol-Version, Mcp-Method, Mcp-Name, Mcp-Session-Id, Last-Event-ID, x-api-key"),
    );
    headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
}

/// `scheme://host[:port]` of a URL, which is what browsers send as `Origin`.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> HttpConfig {
        HttpConfig {
            public_url: "https://mcp.example.com".into(),
            allowed_origins: vec!["https://app.example.org/".into()],
            max_body_bytes: 1024,
            cookie_domain: None,
            trusted_proxies: crate::TrustedProxies::default(),
        }
    }

    fn check(origin: Option<&str>) -> &'static str {
        let mut headers = HeaderMap::new();
        if let Some(o) = origin {
            headers.insert(ORIGIN, HeaderValue::from_str(o).expect("valid header"));
        }
        match check_origin(&config(), &headers) {
            OriginCheck::Absent => "absent",
            OriginCheck::Allowed(_) => "allowed",
            OriginCheck::Refused => "refused",
        }
    }

    #[test]
    fn origins() {
        assert_eq!(check(None), "absent");
        assert_eq!(check(Some("https://mcp.example.com")), "allowed");
        assert_eq!(check(Some("https://claude.ai")), "allowed");
        assert_eq!(check(Some("http://localhost:6274")), "allowed");
        assert_eq!(check(Some("https://app.example.org")), "allowed");
        assert_eq!(check(Some("https://evil.example.com")), "refused");
        assert_eq!(check(Some("https://mcp.example.com.evil.net")), "refused");
        assert_eq!(check(Some("null")), "refused");
    }

    #[test]
    fn origin_of_urls() {
        assert_eq!(origin_of("https://a.example/x/y"), "https://a.example");
        assert_eq!(origin_of("http://localhost:3456"), "http://localhost:3456");
    }
}
