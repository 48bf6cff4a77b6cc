//! The example web service (examples/web_service) on a free port against the bundled
//! cluster, driven over real HTTP: x-cache headers, single flight, read-your-writes with
//! replica reads, and a primary killed under GET/PUT load.
//!
//! The failover run lasts 5 s here; `REDCLUSTER_WEB_FAILOVER_SECS=20` makes it longer.
#![cfg(all(feature = "server", feature = "serde"))]

#[allow(dead_code)]
#[path = "../examples/web_service/app.rs"]
mod app;
#[allow(dead_code)]
#[path = "../examples/web_service/db.rs"]
mod db;
#[allow(dead_code)]
#[path = "../examples/web_service/load.rs"]
mod load;
#[allow(dead_code)]
#[path = "../examples/web_service/metrics.rs"]
mod metrics;
mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use redcluster::server::TestCluster;
use redcluster::{Client, ReadFrom};
use support::wait::bounded;

/// The service over `cluster` with `users` seeded rows, on a free port: its base URL and
/// state.
async fn start(
    cluster: &TestCluster,
    users: u64,
    settings: app::Settings,
) -> (String, Arc<app::App>) {
    let client = Client::builder(cluster.seeds())
        .read_from(ReadFrom::ReplicaPreferred)
        .request_timeout(settings.deadline.max(Duration::from_secs(2)))
        .build()
        .await
        .unwrap();
    let service = app::App::new(client, db::Db::open(users).unwrap(), settings);
    let (addr, _server) = app::start("127.0.0.1:0", service.clone()).await.unwrap();
    (format!("http://{addr}"), service)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn get(http: &reqwest::Client, url: &str) -> (u16, String, Option<db::User>) {
    let r = http.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let x_cache = r
        .headers()
        .get("x-cache")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let user = if status == 200 {
        Some(r.json::<db::User>().await.unwrap())
    } else {
        None
    };
    (status, x_cache, user)
}

async fn put(http: &reqwest::Client, url: &str, name: &str) -> db::User {
    let r = http
        .put(url)
        .json(&serde_json_body(name))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn serde_json_body(name: &str) -> std::collections::HashMap<&'static str, String> {
    [("name", name.to_string())].into_iter().collect()
}

#[tokio::test]
async fn hit_and_miss_headers_health_and_metrics() {
    let c = support::bundled::cluster().await;
    let (base, service) = start(&c, 100, app::Settings::default()).await;
    let http = http();
    let (status, x_cache, user) = get(&http, &format!("{base}/users/7")).await;
    assert_eq!((status, x_cache.as_str()), (200, "miss"));
    assert_eq!(
        user.unwrap(),
        db::User {
            id: 7,
            name: "user 7".into(),
            version: 1
        }
    );
    let (status, x_cache, _) = get(&http, &format!("{base}/users/7")).await;
    assert_eq!((status, x_cache.as_str()), (200, "hit"));
    // A missing user is a 404, and its absence is cached too.
    let (status, x_cache, _) = get(&http, &format!("{base}/users/5000")).await;
    assert_eq!((status, x_cache.as_str()), (404, "miss"));
    let (status, x_cache, _) = get(&http, &format!("{base}/users/5000")).await;
    assert_eq!((status, x_cache.as_str()), (404, "hit"));
    // PUT creates it; the next GET sees it.
    let u = put(&http, &format!("{base}/users/5000"), "new").await;
    assert_eq!(u.version, 1);
    let (status, _, user) = get(&http, &format!("{base}/users/5000")).await;
    assert_eq!(
        (status, user.map(|u| u.name)),
        (200, Some("new".to_string()))
    );
    assert_eq!(service.db.reads(), 2, "one SQLite read per cold key");

    let r = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("webservice_cache_hits_total 3"), "{text}");
    // The client's own metrics through the `metrics` facade and the Prometheus exporter.
    assert!(
        text.contains("redcluster_requests_total{command=\"get\"}"),
        "{text}"
    );
    assert!(
        text.contains("redcluster_request_duration_seconds_bucket{command=\"set\""),
        "{text}"
    );
    assert!(
        text.contains("redcluster_cache_hits_total{cache=\"users\"}"),
        "{text}"
    );
    assert!(
        text.contains("webservice_requests_total{route=\"get_user\",status=\"404\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("webservice_request_seconds_count{route=\"put_user\"} 1"),
        "{text}"
    );
    c.shutdown().await;
}

#[tokio::test]
async fn a_thousand_concurrent_gets_of_a_cold_key_read_sqlite_once() {
    let c = support::bundled::cluster().await;
    let (base, service) = start(
        &c,
        100,
        app::Settings {
            deadline: Duration::from_secs(60),
            ..Default::default()
        },
    )
    .await;
    let http = http();
    let before = service.db.reads();
    let url = format!("{base}/users/42");
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move { get(&http, &url).await })
        })
        .collect();
    let mut misses = 0;
    for t in tasks {
        let (status, x_cache, user) = bounded(t).await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(user.unwrap().id, 42);
        misses += usize::from(x_cache == "miss");
    }
    // (The deadline is long: a slow machine must not turn waits into SQLite bypasses.)
    assert_eq!(service.metrics.fallbacks.load(Ordering::Relaxed), 0);
    assert_eq!(
        service.db.reads() - before,
        1,
        "one SQLite read for 1000 GETs"
    );
    assert_eq!(service.cache.stats().loads, 1);
    assert!(misses >= 1);
    c.shutdown().await;
}

