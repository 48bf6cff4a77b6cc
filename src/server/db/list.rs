//! List commands (non-blocking).

use std::collections::VecDeque;

use bytes::Bytes;

use super::util::{
    bulk, count_arg, eq, err, int_arg, len, list_mut, list_ref, norm_range, own, tri, NO_KEY,
    SYNTAX,
};
use super::{Data, Db, ExecCtx};
use crate::resp::Value;

type List = VecDeque<Bytes>;

fn push_generic(db: &mut Db, a: &[Bytes], c: &ExecCtx, left: bool, only_existing: bool) -> Value {
    let key = &a[1];
    if tri!(list_mut(db, key, c.now_ms)).is_none() {
        if only_existing {
            return Value::Integer(0);
        }
        db.insert(key, Data::List(VecDeque::new()), None);
    }
    let Some(l) = tri!(list_mut(db, key, c.now_ms)) else {
        return Value::Integer(0);
    };
    for v in &a[2..] {
        if left {
            l.push_front(own(v));
        } else {
            l.push_back(own(v));
        }
    }
    let n = l.len();
    db.prop_args(a);
    len(n)
}

pub(crate) fn lpush(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    push_generic(db, a, c, true, false)
}

pub(crate) fn rpush(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    push_generic(db, a, c, false, false)
}

pub(crate) fn lpushx(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    push_generic(db, a, c, true, true)
}

pub(crate) fn rpushx(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    push_generic(db, a, c, false, true)
}

fn pop_generic(db: &mut Db, a: &[Bytes], c: &ExecCtx, left: bool) -> Value {
    if a.len() > 3 {
        return err(SYNTAX);
    }
    let count = if a.len() == 3 {
        Some(tri!(count_arg(&a[2])))
    } else {
        None
    };
    let Some(l) = tri!(list_mut(db, &a[1], c.now_ms)) else {
        return if count.is_some() {
            Value::NullArray
        } else {
            Value::Null
        };
    };
    let take = |l: &mut List| if left { l.pop_front() } else { l.pop_back() };
    let reply = match count {
        None => take(l).map_or(Value::Null, Value::BulkString),
        Some(n) => {
            let mut out = Vec::with_capacity(n.min(l.len()));
            while out.len() < n {
                match take(l) {
                    Some(v) => out.push(Value::BulkString(v)),
                    None => break,
                }
            }
            Value::Array(out)
        }
    };
    db.remove_if_empty(&a[1]);
    if count != Some(0) {
        db.prop_args(a);
    }
    reply
}

pub(crate) fn lpop(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    pop_generic(db, a, c, true)
}

pub(crate) fn rpop(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    pop_generic(db, a, c, false)
}

pub(crate) fn llen(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    len(tri!(list_ref(db, &a[1], c.now_ms)).map_or(0, VecDeque::len))
}

pub(crate) fn lrange(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let s = tri!(int_arg(&a[2]));
    let e = tri!(int_arg(&a[3]));
    let Some(l) = tri!(list_ref(db, &a[1], c.now_ms)) else {
        return Value::Array(vec![]);
    };
    match norm_range(s, e, l.len()) {
        Some((s, e)) => Value::Array(l.range(s..=e).map(bulk).collect()),
        None => Value::Array(vec![]),
    }
}

/// Resolve a possibly negative list index.
fn index(i: i64, n: usize) -> Option<usize> {
    let i = if i < 0 { n as i64 + i } else { i };
    (i >= 0 && (i as usize) < n).then_some(i as usize)
}

pub(crate) fn lindex(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let Some(l) = tri!(list_ref(db, &a[1], c.now_ms)) else {
        return Value::Null;
    };
    let i = tri!(int_arg(&a[2]));
    index(i, l.len())
        .and_then(|i| l.get(i))
        .map_or(Value::Null, bulk)
}

pub(crate) fn lset(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    if tri!(list_ref(db, &a[1], c.now_ms)).is_none() {
        return err(NO_KEY);
    }
    let i = tri!(int_arg(&a[2]));
    let Some(l) = tri!(list_mut(db, &a[1], c.now_ms)) else {
        return err(NO_KEY);
    };
    let Some(i) = index(i, l.len()) else {
        return err("ERR index out of range");
    };
    l[i] = own(&a[3]);
    db.prop_args(a);
    Value::ok()
}

pub(crate) fn lrem(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let count = tri!(int_arg(&a[2]));
    let Some(l) = tri!(list_mut(db, &a[1], c.now_ms)) else {
        return Value::Integer(0);
    };
    let target = &a[3];
    let limit = if count == 0 {
        usize::MAX
    } else {
        count.unsigned_abs() as usize
    };
    let mut removed = 0;
    if count >= 0 {
        let mut i = 0;
        while i < l.len() && removed < limit {
            if l[i] == target {
                l.remove(i);
                removed += 1;
            } else {
                i += 1;
            }
        }
    } else {
        let mut i = l.len();
        while i > 0 && removed < limit {
            i -= 1;
            if l[i] == target {
                l.remove(i);
                removed += 1;
            }
        }
    }
    db.remove_if_empty(&a[1]);
    if removed > 0 {
        db.prop_args(a);
    }
    len(removed)
}

