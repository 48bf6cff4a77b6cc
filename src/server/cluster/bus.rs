//! The cluster bus, in process: nodes find each other through a process-wide registry keyed
//! by client address, and every ~100 ms each node pings every node it knows with its state;
//! the peer answers with its own (the pong). Receivers learn new nodes and adopt slot claims
//! that carry a higher config epoch, Redis' rule.
//!
//! Per-peer ping/pong times are kept in the view (`Peer::ping_sent_ms`, `pong_recv_ms`) for
//! failure detection; `Faults::bus_blocked` drops every message to and from a node.

use std::net::SocketAddr;

use super::directory::lookup;
use super::state::{NodeId, Peer};
use crate::server::node::{now_ms, NodeShared, NodeState};

/// One bus message: the sender's state and the nodes it knows.
#[derive(Clone, Debug)]
pub(crate) struct Gossip {
    /// Sender id.
    pub(crate) from: NodeId,
    /// Sender client address.
    pub(crate) addr: SocketAddr,
    /// Sender's `cluster-announce-hostname` (Redis' hostname ping extension).
    pub(crate) hostname: String,
    /// True for a MEET: the receiver adds the sender even if unknown.
    pub(crate) meet: bool,
    /// The primary the sender replicates.
    pub(crate) replica_of: Option<NodeId>,
    /// The sender's config epoch.
    pub(crate) config_epoch: u64,
    /// The sender's current epoch.
    pub(crate) current_epoch: u64,
    /// Slot ranges the sender claims (primaries only).
    pub(crate) slots: Vec<(u16, u16)>,
    /// Replication offset.
    pub(crate) repl_offset: u64,
    /// For replicas: link to the primary is up.
    pub(crate) repl_online: bool,
    /// Other nodes the sender knows.
    pub(crate) known: Vec<(NodeId, SocketAddr)>,
    /// Nodes the sender finds unreachable: (id, true for FAIL, false for PFAIL). From a
    /// slot-owning primary, a failure report; a FAIL is adopted by every receiver.
    pub(crate) suspects: Vec<(NodeId, bool)>,
}

/// The message `st`'s node sends.
pub(crate) fn snapshot(st: &mut NodeState, meet: bool) -> Gossip {
    let slots = if st.cluster.me().is_primary() {
        st.cluster.my_ranges()
    } else {
        Vec::new()
    };
    let cl = &st.cluster;
    let me = cl.me();
    let (repl_offset, repl_online) = match &st.repl.link {
        Some(link) if !me.is_primary() => (link.offset, link.up),
        _ => (st.repl.offset, true),
    };
    Gossip {
        from: cl.myself,
        addr: me.addr,
        hostname: me.hostname.clone(),
        meet,
        replica_of: me.replica_of,
        config_epoch: me.config_epoch,
        current_epoch: cl.current_epoch,
        slots,
        repl_offset,
        repl_online,
        known: cl
            .nodes
            .values()
            .filter(|p| p.id != cl.myself)
            .map(|p| (p.id, p.addr))
            .collect(),
        suspects: cl
            .nodes
            .values()
            .filter(|p| p.pfail || p.failed)
            .map(|p| (p.id, p.failed))
            .collect(),
    }
}

