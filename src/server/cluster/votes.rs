//! A node's election and vote bookkeeping: a leaf kept in its cluster view (`state.rs`);
//! `failover.rs` runs the elections.

use std::collections::HashMap;

use super::id::NodeId;

/// Election and vote bookkeeping of one node.
#[derive(Debug, Default)]
pub(crate) struct FailoverState {
    /// As a primary: the last epoch this node voted in.
    pub(crate) last_vote_epoch: u64,
    /// As a primary: when it last voted for a replica of each failed primary (ms).
    pub(crate) voted_for: HashMap<NodeId, u64>,
    /// As a replica: when the automatic election starts (ms; 0: none planned).
    pub(crate) election_at: u64,
    /// As a replica: no new election before this (ms), after a lost one.
    pub(crate) retry_after: u64,
    /// As a replica: since when a primary has been orphaned (replica migration; ms).
    pub(crate) orphan_since: HashMap<NodeId, u64>,
}
