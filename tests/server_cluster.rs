//! Cluster behaviour of the bundled server over real TCP: redirects, CLUSTER reply formats,
//! slot migration states, and forming a cluster by hand the way `redis-cli --cluster create`
//! does.

mod support;

use redcluster::resp::Value;
use redcluster::server::{Role, TestCluster};
use redcluster::slot::key_slot;
use support::bundled::{cluster as six, owner_index, three_primaries};
use support::raw::{text, Client};
use support::wait::eventually;

#[tokio::test]
async fn layout_matches_redis_cli_create() {
    let cluster = six().await;
    let nodes = cluster.nodes();
    assert_eq!(nodes.len(), 6);
    for (i, n) in nodes.iter().enumerate() {
        assert_eq!(n.id.len(), 40);
        assert!(n.id.bytes().all(|b| b.is_ascii_hexdigit()));
        if i < 3 {
            assert_eq!(n.role, Role::Primary);
            assert_eq!(n.primary_id, None);
            let expect = [0..=5460, 5461..=10922, 10923..=16383];
            assert_eq!(n.slots, vec![expect[i].clone()]);
        } else {
            assert_eq!(n.role, Role::Replica);
            assert!(n.slots.is_empty());
            assert_eq!(n.primary_id.as_deref(), Some(nodes[i - 3].id.as_str()));
        }
    }
    let mut c = Client::connect(nodes[4].addr).await;
    let info = c.text(&["CLUSTER", "INFO"]).await;
    assert!(
        info.starts_with(
            "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\n"
        ),
        "{info}"
    );
    assert!(
        info.contains("cluster_known_nodes:6\r\ncluster_size:3\r\n"),
        "{info}"
    );
    assert_eq!(c.text(&["CLUSTER", "MYID"]).await, nodes[4].id);
    // A replica is in its primary's shard.
    let mut p1 = Client::connect(nodes[1].addr).await;
    assert_eq!(
        c.text(&["CLUSTER", "MYSHARDID"]).await,
        p1.text(&["CLUSTER", "MYSHARDID"]).await
    );

    // CLUSTER SLOTS: ranges 0-5460, 5461-10922, 10923-16383, primary then replica.
    let Value::Array(slots) = c.cmd(&["CLUSTER", "SLOTS"]).await else {
        panic!("array")
    };
    let expect = [(0, 5460), (5461, 10922), (10923, 16383)];
    assert_eq!(slots.len(), 3);
    for (i, entry) in slots.iter().enumerate() {
        let Value::Array(e) = entry else {
            panic!("entry")
        };
        assert_eq!(e[0], Value::Integer(expect[i].0));
        assert_eq!(e[1], Value::Integer(expect[i].1));
        for (node, idx) in [(&e[2], i), (&e[3], i + 3)] {
            assert_eq!(
                *node,
                Value::Array(vec![
                    Value::bulk("127.0.0.1"),
                    Value::Integer(i64::from(nodes[idx].addr.port())),
                    Value::bulk(&nodes[idx].id),
                    Value::Array(vec![]),
                ])
            );
        }
    }
    // The empty networking map is `*0` in RESP2, as Redis 7.0 sends it.
    let raw = c.cmd_raw(&["CLUSTER", "SLOTS"]).await;
    assert!(raw.starts_with(b"*3\r\n*4\r\n:0\r\n:5460\r\n*4\r\n$9\r\n127.0.0.1\r\n:"));

    // CLUSTER NODES: one line per node, `myself` on this one, replicas point at primaries.
    let text_nodes = c.text(&["CLUSTER", "NODES"]).await;
    let lines: Vec<&str> = text_nodes.lines().collect();
    assert_eq!(lines.len(), 6);
    for n in &nodes {
        let line = lines.iter().find(|l| l.starts_with(&n.id)).expect("listed");
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f[1], format!("{}@{}", n.addr, n.addr.port() + 10000));
        assert_eq!(f[7], "connected");
        match n.role {
            Role::Primary => assert!(f[2].ends_with("master") && f[3] == "-"),
            _ => assert!(f[2].ends_with("slave") && f[3] == n.primary_id.as_deref().unwrap()),
        }
        assert_eq!(f[2].starts_with("myself,"), n.id == nodes[4].id);
    }
    assert!(text_nodes.contains(" 0-5460\n") && text_nodes.contains(" 10923-16383\n"));

    // CLUSTER SHARDS: a map per shard with its slots and nodes.
    let Value::Array(shards) = c.cmd(&["CLUSTER", "SHARDS"]).await else {
        panic!("array")
    };
    assert_eq!(shards.len(), 3);
    for shard in &shards {
        let Value::Array(kv) = shard else {
            panic!("RESP2 map is a flat array")
        };
        assert_eq!(kv[0], Value::bulk("slots"));
        assert_eq!(kv[2], Value::bulk("nodes"));
        let Value::Array(members) = &kv[3] else {
            panic!("nodes")
        };
        assert_eq!(members.len(), 2);
        let Value::Array(first) = &members[0] else {
            panic!("node")
        };
        let keys: Vec<String> = first.iter().step_by(2).map(text).collect();
        assert_eq!(
            keys,
            [
                "id",
                "port",
                "ip",
                "endpoint",
                "role",
                "replication-offset",
                "health"
            ]
        );
    }
    let replicas = c.cmd(&["CLUSTER", "REPLICAS", &nodes[0].id]).await;
    let Value::Array(r) = replicas else {
        panic!("array")
    };
    assert_eq!(r.len(), 1);
    assert!(text(&r[0]).starts_with(&nodes[3].id));
}

