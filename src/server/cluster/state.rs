//! One node's view of the cluster: known nodes, slot owners, epochs, open slots.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;

use crate::slot::SLOT_COUNT;

pub(crate) use super::id::NodeId;

/// `cluster-preferred-endpoint-type`: what CLUSTER SLOTS, SHARDS' `endpoint` and MOVED/ASK
/// name a node by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum EndpointType {
    /// Its IP address (Redis' default).
    #[default]
    Ip,
    /// Its `cluster-announce-hostname` (`?` when it has none).
    Hostname,
    /// Nothing: clients reuse the address they already used (NULL / empty).
    Unknown,
}

impl EndpointType {
    /// Parse a CONFIG SET value.
    pub(crate) fn parse(text: &str) -> Option<EndpointType> {
        match text.to_ascii_lowercase().as_str() {
            "ip" => Some(EndpointType::Ip),
            "hostname" => Some(EndpointType::Hostname),
            "unknown-endpoint" => Some(EndpointType::Unknown),
            _ => None,
        }
    }

    /// The CONFIG GET value.
    pub(crate) fn name(self) -> &'static str {
        match self {
            EndpointType::Ip => "ip",
            EndpointType::Hostname => "hostname",
            EndpointType::Unknown => "unknown-endpoint",
        }
    }
}

/// Inclusive slot ranges, ascending.
pub(crate) type SlotRanges = Vec<(u16, u16)>;

/// What this node knows about one node (itself included).
#[derive(Clone, Debug)]
pub(crate) struct Peer {
    /// The node's id.
    pub(crate) id: NodeId,
    /// Client address.
    pub(crate) addr: SocketAddr,
    /// Nominal bus port shown in CLUSTER NODES (`port + 10000`, as Redis defaults).
    pub(crate) cport: u16,
    /// Its `cluster-announce-hostname` (empty: none), spread by gossip.
    pub(crate) hostname: String,
    /// The primary it replicates, when it is a replica.
    pub(crate) replica_of: Option<NodeId>,
    /// The epoch its slot claims carry.
    pub(crate) config_epoch: u64,
    /// When we last sent it a ping (ms since the epoch; 0: none outstanding).
    pub(crate) ping_sent_ms: u64,
    /// When it last answered (ms since the epoch).
    pub(crate) pong_recv_ms: u64,
    /// Replication offset it last reported.
    pub(crate) repl_offset: u64,
    /// For replicas: whether its link to its primary is up (health in CLUSTER SHARDS).
    pub(crate) repl_online: bool,
    /// The slot claims last applied from this node: (claims, config epoch, the view's
    /// `slots_version` afterwards). Identical claims on an unchanged view are skipped.
    pub(crate) applied_claims: Option<(SlotRanges, u64, u64)>,
    /// FAIL: a majority of primaries agreed it is unreachable.
    pub(crate) failed: bool,
    /// PFAIL: this node had no pong from it within the node timeout.
    pub(crate) pfail: bool,
    /// Primaries that reported it PFAIL or FAIL, and when (ms).
    pub(crate) fail_reports: HashMap<NodeId, u64>,
}

impl Peer {
    /// A peer known by id and address only.
    pub(crate) fn new(id: NodeId, addr: SocketAddr) -> Peer {
        Peer {
            id,
            addr,
            cport: addr.port().wrapping_add(10000),
            hostname: String::new(),
            replica_of: None,
            config_epoch: 0,
            ping_sent_ms: 0,
            pong_recv_ms: 0,
            repl_offset: 0,
            repl_online: false,
            applied_claims: None,
            failed: false,
            pfail: false,
            fail_reports: HashMap::new(),
        }
    }

    /// True for primaries.
    pub(crate) fn is_primary(&self) -> bool {
        self.replica_of.is_none()
    }
}

