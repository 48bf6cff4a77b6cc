//! Failure detection and failover of the bundled cluster, over real TCP.
#![cfg(feature = "server")]

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redcluster::server::{FailoverMode, Role, TestCluster};
use support::bundled::{replica_of, with_timeout};
use support::raw::{text, Client};
use support::wait::{eventually, progress};

const STABLE: Duration = Duration::from_secs(8);

async fn three_by_one() -> TestCluster {
    with_timeout(3, 1, Duration::from_millis(500)).await
}

/// The index of `key`'s primary and of its replica.
fn shard_of(cluster: &TestCluster, key: &str) -> (usize, usize) {
    let slot = redcluster::slot::key_slot(key.as_bytes());
    let p = cluster.primary_index_of_slot(slot).expect("an owner");
    (p, replica_of(cluster, p))
}

/// CLUSTER NODES lines reduced to "id role primary slots", sorted, without `myself`.
async fn topology(addr: SocketAddr) -> Vec<String> {
    let mut c = Client::connect(addr).await;
    let nodes = c.text(&["CLUSTER", "NODES"]).await;
    let mut out: Vec<String> = nodes
        .lines()
        .filter(|l| !l.contains("fail"))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let role = if f[2].contains("master") {
                "master"
            } else {
                "slave"
            };
            format!("{} {} {} {}", f[0], role, f[3], f[8..].join(" "))
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_is_replaced_and_rejoins_as_replica() {
    let cluster = three_by_one().await;
    let (p, r) = shard_of(&cluster, "foo");
    let mut c = Client::connect(cluster.nodes()[p].addr).await;
    for i in 0..50 {
        assert_eq!(
            text(&c.cmd(&["SET", &format!("{{foo}}{i}"), "v"]).await),
            "OK"
        );
    }
    c.cmd(&["WAIT", "1", "2000"]).await;
    assert_eq!(cluster.kill_primary_of("foo").await, p);
    assert!(!cluster.nodes()[p].alive);
    cluster.wait_stable(STABLE).await.expect("failover");
    let nodes = cluster.nodes();
    assert_eq!(nodes[r].role, Role::Primary);
    let mut c = Client::connect(nodes[r].addr).await;
    assert_eq!(text(&c.cmd(&["SET", "foo", "after"]).await), "OK");
    assert_eq!(text(&c.cmd(&["GET", "{foo}7"]).await), "v");
    // Every live node agrees on the topology.
    let first = topology(nodes[r].addr).await;
    for n in nodes.iter().filter(|n| n.alive) {
        eventually("views agree", || async { topology(n.addr).await == first }).await;
    }
    // The old primary comes back as a replica of the new one and resyncs.
    cluster.restart_node(p, true).await.expect("restart");
    let new_id = nodes[r].id.clone();
    eventually("old primary follows", || async {
        cluster.nodes()[p].primary_id.as_deref() == Some(new_id.as_str())
    })
    .await;
    let old_addr = cluster.nodes()[p].addr;
    eventually("old primary resynced", || async move {
        let mut old = Client::connect(old_addr).await;
        old.cmd(&["READONLY"]).await;
        text(&old.cmd(&["GET", "foo"]).await) == "after"
    })
    .await;
    let new_addr = nodes[r].addr;
    eventually("both copies hold the same keys", || async move {
        let mut a = Client::connect(new_addr).await;
        let mut b = Client::connect(old_addr).await;
        let (x, y) = (a.cmd(&["DBSIZE"]).await, b.cmd(&["DBSIZE"]).await);
        x == y && x == redcluster::resp::Value::Integer(51)
    })
    .await;
    let mut old = Client::connect(old_addr).await;
    assert_eq!(
        text(&old.cmd(&["SET", "foo", "x"]).await).split(' ').next(),
        Some("MOVED")
    );
    cluster.wait_stable(STABLE).await.expect("stable again");
}

async fn writer(addr: SocketAddr, stop: Arc<AtomicBool>, acked: Arc<AtomicU64>) {
    let mut c = Client::connect(addr).await;
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let reply = text(&c.cmd(&["INCR", "foo"]).await);
        match reply.parse::<u64>() {
            Ok(n) => {
                i += 1;
                assert_eq!(n, i, "a counter write was lost or doubled");
                acked.store(i, Ordering::Relaxed);
            }
            Err(_) => {
                // MOVED after the failover: follow it.
                let to = reply.rsplit(' ').next().expect("address");
                c = Client::connect(to.parse().expect("an address")).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_failover_under_writes_loses_nothing() {
    let cluster = three_by_one().await;
    let (p, r) = shard_of(&cluster, "foo");
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let task = tokio::spawn(writer(cluster.nodes()[p].addr, stop.clone(), acked.clone()));
    progress("writes before the failover", &acked, 50).await;
    cluster
        .failover(r, FailoverMode::Default)
        .await
        .expect("failover");
    progress("writes on the promoted replica", &acked, 50).await;
    stop.store(true, Ordering::Relaxed);
    task.await.expect("writer");
    let mut c = Client::connect(cluster.nodes()[r].addr).await;
    let value: u64 = text(&c.cmd(&["GET", "foo"]).await)
        .parse()
        .expect("a number");
    assert_eq!(value, acked.load(Ordering::Relaxed));
    assert!(value > 0);
    assert_eq!(cluster.nodes()[p].role, Role::Replica);
    cluster.wait_stable(STABLE).await.expect("stable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_and_takeover_promote_the_replica() {
    let cluster = three_by_one().await;
    let (p, r) = shard_of(&cluster, "foo");
    let mut c = Client::connect(cluster.nodes()[p].addr).await;
    assert_eq!(
        text(&c.cmd(&["CLUSTER", "FAILOVER"]).await),
        "ERR You should send CLUSTER FAILOVER to a replica"
    );
    cluster
        .failover(r, FailoverMode::Force)
        .await
        .expect("force");
    cluster.wait_stable(STABLE).await.expect("stable");
    assert_eq!(cluster.nodes()[p].role, Role::Replica);
    // And back, by TAKEOVER over the wire.
    let addr = cluster.nodes()[p].addr;
    eventually(
        "TAKEOVER accepted once the new replica has loaded",
        || async move {
            let mut c = Client::connect(addr).await;
            let reply = text(&c.cmd(&["CLUSTER", "FAILOVER", "TAKEOVER"]).await);
            assert!(reply == "OK" || reply.starts_with("LOADING"), "{reply}");
            reply == "OK"
        },
    )
    .await;
    eventually("takeover", || async {
        cluster.nodes()[p].role == Role::Primary
    })
    .await;
    cluster.wait_stable(STABLE).await.expect("stable");
    assert_eq!(cluster.nodes()[r].role, Role::Replica);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_other_replicas_follow_the_promoted_one() {
    let cluster = TestCluster::builder()
        .primaries(3)
        .replicas_per_primary(2)
        .node_timeout(Duration::from_millis(500))
        .start()
        .await
        .expect("cluster starts");
    let p = cluster.primary_index_of_slot(12182).expect("owner of foo");
    let mut c = Client::connect(cluster.nodes()[p].addr).await;
    assert_eq!(text(&c.cmd(&["SET", "foo", "kept"]).await), "OK");
    c.cmd(&["WAIT", "2", "2000"]).await;
    let old_id = cluster.nodes()[p].id.clone();
    cluster.kill_node(p).await;
    cluster.wait_stable(STABLE).await.expect("failover");
    let n = cluster.primary_index_of_slot(12182).expect("new owner");
    let new_id = cluster.nodes()[n].id.clone();
    eventually(
        "every replica of the old primary follows the new one",
        || async {
            let nodes = cluster.nodes();
            !nodes
                .iter()
                .any(|x| x.alive && x.primary_id.as_deref() == Some(old_id.as_str()))
                && nodes
                    .iter()
                    .filter(|x| x.primary_id.as_deref() == Some(new_id.as_str()))
                    .count()
                    == 1
        },
    )
    .await;
    let follower = cluster
        .nodes()
        .iter()
        .position(|x| x.primary_id.as_deref() == Some(new_id.as_str()))
        .expect("a follower");
    let addr = cluster.nodes()[follower].addr;
    eventually("the follower resynced", || async move {
        let mut r = Client::connect(addr).await;
        r.cmd(&["READONLY"]).await;
        text(&r.cmd(&["GET", "foo"]).await) == "kept"
    })
    .await;
}

/// The binary fails over by itself and `redis-cli --cluster check` agrees afterwards.
#[test]
fn the_binary_fails_over_and_redis_cli_check_stays_ok() {
    use support::real_cluster::{cli, redis_available};
    use support::server_bin::{run_tool, ServerProcess};
    use support::wait::wait_until;
    if !redis_available() {
        return;
    }
    let server = ServerProcess::start(
        6,
        &[
            "--replicas-per-primary",
            "1",
            "--cluster-node-timeout",
            "500",
        ],
    );
    let base = server.base_port;
    // "hello" (slot 866) lives on the first node, the primary of 0-5460.
    assert_eq!(cli(base, &["SET", "hello", "v"]).trim(), "OK");
    // Its replica (the fourth node) has applied everything the primary produced.
    let offset = |port: u16, field: &str| {
        cli(port, &["INFO", "replication"])
            .lines()
            .find_map(|l| l.trim().strip_prefix(field).map(str::to_string))
            .and_then(|v| v.parse::<u64>().ok())
    };
    wait_until(Duration::from_secs(10), || {
        let primary = offset(base, "master_repl_offset:");
        primary.is_some() && offset(base + 3, "slave_repl_offset:") == primary
    });
    cli(base, &["SHUTDOWN", "NOSAVE"]);
    let other = base + 1;
    let promoted = || {
        cli(other, &["CLUSTER", "NODES"])
            .lines()
            .find(|l| l.contains("master") && !l.contains("fail") && l.ends_with(" 0-5460"))
            .and_then(|l| l.split(' ').nth(1).map(str::to_string))
            .and_then(|a| {
                a.split(['@', ':'])
                    .nth(1)
                    .and_then(|p| p.parse::<u16>().ok())
            })
            .filter(|p| *p != base)
    };
    wait_until(Duration::from_secs(10), || {
        promoted().is_some() && cli(other, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
    });
    let port = promoted().expect("a promoted primary");
    assert_eq!(cli(port, &["GET", "hello"]).trim(), "v");
    let check = run_tool(
        "redis-cli",
        &["--cluster", "check", &format!("127.0.0.1:{other}")],
        Duration::from_secs(30),
    );
    let out = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(
        out.contains("[OK] All nodes agree about slots configuration."),
        "{out}"
    );
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");
}
