//! The sorted-set type and its point commands (ZADD, ZREM, ZSCORE, ZPOP*, ...). Range, store
//! and random commands live in `zrange.rs`.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;

use super::util::{
    count_arg, eq, err, float_arg, len, own, score, tri, zset_mut, zset_ref, SYNTAX,
};
use super::{Data, Db, ExecCtx};
use crate::resp::Value;

/// A score with a total order (NaN is never stored; -0 is stored as 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Score(pub(super) f64);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A sorted set: member -> score, plus the members ordered by (score, member).
#[derive(Clone, Debug, Default)]
pub(crate) struct ZSet {
    scores: HashMap<Bytes, f64>,
    tree: BTreeSet<(Score, Bytes)>,
}

impl ZSet {
    /// Number of members.
    pub(crate) fn len(&self) -> usize {
        self.scores.len()
    }

    /// True when there are no members.
    pub(crate) fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// The score of `m`.
    pub(crate) fn score(&self, m: &[u8]) -> Option<f64> {
        self.scores.get(m).copied()
    }

    /// Add or update `m`; true when it was new.
    pub(crate) fn insert(&mut self, m: Bytes, score: f64) -> bool {
        let score = score + 0.0;
        match self.scores.get_mut(m.as_ref()) {
            Some(old) => {
                if *old != score || old.to_bits() != score.to_bits() {
                    self.tree.remove(&(Score(*old), m.clone()));
                    *old = score;
                    self.tree.insert((Score(score), m));
                }
                false
            }
            None => {
                self.scores.insert(m.clone(), score);
                self.tree.insert((Score(score), m));
                true
            }
        }
    }

    /// Remove `m`; true when it was there.
    pub(crate) fn remove(&mut self, m: &[u8]) -> bool {
        match self.scores.remove_entry(m) {
            Some((k, s)) => {
                self.tree.remove(&(Score(s), k));
                true
            }
            None => false,
        }
    }

    /// Members with scores, lowest first.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = (&Bytes, f64)> + '_ {
        self.tree.iter().map(|(s, m)| (m, s.0))
    }

    /// Members with scores from score `min` (inclusive) upwards, lowest first.
    pub(crate) fn iter_from(&self, min: f64) -> impl Iterator<Item = (&Bytes, f64)> + '_ {
        self.tree
            .range((Score(min + 0.0), Bytes::new())..)
            .map(|(s, m)| (m, s.0))
    }

    /// Member names (any order).
    pub(crate) fn members(&self) -> impl Iterator<Item = &Bytes> + '_ {
        self.scores.keys()
    }

    /// 0-based rank of `m`, lowest score first.
    pub(crate) fn rank(&self, m: &[u8]) -> Option<usize> {
        let s = self.score(m)?;
        Some(
            self.tree
                .range(..(Score(s + 0.0), Bytes::copy_from_slice(m)))
                .count(),
        )
    }

    /// Remove and return the lowest (or highest) member.
    pub(crate) fn pop(&mut self, max: bool) -> Option<(Bytes, f64)> {
        let (s, m) = if max {
            self.tree.pop_last()?
        } else {
            self.tree.pop_first()?
        };
        self.scores.remove(&m);
        Some((m, s.0))
    }
}

/// A `[member, score]` item of a reply: RESP3 pairs, RESP2 flat.
pub(super) fn push_scored(
    out: &mut Vec<Value>,
    m: Bytes,
    s: f64,
    withscores: bool,
    pairs: bool,
    resp3: bool,
) {
    if !withscores {
        out.push(Value::BulkString(m));
    } else if pairs {
        out.push(Value::Array(vec![Value::BulkString(m), score(s, resp3)]));
    } else {
        out.push(Value::BulkString(m));
        out.push(score(s, resp3));
    }
}

/// The sorted set at `key` for writing, created empty when absent.
pub(super) fn zset_create<'a>(
    db: &'a mut Db,
    key: &Bytes,
    now: u64,
) -> Result<&'a mut ZSet, Value> {
    if zset_mut(db, key, now)?.is_none() {
        db.insert(key, Data::Zset(Box::default()), None);
    }
    zset_mut(db, key, now)?
        .map(|z| &mut **z)
        .ok_or_else(|| err(SYNTAX))
}

