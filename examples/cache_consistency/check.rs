//! The client-side cache's consistency checker: writers on a plain client, readers on a
//! caching client, a primary killed and slots resharded during the run.
//!
//! Each key has one writer, which sets it to `v<n>` with `n` counting up; before sending it
//! records `n` as issued, after the acknowledgement the time it was acknowledged. A reader
//! notes the time its read starts, then reads through the cache, and checks:
//! - the value is one a writer produced (`v<n>` with `n` issued for that key), else it is a
//!   **phantom**;
//! - **staleness**: when the read returned `v<n>` but `v<n+1>` had been acknowledged before
//!   the read started, the read is stale by `start - ack(n+1)`. The cache promises no read
//!   older than the newest acknowledged write whose invalidation had reached the reader's
//!   connection: a stale read is one where the invalidation was still on its way, so the
//!   window measures how long invalidations take to land (and would show any that never
//!   did: the window would grow without bound).
//!
//! A sampler checks the cache's bytes against `max_bytes` every millisecond.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redcluster::{Client, ClientCache};

/// How a run goes.
#[derive(Clone, Debug)]
pub struct Options {
    pub secs: u64,
    pub keys: usize,
    pub writers: usize,
    pub readers: usize,
    pub max_bytes: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            secs: 10,
            keys: 2000,
            writers: 4,
            readers: 8,
            max_bytes: 256 * 1024,
        }
    }
}

/// What a run saw.
#[derive(Debug, Default)]
pub struct Report {
    pub reads: u64,
    pub read_errors: u64,
    pub writes: u64,
    pub write_errors: u64,
    pub phantoms: u64,
    pub stale_reads: u64,
    pub max_staleness: Duration,
    pub max_bytes_seen: u64,
    pub hits: u64,
    pub misses: u64,
    pub invalidations: u64,
    pub evictions: u64,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hit_rate = self.hits as f64 / (self.hits + self.misses).max(1) as f64;
        writeln!(
            f,
            "reads {} (errors {}), writes acked {} (errors {})",
            self.reads, self.read_errors, self.writes, self.write_errors
        )?;
        writeln!(
            f,
            "cache: hits {} misses {} (hit rate {:.1}%), invalidations {}, evictions {}",
            self.hits,
            self.misses,
            hit_rate * 100.0,
            self.invalidations,
            self.evictions
        )?;
        writeln!(
            f,
            "stale reads {} (a newer write acked before the read began), max staleness {:?}",
            self.stale_reads, self.max_staleness
        )?;
        writeln!(f, "phantom values {}", self.phantoms)?;
        write!(f, "max cache bytes seen {}", self.max_bytes_seen)
    }
}

/// One key's history: the last issued version, and recent acknowledgements.
#[derive(Default)]
struct KeyState {
    issued: AtomicU64,
    acks: Mutex<VecDeque<(u64, Instant)>>,
}

impl KeyState {
    /// When the first version newer than `n` was acknowledged, if still remembered.
    fn superseded_at(&self, n: u64) -> Option<Instant> {
        let acks = self.acks.lock().unwrap();
        acks.iter().find(|(v, _)| *v > n).map(|(_, t)| *t)
    }

    /// The newest acknowledged version.
    fn newest(&self) -> u64 {
        let acks = self.acks.lock().unwrap();
        acks.back().map_or(0, |(v, _)| *v)
    }
}

/// A caching client for `seeds` with `max_bytes`.
pub async fn caching_client(seeds: Vec<String>, max_bytes: usize) -> Client {
    Client::builder(seeds)
        .client_cache(ClientCache::new().max_bytes(max_bytes))
        .request_timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_millis(300))
        .build()
        .await
        .expect("caching client")
}

