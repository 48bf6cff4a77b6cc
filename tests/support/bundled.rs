//! Helpers for tests against the bundled cluster (`redcluster::server::TestCluster`).

use std::time::Duration;

use redcluster::resp::Value;
use redcluster::server::{Role, TestCluster};

use super::raw::{node_cmd, text};
use super::real_cluster::replicas_synced;
use super::wait::eventually;

/// The usual layout: 3 primaries with 1 replica each (nodes 3, 4, 5 replicate 0, 1, 2).
pub async fn cluster() -> TestCluster {
    TestCluster::builder()
        .primaries(3)
        .replicas_per_primary(1)
        .start()
        .await
        .unwrap()
}

/// One primary (node 0) with one replica (node 1), owning every slot.
pub async fn primary_and_replica() -> TestCluster {
    TestCluster::builder()
        .primaries(1)
        .replicas_per_primary(1)
        .start()
        .await
        .unwrap()
}

/// 3 primaries, no replicas.
pub async fn three_primaries() -> TestCluster {
    TestCluster::builder().primaries(3).start().await.unwrap()
}

/// `primaries` primaries with `replicas` replicas each and the given `cluster-node-timeout`
/// (short timeouts make failure detection and failover take about a second).
pub async fn with_timeout(
    primaries: usize,
    replicas: usize,
    node_timeout: Duration,
) -> TestCluster {
    TestCluster::builder()
        .primaries(primaries)
        .replicas_per_primary(replicas)
        .node_timeout(node_timeout)
        .start()
        .await
        .expect("cluster starts")
}

/// The index of the primary owning `slot` in the even 3-primary layout the builder makes
/// (0..=5460, 5461..=10922, 10923..=16383), before any slot moves.
pub fn owner_index(slot: u16) -> usize {
    match slot {
        0..=5460 => 0,
        5461..=10922 => 1,
        _ => 2,
    }
}

/// The index of a replica of the primary at index `p`.
pub fn replica_of(cluster: &TestCluster, p: usize) -> usize {
    *cluster
        .replica_indexes_of(p)
        .first()
        .expect("the primary has a replica")
}

/// Wait until every replica has acknowledged everything its primary has written, so reads
/// from replicas see every write made before the call. Each primary is first sent `WAIT`
/// (which asks its replicas to acknowledge now instead of at their next once-a-second ACK),
/// then `INFO replication` is polled until the offsets agree.
pub async fn wait_replicas_synced(cluster: &TestCluster) {
    let nodes = cluster.nodes();
    let primaries: Vec<(String, usize)> = nodes
        .iter()
        .filter(|n| n.role == Role::Primary && n.alive)
        .map(|p| {
            let replicas = nodes
                .iter()
                .filter(|n| n.alive && n.primary_id.as_deref() == Some(p.id.as_str()))
                .count();
            (p.addr.to_string(), replicas)
        })
        .collect();
    for (addr, replicas) in &primaries {
        node_cmd(addr, &["WAIT", &replicas.to_string(), "1000"]).await;
    }
    eventually("replicas caught up with their primaries", || {
        let primaries = primaries.clone();
        async move {
            for (addr, _) in &primaries {
                let info = text(&node_cmd(addr, &["INFO", "replication"]).await);
                if !replicas_synced(&info) {
                    return false;
                }
            }
            true
        }
    })
    .await;
}

/// (addr, id) of every primary.
pub fn primaries(cluster: &TestCluster) -> Vec<(String, String)> {
    cluster
        .nodes()
        .into_iter()
        .filter(|n| n.role == Role::Primary)
        .map(|n| (n.addr.to_string(), n.id.clone()))
        .collect()
}

/// The node id of the primary at `addr`.
pub fn primary_id(cluster: &TestCluster, addr: &str) -> String {
    primaries(cluster)
        .into_iter()
        .find(|(a, _)| a == addr)
        .unwrap()
        .1
}

/// Begin moving `slot` from the primary at `src` to the one at `dst`: IMPORTING on `dst`,
/// MIGRATING on `src` (a half-finished migration until [`finish_migration`]).
pub async fn start_migration(cluster: &TestCluster, slot: u16, src: &str, dst: &str) {
    let s = slot.to_string();
    let (src_id, dst_id) = (primary_id(cluster, src), primary_id(cluster, dst));
    assert_eq!(
        node_cmd(dst, &["CLUSTER", "SETSLOT", &s, "IMPORTING", &src_id]).await,
        Value::ok()
    );
    assert_eq!(
        node_cmd(src, &["CLUSTER", "SETSLOT", &s, "MIGRATING", &dst_id]).await,
        Value::ok()
    );
}

/// `MIGRATE` `keys` from `src` to `dst`.
pub async fn migrate_keys(src: &str, dst: &str, keys: &[&str]) {
    let (host, port) = dst.rsplit_once(':').unwrap();
    let mut args = vec!["MIGRATE", host, port, "", "0", "5000", "KEYS"];
    args.extend_from_slice(keys);
    assert_eq!(node_cmd(src, &args).await, Value::ok());
}

/// End a migration: every primary gives `slot` to `dst`.
pub async fn finish_migration(cluster: &TestCluster, slot: u16, dst: &str) {
    let s = slot.to_string();
    let dst_id = primary_id(cluster, dst);
    for (addr, _) in primaries(cluster) {
        assert_eq!(
            node_cmd(&addr, &["CLUSTER", "SETSLOT", &s, "NODE", &dst_id]).await,
            Value::ok()
        );
    }
}

/// Move `slot` and its keys from the primary at `src` to the one at `dst`, as
/// `redis-cli --cluster reshard` does: IMPORTING, MIGRATING, MIGRATE ... KEYS, SETSLOT NODE.
pub async fn move_slot(cluster: &TestCluster, slot: u16, src: &str, dst: &str) {
    start_migration(cluster, slot, src, dst).await;
    let s = slot.to_string();
    let keys = node_cmd(src, &["CLUSTER", "GETKEYSINSLOT", &s, "10000"]).await;
    let Value::Array(keys) = keys else {
        panic!("{keys:?}")
    };
    let keys: Vec<String> = keys
        .into_iter()
        .map(|k| match k {
            Value::BulkString(b) => String::from_utf8(b.to_vec()).unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    if !keys.is_empty() {
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        migrate_keys(src, dst, &keys).await;
    }
    finish_migration(cluster, slot, dst).await;
}
