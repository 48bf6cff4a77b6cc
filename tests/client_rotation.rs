//! Credentials rotation while the client keeps a steady load: an ACL user's password is
//! changed on every node, and the client's credentials provider hands out the new one.
//!
//! Three rotations, as operators do them:
//! 1. overlap: `>new` added, the provider switches, live connections re-authenticate with the
//!    new password before their credentials expire, then `<old` removed and every connection
//!    of the user cut (reconnects use the new password): every request succeeds;
//! 2. old password removed first (`resetpass >new`), then the provider switches: the live
//!    connections stay authenticated (a server does not log out a connection when its
//!    password changes), renewals with the old password are refused and retried until the
//!    provider has the new one, and reconnects after a cut use the new one: every request
//!    succeeds;
//! 3. the provider keeps a password the server no longer takes: after a cut, requests fail
//!    with `ErrorKind::Auth` naming the user, at once, never hanging.
//!
//! Run against a real `redis-server` 7 cluster (and against the bundled one when it has ACL
//! SETUSER).

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redcluster::{Client, Credentials, ErrorKind};
use support::raw::{node_cmd, text};
use support::real_cluster::RealCluster;
use support::wait::{eventually, eventually_within};

/// Run `args` on every node; each must answer as `expect` says.
async fn on_all(nodes: &[String], args: &[&str], expect: impl Fn(&str) -> bool) {
    for n in nodes {
        let reply = text(&node_cmd(n, args).await);
        assert!(expect(&reply), "{args:?} on {n}: {reply}");
    }
}

async fn acl(nodes: &[String], args: &[&str]) {
    let mut full = vec!["ACL", "SETUSER", "app"];
    full.extend_from_slice(args);
    on_all(nodes, &full, |r| r == "OK").await;
}

/// Cut every connection the user `app` has, on every node.
async fn cut_app_connections(nodes: &[String]) {
    on_all(nodes, &["CLIENT", "KILL", "USER", "app"], |r| {
        r.parse::<u64>().is_ok()
    })
    .await;
}

/// A steady load of writes and reads from 8 tasks; every failure is kept.
struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(client: &Client) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..8)
            .map(|t| {
                let (client, stop, done, failures) =
                    (client.clone(), stop.clone(), done.clone(), failures.clone());
                tokio::spawn(async move {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let key = format!("rot:{t}:{}", i % 64);
                        let r = async {
                            client.set(key.as_str(), i).await?;
                            client.get::<Option<u64>>(key.as_str()).await
                        }
                        .await;
                        match r {
                            Ok(Some(v)) if v == i => {
                                done.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(v) => failures.lock().unwrap().push(format!("{key}: read {v:?}")),
                            Err(e) => failures.lock().unwrap().push(format!("{key}: {e}")),
                        }
                        i += 1;
                    }
                })
            })
            .collect();
        Load {
            stop,
            done,
            failures,
            tasks,
        }
    }

    /// Wait until the load has done `n` more request pairs.
    async fn progress(&self, n: u64) {
        let from = self.done.load(Ordering::Relaxed);
        eventually("the load makes progress", || async {
            self.done.load(Ordering::Relaxed) >= from + n
        })
        .await;
    }

    async fn stop(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        let failures = self.failures.lock().unwrap().clone();
        (self.done.load(Ordering::Relaxed), failures)
    }
}

