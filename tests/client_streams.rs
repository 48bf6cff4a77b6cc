//! The client's stream helpers against the bundled cluster and a real redis-server cluster:
//! typed entries from XADD/XRANGE/XREADGROUP, acknowledgement and pending summaries,
//! XAUTOCLAIM, and a blocking XREAD woken by an XADD from another task (RESP2 and RESP3).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redcluster::{Client, StreamReadOptions};
use support::real_cluster::RealCluster;
use support::wait::{bounded, eventually};

async fn exercise(seeds: Vec<String>, resp3: bool) {
    let client = Client::builder(seeds)
        .resp3(resp3)
        .request_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    let key = format!("{{jobs-{resp3}}}:{}", rand::random::<u32>());
    client
        .cmd("XGROUP")
        .arg("CREATE")
        .arg(&key)
        .arg("g")
        .arg("$")
        .arg("MKSTREAM")
        .query::<()>()
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            client
                .xadd(&key, &[("n", i.to_string()), ("kind", "job".to_string())])
                .await
                .unwrap(),
        );
    }
    let all = client.xrange(&key, "-", "+", None).await.unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[2].id, ids[2]);
    assert_eq!(all[2].get("n").map(|b| b.as_ref()), Some(&b"2"[..]));

    let got = client
        .xreadgroup(
            "g",
            "w1",
            &[(&key, ">")],
            StreamReadOptions::default().count(3),
        )
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].key.as_ref(), key.as_bytes());
    let delivered: Vec<&str> = got[0].entries.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        delivered,
        ids[..3].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(
        client
            .xack(&key, "g", &[ids[0].as_str(), "9-9"])
            .await
            .unwrap(),
        1
    );
    let pending = client.xpending(&key, "g").await.unwrap();
    assert_eq!(pending.count, 2);
    assert_eq!(pending.min_id.as_deref(), Some(ids[1].as_str()));
    assert_eq!(pending.consumers, vec![("w1".to_string(), 2)]);

    let claim = client
        .xautoclaim(&key, "g", "w2", Duration::ZERO, "0-0", 10)
        .await
        .unwrap();
    assert_eq!(claim.claimed.len(), 2);
    assert_eq!(claim.next, "0-0");
    assert!(claim.deleted.is_empty());
    // w2's own history now holds what it claimed.
    let history = client
        .xreadgroup("g", "w2", &[(&key, "0")], StreamReadOptions::default())
        .await
        .unwrap();
    assert_eq!(history[0].entries.len(), 2);

    // The two entries never delivered come at once; after that a short blocking read
    // times out empty.
    let none = client
        .xreadgroup(
            "g",
            "w1",
            &[(&key, ">")],
            StreamReadOptions::default()
                .count(10)
                .block(Duration::from_millis(1)),
        )
        .await
        .unwrap();
    assert_eq!(
        none.iter().map(|r| r.entries.len()).sum::<usize>(),
        2,
        "{none:?}"
    );
    let empty = client
        .xreadgroup(
            "g",
            "w1",
            &[(&key, ">")],
            StreamReadOptions::default().block(Duration::from_millis(20)),
        )
        .await
        .unwrap();
    assert!(empty.is_empty(), "{empty:?}");

    // A blocking XREAD on `$` is woken by an XADD from another task.
    let reader = {
        let client = client.clone();
        let key = key.clone();
        tokio::spawn(async move {
            client
                .xread(
                    &[(&key, "$")],
                    StreamReadOptions::default().block(Duration::ZERO),
                )
                .await
        })
    };
    // Keep adding (the reader may not have blocked yet) until it has seen one, for at most
    // 5 s.
    let mut new_id = String::new();
    for _ in 0..250 {
        new_id = client.xadd(&key, &[("n", "late")]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        if reader.is_finished() {
            break;
        }
    }
    assert!(reader.is_finished(), "the blocked XREAD was never woken");
    let woke = reader.await.unwrap().unwrap();
    assert_eq!(woke.len(), 1);
    assert!(woke[0]
        .entries
        .iter()
        .all(|e| e.get("n").map(|b| b.as_ref()) == Some(&b"late"[..])));
    assert!(woke[0].entries.iter().any(|e| e.id <= new_id));
}

#[tokio::test]
async fn stream_helpers_on_the_bundled_cluster() {
    let cluster = redcluster::server::TestCluster::builder()
        .primaries(3)
        .start()
        .await
        .unwrap();
    let seeds: Vec<String> = cluster.seeds().iter().map(|a| a.to_string()).collect();
    exercise(seeds.clone(), false).await;
    exercise(seeds, true).await;
}

