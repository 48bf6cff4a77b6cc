//! Pub/sub on a real 3+3 cluster: SUBSCRIBE/PSUBSCRIBE/SSUBSCRIBE, resubscription after the
//! server kills the subscriber connections, and sharded pub/sub across a CLUSTER FAILOVER.

mod support;

use std::time::Duration;

use redcluster::{Client, MessageKind};
use support::pubsub::{drain, last_is, next, publish_until, resubscribed_then};
use support::real_cluster::RealCluster;
use support::wait::{eventually, wait_until};

/// How long a test publishes before giving up on a message.
const LIMIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_receive_and_survive_killed_connections() {
    let Some(c) = RealCluster::start(3, 0) else {
        return;
    };
    let client = Client::builder(c.seeds()).build().await.unwrap();
    let mut sub = client.subscribe(["news"]).await.unwrap();
    let mut psub = client.psubscribe(["ev:*"]).await.unwrap();
    let mut ssub = client.ssubscribe(["{room}a", "{other}b"]).await.unwrap();
    // Subscriptions are confirmed asynchronously: publish until the first arrives.
    let got = publish_until(
        &mut sub,
        LIMIT,
        |i| {
            let c = client.clone();
            async move { c.publish("news", format!("m{i}")).await.unwrap() }
        },
        last_is(MessageKind::Message),
    )
    .await;
    let m = got.last().unwrap();
    assert_eq!(&m.channel[..], b"news");
    assert!(m.payload.starts_with(b"m"));
    client.publish("ev:login", "alice").await.unwrap();
    let m = next(&mut psub, Duration::from_secs(5)).await.unwrap();
    assert_eq!(m.kind, MessageKind::Pattern);
    assert_eq!(m.pattern.as_deref(), Some(&b"ev:*"[..]));
    assert_eq!(
        (&m.channel[..], &m.payload[..]),
        (&b"ev:login"[..], &b"alice"[..])
    );
    for ch in ["{room}a", "{other}b"] {
        let got = publish_until(
            &mut ssub,
            LIMIT,
            |i| {
                let c = client.clone();
                async move { c.spublish(ch, format!("m{i}")).await.unwrap() }
            },
            last_is(MessageKind::Sharded),
        )
        .await;
        assert_eq!(&got.last().unwrap().channel[..], ch.as_bytes());
        drain(&mut ssub).await;
    }

    // RESP3: messages arrive as push frames and reach the subscription.
    let client3 = Client::builder(c.seeds())
        .resp3(true)
        .build()
        .await
        .unwrap();
    let mut sub3 = client3.ssubscribe(["{room}a"]).await.unwrap();
    let got = publish_until(
        &mut sub3,
        LIMIT,
        |i| {
            let c = client3.clone();
            async move { c.spublish("{room}a", format!("m{i}")).await.unwrap() }
        },
        last_is(MessageKind::Sharded),
    )
    .await;
    assert_eq!(&got.last().unwrap().channel[..], b"{room}a");
    drop(sub3);
    drain(&mut ssub).await;

    // The server drops every subscriber connection: a Gap, then Resubscribed, then messages.
    for n in &c.nodes {
        n.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    }
    let got = publish_until(
        &mut ssub,
        LIMIT,
        |i| {
            let c = client.clone();
            async move { c.spublish("{room}a", format!("m{i}")).await.unwrap() }
        },
        last_is(MessageKind::Sharded),
    )
    .await;
    let kinds: Vec<MessageKind> = got.iter().map(|m| m.kind).collect();
    let gap = kinds.iter().position(|k| *k == MessageKind::Gap);
    let back = kinds.iter().position(|k| *k == MessageKind::Resubscribed);
    assert!(gap.is_some() && back.is_some() && gap < back, "{got:?}");
    let got = publish_until(
        &mut sub,
        LIMIT,
        |i| {
            let c = client.clone();
            async move { c.publish("news", format!("m{i}")).await.unwrap() }
        },
        last_is(MessageKind::Message),
    )
    .await;
    assert!(got.iter().any(|m| m.kind == MessageKind::Gap), "{got:?}");
    assert!(
        got.iter().any(|m| m.kind == MessageKind::Resubscribed),
        "{got:?}"
    );

    // The shard channel's (empty) slot is given to another primary: the old owner drops the
    // subscription (sunsubscribe), the client moves it to the new owner.
    drain(&mut ssub).await;
    let slot = redcluster::slot::key_slot(b"{room}a");
    let src = c.primary_index_for_slot(slot);
    let dst = (0..3).find(|&i| i != src).unwrap();
    let dst_id = c.nodes[dst].cli(&["CLUSTER", "MYID"]).trim().to_string();
    for i in [dst, src, 3 - src - dst] {
        let s = slot.to_string();
        assert_eq!(
            c.nodes[i]
                .cli(&["CLUSTER", "SETSLOT", &s, "NODE", &dst_id])
                .trim(),
            "OK"
        );
    }
    let got = publish_until(
        &mut ssub,
        LIMIT,
        |i| {
            let c = client.clone();
            async move { c.spublish("{room}a", format!("m{i}")).await.unwrap() }
        },
        last_is(MessageKind::Sharded),
    )
    .await;
    let gap = got.iter().position(|m| m.kind == MessageKind::Gap);
    let back = got.iter().position(|m| m.kind == MessageKind::Resubscribed);
    assert!(gap.is_some() && gap < back, "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_subscription_follows_a_failover() {
    let Some(c) = RealCluster::start(3, 1) else {
        return;
    };
    let client = Client::builder(c.seeds())
        .refresh_interval(Some(Duration::from_secs(1)))
        .build()
        .await
        .unwrap();
    let ch = "{fo}chan";
    let slot = redcluster::slot::key_slot(ch.as_bytes());
    let primary = c.primary_index_for_slot(slot);
    let pport = format!("master_port:{}", c.nodes[primary].port);
    let replica = (3..c.nodes.len())
        .find(|&i| c.nodes[i].cli(&["INFO", "replication"]).contains(&pport))
        .expect("the primary has a replica");
    let mut sub = client.ssubscribe([ch]).await.unwrap();
    // Receiving before the failover.
    publish_until(
        &mut sub,
        Duration::from_secs(10),
        |_| async { client.spublish(ch, "before").await.unwrap() },
        last_is(MessageKind::Sharded),
    )
    .await;
    // With ReplicaPreferred the shard subscription is served by the replica.
    let reader = Client::builder(c.seeds())
        .read_from(redcluster::ReadFrom::ReplicaPreferred)
        .build()
        .await
        .unwrap();
    let mut rsub = reader.ssubscribe([ch]).await.unwrap();
    publish_until(
        &mut rsub,
        Duration::from_secs(10),
        |_| async { client.spublish(ch, "via-replica").await.unwrap() },
        last_is(MessageKind::Sharded),
    )
    .await;
    let pubsub_clients = c.nodes[replica].cli(&["CLIENT", "LIST", "TYPE", "pubsub"]);
    assert!(
        pubsub_clients.contains("cmd=ssubscribe"),
        "{pubsub_clients}"
    );
    drop(rsub);
    assert_eq!(c.nodes[replica].cli(&["CLUSTER", "FAILOVER"]).trim(), "OK");
    wait_until(Duration::from_secs(20), || {
        c.nodes[replica]
            .cli(&["INFO", "replication"])
            .contains("role:master")
    });
    // Keep publishing (the client follows the new primary) until a message arrives after
    // the subscription moved.
    let seen = publish_until(
        &mut sub,
        Duration::from_secs(20),
        |i| {
            let c = client.clone();
            async move {
                let _ = c.spublish(ch, format!("after{i}")).await;
            }
        },
        resubscribed_then(b"after"),
    )
    .await;
    let gap = seen.iter().position(|m| m.kind == MessageKind::Gap);
    let back = seen
        .iter()
        .position(|m| m.kind == MessageKind::Resubscribed);
    assert!(gap.is_some() && gap < back, "{seen:?}");
    // The client's map converges on the new primary (periodic refresh every second).
    let new_primary = format!("127.0.0.1:{}", c.nodes[replica].port);
    let what = format!(
        "the map names the new primary {new_primary} (old 127.0.0.1:{})",
        c.nodes[primary].port
    );
    eventually(&what, || async {
        client.topology().primary_for_slot(slot) == Some(new_primary.as_str())
    })
    .await;
}
