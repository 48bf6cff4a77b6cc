//! Hash commands.

use bytes::Bytes;
use indexmap::IndexMap;
use rand::Rng;

use super::util::{
    bulk, cursor_arg, err, format_human, hash_mut, hash_ref, int_arg, len, own, parse_f64,
    parse_i64, scan_opts, scan_reply, tri, word, wrong_args, OVERFLOW, SYNTAX,
};
use super::{glob, Data, Db, ExecCtx};
use crate::resp::Value;

type Hash = IndexMap<Bytes, Bytes>;

/// Remove a field keeping the order of the rest for small hashes (as listpack does).
fn remove_field(h: &mut Hash, f: &[u8]) -> bool {
    if h.len() <= 128 {
        h.shift_remove(f).is_some()
    } else {
        h.swap_remove(f).is_some()
    }
}

/// The hash at `key` for writing, created empty when absent.
fn hash_create<'a>(db: &'a mut Db, key: &Bytes, now: u64) -> Result<&'a mut Hash, Value> {
    if hash_mut(db, key, now)?.is_none() {
        db.insert(key, Data::Hash(Box::default()), None);
    }
    hash_mut(db, key, now)?.ok_or_else(|| err(SYNTAX))
}

fn hset_generic(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Result<usize, Value> {
    if a.len() % 2 != 0 {
        return Err(wrong_args(&a[0]));
    }
    let h = hash_create(db, &a[1], c.now_ms)?;
    let mut added = 0;
    for p in a[2..].chunks(2) {
        if let Some(v) = h.get_mut(p[0].as_ref()) {
            *v = own(&p[1]);
        } else {
            h.insert(own(&p[0]), own(&p[1]));
            added += 1;
        }
    }
    db.prop_args(a);
    Ok(added)
}

pub(crate) fn hset(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    match hset_generic(db, a, c) {
        Ok(n) => len(n),
        Err(e) => e,
    }
}

pub(crate) fn hmset(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    match hset_generic(db, a, c) {
        Ok(_) => Value::ok(),
        Err(e) => e,
    }
}

pub(crate) fn hsetnx(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    if let Some(h) = tri!(hash_ref(db, &a[1], c.now_ms)) {
        if h.contains_key(a[2].as_ref()) {
            return Value::Integer(0);
        }
    }
    let h = tri!(hash_create(db, &a[1], c.now_ms));
    h.insert(own(&a[2]), own(&a[3]));
    db.prop_args(a);
    Value::Integer(1)
}

pub(crate) fn hget(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    match tri!(hash_ref(db, &a[1], c.now_ms)).and_then(|h| h.get(a[2].as_ref())) {
        Some(v) => bulk(v),
        None => Value::Null,
    }
}

pub(crate) fn hmget(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let h = tri!(hash_ref(db, &a[1], c.now_ms));
    Value::Array(
        a[2..]
            .iter()
            .map(|f| h.and_then(|h| h.get(f.as_ref())).map_or(Value::Null, bulk))
            .collect(),
    )
}

pub(crate) fn hgetall(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let h = tri!(hash_ref(db, &a[1], c.now_ms));
    Value::Map(
        h.into_iter()
            .flatten()
            .map(|(k, v)| (bulk(k), bulk(v)))
            .collect(),
    )
}

pub(crate) fn hdel(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let Some(h) = tri!(hash_mut(db, &a[1], c.now_ms)) else {
        return Value::Integer(0);
    };
    let n = a[2..].iter().filter(|f| remove_field(h, f)).count();
    db.remove_if_empty(&a[1]);
    if n > 0 {
        db.prop_args(a);
    }
    len(n)
}

pub(crate) fn hexists(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let h = tri!(hash_ref(db, &a[1], c.now_ms));
    Value::Integer(i64::from(h.is_some_and(|h| h.contains_key(a[2].as_ref()))))
}

pub(crate) fn hlen(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    len(tri!(hash_ref(db, &a[1], c.now_ms)).map_or(0, IndexMap::len))
}

pub(crate) fn hkeys(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let h = tri!(hash_ref(db, &a[1], c.now_ms));
    Value::Array(h.into_iter().flat_map(|h| h.keys()).map(bulk).collect())
}

pub(crate) fn hvals(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let h = tri!(hash_ref(db, &a[1], c.now_ms));
    Value::Array(h.into_iter().flat_map(|h| h.values()).map(bulk).collect())
}

pub(crate) fn hstrlen(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let h = tri!(hash_ref(db, &a[1], c.now_ms));
    len(h.and_then(|h| h.get(a[2].as_ref())).map_or(0, Bytes::len))
}

pub(crate) fn hincrby(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let by = tri!(int_arg(&a[3]));
    let cur = match tri!(hash_ref(db, &a[1], c.now_ms)).and_then(|h| h.get(a[2].as_ref())) {
        None => 0,
        Some(v) => match parse_i64(v) {
            Some(n) => n,
            None => return err("ERR hash value is not an integer"),
        },
    };
    let Some(new) = cur.checked_add(by) else {
        return err(OVERFLOW);
    };
    let h = tri!(hash_create(db, &a[1], c.now_ms));
    h.insert(own(&a[2]), super::util::int_bytes(new));
    db.prop_args(a);
    Value::Integer(new)
}

pub(crate) fn hincrbyfloat(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let by = tri!(super::util::float_arg(&a[3]));
    if by.is_infinite() {
        return err("ERR value is NaN or Infinity");
    }
    let cur = match tri!(hash_ref(db, &a[1], c.now_ms)).and_then(|h| h.get(a[2].as_ref())) {
        None => 0.0,
        Some(v) => match parse_f64(v) {
            Some(n) => n,
            None => return err("ERR hash value is not a float"),
        },
    };
    let new = cur + by;
    if !new.is_finite() {
        return err("ERR increment would produce NaN or Infinity");
    }
    let text = Bytes::from(format_human(new));
    let h = tri!(hash_create(db, &a[1], c.now_ms));
    h.insert(own(&a[2]), text.clone());
    db.push_prop(vec![word("HSET"), a[1].clone(), a[2].clone(), text.clone()]);
    Value::BulkString(text)
}

pub(crate) fn hscan(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    tri!(cursor_arg(&a[2]));
    let o = tri!(scan_opts(a, 3, false));
    let h = tri!(hash_ref(db, &a[1], c.now_ms));
    let mut out = Vec::new();
    for (k, v) in h.into_iter().flatten() {
        if o.pattern.as_ref().map_or(true, |p| glob::matches(p, k)) {
            out.push(bulk(k));
            out.push(bulk(v));
        }
    }
    scan_reply(0, out)
}

/// Most repeated picks one negative-count call may ask for. Redis has no such cap, but here a
/// reply lives in this process's memory: a client must not be able to abort the server.
const MAX_REPEATED_PICKS: u64 = 1 << 24;

/// Parse the `count` of HRANDFIELD/SRANDMEMBER/ZRANDMEMBER: (count, allow repeats).
pub(super) fn rand_count(arg: &[u8]) -> Result<(usize, bool), Value> {
    let n = int_arg(arg)?;
    if n < -(i64::MAX / 2) || (n < 0 && n.unsigned_abs() > MAX_REPEATED_PICKS) {
        return Err(err("ERR value is out of range"));
    }
    Ok((n.unsigned_abs() as usize, n < 0))
}

/// Pick `count` indexes out of `n`: distinct (at most `n`) or with repeats.
pub(super) fn rand_indexes(n: usize, count: usize, repeats: bool) -> Vec<usize> {
    let mut rng = rand::thread_rng();
    if n == 0 {
        return Vec::new();
    }
    if repeats {
        return (0..count).map(|_| rng.gen_range(0..n)).collect();
    }
    if count >= n {
        return (0..n).collect();
    }
    rand::seq::index::sample(&mut rng, n, count).into_vec()
}

pub(crate) fn hrandfield(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let withvalues = match a.len() {
        2 | 3 => false,
        4 if super::util::eq(&a[3], b"withvalues") => true,
        _ => return err(SYNTAX),
    };
    let counted = if a.len() >= 3 {
        Some(tri!(rand_count(&a[2])))
    } else {
        None
    };
    let h = tri!(hash_ref(db, &a[1], c.now_ms));
    let Some((count, repeats)) = counted else {
        return match h {
            None => Value::Null,
            Some(h) => {
                let i = rand_indexes(h.len(), 1, true).first().copied();
                i.and_then(|i| h.get_index(i))
                    .map_or(Value::Null, |(k, _)| bulk(k))
            }
        };
    };
    let Some(h) = h else {
        return Value::Array(vec![]);
    };
    let picks = rand_indexes(h.len(), count, repeats);
    let mut out = Vec::with_capacity(picks.len() * 2);
    for i in picks {
        let Some((k, v)) = h.get_index(i) else {
            continue;
        };
        if !withvalues {
            out.push(bulk(k));
        } else if c.resp3 {
            out.push(Value::Array(vec![bulk(k), bulk(v)]));
        } else {
            out.push(bulk(k));
            out.push(bulk(v));
        }
    }
    Value::Array(out)
}