#[tokio::test]
async fn moved_crossslot_readonly_and_keyless_commands() {
    let cluster = six().await;
    let nodes = cluster.nodes();
    let slot = key_slot(b"foo");
    let owner = owner_index(slot);
    let other = (owner + 1) % 3;
    let mut wrong = Client::connect(nodes[other].addr).await;
    assert_eq!(
        wrong.text(&["SET", "foo", "bar"]).await,
        format!("MOVED {slot} {}", nodes[owner].addr)
    );
    assert_eq!(
        wrong.text(&["DEL", "foo", "bar"]).await,
        "CROSSSLOT Keys in request don't hash to the same slot"
    );
    assert_eq!(wrong.text(&["PING"]).await, "PONG");
    let mut right = Client::connect(nodes[owner].addr).await;
    assert_eq!(right.text(&["SET", "foo", "bar"]).await, "OK");
    assert_eq!(right.text(&["CLUSTER", "KEYSLOT", "foo"]).await, "12182");
    assert_eq!(
        right.text(&["CLUSTER", "COUNTKEYSINSLOT", "12182"]).await,
        "1"
    );
    assert_eq!(
        right
            .cmd(&["CLUSTER", "GETKEYSINSLOT", "12182", "10"])
            .await,
        Value::Array(vec![Value::bulk("foo")])
    );

    // The replica redirects until READONLY, then serves reads; writes still go to the primary.
    let mut replica = Client::connect(nodes[owner + 3].addr).await;
    assert_eq!(
        replica.text(&["GET", "foo"]).await,
        format!("MOVED {slot} {}", nodes[owner].addr)
    );
    assert_eq!(replica.text(&["READONLY"]).await, "OK");
    eventually("the replica has foo", || {
        let addr = nodes[owner + 3].addr;
        async move {
            let mut c = Client::connect(addr).await;
            c.cmd(&["READONLY"]).await;
            c.text(&["GET", "foo"]).await == "bar"
        }
    })
    .await;
    assert_eq!(replica.text(&["GET", "foo"]).await, "bar");
    assert_eq!(
        replica.text(&["SET", "foo", "x"]).await,
        format!("MOVED {slot} {}", nodes[owner].addr)
    );
    assert_eq!(
        replica.text(&["FLUSHALL"]).await,
        "READONLY You can't write against a read only replica."
    );
    assert_eq!(replica.text(&["READWRITE"]).await, "OK");
    assert_eq!(
        replica.text(&["GET", "foo"]).await,
        format!("MOVED {slot} {}", nodes[owner].addr)
    );
}

