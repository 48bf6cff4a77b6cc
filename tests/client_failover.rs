//! The client through failovers and topology changes: a MOVED storm after a resharding on the
//! bundled cluster, and on a real redis-server 3+3 cluster (`cluster-node-timeout 2000`) a
//! graceful `CLUSTER FAILOVER` under load, a killed primary, and the old primary coming back
//! as a replica.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redcluster::resp::Value;
use redcluster::server::Role;
use redcluster::{Client, ErrorKind};
use support::bundled::three_primaries;
use support::raw::node_cmds;
use support::real_cluster::RealCluster;
use support::wait::{progress, wait_until};

#[tokio::test]
async fn a_moved_storm_after_resharding_costs_one_refresh() {
    let cluster = three_primaries().await;
    let client = Client::builder(cluster.seeds())
        .refresh_interval(None)
        .build()
        .await
        .unwrap();
    let topo = client.topology();
    let nodes = cluster.nodes();
    let primaries: Vec<_> = nodes.iter().filter(|n| n.role == Role::Primary).collect();
    let from = primaries[0].addr.to_string();
    let to = primaries[1];
    // 100 keys, each in its own slot, all owned by `from`.
    let mut keys: Vec<(String, u16)> = Vec::new();
    for i in 0.. {
        let k = format!("storm:{i}");
        let slot = redcluster::slot::key_slot(k.as_bytes());
        if topo.primary_for_slot(slot) == Some(from.as_str())
            && !keys.iter().any(|(_, s)| *s == slot)
        {
            keys.push((k, slot));
        }
        if keys.len() == 100 {
            break;
        }
    }
    // Hand the (empty) slots to `to`, telling the new owner first, as redis-cli does.
    let setslot: Vec<Vec<String>> = keys
        .iter()
        .map(|(_, s)| {
            ["CLUSTER", "SETSLOT", &s.to_string(), "NODE", &to.id]
                .map(String::from)
                .to_vec()
        })
        .collect();
    let mut order = primaries.clone();
    order.sort_by_key(|n| n.addr != to.addr);
    for n in order {
        for r in node_cmds(&n.addr.to_string(), &setslot).await {
            assert_eq!(r, Value::ok());
        }
    }
    let before = client.stats();
    let writes = keys.iter().map(|(k, _)| client.set(k.as_str(), k.as_str()));
    for r in futures::future::join_all(writes).await {
        r.unwrap();
    }
    for (k, _) in keys.iter().step_by(7) {
        let v: String = client.get(k.as_str()).await.unwrap();
        assert_eq!(&v, k);
    }
    let after = client.stats();
    assert!(after.moved > before.moved, "the storm happened");
    assert_eq!(
        after.topology_refreshes - before.topology_refreshes,
        1,
        "{} MOVEDs, one refresh",
        after.moved - before.moved
    );
    for (_, s) in &keys {
        assert_eq!(
            client.topology().primary_for_slot(*s),
            Some(to.addr.to_string().as_str())
        );
    }
}

/// What a writer saw: acknowledged (key, value) pairs, and the errors it got.
type Outcome = (Vec<(String, u64)>, Vec<redcluster::Error>);

/// Writers that SET their own keys in a loop and remember what was acknowledged.
struct Load {
    stop: Arc<AtomicBool>,
    /// Writes acknowledged so far, by all writers.
    acked: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<Outcome>>,
}

fn load(client: &Client, tag: &str, writers: usize) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let tasks = (0..writers)
        .map(|w| {
            let (client, stop, tag) = (client.clone(), stop.clone(), tag.to_string());
            let count = count.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut errors = Vec::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) && n < 100_000 {
                    n += 1;
                    let key = format!("{tag}:{w}:{}", n % 50);
                    match client.set(key.as_str(), n).await {
                        Ok(()) => {
                            acked.push((key, n));
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => errors.push(e),
                    }
                }
                (acked, errors)
            })
        })
        .collect();
    Load {
        stop,
        acked: count,
        tasks,
    }
}

impl Load {
    async fn finish(self) -> Outcome {
        self.stop.store(true, Ordering::Relaxed);
        let mut acked = Vec::new();
        let mut errors = Vec::new();
        for t in self.tasks {
            let (a, e) = t.await.unwrap();
            acked.extend(a);
            errors.extend(e);
        }
        (acked, errors)
    }
}