/// Run readers and writers for `opts.secs`, calling `faults` once they are going (it kills
/// and reshards, returning when done); returns what was seen.
pub async fn run<F>(seeds: Vec<String>, opts: Options, faults: F) -> Report
where
    F: std::future::Future<Output = ()>,
{
    let writer = Client::builder(seeds.clone())
        .request_timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_millis(300))
        .build()
        .await
        .expect("plain client");
    let reader = caching_client(seeds, opts.max_bytes).await;
    let keys: Arc<Vec<String>> = Arc::new((0..opts.keys).map(|i| format!("cc:{i}")).collect());
    let state: Arc<Vec<KeyState>> = Arc::new((0..opts.keys).map(|_| KeyState::default()).collect());
    for (i, k) in keys.iter().enumerate() {
        writer.set(k, "v0").await.expect("initial write");
        state[i].acks.lock().unwrap().push_back((0, Instant::now()));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let figures = Arc::new(Figures::default());
    let mut tasks = Vec::new();
    for w in 0..opts.writers {
        let (writer, keys, state, stop, figures) = (
            writer.clone(),
            keys.clone(),
            state.clone(),
            stop.clone(),
            figures.clone(),
        );
        let n = opts.writers;
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while !stop.load(Ordering::Relaxed) {
                let ks = &state[i];
                let v = ks.issued.fetch_add(1, Ordering::SeqCst) + 1;
                match writer.set(&keys[i], format!("v{v}")).await {
                    Ok(()) => {
                        let mut acks = ks.acks.lock().unwrap();
                        acks.push_back((v, Instant::now()));
                        if acks.len() > 256 {
                            acks.pop_front();
                        }
                        figures.writes.fetch_add(1, Ordering::Relaxed);
                    }
                    // Unknown outcome: later versions still supersede it.
                    Err(_) => {
                        figures.write_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                // Each writer owns keys w, w+n, w+2n ...; the low ones change most.
                let per = (keys.len() - w).div_ceil(n);
                let r: f64 = rand::random();
                i = w + n * (((r * r * r) * per as f64) as usize).min(per - 1);
            }
        }));
    }
    for _ in 0..opts.readers {
        let (reader, keys, state, stop, figures) = (
            reader.clone(),
            keys.clone(),
            state.clone(),
            stop.clone(),
            figures.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                // Skewed: most reads on a few hot keys.
                let r: f64 = rand::random();
                let i = ((r * r * r) * keys.len() as f64) as usize % keys.len();
                let ks = &state[i];
                let newest_before = ks.newest();
                let started = Instant::now();
                match reader.get::<Option<String>>(&keys[i]).await {
                    Ok(v) => {
                        figures.reads.fetch_add(1, Ordering::Relaxed);
                        let n = v
                            .as_deref()
                            .and_then(|s| s.strip_prefix('v'))
                            .and_then(|n| n.parse::<u64>().ok());
                        match n {
                            Some(n) if n <= ks.issued.load(Ordering::SeqCst) => {
                                if n < newest_before {
                                    if let Some(t) = ks.superseded_at(n) {
                                        let stale = started.saturating_duration_since(t);
                                        figures.stale.fetch_add(1, Ordering::Relaxed);
                                        figures
                                            .max_stale_us
                                            .fetch_max(stale.as_micros() as u64, Ordering::Relaxed);
                                    }
                                }
                            }
                            _ => {
                                figures.phantoms.fetch_add(1, Ordering::Relaxed);
                                eprintln!("phantom: {} = {v:?}", keys[i]);
                            }
                        }
                    }
                    Err(_) => {
                        figures.read_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    {
        let (reader, stop, figures) = (reader.clone(), stop.clone(), figures.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let b = reader.cache_stats().bytes;
                figures.max_bytes.fetch_max(b, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(opts.secs);
    faults.await;
    tokio::time::sleep_until(deadline).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let s = reader.cache_stats();
    Report {
        reads: figures.reads.load(Ordering::Relaxed),
        read_errors: figures.read_errors.load(Ordering::Relaxed),
        writes: figures.writes.load(Ordering::Relaxed),
        write_errors: figures.write_errors.load(Ordering::Relaxed),
        phantoms: figures.phantoms.load(Ordering::Relaxed),
        stale_reads: figures.stale.load(Ordering::Relaxed),
        max_staleness: Duration::from_micros(figures.max_stale_us.load(Ordering::Relaxed)),
        max_bytes_seen: figures.max_bytes.load(Ordering::Relaxed).max(s.bytes),
        hits: s.hits,
        misses: s.misses,
        invalidations: s.invalidations,
        evictions: s.evictions,
    }
}

#[derive(Default)]
struct Figures {
    reads: AtomicU64,
    read_errors: AtomicU64,
    writes: AtomicU64,
    write_errors: AtomicU64,
    phantoms: AtomicU64,
    stale: AtomicU64,
    max_stale_us: AtomicU64,
    max_bytes: AtomicU64,
}

/// The slots of the first `n` keys (the ones a reshard moves).
pub fn hot_slots(n: usize) -> Vec<u16> {
    let mut slots: Vec<u16> = (0..n)
        .map(|i| redcluster::slot::key_slot(format!("cc:{i}").as_bytes()))
        .collect();
    slots.sort_unstable();
    slots.dedup();
    slots
}

/// Faults on the bundled cluster: a third of the way in, the primary of a hot key is
/// killed (its replica takes over); two thirds in, the hot keys' slots move to another
/// primary (IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE).
#[cfg(feature = "server")]
pub async fn bundled_faults(cluster: &redcluster::server::TestCluster, secs: u64) {
    use crate::raw::node_cmd;
    let third = Duration::from_millis(secs * 1000 / 3);
    tokio::time::sleep(third).await;
    let killed = cluster.kill_primary_of("cc:0").await;
    println!("killed primary node {killed} (owner of cc:0)");
    let _ = cluster.wait_stable(Duration::from_secs(20)).await;
    tokio::time::sleep(third.saturating_sub(Duration::from_secs(1))).await;
    let slots = hot_slots(10);
    // Live primaries only: the killed node answers nothing.
    let primaries: Vec<(String, String)> = cluster
        .nodes()
        .into_iter()
        .filter(|n| n.alive && n.role == redcluster::server::Role::Primary)
        .map(|n| (n.addr.to_string(), n.id.clone()))
        .collect();
    for &slot in &slots {
        let Some(src) = cluster.primary_index_of_slot(slot) else {
            continue;
        };
        let src = cluster.nodes()[src].addr.to_string();
        let Some(src_id) = primaries
            .iter()
            .find(|(a, _)| *a == src)
            .map(|p| p.1.clone())
        else {
            continue;
        };
        let Some((dst, dst_id)) = primaries.iter().find(|(a, _)| *a != src).cloned() else {
            continue;
        };
        let s = slot.to_string();
        node_cmd(&dst, &["CLUSTER", "SETSLOT", &s, "IMPORTING", &src_id]).await;
        node_cmd(&src, &["CLUSTER", "SETSLOT", &s, "MIGRATING", &dst_id]).await;
        if let redcluster::Value::Array(keys) =
            node_cmd(&src, &["CLUSTER", "GETKEYSINSLOT", &s, "1000"]).await
        {
            let keys: Vec<String> = keys
                .into_iter()
                .filter_map(|k| match k {
                    redcluster::Value::BulkString(b) => String::from_utf8(b.to_vec()).ok(),
                    _ => None,
                })
                .collect();
            if !keys.is_empty() {
                let (host, port) = dst.rsplit_once(':').expect("host:port");
                let mut args = vec!["MIGRATE", host, port, "", "0", "5000", "KEYS"];
                args.extend(keys.iter().map(String::as_str));
                node_cmd(&src, &args).await;
            }
        }
        for (addr, _) in &primaries {
            node_cmd(addr, &["CLUSTER", "SETSLOT", &s, "NODE", &dst_id]).await;
        }
    }
    println!("resharded {} slots", slots.len());
}

/// The same faults on a real cluster (node 0 is never killed: it answers the slot map).
pub async fn real_faults(cluster: &mut crate::real_cluster::RealCluster, secs: u64) {
    use crate::real_cluster::cli;
    let third = Duration::from_millis(secs * 1000 / 3);
    tokio::time::sleep(third).await;
    let key = (0..100)
        .map(|i| format!("cc:{i}"))
        .find(|k| cluster.primary_index_for_slot(redcluster::slot::key_slot(k.as_bytes())) != 0)
        .expect("a key off node 0");
    let p = cluster.primary_index_for_slot(redcluster::slot::key_slot(key.as_bytes()));
    cluster.nodes[p].kill();
    println!("killed primary node {p} (owner of {key})");
    let killed_port = cluster.nodes[p].port;
    let start = Instant::now();
    while cluster.primary_index_for_slot(redcluster::slot::key_slot(key.as_bytes())) == p
        && start.elapsed() < Duration::from_secs(20)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(third.saturating_sub(start.elapsed())).await;
    let slots = hot_slots(10);
    let ports: Vec<u16> = cluster.nodes.iter().map(|n| n.port).collect();
    let id = |port: u16| cli(port, &["CLUSTER", "MYID"]).trim().to_string();
    for &slot in &slots {
        let src = ports[cluster.primary_index_for_slot(slot)];
        let Some(dst) = [0u16, 5500, 11000]
            .iter()
            .map(|&s| ports[cluster.primary_index_for_slot(s)])
            .find(|&d| d != src && d != killed_port)
        else {
            continue;
        };
        let s = slot.to_string();
        let (src_id, dst_id) = (id(src), id(dst));
        cli(dst, &["CLUSTER", "SETSLOT", &s, "IMPORTING", &src_id]);
        cli(src, &["CLUSTER", "SETSLOT", &s, "MIGRATING", &dst_id]);
        let keys = cli(src, &["CLUSTER", "GETKEYSINSLOT", &s, "1000"]);
        let keys: Vec<&str> = keys
            .lines()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .collect();
        if !keys.is_empty() {
            let d = dst.to_string();
            let mut args = vec!["MIGRATE", "127.0.0.1", &d, "", "0", "5000", "KEYS"];
            args.extend(keys);
            cli(src, &args);
        }
        for &port in &ports {
            if port != killed_port {
                cli(port, &["CLUSTER", "SETSLOT", &s, "NODE", &dst_id]);
            }
        }
    }
    println!("resharded {} slots", slots.len());
}