/// One node's view of the whole cluster.
#[derive(Debug)]
pub(crate) struct ClusterState {
    /// This node's id.
    pub(crate) myself: NodeId,
    /// The highest epoch seen anywhere.
    pub(crate) current_epoch: u64,
    /// Every known node, this one included.
    pub(crate) nodes: BTreeMap<NodeId, Peer>,
    /// Owner of each slot. Change it only through [`ClusterState::assign_slot`] and
    /// [`ClusterState::unassign_all`], which keep `slots_version` current.
    pub(crate) slots: Vec<Option<NodeId>>,
    /// Bumped on every change of `slots` (lets the bus skip unchanged claims).
    pub(crate) slots_version: u64,
    /// This node's own ranges and the `slots_version` they were computed at.
    my_ranges: (u64, Vec<(u16, u16)>),
    /// Slots this node is moving away (`SETSLOT MIGRATING`), by destination.
    pub(crate) migrating: HashMap<u16, NodeId>,
    /// Slots this node is receiving (`SETSLOT IMPORTING`), by source.
    pub(crate) importing: HashMap<u16, NodeId>,
    /// Nodes recently forgotten, kept out of gossip until the deadline (ms).
    pub(crate) forgotten: HashMap<NodeId, u64>,
    /// `cluster_state:ok`: every slot served.
    pub(crate) ok: bool,
    /// Addresses given to CLUSTER MEET, contacted by the next bus round.
    pub(crate) pending_meets: Vec<SocketAddr>,
    /// Bus messages sent, for CLUSTER INFO.
    pub(crate) msgs_sent: u64,
    /// Bus messages received, for CLUSTER INFO.
    pub(crate) msgs_received: u64,
    /// `cluster-node-timeout` in ms (CONFIG SET changes it).
    pub(crate) node_timeout_ms: u64,
    /// `cluster-require-full-coverage`.
    pub(crate) require_full_coverage: bool,
    /// `cluster-allow-reads-when-down`.
    pub(crate) allow_reads_when_down: bool,
    /// Election and vote bookkeeping.
    pub(crate) failover: super::votes::FailoverState,
    /// Set by gossip: this node must now replicate that primary (it lost its slots to it).
    pub(crate) repoint: Option<NodeId>,
    /// `cluster-preferred-endpoint-type`.
    pub(crate) preferred_endpoint: EndpointType,
    /// `cluster-announce-human-nodename` (Redis 7.2; shown only by CONFIG GET here).
    pub(crate) human_nodename: String,
}

impl ClusterState {
    /// A view that knows only this node, which owns no slots.
    pub(crate) fn new(myself: NodeId, addr: SocketAddr) -> ClusterState {
        let mut nodes = BTreeMap::new();
        nodes.insert(myself, Peer::new(myself, addr));
        ClusterState {
            myself,
            current_epoch: 0,
            nodes,
            slots: vec![None; usize::from(SLOT_COUNT)],
            slots_version: 1,
            my_ranges: (0, Vec::new()),
            migrating: HashMap::new(),
            importing: HashMap::new(),
            forgotten: HashMap::new(),
            ok: false,
            pending_meets: Vec::new(),
            msgs_sent: 0,
            msgs_received: 0,
            node_timeout_ms: 15_000,
            require_full_coverage: true,
            allow_reads_when_down: false,
            failover: super::votes::FailoverState::default(),
            repoint: None,
            preferred_endpoint: EndpointType::Ip,
            human_nodename: String::new(),
        }
    }

    /// What this node names `peer` by in CLUSTER SHARDS' `endpoint` and MOVED/ASK (Redis'
    /// `getPreferredEndpoint`): its IP, its hostname (`?` when it has none), or "".
    pub(crate) fn endpoint(&self, peer: &Peer) -> String {
        match self.preferred_endpoint {
            EndpointType::Ip => peer.addr.ip().to_string(),
            EndpointType::Hostname if peer.hostname.is_empty() => "?".to_string(),
            EndpointType::Hostname => peer.hostname.clone(),
            EndpointType::Unknown => String::new(),
        }
    }

