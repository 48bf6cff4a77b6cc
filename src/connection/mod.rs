//! One connection to one node: multiplexed, pipelined, auto-batched.
//!
//! It runs on any [`Stream`] a [`Connect`] opened (plain TCP by default; TLS or a test's
//! in-memory pipe otherwise). Files: `connect.rs` (the seam), `stream.rs` (the halves, socket
//! options, the hang-up probe), `write.rs` (direct writes and the writer task), `read.rs`
//! (the reader task), `tls_stream.rs` (TLS over the TCP halves), `handshake.rs`.
//!
//! Callers encode their command straight into the connection's shared write buffer under a
//! short lock (never held across an await) and get a oneshot receiver for the reply.
//!
//! One task at a time holds the write duty (`State::writing`), so bytes never interleave,
//! and it writes outside the state lock, so callers queueing meanwhile never wait on a
//! syscall. Writing has two paths. On an idle connection (nothing queued, nothing awaiting a
//! reply) the caller takes the duty and writes its bytes itself with one non-blocking
//! `try_write`, which saves a task hop on the latency-bound path of a lone caller. Otherwise
//! a writer task is woken; it yields once, so the callers woken by the same batch of replies
//! can queue their commands too, then takes the buffer and writes everything queued in one
//! syscall (auto-pipelining). Measured on a 3+3 redis-server cluster with 256 concurrent
//! tasks the yield alone took throughput from ~85k to ~230k ops/s, since the write count per
//! batch of replies, not the bytes, is what costs. A reader task decodes replies and
//! completes requests in FIFO order; it reads through tokio's `AsyncRead`, which takes a
//! short read as "drained" and so saves the extra `read` that would only say `EAGAIN`. A
//! caller that stops waiting (its future dropped or timed out) only drops its receiver: the
//! reply is still read and discarded, so the connection never falls out of step.
//!
//! When the socket fails (EOF, reset, a protocol error) every request still waiting is failed
//! with an error that says whether its bytes had been handed to the socket (it may have been
//! applied) or had never left the client.

mod connect;
mod dial;
mod handshake;
mod read;
mod reauth;
mod stream;
#[cfg(feature = "tls")]
mod tls_stream;
mod write;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::sync::{oneshot, Notify};

use crate::credentials::Auth;
use crate::error::{Error, ErrorKind};
use crate::resp::{Limits, Value};

#[cfg(test)]
pub(crate) use connect::ConnectFuture;
pub(crate) use connect::{Connect, Stream, TcpConnect};
#[cfg(feature = "tls")]
pub(crate) use dial::TlsDial;
pub(crate) use dial::{split_addr, AddressMap, Dial};
use stream::WriteHalf;

/// How to open and set up a connection.
#[derive(Clone, Debug)]
pub(crate) struct ConnectOptions {
    /// Speak RESP3 (`HELLO 3`) instead of RESP2.
    pub(crate) resp3: bool,
    /// Where credentials come from (`AUTH`/`HELLO AUTH` on every connection), if any.
    pub(crate) auth: Option<Auth>,
    /// Sent with CLIENT SETNAME (or HELLO SETNAME).
    pub(crate) client_name: Option<String>,
    /// Send READONLY so a replica serves reads for its slots.
    pub(crate) readonly: bool,
    /// `SELECT` this database (standalone deployments; 0 sends nothing).
    pub(crate) database: u32,
    /// Bound on TCP connect plus handshake.
    pub(crate) connect_timeout: Duration,
    /// Decoder bounds for replies.
    pub(crate) limits: Limits,
    /// Opens the stream (TCP by default).
    pub(crate) connector: Arc<dyn Connect>,
    /// Server-assisted client-side caching: the `CLIENT TRACKING` command the handshake
    /// sends, and who hears of invalidations and of the connection's end. Only the pool's
    /// multiplexed connections carry it (dedicated and subscriber ones clear it).
    pub(crate) tracking: Option<Tracking>,
}

