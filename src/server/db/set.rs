//! Set commands.

use bytes::Bytes;
use indexmap::IndexSet;

use super::hash::{rand_count, rand_indexes};
use super::util::{
    bulk, count_arg, cursor_arg, eq, err, int_arg, len, own, parse_i64, scan_opts, scan_reply,
    set_mut, set_ref, tri, word, SYNTAX,
};
use super::{glob, Data, Db, ExecCtx};
use crate::resp::Value;

type Set = IndexSet<Bytes>;

/// Members in the order Redis 7.0 lists them: small all-integer sets (intset) sorted
/// numerically, others as stored.
pub(super) fn ordered<'a>(s: impl IntoIterator<Item = &'a Bytes>) -> Vec<&'a Bytes> {
    let v: Vec<&Bytes> = s.into_iter().collect();
    if v.len() <= 512 {
        let nums: Option<Vec<i64>> = v.iter().map(|m| parse_i64(m)).collect();
        if let Some(nums) = nums {
            let mut pairs: Vec<(i64, &Bytes)> = nums.into_iter().zip(v).collect();
            pairs.sort_unstable_by_key(|p| p.0);
            return pairs.into_iter().map(|p| p.1).collect();
        }
    }
    v
}

fn set_reply<'a>(s: impl IntoIterator<Item = &'a Bytes>) -> Value {
    Value::Set(ordered(s).into_iter().map(bulk).collect())
}

pub(crate) fn sadd(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let key = &a[1];
    if tri!(set_mut(db, key, c.now_ms)).is_none() {
        db.insert(key, Data::Set(Box::default()), None);
    }
    let Some(s) = tri!(set_mut(db, key, c.now_ms)) else {
        return Value::Integer(0);
    };
    let mut n = 0;
    for m in &a[2..] {
        if !s.contains(m.as_ref()) {
            s.insert(own(m));
            n += 1;
        }
    }
    if n > 0 {
        db.prop_args(a);
    }
    len(n)
}

fn remove_member(s: &mut Set, m: &[u8]) -> bool {
    s.swap_remove(m)
}

pub(crate) fn srem(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let Some(s) = tri!(set_mut(db, &a[1], c.now_ms)) else {
        return Value::Integer(0);
    };
    let n = a[2..].iter().filter(|m| remove_member(s, m)).count();
    db.remove_if_empty(&a[1]);
    if n > 0 {
        db.prop_args(a);
    }
    len(n)
}

pub(crate) fn smembers(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    set_reply(tri!(set_ref(db, &a[1], c.now_ms)).into_iter().flatten())
}

pub(crate) fn sismember(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let s = tri!(set_ref(db, &a[1], c.now_ms));
    Value::Integer(i64::from(s.is_some_and(|s| s.contains(a[2].as_ref()))))
}

pub(crate) fn smismember(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let s = tri!(set_ref(db, &a[1], c.now_ms));
    Value::Array(
        a[2..]
            .iter()
            .map(|m| Value::Integer(i64::from(s.is_some_and(|s| s.contains(m.as_ref())))))
            .collect(),
    )
}

pub(crate) fn scard(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    len(tri!(set_ref(db, &a[1], c.now_ms)).map_or(0, IndexSet::len))
}

pub(crate) fn spop(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    if a.len() > 3 {
        return err(SYNTAX);
    }
    let count = if a.len() == 3 {
        Some(tri!(count_arg(&a[2])))
    } else {
        None
    };
    let Some(s) = tri!(set_mut(db, &a[1], c.now_ms)) else {
        return if count.is_some() {
            Value::Set(vec![])
        } else {
            Value::Null
        };
    };
    let mut picks = rand_indexes(s.len(), count.unwrap_or(1), false);
    picks.sort_unstable_by(|x, y| y.cmp(x));
    let popped: Vec<Bytes> = picks
        .into_iter()
        .filter_map(|i| s.swap_remove_index(i))
        .collect();
    db.remove_if_empty(&a[1]);
    if !popped.is_empty() {
        let mut p = vec![word("SREM"), a[1].clone()];
        p.extend(popped.iter().cloned());
        db.push_prop(p);
    }
    match count {
        None => popped
            .into_iter()
            .next()
            .map_or(Value::Null, Value::BulkString),
        Some(_) => Value::Set(popped.into_iter().map(Value::BulkString).collect()),
    }
}

pub(crate) fn srandmember(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    if a.len() > 3 {
        return err(SYNTAX);
    }
    let counted = if a.len() == 3 {
        Some(tri!(rand_count(&a[2])))
    } else {
        None
    };
    let s = tri!(set_ref(db, &a[1], c.now_ms));
    match (s, counted) {
        (None, None) => Value::Null,
        (None, Some(_)) => Value::Array(vec![]),
        (Some(s), None) => {
            let i = rand_indexes(s.len(), 1, true).first().copied();
            i.and_then(|i| s.get_index(i)).map_or(Value::Null, bulk)
        }
        (Some(s), Some((n, rep))) => Value::Array(
            rand_indexes(s.len(), n, rep)
                .into_iter()
                .filter_map(|i| s.get_index(i).map(bulk))
                .collect(),
        ),
    }
}

