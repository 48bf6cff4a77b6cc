//! Connections per node: `pool_size` multiplexed connections, least-loaded pick, lazy
//! connect, reconnect with jittered backoff.
//!
//! Each node address has one [`NodeEntry`] holding two small sets of connection slots: plain
//! ones (for primaries) and `READONLY` ones (for reads served by replicas), so a stale view
//! never makes a primary-only read land on a replica. A slot is filled on first use; a broken
//! connection is replaced on the next use, unless the node failed recently, in which case the
//! request fails fast (never sent) until the backoff passes, so a dead node costs nothing.
//! The entry also keeps the per-node figures routing uses: health, latency, request count.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::connection::{ConnectOptions, Connection};
use crate::error::{Error, ErrorKind};
use crate::router::decide::backoff;

/// First reconnect delay; doubled per failure up to [`MAX_BACKOFF`], with jitter.
const BASE_BACKOFF: Duration = Duration::from_millis(20);
/// Longest wait between reconnect attempts to a failing node.
const MAX_BACKOFF: Duration = Duration::from_millis(1000);

#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
    until: Option<Instant>,
    /// The last failure when the server refused the credentials: repeated during the
    /// backoff instead of a retryable "unreachable", so callers fail fast with the reason.
    refused: Option<Error>,
}

/// One node: its connections and what routing knows about it.
#[derive(Debug)]
pub(crate) struct NodeEntry {
    addr: String,
    plain: Box<[ArcSwapOption<Connection>]>,
    readonly: Box<[ArcSwapOption<Connection>]>,
    connect_lock: tokio::sync::Mutex<()>,
    backoff: Mutex<Backoff>,
    unhealthy_until: Mutex<Option<Instant>>,
    /// Requests sent to this node (stats).
    requests: AtomicU64,
    /// Connections re-opened after one broke (stats).
    reconnects: AtomicU64,
    /// Smoothed reply time in microseconds; 0 until measured.
    latency_us: AtomicU64,
    /// Consecutive LOADING replies, for backoff of a loading replica.
    loading_strikes: AtomicU32,
    /// Idle dedicated connections (blocking commands, transactions), plain and READONLY.
    exclusive_idle: Mutex<Vec<(bool, Connection)>>,
}

impl NodeEntry {
    /// The node's address.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// Count one request routed here.
    pub(crate) fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests routed here so far.
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Connections re-opened so far.
    pub(crate) fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// Fold one measured reply time into the moving average (weight 1/8).
    pub(crate) fn record_latency(&self, d: Duration) {
        let new = (d.as_micros() as u64).max(1);
        let _ = self
            .latency_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(if old == 0 { new } else { (old * 7 + new) / 8 })
            });
    }

    /// Smoothed reply time (0 = not measured yet).
    pub(crate) fn latency_us(&self) -> u64 {
        self.latency_us.load(Ordering::Relaxed)
    }

    /// Skip this node for replica reads for `d`.
    pub(crate) fn mark_unhealthy(&self, d: Duration) {
        let mut g = self
            .unhealthy_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *g = Some(Instant::now() + d);
    }

    /// The node answered LOADING: skip it for a growing while.
    pub(crate) fn mark_loading(&self) {
        let n = self.loading_strikes.fetch_add(1, Ordering::Relaxed);
        self.mark_unhealthy(backoff(n + 2, BASE_BACKOFF, MAX_BACKOFF));
    }

    /// False while the node recently failed to connect or answered LOADING.
    pub(crate) fn is_healthy(&self) -> bool {
        let until = *self
            .unhealthy_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        until.map_or(true, |t| Instant::now() >= t)
    }

    fn pick(set: &[ArcSwapOption<Connection>]) -> (Option<Arc<Connection>>, Option<usize>) {
        let mut best: Option<Arc<Connection>> = None;
        let mut empty = None;
        for (i, slot) in set.iter().enumerate() {
            match slot.load_full() {
                Some(c) if !c.is_closed() => {
                    if best.as_ref().map_or(true, |b| c.pending() < b.pending()) {
                        best = Some(c);
                    }
                }
                _ => {
                    if empty.is_none() {
                        empty = Some(i);
                    }
                }
            }
        }
        (best, empty)
    }
}

/// All nodes' connections.
#[derive(Debug)]
pub(crate) struct Pool {
    /// Copy-on-write map: lookups on the request path take no lock; inserts (new nodes)
    /// are rare and copy the map.
    nodes: ArcSwap<HashMap<String, Arc<NodeEntry>>>,
    /// Serialises inserts and removals so none is lost between copy and store.
    write: Mutex<()>,
    opts: ConnectOptions,
    size: usize,
}