#[tokio::test]
async fn ask_redirects_during_slot_migration() {
    let cluster = three_primaries().await;
    let nodes = cluster.nodes();
    let slot = key_slot(b"foo");
    let (src, dst) = (owner_index(slot), (owner_index(slot) + 1) % 3);
    let mut a = Client::connect(nodes[src].addr).await;
    let mut b = Client::connect(nodes[dst].addr).await;
    let s = slot.to_string();
    assert_eq!(
        b.text(&["CLUSTER", "SETSLOT", &s, "IMPORTING", &nodes[src].id])
            .await,
        "OK"
    );
    assert_eq!(
        a.text(&["CLUSTER", "SETSLOT", &s, "MIGRATING", &nodes[dst].id])
            .await,
        "OK"
    );
    assert!(a
        .text(&["CLUSTER", "NODES"])
        .await
        .contains(&format!("[{slot}->-{}]", nodes[dst].id)));
    assert!(b
        .text(&["CLUSTER", "NODES"])
        .await
        .contains(&format!("[{slot}-<-{}]", nodes[src].id)));
    // A missing key in a migrating slot: ASK the destination.
    assert_eq!(
        a.text(&["GET", "foo"]).await,
        format!("ASK {slot} {}", nodes[dst].addr)
    );
    // The destination only serves it after ASKING, and only for the next command.
    assert_eq!(
        b.text(&["GET", "foo"]).await,
        format!("MOVED {slot} {}", nodes[src].addr)
    );
    assert_eq!(b.text(&["ASKING"]).await, "OK");
    assert_eq!(b.text(&["SET", "foo", "moved"]).await, "OK");
    assert_eq!(
        b.text(&["GET", "foo"]).await,
        format!("MOVED {slot} {}", nodes[src].addr)
    );
    // Finish: both sides assign the slot to the destination.
    assert_eq!(
        b.text(&["CLUSTER", "SETSLOT", &s, "NODE", &nodes[dst].id])
            .await,
        "OK"
    );
    assert_eq!(
        a.text(&["CLUSTER", "SETSLOT", &s, "NODE", &nodes[dst].id])
            .await,
        "OK"
    );
    assert_eq!(b.text(&["GET", "foo"]).await, "moved");
    assert_eq!(
        a.text(&["GET", "foo"]).await,
        format!("MOVED {slot} {}", nodes[dst].addr)
    );
    // The third node learns the new owner through gossip (higher config epoch).
    let third = nodes[3 - src - dst].addr;
    let want = format!("MOVED {slot} {}", nodes[dst].addr);
    eventually("gossip spreads the new owner", || {
        let want = want.clone();
        async move { Client::connect(third).await.text(&["GET", "foo"]).await == want }
    })
    .await;
}

#[tokio::test]
async fn forming_a_cluster_by_hand_like_redis_cli() {
    let cluster = TestCluster::builder()
        .unconfigured_nodes(4)
        .start()
        .await
        .unwrap();
    let nodes = cluster.nodes();
    let mut c0 = Client::connect(nodes[0].addr).await;
    assert_eq!(
        c0.text(&["SET", "foo", "bar"]).await,
        "CLUSTERDOWN Hash slot not served"
    );
    let info = c0.text(&["CLUSTER", "INFO"]).await;
    assert!(
        info.starts_with("cluster_state:fail\r\n") && info.contains("cluster_known_nodes:1\r\n")
    );
    let ranges = [("0", "5460"), ("5461", "10922"), ("10923", "16383")];
    for (i, (a, b)) in ranges.iter().enumerate() {
        let mut c = Client::connect(nodes[i].addr).await;
        assert_eq!(c.text(&["CLUSTER", "ADDSLOTSRANGE", a, b]).await, "OK");
        let epoch = (i + 1).to_string();
        assert_eq!(c.text(&["CLUSTER", "SET-CONFIG-EPOCH", &epoch]).await, "OK");
    }
    assert_eq!(
        c0.text(&["CLUSTER", "ADDSLOTS", "0"]).await,
        "ERR Slot 0 is already busy"
    );
    assert_eq!(
        c0.text(&["CLUSTER", "ADDSLOTS", "16384"]).await,
        "ERR Invalid or out of range slot"
    );
    for n in &nodes[1..] {
        let port = n.addr.port().to_string();
        assert_eq!(
            c0.text(&["CLUSTER", "MEET", "127.0.0.1", &port]).await,
            "OK"
        );
    }
    eventually("every node agrees", || {
        let nodes = nodes.clone();
        async move {
            for n in &nodes {
                let info = Client::connect(n.addr)
                    .await
                    .text(&["CLUSTER", "INFO"])
                    .await;
                if !info.starts_with("cluster_state:ok")
                    || !info.contains("cluster_known_nodes:4\r\n")
                {
                    return false;
                }
            }
            true
        }
    })
    .await;
    let mut c3 = Client::connect(nodes[3].addr).await;
    assert_eq!(c3.text(&["CLUSTER", "REPLICATE", &nodes[0].id]).await, "OK");
    assert_eq!(c0.text(&["SET", "hello", "world"]).await, "OK");
    assert_eq!(c0.text(&["WAIT", "1", "5000"]).await, "1");
    c3.cmd(&["READONLY"]).await;
    assert_eq!(c3.text(&["GET", "hello"]).await, "world");
    assert_eq!(
        c0.text(&["CLUSTER", "FORGET", &nodes[0].id]).await,
        "ERR I tried hard but I can't forget myself..."
    );
    assert_eq!(
        c3.text(&["CLUSTER", "FORGET", &nodes[0].id]).await,
        "ERR Can't forget my master!"
    );
    assert_eq!(c0.text(&["CLUSTER", "BUMPEPOCH"]).await, "BUMPED 4");
}

