//! The system's root certificates, read once per process and shared by every TLS client the
//! process builds (the platforms' HTTP client here, the AWS SDK's through the runtime). Left to
//! themselves, reqwest (through rustls-platform-verifier) and the AWS SDK each read the CA bundle
//! and every file of the certificate directory: on a Lambda cold start that was done twice.
//!
//! Only the system's CA bundle is read when there is one. The hashed certificate directory
//! beside it (Debian's `/etc/ssl/certs`: about 150 files, one per root) holds the same roots,
//! since `update-ca-certificates` writes both, and reading it file by file was a fifth of a
//! cold start on Debian. `SSL_CERT_FILE` and `SSL_CERT_DIR`, when set, are read as they say;
//! a private CA goes in `SQUAREMCP_EXTRA_CA_FILE`.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokio_rustls::rustls::RootCertStore;
use tokio_rustls::rustls::pki_types::CertificateDer;

/// The roots rustls accepts as trust anchors, in the order the system lists them.
pub fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = load_system_certificates();
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

/// Certificates read, and why others could not be.
#[derive(Debug, Default)]
struct Loaded {
    certs: Vec<CertificateDer<'static>>,
    errors: Vec<String>,
}

/// The bundle the system's OpenSSL would use, else (no bundle, an empty one, or variables that
/// name other places) what rustls-native-certs finds: the variables' paths or every location.
fn load_system_certificates() -> Loaded {
    let named_by_the_environment = ["SSL_CERT_FILE", "SSL_CERT_DIR"].iter().any(|name| std::env::var_os(name).is_some());
    if !named_by_the_environment
        && let Some(bundle) = openssl_probe::probe().cert_file
    {
        let loaded = match std::fs::read(&bundle) {
            Ok(pem) => read_pem_bundle(&pem),
            Err(error) => Loaded { certs: Vec::new(), errors: vec![format!("{}: {error}", bundle.display())] },
        };
        if !loaded.certs.is_empty() {
            return loaded;
        }
    }
    let loaded = rustls_native_certs::load_native_certs();
    Loaded { certs: loaded.certs, errors: loaded.errors.iter().map(ToString::to_string).collect() }
}

/// The certificates of a PEM bundle (`CERTIFICATE` sections; other sections and text between
/// them are skipped), read line by line as OpenSSL does. rustls' own PEM reader decodes base64 in
/// constant time, as a private key needs; public roots do not, and the plain decoder took a
/// tenth of a Lambda cold start less. A section that does not decode is reported and skipped;
/// the others are kept.
fn read_pem_bundle(pem: &[u8]) -> Loaded {
    let mut loaded = Loaded::default();
    // The base64 text of the section being read, if one is open.
    let mut section: Option<Vec<u8>> = None;
    for line in pem.split(|&b| b == b'\n').map(<[u8]>::trim_ascii) {
        match (line, section.as_mut()) {
            (b"-----BEGIN CERTIFICATE-----", open) => {
                if open.is_some() {
                    loaded.errors.push(format!("certificate {} has no END line", loaded.certs.len() + 1));
                }
                section = Some(Vec::with_capacity(2048));
            }
            (b"-----END CERTIFICATE-----", Some(text)) => {
                match STANDARD.decode(&*text) {
                    Ok(der) => loaded.certs.push(CertificateDer::from(der)),
                    Err(error) => loaded.errors.push(format!("a certificate after number {}: {error}", loaded.certs.len())),
                }
                section = None;
            }
            (_, Some(text)) => text.extend_from_slice(line),
            (_, None) => {}
        }
    }
    if section.is_some() {
        loaded.errors.push(format!("certificate {} has no END line", loaded.certs.len() + 1));
    }
    loaded
}

