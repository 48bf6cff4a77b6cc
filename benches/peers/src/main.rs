//! Peer comparison: redcluster, the `redis` crate's async cluster client, and `fred`, each
//! driving the same closed-loop workload (50% GET / 50% SET, 64-byte values, 100k keys) at
//! 1, 16 and 256 concurrent tasks against the same real 3+3 `redis-server` cluster, rounds
//! interleaved so machine noise hits every client alike. Prints median ops/s per client and
//! concurrency, the ratios, and `redis-benchmark --cluster` at the same concurrency as the C
//! reference.
//!
//! `--workload pipeline` instead times 1,000-command pipelines (half GET, half SET, keys over
//! all slots) and `--workload mget` MGETs of 100 keys across slots, each client doing it the
//! way its users must: redcluster's own cross-node pipeline and split MGET; redis-rs' native
//! multi-slot MGET, and pipelines split by slot by hand (its cluster pipelines must stay in one
//! slot); fred's cluster pipeline, and MGET split by slot by hand.
//!
//! `--workload cache` (cache.rs): zipfian keys (100k, s = 0.99), 95% GET / 5% SET, at 16 and
//! 256 in flight: ours with `ClientCache`, ours without, and the `redis` crate's cluster
//! connection with its `cache-aio` cache; hit rates and the process's CPU time per operation.
//!
//! `--standalone` (with `--seeds HOST:PORT` of a running server, or a real one started here):
//! the kv workload against one redis-server with cluster mode off — ours and fred as they
//! are, the `redis` crate through its multiplexed connection, redis-benchmark without
//! `--cluster`.
//!
//! Run: `cargo run --release --manifest-path benches/peers/Cargo.toml -- [--rounds N] [--secs S] [--workload kv|pipeline|mget|cache] [--standalone]`
//!
//! `--seeds 127.0.0.1:7000,...` drives a cluster already running instead of starting one, so
//! two builds can be compared on the same cluster, their runs interleaved. With
//! `--tls CA.pem` every client (ours, redis-rs and fred through rustls/ring, redis-benchmark
//! through OpenSSL) connects with TLS trusting that CA: start a TLS-only cluster with
//! `tools/real_cluster.sh start BASE` and the TLS flags in `REDIS_EXTRA` (see BENCHMARKS.md).
//!
//! `--profile 16[,256...] [--client 0|1|2]` runs only one client's kv workload (0 =
//! redcluster, 1 = redis-rs, 2 = fred) at those concurrencies, `--rounds` times, for
//! `perf record` and friends.

mod cache;
mod cpu;
mod peer;
#[path = "../../../tests/support/mod.rs"]
mod support;
mod tls;

use peer::{connect, connect_standalone, Peer};
use tls::{tls_ca, tls_ca_path};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{Rng, SeedableRng};

pub const KEYS: u32 = 100_000;
pub const VALUE_LEN: usize = 64;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Workload {
    Kv,
    Pipeline,
    Mget,
    /// Zipfian GET-mostly keys with client-side caching (cache.rs).
    Cache,
}

/// Run `tasks` closed-loop workers for `secs`; returns completed ops per second.
async fn measure(peer: &Peer, tasks: usize, secs: f64) -> (f64, u64) {
    measure_workload(peer, tasks, secs, Workload::Kv).await
}