/// Every acknowledged write is readable: each key holds its last acknowledged value (or a
/// later one whose acknowledgement was lost with a connection).
async fn assert_readable(client: &Client, acked: &[(String, u64)]) {
    let mut last = std::collections::HashMap::new();
    for (k, n) in acked {
        last.insert(k.clone(), *n);
    }
    for (k, n) in last {
        let v: Option<u64> = client.get(k.as_str()).await.unwrap();
        assert!(
            v.is_some_and(|v| v >= n),
            "{k}: acknowledged {n}, read {v:?}"
        );
    }
}

#[tokio::test]
async fn real_cluster_failover_graceful_then_killed_then_back() {
    let Some(mut c) = RealCluster::start(3, 1) else {
        return;
    };
    let client = Client::builder(c.seeds())
        .request_timeout(Duration::from_secs(8))
        .connect_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let key = "fo:{probe}";
    let slot = redcluster::slot::key_slot(key.as_bytes());
    let p = c.primary_index_for_slot(slot);
    let p_port = c.nodes[p].port.to_string();
    let r = (0..c.nodes.len())
        .find(|&i| {
            c.nodes[i]
                .cli(&["INFO", "replication"])
                .contains(&format!("master_port:{p_port}"))
        })
        .unwrap();

    // 1. Graceful CLUSTER FAILOVER under load: no request fails, every write is readable.
    let l = load(&client, "g", 8);
    progress("writes before the failover", &l.acked, 200).await;
    assert_eq!(c.nodes[r].cli(&["CLUSTER", "FAILOVER"]).trim(), "OK");
    wait_until(Duration::from_secs(10), || {
        c.primary_index_for_slot(slot) == r
    });
    progress("writes on the promoted replica", &l.acked, 200).await;
    let (acked, errors) = l.finish().await;
    assert!(
        errors.is_empty(),
        "graceful failover lost requests: {errors:?}"
    );
    assert!(!acked.is_empty());
    assert_readable(&client, &acked).await;
    // A client that knows this shape and stays idle, with no periodic refresh, through
    // everything below.
    let stale = Client::builder(c.seeds())
        .refresh_interval(None)
        .request_timeout(Duration::from_secs(8))
        .build()
        .await
        .unwrap();
    stale.set(key, "before").await.unwrap();
    assert_eq!(
        stale.topology().primary_for_slot(slot),
        Some(format!("127.0.0.1:{}", c.nodes[r].port).as_str())
    );

    // 2. The new primary is killed: writes in flight are reported as maybe applied (never
    // silently lost), and writes resume once the old primary is promoted back.
    let l = load(&client, "k", 8);
    progress("writes before the kill", &l.acked, 200).await;
    c.nodes[r].kill();
    wait_until(Duration::from_secs(20), || {
        c.nodes[p]
            .cli(&["CLUSTER", "NODES"])
            .contains("myself,master")
    });
    // Writes go on after the promotion.
    client.set(key, "after-kill").await.unwrap();
    progress("the load's writes after the promotion", &l.acked, 200).await;
    let (acked, errors) = l.finish().await;
    for e in &errors {
        assert!(
            matches!(e.kind(), ErrorKind::MaybeApplied | ErrorKind::Timeout),
            "unexpected failure: {e}"
        );
        assert!(e.maybe_applied(), "{e}");
    }
    assert_readable(&client, &acked).await;

    // 3. The killed node comes back as a replica of the promoted one. The stale client still
    // sends the write to it; the node redirects (MOVED, as replicas do in cluster mode) and
    // the client reroutes and refreshes.
    c.nodes[r].restart();
    c.wait_healthy(None);
    assert!(c.nodes[r]
        .cli(&["INFO", "replication"])
        .contains("role:slave"));
    let before = stale.stats();
    stale.set(key, "stale-client").await.unwrap();
    let v: String = stale.get(key).await.unwrap();
    assert_eq!(v, "stale-client");
    let after = stale.stats();
    assert!(
        after.moved + after.retries > before.moved + before.retries,
        "{after:?}"
    );
    assert_eq!(
        stale.topology().primary_for_slot(slot),
        Some(format!("127.0.0.1:{p_port}").as_str())
    );
}
