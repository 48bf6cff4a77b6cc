//! Pub/sub on the bundled cluster over real TCP: PUBLISH across nodes, patterns, sharded
//! pub/sub following slot ownership, RESP2 subscribed mode, RESP3 pushes, and the output
//! limit that disconnects a subscriber that does not read.

mod support;

use redcluster::resp::Value;
use redcluster::server::{FailoverMode, Role};
use redcluster::slot::key_slot;
use support::bundled::{cluster as six, owner_index, three_primaries as three};
use support::raw::{parts, text, Client};
use support::wait::eventually;

async fn read_parts(c: &mut Client) -> Vec<String> {
    parts(&c.read().await.expect("a frame"))
}

#[tokio::test]
async fn publish_on_one_node_reaches_subscribers_on_every_node() {
    let cluster = three().await;
    let nodes = cluster.nodes();
    let mut b = Client::connect(nodes[1].addr).await;
    let mut c = Client::connect(nodes[2].addr).await;
    assert_eq!(
        parts(&b.cmd(&["SUBSCRIBE", "news"]).await),
        ["subscribe", "news", "1"]
    );
    assert_eq!(
        parts(&c.cmd(&["SUBSCRIBE", "news"]).await),
        ["subscribe", "news", "1"]
    );
    assert_eq!(
        parts(&c.cmd(&["PSUBSCRIBE", "n*s"]).await),
        ["psubscribe", "n*s", "2"]
    );

    let mut a = Client::connect(nodes[0].addr).await;
    // The reply counts receivers on the publishing node only, as Redis does.
    assert_eq!(
        a.cmd(&["PUBLISH", "news", "hello"]).await,
        Value::Integer(0)
    );
    assert_eq!(read_parts(&mut b).await, ["message", "news", "hello"]);
    assert_eq!(read_parts(&mut c).await, ["message", "news", "hello"]);
    assert_eq!(
        read_parts(&mut c).await,
        ["pmessage", "n*s", "news", "hello"]
    );

    // A channel only the pattern matches; then one nobody listens to.
    assert_eq!(a.cmd(&["PUBLISH", "nests", "x"]).await, Value::Integer(0));
    assert_eq!(a.cmd(&["PUBLISH", "other", "y"]).await, Value::Integer(0));
    let mut local = Client::connect(nodes[1].addr).await;
    assert_eq!(
        local.cmd(&["PUBLISH", "news", "z"]).await,
        Value::Integer(1)
    );
    assert_eq!(read_parts(&mut c).await, ["pmessage", "n*s", "nests", "x"]);
    // Nothing for "other" came in between.
    assert_eq!(read_parts(&mut c).await, ["message", "news", "z"]);
    assert_eq!(read_parts(&mut b).await, ["message", "news", "z"]);

    // Introspection is per node.
    assert_eq!(
        parts(&local.cmd(&["PUBSUB", "NUMSUB", "news", "none"]).await),
        ["news", "1", "none", "0"]
    );
    let mut cc = Client::connect(nodes[2].addr).await;
    assert_eq!(cc.cmd(&["PUBSUB", "NUMPAT"]).await, Value::Integer(1));
    assert_eq!(parts(&cc.cmd(&["PUBSUB", "CHANNELS"]).await), ["news"]);
    assert!(parts(&cc.cmd(&["PUBSUB", "CHANNELS", "x*"]).await).is_empty());
    assert_eq!(
        text(&cc.cmd(&["PUBSUB", "CHANNELS", "a", "b"]).await),
        "ERR unknown subcommand or wrong number of arguments for 'CHANNELS'. Try PUBSUB HELP."
    );

    // A subscriber that leaves is forgotten everywhere it was registered.
    drop(b);
    eventually("the closed subscriber is unregistered", || async {
        let mut probe = Client::connect(nodes[1].addr).await;
        parts(&probe.cmd(&["PUBSUB", "NUMSUB", "news"]).await) == ["news", "0"]
    })
    .await;
}

