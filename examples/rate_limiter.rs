//! A scripted rate limiter under concurrent load: many workers ask a fixed-window limiter
//! (a Lua script that reads the window's count, then increments it if below the limit) for
//! permission as fast as they can. The read and the write are separate commands inside the
//! script, so only atomic script execution keeps the limiter from admitting more than its
//! limit in a window; the example counts admissions per window and reports any excess.
//!
//! ```sh
//! cargo run --release --example rate_limiter                        # bundled 3+3, 10 s
//! cargo run --release --example rate_limiter -- --duration 60 --workers 128
//! cargo run --release --example rate_limiter -- --seeds 127.0.0.1:30000
//! ```
//!
//! Options: `--seeds a,b,..` (any cluster; default: the bundled 3 primaries + 3 replicas),
//! `--duration SECS` (10), `--workers N` (64), `--users N` (8: one limiter key each),
//! `--limit N` (100 per window), `--window-ms MS` (1000).
//!
//! Prints requests/s, admitted, refused, errors, and `over`: windows in which a user was
//! admitted more than the limit (must be 0).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redcluster::{Client, Script};

const LIMITER: &str = "local n = tonumber(redis.call('get', KEYS[1]) or '0') \
if n < tonumber(ARGV[1]) then redis.call('set', KEYS[1], n + 1, 'px', ARGV[2]) return 1 end \
return 0";

struct Opts {
    seeds: Option<Vec<String>>,
    duration: Duration,
    workers: usize,
    users: usize,
    limit: u64,
    window_ms: u64,
}

fn opts() -> Opts {
    let mut o = Opts {
        seeds: None,
        duration: Duration::from_secs(10),
        workers: 64,
        users: 8,
        limit: 100,
        window_ms: 1000,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().unwrap_or_default();
        match flag.as_str() {
            "--seeds" => o.seeds = Some(value().split(',').map(str::to_string).collect()),
            "--duration" => o.duration = Duration::from_secs(value().parse().unwrap_or(10)),
            "--workers" => o.workers = value().parse().unwrap_or(64),
            "--users" => o.users = value().parse().unwrap_or(8),
            "--limit" => o.limit = value().parse().unwrap_or(100),
            "--window-ms" => o.window_ms = value().parse().unwrap_or(1000),
            other => {
                eprintln!("unknown option {other}");
                std::process::exit(2);
            }
        }
    }
    o
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    admitted: AtomicU64,
    errors: AtomicU64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = opts();
    let (_cluster, seeds) = match o.seeds.clone() {
        Some(s) => (None, s),
        None => {
            let c = redcluster::server::TestCluster::builder()
                .primaries(3)
                .replicas_per_primary(1)
                .start()
                .await?;
            let seeds = c.seeds().iter().map(|a| a.to_string()).collect();
            (Some(c), seeds)
        }
    };
    let client = Client::builder(seeds).build().await?;
    let script = Arc::new(Script::new(LIMITER));
    let counters = Arc::new(Counters::default());
    // (user, window) -> admissions the client was told about.
    let windows: Arc<Mutex<HashMap<(usize, u64), u64>>> = Arc::default();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..o.workers {
        let (client, script, counters, windows) = (
            client.clone(),
            script.clone(),
            counters.clone(),
            windows.clone(),
        );
        let (limit, window_ms, users, duration) = (o.limit, o.window_ms, o.users, o.duration);
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while start.elapsed() < duration {
                let user = i % users;
                i += 1;
                let window = now_ms() / window_ms;
                let key = format!("rl:{{user{user}}}:{window}");
                counters.requests.fetch_add(1, Ordering::Relaxed);
                match script
                    .key(&key)
                    .arg(limit)
                    .arg(window_ms * 2)
                    .invoke::<i64>(&client)
                    .await
                {
                    Ok(1) => {
                        counters.admitted.fetch_add(1, Ordering::Relaxed);
                        let mut map = windows.lock().unwrap_or_else(|e| e.into_inner());
                        *map.entry((user, window)).or_default() += 1;
                    }
                    Ok(_) => {}
                    Err(_) => {
                        counters.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let mut last = 0;
    while start.elapsed() < o.duration {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let r = counters.requests.load(Ordering::Relaxed);
        println!(
            "{:>4}s  requests/s {:>7}  admitted {:>7}  errors {}",
            start.elapsed().as_secs(),
            r - last,
            counters.admitted.load(Ordering::Relaxed),
            counters.errors.load(Ordering::Relaxed)
        );
        last = r;
    }
    for t in tasks {
        t.await?;
    }
    let map = windows.lock().unwrap_or_else(|e| e.into_inner());
    let over = map.values().filter(|&&n| n > o.limit).count();
    let max = map.values().copied().max().unwrap_or(0);
    let requests = counters.requests.load(Ordering::Relaxed);
    println!(
        "total: {requests} requests in {:.1} s ({:.0}/s), {} admitted, {} refused, {} errors; \
         {} user-windows, most admitted in one {max} (limit {}), over the limit: {over}",
        start.elapsed().as_secs_f64(),
        requests as f64 / start.elapsed().as_secs_f64(),
        counters.admitted.load(Ordering::Relaxed),
        requests
            - counters.admitted.load(Ordering::Relaxed)
            - counters.errors.load(Ordering::Relaxed),
        counters.errors.load(Ordering::Relaxed),
        map.len(),
        o.limit,
    );
    if over > 0 {
        std::process::exit(1);
    }
    Ok(())
}
