//! Failure detection and failover, Redis 7's rules simplified but kept honest:
//!
//! - PFAIL: no pong from a node within `cluster-node-timeout` (`detect`).
//! - FAIL: PFAIL here plus reports from a majority of the slot-owning primaries (reports
//!   travel in gossip); the FAIL is then told to everyone.
//! - Election: the replicas of a FAILed primary wait a delay ranked by replication offset
//!   (most data first), bump the current epoch and ask every primary for its vote (one vote
//!   per epoch per primary). A majority promotes the replica: new config epoch, the old
//!   primary's slots, role primary. Others learn by gossip (the higher config epoch wins);
//!   the other replicas and the old primary, when back, follow the new one.
//! - Manual `CLUSTER FAILOVER` (graceful: the primary pauses clients, the replica catches up,
//!   then is elected), `FORCE` (no handshake) and `TAKEOVER` (no election).
//! - Replica migration: a primary left without a working replica gets one from the primary
//!   with the most (more than one, like `cluster-migration-barrier 1`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::state::NodeId;
use super::{bus, directory};
use crate::server::node::{now_ms, NodeShared, NodeState};

/// How a failover is asked for (`CLUSTER FAILOVER [FORCE|TAKEOVER]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailoverMode {
    /// Graceful: the primary stops taking writes, the replica catches up, then takes over;
    /// no acknowledged write is lost.
    Default,
    /// No handshake with the primary (it may be down): election right away.
    Force,
    /// No election: the replica bumps the epoch on its own and takes the slots.
    Takeover,
}

/// The node timeout of `st`'s view.
fn timeout_ms(st: &NodeState) -> u64 {
    st.cluster.node_timeout_ms.max(1)
}

/// One round of failure detection, elections and replica migration. Called by the bus task
/// after each gossip round.
pub(crate) fn cron(shared: &Arc<NodeShared>) {
    let election = {
        let mut st = shared.lock();
        detect(&mut st);
        let election = plan_election(&mut st);
        migrate_replica(&mut st);
        bus::apply_repoint(&mut st, shared);
        election
    };
    if let Some((primary, epoch)) = election {
        run_election(shared, primary, epoch, false);
    }
}

/// PFAIL after the node timeout; FAIL once a majority of primaries agree.
fn detect(st: &mut NodeState) {
    let now = now_ms();
    let timeout = timeout_ms(st);
    let cl = &mut st.cluster;
    let me = cl.myself;
    let suspect = cl
        .nodes
        .values()
        .any(|p| p.pfail || (p.ping_sent_ms != 0 && now.saturating_sub(p.ping_sent_ms) > timeout));
    if !suspect {
        // Nothing to decide; reports from others about healthy nodes age out later.
        return;
    }
    let size = cl.size();
    let i_count = cl.me().is_primary() && !cl.my_ranges().is_empty();
    let mut changed = false;
    let ids: Vec<NodeId> = cl.nodes.keys().copied().filter(|id| *id != me).collect();
    let primaries: Vec<NodeId> = cl
        .nodes
        .values()
        .filter(|p| p.is_primary() && !p.failed)
        .map(|p| p.id)
        .collect();
    for id in ids {
        let Some(peer) = cl.nodes.get_mut(&id) else {
            continue;
        };
        let silent = peer.ping_sent_ms != 0 && now.saturating_sub(peer.ping_sent_ms) > timeout;
        if silent && !peer.pfail {
            tracing::info!(node = %id, "node timed out (PFAIL)");
            peer.pfail = true;
            changed = true;
        }
        peer.fail_reports
            .retain(|from, at| now.saturating_sub(*at) <= 2 * timeout && primaries.contains(from));
        if peer.pfail && !peer.failed {
            let votes = peer.fail_reports.len() + usize::from(i_count);
            if votes > size / 2 {
                tracing::warn!(node = %id, "node failed (FAIL)");
                peer.failed = true;
                changed = true;
            }
        }
    }
    if changed {
        cl.update_state();
    }
}

/// The delay before a replica's automatic election: ranked by replication offset, scaled
/// down from Redis' 500 ms + random 0-500 ms + rank * 1 s when the node timeout is short.
fn election_delay(timeout: u64, rank: u64) -> u64 {
    let scale = |ms: u64| ms * timeout.min(5000) / 5000;
    let base = scale(500).max(20);
    base + rand::random::<u64>() % (base + 1) + rank * scale(1000).max(50)
}