/// Apply a message to `st`. Returns false when the sender is unknown and it was no MEET.
pub(crate) fn receive(st: &mut NodeState, msg: &Gossip) -> bool {
    let now = now_ms();
    let cl = &mut st.cluster;
    if msg.from == cl.myself {
        return false;
    }
    cl.forgotten.retain(|_, until| *until > now);
    if cl.forgotten.contains_key(&msg.from) {
        return false;
    }
    if let std::collections::btree_map::Entry::Vacant(slot) = cl.nodes.entry(msg.from) {
        if !msg.meet {
            return false;
        }
        slot.insert(Peer::new(msg.from, msg.addr));
    }
    cl.msgs_received += 1;
    cl.current_epoch = cl.current_epoch.max(msg.current_epoch);
    let became_replica;
    {
        let peer = cl.nodes.get_mut(&msg.from).expect("inserted above");
        peer.addr = msg.addr;
        peer.cport = msg.addr.port().wrapping_add(10000);
        peer.hostname.clone_from(&msg.hostname);
        peer.pong_recv_ms = now;
        peer.ping_sent_ms = 0;
        peer.failed = false;
        peer.pfail = false;
        peer.repl_offset = msg.repl_offset;
        peer.repl_online = msg.repl_online;
        became_replica = msg.replica_of.is_some() && peer.replica_of != msg.replica_of;
        peer.replica_of = msg.replica_of;
        if msg.config_epoch > peer.config_epoch || msg.replica_of.is_some() {
            peer.config_epoch = msg.config_epoch;
        }
    }
    if became_replica {
        cl.unassign_all(msg.from);
    }
    let version_before = cl.slots_version;
    let already = cl.nodes[&msg.from]
        .applied_claims
        .as_ref()
        .is_some_and(|(claims, epoch, v)| {
            *claims == msg.slots && *epoch == msg.config_epoch && *v == cl.slots_version
        });
    let mut lost = Vec::new();
    let my_owner = cl.data_owner();
    let mut took_from_mine = false;
    if msg.replica_of.is_none() && !already {
        for &(start, end) in &msg.slots {
            for slot in start..=end {
                let i = usize::from(slot);
                let owner = cl.slots[i];
                if owner == Some(msg.from) || cl.importing.contains_key(&slot) {
                    continue;
                }
                let adopt = match owner {
                    None => true,
                    Some(o) => cl.node_epoch(&o) < msg.config_epoch,
                };
                if adopt {
                    took_from_mine |= owner == Some(my_owner);
                    if owner == Some(cl.myself) {
                        lost.push(slot);
                        cl.migrating.remove(&slot);
                    }
                    cl.assign_slot(slot, Some(msg.from));
                }
            }
        }
        let version = cl.slots_version;
        if let Some(peer) = cl.nodes.get_mut(&msg.from) {
            peer.applied_claims = Some((msg.slots.clone(), msg.config_epoch, version));
        }
    }
    // Redis' rule: a node whose (primary's) slots all went to the sender follows it.
    if took_from_mine && my_owner != msg.from && cl.slot_count(&my_owner) == 0 {
        cl.repoint = Some(msg.from);
        lost.clear();
    }
    failure_reports(cl, msg, now);
    for (id, addr) in &msg.known {
        if *id != cl.myself && !cl.nodes.contains_key(id) && !cl.forgotten.contains_key(id) {
            cl.nodes.insert(*id, Peer::new(*id, *addr));
        }
    }
    // Config epoch collision: the node with the smaller id takes a new epoch.
    let me = cl.me();
    if msg.replica_of.is_none()
        && me.is_primary()
        && msg.config_epoch == me.config_epoch
        && msg.from > cl.myself
    {
        cl.current_epoch += 1;
        let epoch = cl.current_epoch;
        cl.me_mut().config_epoch = epoch;
    }
    if cl.slots_version != version_before || became_replica || !cl.ok {
        cl.update_state();
    }
    for slot in lost {
        st.db.delete_keys_in_slot(slot);
    }
    true
}

