//! The bundled in-process Redis Cluster.
//!
//! [`TestCluster`] starts several nodes in this process, each with its own TCP listener on
//! 127.0.0.1, keyspace, slot ownership, role and view of the cluster. They speak RESP2 and
//! RESP3 like Redis 7.0, so `redis-cli -c`, `redis-cli --cluster`, `redis-benchmark
//! --cluster` and other languages' cluster clients use them unchanged.
//!
//! Inside a node (see `ARCHITECTURE.md`): `conn` reads pipelined requests and writes replies
//! in batches; `dispatch` applies Redis' checks in Redis' order (lookup, arity, auth,
//! transaction queuing, cluster routing) and runs the command on the keyspace (`db`) or on the
//! server (`cmd_*`, `cluster::commands`); `cluster::bus` gossips node state between nodes
//! in-process; `replication` ships snapshot + buffered writes + stream to replicas over real
//! TCP.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use redcluster::server::TestCluster;
//! let cluster = TestCluster::builder().primaries(3).replicas_per_primary(1).start().await?;
//! for node in cluster.nodes() {
//!     println!("{} {} {:?}", node.addr, node.id, node.role);
//! }
//! # Ok(()) }
//! ```

mod auth;
mod blocking;
mod clients;
mod cluster;
mod cmd_command;
mod cmd_config;
mod cmd_info;
mod cmd_multi;
mod cmd_server;
mod conn;
pub(crate) mod db;
mod dispatch;
mod migrate;
mod node;
mod pubsub;
mod replication;
mod stats;
mod test_cluster;

pub use test_cluster::{NodeInfo, Role, TestCluster, TestClusterBuilder};

/// The Redis version this server answers as (HELLO, INFO).
pub(crate) const REDIS_VERSION: &str = "7.0.15";
