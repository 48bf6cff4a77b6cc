//! RESP decode and encode throughput, beside the `redis-protocol` crate (v5, zero-copy
//! `Bytes` frames) on the same frames.
//!
//! Run with `cargo bench --bench resp`; each group has a `redcluster` and a `redis-protocol`
//! line, so criterion's report compares them directly.
//!
//! On a shared, busy machine criterion's runs of one side then the other see different load;
//! `RESP_AB=1 cargo bench --bench resp` instead interleaves the two decoders round by round
//! and prints per-frame minimum and median times and their ratio.

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, BatchSize, Criterion, Throughput};
use redcluster::resp::internal::{decode_command, decode_command_resumable, CommandScan};
use redcluster::resp::{
    decode, decode_resumable, encode_command, encode_value, FrameScan, Limits, Protocol, Value,
};
use redis_protocol::resp2::{
    decode as rp2_decode, encode as rp2_encode, types::BytesFrame as Rp2Frame,
};
use redis_protocol::resp3::{
    decode::complete as rp3_decode, encode::complete as rp3_encode, types::BytesFrame as Rp3Frame,
};
use std::time::Instant;

struct Frame {
    name: &'static str,
    /// The frame as our `Value`, encoded for the wire.
    value: Value,
    proto: Protocol,
}

fn bulk64() -> Bytes {
    Bytes::from(vec![b'x'; 64])
}

fn frames() -> Vec<Frame> {
    let map = Value::Map(
        (0..8)
            .map(|i| {
                (
                    Value::bulk(format!("field-{i}")),
                    Value::Map(vec![
                        (Value::simple("id"), Value::Integer(i)),
                        (Value::simple("score"), Value::Double(i as f64 + 0.5)),
                        (
                            Value::simple("tags"),
                            Value::Array(vec![Value::bulk("a"), Value::bulk("bc")]),
                        ),
                        (Value::simple("ok"), Value::Boolean(i % 2 == 0)),
                    ]),
                )
            })
            .collect(),
    );
    vec![
        Frame {
            name: "command_set_64B",
            value: Value::Array(vec![
                Value::bulk("SET"),
                Value::bulk("key:000001"),
                Value::BulkString(bulk64()),
            ]),
            proto: Protocol::Resp2,
        },
        Frame {
            name: "get_reply_64B",
            value: Value::BulkString(bulk64()),
            proto: Protocol::Resp2,
        },
        Frame {
            name: "array_1000_bulk",
            value: Value::Array(
                (0..1000)
                    .map(|i| Value::bulk(format!("value-{i:010}")))
                    .collect(),
            ),
            proto: Protocol::Resp2,
        },
        Frame {
            name: "integer",
            value: Value::Integer(1_234_567),
            proto: Protocol::Resp2,
        },
        Frame {
            name: "resp3_nested_map",
            value: map,
            proto: Protocol::Resp3,
        },
    ]
}

fn to_rp2(v: &Value) -> Rp2Frame {
    match v {
        Value::BulkString(b) => Rp2Frame::BulkString(b.clone()),
        Value::Integer(n) => Rp2Frame::Integer(*n),
        Value::Array(items) => Rp2Frame::Array(items.iter().map(to_rp2).collect()),
        other => panic!("no RESP2 frame for {other:?} in this bench"),
    }
}

fn to_rp3(v: &Value) -> Rp3Frame {
    let attributes = None;
    match v {
        Value::BulkString(b) => Rp3Frame::BlobString {
            data: b.clone(),
            attributes,
        },
        Value::SimpleString(b) => Rp3Frame::SimpleString {
            data: b.clone(),
            attributes,
        },
        Value::Integer(n) => Rp3Frame::Number {
            data: *n,
            attributes,
        },
        Value::Double(d) => Rp3Frame::Double {
            data: *d,
            attributes,
        },
        Value::Boolean(b) => Rp3Frame::Boolean {
            data: *b,
            attributes,
        },
        Value::Array(items) => Rp3Frame::Array {
            data: items.iter().map(to_rp3).collect(),
            attributes,
        },
        Value::Map(pairs) => Rp3Frame::Map {
            data: pairs.iter().map(|(k, v)| (to_rp3(k), to_rp3(v))).collect(),
            attributes,
        },
        other => panic!("no RESP3 frame for {other:?} in this bench"),
    }
}

