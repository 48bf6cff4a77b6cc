//! Read-from-replica routing and request deadlines on a real 3+3 cluster of their own
//! (these tests kill and pause nodes).

mod support;

use std::time::Duration;

use redcluster::{Client, ErrorKind, ReadFrom};
use support::real_cluster::RealCluster;

/// `cmdstat_get` calls on a node since its last CONFIG RESETSTAT.
fn get_calls(c: &RealCluster, i: usize) -> u64 {
    let info = c.nodes[i].cli(&["INFO", "commandstats"]);
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn replica_preferred_reads_hit_replicas_and_fall_back_when_they_are_gone() {
    let Some(mut c) = RealCluster::start(3, 1) else {
        return;
    };
    let client = Client::builder(c.seeds())
        .read_from(ReadFrom::ReplicaPreferred)
        .connect_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let keys: Vec<String> = (0..60).map(|i| format!("rp:{i}")).collect();
    for k in &keys {
        client.set(k.as_str(), k.as_str()).await.unwrap();
    }
    // Let replication catch up before counting where reads go.
    c.wait_replicas_synced();
    for n in &c.nodes {
        n.cli(&["CONFIG", "RESETSTAT"]);
    }
    for k in &keys {
        let v: Option<String> = client.get(k.as_str()).await.unwrap();
        assert_eq!(v.as_deref(), Some(k.as_str()));
    }
    let primaries: u64 = (0..3).map(|i| get_calls(&c, i)).sum();
    let replicas: u64 = (3..6).map(|i| get_calls(&c, i)).sum();
    assert_eq!(primaries, 0, "no read reached a primary");
    assert_eq!(
        replicas,
        keys.len() as u64,
        "every read was served by a replica"
    );
    assert!(
        (3..6).all(|i| get_calls(&c, i) > 0),
        "reads spread over all replicas"
    );
    let stats = client.stats();
    for i in 3..6 {
        assert!(stats.requests_to(&format!("127.0.0.1:{}", c.nodes[i].port)) > 0);
    }

    // Every replica gone: reads fall back to the primaries and still succeed.
    for i in 3..6 {
        c.nodes[i].kill();
    }
    for k in &keys {
        let v: Option<String> = client.get(k.as_str()).await.unwrap();
        assert_eq!(v.as_deref(), Some(k.as_str()));
    }
    let primaries: u64 = (0..3).map(|i| get_calls(&c, i)).sum();
    assert!(primaries > 0, "reads reached the primaries");

    // Deadline: a paused node makes requests time out, not hang.
    let slot = redcluster::slot::key_slot(b"rp:0");
    let owner = c.primary_index_for_slot(slot);
    let quick = Client::builder(c.seeds())
        .request_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    assert_eq!(
        c.nodes[owner].cli(&["CLIENT", "PAUSE", "1500"]).trim(),
        "OK"
    );
    let e = quick.get::<Option<String>>("rp:0").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.is_retryable());
    assert_eq!(quick.stats().timeouts, 1);
    // A key on another node is unaffected.
    let other = keys
        .iter()
        .find(|k| c.primary_index_for_slot(redcluster::slot::key_slot(k.as_bytes())) != owner)
        .unwrap();
    let v: Option<String> = quick.get(other.as_str()).await.unwrap();
    assert_eq!(v.as_deref(), Some(other.as_str()));
}
