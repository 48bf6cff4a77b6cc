//! The three deployments one `Client` serves, each started on the bundled server:
//!
//! 1. Redis Cluster (`TestCluster`: 3 primaries + 3 replicas);
//! 2. a standalone primary with replicas (`TestReplicaSet`: cluster mode off, `REPLICAOF`);
//! 3. the same watched by Sentinel (`TestSentinels`), with the primary killed and the client
//!    following the Sentinels to the promoted replica.
//!
//! ```sh
//! cargo run --all-features --example deployments
//! ```

use std::time::{Duration, Instant};

use redcluster::server::{TestCluster, TestReplicaSet, TestSentinels};
use redcluster::{Client, ReadFrom};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Write 20 keys, read them back, and say where the requests went.
async fn work(what: &str, client: &Client) -> Res<()> {
    for i in 0..20 {
        client.set(format!("user:{i}"), i).await?;
    }
    // Reads go to replicas (ReplicaPreferred): replication is asynchronous, so a read right
    // after a write may not see it yet.
    let mut fresh = 0;
    for i in 0..20 {
        let v: Option<i64> = client.get(format!("user:{i}")).await?;
        fresh += usize::from(v == Some(i));
    }
    println!("{what}: {fresh}/20 reads saw the write just made");
    // MGET over keys in different slots: split per slot in a cluster, whole otherwise.
    let keys: Vec<String> = (0..5).map(|i| format!("user:{i}")).collect();
    let got: Vec<Option<i64>> = client.cmd("MGET").args(&keys).query().await?;
    println!("{what}: MGET {keys:?} -> {got:?}");
    let topo = client.topology();
    let stats = client.stats();
    for shard in topo.shards() {
        let replicas: Vec<String> = shard
            .replicas
            .iter()
            .map(|r| format!("{} ({} requests)", r.addr, stats.requests_to(&r.addr)))
            .collect();
        println!(
            "  primary {} ({} requests), {} slots, replicas {:?}",
            shard.primary.addr,
            stats.requests_to(&shard.primary.addr),
            shard
                .slot_ranges
                .iter()
                .map(|(lo, hi)| usize::from(hi - lo) + 1)
                .sum::<usize>(),
            replicas
        );
    }
    Ok(())
}

/// True once the Sentinel at `addr` knows `replicas` replicas and `others` other Sentinels
/// (`SENTINEL master mymaster`, read over a plain TCP connection).
async fn sentinel_ready(addr: std::net::SocketAddr, replicas: usize, others: usize) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    if s.write_all(b"SENTINEL master mymaster\r\n").await.is_err() {
        return false;
    }
    let mut buf = vec![0u8; 8192];
    let mut n = 0;
    // The reply is one array of short bulk strings: read until it ends with "\r\n" quiet.
    while let Ok(Ok(m)) =
        tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf[n..])).await
    {
        if m == 0 || n + m == buf.len() {
            break;
        }
        n += m;
    }
    let text = String::from_utf8_lossy(&buf[..n]);
    let lines: Vec<&str> = text.split("\r\n").collect();
    let field = |k: &str| {
        lines
            .iter()
            .position(|l| *l == k)
            .and_then(|i| lines.get(i + 2))
            .and_then(|v| v.parse::<usize>().ok())
    };
    field("num-slaves") == Some(replicas) && field("num-other-sentinels") == Some(others)
}

#[tokio::main]
async fn main() -> Res<()> {
    // 1. Redis Cluster.
    let cluster = TestCluster::builder()
        .primaries(3)
        .replicas_per_primary(1)
        .start()
        .await?;
    let client = Client::builder(cluster.seeds()[0])
        .read_from(ReadFrom::ReplicaPreferred)
        .build()
        .await?;
    work("cluster", &client).await?;
    drop(client);
    cluster.shutdown().await;

    // 2. A standalone primary with two replicas: found from any node of the set.
    let set = TestReplicaSet::builder().replicas(2).start().await?;
    set.wait_synced(Duration::from_secs(10)).await?;
    let client = Client::builder(set.primary())
        .read_from(ReadFrom::ReplicaPreferred)
        .build()
        .await?;
    work("standalone", &client).await?;
    drop(client);

    // 3. Sentinel watching the same set; the primary dies, the Sentinels promote a replica.
    let sentinels = TestSentinels::builder()
        .sentinels(3)
        .quorum(2)
        .monitor_addr("mymaster", set.primary())
        .start()
        .await?;
    // The Sentinels learn the replicas from the primary's INFO, and each other from hello
    // messages, within a few seconds: wait for it before failing anything over.
    let started = Instant::now();
    while !sentinel_ready(sentinels.addrs()[0], 2, 2).await {
        if started.elapsed() > Duration::from_secs(30) {
            return Err("the Sentinels did not find the replicas within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let client = Client::sentinel(sentinels.addrs(), "mymaster")
        .read_from(ReadFrom::ReplicaPreferred)
        .build()
        .await?;
    work("sentinel", &client).await?;
    let old = set.primary();
    let killed = Instant::now();
    println!("sentinel: killing the primary {old}");
    set.kill_node(set.index_of(old).ok_or("primary index")?)
        .await;
    // A write waits (within the request deadline) until the client finds the new primary.
    loop {
        match client.set("after-failover", 1).await {
            Ok(()) => break,
            Err(e) if killed.elapsed() < Duration::from_secs(30) => {
                println!("  write failed meanwhile: {e}");
            }
            Err(e) => return Err(e.into()),
        }
    }
    println!(
        "sentinel: first write after the kill succeeded {:?} later, on {}",
        killed.elapsed(),
        client.topology().shards()[0].primary.addr
    );
    Ok(())
}
