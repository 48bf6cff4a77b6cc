//! A consistency checker in the spirit of redis-rb-cluster's `consistency-test.rb`: many
//! counters, `INCR` with the expected value tracked locally, and a read before every write
//! that compares the counter with what the client was told.
//!
//! ```sh
//! cargo run --release --example consistency                       # bundled cluster, 30 s
//! cargo run --release --example consistency -- --chaos --duration 60
//! cargo run --release --example consistency -- --seeds 127.0.0.1:30000,127.0.0.1:30001
//! cargo run --release --example consistency -- --real --sentinel --chaos   # redis-server
//! cargo run --release --example consistency -- --real --standalone --chaos
//! ```
//!
//! Deployments without a cluster, on the bundled server (`TestReplicaSet`, `TestSentinels`;
//! `--chaos` with `--sentinel` only) or with `--real` (real `redis-server` processes on free
//! ports, from the tests' support code): `--standalone` (a primary + 2 replicas; `--chaos` kills the
//! primary every few seconds and fails over by hand: `REPLICAOF NO ONE` on a replica, the
//! others re-pointed, the old primary restarted as a replica) and `--sentinel` (the same
//! with 3 Sentinels, which promote a replica by themselves; the old primary is restarted and
//! the Sentinels make it a replica).
//!
//! Options: `--seeds a,b,..` (any cluster; default: start the bundled 3+3 cluster),
//! `--duration SECS` (30), `--keys N` (10000), `--workers N` (32), `--timeout MS` (request
//! deadline, 2000), `--node-timeout MS` (bundled cluster, 1000), `--chaos` (bundled cluster
//! only: every few seconds kill a primary and restart it, or fail a shard over by hand).
//!
//! Each key has one writer, so its expected value is exact. Every second it prints:
//! - `ops/s`: reads and writes that succeeded;
//! - `errors`: requests that failed (of which `maybe` may have been applied, `timeout` hit
//!   their deadline);
//! - `lost`: increments acknowledged but missing on a later read (the cluster lost them:
//!   Redis replication is asynchronous, so a promoted replica may miss the last writes);
//! - `outside`: of those, the ones outside the asynchronous-replication window: the key's
//!   last acknowledged write came more than `--window-ms` (1000: replicas acknowledge every
//!   second) before a primary was killed, or no kill followed it at all (should stay 0);
//! - `noack`: increments reported as failed (maybe applied) that a later read shows applied;
//! - `unexpected`: counters higher than any write sent could explain (should stay 0);
//! - `overdue`: requests that outlived their deadline by more than 250 ms (goal 0).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redcluster::server::{FailoverMode, Role, TestCluster, TestReplicaSet, TestSentinels};
use redcluster::{Client, ErrorKind};

// The tests' real redis-server support (top-level here: they name each other as `super::`).
#[allow(dead_code)]
#[path = "../tests/support/real_cluster.rs"]
mod real_cluster;
#[allow(dead_code)]
#[path = "../tests/support/real_standalone.rs"]
mod real_standalone;
#[allow(dead_code)]
#[path = "../tests/support/wait.rs"]
mod wait;
use real_standalone::{RealReplicaSet, MASTER_NAME};

/// When primaries were killed (for the asynchronous-replication window).
type Kills = Arc<std::sync::Mutex<Vec<Instant>>>;

#[derive(Default)]
struct Counters {
    ops: AtomicU64,
    errors: AtomicU64,
    maybe: AtomicU64,
    timeouts: AtomicU64,
    lost: AtomicU64,
    outside: AtomicU64,
    noack: AtomicU64,
    unexpected: AtomicU64,
    overdue: AtomicU64,
}

struct Opts {
    seeds: Option<Vec<String>>,
    duration: Duration,
    keys: usize,
    workers: usize,
    timeout: Duration,
    node_timeout: Duration,
    chaos: bool,
    real: bool,
    standalone: bool,
    sentinel: bool,
    window: Duration,
}

