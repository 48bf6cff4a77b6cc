//! `Client::sentinel` against real Sentinels (`redis-server --sentinel`) watching a real
//! primary with two replicas: discovery through the Sentinels (a dead one first in the list),
//! replica reads, and a killed primary under a steady write load — the Sentinels promote a
//! replica, the client resumes writing on it, and the old primary returns as a replica.
//!
//! The failover test PRINTS the time from the kill to the Sentinels' `+switch-master` and to
//! the client's first successful write (no timed assertion: figures for the report).

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redcluster::{Client, ReadFrom};
use support::raw;
use support::real_cluster::free_port;
use support::real_standalone::{RealReplicaSet, MASTER_NAME};
use support::wait::{eventually, progress};

/// Subscribe to `+switch-master` on the Sentinel at `addr`; the task ends at the first
/// switch of [`MASTER_NAME`], with the time it arrived.
async fn switch_watch(addr: &str) -> tokio::task::JoinHandle<Instant> {
    let addr: SocketAddr = addr.parse().unwrap();
    let mut c = raw::Client::connect(addr).await;
    c.send(&["SUBSCRIBE", "+switch-master"]).await;
    let confirmed = c.read().await.expect("subscribe confirmation");
    assert_eq!(raw::parts(&confirmed)[0], "subscribe");
    tokio::spawn(async move {
        loop {
            let v = c.read().await.expect("the Sentinel hung up");
            let p = raw::parts(&v);
            if p.len() == 3 && p[0] == "message" && p[2].starts_with(MASTER_NAME) {
                return Instant::now();
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_under_a_write_load_moves_the_client_to_the_new_primary() {
    let Some(mut set) = RealReplicaSet::with_sentinels(2, 3) else {
        return;
    };
    // A Sentinel that is down comes first: the client tries the next.
    let mut sentinels = vec![format!("127.0.0.1:{}", free_port())];
    sentinels.extend(set.sentinel_addrs());
    let client = Client::sentinel(sentinels, MASTER_NAME)
        .read_from(ReadFrom::ReplicaPreferred)
        .refresh_interval(Some(Duration::from_millis(500)))
        .build()
        .await
        .unwrap();
    let topo = client.topology();
    assert_eq!(topo.shards()[0].primary.addr, set.nodes[0].addr());
    assert_eq!(topo.shards()[0].replicas.len(), 2);
    client.set("k", "v").await.unwrap();
    set.wait_replicas_synced();
    let v: String = client.get("k").await.unwrap();
    assert_eq!(v, "v");

    // Steady writes: 4 writers, each INCR of its own counter; acknowledged values recorded.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let first_ok_after = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let killed_at = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (client, stop, acked) = (client.clone(), stop.clone(), acked.clone());
        let (first, killed) = (first_ok_after.clone(), killed_at.clone());
        writers.push(tokio::spawn(async move {
            let mut last = 0i64;
            let (mut failed, mut lost) = (Vec::new(), 0i64);
            while !stop.load(Ordering::SeqCst) {
                let started = Instant::now();
                match client.incr(format!("counter:{w}")).await {
                    Ok(n) => {
                        if n <= last {
                            // Only a failover may lose acknowledged writes (those the old
                            // primary had not yet streamed to the promoted replica).
                            assert!(killed.lock().unwrap().is_some(), "{w}: {last} -> {n}");
                            lost += last - n + 1;
                        }
                        last = n;
                        acked.fetch_add(1, Ordering::SeqCst);
                        let kill = *killed.lock().unwrap();
                        if kill.is_some_and(|k| started >= k) {
                            let mut f = first.lock().unwrap();
                            if f.is_none() {
                                *f = Some(Instant::now());
                            }
                        }
                    }
                    Err(e) => failed.push(e.kind()),
                }
            }
            (failed, lost)
        }));
    }
    progress("writes before the kill", &acked, 100).await;

    let switch = switch_watch(&set.sentinels[0].addr()).await;
    let old = set.nodes[0].port;
    *killed_at.lock().unwrap() = Some(Instant::now());
    let kill = Instant::now();
    set.nodes[0].kill();
    let switched_at = tokio::time::timeout(Duration::from_secs(60), switch)
        .await
        .expect("the Sentinels switched within 60 s")
        .unwrap();
    let (new, _) = set.wait_failover_from(old);
    eventually("a write succeeds after the kill", || async {
        first_ok_after.lock().unwrap().is_some()
    })
    .await;
    progress("writes on the new primary", &acked, 100).await;
    stop.store(true, Ordering::SeqCst);
    let (mut failed, mut lost) = (Vec::new(), 0);
    for w in writers {
        let (f, l) = w.await.unwrap();
        failed.extend(f);
        lost += l;
    }
    let first_write = first_ok_after.lock().unwrap().unwrap();
    println!(
        "real Sentinel failover: kill -> +switch-master {:?}; kill -> first successful write {:?} \
         (failed writes: {failed:?}; {} acknowledged in all, {lost} lost in the \
         async-replication window)",
        switched_at - kill,
        first_write - kill,
        acked.load(Ordering::SeqCst)
    );
    assert_eq!(
        client.topology().shards()[0].primary.addr,
        set.nodes[new].addr()
    );
    let on_new: i64 = set.nodes[new]
        .cli(&["GET", "counter:0"])
        .trim()
        .parse()
        .unwrap();
    assert!(on_new > 0);

    // The old primary comes back as a replica of the new one, and serves reads again.
    set.nodes[0].restart();
    set.wait_healthy();
    assert_eq!(set.primary_index(), Some(new));
    eventually("the client lists the old primary as a replica", || async {
        let topo = client.topology();
        topo.shards()[0].primary.addr == set.nodes[new].addr()
            && topo.shards()[0]
                .replicas
                .iter()
                .any(|r| r.addr == set.nodes[0].addr())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_credentials_are_apart_from_the_data_nodes_credentials() {
    let data = [("requirepass", "data-pw"), ("masterauth", "data-pw")];
    let Some(set) = RealReplicaSet::start_secured(1, 1, &data, Some("sentinel-pw")) else {
        return;
    };
    let client = Client::sentinel(set.sentinel_addrs(), MASTER_NAME)
        .sentinel_credentials(None, "sentinel-pw")
        .credentials(None, "data-pw")
        .build()
        .await
        .unwrap();
    client.set("k", "v").await.unwrap();
    let v: String = client.get("k").await.unwrap();
    assert_eq!(v, "v");
    assert_eq!(client.topology().shards()[0].replicas.len(), 1);

    // Without the Sentinels' password they do not answer: a clear error, no password shown.
    let e = Client::sentinel(set.sentinel_addrs(), MASTER_NAME)
        .credentials(None, "data-pw")
        .build()
        .await
        .unwrap_err();
    let shown = e.to_string();
    assert!(shown.contains("NOAUTH"), "{shown}");
    assert!(
        !shown.contains("data-pw") && !shown.contains("sentinel-pw"),
        "{shown}"
    );
}
