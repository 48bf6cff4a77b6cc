//! The ASK / TRYAGAIN / MOVED state machine of a slot being moved, over real TCP against the
//! bundled cluster, with the replies Redis 7.0 gives (checked against redis-server 7.0.15):
//! the migrating node, SETSLOT NODE, replicas, RESTORE-ASKING, writes racing a MIGRATE.

mod support;

use std::time::Duration;

use redcluster::resp::Value;
use redcluster::server::TestCluster;
use support::migrate::*;
use support::raw::Client;

#[tokio::test]
async fn migrating_node_serves_present_keys_asks_for_moved_ones_and_tryagain_for_a_mix() {
    let f = three().await;
    let (mut src, mut dst) = (f.client(2).await, f.client(0).await);
    assert_eq!(
        src.text(&["MSET", "{a}1", "1", "{a}2", "2", "{a}3", "3"])
            .await,
        "OK"
    );
    f.open(&mut src, &mut dst).await;
    let port = f.port(0);
    let mv = [
        "MIGRATE",
        "127.0.0.1",
        &port,
        "",
        "0",
        "5000",
        "KEYS",
        "{a}1",
    ];
    assert_eq!(src.text(&mv).await, "OK");

    // Source (MIGRATING).
    assert_eq!(src.text(&["GET", "{a}2"]).await, "2");
    assert_eq!(src.text(&["GET", "{a}1"]).await, ask_to(&f, 0));
    assert_eq!(src.text(&["SET", "{a}new", "x"]).await, ask_to(&f, 0));
    assert_eq!(src.text(&["MGET", "{a}1", "{a}9"]).await, ask_to(&f, 0));
    assert_eq!(src.text(&["MGET", "{a}1", "{a}2"]).await, TRYAGAIN);
    assert_eq!(src.text(&["DEL", "{a}1", "{a}2"]).await, TRYAGAIN);
    assert!(matches!(
        src.cmd(&["MGET", "{a}2", "{a}3"]).await,
        Value::Array(v) if v.len() == 2
    ));

    // Target (IMPORTING): MOVED back unless the very next command follows ASKING.
    let moved = format!("MOVED {SLOT} {}", f.addrs[2]);
    assert_eq!(dst.text(&["GET", "{a}1"]).await, moved);
    assert_eq!(dst.text(&["ASKING"]).await, "OK");
    assert_eq!(dst.text(&["GET", "{a}1"]).await, "1");
    assert_eq!(
        dst.text(&["GET", "{a}1"]).await,
        moved,
        "ASKING lasts one command"
    );
    assert_eq!(dst.text(&["ASKING"]).await, "OK");
    assert_eq!(dst.text(&["PING"]).await, "PONG");
    assert_eq!(
        dst.text(&["GET", "{a}1"]).await,
        moved,
        "any command consumes ASKING"
    );
    assert_eq!(dst.text(&["ASKING"]).await, "OK");
    assert_eq!(dst.text(&["MGET", "{a}1", "{a}2"]).await, TRYAGAIN);
    assert_eq!(dst.text(&["ASKING"]).await, "OK");
    assert_eq!(dst.text(&["MGET", "{a}8", "{a}9"]).await, TRYAGAIN);
    assert_eq!(dst.text(&["ASKING"]).await, "OK");
    assert!(matches!(
        dst.cmd(&["MGET", "{a}1", "{a}1"]).await,
        Value::Array(v) if v.len() == 2
    ));
    // A third node knows nothing of the move: MOVED to the owner.
    let mut other = f.client(1).await;
    assert_eq!(other.text(&["GET", "{a}1"]).await, moved);
}

