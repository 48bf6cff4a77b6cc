//! [`TlsConfig`]: TLS for every connection the client opens (feature `tls`; rustls, no
//! OpenSSL).
//!
//! Trust: [`TlsConfig::new`] trusts the platform's certificate store (through
//! `rustls-native-certs`), or, with the `tls-webpki-roots` feature, the Mozilla root set
//! compiled into the binary (for containers without a CA bundle). [`TlsConfig::ca_pem`] adds
//! a private CA, as managed services and self-signed test clusters need.
//!
//! Names: certificates are checked against the node's announced hostname when the cluster
//! announces one (`cluster-preferred-endpoint-type hostname`), else against the host name
//! the seed was given by (so a cluster announcing IPs behind `redis.example.com` is checked
//! as `redis.example.com`); [`TlsConfig::server_name`] overrides both.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Once};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, ErrorKind};

/// TLS settings for a client: whom to trust, an optional client certificate, and the
/// name to check. Made with [`TlsConfig::new`], given to `ClientBuilder::tls`.
///
/// ```no_run
/// # async fn f(ca: &[u8]) -> Result<(), redcluster::Error> {
/// let client = redcluster::Client::from_url("rediss://app:secret@redis.example.com:6379")?
///     .tls(redcluster::TlsConfig::new().ca_pem(ca))
///     .build()
///     .await?;
/// # let _ = client; Ok(()) }
/// ```
#[derive(Clone)]
#[must_use]
pub struct TlsConfig {
    platform_roots: bool,
    extra_roots: Vec<Vec<u8>>,
    client_cert: Option<(Vec<u8>, Vec<u8>)>,
    server_name: Option<String>,
    accept_invalid: bool,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("platform_roots", &self.platform_roots)
            .field("extra_roots", &self.extra_roots.len())
            .field(
                "client_cert",
                &self.client_cert.as_ref().map(|_| "<key redacted>"),
            )
            .field("server_name", &self.server_name)
            .field("accept_invalid_certs", &self.accept_invalid)
            .finish()
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig::new()
    }
}

impl TlsConfig {
    /// Verify servers against the platform's trusted roots (or the compiled-in Mozilla set
    /// with the `tls-webpki-roots` feature), checking names; no client certificate.
    pub fn new() -> TlsConfig {
        TlsConfig {
            platform_roots: true,
            extra_roots: Vec::new(),
            client_cert: None,
            server_name: None,
            accept_invalid: false,
        }
    }

    /// Also trust the CA certificate(s) in `pem` (a managed service's or a test cluster's).
    pub fn ca_pem(mut self, pem: &[u8]) -> TlsConfig {
        self.extra_roots.push(pem.to_vec());
        self
    }

    /// Present this certificate chain and private key (PEM) for mutual TLS
    /// (`tls-auth-clients yes`). The key never appears in Debug output or errors.
    pub fn client_cert_pem(mut self, cert: &[u8], key: &[u8]) -> TlsConfig {
        self.client_cert = Some((cert.to_vec(), key.to_vec()));
        self
    }

    /// Check every node's certificate against `name` (and send it as SNI) instead of the
    /// node's own host name: for clusters whose nodes share one certificate.
    pub fn server_name(mut self, name: &str) -> TlsConfig {
        self.server_name = Some(name.to_string());
        self
    }

    /// Accept any certificate, unchecked: FOR LOCAL TESTING ONLY — it gives up the
    /// protection TLS exists for. A warning is logged (once per process) when a client is
    /// built with it.
    pub fn danger_accept_invalid_certs(mut self) -> TlsConfig {
        self.accept_invalid = true;
        self
    }

    /// The name given by [`server_name`](Self::server_name), if any.
    pub(crate) fn name_override(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// The rustls configuration these settings describe.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for unreadable PEM, or when nothing at all is trusted.
    pub(crate) fn build(&self) -> Result<Arc<ClientConfig>, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_err(format!("TLS: {e}")))?;
        let builder = if self.accept_invalid {
            static WARN: Once = Once::new();
            WARN.call_once(|| {
                tracing::warn!(
                    "TLS certificate checks are OFF (danger_accept_invalid_certs): any server \
                     can impersonate the cluster; use this for local testing only"
                );
            });
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        } else {
            builder.with_root_certificates(self.roots()?)
        };
        let config = match &self.client_cert {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = CertificateDer::pem_slice_iter(cert)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| config_err(format!("TLS client certificate: {e}")))?;
                if chain.is_empty() {
                    return Err(config_err(
                        "TLS client certificate PEM holds no certificate",
                    ));
                }
                let key = PrivateKeyDer::from_pem_slice(key)
                    .map_err(|_| config_err("TLS client key PEM holds no readable private key"))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| config_err(format!("TLS client certificate and key: {e}")))?
            }
        };
        Ok(Arc::new(config))
    }

    fn roots(&self) -> Result<RootCertStore, Error> {
        let mut roots = RootCertStore::empty();
        if self.platform_roots {
            #[cfg(feature = "tls-webpki-roots")]
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            #[cfg(not(feature = "tls-webpki-roots"))]
            {
                let found = rustls_native_certs::load_native_certs();
                let _ = roots.add_parsable_certificates(found.certs);
            }
        }
        for pem in &self.extra_roots {
            let mut any = false;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| config_err(format!("TLS CA PEM: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| config_err(format!("TLS CA certificate: {e}")))?;
                any = true;
            }
            if !any {
                return Err(config_err("TLS CA PEM holds no certificate"));
            }
        }
        if roots.is_empty() {
            return Err(config_err(
                "TLS: no trusted root certificates (the platform store is empty); add one \
                 with TlsConfig::ca_pem",
            ));
        }
        Ok(roots)
    }
}

