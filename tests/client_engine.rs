//! One engine: transactions, blocking commands and subscriptions meet MOVED, ASK and a
//! failover on the bundled cluster, and each redirect or retry goes through the router's
//! decision and shows in `Client::stats()` like any single command's would.

mod support;

use std::time::{Duration, Instant};

use redcluster::resp::Value;
use redcluster::server::TestCluster;
use redcluster::{Client, Message, MessageKind, Subscription};
use support::bundled::{
    cluster, finish_migration, migrate_keys, move_slot, primaries, start_migration,
};
use support::raw::node_cmd;

/// A client that only learns about slot moves from redirects (no periodic refresh).
async fn client(c: &TestCluster) -> Client {
    Client::builder(c.seeds())
        .refresh_interval(None)
        .build()
        .await
        .unwrap()
}

/// (owner of `key`'s slot, another primary), as addresses.
fn owner_and_other(c: &TestCluster, key: &str) -> (String, String) {
    let slot = redcluster::slot::key_slot(key.as_bytes());
    let ps = primaries(c);
    let owner = c
        .nodes()
        .into_iter()
        .find(|n| n.slots.iter().any(|r| r.contains(&slot)))
        .unwrap()
        .addr
        .to_string();
    let other = ps
        .into_iter()
        .map(|(a, _)| a)
        .find(|a| *a != owner)
        .unwrap();
    (owner, other)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_meets_ask_and_moved_through_the_engine() {
    let c = cluster().await;
    let client = client(&c).await;
    let key = "{tx}balance";
    let slot = redcluster::slot::key_slot(key.as_bytes());
    let (src, dst) = owner_and_other(&c, key);
    client.set(key, 10).await.unwrap();

    // Mid-migration, the key already on the target: the block is refused with ASK at the
    // source and sent again behind ASKING to the target.
    start_migration(&c, slot, &src, &dst).await;
    migrate_keys(&src, &dst, &[key]).await;
    let before = client.stats();
    let mut tx = client.transaction();
    tx.cmd("INCRBY").arg(key).arg(5).cmd("GET").arg(key);
    let (n, v): (i64, String) = tx.exec().await.unwrap().unwrap();
    assert_eq!((n, v.as_str()), (15, "15"));
    let after = client.stats();
    assert_eq!(after.ask, before.ask + 1, "{after:?}");
    assert_eq!(after.moved, before.moved);

    // Migration over; the client still thinks the source owns the slot: MOVED, followed.
    finish_migration(&c, slot, &dst).await;
    let before = client.stats();
    let mut tx = client.transaction();
    tx.cmd("INCRBY").arg(key).arg(1);
    let (n,): (i64,) = tx.exec().await.unwrap().unwrap();
    assert_eq!(n, 16);
    let after = client.stats();
    assert_eq!(after.moved, before.moved + 1, "{after:?}");
    assert_eq!(
        node_cmd(&dst, &["GET", key]).await,
        Value::bulk("16"),
        "applied on the new owner"
    );
    assert_eq!(client.topology().primary_for_slot(slot), Some(dst.as_str()));

    // With WATCH on, a MOVED voids the watch: not followed, but still counted and the slot
    // map patched, so the caller's next attempt lands. (First let the refresh the last
    // MOVED asked for land, so it cannot learn of the next move before the client meets it.)
    let start = Instant::now();
    while client.stats().topology_refreshes == before.topology_refreshes {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no refresh after MOVED"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut tx = client.transaction();
    tx.watch([key]).await.unwrap();
    move_slot(&c, slot, &dst, &src).await;
    let before = client.stats();
    let e = tx.now("GET").arg(key).query::<i64>().await.unwrap_err();
    assert_eq!(e.code(), Some("MOVED"), "{e}");
    assert_eq!(client.stats().moved, before.moved + 1);
    drop(tx);
    let mut tx = client.transaction();
    tx.watch([key]).await.unwrap();
    let n: i64 = tx.now("GET").arg(key).query().await.unwrap();
    tx.cmd("SET").arg(key).arg(n * 2);
    let applied: Option<((),)> = tx.exec().await.unwrap();
    assert!(applied.is_some());
    assert_eq!(node_cmd(&src, &["GET", key]).await, Value::bulk("32"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_command_meets_moved_through_the_engine() {
    let c = cluster().await;
    let client = client(&c).await;
    let key = "{blk}jobs";
    let slot = redcluster::slot::key_slot(key.as_bytes());
    let (src, dst) = owner_and_other(&c, key);
    client.rpush(key, "job1").await.unwrap();
    move_slot(&c, slot, &src, &dst).await;
    let before = client.stats();
    let got: Vec<String> = client.cmd("BLPOP").arg(key).arg(5).query().await.unwrap();
    assert_eq!(got, [key, "job1"]);
    let after = client.stats();
    assert_eq!(after.moved, before.moved + 1, "{after:?}");
    assert!(after.requests_to(&dst) > before.requests_to(&dst));
}

/// The next message within `limit`.
async fn next(sub: &mut Subscription, limit: Duration) -> Option<Message> {
    tokio::time::timeout(limit, sub.next_message())
        .await
        .ok()
        .flatten()
}

/// Publish on `ch` until a sharded message arrives (bounded).
async fn until_delivered(client: &Client, sub: &mut Subscription, ch: &str) -> Vec<Message> {
    let start = Instant::now();
    let mut seen = Vec::new();
    for i in 0.. {
        assert!(start.elapsed() < Duration::from_secs(20), "{seen:?}");
        let _ = client.spublish(ch, format!("m{i}")).await;
        while let Some(m) = next(sub, Duration::from_millis(100)).await {
            let done = m.kind == MessageKind::Sharded;
            seen.push(m);
            if done {
                return seen;
            }
        }
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_meets_moved_and_a_failover_through_the_engine() {
    let c = cluster().await;
    let client = client(&c).await;
    let ch = "{sub}news";
    let slot = redcluster::slot::key_slot(ch.as_bytes());
    let (src, dst) = owner_and_other(&c, ch);

    // The slot moved before the client noticed: SSUBSCRIBE meets MOVED at the old owner,
    // the router counts it and patches the map, the subscription lands on the new owner.
    move_slot(&c, slot, &src, &dst).await;
    let before = client.stats();
    let mut sub = client.ssubscribe([ch]).await.unwrap();
    until_delivered(&client, &mut sub, ch).await;
    let after = client.stats();
    assert!(after.moved > before.moved, "{after:?}");
    assert_eq!(client.topology().primary_for_slot(slot), Some(dst.as_str()));

    // The owner dies and its replica takes over: the lost link is a retry of the engine's,
    // then the subscription is back on the promoted replica.
    let before = client.stats();
    c.kill_primary_of(ch).await;
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        assert!(start.elapsed() < Duration::from_secs(20), "{seen:?}");
        if let Some(m) = next(&mut sub, Duration::from_millis(200)).await {
            let back = m.kind == MessageKind::Resubscribed;
            seen.push(m);
            if back {
                break;
            }
        }
    }
    assert_eq!(seen[0].kind, MessageKind::Gap, "{seen:?}");
    // Nothing else ran on this client since the kill: the retries are the subscription's.
    let after = client.stats();
    assert!(after.retries > before.retries, "{after:?}");
    let delivered = until_delivered(&client, &mut sub, ch).await;
    assert_eq!(delivered.last().unwrap().kind, MessageKind::Sharded);
}