#[tokio::test]
async fn put_then_get_returns_the_new_version_every_time_with_replica_reads() {
    let c = support::bundled::cluster().await;
    let (base, service) = start(
        &c,
        100,
        app::Settings {
            deadline: Duration::from_secs(5),
            ..Default::default()
        },
    )
    .await;
    let http = http();
    let tasks: Vec<_> = (1..=8u64)
        .map(|id| {
            let (http, base) = (http.clone(), base.clone());
            tokio::spawn(async move {
                let url = format!("{base}/users/{id}");
                for n in 0..25 {
                    let written = put(&http, &url, &format!("n{n}")).await;
                    let (status, _, read) = get(&http, &url).await;
                    assert_eq!(status, 200);
                    assert_eq!(read.unwrap(), written, "GET after PUT on user {id}");
                }
            })
        })
        .collect();
    for t in tasks {
        bounded(t).await.unwrap();
    }
    // Read-your-writes in the cache did it: no GET needed the service's version floor.
    assert_eq!(service.metrics.stale_repairs.load(Ordering::Relaxed), 0);
    assert_eq!(service.metrics.fallbacks.load(Ordering::Relaxed), 0);
    // The reads were from primaries, though the client prefers replicas.
    assert!(service.cache.stats().hits >= 200);
    c.shutdown().await;
}

#[tokio::test]
async fn a_primary_killed_under_get_put_load_answers_every_request_as_its_data_says() {
    let secs: f64 = std::env::var("REDCLUSTER_WEB_FAILOVER_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let c = support::bundled::cluster().await;
    let (base, service) = start(&c, 1_000, app::Settings::default()).await;
    let plan = load::Plan {
        base,
        tasks: 32,
        duration: Duration::from_secs_f64(secs),
        write_ratio: 0.2,
        // Ids above 1000 start absent: 404 until a PUT creates them.
        ids: 1_100,
        seeded: 1_000,
        zipf: Some(0.99),
    };
    let http = http();
    let kill = async {
        tokio::time::sleep(Duration::from_secs_f64(secs / 4.0)).await;
        c.kill_primary_of("users::1").await
    };
    let (mut report, killed) = tokio::join!(load::run(&plan, &http), kill);
    let (p50, p99) = (report.quantile(0.5), report.quantile(0.99));
    println!(
        "killed node {killed}; {} GET ({} 404), {} PUT in {:?}: {:.0}/s, p50 {p50:?}, p99 {p99:?}; \
         fallbacks {}, stale repairs {}, cache write failures {}",
        report.gets,
        report.not_found,
        report.puts,
        report.elapsed,
        report.rate(),
        service.metrics.fallbacks.load(Ordering::Relaxed),
        service.metrics.stale_repairs.load(Ordering::Relaxed),
        service.metrics.cache_write_failures.load(Ordering::Relaxed),
    );
    assert_eq!(report.problem_count, 0, "{:#?}", report.problems);
    assert!(
        report.gets > 100 && report.puts > 10,
        "{} GET, {} PUT",
        report.gets,
        report.puts
    );
    c.shutdown().await;
}
