//! The client-side cache's hit path: `client.get(k)` served from memory (no router, no
//! await on the network), next to the same GET sent to the server (`.uncached()`), on the
//! bundled cluster. Figures go to BENCHMARKS.md; the throughput comparison (zipfian, 16 and
//! 256 in flight, against a real cluster) is in `benches/peers`.
//!
//! Run: `cargo bench --bench client_cache`.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use redcluster::server::TestCluster;
use redcluster::{Bytes, Client, ClientCache};

fn client_cache(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (_cluster, client) = rt.block_on(async {
        let cluster = TestCluster::builder()
            .primaries(3)
            .start()
            .await
            .expect("bundled cluster");
        let client = Client::builder(cluster.seeds())
            .client_cache(ClientCache::new())
            .build()
            .await
            .expect("connect");
        for i in 0..1000 {
            client
                .set(format!("key:{i}"), "x".repeat(64))
                .await
                .expect("load");
        }
        (cluster, client)
    });
    let keys: Vec<String> = (0..1000).map(|i| format!("key:{i}")).collect();
    rt.block_on(async {
        for k in &keys {
            let _: Option<Bytes> = client.get(k).await.expect("warm");
        }
    });
    let mut g = c.benchmark_group("client_cache");
    // Many hits inside one task, so the figure is the hit itself, not a runtime hop.
    g.bench_function("cached_get_hit", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    let k = &keys[(i % 1000) as usize];
                    let v: Option<Bytes> = client.get(k).await.expect("hit");
                    std::hint::black_box(v);
                }
                start.elapsed()
            })
        })
    });
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("uncached_get", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    let k = &keys[(i % 1000) as usize];
                    let v: Option<Bytes> = client
                        .cmd("GET")
                        .arg(k)
                        .uncached()
                        .query()
                        .await
                        .expect("get");
                    std::hint::black_box(v);
                }
                start.elapsed()
            })
        })
    });
    g.finish();
    let s = client.cache_stats();
    eprintln!(
        "cache: hits {} misses {} entries {} bytes {}",
        s.hits, s.misses, s.entries, s.bytes
    );
}

criterion_group!(benches, client_cache);
criterion_main!(benches);