/// As [`measure`] for any workload: an op is one GET/SET, one 1,000-command pipeline or one
/// 100-key MGET.
async fn measure_workload(peer: &Peer, tasks: usize, secs: f64, w: Workload) -> (f64, u64) {
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let value = Bytes::from(vec![b'x'; VALUE_LEN]);
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let mut peer = peer.clone();
        let (done, errors, stop, value) =
            (done.clone(), errors.clone(), stop.clone(), value.clone());
        handles.push(tokio::spawn(async move {
            let mut rng = rand::rngs::SmallRng::from_entropy();
            let mut key = String::with_capacity(16);
            let batch = match w {
                Workload::Kv | Workload::Cache => 0,
                Workload::Pipeline => 1000,
                Workload::Mget => 100,
            };
            while w != Workload::Kv && !stop.load(Ordering::Relaxed) {
                let keys: Vec<String> = (0..batch)
                    .map(|_| format!("key:{}", rng.gen_range(0..KEYS)))
                    .collect();
                let r = if w == Workload::Pipeline {
                    peer.pipeline(&keys, &value).await
                } else {
                    peer.mget(&keys).await
                };
                match r {
                    Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                            eprintln!("{}: {e}", peer.name());
                        }
                        0
                    }
                };
            }
            while !stop.load(Ordering::Relaxed) {
                key.clear();
                key.push_str("key:");
                key.push_str(&rng.gen_range(0..KEYS).to_string());
                let get = rng.gen_bool(0.5);
                match peer.op(&key, &value, get).await {
                    Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                    Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let counted = done.load(Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.await;
    }
    (counted as f64 / elapsed, errors.load(Ordering::Relaxed))
}

fn redis_benchmark(port: u16, clients: usize, requests: usize) -> f64 {
    let cluster = if standalone() {
        None
    } else {
        Some("--cluster")
    };
    let out = std::process::Command::new("redis-benchmark")
        .args(cluster)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            "set,get",
            "-d",
            &VALUE_LEN.to_string(),
            "-r",
            &KEYS.to_string(),
            "-c",
            &clients.to_string(),
            "-n",
            &requests.to_string(),
            "--csv",
        ])
        .args(
            tls_ca_path()
                .map(|ca| vec!["--tls".to_string(), "--cacert".to_string(), ca])
                .unwrap_or_default(),
        )
        .output()
        .expect("run redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout);
    // CSV rows: "test","rps",...; average SET and GET for the same 50/50 mix.
    let rates: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("\"SET\"") || l.starts_with("\"GET\""))
        .filter_map(|l| l.split(',').nth(1))
        .filter_map(|v| v.trim_matches('"').parse().ok())
        .collect();
    if rates.is_empty() {
        return 0.0;
    }
    // Harmonic mean: the rate of doing one of each.
    rates.len() as f64 / rates.iter().map(|r| 1.0 / r).sum::<f64>()
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    if v.is_empty() {
        0.0
    } else {
        v[v.len() / 2]
    }
}

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A comma-separated list of numbers after `name`, if given.
fn list_arg(name: &str) -> Option<Vec<usize>> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == name)?;
    let v = args.get(i + 1)?;
    Some(v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
}

/// `--seeds a:1,b:2`: a running cluster's nodes.
fn seeds_arg() -> Option<Vec<String>> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == "--seeds")?;
    Some(args.get(i + 1)?.split(',').map(str::to_string).collect())
}

/// `--standalone`: the server behind `--seeds` (or one started here) is a single
/// redis-server with cluster mode off; each client connects the way its users would.
fn standalone() -> bool {
    std::env::args().any(|a| a == "--standalone")
}

fn workload() -> Workload {
    let args: Vec<String> = std::env::args().collect();
    match args
        .iter()
        .position(|a| a == "--workload")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
    {
        None | Some("kv") => Workload::Kv,
        Some("pipeline") => Workload::Pipeline,
        Some("mget") => Workload::Mget,
        Some("cache") => Workload::Cache,
        Some(other) => panic!("unknown workload {other} (kv|pipeline|mget|cache)"),
    }
}

/// The pipeline and MGET workloads: ops/s per client at 1 and 16 concurrent tasks.
async fn batch_main(peers: &[Peer], w: Workload, rounds: usize, secs: f64) {
    for p in peers {
        measure_workload(p, 4, 0.5, w).await;
    }
    let concurrency = [1usize, 16];
    let mut results: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); concurrency.len()]; peers.len()];
    let mut errors = vec![0u64; peers.len()];
    for round in 0..rounds {
        for (ci, &c) in concurrency.iter().enumerate() {
            for k in 0..peers.len() {
                let pi = (k + round) % peers.len();
                let (rate, errs) = measure_workload(&peers[pi], c, secs, w).await;
                results[pi][ci].push(rate);
                errors[pi] += errs;
            }
        }
        eprintln!("round {}/{} done", round + 1, rounds);
    }
    let (what, per) = match w {
        Workload::Pipeline => (
            "1,000-command pipelines (GET/SET, keys over all slots)",
            1000.0,
        ),
        _ => ("MGETs of 100 keys across slots", 100.0),
    };
    println!("\n{what}, {rounds} rounds of {secs} s, median ops/s (keys/s = x{per})\n");
    println!("| tasks | redcluster | redis-rs | fred | vs redis-rs | vs fred |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for (ci, c) in concurrency.iter().enumerate() {
        let m: Vec<f64> = (0..peers.len())
            .map(|pi| median(results[pi][ci].clone()))
            .collect();
        println!(
            "| {c} | {:.0} | {:.0} | {:.0} | {:.2}x | {:.2}x |",
            m[0],
            m[1],
            m[2],
            m[0] / m[1],
            m[0] / m[2]
        );
    }
    for (pi, p) in peers.iter().enumerate() {
        if errors[pi] > 0 {
            println!("{}: {} errors", p.name(), errors[pi]);
        }
    }
}