/// As a replica of a FAILed primary: plan the election, and say when it is due.
fn plan_election(st: &mut NodeState) -> Option<(NodeId, u64)> {
    let now = now_ms();
    let timeout = timeout_ms(st);
    let my_offset = st.repl.link.as_ref().map_or(0, |l| l.offset);
    let cl = &mut st.cluster;
    let Some(primary) = cl.me().replica_of else {
        cl.failover.election_at = 0;
        return None;
    };
    let failed = cl
        .nodes
        .get(&primary)
        .is_some_and(|p| p.failed && cl.slot_count(&primary) > 0);
    if !failed {
        cl.failover.election_at = 0;
        return None;
    }
    if cl.failover.election_at == 0 {
        let me = cl.myself;
        let rank = cl
            .replicas_of(&primary)
            .iter()
            .filter(|p| p.id != me && !p.failed && p.repl_offset > my_offset)
            .count() as u64;
        let delay = election_delay(timeout, rank);
        tracing::info!(%primary, rank, delay, "primary failed: election planned");
        cl.failover.election_at = now + delay;
        return None;
    }
    if now < cl.failover.election_at || now < cl.failover.retry_after {
        return None;
    }
    cl.current_epoch += 1;
    cl.failover.retry_after = now + 2 * timeout;
    Some((primary, cl.current_epoch))
}

/// Ask every primary for its vote; promote on a majority.
fn run_election(shared: &Arc<NodeShared>, primary: NodeId, epoch: u64, manual: bool) -> bool {
    let (voters, needed) = {
        let st = shared.lock();
        let cl = &st.cluster;
        let voters: Vec<SocketAddr> = cl
            .nodes
            .values()
            // In a manual failover the old primary is alive and votes too (Redis counts it).
            .filter(|p| p.is_primary() && (manual || p.id != primary) && cl.slot_count(&p.id) > 0)
            .map(|p| p.addr)
            .collect();
        (voters, cl.size() / 2 + 1)
    };
    if shared.faults.bus_silent() {
        return false;
    }
    let mut votes = 0;
    for addr in voters {
        let Some(voter) = directory::lookup(addr) else {
            continue;
        };
        if voter.faults.bus_silent() {
            continue;
        }
        if grant_vote(&mut voter.lock(), shared.id, primary, epoch, manual) {
            votes += 1;
        }
    }
    let mut st = shared.lock();
    if votes < needed || st.cluster.me().replica_of != Some(primary) {
        tracing::info!(votes, needed, epoch, "election lost");
        return false;
    }
    tracing::warn!(votes, epoch, old = %primary, "election won: promoted to primary");
    promote(&mut st, shared, epoch);
    true
}

/// A primary's vote for `candidate`, a replica of `primary`, in `epoch`.
fn grant_vote(
    st: &mut NodeState,
    candidate: NodeId,
    primary: NodeId,
    epoch: u64,
    manual: bool,
) -> bool {
    let now = now_ms();
    let timeout = timeout_ms(st);
    let cl = &mut st.cluster;
    let me = cl.myself;
    if !cl.me().is_primary() || cl.slot_count(&me) == 0 {
        return false;
    }
    cl.current_epoch = cl.current_epoch.max(epoch);
    if cl.failover.last_vote_epoch >= epoch {
        return false;
    }
    let Some(failed) = cl.nodes.get(&primary) else {
        return false;
    };
    if !manual && !failed.failed {
        return false;
    }
    if cl.nodes.get(&candidate).and_then(|p| p.replica_of) != Some(primary) {
        return false;
    }
    if cl
        .failover
        .voted_for
        .get(&primary)
        .is_some_and(|t| now.saturating_sub(*t) < 2 * timeout)
    {
        return false;
    }
    cl.failover.last_vote_epoch = epoch;
    cl.failover.voted_for.insert(primary, now);
    true
}

/// Make this replica the primary of its primary's slots, with config epoch `epoch`.
pub(crate) fn promote(st: &mut NodeState, shared: &NodeShared, epoch: u64) {
    let Some(old) = st.cluster.me().replica_of else {
        return;
    };
    let cl = &mut st.cluster;
    cl.current_epoch = cl.current_epoch.max(epoch);
    let me = cl.myself;
    {
        let mine = cl.me_mut();
        mine.replica_of = None;
        mine.config_epoch = epoch;
    }
    for slot in 0..crate::slot::SLOT_COUNT {
        if cl.slots[usize::from(slot)] == Some(old) {
            cl.assign_slot(slot, Some(me));
        }
    }
    cl.migrating.clear();
    cl.importing.clear();
    cl.failover.election_at = 0;
    cl.update_state();
    st.db.set_replica(false);
    if let Some(link) = st.repl.link.take() {
        st.repl.promoted(&link);
    }
    shared.bus_wakeup.notify_one();
}

