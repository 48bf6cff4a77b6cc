//! A node's socket, plaintext or TLS: what client connections, replication links and MIGRATE
//! links read and write, so that TLS is decided once, where the socket is opened.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::node::NodeConfig;

/// One connection of a node, either side (accepted or dialled).
#[derive(Debug)]
pub(crate) enum Stream {
    /// Plaintext TCP.
    Tcp(TcpStream),
    /// TLS over TCP (accepted or dialled).
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
}

impl Stream {
    /// The TCP socket underneath.
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Tcp(s) => s,
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.get_ref().0,
        }
    }

    /// True for TLS connections (CLUSTER SLOTS and MOVED then give TLS ports).
    pub(crate) fn is_tls(&self) -> bool {
        !matches!(self, Stream::Tcp(_))
    }

    /// The address of the other side.
    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().peer_addr()
    }

    /// Wrap an accepted socket: a TLS handshake (bounded by `timeout`) when it arrived on
    /// the node's TLS port, else the socket as it is.
    ///
    /// # Errors
    /// A failed or timed-out handshake (the connection is then dropped, as Redis does).
    pub(crate) async fn accept(
        tcp: TcpStream,
        config: &NodeConfig,
        tls_port: bool,
        timeout: Duration,
    ) -> io::Result<Stream> {
        #[cfg(feature = "tls")]
        if let (true, Some(tls)) = (tls_port, config.tls.as_ref()) {
            let accepted = tokio::time::timeout(timeout, tls.acceptor.accept(tcp))
                .await
                .map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")
                })??;
            return Ok(Stream::Tls(Box::new(accepted.into())));
        }
        let _ = (config, tls_port, timeout);
        Ok(Stream::Tcp(tcp))
    }

    /// Dial another node at `addr` (host, port) within `timeout`, with TLS when the node's
    /// links use it (`tls-replication` / `tls-cluster`).
    ///
    /// # Errors
    /// Connect or handshake failures; `TimedOut` when `timeout` passes.
    pub(crate) async fn connect(
        host: &str,
        port: u16,
        config: &NodeConfig,
        timeout: Duration,
    ) -> io::Result<Stream> {
        let work = async {
            let tcp = TcpStream::connect((host, port)).await?;
            let _ = tcp.set_nodelay(true);
            #[cfg(feature = "tls")]
            if let Some(tls) = config.tls.as_ref().filter(|t| t.links) {
                let name = rustls::pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let s = tls.connector.connect(name, tcp).await?;
                return Ok(Stream::Tls(Box::new(s.into())));
            }
            let _ = config;
            Ok(Stream::Tcp(tcp))
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Stream::Tcp($s) => $e,
            #[cfg(feature = "tls")]
            Stream::Tls($s) => $e,
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Tcp(s) => s.is_write_vectored(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_shutdown(cx))
    }
}
