//! CLIENT TRACKING on the bundled server: replies and pushes compared byte for byte with a
//! real redis-server 7.0 (scenarios in tests/data/tracking/: a cluster node, and standalone
//! with databases, MOVE and SWAPDB), and each invalidation source
//! the differential scenarios cannot reach (expiry, slot migration, replication,
//! `tracking-table-max-keys`) on the bundled cluster.

mod support;

use std::net::SocketAddr;

use redcluster::resp::Value;
use redcluster::server::TestCluster;
use support::raw::Client;
use support::real_cluster::RealCluster;
use support::tracking_diff::{run, Side};
use support::wait::eventually;

#[tokio::test]
async fn tracking_replies_and_pushes_match_redis_server_byte_for_byte() {
    let Some(real) = RealCluster::single() else {
        return;
    };
    let ours = TestCluster::builder().primaries(1).start().await.unwrap();
    let mut compared = 0;
    for name in [
        "errors.txt",
        "default_resp3.txt",
        "noloop_optin_optout.txt",
        "bcast.txt",
        "redirect.txt",
        "scripts.txt",
    ] {
        let path = format!("{}/tests/data/tracking/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("scenario");
        // Fresh connections and keyspace per scenario.
        let mut r = Side::new(real.nodes[0].addr());
        let mut o = Side::new(ours.seeds()[0]);
        compared += run(&mut r, &mut o, name, &text).await;
        compared += run(&mut r, &mut o, name, "Z> FLUSHALL\nZ> CLIENT TRACKING off").await;
    }
    assert!(compared > 300, "only {compared} comparisons");
    ours.shutdown().await;
}

#[tokio::test]
async fn standalone_tracking_matches_redis_server_byte_for_byte() {
    let Some(real) = support::real_standalone::RealReplicaSet::start(0) else {
        return;
    };
    let ours = redcluster::server::TestReplicaSet::builder()
        .replicas(0)
        .start()
        .await
        .unwrap();
    let name = "standalone_dbs.txt";
    let path = format!("{}/tests/data/tracking/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("scenario");
    let mut r = Side::new(real.nodes[0].addr().parse().unwrap());
    let mut o = Side::new(ours.primary());
    let compared = run(&mut r, &mut o, name, &text).await;
    assert!(compared > 30, "only {compared} comparisons");
}

/// A RESP3 connection to `addr` tracking keys in default mode.
async fn tracker(addr: SocketAddr) -> Client {
    let mut c = Client::connect(addr).await;
    c.cmd(&["HELLO", "3"]).await;
    assert_eq!(c.cmd(&["CLIENT", "TRACKING", "on"]).await, Value::ok());
    c
}

/// The next frame on `c` must be `>2 invalidate [keys]` (bounded by the raw client's limit).
async fn expect_invalidate(c: &mut Client, keys: &[&str]) {
    let want = Value::Push(vec![
        Value::bulk("invalidate"),
        Value::Array(keys.iter().map(|k| Value::bulk(*k)).collect()),
    ]);
    assert_eq!(c.read().await, Some(want));
}

fn addr_of(cluster: &TestCluster, i: usize) -> SocketAddr {
    cluster.nodes()[i].addr
}

#[tokio::test]
async fn active_and_lazy_expiry_invalidate() {
    let ours = TestCluster::builder().primaries(1).start().await.unwrap();
    let addr = ours.seeds()[0];
    let mut a = tracker(addr).await;
    let mut b = Client::connect(addr).await;
    // Active expiry: the cron deletes the key and the push follows without any command.
    b.cmd(&["SET", "ex1", "v", "PX", "30"]).await;
    assert_eq!(a.cmd(&["GET", "ex1"]).await, Value::bulk("v"));
    expect_invalidate(&mut a, &["ex1"]).await;
    // Lazy expiry: with active expiry off, another client's access deletes it.
    b.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]).await;
    b.cmd(&["SET", "ex2", "v", "PX", "30"]).await;
    assert_eq!(a.cmd(&["GET", "ex2"]).await, Value::bulk("v"));
    eventually("ex2 expired", || {
        let probe = Client::connect(addr);
        async move { probe.await.cmd(&["EXISTS", "ex2"]).await == Value::Integer(0) }
    })
    .await;
    expect_invalidate(&mut a, &["ex2"]).await;
    // And the reader's own access: its reply first, then the push.
    b.cmd(&["SET", "ex3", "v", "PX", "30"]).await;
    assert_eq!(a.cmd(&["GET", "ex3"]).await, Value::bulk("v"));
    eventually("ex3 past its TTL", || {
        let probe = Client::connect(addr);
        async move { probe.await.cmd(&["PTTL", "ex3"]).await == Value::Integer(-2) }
    })
    .await;
    expect_invalidate(&mut a, &["ex3"]).await;
    b.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]).await;
    ours.shutdown().await;
}

