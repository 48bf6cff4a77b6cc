//! Choosing the node for one command: the shard from the slot, then the node by
//! [`ReadFrom`] among the shard's healthy members.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::route::Route;
use super::{Inner, ReadFrom};
use crate::pool::NodeEntry;
use crate::topology::{NodeHealth, Shard};

impl Inner {
    /// A node may serve reads unless the cluster marked it failed or it recently failed to
    /// connect or answered LOADING. CLUSTER SHARDS' `loading` health is not trusted: Redis
    /// 7.0 reports every replica at offset 0 (a fresh cluster) as loading.
    fn usable(&self, node_health: NodeHealth, entry: &NodeEntry) -> bool {
        node_health != NodeHealth::Failed && entry.is_healthy()
    }

    /// Choose the node for a command in `shard` by `read_from`: (node, use a READONLY
    /// connection).
    fn select(&self, shard: &Shard, readonly: bool, read_from: ReadFrom) -> (Arc<NodeEntry>, bool) {
        let primary = || (self.pool.entry(&shard.primary.addr), false);
        if !readonly || shard.replicas.is_empty() {
            return primary();
        }
        let healthy_replicas = || {
            shard
                .replicas
                .iter()
                .map(|r| (r, self.pool.entry(&r.addr)))
                .filter(|(r, e)| self.usable(r.health, e))
                .map(|(_, e)| e)
                .collect::<Vec<_>>()
        };
        let rr = || self.rr.fetch_add(1, Ordering::Relaxed);
        match read_from {
            ReadFrom::Primary => primary(),
            ReadFrom::PrimaryPreferred => {
                let p = self.pool.entry(&shard.primary.addr);
                if self.usable(shard.primary.health, &p) {
                    return (p, false);
                }
                match healthy_replicas().into_iter().next() {
                    Some(r) => (r, true),
                    None => (p, false),
                }
            }
            ReadFrom::ReplicaPreferred => {
                let rs = healthy_replicas();
                if rs.is_empty() {
                    primary()
                } else {
                    (rs[rr() % rs.len()].clone(), true)
                }
            }
            ReadFrom::Replica => {
                let rs = healthy_replicas();
                if rs.is_empty() {
                    // None healthy: try one anyway (it may be back) rather than the primary.
                    let r = &shard.replicas[rr() % shard.replicas.len()];
                    (self.pool.entry(&r.addr), true)
                } else {
                    (rs[rr() % rs.len()].clone(), true)
                }
            }
            ReadFrom::Nearest | ReadFrom::Any => {
                let p = self.pool.entry(&shard.primary.addr);
                let mut all: Vec<(Arc<NodeEntry>, bool)> = Vec::new();
                if self.usable(shard.primary.health, &p) {
                    all.push((p.clone(), false));
                }
                all.extend(healthy_replicas().into_iter().map(|e| (e, true)));
                if all.is_empty() {
                    return (p, false);
                }
                if read_from == ReadFrom::Any {
                    let i = rr() % all.len();
                    return all.swap_remove(i);
                }
                // Unmeasured nodes (0) come first so each gets measured once.
                let i = (0..all.len())
                    .min_by_key(|&i| all[i].0.latency_us())
                    .unwrap_or(0);
                all.swap_remove(i)
            }
        }
    }

    /// The node for `route` from the current snapshot, or `None` when the slot is unserved.
    pub(crate) fn pick(&self, route: Route) -> Option<(Arc<NodeEntry>, bool)> {
        self.pick_by(route, None)
    }

    /// [`pick`](Inner::pick) with a command's own read policy (`Cmd::read_from`) over the
    /// client's.
    pub(crate) fn pick_by(
        &self,
        route: Route,
        read_from: Option<ReadFrom>,
    ) -> Option<(Arc<NodeEntry>, bool)> {
        let read_from = read_from.unwrap_or(self.config.read_from);
        let topo = self.topology.guard();
        let shard = match route.slot {
            Some(slot) => topo.shard_for_slot(slot)?,
            None => {
                let shards = topo.shards();
                if shards.is_empty() {
                    return None;
                }
                &shards[self.rr.fetch_add(1, Ordering::Relaxed) % shards.len()]
            }
        };
        Some(self.select(shard, route.readonly, read_from))
    }
}
