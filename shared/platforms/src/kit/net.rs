//! Addresses a customer supplies (a mail server, later an S3 endpoint) are not trusted: a tool
//! call must not become a way to reach the gateway's own network, its loopback services or the
//! cloud metadata endpoint. [`NetworkPolicy::resolve`] resolves a host once, refuses private
//! addresses unless the operator allows them (`SQUAREMCP_ALLOW_PRIVATE_HOSTS=1`, for tests and
//! self-hosters with an internal mail server), and returns the address to connect to, so that no
//! second lookup can answer differently (DNS rebinding).
//!
//! It also carries the TLS trust for such servers: the platform's roots plus the operator's own
//! (`SQUAREMCP_EXTRA_CA_FILE`, PEM), for self-hosted servers with a private CA.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::rustls::{self, ClientConfig};
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;

/// How long resolving a customer's host may take.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the operator allows for customer-supplied addresses. The default refuses private hosts
/// and trusts only the platform's roots.
#[derive(Clone, Debug, Default)]
pub struct NetworkPolicy {
    allow_private_hosts: bool,
    extra_roots: Arc<Vec<CertificateDer<'static>>>,
}

/// Why a customer-supplied host cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("`{host}` is not a host name or IP address")]
    InvalidHost { host: String },
    #[error("`{host}` could not be resolved")]
    Unresolved { host: String },
    #[error(
        "`{host}` is {address}, {why}: the gateway does not connect there (an operator can allow private hosts with SQUAREMCP_ALLOW_PRIVATE_HOSTS=1)"
    )]
    Forbidden { host: String, address: IpAddr, why: &'static str },
}

impl NetworkPolicy {
    pub fn new(allow_private_hosts: bool) -> Self {
        Self { allow_private_hosts, extra_roots: Arc::default() }
    }

    /// Adds the certificates of a PEM bundle to the trusted roots. Refused when it holds none.
    pub fn with_extra_roots_pem(mut self, pem: &[u8]) -> Result<Self, String> {
        let certificates = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("not a PEM certificate bundle ({e})"))?;
        if certificates.is_empty() {
            return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned());
        }
        let mut roots = self.extra_roots.as_ref().clone();
        roots.extend(certificates);
        self.extra_roots = Arc::new(roots);
        Ok(self)
    }

    pub fn allows_private_hosts(&self) -> bool {
        self.allow_private_hosts
    }

    /// The operator's extra trusted roots (DER).
    pub fn extra_roots(&self) -> &[CertificateDer<'static>] {
        &self.extra_roots
    }

    /// Resolves `host` once and returns the address to connect to. Every address the name
    /// resolves to must be allowed: a name answering both a public and a private address is
    /// refused, whichever a later lookup would pick.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, GuardError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addresses: Vec<SocketAddr> = if let Ok(ip) = bare.parse::<IpAddr>() {
            vec![SocketAddr::new(ip, port)]
        } else {
            let valid = !bare.is_empty()
                && bare.len() <= 253
                && bare.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
            if !valid {
                return Err(GuardError::InvalidHost { host: host.to_owned() });
            }
            let unresolved = || GuardError::Unresolved { host: host.to_owned() };
            let found = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((bare, port)))
                .await
                .map_err(|_| unresolved())?
                .map_err(|_| unresolved())?;
            found.collect()
        };
        let first = *addresses.first().ok_or_else(|| GuardError::Unresolved { host: host.to_owned() })?;
        if !self.allow_private_hosts {
            for address in &addresses {
                if let Some(why) = forbidden(address.ip()) {
                    return Err(GuardError::Forbidden { host: host.to_owned(), address: address.ip(), why });
                }
            }
        }
        Ok(first)
    }

    /// A rustls client configuration (aws-lc-rs) that trusts the platform's roots and the
    /// operator's extra ones.
    pub fn tls_config(&self) -> Result<Arc<ClientConfig>, rustls::Error> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(self.extra_roots.iter().cloned(), provider.clone())?;
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

