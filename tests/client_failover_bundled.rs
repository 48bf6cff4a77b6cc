//! The client against the bundled cluster's fault injection: a killed primary and its
//! return as a replica, a paused primary, a lagging replica and a shard without replicas
//! under `ReadFrom::ReplicaPreferred`. Short node timeouts keep each test to a second or two.

mod support;

use std::time::Duration;

use redcluster::server::{Role, TestCluster};
use redcluster::{Client, ErrorKind, ReadFrom};
use support::bundled::{replica_of, wait_replicas_synced, with_timeout};
use support::wait::{bounded, eventually, eventually_some, progress};

/// 3 primaries with 1 replica each and the given node timeout.
async fn cluster(node_timeout: Duration) -> TestCluster {
    with_timeout(3, 1, node_timeout).await
}

#[tokio::test]
async fn a_killed_primary_is_replaced_and_returns_as_a_replica() {
    let cluster = cluster(Duration::from_millis(500)).await;
    let client = Client::builder(cluster.seeds())
        .request_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    let key = "bk:{kill}";
    client.set(key, "1").await.unwrap();
    // Let the replica have it before the primary dies (replication is asynchronous).
    wait_replicas_synced(&cluster).await;
    // A client that knows the old shape and does nothing until the end.
    let stale = Client::builder(cluster.seeds())
        .refresh_interval(None)
        .build()
        .await
        .unwrap();
    let old = cluster.kill_primary_of(key).await;
    let old_addr = cluster.nodes()[old].addr.to_string();
    // Writes resume after the promotion, within one request deadline. A write that was on
    // the wire when the node died may come back as "maybe applied", never as success.
    let mut done = false;
    for _ in 0..3 {
        match bounded(client.set(key, "2")).await {
            Ok(()) => {
                done = true;
                break;
            }
            Err(e) => assert_eq!(e.kind(), ErrorKind::MaybeApplied, "{e}"),
        }
    }
    assert!(done, "writes did not resume after the failover");
    let slot = redcluster::slot::key_slot(key.as_bytes());
    let owner = client
        .topology()
        .primary_for_slot(slot)
        .unwrap()
        .to_string();
    assert_ne!(owner, old_addr, "the replica took over");
    let v: String = client.get(key).await.unwrap();
    assert_eq!(v, "2");

    // The old primary comes back, as a replica of the new one.
    cluster.restart_node(old, true).await.unwrap();
    cluster.wait_stable(Duration::from_secs(10)).await.unwrap();
    assert_eq!(cluster.nodes()[old].role, Role::Replica);
    // The stale client still sends writes to the old address: it is told (MOVED, or
    // READONLY), refreshes, and reroutes.
    assert_eq!(
        stale.topology().primary_for_slot(slot),
        Some(old_addr.as_str())
    );
    bounded(stale.set(key, "3")).await.unwrap();
    let s = stale.stats();
    assert!(s.moved + s.retries >= 1, "{s:?}");
    assert_eq!(
        stale.topology().primary_for_slot(slot),
        Some(owner.as_str())
    );
    let v: String = client.get(key).await.unwrap();
    assert_eq!(v, "3");
}

#[tokio::test]
async fn a_paused_primary_costs_a_deadline_not_a_hang() {
    // A node timeout longer than the test, so nobody fails the paused node over.
    let cluster = cluster(Duration::from_secs(30)).await;
    let client = Client::builder(cluster.seeds())
        .request_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let key = "bp:1";
    client.set(key, "v").await.unwrap();
    let slot = redcluster::slot::key_slot(key.as_bytes());
    let p = cluster.primary_index_of_slot(slot).unwrap();
    let other = (0..10_000)
        .map(|i| format!("bp:other:{i}"))
        .find(|k| {
            cluster.primary_index_of_slot(redcluster::slot::key_slot(k.as_bytes())) != Some(p)
        })
        .unwrap();
    cluster.pause_node(p);
    let e = bounded(client.get::<Option<String>>(key))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.is_retryable());
    // Other shards are unaffected meanwhile.
    client.set(other.as_str(), "o").await.unwrap();
    cluster.resume_node(p);
    // Once it answers again, the same connections carry on in step.
    let v: Option<String> = bounded(client.get(key)).await.unwrap();
    assert_eq!(v.as_deref(), Some("v"));
    assert!(client.stats().timeouts >= 1);
}

