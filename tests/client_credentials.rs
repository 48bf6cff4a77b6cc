//! Credentials providers on the bundled cluster: asked for every new connection, asked again
//! before the credentials expire (live connections re-authenticate with `AUTH` under load),
//! and a refusal is an `ErrorKind::Auth` error naming the user, surfaced without retrying.
#![cfg(feature = "server")]

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redcluster::server::TestCluster;
use redcluster::{Client, Credentials, CredentialsFuture, CredentialsProvider, ErrorKind};
use support::wait::eventually;

/// Hands out `app`'s password, or a wrong one once `wrong` is set, each valid for `life`;
/// counts its calls.
#[derive(Debug)]
struct Counting {
    calls: AtomicU64,
    wrong: AtomicBool,
    life: Option<Duration>,
}

impl CredentialsProvider for Counting {
    fn credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::Relaxed);
            let password = if self.wrong.load(Ordering::Relaxed) {
                "stale-secret-123"
            } else {
                "app-secret-456"
            };
            Ok(Credentials {
                user: Some("app".to_string()),
                password: password.to_string(),
                valid_until: self.life.map(|d| Instant::now() + d),
            })
        })
    }
}

/// AUTH calls on every node of `cluster` (`default-pw` for the default user), less the one
/// this makes; panics when any AUTH failed or was rejected.
async fn auth_calls_none_refused(cluster: &TestCluster) -> u64 {
    let nodes: Vec<String> = cluster.seeds().iter().map(|a| a.to_string()).collect();
    auth_calls_on(&nodes, Some("default-pw")).await
}

/// AUTH calls on every one of `nodes` (authenticating as the default user with `admin`
/// first, when given, which is not counted); panics when any AUTH failed or was rejected.
async fn auth_calls_on(nodes: &[String], admin: Option<&str>) -> u64 {
    let mut auths = 0;
    for a in nodes {
        let mut cmds = vec![vec!["INFO", "commandstats"]];
        if let Some(pw) = admin {
            cmds.insert(0, vec!["AUTH", "default", pw]);
        }
        let replies = support::raw::node_cmds(a, &cmds).await;
        let info = support::raw::text(replies.last().unwrap());
        let line = info
            .lines()
            .find(|l| l.starts_with("cmdstat_auth:"))
            .unwrap_or_else(|| panic!("no AUTH in {info}"));
        let field = |name: &str| -> u64 {
            line.split([':', ','])
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} in {line}"))
        };
        assert_eq!(field("failed_calls"), 0, "{line}");
        assert_eq!(field("rejected_calls"), 0, "{line}");
        // (Less the test's own AUTH just now.)
        auths += field("calls") - u64::from(admin.is_some());
    }
    auths
}

async fn app_cluster() -> TestCluster {
    TestCluster::builder()
        .primaries(3)
        .requirepass("default-pw")
        .user("app", "app-secret-456")
        .start()
        .await
        .unwrap()
}

