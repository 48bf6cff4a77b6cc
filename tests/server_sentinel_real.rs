//! The bundled Sentinel (`redcluster::server::Sentinel`, `TestSentinels`): its replies
//! against a real `redis-server --sentinel` 7 watching the same real replica set, byte for
//! byte where clients parse them (ids, ports and ages normalised), and a failover of real
//! `redis-server` nodes driven by three bundled Sentinels.
#![cfg(feature = "server")]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use redcluster::resp::Value;
use redcluster::server::TestSentinels;
use support::raw::{node_cmd, parts, Client};
use support::real_standalone::RealReplicaSet;
use support::sentinel::{any_event, normalise, wait_sentinel_ready, Events, MASTER_NAME};
use support::wait::eventually_within;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("ip:port")
}

/// The same reply bytes from both Sentinels.
fn same_bytes(ours: &[u8], real: &[u8], what: &str) {
    assert_eq!(
        String::from_utf8_lossy(ours),
        String::from_utf8_lossy(real),
        "{what}: bundled vs real Sentinel"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_match_a_real_sentinel_watching_the_same_nodes() {
    let Some(set) = RealReplicaSet::with_sentinels(1, 1) else {
        return;
    };
    let primary = addr(&set.seeds()[0]);
    let sentinels = TestSentinels::builder()
        .sentinels(1)
        .quorum(1)
        .failover_timeout(Duration::from_secs(3))
        .monitor_addr(MASTER_NAME, primary)
        .start()
        .await
        .unwrap();
    let mut ours = Client::connect(sentinels.addr(0)).await;
    let mut real = Client::connect(addr(&set.sentinel_addrs()[0])).await;
    // Each discovers the replica and the other Sentinel through the hello channel.
    wait_sentinel_ready(sentinels.addr(0), 1, 1).await;
    wait_sentinel_ready(addr(&set.sentinel_addrs()[0]), 1, 1).await;

    let o = ours.cmd(&["SENTINEL", "master", MASTER_NAME]).await;
    let r = real.cmd(&["SENTINEL", "master", MASTER_NAME]).await;
    assert_eq!(normalise(&o), normalise(&r), "SENTINEL MASTER");
    let o = ours.cmd(&["SENTINEL", "masters"]).await;
    let r = real.cmd(&["SENTINEL", "masters"]).await;
    let (Value::Array(o), Value::Array(r)) = (o, r) else {
        panic!("arrays")
    };
    assert_eq!(o.len(), r.len());
    assert_eq!(normalise(&o[0]), normalise(&r[0]), "SENTINEL MASTERS");
    for sub in ["replicas", "slaves", "sentinels"] {
        let o = ours.cmd(&["SENTINEL", sub, MASTER_NAME]).await;
        let r = real.cmd(&["SENTINEL", sub, MASTER_NAME]).await;
        let (Value::Array(o), Value::Array(r)) = (o, r) else {
            panic!("arrays")
        };
        assert_eq!(o.len(), 1, "{sub}");
        assert_eq!(normalise(&o[0]), normalise(&r[0]), "SENTINEL {sub}");
    }
    // Each Sentinel lists the other: ids and ports cross over.
    let Value::Array(o) = ours.cmd(&["SENTINEL", "sentinels", MASTER_NAME]).await else {
        panic!("an array")
    };
    let o = parts(&o[0]);
    let real_id = real.text(&["SENTINEL", "myid"]).await;
    assert!(
        o.contains(&real_id),
        "the bundled Sentinel found the real one: {o:?}"
    );

    let exact: &[&[&str]] = &[
        &["SENTINEL", "get-master-addr-by-name", MASTER_NAME],
        &["SENTINEL", "get-master-addr-by-name", "nosuch"],
        &["SENTINEL", "master", "nosuch"],
        &["SENTINEL", "replicas", "nosuch"],
        &[
            "SENTINEL",
            "is-master-down-by-addr",
            "127.0.0.1",
            &primary.port().to_string(),
            "0",
            "*",
        ],
        &[
            "SENTINEL",
            "is-master-down-by-addr",
            "127.0.0.1",
            "1",
            "x",
            "*",
        ],
        &["SENTINEL", "ckquorum", MASTER_NAME],
        &["SENTINEL", "ckquorum", "nosuch"],
        &["SENTINEL", "config", "get", "*"],
        &["SENTINEL", "config", "get", "announce-*"],
        &["SENTINEL", "config", "set", "foo", "bar"],
        &["SENTINEL", "config", "get"],
        &["SENTINEL", "debug"],
        &["SENTINEL", "help"],
        &["SENTINEL", "foo"],
        &["SENTINEL", "masters", "x"],
        &["SENTINEL"],
        &["SENTINEL", "set", MASTER_NAME, "quorum", "x"],
        &["SENTINEL", "set", MASTER_NAME, "bogus", "1"],
        &["SENTINEL", "set", "nosuch", "quorum", "1"],
        &["SENTINEL", "monitor", "a", "127.0.0.1", "1", "0"],
        &["SENTINEL", "monitor", MASTER_NAME, "127.0.0.1", "1", "1"],
        &["SENTINEL", "monitor", "a", "127.0.0.1", "x", "1"],
        &["SENTINEL", "monitor", "a", "notanip", "1", "1"],
        &["SENTINEL", "monitor", "a", "127.0.0.1", "1", "x"],
        &["SENTINEL", "remove", "nosuch"],
        &["SENTINEL", "failover", "nosuch"],
        &["SENTINEL", "reset", "nomatch"],
        &["SENTINEL", "pending-scripts"],
        &["SENTINEL", "simulate-failure", "help"],
        &["SENTINEL", "simulate-failure", "bogus"],
        &["ROLE"],
        &["PING"],
        &["PING", "hi"],
        &["CLIENT", "GETNAME"],
        &["CLIENT", "SETNAME", "a b"],
        &["CLIENT", "SETNAME", "x", "y"],
        &["CLIENT", "SETINFO", "lib-name", "x"],
        &["AUTH", "x"],
        &["SET", "a", "b"],
        &["SELECT", "1"],
        &["PUBLISH", "foo", "bar"],
        &["HELLO", "4"],
        &["HELLO", "x"],
        &["INFO", "sentinel"],
    ];
    for cmd in exact {
        let o = ours.cmd_raw(cmd).await;
        let r = real.cmd_raw(cmd).await;
        same_bytes(&o, &r, &cmd.join(" "));
    }
    // HELLO differs only in the connection id.
    let o = parts(&ours.cmd(&["HELLO", "2"]).await);
    let r = parts(&real.cmd(&["HELLO", "2"]).await);
    assert_eq!(o.len(), r.len());
    for (i, (a, b)) in o.iter().zip(&r).enumerate() {
        if i != 7 {
            assert_eq!(a, b, "HELLO field {i}");
        }
    }
    // The whole INFO carries the same sentinel section (other sections are ours).
    let o = ours.text(&["INFO"]).await;
    assert!(o.contains("redis_mode:sentinel"), "{o}");
    assert!(o.ends_with(&real.text(&["INFO", "sentinel"]).await), "{o}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_bundled_sentinels_fail_over_real_redis_nodes() {
    let Some(mut set) = RealReplicaSet::start(2) else {
        return;
    };
    let old = addr(&set.seeds()[0]);
    let sentinels = TestSentinels::builder()
        .sentinels(3)
        .quorum(2)
        .failover_timeout(Duration::from_secs(5))
        .monitor_addr(MASTER_NAME, old)
        .start()
        .await
        .unwrap();
    for i in 0..3 {
        wait_sentinel_ready(sentinels.addr(i), 2, 2).await;
    }
    let mut feeds = Vec::new();
    for i in 0..3 {
        feeds.push(Events::subscribe(sentinels.addr(i)).await);
    }
    let killed = Instant::now();
    set.nodes[0].kill();
    let switch = feeds[0]
        .until("+switch-master", Duration::from_secs(30))
        .await;
    let took = killed.elapsed();
    println!("bundled Sentinels, real nodes: primary killed -> +switch-master in {took:?}");
    let seen = feeds[0].seen.clone();
    println!("events: {seen:#?}");
    let words: Vec<&str> = switch.split(' ').collect();
    assert_eq!(
        words[..3],
        [MASTER_NAME, "127.0.0.1", &old.port().to_string()[..]]
    );
    let new_port: u16 = words[4].parse().unwrap();
    assert!(
        seen.iter().any(|e| e.starts_with("+sdown master mymaster")),
        "{seen:#?}"
    );
    assert!(
        seen.iter().any(|e| e.starts_with("+odown master mymaster")),
        "{seen:#?}"
    );
    let new = set.index_of_port(new_port).expect("a known node");
    assert_ne!(new, 0);
    let role = set.nodes[new].cli(&["ROLE"]);
    assert!(role.starts_with("master"), "{role}");
    // Every Sentinel names the new primary; the other replica follows it.
    for i in 0..3 {
        let s = sentinels.addr(i).to_string();
        eventually_within(
            Duration::from_secs(20),
            "every Sentinel names the new primary",
            || {
                let s = s.clone();
                async move {
                    let p = parts(
                        &node_cmd(&s, &["SENTINEL", "get-master-addr-by-name", MASTER_NAME]).await,
                    );
                    p.get(1).map(String::as_str) == Some(&new_port.to_string()[..])
                }
            },
        )
        .await;
    }
    let other = 3 - new;
    eventually_within(
        Duration::from_secs(20),
        "the other replica follows the new primary",
        || {
            let info = set.nodes[other].cli(&["INFO", "replication"]);
            async move { info.contains(&format!("master_port:{new_port}")) }
        },
    )
    .await;
    // The old primary comes back and is converted into a replica of the new one.
    set.nodes[0].restart();
    let back = Instant::now();
    // Whichever Sentinel sees it first converts it.
    any_event(&mut feeds, "+convert-to-slave", Duration::from_secs(40)).await;
    eventually_within(
        Duration::from_secs(20),
        "the old primary replicates the new one",
        || {
            let info = set.nodes[0].cli(&["INFO", "replication"]);
            async move {
                info.contains("role:slave") && info.contains(&format!("master_port:{new_port}"))
            }
        },
    )
    .await;
    println!(
        "old primary restarted -> replica of the new one in {:?}",
        back.elapsed()
    );
}
