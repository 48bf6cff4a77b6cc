//! The primary's side of one replica: snapshot, buffered writes, then the live stream; and
//! the replica's REPLCONF ACKs coming back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::ReplicaHandle;
use crate::resp::decode_command;
use crate::server::args::parse_i64;
use crate::server::node::NodeShared;
use crate::server::session::{server_limits, Conn};
use crate::server::stream::Stream;

/// Serve PSYNC on `stream`: full resync, then stream until the replica goes away.
///
/// # Errors
/// I/O errors on the link (the replica is then dropped).
pub(crate) async fn serve_replica(
    mut stream: Stream,
    mut rbuf: BytesMut,
    conn: Conn,
    shared: Arc<NodeShared>,
) -> std::io::Result<()> {
    // The point-in-time snapshot: cloned under the lock, together with the stream offset it
    // corresponds to and the registration of the buffer that collects every later write.
    let queued = Arc::new(AtomicU64::new(0));
    let kill = Arc::new(tokio::sync::Notify::new());
    let (snapshot, functions, offset, replid, mut rx) = {
        let mut st = shared.lock();
        st.repl.flush();
        let snapshot = st.clone_dbs();
        // The replica starts applying in db 0: the stream names the database again.
        st.repl.reselect();
        let functions = shared.scripting.functions_payload();
        let (tx, rx) = mpsc::unbounded_channel();
        st.repl.replicas.push(ReplicaHandle {
            conn_id: conn.id,
            ip: conn.peer.ip(),
            port: conn.repl_port.unwrap_or(conn.peer.port()),
            tx,
            ack_offset: 0,
            last_ack: Instant::now(),
            online: false,
            queued: queued.clone(),
            guard: Default::default(),
            kill: kill.clone(),
        });
        st.repl.sync_full += 1;
        (snapshot, functions, st.repl.offset, st.repl.replid, rx)
    };
    let link = Link {
        conn: &conn,
        shared: &shared,
        queued: &queued,
    };
    let result = tokio::select! {
        r = stream_to(&mut stream, &mut rbuf, link, (snapshot, functions), offset, replid.as_str(), &mut rx) => r,
        // Dropped for its output buffer: the connection closes and the replica resyncs.
        _ = kill.notified() => Ok(()),
    };
    shared.lock().repl.replicas.retain(|r| r.conn_id != conn.id);
    shared.acks.notify_waiters();
    result
}

async fn read_more(stream: &mut Stream, rbuf: &mut BytesMut) -> std::io::Result<usize> {
    if rbuf.capacity() - rbuf.len() < 1024 {
        rbuf.reserve(4096);
    }
    stream.read_buf(rbuf).await
}

/// Who the stream goes to.
#[derive(Clone, Copy)]
struct Link<'a> {
    conn: &'a Conn,
    shared: &'a NodeShared,
    /// The replica's output buffer count: what was written is subtracted.
    queued: &'a AtomicU64,
}

async fn stream_to(
    stream: &mut Stream,
    rbuf: &mut BytesMut,
    link: Link<'_>,
    (snapshot, functions): (Vec<(usize, crate::server::db::Db)>, bytes::Bytes),
    offset: u64,
    replid: &str,
    rx: &mut mpsc::UnboundedReceiver<bytes::Bytes>,
) -> std::io::Result<()> {
    let Link {
        conn,
        shared,
        queued,
    } = link;
    stream
        .write_all(format!("+FULLRESYNC {replid} {offset}\r\n").as_bytes())
        .await?;
    stream.flush().await?;
    // Encoding may take a while for a big keyspace: off the async threads, while writes keep
    // flowing into `rx`.
    let payload = tokio::task::spawn_blocking(move || {
        let keyspace = crate::server::databases::encode_dbs(&snapshot);
        super::sync_payload(&functions, &keyspace)
    })
    .await
    .map_err(std::io::Error::other)?;
    let mut out = BytesMut::with_capacity(payload.len() + 32);
    out.put_slice(format!("${}\r\n", payload.len()).as_bytes());
    out.put_slice(&payload);
    drop(payload);
    stream.write_all(&out).await?;
    stream.flush().await?;
    out.clear();
    {
        let mut st = shared.lock();
        if let Some(r) = st.repl.replicas.iter_mut().find(|r| r.conn_id == conn.id) {
            r.online = true;
            r.ack_offset = offset;
            r.last_ack = Instant::now();
        }
    }
    shared.acks.notify_waiters();
    let mut stop = shared.shutdown_rx();
    let mut cut = shared.faults.cut.subscribe();
    cut.borrow_and_update();
    let limits = server_limits();
    loop {
        tokio::select! {
            _ = crate::server::fault::cut(&mut cut) => return Ok(()),
            data = rx.recv() => {
                let Some(data) = data else { return Ok(()) };
                // Let writers that are already running add to this write: fewer, larger
                // writes to the replica under load.
                tokio::task::yield_now().await;
                out.put_slice(&data);
                while let Ok(more) = rx.try_recv() {
                    out.put_slice(&more);
                    if out.len() > 1 << 20 {
                        break;
                    }
                }
                stream.write_all(&out).await?;
                stream.flush().await?;
                queued.fetch_sub(out.len() as u64, Ordering::Relaxed);
                out.clear();
            }
            n = read_more(stream, rbuf) => {
                if n? == 0 {
                    return Ok(());
                }
                while let Ok(Some(args)) = decode_command(rbuf, &limits) {
                    if args.len() == 3
                        && args[0].eq_ignore_ascii_case(b"replconf")
                        && args[1].eq_ignore_ascii_case(b"ack")
                    {
                        if let Some(acked) = parse_i64(&args[2]) {
                            let mut st = shared.lock();
                            if let Some(r) = st.repl.replicas.iter_mut().find(|r| r.conn_id == conn.id) {
                                r.ack_offset = r.ack_offset.max(acked.max(0) as u64);
                                r.last_ack = Instant::now();
                            }
                            drop(st);
                            shared.acks.notify_waiters();
                        }
                    }
                }
            }
            _ = crate::server::node::stopped(&mut stop) => return Ok(()),
        }
    }
}
