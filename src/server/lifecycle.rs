//! A node's life: bind and start (or restart) it, its accept loop and cron, and stop it.
//! Above `node.rs` (the state it starts with) and everything a running node spawns.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use super::cluster::state::{ClusterState, NodeId};
use super::cluster::{bus, directory, failover};
use super::db::Db;
use super::fault::Faults;
use super::node::{now_ms, Locked, NodeConfig, NodeShared, NodeState};
use super::replication::ReplState;
use super::stats::CmdStats;

/// Listen on `addr` with the configured backlog (std's own `bind` uses 128).
pub(crate) fn listen(addr: SocketAddr, config: &NodeConfig) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(config.tcp_backlog())
}

impl NodeShared {
    /// Stop the node: listener, connections, bus and replication tasks.
    pub(crate) fn stop(&self) {
        self.shutdown.send_replace(true);
        self.scripting.abort();
        directory::unregister(self.addr, self);
        self.migrate_links.clear();
    }
}

/// Bind `bind` and start serving a new node with an empty keyspace and no slots.
///
/// # Errors
/// When the address cannot be bound.
pub(crate) async fn start(
    bind: SocketAddr,
    config: NodeConfig,
) -> std::io::Result<Arc<NodeShared>> {
    let listener = listen(bind, &config)?;
    let addr = listener.local_addr()?;
    let plain = match config.plaintext_port(addr.port()) {
        Some(p) => Some(listen(SocketAddr::new(addr.ip(), p), &config)?),
        None => None,
    };
    let id = NodeId::random();
    let mut cluster = ClusterState::new(id, addr);
    cluster.node_timeout_ms = config.node_timeout.as_millis().max(1) as u64;
    let acl = super::acl::Acl::new(config.requirepass.as_deref(), &config.users)
        .map_err(|why| std::io::Error::new(std::io::ErrorKind::InvalidInput, why))?;
    let state = NodeState {
        acl,
        db: Db::new(),
        dbs: Default::default(),
        standalone: config.standalone,
        cluster,
        cmdstats: CmdStats::default(),
        repl: ReplState::new(Default::default()),
        config_overrides: HashMap::new(),
        waiters: Default::default(),
        migrate_fence: Default::default(),
        misc: Default::default(),
        monitors: Default::default(),
        tracking: Default::default(),
    };
    let shared = launch([Some(listener), plain], id, config, state);
    if let Err(why) = super::cmd_config::apply_startup(&shared) {
        shared.stop();
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, why));
    }
    Ok(shared)
}

