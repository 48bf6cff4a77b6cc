//! Cluster-wide operations on a real 3+3 `redis-server` cluster: pipelines across nodes (one
//! command redirected on its own), multi-key commands split by slot, MSETNX refused, and a
//! SCAN that returns every key while `redis-cli --cluster reshard` moves slots.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use redcluster::{Client, ErrorKind, ScanCursor, ScanOptions};
use support::real_cluster::RealCluster;

fn my_id(c: &RealCluster, i: usize) -> String {
    c.nodes[i].cli(&["CLUSTER", "MYID"]).trim().to_string()
}

/// Move `slot` (with its keys) from primary `src` to primary `dst` by hand.
fn move_slot(c: &RealCluster, slot: u16, src: usize, dst: usize) {
    let s = slot.to_string();
    let (src_id, dst_id) = (my_id(c, src), my_id(c, dst));
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
    let keys = c.nodes[src].cli(&["CLUSTER", "GETKEYSINSLOT", &s, "1000"]);
    let keys: Vec<&str> = keys.lines().filter(|l| !l.is_empty()).collect();
    if !keys.is_empty() {
        let port = c.nodes[dst].port.to_string();
        let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
        args.extend(keys.iter().copied());
        assert_eq!(c.nodes[src].cli(&args).trim(), "OK");
    }
    for n in &c.nodes[0..3] {
        assert_eq!(
            n.cli(&["CLUSTER", "SETSLOT", &s, "NODE", &dst_id]).trim(),
            "OK"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_and_multi_key_commands_span_nodes() {
    let Some(c) = RealCluster::start(3, 1) else {
        return;
    };
    let client = Client::builder(c.seeds())
        .refresh_interval(None)
        .build()
        .await
        .unwrap();

    // A pipeline whose commands live on every node; replies in the caller's order.
    let mut p = client.pipeline();
    for i in 0..200 {
        p.cmd("SET").arg(format!("p:{i}")).arg(i);
    }
    let oks: Vec<String> = p.query().await.unwrap();
    assert_eq!(oks.len(), 200);
    let mut p = client.pipeline();
    for i in 0..200 {
        p.cmd("GET").arg(format!("p:{i}"));
    }
    let got: Vec<i64> = p.query().await.unwrap();
    assert_eq!(got, (0..200).collect::<Vec<i64>>());

    // Move the slot of one key behind the client's back: in the next pipeline only that
    // command meets MOVED and is redirected; the others are sent once.
    let moved_key = "p:7";
    let slot = redcluster::slot::key_slot(moved_key.as_bytes());
    let src = c.primary_index_for_slot(slot);
    let dst = (0..3).find(|&i| i != src).unwrap();
    move_slot(&c, slot, src, dst);
    let before = client.stats();
    let mut p = client.pipeline();
    p.cmd("INCR").arg("p:1");
    p.cmd("INCR").arg(moved_key);
    p.cmd("GET").arg("p:2");
    p.cmd("INCR").arg("p:3");
    let (a, b, g, d): (i64, i64, i64, i64) = p.query().await.unwrap();
    assert_eq!((a, b, g, d), (2, 8, 2, 4));
    let after = client.stats();
    assert_eq!(
        after.moved - before.moved,
        1,
        "only the moved command was redirected"
    );
    let v: i64 = client.get(moved_key).await.unwrap();
    assert_eq!(v, 8, "the redirected INCR ran exactly once");

    // Per-command outcomes instead of failing the whole pipeline.
    client
        .cmd("LPUSH")
        .arg("p:list")
        .arg("x")
        .query::<i64>()
        .await
        .unwrap();
    let mut p = client.pipeline();
    p.cmd("GET")
        .arg("p:1")
        .cmd("INCR")
        .arg("p:list")
        .cmd("GET")
        .arg("p:3");
    let each = p.query_each().await;
    assert!(each[0].is_ok() && each[2].is_ok());
    let e = each[1].as_ref().unwrap_err();
    assert_eq!(e.code(), Some("WRONGTYPE"));
    assert!(p.query::<Vec<String>>().await.is_err());

    // MSET / MGET / EXISTS / TOUCH / DEL / UNLINK across slots, merged in the caller's order.
    let keys: Vec<String> = (0..50).map(|i| format!("mk:{i}")).collect();
    let mut mset = client.cmd("MSET");
    for (i, k) in keys.iter().enumerate() {
        mset = mset.arg(k).arg(format!("v{i}"));
    }
    mset.query::<()>().await.unwrap();
    let mut mget = client.cmd("MGET").arg("mk:none");
    for k in keys.iter().rev() {
        mget = mget.arg(k);
    }
    let vals: Vec<Option<String>> = mget.query().await.unwrap();
    assert_eq!(vals.len(), 51);
    assert_eq!(vals[0], None);
    for (j, v) in vals[1..].iter().enumerate() {
        assert_eq!(v.as_deref(), Some(format!("v{}", 49 - j).as_str()));
    }
    let n: i64 = client
        .cmd("EXISTS")
        .args(&keys)
        .arg("mk:none")
        .arg("mk:0")
        .query()
        .await
        .unwrap();
    assert_eq!(n, 51, "EXISTS counts a repeated key twice, as Redis does");
    let n: i64 = client.cmd("TOUCH").args(&keys[..10]).query().await.unwrap();
    assert_eq!(n, 10);
    let n: i64 = client.cmd("DEL").args(&keys[..25]).query().await.unwrap();
    assert_eq!(n, 25);
    let n: i64 = client.cmd("UNLINK").args(&keys).query().await.unwrap();
    assert_eq!(n, 25);
    let n: i64 = client.cmd("EXISTS").args(&keys).query().await.unwrap();
    assert_eq!(n, 0);

    // MSETNX must stay atomic: refused before sending unless one slot.
    let e = client
        .cmd("MSETNX")
        .arg("nx:a")
        .arg(1)
        .arg("nx:b")
        .arg(2)
        .query::<i64>()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CrossSlot);
    assert!(!e.maybe_applied());
    let n: i64 = client
        .cmd("EXISTS")
        .arg("nx:a")
        .arg("nx:b")
        .query()
        .await
        .unwrap();
    assert_eq!(n, 0, "nothing was sent");
    let set: i64 = client
        .cmd("MSETNX")
        .arg("{nx}a")
        .arg(1)
        .arg("{nx}b")
        .arg(2)
        .query()
        .await
        .unwrap();
    assert_eq!(set, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_returns_every_key_while_slots_are_resharded() {
    let Some(c) = RealCluster::start(3, 1) else {
        return;
    };
    let client = Client::builder(c.seeds())
        .refresh_interval(None)
        .build()
        .await
        .unwrap();
    let keys: Vec<String> = (0..3000).map(|i| format!("user:{i}")).collect();
    for chunk in keys.chunks(500) {
        let mut m = client.cmd("MSET");
        for k in chunk {
            m = m.arg(k).arg(1);
        }
        m.query::<()>().await.unwrap();
    }
    client.set("other:1", 1).await.unwrap();

    // Reshard 1500 slots from the first primary to the second while the scan walks slowly.
    let from = my_id(&c, 0);
    let to = my_id(&c, 1);
    let seed = format!("127.0.0.1:{}", c.nodes[0].port);
    let reshard = std::thread::spawn(move || {
        std::process::Command::new("redis-cli")
            .args(["--cluster", "reshard", &seed, "--cluster-from", &from])
            .args(["--cluster-to", &to, "--cluster-slots", "1500"])
            .args(["--cluster-yes", "--cluster-pipeline", "20"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    });
    let opts = ScanOptions::matching("user:*").count(50);
    let mut cursor = ScanCursor::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut pages = 0;
    while !cursor.is_finished() {
        // Keep the cursor as text, as a caller resuming later would.
        let kept = cursor.to_string();
        cursor = kept.parse().unwrap();
        let (page, next) = match client.scan_page(&cursor, &opts).await {
            Ok(r) => r,
            Err(e) if e.is_retryable() => continue,
            Err(e) => panic!("{e}"),
        };
        for k in page {
            seen.insert(String::from_utf8(k.to_vec()).unwrap());
        }
        cursor = next;
        pages += 1;
        if pages % 4 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert!(
        tokio::task::spawn_blocking(move || reshard.join().unwrap())
            .await
            .unwrap(),
        "reshard succeeded"
    );
    let missing: Vec<&String> = keys.iter().filter(|k| !seen.contains(*k)).collect();
    assert!(
        missing.is_empty(),
        "{} keys missed, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(!seen.contains("other:1"), "MATCH applies");

    // The Stream API over the resharded cluster.
    use futures::TryStreamExt;
    let all: Vec<bytes::Bytes> = client.scan_match("user:1*").try_collect().await.unwrap();
    let all: HashSet<bytes::Bytes> = all.into_iter().collect();
    assert_eq!(
        all.len(),
        keys.iter().filter(|k| k.starts_with("user:1")).count()
    );
}