#[tokio::test]
async fn a_replica_applying_its_primarys_writes_invalidates_its_readers() {
    let ours = support::bundled::primary_and_replica().await;
    let replica = addr_of(&ours, support::bundled::replica_of(&ours, 0));
    let primary = ours.seeds()[0];
    let mut p = Client::connect(primary).await;
    p.cmd(&["SET", "rk", "1"]).await;
    support::bundled::wait_replicas_synced(&ours).await;
    let mut r = tracker(replica).await;
    assert_eq!(r.cmd(&["READONLY"]).await, Value::ok());
    assert_eq!(r.cmd(&["GET", "rk"]).await, Value::bulk("1"));
    p.cmd(&["SET", "rk", "2"]).await;
    expect_invalidate(&mut r, &["rk"]).await;
    assert_eq!(r.cmd(&["GET", "rk"]).await, Value::bulk("2"));
    p.cmd(&["FLUSHALL"]).await;
    assert_eq!(
        r.read().await,
        Some(Value::Push(vec![Value::bulk("invalidate"), Value::Null]))
    );
    ours.shutdown().await;
}

#[tokio::test]
async fn keys_migrated_away_are_invalidated_on_the_source() {
    let ours = support::bundled::three_primaries().await;
    let key = "mig{x}";
    let slot = redcluster::slot::key_slot(key.as_bytes());
    let src = support::bundled::owner_index(slot);
    let dst = (src + 1) % 3;
    let (src_addr, dst_addr) = (addr_of(&ours, src), addr_of(&ours, dst));
    let mut w = Client::connect(src_addr).await;
    w.cmd(&["SET", key, "v"]).await;
    let mut a = tracker(src_addr).await;
    assert_eq!(a.cmd(&["GET", key]).await, Value::bulk("v"));
    let (s, d) = (src_addr.to_string(), dst_addr.to_string());
    support::bundled::move_slot(&ours, slot, &s, &d).await;
    expect_invalidate(&mut a, &[key]).await;
    // The key now lives on the destination, whose readers are tracked there.
    let mut b = tracker(dst_addr).await;
    assert_eq!(b.cmd(&["GET", key]).await, Value::bulk("v"));
    let mut w2 = Client::connect(dst_addr).await;
    w2.cmd(&["DEL", key]).await;
    expect_invalidate(&mut b, &[key]).await;
    ours.shutdown().await;
}

#[tokio::test]
async fn the_table_stays_within_tracking_table_max_keys() {
    let ours = TestCluster::builder().primaries(1).start().await.unwrap();
    let addr = ours.seeds()[0];
    let mut admin = Client::connect(addr).await;
    assert_eq!(
        admin
            .cmd(&["CONFIG", "SET", "tracking-table-max-keys", "5"])
            .await,
        Value::ok()
    );
    assert_eq!(
        support::raw::parts(
            &admin
                .cmd(&["CONFIG", "GET", "tracking-table-max-keys"])
                .await
        ),
        ["tracking-table-max-keys", "5"]
    );
    let mut a = tracker(addr).await;
    let keys: Vec<String> = (0..10).map(|i| format!("mk{i}")).collect();
    // Each command first brings the table back to the limit (as Redis before running it:
    // the evicted keys, this client's own, are pushed before its reply), and so does the
    // cron (pushed whenever it runs): 10 reads and a PING leave 5 keys, 5 evicted.
    for k in &keys {
        a.send(&["GET", k]).await;
    }
    a.send(&["PING"]).await;
    let (mut pushed, mut replies) = (Vec::new(), 0);
    while replies < 11 || pushed.len() < 5 {
        match a.read().await.expect("open") {
            Value::Push(items) => pushed.extend(support::raw::parts(&items[1])),
            Value::Null | Value::SimpleString(_) => replies += 1,
            other => panic!("{other:?}"),
        }
    }
    // Nothing more is due.
    assert_eq!(a.cmd(&["PING"]).await, Value::simple("PONG"));
    assert_eq!(pushed.len(), 5, "evicted keys pushed: {pushed:?}");
    assert!(pushed.iter().all(|k| keys.contains(k)), "{pushed:?}");
    let info = support::raw::text(&admin.cmd(&["INFO", "stats"]).await);
    assert!(info.contains("tracking_total_keys:5\r\n"), "{info}");
    ours.shutdown().await;
}

