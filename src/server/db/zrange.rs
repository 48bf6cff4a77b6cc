//! Sorted-set range, count, remove-range, store, random and scan commands.

use bytes::Bytes;

use super::hash::{rand_count, rand_indexes};
use super::util::{
    cursor_arg, eq, err, int_arg, len, norm_range, parse_f64, scan_opts, scan_reply, tri, zset_mut,
    zset_ref, SYNTAX,
};
use super::zset::{push_scored, ZSet};
use super::{glob, Db, ExecCtx};
use crate::resp::Value;

/// A score bound: value and whether it is exclusive.
#[derive(Clone, Copy)]
struct ScoreBound(f64, bool);

/// `[min, max]` by score.
#[derive(Clone, Copy)]
struct ScoreRange(ScoreBound, ScoreBound);

impl ScoreRange {
    fn parse(min: &[u8], max: &[u8]) -> Result<ScoreRange, Value> {
        let one = |b: &[u8]| -> Option<ScoreBound> {
            match b.first() {
                Some(b'(') => parse_f64(&b[1..]).map(|v| ScoreBound(v, true)),
                _ => parse_f64(b).map(|v| ScoreBound(v, false)),
            }
        };
        match (one(min), one(max)) {
            (Some(a), Some(b)) => Ok(ScoreRange(a, b)),
            _ => Err(err("ERR min or max is not a float")),
        }
    }
    fn above_min(&self, s: f64) -> bool {
        if self.0 .1 {
            s > self.0 .0
        } else {
            s >= self.0 .0
        }
    }
    fn below_max(&self, s: f64) -> bool {
        if self.1 .1 {
            s < self.1 .0
        } else {
            s <= self.1 .0
        }
    }
}

/// A lex bound.
#[derive(Clone)]
enum LexBound {
    NegInf,
    PosInf,
    Incl(Bytes),
    Excl(Bytes),
}

#[derive(Clone)]
struct LexRange(LexBound, LexBound);

impl LexRange {
    fn parse(min: &Bytes, max: &Bytes) -> Result<LexRange, Value> {
        let one = |b: &Bytes| -> Option<LexBound> {
            match b.first() {
                Some(b'-') if b.len() == 1 => Some(LexBound::NegInf),
                Some(b'+') if b.len() == 1 => Some(LexBound::PosInf),
                Some(b'[') => Some(LexBound::Incl(b.slice(1..))),
                Some(b'(') => Some(LexBound::Excl(b.slice(1..))),
                _ => None,
            }
        };
        match (one(min), one(max)) {
            (Some(a), Some(b)) => Ok(LexRange(a, b)),
            _ => Err(err("ERR min or max not valid string range item")),
        }
    }
    fn above_min(&self, m: &[u8]) -> bool {
        match &self.0 {
            LexBound::NegInf => true,
            LexBound::PosInf => false,
            LexBound::Incl(b) => m >= b.as_ref(),
            LexBound::Excl(b) => m > b.as_ref(),
        }
    }
    fn below_max(&self, m: &[u8]) -> bool {
        match &self.1 {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Incl(b) => m <= b.as_ref(),
            LexBound::Excl(b) => m < b.as_ref(),
        }
    }
}