impl Pool {
    /// The user connections authenticate as, for errors naming it.
    pub(crate) fn user(&self) -> Option<String> {
        self.opts.user()
    }

    pub(crate) fn new(opts: ConnectOptions, size: usize) -> Pool {
        Pool {
            nodes: ArcSwap::from_pointee(HashMap::new()),
            write: Mutex::new(()),
            opts,
            size: size.max(1),
        }
    }

    /// The entry for `addr`, created on first use.
    pub(crate) fn entry(&self, addr: &str) -> Arc<NodeEntry> {
        if let Some(e) = self.nodes.load().get(addr) {
            return e.clone();
        }
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.nodes.load_full();
        if let Some(e) = current.get(addr) {
            return e.clone();
        }
        let slots = |n: usize| (0..n).map(|_| ArcSwapOption::empty()).collect();
        let entry = Arc::new(NodeEntry {
            addr: addr.to_string(),
            plain: slots(self.size),
            readonly: slots(self.size),
            connect_lock: tokio::sync::Mutex::new(()),
            backoff: Mutex::new(Backoff::default()),
            unhealthy_until: Mutex::new(None),
            requests: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            latency_us: AtomicU64::new(0),
            loading_strikes: AtomicU32::new(0),
            exclusive_idle: Mutex::new(Vec::new()),
        });
        let mut next = HashMap::clone(&current);
        next.insert(addr.to_string(), entry.clone());
        self.nodes.store(Arc::new(next));
        entry
    }

    /// Every node entry (for stats).
    pub(crate) fn entries(&self) -> Vec<Arc<NodeEntry>> {
        self.nodes.load().values().cloned().collect()
    }

    /// Forget the node at `addr`: the next request opens new connections, dialling (and
    /// resolving) the address again. Requests in flight keep their connection until they end.
    pub(crate) fn forget(&self, addr: &str) {
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = HashMap::clone(&self.nodes.load_full());
        if next.remove(addr).is_some() {
            self.nodes.store(Arc::new(next));
        }
    }

    /// Forget nodes not in `keep` (after a refresh), closing their idle connections.
    pub(crate) fn retain(&self, keep: &[String]) {
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.nodes.load_full();
        if current.keys().all(|addr| keep.iter().any(|k| k == addr)) {
            return;
        }
        let mut next = HashMap::clone(&current);
        next.retain(|addr, _| keep.iter().any(|k| k == addr));
        self.nodes.store(Arc::new(next));
    }

    /// A live connection to `entry`'s node (a `READONLY` one when `readonly`), the least
    /// loaded of the set, connecting one if none is up.
    ///
    /// # Errors
    /// Connect failures (I/O, timeout, handshake), or an I/O error at once while the node is
    /// in reconnect backoff. All are "never sent".
    pub(crate) async fn conn(
        self: &Arc<Self>,
        entry: &Arc<NodeEntry>,
        readonly: bool,
    ) -> Result<Arc<Connection>, Error> {
        let set = if readonly {
            &entry.readonly
        } else {
            &entry.plain
        };
        let (best, empty) = NodeEntry::pick(set);
        if let Some(best) = best {
            if let (Some(i), true) = (empty, best.pending() > 0) {
                // Busy and a slot is free: open another connection in the background.
                let pool = self.clone();
                let entry = entry.clone();
                tokio::spawn(async move {
                    let _ = pool.fill(&entry, readonly, i).await;
                });
            }
            return Ok(best);
        }
        self.fill(entry, readonly, empty.unwrap_or(0)).await
    }

