//! One client connection: read a batch, answer every complete command in order, write the
//! replies with one write per batch.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::command::CommandSpec;
use crate::resp::{decode_command, encode_value, Limits, Protocol, ProtocolError, Value};

use super::dispatch::{self, Outcome};
use super::node::{Locked, NodeShared};

/// A transaction being queued (between MULTI and EXEC).
#[derive(Debug, Default)]
pub(crate) struct Multi {
    /// Commands queued so far.
    pub(crate) queued: Vec<(&'static CommandSpec, Vec<Bytes>)>,
    /// Set when a command was refused while queuing: EXEC answers EXECABORT.
    pub(crate) aborted: bool,
}

/// Per-connection state.
#[derive(Debug)]
pub(crate) struct Conn {
    /// CLIENT ID.
    pub(crate) id: u64,
    /// The client's address.
    pub(crate) peer: SocketAddr,
    /// Our address on this connection.
    pub(crate) local: SocketAddr,
    /// RESP2 until HELLO 3.
    pub(crate) proto: Protocol,
    /// Passed AUTH (or no password is configured).
    pub(crate) authed: bool,
    /// The authenticated user.
    pub(crate) user: String,
    /// CLIENT SETNAME.
    pub(crate) name: Option<Bytes>,
    /// CLIENT SETINFO LIB-NAME.
    pub(crate) lib_name: Option<Bytes>,
    /// CLIENT SETINFO LIB-VER.
    pub(crate) lib_ver: Option<Bytes>,
    /// READONLY: a replica may serve this connection's reads.
    pub(crate) readonly: bool,
    /// ASKING: the next command may touch an importing slot.
    pub(crate) asking: bool,
    /// Open transaction.
    pub(crate) multi: Option<Multi>,
    /// WATCHed keys and their versions when watched.
    pub(crate) watched: Vec<(Bytes, u64)>,
    /// When the connection was accepted.
    pub(crate) created: Instant,
    /// Last command run (CLIENT INFO cmd=).
    pub(crate) last_cmd: &'static str,
    /// REPLCONF listening-port of a replica connection.
    pub(crate) repl_port: Option<u16>,
    /// Subscriptions and the mailbox other connections reach this one through.
    pub(crate) pubsub: super::pubsub::ConnPubSub,
}

impl Conn {
    /// A fresh connection.
    pub(crate) fn new(id: u64, peer: SocketAddr, local: SocketAddr, authed: bool) -> Conn {
        Conn {
            id,
            peer,
            local,
            proto: Protocol::Resp2,
            authed,
            user: "default".to_string(),
            name: None,
            lib_name: None,
            lib_ver: None,
            readonly: false,
            asking: false,
            multi: None,
            watched: Vec::new(),
            created: Instant::now(),
            last_cmd: "NULL",
            repl_port: None,
            pubsub: Default::default(),
        }
    }

