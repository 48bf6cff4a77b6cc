//! One node's state behind one lock, its settings, and the lazily taken lock every request
//! uses. A leaf: starting and stopping a node and its tasks is `lifecycle.rs`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{watch, Notify};

use super::cluster::state::{ClusterState, NodeId};
use super::db::Db;
use super::fault::Faults;
use super::replication::ReplState;
use super::stats::CmdStats;

/// Settings a node starts with (shared by every node of a cluster). `Debug` shows no
/// password (nor `>pass`/`#hash` ACL rules).
#[derive(Clone, Default)]
pub(crate) struct NodeConfig {
    /// Password of the `default` user; `None`: no password needed.
    pub(crate) requirepass: Option<String>,
    /// ACL users created at start: name and `ACL SETUSER` rules.
    pub(crate) users: Vec<(String, Vec<String>)>,
    /// `cluster-node-timeout`.
    pub(crate) node_timeout: Duration,
    /// TLS on the node's port (and on its links when `links`), feature `tls`.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<Arc<super::tls::NodeTls>>,
    /// Other redis.conf directives (name, value), applied at start as CONFIG SET would.
    pub(crate) settings: Vec<(String, String)>,
    /// With TLS on the node's port, plaintext served too (`--port` next to `--tls-port`): the
    /// node on TLS port P serves plaintext on P + this shift, the same for every node, so a
    /// redirect sent on a plaintext connection can name the target's plaintext port.
    pub(crate) plaintext_shift: Option<i32>,
    /// Cluster mode off (`cluster-enabled no`): no slot routing, databases 0-15, REPLICAOF.
    pub(crate) standalone: bool,
}

impl std::fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = |r: &String| r.starts_with(['>', '<', '#', '!']);
        let users: Vec<(&str, Vec<&str>)> = self
            .users
            .iter()
            .map(|(name, rules)| {
                let shown = rules
                    .iter()
                    .map(|r| if secret(r) { "<redacted>" } else { r.as_str() });
                (name.as_str(), shown.collect())
            })
            .collect();
        let mut d = f.debug_struct("NodeConfig");
        d.field(
            "requirepass",
            &self.requirepass.as_ref().map(|_| "<redacted>"),
        )
        .field("users", &users)
        .field("node_timeout", &self.node_timeout);
        #[cfg(feature = "tls")]
        d.field("tls", &self.tls);
        d.field("settings", &self.settings)
            .field("plaintext_shift", &self.plaintext_shift)
            .field("standalone", &self.standalone)
            .finish()
    }
}

impl NodeConfig {
    /// An ACL user created at start from space-separated `ACL SETUSER` rules (builders).
    pub(crate) fn add_user(&mut self, name: String, rules: &str) {
        let rules = rules.split_whitespace().map(str::to_string).collect();
        self.users.push((name, rules));
    }

    /// A redis.conf directive applied at start (builders; later ones win).
    pub(crate) fn add_setting(&mut self, name: String, value: String) {
        self.settings.push((name.to_ascii_lowercase(), value));
    }

    /// TLS on the node's port and its links (builders).
    ///
    /// # Panics
    /// When `tls`'s PEM cannot be used (a `ServerTls` from `generate` or `from_pem` always
    /// can).
    #[cfg(feature = "tls")]
    pub(crate) fn set_tls(&mut self, tls: &super::tls::ServerTls) {
        let node_tls = tls
            .node_tls(true)
            .unwrap_or_else(|e| panic!("TLS settings: {e}"));
        self.tls = Some(node_tls);
    }

    /// `tcp-backlog`: the listen queue length (Redis' 511 unless set).
    pub(crate) fn tcp_backlog(&self) -> u32 {
        self.settings
            .iter()
            .rev()
            .find(|(k, _)| k == "tcp-backlog")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(super::limits::DEFAULT_TCP_BACKLOG)
    }

    /// The plaintext port of the node whose TLS port is `tls_port`, when plaintext is served
    /// next to TLS.
    pub(crate) fn plaintext_port(&self, tls_port: u16) -> Option<u16> {
        let shift = self.plaintext_shift.filter(|_| self.serves_tls())?;
        u16::try_from(i32::from(tls_port) + shift).ok()
    }

    /// True when the node serves plaintext next to TLS.
    pub(crate) fn plaintext_too(&self) -> bool {
        self.serves_tls() && self.plaintext_shift.is_some()
    }

    /// True when the node's port serves TLS.
    pub(crate) fn serves_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }
}

/// Everything about a node that changes, behind one lock.
///
/// This is a std `Mutex`, not a Tokio one: nothing awaits while holding it, and the hot path
/// takes it once per batch of pipelined commands.
#[derive(Debug)]
pub(crate) struct NodeState {
    /// The keyspace of the database the running command uses (db 0 in cluster mode); the
    /// others wait in `dbs` (see `NodeState::select_db`).
    pub(crate) db: Db,
    /// Databases 1-15 of a standalone node, parked while another one is in `db`.
    pub(crate) dbs: Databases,
    /// This node's view of the cluster.
    pub(crate) cluster: ClusterState,
    /// Per-command counters for INFO commandstats.
    pub(crate) cmdstats: CmdStats,
    /// Replication, both as a primary and as a replica.
    pub(crate) repl: ReplState,
    /// Values set by CONFIG SET.
    pub(crate) config_overrides: HashMap<String, String>,
    /// Clients blocked in BLPOP & co (served by writes under this lock).
    pub(crate) waiters: super::waiters::Waiters,
    /// Keys a MIGRATE is moving right now: served here even if deleted meanwhile.
    pub(crate) migrate_fence: super::migrate::Fence,
    /// SLOWLOG entries and per-command latency histograms.
    pub(crate) misc: super::slowlog::MiscState,
    /// ACL users and log.
    pub(crate) acl: super::acl::Acl,
    /// MONITOR connections.
    pub(crate) monitors: super::monitor::Monitors,
    /// Who may cache which keys (CLIENT TRACKING).
    pub(crate) tracking: super::tracking::Tracking,
    /// Cluster mode off (`NodeConfig::standalone`): no slot routing.
    pub(crate) standalone: bool,
}

