//! TLS for the bundled cluster (feature `tls`): [`ServerTls`] holds a node certificate, its
//! key and the CA that signed it — given as PEM, or generated on the spot for tests — and
//! turns them into the rustls acceptor for client connections and the connector for the
//! links nodes open to each other (replication, MIGRATE), as `tls-replication yes` and
//! `tls-cluster yes` do in Redis.

use std::fmt;
use std::io;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// Whether a TLS listener asks clients for a certificate (`tls-auth-clients`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TlsAuthClients {
    /// Every client must present a certificate signed by the CA (mutual TLS; Redis' default).
    Yes,
    /// Clients are not asked for a certificate.
    No,
    /// A certificate is checked when a client presents one; clients without one are let in.
    /// The default for [`ServerTls`], so plain `rediss://` clients and mutual TLS both work.
    #[default]
    Optional,
}

impl TlsAuthClients {
    /// `yes`, `no` or `optional`, as `tls-auth-clients` takes them.
    pub fn parse(text: &str) -> Option<TlsAuthClients> {
        match text.to_ascii_lowercase().as_str() {
            "yes" => Some(TlsAuthClients::Yes),
            "no" => Some(TlsAuthClients::No),
            "optional" => Some(TlsAuthClients::Optional),
            _ => None,
        }
    }
}

/// A generated CA, kept so tests can sign client certificates with it.
struct TestCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

/// TLS settings for every node of a cluster: one node certificate (valid for all nodes'
/// addresses), its key, and the CA that clients and other nodes check it against.
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// use redcluster::server::{ServerTls, TestCluster};
/// let tls = ServerTls::generate()?; // a test CA and a certificate for 127.0.0.1/localhost
/// let ca_pem = tls.ca_pem().to_string(); // trust this in the client
/// let cluster = TestCluster::builder().tls(tls).start().await?;
/// # let _ = (ca_pem, cluster); Ok(()) }
/// ```
#[derive(Clone)]
pub struct ServerTls {
    cert_pem: String,
    key_pem: String,
    ca_pem: String,
    auth_clients: TlsAuthClients,
    ca: Option<Arc<TestCa>>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("auth_clients", &self.auth_clients)
            .field("key_pem", &"<redacted>")
            .field("generated_ca", &self.ca.is_some())
            .finish_non_exhaustive()
    }
}

fn invalid(what: impl fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what.to_string())
}

fn rcgen_err(e: rcgen::Error) -> io::Error {
    io::Error::other(format!("generating a test certificate: {e}"))
}

