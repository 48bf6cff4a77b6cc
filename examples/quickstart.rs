//! The main job in one run: start the bundled cluster (3 primaries + 3 replicas on
//! 127.0.0.1), connect with `ReadFrom::ReplicaPreferred`, write keys across slots, read them
//! back, and print where every key, read and redirect went; then MGET, a pipeline and SCAN
//! across nodes.
//!
//! ```sh
//! cargo run --example quickstart                 # against the bundled cluster
//! cargo run --example quickstart -- 127.0.0.1:7000 # against any cluster, by seed
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use redcluster::resp::{decode, encode_command, Limits, Value};
use redcluster::server::{Role, TestCluster};
use redcluster::{Client, ReadFrom};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seeds: Vec<String> = std::env::args().skip(1).collect();
    let (_cluster, seeds) = if seeds.is_empty() {
        let cluster = TestCluster::builder()
            .primaries(3)
            .replicas_per_primary(1)
            .start()
            .await?;
        let seeds: Vec<String> = cluster.seeds().iter().map(|a| a.to_string()).collect();
        println!("started the bundled cluster: {}", seeds.join(" "));
        (Some(cluster), seeds)
    } else {
        (None, seeds)
    };

    let client = Client::builder(&seeds)
        .read_from(ReadFrom::ReplicaPreferred)
        .client_name("quickstart")
        .build()
        .await?;

    let topo = client.topology();
    let mut role: BTreeMap<String, String> = BTreeMap::new();
    println!("\ntopology (config epoch {}):", topo.epoch());
    for (i, shard) in topo.shards().iter().enumerate() {
        let ranges: Vec<String> = shard
            .slot_ranges
            .iter()
            .map(|(a, b)| format!("{a}-{b}"))
            .collect();
        let replicas: Vec<&str> = shard.replicas.iter().map(|r| r.addr.as_str()).collect();
        println!(
            "  shard {i}: primary {} replicas [{}] slots {}",
            shard.primary.addr,
            replicas.join(", "),
            ranges.join(",")
        );
        role.insert(shard.primary.addr.clone(), format!("primary of shard {i}"));
        for r in &shard.replicas {
            role.insert(r.addr.clone(), format!("replica of shard {i}"));
        }
    }

    println!("\nwrites (always to the slot's primary):");
    let keys: Vec<String> = (1..=9).map(|i| format!("user:{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        let value = format!(r#"{{"id":{},"name":"user {}"}}"#, i + 1, i + 1);
        client
            .set_ex(key.as_str(), value.as_str(), Duration::from_secs(30 * 60))
            .await?;
        let slot = redcluster::slot::key_slot(key.as_bytes());
        let owner = topo.primary_for_slot(slot).unwrap_or("?");
        println!("  SET {key:<8} slot {slot:>5} -> {owner}");
    }
    // Give the replicas a moment to receive the writes.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    let before = client.stats();
    println!("\nreads (ReplicaPreferred):");
    for key in &keys {
        let value: Option<String> = client.get(key.as_str()).await?;
        println!("  GET {key:<8} = {}", value.as_deref().unwrap_or("(nil)"));
    }
    let after = client.stats();
    println!("\nwhere the reads went:");
    for (addr, n) in &after.requests_per_node {
        let reads = n - before.requests_to(addr);
        if reads > 0 {
            let what = role.get(addr).map_or("unknown node", String::as_str);
            println!("  {addr:<21} {reads} reads ({what})");
        }
    }

    println!("\ncluster-wide operations (keys on every node):");
    let values: Vec<Option<String>> = client.cmd("MGET").args(&keys).query().await?;
    println!(
        "  MGET of {} keys in {} slots -> {} values, in the order asked",
        keys.len(),
        keys.iter()
            .map(|k| redcluster::slot::key_slot(k.as_bytes()))
            .collect::<std::collections::HashSet<_>>()
            .len(),
        values.iter().flatten().count()
    );
    let mut p = client.pipeline();
    for key in &keys {
        p.cmd("TTL").arg(key.as_str());
    }
    let ttls: Vec<i64> = p.query().await?;
    println!("  pipeline of {} TTLs across nodes -> {ttls:?}", ttls.len());
    use futures::TryStreamExt;
    let found: Vec<bytes::Bytes> = client.scan_match("user:*").try_collect().await?;
    println!(
        "  SCAN MATCH user:* over every primary -> {} keys",
        found.len()
    );

    if let Some(cluster) = &_cluster {
        move_a_slot(cluster, &client).await?;
    }

    let s = client.stats();
    println!(
        "\nredirects: {} MOVED, {} ASK; {} retries; {} topology refreshes; {} reconnects",
        s.moved, s.ask, s.retries, s.topology_refreshes, s.reconnects
    );
    Ok(())
}

/// Hand an empty slot to another primary behind the client's back (CLUSTER SETSLOT ... NODE on
/// every primary), then write a key in it: the old owner answers MOVED, the client follows it
/// and patches its slot map.
async fn move_a_slot(
    cluster: &TestCluster,
    client: &Client,
) -> Result<(), Box<dyn std::error::Error>> {
    let key = "moved:demo";
    let slot = redcluster::slot::key_slot(key.as_bytes());
    let topo = client.topology();
    let Some(old) = topo.primary_for_slot(slot).map(str::to_string) else {
        return Ok(());
    };
    let nodes = cluster.nodes();
    let primaries: Vec<_> = nodes.iter().filter(|n| n.role == Role::Primary).collect();
    let Some(new) = primaries.iter().find(|n| n.addr.to_string() != old) else {
        return Ok(());
    };
    let mut order: Vec<_> = primaries.iter().collect();
    order.sort_by_key(|n| n.addr != new.addr); // the new owner first, as Redis advises
    let slot_text = slot.to_string();
    for n in order {
        let reply = node_cmd(
            &n.addr.to_string(),
            &["CLUSTER", "SETSLOT", &slot_text, "NODE", &new.id],
        )
        .await?;
        if reply != Value::ok() {
            println!("\n(could not move slot {slot}: {reply:?})");
            return Ok(());
        }
    }
    let moved_before = client.stats().moved;
    client.set(key, "after the move").await?;
    let value: Option<String> = client.get(key).await?;
    println!(
        "\nslot {slot} moved {old} -> {}: SET {key} followed {} MOVED, read back {:?}; the client now routes slot {slot} to {}",
        new.addr,
        client.stats().moved - moved_before,
        value.unwrap_or_default(),
        client.topology().primary_for_slot(slot).unwrap_or("?"),
    );
    Ok(())
}

/// One command to one node over a plain socket (the client routes by key; this talks to a
/// node by address, as an operator's tool would).
async fn node_cmd(addr: &str, args: &[&str]) -> Result<Value, Box<dyn std::error::Error>> {
    let mut sock = tokio::net::TcpStream::connect(addr).await?;
    let mut out = bytes::BytesMut::new();
    encode_command(&mut out, args.iter().copied());
    sock.write_all(&out).await?;
    let mut buf = bytes::BytesMut::new();
    loop {
        if let Some(v) = decode(&mut buf, &Limits::default())? {
            return Ok(v);
        }
        if sock.read_buf(&mut buf).await? == 0 {
            return Err("connection closed".into());
        }
    }
}
