//! The router: command -> slot -> node (by [`ReadFrom`]), redirects, retries, deadline.
//!
//! Each request is routed from the current topology snapshot (read without locking), sent on
//! the least-loaded connection of the chosen node, and its outcome handed to the pure
//! [`decide`](decide::decide) function: done, follow a MOVED or ASK, back off and retry,
//! refresh and retry, or fail, all under one deadline (`request_timeout`).

pub(crate) mod decide;
pub(crate) mod fanout;
mod many;
mod reach;
pub(crate) mod refresh;
pub(crate) mod route;
mod select;
pub(crate) mod sentinel;
pub(crate) mod session;
pub(crate) mod split;
pub(crate) mod standalone;
pub(crate) mod subscriber;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::connection::reply_of;
pub(crate) use crate::connection::ConnectOptions;
use crate::error::{Error, ErrorKind};
use crate::pool::Pool;
use crate::resp::Value;
use crate::topology::{Topology, TopologyCell};
use crate::types::Args;
use decide::{decide, Action, Attempt, Policy};
pub(crate) use reach::Reach;
use refresh::Refresher;
use route::Route;

/// Which node serves a read-only command. Writes (and commands not known to be read-only)
/// always go to the primary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadFrom {
    /// Every command goes to the slot's primary: always the latest data.
    #[default]
    Primary,
    /// The primary while it is healthy, else a replica.
    PrimaryPreferred,
    /// A healthy replica (spread round-robin), else the primary: offloads reads.
    ReplicaPreferred,
    /// Only replicas (the primary only when the shard has no replica at all).
    Replica,
    /// The node with the lowest measured reply time, primary or replica.
    Nearest,
    /// Any healthy node of the shard, round-robin.
    Any,
}

/// Settings the router needs (from the builder).
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) seeds: Vec<String>,
    pub(crate) read_from: ReadFrom,
    pub(crate) request_timeout: Duration,
    pub(crate) refresh_interval: Option<Duration>,
    pub(crate) policy: Policy,
    /// Which kind of deployment to expect.
    pub(crate) mode: Mode,
    /// The client-side cache, told when slots change owner (MOVED, refresh).
    pub(crate) cache: Option<Arc<crate::client_cache::Store>>,
}

/// The kind of deployment the client talks to.
#[derive(Clone, Debug, Default)]
pub(crate) enum Mode {
    /// Redis Cluster, or a standalone primary when the seeds say cluster support is
    /// disabled.
    #[default]
    Auto,
    /// A standalone primary with replicas, found from the nodes (`ClientBuilder::standalone`).
    Standalone,
    /// A standalone primary with replicas, found through Sentinel (`Client::sentinel`).
    Sentinel(Arc<sentinel::Sentinels>),
}

/// Counters for `Client::stats`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) moved: AtomicU64,
    pub(crate) ask: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) refreshes: AtomicU64,
    pub(crate) timeouts: AtomicU64,
}

/// Shared state behind every clone of a client.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) pool: Arc<Pool>,
    pub(crate) topology: TopologyCell,
    pub(crate) counters: Counters,
    refresher: std::sync::OnceLock<Refresher>,
    rr: AtomicUsize,
    pub(crate) closing: AtomicBool,
    /// No Redis Cluster: one primary with replicas (forced, or detected at discovery). Keys
    /// in different slots are then no error: every slot lives on the one primary.
    standalone: AtomicBool,
}

/// The routing handle a client holds.
#[derive(Debug)]
pub(crate) struct Router {
    inner: Arc<Inner>,
}

impl Drop for Router {
    fn drop(&mut self) {
        self.inner.closing.store(true, Ordering::Relaxed);
        if let Some(r) = self.inner.refresher.get() {
            r.trigger();
        }
    }
}

/// Where the next attempt goes.
#[derive(Clone, Debug)]
enum Target {
    /// Route by slot from the topology.
    Slot,
    /// A node named by a redirect; `asking` sends ASKING first.
    Addr { addr: String, asking: bool },
}

