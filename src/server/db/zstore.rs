//! Sorted-set algebra: ZUNION/ZINTER/ZDIFF, their STORE forms, and ZINTERCARD.

use std::collections::HashMap;

use bytes::Bytes;
use indexmap::IndexMap;

use super::util::{eq, err, int_arg, len, parse_f64, tri, SYNTAX};
use super::zset::{push_scored, ZSet};
use super::{Data, Db, ExecCtx};
use crate::resp::Value;

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Agg {
    Sum,
    Min,
    Max,
}

/// Parsed `numkeys key... [WEIGHTS w...] [AGGREGATE a] [WITHSCORES]`.
struct Spec {
    keys: std::ops::Range<usize>,
    weights: Vec<f64>,
    agg: Agg,
    withscores: bool,
}

/// `ERR at least 1 input key is needed for 'cmd' command`.
fn no_keys(name: &[u8]) -> Value {
    Value::error(format!(
        "ERR at least 1 input key is needed for '{}' command",
        String::from_utf8_lossy(name).to_ascii_lowercase()
    ))
}

/// Parse the numkeys at `a[at]` and the options after the keys.
fn parse(
    db: &mut Db,
    a: &[Bytes],
    at: usize,
    op: Op,
    allow_withscores: bool,
    now: u64,
) -> Result<Spec, Value> {
    let n = int_arg(&a[at])?;
    if n == 0 {
        return Err(no_keys(&a[0]));
    }
    if n < 0 || n as usize > a.len() - at - 1 {
        return Err(err(SYNTAX));
    }
    let n = n as usize;
    // Like Redis: the sources' types are checked before the options are parsed.
    for k in &a[at + 1..at + 1 + n] {
        if let Some(e) = db.read(k, now) {
            if !matches!(e.data, Data::Zset(_) | Data::Set(_)) {
                return Err(super::util::wrongtype());
            }
        }
    }
    let mut spec = Spec {
        keys: at + 1..at + 1 + n,
        weights: vec![1.0; n],
        agg: Agg::Sum,
        withscores: false,
    };
    let mut i = at + 1 + n;
    while i < a.len() {
        if op != Op::Diff && eq(&a[i], b"weights") && i + n < a.len() {
            for (j, w) in spec.weights.iter_mut().enumerate() {
                *w = parse_f64(&a[i + 1 + j])
                    .ok_or_else(|| err("ERR weight value is not a float"))?;
            }
            i += n + 1;
        } else if op != Op::Diff && eq(&a[i], b"aggregate") && i + 1 < a.len() {
            let x = &a[i + 1];
            spec.agg = if eq(x, b"sum") {
                Agg::Sum
            } else if eq(x, b"min") {
                Agg::Min
            } else if eq(x, b"max") {
                Agg::Max
            } else {
                return Err(err(SYNTAX));
            };
            i += 2;
        } else if allow_withscores && eq(&a[i], b"withscores") {
            spec.withscores = true;
            i += 1;
        } else {
            return Err(err(SYNTAX));
        }
    }
    Ok(spec)
}

/// Members and scores of a source: a sorted set, or a plain set (score 1).
fn source(db: &mut Db, key: &[u8], now: u64) -> Result<Option<Vec<(Bytes, f64)>>, Value> {
    match db.read(key, now).map(|e| &e.data) {
        None => Ok(None),
        Some(Data::Zset(z)) => Ok(Some(z.iter().map(|(m, s)| (m.clone(), s)).collect())),
        Some(Data::Set(s)) => Ok(Some(s.iter().map(|m| (m.clone(), 1.0)).collect())),
        Some(_) => Err(super::util::wrongtype()),
    }
}

/// `x * w`, with Redis' rule that 0 * inf is 0 rather than NaN.
fn weigh(s: f64, w: f64) -> f64 {
    let r = s * w;
    if r.is_nan() {
        0.0
    } else {
        r
    }
}

fn combine(agg: Agg, x: f64, y: f64) -> f64 {
    let r = match agg {
        Agg::Sum => x + y,
        Agg::Min => x.min(y),
        Agg::Max => x.max(y),
    };
    if r.is_nan() {
        0.0
    } else {
        r
    }
}

