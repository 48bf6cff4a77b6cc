//! Fault injection on the bundled cluster, from Rust and from outside tools, over real TCP.
#![cfg(feature = "server")]

mod support;

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use redcluster::resp::Value;
use redcluster::server::TestCluster;
use support::bundled::with_timeout;
use support::raw::{text, Client};
use support::real_cluster::{cli, tools_available};
use support::wait::eventually;

const STABLE: Duration = Duration::from_secs(8);

/// The reply to what was sent, if it comes within `ms` milliseconds.
async fn reply_within(c: &mut Client, ms: u64) -> Option<Option<Value>> {
    tokio::time::timeout(Duration::from_millis(ms), c.read())
        .await
        .ok()
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    cli(port, args).trim().to_string()
}

async fn cluster(primaries: usize, replicas: usize, timeout_ms: u64) -> TestCluster {
    with_timeout(primaries, replicas, Duration::from_millis(timeout_ms)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_node_answers_nothing_until_resumed() {
    let cluster = cluster(3, 0, 5000).await;
    let i = cluster.primary_index_of_slot(12182).expect("owner of foo");
    let mut c = Client::connect(cluster.nodes()[i].addr).await;
    cluster.pause_node(i);
    c.send(&["SET", "foo", "1"]).await;
    assert!(
        reply_within(&mut c, 300).await.is_none(),
        "paused node answered"
    );
    cluster.resume_node(i);
    assert_eq!(text(&c.read().await.expect("reply")), "OK");
    // Delayed replies arrive late but arrive.
    cluster.delay_replies(i, Duration::from_millis(400));
    c.send(&["GET", "foo"]).await;
    assert!(
        reply_within(&mut c, 100).await.is_none(),
        "reply not delayed"
    );
    assert_eq!(text(&c.read().await.expect("reply")), "1");
    cluster.delay_replies(i, Duration::ZERO);
    // Dropped connections are closed; new ones work.
    cluster.drop_connections(i);
    assert_eq!(c.read().await, None);
    let mut c = Client::connect(cluster.nodes()[i].addr).await;
    assert_eq!(text(&c.cmd(&["GET", "foo"]).await), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_primary_is_failed_over_and_demoted_on_resume() {
    let cluster = cluster(3, 1, 500).await;
    let p = cluster.primary_index_of_slot(12182).expect("owner of foo");
    cluster.pause_node(p);
    eventually("a replica took over", || async {
        cluster.primary_index_of_slot(12182).is_some_and(|o| o != p)
    })
    .await;
    cluster.resume_node(p);
    eventually("the old primary steps down", || async {
        cluster.nodes()[p].primary_id.is_some()
    })
    .await;
    cluster.wait_stable(STABLE).await.expect("stable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_primary_refuses_connects_and_is_replaced() {
    let cluster = cluster(3, 1, 500).await;
    let p = cluster.primary_index_of_slot(12182).expect("owner of foo");
    let addr = cluster.nodes()[p].addr;
    let mut c = Client::connect(addr).await;
    assert_eq!(text(&c.cmd(&["SET", "foo", "before"]).await), "OK");
    c.cmd(&["WAIT", "1", "2000"]).await;
    let mut idle = tokio::net::TcpStream::connect(addr).await.expect("connect");
    idle.write_all(b"PING\r\n").await.expect("write");
    let mut pong = [0u8; 7];
    idle.read_exact(&mut pong).await.expect("PONG");
    cluster.partition_node(p);
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
        .await
        .expect("the connection ends");
    assert!(
        matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "connection reset: {read:?}"
    );
    // The listener closes a moment after the partition (a connect racing with it is
    // accepted and reset): connects are refused from then on.
    eventually("connects are refused", || async {
        tokio::net::TcpStream::connect(addr).await.is_err()
    })
    .await;
    eventually("a replica took over", || async {
        cluster.primary_index_of_slot(12182).is_some_and(|o| o != p)
    })
    .await;
    // Once healed it learns the new configuration and rejoins as a replica.
    cluster.heal_node(p);
    eventually("healed node follows the new primary", || async {
        cluster.nodes()[p].primary_id.is_some()
    })
    .await;
    cluster.wait_stable(STABLE).await.expect("stable");
    let o = cluster.primary_index_of_slot(12182).expect("new owner");
    let mut n = Client::connect(cluster.nodes()[o].addr).await;
    assert_eq!(text(&n.cmd(&["GET", "foo"]).await), "before");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_replica_serves_stale_reads() {
    let cluster = cluster(3, 1, 5000).await;
    let p = cluster.primary_index_of_slot(12182).expect("owner of foo");
    let nodes = cluster.nodes();
    let r = cluster.replica_indexes_of(p)[0];
    let mut w = Client::connect(nodes[p].addr).await;
    assert_eq!(text(&w.cmd(&["SET", "foo", "old"]).await), "OK");
    w.cmd(&["WAIT", "1", "2000"]).await;
    cluster.set_replication_lag(r, Duration::from_millis(3000));
    assert_eq!(text(&w.cmd(&["SET", "foo", "new"]).await), "OK");
    let mut rd = Client::connect(nodes[r].addr).await;
    rd.cmd(&["READONLY"]).await;
    assert_eq!(text(&rd.cmd(&["GET", "foo"]).await), "old", "stale read");
    eventually("replica catches up", || async {
        let mut rd = Client::connect(nodes[r].addr).await;
        rd.cmd(&["READONLY"]).await;
        text(&rd.cmd(&["GET", "foo"]).await) == "new"
    })
    .await;
    // A full sync under lag shows LOADING while the snapshot loads.
    cluster.restart_node(r, false).await.expect("restart");
    let mut rd = Client::connect(nodes[r].addr).await;
    rd.cmd(&["READONLY"]).await;
    let mut saw_loading = false;
    for _ in 0..100 {
        let reply = text(&rd.cmd(&["GET", "foo"]).await);
        if reply == "LOADING Redis is loading the dataset in memory" {
            saw_loading = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(saw_loading, "no LOADING during the full sync");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masterdown_when_the_link_is_down_and_stale_data_is_refused() {
    let cluster = cluster(3, 1, 5000).await;
    let p = cluster.primary_index_of_slot(12182).expect("owner of foo");
    let nodes = cluster.nodes();
    let r = cluster.replica_indexes_of(p)[0];
    let mut rd = Client::connect(nodes[r].addr).await;
    rd.cmd(&["READONLY"]).await;
    assert_eq!(
        text(
            &rd.cmd(&["CONFIG", "SET", "replica-serve-stale-data", "no"])
                .await
        ),
        "OK"
    );
    assert_eq!(text(&rd.cmd(&["GET", "foo"]).await), "(nil)");
    cluster.kill_node(p).await;
    eventually("MASTERDOWN", || async {
        let mut rd = Client::connect(nodes[r].addr).await;
        rd.cmd(&["READONLY"]).await;
        text(&rd.cmd(&["GET", "foo"]).await)
            == "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coverage_settings_decide_what_a_degraded_cluster_serves() {
    let cluster = cluster(3, 0, 300).await;
    let dead = cluster.kill_primary_of("foo").await;
    let live = (0..3).find(|i| *i != dead).expect("a live node");
    let mut c = Client::connect(cluster.nodes()[live].addr).await;
    eventually("cluster down", || async {
        let mut c = Client::connect(cluster.nodes()[live].addr).await;
        text(&c.cmd(&["CLUSTER", "INFO"]).await).contains("cluster_state:fail")
    })
    .await;
    // "hello" (866) and "bar" (5061) live on the first primary.
    let key = if dead == 0 { "{a}" } else { "bar" };
    let slot = redcluster::slot::key_slot(key.as_bytes());
    let owner =
        (0..3).find(|i| *i != dead && cluster.nodes()[*i].slots.iter().any(|r| r.contains(&slot)));
    let owner = owner.expect("a live owner");
    let mut o = Client::connect(cluster.nodes()[owner].addr).await;
    assert_eq!(
        text(&o.cmd(&["GET", key]).await),
        "CLUSTERDOWN The cluster is down"
    );
    for i in (0..3).filter(|i| *i != dead) {
        let mut n = Client::connect(cluster.nodes()[i].addr).await;
        n.cmd(&["CONFIG", "SET", "cluster-allow-reads-when-down", "yes"])
            .await;
    }
    assert_eq!(text(&o.cmd(&["GET", key]).await), "(nil)");
    assert_eq!(
        text(&o.cmd(&["SET", key, "1"]).await),
        "CLUSTERDOWN The cluster is down and only accepts read commands"
    );
    for i in (0..3).filter(|i| *i != dead) {
        let mut n = Client::connect(cluster.nodes()[i].addr).await;
        n.cmd(&["CONFIG", "SET", "cluster-require-full-coverage", "no"])
            .await;
    }
    assert_eq!(text(&o.cmd(&["SET", key, "1"]).await), "OK");
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "cluster-require-full-coverage"])
            .await,
        Value::Array(vec![
            Value::bulk("cluster-require-full-coverage"),
            Value::bulk("no")
        ])
    );
    // An unassigned slot is "not served".
    o.cmd(&["CLUSTER", "DELSLOTS", &slot.to_string()]).await;
    assert_eq!(
        text(&o.cmd(&["GET", key]).await),
        "CLUSTERDOWN Hash slot not served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphaned_primary_receives_a_spare_replica() {
    let cluster = cluster(3, 2, 300).await;
    let p = cluster.primary_index_of_slot(12182).expect("owner of foo");
    let nodes = cluster.nodes();
    let pid = nodes[p].id.clone();
    for (i, n) in nodes.iter().enumerate() {
        if n.primary_id.as_deref() == Some(pid.as_str()) {
            cluster.kill_node(i).await;
        }
    }
    eventually("a replica migrated to the orphan", || async {
        cluster
            .nodes()
            .iter()
            .any(|n| n.alive && n.primary_id.as_deref() == Some(pid.as_str()))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_tools_can_pause_sleep_and_shut_down_nodes() {
    if !tools_available(&["redis-cli"]) {
        return;
    }
    let cluster = cluster(3, 0, 5000).await;
    let addr = cluster.nodes()[0].addr;
    let port = addr.port();
    // DEBUG SLEEP stalls the whole node: some probe sent while redis-cli's DEBUG SLEEP runs
    // goes unanswered for a while, then is answered.
    let sleeper = tokio::task::spawn_blocking(move || redis_cli(port, &["DEBUG", "SLEEP", "1"]));
    let mut saw_stall = false;
    while !sleeper.is_finished() {
        let mut probe = Client::connect(addr).await;
        probe.send(&["PING"]).await;
        if reply_within(&mut probe, 150).await.is_none() {
            saw_stall = true;
            assert_eq!(text(&probe.read().await.expect("reply")), "PONG");
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(saw_stall, "the node kept answering during DEBUG SLEEP");
    assert_eq!(sleeper.await.expect("redis-cli"), "OK");
    // CLIENT PAUSE WRITE holds writes, not reads.
    assert_eq!(redis_cli(port, &["CLIENT", "PAUSE", "5000", "WRITE"]), "OK");
    let mut c = Client::connect(addr).await;
    assert_eq!(text(&c.cmd(&["GET", "hello"]).await), "(nil)");
    c.send(&["SET", "hello", "1"]).await;
    assert!(
        reply_within(&mut c, 200).await.is_none(),
        "write ran during CLIENT PAUSE"
    );
    assert_eq!(redis_cli(port, &["CLIENT", "UNPAUSE"]), "OK");
    assert_eq!(text(&c.read().await.expect("reply")), "OK");
    // SHUTDOWN NOSAVE kills the node.
    redis_cli(port, &["SHUTDOWN", "NOSAVE"]);
    eventually("node dead", || async { !cluster.nodes()[0].alive }).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    cluster.restart_node(0, true).await.expect("restart");
    let mut c = Client::connect(addr).await;
    assert_eq!(text(&c.cmd(&["GET", "hello"]).await), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_cluster_killed_and_restarted_keeps_its_data_and_layout() {
    let cluster = cluster(3, 1, 500).await;
    let p = cluster.primary_index_of_slot(12182).expect("owner of foo");
    let mut c = Client::connect(cluster.nodes()[p].addr).await;
    assert_eq!(text(&c.cmd(&["SET", "foo", "survives"]).await), "OK");
    let before: Vec<_> = cluster
        .nodes()
        .iter()
        .map(|n| (n.id.clone(), n.role))
        .collect();
    for i in 0..6 {
        cluster.kill_node(i).await;
    }
    assert!(cluster.nodes().iter().all(|n| !n.alive));
    for i in 0..6 {
        cluster.restart_node(i, true).await.expect("restart");
    }
    cluster
        .wait_stable(STABLE)
        .await
        .expect("stable after restart");
    let after: Vec<_> = cluster
        .nodes()
        .iter()
        .map(|n| (n.id.clone(), n.role))
        .collect();
    assert_eq!(before, after);
    let mut c = Client::connect(cluster.nodes()[p].addr).await;
    assert_eq!(text(&c.cmd(&["GET", "foo"]).await), "survives");
}
