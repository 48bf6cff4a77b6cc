//! TLS over the two halves of a TCP socket (feature `tls`), so a TLS connection keeps the
//! plaintext fast paths: a caller on an idle connection encrypts and writes at once, and the
//! reader reads as much ciphertext as the socket holds in one syscall.
//!
//! The handshake is tokio-rustls'; after it the rustls session is taken out and shared by the
//! reader and the write-duty holder behind one short, never-awaited lock. Only the duty
//! holder encrypts and writes, so records go out in the order they were sealed; the reader
//! only decrypts. Anything rustls wants to send on its own (an alert, a key-update answer)
//! waits in the session for the next write ([`TlsWrite::backlog`] makes the writer flush it).

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Buf, BytesMut};
use rustls::ClientConnection;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Ciphertext read per syscall (rustls' own reads take 4 KiB at a time).
const READ_CHUNK: usize = 64 * 1024;

type Session = Arc<Mutex<ClientConnection>>;

fn lock(session: &Session) -> MutexGuard<'_, ClientConnection> {
    session.lock().unwrap_or_else(|p| p.into_inner())
}

/// Split an established TLS connection into the reader's and the writer's halves.
pub(super) fn split(tcp: TcpStream, session: ClientConnection) -> (TlsRead, TlsWrite) {
    let (r, w) = tcp.into_split();
    let session = Arc::new(Mutex::new(session));
    (
        TlsRead {
            tcp: r,
            session: session.clone(),
            cipher: vec![0; READ_CHUNK].into_boxed_slice(),
        },
        TlsWrite { tcp: w, session },
    )
}

/// The reader's half: ciphertext from the socket, plaintext out of the session.
pub(super) struct TlsRead {
    tcp: OwnedReadHalf,
    session: Session,
    cipher: Box<[u8]>,
}

impl TlsRead {
    /// Read plaintext into `buf`, waiting for at least one byte (0 = end of stream: the
    /// server's close_notify, or the socket closed).
    pub(super) async fn read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        loop {
            if let Some(n) = self.plaintext(buf)? {
                return Ok(n);
            }
            let n = self.tcp.read(&mut self.cipher).await?;
            if let Some(n) = self.absorb(n, buf)? {
                return Ok(n);
            }
        }
    }

    /// One non-blocking read: what the session already holds, else what the socket holds
    /// right now; `WouldBlock` when neither has anything.
    pub(super) fn read_now(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        if let Some(n) = self.plaintext(buf)? {
            return Ok(n);
        }
        let n = rustix::io::read(self.tcp.as_ref(), &mut self.cipher[..])?;
        self.absorb(n, buf)?
            .ok_or_else(|| io::ErrorKind::WouldBlock.into())
    }

    /// The socket, for the hang-up probe.
    pub(super) fn tcp(&self) -> &TcpStream {
        self.tcp.as_ref()
    }

    /// Plaintext the session already decrypted: `Some(n)` when there was some (or the
    /// stream ended: `Some(0)`), `None` when more ciphertext is needed.
    fn plaintext(&self, buf: &mut BytesMut) -> io::Result<Option<usize>> {
        let mut session = lock(&self.session);
        drain(&mut session, buf)
    }

    /// Feed the `n` bytes just read (0: the socket closed) to the session and take out the
    /// plaintext they complete; `None` when they completed none.
    fn absorb(&self, n: usize, buf: &mut BytesMut) -> io::Result<Option<usize>> {
        let mut session = lock(&self.session);
        let mut cipher = &self.cipher[..n];
        let mut got = 0;
        loop {
            // Zero bytes fed tells rustls the socket closed (a close without close_notify is
            // then an error from the reader, which ends the connection just the same).
            if n == 0 || !cipher.is_empty() {
                session.read_tls(&mut cipher)?;
            }
            session
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            match drain(&mut session, buf) {
                Ok(Some(0)) => return Ok(Some(got)),
                Ok(Some(k)) => got += k,
                Ok(None) => {}
                Err(e) if n == 0 && e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Ok(Some(got))
                }
                Err(e) => return Err(e),
            }
            if n == 0 {
                return Ok(Some(got));
            }
            if cipher.is_empty() {
                return Ok((got > 0).then_some(got));
            }
        }
    }
}

/// Move the session's decrypted plaintext into `buf`.
fn drain(session: &mut ClientConnection, buf: &mut BytesMut) -> io::Result<Option<usize>> {
    let mut chunk = [0u8; 16 * 1024];
    let mut got = 0;
    loop {
        match session.reader().read(&mut chunk) {
            Ok(0) => return Ok(Some(got)),
            Ok(k) => {
                buf.extend_from_slice(&chunk[..k]);
                got += k;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok((got > 0).then_some(got)),
            Err(e) => return Err(e),
        }
    }
}

/// The writer's half. Only the write-duty holder calls it.
pub(super) struct TlsWrite {
    tcp: OwnedWriteHalf,
    session: Session,
}

/// The write half as `std::io::Write` for rustls: non-blocking writes.
struct Socket<'a>(&'a OwnedWriteHalf);