fn bench_decode(c: &mut Criterion) {
    let limits = Limits::default();
    for f in frames() {
        let mut wire = BytesMut::new();
        encode_value(&mut wire, &f.value, f.proto);
        let wire = wire.freeze();
        let mut g = c.benchmark_group(format!("decode/{}", f.name));
        g.throughput(Throughput::Bytes(wire.len() as u64));
        let input = || BytesMut::from(&wire[..]);
        g.bench_function("redcluster", |b| {
            b.iter_batched_ref(
                input,
                |buf| black_box(decode(buf, &limits).unwrap().unwrap()),
                BatchSize::SmallInput,
            )
        });
        if f.name.starts_with("command") {
            g.bench_function("redcluster_decode_command", |b| {
                b.iter_batched_ref(
                    input,
                    |buf| black_box(decode_command(buf, &limits).unwrap().unwrap()),
                    BatchSize::SmallInput,
                )
            });
        }
        g.bench_function("redis-protocol", |b| match f.proto {
            Protocol::Resp2 => b.iter_batched_ref(
                input,
                |buf| black_box(rp2_decode::decode_bytes_mut(buf).unwrap().unwrap()),
                BatchSize::SmallInput,
            ),
            _ /* Resp3; Protocol is non-exhaustive */ => b.iter_batched_ref(
                input,
                |buf| black_box(rp3_decode::decode_bytes_mut(buf).unwrap().unwrap()),
                BatchSize::SmallInput,
            ),
        });
        g.finish();
    }
}

fn bench_encode(c: &mut Criterion) {
    for f in frames() {
        let mut wire = BytesMut::new();
        encode_value(&mut wire, &f.value, f.proto);
        let mut g = c.benchmark_group(format!("encode/{}", f.name));
        g.throughput(Throughput::Bytes(wire.len() as u64));
        let mut out = BytesMut::with_capacity(wire.len() * 2);
        g.bench_function("redcluster", |b| {
            b.iter(|| {
                out.clear();
                encode_value(&mut out, black_box(&f.value), f.proto);
                black_box(out.len())
            })
        });
        if let (true, Value::Array(items)) = (f.name.starts_with("command"), &f.value) {
            let args: Vec<Bytes> = items.iter().filter_map(|v| v.as_bytes().cloned()).collect();
            g.bench_function("redcluster_encode_command", |b| {
                b.iter(|| {
                    out.clear();
                    encode_command(&mut out, black_box(&args));
                    black_box(out.len())
                })
            });
        }
        match f.proto {
            Protocol::Resp2 => {
                let frame = to_rp2(&f.value);
                g.bench_function("redis-protocol", |b| {
                    b.iter(|| {
                        out.clear();
                        black_box(rp2_encode::extend_encode(&mut out, black_box(&frame)).unwrap())
                    })
                });
            }
            _ /* Resp3; Protocol is non-exhaustive */ => {
                let frame = to_rp3(&f.value);
                g.bench_function("redis-protocol", |b| {
                    b.iter(|| {
                        out.clear();
                        black_box(rp3_encode::extend_encode(&mut out, black_box(&frame)).unwrap())
                    })
                });
            }
        }
        g.finish();
    }
}

