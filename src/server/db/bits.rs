//! Bit commands on strings: SETBIT, GETBIT, BITCOUNT, BITPOS (bit 0 is the most significant
//! bit of the first byte, as in Redis).

use bytes::{Bytes, BytesMut};

use super::util::{eq, err, int_arg, len, parse_i64, str_mut, str_ref, tri, SYNTAX};
use super::{Data, Db, ExecCtx};
use crate::resp::Value;

const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";

/// A bit offset: 0 ..= 2^32 - 1 (512 MB of bits).
fn offset_arg(s: &[u8]) -> Result<usize, Value> {
    parse_i64(s)
        .filter(|n| (0..1 << 32).contains(n))
        .map(|n| n as usize)
        .ok_or_else(|| err(BAD_OFFSET))
}

fn bit_at(v: &[u8], bit: usize) -> bool {
    v.get(bit / 8).is_some_and(|b| b & (0x80 >> (bit % 8)) != 0)
}

pub(crate) fn setbit(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let off = tri!(offset_arg(&a[2]));
    let on = match a[3].as_ref() {
        b"1" => true,
        b"0" => false,
        _ => return err("ERR bit is not an integer or out of range"),
    };
    let byte = off / 8;
    let mask = 0x80u8 >> (off % 8);
    let key = &a[1];
    let old = match str_mut(db, key, c.now_ms) {
        Err(e) => return e,
        Ok(Some(v)) => {
            let mut m = std::mem::take(v)
                .try_into_mut()
                .unwrap_or_else(|b| BytesMut::from(b.as_ref()));
            if m.len() <= byte {
                m.resize(byte + 1, 0);
            }
            let old = m[byte] & mask != 0;
            if on {
                m[byte] |= mask;
            } else {
                m[byte] &= !mask;
            }
            *v = m.freeze();
            old
        }
        Ok(None) => {
            let mut m = vec![0u8; byte + 1];
            if on {
                m[byte] |= mask;
            }
            db.insert(key, Data::Str(Bytes::from(m)), None);
            false
        }
    };
    db.prop_args(a);
    Value::Integer(i64::from(old))
}

pub(crate) fn getbit(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let off = tri!(offset_arg(&a[2]));
    let v = tri!(str_ref(db, &a[1], c.now_ms));
    Value::Integer(i64::from(v.is_some_and(|v| bit_at(v, off))))
}

/// Resolve a `start end [BYTE|BIT]` range over `n_bytes`: an inclusive bit range, or `None`
/// when empty. `end == None` means "to the end".
fn bit_range(start: i64, end: Option<i64>, bits: bool, n_bytes: usize) -> Option<(usize, usize)> {
    let total = if bits {
        n_bytes as i64 * 8
    } else {
        n_bytes as i64
    };
    let mut s = if start < 0 { total + start } else { start };
    let mut e = match end {
        Some(e) if e < 0 => total + e,
        Some(e) => e,
        None => total - 1,
    };
    s = s.max(0);
    e = e.max(0);
    if e >= total {
        e = total - 1;
    }
    if s > e || total == 0 {
        return None;
    }
    if bits {
        Some((s as usize, e as usize))
    } else {
        Some((s as usize * 8, e as usize * 8 + 7))
    }
}

/// Parse the optional `BYTE|BIT` unit at `a[i]`.
fn unit(a: &[Bytes], i: usize) -> Result<bool, Value> {
    match a.get(i) {
        None => Ok(false),
        Some(u) if eq(u, b"byte") && a.len() == i + 1 => Ok(false),
        Some(u) if eq(u, b"bit") && a.len() == i + 1 => Ok(true),
        Some(_) => Err(err(SYNTAX)),
    }
}

fn count_bits(v: &[u8], s: usize, e: usize) -> usize {
    if e - s < 16 {
        return (s..=e).filter(|&b| bit_at(v, b)).count();
    }
    let head_end = (s / 8 + 1) * 8;
    let tail_start = (e / 8) * 8;
    let head = (s..head_end).filter(|&b| bit_at(v, b)).count();
    let mid: usize = v[head_end / 8..tail_start / 8]
        .iter()
        .map(|b| b.count_ones() as usize)
        .sum();
    let tail = (tail_start..=e).filter(|&b| bit_at(v, b)).count();
    head + mid + tail
}

pub(crate) fn bitcount(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    // Like Redis: the key first (missing -> 0, wrong type -> error), then the range.
    let Some(v) = tri!(str_ref(db, &a[1], c.now_ms)) else {
        return Value::Integer(0);
    };
    let r = match a.len() {
        2 => bit_range(0, None, false, v.len()),
        3 => return err(SYNTAX),
        _ => {
            let s = tri!(int_arg(&a[2]));
            let e = tri!(int_arg(&a[3]));
            let bits = tri!(unit(a, 4));
            // BITCOUNT (not BITPOS) treats two negative indexes out of order as empty.
            if s < 0 && e < 0 && s > e {
                return Value::Integer(0);
            }
            bit_range(s, Some(e), bits, v.len())
        }
    };
    len(r.map_or(0, |(s, e)| count_bits(v, s, e)))
}

pub(crate) fn bitpos(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let want = match tri!(int_arg(&a[2])) {
        0 => false,
        1 => true,
        _ => return err("ERR The bit argument must be 1 or 0."),
    };
    // The bit, then the key (missing: no 1 bits, all 0 bits), then the range.
    let Some(v) = tri!(str_ref(db, &a[1], c.now_ms)) else {
        return Value::Integer(if want { -1 } else { 0 });
    };
    let start = match a.get(3) {
        Some(s) => tri!(int_arg(s)),
        None => 0,
    };
    let end = match a.get(4) {
        Some(e) => Some(tri!(int_arg(e))),
        None => None,
    };
    let bits = tri!(unit(a, 5));
    let Some((s, e)) = bit_range(start, end, bits, v.len()) else {
        return Value::Integer(-1);
    };
    if let Some(p) = (s..=e).find(|&b| bit_at(v, b) == want) {
        return len(p);
    }
    // Looking for a clear bit with no explicit end: the string is as if padded with zeros.
    if !want && end.is_none() {
        return len(e + 1);
    }
    Value::Integer(-1)
}
