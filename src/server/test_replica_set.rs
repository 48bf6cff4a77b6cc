//! `TestReplicaSet`: a standalone primary (cluster mode off) and its replicas in this
//! process, on real loopback TCP ports, attached with REPLICAOF as an operator would. Fault
//! injection is [`TestCluster`]'s, by node index (0 is the first primary; replicas follow).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::lifecycle;
use super::node::{NodeConfig, NodeShared};
use super::replication::standalone::{set_primary, unset_primary};
use super::test_cluster::{NodeInfo, Role, TestCluster};
use super::test_cluster_faults::poll_until;

/// Configures a [`TestReplicaSet`]; start it with [`TestReplicaSetBuilder::start`].
#[derive(Clone, Debug)]
#[must_use]
pub struct TestReplicaSetBuilder {
    replicas: usize,
    base_port: Option<u16>,
    config: NodeConfig,
}

impl Default for TestReplicaSetBuilder {
    fn default() -> Self {
        TestReplicaSetBuilder {
            replicas: 1,
            base_port: None,
            config: NodeConfig {
                node_timeout: super::DEFAULT_NODE_TIMEOUT,
                standalone: true,
                ..NodeConfig::default()
            },
        }
    }
}

impl TestReplicaSetBuilder {
    /// Number of replicas of the primary (default 1).
    pub fn replicas(mut self, n: usize) -> Self {
        self.replicas = n;
        self
    }

    /// Listen on consecutive ports from `port` (the primary on `port`, replicas after it)
    /// instead of ephemeral ones.
    pub fn base_port(mut self, port: u16) -> Self {
        self.base_port = Some(port);
        self
    }

    /// Require this password for the `default` user on every node (`requirepass`; replicas
    /// authenticate to their primary with it, as `masterauth`).
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.config.requirepass = Some(password.into());
        self
    }

    /// Create an ACL user on every node at start (space-separated `ACL SETUSER` rules, as
    /// [`TestClusterBuilder::acl_user`](super::TestClusterBuilder::acl_user)).
    pub fn acl_user(mut self, name: impl Into<String>, rules: &str) -> Self {
        self.config.add_user(name.into(), rules);
        self
    }

    /// Set a redis.conf directive on every node at start (for example
    /// `replica-serve-stale-data`, `maxclients`); later calls win.
    /// [`start`](Self::start) fails with `InvalidInput` on an unknown name or invalid value.
    pub fn config(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.add_setting(name.into(), value.into());
        self
    }

    /// Serve TLS only (feature `tls`) on every node, replication links included. Clients
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

    /// Start the primary and the replicas, point each replica at the primary (REPLICAOF)
    /// and return once every replica finished its first sync.
    ///
    /// # Errors
    /// When a port cannot be bound, a setting is refused (`InvalidInput`), or the replicas
    /// are not synced within 10 s (`TimedOut`).
    pub async fn start(self) -> io::Result<TestReplicaSet> {
        let mut nodes = Vec::with_capacity(1 + self.replicas);
        for i in 0..=self.replicas {
            let port = self.base_port.map_or(0, |p| p.saturating_add(i as u16));
            let bind = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
            nodes.push(lifecycle::start(bind, self.config.clone()).await?);
        }
        let primary = nodes[0].addr;
        for node in &nodes[1..] {
            let mut st = node.lock();
            set_primary(&mut st, node, &primary.ip().to_string(), primary.port());
        }
        let set = TestReplicaSet {
            cluster: TestCluster {
                nodes: RwLock::new(nodes),
            },
        };
        set.wait_synced(Duration::from_secs(10)).await?;
        Ok(set)
    }
}

/// A standalone primary with replicas running inside this process (cluster mode off:
/// databases 0-15, REPLICAOF, ROLE, FAILOVER, no slots). Nodes stop when this is dropped.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use redcluster::server::TestReplicaSet;
/// let set = TestReplicaSet::builder().replicas(2).start().await?;
/// println!("primary {} replicas {:?}", set.primary(), set.replicas());
/// set.kill_node(0).await; // the primary: replicas keep serving reads (stale)
/// set.restart_node(0, true).await?; // back, as a primary with its data
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TestReplicaSet {
    cluster: TestCluster,
}

impl TestReplicaSet {
    /// A builder with one replica.
    pub fn builder() -> TestReplicaSetBuilder {
        TestReplicaSetBuilder::default()
    }

