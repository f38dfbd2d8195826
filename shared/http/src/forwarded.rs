//! Behind a reverse proxy (the ingress): `X-Forwarded-For` and `X-Forwarded-Proto` are believed
//! only when the TCP peer is one of `SQUAREMCP_TRUSTED_PROXIES`. Anyone else could write them,
//! and a forged client address would reset the login and registration limits at will.

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use http::{HeaderMap, Method, StatusCode, header};

use crate::HttpConfig;
use crate::client_ip::ClientIp;

/// One `address/prefix` network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    /// `10.1.0.0/16`, `::1/128`, or a bare address (a single host).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.parse().map_err(|_| format!("`{text}` is not an IP address or CIDR network"))?;
        let network = canonical(network);
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("`{text}` has no prefix length 0-{max}"))?,
            None => max,
        };
        Ok(Self { network, prefix })
    }
}

/// IPv4-mapped IPv6 (`::ffff:10.0.0.1`, what a dual-stack socket reports) as plain IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The proxies whose forwarding headers are believed; empty (the default) believes none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// A comma-separated list of networks and addresses.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::parse).collect::<Result<_, _>>().map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|cidr| cidr.contains(ip))
    }

    /// The client's address: the TCP peer, or, when the peer is trusted, the right-most address
    /// of `X-Forwarded-For` that is not itself a trusted proxy (the left part is whatever the
    /// client chose to send, so it is never taken past an untrusted hop).
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Ok(ip) = hop.parse::<IpAddr>().map(canonical) else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }

    /// The scheme the client used, as a trusted proxy reports it; `None` when not reported or
    /// not believed.
    pub fn forwarded_proto(&self, peer: IpAddr, headers: &HeaderMap) -> Option<String> {
        if !self.trusts(canonical(peer)) {
            return None;
        }
        let value = headers.get("x-forwarded-proto")?.to_str().ok()?;
        // A chain of proxies may append; the first is the client's side.
        Some(value.split(',').next()?.trim().to_ascii_lowercase())
    }
}

/// Sets [`ClientIp`] from the peer and trusted forwarding headers (unless an adapter already
/// did), and sends a browser that reached an https deployment over plain http to https: a
/// `Secure` session cookie set on that answer would be dropped and the login would loop.
pub fn layer(router: Router, config: &HttpConfig) -> Router {
    let trusted = config.trusted_proxies.clone();
    let public_url = config.public_url.clone();
    let https = config.is_https();
    router.layer(axum::middleware::from_fn(move |mut request: Request, next: Next| {
        let trusted = trusted.clone();
        let public_url = public_url.clone();
        async move {
            let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
            if let Some(peer) = peer {
                if https && trusted.forwarded_proto(peer, request.headers()).as_deref() == Some("http") {
                    return to_https(&public_url, &request);
                }
                if request.extensions().get::<ClientIp>().is_none() {
                    let ip = trusted.client_ip(peer, request.headers());
                    request.extensions_mut().insert(ClientIp(ip));
                }
            }
            next.run(request).await
        }
    }))
}

/// 308 keeps the method and body; only safe methods are redirected, anything else is refused
/// rather than replayed over a connection that already leaked it.
fn to_https(public_url: &str, request: &Request) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return (StatusCode::FORBIDDEN, "Use https").into_response();
    }
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    match http::HeaderValue::from_str(&format!("{public_url}{path}")) {
        Ok(location) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, location)]).into_response(),
        Err(_) => (StatusCode::FORBIDDEN, "Use https").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("")));
        }
        headers
    }

    #[test]
    fn networks_match_by_prefix() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap_or(Cidr { network: ip("255.255.255.255"), prefix: 32 });
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")), "a v4-mapped peer is the v4 address");
        let host: Result<Cidr, _> = "fd00::1".parse();
        assert!(host.is_ok_and(|h| h.contains(ip("fd00::1")) && !h.contains(ip("fd00::2"))));
        let all: Result<Cidr, _> = "0.0.0.0/0".parse();
        assert!(all.is_ok_and(|a| a.contains(ip("203.0.113.7"))));
        for bad in ["10.0.0.0/33", "example.com", "10.0.0/8", "::1/129", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert!(TrustedProxies::parse("10.1.0.0/16, 127.0.0.1,").is_ok_and(|t| t.0.len() == 2));
        assert!(TrustedProxies::parse("10.1.0.0/16, nonsense").is_err());
    }

    #[test]
    fn forwarding_headers_are_believed_only_from_trusted_peers() {
        let trusted = TrustedProxies::parse("10.1.0.0/16").unwrap_or_default();
        let headers = xff(&["198.51.100.9"]);
        assert_eq!(trusted.client_ip(ip("203.0.113.1"), &headers), ip("203.0.113.1"), "an untrusted peer's header is ignored");
        assert_eq!(trusted.client_ip(ip("10.1.3.4"), &headers), ip("198.51.100.9"));
        assert_eq!(TrustedProxies::default().client_ip(ip("10.1.3.4"), &headers), ip("10.1.3.4"), "nothing trusted by default");
        assert_eq!(trusted.client_ip(ip("10.1.3.4"), &HeaderMap::new()), ip("10.1.3.4"), "no header: the peer");
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let trusted = TrustedProxies::parse("10.1.0.0/16,192.0.2.10").unwrap_or_default();
        // The client wrote "1.1.1.1" itself; the proxies appended the rest.
        let headers = xff(&["1.1.1.1, 198.51.100.9", "192.0.2.10"]);
        assert_eq!(trusted.client_ip(ip("10.1.0.5"), &headers), ip("198.51.100.9"));
        // Garbage stops the walk at the last address a trusted proxy vouched for.
        let headers = xff(&["198.51.100.9, not-an-ip, 192.0.2.10"]);
        assert_eq!(trusted.client_ip(ip("10.1.0.5"), &headers), ip("192.0.2.10"));
    }

    #[test]
    fn the_scheme_comes_only_from_trusted_peers() {
        let trusted = TrustedProxies::parse("127.0.0.1").unwrap_or_default();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-proto", HeaderValue::from_static("HTTP, https"));
        assert_eq!(trusted.forwarded_proto(ip("127.0.0.1"), &headers).as_deref(), Some("http"));
        assert_eq!(trusted.forwarded_proto(ip("127.0.0.2"), &headers), None);
    }
}
