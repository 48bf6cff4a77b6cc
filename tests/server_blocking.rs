//! Blocking commands on the bundled cluster over real TCP: woken by writes from other
//! connections in the order they blocked, timeouts, MULTI, BLMOVE chains, BZPOPMIN, a
//! disconnect releasing the wait, CLIENT UNBLOCK, and a slot moving away.

mod support;

use std::net::SocketAddr;

use redcluster::resp::Value;
use redcluster::server::{FailoverMode, Role, TestCluster};
use redcluster::slot::key_slot;
use support::bundled::owner_index;
use support::raw::{parts, text, Client};
use support::wait::eventually;

/// The node serving "foo" and another primary.
async fn cluster(replicas: usize) -> (TestCluster, SocketAddr) {
    let cluster = TestCluster::builder()
        .primaries(3)
        .replicas_per_primary(replicas)
        .start()
        .await
        .unwrap();
    let addr = cluster.nodes()[owner_index(key_slot(b"foo"))].addr;
    (cluster, addr)
}

/// Wait until `addr` reports `n` blocked clients (INFO clients).
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

#[tokio::test]
async fn blpop_is_woken_by_a_push_first_blocked_first_served() {
    let (cluster, addr) = cluster(1).await;
    let mut first = Client::connect(addr).await;
    let mut second = Client::connect(addr).await;
    // Commands sent behind a blocked one wait for it.
    first.send(&["BLPOP", "foo", "{foo}other", "0"]).await;
    first.send(&["GET", "{foo}x"]).await;
    blocked(addr, 1).await;
    second.send(&["BLPOP", "foo", "0"]).await;
    blocked(addr, 2).await;

    let mut writer = Client::connect(addr).await;
    assert_eq!(
        writer.cmd(&["RPUSH", "foo", "a", "b", "c"]).await,
        Value::Integer(3)
    );
    assert_eq!(parts(&first.read().await.unwrap()), ["foo", "a"]);
    assert_eq!(first.read().await.unwrap(), Value::Null);
    assert_eq!(parts(&second.read().await.unwrap()), ["foo", "b"]);
    assert_eq!(writer.cmd(&["LLEN", "foo"]).await, Value::Integer(1));
    blocked(addr, 0).await;

    // The served pops reached the replica as plain pops.
    let primary_id = cluster
        .nodes()
        .into_iter()
        .find(|n| n.addr == addr)
        .unwrap()
        .id;
    let replica = cluster
        .nodes()
        .into_iter()
        .find(|n| n.role == Role::Replica && n.primary_id.as_deref() == Some(&primary_id))
        .unwrap();
    eventually("the replica sees one element left", || async {
        let mut r = Client::connect(replica.addr).await;
        r.cmd(&["READONLY"]).await;
        r.cmd(&["LRANGE", "foo", "0", "-1"]).await == Value::Array(vec![Value::bulk("c")])
    })
    .await;
}

#[tokio::test]
async fn timeouts_errors_and_multi() {
    let (_cluster, addr) = cluster(0).await;
    let mut c = Client::connect(addr).await;
    assert_eq!(c.cmd(&["BLPOP", "foo", "0.05"]).await, Value::NullArray);
    assert_eq!(
        c.cmd(&["BLMOVE", "foo", "{foo}d", "LEFT", "RIGHT", "0.05"])
            .await,
        Value::NullArray
    );
    assert_eq!(
        c.cmd(&["BLMPOP", "0.05", "1", "foo", "LEFT"]).await,
        Value::NullArray
    );
    assert_eq!(
        c.text(&["BLPOP", "foo", "-1"]).await,
        "ERR timeout is negative"
    );
    assert_eq!(
        c.text(&["BLPOP", "foo", "abc"]).await,
        "ERR timeout is not a float or out of range"
    );
    assert_eq!(
        c.text(&["BLPOP", "foo", "bar", "0"]).await,
        "CROSSSLOT Keys in request don't hash to the same slot"
    );
    assert!(c
        .text(&["BLPOP", "bar", "0"])
        .await
        .starts_with("MOVED 5061 "));

    // Inside MULTI nothing blocks: the non-blocking forms' nil replies.
    assert_eq!(c.text(&["MULTI"]).await, "OK");
    for cmd in [
        &["BLPOP", "foo", "0"][..],
        &["BLMOVE", "foo", "{foo}d", "LEFT", "RIGHT", "0"],
        &["BRPOPLPUSH", "foo", "{foo}d", "0"],
        &["BZPOPMAX", "foo", "0"],
        &["BZMPOP", "0", "1", "foo", "MIN"],
    ] {
        assert_eq!(c.text(cmd).await, "QUEUED");
    }
    assert_eq!(
        c.cmd(&["EXEC"]).await,
        Value::Array(vec![
            Value::NullArray,
            Value::Null,
            Value::Null,
            Value::NullArray,
            Value::NullArray
        ])
    );
    // ... and with data they serve it.
    c.cmd(&["RPUSH", "foo", "v"]).await;
    c.cmd(&["MULTI"]).await;
    c.cmd(&["BRPOP", "foo", "0"]).await;
    assert_eq!(
        c.cmd(&["EXEC"]).await,
        Value::Array(vec![Value::Array(vec![
            Value::bulk("foo"),
            Value::bulk("v")
        ])])
    );

    // RESP3: a timeout is a null.
    c.cmd(&["HELLO", "3"]).await;
    assert_eq!(c.cmd(&["BZPOPMIN", "foo", "0.05"]).await, Value::Null);
}