/// Queue `ASKING` in front of a command (its `OK` is read and dropped by the connection).
fn encode_asking(buf: &mut bytes::BytesMut) {
    crate::resp::encode_command(buf, [&b"ASKING"[..]]);
}

/// What a request left behind when its deadline cut it off: the last transient error it met,
/// and whether any attempt got as far as a connection (so it may have been applied).
#[derive(Clone, Debug, Default)]
pub(crate) struct Trail {
    pub(crate) last_error: Option<Error>,
    pub(crate) sent: bool,
    /// The client-side cache's part of a request (see [`Track`]).
    pub(crate) track: Track,
}

/// A cached read's conversation with the engine: whether to send `CLIENT CACHING yes` in
/// front of it (OPTIN mode), and which tracking connection served the reply that counts
/// (`None` when it came through an ASK redirect, or no tracking connection: then it is not
/// stored).
#[derive(Clone, Debug, Default)]
pub(crate) struct Track {
    pub(crate) optin: bool,
    pub(crate) conn: Option<crate::connection::ConnTag>,
}

/// Queue `CLIENT CACHING yes` in front of an OPTIN cached read (its `OK` is dropped).
fn encode_caching_yes(buf: &mut bytes::BytesMut) {
    crate::resp::encode_command(buf, [&b"CLIENT"[..], b"CACHING", b"yes"]);
}

impl Inner {
    /// Count a request that hit its deadline and build its error. `what` names the request
    /// in the message ("request", "request to ADDR", "pipelined request" ...); `trail` has
    /// the last error met before the deadline, and whether any attempt was handed to a
    /// connection: only then does the error say the request may have been applied.
    pub(super) fn deadline_error(
        &self,
        kind: ErrorKind,
        what: &str,
        timeout: Duration,
        trail: Trail,
    ) -> Error {
        self.counters.timeouts.fetch_add(1, Ordering::Relaxed);
        let message = match trail.last_error {
            Some(e) => format!("{what} timed out after {timeout:?} (last error: {e})"),
            None => format!("{what} timed out after {timeout:?}"),
        };
        Error::new(kind, message).with_sent(trail.sent)
    }

    /// Publish a refreshed topology.
    pub(crate) fn install(&self, t: Topology) {
        self.counters.refreshes.fetch_add(1, Ordering::Relaxed);
        crate::telemetry::refresh();
        let old = self.topology.load();
        if old.fingerprint() != t.fingerprint() {
            tracing::info!(
                epoch = t.epoch(),
                shards = t.shards().len(),
                covered = t.covered_slots(),
                "topology changed"
            );
        }
        let mut keep = t.addrs();
        keep.extend(self.config.seeds.iter().cloned());
        self.pool.retain(&keep);
        if let Some(cache) = &self.config.cache {
            cache.owners_changed(&old, &t);
        }
        self.topology.store(t);
    }

    /// True when the deployment is a standalone primary with replicas (no cluster).
    pub(crate) fn is_standalone(&self) -> bool {
        self.standalone.load(Ordering::Relaxed)
    }

    /// From now on the deployment is a standalone primary (detected at discovery).
    pub(crate) fn set_standalone(&self) {
        self.standalone.store(true, Ordering::Relaxed);
    }

    /// Route `args` for this deployment (see [`route::route`]).
    pub(crate) fn route(&self, args: &Args) -> Result<Route, Error> {
        route::route(args, self.is_standalone())
    }

    fn refresher(&self) -> Option<&Refresher> {
        self.refresher.get()
    }

    fn trigger_refresh(&self) {
        if let Some(r) = self.refresher() {
            r.trigger();
        }
    }

    async fn run(
        &self,
        args: &Args,
        route: Route,
        home: Target,
        trail: &mut Trail,
    ) -> Result<Value, Error> {
        self.run_on(args, route, home, trail, false).await
    }