/// What a tracking connection needs: the handshake command and the listener.
#[derive(Clone, Debug)]
pub(crate) struct Tracking {
    /// `CLIENT TRACKING ON ...`, sent in the handshake.
    pub(crate) command: Arc<[Vec<u8>]>,
    /// Told of every invalidation push and of the connection's end.
    pub(crate) hook: Arc<dyn TrackingHook>,
}

/// The client-side cache's view of a tracking connection. Both calls come from the
/// connection's own tasks, in the order the server sent things: an invalidation is handed
/// over before any reply read after it is delivered.
pub(crate) trait TrackingHook: Send + Sync + std::fmt::Debug {
    /// An `invalidate` push arrived on connection `conn`: these keys, or `None` for the
    /// whole keyspace (FLUSHALL/FLUSHDB, or the server's tracking table overflowing).
    fn invalidate(&self, conn: u64, keys: Option<&[Value]>);
    /// Connection `conn` failed or closed: whatever was read through it may have missed
    /// invalidations. Called once, after [`ConnTag::is_closed`] turned true.
    fn closed(&self, conn: u64);
}

/// Which connection served a request, for the cache: its id and whether it is still open.
#[derive(Clone)]
pub(crate) struct ConnTag(Arc<Shared>);

impl std::fmt::Debug for ConnTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConnTag({})", self.0.id)
    }
}

impl ConnTag {
    /// The connection's process-unique id (the one [`TrackingHook`] calls name).
    pub(crate) fn id(&self) -> u64 {
        self.0.id
    }

    /// True once the connection failed or closed (the hook's `closed` follows).
    pub(crate) fn is_closed(&self) -> bool {
        self.0.closed.load(Ordering::Acquire)
    }

    /// True when the connection tracks keys for a cache.
    pub(crate) fn tracks(&self) -> bool {
        self.0.tracking.is_some()
    }
}

/// Ids for connections ([`ConnTag::id`]).
static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

impl ConnectOptions {
    /// The user connections authenticate as (`default` for a password alone; `None` without
    /// credentials), for errors that say which user the server refused.
    pub(crate) fn user(&self) -> Option<String> {
        self.auth.as_ref().and_then(Auth::user)
    }
}

impl Default for ConnectOptions {
    /// RESP2, no credentials or name, a primary connection, a 1 s connect bound, default
    /// decoder limits, plain TCP.
    fn default() -> ConnectOptions {
        ConnectOptions {
            resp3: false,
            auth: None,
            client_name: None,
            readonly: false,
            database: 0,
            connect_timeout: Duration::from_secs(1),
            limits: Limits::default(),
            connector: Arc::new(TcpConnect),
            tracking: None,
        }
    }
}

type ReplyTx = oneshot::Sender<Result<Value, Error>>;

/// A request waiting for its reply. `tx` is `None` for replies the client discards (the `OK`
/// of an `ASKING` sent in front of a command).
struct Pending {
    tx: Option<ReplyTx>,
}

struct State {
    /// Encoded commands not yet taken by a writer.
    buf: BytesMut,
    /// Requests whose bytes are in `buf` (never sent), in order.
    queued: Vec<Pending>,
    /// Requests whose bytes were handed to the socket, oldest first.
    in_flight: VecDeque<Pending>,
    /// Set once the connection failed; later requests fail at once with it.
    closed: Option<Error>,
    /// The write duty: true while a caller writes directly or the writer task has been
    /// woken and not yet found the buffer empty. Whoever holds it is the only one writing.
    writing: bool,
}

/// Where a subscriber connection's frames go: pushes, and every frame no request waits for.
pub(crate) type Sink = Box<dyn Fn(Result<Value, Error>) + Send + Sync>;