/// Start a stopped node again on its address, with its id, cluster view and settings (as
/// Redis does from `nodes.conf`), and its keyspace when `keep_data`. A replica resumes
/// replicating its primary.
///
/// # Errors
/// When the address cannot be bound again within 2 s.
pub(crate) async fn restart(old: &NodeShared, keep_data: bool) -> std::io::Result<Arc<NodeShared>> {
    old.stop();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    let bind_again = |addr: SocketAddr| async move {
        loop {
            match listen(addr, &old.config) {
                Ok(l) => break Ok(l),
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    };
    let listener = bind_again(old.addr).await?;
    let plain = match old.config.plaintext_port(old.addr.port()) {
        Some(p) => Some(bind_again(SocketAddr::new(old.addr.ip(), p)).await?),
        None => None,
    };
    let (state, primary) = {
        let mut st = old.lock();
        // A standalone replica's primary is not in its cluster view: its link names it.
        let linked = st.repl.link.as_ref().map(|l| (l.primary, l.addr));
        let mut cluster = std::mem::replace(&mut st.cluster, ClusterState::new(old.id, old.addr));
        let now = now_ms();
        for peer in cluster.nodes.values_mut() {
            peer.pong_recv_ms = now;
            peer.ping_sent_ms = 0;
            peer.pfail = false;
            peer.fail_reports.clear();
        }
        cluster.reset_transient();
        let primary = if old.config.standalone {
            linked
        } else {
            cluster
                .me()
                .replica_of
                .and_then(|p| cluster.nodes.get(&p).map(|peer| (p, peer.addr)))
        };
        let (db, dbs) = if keep_data {
            st.take_dbs()
        } else {
            (Db::new(), Default::default())
        };
        let mut repl = ReplState::new(Default::default());
        repl.serve_stale_data = st.repl.serve_stale_data;
        repl.offset = st.repl.link.as_ref().map_or(st.repl.offset, |l| l.offset);
        let mut state = NodeState {
            // Users live on across a restart, as if saved to an ACL file.
            acl: std::mem::replace(&mut st.acl, super::acl::Acl::empty()),
            db,
            dbs,
            standalone: old.config.standalone,
            cluster,
            cmdstats: CmdStats::default(),
            repl,
            config_overrides: std::mem::take(&mut st.config_overrides),
            waiters: Default::default(),
            migrate_fence: Default::default(),
            misc: Default::default(),
            monitors: Default::default(),
            // Clients reconnect and track again; the setting stays.
            tracking: super::tracking::Tracking::with_max_keys(st.tracking.max_keys),
        };
        state.set_replica_dbs(false);
        (state, primary)
    };
    let shared = launch([Some(listener), plain], old.id, old.config.clone(), state);
    // Limits set at start or by CONFIG SET since are the node's, not one run's.
    shared.limits.copy_from(&old.limits);
    // An injected replication lag belongs to the node, not to one run of it.
    let lag = old.faults.repl_delay_ms.load(Ordering::Relaxed);
    shared.faults.repl_delay_ms.store(lag, Ordering::Relaxed);
    if let Some((id, addr)) = primary {
        let mut st = shared.lock();
        super::replication::replica::become_replica(&mut st, &shared, id, addr);
    }
    Ok(shared)
}

/// Run a node: `listeners` are its port and, when plaintext is served next to TLS, its
/// plaintext port.
fn launch(
    listeners: [Option<TcpListener>; 2],
    id: NodeId,
    config: NodeConfig,
    state: NodeState,
) -> Arc<NodeShared> {
    let addr = state.cluster.me().addr;
    let limits = state.repl.limits.clone();
    let (shutdown, _) = watch::channel(false);
    let shared = Arc::new(NodeShared {
        id,
        addr,
        state: Mutex::new(state),
        config,
        next_client_id: AtomicU64::new(1),
        connected_clients: AtomicU64::new(0),
        clients: super::clients::Clients::default(),
        total_connections: AtomicU64::new(0),
        shutdown,
        started: Instant::now(),
        bus_wakeup: Notify::new(),
        acks: Notify::new(),
        repl_wakeup: Notify::new(),
        faults: Faults::default(),
        run_id: NodeId::random(),
        pubsub: Default::default(),
        migrate_links: Default::default(),
        limits,
        rejected_connections: AtomicU64::new(0),
        scripting: Default::default(),
    });
    shared.pubsub.set_limits(shared.limits.clone());
    directory::register(addr, &shared);
    for l in listeners.into_iter().flatten() {
        if let Ok(bind) = l.local_addr() {
            tokio::spawn(accept_loop(l, bind, shared.clone()));
        }
    }
    if !shared.config.standalone {
        tokio::spawn(bus_task(shared.clone()));
    }
    tokio::spawn(cron(shared.clone()));
    shared
}

/// Accept clients; while partitioned the listener is closed (connects are refused) and
/// bound again on heal. Past `maxclients` a client gets Redis' error and is closed. When
/// accepting fails (out of descriptors: EMFILE/ENFILE), existing clients keep being served
/// and accepting is retried after a growing pause (10 ms doubling to 1 s), never spinning.
async fn accept_loop(listener: TcpListener, bind: SocketAddr, shared: Arc<NodeShared>) {
    let mut stop = shared.shutdown_rx();
    let mut partitioned = shared.faults.partitioned.subscribe();
    let mut listener = Some(listener);
    let mut backoff = Duration::ZERO;
    loop {
        let cut_off = *partitioned.borrow_and_update();
        if cut_off {
            listener = None;
        } else if listener.is_none() {
            listener = listen(bind, &shared.config).ok();
        }
        let Some(l) = listener.as_ref() else {
            tokio::select! {
                _ = partitioned.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                _ = crate::server::node::stopped(&mut stop) => return,
            }
            continue;
        };
        tokio::select! {
            accepted = l.accept() => match accepted {
                Ok((stream, peer)) => {
                    backoff = Duration::ZERO;
                    admit(stream, peer, &shared);
                }
                Err(e) => {
                    backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                    tracing::warn!(
                        error = %e,
                        retry_in_ms = backoff.as_millis() as u64,
                        "Error accepting a client connection"
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = crate::server::node::stopped(&mut stop) => return,
                    }
                }
            },
            _ = partitioned.changed() => {}
            _ = crate::server::node::stopped(&mut stop) => return,
        }
    }
}

/// Serve an accepted client, or refuse it past `maxclients` as Redis does (in its cluster
/// mode wording): the error is written without waiting (the socket buffer is empty) and the
/// connection closed. On a TLS port nothing is written, as in Redis (`acceptCommonHandler`:
/// admission comes before any handshake, so the error could only go out in plaintext, which
/// a TLS client would read as a corrupt record): the connection just drops.
fn admit(stream: tokio::net::TcpStream, peer: SocketAddr, shared: &Arc<NodeShared>) {
    shared.total_connections.fetch_add(1, Ordering::Relaxed);
    let clients = shared.connected_clients.fetch_add(1, Ordering::Relaxed);
    if clients >= shared.limits.maxclients() {
        shared.connected_clients.fetch_sub(1, Ordering::Relaxed);
        shared.rejected_connections.fetch_add(1, Ordering::Relaxed);
        if !on_tls_port(&stream, shared) {
            let _ = stream.try_write(if shared.config.standalone {
                b"-ERR max number of clients reached\r\n"
            } else {
                b"-ERR max number of clients + cluster connections reached\r\n"
            });
        }
        return;
    }
    tokio::spawn(super::conn::serve(stream, peer, shared.clone()));
}

/// True when `stream` came in on the node's TLS port (the node's own port when TLS is on;
/// a plaintext port served beside it is another one).
fn on_tls_port(stream: &tokio::net::TcpStream, shared: &NodeShared) -> bool {
    #[cfg(feature = "tls")]
    if shared.config.tls.is_some() {
        return stream
            .local_addr()
            .map_or(true, |a| a.port() == shared.addr.port());
    }
    let _ = (stream, shared);
    false
}

/// How often the cron runs (Redis' `hz` 10).
const CRON_PERIOD: Duration = Duration::from_millis(100);
/// Time a slow expiry cycle may take: 25% of a cron period, as Redis'
/// `ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC`.
const SLOW_EXPIRE_BUDGET: Duration = Duration::from_millis(25);
/// A fast expiry cycle: 1 ms, at most every 2 ms, while a backlog of expired keys remains
/// (Redis' `ACTIVE_EXPIRE_CYCLE_FAST_DURATION`, run from `beforeSleep`).
const FAST_EXPIRE_BUDGET: Duration = Duration::from_millis(1);
const FAST_EXPIRE_PERIOD: Duration = Duration::from_millis(2);

/// Periodic housekeeping: replicas' output limits checked every 100 ms (Redis'
/// `clientsCron`: a soft limit's seconds run out without a write), and active expiry on
/// primaries, as Redis' `activeExpireCycle`: a slow
/// cycle every 100 ms with a 25 ms budget, and while expired keys remain after it, fast
/// cycles of 1 ms every 2 ms. Our TTL index is ordered by expiry time, so a cycle deletes
/// exactly the expired keys (Redis samples until fewer than 10% of a sample are expired).
async fn cron(shared: Arc<NodeShared>) {
    let mut stop = shared.shutdown_rx();
    let mut tick = tokio::time::interval(CRON_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut backlog = false;
    loop {
        let slow = if backlog {
            tokio::select! {
                _ = tick.tick() => true,
                _ = tokio::time::sleep(FAST_EXPIRE_PERIOD) => false,
                _ = crate::server::node::stopped(&mut stop) => return,
            }
        } else {
            tokio::select! {
                _ = tick.tick() => true,
                _ = crate::server::node::stopped(&mut stop) => return,
            }
        };
        if slow {
            shared.migrate_links.expire();
            let mut locked = Locked::new(&shared);
            let st = locked.get();
            st.repl.check_output_limits();
            // As Redis' serverCron: the tracking table back within its limit.
            st.tracking.limit(&shared.clients);
        }
        let budget = if slow {
            SLOW_EXPIRE_BUDGET
        } else {
            FAST_EXPIRE_BUDGET
        };
        backlog = expire_cycle(&shared, budget);
    }
}

/// One active expiry cycle of at most `budget`; true when expired keys remain.
fn expire_cycle(shared: &NodeShared, budget: Duration) -> bool {
    if shared.faults.active_expire_off.load(Ordering::Relaxed) {
        return false;
    }
    let mut st = Locked::new(shared);
    let state = st.get();
    if !state.cluster.me().is_primary() {
        return false;
    }
    let deadline = Instant::now() + budget;
    let current = state.dbs.current();
    let mut more = false;
    // Every database (a standalone node's others are parked), each taking what budget is left.
    for i in state.db_indexes() {
        state.select_db(i);
        more |= state.db.active_expire_until(now_ms(), deadline);
        let props = state.db.take_propagation();
        state.repl.feed(props);
    }
    state.select_db(current);
    more
}

/// The bus task of one node: a gossip round every ~100 ms (or when woken), then failure
/// detection and elections.
async fn bus_task(shared: Arc<NodeShared>) {
    let mut stop = shared.shutdown_rx();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = shared.bus_wakeup.notified() => {}
            _ = crate::server::node::stopped(&mut stop) => return,
        }
        bus::tick(&shared);
        if !bus::blocked(&shared) {
            failover::cron(&shared);
        }
    }
}
