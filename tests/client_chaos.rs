//! The client against scripted fake nodes that misbehave in ways a real server does not do
//! on cue: redirects to a node outside the map or to nowhere, malformed and oversized
//! replies, a hang-up in the middle of a pipeline, a whole cluster gone and back, a slot map
//! with holes, a replica stuck loading. Each test states what the client does.
//!
//! Covered elsewhere: TRYAGAIN/LOADING/CLUSTERDOWN retries and CLUSTERDOWN until the deadline
//! (`client_faults.rs`); some seeds down at start (`client_commands.rs`); every replica down
//! and a paused node hitting the deadline on a real cluster (`client_replicas.rs`); ASK and
//! MOVED during a real migration (`client_migration.rs`).

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use redcluster::resp::Value;
use redcluster::{Client, ErrorKind, ReadFrom};
use support::fake_cluster::{kv, FakeNode, FakeShard, Reply, Script};
use support::wait::bounded;

type Store = Arc<Mutex<HashMap<Vec<u8>, Vec<u8>>>>;

fn key_starts(cmd: &[Bytes], prefix: &str) -> bool {
    cmd.get(1).is_some_and(|k| k.starts_with(prefix.as_bytes()))
}

fn map() -> Arc<Mutex<Vec<FakeShard>>> {
    Arc::default()
}

fn whole(primary: u16) -> FakeShard {
    FakeShard {
        lo: 0,
        hi: 16383,
        primary,
        replicas: vec![],
    }
}

#[tokio::test]
async fn a_redirect_to_a_node_outside_the_map_is_followed() {
    let m = map();
    let other_store: Store = Arc::default();
    let s = other_store.clone();
    let other = FakeNode::start(m.clone(), Arc::new(move |_, cmd, _| kv(&s, cmd))).await;
    let other_port = other.port;
    let store: Store = Arc::default();
    let script: Script = Arc::new(move |_, cmd, _| {
        if key_starts(cmd, "away") {
            let slot = redcluster::slot::key_slot(&cmd[1]);
            return Reply::Value(Value::error(format!("MOVED {slot} 127.0.0.1:{other_port}")));
        }
        kv(&store, cmd)
    });
    let home = FakeNode::start(m.clone(), script).await;
    m.lock().unwrap().push(whole(home.port));
    let client = Client::builder([home.addr()]).build().await.unwrap();
    client.set("away:1", "there").await.unwrap();
    let v: Option<String> = client.get("away:1").await.unwrap();
    assert_eq!(v.as_deref(), Some("there"));
    assert_eq!(
        other_store.lock().unwrap().get(b"away:1".as_slice()),
        Some(&b"there".to_vec())
    );
    assert!(client.stats().moved >= 1);
    // The rest of the map is untouched.
    client.set("here", "1").await.unwrap();
    assert_eq!(home.count("SET here"), 1);
}

#[tokio::test]
async fn a_redirect_to_an_unreachable_node_ends_with_an_error_before_the_deadline() {
    let m = map();
    let dead_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let store: Store = Arc::default();
    let script: Script = Arc::new(move |_, cmd, _| {
        if key_starts(cmd, "lost") {
            let slot = redcluster::slot::key_slot(&cmd[1]);
            return Reply::Value(Value::error(format!("MOVED {slot} 127.0.0.1:{dead_port}")));
        }
        kv(&store, cmd)
    });
    let home = FakeNode::start(m.clone(), script).await;
    m.lock().unwrap().push(whole(home.port));
    let client = Client::builder([home.addr()])
        .request_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    let e = bounded(client.get::<Option<String>>("lost:1"))
        .await
        .unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Timeout | ErrorKind::TooManyRedirects),
        "{e}"
    );
    // Nothing else is affected: the refresh restored the map the node serves.
    client.set("fine", "1").await.unwrap();
    let v: Option<String> = client.get("fine").await.unwrap();
    assert_eq!(v.as_deref(), Some("1"));
}

