//! The URI rules of the authorization server: which redirect URIs a client may register, when a
//! presented one matches (RFC 9700 §4.1.3, RFC 8252 §7.3), what `resource` may name
//! (RFC 8707), and which `return_to` values are safe after login (RFC 9700 §4.11).

use url::{Host, Url};

/// Longest redirect URI accepted at registration.
const MAX_URI_LEN: usize = 2000;

/// https anywhere, or http to a loopback host; never a fragment or user info (RFC 6749 §3.1.2,
/// MCP authorization §Communication Security).
pub fn check_redirect_uri(text: &str) -> Result<(), String> {
    if text.len() > MAX_URI_LEN {
        return Err(format!("a redirect URI must be at most {MAX_URI_LEN} characters"));
    }
    let url = Url::parse(text).map_err(|_| format!("`{text}` is not an absolute URI"))?;
    if url.fragment().is_some() {
        return Err(format!("`{text}` must not contain a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{text}` must not contain user information"));
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        "http" => Err(format!("`{text}`: plain http is allowed only to localhost, 127.0.0.1 or [::1]; use https")),
        other => Err(format!("`{text}`: the scheme `{other}` is not allowed; use https or a loopback http URI")),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Exact string match, except that a loopback http URI may differ in its port (RFC 8252 §7.3)
/// and in which loopback name it uses (`localhost` vs `127.0.0.1`: Codex and Claude Code drift
/// between them).
pub fn redirect_uri_matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    let (Ok(registered), Ok(presented)) = (Url::parse(registered), Url::parse(presented)) else { return false };
    registered.scheme() == "http"
        && presented.scheme() == "http"
        && is_loopback(&registered)
        && is_loopback(&presented)
        && presented.username().is_empty()
        && presented.password().is_none()
        && presented.fragment().is_none()
        && registered.path() == presented.path()
        && registered.query() == presented.query()
}

/// The host a person should recognise on the consent page (with the port for loopback URIs).
pub fn display_host(uri: &str) -> String {
    match Url::parse(uri) {
        Ok(url) => match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => uri.to_owned(),
        },
        Err(_) => uri.to_owned(),
    }
}

/// RFC 8707 §2: `resource` names this server's MCP endpoint. Scheme and host compare
/// case-insensitively and a trailing slash is ignored; the server's root is taken to mean its
/// MCP endpoint. Returns the canonical resource, or `None` for anything else (`invalid_target`).
pub fn canonical_resource(presented: &str, public_url: &str) -> Option<String> {
    let public = Url::parse(public_url).ok()?;
    let url = Url::parse(presented.trim()).ok()?;
    if url.fragment().is_some() || url.query().is_some() || !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    let same_origin = url.scheme() == public.scheme()
        && url.host_str().map(str::to_ascii_lowercase) == public.host_str().map(str::to_ascii_lowercase)
        && url.port_or_known_default() == public.port_or_known_default();
    let base = public.path().trim_end_matches('/');
    let path = url.path().trim_end_matches('/');
    let canonical = format!("{}/mcp", public_url.trim_end_matches('/'));
    (same_origin && (path == format!("{base}/mcp") || path == base)).then_some(canonical)
}