/// The whole rotation against the cluster whose every node is in `nodes` (no password on
/// the default user, which the test uses to administer); `cut` closes every connection of
/// the user `app` on every node.
async fn rotate_under_load<C, F>(nodes: Vec<String>, label: &str, cut: C)
where
    C: Fn() -> F,
    F: std::future::Future<Output = ()>,
{
    acl(&nodes, &["reset", "on", ">old-pw-1", "~*", "&*", "+@all"]).await;
    let password = Arc::new(Mutex::new("old-pw-1".to_string()));
    let calls = Arc::new(AtomicU64::new(0));
    let (p, c) = (password.clone(), calls.clone());
    // Short-lived credentials, so live connections renew every ~400 ms.
    let client = Client::builder(nodes.clone())
        .credentials_provider(move || {
            let pw = p.lock().unwrap().clone();
            c.fetch_add(1, Ordering::Relaxed);
            async move {
                Ok(Credentials::new(Some("app"), &pw)
                    .valid_until(Instant::now() + Duration::from_millis(500)))
            }
        })
        // A write whose connection is cut under it is re-sent (these SETs are idempotent).
        .retry_writes_on_disconnect(true)
        .request_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    let load = Load::start(&client);
    load.progress(100).await;

    // 1. Overlap: both passwords valid while the provider and the connections move over.
    acl(&nodes, &[">new-pw-2"]).await;
    *password.lock().unwrap() = "new-pw-2".to_string();
    let from = calls.load(Ordering::Relaxed);
    // Every connection renews at least once with the new password.
    eventually("renewals with the new password", || async {
        calls.load(Ordering::Relaxed) >= from + 2 * nodes.len() as u64
    })
    .await;
    acl(&nodes, &["<old-pw-1"]).await;
    load.progress(100).await;
    cut().await;
    load.progress(200).await;

    // 2. The old password removed first, then the provider switches.
    acl(&nodes, &["resetpass", ">new-pw-3"]).await;
    load.progress(100).await;
    *password.lock().unwrap() = "new-pw-3".to_string();
    let from = calls.load(Ordering::Relaxed);
    // (Renewals refused meanwhile are retried after a second.)
    eventually_within(
        Duration::from_secs(15),
        "renewals with the newest password",
        || async { calls.load(Ordering::Relaxed) >= from + 2 * nodes.len() as u64 },
    )
    .await;
    cut().await;
    load.progress(200).await;

    let (done, failures) = load.stop().await;
    assert!(
        failures.is_empty(),
        "{label}: {} of {} request pairs failed during rotation: {:?}",
        failures.len(),
        done + failures.len() as u64,
        &failures[..failures.len().min(5)]
    );
    println!(
        "{label}: {done} request pairs during two rotations, none failed ({} provider calls)",
        calls.load(Ordering::Relaxed)
    );

    // 3. A provider that keeps a password the server no longer takes.
    acl(&nodes, &["resetpass", ">new-pw-4"]).await;
    cut().await;
    let e = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            // (A request racing the cut may still retry on a broken connection; the next
            // one meets the refusal.)
            match client.set("rot:stale", 1).await {
                Err(e) if e.kind() == ErrorKind::Auth => return e,
                Err(e) => assert!(e.is_retryable(), "{label}: {e}"),
                Ok(()) => tokio::task::yield_now().await,
            }
        }
    })
    .await
    .expect("a stale password hung the client");
    let shown = format!("{e} {e:?}");
    assert!(shown.contains("user 'app'"), "{label}: {shown}");
    assert!(!shown.contains("new-pw-3"), "{label}: {shown}");
    assert!(!e.is_retryable());
    let retries = client.stats().retries;
    let again = client.get::<Option<i64>>("rot:stale").await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Auth, "{label}: {again}");
    assert_eq!(
        client.stats().retries,
        retries,
        "{label}: a refusal was retried"
    );
    println!("{label}: stale password -> {e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_on_a_real_cluster() {
    let Some(cluster) = RealCluster::start(3, 0) else {
        return;
    };
    let nodes = cluster.seeds();
    rotate_under_load(nodes.clone(), "real redis-server", || {
        cut_app_connections(&nodes)
    })
    .await;
}

/// The same on the bundled cluster, whose CLIENT KILL has no USER filter: every client
/// connection of every node is cut instead (harsher: the client's own included).
#[cfg(feature = "server")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_on_the_bundled_cluster() {
    let cluster = redcluster::server::TestCluster::builder()
        .primaries(3)
        .start()
        .await
        .unwrap();
    let nodes: Vec<String> = cluster.seeds().iter().map(|a| a.to_string()).collect();
    let cluster = &cluster;
    rotate_under_load(nodes, "bundled", || async move {
        for i in 0..cluster.nodes().len() {
            cluster.drop_connections(i);
        }
    })
    .await;
}