    /// `MOVED slot <this>` / `ASK slot <this>` for `peer`: endpoint and port.
    pub(crate) fn redirect_to(&self, peer: &Peer) -> String {
        format!("{}:{}", self.endpoint(peer), peer.addr.port())
    }

    /// Forget elections in progress (a restarted node starts clean).
    pub(crate) fn reset_transient(&mut self) {
        self.failover = super::votes::FailoverState::default();
        self.repoint = None;
        self.pending_meets.clear();
    }

    /// Every node that owns at least one slot, ascending (one pass; slots come in runs).
    pub(crate) fn owners(&self) -> Vec<NodeId> {
        let mut owners: Vec<NodeId> = Vec::new();
        for id in self.slots.iter().flatten() {
            if owners.last() != Some(id) {
                owners.push(*id);
            }
        }
        owners.sort_unstable();
        owners.dedup();
        owners
    }

    /// Primaries that own slots (the cluster size, quorum base).
    pub(crate) fn size(&self) -> usize {
        self.owners()
            .iter()
            .filter(|id| self.nodes.get(id).is_some_and(Peer::is_primary))
            .count()
    }

    /// This node's entry.
    pub(crate) fn me(&self) -> &Peer {
        &self.nodes[&self.myself]
    }

    /// This node's entry, mutable.
    pub(crate) fn me_mut(&mut self) -> &mut Peer {
        self.nodes
            .get_mut(&self.myself)
            .expect("a cluster view always holds its own node")
    }

    /// The node whose data this node holds: itself, or its primary.
    pub(crate) fn data_owner(&self) -> NodeId {
        self.me().replica_of.unwrap_or(self.myself)
    }

    /// The epoch a node's claims carry: its own, or its primary's for a replica.
    pub(crate) fn node_epoch(&self, id: &NodeId) -> u64 {
        let Some(peer) = self.nodes.get(id) else {
            return 0;
        };
        match peer.replica_of.and_then(|p| self.nodes.get(&p)) {
            Some(primary) => primary.config_epoch,
            None => peer.config_epoch,
        }
    }

    /// Recompute `ok` as Redis' `clusterUpdateState`: with full coverage required, every
    /// slot must be assigned to a node not marked FAIL; and this node must reach a majority
    /// of the primaries that own slots (a minority side of a partition goes down).
    pub(crate) fn update_state(&mut self) {
        let mut ok = true;
        if self.require_full_coverage {
            let mut last: Option<NodeId> = None;
            for s in &self.slots {
                match s {
                    None => {
                        ok = false;
                        break;
                    }
                    Some(id) if last == Some(*id) => {}
                    Some(id) => {
                        if !self.nodes.get(id).is_some_and(|p| !p.failed) {
                            ok = false;
                            break;
                        }
                        last = Some(*id);
                    }
                }
            }
        }
        if ok {
            let owners = self.owners();
            let size = owners.len();
            let reachable = owners
                .iter()
                .filter(|id| {
                    **id == self.myself || self.nodes.get(id).is_some_and(|p| !p.failed && !p.pfail)
                })
                .count();
            ok = size == 0 || reachable > size / 2;
            if size == 0 {
                ok = !self.require_full_coverage;
            }
        }
        self.ok = ok;
    }

    /// Slot ranges (inclusive) owned by `id`, ascending.
    pub(crate) fn ranges_of(&self, id: &NodeId) -> Vec<(u16, u16)> {
        let mut out: Vec<(u16, u16)> = Vec::new();
        for (slot, owner) in self.slots.iter().enumerate() {
            if owner.as_ref() == Some(id) {
                let slot = slot as u16;
                match out.last_mut() {
                    Some((_, end)) if *end + 1 == slot => *end = slot,
                    _ => out.push((slot, slot)),
                }
            }
        }
        out
    }

    /// Number of slots `id` owns.
    pub(crate) fn slot_count(&self, id: &NodeId) -> usize {
        self.slots.iter().filter(|s| s.as_ref() == Some(id)).count()
    }