enum Sel {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

/// Select members: by rank, score or lex, optionally reversed, then `LIMIT offset count`.
fn select(z: &ZSet, sel: &Sel, rev: bool, limit: Option<(i64, i64)>) -> Vec<(Bytes, f64)> {
    let (offset, count) = limit.unwrap_or((0, -1));
    if offset < 0 {
        return Vec::new();
    }
    let count = if count < 0 {
        usize::MAX
    } else {
        count as usize
    };
    let it: Box<dyn Iterator<Item = (&Bytes, f64)>> = if rev {
        Box::new(z.iter().rev())
    } else {
        Box::new(z.iter())
    };
    let items: Box<dyn Iterator<Item = (&Bytes, f64)>> = match sel {
        Sel::Rank(s, e) => match norm_range(*s, *e, z.len()) {
            Some((s, e)) => Box::new(it.skip(s).take(e - s + 1)),
            None => return Vec::new(),
        },
        Sel::Score(r) => {
            let r = *r;
            if rev {
                Box::new(
                    it.skip_while(move |(_, s)| !r.below_max(*s))
                        .take_while(move |(_, s)| r.above_min(*s)),
                )
            } else {
                Box::new(
                    it.skip_while(move |(_, s)| !r.above_min(*s))
                        .take_while(move |(_, s)| r.below_max(*s)),
                )
            }
        }
        Sel::Lex(r) => {
            let r = r.clone();
            let r2 = r.clone();
            if rev {
                Box::new(
                    it.skip_while(move |(m, _)| !r.below_max(m))
                        .take_while(move |(m, _)| r2.above_min(m)),
                )
            } else {
                Box::new(
                    it.skip_while(move |(m, _)| !r.above_min(m))
                        .take_while(move |(m, _)| r2.below_max(m)),
                )
            }
        }
    };
    items
        .skip(offset as usize)
        .take(count)
        .map(|(m, s)| (m.clone(), s))
        .collect()
}

/// Options after the range arguments.
struct RangeOpts {
    by_score: bool,
    by_lex: bool,
    rev: bool,
    withscores: bool,
    limit: Option<(i64, i64)>,
}

fn parse_opts(a: &[Bytes], from: usize, zrange: bool) -> Result<RangeOpts, Value> {
    let mut o = RangeOpts {
        by_score: false,
        by_lex: false,
        rev: false,
        withscores: false,
        limit: None,
    };
    let mut i = from;
    while i < a.len() {
        let x = &a[i];
        if eq(x, b"withscores") {
            o.withscores = true;
        } else if eq(x, b"limit") && i + 2 < a.len() {
            o.limit = Some((int_arg(&a[i + 1])?, int_arg(&a[i + 2])?));
            i += 2;
        } else if zrange && eq(x, b"byscore") {
            o.by_score = true;
        } else if zrange && eq(x, b"bylex") {
            o.by_lex = true;
        } else if zrange && eq(x, b"rev") {
            o.rev = true;
        } else {
            return Err(err(SYNTAX));
        }
        i += 1;
    }
    Ok(o)
}

/// Select what a ZRANGE form asks for from the sorted set at `a[at]` (range arguments at
/// `a[at + 1]`, `a[at + 2]`). `kind`: 0 rank, 1 score, 2 lex.
fn range_items(
    db: &mut Db,
    a: &[Bytes],
    at: usize,
    now: u64,
    kind: u8,
    o: &RangeOpts,
) -> Result<Vec<(Bytes, f64)>, Value> {
    if o.by_score && o.by_lex {
        return Err(err(SYNTAX));
    }
    if kind == 0 && o.limit.is_some() {
        return Err(err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if kind == 2 && o.withscores {
        return Err(err(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (lo, hi) = if o.rev && kind != 0 {
        (&a[at + 2], &a[at + 1])
    } else {
        (&a[at + 1], &a[at + 2])
    };
    let sel = match kind {
        0 => Sel::Rank(int_arg(lo)?, int_arg(hi)?),
        1 => Sel::Score(ScoreRange::parse(lo, hi)?),
        _ => Sel::Lex(LexRange::parse(lo, hi)?),
    };
    Ok(match zset_ref(db, &a[at], now)? {
        Some(z) => select(z, &sel, o.rev, o.limit),
        None => Vec::new(),
    })
}

/// The reply of every ZRANGE form.
fn range_reply(db: &mut Db, a: &[Bytes], c: &ExecCtx, kind: u8, o: RangeOpts) -> Value {
    let items = tri!(range_items(db, a, 1, c.now_ms, kind, &o));
    let mut out = Vec::with_capacity(items.len());
    for (m, s) in items {
        push_scored(&mut out, m, s, o.withscores, c.resp3, c.resp3);
    }
    Value::Array(out)
}

fn kind_of(o: &RangeOpts) -> u8 {
    if o.by_score {
        1
    } else if o.by_lex {
        2
    } else {
        0
    }
}

pub(crate) fn zrangestore(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let o = tri!(parse_opts(a, 5, true));
    if o.withscores {
        return err(SYNTAX);
    }
    let items = tri!(range_items(db, a, 2, c.now_ms, kind_of(&o), &o));
    let n = items.len();
    if super::zstore::store_items(db, &a[1], items, c.now_ms) {
        db.prop_args(a);
    }
    len(n)
}

pub(crate) fn zrange(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let o = tri!(parse_opts(a, 4, true));
    range_reply(db, a, c, kind_of(&o), o)
}

fn legacy(db: &mut Db, a: &[Bytes], c: &ExecCtx, kind: u8, rev: bool) -> Value {
    let mut o = tri!(parse_opts(a, 4, false));
    o.rev = rev;
    range_reply(db, a, c, kind, o)
}

pub(crate) fn zrangebyscore(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    legacy(db, a, c, 1, false)
}

pub(crate) fn zrevrangebyscore(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    legacy(db, a, c, 1, true)
}

pub(crate) fn zrevrange(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let o = tri!(parse_opts(a, 4, false));
    let o = RangeOpts { rev: true, ..o };
    range_reply(db, a, c, 0, o)
}

pub(crate) fn zrangebylex(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    legacy(db, a, c, 2, false)
}

pub(crate) fn zrevrangebylex(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    legacy(db, a, c, 2, true)
}

pub(crate) fn zcount(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let r = tri!(ScoreRange::parse(&a[2], &a[3]));
    let z = tri!(zset_ref(db, &a[1], c.now_ms));
    len(z.map_or(0, |z| select(z, &Sel::Score(r), false, None).len()))
}

pub(crate) fn zlexcount(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let r = tri!(LexRange::parse(&a[2], &a[3]));
    let z = tri!(zset_ref(db, &a[1], c.now_ms));
    len(z.map_or(0, |z| select(z, &Sel::Lex(r), false, None).len()))
}

fn remrange(db: &mut Db, a: &[Bytes], c: &ExecCtx, sel: Sel) -> Value {
    let Some(z) = tri!(zset_mut(db, &a[1], c.now_ms)) else {
        return Value::Integer(0);
    };
    let victims = select(z, &sel, false, None);
    for (m, _) in &victims {
        z.remove(m);
    }
    db.remove_if_empty(&a[1]);
    if !victims.is_empty() {
        db.prop_args(a);
    }
    len(victims.len())
}

pub(crate) fn zremrangebyscore(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let r = tri!(ScoreRange::parse(&a[2], &a[3]));
    remrange(db, a, c, Sel::Score(r))
}

pub(crate) fn zremrangebyrank(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let s = tri!(int_arg(&a[2]));
    let e = tri!(int_arg(&a[3]));
    remrange(db, a, c, Sel::Rank(s, e))
}

pub(crate) fn zremrangebylex(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let r = tri!(LexRange::parse(&a[2], &a[3]));
    remrange(db, a, c, Sel::Lex(r))
}

pub(crate) fn zrandmember(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let withscores = match a.len() {
        2 | 3 => false,
        4 if eq(&a[3], b"withscores") => true,
        _ => return err(SYNTAX),
    };
    let counted = if a.len() >= 3 {
        Some(tri!(rand_count(&a[2])))
    } else {
        None
    };
    let z = tri!(zset_ref(db, &a[1], c.now_ms));
    let Some(z) = z else {
        return if counted.is_some() {
            Value::Array(vec![])
        } else {
            Value::Null
        };
    };
    let items: Vec<(&Bytes, f64)> = z.iter().collect();
    let (count, repeats) = counted.unwrap_or((1, true));
    let mut out = Vec::new();
    for i in rand_indexes(items.len(), count, repeats) {
        if let Some((m, s)) = items.get(i) {
            push_scored(&mut out, (*m).clone(), *s, withscores, c.resp3, c.resp3);
        }
    }
    if counted.is_none() {
        return out.pop().unwrap_or(Value::Null);
    }
    Value::Array(out)
}

pub(crate) fn zscan(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    tri!(cursor_arg(&a[2]));
    let o = tri!(scan_opts(a, 3, false));
    let z = tri!(zset_ref(db, &a[1], c.now_ms));
    let mut out = Vec::new();
    for (m, s) in z.into_iter().flat_map(|z| z.iter()) {
        if o.pattern.as_ref().map_or(true, |p| glob::matches(p, m)) {
            out.push(Value::BulkString(m.clone()));
            out.push(Value::BulkString(Bytes::from(crate::resp::format_g17(s))));
        }
    }
    scan_reply(0, out)
}
