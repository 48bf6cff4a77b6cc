//! The two halves of a connection's stream, and what plain TCP allows beyond `AsyncRead` /
//! `AsyncWrite`: socket options, a non-blocking direct write, a hang-up probe that does not
//! read, and a read that asks the socket whatever tokio last heard.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWrite};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use super::connect::{AsyncStream, Stream};

/// How long a peer may stay silent before the kernel gives up on it (see
/// [`watch_liveness`]).
pub(super) const PEER_SILENCE_LIMIT: Duration = Duration::from_secs(30);

/// Let the kernel notice a server that vanished without a reset (host down, network path
/// gone): keepalive probes once an idle connection has been silent for
/// [`PEER_SILENCE_LIMIT`] (every 10 s, 3 of them), and, on Linux, data left unacknowledged
/// that long aborts the connection (`TCP_USER_TIMEOUT`). The reader then sees the error and
/// the pool reconnects. A stopped but reachable server still acknowledges data, so slow or
/// blocking commands are not affected. Best effort: a refused option is ignored.
pub(super) fn watch_liveness(stream: &TcpStream) {
    use rustix::net::sockopt;
    let _ = sockopt::set_socket_keepalive(stream, true);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let _ = sockopt::set_tcp_keepidle(stream, PEER_SILENCE_LIMIT);
        let _ = sockopt::set_tcp_keepintvl(stream, Duration::from_secs(10));
        let _ = sockopt::set_tcp_keepcnt(stream, 3);
        let _ = sockopt::set_tcp_user_timeout(stream, PEER_SILENCE_LIMIT.as_millis() as u32);
    }
}

/// The end of the stream, as an I/O error.
pub(super) fn closed_by_server() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "connection closed by the server",
    )
}

