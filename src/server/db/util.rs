//! Argument parsing and reply helpers shared by every command module, with Redis' error text.

use bytes::Bytes;

use super::{Data, Db, Entry};
use crate::resp::Value;

/// The reply to an operation on a key of another type.
pub(super) const WRONGTYPE: &str =
    "WRONGTYPE Operation against a key holding the wrong kind of value";
pub(super) const NOT_INT: &str = "ERR value is not an integer or out of range";
pub(super) const NOT_FLOAT: &str = "ERR value is not a valid float";
pub(super) const SYNTAX: &str = "ERR syntax error";
pub(super) const OVERFLOW: &str = "ERR increment or decrement would overflow";
pub(super) const NO_KEY: &str = "ERR no such key";
pub(super) const MUST_BE_POSITIVE: &str = "ERR value is out of range, must be positive";

/// An error reply from static text.
pub(super) fn err(msg: &'static str) -> Value {
    Value::Error(Bytes::from_static(msg.as_bytes()))
}

pub(super) fn wrongtype() -> Value {
    err(WRONGTYPE)
}

/// `ERR wrong number of arguments for 'name' command` (name lowercased, as Redis prints it).
pub(super) fn wrong_args(name: &[u8]) -> Value {
    Value::error(format!(
        "ERR wrong number of arguments for '{}' command",
        String::from_utf8_lossy(name).to_ascii_lowercase()
    ))
}

/// Parse an integer exactly as Redis' `string2ll`: optional `-`, digits, no leading zeros,
/// no `+`, no spaces, within `i64`.
pub(super) fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else {
        i64::try_from(v).ok()
    }
}

/// [`parse_i64`] with the standard error reply.
pub(super) fn int_arg(s: &[u8]) -> Result<i64, Value> {
    parse_i64(s).ok_or_else(|| err(NOT_INT))
}

/// A non-negative integer argument; negative gives "value is out of range, must be positive".
pub(super) fn count_arg(s: &[u8]) -> Result<usize, Value> {
    let n = int_arg(s)?;
    usize::try_from(n).map_err(|_| err(MUST_BE_POSITIVE))
}

/// Parse a float as Redis' `strtold`-based parsers: decimal or exponent notation and
/// `inf`/`-inf`; no spaces, no NaN.
pub(super) fn parse_f64(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s[0].is_ascii_whitespace() || s[s.len() - 1].is_ascii_whitespace() {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    let v: f64 = text.parse().ok()?;
    if v.is_nan() {
        None
    } else {
        Some(v)
    }
}

/// [`parse_f64`] with the standard error reply.
pub(super) fn float_arg(s: &[u8]) -> Result<f64, Value> {
    parse_f64(s).ok_or_else(|| err(NOT_FLOAT))
}

/// ASCII case-insensitive equality with a lowercase literal.
#[inline]
pub(super) fn eq(arg: &[u8], lit: &[u8]) -> bool {
    arg.eq_ignore_ascii_case(lit)
}

/// Integer reply text as `Bytes` (for propagation).
pub(super) fn int_bytes(n: i64) -> Bytes {
    let mut buf = itoa::Buffer::new();
    Bytes::copy_from_slice(buf.format(n).as_bytes())
}

pub(super) fn u64_bytes(n: u64) -> Bytes {
    let mut buf = itoa::Buffer::new();
    Bytes::copy_from_slice(buf.format(n).as_bytes())
}

/// A static word as `Bytes`.
pub(super) fn word(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

/// Format a float the way `INCRBYFLOAT`/`HINCRBYFLOAT` store it: plain decimal, no exponent,
/// trailing zeros trimmed. Redis computes in `long double` and prints 17 significant digits,
/// which hides the last-bit noise of `0.1 + 0.2`; rounding to 15 significant digits when that
/// stays within a couple of ulps reproduces that for the common cases.
pub(super) fn format_human(v: f64) -> String {
    let mut x = v;
    if v != 0.0 && v.is_finite() {
        if let Ok(r) = format!("{v:.14e}").parse::<f64>() {
            let ulp = f64::from_bits(v.abs().to_bits() + 1) - v.abs();
            if (r - v).abs() <= 2.0 * ulp {
                x = r;
            }
        }
    }
    let s = format!("{x}");
    if s == "-0" {
        "0".to_string()
    } else {
        s
    }
}

/// A usize as an integer reply.
#[inline]
pub(super) fn len(n: usize) -> Value {
    Value::Integer(n as i64)
}

/// Normalise a Redis range (`start`, `stop`, negatives from the end) over `len` items into
/// an inclusive index pair, or `None` when empty.
pub(super) fn norm_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut s = if start < 0 { len + start } else { start };
    let mut e = if stop < 0 { len + stop } else { stop };
    if s < 0 {
        s = 0;
    }
    if s > e || s >= len {
        return None;
    }
    if e >= len {
        e = len - 1;
    }
    Some((s as usize, e as usize))
}

/// Parse `COUNT n`/`MATCH p`/`TYPE t` options of the *SCAN commands starting at `args[i]`.
pub(super) struct ScanOpts {
    pub(super) pattern: Option<Bytes>,
    pub(super) count: usize,
    pub(super) type_name: Option<Bytes>,
}

pub(super) fn scan_opts(args: &[Bytes], mut i: usize, allow_type: bool) -> Result<ScanOpts, Value> {
    let mut o = ScanOpts {
        pattern: None,
        count: 10,
        type_name: None,
    };
    while i < args.len() {
        let a = &args[i];
        if i + 1 >= args.len() {
            return Err(err(SYNTAX));
        }
        if eq(a, b"count") {
            let n = int_arg(&args[i + 1])?;
            if n < 1 {
                return Err(err(SYNTAX));
            }
            o.count = n as usize;
        } else if eq(a, b"match") {
            let p = &args[i + 1];
            o.pattern = if p.as_ref() == b"*" {
                None
            } else {
                Some(p.clone())
            };
        } else if allow_type && eq(a, b"type") {
            o.type_name = Some(args[i + 1].clone());
        } else {
            return Err(err(SYNTAX));
        }
        i += 2;
    }
    Ok(o)
}

/// Parse a *SCAN cursor: an unsigned decimal.
pub(super) fn cursor_arg(s: &[u8]) -> Result<u64, Value> {
    std::str::from_utf8(s)
        .ok()
        .filter(|t| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()))
        .and_then(|t| t.parse::<u64>().ok())
        .ok_or_else(|| err("ERR invalid cursor"))
}

