//! `Json<T>`, per-command read policy and the `Cache` against the bundled cluster:
//! entries, TTL and jitter, nulls, clear across primaries, single flight, loader errors and
//! cancellation, and read-your-writes against replicas that lag.
#![cfg(all(feature = "server", feature = "serde"))]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redcluster::cache::BytesCodec;
use redcluster::{Bytes, Client, ErrorKind, Json, ReadFrom};
use serde::{Deserialize, Serialize};
use support::bundled::{cluster, wait_replicas_synced};
use support::wait::bounded;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct User {
    id: u64,
    name: String,
    version: u64,
}

fn user(id: u64, version: u64) -> User {
    User {
        id,
        name: format!("user {id}"),
        version,
    }
}

#[tokio::test]
async fn json_values_as_arguments_and_replies() {
    let c = cluster().await;
    let client = Client::builder(c.seeds()).build().await.unwrap();
    client.set("json:1", Json(&user(1, 3))).await.unwrap();
    let Json(u): Json<User> = client.get("json:1").await.unwrap();
    assert_eq!(u, user(1, 3));
    let raw: String = client.get("json:1").await.unwrap();
    assert_eq!(raw, r#"{"id":1,"name":"user 1","version":3}"#);
    let missing: Option<Json<User>> = client.get("json:missing").await.unwrap();
    assert!(missing.is_none());

    client.set("json:bad", "not json").await.unwrap();
    let e = client.get::<Json<User>>("json:bad").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert!(e.to_string().starts_with("GET: "), "{e}");

    // A value serde refuses fails its command before anything is sent.
    let mut bad = std::collections::HashMap::new();
    bad.insert((1u8, 2u8), 3u8);
    let e = client.set("json:unsent", Json(&bad)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert!(e.to_string().starts_with("SET: "), "{e}");
    assert!(!client.exists("json:unsent").await.unwrap());
    c.shutdown().await;
}

#[tokio::test]
async fn entries_ttl_prefix_nulls_and_stats() {
    let c = cluster().await;
    let client = Client::builder(c.seeds()).build().await.unwrap();
    let users = client.cache::<User>("users").ttl_jitter(0.1);
    assert_eq!(users.full_key(7), "users::7");
    assert_eq!(users.get(7).await.unwrap(), None);
    users.put(7, &user(7, 1)).await.unwrap();
    assert_eq!(users.get(7).await.unwrap(), Some(user(7, 1)));
    // Stored as plain JSON under Spring's `name::key`, with the 30-minute TTL ± 10 %.
    let Json(stored): Json<User> = client.get("users::7").await.unwrap();
    assert_eq!(stored, user(7, 1));
    let pttl: i64 = client.cmd("PTTL").arg("users::7").query().await.unwrap();
    assert!((1_600_000..=1_980_000).contains(&pttl), "{pttl}");
    assert!(users.evict(7).await.unwrap());
    assert!(!users.evict(7).await.unwrap());
    assert_eq!(users.get(7).await.unwrap(), None);
    let s = users.stats();
    assert_eq!((s.hits, s.misses), (1, 2), "{s:?}");

    // A loader's None is cached as a null (the loader is not asked again) ...
    let loads = AtomicUsize::new(0);
    let load_none = |cache: redcluster::Cache<User>| {
        let loads = &loads;
        async move {
            let got = cache
                .get_or_load(8, || async {
                    loads.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, std::io::Error>(None)
                })
                .await
                .unwrap();
            assert_eq!(got, None);
        }
    };
    for _ in 0..3 {
        load_none(users.clone()).await;
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    // ... unless cache_nulls is off.
    let no_nulls = client.cache::<User>("nonull").cache_nulls(false);
    for _ in 0..2 {
        load_none(no_nulls.clone()).await;
    }
    assert_eq!(loads.load(Ordering::SeqCst), 3);
    assert!(!client.exists("nonull::8").await.unwrap());

    // Bytes pass through unchanged, with a prefix of our own.
    let raw = client
        .cache::<Bytes>("raw")
        .codec(BytesCodec)
        .key_prefix("blobs:")
        .ttl(Duration::from_secs(5));
    raw.put("a", &Bytes::from_static(b"\x00\xff"))
        .await
        .unwrap();
    let b: Bytes = client.get("blobs:a").await.unwrap();
    assert_eq!(&b[..], b"\x00\xff");
    assert_eq!(
        raw.get("a").await.unwrap().as_deref(),
        Some(&b"\x00\xff"[..])
    );

    // An entry that no longer decodes as the type is reported by get, reloaded by
    // get_or_load.
    client.set("users::9", "{\"id\":\"x\"}").await.unwrap();
    assert_eq!(users.get(9).await.unwrap_err().kind(), ErrorKind::Decode);
    let got = users
        .get_or_load(9, || async { Ok::<_, std::io::Error>(Some(user(9, 2))) })
        .await
        .unwrap();
    assert_eq!(got, Some(user(9, 2)));
    assert_eq!(users.get(9).await.unwrap(), Some(user(9, 2)));
    c.shutdown().await;
}

#[tokio::test]
async fn clear_removes_every_key_of_the_prefix_on_every_primary() {
    let c = cluster().await;
    let client = Client::builder(c.seeds()).build().await.unwrap();
    let users = client.cache::<u64>("users");
    for i in 0..300u64 {
        users.put(i, &i).await.unwrap();
    }
    // Keys of the same shape outside the prefix, and a prefix with glob characters.
    client.set("users:x", 1).await.unwrap();
    client.set("usersX::1", 1).await.unwrap();
    let odd = client.cache::<u64>("odd").key_prefix("a*[b]::");
    odd.put(1, &1).await.unwrap();
    client.set("aZb::1", 1).await.unwrap();

    let owners: std::collections::HashSet<_> = (0..300u64)
        .map(|i| redcluster::slot::key_slot(users.full_key(i).as_bytes()))
        .filter_map(|s| client.topology().primary_for_slot(s).map(str::to_string))
        .collect();
    assert_eq!(owners.len(), 3, "the keys span every primary");

    assert_eq!(users.clear().await.unwrap(), 300);
    assert_eq!(users.get(5).await.unwrap(), None);
    assert!(client.exists("users:x").await.unwrap());
    assert!(client.exists("usersX::1").await.unwrap());
    assert_eq!(odd.clear().await.unwrap(), 1);
    assert!(client.exists("aZb::1").await.unwrap());
    c.shutdown().await;
}

#[tokio::test]
async fn get_or_load_runs_the_loader_once_for_concurrent_misses() {
    let c = cluster().await;
    let client = Client::builder(c.seeds()).build().await.unwrap();
    let users = client.cache::<User>("users");
    let loads = Arc::new(AtomicUsize::new(0));
    let (release, gate) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (users, loads, mut gate) = (users.clone(), loads.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            users
                .get_or_load(1, || async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    // Hold the load until the test lets it go, so every task has missed.
                    let _ = gate.wait_for(|open| *open).await;
                    Ok::<_, std::io::Error>(Some(user(1, 1)))
                })
                .await
        }));
    }
    support::wait::eventually("every task missed", || {
        let s = users.stats();
        async move { s.misses == 200 }
    })
    .await;
    release.send(true).unwrap();
    for t in tasks {
        assert_eq!(bounded(t).await.unwrap().unwrap(), Some(user(1, 1)));
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    let s = users.stats();
    assert_eq!((s.loads, s.load_errors, s.misses), (1, 0, 200), "{s:?}");
    assert_eq!(users.get(1).await.unwrap(), Some(user(1, 1)));
    c.shutdown().await;
}