/// Replica migration: the replica with the smallest id among those of the primary with the
/// most working replicas (more than one) moves to a primary orphaned for a node timeout.
fn migrate_replica(st: &mut NodeState) {
    let now = now_ms();
    let timeout = timeout_ms(st);
    let cl = &mut st.cluster;
    let Some(my_primary) = cl.me().replica_of else {
        return;
    };
    let working = |cl: &super::state::ClusterState, p: &NodeId| {
        cl.replicas_of(p)
            .iter()
            .filter(|r| !r.failed && !r.pfail)
            .count()
    };
    let mine = working(cl, &my_primary);
    if mine < 2 {
        return;
    }
    let me = cl.myself;
    let smallest = cl
        .replicas_of(&my_primary)
        .iter()
        .filter(|r| !r.failed && !r.pfail)
        .map(|r| r.id)
        .min();
    let owners = cl.owners();
    let orphans: Vec<NodeId> = owners
        .into_iter()
        .filter(|p| {
            *p != my_primary
                && cl.nodes.get(p).is_some_and(|n| n.is_primary() && !n.failed)
                && working(cl, p) == 0
        })
        .collect();
    cl.failover.orphan_since.retain(|p, _| orphans.contains(p));
    let most = cl
        .nodes
        .values()
        .filter(|p| p.is_primary())
        .map(|p| working(cl, &p.id))
        .max()
        .unwrap_or(0);
    for orphan in orphans {
        let since = *cl.failover.orphan_since.entry(orphan).or_insert(now);
        if smallest == Some(me) && mine == most && now.saturating_sub(since) >= timeout {
            tracing::info!(%orphan, "replica migration");
            cl.failover.orphan_since.clear();
            cl.repoint = Some(orphan);
            return;
        }
    }
}

/// `CLUSTER FAILOVER [FORCE|TAKEOVER]` on a replica: checks, then the failover runs in the
/// background (the command answers OK at once, as Redis).
///
/// # Errors
/// Redis' error replies for a primary, or a failed primary without FORCE.
pub(crate) fn start(st: &NodeState, shared: &NodeShared, mode: FailoverMode) -> Result<(), String> {
    let Some(primary) = st.cluster.me().replica_of else {
        return Err("ERR You should send CLUSTER FAILOVER to a replica".into());
    };
    let failed = st.cluster.nodes.get(&primary).map_or(true, |p| p.failed);
    if mode == FailoverMode::Default && failed {
        return Err("ERR Master is down or failed, please use CLUSTER FAILOVER FORCE".into());
    }
    let Some(node) = directory::lookup(shared.addr) else {
        return Err("ERR node is shutting down".into());
    };
    tokio::spawn(manual(node, primary, mode));
    Ok(())
}

async fn manual(shared: Arc<NodeShared>, primary: NodeId, mode: FailoverMode) {
    if mode == FailoverMode::Takeover {
        let mut st = shared.lock();
        if st.cluster.me().replica_of == Some(primary) {
            st.cluster.current_epoch += 1;
            let epoch = st.cluster.current_epoch;
            tracing::warn!(epoch, "CLUSTER FAILOVER TAKEOVER");
            promote(&mut st, &shared, epoch);
        }
        return;
    }
    let mut paused = None;
    if mode == FailoverMode::Default {
        let addr = shared.lock().cluster.nodes.get(&primary).map(|p| p.addr);
        let Some(old) = addr.and_then(directory::lookup) else {
            return;
        };
        // Redis' manual failover timeout: 5 s.
        let until = tokio::time::Instant::now() + Duration::from_secs(5);
        old.faults.set_pause(|p| {
            p.clients_until = Some(until);
            p.writes_only = true;
        });
        paused = Some(old.clone());
        // Let commands already past the pause check finish.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let caught_up = loop {
            let target = {
                let mut st = old.lock();
                st.repl.flush();
                st.repl.offset
            };
            let mine = shared.lock().repl.link.as_ref().map(|l| (l.offset, l.up));
            match mine {
                Some((offset, true)) if offset >= target => break true,
                Some(_) if tokio::time::Instant::now() < until => {}
                _ => break false,
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        if !caught_up {
            tracing::warn!("manual failover: replica did not catch up in time");
            old.faults.set_pause(|p| p.clients_until = None);
            return;
        }
    }
    let epoch = {
        let mut st = shared.lock();
        st.cluster.current_epoch += 1;
        st.cluster.current_epoch
    };
    let won = run_election(&shared, primary, epoch, true);
    if let Some(old) = paused {
        if won {
            // Tell the old primary at once, so the clients it held get MOVED.
            bus::push(&shared, old.addr);
        }
        old.faults.set_pause(|p| p.clients_until = None);
    }
}

#[cfg(test)]
mod tests {
    use super::election_delay;

    #[test]
    fn better_ranked_replicas_go_first() {
        for _ in 0..20 {
            assert!(election_delay(1000, 0) < election_delay(1000, 1));
            assert!(election_delay(15_000, 0) >= 500);
        }
    }
}
