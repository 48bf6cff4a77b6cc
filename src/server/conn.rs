//! One client connection: read a batch, answer every complete command in order, write the
//! replies with one write per batch.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::resp::{
    command_ready, decode_command_resumable, encode_reply, CommandScan, Limits, Protocol,
    ProtocolError, Value,
};

use super::call::Outcome;
use super::dispatch;
use super::limits::{log_overflow, ClientClass, OutputGuard};
use super::node::{Locked, NodeShared};
use super::session::{server_limits, Conn};
use super::stream::Stream;

/// Serve one accepted connection until it closes or the node stops (the accept loop counted
/// it in `connected_clients`).
pub(crate) async fn serve(stream: TcpStream, peer: SocketAddr, shared: Arc<NodeShared>) {
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
    /// MIGRATE: its reply goes after what is already in `out`.
    Migrate(Box<super::migrate::Job>),
    /// A blocking command must wait; its reply goes after what is already in `out`.
    Block(Box<super::waiters::Pending>),
    /// A `POST` or `Host:` command (an HTTP request sent to the port): close at once, with
    /// no reply, executing nothing after it.
    Attack,
    /// EVAL/FCALL: run the script; its reply goes after what is already in `out`.
    Script(Box<super::scripting::Job>),
    /// Another connection's script runs: wait (or answer BUSY) before executing more.
    ScriptRunning,
}

/// True for the first words of an HTTP request, which Redis treats as a cross-protocol
/// attack (a browser tricked into posting commands to a Redis port) rather than as commands.
pub(crate) fn is_http_probe(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"post") || name.eq_ignore_ascii_case(b"host:")
}

/// Log a cross-protocol attack, at most once a minute per process (as Redis does), so a
/// flood of them cannot flood the log.
fn log_attack() {
    static LAST: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if !matches!(*last, Some(t) if t.elapsed().as_secs() <= 60) {
        *last = Some(Instant::now());
        tracing::warn!(
            "Possible SECURITY ATTACK detected. It looks like somebody is sending POST or Host: \
             commands to Redis. This is likely due to an attacker attempting to use Cross \
             Protocol Scripting to compromise your Redis instance. Connection aborted."
        );
    }
}

fn protocol_error_text(e: &ProtocolError) -> String {
    // The command decoder already words its errors as Redis does ("invalid multibulk
    // length", "expected '$', got ':'" ...); Display adds the "Protocol error: " prefix.
    format!("ERR {e}")
}

/// A MOVED or ASK sent on a plaintext connection of a node that serves TLS too names the
/// target's plaintext port (as Redis does for a plaintext client with `tls-cluster yes`);
/// `None` for every other error.
fn plaintext_redirect(line: &[u8], config: &super::node::NodeConfig) -> Option<Value> {
    if !(line.starts_with(b"MOVED ") || line.starts_with(b"ASK ")) {
        return None;
    }
    let text = std::str::from_utf8(line).ok()?;
    let (head, port) = text.rsplit_once(':')?;
    let plain = config.plaintext_port(port.parse().ok()?)?;
    Some(Value::error(format!("{head}:{plain}")))
}

/// How long a TLS client has to finish its handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Most commands decoded per batch (bounds reply memory for huge pipelines).
const MAX_BATCH: usize = 1024;
/// A batch stops taking commands once its replies reach about this size.
const MAX_BATCH_BYTES: usize = 1 << 20;

/// About how many bytes `v` takes on the wire.
fn approx_len(v: &Value) -> usize {
    match v {
        Value::SimpleString(b) | Value::Error(b) | Value::BulkString(b) | Value::BigNumber(b) => {
            b.len() + 16
        }
        Value::Verbatim { text, .. } => text.len() + 24,
        Value::Array(items) | Value::Set(items) | Value::Push(items) => {
            16 + items.iter().map(approx_len).sum::<usize>()
        }
        Value::Map(pairs) => {
            16 + pairs
                .iter()
                .map(|(k, v)| approx_len(k) + approx_len(v))
                .sum::<usize>()
        }
        Value::Attribute { attributes, value } => {
            approx_len(value)
                + attributes
                    .iter()
                    .map(|(k, v)| approx_len(k) + approx_len(v))
                    .sum::<usize>()
        }
        _ => 16,
    }
}

/// Buffers above this are dropped once empty, as Redis shrinks an idle client's query
/// buffer: one big request or reply must not keep its memory for the connection's life.
const SHRINK_ABOVE: usize = 64 * 1024;

