//! [`Stats`]: what the client has been doing, for dashboards and tests.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use crate::router::Router;

/// A snapshot of the client's counters since it was built.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// MOVED redirects followed (each also patched the slot map).
    pub moved: u64,
    /// ASK redirects followed.
    pub ask: u64,
    /// Retries after transient errors (TRYAGAIN, CLUSTERDOWN, LOADING, broken connections).
    pub retries: u64,
    /// Topology refreshes installed.
    pub topology_refreshes: u64,
    /// Connections re-opened after one broke.
    pub reconnects: u64,
    /// Requests that hit their deadline.
    pub timeouts: u64,
    /// Requests sent to each node (`host:port`), redirects and retries counted separately.
    pub requests_per_node: BTreeMap<String, u64>,
}

impl Stats {
    pub(super) fn collect(router: &Router) -> Stats {
        let c = router.counters();
        let nodes = router.node_figures();
        Stats {
            moved: c.moved.load(Ordering::Relaxed),
            ask: c.ask.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            topology_refreshes: c.refreshes.load(Ordering::Relaxed),
            reconnects: nodes.iter().map(|(_, _, r)| r).sum(),
            timeouts: c.timeouts.load(Ordering::Relaxed),
            requests_per_node: nodes.into_iter().map(|(a, n, _)| (a, n)).collect(),
        }
    }

    /// Requests sent to `addr` so far.
    pub fn requests_to(&self, addr: &str) -> u64 {
        self.requests_per_node.get(addr).copied().unwrap_or(0)
    }
}