#[tokio::test]
async fn stream_helpers_on_a_real_cluster() {
    let Some(real) = RealCluster::start(3, 0) else {
        return;
    };
    exercise(real.seeds(), false).await;
    exercise(real.seeds(), true).await;
}

/// What the consumer-group workers saw: job -> times processed, entry -> XACKs answering 1.
#[derive(Default)]
struct Seen {
    processed: std::collections::HashMap<u64, u32>,
    acked: std::collections::HashMap<String, u32>,
}

/// A worker as `examples/stream_worker.rs` runs it: its own pending entries first (after an
/// error, what it was given but had not acknowledged), then new ones; XACK after each job.
async fn stream_worker(client: Client, name: String, seen: Arc<Mutex<Seen>>, jobs: u64) {
    let mut history = true;
    while (seen.lock().unwrap().processed.len() as u64) < jobs {
        let opts = StreamReadOptions::default()
            .count(20)
            .block(Duration::from_millis(100));
        let id = if history { "0" } else { ">" };
        let Ok(reads) = client
            .xreadgroup("workers", &name, &[("{jobs}", id)], opts)
            .await
        else {
            history = true;
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let entries: Vec<_> = reads.into_iter().flat_map(|r| r.entries).collect();
        if history && entries.is_empty() {
            history = false;
        }
        for e in entries {
            let n: u64 = std::str::from_utf8(e.get("n").expect("field n"))
                .unwrap()
                .parse()
                .unwrap();
            *seen.lock().unwrap().processed.entry(n).or_default() += 1;
            match client.xack("{jobs}", "workers", &[e.id.as_str()]).await {
                Ok(1) => *seen.lock().unwrap().acked.entry(e.id).or_default() += 1,
                Ok(_) => {}
                Err(_) => history = true,
            }
        }
    }
}

/// The stream worker example's run, short: a consumer group keeps working through a
/// graceful failover of the stream's primary, and no job is lost or acknowledged twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_group_survives_a_failover_without_loss_or_double_ack() {
    let cluster = redcluster::server::TestCluster::builder()
        .primaries(3)
        .replicas_per_primary(1)
        .start()
        .await
        .unwrap();
    let seeds: Vec<String> = cluster.seeds().iter().map(|a| a.to_string()).collect();
    let client = Client::builder(seeds)
        .request_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    client
        .cmd("XGROUP")
        .args(["CREATE", "{jobs}", "workers", "$", "MKSTREAM"])
        .query::<()>()
        .await
        .unwrap();
    let (jobs, seen) = (300u64, Arc::new(Mutex::new(Seen::default())));
    let workers: Vec<_> = (0..2)
        .map(|w| {
            tokio::spawn(stream_worker(
                client.clone(),
                format!("w{w}"),
                seen.clone(),
                jobs,
            ))
        })
        .collect();
    let produce = |from: u64, to: u64| {
        let client = client.clone();
        async move {
            for n in from..to {
                // Retried only when it surely did not run: a duplicate would show below.
                while let Err(e) = client.xadd("{jobs}", &[("n", n.to_string())]).await {
                    assert!(!e.maybe_applied(), "XADD may have applied: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    };
    produce(0, jobs / 2).await;
    eventually("a third of the jobs processed", || {
        let seen = seen.clone();
        async move { seen.lock().unwrap().processed.len() as u64 >= jobs / 3 }
    })
    .await;
    let slot = redcluster::slot::key_slot(b"{jobs}");
    let primary = cluster.primary_index_of_slot(slot).unwrap();
    let replica = cluster.replica_indexes_of(primary)[0];
    cluster
        .failover(replica, redcluster::server::FailoverMode::Default)
        .await
        .unwrap();
    assert_eq!(cluster.primary_index_of_slot(slot), Some(replica));
    produce(jobs / 2, jobs).await;
    for w in workers {
        bounded(w).await.unwrap();
    }
    let pending = client.xpending("{jobs}", "workers").await.unwrap().count;
    assert_eq!(pending, 0);
    let seen = seen.lock().unwrap();
    assert!(
        (0..jobs).all(|n| seen.processed.contains_key(&n)),
        "a job was lost"
    );
    assert_eq!(
        seen.acked.len() as u64,
        jobs,
        "every entry acknowledged once"
    );
    assert!(
        seen.acked.values().all(|&c| c == 1),
        "an entry acknowledged twice"
    );
}