#[derive(Debug)]
struct DbDown;
impl std::fmt::Display for DbDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("database down")
    }
}
impl std::error::Error for DbDown {}

#[tokio::test]
async fn a_loader_error_reaches_every_waiter_and_is_not_cached() {
    let c = cluster().await;
    let client = Client::builder(c.seeds()).build().await.unwrap();
    let users = client.cache::<User>("users");
    let (release, gate) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (users, mut gate) = (users.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            users
                .get_or_load(2, || async move {
                    let _ = gate.wait_for(|open| *open).await;
                    Err::<Option<User>, _>(DbDown)
                })
                .await
        }));
    }
    support::wait::eventually("every task missed", || {
        let s = users.stats();
        async move { s.misses == 50 }
    })
    .await;
    release.send(true).unwrap();
    for t in tasks {
        let e = bounded(t).await.unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Load);
        let source = std::error::Error::source(&e).expect("the loader's error");
        assert!(source.downcast_ref::<DbDown>().is_some(), "{source}");
    }
    let s = users.stats();
    assert_eq!((s.loads, s.load_errors), (1, 1), "{s:?}");
    // Nothing was cached: the next call loads again.
    let got = users
        .get_or_load(2, || async { Ok::<_, DbDown>(Some(user(2, 1))) })
        .await
        .unwrap();
    assert_eq!(got, Some(user(2, 1)));
    assert_eq!(users.stats().loads, 2);

    // Errors convert with `?` into the boxed errors web frameworks use.
    fn boxed() -> Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        Err(redcluster::Error::conversion("x"))?
    }
    assert!(boxed().is_err());
    c.shutdown().await;
}