    async fn run_on(
        &self,
        args: &Args,
        route: Route,
        home: Target,
        trail: &mut Trail,
        exclusive: bool,
    ) -> Result<Value, Error> {
        let mut attempt = Attempt {
            readonly: route.readonly,
            ..Attempt::default()
        };
        let mut target = home.clone();
        let measure = args.read_from().unwrap_or(self.config.read_from) == ReadFrom::Nearest;
        loop {
            let (entry, readonly_conn, asking) = match &target {
                Target::Slot => match self.pick_by(route, args.read_from()) {
                    Some((e, ro)) => (e, ro, false),
                    None => {
                        let err = Error::new(
                            ErrorKind::ClusterDown,
                            match route.slot {
                                Some(s) => format!("no node serves slot {s}"),
                                None => "no node known".to_string(),
                            },
                        );
                        trail.last_error = Some(err);
                        self.count_retry();
                        attempt.retries += 1;
                        match self.refresher() {
                            Some(r) => r.refresh_and_wait().await,
                            None => {
                                return Err(trail.last_error.clone().unwrap_or_else(|| {
                                    Error::new(ErrorKind::ClusterDown, "no topology")
                                }))
                            }
                        }
                        tokio::time::sleep(self.config.policy.backoff(attempt.retries.min(8)))
                            .await;
                        continue;
                    }
                },
                Target::Addr { addr, asking } => (self.pool.entry(addr), false, *asking),
            };
            crate::telemetry::node(entry.addr());
            let started = measure.then(Instant::now);
            let outcome = if exclusive {
                entry.count_request();
                // (Counted as sent from here: the dedicated connection may be ready.)
                trail.sent = true;
                self.send_exclusive(&entry, readonly_conn, asking, args)
                    .await
            } else {
                match self.pool.conn(&entry, readonly_conn).await {
                    Ok(conn) => {
                        entry.count_request();
                        // A read through an ASK is not stored, so it needs no CACHING yes
                        // (and only one command may go in front).
                        let caching = trail.track.optin && !asking;
                        match conn.send(asking || caching, |buf| {
                            if asking {
                                encode_asking(buf);
                            }
                            if caching {
                                encode_caching_yes(buf);
                            }
                            args.encode(buf)
                        }) {
                            Ok(rx) => {
                                trail.sent = true;
                                trail.track.conn =
                                    (!asking).then(|| conn.tag()).filter(|t| t.tracks());
                                reply_of(rx.await)
                            }
                            Err(e) => Err(e),
                        }
                    }
                    Err(e) => Err(e),
                }
            };
            if let Some(t) = started {
                entry.record_latency(t.elapsed());
            }
            match decide(&outcome, &attempt, &self.config.policy) {
                Action::Done => {
                    return match outcome {
                        Ok(Value::Error(line)) => {
                            Err(Error::server(&String::from_utf8_lossy(&line))
                                .for_user(self.pool.user().as_deref()))
                        }
                        other => other,
                    }
                }
                Action::Moved { slot, addr } => {
                    attempt.redirects += 1;
                    target = Target::Addr {
                        addr: self.note_moved(slot, &addr, entry.addr(), attempt.redirects),
                        asking: false,
                    };
                }
                Action::Ask { addr, .. } => {
                    attempt.redirects += 1;
                    target = Target::Addr {
                        addr: self.note_ask(&addr, entry.addr(), attempt.redirects),
                        asking: true,
                    };
                }
                Action::RetryAfter { delay, refresh } => {
                    self.count_retry();
                    if let Ok(Value::Error(line)) = &outcome {
                        if line.starts_with(b"LOADING") {
                            entry.mark_loading();
                        }
                    }
                    trail.last_error = Some(match outcome {
                        Ok(Value::Error(line)) => Error::server(&String::from_utf8_lossy(&line)),
                        Err(e) => e,
                        Ok(_) => Error::new(ErrorKind::Server, "retry"),
                    });
                    tracing::warn!(node = entry.addr(), retry_in = ?delay, error = ?trail.last_error.as_ref().map(|e| e.to_string()), "retrying");
                    if refresh {
                        self.trigger_refresh();
                    }
                    attempt.retries += 1;
                    target = home.clone();
                    tokio::time::sleep(delay).await;
                }
                Action::RefreshAndRetry => {
                    self.count_retry();
                    tracing::warn!(
                        node = entry.addr(),
                        "node is not what the map says; refreshing"
                    );
                    if let Ok(Value::Error(line)) = outcome {
                        trail.last_error = Some(Error::server(&String::from_utf8_lossy(&line)));
                    }
                    attempt.retries += 1;
                    target = home.clone();
                    if self.is_standalone() {
                        // The primary's name may lead elsewhere now (a re-pointed DNS
                        // name): dial it afresh.
                        self.pool.forget(entry.addr());
                    }
                    if let Some(r) = self.refresher() {
                        r.refresh_and_wait().await;
                    }
                }
                Action::Fail(e) => return Err(e),
            }
        }
    }
}

