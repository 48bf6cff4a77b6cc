//! Consistency checker for the client-side cache (see `check.rs` for what is checked and
//! how staleness is defined): writers on a plain client, readers on a caching client, a
//! primary killed a third of the way in and the hot keys' slots resharded two thirds in.
//!
//! ```text
//! cargo run --example cache_consistency -- --secs 60           # bundled cluster (3+3)
//! cargo run --example cache_consistency -- --secs 60 --real    # real redis-server 3+3
//! ```
//!
//! Prints reads, writes, hit rate, stale reads and the maximum staleness, phantom values and
//! the most cache bytes seen; exits 1 if a phantom value was read or the cache went over
//! `max_bytes`.

// The test support this needs (the whole tree wants the test-only server binary).
#[path = "../../tests/support/bundled.rs"]
#[allow(dead_code)]
mod bundled;
#[path = "../../tests/support/raw.rs"]
#[allow(dead_code)]
mod raw;
#[path = "../../tests/support/real_cluster.rs"]
#[allow(dead_code)]
mod real_cluster;
#[path = "../../tests/support/wait.rs"]
#[allow(dead_code)]
mod wait;

mod check;

use check::{run, Options};

#[tokio::main]
async fn main() {
    let mut opts = Options::default();
    let mut real = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secs" => opts.secs = args.next().and_then(|s| s.parse().ok()).expect("--secs N"),
            "--real" => real = true,
            other => panic!("unknown argument {other} (use --secs N, --real)"),
        }
    }
    let report = if real {
        let Some(mut cluster) = real_cluster::RealCluster::start(3, 1) else {
            eprintln!("redis-server is not installed");
            std::process::exit(2);
        };
        let seeds = cluster.seeds();
        let secs = opts.secs;
        run(seeds, opts.clone(), check::real_faults(&mut cluster, secs)).await
    } else {
        let cluster = bundled::cluster().await;
        let seeds = cluster.seeds().iter().map(|a| a.to_string()).collect();
        let secs = opts.secs;
        run(seeds, opts.clone(), check::bundled_faults(&cluster, secs)).await
    };
    println!(
        "cluster: {}, {} s, {} keys, {} writers, {} readers, max_bytes {}",
        if real {
            "real redis-server 3+3"
        } else {
            "bundled 3+3"
        },
        opts.secs,
        opts.keys,
        opts.writers,
        opts.readers,
        opts.max_bytes
    );
    println!("{report}");
    if report.phantoms > 0 || report.max_bytes_seen > opts.max_bytes as u64 {
        std::process::exit(1);
    }
}
