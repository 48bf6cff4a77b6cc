//! Topology discovery and background refresh.
//!
//! Discovery asks up to three nodes (known primaries, then replicas, each in random order,
//! then the seeds) for
//! `CLUSTER SHARDS` (falling back to `CLUSTER SLOTS` on servers without it) and `CLUSTER
//! NODES` (for config epochs), in one round trip each, and keeps the view most of them agree
//! on (ties go to the higher epoch). A view with a lower epoch than the current one replaces
//! it only when every answering node (at least two) agrees on it, which happens when a
//! cluster was rebuilt from scratch, or when no known node answered and the seeds did (the
//! whole cluster restarted with new addresses behind the seeds' names, which are resolved
//! and mapped again on every connect).
//!
//! The refresh task is single-flight (one task does all refreshes), rate-limited (at most one
//! per [`MIN_REFRESH_GAP`]), runs every `refresh_interval`, and at once when asked (MOVED,
//! broken connections, CLUSTERDOWN, READONLY, an uncovered slot, a request that hit its
//! deadline). MOVEDs coalesce: while a refresh one of them asked for is queued or running,
//! further MOVEDs (each already patched its slot) ask for no other. Waiters learn a refresh
//! finished through a generation counter.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures::future::join_all;
use rand::seq::SliceRandom;
use tokio::sync::{watch, Notify};

use super::Inner;
use crate::connection::reply_of;
use crate::error::{Error, ErrorKind};
use crate::resp::Value;
use crate::topology::parse::{epochs_from_nodes, parse_nodes, parse_shards, parse_slots};
use crate::topology::Topology;

/// Shortest time between two refreshes.
pub(crate) const MIN_REFRESH_GAP: Duration = Duration::from_millis(100);
/// How many nodes a refresh asks.
const ASK_NODES: usize = 3;
/// What a node without cluster support answers `CLUSTER SHARDS` with.
const CLUSTER_DISABLED: &str = "cluster support disabled";
/// What a cluster node answers `SELECT n` (n > 0) with.
const SELECT_REFUSED: &str = "SELECT is not allowed in cluster mode";

/// The handle requests use to ask for refreshes and wait for them.
#[derive(Debug)]
pub(crate) struct Refresher {
    wake: Arc<Notify>,
    generation: watch::Receiver<u64>,
    /// A refresh asked for by a MOVED is queued or running: later MOVEDs (each already
    /// patched its slot) wait for that one instead of queueing another, so a storm of
    /// MOVEDs after a resharding costs one refresh.
    moved_pending: Arc<AtomicBool>,
}

impl Refresher {
    /// Start the refresh task for `inner` (held weakly: the task ends with the client).
    pub(crate) fn spawn(
        inner: Weak<Inner>,
        interval: Option<Duration>,
    ) -> (Refresher, Arc<Notify>) {
        let wake = Arc::new(Notify::new());
        let (tx, rx) = watch::channel(0u64);
        let moved_pending = Arc::new(AtomicBool::new(false));
        tokio::spawn(refresh_loop(
            inner,
            wake.clone(),
            tx,
            interval,
            moved_pending.clone(),
        ));
        (
            Refresher {
                wake: wake.clone(),
                generation: rx,
                moved_pending,
            },
            wake,
        )
    }

    /// Ask for a refresh soon (coalesced with any other request).
    pub(crate) fn trigger(&self) {
        self.wake.notify_one();
    }

    /// Ask for a refresh after a MOVED, unless one asked for by an earlier MOVED has not
    /// finished yet (it will bring this change too).
    pub(crate) fn trigger_after_moved(&self) {
        if !self.moved_pending.swap(true, Ordering::AcqRel) {
            self.trigger();
        }
    }

    /// Ask for a refresh and wait until one that started after this call has finished.
    pub(crate) async fn refresh_and_wait(&self) {
        let mut rx = self.generation.clone();
        let start = *rx.borrow_and_update();
        self.trigger();
        // A refresh already running may finish first with an older answer; the trigger
        // above has queued another one, and a caller that still sees stale data retries.
        while let Ok(()) = rx.changed().await {
            if *rx.borrow_and_update() > start {
                break;
            }
        }
    }
}