impl Router {
    /// Build the router and discover the cluster from the seeds.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when no seed answered with a usable topology.
    pub(crate) async fn start(
        config: Config,
        opts: ConnectOptions,
        pool_size: usize,
    ) -> Result<Router, Error> {
        let router = Router::unstarted(config, opts, pool_size);
        let inner = &router.inner;
        let t = refresh::discover(inner).await?;
        inner.install(t);
        if let Mode::Sentinel(sentinels) = &inner.config.mode {
            sentinel::watch(Arc::downgrade(inner), sentinels.clone());
        }
        if inner.config.read_from == ReadFrom::Nearest {
            refresh::measure_latency(inner).await;
        }
        let weak: Weak<Inner> = Arc::downgrade(inner);
        let (refresher, _) = Refresher::spawn(weak, inner.config.refresh_interval);
        let _ = inner.refresher.set(refresher);
        Ok(router)
    }

    /// A router with an empty topology and no refresh task (the first step of
    /// [`start`](Router::start); tests drive it as is).
    fn unstarted(config: Config, opts: ConnectOptions, pool_size: usize) -> Router {
        Router {
            inner: Arc::new(Inner {
                pool: Arc::new(Pool::new(opts, pool_size)),
                topology: TopologyCell::new(Topology::empty()),
                counters: Counters::default(),
                refresher: std::sync::OnceLock::new(),
                rr: AtomicUsize::new(0),
                closing: AtomicBool::new(false),
                standalone: AtomicBool::new(!matches!(config.mode, Mode::Auto)),
                config,
            }),
        }
    }

    /// True for a standalone primary with replicas (no cluster).
    pub(crate) fn is_standalone(&self) -> bool {
        self.inner.is_standalone()
    }

    /// The client-side cache, when on.
    pub(crate) fn cache(&self) -> Option<&Arc<crate::client_cache::Store>> {
        self.inner.config.cache.as_ref()
    }

    /// The request deadline (`request_timeout`).
    pub(crate) fn request_timeout(&self) -> Duration {
        self.inner.config.request_timeout
    }

    /// The current topology snapshot.
    pub(crate) fn topology(&self) -> Arc<Topology> {
        self.inner.topology.load()
    }

    /// The engine's counters (redirects, retries, refreshes, timeouts).
    pub(crate) fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// Per node: (address, requests sent, connections re-opened).
    pub(crate) fn node_figures(&self) -> Vec<(String, u64, u64)> {
        self.inner
            .pool
            .entries()
            .iter()
            .map(|e| (e.addr().to_string(), e.requests(), e.reconnects()))
            .collect()
    }

    /// Ask for a topology refresh and wait for it (or return at once without a refresher).
    pub(crate) async fn refresh_and_wait(&self) {
        if let Some(r) = self.inner.refresher() {
            r.refresh_and_wait().await;
        }
    }

    /// Ask for a topology refresh soon.
    pub(crate) fn trigger_refresh(&self) {
        self.inner.trigger_refresh();
    }

