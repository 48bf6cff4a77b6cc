//! Replication in the bundled cluster: snapshot + buffered writes + stream, offsets, WAIT,
//! and reads from replicas.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use redcluster::server::TestCluster;
use support::bundled::primary_and_replica;
use support::raw::Client;
use support::wait::{eventually, progress};

fn field(info: &str, name: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(str::to_string)
}

#[tokio::test]
async fn writes_reach_the_replica_and_wait_counts_it() {
    let cluster = primary_and_replica().await;
    let nodes = cluster.nodes();
    let (p, r) = (nodes[0].addr, nodes[1].addr);
    let mut primary = Client::connect(p).await;
    let mut replica = Client::connect(r).await;
    for i in 0..100 {
        assert_eq!(
            primary
                .text(&["SET", &format!("k{i}"), &i.to_string()])
                .await,
            "OK"
        );
    }
    assert_eq!(primary.text(&["WAIT", "1", "5000"]).await, "1");
    assert_eq!(primary.text(&["WAIT", "2", "50"]).await, "1");
    replica.cmd(&["READONLY"]).await;
    assert_eq!(replica.text(&["GET", "k42"]).await, "42");
    assert_eq!(replica.text(&["DBSIZE"]).await, "100");

    let info = primary.text(&["INFO", "replication"]).await;
    assert_eq!(field(&info, "role").as_deref(), Some("master"));
    assert_eq!(field(&info, "connected_slaves").as_deref(), Some("1"));
    let offset: u64 = field(&info, "master_repl_offset").unwrap().parse().unwrap();
    assert!(offset > 0);
    let slave0 = field(&info, "slave0").unwrap();
    assert!(
        slave0.starts_with(&format!(
            "ip=127.0.0.1,port={},state=online,offset=",
            r.port()
        )),
        "{slave0}"
    );

    let want = offset.to_string();
    eventually("the replica reports the primary's offset", || {
        let want = want.clone();
        async move {
            let info = Client::connect(r)
                .await
                .text(&["INFO", "replication"])
                .await;
            field(&info, "slave_repl_offset").as_deref() == Some(want.as_str())
        }
    })
    .await;
    let info = replica.text(&["INFO", "replication"]).await;
    assert_eq!(field(&info, "role").as_deref(), Some("slave"));
    assert_eq!(field(&info, "master_host").as_deref(), Some("127.0.0.1"));
    assert_eq!(field(&info, "master_port"), Some(p.port().to_string()));
    assert_eq!(field(&info, "master_link_status").as_deref(), Some("up"));
    assert_eq!(field(&info, "slave_read_only").as_deref(), Some("1"));
    // The replica counts the reads it served.
    let stats = replica.text(&["INFO", "commandstats"]).await;
    assert!(stats.contains("cmdstat_get:calls=1,"), "{stats}");
    assert!(replica
        .text(&["WAIT", "1", "10"])
        .await
        .starts_with("ERR WAIT cannot be used with replica instances"));
}

