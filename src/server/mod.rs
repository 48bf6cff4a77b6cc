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
//! Failure detection and failover follow Redis 7 (`cluster-node-timeout`, PFAIL/FAIL,
//! replica elections ranked by replication offset, `CLUSTER FAILOVER [FORCE|TAKEOVER]`,
//! replica migration), and [`TestCluster`] injects faults by node index:
//!
//! ```no_run
//! # async fn faults() -> std::io::Result<()> {
//! use std::time::Duration;
//! use redcluster::server::{FailoverMode, TestCluster};
//! let cluster = TestCluster::builder().replicas_per_primary(1).start().await?;
//! let dead = cluster.kill_primary_of("user:1").await; // its replica takes over
//! cluster.wait_stable(Duration::from_secs(10)).await?;
//! cluster.restart_node(dead, true).await?; // back as a replica, resynced
//! cluster.pause_node(0); // requests to node 0 hang until resume_node(0)
//! cluster.resume_node(0);
//! let replica = cluster.replica_indexes_of(1)[0];
//! cluster.failover(replica, FailoverMode::Default).await?; // no acknowledged write lost
//! # Ok(()) }
//! ```
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
mod cmd_fault;
mod cmd_info;
mod cmd_misc;
mod cmd_multi;
mod cmd_server;
mod conn;
pub(crate) mod db;
mod dispatch;
mod fault;
mod limits;
mod migrate;
mod node;
mod pubsub;
mod replication;
mod scripting;
mod stats;
mod stream;
mod test_cluster;
mod test_cluster_faults;
#[cfg(feature = "tls")]
mod tls;

pub use cluster::failover::FailoverMode;
pub use test_cluster::{NodeInfo, Role, TestCluster, TestClusterBuilder, DEFAULT_NODE_TIMEOUT};
#[cfg(feature = "tls")]
pub use tls::{ServerTls, TlsAuthClients};

/// The Redis version this server answers as (HELLO, INFO).
pub(crate) const REDIS_VERSION: &str = "7.0.15";