    async fn fill(
        &self,
        entry: &NodeEntry,
        readonly: bool,
        index: usize,
    ) -> Result<Arc<Connection>, Error> {
        let set = if readonly {
            &entry.readonly
        } else {
            &entry.plain
        };
        let _guard = entry.connect_lock.lock().await;
        let previous = set.get(index).and_then(|s| s.load_full());
        if let Some(c) = &previous {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        {
            let b = entry.backoff.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(until) = b.until {
                if Instant::now() < until {
                    if let Some(e) = &b.refused {
                        return Err(e.clone());
                    }
                    return Err(Error::new(
                        ErrorKind::Io,
                        format!(
                            "{} is unreachable (reconnect backoff after {} failures)",
                            entry.addr, b.failures
                        ),
                    ));
                }
            }
        }
        let mut opts = self.opts.clone();
        opts.readonly = readonly;
        match Connection::connect(&entry.addr, &opts).await {
            Ok(c) => {
                c.keep_authenticated();
                let c = Arc::new(c);
                if let Some(slot) = set.get(index) {
                    slot.store(Some(c.clone()));
                }
                *entry.backoff.lock().unwrap_or_else(|p| p.into_inner()) = Backoff::default();
                entry.loading_strikes.store(0, Ordering::Relaxed);
                if previous.is_some() {
                    entry.reconnects.fetch_add(1, Ordering::Relaxed);
                    crate::telemetry::reconnect(&entry.addr);
                    tracing::info!(addr = %entry.addr, readonly, "reconnected");
                } else {
                    tracing::debug!(addr = %entry.addr, readonly, "connected");
                }
                Ok(c)
            }
            Err(e) => {
                let wait = {
                    let mut b = entry.backoff.lock().unwrap_or_else(|p| p.into_inner());
                    let wait = backoff(b.failures, BASE_BACKOFF, MAX_BACKOFF);
                    b.failures = b.failures.saturating_add(1);
                    b.until = Some(Instant::now() + wait);
                    b.refused = (e.kind() == ErrorKind::Auth).then(|| e.clone());
                    wait
                };
                entry.mark_unhealthy(wait.max(Duration::from_millis(200)));
                tracing::warn!(addr = %entry.addr, error = %e, retry_in = ?wait, "connect failed");
                Err(e)
            }
        }
    }
}

/// Idle dedicated connections kept per node for reuse.
const EXCLUSIVE_IDLE_MAX: usize = 4;

/// A connection lent to one caller alone (a blocking command, a transaction), so nothing it
/// does can stall or interleave with multiplexed traffic. [`release`](Exclusive::release)
/// gives it back for reuse; dropping it instead closes it (the right end for a connection
/// left blocked, in a transaction, or watching keys).
#[derive(Debug)]
pub(crate) struct Exclusive {
    conn: Option<Connection>,
    readonly: bool,
    entry: Arc<NodeEntry>,
}

impl Exclusive {
    /// The connection.
    pub(crate) fn conn(&self) -> Option<&Connection> {
        self.conn.as_ref()
    }

    /// Return the connection to the node's idle set (when still open and in a clean state).
    pub(crate) fn release(mut self) {
        if let Some(c) = self.conn.take() {
            if c.is_closed() || c.pending() > 0 {
                return;
            }
            let mut idle = self
                .entry
                .exclusive_idle
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if idle.len() < EXCLUSIVE_IDLE_MAX {
                idle.push((self.readonly, c));
            }
        }
    }
}

impl Pool {
    /// A dedicated connection to `entry`'s node: an idle one, or a new one.
    ///
    /// # Errors
    /// Connect failures (never sent).
    pub(crate) async fn exclusive(
        &self,
        entry: &Arc<NodeEntry>,
        readonly: bool,
    ) -> Result<Exclusive, Error> {
        loop {
            let found = {
                let mut idle = entry
                    .exclusive_idle
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                let i = idle.iter().position(|(ro, _)| *ro == readonly);
                i.map(|i| idle.swap_remove(i).1)
            };
            match found {
                // (One whose credentials are due for renewal is replaced, not re-authenticated:
                // an AUTH must not land inside a caller's MULTI block.)
                Some(c) if !c.is_closed() && !c.auth_due() => {
                    return Ok(Exclusive {
                        conn: Some(c),
                        readonly,
                        entry: entry.clone(),
                    })
                }
                Some(_) => continue,
                None => break,
            }
        }
        let mut opts = self.opts.clone();
        opts.readonly = readonly;
        // No cached read goes through a dedicated connection, so it tracks nothing.
        opts.tracking = None;
        let c = Connection::connect(&entry.addr, &opts).await?;
        Ok(Exclusive {
            conn: Some(c),
            readonly,
            entry: entry.clone(),
        })
    }

    /// A fresh connection to `addr` outside the pool, with the client's handshake plus any
    /// `readonly`, for callers that own it (subscribers).
    ///
    /// # Errors
    /// Connect failures.
    pub(crate) async fn dedicated(&self, addr: &str, readonly: bool) -> Result<Connection, Error> {
        let mut opts = self.opts.clone();
        opts.readonly = readonly;
        // A subscriber's pushes are its messages: no tracking (BCAST would mix in
        // invalidations).
        opts.tracking = None;
        let c = Connection::connect(addr, &opts).await?;
        // A RESP2 subscriber accepts no AUTH: only RESP3 ones are renewed in place (the
        // others get fresh credentials when they reconnect).
        if opts.resp3 {
            c.keep_authenticated();
        }
        Ok(c)
    }
}
