//! The bundled Redis Sentinel: one Sentinel per [`Sentinel`], on its own 127.0.0.1 listener,
//! monitoring primaries and replicas over real TCP (so it watches a real `redis-server` as
//! well as the bundled nodes) with Redis 7.0's algorithms and replies.
//!
//! - `state`: what one Sentinel knows (masters, replicas, other Sentinels, links, flags).
//! - `link`: its outgoing connections (command link, hello pub/sub link) per instance.
//! - `monitor` / `info`: the timer (PING, INFO, hello, SDOWN, ODOWN, asking the others)
//!   and what replies and hello messages mean.
//! - `failover`: epochs, leader election, replica selection, the failover state machine.
//! - `conn`: client connections (PING, HELLO, AUTH, CLIENT, INFO, ROLE, pub/sub of the
//!   events, SHUTDOWN, `SENTINEL`); `command` / `command_set` / `reply`: `SENTINEL`.
//! - `test_sentinels`: [`TestSentinels`], several Sentinels watching one replica set.
//! - `conf`: sentinel.conf directives (for the binary).

mod command;
mod command_set;
pub mod conf;
mod conn;
mod failover;
mod info;
mod link;
mod monitor;
mod ops;
mod reply;
mod state;
mod test_sentinels;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};

pub use test_sentinels::{TestSentinels, TestSentinelsBuilder};

use state::{Events, State, Timing};

/// One group to monitor: `sentinel monitor <name> <ip> <port> <quorum>` and its settings.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Monitor {
    /// The group's name (`mymaster`).
    pub name: String,
    /// The primary's address.
    pub addr: SocketAddr,
    /// Sentinels that must agree the primary is down before a failover (ODOWN).
    pub quorum: u32,
    /// `down-after-milliseconds`: no valid PING reply for this long means SDOWN.
    pub down_after: Duration,
    /// `failover-timeout`.
    pub failover_timeout: Duration,
    /// `parallel-syncs`: replicas re-pointed at the same time after a failover.
    pub parallel_syncs: u32,
    /// `auth-pass` for the data nodes (never shown).
    pub auth_pass: Option<String>,
    /// `auth-user` for the data nodes.
    pub auth_user: Option<String>,
}

impl Monitor {
    /// Monitor `addr` as `name` with `quorum`, Redis' defaults otherwise (30 s down-after,
    /// 180 s failover timeout, 1 parallel sync).
    pub fn new(name: impl Into<String>, addr: SocketAddr, quorum: u32) -> Monitor {
        Monitor {
            name: name.into(),
            addr,
            quorum,
            down_after: Duration::from_secs(30),
            failover_timeout: Duration::from_secs(180),
            parallel_syncs: 1,
            auth_pass: None,
            auth_user: None,
        }
    }
}

/// How to start one [`Sentinel`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct SentinelConfig {
    /// Port on 127.0.0.1 (0: any free port).
    pub port: u16,
    /// The groups to monitor.
    pub monitors: Vec<Monitor>,
    /// Password clients must AUTH with (`requirepass`); never shown.
    pub requirepass: Option<String>,
    /// `sentinel sentinel-pass`: how this Sentinel authenticates to the other Sentinels.
    pub sentinel_pass: Option<String>,
    /// A fixed Sentinel id (`sentinel myid`); random when `None`.
    pub myid: Option<String>,
}

/// What the tasks of one Sentinel share.
pub(crate) struct Core {
    state: Mutex<State>,
    events: broadcast::Sender<state::Event>,
    requirepass: Option<String>,
    stop: watch::Sender<bool>,
    /// Set once the listener is closed (after `stop`).
    closed: watch::Sender<bool>,
    next_client: AtomicU64,
    clients: Mutex<Vec<conn::ClientEntry>>,
    started: Instant,
    connections: AtomicU64,
    commands: AtomicU64,
}