impl NodeState {
    /// A setting's value: the first of `names` set by CONFIG SET (or at start), else
    /// `default`.
    pub(crate) fn setting<'a>(&'a self, names: &[&str], default: &'a str) -> &'a str {
        names
            .iter()
            .find_map(|n| self.config_overrides.get(*n))
            .map_or(default, String::as_str)
    }

    /// True when a write from a client must be refused here: a replica (in standalone
    /// mode, unless `replica-read-only no`).
    pub(crate) fn refuses_writes(&self) -> bool {
        !self.cluster.me().is_primary()
            && (!self.standalone
                || self.setting(&["replica-read-only", "slave-read-only"], "yes") == "yes")
    }

    /// MONITOR: send `args` run by `origin` to the monitors (nothing while a replica loads
    /// a full sync's snapshot, as Redis).
    pub(crate) fn feed_monitors(&mut self, origin: super::monitor::Origin, args: &[bytes::Bytes]) {
        if self.repl.link.as_ref().is_some_and(|l| l.loading) {
            return;
        }
        self.monitors.feed(origin, args);
    }
}

/// Databases of a standalone node (Redis' default `databases 16`).
pub(crate) const DATABASES: usize = 16;

/// The databases not in use by the running command (see `databases.rs`).
#[derive(Debug, Default)]
pub(crate) struct Databases {
    /// The index of the database in `NodeState.db`.
    pub(crate) current: usize,
    /// Index -> parked database (`None`: never used, or the one in `NodeState.db`). Empty
    /// until a database other than 0 is first selected.
    pub(crate) parked: Vec<Option<Box<Db>>>,
}

impl Databases {
    /// The index of the database in `NodeState.db`.
    pub(crate) fn current(&self) -> usize {
        self.current
    }
}

/// A node shared by its tasks.
#[derive(Debug)]
pub(crate) struct NodeShared {
    /// The node id (fixed for the life of the node).
    pub(crate) id: NodeId,
    /// The client address it listens on.
    pub(crate) addr: SocketAddr,
    /// Start-up settings.
    pub(crate) config: NodeConfig,
    /// Mutable state.
    pub(crate) state: Mutex<NodeState>,
    /// Source of CLIENT ID values.
    pub(crate) next_client_id: AtomicU64,
    /// Open client connections.
    pub(crate) connected_clients: AtomicU64,
    /// Registry of client connections (CLIENT LIST / KILL).
    pub(crate) clients: super::clients::Clients,
    /// Connections accepted since start.
    pub(crate) total_connections: AtomicU64,
    /// Set to true to stop every task of the node.
    pub(crate) shutdown: watch::Sender<bool>,
    /// Start time, for uptime.
    pub(crate) started: Instant,
    /// Wakes the bus task early (after MEET).
    pub(crate) bus_wakeup: Notify,
    /// Signalled whenever a replica acknowledges an offset (WAIT).
    pub(crate) acks: Notify,
    /// Wakes the replication task when the node's primary changes (REPLICAOF).
    pub(crate) repl_wakeup: Notify,
    /// Fault switches.
    pub(crate) faults: Faults,
    /// The INFO run_id.
    pub(crate) run_id: NodeId,
    /// Pub/sub subscriptions (its own lock: other nodes deliver PUBLISH into it).
    pub(crate) pubsub: Arc<super::pubsub::PubSub>,
    /// MIGRATE's cached connections to its targets.
    pub(crate) migrate_links: super::migrate::LinkCache,
    /// `maxclients` and `client-output-buffer-limit`.
    pub(crate) limits: Arc<super::limits::ClientLimits>,
    /// Connections refused for `maxclients` (INFO rejected_connections).
    pub(crate) rejected_connections: AtomicU64,
    /// Lua scripts and functions, and the script running now (outside the state lock: a
    /// script runs without holding it).
    pub(crate) scripting: super::scripting::Scripting,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl NodeShared {
    /// Lock the state. A poisoned lock (a panic elsewhere) still yields the state: the node
    /// keeps serving rather than cascading the panic into every connection.
    pub(crate) fn lock(&self) -> MutexGuard<'_, NodeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A receiver that sees `true` once the node is shutting down.
    pub(crate) fn shutdown_rx(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// True once the node has been stopped.
    pub(crate) fn is_shut_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// A lazily taken lock on the node state, released (and replication data flushed to the
/// replicas) when dropped. Commands of one pipelined batch share one acquisition.
pub(crate) struct Locked<'a> {
    shared: &'a NodeShared,
    guard: Option<MutexGuard<'a, NodeState>>,
}

impl std::fmt::Debug for Locked<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locked")
            .field("held", &self.guard.is_some())
            .finish()
    }
}

impl<'a> Locked<'a> {
    /// Not yet locked.
    pub(crate) fn new(shared: &'a NodeShared) -> Self {
        Locked {
            shared,
            guard: None,
        }
    }

    /// The state, locking it on first use.
    pub(crate) fn get(&mut self) -> &mut NodeState {
        let shared = self.shared;
        self.guard.get_or_insert_with(|| shared.lock())
    }

    /// Release the lock now (before an await).
    pub(crate) fn release(&mut self) {
        if let Some(mut g) = self.guard.take() {
            g.settle_tracking(&self.shared.clients);
            g.repl.flush();
        }
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

/// Resolves once the node behind `rx` is shutting down (or gone).
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
