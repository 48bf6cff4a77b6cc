//! Fault injection on [`TestCluster`]: kill, restart, pause, slow down, disconnect and
//! partition nodes, lag replicas, fail over. Nodes are named by their index in
//! [`TestCluster::nodes`], which never changes (a restarted node keeps its index).

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::cluster::failover::{self, FailoverMode};
use super::lifecycle;
use super::node::NodeShared;
use super::test_cluster::TestCluster;

/// Check `cond` every 20 ms until it holds; `TimedOut` ("`what` within `timeout`") after
/// `timeout`.
pub(super) async fn poll_until(
    timeout: Duration,
    what: &str,
    mut cond: impl FnMut() -> bool,
) -> io::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{what} within {timeout:?}"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn no_node(i: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("no node {i} in the cluster"),
    )
}

impl TestCluster {
    /// The current incarnation of node `i`.
    ///
    /// # Panics
    /// When `i` is out of range (a test bug).
    fn node(&self, i: usize) -> Arc<NodeShared> {
        let nodes = self.all();
        let n = nodes.len();
        nodes
            .get(i)
            .cloned()
            .unwrap_or_else(|| panic!("node index {i} out of range (the cluster has {n})"))
    }

    /// Kill node `i` like SIGKILL: its listener closes, every connection (clients,
    /// replication links both ways) drops, its bus goes silent. Its data stays in memory
    /// only for [`TestCluster::restart_node`] with `keep_data`.
    ///
    /// # Panics
    /// When `i` is out of range.
    pub async fn kill_node(&self, i: usize) {
        let n = self.node(i);
        n.stop();
        // Let the node's tasks see the stop and close their sockets.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    /// Start node `i` again on the same port with the same node id and cluster view (as
    /// Redis restarts from `nodes.conf`), keeping its keyspace or starting empty. It rejoins
    /// by gossip: as a replica of whoever took over its slots meanwhile (then it resyncs),
    /// or as before. Restarting a live node kills it first.
    ///
    /// # Errors
    /// When the port cannot be bound again, or `i` is out of range.
    pub async fn restart_node(&self, i: usize, keep_data: bool) -> io::Result<()> {
        let old = self.all().get(i).cloned().ok_or_else(|| no_node(i))?;
        if !old.is_shut_down() {
            self.kill_node(i).await;
        }
        let new = lifecycle::restart(&old, keep_data).await?;
        let mut nodes = self.nodes.write().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = nodes.get_mut(i) {
            *slot = new;
        }
        Ok(())
    }

    /// Kill the node that owns `key`'s slot as a primary now; its index.
    ///
    /// # Panics
    /// When no live primary owns the slot.
    pub async fn kill_primary_of(&self, key: impl AsRef<[u8]>) -> usize {
        let slot = crate::slot::key_slot(key.as_ref());
        let i = self
            .primary_index_of_slot(slot)
            .unwrap_or_else(|| panic!("no live primary owns slot {slot}"));
        self.kill_node(i).await;
        i
    }

    /// The index of the live node that owns `slot` as a primary in its own view; when
    /// several claim it (a paused or partitioned old primary that has not learned it was
    /// replaced), the claim with the highest config epoch, as the cluster decides.
    pub fn primary_index_of_slot(&self, slot: u16) -> Option<usize> {
        self.all()
            .iter()
            .enumerate()
            .filter(|(_, n)| !n.is_shut_down())
            .filter_map(|(i, n)| {
                let st = n.lock();
                let me = st.cluster.me();
                (me.is_primary() && st.cluster.slots[usize::from(slot)] == Some(n.id))
                    .then_some((me.config_epoch, i))
            })
            .max()
            .map(|(_, i)| i)
    }

    /// The index of the node listening on `addr`.
    pub fn index_of(&self, addr: std::net::SocketAddr) -> Option<usize> {
        self.all().iter().position(|n| n.addr == addr)
    }

    /// Indexes of the nodes that replicate node `i` now (their own view).
    pub fn replica_indexes_of(&self, i: usize) -> Vec<usize> {
        let nodes = self.all();
        let Some(primary) = nodes.get(i).map(|n| n.id) else {
            return Vec::new();
        };
        nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| !n.is_shut_down() && n.lock().cluster.me().replica_of == Some(primary))
            .map(|(j, _)| j)
            .collect()
    }

    /// Freeze node `i` (like SIGSTOP): connections stay open and requests queue unanswered,
    /// the bus is silent (others may fail it over), replication stalls; until
    /// [`TestCluster::resume_node`].
    ///
    /// # Panics
    /// When `i` is out of range.
    pub fn pause_node(&self, i: usize) {
        self.node(i).faults.set_pause(|p| p.frozen = true);
    }