struct Shared {
    /// Set once a connection becomes a subscriber (see [`Connection::make_subscriber`]).
    sink: std::sync::OnceLock<Sink>,
    state: Mutex<State>,
    wake_writer: Notify,
    pending: AtomicUsize,
    closed: AtomicBool,
    addr: String,
    /// Shared by the writer task and callers that write directly when the connection is
    /// idle (tokio's `try_write` takes `&self`). The read half belongs to the reader task.
    stream: WriteHalf,
    /// When the reader last got bytes, or a writer last checked the peer (see [`now_ns`]).
    last_read: AtomicU64,
    /// Process-unique id ([`ConnTag::id`]).
    id: u64,
    /// The cache listening to this connection's invalidations, if it tracks keys.
    tracking: Option<Arc<dyn TrackingHook>>,
}

/// Nanoseconds since the first call in this process: a cheap timestamp for `last_read`.
fn now_ns() -> u64 {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// How long the reader may have been quiet before a writer checks that the peer is still
/// there (see [`Shared::fail_if_peer_gone`]).
const QUIET_BEFORE_PROBE: Duration = Duration::from_millis(1);

impl Shared {
    /// Before writing on a connection whose reader has been quiet for a while: has the
    /// server already closed or reset it? A hang-up the reader has not yet seen (its task
    /// starved, or the close arrived a moment ago) would otherwise take the next command and
    /// then fail it as "may have been applied" though the server never saw it. The check is
    /// one non-blocking `poll` for a hang-up (`POLLRDHUP`, which sees a close even behind
    /// replies not yet read), made at most once per quiet period, so busy connections never
    /// pay for it.
    ///
    /// Returns true when the peer was gone: the connection is then failed.
    fn fail_if_peer_gone(&self) -> bool {
        let now = now_ns();
        let quiet = now.saturating_sub(self.last_read.load(Ordering::Relaxed));
        if quiet < QUIET_BEFORE_PROBE.as_nanos() as u64 {
            return false;
        }
        // Probe at most once per quiet period.
        self.last_read.store(now, Ordering::Relaxed);
        let Some(gone) = self.stream.hung_up() else {
            return false;
        };
        let err = self.read_error(&gone);
        tracing::warn!(addr = %self.addr, error = %err, "connection lost");
        self.fail_all(err);
        true
    }

    /// [`Connection::send`], for the connection's own tasks too (re-authentication).
    fn send(
        &self,
        discard_first: bool,
        encode: impl FnOnce(&mut BytesMut),
    ) -> Result<ReplyFuture, Error> {
        if self.pending.load(Ordering::Relaxed) == 0 {
            self.fail_if_peer_gone();
        }
        let (tx, rx) = oneshot::channel();
        let next = {
            let mut st = self.lock();
            if let Some(err) = &st.closed {
                return Err(err.clone());
            }
            // Idle connection (nobody writing, nothing queued or awaiting a reply): take the
            // write duty and write from this task at once, saving the hop through the writer
            // task. Busy connections batch in the writer, so concurrent callers share one
            // syscall.
            let idle =
                !st.writing && st.buf.is_empty() && st.in_flight.is_empty() && self.stream.direct();
            encode(&mut st.buf);
            if discard_first {
                st.queued.push(Pending { tx: None });
            }
            st.queued.push(Pending { tx: Some(tx) });
            if idle {
                st.writing = true;
                let st = &mut *st;
                st.in_flight.extend(st.queued.drain(..));
                Next::Write(st.buf.split())
            } else if !std::mem::replace(&mut st.writing, true) {
                Next::WakeWriter
            } else {
                // The duty holder writes these bytes too.
                Next::Nothing
            }
        };
        self.pending
            .fetch_add(1 + usize::from(discard_first), Ordering::Relaxed);
        match next {
            Next::Write(bytes) => self.write_direct(bytes),
            Next::WakeWriter => self.wake_writer.notify_one(),
            Next::Nothing => {}
        }
        Ok(rx)
    }

    /// A failed read (or a hang-up found without reading) as the error requests get.
    fn read_error(&self, e: &std::io::Error) -> Error {
        Error::io(e, &format!("read from {}", self.addr), true)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state half-changed in a way that
        // matters more than failing, so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fail every waiting request with `err` (sent or not, as each was) and refuse new ones.
    fn fail_all(&self, err: Error) {
        let (sent, unsent) = {
            let mut st = self.lock();
            if st.closed.is_none() {
                st.closed = Some(err.with_sent(false));
            }
            st.buf.clear();
            (
                std::mem::take(&mut st.in_flight),
                std::mem::take(&mut st.queued),
            )
        };
        let first = !self.closed.swap(true, Ordering::AcqRel);
        self.pending.store(0, Ordering::Relaxed);
        if let (true, Some(hook)) = (first, &self.tracking) {
            hook.closed(self.id);
        }
        if let Some(sink) = self.sink.get() {
            sink(Err(err.clone()));
        }
        for p in sent {
            if let Some(tx) = p.tx {
                let _ = tx.send(Err(err.with_sent(true)));
            }
        }
        for p in unsent {
            if let Some(tx) = p.tx {
                let _ = tx.send(Err(err.with_sent(false)));
            }
        }
        self.wake_writer.notify_one();
    }
}

/// What a caller does after queueing its command (see [`Connection::send`]).
enum Next {
    /// It took the write duty on an idle connection: write these bytes now.
    Write(BytesMut),
    /// It took the duty on a busy connection: the writer task batches.
    WakeWriter,
    /// Someone else holds the duty and writes these bytes too.
    Nothing,
}

/// A connection handle. Dropping the last handle closes the socket.
pub(crate) struct Connection {
    shared: Arc<Shared>,
    reader: tokio::task::JoinHandle<()>,
    /// When the credentials this connection authenticated with should be renewed (before
    /// they expire), if they expire.
    renew_at: Option<Instant>,
    /// Where they came from, for [`keep_authenticated`](Connection::keep_authenticated).
    auth: Option<Auth>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.shared.addr)
            .field("pending", &self.pending())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.fail_all(Error::new(
            ErrorKind::Closed,
            "connection closed by the client",
        ));
        self.reader.abort();
    }
}