/// The certificates a trust store can take. The system bundle may hold entries rustls cannot use;
/// the AWS SDK panics on one, so they are dropped here, once, instead.
fn usable_roots(certificates: Vec<CertificateDer<'static>>) -> Vec<CertificateDer<'static>> {
    // A bundle may list a root twice: the first of each is kept. (Sorting compares a few bytes
    // per pair; hashing every certificate whole cost more.)
    let mut order: Vec<usize> = (0..certificates.len()).collect();
    order.sort_unstable_by(|&a, &b| certificates[a].as_ref().cmp(certificates[b].as_ref()).then(a.cmp(&b)));
    let mut repeated = vec![false; certificates.len()];
    for pair in order.windows(2) {
        if certificates[pair[0]].as_ref() == certificates[pair[1]].as_ref() {
            repeated[pair[1]] = true;
        }
    }
    certificates
        .into_iter()
        .zip(repeated)
        .filter(|(_, repeated)| !repeated)
        .map(|(cert, _)| cert)
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

    /// The premise of reading the bundle alone: on this host, every certificate authority of the
    /// hashed directory is in the bundle. (Debian's directory also holds the `ssl-cert` package's
    /// self-signed `localhost` certificate, which is no CA and not in the bundle: reading the
    /// directory made it a trust anchor.)
    #[test]
    fn the_certificate_directory_holds_no_authority_the_bundle_lacks() {
        let probed = openssl_probe::probe();
        let (Some(bundle), Some(directory)) = (probed.cert_file, probed.cert_dir.first()) else {
            return; // nothing to compare on a host without both
        };
        let in_bundle: std::collections::HashSet<_> =
            rustls_native_certs::load_certs_from_paths(Some(&bundle), None).certs.into_iter().collect();
        assert!(in_bundle.len() > 10, "{} roots in {}", in_bundle.len(), bundle.display());
        // The check below sees real authorities (a few old roots carry no basicConstraints).
        assert!(in_bundle.iter().filter(|root| is_certificate_authority(root)).count() > in_bundle.len() * 3 / 4);
        let authorities_only_in_directory = rustls_native_certs::load_certs_from_paths(None, Some(directory))
            .certs
            .into_iter()
            .filter(|root| !in_bundle.contains(root) && is_certificate_authority(root))
            .count();
        assert_eq!(authorities_only_in_directory, 0, "CAs in {} but not in {}", directory.display(), bundle.display());
    }

    /// Whether the certificate's basicConstraints extension says `cA: TRUE` (DER: the extension's
    /// OID, an optional `critical` flag, then an OCTET STRING holding `SEQUENCE { BOOLEAN TRUE .. }`).
    fn is_certificate_authority(certificate: &CertificateDer<'_>) -> bool {
        const BASIC_CONSTRAINTS: [u8; 5] = [0x06, 0x03, 0x55, 0x1d, 0x13];
        const TRUE: [u8; 3] = [0x01, 0x01, 0xff];
        let der = certificate.as_ref();
        let Some(at) = der.windows(BASIC_CONSTRAINTS.len()).position(|w| w == BASIC_CONSTRAINTS) else {
            return false;
        };
        let mut rest = &der[at + BASIC_CONSTRAINTS.len()..];
        if rest.starts_with(&TRUE) {
            rest = &rest[TRUE.len()..];
        }
        // OCTET STRING, length, SEQUENCE, length, then the cA flag if present.
        matches!(rest, [0x04, _, 0x30, _, tail @ ..] if tail.starts_with(&TRUE))
    }

    #[test]
    fn basic_constraints_are_read() {
        let authority = CertificateDer::from(vec![0x06, 0x03, 0x55, 0x1d, 0x13, 0x01, 0x01, 0xff, 0x04, 0x05, 0x30, 0x03, 0x01, 0x01, 0xff]);
        let end_entity = CertificateDer::from(vec![0x06, 0x03, 0x55, 0x1d, 0x13, 0x04, 0x02, 0x30, 0x00]);
        assert!(is_certificate_authority(&authority));
        assert!(!is_certificate_authority(&end_entity));
    }

    /// The plain reader finds what rustls' reader finds in the system bundle, and keeps going past a section that does not decode.
    #[test]
    fn the_pem_reader_reads_the_bundle_as_rustls_does() {
        let Some(bundle) = openssl_probe::probe().cert_file else {
            return; // a host without a CA bundle: nothing to compare with
        };
        let pem = std::fs::read(&bundle).unwrap();
        let ours = read_pem_bundle(&pem);
        let theirs = rustls_native_certs::load_certs_from_paths(Some(&bundle), None);
        assert!(ours.errors.is_empty() && theirs.errors.is_empty(), "{:?} {:?}", ours.errors, theirs.errors);
        assert!(ours.certs.len() > 10);
        // rustls-native-certs sorts what it read (to drop repeats); the bundle's order is kept here.
        let sorted = |certs: &[CertificateDer<'_>]| {
            let mut ders: Vec<Vec<u8>> = certs.iter().map(|c| c.to_vec()).collect();
            ders.sort_unstable();
            ders.dedup();
            ders
        };
        let (sorted_ours, sorted_theirs) = (sorted(&ours.certs), sorted(&theirs.certs));
        assert_eq!(sorted_ours.len(), sorted_theirs.len());
        assert!(sorted_ours == sorted_theirs, "the readers disagree");

        let first = std::str::from_utf8(&pem).unwrap().split("-----END CERTIFICATE-----").next().unwrap();
        let first = &first[first.find("-----BEGIN CERTIFICATE-----").unwrap()..];
        let mixed = format!(
            "# a comment\n-----BEGIN TRUSTED CERTIFICATE-----\nAAAA\n-----END TRUSTED CERTIFICATE-----\n\
             -----BEGIN CERTIFICATE-----\nnot*base64\n-----END CERTIFICATE-----\n\
             -----BEGIN CERTIFICATE-----\nQUJD\n\
             {first}-----END CERTIFICATE-----\r\n-----BEGIN CERTIFICATE-----\nQUJD"
        );
        let loaded = read_pem_bundle(mixed.as_bytes());
        assert_eq!(loaded.certs, [ours.certs[0].clone()]);
        assert_eq!(loaded.errors.len(), 3, "{:?}", loaded.errors);
        assert!(loaded.errors[1].contains("no END line") && loaded.errors[2].contains("no END line"), "{:?}", loaded.errors);
    }

    #[test]
    fn the_roots_are_read_once() {
        assert!(std::ptr::eq(system_roots(), system_roots()));
    }
}
