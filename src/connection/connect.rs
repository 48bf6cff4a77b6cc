//! The connect seam: how the pool opens a byte stream to a node.
//!
//! The pool never opens sockets itself; it asks a [`Connect`] for a [`Stream`] and runs the
//! connection (handshake, reader, writer) on whatever comes back. The default,
//! [`TcpConnect`], opens TCP with the options every client socket gets; a TLS connector wraps
//! it and returns the TCP socket with its rustls session as `Stream::Tls`; tests return in-memory streams
//! that stall, hang up mid-reply or answer garbage, with no server at all.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::stream::watch_liveness;
use crate::error::Error;

/// Any bidirectional byte stream a connection can run on (TLS, an in-memory test pipe).
pub(crate) trait AsyncStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> AsyncStream for T {}

/// A connected stream to one node.
#[derive(Debug)]
pub(crate) enum Stream {
    /// Plain TCP: the connection uses socket-level fast paths (a caller on an idle
    /// connection writes directly; the hang-up probe polls the socket).
    Tcp(TcpStream),
    /// TLS on TCP after its handshake (feature `tls`): the same fast paths as `Tcp`, the
    /// rustls session shared by the reader and the writer (`tls_stream.rs`).
    #[cfg(feature = "tls")]
    Tls(TcpStream, Box<rustls::ClientConnection>),
    /// Any other stream: every write goes through the writer task, and there is no hang-up
    /// probe (a broken stream is seen by the reader). Made by the tests' injected
    /// connections.
    #[cfg_attr(not(test), allow(dead_code))]
    Other(Box<dyn AsyncStream>),
}

impl Debug for dyn AsyncStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AsyncStream")
    }
}

/// A boxed future returned by [`Connect::connect`].
pub(crate) type ConnectFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Stream, Error>> + Send + 'a>>;

/// Opens streams to nodes by address. The pool holds one (in its connect options) and calls
/// it for every new connection, so replacing it changes how every node is reached.
pub(crate) trait Connect: Debug + Send + Sync + 'static {
    /// Open a stream to `addr` (`host:port`). The caller bounds the time it takes.
    ///
    /// # Errors
    /// A failure to reach the node, as an [`Error`] marked never sent.
    fn connect<'a>(&'a self, addr: &'a str) -> ConnectFuture<'a>;
}

/// The default connector: TCP with `TCP_NODELAY` and the kernel's liveness checks.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TcpConnect;

impl Connect for TcpConnect {
    fn connect<'a>(&'a self, addr: &'a str) -> ConnectFuture<'a> {
        Box::pin(async move {
            let stream = TcpStream::connect(addr)
                .await
                .map_err(|e| Error::io(&e, &format!("connect to {addr}"), false))?;
            let _ = stream.set_nodelay(true);
            watch_liveness(&stream);
            Ok(Stream::Tcp(stream))
        })
    }
}