/// The reply to one request.
pub(crate) type ReplyFuture = oneshot::Receiver<Result<Value, Error>>;

/// Turn a receiver's outcome into the reply (a dropped sender means the connection is gone).
pub(crate) fn reply_of(
    outcome: Result<Result<Value, Error>, oneshot::error::RecvError>,
) -> Result<Value, Error> {
    match outcome {
        Ok(r) => r,
        Err(_) => Err(Error::new(ErrorKind::Closed, "connection closed").with_sent(true)),
    }
}

impl Connection {
    /// Connect to `addr`, start the reader and writer, and run the handshake, all within
    /// `opts.connect_timeout`.
    pub(crate) async fn connect(addr: &str, opts: &ConnectOptions) -> Result<Connection, Error> {
        let fut = async {
            let stream = opts.connector.connect(addr).await?;
            let hook = opts.tracking.as_ref().map(|t| t.hook.clone());
            let mut conn = Connection::start(stream, addr, opts.limits.clone(), hook);
            let creds = handshake::run(&conn, opts).await?;
            conn.renew_at = creds
                .and_then(|c| c.valid_until)
                .map(|until| Instant::now() + reauth::renew_in(until, Instant::now()));
            conn.auth = opts.auth.clone();
            Ok(conn)
        };
        match tokio::time::timeout(opts.connect_timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "connect to {addr} timed out after {:?}",
                    opts.connect_timeout
                ),
            )),
        }
    }

    fn start(
        stream: Stream,
        addr: &str,
        limits: Limits,
        tracking: Option<Arc<dyn TrackingHook>>,
    ) -> Connection {
        let (read_half, stream) = stream::split(stream);
        let shared = Arc::new(Shared {
            sink: std::sync::OnceLock::new(),
            state: Mutex::new(State {
                buf: BytesMut::with_capacity(16 * 1024),
                queued: Vec::new(),
                in_flight: VecDeque::new(),
                closed: None,
                writing: false,
            }),
            wake_writer: Notify::new(),
            pending: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            addr: addr.to_string(),
            stream,
            last_read: AtomicU64::new(now_ns()),
            id: NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed),
            tracking,
        });
        tokio::spawn(write::write_loop(shared.clone()));
        let reader = tokio::spawn(read::read_loop(shared.clone(), read_half, limits));
        Connection {
            shared,
            reader,
            renew_at: None,
            auth: None,
        }
    }

    /// Re-authenticate this connection with `AUTH` before its credentials expire, for as
    /// long as it lives (a multiplexed connection: `AUTH` is one more request on it, so
    /// nothing in flight is dropped). Not for connections lent to one caller, where an `AUTH`
    /// could land inside a `MULTI` block: those are renewed by being replaced (see
    /// [`auth_due`](Connection::auth_due)). Nothing happens for credentials that do not
    /// expire.
    pub(crate) fn keep_authenticated(&self) {
        if let (Some(at), Some(auth)) = (self.renew_at, &self.auth) {
            reauth::spawn(Arc::downgrade(&self.shared), auth.clone(), at);
        }
    }

    /// True once the credentials this connection authenticated with are due for renewal.
    pub(crate) fn auth_due(&self) -> bool {
        self.renew_at.is_some_and(|at| Instant::now() >= at)
    }

    /// This connection's identity for the client-side cache.
    pub(crate) fn tag(&self) -> ConnTag {
        ConnTag(self.shared.clone())
    }

    /// The address this connection was opened to.
    pub(crate) fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// Requests sent or queued and not yet answered: the pool's load measure.
    pub(crate) fn pending(&self) -> usize {
        self.shared.pending.load(Ordering::Relaxed)
    }

    /// True once the socket failed or was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Queue one request: `encode` appends its bytes to the write buffer. With `discard_first`
    /// the bytes hold two commands (such as `ASKING` and the command) and the first reply is
    /// read and dropped.
    ///
    /// # Errors
    /// The connection's failure (marked never sent) when it is already closed.
    pub(crate) fn send(
        &self,
        discard_first: bool,
        encode: impl FnOnce(&mut BytesMut),
    ) -> Result<ReplyFuture, Error> {
        self.shared.send(discard_first, encode)
    }

    /// Make this a subscriber connection: from now on RESP3 pushes, and any frame no request
    /// is waiting for (RESP2 pub/sub messages, replies to commands sent with
    /// [`send_no_reply`](Connection::send_no_reply)), go to `sink`, and so does the
    /// connection's failure, once.
    pub(crate) fn make_subscriber(&self, sink: Sink) {
        let _ = self.shared.sink.set(sink);
    }

    /// Queue a command whose replies go to the subscriber sink (SUBSCRIBE and friends).
    ///
    /// # Errors
    /// The connection's failure when it is already closed.
    pub(crate) fn send_no_reply(&self, encode: impl FnOnce(&mut BytesMut)) -> Result<(), Error> {
        let wake = {
            let mut st = self.shared.lock();
            if let Some(err) = &st.closed {
                return Err(err.clone());
            }
            encode(&mut st.buf);
            !std::mem::replace(&mut st.writing, true)
        };
        if wake {
            self.shared.wake_writer.notify_one();
        }
        Ok(())
    }

    /// Send one command given as arguments and wait for its reply (handshake, discovery).
    pub(crate) async fn request<A: AsRef<[u8]>>(&self, args: &[A]) -> Result<Value, Error> {
        let rx = self.send(false, |buf| {
            crate::resp::encode_command(buf, args.iter().map(AsRef::as_ref))
        })?;
        reply_of(rx.await)
    }
}

#[cfg(test)]
mod tests;