/// Whether the server has closed or reset `stream`, without reading from it.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn peer_hung_up(stream: &TcpStream) -> Option<std::io::Error> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(stream, PollFlags::RDHUP)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match poll(&mut fds, Some(&now)) {
        Ok(n) if n > 0 => {
            let seen = fds[0].revents();
            if seen.contains(PollFlags::ERR) {
                Some(std::io::ErrorKind::ConnectionReset.into())
            } else if seen.intersects(PollFlags::RDHUP | PollFlags::HUP) {
                Some(closed_by_server())
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Whether the server has closed or reset `stream`: elsewhere only a close with nothing
/// left to read is seen (a one-byte `MSG_PEEK` that finds the end of the stream).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn peer_hung_up(stream: &TcpStream) -> Option<std::io::Error> {
    use rustix::net::{recv, RecvFlags};
    let mut byte = [0u8; 1];
    match recv(stream, &mut byte[..], RecvFlags::PEEK | RecvFlags::DONTWAIT) {
        Ok((0, _)) => Some(closed_by_server()),
        Ok(_) => None,
        Err(e) if e == rustix::io::Errno::AGAIN => None,
        Err(e) => Some(e.into()),
    }
}

type OtherRead = tokio::io::ReadHalf<Box<dyn AsyncStream>>;
type OtherWrite = tokio::io::WriteHalf<Box<dyn AsyncStream>>;

/// The read half, owned by the reader task.
pub(super) enum ReadHalf {
    Tcp(OwnedReadHalf),
    #[cfg(feature = "tls")]
    Tls(super::tls_stream::TlsRead),
    Other(OtherRead),
}

/// The write half, shared by the writer task and (on TCP) callers that write directly.
pub(super) enum WriteHalf {
    Tcp(OwnedWriteHalf),
    /// TLS on TCP: the direct path too (the session seals, the socket is written at once).
    #[cfg(feature = "tls")]
    Tls(super::tls_stream::TlsWrite),
    /// Only the duty holder touches it, and never across an await: the lock is uncontended.
    Other(Mutex<OtherWrite>),
}

/// Split a stream into the halves the reader and writer use.
pub(super) fn split(stream: Stream) -> (ReadHalf, WriteHalf) {
    match stream {
        Stream::Tcp(s) => {
            let (r, w) = s.into_split();
            (ReadHalf::Tcp(r), WriteHalf::Tcp(w))
        }
        #[cfg(feature = "tls")]
        Stream::Tls(tcp, session) => {
            let (r, w) = super::tls_stream::split(tcp, *session);
            (ReadHalf::Tls(r), WriteHalf::Tls(w))
        }
        Stream::Other(s) => {
            let (r, w) = tokio::io::split(s);
            (ReadHalf::Other(r), WriteHalf::Other(Mutex::new(w)))
        }
    }
}

impl ReadHalf {
    /// Read what is there into `buf`, waiting for at least one byte (0 = end of stream).
    pub(super) async fn read_buf(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        match self {
            ReadHalf::Tcp(s) => s.read_buf(buf).await,
            #[cfg(feature = "tls")]
            ReadHalf::Tls(s) => s.read_buf(buf).await,
            ReadHalf::Other(s) => s.read_buf(buf).await,
        }
    }

    /// One non-blocking read straight from the socket into `buf`, whatever tokio last heard
    /// from epoll (its own `try_read` answers `WouldBlock` without asking the socket once a
    /// short read has cleared its readiness). Other streams say `WouldBlock`.
    pub(super) fn read_now(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        match self {
            #[cfg(unix)]
            ReadHalf::Tcp(s) => {
                let mut chunk = [0u8; 16 * 1024];
                match rustix::io::read(s.as_ref(), &mut chunk[..]) {
                    Ok(n) => {
                        buf.extend_from_slice(&chunk[..n]);
                        Ok(n)
                    }
                    Err(e) => Err(e.into()),
                }
            }
            #[cfg(not(unix))]
            ReadHalf::Tcp(s) => s.try_read_buf(buf),
            #[cfg(feature = "tls")]
            ReadHalf::Tls(s) => s.read_now(buf),
            ReadHalf::Other(_) => Err(std::io::ErrorKind::WouldBlock.into()),
        }
    }

    /// Whether the server has closed or reset the stream (TCP only; others say no).
    pub(super) fn hung_up(&self) -> Option<std::io::Error> {
        match self {
            ReadHalf::Tcp(s) => peer_hung_up(s.as_ref()),
            #[cfg(feature = "tls")]
            ReadHalf::Tls(s) => peer_hung_up(s.tcp()),
            ReadHalf::Other(_) => None,
        }
    }
}

impl WriteHalf {
    /// Whether a caller may write on it directly with [`try_write`](Self::try_write).
    pub(super) fn direct(&self) -> bool {
        !matches!(self, WriteHalf::Other(_))
    }

    /// Bytes taken by [`try_write`](Self::try_write) or [`write_all`](Self::write_all) that
    /// have not gone out yet (TLS records sealed while the socket was full); the duty holder
    /// flushes them before giving the duty back.
    pub(super) fn backlog(&self) -> bool {
        match self {
            #[cfg(feature = "tls")]
            WriteHalf::Tls(s) => s.backlog(),
            _ => false,
        }
    }

    /// One non-blocking write; 0 when nothing went out (would block, an error the writer
    /// task will meet again, or a stream without a direct path).
    pub(super) fn try_write(&self, bytes: &[u8]) -> usize {
        match self {
            WriteHalf::Tcp(s) => s.try_write(bytes).unwrap_or(0),
            #[cfg(feature = "tls")]
            WriteHalf::Tls(s) => s.try_write(bytes),
            WriteHalf::Other(_) => 0,
        }
    }

    /// Write all of `buf` (and flush it, for streams that buffer).
    pub(super) async fn write_all(&self, buf: &mut BytesMut) -> std::io::Result<()> {
        match self {
            WriteHalf::Tcp(stream) => {
                while !buf.is_empty() {
                    stream.writable().await?;
                    match stream.try_write(buf) {
                        Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                        Ok(n) => buf.advance(n),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
            #[cfg(feature = "tls")]
            WriteHalf::Tls(s) => s.write_all(buf).await,
            WriteHalf::Other(m) => {
                poll_fn(|cx| {
                    let mut w = m.lock().unwrap_or_else(|p| p.into_inner());
                    while !buf.is_empty() {
                        match Pin::new(&mut *w).poll_write(cx, buf) {
                            Poll::Ready(Ok(0)) => {
                                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()))
                            }
                            Poll::Ready(Ok(n)) => buf.advance(n),
                            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                            Poll::Pending => return Poll::Pending,
                        }
                    }
                    Pin::new(&mut *w).poll_flush(cx)
                })
                .await
            }
        }
    }

    /// Whether the server has closed or reset the stream, without reading (TCP only).
    pub(super) fn hung_up(&self) -> Option<std::io::Error> {
        match self {
            WriteHalf::Tcp(s) => peer_hung_up(s.as_ref()),
            #[cfg(feature = "tls")]
            WriteHalf::Tls(s) => peer_hung_up(s.tcp()),
            WriteHalf::Other(_) => None,
        }
    }

    /// The TCP socket, for tests that check its options.
    #[cfg(test)]
    pub(super) fn tcp(&self) -> Option<&TcpStream> {
        match self {
            WriteHalf::Tcp(s) => Some(s.as_ref()),
            #[cfg(feature = "tls")]
            WriteHalf::Tls(s) => Some(s.tcp()),
            WriteHalf::Other(_) => None,
        }
    }
}
