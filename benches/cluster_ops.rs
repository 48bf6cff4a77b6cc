//! Cluster-wide operations on a real 3+3 `redis-server` cluster: a 1,000-command pipeline
//! spread over all slots (split by node, sent concurrently, replies in order) and MGET of 100
//! keys across slots (split by slot, merged in order). The same work done by the `redis`
//! crate and `fred` is in `benches/peers` (`--workload pipeline|mget`).
//!
//! Run: `cargo bench --bench cluster_ops` (needs `redis-server` and `redis-cli`).

#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use redcluster::{Client, Value};

fn cluster_ops(c: &mut Criterion) {
    let Some(cluster) = support::real_cluster::RealCluster::start(3, 1) else {
        eprintln!("redis-server not installed: skipping cluster_ops");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let client = rt.block_on(async {
        let client = Client::builder(cluster.seeds())
            .build()
            .await
            .expect("connect");
        let mut p = client.pipeline();
        for i in 0..10_000 {
            p.cmd("SET").arg(format!("k:{i}")).arg(i);
        }
        p.query::<Vec<Value>>().await.expect("load");
        client
    });
    // Keys spread over every slot: 1,000 different keys hit ~970 different slots.
    let pipeline_keys: Vec<String> = (0..1000).map(|i| format!("k:{}", i * 7)).collect();
    let mget_keys: Vec<String> = (0..100).map(|i| format!("k:{}", i * 97)).collect();

    let mut g = c.benchmark_group("cluster_ops");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("pipeline_1000_get_set", |b| {
        b.to_async(&rt).iter(|| async {
            let mut p = client.pipeline();
            for (i, k) in pipeline_keys.iter().enumerate() {
                if i % 2 == 0 {
                    p.cmd("GET").arg(k);
                } else {
                    p.cmd("SET").arg(k).arg(i);
                }
            }
            p.query::<Vec<Value>>().await.expect("pipeline")
        })
    });
    g.throughput(Throughput::Elements(100));
    g.bench_function("mget_100_across_slots", |b| {
        b.to_async(&rt).iter(|| async {
            client
                .cmd("MGET")
                .args(&mget_keys)
                .query::<Vec<Option<i64>>>()
                .await
                .expect("mget")
        })
    });
    g.finish();
}

criterion_group!(benches, cluster_ops);
criterion_main!(benches);