#[tokio::test]
async fn a_cancelled_loader_hands_the_load_to_a_waiter() {
    let c = cluster().await;
    let client = Client::builder(c.seeds()).build().await.unwrap();
    let users = client.cache::<User>("users");
    let leader = {
        let users = users.clone();
        tokio::spawn(async move {
            users
                .get_or_load(3, std::future::pending::<Result<Option<User>, DbDown>>)
                .await
        })
    };
    support::wait::eventually("the first task is loading", || {
        let s = users.stats();
        async move { s.loads == 1 }
    })
    .await;
    let waiter = {
        let users = users.clone();
        tokio::spawn(async move {
            users
                .get_or_load(3, || async { Ok::<_, DbDown>(Some(user(3, 1))) })
                .await
        })
    };
    support::wait::eventually("the second task is waiting", || {
        let s = users.stats();
        async move { s.misses == 2 }
    })
    .await;
    leader.abort();
    let got = bounded(waiter).await.unwrap().unwrap();
    assert_eq!(got, Some(user(3, 1)));
    assert_eq!(users.stats().loads, 2);
    c.shutdown().await;
}

#[tokio::test]
async fn read_your_writes_with_replicas_that_lag() {
    let c = cluster().await;
    let client = Client::builder(c.seeds())
        .read_from(ReadFrom::ReplicaPreferred)
        .build()
        .await
        .unwrap();
    let plain = client.cache::<User>("users");
    let ryw = client.cache::<User>("users").read_your_writes(true);
    plain.put(5, &user(5, 1)).await.unwrap();
    wait_replicas_synced(&c).await;
    for r in c
        .replica_indexes_of(0)
        .into_iter()
        .chain(c.replica_indexes_of(1))
        .chain(c.replica_indexes_of(2))
    {
        c.set_replication_lag(r, Duration::from_secs(30));
    }

    // Without read-your-writes a put then get can read the replica that has not caught up:
    // the trade-off of reading from replicas.
    plain.put(5, &user(5, 2)).await.unwrap();
    assert_eq!(plain.get(5).await.unwrap(), Some(user(5, 1)));
    // Per command: the primary has it; the replica does not yet.
    let Json(u): Json<User> = client
        .cmd("GET")
        .arg("users::5")
        .read_from(ReadFrom::Primary)
        .query()
        .await
        .unwrap();
    assert_eq!(u.version, 2);
    // ... also for a command split by slot (MGET over two slots).
    assert_ne!(
        redcluster::slot::key_slot(b"users::5"),
        redcluster::slot::key_slot(b"users::nope")
    );
    let (a, b): (Option<Json<User>>, Option<Json<User>>) = client
        .cmd("MGET")
        .arg("users::5")
        .arg("users::nope")
        .read_from(ReadFrom::Primary)
        .query()
        .await
        .unwrap();
    assert_eq!((a.map(|Json(u)| u.version), b.is_none()), (Some(2), true));
    // With read-your-writes this process reads its own write, every time.
    ryw.put(5, &user(5, 3)).await.unwrap();
    for _ in 0..20 {
        assert_eq!(ryw.get(5).await.unwrap(), Some(user(5, 3)));
    }
    // A per-cache policy does the same for all reads.
    let primary = client.cache::<User>("users").read_from(ReadFrom::Primary);
    assert_eq!(primary.get(5).await.unwrap(), Some(user(5, 3)));
    // And an evicted key is not read back from a replica that still has it.
    assert!(ryw.evict(5).await.unwrap());
    assert_eq!(ryw.get(5).await.unwrap(), None);
    assert_eq!(plain.get(5).await.unwrap(), Some(user(5, 1)));
    c.shutdown().await;
}

#[tokio::test]
async fn a_put_during_a_load_is_not_overwritten_by_the_older_loaded_value() {
    let c = cluster().await;
    let client = Client::builder(c.seeds()).build().await.unwrap();
    let users = client.cache::<User>("users");
    let (release, gate) = tokio::sync::watch::channel(false);
    let loading = {
        let (users, mut gate) = (users.clone(), gate.clone());
        tokio::spawn(async move {
            users
                .get_or_load_origin(4, || async move {
                    // Read "from the database" before the write below ...
                    let old = user(4, 1);
                    let _ = gate.wait_for(|open| *open).await;
                    Ok::<_, DbDown>(Some(old))
                })
                .await
        })
    };
    support::wait::eventually("the load started", || {
        let s = users.stats();
        async move { s.loads == 1 }
    })
    .await;
    // ... then a newer version is written and acknowledged while the load is running.
    users.put(4, &user(4, 2)).await.unwrap();
    release.send(true).unwrap();
    let (got, origin) = bounded(loading).await.unwrap().unwrap();
    assert_eq!(got, Some(user(4, 2)), "the load hands out the newer write");
    assert_eq!(origin, redcluster::Origin::Shared);
    assert_eq!(users.get(4).await.unwrap(), Some(user(4, 2)));
    let (_, origin) = users
        .get_or_load_origin(4, || async { Ok::<_, DbDown>(None) })
        .await
        .unwrap();
    assert_eq!(origin, redcluster::Origin::Cache);
    c.shutdown().await;
}