#[tokio::test]
async fn malformed_and_oversized_replies_drop_the_connection_and_spare_other_requests() {
    let m = map();
    let store: Store = Arc::default();
    let script: Script = Arc::new(move |_, cmd, n| {
        if key_starts(cmd, "garbled") && n == 1 {
            return Reply::Raw(b"?this is not RESP\r\n".to_vec());
        }
        if key_starts(cmd, "huge") {
            // A bulk string longer than any limit the client accepts.
            return Reply::Raw(b"$99999999999999\r\n".to_vec());
        }
        kv(&store, cmd)
    });
    let node = FakeNode::start(m.clone(), script).await;
    m.lock().unwrap().push(whole(node.port));
    let client = Client::builder([node.addr()])
        .request_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    for i in 0..20 {
        client.set(format!("ok:{i}"), i).await.unwrap();
    }
    // A write answered with garbage may have been applied: reported, not re-sent.
    let e = bounded(client.set("garbled:w", "1")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MaybeApplied, "{e}");
    assert_eq!(node.count("SET garbled:w"), 1);
    // A read answered with garbage is retried on a fresh connection, and reads in flight on
    // the dropped connection are retried too.
    let reads = (0..20).map(|i| {
        let c = client.clone();
        async move { c.get::<Option<i64>>(format!("ok:{i}")).await }
    });
    let garbled = client.get::<Option<String>>("garbled:r");
    let (others, garbled) = bounded(futures::future::join(
        futures::future::join_all(reads),
        garbled,
    ))
    .await;
    assert_eq!(garbled.unwrap(), None);
    for (i, r) in others.into_iter().enumerate() {
        assert_eq!(r.unwrap(), Some(i as i64));
    }
    // An oversized reply every time: an error at the deadline naming the protocol failure;
    // the other keys keep working.
    let e = bounded(client.get::<Option<String>>("huge:1"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.to_string().to_lowercase().contains("bulk"), "{e}");
    let v: Option<i64> = client.get("ok:3").await.unwrap();
    assert_eq!(v, Some(3));
    assert!(client.stats().reconnects >= 2, "{:?}", client.stats());
}

#[tokio::test]
async fn a_hangup_mid_pipeline_reports_maybe_applied_writes_and_resends_nothing() {
    let m = map();
    let store: Store = Arc::default();
    let s = store.clone();
    let script: Script = Arc::new(move |_, cmd, n| {
        if key_starts(cmd, "p:5") && n == 1 {
            return Reply::HangUp;
        }
        kv(&s, cmd)
    });
    let node = FakeNode::start(m.clone(), script).await;
    m.lock().unwrap().push(whole(node.port));
    let client = Client::builder([node.addr()]).build().await.unwrap();
    client.ping().await.unwrap();
    let mut p = client.pipeline();
    for i in 0..10 {
        p.cmd("SET").arg(format!("p:{i}")).arg(i);
    }
    p.cmd("GET").arg("p:0");
    let replies = bounded(p.query_each()).await;
    let mut maybe = 0;
    for (i, r) in replies.iter().take(10).enumerate() {
        match r {
            Ok(v) => {
                assert_eq!(*v, Value::ok());
                // Acknowledged writes are stored.
                assert!(store
                    .lock()
                    .unwrap()
                    .contains_key(format!("p:{i}").as_bytes()));
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::MaybeApplied, "p:{i}: {e}");
                maybe += 1;
            }
        }
        // No write was silently sent twice.
        assert!(node.count(&format!("SET p:{i}")) <= 1, "p:{i} re-sent");
    }
    assert!(replies[5].is_err(), "the write the node hung up on");
    assert!(maybe >= 1);
    // The read in the same pipeline was retried and answered.
    assert_eq!(replies[10].as_ref().unwrap(), &Value::bulk("0"));
}