/// A fresh small buffer in place of an empty oversized one.
fn shrink(buf: &mut BytesMut) {
    if buf.is_empty() && buf.capacity() > SHRINK_ABOVE {
        *buf = BytesMut::with_capacity(16 * 1024);
    }
}

/// Answer the commands of one batch: decode them without the node lock, execute them under
/// one lock acquisition, then encode the replies after releasing it, so the critical section
/// holds only execution. Commands left over after a blocking command (WAIT) wait in
/// `pending` for the next call.
fn process_batch(
    conn: &mut Conn,
    pending: &mut VecDeque<Vec<Bytes>>,
    protocol_error: Option<String>,
    out: &mut BytesMut,
    shared: &NodeShared,
) -> BatchEnd {
    let mut replies: Vec<(Value, Protocol)> = Vec::with_capacity(pending.len());
    let mut end = BatchEnd::NeedMore;
    // Replies are bounded by size too (the rest waits in `pending`), so a pipeline of big
    // reads holds about one batch of bytes per connection, not a batch of big values.
    let mut reply_bytes = 0;
    let may_cut = protocol_error.is_none();
    {
        let mut locked = Locked::new(shared);
        if conn.pubsub.has_mailbox() && !pending.is_empty() {
            // Messages other connections queued for this one before its commands run (under
            // the lock: nothing more can arrive meanwhile) go before their replies.
            locked.get();
            super::pubsub::drain(conn, out);
        }
        while let Some(args) = pending.pop_front() {
            if may_cut && reply_bytes >= MAX_BATCH_BYTES {
                pending.push_front(args);
                break;
            }
            if args.first().is_some_and(|name| is_http_probe(name)) {
                // Redis frees the client before writing anything still queued for it.
                log_attack();
                pending.clear();
                return BatchEnd::Attack;
            }
            // A script runs without holding the lock between its calls: nothing else may
            // run meanwhile (checked under the lock, where a script is marked as started).
            locked.get();
            if shared.scripting.running() {
                pending.push_front(args);
                end = BatchEnd::ScriptRunning;
                break;
            }
            let outcome = dispatch::process(conn, args, &mut locked, shared);
            // Tracking messages for this connection: a redirect target's own write (before
            // the reply) and its own keys (after it), as Redis writes them.
            let mut after = Vec::new();
            if let Some((before, later)) = locked.get().tracking.take_inline() {
                let resp3 = conn.proto == Protocol::Resp3;
                let subscribed = conn.pubsub.subscribed();
                let frames = |d: Vec<super::tracking::Delivery>| {
                    d.into_iter()
                        .filter_map(|d| d.frame(resp3, subscribed))
                        .map(|v| (v, conn.proto))
                        .collect::<Vec<_>>()
                };
                replies.extend(frames(before));
                after = frames(later);
            }
            let stop = match outcome {
                Outcome::Reply(v) => {
                    reply_bytes += approx_len(&v);
                    replies.push((v, conn.proto));
                    false
                }
                Outcome::NoReply => false,
                Outcome::Quit(v) => {
                    replies.push((v, conn.proto));
                    end = BatchEnd::Close;
                    true
                }
                Outcome::Wait {
                    numreplicas,
                    timeout_ms,
                } => {
                    end = BatchEnd::Wait {
                        numreplicas,
                        timeout_ms,
                    };
                    true
                }
                Outcome::Sync => {
                    end = BatchEnd::Sync;
                    true
                }
                Outcome::Migrate(job) => {
                    end = BatchEnd::Migrate(job);
                    true
                }
                Outcome::Replies(vs) => {
                    reply_bytes += vs.iter().map(approx_len).sum::<usize>();
                    replies.extend(vs.into_iter().map(|v| (v, conn.proto)));
                    false
                }
                Outcome::Block(p) => {
                    end = BatchEnd::Block(p);
                    true
                }
                Outcome::Script(job) => {
                    end = BatchEnd::Script(job);
                    true
                }
            };
            replies.extend(after);
            if stop {
                break;
            }
        }
        if !conn.mail_shared && conn.pubsub.has_mailbox() {
            // From now on tracking messages can reach it (under the lock: none is missed).
            locked.get();
            shared.clients.set_mail(conn.id, conn.pubsub.mailbox());
            conn.mail_shared = true;
        }
    }
    let plaintext_next_to_tls = !conn.tls && shared.config.plaintext_too();
    for (reply, proto) in &replies {
        match reply {
            Value::Error(line) if plaintext_next_to_tls => {
                let v = plaintext_redirect(line, &shared.config);
                encode_reply(out, v.as_ref().unwrap_or(reply), *proto);
            }
            _ => encode_reply(out, reply, *proto),
        }
    }
    if let (BatchEnd::NeedMore, Some(text)) = (&end, protocol_error) {
        encode_reply(out, &Value::error(text), conn.proto);
        return BatchEnd::Close;
    }
    end
}