/// Mean nanoseconds per decode over `n` fresh copies of `wire` (copies made before timing).
fn time_decodes(wire: &[u8], n: usize, mut decode_one: impl FnMut(&mut BytesMut)) -> f64 {
    let mut inputs: Vec<BytesMut> = (0..n).map(|_| BytesMut::from(wire)).collect();
    let start = Instant::now();
    for buf in inputs.iter_mut() {
        decode_one(buf);
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// Decoders interleaved round by round, so both sides see the same machine load.
fn interleaved_decode() {
    let limits = Limits::default();
    println!("frame                ours min / median ns    redis-protocol min / median ns   ratio (median)");
    for f in frames() {
        let mut wire = BytesMut::new();
        encode_value(&mut wire, &f.value, f.proto);
        let n = (2_000_000 / wire.len()).clamp(50, 20_000);
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..60 {
            ours.push(time_decodes(&wire, n, |buf| {
                black_box(decode(buf, &limits).unwrap());
            }));
            theirs.push(time_decodes(&wire, n, |buf| match f.proto {
                Protocol::Resp2 => {
                    black_box(rp2_decode::decode_bytes_mut(buf).unwrap());
                }
                _ /* Resp3; Protocol is non-exhaustive */ => {
                    black_box(rp3_decode::decode_bytes_mut(buf).unwrap());
                }
            }));
        }
        let stats = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            (v[0], v[v.len() / 2])
        };
        let ((omin, omed), (tmin, tmed)) = (stats(&mut ours), stats(&mut theirs));
        println!(
            "{:20} {omin:>10.1} / {omed:<10.1}    {tmin:>10.1} / {tmed:<10.1}           {:.2}x",
            f.name,
            tmed / omed
        );
    }
}

/// Feed `wire` in 64 KiB reads, calling `decode` after each, until it yields the value.
fn over_reads<T>(wire: &Bytes, mut decode: impl FnMut(&mut BytesMut) -> Option<T>) -> T {
    let mut buf = BytesMut::new();
    for chunk in wire.chunks(64 * 1024) {
        buf.extend_from_slice(chunk);
        if let Some(v) = decode(&mut buf) {
            return black_box(v);
        }
    }
    unreachable!("the whole input was fed")
}

/// A large reply (200,000 16-byte bulk strings, ~4.6 MB, like a big HGETALL or SMEMBERS)
/// arriving in 64 KiB reads, decoded after every read as the client's reader does: `decode`
/// re-checks the frame from its start each time, `decode_resumable` only the new bytes.
fn bench_large_reply_over_reads(c: &mut Criterion) {
    let limits = Limits::default();
    let value = Value::Array(
        (0..200_000)
            .map(|i| Value::bulk(format!("member:{i:09}")))
            .collect(),
    );
    let mut wire = BytesMut::new();
    encode_value(&mut wire, &value, Protocol::Resp2);
    let wire = wire.freeze();
    let mut g = c.benchmark_group("decode/array_200k_in_64KiB_reads");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("decode_resumable", |b| {
        b.iter(|| {
            let mut scan = FrameScan::default();
            over_reads(&wire, |buf| {
                decode_resumable(buf, &limits, &mut scan).unwrap()
            })
        })
    });
    g.bench_function("decode (re-check per read)", |b| {
        b.iter(|| over_reads(&wire, |buf| decode(buf, &limits).unwrap()))
    });
    g.finish();

    // The server's side: one command of 200,000 arguments (a huge MSET or SADD).
    let args: Vec<String> = (0..200_000).map(|i| format!("member:{i:09}")).collect();
    let mut wire = BytesMut::new();
    encode_command(&mut wire, &args);
    let wire = wire.freeze();
    let mut g = c.benchmark_group("decode_command/200k_args_in_64KiB_reads");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("decode_command_resumable", |b| {
        b.iter(|| {
            let mut scan = CommandScan::default();
            over_reads(&wire, |buf| {
                decode_command_resumable(buf, &limits, &mut scan).unwrap()
            })
        })
    });
    g.bench_function("decode_command (re-check per read)", |b| {
        b.iter(|| over_reads(&wire, |buf| decode_command(buf, &limits).unwrap()))
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_decode,
    bench_encode,
    bench_large_reply_over_reads
);

fn main() {
    if std::env::var_os("RESP_AB").is_some() {
        interleaved_decode();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
