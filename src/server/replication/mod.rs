//! Replication: a primary ships a snapshot, the writes buffered meanwhile, then a stream of
//! every write; a replica applies them and acknowledges offsets.
//!
//! The stream is RESP commands; offsets on both sides count its bytes, as in Redis.

pub(crate) mod failover;
pub(crate) mod primary;
pub(crate) mod replica;
pub(crate) mod standalone;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use super::cluster::state::NodeId;
use super::limits::{log_overflow, ClientClass, ClientLimits, OutputGuard};

/// `repl-backlog-size` (Redis' default, 1 MiB).
pub(crate) const BACKLOG_SIZE: usize = 1 << 20;

/// Marks a full resync payload of this format: function libraries, then the keyspace.
const SYNC_MAGIC: &[u8; 4] = b"RCSY";

/// A full resync's payload: `RCSY`, the function libraries (a FUNCTION DUMP payload,
/// length-prefixed) and the keyspace snapshot, so a replica gets both at one point in time.
pub(crate) fn sync_payload(functions: &[u8], keyspace: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + functions.len() + keyspace.len());
    out.extend_from_slice(SYNC_MAGIC);
    out.extend_from_slice(&(functions.len() as u32).to_be_bytes());
    out.extend_from_slice(functions);
    out.extend_from_slice(keyspace);
    out
}

/// The function libraries and keyspace parts of a [`sync_payload`].
///
/// # Errors
/// When the payload is not one (never panics).
pub(crate) fn split_sync_payload(payload: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let bad = || "not a full resync payload of a supported version".to_string();
    let rest = payload.strip_prefix(SYNC_MAGIC).ok_or_else(bad)?;
    let len_bytes: [u8; 4] = rest
        .get(..4)
        .ok_or_else(bad)?
        .try_into()
        .map_err(|_| bad())?;
    let len = u32::from_be_bytes(len_bytes) as usize;
    let functions = rest.get(4..4 + len).ok_or_else(bad)?;
    Ok((functions, &rest[4 + len..]))
}

/// One replica attached to this primary.
#[derive(Debug)]
pub(crate) struct ReplicaHandle {
    /// The client id of its replication connection.
    pub(crate) conn_id: u64,
    /// Its address as seen by us.
    pub(crate) ip: std::net::IpAddr,
    /// The port it listens on (REPLCONF listening-port).
    pub(crate) port: u16,
    /// Stream data waiting to be written to it (buffered while its snapshot is prepared).
    pub(crate) tx: mpsc::UnboundedSender<Bytes>,
    /// Offset it last acknowledged.
    pub(crate) ack_offset: u64,
    /// When it last acknowledged.
    pub(crate) last_ack: Instant,
    /// True once the snapshot is sent and it receives the live stream.
    pub(crate) online: bool,
    /// Its output buffer: bytes handed to `tx` and not yet written to its socket (the
    /// streaming task subtracts what it wrote).
    pub(crate) queued: Arc<AtomicU64>,
    /// Its output buffer against `client-output-buffer-limit replica`.
    pub(crate) guard: OutputGuard,
    /// Told to stop when the replica is dropped for its output buffer.
    pub(crate) kill: Arc<tokio::sync::Notify>,
}

impl ReplicaHandle {
    /// True (and the replica's link told to stop) when `queued` bytes break `limit`: as
    /// Redis, the replica is dropped (it reconnects and resyncs) rather than letting its
    /// backlog take the primary's memory.
    fn drop_if_over(&mut self, limit: super::limits::OutputLimit, queued: u64) -> bool {
        if !self.guard.over(limit, queued) {
            return false;
        }
        log_overflow(
            &format!("id={} addr={}:{}", self.conn_id, self.ip, self.port),
            queued,
            ClientClass::Replica,
        );
        self.kill.notify_one();
        true
    }
}

/// This node's replica-side link, when it replicates a primary.
#[derive(Debug)]
pub(crate) struct ReplicaLink {
    /// The primary's id.
    pub(crate) primary: NodeId,
    /// The primary's client address.
    pub(crate) addr: SocketAddr,
    /// True once synced and streaming.
    pub(crate) up: bool,
    /// True while a full sync's snapshot is being received and loaded (clients get LOADING).
    pub(crate) loading: bool,
    /// Offset of the last byte applied.
    pub(crate) offset: u64,
    /// Replication id the primary announced.
    pub(crate) replid: String,
    /// When the link last carried data (INFO master_last_io_seconds_ago).
    pub(crate) last_io: Instant,
    /// Bumped on every change of primary, so an old replica task knows to stop.
    pub(crate) generation: u64,
    /// The database the stream's commands apply to (its last SELECT).
    pub(crate) db: usize,
    /// The primary's host as given to REPLICAOF (ROLE and INFO show it).
    pub(crate) host: String,
    /// When the link last went down (INFO master_link_down_since_seconds).
    pub(crate) down_since: Option<Instant>,
}

/// Replication state of a node.
#[derive(Debug)]
pub(crate) struct ReplState {
    /// Replication id (40 hex).
    pub(crate) replid: NodeId,
    /// Bytes of stream produced so far (master_repl_offset).
    pub(crate) offset: u64,
    /// Stream bytes produced by the current lock holder, sent to replicas on unlock.
    pending: BytesMut,
    /// Attached replicas.
    pub(crate) replicas: Vec<ReplicaHandle>,
    /// Set when this node is a replica.
    pub(crate) link: Option<ReplicaLink>,
    /// Source of link generations.
    pub(crate) next_generation: u64,
    /// `replica-serve-stale-data`: answer reads while the link to the primary is down.
    pub(crate) serve_stale_data: bool,
    /// The node's client limits (the replica class applies to `replicas`).
    pub(crate) limits: Arc<ClientLimits>,
    /// Full resyncs served (INFO sync_full).
    pub(crate) sync_full: u64,
    /// The database of the commands fed next (a standalone node's selected one).
    db: usize,
    /// The previous replication id and the first offset it does not cover
    /// (`master_replid2`, `second_repl_offset`), after a promotion.
    pub(crate) history2: Option<(String, u64)>,
    /// A coordinated FAILOVER in progress (`master_failover_state`).
    pub(crate) failover: Option<failover::Failover>,
    /// The database the stream last named with SELECT (`usize::MAX`: none yet, so the next
    /// command is preceded by one, as after a new replica's snapshot in Redis).
    stream_db: usize,
}

