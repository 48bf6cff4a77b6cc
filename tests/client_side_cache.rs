//! The client-side cache (`ClientBuilder::client_cache`) against a real redis-server 7
//! cluster (3 primaries, 1 replica each) and the bundled one: hits without a round trip (the
//! node's commandstats do not move), and the invalidation sources another client's write,
//! DEL, expiry, FLUSHALL (the null form), a killed connection (CLIENT KILL) and this
//! client's own write on both; a slot migrated away and a primary killed (failover) on the
//! real cluster here, on both in the consistency checker's short runs; BCAST and OPTIN modes;
//! `max_bytes` never exceeded; the stats.

mod support;

#[path = "../examples/cache_consistency/check.rs"]
mod check;

use std::time::Duration;

use redcluster::{CacheMode, Client, ClientCache};
use support::real_cluster::{cli, RealCluster};
// What the consistency checker (examples/cache_consistency) reaches at the crate root.
use support::wait::{eventually, eventually_some, eventually_within, wait_until};
use support::{bundled, raw, real_cluster};

/// `cmdstat_<cmd>` calls on the node at `port`.
fn calls(port: u16, cmd: &str) -> u64 {
    let prefix = format!("cmdstat_{cmd}:calls=");
    cli(port, &["INFO", "commandstats"])
        .lines()
        .find_map(|l| l.trim().strip_prefix(prefix.as_str()).map(str::to_string))
        .and_then(|rest| rest.split(',').next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// Port of the primary serving `key`, as `client` sees the slot map.
fn owner_port(client: &Client, key: &str) -> u16 {
    let slot = redcluster::slot::key_slot(key.as_bytes());
    port_of(
        client
            .topology()
            .primary_for_slot(slot)
            .expect("slot owned"),
    )
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .expect("host:port")
}

async fn caching(seeds: &[String], name: &str, cache: ClientCache) -> Client {
    Client::builder(seeds)
        .client_name(name)
        .client_cache(cache)
        .build()
        .await
        .unwrap()
}

async fn plain(seeds: &[String]) -> Client {
    Client::builder(seeds).build().await.unwrap()
}

async fn get(client: &Client, key: &str) -> Option<String> {
    client.get(key).await.unwrap()
}

/// Wait until `client` reads `want` for `key` (an invalidation travels on its own
/// connection, so it may land a moment after another client's write was acknowledged).
async fn reads(client: &Client, key: &str, want: Option<&str>) {
    eventually(&format!("{key} reads {want:?}"), || async {
        get(client, key).await.as_deref() == want
    })
    .await;
}

#[tokio::test]
async fn hits_and_invalidations_in_every_mode_on_a_real_cluster() {
    let Some(c) = RealCluster::start(3, 1) else {
        return;
    };
    hits_and_invalidations(&c.seeds()).await;
}

// Multi-threaded: the checks' redis-cli calls block a runtime thread, and the bundled nodes
// answer them from this same runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_and_invalidations_in_every_mode_on_the_bundled_cluster() {
    let cluster = bundled::cluster().await;
    let seeds: Vec<String> = cluster.seeds().iter().map(|a| a.to_string()).collect();
    hits_and_invalidations(&seeds).await;
}

/// Every invalidation source but failover and migration (below), on the cluster behind
/// `seeds` (redis-cli reaches real and bundled nodes alike).
async fn hits_and_invalidations(seeds: &[String]) {
    let writer = plain(seeds).await;
    let cached = caching(seeds, "cached", ClientCache::new()).await;

    // A hit costs no round trip: the owner's GET count does not move.
    writer.set("k", "v1").await.unwrap();
    assert_eq!(get(&cached, "k").await.as_deref(), Some("v1"));
    let port = owner_port(&writer, "k");
    let before = calls(port, "get");
    for _ in 0..10 {
        assert_eq!(get(&cached, "k").await.as_deref(), Some("v1"));
    }
    assert_eq!(calls(port, "get"), before, "hits went to the server");
    let s = cached.cache_stats();
    assert_eq!((s.hits, s.misses, s.entries), (10, 1, 1), "{s:?}");
    assert!(s.bytes > 0);
    // `.uncached()` goes to the server.
    let v: Option<String> = cached.cmd("GET").arg("k").uncached().query().await.unwrap();
    assert_eq!(v.as_deref(), Some("v1"));
    assert_eq!(calls(port, "get"), before + 1);

    // Another client's write, then its DEL.
    writer.set("k", "v2").await.unwrap();
    reads(&cached, "k", Some("v2")).await;
    writer.del("k").await.unwrap();
    reads(&cached, "k", None).await;
    assert!(cached.cache_stats().invalidations >= 2);

    // Expiry: the node sends an invalidation when it expires the key.
    writer
        .set_ex("e", "x", Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(get(&cached, "e").await.as_deref(), Some("x"));
    assert_eq!(get(&cached, "e").await.as_deref(), Some("x"));
    reads(&cached, "e", None).await;

    // This client's own write is read back at once, before any push can arrive.
    cached.set("own", "a").await.unwrap();
    assert_eq!(get(&cached, "own").await.as_deref(), Some("a"));
    assert_eq!(get(&cached, "own").await.as_deref(), Some("a"));
    cached.set("own", "b").await.unwrap();
    assert_eq!(get(&cached, "own").await.as_deref(), Some("b"));
    let mut p = cached.pipeline();
    p.cmd("SET").arg("own").arg("c");
    p.query::<Vec<redcluster::Value>>().await.unwrap();
    assert_eq!(get(&cached, "own").await.as_deref(), Some("c"));
    let mut tx = cached.transaction();
    tx.cmd("SET").arg("own").arg("d");
    tx.exec::<Vec<redcluster::Value>>().await.unwrap();
    assert_eq!(get(&cached, "own").await.as_deref(), Some("d"));

    // Hashes, sets and MGET key by key.
    writer.hset("h", "f", "1").await.unwrap();
    writer.sadd("s", "m").await.unwrap();
    writer.set("m1", "1").await.unwrap();
    writer.set("m2", "2").await.unwrap();
    let hits = cached.cache_stats().hits;
    for _ in 0..2 {
        let f: Option<String> = cached.hget("h", "f").await.unwrap();
        assert_eq!(f.as_deref(), Some("1"));
        let all: std::collections::HashMap<String, String> = cached.hgetall("h").await.unwrap();
        assert_eq!(all.get("f").map(String::as_str), Some("1"));
        let members: Vec<String> = cached.smembers("s").await.unwrap();
        assert_eq!(members, vec!["m"]);
        let many: Vec<Option<String>> = cached
            .cmd("MGET")
            .arg("m1")
            .arg("nope")
            .arg("m2")
            .query()
            .await
            .unwrap();
        assert_eq!(many, vec![Some("1".into()), None, Some("2".into())]);
    }
    assert_eq!(cached.cache_stats().hits - hits, 6, "second round all hits");
    writer.hset("h", "f", "2").await.unwrap();
    eventually("HGET sees the change", || async {
        let f: Option<String> = cached.hget("h", "f").await.unwrap();
        f.as_deref() == Some("2")
    })
    .await;
    writer.set("m2", "22").await.unwrap();
    eventually("MGET sees the change", || async {
        let many: Vec<Option<String>> = cached.cmd("MGET").arg("m2").query().await.unwrap();
        many == vec![Some("22".to_string())]
    })
    .await;
    // Any read-only single-key command can opt in; others are refused.
    let enc: String = cached
        .cmd("OBJECT")
        .arg("ENCODING")
        .arg("m1")
        .cached()
        .query()
        .await
        .unwrap();
    assert!(!enc.is_empty());
    let refused = cached
        .cmd("SET")
        .arg("x")
        .arg("1")
        .cached()
        .query::<()>()
        .await;
    assert_eq!(refused.unwrap_err().kind(), redcluster::ErrorKind::Config);

    // FLUSHALL on every primary: the null invalidation drops everything read there.
    assert!(cached.cache_stats().entries > 0);
    for shard in writer.topology().shards() {
        cli(port_of(&shard.primary.addr), &["FLUSHALL"]);
    }
    eventually("FLUSHALL empties the cache", || async {
        cached.cache_stats().entries == 0
    })
    .await;
    assert_eq!(get(&cached, "m1").await, None);

    // A connection killed by the server: what was read through it goes.
    writer.set("kk", "1").await.unwrap();
    assert_eq!(get(&cached, "kk").await.as_deref(), Some("1"));
    let port = owner_port(&writer, "kk");
    let list = cli(port, &["CLIENT", "LIST"]);
    let ids: Vec<&str> = list
        .lines()
        .filter(|l| l.contains(" name=cached "))
        .filter_map(|l| l.strip_prefix("id=")?.split(' ').next())
        .collect();
    assert!(!ids.is_empty(), "{list}");
    let entries = cached.cache_stats().entries;
    for id in ids {
        cli(port, &["CLIENT", "KILL", "ID", id]);
    }
    eventually("a killed connection drops its entries", || async {
        cached.cache_stats().entries < entries
    })
    .await;
    assert_eq!(get(&cached, "kk").await.as_deref(), Some("1"));

    // BCAST: only keys under the prefixes are cached; changes are broadcast.
    let bcast = caching(
        seeds,
        "bcast",
        ClientCache::new().mode(CacheMode::Broadcast {
            prefixes: vec!["b:".into()],
        }),
    )
    .await;
    writer.set("b:1", "x").await.unwrap();
    writer.set("other", "y").await.unwrap();
    for _ in 0..3 {
        assert_eq!(get(&bcast, "b:1").await.as_deref(), Some("x"));
        assert_eq!(get(&bcast, "other").await.as_deref(), Some("y"));
    }
    let s = bcast.cache_stats();
    assert_eq!((s.hits, s.misses, s.entries), (2, 1, 1), "{s:?}");
    writer.set("b:1", "x2").await.unwrap();
    reads(&bcast, "b:1", Some("x2")).await;

    // OPTIN: each cached read carries CLIENT CACHING yes, or the node would not track it and
    // the change below would never reach the cache.
    let optin = caching(seeds, "optin", ClientCache::new().mode(CacheMode::OptIn)).await;
    writer.set("o:1", "x").await.unwrap();
    assert_eq!(get(&optin, "o:1").await.as_deref(), Some("x"));
    assert_eq!(get(&optin, "o:1").await.as_deref(), Some("x"));
    assert_eq!(optin.cache_stats().hits, 1);
    writer.set("o:1", "x2").await.unwrap();
    reads(&optin, "o:1", Some("x2")).await;
}

#[tokio::test]
async fn max_bytes_is_never_exceeded() {
    let Some(c) = RealCluster::start(3, 0) else {
        return;
    };
    let writer = plain(&c.seeds()).await;
    let max = 64 * 1024;
    let cached = caching(&c.seeds(), "small", ClientCache::new().max_bytes(max)).await;
    let value = "v".repeat(100);
    let keys: Vec<String> = (0..2000).map(|i| format!("fill:{i}")).collect();
    let mut p = writer.pipeline();
    for k in &keys {
        p.cmd("SET").arg(k).arg(&value);
    }
    p.query::<Vec<redcluster::Value>>().await.unwrap();
    for k in &keys {
        assert_eq!(get(&cached, k).await.as_deref(), Some(value.as_str()));
        let s = cached.cache_stats();
        assert!(s.bytes <= max as u64, "{} > {max}", s.bytes);
    }
    let s = cached.cache_stats();
    assert!(s.evictions > 0, "{s:?}");
    // Each entry (a ~10-byte key, a 100-byte value) costs a few hundred bytes all told; the
    // budget holds a good share of what fits.
    assert!(s.entries > 100 && s.bytes > max as u64 / 2, "{s:?}");
}

#[tokio::test]
async fn failover_and_migration_drop_what_they_must() {
    let Some(mut c) = RealCluster::start(3, 1) else {
        return;
    };
    let writer = Client::builder(c.seeds())
        .request_timeout(Duration::from_secs(8))
        .build()
        .await
        .unwrap();
    let cached = Client::builder(c.seeds())
        .client_cache(ClientCache::new())
        .request_timeout(Duration::from_secs(8))
        .connect_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();

    // A slot migrated to another primary: the key is read there afterwards.
    let key = "mig";
    let slot = redcluster::slot::key_slot(key.as_bytes());
    writer.set(key, "v1").await.unwrap();
    assert_eq!(get(&cached, key).await.as_deref(), Some("v1"));
    assert_eq!(get(&cached, key).await.as_deref(), Some("v1"));
    let src = c.primary_index_for_slot(slot);
    let dst = (0..3)
        .map(|i| c.primary_index_for_slot([0u16, 5500, 11000][i]))
        .find(|&i| i != src)
        .unwrap();
    let id = |i: usize| c.nodes[i].cli(&["CLUSTER", "MYID"]).trim().to_string();
    let (src_id, dst_id) = (id(src), id(dst));
    let s = slot.to_string();
    c.nodes[dst].cli(&["CLUSTER", "SETSLOT", &s, "IMPORTING", &src_id]);
    c.nodes[src].cli(&["CLUSTER", "SETSLOT", &s, "MIGRATING", &dst_id]);
    let port = c.nodes[dst].port.to_string();
    let out = c.nodes[src].cli(&["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS", key]);
    assert_eq!(out.trim(), "OK", "{out}");
    for n in &c.nodes {
        n.cli(&["CLUSTER", "SETSLOT", &s, "NODE", &dst_id]);
    }
    wait_until(Duration::from_secs(10), || {
        c.primary_index_for_slot(slot) == dst
    });
    writer.set(key, "v2").await.unwrap();
    reads(&cached, key, Some("v2")).await;
    assert_eq!(get(&cached, key).await.as_deref(), Some("v2"));

    // The key's primary killed: its connection's entries go at once, so once the write on
    // the promoted replica is acknowledged the first successful read sees it.
    let key = "fo";
    writer.set(key, "before").await.unwrap();
    assert_eq!(get(&cached, key).await.as_deref(), Some("before"));
    assert_eq!(get(&cached, key).await.as_deref(), Some("before"));
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
    c.nodes[p].kill();
    wait_until(Duration::from_secs(20), || {
        c.nodes[r]
            .cli(&["CLUSTER", "NODES"])
            .contains("myself,master")
    });
    eventually_within(
        Duration::from_secs(20),
        "a write after the failover",
        || async { writer.set(key, "after").await.is_ok() },
    )
    .await;
    let first = eventually_some("a read after the failover", || async {
        cached.get::<Option<String>>(key).await.ok()
    })
    .await;
    assert_eq!(first.as_deref(), Some("after"));
}

/// The consistency checker, short: no value that no write produced, the cache never over
/// `max_bytes`, through a killed primary and a reshard (bundled cluster, then real).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistency_checker_short_runs() {
    let opts = check::Options {
        secs: 6,
        ..check::Options::default()
    };
    let cluster = bundled::cluster().await;
    let seeds = cluster.seeds().iter().map(|a| a.to_string()).collect();
    let report = check::run(
        seeds,
        opts.clone(),
        check::bundled_faults(&cluster, opts.secs),
    )
    .await;
    println!("bundled:\n{report}");
    assert_eq!(report.phantoms, 0, "{report}");
    assert!(report.max_bytes_seen <= opts.max_bytes as u64, "{report}");
    assert!(
        report.reads > 0 && report.hits > 0 && report.writes > 0,
        "{report}"
    );
    drop(cluster);

    let Some(mut real) = RealCluster::start(3, 1) else {
        return;
    };
    let seeds = real.seeds();
    let report = check::run(
        seeds,
        opts.clone(),
        check::real_faults(&mut real, opts.secs),
    )
    .await;
    println!("real:\n{report}");
    assert_eq!(report.phantoms, 0, "{report}");
    assert!(report.max_bytes_seen <= opts.max_bytes as u64, "{report}");
    assert!(
        report.reads > 0 && report.hits > 0 && report.writes > 0,
        "{report}"
    );
}