/// Why the gateway must not connect to `ip` on a customer's behalf, if it must not.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let segments = v6.segments();
            // NAT64 (64:ff9b::/96) embeds an IPv4 address in its last 32 bits.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [.., high, low] = segments;
                return forbidden_v4(Ipv4Addr::from((u32::from(high) << 16) | u32::from(low)));
            }
            if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("the unspecified address")
            } else if segments[0] & 0xfe00 == 0xfc00 {
                Some("a unique local (private) address")
            } else if segments[0] & 0xffc0 == 0xfe80 || segments[0] & 0xffc0 == 0xfec0 {
                Some("a link-local address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else {
                None
            }
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) {
        Some("the cloud metadata address")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a carrier-grade NAT (shared) address")
    } else if a == 0 {
        Some("the unspecified network")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Some("a multicast or reserved address")
    } else if a == 192 && b == 0 && ip.octets()[2] == 0 {
        Some("an IETF protocol address")
    } else if a == 198 && (18..20).contains(&b) {
        Some("a benchmarking address")
    } else {
        None
    }
}

/// A reqwest resolver that sends every name through [`NetworkPolicy::resolve`]: every address
/// must be allowed, and the connection goes to the address that was checked, so a DNS answer
/// cannot swap in a private one. Used by every client that reaches customer-supplied URLs
/// (media, webhook endpoints, OAuth client metadata documents).
pub struct GuardedResolver(pub NetworkPolicy);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let address: SocketAddr =
                policy.resolve(name.as_str(), 0).await.map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok(Box::new(std::iter::once(address)) as reqwest::dns::Addrs)
        })
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    async fn refused(policy: &NetworkPolicy, host: &str) -> String {
        policy.resolve(host, 993).await.expect_err(host).to_string()
    }

    #[tokio::test]
    async fn private_loopback_link_local_and_metadata_addresses_are_refused() {
        let policy = NetworkPolicy::default();
        for (host, why) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "cloud metadata"),
            ("169.254.1.1", "link-local"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("0.0.0.0", "unspecified"),
            ("::1", "loopback"),
            ("[::1]", "loopback"),
            ("fd00::1", "unique local"),
            ("fc00::5", "unique local"),
            ("fe80::1", "link-local"),
            ("::ffff:10.0.0.1", "private"),
            ("::ffff:169.254.169.254", "cloud metadata"),
            ("64:ff9b::7f00:1", "loopback"),
        ] {
            let message = refused(&policy, host).await;
            assert!(message.contains(why), "{host}: {message}");
            assert!(message.contains("SQUAREMCP_ALLOW_PRIVATE_HOSTS=1"), "{host}: {message}");
        }
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused() {
        let message = refused(&NetworkPolicy::default(), "localhost").await;
        assert!(message.contains("loopback"), "{message}");
    }

    #[tokio::test]
    async fn public_addresses_pass_and_the_operator_can_allow_private_ones() {
        let policy = NetworkPolicy::default();
        for host in ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "[2a00:1450:4001:80b::200e]"] {
            let address = policy.resolve(host, 993).await.unwrap_or_else(|e| panic!("{host}: {e}"));
            assert_eq!(address.port(), 993);
        }
        let allowing = NetworkPolicy::new(true);
        for host in ["127.0.0.1", "10.0.0.7", "169.254.169.254", "::1", "fd00::1", "localhost"] {
            assert!(allowing.resolve(host, 143).await.is_ok(), "{host}");
        }
    }

    #[tokio::test]
    async fn malformed_hosts_are_refused_without_a_lookup() {
        let policy = NetworkPolicy::new(true);
        for host in ["", "exa mple.com", "a/b", "x\ny"] {
            assert!(matches!(policy.resolve(host, 1).await, Err(GuardError::InvalidHost { .. })), "{host:?}");
        }
    }

    #[test]
    fn extra_roots_come_from_pem_and_an_empty_bundle_is_refused() {
        assert!(NetworkPolicy::default().with_extra_roots_pem(b"no certificate here").is_err());
        assert!(NetworkPolicy::default().tls_config().is_ok());
    }
}