impl Write for Socket<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// How far a non-blocking flush of sealed records got.
enum Flushed {
    All,
    WouldBlock,
}

impl TlsWrite {
    /// Seal what of `bytes` the session takes and send what the socket takes now; returns
    /// how much plaintext was taken. Sealed records the socket did not take stay in the
    /// session ([`backlog`](Self::backlog)) for the writer task.
    pub(super) fn try_write(&self, bytes: &[u8]) -> usize {
        let mut session = lock(&self.session);
        let taken = session.writer().write(bytes).unwrap_or(0);
        let _ = self.flush_now(&mut session);
        taken
    }

    /// Sealed records waiting to go out.
    pub(super) fn backlog(&self) -> bool {
        lock(&self.session).wants_write()
    }

    /// Seal and send all of `buf`, and whatever was sealed before it.
    pub(super) async fn write_all(&self, buf: &mut BytesMut) -> io::Result<()> {
        loop {
            {
                let mut session = lock(&self.session);
                if !buf.is_empty() {
                    let n = session.writer().write(buf)?;
                    buf.advance(n);
                }
                if let Flushed::All = self.flush_now(&mut session)? {
                    if buf.is_empty() {
                        return Ok(());
                    }
                    // The session's buffer was full: seal the rest now there is room.
                    continue;
                }
            }
            self.tcp.writable().await?;
        }
    }

    fn flush_now(&self, session: &mut ClientConnection) -> io::Result<Flushed> {
        while session.wants_write() {
            match session.write_tls(&mut Socket(&self.tcp)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flushed::WouldBlock),
                Err(e) => return Err(e),
            }
        }
        Ok(Flushed::All)
    }

    /// The socket, for the hang-up probe.
    pub(super) fn tcp(&self) -> &TcpStream {
        self.tcp.as_ref()
    }
}

#[cfg(all(test, feature = "server"))]
mod tests {
    use std::time::Duration;

    use bytes::BytesMut;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::{split, TlsRead, TlsWrite};
    use crate::server::ServerTls;

    /// A TLS pair over loopback: our halves on the client side, tokio-rustls on the server's.
    async fn pair() -> (
        TlsRead,
        TlsWrite,
        tokio_rustls::server::TlsStream<TcpStream>,
    ) {
        let tls = ServerTls::generate().unwrap().node_tls(false).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tls.acceptor.clone();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            acceptor.accept(tcp).await.unwrap()
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        // A small send buffer, so the socket fills after a few records.
        rustix::net::sockopt::set_socket_send_buffer_size(&tcp, 4096).unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let client = tls.connector.connect(name, tcp).await.unwrap();
        let (tcp, session) = client.into_inner();
        let (r, w) = split(tcp, session);
        (r, w, server.await.unwrap())
    }

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    #[tokio::test]
    async fn records_sealed_while_the_socket_is_full_go_out_with_the_next_flush() {
        let (_r, w, mut server) = pair().await;
        // The server reads nothing yet: write until sealed records are left waiting.
        let data = pattern(4 << 20);
        let mut taken = 0;
        while !w.backlog() {
            assert!(taken < data.len(), "the socket never filled");
            taken += w.try_write(&data[taken..(taken + 16 * 1024).min(data.len())]);
        }
        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; taken];
            server.read_exact(&mut got).await.unwrap();
            got
        });
        // What the writer task does with a backlog and nothing new.
        tokio::time::timeout(Duration::from_secs(10), w.write_all(&mut BytesMut::new()))
            .await
            .expect("the backlog was flushed")
            .unwrap();
        assert!(!w.backlog());
        let got = reader.await.unwrap();
        assert!(got == data[..taken], "bytes arrive whole and in order");
    }

    #[tokio::test]
    async fn large_replies_then_close_notify_read_whole_then_end() {
        let (mut r, _w, mut server) = pair().await;
        let data = pattern(3 << 20);
        let sent = data.clone();
        tokio::spawn(async move {
            server.write_all(&sent).await.unwrap();
            server.shutdown().await.unwrap();
        });
        let mut buf = BytesMut::new();
        loop {
            let n = tokio::time::timeout(Duration::from_secs(10), r.read_buf(&mut buf))
                .await
                .expect("reads end")
                .unwrap();
            if n == 0 {
                break;
            }
        }
        assert_eq!(buf.len(), data.len());
        assert!(buf[..] == data[..]);
        // After the end, a non-blocking read still says end, not "nothing yet".
        assert_eq!(r.read_now(&mut buf).unwrap(), 0);
    }
}