/// Where to go after login: only a same-origin relative path (starts with `/`, not `//` or
/// `/\`, no scheme, visible ASCII only so that browsers cannot reinterpret it).
pub fn safe_return_to(text: &str) -> Option<&str> {
    let ok = text.starts_with('/')
        && !text.starts_with("//")
        && !text.contains('\\')
        && text.len() <= 4096
        && text.bytes().all(|b| b.is_ascii_graphic());
    ok.then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_accepts_what_real_clients_use() {
        for uri in [
            "https://claude.ai/api/mcp/auth_callback",
            "https://claude.com/api/mcp/auth_callback",
            "https://chatgpt.com/connector_platform_oauth_redirect",
            "https://chatgpt.com/connector/oauth/abc123",
            "http://localhost:33418/callback",
            "http://127.0.0.1:33418/callback",
            "http://127.0.0.1:1455/callback/xyz",
            "http://127.0.0.1:19876/mcp/oauth/callback",
            "http://localhost:6274/oauth/callback",
            "http://localhost:6274/oauth/callback/debug",
            "http://[::1]:8080/cb",
        ] {
            assert_eq!(check_redirect_uri(uri), Ok(()), "{uri}");
        }
    }

    #[test]
    fn registration_refuses_the_rest() {
        for uri in [
            "http://example.com/callback",
            "http://127.0.0.1.evil.com/callback",
            "javascript:alert(1)",
            "cursor://callback",
            "https://claude.ai/cb#frag",
            "https://user:pw@claude.ai/cb",
            "/relative",
            "",
        ] {
            assert!(check_redirect_uri(uri).is_err(), "{uri}");
        }
    }

    #[test]
    fn matching_is_exact_except_loopback_ports_and_names() {
        let claude = "https://claude.ai/api/mcp/auth_callback";
        assert!(redirect_uri_matches(claude, claude));
        assert!(!redirect_uri_matches(claude, "https://claude.ai/api/mcp/auth_callback/"));
        assert!(!redirect_uri_matches(claude, "https://CLAUDE.ai/api/mcp/auth_callback"));
        assert!(!redirect_uri_matches(claude, "https://claude.ai:443/api/mcp/auth_callback?x=1"));
        assert!(!redirect_uri_matches("https://a.example:8443/cb", "https://a.example:9443/cb"), "ports only vary on loopback");
        let loopback = "http://127.0.0.1:33418/callback";
        assert!(redirect_uri_matches(loopback, "http://127.0.0.1:50000/callback"));
        assert!(redirect_uri_matches(loopback, "http://localhost:50000/callback"));
        assert!(redirect_uri_matches("http://localhost/callback", "http://[::1]:4000/callback"));
        assert!(!redirect_uri_matches(loopback, "http://127.0.0.1:50000/other"));
        assert!(!redirect_uri_matches(loopback, "http://127.0.0.1:50000/callback?next=x"));
        assert!(!redirect_uri_matches(loopback, "https://127.0.0.1:50000/callback"));
        assert!(!redirect_uri_matches(loopback, "http://evil.example:50000/callback"));
    }

    #[test]
    fn resources_normalise_to_the_mcp_endpoint() {
        let public = "https://mcp.example.com";
        let canonical = Some("https://mcp.example.com/mcp".to_owned());
        for ok in [
            "https://mcp.example.com/mcp",
            "https://mcp.example.com/mcp/",
            "HTTPS://MCP.Example.com/mcp",
            "https://mcp.example.com:443/mcp",
            "https://mcp.example.com",
            "https://mcp.example.com/",
        ] {
            assert_eq!(canonical_resource(ok, public), canonical, "{ok}");
        }
        for bad in [
            "https://evil.example.com/mcp",
            "http://mcp.example.com/mcp",
            "https://mcp.example.com:8443/mcp",
            "https://mcp.example.com/other",
            "https://mcp.example.com/mcp?x=1",
            "https://mcp.example.com/mcp#x",
            "mcp",
        ] {
            assert_eq!(canonical_resource(bad, public), None, "{bad}");
        }
        assert_eq!(
            canonical_resource("http://127.0.0.1:3456/mcp", "http://127.0.0.1:3456"),
            Some("http://127.0.0.1:3456/mcp".to_owned())
        );
    }

    #[test]
    fn return_to_allows_only_local_paths() {
        assert_eq!(safe_return_to("/oauth/authorize?client_id=x&state=y"), Some("/oauth/authorize?client_id=x&state=y"));
        for bad in ["//evil.com", "/\\evil.com", "https://evil.com", "evil.com", "", "/\tx", "/ok/../\\x", "javascript:alert(1)", "/é"] {
            assert_eq!(safe_return_to(bad), None, "{bad:?}");
        }
    }
}
