//! `--tls CA.pem`: the CA every client trusts when the cluster speaks TLS.

/// `--tls CA.pem`: every client (and redis-benchmark) speaks TLS to the cluster, trusting
/// this CA; the Rust clients all use rustls with the ring provider.
pub fn tls_ca_path() -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == "--tls")?;
    Some(
        args.get(i + 1)
            .expect("--tls takes the CA certificate's PEM file")
            .clone(),
    )
}

pub fn tls_ca() -> Option<Vec<u8>> {
    tls_ca_path().map(|path| std::fs::read(path).expect("read the --tls CA file"))
}

/// A rustls client configuration trusting only `ca` (for fred, which takes one).
pub fn rustls_config(ca: &[u8]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    let mut reader = ca;
    for cert in rustls_pemfile_certs(&mut reader) {
        roots.add(cert).expect("CA certificate");
    }
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth()
}

/// The certificates of a PEM bundle.
fn rustls_pemfile_certs(pem: &mut &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .expect("PEM certificates")
}