pub(crate) fn ltrim(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let s = tri!(int_arg(&a[2]));
    let e = tri!(int_arg(&a[3]));
    let Some(l) = tri!(list_mut(db, &a[1], c.now_ms)) else {
        return Value::ok();
    };
    let before = l.len();
    match norm_range(s, e, l.len()) {
        Some((s, e)) => {
            l.truncate(e + 1);
            l.drain(..s);
        }
        None => l.clear(),
    }
    let changed = l.len() != before;
    db.remove_if_empty(&a[1]);
    if changed {
        db.prop_args(a);
    }
    Value::ok()
}

pub(crate) fn linsert(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let before = if eq(&a[2], b"before") {
        true
    } else if eq(&a[2], b"after") {
        false
    } else {
        return err(SYNTAX);
    };
    let Some(l) = tri!(list_mut(db, &a[1], c.now_ms)) else {
        return Value::Integer(0);
    };
    let Some(pos) = l.iter().position(|v| v == &a[3]) else {
        return Value::Integer(-1);
    };
    l.insert(if before { pos } else { pos + 1 }, own(&a[4]));
    let n = l.len();
    db.prop_args(a);
    len(n)
}

pub(crate) fn lpos(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let (mut rank, mut count, mut maxlen) = (1i64, None::<usize>, 0usize);
    let mut i = 3;
    while i < a.len() {
        if i + 1 >= a.len() {
            return err(SYNTAX);
        }
        let o = &a[i];
        let n = tri!(int_arg(&a[i + 1]));
        if eq(o, b"rank") {
            if n == 0 {
                return err("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list");
            }
            if n == i64::MIN {
                return err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807");
            }
            rank = n;
        } else if eq(o, b"count") {
            if n < 0 {
                return err("ERR COUNT can't be negative");
            }
            count = Some(n as usize);
        } else if eq(o, b"maxlen") {
            if n < 0 {
                return err("ERR MAXLEN can't be negative");
            }
            maxlen = n as usize;
        } else {
            return err(SYNTAX);
        }
        i += 2;
    }
    let Some(l) = tri!(list_ref(db, &a[1], c.now_ms)) else {
        return if count.is_some() {
            Value::Array(vec![])
        } else {
            Value::Null
        };
    };
    let want = match count {
        Some(0) => usize::MAX,
        Some(n) => n,
        None => 1,
    };
    let mut skip = rank.unsigned_abs() - 1;
    let mut found = Vec::new();
    let scan = if maxlen == 0 { l.len() } else { maxlen };
    let idx: Box<dyn Iterator<Item = usize>> = if rank > 0 {
        Box::new(0..l.len())
    } else {
        Box::new((0..l.len()).rev())
    };
    for i in idx.take(scan) {
        if l[i] == a[2] {
            if skip > 0 {
                skip -= 1;
            } else {
                found.push(Value::Integer(i as i64));
                if found.len() >= want {
                    break;
                }
            }
        }
    }
    if count.is_some() {
        Value::Array(found)
    } else {
        found.pop().unwrap_or(Value::Null)
    }
}

fn side(arg: &[u8]) -> Option<bool> {
    if eq(arg, b"left") {
        Some(true)
    } else if eq(arg, b"right") {
        Some(false)
    } else {
        None
    }
}

fn lmove_generic(db: &mut Db, a: &[Bytes], c: &ExecCtx, from_left: bool, to_left: bool) -> Value {
    let (src, dst) = (&a[1], &a[2]);
    if tri!(list_ref(db, src, c.now_ms)).is_none() {
        return Value::Null;
    }
    tri!(list_ref(db, dst, c.now_ms));
    let Some(l) = tri!(list_mut(db, src, c.now_ms)) else {
        return Value::Null;
    };
    let Some(v) = (if from_left {
        l.pop_front()
    } else {
        l.pop_back()
    }) else {
        return Value::Null;
    };
    db.remove_if_empty(src);
    if tri!(list_mut(db, dst, c.now_ms)).is_none() {
        db.insert(dst, Data::List(VecDeque::new()), None);
    }
    if let Some(l) = tri!(list_mut(db, dst, c.now_ms)) {
        if to_left {
            l.push_front(v.clone());
        } else {
            l.push_back(v.clone());
        }
    }
    db.prop_args(a);
    Value::BulkString(v)
}

pub(crate) fn lmove(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    match (side(&a[3]), side(&a[4])) {
        (Some(f), Some(t)) => lmove_generic(db, a, c, f, t),
        _ => err(SYNTAX),
    }
}

pub(crate) fn rpoplpush(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    lmove_generic(db, a, c, false, true)
}

pub(crate) fn lmpop(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let (keys, left, count) = tri!(super::util::mpop_args(a, (b"left", b"right")));
    for k in &a[keys] {
        let Some(l) = tri!(list_mut(db, k, c.now_ms)) else {
            continue;
        };
        let mut out = Vec::with_capacity(count.min(l.len()));
        while out.len() < count {
            match if left { l.pop_front() } else { l.pop_back() } {
                Some(v) => out.push(Value::BulkString(v)),
                None => break,
            }
        }
        let n = out.len();
        db.remove_if_empty(k);
        let name = if left { "LPOP" } else { "RPOP" };
        db.push_prop(vec![
            super::util::word(name),
            k.clone(),
            super::util::int_bytes(n as i64),
        ]);
        return Value::Array(vec![bulk(k), Value::Array(out)]);
    }
    Value::NullArray
}