    /// Replicas of `primary` that are not failed, in id order.
    pub(crate) fn replicas_of(&self, primary: &NodeId) -> Vec<&Peer> {
        self.nodes
            .values()
            .filter(|p| p.replica_of.as_ref() == Some(primary))
            .collect()
    }

    /// Make `id` a primary (or keep it one) owning nothing new.
    pub(crate) fn assign_slot(&mut self, slot: u16, owner: Option<NodeId>) {
        if let Some(s) = self.slots.get_mut(usize::from(slot)) {
            if *s != owner {
                *s = owner;
                self.slots_version += 1;
            }
        }
    }

    /// Unassign every slot `id` owns.
    pub(crate) fn unassign_all(&mut self, id: NodeId) {
        let mut changed = false;
        for s in self.slots.iter_mut() {
            if *s == Some(id) {
                *s = None;
                changed = true;
            }
        }
        if changed {
            self.slots_version += 1;
        }
    }

    /// This node's slot ranges, recomputed only after a change.
    pub(crate) fn my_ranges(&mut self) -> Vec<(u16, u16)> {
        if self.my_ranges.0 != self.slots_version {
            let ranges = self.ranges_of(&self.myself);
            self.my_ranges = (self.slots_version, ranges);
        }
        self.my_ranges.1.clone()
    }

    /// Bump the current epoch and give this node that epoch (BUMPEPOCH, SETSLOT NODE).
    pub(crate) fn bump_epoch(&mut self) -> bool {
        let mine = self.me().config_epoch;
        let max = self
            .nodes
            .values()
            .map(|p| p.config_epoch)
            .max()
            .unwrap_or(0);
        if mine == 0 || mine != max {
            self.current_epoch += 1;
            let epoch = self.current_epoch;
            self.me_mut().config_epoch = epoch;
            true
        } else {
            false
        }
    }

    /// The CLUSTER NODES text.
    pub(crate) fn nodes_text(&self, now_ms: u64) -> String {
        // Slot ranges of every node in one pass over the slots.
        let mut ranges: HashMap<NodeId, Vec<(u16, u16)>> = HashMap::new();
        let mut prev: Option<(NodeId, u16)> = None;
        for (slot, owner) in self.slots.iter().enumerate() {
            let slot = slot as u16;
            if let Some(id) = owner {
                let list = ranges.entry(*id).or_default();
                match (prev, list.last_mut()) {
                    (Some((p, end)), Some(last)) if p == *id && end + 1 == slot => last.1 = slot,
                    _ => list.push((slot, slot)),
                }
                prev = Some((*id, slot));
            } else {
                prev = None;
            }
        }
        let mut out = String::new();
        for peer in self.nodes.values() {
            let mine = ranges.get(&peer.id).map_or(&[][..], Vec::as_slice);
            self.node_line_with(&mut out, peer, now_ms, mine);
        }
        out
    }

    /// One CLUSTER NODES line (with its trailing newline).
    pub(crate) fn node_line(&self, out: &mut String, peer: &Peer, now_ms: u64) {
        let ranges = self.ranges_of(&peer.id);
        self.node_line_with(out, peer, now_ms, &ranges);
    }

