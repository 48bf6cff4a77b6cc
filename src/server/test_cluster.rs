//! `TestCluster`: start a whole cluster in this process, on real loopback TCP ports.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::cluster::state::{even_ranges, Peer};
use super::lifecycle;
use super::node::{self, NodeConfig, NodeShared};
use super::replication::replica;

/// A node's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// Owns slots and takes writes.
    Primary,
    /// Holds a copy of a primary's data.
    Replica,
}

/// One node of a [`TestCluster`], as it sees itself now.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeInfo {
    /// Client address, to connect to.
    pub addr: SocketAddr,
    /// The 40-hex node id CLUSTER NODES shows.
    pub id: String,
    /// Primary or replica.
    pub role: Role,
    /// For replicas: the id of the primary.
    pub primary_id: Option<String>,
    /// Slot ranges this node owns in its own view (empty for replicas).
    pub slots: Vec<std::ops::RangeInclusive<u16>>,
    /// False while the node is killed (until restarted); a paused or partitioned node is
    /// alive.
    pub alive: bool,
}

/// `cluster-node-timeout` of a [`TestCluster`] unless set: short, so failovers in tests take
/// about a second (the binary keeps Redis' 15 s).
pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_millis(1000);

/// Configures a [`TestCluster`]; start it with [`TestClusterBuilder::start`].
#[derive(Clone, Debug)]
#[must_use]
pub struct TestClusterBuilder {
    primaries: usize,
    replicas_per_primary: usize,
    unconfigured: Option<usize>,
    base_port: Option<u16>,
    /// `plaintext_port`: plaintext next to TLS from this port on.
    plaintext_base: Option<u16>,
    config: NodeConfig,
}

impl Default for TestClusterBuilder {
    fn default() -> Self {
        TestClusterBuilder {
            primaries: 3,
            replicas_per_primary: 0,
            unconfigured: None,
            base_port: None,
            plaintext_base: None,
            config: NodeConfig {
                node_timeout: DEFAULT_NODE_TIMEOUT,
                ..NodeConfig::default()
            },
        }
    }
}

impl TestClusterBuilder {
    /// Number of primaries (default 3); slots are spread evenly between them.
    pub fn primaries(mut self, n: usize) -> Self {
        self.primaries = n.max(1);
        self
    }

    /// Replicas of each primary (default 0).
    pub fn replicas_per_primary(mut self, n: usize) -> Self {
        self.replicas_per_primary = n;
        self
    }

    /// Start `n` cluster-enabled nodes that know nothing of each other and own no slots, as
    /// `redis-server --cluster-enabled yes` would: for `redis-cli --cluster create`.
    pub fn unconfigured_nodes(mut self, n: usize) -> Self {
        self.unconfigured = Some(n.max(1));
        self
    }

    /// Listen on consecutive ports from `port` instead of ephemeral ones.
    pub fn base_port(mut self, port: u16) -> Self {
        self.base_port = Some(port);
        self
    }

    /// Require this password for the `default` user (like `requirepass`).
    pub fn requirepass(mut self, password: impl Into<String>) -> Self {
        self.config.requirepass = Some(password.into());
        self
    }

    /// Add a named user with a password that may run everything (AUTH user pass): the
    /// ACL rules `on >password ~* &* +@all`.
    pub fn user(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        let rules = ["on", &format!(">{}", password.into()), "~*", "&*", "+@all"];
        self.config
            .users
            .push((name.into(), rules.iter().map(|r| r.to_string()).collect()));
        self
    }

    /// Create an ACL user on every node at start, as `ACL SETUSER name <rules>` would
    /// (space-separated rules, e.g. `"on >secret ~app:* +@read +@write -flushall"`; a user
    /// starts off, with no password, keys, channels or commands). Later calls for the same
    /// name add rules. [`start`](Self::start) fails with `InvalidInput` and Redis' SETUSER
    /// error on a rule it refuses.
    pub fn acl_user(mut self, name: impl Into<String>, rules: &str) -> Self {
        self.config.add_user(name.into(), rules);
        self
    }

