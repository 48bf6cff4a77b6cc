//! The client against the bundled in-process cluster (`redcluster::server::TestCluster`).

use std::collections::HashMap;
use std::time::Duration;

mod support;

use redcluster::resp::Value;
use redcluster::server::{Role, TestCluster};
use redcluster::{Client, ErrorKind, ReadFrom};
use support::bundled::cluster;
use support::raw::node_cmd;

#[tokio::test]
async fn round_trips_and_keys_land_on_their_owners() {
    let cluster = cluster().await;
    for resp3 in [false, true] {
        let client = Client::builder(cluster.seeds())
            .resp3(resp3)
            .build()
            .await
            .unwrap();
        let topo = client.topology();
        assert_eq!(topo.covered_slots(), 16384);
        assert_eq!(topo.shards().len(), 3);
        let keys: Vec<String> = (0..300).map(|i| format!("b{resp3}:{i}")).collect();
        let writes = keys.iter().map(|k| client.set(k.as_str(), k.as_str()));
        for r in futures::future::join_all(writes).await {
            r.unwrap();
        }
        for k in keys.iter().step_by(15) {
            let owner = topo
                .primary_for_slot(redcluster::slot::key_slot(k.as_bytes()))
                .unwrap();
            assert_eq!(node_cmd(owner, &["GET", k]).await, Value::bulk(k));
            let v: String = client.get(k.as_str()).await.unwrap();
            assert_eq!(&v, k);
        }
        let h = format!("bh{resp3}");
        client.hset(&h, "f", 1).await.unwrap();
        let m: HashMap<String, i64> = client.hgetall(&h).await.unwrap();
        assert_eq!(m["f"], 1);
        let l = format!("bl{resp3}");
        client.rpush(&l, "a").await.unwrap();
        client.rpush(&l, "b").await.unwrap();
        let got: Vec<String> = client.lrange(&l, 0, -1).await.unwrap();
        assert_eq!(got, ["a", "b"]);
        assert_eq!(client.incr_by(format!("bn{resp3}"), 5).await.unwrap(), 5);
        // MGET across slots is split and merged; MSETNX must stay atomic and is refused.
        let v = client
            .cmd("MGET")
            .arg("a")
            .arg("b")
            .query::<Value>()
            .await
            .unwrap();
        assert_eq!(v, Value::Array(vec![Value::Null, Value::Null]));
        let e = client
            .cmd("MSETNX")
            .arg("a")
            .arg(1)
            .arg("b")
            .arg(2)
            .query::<Value>()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::CrossSlot);
        assert_eq!(client.stats().moved, 0);
    }
}

#[tokio::test]
async fn replica_preferred_reads_are_served_by_replicas() {
    let cluster = cluster().await;
    let client = Client::builder(cluster.seeds())
        .read_from(ReadFrom::ReplicaPreferred)
        .build()
        .await
        .unwrap();
    let keys: Vec<String> = (0..30).map(|i| format!("rpb:{i}")).collect();
    for k in &keys {
        client.set(k.as_str(), "v").await.unwrap();
    }
    let before = client.stats();
    for k in &keys {
        let mut v: Option<String> = None;
        for _ in 0..100 {
            v = client.get(k.as_str()).await.unwrap();
            if v.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(v.as_deref(), Some("v"));
    }
    let after = client.stats();
    let nodes = cluster.nodes();
    let mut replica_reads = 0;
    for n in &nodes {
        let addr = n.addr.to_string();
        let reads = after.requests_to(&addr) - before.requests_to(&addr);
        match n.role {
            Role::Primary => assert_eq!(reads, 0, "primary {addr} served a read"),
            _ => replica_reads += reads,
        }
    }
    assert!(replica_reads >= keys.len() as u64);
}

#[tokio::test]
async fn moved_after_a_slot_changes_owner() {
    let cluster = cluster().await;
    let client = Client::builder(cluster.seeds())
        .refresh_interval(None)
        .build()
        .await
        .unwrap();
    let key = "{bmoved}k";
    let slot = redcluster::slot::key_slot(key.as_bytes());
    let old = client
        .topology()
        .primary_for_slot(slot)
        .unwrap()
        .to_string();
    let nodes = cluster.nodes();
    let new = nodes
        .iter()
        .find(|n| n.role == Role::Primary && n.addr.to_string() != old)
        .unwrap();
    let slot_text = slot.to_string();
    let mut primaries: Vec<_> = nodes.iter().filter(|n| n.role == Role::Primary).collect();
    primaries.sort_by_key(|n| n.addr != new.addr);
    for n in primaries {
        let r = node_cmd(
            &n.addr.to_string(),
            &["CLUSTER", "SETSLOT", &slot_text, "NODE", &new.id],
        )
        .await;
        assert_eq!(r, Value::ok());
    }
    client.set(key, "v").await.unwrap();
    let v: String = client.get(key).await.unwrap();
    assert_eq!(v, "v");
    assert_eq!(client.stats().moved, 1, "one MOVED, then the patched map");
    assert_eq!(
        client.topology().primary_for_slot(slot),
        Some(new.addr.to_string().as_str())
    );
    assert_eq!(
        node_cmd(&new.addr.to_string(), &["GET", key]).await,
        Value::bulk("v")
    );
}

#[tokio::test]
async fn auth_with_a_named_user() {
    let cluster = TestCluster::builder()
        .primaries(3)
        .requirepass("default-pw")
        .user("app", "app-pw")
        .start()
        .await
        .unwrap();
    let client = Client::builder(cluster.seeds())
        .credentials(Some("app"), "app-pw")
        .build()
        .await
        .unwrap();
    client.set("auth:b", 1).await.unwrap();
    assert_eq!(client.get::<i64>("auth:b").await.unwrap(), 1);
    let e = Client::builder(cluster.seeds())
        .credentials(Some("app"), "nope-pw")
        .build()
        .await
        .unwrap_err();
    assert!(!format!("{e} {e:?}").contains("nope-pw"));
    // Refused credentials are their own kind, name the user, and are not retried.
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert_eq!(e.code(), Some("WRONGPASS"), "{e}");
    assert!(e.to_string().contains("user 'app'"), "{e}");
    assert!(!e.is_retryable());
    let e = Client::builder(cluster.seeds()).build().await.unwrap_err();
    assert!(e.to_string().contains("NOAUTH"), "{e}");
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
}

#[tokio::test]
async fn cluster_wide_commands_fan_out_and_merge() {
    let cluster = cluster().await;
    let client = Client::builder(cluster.seeds()).build().await.unwrap();
    for i in 0..50 {
        client.set(format!("fan:{i}"), i).await.unwrap();
    }
    let n: i64 = client.cmd("DBSIZE").query().await.unwrap();
    assert_eq!(n, 50, "DBSIZE sums every primary");
    let keys: Vec<String> = client.cmd("KEYS").arg("fan:*").query().await.unwrap();
    assert_eq!(keys.len(), 50, "KEYS gathers every primary's keys");
    client.cmd("FLUSHALL").query::<()>().await.unwrap();
    let n: i64 = client.cmd("DBSIZE").query().await.unwrap();
    assert_eq!(n, 0, "FLUSHALL reached every primary");
    assert_eq!(client.ping().await.unwrap(), "PONG");
}