#[tokio::test]
async fn blmove_chains_and_bzpopmin() {
    let (_cluster, addr) = cluster(0).await;
    let mut mover = Client::connect(addr).await;
    let mut tail = Client::connect(addr).await;
    mover
        .send(&["BLMOVE", "foo", "{foo}dst", "RIGHT", "LEFT", "0"])
        .await;
    blocked(addr, 1).await;
    tail.send(&["BLPOP", "{foo}dst", "0"]).await;
    blocked(addr, 2).await;
    let mut w = Client::connect(addr).await;
    w.cmd(&["LPUSH", "foo", "v"]).await;
    // The moved element wakes the client blocked on the destination.
    assert_eq!(text(&mover.read().await.unwrap()), "v");
    assert_eq!(parts(&tail.read().await.unwrap()), ["{foo}dst", "v"]);
    assert_eq!(
        w.cmd(&["EXISTS", "foo", "{foo}dst"]).await,
        Value::Integer(0)
    );

    let mut z = Client::connect(addr).await;
    z.send(&["BZPOPMIN", "{foo}z", "0"]).await;
    blocked(addr, 1).await;
    // A write of the wrong type leaves the sorted-set waiter blocked (Redis 7.0).
    w.cmd(&["LPUSH", "{foo}z", "x"]).await;
    w.cmd(&["DEL", "{foo}z"]).await;
    blocked(addr, 1).await;
    w.cmd(&["ZADD", "{foo}z", "2", "b", "1", "a"]).await;
    assert_eq!(parts(&z.read().await.unwrap()), ["{foo}z", "a", "1"]);
}

#[tokio::test]
async fn a_disconnect_client_kill_or_client_unblock_ends_the_wait() {
    let (_cluster, addr) = cluster(0).await;
    let mut gone = Client::connect(addr).await;
    gone.send(&["BLPOP", "foo", "0"]).await;
    blocked(addr, 1).await;
    drop(gone);
    blocked(addr, 0).await;
    let mut w = Client::connect(addr).await;
    w.cmd(&["LPUSH", "foo", "kept"]).await;
    assert_eq!(w.cmd(&["LLEN", "foo"]).await, Value::Integer(1));
    w.cmd(&["DEL", "foo"]).await;

    // CLIENT KILL of a blocked client closes it and releases its wait.
    let mut killed = Client::connect(addr).await;
    let killed_id = text(&killed.cmd(&["CLIENT", "ID"]).await);
    killed.send(&["BLPOP", "foo", "0"]).await;
    blocked(addr, 1).await;
    assert_eq!(
        w.cmd(&["CLIENT", "KILL", "ID", &killed_id]).await,
        Value::Integer(1)
    );
    assert_eq!(killed.read().await, None);
    blocked(addr, 0).await;

    let mut c = Client::connect(addr).await;
    let id = text(&c.cmd(&["CLIENT", "ID"]).await);
    assert_eq!(w.cmd(&["CLIENT", "UNBLOCK", &id]).await, Value::Integer(0));
    c.send(&["BLPOP", "foo", "0"]).await;
    blocked(addr, 1).await;
    assert_eq!(w.cmd(&["CLIENT", "UNBLOCK", &id]).await, Value::Integer(1));
    assert_eq!(c.read().await.unwrap(), Value::NullArray);
    c.send(&["BLMOVE", "foo", "{foo}d", "LEFT", "LEFT", "0"])
        .await;
    blocked(addr, 1).await;
    assert_eq!(
        w.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]).await,
        Value::Integer(1)
    );
    assert_eq!(
        text(&c.read().await.unwrap()),
        "UNBLOCKED client unblocked via CLIENT UNBLOCK"
    );
    assert_eq!(
        w.text(&["CLIENT", "UNBLOCK", &id, "FOO"]).await,
        "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"
    );
    assert_eq!(
        w.text(&["CLIENT", "UNBLOCK", "abc"]).await,
        "ERR value is not an integer or out of range"
    );
}

#[tokio::test]
async fn a_slot_moving_away_redirects_the_blocked_client() {
    let (cluster, addr) = cluster(0).await;
    let nodes = cluster.nodes();
    let slot = key_slot(b"foo");
    let dst = &nodes[(owner_index(slot) + 1) % 3];
    let mut c = Client::connect(addr).await;
    c.send(&["BLPOP", "foo", "0"]).await;
    blocked(addr, 1).await;
    let s = slot.to_string();
    for a in [dst.addr, addr] {
        let mut admin = Client::connect(a).await;
        assert_eq!(
            admin
                .text(&["CLUSTER", "SETSLOT", &s, "NODE", &dst.id])
                .await,
            "OK"
        );
    }
    assert_eq!(
        text(&c.read().await.unwrap()),
        format!("MOVED {slot} {}", dst.addr)
    );
    blocked(addr, 0).await;
}

#[tokio::test]
async fn a_failover_unblocks_clients_of_the_old_primary() {
    let (cluster, addr) = cluster(1).await;
    let primary = cluster.index_of(addr).unwrap();
    let replica = cluster.replica_indexes_of(primary)[0];
    let mut c = Client::connect(addr).await;
    c.send(&["BLPOP", "foo", "0"]).await;
    blocked(addr, 1).await;
    cluster
        .failover(replica, FailoverMode::Default)
        .await
        .unwrap();
    assert_eq!(
        text(&c.read().await.unwrap()),
        "UNBLOCKED force unblock from blocking operation, instance state changed (master -> \
         replica?)"
    );
    blocked(addr, 0).await;
}
