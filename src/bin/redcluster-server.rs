//! `redcluster-server`: run the bundled Redis Cluster for any RESP client.
//!
//! ```text
//! redcluster-server --primaries 3 --replicas-per-primary 1 --port 7000
//! redcluster-server --empty --nodes 6 --port 7000      # for redis-cli --cluster create
//! ```

use std::process::ExitCode;
use std::time::Duration;

use redcluster::server::{Role, TestCluster};

const USAGE: &str = "usage: redcluster-server [--primaries N] [--replicas-per-primary R] \
[--port BASE] [--empty --nodes N] [--requirepass PASS] [--cluster-node-timeout MS]

  --primaries N             primaries, slots spread evenly (default 3)
  --replicas-per-primary R  replicas of each primary (default 0)
  --port BASE               first client port; nodes use consecutive ports (default 7000)
  --empty --nodes N         start N empty cluster-enabled nodes (for redis-cli --cluster create)
  --requirepass PASS        password every client (and replica) must AUTH with
  --cluster-node-timeout MS node timeout in milliseconds (default 15000)";

struct Args {
    primaries: usize,
    replicas: usize,
    port: u16,
    empty: bool,
    nodes: Option<usize>,
    requirepass: Option<String>,
    node_timeout_ms: u64,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        primaries: 3,
        replicas: 0,
        port: 7000,
        empty: false,
        nodes: None,
        requirepass: None,
        node_timeout_ms: 15_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
            v.parse()
                .map_err(|_| format!("{name}: not a valid number: {v}"))
        }
        match flag.as_str() {
            "--primaries" => args.primaries = num(&flag, value(&flag)?)?,
            "--replicas-per-primary" => args.replicas = num(&flag, value(&flag)?)?,
            "--port" => args.port = num(&flag, value(&flag)?)?,
            "--nodes" => args.nodes = Some(num(&flag, value(&flag)?)?),
            "--empty" => args.empty = true,
            "--requirepass" => args.requirepass = Some(value(&flag)?),
            "--cluster-node-timeout" => args.node_timeout_ms = num(&flag, value(&flag)?)?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if args.primaries == 0 {
        return Err("--primaries must be at least 1".into());
    }
    if args.nodes.is_some() && !args.empty {
        return Err("--nodes goes with --empty".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("redcluster-server: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(if e.is_empty() { 0 } else { 2 });
        }
    };
    // One worker thread per node (at least one per CPU): a node gets the same share of a
    // busy machine as a single-threaded redis-server process would.
    let nodes = if args.empty {
        args.nodes.unwrap_or(6)
    } else {
        args.primaries * (1 + args.replicas)
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(nodes.max(cpus).min(64))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("redcluster-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let mut builder = TestCluster::builder()
        .base_port(args.port)
        .node_timeout(Duration::from_millis(args.node_timeout_ms));
    if args.empty {
        builder = builder.unconfigured_nodes(args.nodes.unwrap_or(6));
    } else {
        builder = builder
            .primaries(args.primaries)
            .replicas_per_primary(args.replicas);
    }
    if let Some(pass) = args.requirepass {
        builder = builder.requirepass(pass);
    }
    let cluster = match builder.start().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("redcluster-server: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    for node in cluster.nodes() {
        let role = match (node.role, &node.primary_id) {
            (_, _) if args.empty => "empty".to_string(),
            (Role::Replica, Some(p)) => format!("replica of {p}"),
            _ => {
                let slots: Vec<String> = node
                    .slots
                    .iter()
                    .map(|r| format!("{}-{}", r.start(), r.end()))
                    .collect();
                format!("primary slots {}", slots.join(","))
            }
        };
        println!("{} {} {role}", node.addr, node.id);
    }
    println!("ready; Ctrl-C to stop");
    let _ = tokio::signal::ctrl_c().await;
    cluster.shutdown().await;
    ExitCode::SUCCESS
}