impl Core {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn clients(&self) -> MutexGuard<'_, Vec<conn::ClientEntry>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running Sentinel. Dropping it does not stop it; [`Sentinel::stop`] (or `SHUTDOWN`)
/// does.
#[derive(Clone)]
pub struct Sentinel {
    core: Arc<Core>,
    addr: SocketAddr,
}

impl std::fmt::Debug for Sentinel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sentinel")
            .field("addr", &self.addr)
            .finish()
    }
}

fn random_id() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut rng = rand::thread_rng();
    (0..40).map(|_| HEX[rng.gen_range(0..16)] as char).collect()
}

impl Sentinel {
    /// Bind 127.0.0.1:`config.port`, start monitoring, and serve clients.
    ///
    /// # Errors
    /// The listener cannot be bound.
    pub async fn start(config: SentinelConfig) -> std::io::Result<Sentinel> {
        let listener = TcpListener::bind(("127.0.0.1", config.port)).await?;
        let addr = listener.local_addr()?;
        let (events, _) = broadcast::channel(1024);
        let myid = config.myid.clone().unwrap_or_else(random_id);
        let mut st = State::new(myid, addr.port(), Timing::default(), Events(events.clone()));
        st.sentinel_pass = config.sentinel_pass.clone();
        for m in &config.monitors {
            let ip = m.addr.ip().to_string();
            let master = st.add_master(&m.name, &ip, m.addr.port(), m.quorum);
            master.inst.down_after = m.down_after.as_millis() as i64;
            master.failover_timeout = m.failover_timeout.as_millis() as i64;
            master.parallel_syncs = i64::from(m.parallel_syncs.max(1));
            master.auth_pass = m.auth_pass.clone();
            master.auth_user = m.auth_user.clone();
            let desc = format!("{} quorum {}", master.describe(), master.quorum);
            st.events.emit("+monitor", desc);
        }
        let (stop, _) = watch::channel(false);
        let (closed, _) = watch::channel(false);
        let core = Arc::new(Core {
            state: Mutex::new(st),
            events,
            requirepass: config.requirepass.clone(),
            stop,
            closed,
            next_client: AtomicU64::new(1),
            clients: Mutex::new(Vec::new()),
            started: Instant::now(),
            connections: AtomicU64::new(0),
            commands: AtomicU64::new(0),
        });
        tokio::spawn(accept_loop(core.clone(), listener));
        tokio::spawn(timer(core.clone()));
        Ok(Sentinel { core, addr })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// This Sentinel's id (`SENTINEL MYID`).
    pub fn myid(&self) -> String {
        self.core.lock().myid.clone()
    }

    /// Stop: close the listener, every client connection and every link.
    pub fn stop(&self) {
        shutdown(&self.core);
    }

    /// True once stopped.
    pub fn is_stopped(&self) -> bool {
        *self.core.stop.borrow()
    }

    /// Wait until stopped (by [`Sentinel::stop`] or `SHUTDOWN`) and its port is closed.
    pub async fn stopped(&self) {
        let mut rx = self.core.closed.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }
}

pub(crate) fn shutdown(core: &Arc<Core>) {
    core.stop.send_replace(true);
    let mut st = core.lock();
    for m in st.masters.iter_mut() {
        m.inst.link.close();
        for i in m.replicas.iter_mut().chain(m.sentinels.iter_mut()) {
            i.link.close();
        }
    }
}

async fn accept_loop(core: Arc<Core>, listener: TcpListener) {
    let mut stop = core.stop.subscribe();
    loop {
        tokio::select! {
            r = listener.accept() => {
                let Ok((stream, peer)) = r else { continue };
                core.connections.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(conn::serve(core.clone(), stream, peer));
            }
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    drop(listener);
    core.closed.send_replace(true);
}

/// Redis runs the Sentinel timer 10-20 times a second, varying it so Sentinels started
/// together do not stay in step (and split votes).
async fn timer(core: Arc<Core>) {
    let mut stop = core.stop.subscribe();
    loop {
        let ms = rand::thread_rng().gen_range(50..100);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        monitor::tick(&core);
    }
}