async fn run(tcp: TcpStream, peer: SocketAddr, shared: &Arc<NodeShared>) -> std::io::Result<()> {
    let _ = tcp.set_nodelay(true);
    let local = tcp.local_addr()?;
    // The node's own address is its TLS port when TLS is on.
    let tls_port = local.port() == shared.addr.port();
    let mut stream = Stream::accept(tcp, &shared.config, tls_port, HANDSHAKE_TIMEOUT).await?;
    let id = shared.next_client_id.fetch_add(1, Ordering::Relaxed);
    // Authenticated as `default` at once when it needs no password (and is on), as Redis.
    let open = !shared.lock().acl.auth_required();
    let mut conn = Conn::new(id, peer, local, open);
    conn.tls = stream.is_tls();
    let kill = shared.clients.register(id, peer, local);
    // Accepted just before a partition took effect: it is cut like the others.
    let result = if shared.faults.is_partitioned() {
        Ok(None)
    } else {
        serve_conn(&mut stream, &mut conn, shared, &kill).await
    };
    shared.clients.unregister(id);
    if conn.tracking.is_some() {
        let mut st = shared.lock();
        st.tracking.disable(id);
        st.sync_tracking();
    }
    if shared.faults.is_partitioned() {
        // An unreachable node's connections end with a reset, not a clean close.
        let _ = stream.tcp().set_zero_linger();
    }
    match result {
        Ok(Some(rbuf)) => {
            super::replication::primary::serve_replica(stream, rbuf, conn, shared.clone()).await
        }
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The request loop. `Ok(Some(buffered))` when the connection became a replication link.
async fn serve_conn(
    stream: &mut Stream,
    conn: &mut Conn,
    shared: &Arc<NodeShared>,
    kill: &tokio::sync::Notify,
) -> std::io::Result<Option<BytesMut>> {
    let mut rbuf = BytesMut::with_capacity(16 * 1024);
    // How far the command at the front of `rbuf` has been checked (a big command arriving
    // over many reads is checked once).
    let mut scan = CommandScan::default();
    let mut out = BytesMut::with_capacity(16 * 1024);
    let mut pending = VecDeque::new();
    let mut stop = shared.shutdown_rx();
    let limits = server_limits();
    let mut obuf = OutputGuard::default();
    loop {
        let protocol_error = decode_batch(&mut rbuf, &mut scan, &mut pending, &limits);
        if shared.faults.maybe_paused() && !pending.is_empty() {
            let write = pending
                .iter()
                .any(|a| crate::command::lookup_args(a).is_some_and(|s| s.is_write()));
            tokio::select! {
                _ = shared.faults.wait(true, write) => {}
                _ = crate::server::node::stopped(&mut stop) => return Ok(None),
                _ = kill.notified() => return Ok(None),
            }
        }
        let end = process_batch(conn, &mut pending, protocol_error, &mut out, shared);
        match end {
            BatchEnd::NeedMore => {}
            BatchEnd::Attack => return Ok(None),
            BatchEnd::Close => {
                stream.write_all(&out).await?;
                stream.flush().await?;
                return Ok(None);
            }
            BatchEnd::Wait {
                numreplicas,
                timeout_ms,
            } => {
                let reply = tokio::select! {
                    r = super::cmd_server::wait(shared, numreplicas, timeout_ms) => r,
                    _ = crate::server::node::stopped(&mut stop) => return Ok(None),
                    _ = kill.notified() => return Ok(None),
                };
                encode_reply(&mut out, &reply, conn.proto);
                continue;
            }
            BatchEnd::Migrate(job) => {
                let reply = super::migrate::run(*job, shared).await;
                encode_reply(&mut out, &reply, conn.proto);
                continue;
            }
            BatchEnd::Block(p) => {
                let (r, o) = (&mut rbuf, &mut out);
                match super::blocking::wait(stream, conn, r, o, shared, p, kill.notified()).await? {
                    Some(reply) => encode_reply(&mut out, &reply, conn.proto),
                    None => return Ok(None),
                }
                continue;
            }
            BatchEnd::Sync => {
                stream.write_all(&out).await?;
                stream.flush().await?;
                return Ok(Some(rbuf));
            }
            BatchEnd::Script(job) => {
                let reply = job.run(shared.clone()).await;
                encode_reply(&mut out, &reply, conn.proto);
                continue;
            }
            BatchEnd::ScriptRunning => {
                stream.write_all(&out).await?;
                out.clear();
                tokio::select! {
                    _ = shared.scripting.wait_idle_or_busy() => {}
                    _ = crate::server::node::stopped(&mut stop) => return Ok(None),
                    _ = kill.notified() => return Ok(None),
                }
                if shared.scripting.running() && shared.scripting.busy() {
                    // Busy: SCRIPT KILL / FUNCTION KILL act, everything else gets BUSY.
                    while let Some(args) = pending.pop_front() {
                        let reply = shared.scripting.busy_reply(&args);
                        encode_reply(&mut out, &reply, conn.proto);
                    }
                }
                continue;
            }
        }
        if !out.is_empty() {
            let class = if conn.pubsub.subscribed() {
                ClientClass::Pubsub
            } else {
                ClientClass::Normal
            };
            let limit = shared.limits.output(class);
            if obuf.over(limit, out.len() as u64) {
                log_overflow(
                    &format!("id={} addr={}", conn.id, conn.peer),
                    out.len() as u64,
                    class,
                );
                return Ok(None);
            }
            tokio::select! {
                _ = hold_replies(shared) => {}
                _ = crate::server::node::stopped(&mut stop) => return Ok(None),
                _ = kill.notified() => return Ok(None),
            }
            // A client that stays above the soft limit (not reading) for its seconds is
            // closed, as Redis does; the hard limit was checked above.
            let soft_deadline = obuf.soft_deadline(limit);
            tokio::select! {
                r = super::pubsub::write_out(stream, &out, &conn.pubsub) => r?,
                _ = sleep_until_opt(soft_deadline) => {
                    log_overflow(&format!("id={} addr={}", conn.id, conn.peer), out.len() as u64, class);
                    return Ok(None);
                }
            }
            out.clear();
            shrink(&mut out);
            // More complete commands may still be buffered (a big batch was cut).
            if !pending.is_empty() || decode_ready(&rbuf, &mut scan, &limits) {
                continue;
            }
        }
        shrink(&mut rbuf);
        if rbuf.capacity() - rbuf.len() < 4096 {
            rbuf.reserve(16 * 1024);
        }
        let n = tokio::select! {
            r = stream.read_buf(&mut rbuf) => r?,
            _ = crate::server::node::stopped(&mut stop) => return Ok(None),
            _ = kill.notified() => return Ok(None),
            fed = super::monitor::MonitorFeed::next(&mut conn.monitor, &mut out) => {
                if fed.is_none() {
                    // Dropped by the node for its backlog.
                    return Ok(None);
                }
                continue;
            }
            wake = conn.pubsub.next() => {
                // Pub/sub frames (or a shard slot check) to write.
                super::pubsub::apply(conn, wake, &mut out, shared)?;
                continue;
            }
        };
        if n == 0 {
            return Ok(None);
        }
    }
}

/// Decode the complete commands buffered in `rbuf` (up to a batch) into `pending`; the
/// protocol error to answer after them, if the input is malformed.
fn decode_batch(
    rbuf: &mut BytesMut,
    scan: &mut CommandScan,
    pending: &mut VecDeque<Vec<Bytes>>,
    limits: &Limits,
) -> Option<String> {
    while pending.len() < MAX_BATCH {
        match decode_command_resumable(rbuf, limits, scan) {
            Ok(None) => break,
            Ok(Some(args)) if args.is_empty() => {}
            Ok(Some(args)) => pending.push_back(args),
            Err(e) => return Some(protocol_error_text(&e)),
        }
    }
    None
}

/// Resolves at `deadline`, or never without one.
async fn sleep_until_opt(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// Fault injection: hold replies while the node is frozen, or for the injected delay.
async fn hold_replies(shared: &NodeShared) {
    if let Some(d) = shared.faults.reply_delay() {
        tokio::time::sleep(d).await;
    }
    shared.faults.wait(false, false).await;
}

/// A whole command (or bytes that can never form one, to be reported) is buffered.
fn decode_ready(rbuf: &BytesMut, scan: &mut CommandScan, limits: &Limits) -> bool {
    !matches!(command_ready(rbuf, limits, scan), Ok(false))
}
