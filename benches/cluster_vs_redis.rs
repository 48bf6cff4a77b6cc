//! The bundled cluster (`redcluster-server`, as a separate process) against a real
//! `redis-server` 7 cluster (3 primaries + 3 replicas each), both driven by
//! `redis-benchmark --cluster -t set,get` without and with `-P 16`, rounds interleaved in the
//! same run. Prints median requests/s and the ratio bundled/real. A benchmark, not a test.
//!
//! Run: `cargo bench --bench cluster_vs_redis -- [--rounds N] [--requests N]`

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use support::real_cluster::{self, cli};
use support::server_bin;
use support::wait::wait_until;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Requests/s for SET and GET from one `redis-benchmark --cluster` run.
fn bench(port: u16, pipeline: usize, requests: usize) -> (f64, f64) {
    let out = server_bin::run_tool(
        "redis-benchmark",
        &[
            "--cluster",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            "set,get",
            "-n",
            &requests.to_string(),
            "-c",
            "50",
            "-P",
            &pipeline.to_string(),
            "-r",
            "100000",
            "--csv",
        ],
        Duration::from_secs(300),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let rate = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(&format!("\"{name}\"")))
            .and_then(|l| l.split(',').nth(1))
            .and_then(|v| v.trim_matches('"').parse().ok())
            .unwrap_or(0.0)
    };
    (rate("SET"), rate("GET"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn main() {
    // `cargo bench` passes `--bench`; anything else is ours.
    let rounds = arg("--rounds", 5);
    let requests = arg("--requests", 200_000);
    let real = real_cluster::RealCluster::start(3, 1).expect("redis-server is required");
    let ours =
        server_bin::ServerProcess::start(6, &["--primaries", "3", "--replicas-per-primary", "1"]);
    wait_until(Duration::from_secs(20), || {
        ours.ports()
            .all(|p| cli(p, &["CLUSTER", "INFO"]).contains("cluster_state:ok"))
    });
    // [target][pipeline][set/get] -> samples
    let mut samples = vec![vec![vec![Vec::new(), Vec::new()]; 2]; 2];
    for round in 0..rounds {
        for (pi, pipeline) in [1usize, 16].into_iter().enumerate() {
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for target in order {
                let port = if target == 0 {
                    ours.base_port
                } else {
                    real.nodes[0].port
                };
                let (set, get) = bench(port, pipeline, requests);
                samples[target][pi][0].push(set);
                samples[target][pi][1].push(get);
            }
        }
        eprintln!("round {}/{rounds} done", round + 1);
    }
    println!(
        "\nredis-benchmark --cluster -c 50 -r 100000 -n {requests}, {rounds} rounds, median requests/s\n"
    );
    println!("| test | bundled (redcluster-server) | real redis-server 7 | bundled / real |");
    println!("|---|---:|---:|---:|");
    for (pi, pipeline) in [1usize, 16].into_iter().enumerate() {
        for (ti, test) in ["SET", "GET"].into_iter().enumerate() {
            let ours = median(samples[0][pi][ti].clone());
            let real = median(samples[1][pi][ti].clone());
            println!(
                "| {test} -P {pipeline} | {ours:.0} | {real:.0} | {:.2}x |",
                ours / real
            );
        }
    }
}