impl ReplState {
    /// A primary with no replicas and an empty stream, applying `limits` to its replicas.
    pub(crate) fn new(limits: Arc<ClientLimits>) -> ReplState {
        ReplState {
            replid: NodeId::random(),
            offset: 0,
            pending: BytesMut::new(),
            replicas: Vec::new(),
            link: None,
            next_generation: 1,
            serve_stale_data: true,
            limits,
            sync_full: 0,
            db: 0,
            stream_db: 0,
            history2: None,
            failover: None,
        }
    }

    /// This replica was promoted (its `link` ends): its history so far becomes the second
    /// one, valid up to the link's offset, under a new replication id, as Redis'
    /// `shiftReplicationId`: a replica of the same primary may continue here, a node with
    /// writes this one never saw may not.
    pub(crate) fn promoted(&mut self, link: &ReplicaLink) {
        self.offset = self.offset.max(link.offset);
        let old = if link.replid.is_empty() {
            self.replid.to_string()
        } else {
            link.replid.clone()
        };
        self.history2 = Some((old, self.offset + 1));
        self.replid = NodeId::random();
        self.reselect();
    }

    /// `master_failover_state`.
    pub(crate) fn failover_state(&self) -> &'static str {
        match &self.failover {
            None => "no-failover",
            Some(f) if f.handing_over => "failover-in-progress",
            Some(_) => "waiting-for-sync",
        }
    }

    /// True while a coordinated FAILOVER runs.
    pub(crate) fn failing_over(&self) -> bool {
        self.failover.is_some()
    }

    /// The backlog for INFO: active, first byte's offset, bytes held.
    pub(crate) fn backlog_info(&self) -> (bool, u64, u64) {
        (false, 0, 0)
    }

    /// The commands fed from now on belong to database `db`.
    pub(crate) fn set_db(&mut self, db: usize) {
        self.db = db;
    }

    /// Name the database again before the next command (a new replica's snapshot was
    /// taken: it starts applying in db 0).
    pub(crate) fn reselect(&mut self) {
        self.stream_db = usize::MAX;
    }

    /// Append commands to the stream.
    pub(crate) fn feed(&mut self, cmds: Vec<Vec<Bytes>>) {
        if cmds.is_empty() {
            return;
        }
        if self.stream_db != self.db {
            self.stream_db = self.db;
            let before = self.pending.len();
            let n = self.db.to_string();
            crate::resp::encode_command(&mut self.pending, [&b"SELECT"[..], n.as_bytes()]);
            self.offset += (self.pending.len() - before) as u64;
        }
        for cmd in cmds {
            let before = self.pending.len();
            crate::resp::encode_command(&mut self.pending, cmd.iter());
            self.offset += (self.pending.len() - before) as u64;
        }
    }

    /// Hand what was fed to every replica (called when the state lock is released).
    pub(crate) fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if self.replicas.is_empty() {
            self.pending.clear();
            return;
        }
        let data = self.pending.split().freeze();
        let limit = self.limits.output(ClientClass::Replica);
        self.replicas.retain_mut(|r| {
            // Counted before it is sent, so the streaming task's subtraction never comes
            // first.
            let len = data.len() as u64;
            let queued = r.queued.fetch_add(len, Ordering::Relaxed) + len;
            if r.tx.send(data.clone()).is_err() {
                return false;
            }
            !r.drop_if_over(limit, queued)
        });
    }

    /// Drop the replicas over their output limit with nothing new written: a replica that
    /// passed the soft limit and stays above it is dropped once the soft seconds run out,
    /// even when no write follows (Redis checks in `clientsCron`). Called from the cron.
    pub(crate) fn check_output_limits(&mut self) {
        if self.replicas.is_empty() {
            return;
        }
        let limit = self.limits.output(ClientClass::Replica);
        self.replicas.retain_mut(|r| {
            let queued = r.queued.load(Ordering::Relaxed);
            !r.drop_if_over(limit, queued)
        });
    }

    /// Stream bytes waiting in the replicas' output buffers (the largest of them).
    pub(crate) fn pending_bytes(&self) -> usize {
        self.replicas
            .iter()
            .map(|r| r.queued.load(Ordering::Relaxed) as usize)
            .max()
            .unwrap_or(0)
    }

    /// Number of replicas that acknowledged at least `offset`.
    pub(crate) fn acked(&self, offset: u64) -> usize {
        self.replicas
            .iter()
            .filter(|r| r.online && r.ack_offset >= offset)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::{split_sync_payload, sync_payload};

    #[test]
    fn sync_payload_round_trip_and_garbage() {
        let p = sync_payload(b"libs", b"keyspace");
        assert_eq!(
            split_sync_payload(&p).unwrap(),
            (&b"libs"[..], &b"keyspace"[..])
        );
        assert!(split_sync_payload(b"RCDB....").is_err());
        assert!(split_sync_payload(b"RCSY\0\0\0\x09libs").is_err());
        assert!(split_sync_payload(b"RCS").is_err());
    }
}