    fn node_line_with(&self, out: &mut String, peer: &Peer, now_ms: u64, ranges: &[(u16, u16)]) {
        let myself = peer.id == self.myself;
        let mut flags = String::new();
        if myself {
            flags.push_str("myself,");
        }
        flags.push_str(if peer.is_primary() { "master" } else { "slave" });
        if peer.failed {
            flags.push_str(",fail");
        } else if peer.pfail {
            flags.push_str(",fail?");
        }
        let primary = peer
            .replica_of
            .map_or_else(|| "-".to_string(), |p| p.to_string());
        let pong = if myself {
            now_ms / 1000 * 1000
        } else {
            peer.pong_recv_ms
        };
        let hostname = if peer.hostname.is_empty() {
            String::new()
        } else {
            format!(",{}", peer.hostname)
        };
        let _ = write!(
            out,
            "{} {}:{}@{}{hostname} {} {} {} {} {} {}",
            peer.id,
            peer.addr.ip(),
            peer.addr.port(),
            peer.cport,
            flags,
            primary,
            peer.ping_sent_ms,
            pong,
            self.node_epoch(&peer.id),
            if myself || !(peer.failed || peer.pfail) {
                "connected"
            } else {
                "disconnected"
            },
        );
        for &(start, end) in ranges {
            if start == end {
                let _ = write!(out, " {start}");
            } else {
                let _ = write!(out, " {start}-{end}");
            }
        }
        if myself {
            let mut open: Vec<_> = self.migrating.iter().collect();
            open.sort();
            for (slot, to) in open {
                let _ = write!(out, " [{slot}->-{to}]");
            }
            let mut open: Vec<_> = self.importing.iter().collect();
            open.sort();
            for (slot, from) in open {
                let _ = write!(out, " [{slot}-<-{from}]");
            }
        }
        out.push('\n');
    }

    /// The CLUSTER INFO text.
    pub(crate) fn info_text(&self) -> String {
        let assigned = self.slots.iter().filter(|s| s.is_some()).count();
        let failed = self
            .slots
            .iter()
            .filter(|s| {
                s.as_ref()
                    .and_then(|id| self.nodes.get(id))
                    .is_some_and(|p| p.failed)
            })
            .count();
        let pfail = self
            .slots
            .iter()
            .filter(|s| {
                s.as_ref()
                    .and_then(|id| self.nodes.get(id))
                    .is_some_and(|p| p.pfail && !p.failed)
            })
            .count();
        let size = self
            .nodes
            .values()
            .filter(|p| p.is_primary() && self.slots.iter().any(|s| s.as_ref() == Some(&p.id)))
            .count();
        format!(
            "cluster_state:{}\r\ncluster_slots_assigned:{assigned}\r\ncluster_slots_ok:{}\r\n\
             cluster_slots_pfail:{pfail}\r\ncluster_slots_fail:{failed}\r\ncluster_known_nodes:{}\r\n\
             cluster_size:{size}\r\ncluster_current_epoch:{}\r\ncluster_my_epoch:{}\r\n\
             cluster_stats_messages_ping_sent:{sent}\r\ncluster_stats_messages_sent:{sent}\r\n\
             cluster_stats_messages_pong_received:{recv}\r\ncluster_stats_messages_received:{recv}\r\n\
             total_cluster_links_buffer_limit_exceeded:0\r\n",
            if self.ok { "ok" } else { "fail" },
            assigned - failed - pfail,
            self.nodes.len(),
            self.current_epoch,
            self.node_epoch(&self.myself),
            sent = self.msgs_sent,
            recv = self.msgs_received,
        )
    }
}

/// The layout `redis-cli --cluster create` gives `n` primaries: contiguous, nearly equal
/// ranges (5461/5461/5462 for three).
pub(crate) fn even_ranges(n: usize) -> Vec<(u16, u16)> {
    let n = n.max(1);
    let per = f64::from(SLOT_COUNT) / n as f64;
    let mut out = Vec::with_capacity(n);
    let mut first = 0u32;
    let mut cursor = 0f64;
    for i in 0..n {
        let mut last = (cursor + per - 1.0).round() as u32;
        if last > 16383 || i == n - 1 {
            last = 16383;
        }
        out.push((first as u16, last as u16));
        first = last + 1;
        cursor += per;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_ranges_match_redis_cli() {
        assert_eq!(
            even_ranges(3),
            vec![(0, 5460), (5461, 10922), (10923, 16383)]
        );
        assert_eq!(even_ranges(1), vec![(0, 16383)]);
    }

    #[test]
    fn node_ids_parse_only_hex() {
        let id = NodeId::random();
        assert_eq!(NodeId::parse(id.as_str().as_bytes()), Some(id));
        assert_eq!(NodeId::parse(b"xyz"), None);
    }
}