/// Record the sender's failure reports (when it is a slot-owning primary) and adopt the
/// FAILs it announces.
fn failure_reports(cl: &mut super::state::ClusterState, msg: &Gossip, now: u64) {
    let reporter = msg.replica_of.is_none() && !msg.slots.is_empty();
    let grace = cl.node_timeout_ms / 2;
    let mut changed = false;
    for peer in cl.nodes.values_mut() {
        if peer.id == cl.myself || peer.id == msg.from {
            continue;
        }
        match msg.suspects.iter().find(|(id, _)| *id == peer.id) {
            Some(&(_, fail)) => {
                if reporter {
                    peer.fail_reports.insert(msg.from, now);
                }
                if fail && !peer.failed && now.saturating_sub(peer.pong_recv_ms) > grace {
                    tracing::info!(node = %peer.id, from = %msg.from, "FAIL received");
                    peer.failed = true;
                    peer.pfail = true;
                    changed = true;
                }
            }
            None => {
                peer.fail_reports.remove(&msg.from);
            }
        }
    }
    if changed {
        cl.update_state();
    }
}

/// Exchange a ping/pong with the node at `addr` now (after a failover, so it learns at
/// once).
pub(crate) fn push(shared: &NodeShared, addr: SocketAddr) {
    exchange(shared, addr, None, false);
}

/// True while fault injection cuts `node` off the bus.
pub(crate) fn blocked(node: &NodeShared) -> bool {
    node.faults.bus_silent()
}

/// One round: MEETs first, then a ping to every known node.
/// One gossip round: ping every known node.
pub(crate) fn tick(shared: &NodeShared) {
    if blocked(shared) {
        return;
    }
    let (meets, peers) = {
        let mut st = shared.lock();
        let meets = std::mem::take(&mut st.cluster.pending_meets);
        let now = now_ms();
        let peers: Vec<(NodeId, SocketAddr)> = st
            .cluster
            .nodes
            .values_mut()
            .filter(|p| p.id != shared.id)
            .map(|p| {
                if p.ping_sent_ms == 0 {
                    p.ping_sent_ms = now;
                }
                (p.id, p.addr)
            })
            .collect();
        (meets, peers)
    };
    for addr in meets {
        exchange(shared, addr, None, true);
    }
    if peers.is_empty() {
        return;
    }
    // One ping serves every peer this round.
    let ping = snapshot(&mut shared.lock(), false);
    for (id, addr) in peers {
        exchange_with(shared, addr, Some(id), &ping);
    }
}

/// Ping the node at `addr` and take its pong. Locks one node at a time.
fn exchange(shared: &NodeShared, addr: SocketAddr, expect: Option<NodeId>, meet: bool) {
    let ping = snapshot(&mut shared.lock(), meet);
    exchange_with(shared, addr, expect, &ping);
}

/// Deliver `ping` to the node at `addr` and apply its pong.
fn exchange_with(shared: &NodeShared, addr: SocketAddr, expect: Option<NodeId>, ping: &Gossip) {
    let meet = ping.meet;
    let Some(peer) = lookup(addr) else {
        return;
    };
    if blocked(&peer) || expect.is_some_and(|id| id != peer.id) || peer.id == shared.id {
        return;
    }
    shared.lock().cluster.msgs_sent += 1;
    let pong = {
        let mut st = peer.lock();
        if !receive(&mut st, ping) {
            return;
        }
        apply_repoint(&mut st, &peer);
        st.cluster.msgs_sent += 1;
        snapshot(&mut st, meet)
    };
    let mut st = shared.lock();
    receive(&mut st, &pong);
    apply_repoint(&mut st, shared);
}

/// Follow the primary gossip or replica migration asked this node to replicate.
pub(crate) fn apply_repoint(st: &mut NodeState, shared: &NodeShared) {
    repoint(st, shared);
    // Keys dropped with a lost slot, or flushed to follow a new primary.
    st.settle_tracking(&shared.clients);
}

fn repoint(st: &mut NodeState, shared: &NodeShared) {
    let Some(target) = st.cluster.repoint.take() else {
        return;
    };
    let Some(addr) = st.cluster.nodes.get(&target).map(|p| p.addr) else {
        return;
    };
    if st.cluster.me().replica_of == Some(target) {
        return;
    }
    tracing::info!(primary = %target, "now replicating");
    st.db.flush();
    crate::server::replication::replica::become_replica(st, shared, target, addr);
}
