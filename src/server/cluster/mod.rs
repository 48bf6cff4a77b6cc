//! Cluster mode: each node's view of the cluster, the gossip bus between nodes, routing of
//! requests to slot owners, and the CLUSTER command family.

pub(crate) mod bus;
pub(crate) mod commands;
pub(crate) mod directory;
pub(crate) mod failover;
pub(crate) mod id;
pub(crate) mod route;
pub(crate) mod state;
pub(crate) mod votes;