#[tokio::main]
async fn main() {
    let rounds = arg("--rounds", 5.0) as usize;
    let secs = arg("--secs", 2.0);
    let w = workload();
    let (_cluster, _single, seeds) = match seeds_arg() {
        Some(seeds) => (None, None, seeds),
        None if standalone() => {
            let n = support::real_standalone::RealReplicaSet::start(0)
                .expect("redis-server is required");
            let seeds = n.seeds();
            (None, Some(n), seeds)
        }
        None => {
            let c =
                support::real_cluster::RealCluster::start(3, 1).expect("redis-server is required");
            let seeds = c.seeds();
            (Some(c), None, seeds)
        }
    };
    if w == Workload::Cache {
        cache::cache_main(&seeds, rounds, secs).await;
        return;
    }
    // redis-benchmark's node: the first seed.
    let bench_port: u16 = seeds[0]
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .expect("seed is host:port");
    let tls = tls_ca();
    let names = ["redcluster", "redis-rs", "fred"];
    let mut peers = Vec::new();
    for n in names {
        peers.push(if standalone() {
            connect_standalone(n, &seeds[0]).await
        } else {
            connect(n, &seeds, tls.as_deref()).await
        });
    }
    if let Some(tasks) = list_arg("--profile") {
        // Only our client, at the given concurrency, for a profiler to watch.
        let which = list_arg("--client")
            .and_then(|v| v.first().copied())
            .unwrap_or(0);
        for round in 0..rounds {
            for &c in &tasks {
                let (rate, errs) = measure(&peers[which], c, secs).await;
                println!(
                    "round {round}: {} at {c} tasks: {rate:.0} ops/s, {errs} errors",
                    peers[which].name()
                );
            }
        }
        return;
    }
    if w != Workload::Kv {
        batch_main(&peers, w, rounds, secs).await;
        return;
    }
    // Warm up every client's connections to every node.
    for p in &peers {
        measure(p, 16, 0.5).await;
    }
    let concurrency = [1usize, 16, 256];
    let mut results: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); concurrency.len()]; peers.len()];
    let mut errors = vec![0u64; peers.len()];
    let mut c_ref: Vec<Vec<f64>> = vec![Vec::new(); concurrency.len()];
    for round in 0..rounds {
        for (ci, &c) in concurrency.iter().enumerate() {
            // Rotate the order every round so no client always runs first.
            for k in 0..peers.len() {
                let pi = (k + round) % peers.len();
                let (rate, errs) = measure(&peers[pi], c, secs).await;
                results[pi][ci].push(rate);
                errors[pi] += errs;
            }
            let port = bench_port;
            let reqs = [20_000, 100_000, 200_000][ci];
            c_ref[ci].push(tokio::task::block_in_place(|| {
                redis_benchmark(port, c, reqs)
            }));
        }
        eprintln!("round {}/{} done", round + 1, rounds);
    }
    let deployment = if standalone() {
        "one standalone server"
    } else {
        "a 3+3 cluster"
    };
    println!("\n{deployment}: 50% GET / 50% SET, 64-byte values, {KEYS} keys, {rounds} rounds of {secs} s, median ops/s\n");
    println!("| tasks | redcluster | redis-rs | fred | redis-benchmark (C) | vs redis-rs | vs fred | vs faster peer |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (ci, c) in concurrency.iter().enumerate() {
        let m: Vec<f64> = (0..peers.len())
            .map(|pi| median(results[pi][ci].clone()))
            .collect();
        let best_peer = m[1].max(m[2]);
        println!(
            "| {c} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2}x | {:.2}x | {:.2}x |",
            m[0],
            m[1],
            m[2],
            median(c_ref[ci].clone()),
            m[0] / m[1],
            m[0] / m[2],
            m[0] / best_peer
        );
    }
    for (pi, p) in peers.iter().enumerate() {
        if errors[pi] > 0 {
            println!("{}: {} errors", p.name(), errors[pi]);
        }
    }
}