async fn refresh_loop(
    inner: Weak<Inner>,
    wake: Arc<Notify>,
    generation: watch::Sender<u64>,
    interval: Option<Duration>,
    moved_pending: Arc<AtomicBool>,
) {
    let mut last: Option<Instant> = None;
    loop {
        match interval {
            Some(every) => {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(every) => {}
                }
            }
            None => wake.notified().await,
        }
        if let Some(at) = last {
            let since = at.elapsed();
            if since < MIN_REFRESH_GAP {
                tokio::time::sleep(MIN_REFRESH_GAP - since).await;
            }
        }
        let Some(inner) = inner.upgrade() else { return };
        if inner.closing.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        last = Some(Instant::now());
        match discover(&inner).await {
            Ok(t) => inner.install(t),
            Err(e) => tracing::warn!(error = %e, "topology refresh failed"),
        }
        if inner.config.read_from == super::ReadFrom::Nearest {
            measure_latency(&inner).await;
        }
        drop(inner);
        moved_pending.store(false, Ordering::Release);
        generation.send_modify(|g| *g += 1);
    }
}

/// PING every node once and fold the round trip into its latency average, so `Nearest`
/// keeps comparing fresh figures even for nodes it has not chosen lately.
pub(crate) async fn measure_latency(inner: &Arc<Inner>) {
    let topo = inner.topology.load();
    let pings = topo.shards().iter().flat_map(|s| {
        std::iter::once((&s.primary, false)).chain(s.replicas.iter().map(|r| (r, true)))
    });
    join_all(pings.map(|(node, readonly)| async move {
        let entry = inner.pool.entry(&node.addr);
        let started = Instant::now();
        let ping = async {
            let conn = inner.pool.conn(&entry, readonly).await?;
            conn.request(&["PING"]).await
        };
        if let Ok(Ok(Value::SimpleString(_))) =
            tokio::time::timeout(inner.config.request_timeout, ping).await
        {
            entry.record_latency(started.elapsed());
        }
    }))
    .await;
}

/// One node's view.
async fn fetch_view(inner: &Arc<Inner>, addr: &str) -> Result<Topology, Error> {
    let entry = inner.pool.entry(addr);
    let conn = inner.pool.conn(&entry, false).await?;
    let shards_rx = conn.send(false, |b| {
        crate::resp::encode_command(b, ["CLUSTER", "SHARDS"])
    })?;
    let nodes_rx = conn.send(false, |b| {
        crate::resp::encode_command(b, ["CLUSTER", "NODES"])
    })?;
    let wait = async {
        let shards = reply_of(shards_rx.await)?;
        let nodes = reply_of(nodes_rx.await)?;
        let nodes_text = nodes.as_bytes().and_then(|b| std::str::from_utf8(b).ok());
        let mut list = match &shards {
            Value::Error(_) => {
                // Redis before 7: CLUSTER SLOTS; if even that fails, CLUSTER NODES text.
                let slots = conn.request(&["CLUSTER", "SLOTS"]).await?;
                match (&slots, nodes_text) {
                    (Value::Error(_), Some(text)) => parse_nodes(text, addr)?,
                    (Value::Error(line), None) => {
                        return Err(Error::server(&String::from_utf8_lossy(line)))
                    }
                    (v, _) => parse_slots(v, addr)?,
                }
            }
            v => parse_shards(v, addr)?,
        };
        if let Some(text) = nodes_text {
            let epochs = epochs_from_nodes(text);
            for s in &mut list {
                if let Some(e) = s.primary.id.as_ref().and_then(|id| epochs.get(id)) {
                    s.config_epoch = *e;
                }
            }
        }
        Ok(Topology::from_shards(list))
    };
    match tokio::time::timeout(inner.config.request_timeout, wait).await {
        Ok(r) => r,
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!("{addr} did not answer CLUSTER SHARDS in time"),
        )),
    }
}

