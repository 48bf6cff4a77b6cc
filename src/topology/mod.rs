//! The cluster's shape as the client last saw it: an immutable snapshot.
//!
//! A [`Topology`] holds the shards (a primary, its replicas, their slot ranges and config
//! epoch) and a full 16384-entry table from slot to shard. Snapshots are never changed in
//! place: a refresh or a MOVED builds a new one and publishes it through an `ArcSwap`, so a
//! request reads the table without taking any lock, and a snapshot a caller holds stays
//! consistent.
//!
//! Parsing `CLUSTER SHARDS`, `CLUSTER SLOTS` and `CLUSTER NODES` replies lives in `parse`
//! as pure functions.
//!
//! ## Config epochs
//! `CLUSTER SHARDS` and `CLUSTER SLOTS` carry no epochs; `CLUSTER NODES` does (per primary).
//! Discovery asks for `CLUSTER SHARDS` (or `SLOTS`) and `CLUSTER NODES` in one round trip and
//! stamps each shard with its primary's config epoch; a view's epoch is the highest of them.
//! Since a failover always gives the new primary an epoch higher than any before it, a view
//! from a node that has not heard of a failover has a lower epoch and is not taken.

pub(crate) mod parse;

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::slot::SLOT_COUNT;

/// Marks a slot no shard serves in the slot table.
const NO_SHARD: u16 = u16::MAX;

/// What the cluster said about a node's health (`CLUSTER SHARDS`' `health` field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeHealth {
    /// Serving requests.
    Online,
    /// Loading its data set (a replica after a full sync); it answers LOADING.
    Loading,
    /// Marked as failed by the cluster.
    Failed,
    /// The source (CLUSTER SLOTS) does not say.
    Unknown,
}

/// One node as the topology knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Node {
    /// `host:port` clients connect to.
    pub addr: String,
    /// The node's 40-character cluster id, when the source gave it.
    pub id: Option<String>,
    /// Health as the cluster reported it.
    pub health: NodeHealth,
}

impl Node {
    /// A node known only by address (from a MOVED, for instance).
    pub(crate) fn from_addr(addr: &str) -> Node {
        Node {
            addr: addr.to_string(),
            id: None,
            health: NodeHealth::Unknown,
        }
    }
}

/// A primary, its replicas, and the slots they serve.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Shard {
    /// The node that takes writes for these slots.
    pub primary: Node,
    /// Replicas of the primary, which may serve reads (`ReadFrom`).
    pub replicas: Vec<Node>,
    /// Inclusive slot ranges, sorted (a MOVED moves its slot between shards at once).
    pub slot_ranges: Vec<(u16, u16)>,
    /// The primary's config epoch (0 when the source did not say).
    pub config_epoch: u64,
}

/// An immutable snapshot of the cluster's shards and slot table.
#[derive(Clone, PartialEq, Eq)]
pub struct Topology {
    shards: Vec<Shard>,
    slots: Box<[u16]>,
    epoch: u64,
}

impl std::fmt::Debug for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topology")
            .field("epoch", &self.epoch)
            .field("shards", &self.shards)
            .finish()
    }
}

impl Topology {
    /// Build a snapshot from shards; later shards win a slot claimed twice.
    pub(crate) fn from_shards(mut shards: Vec<Shard>) -> Topology {
        for s in &mut shards {
            s.slot_ranges = normalized(std::mem::take(&mut s.slot_ranges));
        }
        let mut slots = vec![NO_SHARD; usize::from(SLOT_COUNT)].into_boxed_slice();
        for (i, shard) in shards.iter().enumerate() {
            for &(lo, hi) in &shard.slot_ranges {
                for s in lo..=hi.min(SLOT_COUNT - 1) {
                    slots[usize::from(s)] = i as u16;
                }
            }
        }
        let epoch = shards.iter().map(|s| s.config_epoch).max().unwrap_or(0);
        Topology {
            shards,
            slots,
            epoch,
        }
    }

    /// An empty topology (no slot served), before discovery.
    pub(crate) fn empty() -> Topology {
        Topology::from_shards(Vec::new())
    }

    /// The shards, in the order the cluster listed them.
    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// The highest config epoch of any shard: the view's age.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The shard serving `slot`, if any does.
    pub fn shard_for_slot(&self, slot: u16) -> Option<&Shard> {
        let i = *self.slots.get(usize::from(slot))?;
        self.shards.get(usize::from(i))
    }

    /// The primary's address for `slot`.
    pub fn primary_for_slot(&self, slot: u16) -> Option<&str> {
        self.shard_for_slot(slot).map(|s| s.primary.addr.as_str())
    }

    /// Number of slots some shard serves (16384 when the cluster is fully covered).
    pub fn covered_slots(&self) -> usize {
        self.slots.iter().filter(|&&i| i != NO_SHARD).count()
    }

    /// Every node address, primaries first.
    pub fn addrs(&self) -> Vec<String> {
        let mut out: Vec<String> = self.shards.iter().map(|s| s.primary.addr.clone()).collect();
        for s in &self.shards {
            out.extend(s.replicas.iter().map(|r| r.addr.clone()));
        }
        out
    }

