//! Recovery time after a primary dies: the time from killing the primary that owns a key to
//! the client's first successful write to that key, next to the cluster's own failover time
//! (from the kill until the replica's `CLUSTER NODES` shows itself `myself,master`).
//!
//! ```sh
//! # a real redis-server 3+3 cluster, cluster-node-timeout 2000, started on ports 30000..
//! cargo run --release --example failover_time -- --real --port-base 30000 --trials 5
//! # the bundled cluster (node timeout 1000 ms)
//! cargo run --release --example failover_time -- --trials 5
//! ```
//!
//! Each trial: a writer loops `SET key n` (request deadline 10 s) while a watcher polls the
//! replica; the primary is killed (SIGKILL for redis-server; `kill_node` for the bundled
//! cluster), and once writes resume the old primary is restarted (it rejoins as a replica)
//! and the cluster is left to settle before the next trial. Medians are printed at the end.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redcluster::resp::{decode, encode_command, Limits, Value};
use redcluster::server::TestCluster;
use redcluster::Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "failover:{probe}";

/// One command straight to one node (no redirects), `None` on any failure or after 300 ms.
async fn node_cmd(addr: &str, args: &[&str]) -> Option<Value> {
    let fut = async {
        let mut sock = tokio::net::TcpStream::connect(addr).await.ok()?;
        let mut out = bytes::BytesMut::new();
        encode_command(&mut out, args.iter().copied());
        sock.write_all(&out).await.ok()?;
        let mut buf = bytes::BytesMut::new();
        loop {
            if let Some(v) = decode(&mut buf, &Limits::default()).ok()? {
                return Some(v);
            }
            if sock.read_buf(&mut buf).await.ok()? == 0 {
                return None;
            }
        }
    };
    tokio::time::timeout(Duration::from_millis(300), fut)
        .await
        .ok()
        .flatten()
}

/// True once `addr` calls itself a master in its own `CLUSTER NODES`.
async fn is_master(addr: &str) -> bool {
    match node_cmd(addr, &["CLUSTER", "NODES"]).await {
        Some(Value::BulkString(text)) => String::from_utf8_lossy(&text)
            .lines()
            .any(|l| l.contains("myself,master")),
        _ => false,
    }
}

/// A real redis-server node run by this program.
struct RealNode {
    port: u16,
    conf: std::path::PathBuf,
    child: Option<Child>,
}

impl RealNode {
    fn start(&mut self) {
        let child = Command::new("redis-server")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run redis-server");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for RealNode {
    fn drop(&mut self) {
        self.kill();
    }
}

fn cli(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn real_healthy(nodes: &[RealNode]) -> bool {
    nodes.iter().all(|n| {
        let info = cli(n.port, &["CLUSTER", "INFO"]);
        let list = cli(n.port, &["CLUSTER", "NODES"]);
        let repl = cli(n.port, &["INFO", "replication"]);
        info.contains("cluster_state:ok")
            && list.lines().filter(|l| !l.trim().is_empty()).count() == nodes.len()
            && !list.contains("fail")
            && (repl.contains("role:master") || repl.contains("master_link_status:up"))
    })
}

async fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "not settled within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn start_real(port_base: u16) -> (Vec<RealNode>, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("redcluster-failover-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut nodes = Vec::new();
    for i in 0..6u16 {
        let port = port_base + i;
        let conf = dir.join(format!("node-{port}.conf"));
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ncluster-enabled yes\ncluster-port {}\n\
                 cluster-config-file nodes-{port}.conf\ncluster-node-timeout 2000\n\
                 save \"\"\nappendonly no\ndir {}\nlogfile redis-{port}.log\n",
                port + 100,
                dir.display()
            ),
        )
        .expect("write conf");
        let mut n = RealNode {
            port,
            conf,
            child: None,
        };
        n.start();
        nodes.push(n);
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut args = vec!["--cluster".to_string(), "create".to_string()];
    args.extend(nodes.iter().map(RealNode::addr));
    args.extend(["--cluster-replicas", "1", "--cluster-yes"].map(String::from));
    let out = Command::new("redis-cli")
        .args(&args)
        .stdout(Stdio::null())
        .status()
        .expect("redis-cli --cluster create");
    assert!(out.success(), "cluster create failed");
    (nodes, dir)
}

/// One trial's figures.
struct Trial {
    promoted: Duration,
    first_write: Duration,
    failed_writes: u64,
}