    /// Serve TLS only (feature `tls`): every node's port takes TLS connections with
    /// `tls`'s certificate, and replication and MIGRATE links between nodes use TLS too
    /// (`--tls-port`, `--port 0`, `--tls-replication yes`, `--tls-cluster yes`). Clients
    /// trust [`ServerTls::ca_pem`](super::ServerTls::ca_pem).
    ///
    /// # Panics
    /// When `tls`'s PEM cannot be used (a [`ServerTls`](super::ServerTls) from `generate` or
    /// `from_pem` always can).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: super::ServerTls) -> Self {
        self.config.set_tls(&tls);
        self
    }

    /// With [`tls`](Self::tls) and [`base_port`](Self::base_port): serve plaintext too, node
    /// `i` on `base + i` next to its TLS port (redis-server's `--port` next to
    /// `--tls-port`). A MOVED or ASK sent on a plaintext connection names the target's
    /// plaintext port; CLUSTER SLOTS/SHARDS/NODES keep naming the TLS ports.
    #[cfg(feature = "tls")]
    pub fn plaintext_port(mut self, base: u16) -> Self {
        self.plaintext_base = Some(base);
        self
    }

    /// `cluster-node-timeout` (default [`DEFAULT_NODE_TIMEOUT`], 1 s): a primary silent for
    /// longer is failed over.
    pub fn node_timeout(mut self, timeout: Duration) -> Self {
        self.config.node_timeout = timeout;
        self
    }

    /// Set a redis.conf directive on every node at start, as a config file would (for
    /// example `maxclients`, `client-output-buffer-limit`, `tcp-backlog`); later calls win.
    /// [`start`](Self::start) fails with `InvalidInput` on an unknown name or invalid value.
    pub fn config(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.add_setting(name.into(), value.into());
        self
    }

    /// Start every node; returns when primaries serve their slots and replicas finished
    /// their first sync (or after 10 s).
    ///
    /// # Errors
    /// When a port cannot be bound.
    pub async fn start(mut self) -> std::io::Result<TestCluster> {
        if let Some(plain) = self.plaintext_base {
            let Some(base) = self.base_port else {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "plaintext next to TLS needs a base port for both",
                ));
            };
            self.config.plaintext_shift = Some(i32::from(plain) - i32::from(base));
        }
        let total = self
            .unconfigured
            .unwrap_or(self.primaries * (1 + self.replicas_per_primary));
        let mut nodes = Vec::with_capacity(total);
        for i in 0..total {
            let port = self.base_port.map_or(0, |p| p.saturating_add(i as u16));
            let bind = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
            let node = lifecycle::start(bind, self.config.clone()).await?;
            nodes.push(node);
        }
        let cluster = TestCluster {
            nodes: RwLock::new(nodes.clone()),
        };
        if self.unconfigured.is_some() {
            return Ok(cluster);
        }
        let p = self.primaries;
        let ranges = even_ranges(p);
        let primary_of = |i: usize| if i < p { None } else { Some((i - p) % p) };
        let mut peers = Vec::with_capacity(total);
        for (i, node) in nodes.iter().enumerate() {
            let mut peer = Peer::new(node.id, node.addr);
            peer.replica_of = primary_of(i).map(|j| nodes[j].id);
            peer.config_epoch = i as u64 + 1;
            peer.pong_recv_ms = node::now_ms();
            peers.push(peer);
        }
        for node in &nodes {
            let mut st = node.lock();
            for peer in &peers {
                st.cluster.nodes.insert(peer.id, peer.clone());
            }
            for (j, &(a, b)) in ranges.iter().enumerate() {
                for slot in a..=b {
                    st.cluster.assign_slot(slot, Some(nodes[j].id));
                }
            }
            st.cluster.current_epoch = total as u64;
            st.cluster.update_state();
        }
        for (i, node) in nodes.iter().enumerate() {
            if let Some(j) = primary_of(i) {
                let mut st = node.lock();
                replica::become_replica(&mut st, node, nodes[j].id, nodes[j].addr);
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline {
            let synced = nodes.iter().all(|n| {
                let st = n.lock();
                st.repl.link.as_ref().map_or(true, |l| l.up)
            });
            if synced {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(cluster)
    }
}

/// A Redis Cluster running inside this process: each node has its own TCP listener on
/// 127.0.0.1, keyspace, cluster view and role. Nodes stop when this is dropped.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// let cluster = redcluster::server::TestCluster::builder()
///     .primaries(3)
///     .replicas_per_primary(1)
///     .start()
///     .await?;
/// println!("connect to {:?}", cluster.seeds());
/// cluster.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TestCluster {
    /// Nodes in creation order; a restarted node replaces its old incarnation in place.
    pub(super) nodes: RwLock<Vec<Arc<NodeShared>>>,
}

impl TestCluster {
    /// A builder with 3 primaries and no replicas.
    pub fn builder() -> TestClusterBuilder {
        TestClusterBuilder::default()
    }

    /// Addresses to give a client: every node, primaries first.
    pub fn seeds(&self) -> Vec<SocketAddr> {
        self.all().iter().map(|n| n.addr).collect()
    }

    /// The current incarnation of every node.
    pub(super) fn all(&self) -> Vec<Arc<NodeShared>> {
        self.nodes.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every node as it sees itself now.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.all()
            .iter()
            .map(|n| {
                let st = n.lock();
                let me = st.cluster.me();
                NodeInfo {
                    addr: n.addr,
                    id: n.id.to_string(),
                    role: if me.is_primary() {
                        Role::Primary
                    } else {
                        Role::Replica
                    },
                    primary_id: me.replica_of.map(|p| p.to_string()),
                    slots: st
                        .cluster
                        .ranges_of(&n.id)
                        .into_iter()
                        .map(|(a, b)| a..=b)
                        .collect(),
                    alive: !n.is_shut_down(),
                }
            })
            .collect()
    }

    /// Run `ACL SETUSER name <rules>` on every node (space-separated rules, as
    /// [`TestClusterBuilder::acl_user`]): for example rotate a password with
    /// `cluster.acl_setuser_all("app", ">new <old")`. Killed nodes get it too (they keep
    /// their users across a restart).
    ///
    /// # Errors
    /// Redis' SETUSER error (`Error in ACL SETUSER modifier ...`) when a rule is refused;
    /// nothing changes on any node then.
    pub fn acl_setuser_all(&self, name: &str, rules: &str) -> Result<(), String> {
        let rules: Vec<bytes::Bytes> = rules
            .split_whitespace()
            .map(|r| bytes::Bytes::from(r.to_string()))
            .collect();
        let nodes = self.all();
        // Check every node first so that either every node changes or none does.
        for n in &nodes {
            n.lock().acl.check_set_user(name.as_bytes(), &rules)?;
        }
        for n in &nodes {
            super::acl::cmd::set_user_on(&mut n.lock(), n, name.as_bytes(), &rules)?;
        }
        Ok(())
    }

    /// Stop every node and close its connections.
    pub async fn shutdown(self) {
        for n in &self.all() {
            n.stop();
        }
        tokio::task::yield_now().await;
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for n in &self.all() {
            n.stop();
        }
    }
}