/// The sets at `keys` (missing ones empty); WRONGTYPE when any holds another type.
fn load<'a>(db: &'a mut Db, keys: &[Bytes], now: u64) -> Result<Vec<Option<&'a Set>>, Value> {
    for k in keys {
        set_ref(db, k, now)?;
    }
    let db: &Db = db;
    Ok(keys
        .iter()
        .map(|k| match db.peek(k).map(|e| &e.data) {
            Some(Data::Set(s)) if !db.is_logically_expired(k, now) => Some(&**s),
            _ => None,
        })
        .collect())
}

#[derive(Clone, Copy)]
enum Op {
    Inter,
    Union,
    Diff,
}

fn compute(sets: &[Option<&Set>], op: Op) -> Set {
    match op {
        Op::Union => sets
            .iter()
            .flatten()
            .flat_map(|s| s.iter().cloned())
            .collect(),
        Op::Inter => {
            if sets.iter().any(Option::is_none) {
                return Set::new();
            }
            let mut all: Vec<&Set> = sets.iter().flatten().copied().collect();
            all.sort_by_key(|s| s.len());
            let Some((first, rest)) = all.split_first() else {
                return Set::new();
            };
            first
                .iter()
                .filter(|m| rest.iter().all(|s| s.contains(*m)))
                .cloned()
                .collect()
        }
        Op::Diff => {
            let Some(Some(first)) = sets.first() else {
                return Set::new();
            };
            first
                .iter()
                .filter(|m| sets[1..].iter().flatten().all(|s| !s.contains(*m)))
                .cloned()
                .collect()
        }
    }
}

fn read_op(db: &mut Db, a: &[Bytes], c: &ExecCtx, op: Op) -> Value {
    let sets = tri!(load(db, &a[1..], c.now_ms));
    set_reply(&compute(&sets, op))
}

pub(crate) fn sinter(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    read_op(db, a, c, Op::Inter)
}

pub(crate) fn sunion(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    read_op(db, a, c, Op::Union)
}

pub(crate) fn sdiff(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    read_op(db, a, c, Op::Diff)
}

/// Parse `numkeys key... [LIMIT n]` of SINTERCARD/ZINTERCARD-style commands.
pub(super) fn numkeys(a: &[Bytes], at: usize) -> Result<usize, Value> {
    let n = int_arg(&a[at])?;
    if n <= 0 {
        return Err(err("ERR numkeys should be greater than 0"));
    }
    if n as usize > a.len() - at - 1 {
        return Err(err(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    Ok(n as usize)
}

pub(crate) fn sintercard(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let n = tri!(numkeys(a, 1));
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
    let sets = tri!(load(db, &a[2..2 + n], c.now_ms));
    let r = compute(&sets, Op::Inter).len();
    len(if limit > 0 { r.min(limit) } else { r })
}

fn store_op(db: &mut Db, a: &[Bytes], c: &ExecCtx, op: Op) -> Value {
    let sets = tri!(load(db, &a[2..], c.now_ms));
    let r = compute(&sets, op);
    let n = r.len();
    if db.store_result(&a[1], (n > 0).then_some(Data::Set(Box::new(r))), c.now_ms) {
        db.prop_args(a);
    }
    len(n)
}

pub(crate) fn sinterstore(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    store_op(db, a, c, Op::Inter)
}

pub(crate) fn sunionstore(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    store_op(db, a, c, Op::Union)
}

pub(crate) fn sdiffstore(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    store_op(db, a, c, Op::Diff)
}

pub(crate) fn smove(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let (src, dst, m) = (&a[1], &a[2], &a[3]);
    let Some(s) = tri!(set_ref(db, src, c.now_ms)) else {
        return Value::Integer(0);
    };
    let has = s.contains(m.as_ref());
    tri!(set_ref(db, dst, c.now_ms));
    if !has {
        return Value::Integer(0);
    }
    if src == dst {
        return Value::Integer(1);
    }
    if let Some(s) = tri!(set_mut(db, src, c.now_ms)) {
        remove_member(s, m);
    }
    db.remove_if_empty(src);
    if tri!(set_mut(db, dst, c.now_ms)).is_none() {
        db.insert(dst, Data::Set(Box::default()), None);
    }
    if let Some(d) = tri!(set_mut(db, dst, c.now_ms)) {
        d.insert(own(m));
    }
    db.prop_args(a);
    Value::Integer(1)
}

pub(crate) fn sscan(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    tri!(cursor_arg(&a[2]));
    let o = tri!(scan_opts(a, 3, false));
    let s = tri!(set_ref(db, &a[1], c.now_ms));
    let out = ordered(s.into_iter().flatten())
        .into_iter()
        .filter(|m| o.pattern.as_ref().map_or(true, |p| glob::matches(p, m)))
        .map(bulk)
        .collect();
    scan_reply(0, out)
}