#[tokio::test]
async fn resp2_subscribed_mode_allows_only_pubsub_commands() {
    let cluster = three().await;
    // The node that owns "foo": routing comes before the subscribed-mode check.
    let addr = cluster.nodes()[owner_index(key_slot(b"foo"))].addr;
    let mut c = Client::connect(addr).await;
    c.send(&["SUBSCRIBE", "x", "y"]).await;
    assert_eq!(read_parts(&mut c).await, ["subscribe", "x", "1"]);
    assert_eq!(read_parts(&mut c).await, ["subscribe", "y", "2"]);
    assert_eq!(
        c.text(&["GET", "foo"]).await,
        "ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET \
         are allowed in this context"
    );
    assert_eq!(
        c.text(&["CLIENT", "ID"]).await,
        "ERR Can't execute 'client|id': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / \
         RESET are allowed in this context"
    );
    assert_eq!(parts(&c.cmd(&["PING"]).await), ["pong", ""]);
    assert_eq!(parts(&c.cmd(&["PING", "hi"]).await), ["pong", "hi"]);
    assert_eq!(
        parts(&c.cmd(&["PSUBSCRIBE", "f*"]).await),
        ["psubscribe", "f*", "3"]
    );
    // No arguments: one reply per subscription, in subscription order here.
    c.send(&["UNSUBSCRIBE"]).await;
    assert_eq!(read_parts(&mut c).await, ["unsubscribe", "x", "2"]);
    assert_eq!(read_parts(&mut c).await, ["unsubscribe", "y", "1"]);
    assert_eq!(
        parts(&c.cmd(&["UNSUBSCRIBE"]).await),
        ["unsubscribe", "(nil)", "1"]
    );
    assert_eq!(
        parts(&c.cmd(&["PUNSUBSCRIBE", "nope"]).await),
        ["punsubscribe", "nope", "1"]
    );
    assert_eq!(
        parts(&c.cmd(&["PUNSUBSCRIBE"]).await),
        ["punsubscribe", "f*", "0"]
    );
    assert_eq!(
        parts(&c.cmd(&["PUNSUBSCRIBE"]).await),
        ["punsubscribe", "(nil)", "0"]
    );
    assert_eq!(
        parts(&c.cmd(&["SUNSUBSCRIBE"]).await),
        ["sunsubscribe", "(nil)", "0"]
    );
    // Out of subscribed mode: commands work again.
    assert_eq!(c.cmd(&["GET", "foo"]).await, Value::Null);
    assert_eq!(
        c.text(&["SUBSCRIBE"]).await,
        "ERR wrong number of arguments for 'subscribe' command"
    );
    // RESET ends every subscription.
    c.cmd(&["SUBSCRIBE", "z"]).await;
    assert_eq!(c.text(&["RESET"]).await, "RESET");
    assert_eq!(c.text(&["PING"]).await, "PONG");
    let mut probe = Client::connect(addr).await;
    assert_eq!(
        parts(&probe.cmd(&["PUBSUB", "NUMSUB", "z"]).await),
        ["z", "0"]
    );
}

