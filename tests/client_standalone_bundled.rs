//! The client against the bundled standalone deployment (`TestReplicaSet`, and
//! `TestSentinels` watching it): the same checks as `client_standalone` and `client_sentinel`
//! run against real redis-server — detection, replica reads, multi-key commands sent whole,
//! databases, transactions over any keys, SCAN, `REPLICAOF NO ONE` failover, and a Sentinel
//! failover under a write load with its figures printed.
#![cfg(feature = "server")]

mod support;

use std::collections::HashSet;
use std::time::Duration;

use futures::TryStreamExt;
use redcluster::server::{TestReplicaSet, TestSentinels};
use redcluster::{Client, ReadFrom};
use support::raw::{node_cmd, text};
use support::wait::{bounded, eventually};
use support::write_load::{sentinel_ready, switch_watch, WriteLoad};

async fn replica_set(replicas: usize) -> TestReplicaSet {
    let set = TestReplicaSet::builder()
        .replicas(replicas)
        .start()
        .await
        .unwrap();
    set.wait_synced(Duration::from_secs(10)).await.unwrap();
    set
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundled_replica_set_is_detected_and_replicas_serve_reads() {
    let set = replica_set(2).await;
    let primary = set.primary().to_string();
    let client = Client::builder(primary.clone())
        .read_from(ReadFrom::ReplicaPreferred)
        .build()
        .await
        .unwrap();
    let topo = client.topology();
    assert_eq!(topo.shards().len(), 1);
    assert_eq!(topo.shards()[0].primary.addr, primary);
    let replicas: HashSet<String> = topo.shards()[0]
        .replicas
        .iter()
        .map(|r| r.addr.clone())
        .collect();
    let expected: HashSet<String> = set.replicas().iter().map(|a| a.to_string()).collect();
    assert_eq!(replicas, expected);

    for i in 0..40 {
        client.set(format!("k{i}"), i).await.unwrap();
    }
    set.wait_synced(Duration::from_secs(10)).await.unwrap();
    for i in 0..40 {
        let v: i64 = client.get(format!("k{i}")).await.unwrap();
        assert_eq!(v, i);
    }
    let stats = client.stats();
    let on_replicas: Vec<u64> = expected.iter().map(|a| stats.requests_to(a)).collect();
    assert!(on_replicas.iter().all(|&n| n > 0), "{on_replicas:?}");
    assert_eq!(
        on_replicas.iter().sum::<u64>(),
        40,
        "every GET on a replica"
    );

    // Keys in different slots, sent whole; a transaction over them; SCAN.
    let _: () = client
        .cmd("MSET")
        .args(["a", "1", "b", "2"])
        .query()
        .await
        .unwrap();
    let mut tx = client.transaction();
    tx.cmd("INCR").arg("a");
    tx.cmd("INCR").arg("b");
    let r: Option<(i64, i64)> = tx.exec().await.unwrap();
    assert_eq!(r, Some((2, 3)));
    let keys: Vec<bytes::Bytes> = client.scan_match("k*").try_collect().await.unwrap();
    assert_eq!(keys.into_iter().collect::<HashSet<_>>().len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_n_and_replicaof_no_one_on_the_bundled_set() {
    let set = replica_set(1).await;
    let primary = set.primary().to_string();
    let replica = set.replicas()[0].to_string();
    let client = Client::builder([primary.clone(), replica.clone()])
        .standalone()
        .database(3)
        .refresh_interval(Some(Duration::from_millis(300)))
        .build()
        .await
        .unwrap();
    client.set("in-db-3", "yes").await.unwrap();
    let conn_db0 = node_cmd(&primary, &["GET", "in-db-3"]).await;
    assert_eq!(text(&conn_db0), "(nil)", "database 0 does not have it");
    let db3 =
        support::raw::node_cmds(&primary, &[vec!["SELECT", "3"], vec!["GET", "in-db-3"]]).await;
    assert_eq!(text(&db3[1]), "yes");

    // Promote the replica, demote the primary under it: writes follow.
    assert_eq!(
        text(&node_cmd(&replica, &["REPLICAOF", "NO", "ONE"]).await),
        "OK"
    );
    let (host, port) = replica.split_once(':').unwrap();
    assert_eq!(
        text(&node_cmd(&primary, &["REPLICAOF", host, port]).await),
        "OK"
    );
    bounded(client.set("after", 2)).await.unwrap();
    let check =
        support::raw::node_cmds(&replica, &[vec!["SELECT", "3"], vec!["GET", "after"]]).await;
    assert_eq!(text(&check[1]), "2");
    eventually("the client follows the promotion", || async {
        client.topology().shards()[0].primary.addr == replica
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundled_sentinels_and_replica_set_failover_under_a_write_load() {
    let set = replica_set(2).await;
    let sentinels = TestSentinels::builder()
        .sentinels(3)
        .quorum(2)
        .monitor_addr("mymaster", set.primary())
        .down_after(Duration::from_secs(1))
        .failover_timeout(Duration::from_secs(3))
        .start()
        .await
        .unwrap();
    let addrs: Vec<String> = sentinels.addrs().iter().map(|a| a.to_string()).collect();
    sentinel_ready(&addrs[0], "mymaster", 2, 2).await;
    let client = Client::sentinel(addrs.clone(), "mymaster")
        .read_from(ReadFrom::ReplicaPreferred)
        .refresh_interval(Some(Duration::from_millis(500)))
        .build()
        .await
        .unwrap();
    let old = set.primary();
    assert_eq!(client.topology().shards()[0].primary.addr, old.to_string());

    let load = WriteLoad::start(&client, 4).await;
    let switch = switch_watch(&addrs[0], "mymaster").await;
    let kill = load.mark_kill();
    set.kill_node(set.index_of(old).unwrap()).await;
    let switched_at = tokio::time::timeout(Duration::from_secs(60), switch)
        .await
        .expect("the Sentinels switched within 60 s")
        .unwrap();
    let r = load.finish().await;
    assert_eq!(r.unexpected, 0, "{r:?}");
    println!(
        "bundled Sentinels + bundled replica set: kill -> +switch-master {:?}; kill -> first \
         successful write {:?} (failed writes: {:?}; {} acknowledged, {} lost in the \
         replication window)",
        switched_at - kill,
        r.kill_to_first_write,
        r.failed,
        r.acked,
        r.lost
    );
    let new = client.topology().shards()[0].primary.addr.clone();
    assert_ne!(new, old.to_string());
    assert_eq!(new, set.primary().to_string());
}