    /// The CLIENT INFO / CLIENT LIST line (without a trailing newline).
    pub(crate) fn info_line(&self) -> String {
        let mut flags = String::new();
        if self.multi.is_some() {
            flags.push('x');
        }
        if self.readonly {
            flags.push('r');
        }
        if self.pubsub.subscribed() {
            flags.push('P');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let age = self.created.elapsed().as_secs();
        let text = |b: &Option<Bytes>| {
            b.as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        };
        format!(
            "id={} addr={} laddr={} fd=8 name={} age={age} idle=0 flags={flags} db=0 {} multi={} \
             qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=16384 obl=0 \
             oll=0 omem=0 tot-mem=0 events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.peer,
            self.local,
            text(&self.name),
            self.pubsub.client_fields(),
            self.multi.as_ref().map_or(-1, |m| m.queued.len() as i64),
            self.last_cmd,
            self.user,
            if self.proto == Protocol::Resp3 { 3 } else { 2 },
            text(&self.lib_name),
            text(&self.lib_ver),
        )
    }
}

/// The limits a server applies to requests (as Redis: 512 MiB bulk, 1M-element multibulk).
pub(crate) fn server_limits() -> Limits {
    Limits::default().with_max_elements(1024 * 1024)
}

/// Serve one accepted connection until it closes or the node stops.
pub(crate) async fn serve(stream: TcpStream, peer: SocketAddr, shared: Arc<NodeShared>) {
    shared.connected_clients.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = run(stream, peer, &shared).await {
        tracing::debug!(error = %e, %peer, "connection ended");
    }
    shared.connected_clients.fetch_sub(1, Ordering::Relaxed);
}

/// How a batch of commands ended.
enum BatchEnd {
    /// Every complete command answered; read more.
    NeedMore,
    /// A command must await (WAIT); its reply goes after what is already in `out`.
    Wait { numreplicas: usize, timeout_ms: u64 },
    /// QUIT, or a protocol error: write `out` and close.
    Close,
    /// PSYNC/SYNC: this connection becomes a replication link.
    Sync,
    /// A blocking command must wait; its reply goes after what is already in `out`.
    Block(Box<super::blocking::Pending>),
}

fn protocol_error_text(e: &ProtocolError) -> String {
    let msg = e.message();
    let what = if msg.contains("quotes") {
        "unbalanced quotes in request"
    } else if msg.contains("inline") {
        "too big inline request"
    } else if msg.contains("expected '$'") {
        "expected '$', got something else"
    } else if msg.contains("bulk") {
        "invalid bulk length"
    } else {
        "invalid multibulk length"
    };
    format!("ERR Protocol error: {what}")
}

fn process_batch(
    conn: &mut Conn,
    rbuf: &mut BytesMut,
    out: &mut BytesMut,
    shared: &NodeShared,
    limits: &Limits,
) -> BatchEnd {
    let mut locked = Locked::new(shared);
    loop {
        let args = match decode_command(rbuf, limits) {
            Ok(None) => return BatchEnd::NeedMore,
            Ok(Some(args)) => args,
            Err(e) => {
                let text = protocol_error_text(&e);
                encode_value(out, &Value::error(text), conn.proto);
                return BatchEnd::Close;
            }
        };
        if args.is_empty() {
            continue;
        }
        match dispatch::process(conn, args, &mut locked, shared) {
            Outcome::Reply(v) => encode_value(out, &v, conn.proto),
            Outcome::NoReply => {}
            Outcome::Quit(v) => {
                encode_value(out, &v, conn.proto);
                return BatchEnd::Close;
            }
            Outcome::Wait {
                numreplicas,
                timeout_ms,
            } => {
                return BatchEnd::Wait {
                    numreplicas,
                    timeout_ms,
                }
            }
            Outcome::Sync => return BatchEnd::Sync,
            Outcome::Replies(vs) => vs.iter().for_each(|v| encode_value(out, v, conn.proto)),
            Outcome::Block(pending) => return BatchEnd::Block(pending),
        }
        if out.len() > 256 * 1024 {
            // Let the caller write before answering more; the rest is still buffered.
            return BatchEnd::NeedMore;
        }
    }
}

async fn run(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: &Arc<NodeShared>,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr()?;
    let id = shared.next_client_id.fetch_add(1, Ordering::Relaxed);
    let mut conn = Conn::new(id, peer, local, !shared.config.auth_required());
    let mut rbuf = BytesMut::with_capacity(16 * 1024);
    let mut out = BytesMut::with_capacity(16 * 1024);
    let mut stop = shared.shutdown_rx();
    let limits = server_limits();
    loop {
        let end = process_batch(&mut conn, &mut rbuf, &mut out, shared, &limits);
        match end {
            BatchEnd::NeedMore => {}
            BatchEnd::Close => {
                stream.write_all(&out).await?;
                return Ok(());
            }
            BatchEnd::Wait {
                numreplicas,
                timeout_ms,
            } => {
                let reply = super::cmd_server::wait(shared, numreplicas, timeout_ms).await;
                encode_value(&mut out, &reply, conn.proto);
                continue;
            }
            BatchEnd::Block(pending) => {
                let closed = std::future::pending();
                let (s, c, r, o) = (&mut stream, &mut conn, &mut rbuf, &mut out);
                match super::blocking::wait(s, c, r, o, shared, pending, closed).await? {
                    Some(reply) => encode_value(&mut out, &reply, conn.proto),
                    None => return Ok(()),
                }
                continue;
            }
            BatchEnd::Sync => {
                stream.write_all(&out).await?;
                return super::replication::primary::serve_replica(
                    stream,
                    rbuf,
                    conn,
                    shared.clone(),
                )
                .await;
            }
        }
        if !out.is_empty() {
            super::pubsub::write_out(&mut stream, &out, &conn.pubsub).await?;
            out.clear();
            // More complete commands may still be buffered (a big batch was cut).
            if decode_ready(&rbuf, &limits) {
                continue;
            }
        }
        if rbuf.capacity() - rbuf.len() < 4096 {
            rbuf.reserve(16 * 1024);
        }
        let n = tokio::select! {
            r = stream.read_buf(&mut rbuf) => r?,
            _ = crate::server::node::stopped(&mut stop) => return Ok(()),
            wake = conn.pubsub.next() => {
                // Pub/sub frames (or a shard slot check) to write.
                super::pubsub::apply(&mut conn, wake, &mut out, shared)?;
                continue;
            }
        };
        if n == 0 {
            return Ok(());
        }
    }
}

fn decode_ready(rbuf: &BytesMut, limits: &Limits) -> bool {
    match rbuf.first() {
        None => false,
        Some(b'*') => !matches!(crate::resp::check(rbuf, 0, 0, limits), Ok(None)),
        Some(_) => rbuf.contains(&b'\n'),
    }
}