#[tokio::test]
async fn expiring_credentials_renew_live_connections_under_load() {
    let cluster = app_cluster().await;
    let provider = Arc::new(Counting {
        calls: AtomicU64::new(0),
        wrong: AtomicBool::new(false),
        life: Some(Duration::from_millis(400)),
    });
    let p = provider.clone();
    let client = Client::builder(cluster.seeds())
        .credentials_provider(move || {
            let p = p.clone();
            async move { p.credentials().await }
        })
        .build()
        .await
        .unwrap();
    let after_build = provider.calls.load(Ordering::Relaxed);
    assert!(after_build >= 3, "one call per connection: {after_build}");

    // Steady load from 8 tasks while the credentials expire several times over.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (client, stop, done) = (client.clone(), stop.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("renew:{t}:{}", i % 50);
                client
                    .set(key.as_str(), i)
                    .await
                    .expect("write during renewal");
                let v: Option<u64> = client.get(key.as_str()).await.expect("read");
                assert_eq!(v, Some(i));
                done.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    // Every connection renews a few times (400 ms life: renewed at ~320 ms).
    eventually("live connections re-authenticated", || async {
        provider.calls.load(Ordering::Relaxed) >= after_build + 3 * 3
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let stats = client.stats();
    // The renewals happened on the same connections: none was replaced.
    assert_eq!(stats.reconnects, 0, "{stats:?}");
    // And the servers took them: AUTH ran once per connection and once per renewal, and
    // none was refused.
    let auths = auth_calls_none_refused(&cluster).await;
    assert!(
        auths >= provider.calls.load(Ordering::Relaxed) - 1,
        "{auths} AUTHs for {} provider calls",
        provider.calls.load(Ordering::Relaxed)
    );
    assert!(done.load(Ordering::Relaxed) > 0);
    println!(
        "{} request pairs, {} provider calls, no request failed",
        done.load(Ordering::Relaxed),
        provider.calls.load(Ordering::Relaxed)
    );
}

#[tokio::test]
async fn a_refused_provider_fails_fast_naming_the_user() {
    let cluster = app_cluster().await;
    let provider = Arc::new(Counting {
        calls: AtomicU64::new(0),
        wrong: AtomicBool::new(false),
        life: None,
    });
    let p = provider.clone();
    let client = Client::builder(cluster.seeds())
        .credentials_provider(move || {
            let p = p.clone();
            async move { p.credentials().await }
        })
        .request_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    client.set("refused:k", 1).await.unwrap();

    // The provider turns stale and every connection is cut: reconnecting is refused.
    provider.wrong.store(true, Ordering::Relaxed);
    for i in 0..cluster.nodes().len() {
        cluster.drop_connections(i);
    }
    let e = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            // (A request racing the cut may still see the broken connection and retry;
            // the next one meets the refusal.)
            match client.get::<Option<i64>>("refused:k").await {
                Err(e) if e.kind() == ErrorKind::Auth => break e,
                Err(e) => assert!(e.is_retryable(), "{e}"),
                Ok(_) => tokio::task::yield_now().await,
            }
        }
    })
    .await
    .expect("the refusal never surfaced");
    let shown = format!("{e} {e:?}");
    assert!(shown.contains("user 'app'"), "{shown}");
    assert_eq!(e.code(), Some("WRONGPASS"), "{shown}");
    assert!(!shown.contains("stale-secret-123"), "{shown}");
    assert!(!e.is_retryable());
    // Refusals are not retried: a second request fails at once too, adding no retries.
    let retries = client.stats().retries;
    let again = client.get::<Option<i64>>("refused:k").await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Auth, "{again}");
    assert_eq!(
        client.stats().retries,
        retries,
        "an auth refusal was retried"
    );

    // And the same provider handing out the right password again: requests succeed.
    provider.wrong.store(false, Ordering::Relaxed);
    eventually("requests succeed with the right password again", || async {
        client.get::<Option<i64>>("refused:k").await.is_ok()
    })
    .await;
}

#[tokio::test]
async fn a_failing_provider_is_an_error_of_its_kind() {
    let cluster = app_cluster().await;
    let e = Client::builder(cluster.seeds())
        .credentials_provider(|| async {
            Err::<Credentials, _>(redcluster::Error::conversion("vault is sealed"))
        })
        .build()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("vault is sealed"), "{e}");
    assert!(e.to_string().contains("credentials provider"), "{e}");
}

#[tokio::test]
async fn a_command_the_user_may_not_run_is_an_auth_error_naming_the_user() {
    let cluster = TestCluster::builder()
        .primaries(3)
        .acl_user(
            "reader",
            "on >reader-pw-789 ~* +@read +cluster|shards +cluster|slots +cluster|nodes",
        )
        .start()
        .await
        .unwrap();
    let client = Client::builder(cluster.seeds())
        .credentials(Some("reader"), "reader-pw-789")
        .build()
        .await
        .unwrap();
    let v: Option<String> = client.get("noperm:k").await.unwrap();
    assert_eq!(v, None);
    let retries = client.stats().retries;
    let e = client.set("noperm:k", 1).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert_eq!(e.code(), Some("NOPERM"), "{e}");
    let shown = format!("{e} {e:?}");
    assert!(shown.contains("user 'reader'"), "{shown}");
    assert!(!shown.contains("reader-pw-789"), "{shown}");
    assert_eq!(client.stats().retries, retries, "a NOPERM was retried");
}

