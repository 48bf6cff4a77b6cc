//! The connector the builder installs when plain TCP to the announced address is not
//! enough: an address map (NAT, Docker, port-forwards) and/or TLS (feature `tls`).
//!
//! Addresses stay as the cluster announces them everywhere above this (topology, MOVED,
//! stats); only the socket is opened to the mapped address, and TLS checks the announced
//! name. Host names are resolved again on every connect (`TcpStream::connect` asks the
//! resolver each time), so a node whose name moved to a new IP is found on reconnect.

use std::fmt;
use std::sync::Arc;

#[cfg(feature = "tls")]
use super::connect::Stream;
use super::connect::{Connect, ConnectFuture, TcpConnect};
use crate::error::{Error, ErrorKind};

/// `ClientBuilder::address_map`'s function: announced (host, port) -> address to dial.
pub(crate) type AddressMap = Arc<dyn Fn(&str, u16) -> (String, u16) + Send + Sync>;

/// TLS for every connection: the rustls configuration and the name rules.
#[cfg(feature = "tls")]
#[derive(Clone)]
pub(crate) struct TlsDial {
    /// The handshake side of the client's `TlsConfig`.
    pub(crate) connector: tokio_rustls::TlsConnector,
    /// `TlsConfig::server_name`.
    pub(crate) name_override: Option<String>,
    /// The first seed given by host name: what a node announcing only an IP is checked as.
    pub(crate) seed_name: Option<String>,
}

/// Address map and/or TLS in front of TCP.
#[derive(Clone, Default)]
pub(crate) struct Dial {
    /// Where to really connect for an announced address.
    pub(crate) map: Option<AddressMap>,
    /// TLS on every connection.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<TlsDial>,
}

impl fmt::Debug for Dial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Dial");
        d.field("address_map", &self.map.is_some());
        #[cfg(feature = "tls")]
        d.field("tls", &self.tls.is_some());
        d.finish()
    }
}

/// `host:port` -> (host without IPv6 brackets, port).
pub(crate) fn split_addr(addr: &str) -> Result<(&str, u16), Error> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| Error::new(ErrorKind::Config, format!("address {addr:?} has no port")))?;
    let port = port
        .parse()
        .map_err(|_| Error::new(ErrorKind::Config, format!("address {addr:?}: bad port")))?;
    Ok((host.trim_start_matches('[').trim_end_matches(']'), port))
}

fn join_addr(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl Connect for Dial {
    fn connect<'a>(&'a self, addr: &'a str) -> ConnectFuture<'a> {
        Box::pin(async move {
            let (host, port) = split_addr(addr)?;
            let target = match &self.map {
                Some(map) => {
                    let (h, p) = map(host, port);
                    join_addr(&h, p)
                }
                None => addr.to_string(),
            };
            let stream = TcpConnect.connect(&target).await.map_err(|e| {
                if target == addr {
                    e
                } else {
                    Error::new(e.kind(), format!("{addr} (dialled as {target}): {e}"))
                }
            })?;
            #[cfg(feature = "tls")]
            if let Some(tls) = &self.tls {
                let tcp = match stream {
                    Stream::Tcp(tcp) => tcp,
                    other => return Ok(other),
                };
                let name = crate::client::tls::server_name_for(
                    host,
                    tls.name_override.as_deref(),
                    tls.seed_name.as_deref(),
                )?;
                let tls_stream = tls
                    .connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| crate::client::tls::handshake_error(addr, &e))?;
                let (tcp, session) = tls_stream.into_inner();
                return Ok(Stream::Tls(tcp, Box::new(session)));
            }
            Ok(stream)
        })
    }
}