fn config_err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, msg)
}

/// The name to check `host`'s certificate against: the override, else `host` itself when
/// it is a DNS name, else (an IP announced by the cluster) the seeds' host name when they
/// were given by name, else the IP.
pub(crate) fn server_name_for(
    host: &str,
    name_override: Option<&str>,
    seed_name: Option<&str>,
) -> Result<ServerName<'static>, Error> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = match (name_override, host.parse::<IpAddr>().is_ok(), seed_name) {
        (Some(n), _, _) => n,
        (None, true, Some(seed)) => seed,
        _ => host,
    };
    ServerName::try_from(name.to_string())
        .map_err(|_| config_err(format!("TLS: {name:?} is not a valid server name")))
}

/// Say why a TLS handshake with `node` failed, in words a person can act on.
pub(crate) fn handshake_error(node: &str, e: &std::io::Error) -> Error {
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let reason = match tls {
        Some(rustls::Error::InvalidCertificate(cert)) => {
            use rustls::CertificateError as C;
            match cert {
                C::UnknownIssuer | C::BadSignature => {
                    "its certificate is signed by an unknown CA".to_string()
                }
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    format!("its certificate is not valid for this name ({cert:?})")
                }
                C::Expired | C::ExpiredContext { .. } => "its certificate has expired".into(),
                C::NotValidYet | C::NotValidYetContext { .. } => {
                    "its certificate is not valid yet".into()
                }
                other => format!("its certificate was rejected: {other:?}"),
            }
        }
        Some(
            rustls::Error::InvalidMessage(_)
            | rustls::Error::InappropriateMessage { .. }
            | rustls::Error::InappropriateHandshakeMessage { .. },
        ) => "the server does not speak TLS (a plaintext port?)".to_string(),
        Some(rustls::Error::AlertReceived(alert)) => {
            format!("the server refused the handshake ({alert:?}; a client certificate needed?)")
        }
        Some(other) => other.to_string(),
        None if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the server closed the connection during the handshake (a plaintext port, or a \
             client certificate needed?)"
                .to_string()
        }
        None => e.to_string(),
    };
    Error::io(
        &std::io::Error::new(e.kind(), reason),
        &format!("TLS handshake with {node}"),
        false,
    )
}

/// The verifier of [`TlsConfig::danger_accept_invalid_certs`]: any certificate, any name;
/// handshake signatures are still checked (the server must hold the certificate's key).
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_prefer_override_then_announced_hostname_then_seed_name() {
        let n = |h, o, s| server_name_for(h, o, s).unwrap();
        let name = |t: &str| ServerName::try_from(t.to_string()).unwrap();
        assert_eq!(
            n("node-a.example", None, Some("seed.example")),
            name("node-a.example")
        );
        assert_eq!(
            n("10.0.0.1", None, Some("seed.example")),
            name("seed.example")
        );
        assert_eq!(n("10.0.0.1", None, None), name("10.0.0.1"));
        assert_eq!(
            n("10.0.0.1", Some("shared.example"), None),
            name("shared.example")
        );
        assert_eq!(n("[::1]", None, None), name("::1"));
    }

    #[cfg(feature = "server")]
    #[test]
    fn bad_pem_is_a_config_error_without_the_key() {
        let e = TlsConfig::new().ca_pem(b"not a pem").build().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        let tls = crate::server::ServerTls::generate().unwrap();
        let cfg = TlsConfig::new()
            .ca_pem(tls.ca_pem().as_bytes())
            .client_cert_pem(
                tls.cert_pem().as_bytes(),
                b"-----BEGIN PRIVATE KEY-----\nSECRETKEY\n",
            );
        let e = cfg.build().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(!e.to_string().contains("SECRETKEY"), "{e}");
        assert!(!format!("{cfg:?}").contains("SECRETKEY"));
        TlsConfig::new()
            .ca_pem(tls.ca_pem().as_bytes())
            .client_cert_pem(tls.cert_pem().as_bytes(), tls.key_pem().as_bytes())
            .build()
            .unwrap();
    }
}