/// The `[cursor, items]` reply of the *SCAN commands.
pub(super) fn scan_reply(cursor: u64, items: Vec<Value>) -> Value {
    Value::Array(vec![
        Value::BulkString(u64_bytes(cursor)),
        Value::Array(items),
    ])
}

/// Typed access to an entry's value: `Ok(None)` when the key is absent, `Err(WRONGTYPE)`
/// when it holds another type.
macro_rules! typed {
    ($fn_ref:ident, $fn_mut:ident, $variant:ident, $ty:ty) => {
        pub(super) fn $fn_ref<'a>(
            db: &'a mut Db,
            key: &[u8],
            now: u64,
        ) -> Result<Option<&'a $ty>, Value> {
            match db.read(key, now) {
                None => Ok(None),
                Some(Entry {
                    data: Data::$variant(v),
                    ..
                }) => Ok(Some(v)),
                Some(_) => Err(wrongtype()),
            }
        }
        pub(super) fn $fn_mut<'a>(
            db: &'a mut Db,
            key: &[u8],
            now: u64,
        ) -> Result<Option<&'a mut $ty>, Value> {
            match db.write(key, now) {
                None => Ok(None),
                Some(Entry {
                    data: Data::$variant(v),
                    ..
                }) => Ok(Some(v)),
                Some(_) => Err(wrongtype()),
            }
        }
    };
}

typed!(str_ref, str_mut, Str, Bytes);
typed!(hash_ref, hash_mut, Hash, indexmap::IndexMap<Bytes, Bytes>);
typed!(list_ref, list_mut, List, std::collections::VecDeque<Bytes>);
typed!(set_ref, set_mut, Set, indexmap::IndexSet<Bytes>);
typed!(zset_ref, zset_mut, Zset, Box<super::ZSet>);

/// Unwrap a `Result<T, Value>` inside a handler, returning the error reply.
macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return e,
        }
    };
}
pub(super) use tri;

/// Bulk reply of a stored value.
#[inline]
pub(super) fn bulk(b: &Bytes) -> Value {
    Value::BulkString(b.clone())
}

/// Copy `b` so the keyspace does not pin a network read buffer.
#[inline]
pub(super) fn own(b: &Bytes) -> Bytes {
    Bytes::copy_from_slice(b)
}

/// A score reply: a RESP3 double, or for RESP2 the `%.17g` bulk string Redis 7.0 sends.
pub(super) fn score(v: f64, resp3: bool) -> Value {
    if resp3 {
        Value::Double(v)
    } else {
        Value::BulkString(Bytes::from(crate::resp::format_g17(v)))
    }
}

/// Parse `numkeys key... WHERE [COUNT n]` of LMPOP/ZMPOP: the key index range, whether the
/// first of `words` was given, and the count.
pub(super) fn mpop_args(
    a: &[Bytes],
    words: (&[u8], &[u8]),
) -> Result<(std::ops::Range<usize>, bool, usize), Value> {
    let n = parse_i64(&a[1])
        .filter(|n| *n > 0)
        .ok_or_else(|| err("ERR numkeys should be greater than 0"))? as usize;
    if n > a.len().saturating_sub(3) {
        return Err(err(SYNTAX));
    }
    let w = &a[2 + n];
    let first = if eq(w, words.0) {
        true
    } else if eq(w, words.1) {
        false
    } else {
        return Err(err(SYNTAX));
    };
    let rest = &a[3 + n..];
    let count = match rest {
        [] => 1,
        [c, v] if eq(c, b"count") => parse_i64(v)
            .filter(|n| *n > 0)
            .ok_or_else(|| err("ERR count should be greater than 0"))?
            as usize,
        _ => return Err(err(SYNTAX)),
    };
    Ok((2..2 + n, first, count))
}