#[tokio::test]
async fn a_cluster_gone_and_back_is_used_again_without_a_new_client() {
    let m = map();
    let store: Store = Arc::default();
    let s = store.clone();
    let node = FakeNode::start(m.clone(), Arc::new(move |_, cmd, _| kv(&s, cmd))).await;
    m.lock().unwrap().push(whole(node.port));
    let client = Client::builder([node.addr()])
        .request_timeout(Duration::from_millis(400))
        .build()
        .await
        .unwrap();
    client.set("k", "1").await.unwrap();
    node.stop();
    let e = bounded(client.get::<Option<String>>("k"))
        .await
        .unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Timeout | ErrorKind::Io),
        "{e}"
    );
    node.restart().await;
    // Back: the next requests reconnect (the reconnect backoff is at most 1 s; the request
    // deadline covers a few of them).
    let client = client;
    let mut ok = false;
    for _ in 0..10 {
        if let Ok(v) = client.get::<Option<String>>("k").await {
            assert_eq!(v.as_deref(), Some("1"));
            ok = true;
            break;
        }
    }
    assert!(ok, "the client never used the cluster again");
    client.set("k", "2").await.unwrap();
}

#[tokio::test]
async fn an_uncovered_slot_is_cluster_down_and_covered_slots_work() {
    let m = map();
    let store: Store = Arc::default();
    let s = store.clone();
    let node = FakeNode::start(m.clone(), Arc::new(move |_, cmd, _| kv(&s, cmd))).await;
    m.lock().unwrap().push(FakeShard {
        lo: 0,
        hi: 8191,
        primary: node.port,
        replicas: vec![],
    });
    let client = Client::builder([node.addr()])
        .request_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    assert_eq!(client.topology().covered_slots(), 8192);
    let (covered, hole) = {
        let mut covered = None;
        let mut hole = None;
        for i in 0.. {
            let k = format!("cov:{i}");
            if redcluster::slot::key_slot(k.as_bytes()) <= 8191 {
                covered.get_or_insert(k);
            } else {
                hole.get_or_insert(k);
            }
            if covered.is_some() && hole.is_some() {
                break;
            }
        }
        (covered.unwrap(), hole.unwrap())
    };
    let e = bounded(client.set(hole.as_str(), "x")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ClusterDown, "{e}");
    client.set(covered.as_str(), "y").await.unwrap();
    // The hole is filled (a node took the slots): the client finds it on its own.
    m.lock().unwrap()[0].hi = 16383;
    client.set(hole.as_str(), "x").await.unwrap();
    assert_eq!(
        store.lock().unwrap().get(hole.as_bytes()),
        Some(&b"x".to_vec())
    );
}

#[tokio::test]
async fn a_loading_replica_is_skipped_and_reads_go_to_the_primary() {
    let m = map();
    let store: Store = Arc::default();
    let s = store.clone();
    let primary = FakeNode::start(m.clone(), Arc::new(move |_, cmd, _| kv(&s, cmd))).await;
    let replica = FakeNode::start(
        m.clone(),
        Arc::new(|_, _, _| {
            Reply::Value(Value::error(
                "LOADING Redis is loading the dataset in memory",
            ))
        }),
    )
    .await;
    m.lock().unwrap().push(FakeShard {
        lo: 0,
        hi: 16383,
        primary: primary.port,
        replicas: vec![replica.port],
    });
    let client = Client::builder([primary.addr()])
        .read_from(ReadFrom::ReplicaPreferred)
        .build()
        .await
        .unwrap();
    client.set("l", "v").await.unwrap();
    for _ in 0..20 {
        let v: Option<String> = bounded(client.get("l")).await.unwrap();
        assert_eq!(v.as_deref(), Some("v"));
    }
    assert!(
        primary.count("GET l") >= 15,
        "reads fell back to the primary"
    );
    assert!(
        replica.count("GET l") < 5,
        "the loading replica is skipped for a while, not asked every time ({})",
        replica.count("GET l")
    );
}