fn opts() -> Opts {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let num = |name: &str, default: u64| {
        value(name)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(default)
    };
    Opts {
        seeds: value("--seeds").map(|s| s.split(',').map(String::from).collect()),
        duration: Duration::from_secs(num("--duration", 30)),
        keys: num("--keys", 10_000).max(1) as usize,
        workers: num("--workers", 32).max(1) as usize,
        timeout: Duration::from_millis(num("--timeout", 2000)),
        node_timeout: Duration::from_millis(num("--node-timeout", 1000)),
        chaos: args.iter().any(|a| a == "--chaos"),
        real: args.iter().any(|a| a == "--real"),
        standalone: args.iter().any(|a| a == "--standalone"),
        sentinel: args.iter().any(|a| a == "--sentinel"),
        window: Duration::from_millis(num("--window-ms", 1000)),
    }
}

/// One counter's state as this worker knows it.
#[derive(Clone, Copy, Default)]
struct Expect {
    /// The value the cluster should hold (`None` until first read).
    value: Option<i64>,
    /// Increments that failed as "maybe applied" since the last read.
    maybe: i64,
    /// When the last increment was acknowledged.
    acked_at: Option<Instant>,
}

async fn worker(
    client: Client,
    keys: Vec<String>,
    deadline: Instant,
    timeout: Duration,
    c: Arc<Counters>,
    kills: Kills,
    window: Duration,
) {
    let mut expect = vec![Expect::default(); keys.len()];
    let mut i = 0usize;
    let overdue_after = timeout + Duration::from_millis(250);
    let note_error = |e: &redcluster::Error| {
        if c.errors.fetch_add(1, Ordering::Relaxed) < 5 {
            println!("error: {e}");
        }
        if e.kind() == ErrorKind::Timeout {
            c.timeouts.fetch_add(1, Ordering::Relaxed);
        }
        if e.maybe_applied() {
            c.maybe.fetch_add(1, Ordering::Relaxed);
        }
    };
    while Instant::now() < deadline {
        i = (i + 1 + rand::random::<usize>() % 7) % keys.len();
        let key = keys[i].as_str();
        let e = &mut expect[i];
        // Read first and compare.
        let started = Instant::now();
        let read = client.get::<Option<i64>>(key).await;
        if started.elapsed() > overdue_after {
            c.overdue.fetch_add(1, Ordering::Relaxed);
        }
        match read {
            Ok(v) => {
                c.ops.fetch_add(1, Ordering::Relaxed);
                let v = v.unwrap_or(0);
                if let Some(want) = e.value {
                    if v < want {
                        c.lost.fetch_add((want - v) as u64, Ordering::Relaxed);
                        let acked = e.acked_at.unwrap_or(started);
                        let in_window = kills
                            .lock()
                            .unwrap()
                            .iter()
                            .any(|&k| k >= acked && k - acked <= window);
                        if !in_window {
                            c.outside.fetch_add((want - v) as u64, Ordering::Relaxed);
                        }
                    } else if v > want {
                        let explained = (v - want).min(e.maybe);
                        c.noack.fetch_add(explained as u64, Ordering::Relaxed);
                        c.unexpected
                            .fetch_add((v - want - explained) as u64, Ordering::Relaxed);
                    }
                }
                e.value = Some(v);
                e.maybe = 0;
            }
            Err(err) => {
                note_error(&err);
                continue;
            }
        }
        let started = Instant::now();
        let wrote = client.incr(key).await;
        if started.elapsed() > overdue_after {
            c.overdue.fetch_add(1, Ordering::Relaxed);
        }
        match wrote {
            Ok(v) => {
                c.ops.fetch_add(1, Ordering::Relaxed);
                e.value = Some(v);
                e.acked_at = Some(Instant::now());
            }
            Err(err) => {
                note_error(&err);
                if err.maybe_applied() {
                    e.maybe += 1;
                }
            }
        }
    }
}