#[tokio::test]
async fn setslot_node_finishes_the_move_on_every_node() {
    let f = three().await;
    let (mut src, mut dst) = (f.client(2).await, f.client(0).await);
    assert_eq!(src.text(&["MSET", "{a}1", "1", "{a}2", "2"]).await, "OK");
    f.open(&mut src, &mut dst).await;
    let port = f.port(0);
    let node_to_dst = ["CLUSTER", "SETSLOT", SLOT, "NODE", &f.ids[0]];
    assert_eq!(
        src.text(&node_to_dst).await,
        format!(
            "ERR Can't assign hashslot {SLOT} to a different node while I still hold keys for this hash slot."
        )
    );
    let mv = [
        "MIGRATE",
        "127.0.0.1",
        &port,
        "",
        "0",
        "5000",
        "KEYS",
        "{a}1",
        "{a}2",
    ];
    assert_eq!(src.text(&mv).await, "OK");
    let epoch_before = info_field(&mut dst, "cluster_my_epoch").await;
    assert_eq!(dst.text(&node_to_dst).await, "OK");
    let epoch_after = info_field(&mut dst, "cluster_my_epoch").await;
    assert!(
        epoch_after > epoch_before,
        "{epoch_before} -> {epoch_after}"
    );
    // Open-slot markers are gone on the target; gossip carries the new owner everywhere,
    // the source included (its MIGRATING state closes with it).
    let nodes = dst.text(&["CLUSTER", "NODES"]).await;
    assert!(!nodes.contains('['), "{nodes}");
    for i in [1, 2] {
        let mut c = f.client(i).await;
        let moved = format!("MOVED {SLOT} {}", f.addrs[0]);
        wait_reply(&mut c, &["GET", "{a}1"], &moved).await;
        let nodes = c.text(&["CLUSTER", "NODES"]).await;
        assert!(!nodes.contains('['), "{nodes}");
    }
    assert_eq!(dst.text(&["GET", "{a}2"]).await, "2");
    // Errors of SETSLOT as Redis words them.
    let unknown = "0000000000000000000000000000000000000000";
    assert_eq!(
        dst.text(&["CLUSTER", "SETSLOT", SLOT, "NODE", unknown])
            .await,
        format!("ERR Unknown node {unknown}")
    );
    assert_eq!(
        dst.text(&["CLUSTER", "SETSLOT", SLOT, "MIGRATING", unknown])
            .await,
        format!("ERR I don't know about node {unknown}")
    );
    assert_eq!(
        dst.text(&["CLUSTER", "SETSLOT", SLOT, "IMPORTING", &f.ids[2]])
            .await,
        format!("ERR I'm already the owner of hash slot {SLOT}")
    );
    assert_eq!(
        src.text(&["CLUSTER", "SETSLOT", SLOT, "MIGRATING", &f.ids[0]])
            .await,
        format!("ERR I'm not the owner of hash slot {SLOT}")
    );
    drop(f.cluster);
}

#[tokio::test]
async fn replicas_follow_migrate_del_on_the_source_and_restore_on_the_target() {
    let f = fixture(TestCluster::builder().primaries(3).replicas_per_primary(1)).await;
    // Nodes 3, 4, 5 replicate 0, 1, 2.
    let (mut src, mut dst) = (f.client(2).await, f.client(0).await);
    let (mut src_replica, mut dst_replica) = (f.client(5).await, f.client(3).await);
    assert_eq!(src_replica.text(&["READONLY"]).await, "OK");
    assert_eq!(dst_replica.text(&["READONLY"]).await, "OK");
    assert_eq!(src.text(&["SET", "{a}1", "v"]).await, "OK");
    f.open(&mut src, &mut dst).await;
    wait_reply(&mut src_replica, &["GET", "{a}1"], "v").await;
    let port = f.port(0);
    let mv = ["MIGRATE", "127.0.0.1", &port, "{a}1", "0", "5000"];
    assert_eq!(src.text(&mv).await, "OK");
    let count = ["CLUSTER", "COUNTKEYSINSLOT", SLOT];
    wait_reply(&mut dst_replica, &count, "1").await;
    wait_reply(&mut src_replica, &count, "0").await;
}

