//! Blocking stream reads on the bundled cluster over real TCP, each compared byte for byte
//! with a real redis-server 7.0 where the outcome does not depend on the clock: XREAD BLOCK
//! woken by XADD (`$` meaning "after what is there now"), XREADGROUP BLOCK woken by XADD
//! and ended by XGROUP DESTROY or DEL, timeouts, MULTI, and a failover or slot move ending
//! the wait as for lists. The stream itself survives replication and a failover.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use redcluster::resp::Value;
use redcluster::server::{FailoverMode, TestCluster};
use redcluster::slot::key_slot;
use support::bundled::owner_index;
use support::raw::{text, Client};
use support::real_cluster::RealCluster;
use support::wait::eventually;

/// Wait until `addr` reports `n` blocked clients (INFO clients; both servers report it).
async fn blocked(addr: SocketAddr, n: usize) {
    let want = format!("blocked_clients:{n}\r\n");
    eventually(&format!("{n} blocked clients"), || {
        let want = want.clone();
        async move {
            let mut c = Client::connect(addr).await;
            c.text(&["INFO", "clients"]).await.contains(&want)
        }
    })
    .await;
}

/// One scenario of blocked readers and writers, run against `addr`; returns every reply's
/// bytes so two servers can be compared.
async fn scenario(addr: SocketAddr) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut w = Client::connect(addr).await;
    w.cmd(&["FLUSHALL"]).await;
    out.push(w.cmd_raw(&["XADD", "{s}a", "1-1", "f", "old"]).await);

    // XREAD BLOCK with `$`: only what arrives later.
    let mut r = Client::connect(addr).await;
    r.send(&["XREAD", "BLOCK", "0", "STREAMS", "{s}a", "{s}b", "$", "$"])
        .await;
    blocked(addr, 1).await;
    out.push(w.cmd_raw(&["XADD", "{s}b", "5-1", "f", "new"]).await);
    out.push(r.read_raw().await);
    blocked(addr, 0).await;

    // XREADGROUP BLOCK `>`: woken by XADD, the entry lands in the consumer's PEL.
    out.push(w.cmd_raw(&["XGROUP", "CREATE", "{s}a", "g", "$"]).await);
    r.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "c1",
        "BLOCK",
        "0",
        "STREAMS",
        "{s}a",
        ">",
    ])
    .await;
    blocked(addr, 1).await;
    out.push(w.cmd_raw(&["XADD", "{s}a", "2-1", "f", "job"]).await);
    out.push(r.read_raw().await);
    out.push(w.cmd_raw(&["XPENDING", "{s}a", "g"]).await);

    // The group destroyed under a blocked reader: NOGROUP.
    r.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "c1",
        "BLOCK",
        "0",
        "STREAMS",
        "{s}a",
        ">",
    ])
    .await;
    blocked(addr, 1).await;
    out.push(w.cmd_raw(&["XGROUP", "DESTROY", "{s}a", "g"]).await);
    out.push(r.read_raw().await);

    // The stream deleted under a blocked group reader: UNBLOCKED.
    out.push(w.cmd_raw(&["XGROUP", "CREATE", "{s}a", "g2", "$"]).await);
    r.send(&[
        "XREADGROUP",
        "GROUP",
        "g2",
        "c",
        "BLOCK",
        "0",
        "STREAMS",
        "{s}a",
        ">",
    ])
    .await;
    blocked(addr, 1).await;
    out.push(w.cmd_raw(&["DEL", "{s}a"]).await);
    out.push(r.read_raw().await);

    // Timeouts answer a null array; a plain XREAD on a deleted stream keeps waiting.
    out.push(
        r.cmd_raw(&["XREAD", "BLOCK", "20", "STREAMS", "{s}a", "0"])
            .await,
    );
    r.send(&["XREAD", "BLOCK", "0", "STREAMS", "{s}b", "$"])
        .await;
    blocked(addr, 1).await;
    out.push(w.cmd_raw(&["DEL", "{s}b"]).await);
    // The ID waited for is still 5-1 (resolved when blocking): 1-1 would not serve it.
    out.push(w.cmd_raw(&["XADD", "{s}b", "9-1", "again", "1"]).await);
    out.push(r.read_raw().await);

    // Inside MULTI nothing blocks.
    out.push(r.cmd_raw(&["MULTI"]).await);
    out.push(
        r.cmd_raw(&["XREAD", "BLOCK", "0", "STREAMS", "{s}b", "$"])
            .await,
    );
    out.push(r.cmd_raw(&["EXEC"]).await);
    out
}