/// Loop writes until one succeeds after `t0`; returns the time of the first success.
async fn first_write_after(client: &Client, t0: Instant) -> (Duration, u64) {
    let mut failed = 0;
    let mut n = 0u64;
    loop {
        n += 1;
        match client.set(KEY, n).await {
            Ok(()) => return (t0.elapsed(), failed),
            Err(e) => {
                failed += 1;
                println!("  attempt failed: {e}");
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "writes never resumed"
        );
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name);
    let real = flag("--real").is_some();
    let trials: usize = flag("--trials")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let port_base: u16 = flag("--port-base")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(30000);
    let timeout_ms: u64 = flag("--node-timeout")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let mut results = Vec::new();
    if real {
        let (mut nodes, dir) = start_real(port_base);
        wait_for(Duration::from_secs(60), || real_healthy(&nodes)).await;
        let seeds: Vec<String> = nodes.iter().map(RealNode::addr).collect();
        let client = Client::builder(&seeds)
            .request_timeout(Duration::from_secs(10))
            .build()
            .await
            .expect("connect");
        println!("real redis-server 3+3, cluster-node-timeout 2000 ms");
        for t in 0..trials {
            client.set(KEY, 0).await.expect("warm-up write");
            let topo = client.topology();
            let slot = redcluster::slot::key_slot(KEY.as_bytes());
            let shard = topo.shard_for_slot(slot).expect("slot covered");
            let primary = shard.primary.addr.clone();
            let victim = nodes
                .iter()
                .position(|n| n.addr() == primary)
                .expect("known primary");
            let port = nodes[victim].port.to_string();
            let replica = nodes
                .iter()
                .find(|n| {
                    cli(n.port, &["INFO", "replication"]).contains(&format!("master_port:{port}"))
                })
                .expect("the primary has a replica")
                .addr();
            let t0 = Instant::now();
            nodes[victim].kill();
            let watcher = tokio::spawn(async move {
                while !is_master(&replica).await {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                t0.elapsed()
            });
            let (first_write, failed_writes) = first_write_after(&client, t0).await;
            let promoted = watcher.await.expect("watcher");
            println!(
                "trial {t}: promoted after {promoted:?}, first write after {first_write:?} \
                 ({failed_writes} failed attempts)"
            );
            results.push(Trial {
                promoted,
                first_write,
                failed_writes,
            });
            nodes[victim].start();
            wait_for(Duration::from_secs(60), || real_healthy(&nodes)).await;
        }
        drop(nodes);
        let _ = std::fs::remove_dir_all(dir);
    } else {
        bundled(trials, timeout_ms, &mut results).await;
    }
    let promoted = median(results.iter().map(|r| r.promoted).collect());
    let write = median(results.iter().map(|r| r.first_write).collect());
    let lag = median(
        results
            .iter()
            .map(|r| r.first_write.saturating_sub(r.promoted))
            .collect(),
    );
    let failed: u64 = results.iter().map(|r| r.failed_writes).sum();
    println!(
        "median over {} trials: cluster failover {promoted:?}, first successful write {write:?}, \
         write after promotion {lag:?}; failed attempts in all: {failed}",
        results.len()
    );
}

async fn bundled(trials: usize, timeout_ms: u64, results: &mut Vec<Trial>) {
    let cluster = TestCluster::builder()
        .primaries(3)
        .replicas_per_primary(1)
        .node_timeout(Duration::from_millis(timeout_ms))
        .start()
        .await
        .expect("start the bundled cluster");
    let client = Client::builder(cluster.seeds())
        .request_timeout(Duration::from_secs(10))
        .build()
        .await
        .expect("connect");
    println!("bundled cluster 3+3, node timeout {timeout_ms} ms");
    for t in 0..trials {
        client.set(KEY, 0).await.expect("warm-up write");
        let slot = redcluster::slot::key_slot(KEY.as_bytes());
        let victim = cluster.primary_index_of_slot(slot).expect("slot served");
        let victim_id = cluster.nodes()[victim].id.clone();
        let replica = cluster
            .nodes()
            .iter()
            .find(|n| n.primary_id.as_deref() == Some(victim_id.as_str()))
            .expect("the primary has a replica")
            .addr
            .to_string();
        let t0 = Instant::now();
        cluster.kill_node(victim).await;
        let watcher = tokio::spawn(async move {
            while !is_master(&replica).await {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            t0.elapsed()
        });
        let (first_write, failed_writes) = first_write_after(&client, t0).await;
        let promoted = watcher.await.expect("watcher");
        println!(
            "trial {t}: promoted after {promoted:?}, first write after {first_write:?} \
             ({failed_writes} failed attempts)"
        );
        results.push(Trial {
            promoted,
            first_write,
            failed_writes,
        });
        cluster
            .restart_node(victim, true)
            .await
            .expect("restart the old primary");
        cluster
            .wait_stable(Duration::from_secs(30))
            .await
            .expect("cluster settles");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
