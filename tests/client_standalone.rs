//! The client against a real standalone `redis-server` 7 primary with replicas (cluster mode
//! off, `replicaof`): detection, replica reads (checked in each node's `INFO
//! commandstats`), multi-key commands sent whole, databases, pipelines, transactions,
//! pub/sub, blocking commands, SCAN, and failover without Sentinel (`REPLICAOF NO ONE`, and a
//! DNS-style re-pointed name through `address_map`).

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use redcluster::{Client, ErrorKind, ReadFrom};
use support::real_cluster::RealNode;
use support::real_standalone::{RealProcess, RealReplicaSet};
use support::wait::{bounded, eventually};
use support::write_load::WriteLoad;

/// `cmdstat_NAME` calls on `node` (0 when the command never ran there).
fn calls(node: &RealProcess, name: &str) -> u64 {
    let stats = node.cli(&["INFO", "commandstats"]);
    stats
        .lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_primary_is_detected_and_replicas_serve_reads() {
    let Some(set) = RealReplicaSet::start(2) else {
        return;
    };
    // Only the primary as seed: the replicas are found from it.
    let client = Client::builder(set.nodes[0].addr())
        .read_from(ReadFrom::ReplicaPreferred)
        .build()
        .await
        .unwrap();
    let topo = client.topology();
    assert_eq!(topo.shards().len(), 1);
    assert_eq!(topo.covered_slots(), 16384);
    assert_eq!(topo.shards()[0].primary.addr, set.nodes[0].addr());
    let replicas: HashSet<String> = topo.shards()[0]
        .replicas
        .iter()
        .map(|r| r.addr.clone())
        .collect();
    let expected: HashSet<String> = set.nodes[1..].iter().map(RealProcess::addr).collect();
    assert_eq!(replicas, expected);

    for i in 0..50 {
        client.set(format!("k{i}"), i).await.unwrap();
    }
    set.wait_replicas_synced();
    for i in 0..50 {
        let v: i64 = client.get(format!("k{i}")).await.unwrap();
        assert_eq!(v, i);
    }
    assert!(calls(&set.nodes[0], "set") >= 50, "writes on the primary");
    assert_eq!(calls(&set.nodes[0], "get"), 0, "no reads on the primary");
    let on_replicas: Vec<u64> = set.nodes[1..].iter().map(|n| calls(n, "get")).collect();
    assert_eq!(on_replicas.iter().sum::<u64>(), 50, "{on_replicas:?}");
    assert!(
        on_replicas.iter().all(|&n| n > 0),
        "spread: {on_replicas:?}"
    );

    // Keys in different slots: sent whole, one command each, on the primary.
    let before = (calls(&set.nodes[0], "mset"), calls(&set.nodes[0], "del"));
    let _: () = client
        .cmd("MSET")
        .args(["a", "1", "b", "2", "c", "3"])
        .query()
        .await
        .unwrap();
    let n: i64 = client.cmd("DEL").args(["a", "b"]).query().await.unwrap();
    assert_eq!(n, 2);
    assert_eq!(calls(&set.nodes[0], "mset"), before.0 + 1);
    assert_eq!(calls(&set.nodes[0], "del"), before.1 + 1);
    set.wait_replicas_synced();
    let got: Vec<Option<String>> = client
        .cmd("MGET")
        .args(["a", "b", "c"])
        .query()
        .await
        .unwrap();
    assert_eq!(got, [None, None, Some("3".to_string())]);
    let mget: u64 = set.nodes[1..].iter().map(|n| calls(n, "mget")).sum();
    assert_eq!(mget, 1, "one MGET, on a replica");
    // MSETNX stays atomic across slots too (no cluster rule without a cluster).
    let set_nx: i64 = client
        .cmd("MSETNX")
        .args(["x1", "1", "y1", "2"])
        .query()
        .await
        .unwrap();
    assert_eq!(set_nx, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_transactions_pubsub_blocking_and_scan_work_without_a_cluster() {
    let Some(set) = RealReplicaSet::start(1) else {
        return;
    };
    let client = Client::builder(set.seeds())
        .standalone()
        .read_from(ReadFrom::ReplicaPreferred)
        .build()
        .await
        .unwrap();

    let mut p = client.pipeline();
    for i in 0..100 {
        p.cmd("SET").arg(format!("p:{i}")).arg(i);
    }
    let oks: Vec<String> = p.query().await.unwrap();
    assert_eq!(oks.len(), 100);

    // A transaction over keys in different slots: one primary holds them all.
    let mut tx = client.transaction();
    tx.cmd("SET").arg("acct:a").arg(100);
    tx.cmd("INCRBY").arg("acct:b").arg(5);
    let r: Option<((), i64)> = tx.exec().await.unwrap();
    assert_eq!(r, Some(((), 5)));
    let mut tx = client.transaction();
    tx.watch(["acct:a", "acct:b"]).await.unwrap();
    client.incr("acct:b").await.unwrap();
    tx.cmd("SET").arg("acct:a").arg(0);
    let r: Option<Vec<redcluster::Value>> = tx.exec().await.unwrap();
    assert_eq!(r, None, "the watched key changed");

    let mut sub = client.subscribe(["news"]).await.unwrap();
    support::pubsub::publish_until(
        &mut sub,
        Duration::from_secs(10),
        |_| client.publish("news", "hello"),
        |seen| !seen.is_empty(),
    )
    .await;

    let waiter = {
        let client = client.clone();
        tokio::spawn(async move {
            let v: Option<(String, String)> = client
                .cmd("BLPOP")
                .arg("jobs")
                .arg(10)
                .query()
                .await
                .unwrap();
            v
        })
    };
    eventually("BLPOP waits on the primary", || async {
        set.nodes[0]
            .info_field("clients", "blocked_clients")
            .as_deref()
            == Some("1")
    })
    .await;
    client.rpush("jobs", "j1").await.unwrap();
    let got = bounded(waiter).await.unwrap();
    assert_eq!(got, Some(("jobs".to_string(), "j1".to_string())));

    let keys: Vec<bytes::Bytes> = client.scan_match("p:*").try_collect().await.unwrap();
    let distinct: HashSet<bytes::Bytes> = keys.into_iter().collect();
    assert_eq!(distinct.len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_selects_on_every_connection_and_is_refused_by_a_cluster() {
    let Some(set) = RealReplicaSet::start(1) else {
        return;
    };
    let url = format!("redis://{}/3?read_from=replica", set.nodes[0].addr());
    let client = Client::from_url(&url).unwrap().build().await.unwrap();
    client.set("in-db-3", "yes").await.unwrap();
    assert_eq!(
        set.nodes[0].cli(&["-n", "3", "GET", "in-db-3"]).trim(),
        "yes"
    );
    assert_eq!(set.nodes[0].cli(&["GET", "in-db-3"]).trim(), "");
    set.wait_replicas_synced();
    let v: String = client.get("in-db-3").await.unwrap();
    assert_eq!(v, "yes", "the replica connection selected database 3 too");
    assert_eq!(calls(&set.nodes[1], "get"), 1);

    let Some(node) = RealNode::start_single(&[]) else {
        return;
    };
    let e = Client::builder(node.addr().to_string())
        .database(2)
        .build()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("standalone"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicaof_no_one_and_a_repointed_name_move_writes_to_the_new_primary() {
    let Some(set) = RealReplicaSet::start(2) else {
        return;
    };
    // "primary.test" stands for a DNS name the operator re-points at failover.
    let target = Arc::new(AtomicU16::new(set.nodes[0].port));
    let map_to = target.clone();
    let client = Client::builder("primary.test:6379")
        .standalone()
        .address_map(move |host, port| {
            if host == "primary.test" {
                ("127.0.0.1".to_string(), map_to.load(Ordering::SeqCst))
            } else {
                (host.to_string(), port)
            }
        })
        .refresh_interval(Some(Duration::from_millis(300)))
        .build()
        .await
        .unwrap();
    client.set("before", 1).await.unwrap();
    assert_eq!(client.topology().shards()[0].replicas.len(), 2);

    // Promote node 1, demote node 0 under it, re-point node 2 and the name.
    let new = &set.nodes[1];
    assert_eq!(new.cli(&["REPLICAOF", "NO", "ONE"]).trim(), "OK");
    let port = new.port.to_string();
    for i in [0, 2] {
        let out = set.nodes[i].cli(&["REPLICAOF", "127.0.0.1", &port]);
        assert_eq!(out.trim(), "OK");
    }
    target.store(new.port, Ordering::SeqCst);
    // The next write meets READONLY on the demoted node, rediscovers, lands on node 1.
    bounded(client.set("after", 2)).await.unwrap();
    assert_eq!(new.cli(&["GET", "after"]).trim(), "2");
    // Still known by its name (so the name is dialled again on reconnect).
    assert_eq!(
        client.topology().shards()[0].primary.addr,
        "primary.test:6379"
    );
    set.wait_healthy();
    eventually(
        "both other nodes serve as replicas of the new primary",
        || async {
            let topo = client.topology();
            let rs: HashSet<String> = topo.shards()[0]
                .replicas
                .iter()
                .map(|r| r.addr.clone())
                .collect();
            rs == HashSet::from([set.nodes[0].addr(), set.nodes[2].addr()])
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinated_failover_a_lost_replica_and_a_dead_primary_are_followed() {
    let Some(mut set) = RealReplicaSet::start(2) else {
        return;
    };
    let client = Client::builder(set.seeds())
        .read_from(ReadFrom::ReplicaPreferred)
        .refresh_interval(Some(Duration::from_millis(300)))
        .request_timeout(Duration::from_secs(1))
        .build()
        .await
        .unwrap();
    client.set("k", "v").await.unwrap();

    // FAILOVER (Redis 6.2+): the primary hands over to a replica and becomes one itself.
    let to = set.nodes[1].port.to_string();
    let out = set.nodes[0].cli(&["FAILOVER", "TO", "127.0.0.1", &to]);
    assert_eq!(out.trim(), "OK");
    eventually("node 1 takes over", || async {
        set.primary_index() == Some(1)
    })
    .await;
    // FAILOVER leaves the other replica chained under the old primary: re-point it.
    let out = set.nodes[2].cli(&["REPLICAOF", "127.0.0.1", &to]);
    assert_eq!(out.trim(), "OK");
    set.wait_healthy();
    bounded(client.set("after-failover", 1)).await.unwrap();
    assert_eq!(set.nodes[1].cli(&["GET", "after-failover"]).trim(), "1");
    eventually("the client follows the handover", || async {
        let topo = client.topology();
        topo.shards()[0].primary.addr == set.nodes[1].addr() && topo.shards()[0].replicas.len() == 2
    })
    .await;

    // A replica that goes away stops serving reads once a refresh sees it.
    set.nodes[2].kill();
    eventually("the killed replica leaves the topology", || async {
        let topo = client.topology();
        topo.shards()[0]
            .replicas
            .iter()
            .map(|r| r.addr.clone())
            .collect::<Vec<_>>()
            == [set.nodes[0].addr()]
    })
    .await;

    // The primary dies and nobody promotes a replica: writes fail, reads go on.
    set.wait_replicas_synced();
    set.nodes[1].kill();
    let v: String = bounded(client.get("after-failover")).await.unwrap();
    assert_eq!(v, "1");
    let e = bounded(client.cmd("SET").arg("no-primary").arg(1).query::<()>())
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Timeout | ErrorKind::Io | ErrorKind::MaybeApplied
        ),
        "{e}"
    );
}

/// The consistency checker's standalone run in short: a write load across a primary killed
/// and replaced by hand (`REPLICAOF NO ONE` on a replica, the other re-pointed); no counter
/// moves in a way no write explains, and the figures are printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_stay_consistent_across_a_manual_failover() {
    let Some(mut set) = RealReplicaSet::start(2) else {
        return;
    };
    let client = Client::builder(set.seeds())
        .refresh_interval(Some(Duration::from_millis(500)))
        .build()
        .await
        .unwrap();
    let load = WriteLoad::start(&client, 4).await;
    let kill = load.mark_kill();
    set.nodes[0].kill();
    let port = set.nodes[1].port.to_string();
    assert_eq!(set.nodes[1].cli(&["REPLICAOF", "NO", "ONE"]).trim(), "OK");
    let promoted = kill.elapsed();
    assert_eq!(
        set.nodes[2].cli(&["REPLICAOF", "127.0.0.1", &port]).trim(),
        "OK"
    );
    let r = load.finish().await;
    println!(
        "real standalone, manual failover: promoted {promoted:?} after the kill; kill -> first \
         successful write {:?} (failed writes: {:?}; {} acknowledged, {} lost in the \
         replication window)",
        r.kill_to_first_write, r.failed, r.acked, r.lost
    );
    assert_eq!(r.unexpected, 0, "{r:?}");
    assert_eq!(
        client.topology().shards()[0].primary.addr,
        set.nodes[1].addr()
    );
}