    /// Undo [`TestCluster::pause_node`]: queued requests are answered.
    ///
    /// # Panics
    /// When `i` is out of range.
    pub fn resume_node(&self, i: usize) {
        self.node(i).faults.set_pause(|p| p.frozen = false);
    }

    /// Delay every batch of replies of node `i` by `d` (`Duration::ZERO`: no delay).
    ///
    /// # Panics
    /// When `i` is out of range.
    pub fn delay_replies(&self, i: usize, d: Duration) {
        self.node(i)
            .faults
            .reply_delay_ms
            .store(d.as_millis() as u64, Ordering::Relaxed);
    }

    /// Close every client connection of node `i` (replication links and the listener stay).
    ///
    /// # Panics
    /// When `i` is out of range.
    pub fn drop_connections(&self, i: usize) {
        self.node(i).clients.kill_all();
    }

    /// Make node `i` unreachable: its client connections and replication links are cut, new
    /// connections are refused (the listener closes within a moment; a connect racing
    /// with it is reset), its bus messages are dropped. It keeps running (and may still
    /// believe it owns its slots).
    ///
    /// # Panics
    /// When `i` is out of range.
    pub fn partition_node(&self, i: usize) {
        let n = self.node(i);
        n.faults.bus_blocked.store(true, Ordering::Relaxed);
        n.faults.partitioned.send_replace(true);
        n.clients.kill_all();
        n.migrate_links.clear();
        n.faults.cut_links();
        // Links from its replicas end on its side; links to its primary on the replica side.
        for other in self.all() {
            let linked = other
                .lock()
                .repl
                .link
                .as_ref()
                .is_some_and(|l| l.addr == n.addr);
            if linked {
                other.faults.cut_links();
            }
        }
    }

    /// Undo [`TestCluster::partition_node`].
    ///
    /// # Panics
    /// When `i` is out of range.
    pub fn heal_node(&self, i: usize) {
        let n = self.node(i);
        n.faults.partitioned.send_replace(false);
        n.faults.bus_blocked.store(false, Ordering::Relaxed);
    }

    /// Make replica `i` apply its replication stream `d` late (`Duration::ZERO`: in time):
    /// reads from it are stale, and writes it has not applied are lost if it is promoted.
    /// A full sync's loading also takes `d` (the LOADING window).
    ///
    /// # Panics
    /// When `i` is out of range.
    pub fn set_replication_lag(&self, i: usize, d: Duration) {
        self.node(i)
            .faults
            .repl_delay_ms
            .store(d.as_millis() as u64, Ordering::Relaxed);
    }

    /// `CLUSTER FAILOVER [FORCE|TAKEOVER]` on replica `replica`; returns once it is a
    /// primary (its view), or fails after 10 s. With `Default` the old primary has also
    /// learned it (its held writes get MOVED); the rest of the cluster follows by gossip
    /// within a bus round or two ([`TestCluster::wait_stable`] waits for that).
    ///
    /// # Errors
    /// The error CLUSTER FAILOVER would give (not a replica, primary failed without FORCE),
    /// or `TimedOut`.
    pub async fn failover(&self, replica: usize, mode: FailoverMode) -> io::Result<()> {
        let n = self
            .all()
            .get(replica)
            .cloned()
            .ok_or_else(|| no_node(replica))?;
        {
            let st = n.lock();
            failover::start(&st, &n, mode).map_err(io::Error::other)?;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let n = self.node(replica);
            if n.lock().cluster.me().is_primary() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "failover did not complete within 10 s",
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Wait until every live node agrees on every slot's owner, that owner is a live
    /// primary, every slot is covered and every live node says `cluster_state:ok`.
    ///
    /// # Errors
    /// `TimedOut` when that does not happen within `timeout`.
    pub async fn wait_stable(&self, timeout: Duration) -> io::Result<()> {
        poll_until(timeout, "cluster not stable", || self.stable()).await
    }

    fn stable(&self) -> bool {
        let live: Vec<Arc<NodeShared>> = self
            .all()
            .into_iter()
            .filter(|n| !n.is_shut_down())
            .collect();
        let Some(first) = live.first() else {
            return false;
        };
        let slots = first.lock().cluster.slots.clone();
        if slots.iter().any(Option::is_none) {
            return false;
        }
        let mut owners: Vec<_> = slots.iter().flatten().copied().collect();
        owners.sort_unstable();
        owners.dedup();
        let owners_ok = owners.iter().all(|id| {
            live.iter().any(|n| {
                n.id == *id && !n.faults.is_partitioned() && n.lock().cluster.me().is_primary()
            })
        });
        owners_ok
            && live.iter().all(|n| {
                let st = n.lock();
                st.cluster.ok && st.cluster.slots == slots
            })
    }
}