#[tokio::test]
async fn client_list_and_info_show_tracking_flags() {
    let ours = TestCluster::builder().primaries(1).start().await.unwrap();
    let addr = ours.seeds()[0];
    let mut target = Client::connect(addr).await;
    target.cmd(&["HELLO", "3"]).await;
    let Value::Integer(tid) = target.cmd(&["CLIENT", "ID"]).await else {
        panic!("CLIENT ID")
    };
    let mut a = Client::connect(addr).await;
    a.cmd(&["HELLO", "3"]).await;
    let info = |v: Value| support::raw::text(&v);
    assert!(info(a.cmd(&["CLIENT", "INFO"]).await).contains(" flags=N "));
    let tid = tid.to_string();
    a.cmd(&["CLIENT", "TRACKING", "on", "REDIRECT", &tid]).await;
    let line = info(a.cmd(&["CLIENT", "INFO"]).await);
    assert!(
        line.contains(" flags=t ") && line.contains(&format!(" redir={tid} ")),
        "{line}"
    );
    a.cmd(&["GET", "fk"]).await;
    drop(target);
    // Once the target is gone, the next invalidation finds the redirect broken.
    let gone = format!("id={tid} ");
    eventually("the redirect target gone", || {
        let probe = Client::connect(addr);
        let gone = gone.clone();
        async move {
            let list = support::raw::text(&probe.await.cmd(&["CLIENT", "LIST"]).await);
            !list.contains(&gone)
        }
    })
    .await;
    Client::connect(addr).await.cmd(&["SET", "fk", "1"]).await;
    let pushed = a.read().await.expect("a push");
    assert_eq!(
        pushed,
        Value::Push(vec![
            Value::bulk("tracking-redir-broken"),
            Value::Integer(tid.parse().unwrap())
        ])
    );
    let line = info(a.cmd(&["CLIENT", "INFO"]).await);
    assert!(line.contains(" flags=tR "), "{line}");
    a.cmd(&["CLIENT", "TRACKING", "off"]).await;
    a.cmd(&["CLIENT", "TRACKING", "on", "BCAST"]).await;
    let list = info(a.cmd(&["CLIENT", "LIST"]).await);
    assert!(
        list.contains(" flags=tB ") && list.contains(" redir=0 "),
        "{list}"
    );
    ours.shutdown().await;
}

#[tokio::test]
async fn keys_of_a_slot_given_away_without_migration_are_invalidated() {
    let ours = support::bundled::three_primaries().await;
    let key = "lost{y}";
    let slot = redcluster::slot::key_slot(key.as_bytes());
    let src = support::bundled::owner_index(slot);
    let dst = (src + 1) % 3;
    let (src_addr, dst_addr) = (addr_of(&ours, src), addr_of(&ours, dst));
    Client::connect(src_addr)
        .await
        .cmd(&["SET", key, "v"])
        .await;
    let mut a = tracker(src_addr).await;
    assert_eq!(a.cmd(&["GET", key]).await, Value::bulk("v"));
    // The destination takes the slot with a newer epoch (bumped first, so the source's own
    // claim cannot win it back): the source learns it by gossip and drops the slot's keys,
    // as Redis deletes the keys of a slot it lost.
    let dst_id = support::bundled::primary_id(&ours, &dst_addr.to_string());
    let mut d = Client::connect(dst_addr).await;
    let s = slot.to_string();
    d.cmd(&["CLUSTER", "BUMPEPOCH"]).await;
    assert_eq!(
        d.cmd(&["CLUSTER", "SETSLOT", &s, "NODE", &dst_id]).await,
        Value::ok()
    );
    expect_invalidate(&mut a, &[key]).await;
    ours.shutdown().await;
}

#[tokio::test]
async fn an_expiry_is_nobodys_write_even_for_a_bcast_noloop_reader() {
    let ours = TestCluster::builder().primaries(1).start().await.unwrap();
    let addr = ours.seeds()[0];
    let mut c = Client::connect(addr).await;
    c.cmd(&["HELLO", "3"]).await;
    let on = [
        "CLIENT", "TRACKING", "on", "BCAST", "NOLOOP", "PREFIX", "bx",
    ];
    assert_eq!(c.cmd(&on).await, Value::ok());
    c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]).await;
    // Its own write is not reported back (NOLOOP) ...
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 30;
    let pxat = at.to_string();
    assert_eq!(
        c.cmd(&["SET", "bx1", "v", "PXAT", &pxat]).await,
        Value::ok()
    );
    // ... but the key expiring under its own read is (Redis reports expiry with no client).
    support::wait::wait_until(std::time::Duration::from_secs(5), || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            > at
    });
    assert_eq!(c.cmd(&["GET", "bx1"]).await, Value::Null);
    expect_invalidate(&mut c, &["bx1"]).await;
    assert_eq!(c.cmd(&["PING"]).await, Value::simple("PONG"));
    c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]).await;
    ours.shutdown().await;
}