    /// Every node's address, in index order (the first primary first).
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.cluster.seeds()
    }

    /// The address of the primary now: the live node that is a primary and has replicas
    /// (or, when none has, the first live primary; node 0 when every node is down).
    pub fn primary(&self) -> SocketAddr {
        let nodes = self.nodes();
        let live_primaries: Vec<&NodeInfo> = nodes
            .iter()
            .filter(|n| n.alive && n.role == Role::Primary)
            .collect();
        let followed = live_primaries.iter().find(|p| {
            let id = Some(p.id.clone());
            nodes.iter().any(|n| n.alive && n.primary_id == id)
        });
        followed
            .or(live_primaries.first())
            .map_or(nodes[0].addr, |n| n.addr)
    }

    /// Addresses of the live replicas now.
    pub fn replicas(&self) -> Vec<SocketAddr> {
        self.nodes()
            .into_iter()
            .filter(|n| n.alive && n.role == Role::Replica)
            .map(|n| n.addr)
            .collect()
    }

    /// Every node as it sees itself now (`primary_id`: the id of the node it replicates).
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.cluster
            .all()
            .iter()
            .map(|n| {
                let st = n.lock();
                let link = st.repl.link.as_ref();
                NodeInfo {
                    addr: n.addr,
                    id: n.id.to_string(),
                    role: if link.is_some() {
                        Role::Replica
                    } else {
                        Role::Primary
                    },
                    primary_id: link.map(|l| l.primary.to_string()),
                    slots: Vec::new(),
                    alive: !n.is_shut_down(),
                }
            })
            .collect()
    }

    /// Send node `i` `REPLICAOF host port` (`Some`) or `REPLICAOF NO ONE` (`None`).
    ///
    /// # Panics
    /// When `i` is out of range.
    pub fn replicaof(&self, i: usize, primary: Option<(&str, u16)>) {
        let node = self.cluster.all()[i].clone();
        let mut st = node.lock();
        match primary {
            Some((host, port)) => set_primary(&mut st, &node, host, port),
            None if st.repl.link.is_some() => unset_primary(&mut st, &node),
            None => {}
        }
    }

    /// The index of the node listening on `addr`.
    pub fn index_of(&self, addr: SocketAddr) -> Option<usize> {
        self.cluster.index_of(addr)
    }

    /// The fault injection of [`TestCluster`] (kill, restart, pause, partition, lag ...), by
    /// node index.
    pub fn faults(&self) -> &TestCluster {
        &self.cluster
    }

    /// Kill node `i` like SIGKILL (see [`TestCluster::kill_node`]).
    ///
    /// # Panics
    /// When `i` is out of range.
    pub async fn kill_node(&self, i: usize) {
        self.cluster.kill_node(i).await;
    }

    /// Start node `i` again on its port with its data when `keep_data` (see
    /// [`TestCluster::restart_node`]): a replica resumes replicating its primary; a primary
    /// comes back as a primary (until REPLICAOF, or a Sentinel, re-points it).
    ///
    /// # Errors
    /// When the port cannot be bound again, or `i` is out of range.
    pub async fn restart_node(&self, i: usize, keep_data: bool) -> io::Result<()> {
        self.cluster.restart_node(i, keep_data).await
    }

    /// Freeze node `i` (see [`TestCluster::pause_node`]).
    ///
    /// # Panics
    /// When `i` is out of range.
    pub fn pause_node(&self, i: usize) {
        self.cluster.pause_node(i);
    }

    /// Undo [`TestReplicaSet::pause_node`].
    ///
    /// # Panics
    /// When `i` is out of range.
    pub fn resume_node(&self, i: usize) {
        self.cluster.resume_node(i);
    }

    /// Wait until every live replica's link is up and it acknowledged everything its
    /// primary wrote.
    ///
    /// # Errors
    /// `TimedOut` when that does not happen within `timeout`.
    pub async fn wait_synced(&self, timeout: Duration) -> io::Result<()> {
        poll_until(timeout, "replicas not synced", || {
            synced(&self.cluster.all())
        })
        .await
    }

    /// Stop every node and close its connections.
    pub async fn shutdown(self) {
        self.cluster.shutdown().await;
    }
}

/// Every live replica's link is up and at its primary's offset.
fn synced(nodes: &[Arc<NodeShared>]) -> bool {
    nodes.iter().filter(|n| !n.is_shut_down()).all(|n| {
        let (addr, offset) = {
            let st = n.lock();
            match st.repl.link.as_ref() {
                None => return true,
                Some(l) if !l.up => return false,
                Some(l) => (l.addr, l.offset),
            }
        };
        let primary = nodes.iter().find(|p| p.addr == addr && !p.is_shut_down());
        primary.map_or(true, |p| p.lock().repl.offset <= offset)
    })
}
