//! `--workload cache`: client-side caching. Zipfian keys (100k keys, s = 0.99), 95% GET /
//! 5% SET, 64-byte values, at 16 and 256 in flight, against the same real cluster: ours with
//! `ClientCache`, ours without, and the `redis` crate's cluster connection with its
//! `cache-aio` cache. Rounds interleaved; per run the ops/s, the hit rate of the cached
//! clients and the process's CPU time per operation (only the client under test runs).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{Rng, SeedableRng};

use crate::cpu::cpu_time;
use crate::peer::{connect, Peer};
use crate::{median, KEYS, VALUE_LEN};

/// Zipf's exponent.
const S: f64 = 0.99;
/// Share of GETs.
const GETS: f64 = 0.95;

/// Ranks 0..n drawn with probability proportional to 1 / (rank + 1)^s.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: u32, s: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n as usize);
        let mut total = 0.0;
        for k in 1..=n {
            total += 1.0 / f64::from(k).powf(s);
            cdf.push(total);
        }
        for c in &mut cdf {
            *c /= total;
        }
        Zipf { cdf }
    }

    fn sample(&self, rng: &mut impl Rng) -> u32 {
        let u: f64 = rng.gen();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1) as u32
    }
}

/// One run's figures.
struct Run {
    rate: f64,
    errors: u64,
    cpu_us_per_op: f64,
}

async fn measure(peer: &Peer, zipf: &Arc<Zipf>, tasks: usize, secs: f64) -> Run {
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let value = Bytes::from(vec![b'v'; VALUE_LEN]);
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let mut peer = peer.clone();
        let (done, errors, stop, value, zipf) = (
            done.clone(),
            errors.clone(),
            stop.clone(),
            value.clone(),
            zipf.clone(),
        );
        handles.push(tokio::spawn(async move {
            let mut rng = rand::rngs::SmallRng::from_entropy();
            let mut key = String::with_capacity(16);
            while !stop.load(Ordering::Relaxed) {
                key.clear();
                key.push_str("zkey:");
                key.push_str(&zipf.sample(&mut rng).to_string());
                let get = rng.gen_bool(GETS);
                match peer.op(&key, &value, get).await {
                    Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                    Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let cpu0 = cpu_time();
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let counted = done.load(Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu_time().saturating_sub(cpu0);
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.await;
    }
    Run {
        rate: counted as f64 / elapsed,
        errors: errors.load(Ordering::Relaxed),
        cpu_us_per_op: cpu.as_secs_f64() * 1e6 / counted.max(1) as f64,
    }
}

/// (hits, misses) so far, for the cached clients.
fn hits_misses(peer: &Peer) -> Option<(u64, u64)> {
    match peer {
        Peer::OursCached(c) => {
            let s = c.cache_stats();
            Some((s.hits, s.misses))
        }
        Peer::RedisRsCached(c) => c
            .get_cache_statistics()
            .map(|s| (s.hit as u64, s.miss as u64)),
        _ => None,
    }
}

/// GET every key once, from 64 tasks.
async fn read_all(peer: &Peer) {
    let value = Bytes::new();
    let tasks: Vec<_> = (0..64u32)
        .map(|t| {
            let mut peer = peer.clone();
            let value = value.clone();
            tokio::spawn(async move {
                for k in (t..KEYS).step_by(64) {
                    let _ = peer.op(&format!("zkey:{k}"), &value, true).await;
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

/// Write every key once, so GETs find values.
async fn fill(seeds: &[String]) {
    let Peer::Ours(c) = connect("redcluster", seeds, None).await else {
        unreachable!()
    };
    let value = Bytes::from(vec![b'v'; VALUE_LEN]);
    for chunk in (0..KEYS).collect::<Vec<_>>().chunks(1000) {
        let mut p = c.pipeline();
        for k in chunk {
            p.cmd("SET").arg(format!("zkey:{k}")).arg(value.clone());
        }
        let _: Vec<redcluster::Value> = p.query().await.expect("fill the keys");
    }
}

pub async fn cache_main(seeds: &[String], rounds: usize, secs: f64) {
    fill(seeds).await;
    let zipf = Arc::new(Zipf::new(KEYS, S));
    let names = ["redcluster", "redcluster+cache", "redis-rs+cache-aio"];
    let mut peers = Vec::new();
    for n in names {
        peers.push(connect(n, seeds, None).await);
    }
    // Steady state, as a long-running service would be in: every key read once through each
    // client (filling the caches), then a short run of the workload itself.
    for p in &peers {
        read_all(p).await;
        measure(p, &zipf, 16, 1.0).await;
    }
    let concurrency = [16usize, 256];
    let n = peers.len();
    let mut rates = vec![vec![Vec::new(); concurrency.len()]; n];
    let mut cpu = vec![vec![Vec::new(); concurrency.len()]; n];
    let mut hits = vec![vec![(0u64, 0u64); concurrency.len()]; n];
    let mut errors = vec![0u64; n];
    for round in 0..rounds {
        for (ci, &c) in concurrency.iter().enumerate() {
            for k in 0..n {
                let pi = (k + round) % n;
                let before = hits_misses(&peers[pi]);
                let run = measure(&peers[pi], &zipf, c, secs).await;
                if let (Some((h0, m0)), Some((h1, m1))) = (before, hits_misses(&peers[pi])) {
                    hits[pi][ci].0 += h1 - h0;
                    hits[pi][ci].1 += m1 - m0;
                }
                rates[pi][ci].push(run.rate);
                cpu[pi][ci].push(run.cpu_us_per_op);
                errors[pi] += run.errors;
            }
        }
        eprintln!("round {}/{} done", round + 1, rounds);
    }
    println!(
        "\nZipfian keys ({KEYS}, s = {S}), 95% GET / 5% SET, {VALUE_LEN}-byte values, \
         {rounds} rounds of {secs} s, medians\n"
    );
    println!("| tasks | client | ops/s | vs ours uncached | hit rate | client CPU µs/op |");
    println!("|---:|---|---:|---:|---:|---:|");
    for (ci, c) in concurrency.iter().enumerate() {
        let base = median(rates[0][ci].clone());
        for pi in 0..n {
            let rate = median(rates[pi][ci].clone());
            let (h, m) = hits[pi][ci];
            let hit_rate = if h + m > 0 {
                format!("{:.1}%", 100.0 * h as f64 / (h + m) as f64)
            } else {
                "-".to_string()
            };
            println!(
                "| {c} | {} | {rate:.0} | {:.2}x | {hit_rate} | {:.2} |",
                peers[pi].name(),
                rate / base,
                median(cpu[pi][ci].clone()),
            );
        }
    }
    for (pi, p) in peers.iter().enumerate() {
        if errors[pi] > 0 {
            println!("{}: {} errors", p.name(), errors[pi]);
        }
    }
}
