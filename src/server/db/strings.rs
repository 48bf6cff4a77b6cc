//! String commands.

use bytes::{Bytes, BytesMut};

use super::util::{
    bulk, eq, err, float_arg, format_human, int_arg, len, own, parse_f64, parse_i64, str_mut,
    str_ref, tri, word, wrong_args, NOT_FLOAT, NOT_INT, OVERFLOW, SYNTAX,
};
use super::{Data, Db, ExecCtx};
use crate::resp::Value;

/// Largest string Redis accepts (`proto-max-bulk-len`).
const MAX_STRING: usize = 512 * 1024 * 1024;
const TOO_BIG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

pub(crate) fn get(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    match str_ref(db, &a[1], c.now_ms) {
        Ok(Some(v)) => bulk(v),
        Ok(None) => Value::Null,
        Err(e) => e,
    }
}

/// `ERR invalid expire time in 'cmd' command`.
pub(super) fn invalid_expire(cmd: &str) -> Value {
    Value::error(format!("ERR invalid expire time in '{cmd}' command"))
}

/// Turn a relative/absolute expiry argument into an absolute ms time. `unit_ms` is 1000 for
/// seconds; `relative` adds `now`. Rejects non-positive values and overflow like Redis.
pub(super) fn expire_at(
    arg: &[u8],
    unit_ms: i64,
    relative: bool,
    now: u64,
    cmd: &str,
) -> Result<u64, Value> {
    let n = int_arg(arg)?;
    if n <= 0 {
        return Err(invalid_expire(cmd));
    }
    let ms = n.checked_mul(unit_ms).ok_or_else(|| invalid_expire(cmd))?;
    let abs = if relative {
        ms.checked_add(now as i64)
            .ok_or_else(|| invalid_expire(cmd))?
    } else {
        ms
    };
    Ok(abs as u64)
}

/// Replace a stored string's bytes, reusing its buffer when nobody else holds it and it is
/// about the right size (the common `SET` overwrite then allocates nothing).
fn overwrite(v: &mut Bytes, new: &[u8]) {
    *v = match std::mem::take(v).try_into_mut() {
        Ok(mut m) if m.capacity() >= new.len() && m.capacity() <= 2 * new.len() + 64 => {
            m.clear();
            m.extend_from_slice(new);
            m.freeze()
        }
        _ => Bytes::copy_from_slice(new),
    };
}

pub(crate) fn set(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let now = c.now_ms;
    if a.len() == 3 {
        // Plain SET: overwrite a persistent string in place when there is one.
        if let Some(e) = db.write(&a[1], now) {
            let ttl = e.expire_at();
            if let (Data::Str(v), None) = (&mut e.data, ttl) {
                overwrite(v, &a[2]);
                db.prop_args(a);
                return Value::ok();
            }
        }
        db.insert(&a[1], Data::Str(own(&a[2])), None);
        db.prop_args(a);
        return Value::ok();
    }
    let (mut nx, mut xx, mut get, mut keepttl) = (false, false, false, false);
    let mut exp: Option<u64> = None;
    let mut has_exp = false;
    // Redis accepts the same expiry option twice (the last wins), not two different ones.
    let mut exp_kind: Option<&Bytes> = None;
    let mut i = 3;
    while i < a.len() {
        let o = &a[i];
        let next = a.get(i + 1);
        if eq(o, b"nx") && !xx {
            nx = true;
        } else if eq(o, b"xx") && !nx {
            xx = true;
        } else if eq(o, b"get") {
            get = true;
        } else if eq(o, b"keepttl") && !has_exp {
            keepttl = true;
        } else if (eq(o, b"ex") || eq(o, b"px") || eq(o, b"exat") || eq(o, b"pxat"))
            && !keepttl
            && exp_kind.map_or(true, |k: &Bytes| eq(k, o))
            && next.is_some()
        {
            exp_kind = Some(o);
            let unit = if eq(o, b"ex") || eq(o, b"exat") {
                1000
            } else {
                1
            };
            let relative = o.len() == 2;
            let arg = next.map(|b| b.as_ref()).unwrap_or_default();
            exp = Some(tri!(expire_at(arg, unit, relative, now, "set")));
            has_exp = true;
            i += 1;
        } else {
            return err(SYNTAX);
        }
        i += 1;
    }
    let key = &a[1];
    let old = if get {
        match str_ref(db, key, now) {
            Ok(v) => Some(v.cloned()),
            Err(e) => return e,
        }
    } else {
        None
    };
    let exists = match &old {
        Some(v) => v.is_some(),
        None if nx || xx || keepttl => db.exists(key, now),
        None => false,
    };
    if (nx && exists) || (xx && !exists) {
        return old.flatten().map_or(Value::Null, Value::BulkString);
    }
    let ttl = if keepttl {
        db.read(key, now).and_then(|e| e.expire_at())
    } else {
        exp
    };
    db.insert(key, Data::Str(own(&a[2])), ttl);
    if has_exp || get || nx || xx {
        let mut p = vec![word("SET"), a[1].clone(), a[2].clone()];
        if let Some(t) = exp {
            p.push(word("PXAT"));
            p.push(super::util::u64_bytes(t));
        }
        if keepttl {
            p.push(word("KEEPTTL"));
        }
        db.push_prop(p);
    } else {
        db.prop_args(a);
    }
    match old {
        Some(v) => v.map_or(Value::Null, Value::BulkString),
        None => Value::ok(),
    }
}

