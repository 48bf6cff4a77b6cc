//! MOVED and ASK on a real 3+3 cluster of its own, driven with CLUSTER SETSLOT and MIGRATE
//! while the client keeps writing.

mod support;

use std::time::Duration;

use redcluster::{Client, ErrorKind};
use support::real_cluster::RealCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_during_migration_and_moved_after_it_lose_no_write() {
    let Some(c) = RealCluster::start(3, 1) else {
        return;
    };
    let client = Client::builder(c.seeds())
        .refresh_interval(None)
        .build()
        .await
        .unwrap();
    let slot = redcluster::slot::key_slot(b"mig");
    let src = c.primary_index_for_slot(slot);
    let dst = (0..3).find(|&i| i != src).unwrap();
    let src_id = c.nodes[src].cli(&["CLUSTER", "MYID"]).trim().to_string();
    let dst_id = c.nodes[dst].cli(&["CLUSTER", "MYID"]).trim().to_string();
    let s = slot.to_string();
    let key = |i: usize| format!("{{mig}}:{i}");

    for i in 0..20 {
        client.set(key(i), i).await.unwrap();
    }
    // Meanwhile a writer keeps incrementing counters in the migrating slot; every
    // acknowledged increment must be readable at the end.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let client = client.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut acked = vec![0i64; 8];
            let mut i = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let n = i % acked.len();
                let v = client
                    .incr(format!("{{mig}}:ctr:{n}"))
                    .await
                    .expect("write during migration");
                acked[n] += 1;
                assert_eq!(v, acked[n], "counter {n} skipped or repeated");
                i += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            acked
        })
    };
    // Half-finished migration: importing on dst, migrating on src, keys 0..10 moved.
    assert_eq!(
        c.nodes[dst]
            .cli(&["CLUSTER", "SETSLOT", &s, "IMPORTING", &src_id])
            .trim(),
        "OK"
    );
    assert_eq!(
        c.nodes[src]
            .cli(&["CLUSTER", "SETSLOT", &s, "MIGRATING", &dst_id])
            .trim(),
        "OK"
    );
    let dst_port = c.nodes[dst].port.to_string();
    let mut migrate: Vec<String> = ["MIGRATE", "127.0.0.1", &dst_port, "", "0", "5000", "KEYS"]
        .iter()
        .map(|x| x.to_string())
        .collect();
    migrate.extend((0..10).map(key));
    let args: Vec<&str> = migrate.iter().map(String::as_str).collect();
    assert_eq!(c.nodes[src].cli(&args).trim(), "OK");

    // Moved keys are reached through ASK; keys still on src are served there; new keys
    // (absent on src) are written on dst through ASK.
    for i in 0..20 {
        let v: i64 = client.get(key(i)).await.unwrap();
        assert_eq!(v as usize, i);
    }
    for i in 20..30 {
        client.set(key(i), i).await.unwrap();
    }
    // A transaction whose keys all left src is sent to dst behind ASKING.
    let mut tx = client.transaction();
    tx.cmd("INCR").arg(key(0)).cmd("INCR").arg(key(1));
    assert_eq!(tx.exec::<(i64, i64)>().await.unwrap(), Some((1, 2)));
    // One with a key on each side can run nowhere until the migration ends: dst refuses
    // its EXEC with TRYAGAIN, and nothing is applied on either node.
    let mut tx = client.transaction();
    tx.cmd("INCR").arg(key(0)).cmd("INCR").arg(key(15));
    // The engine retries TRYAGAIN until the request deadline: the caller gets the server's
    // TRYAGAIN when the deadline falls between attempts, or a timeout naming it when the
    // deadline falls while an attempt is on the wire (that attempt's outcome is unknown).
    let e = tx.exec::<(i64, i64)>().await.unwrap_err();
    let tryagain = e.code() == Some("TRYAGAIN")
        || (e.kind() == ErrorKind::Timeout && e.to_string().contains("TRYAGAIN"));
    assert!(tryagain, "{e}");
    assert!(e.is_retryable());
    assert_eq!(client.get::<i64>(key(0)).await.unwrap(), 1);
    assert_eq!(client.get::<i64>(key(15)).await.unwrap(), 15);
    client.set(key(0), 0).await.unwrap();
    client.set(key(1), 1).await.unwrap();

    let stats = client.stats();
    assert!(stats.ask >= 20, "{stats:?}");
    assert_eq!(stats.moved, 0, "ASK leaves the slot map alone: {stats:?}");
    assert_eq!(
        client.topology().primary_for_slot(slot),
        Some(format!("127.0.0.1:{}", c.nodes[src].port).as_str())
    );
    // The 20 moved or new keys, plus counters the writer created since (ASK'd to dst).
    let on_dst: usize = c.nodes[dst]
        .cli(&["CLUSTER", "COUNTKEYSINSLOT", &s])
        .trim()
        .parse()
        .unwrap();
    assert!((20..=28).contains(&on_dst), "{on_dst}");

    // Finish: move the rest, give the slot to dst everywhere.
    let mut migrate: Vec<String> = ["MIGRATE", "127.0.0.1", &dst_port, "", "0", "5000", "KEYS"]
        .iter()
        .map(|x| x.to_string())
        .collect();
    migrate.extend((10..20).map(key));
    migrate.extend((0..8).map(|n| format!("{{mig}}:ctr:{n}")));
    let args: Vec<&str> = migrate.iter().map(String::as_str).collect();
    assert_eq!(c.nodes[src].cli(&args).trim(), "OK");
    for n in &c.nodes[0..3] {
        assert_eq!(
            n.cli(&["CLUSTER", "SETSLOT", &s, "NODE", &dst_id]).trim(),
            "OK"
        );
    }
    // The client still believes src owns the slot: MOVED takes it to dst, once.
    for i in 0..30 {
        let v: i64 = client.get(key(i)).await.unwrap();
        assert_eq!(v as usize, i);
    }
    client.set(key(30), 30).await.unwrap();
    let stats = client.stats();
    assert!(stats.moved >= 1, "{stats:?}");
    assert!(
        stats.moved <= 3,
        "the slot map was patched after the first MOVED: {stats:?}"
    );
    let dst_addr = format!("127.0.0.1:{}", c.nodes[dst].port);
    assert_eq!(
        client.topology().primary_for_slot(slot),
        Some(dst_addr.as_str())
    );
    // The background refresh that MOVED triggered installs the new owner too.
    let mut refreshed = false;
    for _ in 0..50 {
        if client.stats().topology_refreshes >= 2 {
            refreshed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refreshed, "MOVED triggered a refresh");
    assert_eq!(
        client.topology().primary_for_slot(slot),
        Some(dst_addr.as_str())
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked = writer.await.unwrap();
    assert!(acked.iter().sum::<i64>() > 0);
    for (n, want) in acked.iter().enumerate() {
        let got: i64 = client.get(format!("{{mig}}:ctr:{n}")).await.unwrap();
        assert_eq!(got, *want, "counter {n}");
    }
    assert_eq!(
        c.nodes[dst].cli(&["CLUSTER", "COUNTKEYSINSLOT", &s]).trim(),
        "39"
    );
}