#[tokio::test]
async fn replica_preferred_reads_from_a_lagging_replica_are_stale_until_it_catches_up() {
    let cluster = cluster(Duration::from_secs(30)).await;
    let writer = Client::builder(cluster.seeds()).build().await.unwrap();
    let reader = Client::builder(cluster.seeds())
        .read_from(ReadFrom::ReplicaPreferred)
        .build()
        .await
        .unwrap();
    let key = "lag:1";
    writer.set(key, "old").await.unwrap();
    let slot = redcluster::slot::key_slot(key.as_bytes());
    let p = cluster.primary_index_of_slot(slot).unwrap();
    let r = replica_of(&cluster, p);
    // Wait for the replica to have the first value.
    eventually("the replica has the first value", || async {
        reader.get::<Option<String>>(key).await.unwrap().as_deref() == Some("old")
    })
    .await;
    cluster.set_replication_lag(r, Duration::from_millis(1500));
    writer.set(key, "new").await.unwrap();
    // The client does not hide replication lag: a replica read right after a write sees the
    // old value (use ReadFrom::Primary, the default, for read-your-writes).
    let v: Option<String> = reader.get(key).await.unwrap();
    assert_eq!(
        v.as_deref(),
        Some("old"),
        "served by the lagging replica {}: {:?} {:?}",
        cluster.nodes()[r].addr,
        reader.stats(),
        cluster.nodes()
    );
    let v: Option<String> = writer.get(key).await.unwrap();
    assert_eq!(v.as_deref(), Some("new"), "the primary has it");
    // ... and the replica catches up.
    eventually("the lagging replica catches up", || async {
        reader.get::<Option<String>>(key).await.unwrap().as_deref() == Some("new")
    })
    .await;
}

#[tokio::test]
async fn a_shard_whose_replicas_are_all_down_serves_replica_reads_from_its_primary() {
    let cluster = cluster(Duration::from_secs(30)).await;
    let client = Client::builder(cluster.seeds())
        .read_from(ReadFrom::ReplicaPreferred)
        .connect_timeout(Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    let keys: Vec<String> = (0..60).map(|i| format!("rd:{i}")).collect();
    for k in &keys {
        client.set(k.as_str(), k.as_str()).await.unwrap();
    }
    wait_replicas_synced(&cluster).await;
    let p = cluster
        .primary_index_of_slot(redcluster::slot::key_slot(keys[0].as_bytes()))
        .unwrap();
    let r = replica_of(&cluster, p);
    let r_addr = cluster.nodes()[r].addr.to_string();
    let p_addr = cluster.nodes()[p].addr.to_string();
    cluster.kill_node(r).await;
    let before = client.stats();
    for k in &keys {
        let v: Option<String> = bounded(client.get(k.as_str())).await.unwrap();
        assert_eq!(v.as_deref(), Some(k.as_str()));
    }
    let after = client.stats();
    assert!(
        after.requests_to(&p_addr) > before.requests_to(&p_addr),
        "the shard's reads fell back to its primary"
    );
    // The dead replica is tried at most once or twice, then skipped.
    assert!(after.requests_to(&r_addr) <= before.requests_to(&r_addr) + 2);
    // The other shards' reads still go to their replicas.
    let replica_reads: u64 = cluster
        .nodes()
        .iter()
        .enumerate()
        .filter(|(i, n)| *i != r && n.role == Role::Replica)
        .map(|(_, n)| {
            after.requests_to(&n.addr.to_string()) - before.requests_to(&n.addr.to_string())
        })
        .sum();
    assert!(replica_reads > 0);
}

#[tokio::test]
async fn a_frozen_primary_that_gets_failed_over_is_left_behind() {
    // The primary stops answering with its sockets open (SIGSTOP-like); the cluster fails it
    // over after the node timeout. Requests stuck on it end at their deadline, and the
    // deadline makes the client look at the topology again, so the next writes go to the
    // promoted replica instead of timing out until the periodic refresh (30 s by default).
    let cluster = cluster(Duration::from_millis(500)).await;
    let client = Client::builder(cluster.seeds())
        .request_timeout(Duration::from_millis(800))
        .build()
        .await
        .unwrap();
    let key = "fz:{frozen}";
    client.set(key, "0").await.unwrap();
    let slot = redcluster::slot::key_slot(key.as_bytes());
    let p = cluster.primary_index_of_slot(slot).unwrap();
    let old_addr = cluster.nodes()[p].addr.to_string();
    cluster.pause_node(p);
    let mut written = false;
    let mut timeouts = 0;
    for i in 0..10 {
        match bounded(client.set(key, i)).await {
            Ok(()) => {
                written = true;
                break;
            }
            Err(e) => {
                assert!(
                    matches!(e.kind(), ErrorKind::Timeout | ErrorKind::MaybeApplied),
                    "{e}"
                );
                timeouts += 1;
            }
        }
    }
    assert!(written, "writes never left the frozen primary");
    assert!(timeouts >= 1, "the frozen primary held the first write");
    assert_ne!(
        client.topology().primary_for_slot(slot),
        Some(old_addr.as_str())
    );
    cluster.resume_node(p);
}

#[tokio::test]
async fn a_graceful_failover_under_load_loses_no_request() {
    let cluster = cluster(Duration::from_secs(30)).await;
    let client = Client::builder(cluster.seeds()).build().await.unwrap();
    let key = "gf:{graceful}";
    client.set(key, "0").await.unwrap();
    let slot = redcluster::slot::key_slot(key.as_bytes());
    let p = cluster.primary_index_of_slot(slot).unwrap();
    let r = replica_of(&cluster, p);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (client, stop, acked) = (client.clone(), stop.clone(), acked.clone());
            tokio::spawn(async move {
                let mut last = 0u64;
                let mut errors = Vec::new();
                let key = format!("gf:{{graceful}}:{w}");
                for n in 1..=100_000u64 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    match client.set(key.as_str(), n).await {
                        Ok(()) => {
                            last = n;
                            acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        Err(e) => errors.push(e.to_string()),
                    }
                }
                (key, last, errors)
            })
        })
        .collect();
    progress("writes before the failover", &acked, 200).await;
    cluster
        .failover(r, redcluster::server::FailoverMode::Default)
        .await
        .unwrap();
    progress("writes after the failover", &acked, 200).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        let (key, last, errors) = w.await.unwrap();
        assert!(errors.is_empty(), "{key}: {errors:?}");
        assert!(last > 0);
        let v: u64 = client.get(key.as_str()).await.unwrap();
        assert_eq!(v, last, "{key}: the last acknowledged write is readable");
    }
    assert_eq!(cluster.primary_index_of_slot(slot), Some(r));
}