pub(crate) fn setnx(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    if db.exists(&a[1], c.now_ms) {
        return Value::Integer(0);
    }
    db.insert(&a[1], Data::Str(own(&a[2])), None);
    db.prop_args(a);
    Value::Integer(1)
}

fn setex_generic(db: &mut Db, a: &[Bytes], c: &ExecCtx, unit: i64, cmd: &str) -> Value {
    let t = tri!(expire_at(&a[2], unit, true, c.now_ms, cmd));
    db.insert(&a[1], Data::Str(own(&a[3])), Some(t));
    db.push_prop(vec![
        word("SET"),
        a[1].clone(),
        a[3].clone(),
        word("PXAT"),
        super::util::u64_bytes(t),
    ]);
    Value::ok()
}

pub(crate) fn setex(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    setex_generic(db, a, c, 1000, "setex")
}

pub(crate) fn psetex(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    setex_generic(db, a, c, 1, "psetex")
}

pub(crate) fn getset(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let old = match str_ref(db, &a[1], c.now_ms) {
        Ok(v) => v.cloned(),
        Err(e) => return e,
    };
    db.insert(&a[1], Data::Str(own(&a[2])), None);
    db.push_prop(vec![word("SET"), a[1].clone(), a[2].clone()]);
    old.map_or(Value::Null, Value::BulkString)
}

pub(crate) fn mget(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let out = a[1..]
        .iter()
        .map(|k| match db.read(k, c.now_ms) {
            Some(super::Entry {
                data: Data::Str(v), ..
            }) => bulk(v),
            _ => Value::Null,
        })
        .collect();
    Value::Array(out)
}

pub(crate) fn mset(db: &mut Db, a: &[Bytes], _c: &ExecCtx) -> Value {
    if a.len() % 2 == 0 {
        return wrong_args(&a[0]);
    }
    for pair in a[1..].chunks(2) {
        db.insert(&pair[0], Data::Str(own(&pair[1])), None);
    }
    db.prop_args(a);
    Value::ok()
}

pub(crate) fn msetnx(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    if a.len() % 2 == 0 {
        return wrong_args(&a[0]);
    }
    if a[1..].chunks(2).any(|p| db.exists(&p[0], c.now_ms)) {
        return Value::Integer(0);
    }
    mset(db, a, c);
    Value::Integer(1)
}

fn incr_generic(db: &mut Db, a: &[Bytes], c: &ExecCtx, by: i64) -> Value {
    let key = &a[1];
    let (cur, ttl) = match db.read(key, c.now_ms) {
        None => (0, None),
        Some(e) => match &e.data {
            Data::Str(v) => match parse_i64(v) {
                Some(n) => (n, e.expire_at()),
                None => return err(NOT_INT),
            },
            _ => return super::util::wrongtype(),
        },
    };
    let Some(new) = cur.checked_add(by) else {
        return err(OVERFLOW);
    };
    let text = super::util::int_bytes(new);
    match db.write(key, c.now_ms) {
        Some(e) => e.data = Data::Str(text),
        None => db.insert(key, Data::Str(text), ttl),
    }
    db.prop_args(a);
    Value::Integer(new)
}

pub(crate) fn incr(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    incr_generic(db, a, c, 1)
}

pub(crate) fn decr(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    incr_generic(db, a, c, -1)
}

pub(crate) fn incrby(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let by = tri!(int_arg(&a[2]));
    incr_generic(db, a, c, by)
}

pub(crate) fn decrby(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let by = tri!(int_arg(&a[2]));
    if by == i64::MIN {
        return err("ERR decrement would overflow");
    }
    incr_generic(db, a, c, -by)
}

pub(crate) fn incrbyfloat(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let key = &a[1];
    let cur = match str_ref(db, key, c.now_ms) {
        Ok(None) => 0.0,
        Ok(Some(v)) => match parse_f64(v) {
            Some(f) => f,
            None => return err(NOT_FLOAT),
        },
        Err(e) => return e,
    };
    let by = tri!(float_arg(&a[2]));
    let new = cur + by;
    if !new.is_finite() {
        return err("ERR increment would produce NaN or Infinity");
    }
    let text = Bytes::from(format_human(new));
    match db.write(key, c.now_ms) {
        Some(e) => e.data = Data::Str(text.clone()),
        None => db.insert(key, Data::Str(text.clone()), None),
    }
    db.push_prop(vec![
        word("SET"),
        key.clone(),
        text.clone(),
        word("KEEPTTL"),
    ]);
    Value::BulkString(text)
}

