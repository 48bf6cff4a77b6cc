//! Client limits of the bundled server, with Redis' CONFIG names and semantics:
//! `client-output-buffer-limit` for replicas, normal and pub/sub clients.

mod support;

use std::time::Duration;

use redcluster::resp::Value;
use redcluster::server::{Role, TestCluster};
use support::raw::{node_cmd, node_cmds, parts, text};
use support::wait::eventually_within;

async fn info(addr: &str, section: &str) -> String {
    text(&node_cmd(addr, &["INFO", section]).await)
}

/// A primary and its replica with `client-output-buffer-limit replica <limit>`, the replica
/// synced, then paused (it stops reading its link). Returns the primary's address and the
/// replica's index.
async fn stalled_replica(limit: &str) -> (TestCluster, String, usize) {
    let cluster = TestCluster::builder()
        .primaries(1)
        .replicas_per_primary(1)
        .node_timeout(Duration::from_secs(10))
        .config("client-output-buffer-limit", format!("replica {limit}"))
        .start()
        .await
        .unwrap();
    let nodes = cluster.nodes();
    let primary = nodes.iter().find(|n| n.role == Role::Primary).unwrap();
    let replica = nodes.iter().position(|n| n.role == Role::Replica).unwrap();
    let p = primary.addr.to_string();
    assert!(info(&p, "stats").await.contains("sync_full:1\r\n"));
    cluster.pause_node(replica);
    (cluster, p, replica)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_replica_is_dropped_at_its_output_limit_then_resyncs() {
    // 40 MB of writes pass the primary's 1 MB limit for the stalled replica, whatever the
    // kernel buffers hold.
    let (cluster, p, replica) = stalled_replica("1mb 256kb 60").await;
    let nodes = cluster.nodes();
    let value = "v".repeat(512 * 1024);
    let cmds: Vec<Vec<String>> = (0..80)
        .map(|i| vec!["SET".into(), format!("k{i}"), value.clone()])
        .collect();
    for r in node_cmds(&p, &cmds).await {
        assert_eq!(r, Value::ok());
    }
    eventually_within(Duration::from_secs(10), "the replica dropped", || async {
        info(&p, "replication")
            .await
            .contains("connected_slaves:0\r\n")
    })
    .await;
    cluster.resume_node(replica);
    // It reconnects, resyncs in full, and has every write.
    eventually_within(Duration::from_secs(20), "a second full sync", || async {
        info(&p, "stats").await.contains("sync_full:2\r\n")
    })
    .await;
    let acked = node_cmd(&p, &["WAIT", "1", "10000"]).await;
    assert_eq!(acked, Value::Integer(1));
    let r = nodes[replica].addr.to_string();
    eventually_within(Duration::from_secs(10), "the resync loaded", || async {
        node_cmd(&r, &["DBSIZE"]).await == Value::Integer(80)
    })
    .await;
    cluster.shutdown().await;
}

/// Above the soft limit with no write after it, the replica is still dropped once the soft
/// seconds pass: the limit is checked on a timer (Redis' clientsCron), not only on writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_over_its_soft_limit_is_dropped_without_further_writes() {
    let (cluster, p, replica) = stalled_replica("0 256kb 1").await;
    // One write, far more than the kernel buffers hold: its flush starts the soft clock,
    // and nothing is written after it.
    let value = "v".repeat(24 << 20);
    assert_eq!(node_cmd(&p, &["SET", "big", &value]).await, Value::ok());
    eventually_within(Duration::from_secs(10), "the replica dropped", || async {
        info(&p, "replication")
            .await
            .contains("connected_slaves:0\r\n")
    })
    .await;
    cluster.resume_node(replica);
    cluster.shutdown().await;
}

#[tokio::test]
async fn output_limits_are_configurable_like_redis() {
    let cluster = TestCluster::builder().primaries(1).start().await.unwrap();
    let a = cluster.nodes()[0].addr.to_string();
    let get = || node_cmd(&a, &["CONFIG", "GET", "client-output-buffer-limit"]);
    let default = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60";
    assert_eq!(parts(&get().await)[1], default);
    let set = node_cmd(
        &a,
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 1mb 512k 10",
        ],
    )
    .await;
    assert_eq!(set, Value::ok());
    let bad = node_cmd(
        &a,
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "master 1mb 512k 1",
        ],
    )
    .await;
    assert_eq!(
        bad.error_text().unwrap(),
        "ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - \
         Invalid client class specified in buffer limit configuration."
    );
    cluster.shutdown().await;
}

fn field(info: &str, name: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {info}"))
}

#[tokio::test]
async fn info_memory_follows_the_dataset() {
    let cluster = TestCluster::builder().primaries(1).start().await.unwrap();
    let a = cluster.nodes()[0].addr.to_string();
    let empty = field(&info(&a, "memory").await, "used_memory_dataset");
    assert_eq!(empty, 0);
    let value = "x".repeat(1024);
    let cmds: Vec<Vec<String>> = (0..2000)
        .map(|i| vec!["SET".into(), format!("k{i}"), value.clone()])
        .collect();
    node_cmds(&a, &cmds).await;
    let mem = info(&a, "memory").await;
    let dataset = field(&mem, "used_memory_dataset");
    assert!((2_000_000..6_000_000).contains(&dataset), "{mem}");
    assert!(field(&mem, "used_memory") > dataset);
    assert!(field(&mem, "used_memory_rss") > 0);
    node_cmd(&a, &["FLUSHALL"]).await;
    assert_eq!(field(&info(&a, "memory").await, "used_memory_dataset"), 0);
    // No backlog is kept (every resync is full), and INFO says so.
    let repl = info(&a, "replication").await;
    assert_eq!(field(&repl, "repl_backlog_histlen"), 0);
    cluster.shutdown().await;
}