#[tokio::test]
async fn a_shard_lost_without_replicas_is_cluster_down_until_it_returns() {
    let cluster = TestCluster::builder()
        .primaries(3)
        .node_timeout(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let client = Client::builder(cluster.seeds())
        .request_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    let key = "cd:1";
    client.set(key, "v").await.unwrap();
    let p = cluster.kill_primary_of("cd:lost").await;
    // Once the others mark the node failed, the whole cluster answers CLUSTERDOWN
    // (cluster-require-full-coverage): requests end at their deadline as ClusterDown, not
    // as a hang.
    let e = eventually_some("the cluster went down", || async {
        bounded(client.get::<Option<String>>(key)).await.err()
    })
    .await;
    assert_eq!(e.kind(), ErrorKind::ClusterDown, "{e}");
    assert!(e.is_retryable());
    // The node comes back with its data: the same client carries on.
    cluster.restart_node(p, true).await.unwrap();
    cluster.wait_stable(Duration::from_secs(10)).await.unwrap();
    let mut back = false;
    for _ in 0..10 {
        if let Ok(v) = bounded(client.get::<Option<String>>(key)).await {
            assert_eq!(v.as_deref(), Some("v"));
            back = true;
            break;
        }
    }
    assert!(back);
    bounded(client.set("cd:lost", "x")).await.unwrap();
}

#[tokio::test]
async fn every_node_down_then_back_is_used_again_by_the_same_client() {
    let cluster = cluster(Duration::from_secs(30)).await;
    let client = Client::builder(cluster.seeds())
        .request_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    client.set("all:1", "v").await.unwrap();
    wait_replicas_synced(&cluster).await;
    let n = cluster.nodes().len();
    for i in 0..n {
        cluster.kill_node(i).await;
    }
    let e = bounded(client.get::<Option<String>>("all:1"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Timeout | ErrorKind::Io | ErrorKind::ClusterDown
        ),
        "{e}"
    );
    for i in 0..n {
        cluster.restart_node(i, true).await.unwrap();
    }
    cluster.wait_stable(Duration::from_secs(10)).await.unwrap();
    let mut back = false;
    for _ in 0..10 {
        if let Ok(v) = bounded(client.get::<Option<String>>("all:1")).await {
            assert_eq!(v.as_deref(), Some("v"));
            back = true;
            break;
        }
    }
    assert!(back, "the client never used the cluster again");
}