pub(crate) fn append(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let key = &a[1];
    let n = match str_mut(db, key, c.now_ms) {
        Err(e) => return e,
        Ok(None) => None,
        Ok(Some(v)) => {
            if v.len() + a[2].len() > MAX_STRING {
                return err(TOO_BIG);
            }
            let mut m = std::mem::take(v)
                .try_into_mut()
                .unwrap_or_else(|b| BytesMut::from(b.as_ref()));
            m.extend_from_slice(&a[2]);
            let n = m.len();
            *v = m.freeze();
            Some(n)
        }
    };
    let n = match n {
        Some(n) => n,
        None => {
            db.insert(key, Data::Str(own(&a[2])), None);
            a[2].len()
        }
    };
    db.prop_args(a);
    len(n)
}

pub(crate) fn strlen(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    match str_ref(db, &a[1], c.now_ms) {
        Ok(v) => len(v.map_or(0, Bytes::len)),
        Err(e) => e,
    }
}

pub(crate) fn getdel(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    match str_ref(db, &a[1], c.now_ms) {
        Err(e) => e,
        Ok(None) => Value::Null,
        Ok(Some(v)) => {
            let v = v.clone();
            db.remove(&a[1]);
            db.push_prop(vec![word("DEL"), a[1].clone()]);
            Value::BulkString(v)
        }
    }
}

pub(crate) fn getex(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let now = c.now_ms;
    let mut exp: Option<u64> = None;
    let mut persist = false;
    let mut i = 2;
    while i < a.len() {
        let o = &a[i];
        if eq(o, b"persist") && exp.is_none() && !persist {
            persist = true;
            i += 1;
            continue;
        }
        let unit = if eq(o, b"ex") || eq(o, b"exat") {
            1000
        } else if eq(o, b"px") || eq(o, b"pxat") {
            1
        } else {
            return err(SYNTAX);
        };
        if exp.is_some() || persist || i + 1 >= a.len() {
            return err(SYNTAX);
        }
        exp = Some(tri!(expire_at(&a[i + 1], unit, o.len() == 2, now, "getex")));
        i += 2;
    }
    let v = match str_ref(db, &a[1], now) {
        Err(e) => return e,
        Ok(None) => return Value::Null,
        Ok(Some(v)) => v.clone(),
    };
    let key = &a[1];
    if let Some(t) = exp {
        if t <= now && !db.is_replica() {
            db.remove(key);
            db.push_prop(vec![word("DEL"), key.clone()]);
        } else {
            db.set_expire(key, Some(t));
            db.push_prop(vec![
                word("PEXPIREAT"),
                key.clone(),
                super::util::u64_bytes(t),
            ]);
        }
    } else if persist && db.peek(key).is_some_and(|e| e.expire_at().is_some()) {
        db.set_expire(key, None);
        db.push_prop(vec![word("PERSIST"), key.clone()]);
    }
    Value::BulkString(v)
}

/// Resolve `GETRANGE` indices over a string of `n` bytes.
fn range(start: i64, end: i64, n: usize) -> Option<(usize, usize)> {
    if n == 0 || (start < 0 && end < 0 && start > end) {
        return None;
    }
    let n = n as i64;
    let s = if start < 0 { (n + start).max(0) } else { start };
    let mut e = if end < 0 { (n + end).max(0) } else { end };
    if e >= n {
        e = n - 1;
    }
    if s > e {
        return None;
    }
    Some((s as usize, e as usize))
}

pub(crate) fn getrange(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let start = tri!(int_arg(&a[2]));
    let end = tri!(int_arg(&a[3]));
    match str_ref(db, &a[1], c.now_ms) {
        Err(e) => e,
        Ok(None) => Value::BulkString(Bytes::new()),
        Ok(Some(v)) => match range(start, end, v.len()) {
            Some((s, e)) => Value::BulkString(v.slice(s..=e)),
            None => Value::BulkString(Bytes::new()),
        },
    }
}

pub(crate) fn setrange(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let off = tri!(int_arg(&a[2]));
    if off < 0 {
        return err("ERR offset is out of range");
    }
    let off = off as usize;
    let val = &a[3];
    let key = &a[1];
    let cur = match str_ref(db, key, c.now_ms) {
        Err(e) => return e,
        Ok(v) => v.cloned(),
    };
    let cur_len = cur.as_ref().map_or(0, Bytes::len);
    if val.is_empty() {
        return len(cur_len);
    }
    if off + val.len() > MAX_STRING {
        return err(TOO_BIG);
    }
    let mut m = BytesMut::from(cur.as_deref().unwrap_or_default());
    if m.len() < off + val.len() {
        m.resize(off + val.len(), 0);
    }
    m[off..off + val.len()].copy_from_slice(val);
    let n = m.len();
    match db.write(key, c.now_ms) {
        Some(e) => e.data = Data::Str(m.freeze()),
        None => db.insert(key, Data::Str(m.freeze()), None),
    }
    db.prop_args(a);
    len(n)
}