/// The README's least-privilege rule set for an application user: its data commands plus
/// what the client itself sends (slot map, READONLY for replica reads, PING for Nearest,
/// CLIENT SETNAME). Replica reads, Nearest reads and writes all work with exactly that.
#[tokio::test]
async fn the_readme_least_privilege_user_can_run_a_client() {
    let rules = "on >app-pw-321 ~* +@read +@write +cluster|shards +cluster|nodes \
                 +cluster|slots +readonly +ping +client|setname";
    let cluster = TestCluster::builder()
        .primaries(3)
        .replicas_per_primary(1)
        .acl_user("app", rules)
        .start()
        .await
        .unwrap();
    for read_from in [
        redcluster::ReadFrom::ReplicaPreferred,
        redcluster::ReadFrom::Nearest,
    ] {
        let client = Client::builder(cluster.seeds())
            .credentials(Some("app"), "app-pw-321")
            .client_name("web-1")
            .read_from(read_from)
            .build()
            .await
            .unwrap();
        client.set("lp:k", "v").await.unwrap();
        // Replicas catch up asynchronously: read until the value shows.
        eventually("the replica serves the write", || async {
            client
                .get::<Option<String>>("lp:k")
                .await
                .unwrap()
                .as_deref()
                == Some("v")
        })
        .await;
        assert_eq!(client.stats().retries, 0, "{read_from:?}");
    }
}

/// Subscribe on `nodes` as `app` (password `password`) with credentials that expire every
/// 400 ms, publish until every connection renewed a few times; every message must arrive in
/// order, and no node may have refused an AUTH (`admin`: the default user's password).
async fn subscription_across_renewals(
    nodes: &[String],
    password: &'static str,
    admin: Option<&str>,
    resp3: bool,
) -> u64 {
    use redcluster::MessageKind;
    let calls = Arc::new(AtomicU64::new(0));
    let c = calls.clone();
    let client = Client::builder(nodes.to_vec())
        .resp3(resp3)
        .credentials_provider(move || {
            c.fetch_add(1, Ordering::Relaxed);
            async move {
                Ok(Credentials::new(Some("app"), password)
                    .valid_until(Instant::now() + Duration::from_millis(400)))
            }
        })
        .build()
        .await
        .unwrap();
    let mut sub = client.subscribe(["renew-ch"]).await.unwrap();
    // (The subscription is confirmed asynchronously: wait until it delivers.)
    support::pubsub::publish_until(
        &mut sub,
        Duration::from_secs(10),
        |_| client.publish("renew-ch", "warm-up"),
        |seen| !seen.is_empty(),
    )
    .await;
    support::pubsub::drain(&mut sub).await;
    let started = calls.load(Ordering::Relaxed);
    let mut i = 0u64;
    // Publish until every connection has renewed a few times; every message arrives.
    while calls.load(Ordering::Relaxed) < started + 9 {
        assert!(i < 2_000, "renewals never happened (resp3 {resp3})");
        client.publish("renew-ch", i).await.unwrap();
        let m = support::pubsub::next(&mut sub, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("message {i} lost (resp3 {resp3})"));
        assert_eq!(m.kind, MessageKind::Message, "resp3 {resp3}: {m:?}");
        assert_eq!(m.payload, i.to_string().as_bytes(), "resp3 {resp3}");
        i += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    auth_calls_on(nodes, admin).await;
    i
}

/// Subscriptions with expiring credentials: a RESP3 subscriber connection renews in place (AUTH
/// is allowed there), a RESP2 one is left alone (it would refuse AUTH); both keep delivering
/// every message, and no AUTH is refused anywhere.
#[tokio::test]
async fn subscriptions_keep_delivering_while_credentials_renew() {
    for resp3 in [true, false] {
        let cluster = app_cluster().await;
        let nodes: Vec<String> = cluster.seeds().iter().map(|a| a.to_string()).collect();
        let n =
            subscription_across_renewals(&nodes, "app-secret-456", Some("default-pw"), resp3).await;
        println!("bundled, resp3 {resp3}: {n} messages in order across renewals");
    }
}

/// The same on a real redis-server 7 cluster, which counts an AUTH refused in a RESP2
/// subscriber's context as a rejected call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_keep_delivering_while_credentials_renew_on_a_real_cluster() {
    let Some(cluster) = support::real_cluster::RealCluster::start(3, 0) else {
        return;
    };
    let nodes = cluster.seeds();
    for n in &nodes {
        let r = support::raw::text(
            &support::raw::node_cmd(
                n,
                &[
                    "ACL",
                    "SETUSER",
                    "app",
                    "on",
                    ">real-app-pw",
                    "~*",
                    "&*",
                    "+@all",
                ],
            )
            .await,
        );
        assert_eq!(r, "OK", "{r}");
    }
    for resp3 in [true, false] {
        let n = subscription_across_renewals(&nodes, "real-app-pw", None, resp3).await;
        println!("real, resp3 {resp3}: {n} messages in order across renewals");
    }
}