/// Kill a primary and bring it back, or fail a shard over by hand, every few seconds.
async fn chaos(cluster: Arc<TestCluster>, deadline: Instant, stop: Arc<AtomicBool>) {
    let mut round = 0u64;
    while Instant::now() + Duration::from_secs(6) < deadline && !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_secs(3)).await;
        round += 1;
        let nodes = cluster.nodes();
        let primaries: Vec<usize> = (0..nodes.len())
            .filter(|&i| nodes[i].alive && nodes[i].role == Role::Primary)
            .collect();
        if primaries.is_empty() {
            continue;
        }
        let p = primaries[rand::random::<usize>() % primaries.len()];
        if round % 2 == 1 {
            println!("chaos: killing primary {} ({})", p, nodes[p].addr);
            cluster.kill_node(p).await;
            tokio::time::sleep(cluster_failover_wait()).await;
            println!("chaos: restarting node {p}");
            if let Err(e) = cluster.restart_node(p, true).await {
                println!("chaos: restart failed: {e}");
            }
        } else {
            let id = nodes[p].id.clone();
            let replica = (0..nodes.len())
                .find(|&i| nodes[i].alive && nodes[i].primary_id.as_deref() == Some(id.as_str()));
            if let Some(r) = replica {
                println!(
                    "chaos: CLUSTER FAILOVER on replica {} ({})",
                    r, nodes[r].addr
                );
                if let Err(e) = cluster.failover(r, FailoverMode::Default).await {
                    println!("chaos: failover failed: {e}");
                }
            }
        }
        let _ = cluster.wait_stable(Duration::from_secs(10)).await;
    }
}

fn cluster_failover_wait() -> Duration {
    Duration::from_secs(3)
}

