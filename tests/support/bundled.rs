//! Helpers for tests against the bundled cluster (`redcluster::server::TestCluster`).

use redcluster::resp::{decode, encode_command, Limits, Value};
use redcluster::server::{Role, TestCluster};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The usual layout: 3 primaries with 1 replica each.
pub async fn cluster() -> TestCluster {
    TestCluster::builder()
        .primaries(3)
        .replicas_per_primary(1)
        .start()
        .await
        .unwrap()
}

/// One command straight to one node, no redirects followed.
pub async fn node_cmd(addr: &str, args: &[&str]) -> Value {
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut out = bytes::BytesMut::new();
    encode_command(&mut out, args.iter().copied());
    sock.write_all(&out).await.unwrap();
    let mut buf = bytes::BytesMut::new();
    loop {
        if let Some(v) = decode(&mut buf, &Limits::default()).unwrap() {
            return v;
        }
        assert!(sock.read_buf(&mut buf).await.unwrap() > 0, "node hung up");
    }
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