#[tokio::test]
async fn resp3_pushes_mix_with_replies() {
    let cluster = three().await;
    let nodes = cluster.nodes();
    let mut c = Client::connect(nodes[0].addr).await;
    c.cmd(&["HELLO", "3"]).await;
    let sub = c.cmd(&["SUBSCRIBE", "ch"]).await;
    assert!(matches!(sub, Value::Push(_)), "{sub:?}");
    assert_eq!(parts(&sub), ["subscribe", "ch", "1"]);
    // Normal commands still work, PING is a plain PONG.
    assert_eq!(c.text(&["PING"]).await, "PONG");
    let info = c.text(&["CLIENT", "INFO"]).await;
    assert!(info.contains(" flags=P "), "{info}");
    assert!(info.contains(" sub=1 psub=0 ssub=0 "), "{info}");
    assert_eq!(c.text(&["SET", "hello", "v"]).await, "OK");

    let mut p = Client::connect(nodes[2].addr).await;
    assert_eq!(p.cmd(&["PUBLISH", "ch", "m1"]).await, Value::Integer(0));
    // The push and the reply to GET both arrive, each as its own type.
    c.send(&["GET", "hello"]).await;
    let first = c.read().await.unwrap();
    let second = c.read().await.unwrap();
    let (push, reply) = if matches!(first, Value::Push(_)) {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(parts(&push), ["message", "ch", "m1"]);
    assert!(matches!(push, Value::Push(_)));
    assert_eq!(text(&reply), "v");

    let unsub = c.cmd(&["UNSUBSCRIBE"]).await;
    assert!(matches!(unsub, Value::Push(_)));
    assert_eq!(parts(&unsub), ["unsubscribe", "ch", "0"]);
}

#[tokio::test]
async fn sharded_pubsub_follows_the_slot_and_reaches_replicas() {
    let cluster = six().await;
    let nodes = cluster.nodes();
    let slot = key_slot(b"foo");
    let owner = &nodes[owner_index(slot)];
    let other = &nodes[(owner_index(slot) + 1) % 3];
    let replica = nodes
        .iter()
        .find(|n| n.role == Role::Replica && n.primary_id.as_deref() == Some(&owner.id))
        .expect("a replica of the owner");

    let mut wrong = Client::connect(other.addr).await;
    let moved = format!("MOVED {slot} {}", owner.addr);
    assert_eq!(wrong.text(&["SSUBSCRIBE", "foo"]).await, moved);
    assert_eq!(wrong.text(&["SPUBLISH", "foo", "m"]).await, moved);
    assert_eq!(
        wrong.text(&["SSUBSCRIBE", "foo", "bar"]).await,
        "CROSSSLOT Keys in request don't hash to the same slot"
    );

    let mut s1 = Client::connect(owner.addr).await;
    s1.send(&["SSUBSCRIBE", "foo", "{foo}2"]).await;
    assert_eq!(read_parts(&mut s1).await, ["ssubscribe", "foo", "1"]);
    assert_eq!(read_parts(&mut s1).await, ["ssubscribe", "{foo}2", "2"]);
    // Replicas serve shard subscriptions without READONLY, like Redis 7.
    let mut s2 = Client::connect(replica.addr).await;
    assert_eq!(
        parts(&s2.cmd(&["SSUBSCRIBE", "foo"]).await),
        ["ssubscribe", "foo", "1"]
    );

    let mut p = Client::connect(owner.addr).await;
    assert_eq!(p.cmd(&["SPUBLISH", "foo", "m1"]).await, Value::Integer(1));
    assert_eq!(read_parts(&mut s1).await, ["smessage", "foo", "m1"]);
    assert_eq!(read_parts(&mut s2).await, ["smessage", "foo", "m1"]);
    // Published on the replica: delivered to the whole shard too.
    let mut pr = Client::connect(replica.addr).await;
    assert_eq!(pr.cmd(&["SPUBLISH", "foo", "m2"]).await, Value::Integer(1));
    assert_eq!(read_parts(&mut s1).await, ["smessage", "foo", "m2"]);
    assert_eq!(read_parts(&mut s2).await, ["smessage", "foo", "m2"]);
    // A plain PUBLISH of the same name is another namespace; it reaches replicas too.
    let mut plain = Client::connect(replica.addr).await;
    plain.cmd(&["SUBSCRIBE", "foo"]).await;
    assert_eq!(p.cmd(&["PUBLISH", "foo", "plain"]).await, Value::Integer(0));
    assert_eq!(read_parts(&mut plain).await, ["message", "foo", "plain"]);
    assert_eq!(
        parts(&p.cmd(&["PUBSUB", "SHARDNUMSUB", "foo", "bar"]).await),
        ["foo", "1", "bar", "0"]
    );
    let mut chans = parts(&p.cmd(&["PUBSUB", "SHARDCHANNELS"]).await);
    chans.sort();
    assert_eq!(chans, ["foo", "{foo}2"]);
    assert_eq!(
        parts(&s1.cmd(&["SUNSUBSCRIBE", "{foo}2"]).await),
        ["sunsubscribe", "{foo}2", "1"]
    );
    assert_eq!(
        p.cmd(&["SPUBLISH", "{foo}2", "gone"]).await,
        Value::Integer(0)
    );
    assert_eq!(p.cmd(&["SPUBLISH", "foo", "m3"]).await, Value::Integer(1));
    assert_eq!(read_parts(&mut s1).await, ["smessage", "foo", "m3"]);
}

#[tokio::test]
async fn shard_subscribers_are_told_when_their_slot_moves() {
    let cluster = three().await;
    let nodes = cluster.nodes();
    let slot = key_slot(b"foo");
    let (src, dst) = (
        &nodes[owner_index(slot)],
        &nodes[(owner_index(slot) + 1) % 3],
    );
    let s = slot.to_string();
    let mut to = Client::connect(dst.addr).await;
    let mut from = Client::connect(src.addr).await;
    assert_eq!(
        to.text(&["CLUSTER", "SETSLOT", &s, "IMPORTING", &src.id])
            .await,
        "OK"
    );
    assert_eq!(
        from.text(&["CLUSTER", "SETSLOT", &s, "MIGRATING", &dst.id])
            .await,
        "OK"
    );
    // While migrating, channels stay with the source (they are not keys: no ASK).
    let mut sub = Client::connect(src.addr).await;
    sub.send(&["SSUBSCRIBE", "foo", "{foo}2"]).await;
    read_parts(&mut sub).await;
    read_parts(&mut sub).await;
    assert_eq!(
        parts(&sub.cmd(&["SUBSCRIBE", "foo"]).await),
        ["subscribe", "foo", "1"]
    );

    assert_eq!(from.cmd(&["SPUBLISH", "foo", "m"]).await, Value::Integer(1));
    assert_eq!(read_parts(&mut sub).await, ["smessage", "foo", "m"]);
    for admin in [&mut to, &mut from] {
        assert_eq!(
            admin
                .text(&["CLUSTER", "SETSLOT", &s, "NODE", &dst.id])
                .await,
            "OK"
        );
    }
    assert_eq!(read_parts(&mut sub).await, ["sunsubscribe", "foo", "1"]);
    assert_eq!(read_parts(&mut sub).await, ["sunsubscribe", "{foo}2", "0"]);
    // Still subscribed to the plain channel, so still in subscribed mode.
    assert_eq!(parts(&sub.cmd(&["PING"]).await), ["pong", ""]);
    assert_eq!(
        sub.text(&["SSUBSCRIBE", "foo"]).await,
        format!("MOVED {slot} {}", dst.addr)
    );
    let mut moved = Client::connect(dst.addr).await;
    assert_eq!(
        parts(&moved.cmd(&["SSUBSCRIBE", "foo"]).await),
        ["ssubscribe", "foo", "1"]
    );
}

#[tokio::test]
async fn a_subscriber_that_does_not_read_is_disconnected() {
    let cluster = three().await;
    let addr = cluster.nodes()[0].addr;
    let mut sub = Client::connect(addr).await;
    assert_eq!(
        parts(&sub.cmd(&["SUBSCRIBE", "big"]).await),
        ["subscribe", "big", "1"]
    );
    // 48 MiB of messages to a client that reads none: past the 32 MiB limit even after the
    // kernel's socket buffers took their share.
    let payload = "x".repeat(1024 * 1024);
    let mut p = Client::connect(addr).await;
    for _ in 0..48 {
        p.cmd(&["PUBLISH", "big", &payload]).await;
    }
    eventually("the slow subscriber is dropped", || async {
        let mut probe = Client::connect(addr).await;
        parts(&probe.cmd(&["PUBSUB", "NUMSUB", "big"]).await) == ["big", "0"]
    })
    .await;
    // The publisher's connection is unaffected.
    assert_eq!(p.cmd(&["PUBLISH", "big", "x"]).await, Value::Integer(0));
}

#[tokio::test]
async fn a_failover_ends_shard_subscriptions_in_the_shard() {
    let cluster = six().await;
    let slot = key_slot(b"foo");
    let primary = cluster.primary_index_of_slot(slot).unwrap();
    let replica = cluster.replica_indexes_of(primary)[0];
    let nodes = cluster.nodes();
    let mut on_primary = Client::connect(nodes[primary].addr).await;
    let mut on_replica = Client::connect(nodes[replica].addr).await;
    for c in [&mut on_primary, &mut on_replica] {
        assert_eq!(
            parts(&c.cmd(&["SSUBSCRIBE", "foo"]).await),
            ["ssubscribe", "foo", "1"]
        );
    }
    cluster
        .failover(replica, FailoverMode::Default)
        .await
        .unwrap();
    // The slot changed hands: both sides of the shard tell their subscribers, as Redis 7.0
    // does when it deletes a slot it served.
    assert_eq!(
        read_parts(&mut on_primary).await,
        ["sunsubscribe", "foo", "0"]
    );
    assert_eq!(
        read_parts(&mut on_replica).await,
        ["sunsubscribe", "foo", "0"]
    );
    // Subscribing again on the new primary works and gets messages.
    assert_eq!(
        parts(&on_replica.cmd(&["SSUBSCRIBE", "foo"]).await),
        ["ssubscribe", "foo", "1"]
    );
    let mut p = Client::connect(nodes[replica].addr).await;
    assert_eq!(
        p.cmd(&["SPUBLISH", "foo", "after"]).await,
        Value::Integer(1)
    );
    assert_eq!(
        read_parts(&mut on_replica).await,
        ["smessage", "foo", "after"]
    );
}