/// Writes until `stop`; `done` counts the acknowledged bursts. Returns the number of keys set.
async fn writer(addr: SocketAddr, stop: Arc<AtomicBool>, done: Arc<AtomicU64>) -> u64 {
    let mut c = Client::connect(addr).await;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        // Pipelined bursts, so the primary writes while the replica's snapshot is prepared.
        for _ in 0..50 {
            c.send(&["SET", &format!("live:{n}"), &n.to_string()]).await;
            c.send(&["INCR", "counter"]).await;
            n += 1;
        }
        for _ in 0..100 {
            let reply = c.read().await.unwrap();
            assert!(!reply.is_error(), "{reply:?}");
        }
        done.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_syncing_under_writes_ends_identical() {
    let cluster = TestCluster::builder()
        .unconfigured_nodes(2)
        .start()
        .await
        .unwrap();
    let nodes = cluster.nodes();
    let (p, r) = (nodes[0].addr, nodes[1].addr);
    let mut primary = Client::connect(p).await;
    primary
        .cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"])
        .await;
    for i in 0..2000 {
        primary
            .send(&["SET", &format!("old:{i}"), &i.to_string()])
            .await;
    }
    for _ in 0..2000 {
        primary.read().await.unwrap();
    }
    assert_eq!(
        primary
            .text(&["CLUSTER", "MEET", "127.0.0.1", &r.port().to_string()])
            .await,
        "OK"
    );
    eventually("the nodes meet", || async move {
        Client::connect(r)
            .await
            .text(&["CLUSTER", "INFO"])
            .await
            .contains("cluster_known_nodes:2")
    })
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let bursts = Arc::new(AtomicU64::new(0));
    let writes = tokio::spawn(writer(p, stop.clone(), bursts.clone()));
    progress("writes before REPLICATE", &bursts, 2).await;
    let mut replica = Client::connect(r).await;
    assert_eq!(
        replica.text(&["CLUSTER", "REPLICATE", &nodes[0].id]).await,
        "OK"
    );
    eventually("the replica is online", || async move {
        let info = Client::connect(p)
            .await
            .text(&["INFO", "replication"])
            .await;
        info.contains("state=online")
    })
    .await;
    progress("writes streamed to the online replica", &bursts, 2).await;
    stop.store(true, Ordering::Relaxed);
    let n = writes.await.unwrap();
    assert!(n > 0);
    assert_eq!(primary.text(&["WAIT", "1", "5000"]).await, "1");

    replica.cmd(&["READONLY"]).await;
    assert_eq!(primary.text(&["DBSIZE"]).await, (2000 + n + 1).to_string());
    assert_eq!(replica.text(&["DBSIZE"]).await, (2000 + n + 1).to_string());
    assert_eq!(replica.text(&["GET", "counter"]).await, n.to_string());
    assert_eq!(replica.text(&["GET", "old:1999"]).await, "1999");
    assert_eq!(
        replica.text(&["GET", &format!("live:{}", n - 1)]).await,
        (n - 1).to_string()
    );
    let pinfo = primary.text(&["INFO", "replication"]).await;
    let rinfo = replica.text(&["INFO", "replication"]).await;
    assert_eq!(
        field(&pinfo, "master_repl_offset"),
        field(&rinfo, "slave_repl_offset"),
        "offsets agree once WAIT returned"
    );
}

#[tokio::test]
async fn a_replica_can_switch_primaries() {
    let cluster = TestCluster::builder()
        .primaries(3)
        .replicas_per_primary(1)
        .start()
        .await
        .unwrap();
    let nodes = cluster.nodes();
    let (old, new, replica) = (nodes[0].addr, nodes[1].addr, nodes[3].addr);
    // A key the second primary owns: the first name it accepts without MOVED.
    let mut p1 = Client::connect(new).await;
    let mut key = String::new();
    for i in 0..1000 {
        let k = format!("k{i}");
        if p1.text(&["SET", &k, "v"]).await == "OK" {
            key = k;
            break;
        }
    }
    assert!(!key.is_empty());
    let mut r = Client::connect(replica).await;
    assert_eq!(r.text(&["CLUSTER", "REPLICATE", &nodes[1].id]).await, "OK");
    assert_eq!(p1.text(&["WAIT", "2", "5000"]).await, "2");
    r.cmd(&["READONLY"]).await;
    assert_eq!(r.text(&["GET", &key]).await, "v");
    eventually("the old primary drops the replica", || async move {
        let info = Client::connect(old)
            .await
            .text(&["INFO", "replication"])
            .await;
        field(&info, "connected_slaves").as_deref() == Some("0")
    })
    .await;
    let id3 = nodes[3].id.clone();
    let id1 = nodes[1].id.clone();
    let seen_by = nodes[2].addr;
    eventually("gossip tells the others", || {
        let (id3, id1) = (id3.clone(), id1.clone());
        async move {
            let text = Client::connect(seen_by)
                .await
                .text(&["CLUSTER", "NODES"])
                .await;
            text.lines()
                .any(|l| l.starts_with(&id3) && l.contains(&format!(" slave {id1} ")))
        }
    })
    .await;
}