/// Real deployments: every few seconds kill the primary; with Sentinels, wait for them to
/// promote a replica and restart the old primary (they make it a replica); without, fail
/// over by hand as an operator would. Blocking (redis-cli calls): run on its own thread.
fn real_chaos(set: &mut RealReplicaSet, sentinel: bool, deadline: Instant, kills: &Kills) {
    while Instant::now() + Duration::from_secs(12) < deadline {
        std::thread::sleep(Duration::from_secs(4));
        let Some(p) = set.primary_index() else {
            continue;
        };
        let old = set.nodes[p].port;
        kills.lock().unwrap().push(Instant::now());
        println!("chaos: killing the primary (node {p}, port {old})");
        set.nodes[p].kill();
        if sentinel {
            let (new, took) = set.wait_failover_from(old);
            println!("chaos: the Sentinels promoted node {new} {took:?} after the kill");
            set.nodes[p].restart();
        } else {
            let new = (0..set.nodes.len())
                .find(|&i| i != p && set.nodes[i].is_running())
                .expect("a replica");
            let port = set.nodes[new].port.to_string();
            set.nodes[new].cli(&["REPLICAOF", "NO", "ONE"]);
            for i in 0..set.nodes.len() {
                if i != p && i != new && set.nodes[i].is_running() {
                    set.nodes[i].cli(&["REPLICAOF", "127.0.0.1", &port]);
                }
            }
            println!("chaos: promoted node {new} by hand (REPLICAOF NO ONE)");
            let new_port = set.nodes[new].port;
            set.nodes[p].restart_as_replica_of(new_port);
        }
        set.wait_healthy();
        println!("chaos: node {p} is back as a replica");
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = opts();
    if o.standalone || o.sentinel {
        return run_real(&o).await;
    }
    let (cluster, seeds) = match &o.seeds {
        Some(s) => (None, s.clone()),
        None => {
            let cluster = TestCluster::builder()
                .primaries(3)
                .replicas_per_primary(1)
                .node_timeout(o.node_timeout)
                .start()
                .await?;
            let seeds = cluster.seeds().iter().map(|a| a.to_string()).collect();
            println!(
                "started the bundled cluster (3+3, node timeout {:?})",
                o.node_timeout
            );
            (Some(Arc::new(cluster)), seeds)
        }
    };
    if o.chaos && cluster.is_none() {
        return Err("--chaos drives the bundled cluster's fault API; drop --seeds".into());
    }
    let client = Client::builder(&seeds)
        .request_timeout(o.timeout)
        .build()
        .await?;
    let start = Instant::now();
    let deadline = start + o.duration;
    let stop = Arc::new(AtomicBool::new(false));
    let chaos_task = match (&cluster, o.chaos) {
        (Some(cl), true) => Some(tokio::spawn(chaos(cl.clone(), deadline, stop.clone()))),
        _ => None,
    };
    drive(&o, client, start, Kills::default(), chaos_task, stop).await
}

/// `--standalone` / `--sentinel` against real redis-server processes.
async fn run_real(o: &Opts) -> Result<(), Box<dyn std::error::Error>> {
    if !o.real {
        return run_bundled(o).await;
    }
    let sentinels = if o.sentinel { 3 } else { 0 };
    let set = tokio::task::spawn_blocking(move || RealReplicaSet::with_sentinels(2, sentinels))
        .await?
        .ok_or("redis-server is not installed")?;
    println!(
        "started real redis-server: primary {}, replicas {:?}, Sentinels {:?}",
        set.nodes[0].addr(),
        &set.seeds()[1..],
        set.sentinel_addrs()
    );
    let builder = if o.sentinel {
        Client::sentinel(set.sentinel_addrs(), MASTER_NAME)
    } else {
        Client::builder(set.seeds()).standalone()
    };
    let client = builder
        .request_timeout(o.timeout)
        .refresh_interval(Some(Duration::from_secs(1)))
        .build()
        .await?;
    let start = Instant::now();
    let deadline = start + o.duration;
    let kills = Kills::default();
    let stop = Arc::new(AtomicBool::new(false));
    let chaos_task = o.chaos.then(|| {
        let (kills, sentinel) = (kills.clone(), o.sentinel);
        tokio::task::spawn_blocking(move || {
            let mut set = set;
            real_chaos(&mut set, sentinel, deadline, &kills);
            set
        })
    });
    drive(o, client, start, kills, None, stop).await?;
    if let Some(t) = chaos_task {
        drop(t.await?);
    }
    Ok(())
}

/// `--standalone` / `--sentinel` on the bundled server: `TestReplicaSet` (primary + 2
/// replicas), and for `--sentinel` three `TestSentinels`; `--chaos` (Sentinel only) kills the
/// primary every few seconds and restarts it once the Sentinels promoted a replica.
async fn run_bundled(o: &Opts) -> Result<(), Box<dyn std::error::Error>> {
    if o.chaos && !o.sentinel {
        return Err("--standalone --chaos fails over by hand with redis-cli: add --real".into());
    }
    let set = Arc::new(TestReplicaSet::builder().replicas(2).start().await?);
    set.wait_synced(Duration::from_secs(10)).await?;
    let mut _sentinels = None;
    let builder = if o.sentinel {
        let s = TestSentinels::builder()
            .sentinels(3)
            .quorum(2)
            .monitor_addr(MASTER_NAME, set.primary())
            .failover_timeout(Duration::from_secs(3))
            .start()
            .await?;
        let addrs = s.addrs();
        _sentinels = Some(s);
        println!("started the bundled replica set and Sentinels {addrs:?}");
        Client::sentinel(addrs, MASTER_NAME)
    } else {
        println!("started the bundled replica set {:?}", set.addrs());
        Client::builder(set.addrs()).standalone()
    };
    let client = builder
        .request_timeout(o.timeout)
        .refresh_interval(Some(Duration::from_secs(1)))
        .build()
        .await?;
    let start = Instant::now();
    let deadline = start + o.duration;
    let kills = Kills::default();
    let stop = Arc::new(AtomicBool::new(false));
    let chaos_task = o.chaos.then(|| {
        let (set, kills, client) = (set.clone(), kills.clone(), client.clone());
        tokio::spawn(async move {
            while Instant::now() + Duration::from_secs(12) < deadline {
                tokio::time::sleep(Duration::from_secs(4)).await;
                let old = set.primary();
                let Some(i) = set.index_of(old) else { continue };
                kills.lock().unwrap().push(Instant::now());
                println!("chaos: killing the primary (node {i}, {old})");
                set.kill_node(i).await;
                let killed = Instant::now();
                // Restart it only once the Sentinels moved on (the client follows them):
                // back earlier, it would take writes as a primary the Sentinels then demote.
                let moved = || client.topology().shards()[0].primary.addr != old.to_string();
                while !moved() && killed.elapsed() < Duration::from_secs(30) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                println!(
                    "chaos: the client moved to {} {:?} after the kill",
                    client.topology().shards()[0].primary.addr,
                    killed.elapsed()
                );
                if let Err(e) = set.restart_node(i, true).await {
                    println!("chaos: restart failed: {e}");
                }
            }
        })
    });
    drive(o, client, start, kills, chaos_task, stop).await
}

/// Run the workers until the deadline, printing the figures every second and at the end.
async fn drive(
    o: &Opts,
    client: Client,
    start: Instant,
    kills: Kills,
    chaos_task: Option<tokio::task::JoinHandle<()>>,
    stop: Arc<AtomicBool>,
) -> Result<(), Box<dyn std::error::Error>> {
    let deadline = start + o.duration;
    let c = Arc::new(Counters::default());
    let tag = rand::random::<u32>();
    let mut tasks = Vec::new();
    for w in 0..o.workers {
        let keys: Vec<String> = (w..o.keys)
            .step_by(o.workers)
            .map(|i| format!("cc:{tag}:{i}"))
            .collect();
        if keys.is_empty() {
            continue;
        }
        tasks.push(tokio::spawn(worker(
            client.clone(),
            keys,
            deadline,
            o.timeout,
            c.clone(),
            kills.clone(),
            o.window,
        )));
    }
    println!(
        "{:>5} {:>8} {:>7} {:>6} {:>8} {:>6} {:>7} {:>6} {:>10} {:>8}",
        "sec",
        "ops/s",
        "errors",
        "maybe",
        "timeout",
        "lost",
        "outside",
        "noack",
        "unexpected",
        "overdue"
    );
    let mut last_ops = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    while Instant::now() < deadline {
        tick.tick().await;
        let ops = c.ops.load(Ordering::Relaxed);
        println!(
            "{:>5} {:>8} {:>7} {:>6} {:>8} {:>6} {:>7} {:>6} {:>10} {:>8}",
            start.elapsed().as_secs(),
            ops - last_ops,
            c.errors.load(Ordering::Relaxed),
            c.maybe.load(Ordering::Relaxed),
            c.timeouts.load(Ordering::Relaxed),
            c.lost.load(Ordering::Relaxed),
            c.outside.load(Ordering::Relaxed),
            c.noack.load(Ordering::Relaxed),
            c.unexpected.load(Ordering::Relaxed),
            c.overdue.load(Ordering::Relaxed),
        );
        last_ops = ops;
    }
    for t in tasks {
        t.await?;
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(t) = chaos_task {
        t.await?;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "done: {:.0} ops/s over {:.0} s; errors {} (maybe applied {}, timeouts {}); lost {} \
         ({} outside the {:?} replication window), noack {}, unexpected {}, overdue {}; \
         {} primary kills; client stats: {} MOVED, {} refreshes, {} retries",
        c.ops.load(Ordering::Relaxed) as f64 / secs,
        secs,
        c.errors.load(Ordering::Relaxed),
        c.maybe.load(Ordering::Relaxed),
        c.timeouts.load(Ordering::Relaxed),
        c.lost.load(Ordering::Relaxed),
        c.outside.load(Ordering::Relaxed),
        o.window,
        c.noack.load(Ordering::Relaxed),
        c.unexpected.load(Ordering::Relaxed),
        c.overdue.load(Ordering::Relaxed),
        kills.lock().unwrap().len(),
        client.stats().moved,
        client.stats().topology_refreshes,
        client.stats().retries,
    );
    Ok(())
}