pub(crate) fn zadd(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) =
        (false, false, false, false, false, false);
    let mut i = 2;
    while i < a.len() {
        let o = &a[i];
        if eq(o, b"nx") {
            nx = true;
        } else if eq(o, b"xx") {
            xx = true;
        } else if eq(o, b"gt") {
            gt = true;
        } else if eq(o, b"lt") {
            lt = true;
        } else if eq(o, b"ch") {
            ch = true;
        } else if eq(o, b"incr") {
            incr = true;
        } else {
            break;
        }
        i += 1;
    }
    let rest = &a[i..];
    if rest.is_empty() || rest.len() % 2 != 0 {
        return err(SYNTAX);
    }
    if nx && xx {
        return err("ERR XX and NX options at the same time are not compatible");
    }
    if [gt, lt, nx].iter().filter(|f| **f).count() > 1 {
        return err("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if incr && rest.len() > 2 {
        return err("ERR INCR option supports a single increment-element pair");
    }
    let mut pairs = Vec::with_capacity(rest.len() / 2);
    for p in rest.chunks(2) {
        pairs.push((tri!(float_arg(&p[0])), &p[1]));
    }
    let exists = tri!(zset_ref(db, &a[1], c.now_ms)).is_some();
    if !exists && xx {
        return if incr { Value::Null } else { Value::Integer(0) };
    }
    let z = tri!(zset_create(db, &a[1], c.now_ms));
    let (mut added, mut changed) = (0, 0);
    let mut incr_result = None;
    for (score, m) in pairs {
        match z.score(m) {
            Some(old) => {
                if nx {
                    continue;
                }
                let new = if incr { old + score } else { score };
                if new.is_nan() {
                    db.remove_if_empty(&a[1]);
                    return err("ERR resulting score is not a number (NaN)");
                }
                if (gt && new <= old) || (lt && new >= old) {
                    continue;
                }
                incr_result = Some(new);
                if new != old {
                    z.insert(own(m), new);
                    changed += 1;
                }
            }
            None => {
                if xx {
                    continue;
                }
                z.insert(own(m), score);
                incr_result = Some(score);
                added += 1;
            }
        }
    }
    db.remove_if_empty(&a[1]);
    if added + changed > 0 {
        db.prop_args(a);
    }
    if incr {
        incr_result.map_or(Value::Null, |v| score(v, c.resp3))
    } else {
        len(if ch { added + changed } else { added })
    }
}

pub(crate) fn zincrby(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let by = tri!(float_arg(&a[2]));
    let z = tri!(zset_create(db, &a[1], c.now_ms));
    let new = z.score(&a[3]).unwrap_or(0.0) + by;
    if new.is_nan() {
        db.remove_if_empty(&a[1]);
        return err("ERR resulting score is not a number (NaN)");
    }
    z.insert(own(&a[3]), new);
    db.prop_args(a);
    score(new, c.resp3)
}

pub(crate) fn zrem(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let Some(z) = tri!(zset_mut(db, &a[1], c.now_ms)) else {
        return Value::Integer(0);
    };
    let n = a[2..].iter().filter(|m| z.remove(m)).count();
    db.remove_if_empty(&a[1]);
    if n > 0 {
        db.prop_args(a);
    }
    len(n)
}

pub(crate) fn zscore(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    tri!(zset_ref(db, &a[1], c.now_ms))
        .and_then(|z| z.score(&a[2]))
        .map_or(Value::Null, |v| score(v, c.resp3))
}

pub(crate) fn zmscore(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let z = tri!(zset_ref(db, &a[1], c.now_ms));
    Value::Array(
        a[2..]
            .iter()
            .map(|m| {
                z.and_then(|z| z.score(m))
                    .map_or(Value::Null, |v| score(v, c.resp3))
            })
            .collect(),
    )
}

pub(crate) fn zcard(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    len(tri!(zset_ref(db, &a[1], c.now_ms)).map_or(0, |z| z.len()))
}

fn rank_generic(db: &mut Db, a: &[Bytes], c: &ExecCtx, rev: bool) -> Value {
    let Some(z) = tri!(zset_ref(db, &a[1], c.now_ms)) else {
        return Value::Null;
    };
    match z.rank(&a[2]) {
        Some(r) if rev => len(z.len() - 1 - r),
        Some(r) => len(r),
        None => Value::Null,
    }
}

pub(crate) fn zrank(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    rank_generic(db, a, c, false)
}

pub(crate) fn zrevrank(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    rank_generic(db, a, c, true)
}

fn pop_generic(db: &mut Db, a: &[Bytes], c: &ExecCtx, max: bool) -> Value {
    if a.len() > 3 {
        return err(SYNTAX);
    }
    let count = if a.len() == 3 {
        Some(tri!(count_arg(&a[2])))
    } else {
        None
    };
    let Some(z) = tri!(zset_mut(db, &a[1], c.now_ms)) else {
        return Value::Array(vec![]);
    };
    let mut out = Vec::new();
    let n = count.unwrap_or(1);
    let mut popped = 0;
    while popped < n {
        let Some((m, s)) = z.pop(max) else { break };
        popped += 1;
        // Without a count the reply is flat [member, score] even in RESP3.
        push_scored(&mut out, m, s, true, c.resp3 && count.is_some(), c.resp3);
    }
    db.remove_if_empty(&a[1]);
    if popped > 0 {
        db.prop_args(a);
    }
    Value::Array(out)
}

pub(crate) fn zpopmin(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    pop_generic(db, a, c, false)
}

pub(crate) fn zpopmax(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    pop_generic(db, a, c, true)
}

pub(crate) fn zmpop(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let (keys, min, count) = tri!(super::util::mpop_args(a, (b"min", b"max")));
    for k in &a[keys] {
        let Some(z) = tri!(zset_mut(db, k, c.now_ms)) else {
            continue;
        };
        let mut out = Vec::new();
        while out.len() < count {
            let Some((m, s)) = z.pop(!min) else { break };
            push_scored(&mut out, m, s, true, true, c.resp3);
        }
        let n = out.len();
        db.remove_if_empty(k);
        let name = if min { "ZPOPMIN" } else { "ZPOPMAX" };
        db.push_prop(vec![
            super::util::word(name),
            k.clone(),
            super::util::int_bytes(n as i64),
        ]);
        return Value::Array(vec![Value::BulkString(k.clone()), Value::Array(out)]);
    }
    Value::NullArray
}
