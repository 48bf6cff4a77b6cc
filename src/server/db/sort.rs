//! SORT and SORT_RO as Redis 7.0 runs them in cluster mode: BY and GET with a pattern are
//! refused (`... denied in Cluster mode.`), `BY` without `*` skips sorting, LIMIT/ASC/DESC/
//! ALPHA/STORE as in `sortCommandGeneric` (stable sorts, the same LIMIT clamping).

use std::cmp::Ordering;
use std::collections::VecDeque;

use bytes::Bytes;

use super::util::{eq, err, parse_i64, wrongtype, SYNTAX};
use super::{Data, Db, ExecCtx};
use crate::resp::Value;

pub(crate) fn sort(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    generic(db, a, c, false)
}

pub(crate) fn sort_ro(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    generic(db, a, c, true)
}

/// `strtod` as SORT uses it: the whole string must be consumed (leading spaces allowed, an
/// empty string is 0), NaN refused.
fn sort_score(s: &[u8]) -> Option<f64> {
    let t = std::str::from_utf8(s).ok()?;
    let t = t.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    if t.is_empty() {
        return Some(0.0);
    }
    let v: f64 = t.parse().ok()?;
    // strtod reports ERANGE for a finite text that overflows.
    let literal_inf = t
        .trim_start_matches(['+', '-'])
        .to_ascii_lowercase()
        .starts_with("inf");
    (!v.is_nan() && (v.is_finite() || literal_inf)).then_some(v)
}

fn generic(db: &mut Db, a: &[Bytes], c: &ExecCtx, readonly: bool) -> Value {
    let (mut desc, mut alpha, mut dontsort) = (false, false, false);
    let (mut limit_start, mut limit_count): (i64, i64) = (0, -1);
    let mut store: Option<Bytes> = None;
    let mut j = 2;
    while j < a.len() {
        let left = a.len() - j - 1;
        let o = &a[j];
        if eq(o, b"asc") {
            desc = false;
        } else if eq(o, b"desc") {
            desc = true;
        } else if eq(o, b"alpha") {
            alpha = true;
        } else if eq(o, b"limit") && left >= 2 {
            match (parse_i64(&a[j + 1]), parse_i64(&a[j + 2])) {
                (Some(s), Some(n)) => {
                    limit_start = s;
                    limit_count = n;
                }
                _ => return err(super::util::NOT_INT),
            }
            j += 2;
        } else if !readonly && eq(o, b"store") && left >= 1 {
            store = Some(a[j + 1].clone());
            j += 1;
        } else if eq(o, b"by") && left >= 1 {
            if a[j + 1].contains(&b'*') {
                return err("ERR BY option of SORT denied in Cluster mode.");
            }
            dontsort = true;
            j += 1;
        } else if eq(o, b"get") && left >= 1 {
            return err("ERR GET option of SORT denied in Cluster mode.");
        } else {
            return err(SYNTAX);
        }
        j += 1;
    }
    let (items, is_set): (Vec<Bytes>, bool) = match db.read(&a[1], c.now_ms) {
        None => (Vec::new(), false),
        Some(e) => match &e.data {
            Data::List(l) => (l.iter().cloned().collect(), false),
            Data::Set(s) => (s.iter().cloned().collect(), true),
            Data::Zset(z) => (z.iter().map(|(m, _)| m.clone()).collect(), false),
            _ => return wrongtype(),
        },
    };
    if dontsort && is_set && store.is_some() {
        dontsort = false;
        alpha = true;
    }
    let len = items.len() as i64;
    let mut start = limit_start.max(0).min(len);
    let count = limit_count.max(-1).min(len);
    let mut end = if count < 0 {
        len - 1
    } else {
        start + count - 1
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    if end >= len {
        end = len - 1;
    }
    let mut vector: Vec<Bytes> = items;
    if dontsort {
        if !is_set && desc {
            vector.reverse();
        }
    } else {
        let mut scored: Vec<(f64, Bytes)> = Vec::with_capacity(vector.len());
        let mut bad = false;
        for v in vector {
            let s = if alpha {
                0.0
            } else {
                sort_score(&v).unwrap_or_else(|| {
                    bad = true;
                    0.0
                })
            };
            scored.push((s, v));
        }
        if bad {
            return err("ERR One or more scores can't be converted into double");
        }
        scored.sort_by(|x, y| {
            let o = if alpha {
                x.1.cmp(&y.1)
            } else {
                x.0.partial_cmp(&y.0)
                    .unwrap_or(Ordering::Equal)
                    .then_with(|| x.1.cmp(&y.1))
            };
            if desc {
                o.reverse()
            } else {
                o
            }
        });
        vector = scored.into_iter().map(|(_, v)| v).collect();
    }
    let out: Vec<Bytes> = if end >= start && start >= 0 {
        vector[start as usize..=end as usize].to_vec()
    } else {
        Vec::new()
    };
    let Some(dst) = store else {
        return Value::Array(out.into_iter().map(Value::BulkString).collect());
    };
    let n = out.len();
    if n > 0 {
        db.insert(&dst, Data::List(VecDeque::from(out)), None);
        db.prop_args(a);
    } else if db.exists(&dst, c.now_ms) {
        db.remove(&dst);
        db.prop_args(&[Bytes::from_static(b"DEL"), dst]);
    }
    Value::Integer(n as i64)
}
