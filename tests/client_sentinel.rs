//! `Client::sentinel` against real Sentinels (`redis-server --sentinel`) watching a real
//! primary with two replicas: discovery through the Sentinels (a dead one first in the list),
//! replica reads, and a killed primary under a steady write load — the Sentinels promote a
//! replica, the client resumes writing on it, and the old primary returns as a replica.
//!
//! The failover test PRINTS the time from the kill to the Sentinels' `+switch-master` and to
//! the client's first successful write (no timed assertion: figures for the report).

mod support;

use std::time::Duration;

use redcluster::{Client, ReadFrom};
use support::real_cluster::free_port;
use support::real_standalone::{RealReplicaSet, MASTER_NAME};
use support::wait::eventually;
use support::write_load::{sentinel_ready, switch_watch, WriteLoad};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_under_a_write_load_moves_the_client_to_the_new_primary() {
    let Some(mut set) = RealReplicaSet::with_sentinels(2, 3) else {
        return;
    };
    // A Sentinel that is down comes first: the client tries the next.
    let mut sentinels = vec![format!("127.0.0.1:{}", free_port())];
    sentinels.extend(set.sentinel_addrs());
    let client = Client::sentinel(sentinels, MASTER_NAME)
        .read_from(ReadFrom::ReplicaPreferred)
        .refresh_interval(Some(Duration::from_millis(500)))
        .build()
        .await
        .unwrap();
    let topo = client.topology();
    assert_eq!(topo.shards()[0].primary.addr, set.nodes[0].addr());
    assert_eq!(topo.shards()[0].replicas.len(), 2);
    client.set("k", "v").await.unwrap();
    set.wait_replicas_synced();
    let v: String = client.get("k").await.unwrap();
    assert_eq!(v, "v");

    // Steady writes from 4 writers; kill the primary; time the Sentinels and the client.
    let load = WriteLoad::start(&client, 4).await;
    let switch = switch_watch(&set.sentinels[0].addr(), MASTER_NAME).await;
    let old = set.nodes[0].port;
    let kill = load.mark_kill();
    set.nodes[0].kill();
    let switched_at = tokio::time::timeout(Duration::from_secs(60), switch)
        .await
        .expect("the Sentinels switched within 60 s")
        .unwrap();
    let (new, _) = set.wait_failover_from(old);
    let r = load.finish().await;
    assert_eq!(r.unexpected, 0, "{r:?}");
    println!(
        "real Sentinel failover: kill -> +switch-master {:?}; kill -> first successful write {:?} \
         (failed writes: {:?}; {} acknowledged in all, {} lost in the async-replication window)",
        switched_at - kill,
        r.kill_to_first_write,
        r.failed,
        r.acked,
        r.lost
    );
    assert_eq!(
        client.topology().shards()[0].primary.addr,
        set.nodes[new].addr()
    );
    let on_new: i64 = set.nodes[new]
        .cli(&["GET", "counter:0"])
        .trim()
        .parse()
        .unwrap();
    assert!(on_new > 0);

    // The old primary comes back as a replica of the new one, and serves reads again.
    set.nodes[0].restart();
    set.wait_healthy();
    assert_eq!(set.primary_index(), Some(new));
    eventually("the client lists the old primary as a replica", || async {
        let topo = client.topology();
        topo.shards()[0].primary.addr == set.nodes[new].addr()
            && topo.shards()[0]
                .replicas
                .iter()
                .any(|r| r.addr == set.nodes[0].addr())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_credentials_are_apart_from_the_data_nodes_credentials() {
    let data = [("requirepass", "data-pw"), ("masterauth", "data-pw")];
    let Some(set) = RealReplicaSet::start_secured(1, 1, &data, Some("sentinel-pw")) else {
        return;
    };
    let client = Client::sentinel(set.sentinel_addrs(), MASTER_NAME)
        .sentinel_credentials(None, "sentinel-pw")
        .credentials(None, "data-pw")
        .build()
        .await
        .unwrap();
    client.set("k", "v").await.unwrap();
    let v: String = client.get("k").await.unwrap();
    assert_eq!(v, "v");
    assert_eq!(client.topology().shards()[0].replicas.len(), 1);

    // Without the Sentinels' password they do not answer: a clear error, no password shown.
    let e = Client::sentinel(set.sentinel_addrs(), MASTER_NAME)
        .credentials(None, "data-pw")
        .build()
        .await
        .unwrap_err();
    let shown = e.to_string();
    assert!(shown.contains("NOAUTH"), "{shown}");
    assert!(
        !shown.contains("data-pw") && !shown.contains("sentinel-pw"),
        "{shown}"
    );
}

/// The bundled Sentinels (`TestSentinels`) watching real redis-server data nodes: the same
/// discovery and failover, and the same figures for the report.
#[cfg(feature = "server")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundled_sentinels_fail_over_real_nodes_and_the_client_follows() {
    let Some(mut set) = RealReplicaSet::start(2) else {
        return;
    };
    let primary = set.nodes[0].addr().parse().unwrap();
    let sentinels = redcluster::server::TestSentinels::builder()
        .sentinels(3)
        .quorum(2)
        .monitor_addr(MASTER_NAME, primary)
        .down_after(Duration::from_secs(1))
        .failover_timeout(Duration::from_secs(3))
        .start()
        .await
        .unwrap();
    let addrs: Vec<String> = sentinels.addrs().iter().map(|a| a.to_string()).collect();
    sentinel_ready(&addrs[0], MASTER_NAME, 2, 2).await;
    let client = Client::sentinel(addrs.clone(), MASTER_NAME)
        .read_from(ReadFrom::ReplicaPreferred)
        .refresh_interval(Some(Duration::from_millis(500)))
        .build()
        .await
        .unwrap();
    assert_eq!(
        client.topology().shards()[0].primary.addr,
        set.nodes[0].addr()
    );
    assert_eq!(client.topology().shards()[0].replicas.len(), 2);

    let load = WriteLoad::start(&client, 4).await;
    let switch = switch_watch(&addrs[0], MASTER_NAME).await;
    let kill = load.mark_kill();
    set.nodes[0].kill();
    let switched_at = tokio::time::timeout(Duration::from_secs(60), switch)
        .await
        .expect("the bundled Sentinels switched within 60 s")
        .unwrap();
    let r = load.finish().await;
    assert_eq!(r.unexpected, 0, "{r:?}");
    println!(
        "bundled Sentinels, real nodes: kill -> +switch-master {:?}; kill -> first successful \
         write {:?} (failed writes: {:?}; {} acknowledged, {} lost in the replication window)",
        switched_at - kill,
        r.kill_to_first_write,
        r.failed,
        r.acked,
        r.lost
    );
    let new = set.primary_index().expect("one primary");
    assert_ne!(new, 0);
    assert_eq!(
        client.topology().shards()[0].primary.addr,
        set.nodes[new].addr()
    );
}