/// Ask several nodes and pick the view to install.
///
/// # Errors
/// [`ErrorKind::Config`] listing each node's failure when none answered.
pub(crate) async fn discover(inner: &Arc<Inner>) -> Result<Topology, Error> {
    if inner.is_standalone() {
        return match &inner.config.mode {
            super::Mode::Sentinel(s) => super::sentinel::discover(inner, s).await,
            _ => super::standalone::discover(inner).await,
        };
    }
    let current = inner.topology.load();
    // Primaries first: they are the authority on their own slots, and replicas learn of a
    // change (a slot handed over, a failover) only after them.
    let mut candidates: Vec<String> = current
        .shards()
        .iter()
        .map(|s| s.primary.addr.clone())
        .collect();
    candidates.shuffle(&mut rand::thread_rng());
    let mut replicas: Vec<String> = current
        .shards()
        .iter()
        .flat_map(|s| s.replicas.iter().map(|r| r.addr.clone()))
        .collect();
    replicas.shuffle(&mut rand::thread_rng());
    candidates.extend(replicas);
    // Everything from here on is a seed, dialled by the name it was given (resolved again,
    // and mapped again, on every connect).
    let known = candidates.len();
    let mut seeds = inner.config.seeds.clone();
    seeds.shuffle(&mut rand::thread_rng());
    for s in seeds {
        if !candidates.contains(&s) {
            candidates.push(s);
        }
    }
    let mut views: Vec<Topology> = Vec::new();
    let mut from_known = 0;
    let mut failures: Vec<String> = Vec::new();
    let mut refused: Option<Error> = None;
    for (n, chunk) in candidates.chunks(ASK_NODES).enumerate() {
        let want = ASK_NODES - views.len();
        let results = join_all(chunk.iter().take(want).map(|a| fetch_view(inner, a))).await;
        for (i, (addr, r)) in chunk.iter().zip(results).enumerate() {
            match r {
                Ok(t) if !t.shards().is_empty() => {
                    from_known += usize::from(n * ASK_NODES + i < known);
                    views.push(t)
                }
                Ok(_) => failures.push(format!("{addr}: serves no slots")),
                Err(e) => {
                    if e.kind() == ErrorKind::Auth && refused.is_none() {
                        refused = Some(e.clone());
                    }
                    failures.push(format!("{addr}: {e}"))
                }
            }
        }
        if views.len() >= ASK_NODES.min(2) {
            break;
        }
    }
    if views.is_empty() {
        if failures.iter().any(|f| f.contains(CLUSTER_DISABLED)) {
            // Not a cluster: a standalone primary (with replicas, perhaps).
            if current.shards().is_empty() {
                tracing::info!("cluster support is disabled on the seeds: standalone mode");
                inner.set_standalone();
                return super::standalone::discover(inner).await;
            }
        }
        if let Some(f) = failures.iter().find(|f| f.contains(SELECT_REFUSED)) {
            return Err(Error::new(
                ErrorKind::Config,
                format!("database(n) needs a standalone deployment, not a cluster ({f})"),
            ));
        }
        // Refused credentials are the reason, not a reachability problem: say so, with
        // the kind callers match on.
        if let Some(refused) = refused {
            return Err(refused.for_user(inner.pool.user().as_deref()));
        }
        return Err(Error::new(
            ErrorKind::Config,
            format!("no cluster node answered ({})", failures.join("; ")),
        ));
    }
    let answered = views.len();
    let chosen = choose(views);
    let unanimous = chosen.1 == answered && answered >= 2;
    let view = chosen.0;
    // Every known node was unreachable and the seeds answered: the whole cluster came back
    // elsewhere (restarted with new addresses behind the same names). Its epochs started
    // again, so they say nothing against the old view.
    let rediscovered = from_known == 0 && known > 0;
    if rediscovered {
        tracing::info!(
            shards = view.shards().len(),
            "every known node unreachable; rediscovered the cluster from the seeds"
        );
    }
    if view.epoch() < current.epoch() && !unanimous && !rediscovered {
        return Err(Error::new(
            ErrorKind::ClusterDown,
            format!(
                "ignored a view with config epoch {} older than the current {}",
                view.epoch(),
                current.epoch()
            ),
        ));
    }
    Ok(view)
}

/// What two views must share to count as the same.
type Fingerprint = Vec<(u16, u16, String, Vec<String>)>;

/// The view most agree on, with how many agreed; ties go to the higher epoch.
fn choose(views: Vec<Topology>) -> (Topology, usize) {
    let mut groups: Vec<(Fingerprint, Topology, usize)> = Vec::new();
    for v in views {
        let fp = v.fingerprint();
        match groups.iter_mut().find(|g| g.0 == fp) {
            Some(g) => {
                g.2 += 1;
                if v.epoch() > g.1.epoch() {
                    g.1 = v;
                }
            }
            None => groups.push((fp, v, 1)),
        }
    }
    groups.sort_by(|a, b| b.2.cmp(&a.2).then(b.1.epoch().cmp(&a.1.epoch())));
    let (_, t, n) = groups.swap_remove(0);
    (t, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{Node, Shard};

    fn view(owner_of_0: &str, epoch: u64) -> Topology {
        Topology::from_shards(vec![Shard {
            primary: Node::from_addr(owner_of_0),
            replicas: vec![],
            slot_ranges: vec![(0, 16383)],
            config_epoch: epoch,
        }])
    }

    #[test]
    fn majority_wins_and_ties_go_to_the_higher_epoch() {
        let (t, n) = choose(vec![view("a:1", 5), view("b:1", 6), view("a:1", 5)]);
        assert_eq!(t.primary_for_slot(0), Some("a:1"));
        assert_eq!(n, 2);
        let (t, n) = choose(vec![view("a:1", 5), view("b:1", 6)]);
        assert_eq!(t.primary_for_slot(0), Some("b:1"));
        assert_eq!(n, 1);
    }
}