/// Run the operation; the result as a sorted set.
fn compute(db: &mut Db, a: &[Bytes], spec: &Spec, op: Op, now: u64) -> Result<ZSet, Value> {
    let mut srcs = Vec::with_capacity(spec.keys.len());
    for k in &a[spec.keys.clone()] {
        srcs.push(source(db, k, now)?);
    }
    let mut acc: IndexMap<Bytes, f64> = IndexMap::new();
    match op {
        Op::Union => {
            for (j, src) in srcs.iter().enumerate() {
                for (m, s) in src.iter().flatten() {
                    let w = weigh(*s, spec.weights[j]);
                    match acc.get_mut(m) {
                        Some(v) => *v = combine(spec.agg, *v, w),
                        None => {
                            acc.insert(m.clone(), w);
                        }
                    }
                }
            }
        }
        Op::Inter | Op::Diff => {
            let lookups: Vec<Option<HashMap<&Bytes, f64>>> = srcs
                .iter()
                .map(|s| s.as_ref().map(|v| v.iter().map(|(m, s)| (m, *s)).collect()))
                .collect();
            if let Some(Some(first)) = srcs.first() {
                'outer: for (m, s) in first {
                    let mut v = weigh(*s, spec.weights[0]);
                    for (j, other) in lookups.iter().enumerate().skip(1) {
                        let hit = other.as_ref().and_then(|o| o.get(m));
                        match (op, hit) {
                            (Op::Inter, Some(s2)) => {
                                v = combine(spec.agg, v, weigh(*s2, spec.weights[j]))
                            }
                            (Op::Inter, None) | (Op::Diff, Some(_)) => continue 'outer,
                            _ => {}
                        }
                    }
                    acc.insert(m.clone(), v);
                }
            }
        }
    }
    let mut z = ZSet::default();
    for (m, s) in acc {
        z.insert(m, s);
    }
    Ok(z)
}

/// Store `items` at `dst` as a sorted set, deleting `dst` when empty.
/// Returns whether anything changed.
pub(super) fn store_items(db: &mut Db, dst: &Bytes, items: Vec<(Bytes, f64)>, now: u64) -> bool {
    let data = (!items.is_empty()).then(|| {
        let mut z = ZSet::default();
        for (m, s) in items {
            z.insert(m, s);
        }
        Data::Zset(Box::new(z))
    });
    db.store_result(dst, data, now)
}

fn store(db: &mut Db, a: &[Bytes], c: &ExecCtx, op: Op) -> Value {
    let spec = tri!(parse(db, a, 2, op, false, c.now_ms));
    let z = tri!(compute(db, a, &spec, op, c.now_ms));
    let n = z.len();
    let data = (n > 0).then(|| Data::Zset(Box::new(z)));
    if db.store_result(&a[1], data, c.now_ms) {
        db.prop_args(a);
    }
    len(n)
}

fn read(db: &mut Db, a: &[Bytes], c: &ExecCtx, op: Op) -> Value {
    let spec = tri!(parse(db, a, 1, op, true, c.now_ms));
    let z = tri!(compute(db, a, &spec, op, c.now_ms));
    let mut out = Vec::with_capacity(z.len());
    for (m, s) in z.iter() {
        push_scored(&mut out, m.clone(), s, spec.withscores, c.resp3, c.resp3);
    }
    Value::Array(out)
}

pub(crate) fn zunionstore(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    store(db, a, c, Op::Union)
}

pub(crate) fn zinterstore(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    store(db, a, c, Op::Inter)
}

pub(crate) fn zdiffstore(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    store(db, a, c, Op::Diff)
}

pub(crate) fn zunion(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    read(db, a, c, Op::Union)
}

pub(crate) fn zinter(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    read(db, a, c, Op::Inter)
}

pub(crate) fn zdiff(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    read(db, a, c, Op::Diff)
}

pub(crate) fn zintercard(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let n = tri!(int_arg(&a[1]));
    if n == 0 {
        return no_keys(&a[0]);
    }
    if n < 0 || n as usize > a.len() - 2 {
        return err(SYNTAX);
    }
    let n = n as usize;
    for k in &a[2..2 + n] {
        if let Some(e) = db.read(k, c.now_ms) {
            if !matches!(e.data, Data::Zset(_) | Data::Set(_)) {
                return super::util::wrongtype();
            }
        }
    }
    let mut limit = 0usize;
    let mut i = 2 + n;
    while i < a.len() {
        if eq(&a[i], b"limit") && i + 1 < a.len() {
            match super::util::parse_i64(&a[i + 1]) {
                Some(l) if l >= 0 => limit = l as usize,
                _ => return err("ERR LIMIT can't be negative"),
            }
            i += 2;
        } else {
            return err(SYNTAX);
        }
    }
    let spec = Spec {
        keys: 2..2 + n,
        weights: vec![1.0; n],
        agg: Agg::Sum,
        withscores: false,
    };
    let r = tri!(compute(db, a, &spec, Op::Inter, c.now_ms)).len();
    len(if limit > 0 { r.min(limit) } else { r })
}
