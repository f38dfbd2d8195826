//! The system's root certificates, read once per process and shared by every TLS client the
//! process builds (the platforms' HTTP client here, the AWS SDK's through the runtime). Left to
//! themselves, reqwest (through rustls-platform-verifier) and the AWS SDK each read the CA bundle
//! and every file of the certificate directory: on a Lambda cold start that was done twice.

use std::sync::OnceLock;

use tokio_rustls::rustls::RootCertStore;
use tokio_rustls::rustls::pki_types::CertificateDer;

/// The roots rustls accepts as trust anchors, in the order the system lists them.
pub fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        for error in &loaded.errors {
            tracing::warn!(%error, "a system root certificate could not be read");
        }
        let roots = usable_roots(loaded.certs);
        if roots.is_empty() {
            // TLS connections will fail with an unknown-issuer error, which names the problem.
            tracing::error!(
                "no usable system root certificates: install ca-certificates or set SSL_CERT_FILE"
            );
        }
        roots
    })
}

/// The certificates a trust store can take. The system bundle may hold entries rustls cannot use;
/// the AWS SDK panics on one, so they are dropped here, once, instead.
fn usable_roots(certificates: Vec<CertificateDer<'static>>) -> Vec<CertificateDer<'static>> {
    let mut seen = std::collections::HashSet::new();
    certificates
        .into_iter()
        // The bundle and the hashed directory list the same roots: keep one of each.
        .filter(|cert| seen.insert(cert.as_ref().to_vec()))
        .filter(|cert| RootCertStore::empty().add(cert.clone()).is_ok())
        .collect()
}

/// `builder` trusting exactly [`system_roots`]: the same roots reqwest would load itself, without
/// reading them again.
pub fn trusting_system_roots(builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    let roots = system_roots()
        .iter()
        .filter_map(|der| reqwest::Certificate::from_der(der).ok());
    builder.tls_certs_only(roots)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn unusable_and_repeated_certificates_are_dropped() {
        let system = system_roots();
        if system.is_empty() {
            return; // a host without a CA bundle: nothing to compare with
        }
        let garbage = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        let input = vec![system[0].clone(), garbage, system[0].clone()];
        assert_eq!(usable_roots(input), vec![system[0].clone()]);
    }

    #[test]
    fn the_roots_are_read_once() {
        assert!(std::ptr::eq(system_roots(), system_roots()));
    }
}