#[tokio::test]
async fn blocking_stream_reads_match_redis_server() {
    let ours = TestCluster::builder().primaries(1).start().await.unwrap();
    let got = scenario(ours.seeds()[0]).await;
    let text: Vec<String> = got
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert!(
        text[2].contains("5-1") && text[2].contains("new"),
        "{text:?}"
    );
    assert!(text[8].starts_with("-NOGROUP"), "{text:?}");
    assert!(
        text[11].starts_with("-UNBLOCKED the stream key no longer exists"),
        "{text:?}"
    );
    assert_eq!(text[12], "*-1\r\n");
    let Some(real) = RealCluster::single() else {
        return;
    };
    let want = scenario(real.nodes[0].addr()).await;
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(
            String::from_utf8_lossy(w),
            String::from_utf8_lossy(g),
            "reply #{i}"
        );
    }
}

#[tokio::test]
async fn a_failover_or_slot_move_ends_a_blocked_group_read() {
    let cluster = TestCluster::builder()
        .primaries(3)
        .replicas_per_primary(1)
        .start()
        .await
        .unwrap();
    let slot = key_slot(b"jobs");
    let nodes = cluster.nodes();
    let addr = nodes[owner_index(slot)].addr;
    let mut w = Client::connect(addr).await;
    assert_eq!(
        w.text(&["XGROUP", "CREATE", "jobs", "g", "$", "MKSTREAM"])
            .await,
        "OK"
    );
    w.cmd(&["XADD", "jobs", "1-1", "n", "1"]).await;
    w.cmd(&["WAIT", "1", "1000"]).await;
    let mut r = Client::connect(addr).await;
    r.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "c",
        "BLOCK",
        "0",
        "STREAMS",
        "jobs",
        ">",
    ])
    .await;
    // Served at once: the entry was there.
    assert!(format!("{:?}", r.read().await.unwrap()).contains("1-1"));
    r.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "c",
        "BLOCK",
        "0",
        "STREAMS",
        "jobs",
        ">",
    ])
    .await;
    blocked(addr, 1).await;
    let primary = cluster.index_of(addr).unwrap();
    let replica = cluster.replica_indexes_of(primary)[0];
    cluster
        .failover(replica, FailoverMode::Default)
        .await
        .unwrap();
    assert_eq!(
        text(&r.read().await.unwrap()),
        "UNBLOCKED force unblock from blocking operation, instance state changed (master -> \
         replica?)"
    );
    // The new primary has the stream, its group and the pending entry (replicated).
    let new_addr = cluster.nodes()[replica].addr;
    let mut n = Client::connect(new_addr).await;
    assert_eq!(n.cmd(&["XLEN", "jobs"]).await, Value::Integer(1));
    let pending = n.cmd(&["XPENDING", "jobs", "g"]).await;
    assert!(format!("{pending:?}").contains("1-1"), "{pending:?}");

    // A slot moving away ends a wait with MOVED.
    let mut r = Client::connect(new_addr).await;
    r.send(&["XREAD", "BLOCK", "0", "STREAMS", "jobs", "9-9"])
        .await;
    blocked(new_addr, 1).await;
    let dst = cluster
        .nodes()
        .into_iter()
        .find(|x| {
            x.addr != new_addr && x.addr != addr && x.role == redcluster::server::Role::Primary
        })
        .unwrap();
    // The slot must be empty to be given away (no MIGRATE here).
    assert_eq!(w_del(new_addr).await, Value::Integer(1));
    let s = slot.to_string();
    for a in [dst.addr, new_addr] {
        let mut admin = Client::connect(a).await;
        assert_eq!(
            admin
                .text(&["CLUSTER", "SETSLOT", &s, "NODE", &dst.id])
                .await,
            "OK"
        );
    }
    let moved = tokio::time::timeout(Duration::from_secs(5), r.read())
        .await
        .unwrap();
    assert_eq!(text(&moved.unwrap()), format!("MOVED {slot} {}", dst.addr));
}

async fn w_del(addr: SocketAddr) -> Value {
    Client::connect(addr).await.cmd(&["DEL", "jobs"]).await
}