    /// A copy with `slot` moved to the primary at `addr` (what a MOVED reply says). The
    /// shard whose primary is `addr` takes it; an unknown address becomes a new shard with no
    /// replicas until the next refresh tells more.
    pub(crate) fn with_moved(&self, slot: u16, addr: &str) -> Topology {
        let mut next = self.clone();
        let idx = match next.shards.iter().position(|s| s.primary.addr == addr) {
            Some(i) => i,
            None => {
                next.shards.push(Shard {
                    primary: Node::from_addr(addr),
                    replicas: Vec::new(),
                    slot_ranges: Vec::new(),
                    config_epoch: 0,
                });
                next.shards.len() - 1
            }
        };
        let Some(entry) = next.slots.get_mut(usize::from(slot)) else {
            return next;
        };
        let old = std::mem::replace(entry, idx as u16);
        if let Some(s) = next.shards.get_mut(usize::from(old)) {
            s.slot_ranges = without_slot(&s.slot_ranges, slot);
        }
        let s = &mut next.shards[idx];
        s.slot_ranges.push((slot, slot));
        s.slot_ranges = normalized(std::mem::take(&mut s.slot_ranges));
        next
    }

    /// The slot-to-primary mapping and replica sets, for comparing views from several nodes.
    pub(crate) fn fingerprint(&self) -> Vec<(u16, u16, String, Vec<String>)> {
        let mut out = Vec::new();
        for s in &self.shards {
            let mut replicas: Vec<String> = s.replicas.iter().map(|r| r.addr.clone()).collect();
            replicas.sort();
            for &(lo, hi) in &s.slot_ranges {
                out.push((lo, hi, s.primary.addr.clone(), replicas.clone()));
            }
        }
        out.sort();
        out
    }
}

/// `ranges` with `slot` taken out (a range holding it is split in two).
fn without_slot(ranges: &[(u16, u16)], slot: u16) -> Vec<(u16, u16)> {
    let mut out = Vec::with_capacity(ranges.len() + 1);
    for &(lo, hi) in ranges {
        if slot < lo || slot > hi {
            out.push((lo, hi));
            continue;
        }
        if lo < slot {
            out.push((lo, slot - 1));
        }
        if slot < hi {
            out.push((slot + 1, hi));
        }
    }
    out
}

/// Sorted, with touching or overlapping ranges merged.
fn normalized(mut ranges: Vec<(u16, u16)>) -> Vec<(u16, u16)> {
    ranges.sort_unstable();
    let mut out: Vec<(u16, u16)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match out.last_mut() {
            Some(last) if u32::from(lo) <= u32::from(last.1) + 1 => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// The current snapshot, swapped atomically; readers never lock.
#[derive(Debug)]
pub(crate) struct TopologyCell {
    current: ArcSwap<Topology>,
}

impl TopologyCell {
    pub(crate) fn new(t: Topology) -> TopologyCell {
        TopologyCell {
            current: ArcSwap::from_pointee(t),
        }
    }

    /// The current snapshot.
    pub(crate) fn load(&self) -> Arc<Topology> {
        self.current.load_full()
    }

    /// A cheap guard for the hot path (no reference-count traffic).
    pub(crate) fn guard(&self) -> arc_swap::Guard<Arc<Topology>> {
        self.current.load()
    }

    /// Publish a new snapshot.
    pub(crate) fn store(&self, t: Topology) {
        self.current.store(Arc::new(t));
    }

    /// Patch one slot after a MOVED (copy-on-write).
    pub(crate) fn apply_moved(&self, slot: u16, addr: &str) {
        self.current.rcu(|cur| {
            if cur.primary_for_slot(slot) == Some(addr) {
                Arc::clone(cur)
            } else {
                Arc::new(cur.with_moved(slot, addr))
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(addr: &str, ranges: &[(u16, u16)], epoch: u64) -> Shard {
        Shard {
            primary: Node::from_addr(addr),
            replicas: vec![],
            slot_ranges: ranges.to_vec(),
            config_epoch: epoch,
        }
    }

    #[test]
    fn slot_table_follows_ranges_and_moved_patches_one_slot() {
        let t = Topology::from_shards(vec![
            shard("a:1", &[(0, 8000)], 1),
            shard("b:1", &[(8001, 16383)], 3),
        ]);
        assert_eq!(t.epoch(), 3);
        assert_eq!(t.primary_for_slot(0), Some("a:1"));
        assert_eq!(t.primary_for_slot(16383), Some("b:1"));
        assert_eq!(t.covered_slots(), 16384);
        let m = t.with_moved(5, "b:1");
        assert_eq!(m.primary_for_slot(5), Some("b:1"));
        assert_eq!(m.primary_for_slot(6), Some("a:1"));
        assert_eq!(
            t.primary_for_slot(5),
            Some("a:1"),
            "the old snapshot is unchanged"
        );
        let n = t.with_moved(7, "c:1");
        assert_eq!(n.primary_for_slot(7), Some("c:1"));
        assert_eq!(n.shards().len(), 3);
        // The shards' ranges follow the move.
        assert_eq!(m.shards()[0].slot_ranges, vec![(0, 4), (6, 8000)]);
        assert_eq!(m.shards()[1].slot_ranges, vec![(5, 5), (8001, 16383)]);
        assert_eq!(n.shards()[2].slot_ranges, vec![(7, 7)]);
        let edge = t.with_moved(8000, "b:1");
        assert_eq!(edge.shards()[0].slot_ranges, vec![(0, 7999)]);
        assert_eq!(edge.shards()[1].slot_ranges, vec![(8000, 16383)]);
        assert_eq!(edge.covered_slots(), 16384);
    }

    #[test]
    fn partial_coverage_leaves_slots_unserved() {
        let t = Topology::from_shards(vec![shard("a:1", &[(0, 99)], 1)]);
        assert_eq!(t.covered_slots(), 100);
        assert!(t.shard_for_slot(100).is_none());
        assert!(Topology::empty().shard_for_slot(0).is_none());
    }
}