    /// Run a command on the node at `addr` (not routed by key; retried there on transient
    /// errors), within the request deadline.
    ///
    /// # Errors
    /// As [`execute`](Router::execute).
    pub(crate) async fn execute_on(&self, addr: &str, args: &Args) -> Result<Value, Error> {
        let route = Route::keyless(true);
        let home = Target::Addr {
            addr: addr.to_string(),
            asking: false,
        };
        let mut trail = Trail::default();
        let timeout = self.inner.config.request_timeout;
        match tokio::time::timeout(timeout, self.inner.run(args, route, home, &mut trail)).await {
            Ok(r) => r,
            Err(_) => Err(self.inner.deadline_error(
                ErrorKind::Timeout,
                &format!("request to {addr}"),
                timeout,
                trail,
            )),
        }
    }

    /// Run one command to completion: route, send, follow redirects, retry, all within the
    /// request deadline.
    ///
    /// # Errors
    /// Cross-slot before sending; server errors; [`ErrorKind::Timeout`] at the deadline
    /// (naming the last transient error seen); the decision's failures.
    pub(crate) async fn execute(&self, args: &Args) -> Result<Value, Error> {
        self.execute_tracked(args, &mut Track::default()).await
    }

    /// [`execute`](Router::execute) for the client-side cache: `track` says whether to
    /// send `CLIENT CACHING yes` first, and comes back naming the tracking connection that
    /// served the reply.
    pub(crate) async fn execute_tracked(
        &self,
        args: &Args,
        track: &mut Track,
    ) -> Result<Value, Error> {
        let (op, span) = crate::telemetry::start(args);
        let r = self
            .execute_routed(args, track)
            .instrument(span.clone())
            .await;
        crate::telemetry::finish(op, &span, &r);
        r
    }

    /// [`execute`](Router::execute) inside its span.
    async fn execute_routed(&self, args: &Args, track: &mut Track) -> Result<Value, Error> {
        let route = match self.inner.route(args) {
            Ok(r) => r,
            Err(e) if e.kind() == ErrorKind::CrossSlot => match split::plan(args) {
                Some(plan) => return self.execute_split(plan).await,
                None => return Err(e),
            },
            Err(e) => return Err(e),
        };
        crate::telemetry::slot(route.slot);
        let span = tracing::Span::current();
        let timeout = self.inner.config.request_timeout;
        if let Some((targets, how)) = route.fanout {
            return self
                .fan_out(args, route, targets, how)
                .instrument(span)
                .await;
        }
        let mut trail = Trail {
            track: std::mem::take(track),
            ..Trail::default()
        };
        let timeout = match route.block {
            route::Block::No => timeout,
            route::Block::For(d) => timeout.saturating_add(d),
            // Blocks until data comes: only the connection's life bounds it.
            route::Block::Forever => Duration::MAX,
        };
        let exclusive = route.exclusive;
        let run = self
            .inner
            .run_on(args, route, Target::Slot, &mut trail, exclusive)
            .instrument(span);
        let result = if timeout == Duration::MAX {
            Ok(run.await)
        } else {
            tokio::time::timeout(timeout, run).await
        };
        *track = std::mem::take(&mut trail.track);
        match result {
            Ok(r) => r,
            Err(_) => {
                // A node that stopped answering with its sockets open (frozen, partitioned
                // without a reset) may have been failed over meanwhile: look again, so the
                // next requests do not wait on it until the periodic refresh.
                self.inner.trigger_refresh();
                // A cluster that said CLUSTERDOWN (or served no node for the slot) all along
                // is reported as such, not as a slow request.
                let kind = match &trail.last_error {
                    Some(e) if e.kind() == ErrorKind::ClusterDown => ErrorKind::ClusterDown,
                    _ => ErrorKind::Timeout,
                };
                Err(self.inner.deadline_error(kind, "request", timeout, trail))
            }
        }
    }
}