impl ServerTls {
    /// Use a node certificate chain, its private key and the CA to trust (all PEM), as
    /// `tls-cert-file`, `tls-key-file` and `tls-ca-cert-file` do. The certificate must be
    /// valid for the address other nodes dial (127.0.0.1) for replication links to verify.
    ///
    /// # Errors
    /// `InvalidInput` when a PEM holds no certificate or key (the key is never shown).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8], ca_pem: &[u8]) -> io::Result<ServerTls> {
        let tls = ServerTls {
            cert_pem: String::from_utf8_lossy(cert_pem).into_owned(),
            key_pem: String::from_utf8_lossy(key_pem).into_owned(),
            ca_pem: String::from_utf8_lossy(ca_pem).into_owned(),
            auth_clients: TlsAuthClients::default(),
            ca: None,
        };
        tls.node_tls(false)?;
        Ok(tls)
    }

    /// Generate a test CA and a node certificate valid for `127.0.0.1`, `::1` and
    /// `localhost`.
    ///
    /// # Errors
    /// When key generation fails.
    pub fn generate() -> io::Result<ServerTls> {
        ServerTls::generate_for(&[])
    }

    /// [`generate`](Self::generate), with `names` (host names or IPs, for example the
    /// hostnames the nodes announce) added to the node certificate.
    ///
    /// # Errors
    /// When key generation fails or a name is not a valid DNS name.
    pub fn generate_for(names: &[&str]) -> io::Result<ServerTls> {
        let mut params = rcgen::CertificateParams::new(Vec::new()).map_err(rcgen_err)?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "redcluster test CA");
        let key = rcgen::KeyPair::generate().map_err(rcgen_err)?;
        let cert = params.self_signed(&key).map_err(rcgen_err)?;
        let ca = TestCa { cert, key };
        let mut all = vec!["127.0.0.1", "::1", "localhost"];
        all.extend_from_slice(names);
        let (cert_pem, key_pem) = ca.issue("redcluster node", &all)?;
        Ok(ServerTls {
            cert_pem,
            key_pem,
            ca_pem: ca.cert.pem(),
            auth_clients: TlsAuthClients::default(),
            ca: Some(Arc::new(ca)),
        })
    }

    /// Whether clients must present a certificate (default [`TlsAuthClients::Optional`]).
    pub fn auth_clients(mut self, mode: TlsAuthClients) -> Self {
        self.auth_clients = mode;
        self
    }

    /// The CA certificate (PEM) that signed the node certificate: what clients trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The node certificate (PEM), for handing to other servers in tests.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The node certificate's private key (PEM), for handing to other servers in tests.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// A client certificate and key (PEM) for `name`, signed by the generated CA, for
    /// mutual TLS tests. `None` when the CA was given as PEM (its key is not known).
    ///
    /// # Errors
    /// When key generation fails.
    pub fn client_cert(&self, name: &str) -> io::Result<Option<(String, String)>> {
        match &self.ca {
            Some(ca) => ca.issue(name, &[]).map(Some),
            None => Ok(None),
        }
    }

    /// The acceptor and link connector every node uses.
    pub(crate) fn node_tls(&self, links: bool) -> io::Result<Arc<NodeTls>> {
        let certs = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("TLS certificate file: {e}")))?;
        if certs.is_empty() {
            return Err(invalid("TLS certificate file holds no certificate"));
        }
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|_| invalid("TLS key file holds no readable private key"))?;
        let mut roots = RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            let ca = ca.map_err(|e| invalid(format!("TLS CA file: {e}")))?;
            roots
                .add(ca)
                .map_err(|e| invalid(format!("TLS CA file: {e}")))?;
        }
        if roots.is_empty() {
            return Err(invalid("TLS CA file holds no certificate"));
        }
        let roots = Arc::new(roots);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(invalid)?;
        let server = match self.auth_clients {
            TlsAuthClients::No => server.with_no_client_auth(),
            mode => {
                let mut verifier =
                    WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone());
                if mode == TlsAuthClients::Optional {
                    verifier = verifier.allow_unauthenticated();
                }
                server.with_client_cert_verifier(verifier.build().map_err(invalid)?)
            }
        }
        .with_single_cert(certs.clone(), key.clone_key())
        .map_err(|e| invalid(format!("TLS certificate and key: {e}")))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(invalid)?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(|e| invalid(format!("TLS certificate and key: {e}")))?;
        Ok(Arc::new(NodeTls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
            connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
            links,
        }))
    }
}

impl TestCa {
    /// A certificate for `names` (the first is its common name) and its key, as PEM.
    fn issue(&self, common_name: &str, names: &[&str]) -> io::Result<(String, String)> {
        let sans: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(sans).map_err(rcgen_err)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        let key = rcgen::KeyPair::generate().map_err(rcgen_err)?;
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .map_err(rcgen_err)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// What a node keeps of its TLS settings.
pub(crate) struct NodeTls {
    /// Handshakes on the node's TLS port.
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
    /// Dials other nodes (presenting the node certificate as a client certificate).
    pub(crate) connector: tokio_rustls::TlsConnector,
    /// Replication and MIGRATE links use TLS (`tls-replication` / `tls-cluster`).
    pub(crate) links: bool,
}

impl fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeTls")
            .field("links", &self.links)
            .finish_non_exhaustive()
    }
}
