//! `key_slot` throughput: short keys, hash-tagged keys, 1 KiB keys.
//!
//! Run with `cargo bench --bench slot`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use redcluster::slot::key_slot;

fn bench_slot(c: &mut Criterion) {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("short_key", b"user:1000".to_vec()),
        ("hash_tagged", b"{user1000}.following".to_vec()),
        (
            "1KiB_key",
            (0..1024).map(|i| b'a' + (i % 26) as u8).collect(),
        ),
        (
            "1KiB_key_tag_at_end",
            [vec![b'a'; 1014], b"{tag}rest".to_vec()].concat(),
        ),
    ];
    let mut g = c.benchmark_group("key_slot");
    for (name, key) in &cases {
        g.throughput(Throughput::Bytes(key.len() as u64));
        g.bench_function(*name, |b| b.iter(|| key_slot(black_box(key))));
    }
    g.finish();
}

criterion_group!(benches, bench_slot);
criterion_main!(benches);
