//! The replica's side: connect to the primary, full sync, then apply the stream, counting
//! offsets and acknowledging them every second and on GETACK.
//!
//! `Faults::repl_delay_ms` delays applying received data (an injectable replication lag).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::ReplicaLink;
use crate::resp::{decode_command, encode_command};
use crate::server::cluster::state::NodeId;
use crate::server::db::ExecCtx;
use crate::server::node::{now_ms, NodeShared, NodeState};
use crate::server::registry;
use crate::server::session::server_limits;
use crate::server::stream::Stream;

/// Make this node a replica of `primary` and start syncing from it.
pub(crate) fn become_replica(
    st: &mut NodeState,
    shared: &NodeShared,
    primary: NodeId,
    addr: SocketAddr,
) {
    let me = st.cluster.myself;
    st.cluster.me_mut().replica_of = Some(primary);
    st.cluster.unassign_all(me);
    st.cluster.migrating.clear();
    st.cluster.importing.clear();
    st.cluster.update_state();
    st.set_replica_dbs(true);
    st.repl.replicas.clear();
    let generation = st.repl.next_generation;
    st.repl.next_generation += 1;
    st.repl.link = Some(ReplicaLink {
        primary,
        addr,
        up: false,
        loading: false,
        offset: 0,
        replid: String::new(),
        last_io: std::time::Instant::now(),
        generation,
        db: 0,
        host: addr.ip().to_string(),
        down_since: None,
    });
    if let Some(node) = crate::server::cluster::directory::lookup(shared.addr) {
        tokio::spawn(run(node, generation));
    }
}

fn current(shared: &NodeShared, generation: u64) -> Option<SocketAddr> {
    let st = shared.lock();
    st.repl
        .link
        .as_ref()
        .filter(|l| l.generation == generation)
        .map(|l| l.addr)
}

/// The replication task of one link generation; ends when the link changes or the node
/// stops.
pub(crate) async fn run(shared: Arc<NodeShared>, generation: u64) {
    let mut stop = shared.shutdown_rx();
    let mut cut = shared.faults.cut.subscribe();
    loop {
        if shared.is_shut_down() {
            return;
        }
        let Some(addr) = current(&shared, generation) else {
            return;
        };
        cut.borrow_and_update();
        let result = tokio::select! {
            r = sync_once(&shared, generation, addr) => r,
            _ = crate::server::fault::cut(&mut cut) => Err(io_err("link cut")),
            _ = crate::server::node::stopped(&mut stop) => return,
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, %addr, "replication link down");
        }
        {
            let mut st = shared.lock();
            if let Some(link) = st.repl.link.as_mut().filter(|l| l.generation == generation) {
                if link.up {
                    link.down_since = Some(std::time::Instant::now());
                }
                link.up = false;
                link.loading = false;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = crate::server::node::stopped(&mut stop) => return,
        }
    }
}

fn io_err(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

async fn read_line(stream: &mut Stream, buf: &mut BytesMut) -> std::io::Result<String> {
    loop {
        if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = buf.split_to(i + 2);
            return Ok(String::from_utf8_lossy(&line[..i]).into_owned());
        }
        if buf.len() > 64 * 1024 {
            return Err(io_err("line too long from primary"));
        }
        if tokio::time::timeout(Duration::from_secs(5), stream.read_buf(buf)).await?? == 0 {
            return Err(io_err("primary closed the link"));
        }
    }
}

async fn command(
    stream: &mut Stream,
    buf: &mut BytesMut,
    args: &[&[u8]],
) -> std::io::Result<String> {
    let mut out = BytesMut::new();
    encode_command(&mut out, args.iter());
    stream.write_all(&out).await?;
    stream.flush().await?;
    read_line(stream, buf).await
}

