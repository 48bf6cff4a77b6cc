//! Cluster-wide operations against the bundled cluster: pipelines across nodes, multi-key
//! commands split by slot, cluster SCAN, transactions, blocking commands and pub/sub.

use std::collections::HashSet;
use std::time::Duration;

use futures::TryStreamExt;
mod support;

use redcluster::resp::Value;
use redcluster::{Client, ErrorKind, MessageKind, ScanCursor, ScanOptions};
use support::bundled::{
    cluster, finish_migration, migrate_keys, move_slot, primaries, start_migration,
};
use support::pubsub::{last_is, publish_until, resubscribed_then};
use support::raw::{node_cmd, text};
use support::wait::{eventually, LIMIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_redirect_and_scan_during_migration() {
    let cluster = cluster().await;
    let client = Client::builder(cluster.seeds())
        .refresh_interval(None)
        .build()
        .await
        .unwrap();
    let keys: Vec<String> = (0..2000).map(|i| format!("mig:{i}")).collect();
    let mut p = client.pipeline();
    for k in &keys {
        p.cmd("SET").arg(k).arg(1);
    }
    p.query::<Vec<Value>>().await.unwrap();

    // One command of a pipeline meets MOVED and is redirected alone.
    let moved = "mig:7";
    let slot = redcluster::slot::key_slot(moved.as_bytes());
    let topo = client.topology();
    let src = topo.primary_for_slot(slot).unwrap().to_string();
    let dst = primaries(&cluster)
        .into_iter()
        .map(|(a, _)| a)
        .find(|a| *a != src)
        .unwrap();
    move_slot(&cluster, slot, &src, &dst).await;
    let before = client.stats().moved;
    let mut p = client.pipeline();
    p.cmd("INCR")
        .arg("mig:1")
        .cmd("INCR")
        .arg(moved)
        .cmd("INCR")
        .arg("mig:2");
    let r: (i64, i64, i64) = p.query().await.unwrap();
    assert_eq!(r, (2, 2, 2));
    assert_eq!(client.stats().moved - before, 1);

    // SCAN while slots move one by one between primaries.
    let ps: Vec<String> = primaries(&cluster).into_iter().map(|(a, _)| a).collect();
    let mut slots: Vec<u16> = keys
        .iter()
        .map(|k| redcluster::slot::key_slot(k.as_bytes()))
        .step_by(97)
        .filter(|&s| s != slot)
        .collect();
    slots.sort_unstable();
    slots.dedup();
    let topo = client.topology();
    let scan = async {
        let opts = ScanOptions::matching("mig:*").count(20);
        let mut cursor = ScanCursor::new();
        let mut seen = HashSet::new();
        while !cursor.is_finished() {
            let (page, next) = match client.scan_page(&cursor, &opts).await {
                Ok(r) => r,
                Err(e) if e.is_retryable() => continue,
                Err(e) => panic!("{e}"),
            };
            seen.extend(page);
            cursor = next;
            tokio::task::yield_now().await;
        }
        seen
    };
    let moves = async {
        for s in &slots {
            let from = topo.primary_for_slot(*s).unwrap().to_string();
            let to = ps.iter().find(|a| **a != from).unwrap().clone();
            move_slot(&cluster, *s, &from, &to).await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    let (seen, ()) = tokio::join!(scan, moves);
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| !seen.contains(k.as_bytes()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} missed: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_multi_key_and_scan() {
    let cluster = cluster().await;
    for resp3 in [false, true] {
        let client = Client::builder(cluster.seeds())
            .resp3(resp3)
            .build()
            .await
            .unwrap();
        let prefix = format!("r{resp3}");
        let mut p = client.pipeline();
        for i in 0..1000 {
            p.cmd("SET").arg(format!("{prefix}:{i}")).arg(i);
        }
        let oks: Vec<String> = p.query().await.unwrap();
        assert!(oks.iter().all(|o| o == "OK"));
        let mut p = client.pipeline();
        for i in (0..1000).rev() {
            p.cmd("GET").arg(format!("{prefix}:{i}"));
        }
        let got: Vec<i64> = p.query().await.unwrap();
        assert_eq!(got, (0..1000).rev().collect::<Vec<i64>>());

        let keys: Vec<String> = (0..100).map(|i| format!("{prefix}:{i}")).collect();
        let vals: Vec<Option<i64>> = client
            .cmd("MGET")
            .args(&keys)
            .arg("nope")
            .query()
            .await
            .unwrap();
        assert_eq!(vals.len(), 101);
        assert!(vals[..100]
            .iter()
            .enumerate()
            .all(|(i, v)| *v == Some(i as i64)));
        assert_eq!(vals[100], None);
        let mut mset = client.cmd("MSET");
        for k in &keys {
            mset = mset.arg(k).arg("x");
        }
        mset.query::<()>().await.unwrap();
        let n: i64 = client.cmd("EXISTS").args(&keys).query().await.unwrap();
        assert_eq!(n, 100);
        let n: i64 = client.cmd("DEL").args(&keys[..40]).query().await.unwrap();
        assert_eq!(n, 40);
        let e = client
            .cmd("MSETNX")
            .arg("a")
            .arg(1)
            .arg("b")
            .arg(2)
            .query::<i64>()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::CrossSlot);

        let found: HashSet<bytes::Bytes> = client
            .scan_match(&format!("{prefix}:*"))
            .try_collect()
            .await
            .unwrap();
        assert_eq!(found.len(), 960);
        // Resumable from a kept cursor, with COUNT and TYPE.
        let opts = ScanOptions::matching(&format!("{prefix}:*"))
            .count(10)
            .key_type("string");
        let (first, cursor) = client.scan_page(&ScanCursor::new(), &opts).await.unwrap();
        let kept = cursor.to_string();
        let rest: Vec<bytes::Bytes> = client
            .scan_with(opts, kept.parse().unwrap())
            .try_collect()
            .await
            .unwrap();
        let all: HashSet<bytes::Bytes> = first.into_iter().chain(rest).collect();
        assert_eq!(all, found);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions() {
    let cluster = cluster().await;
    let client = Client::builder(cluster.seeds()).build().await.unwrap();

    // Per-node commands: each node's own reply, by address.
    let all = client
        .cmd("PING")
        .query_per_node::<String>(redcluster::Nodes::All)
        .await;
    assert_eq!(all.len(), 6);
    assert!(
        all.iter().all(|(_, r)| r.as_deref().ok() == Some("PONG")),
        "{all:?}"
    );
    let roles = client
        .cmd("INFO")
        .arg("replication")
        .query_per_node::<String>(redcluster::Nodes::Primaries)
        .await;
    assert_eq!(roles.len(), 3);
    for (addr, r) in &roles {
        assert!(r.as_ref().unwrap().contains("role:master"), "{addr}: {r:?}");
    }

    let mut tx = client.transaction();
    tx.cmd("SET").arg("{t}k").arg(1).cmd("INCR").arg("{t}k");
    let r: Option<((), i64)> = tx.exec().await.unwrap();
    assert_eq!(r, Some(((), 2)));
    let mut tx = client.transaction();
    tx.watch(["{t}k"]).await.unwrap();
    client.incr("{t}k").await.unwrap();
    tx.cmd("SET").arg("{t}k").arg(0);
    assert_eq!(tx.exec::<((),)>().await.unwrap(), None);
    assert_eq!(client.get::<i64>("{t}k").await.unwrap(), 3);
    let mut tx = client.transaction();
    tx.cmd("SET")
        .arg("{a}k")
        .arg(1)
        .cmd("SET")
        .arg("{b}k")
        .arg(1);
    assert_eq!(
        tx.exec::<()>().await.unwrap_err().kind(),
        ErrorKind::CrossSlot
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_commands_do_not_stall_others() {
    let cluster = cluster().await;
    let client = Client::builder(cluster.seeds())
        .request_timeout(Duration::from_secs(2))
        .build()
        .await
        .unwrap();
    client.set("{t}k", 3).await.unwrap();
    let blocked = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .cmd("BLPOP")
                .arg("{t}q")
                .arg(2)
                .query::<Option<(String, String)>>()
                .await
        })
    };
    // The BLPOP is blocked on its node before the other commands go.
    let owner = client
        .topology()
        .primary_for_slot(redcluster::slot::key_slot(b"{t}q"))
        .unwrap()
        .to_string();
    eventually("the BLPOP is blocked on its node", || async {
        text(&node_cmd(&owner, &["INFO", "clients"]).await).contains("blocked_clients:1\r\n")
    })
    .await;
    for _ in 0..20 {
        assert_eq!(client.get::<i64>("{t}k").await.unwrap(), 3);
    }
    client.rpush("{t}q", "x").await.unwrap();
    assert_eq!(
        blocked.await.unwrap().unwrap(),
        Some(("{t}q".to_string(), "x".to_string()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_on_the_bundled_cluster() {
    let cluster = cluster().await;
    let client = Client::builder(cluster.seeds()).build().await.unwrap();
    let mut sub = client.subscribe(["chan"]).await.unwrap();
    let mut ssub = client.ssubscribe(["{s}chan"]).await.unwrap();
    publish_until(
        &mut sub,
        LIMIT,
        |_| async { client.publish("chan", "hello").await.unwrap() },
        |seen| {
            seen.iter()
                .any(|m| m.kind == MessageKind::Message && &m.payload[..] == b"hello")
        },
    )
    .await;
    publish_until(
        &mut ssub,
        LIMIT,
        |_| async { client.spublish("{s}chan", "shard").await.unwrap() },
        |seen| {
            seen.iter()
                .any(|m| m.kind == MessageKind::Sharded && &m.payload[..] == b"shard")
        },
    )
    .await;

    // Move the shard channel's slot: the old owner drops the subscription, the client
    // reports a gap, resubscribes on the new owner and receives again.
    let slot = redcluster::slot::key_slot(b"{s}chan");
    let src = client
        .topology()
        .primary_for_slot(slot)
        .unwrap()
        .to_string();
    let dst = primaries(&cluster)
        .into_iter()
        .map(|(a, _)| a)
        .find(|a| *a != src)
        .unwrap();
    move_slot(&cluster, slot, &src, &dst).await;
    let seen = publish_until(
        &mut ssub,
        LIMIT,
        |_| async { client.spublish("{s}chan", "moved").await.unwrap() },
        resubscribed_then(b"moved"),
    )
    .await;
    let gap = seen.iter().position(|m| m.kind == MessageKind::Gap);
    let back = seen
        .iter()
        .position(|m| m.kind == MessageKind::Resubscribed);
    assert!(gap.is_some() && gap < back, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_subscription_follows_a_bundled_failover() {
    let cluster = cluster().await;
    let client = Client::builder(cluster.seeds())
        .refresh_interval(Some(Duration::from_secs(1)))
        .build()
        .await
        .unwrap();
    let ch = "{fo}chan";
    let mut sub = client.ssubscribe([ch]).await.unwrap();
    let owner = client
        .topology()
        .primary_for_slot(redcluster::slot::key_slot(ch.as_bytes()))
        .unwrap()
        .to_string();
    let nodes = cluster.nodes();
    let owner_id = nodes
        .iter()
        .find(|n| n.addr.to_string() == owner)
        .unwrap()
        .id
        .clone();
    let replica = nodes
        .iter()
        .position(|n| n.primary_id.as_deref() == Some(owner_id.as_str()))
        .expect("the owner has a replica");
    // Received before the failover ...
    publish_until(
        &mut sub,
        LIMIT,
        |_| async { client.spublish(ch, "before").await.unwrap() },
        last_is(MessageKind::Sharded),
    )
    .await;
    cluster
        .failover(replica, redcluster::server::FailoverMode::Default)
        .await
        .unwrap();
    // ... and after it, once the subscription moved (a Gap, then Resubscribed).
    let seen = publish_until(
        &mut sub,
        Duration::from_secs(20),
        |_| async {
            let _ = client.spublish(ch, "after").await;
        },
        resubscribed_then(b"after"),
    )
    .await;
    let gap = seen.iter().position(|m| m.kind == MessageKind::Gap);
    let back = seen
        .iter()
        .position(|m| m.kind == MessageKind::Resubscribed);
    assert!(gap.is_some() && gap < back, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_follow_ask_during_a_migration() {
    let cluster = cluster().await;
    let client = Client::builder(cluster.seeds())
        .refresh_interval(None)
        .request_timeout(Duration::from_secs(2))
        .build()
        .await
        .unwrap();
    for k in ["{mtx}a", "{mtx}b", "{mtx}c"] {
        client.set(k, 10).await.unwrap();
    }
    let slot = redcluster::slot::key_slot(b"mtx");
    let src = client
        .topology()
        .primary_for_slot(slot)
        .unwrap()
        .to_string();
    let dst = primaries(&cluster)
        .into_iter()
        .map(|(a, _)| a)
        .find(|a| *a != src)
        .unwrap();
    start_migration(&cluster, slot, &src, &dst).await;
    migrate_keys(&src, &dst, &["{mtx}a", "{mtx}b"]).await;

    // Every key on dst: the block goes there behind ASKING.
    let mut tx = client.transaction();
    tx.cmd("INCR").arg("{mtx}a").cmd("INCR").arg("{mtx}b");
    assert_eq!(tx.exec::<(i64, i64)>().await.unwrap(), Some((11, 11)));
    // A key on each side: refused everywhere until the deadline, nothing applied.
    let mut tx = client.transaction();
    tx.cmd("INCR").arg("{mtx}a").cmd("INCR").arg("{mtx}c");
    let e = tx.exec::<(i64, i64)>().await.unwrap_err();
    assert_eq!(e.code(), Some("TRYAGAIN"), "{e}");
    // Finish the migration while the same transaction is retried: it lands once.
    let finish = async {
        // Kept: lets the transaction below be refused (TRYAGAIN) at least once before the
        // migration ends; the result does not depend on the timing.
        tokio::time::sleep(Duration::from_millis(60)).await;
        migrate_keys(&src, &dst, &["{mtx}c"]).await;
        finish_migration(&cluster, slot, &dst).await;
    };
    let retried = async {
        let mut tx = client.transaction();
        tx.cmd("INCR").arg("{mtx}a").cmd("INCR").arg("{mtx}c");
        tx.exec::<(i64, i64)>().await.unwrap()
    };
    let ((), r) = tokio::join!(finish, retried);
    assert_eq!(r, Some((12, 11)));

    for (k, v) in [("{mtx}a", 12), ("{mtx}b", 11), ("{mtx}c", 11)] {
        assert_eq!(client.get::<i64>(k).await.unwrap(), v, "{k}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_subscription_takes_and_drops_channels() {
    let cluster = cluster().await;
    let client = Client::builder(cluster.seeds()).build().await.unwrap();
    let mut sub = client.subscribe(["live:a"]).await.unwrap();
    // Additions return once confirmed: messages published right after arrive.
    sub.subscribe(["live:b"]).await.unwrap();
    sub.psubscribe(["livep:*"]).await.unwrap();
    sub.ssubscribe(["{live}s"]).await.unwrap();
    // live:a went out first on the same connection as live:b: confirmed too by now.
    client.publish("live:a", "0").await.unwrap();
    client.publish("live:b", "1").await.unwrap();
    client.publish("livep:x", "2").await.unwrap();
    client.spublish("{live}s", "3").await.unwrap();
    let mut got = HashSet::new();
    while got.len() < 4 {
        let m = tokio::time::timeout(Duration::from_secs(5), sub.next_message())
            .await
            .expect("a published message")
            .unwrap();
        got.insert((m.kind, m.channel, m.payload));
    }
    let want: HashSet<_> = [
        (MessageKind::Message, "live:a", "0"),
        (MessageKind::Message, "live:b", "1"),
        (MessageKind::Pattern, "livep:x", "2"),
        (MessageKind::Sharded, "{live}s", "3"),
    ]
    .into_iter()
    .map(|(k, c, p)| (k, bytes::Bytes::from(c), bytes::Bytes::from(p)))
    .collect();
    assert_eq!(got, want);

    // Removals: nothing for them from the call on; a later message on a kept channel
    // comes through, and is the next one.
    sub.unsubscribe(["live:a"]).unwrap();
    sub.punsubscribe(["livep:*"]).unwrap();
    sub.sunsubscribe(["{live}s"]).unwrap();
    client.publish("live:a", "gone").await.unwrap();
    client.publish("livep:y", "gone").await.unwrap();
    client.spublish("{live}s", "gone").await.unwrap();
    client.publish("live:b", "kept").await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), sub.next_message())
        .await
        .expect("the kept channel's message")
        .unwrap();
    assert_eq!(
        (m.channel.as_ref(), m.payload.as_ref()),
        (&b"live:b"[..], &b"kept"[..])
    );
    let after = tokio::time::timeout(Duration::from_millis(300), sub.next_message()).await;
    assert!(after.is_err(), "a message after unsubscribing: {after:?}");
    // The server took the unsubscriptions: no subscriber is left for them.
    let n: i64 = client.publish("live:a", "x").await.unwrap();
    assert_eq!(n, 0);
    let n: i64 = client.spublish("{live}s", "x").await.unwrap();
    assert_eq!(n, 0);
}