#[tokio::test]
async fn restore_asking_is_refused_without_an_open_slot_and_works_with_one() {
    let f = three().await;
    let (mut src, mut dst) = (f.client(2).await, f.client(0).await);
    let moved = format!("MOVED {SLOT} {}", f.addrs[2]);
    assert_eq!(
        dst.text(&["RESTORE-ASKING", "{a}1", "0", "x"]).await,
        moved,
        "not importing: RESTORE-ASKING is routed like any write"
    );
    f.open(&mut src, &mut dst).await;
    assert_eq!(
        dst.text(&["RESTORE-ASKING", "{a}1", "0", "garbage"]).await,
        "ERR DUMP payload version or checksum are wrong"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_racing_a_migrate_are_not_lost() {
    let f = three().await;
    let (mut src, mut dst) = (f.client(2).await, f.client(0).await);
    // Many keys make each MIGRATE exchange long enough for writes to land inside it.
    let mut mset = vec!["MSET".to_string()];
    for i in 0..200 {
        mset.push(format!("{{a}}k{i}"));
        mset.push("0".to_string());
    }
    let args: Vec<&str> = mset.iter().map(String::as_str).collect();
    assert_eq!(src.text(&args).await, "OK");
    f.open(&mut src, &mut dst).await;

    let (src_addr, dst_addr) = (f.addrs[2], f.addrs[0]);
    let writer = tokio::spawn(async move {
        let mut s = Client::connect(src_addr).await;
        let mut d = Client::connect(dst_addr).await;
        let mut done = 0i64;
        for round in 0..2000 {
            let key = format!("{{a}}k{}", round % 4);
            incr_following_ask(&mut s, &mut d, &key).await;
            done += 1;
        }
        done
    });
    let port = f.port(0);
    for batch in (0..200).collect::<Vec<_>>().chunks(10) {
        let mut mv: Vec<String> = ["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        mv.extend(batch.iter().map(|i| format!("{{a}}k{i}")));
        let args: Vec<&str> = mv.iter().map(String::as_str).collect();
        assert_eq!(src.text(&args).await, "OK");
    }
    let done = writer.await.expect("writer");
    assert_eq!(src.text(&["CLUSTER", "COUNTKEYSINSLOT", SLOT]).await, "0");
    let mut total = 0;
    for i in 0..4 {
        assert_eq!(dst.text(&["ASKING"]).await, "OK");
        total += dst
            .text(&["GET", &format!("{{a}}k{i}")])
            .await
            .parse::<i64>()
            .expect("a counter");
    }
    assert_eq!(total, done, "every acknowledged INCR is in the moved keys");
}

#[tokio::test]
async fn asking_covers_a_whole_transaction_on_the_importing_node() {
    let f = three().await;
    let (mut src, mut dst) = (f.client(2).await, f.client(0).await);
    assert_eq!(src.text(&["SET", "{a}1", "1"]).await, "OK");
    f.open(&mut src, &mut dst).await;
    let port = f.port(0);
    let mv = ["MIGRATE", "127.0.0.1", &port, "{a}1", "0", "5000"];
    assert_eq!(src.text(&mv).await, "OK");
    // Every queued command is accepted; EXEC then sees one key missing among several.
    assert_eq!(dst.text(&["ASKING"]).await, "OK");
    assert_eq!(dst.text(&["MULTI"]).await, "OK");
    assert_eq!(dst.text(&["SET", "{a}m", "1"]).await, "QUEUED");
    assert_eq!(dst.text(&["GET", "{a}1"]).await, "QUEUED");
    assert_eq!(dst.text(&["EXEC"]).await, TRYAGAIN);
    // Keys all present: the transaction runs.
    assert_eq!(dst.text(&["ASKING"]).await, "OK");
    assert_eq!(dst.text(&["MULTI"]).await, "OK");
    assert_eq!(dst.text(&["INCR", "{a}1"]).await, "QUEUED");
    assert_eq!(dst.text(&["GET", "{a}1"]).await, "QUEUED");
    assert!(matches!(dst.cmd(&["EXEC"]).await, Value::Array(v) if v.len() == 2));
    // EXEC and DISCARD end it.
    let moved = format!("MOVED {SLOT} {}", f.addrs[2]);
    assert_eq!(dst.text(&["GET", "{a}1"]).await, moved);
    assert_eq!(dst.text(&["ASKING"]).await, "OK");
    assert_eq!(dst.text(&["MULTI"]).await, "OK");
    assert_eq!(dst.text(&["DISCARD"]).await, "OK");
    assert_eq!(dst.text(&["GET", "{a}1"]).await, moved);
}

#[tokio::test]
async fn migrate_reuses_its_connection_to_a_target() {
    let f = three().await;
    let (mut src, mut dst) = (f.client(2).await, f.client(0).await);
    assert_eq!(
        src.text(&["MSET", "{a}1", "1", "{a}2", "2", "{a}3", "3"])
            .await,
        "OK"
    );
    f.open(&mut src, &mut dst).await;
    let port = f.port(0);
    let before = connections_received(&mut dst).await;
    for key in ["{a}1", "{a}2", "{a}3"] {
        let mv = ["MIGRATE", "127.0.0.1", &port, key, "0", "5000"];
        assert_eq!(src.text(&mv).await, "OK");
    }
    let after = connections_received(&mut dst).await;
    assert_eq!(
        after,
        before + 1,
        "one cached connection for three MIGRATEs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_deleted_and_rewritten_during_its_migrate_keeps_the_new_value() {
    let f = three().await;
    let (mut src, mut dst) = (f.client(2).await, f.client(0).await);
    let mut mset = vec!["MSET".to_string()];
    for i in 0..400 {
        mset.push(format!("{{a}}k{i}"));
        mset.push("100".to_string());
    }
    // Big filler keys in every batch keep each exchange long enough to race with.
    let filler = "x".repeat(64 * 1024);
    for i in 0..200 {
        mset.push(format!("{{a}}f{i}"));
        mset.push(filler.clone());
    }
    let args: Vec<&str> = mset.iter().map(String::as_str).collect();
    assert_eq!(src.text(&args).await, "OK");
    f.open(&mut src, &mut dst).await;

    let (src_addr, dst_addr) = (f.addrs[2], f.addrs[0]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_writer = stop.clone();
    // The first key of the batch being migrated: the writer works on that batch.
    let current = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let current_writer = current.clone();
    // Delete a key, then INCR it: it must count from zero, wherever the key lives now.
    let writer = tokio::spawn(async move {
        let mut s = Client::connect(src_addr).await;
        let mut d = Client::connect(dst_addr).await;
        let mut round = 0usize;
        while !stop_writer.load(std::sync::atomic::Ordering::Relaxed) {
            let first = current_writer.load(std::sync::atomic::Ordering::Relaxed);
            let key = format!("{{a}}k{}", first + round % 10);
            del_following_ask(&mut s, &mut d, &key).await;
            let n = incr_following_ask(&mut s, &mut d, &key).await;
            assert_eq!(n, 1, "INCR after DEL of {key}");
            round += 1;
        }
        round
    });
    let port = f.port(0);
    for batch in (0..400).collect::<Vec<_>>().chunks(10) {
        current.store(batch[0], std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(1)).await;
        let mut mv: Vec<String> = ["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        mv.extend(batch.iter().map(|i| format!("{{a}}k{i}")));
        mv.extend((batch[0] / 2..batch[0] / 2 + 5).map(|i| format!("{{a}}f{i}")));
        let args: Vec<&str> = mv.iter().map(String::as_str).collect();
        let reply = src.text(&args).await;
        assert!(reply == "OK" || reply == "NOKEY", "{reply}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rounds = writer.await.expect("writer");
    assert!(rounds > 0);
}