async fn sync_once(shared: &NodeShared, generation: u64, addr: SocketAddr) -> std::io::Result<()> {
    if shared.faults.is_partitioned() {
        return Err(io_err("partitioned"));
    }
    // Nodes are in this process: make sure the primary's port was not taken over by another
    // cluster's node after the primary was killed (tests run many clusters side by side).
    let primary = shared
        .lock()
        .repl
        .link
        .as_ref()
        .filter(|l| l.generation == generation)
        .map(|l| l.primary);
    let found = crate::server::cluster::directory::lookup(addr).map(|n| n.id);
    if shared.config.standalone {
        // REPLICAOF names an address: whichever node of this process serves it now.
        let Some(id) = found else {
            return Err(io_err("primary unreachable"));
        };
        let mut st = shared.lock();
        if let Some(link) = st.repl.link.as_mut().filter(|l| l.generation == generation) {
            link.primary = id;
        }
    } else if found != primary {
        return Err(io_err("primary unreachable"));
    }
    let host = addr.ip().to_string();
    let mut stream =
        Stream::connect(&host, addr.port(), &shared.config, Duration::from_secs(2)).await?;
    let mut buf = BytesMut::with_capacity(16 * 1024);
    if let Some(pass) = &shared.config.requirepass {
        let reply = command(&mut stream, &mut buf, &[b"AUTH", pass.as_bytes()]).await?;
        if reply != "+OK" {
            return Err(io_err("primary refused AUTH"));
        }
    }
    let port = shared.addr.port().to_string();
    command(
        &mut stream,
        &mut buf,
        &[b"REPLCONF", b"listening-port", port.as_bytes()],
    )
    .await?;
    command(
        &mut stream,
        &mut buf,
        &[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"],
    )
    .await?;
    let reply = command(&mut stream, &mut buf, &[b"PSYNC", b"?", b"-1"]).await?;
    let mut parts = reply.split(' ');
    let (Some("+FULLRESYNC"), Some(replid), Some(offset)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(io_err(format!("unexpected PSYNC reply {reply:?}")));
    };
    let replid = replid.to_string();
    let mut offset: u64 = offset.parse().map_err(|_| io_err("bad offset"))?;
    // The snapshot: `$<len>\r\n<bytes>` with no trailing CRLF. Keep-alive newlines may come
    // first.
    let header = loop {
        let line = read_line(&mut stream, &mut buf).await?;
        if !line.is_empty() {
            break line;
        }
    };
    let len: usize = header
        .strip_prefix('$')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| io_err("bad snapshot header"))?;
    while buf.len() < len {
        // Grow with what arrives, not with what the primary declares.
        buf.reserve((len - buf.len()).min(16 << 20));
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(io_err("primary closed during the snapshot"));
        }
    }
    let payload = buf.split_to(len);
    // Like Redis, the replica serves its old data during the transfer and answers LOADING
    // while it loads the new snapshot.
    set_loading(shared, generation, true);
    let (functions, keyspace) = super::split_sync_payload(&payload).map_err(io_err)?;
    let functions = Bytes::copy_from_slice(functions);
    let dbs = crate::server::databases::decode_dbs(keyspace).map_err(io_err)?;
    drop(payload);
    // An injected replication lag slows loading too: the LOADING window is observable.
    let lag = shared.faults.repl_delay_ms.load(Ordering::Relaxed);
    if lag > 0 {
        tokio::time::sleep(Duration::from_millis(lag)).await;
    }
    {
        let mut st = shared.lock();
        let Some(link) = st.repl.link.as_mut().filter(|l| l.generation == generation) else {
            return Ok(());
        };
        link.up = true;
        link.loading = false;
        link.offset = offset;
        link.replid = replid;
        link.last_io = std::time::Instant::now();
        link.db = 0;
        st.install_dbs(dbs);
        // Every key may have changed: as Redis' flush before loading.
        st.tracking.invalidate_all(&shared.clients);
        st.sync_tracking();
        // The primary's libraries replace ours, before any function command of the stream.
        shared.scripting.replace_functions(functions);
    }
    let (mut reader, mut writer) = tokio::io::split(stream);
    let limits = server_limits();
    let mut pending: VecDeque<(Instant, Bytes)> = VecDeque::new();
    if !buf.is_empty() {
        pending.push_back((Instant::now(), buf.split().freeze()));
    }
    let mut applied = BytesMut::new();
    let mut ack_tick = tokio::time::interval(Duration::from_secs(1));
    let mut chunk = BytesMut::with_capacity(64 * 1024);
    loop {
        let delay = Duration::from_millis(shared.faults.repl_delay_ms.load(Ordering::Relaxed));
        let due = pending.front().map(|(t, _)| *t + delay);
        let sleep = async {
            match due {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        // Keep room to read into: a full BytesMut would make `read_buf` grow it 64 bytes
        // at a time.
        if chunk.capacity() - chunk.len() < 16 * 1024 {
            chunk.reserve(64 * 1024);
        }
        tokio::select! {
            n = reader.read_buf(&mut chunk) => {
                if n? == 0 {
                    return Err(io_err("primary closed the link"));
                }
                pending.push_back((Instant::now(), chunk.split().freeze()));
            }
            _ = ack_tick.tick() => {
                if current(shared, generation).is_none() {
                    // This node now replicates someone else, or nobody.
                    return Ok(());
                }
                let mut out = BytesMut::new();
                let off = offset.to_string();
                encode_command(&mut out, [&b"REPLCONF"[..], b"ACK", off.as_bytes()]);
                writer.write_all(&out).await?;
            writer.flush().await?;
            }
            _ = sleep => {}
            _ = shared.repl_wakeup.notified() => {
                if current(shared, generation).is_none() {
                    return Ok(());
                }
            }
        }
        // The lag may have changed while waiting.
        let delay = Duration::from_millis(shared.faults.repl_delay_ms.load(Ordering::Relaxed));
        let now = Instant::now();
        while let Some((t, _)) = pending.front() {
            if *t + delay > now {
                break;
            }
            if let Some((_, data)) = pending.pop_front() {
                applied.extend_from_slice(&data);
            }
        }
        if applied.is_empty() {
            continue;
        }
        if shared.faults.maybe_paused() {
            shared.faults.wait(false, false).await;
        }
        let acks = apply(shared, generation, &mut applied, &mut offset, &limits)?;
        for ack in acks {
            let mut out = BytesMut::new();
            let off = ack.to_string();
            encode_command(&mut out, [&b"REPLCONF"[..], b"ACK", off.as_bytes()]);
            writer.write_all(&out).await?;
            writer.flush().await?;
        }
    }
}

fn set_loading(shared: &NodeShared, generation: u64, loading: bool) {
    let mut st = shared.lock();
    if let Some(link) = st.repl.link.as_mut().filter(|l| l.generation == generation) {
        link.loading = loading;
    }
}

/// Apply every complete command in `data`; the offsets to acknowledge (one per GETACK).
fn apply(
    shared: &NodeShared,
    generation: u64,
    data: &mut BytesMut,
    offset: &mut u64,
    limits: &crate::resp::Limits,
) -> std::io::Result<Vec<u64>> {
    let mut acks = Vec::new();
    let mut st = shared.lock();
    if st.repl.link.as_ref().map(|l| l.generation) != Some(generation) {
        return Err(io_err("replication link replaced"));
    }
    let ctx = ExecCtx {
        now_ms: now_ms(),
        resp3: false,
    };
    let mut stream_db = st.repl.link.as_ref().map_or(0, |l| l.db);
    loop {
        let before = data.len();
        let args = match decode_command(data, limits) {
            Ok(Some(args)) => args,
            Ok(None) => break,
            Err(e) => return Err(io_err(e.to_string())),
        };
        let consumed = (before - data.len()) as u64;
        if args.len() >= 2
            && args[0].eq_ignore_ascii_case(b"replconf")
            && args[1].eq_ignore_ascii_case(b"getack")
        {
            acks.push(*offset);
        } else if !args.is_empty() && !args[0].eq_ignore_ascii_case(b"ping") {
            if args[0].eq_ignore_ascii_case(b"function") {
                // Libraries live beside the keyspace; a running script may hold them.
                shared.scripting.queue_replicated(args);
                *offset += consumed;
                continue;
            }
            if crate::server::databases::apply_replicated(&mut st, &args, &mut stream_db) {
                *offset += consumed;
                continue;
            }
            st.select_db(stream_db);
            let start = std::time::Instant::now();
            let reply = registry::execute_db(&mut st.db, &args, &ctx);
            st.after_db_command(&args, &reply);
            let _ = st.db.take_propagation();
            st.invalidate_changed(&shared.clients, None);
            if let Some(name) = crate::server::registry::stat_name(&args) {
                st.cmdstats
                    .executed(name, start.elapsed().as_micros() as u64, reply.is_error());
            }
        }
        *offset += consumed;
    }
    if let Some(link) = st.repl.link.as_mut() {
        link.db = stream_db;
        link.offset = *offset;
        link.last_io = std::time::Instant::now();
    }
    st.settle_tracking(&shared.clients);
    Ok(acks)
}