#[tokio::test]
async fn gossip_spreads_nodes_met_through_others() {
    let cluster = TestCluster::builder()
        .unconfigured_nodes(3)
        .start()
        .await
        .unwrap();
    let nodes = cluster.nodes();
    let port = |i: usize| nodes[i].addr.port().to_string();
    let mut c0 = Client::connect(nodes[0].addr).await;
    let mut c1 = Client::connect(nodes[1].addr).await;
    assert_eq!(
        c0.text(&["CLUSTER", "MEET", "127.0.0.1", &port(1)]).await,
        "OK"
    );
    assert_eq!(
        c1.text(&["CLUSTER", "MEET", "127.0.0.1", &port(2), "40000"])
            .await,
        "OK"
    );
    assert_eq!(
        c0.text(&["CLUSTER", "MEET", "127.0.0.1", "notaport"]).await,
        "ERR Invalid TCP base port specified: notaport"
    );
    let addr2 = nodes[2].addr;
    eventually("node 2 learns node 0 through node 1", || async move {
        let nodes = Client::connect(addr2)
            .await
            .text(&["CLUSTER", "NODES"])
            .await;
        nodes.lines().count() == 3
    })
    .await;
}

#[tokio::test]
async fn shutdown_closes_listeners_and_connections() {
    let cluster = three_primaries().await;
    let addr = cluster.seeds()[0];
    let mut c = Client::connect(addr).await;
    assert_eq!(c.text(&["PING"]).await, "PONG");
    cluster.shutdown().await;
    assert_eq!(c.read().await, None, "open connections are closed");
    eventually("the listener is gone", || async move {
        tokio::net::TcpStream::connect(addr).await.is_err()
    })
    .await;
}

#[tokio::test]
async fn resp3_replies_use_verbatim_strings_and_maps() {
    let cluster = three_primaries().await;
    let mut c = Client::connect(cluster.seeds()[0]).await;
    c.cmd(&["HELLO", "3"]).await;
    let info = c.cmd_raw(&["CLUSTER", "INFO"]).await;
    assert!(info.starts_with(b"=") && info[1..].windows(4).any(|w| w == b"txt:"));
    let nodes = c.cmd_raw(&["CLUSTER", "NODES"]).await;
    assert!(nodes.starts_with(b"="));
    let slots = c.cmd_raw(&["CLUSTER", "SLOTS"]).await;
    assert!(slots.windows(5).any(|w| w == b"%0\r\n*") || slots.ends_with(b"%0\r\n"));
    let shards = c.cmd(&["CLUSTER", "SHARDS"]).await;
    let Value::Array(shards) = shards else {
        panic!("array")
    };
    assert!(shards
        .iter()
        .all(|s| matches!(s, Value::Map(kv) if kv.len() == 2)));
    assert!(matches!(
        c.cmd(&["INFO", "server"]).await,
        Value::Verbatim { .. }
    ));
}
