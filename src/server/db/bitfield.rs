//! BITFIELD, BITFIELD_RO and BITOP, with Redis 7.0's argument checks, overflow arithmetic
//! (WRAP/SAT/FAIL) and replies.

use bytes::Bytes;

use super::util::{eq, err, int_arg, parse_i64, str_mut, str_ref, tri, SYNTAX};
use super::{Data, Db, ExecCtx};
use crate::resp::Value;

const BAD_TYPE: &str =
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";
const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";
/// Redis' `proto-max-bulk-len` default: offsets past 512 MB are refused.
const MAX_BULK: i64 = 512 * 1024 * 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Get,
    Set,
    Incr,
}

struct FieldOp {
    op: Op,
    signed: bool,
    bits: u32,
    offset: u64,
    value: i64,
    ow: Overflow,
}

fn get_u(p: &[u8], mut offset: u64, bits: u32) -> u64 {
    let mut v = 0u64;
    for _ in 0..bits {
        let byte = p.get((offset >> 3) as usize).copied().unwrap_or(0);
        let bit = 7 - (offset & 7);
        v = (v << 1) | u64::from((byte >> bit) & 1);
        offset += 1;
    }
    v
}

fn get_i(p: &[u8], offset: u64, bits: u32) -> i64 {
    let mut v = get_u(p, offset, bits) as i64;
    if bits < 64 && v & (1i64 << (bits - 1)) != 0 {
        v |= (-1i64) << bits;
    }
    v
}

fn set_u(p: &mut [u8], mut offset: u64, bits: u32, value: u64) {
    for j in 0..bits {
        let bitval = u8::from(value & (1u64 << (bits - 1 - j)) != 0);
        let byte = (offset >> 3) as usize;
        let bit = 7 - (offset & 7);
        p[byte] = (p[byte] & !(1 << bit)) | (bitval << bit);
        offset += 1;
    }
}

/// Redis' `checkUnsignedBitfieldOverflow`: (overflow direction, value to store if any).
fn check_u(value: u64, incr: i64, bits: u32, ow: Overflow) -> (i32, u64) {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = (value as i64).wrapping_neg();
    let wrap = || {
        let mask = if bits >= 64 { 0 } else { u64::MAX << bits };
        value.wrapping_add(incr as u64) & !mask
    };
    if value > max || (incr > 0 && incr > maxincr) {
        let lim = match ow {
            Overflow::Wrap => wrap(),
            _ => max,
        };
        (1, lim)
    } else if incr < 0 && incr < minincr {
        let lim = match ow {
            Overflow::Wrap => wrap(),
            _ => 0,
        };
        (-1, lim)
    } else {
        (0, 0)
    }
}

/// Redis' `checkSignedBitfieldOverflow`.
fn check_i(value: i64, incr: i64, bits: u32, ow: Overflow) -> (i32, i64) {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let msb = 1u64 << (bits - 1);
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & msb != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        (1, if ow == Overflow::Wrap { wrap() } else { max })
    } else if value < min
        || (bits != 64 && incr < minincr)
        || (value < 0 && incr < 0 && incr < minincr)
    {
        (-1, if ow == Overflow::Wrap { wrap() } else { min })
    } else {
        (0, 0)
    }
}

fn parse_type(s: &[u8]) -> Result<(bool, u32), Value> {
    let signed = match s.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(err(BAD_TYPE)),
    };
    let rest = s[1..].split(|&c| c == 0).next().unwrap_or(&[]);
    match parse_i64(rest) {
        Some(b) if b >= 1 && ((signed && b <= 64) || (!signed && b <= 63)) => {
            Ok((signed, b as u32))
        }
        _ => Err(err(BAD_TYPE)),
    }
}

fn parse_offset(s: &[u8], bits: u32, replica: bool) -> Result<u64, Value> {
    let hash = s.first() == Some(&b'#');
    let n = parse_i64(if hash { &s[1..] } else { s }).ok_or_else(|| err(BAD_OFFSET))?;
    let n = if hash {
        n.wrapping_mul(i64::from(bits))
    } else {
        n
    };
    if n < 0 || (!replica && (n >> 3) >= MAX_BULK) {
        return Err(err(BAD_OFFSET));
    }
    Ok(n as u64)
}

pub(crate) fn bitfield(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    generic(db, a, c, false)
}

pub(crate) fn bitfield_ro(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    generic(db, a, c, true)
}

fn generic(db: &mut Db, a: &[Bytes], c: &ExecCtx, ro: bool) -> Value {
    let mut ops = Vec::new();
    let mut ow = Overflow::Wrap;
    let mut highest: u64 = 0;
    let replica = db.is_replica();
    let mut j = 2;
    while j < a.len() {
        let rem = a.len() - j - 1;
        let sub = &a[j];
        let op = if eq(sub, b"get") && rem >= 2 {
            Op::Get
        } else if eq(sub, b"set") && rem >= 3 {
            Op::Set
        } else if eq(sub, b"incrby") && rem >= 3 {
            Op::Incr
        } else if eq(sub, b"overflow") && rem >= 1 {
            let t = &a[j + 1];
            ow = if eq(t, b"wrap") {
                Overflow::Wrap
            } else if eq(t, b"sat") {
                Overflow::Sat
            } else if eq(t, b"fail") {
                Overflow::Fail
            } else {
                return err("ERR Invalid OVERFLOW type specified");
            };
            j += 2;
            continue;
        } else {
            return err(SYNTAX);
        };
        let (signed, bits) = tri!(parse_type(&a[j + 1]));
        let offset = tri!(parse_offset(&a[j + 2], bits, replica));
        let mut value = 0;
        if op != Op::Get {
            highest = highest.max(offset + u64::from(bits) - 1);
            value = tri!(int_arg(&a[j + 3]));
        }
        ops.push(FieldOp {
            op,
            signed,
            bits,
            offset,
            value,
            ow,
        });
        j += if op == Op::Get { 3 } else { 4 };
    }
    let readonly = ops.iter().all(|o| o.op == Op::Get);
    if readonly {
        let v = tri!(str_ref(db, &a[1], c.now_ms))
            .cloned()
            .unwrap_or_default();
        return Value::Array(ops.iter().map(|o| get_reply(&v, o)).collect());
    }
    if ro {
        return err("ERR BITFIELD_RO only supports the GET subcommand");
    }
    let need = (highest >> 3) as usize + 1;
    let (mut buf, mut dirty) = match tri!(str_mut(db, &a[1], c.now_ms)) {
        Some(v) => (v.to_vec(), false),
        None => (Vec::new(), true),
    };
    if buf.len() < need {
        buf.resize(need, 0);
        dirty = true;
    }
    let mut changes = dirty;
    let mut out = Vec::with_capacity(ops.len());
    for o in &ops {
        if o.op == Op::Get {
            out.push(get_reply(&buf, o));
            continue;
        }
        let (reply, newval, old_u, new_u, fail) = if o.signed {
            let old = get_i(&buf, o.offset, o.bits);
            let (of, lim) = if o.op == Op::Incr {
                check_i(old, o.value, o.bits, o.ow)
            } else {
                check_i(o.value, 0, o.bits, o.ow)
            };
            let newv = match (o.op, of) {
                (_, 0) if o.op == Op::Incr => old.wrapping_add(o.value),
                (_, 0) => o.value,
                _ => lim,
            };
            let reply = if o.op == Op::Incr { newv } else { old };
            (
                reply,
                newv as u64,
                old as u64,
                newv as u64,
                of != 0 && o.ow == Overflow::Fail,
            )
        } else {
            let old = get_u(&buf, o.offset, o.bits);
            let (of, lim) = if o.op == Op::Incr {
                check_u(old, o.value, o.bits, o.ow)
            } else {
                check_u(o.value as u64, 0, o.bits, o.ow)
            };
            let newv = match of {
                0 if o.op == Op::Incr => old.wrapping_add(o.value as u64),
                0 => o.value as u64,
                _ => lim,
            };
            let reply = if o.op == Op::Incr { newv } else { old };
            (
                reply as i64,
                newv,
                old,
                newv,
                of != 0 && o.ow == Overflow::Fail,
            )
        };
        if fail {
            out.push(Value::Null);
            continue;
        }
        out.push(Value::Integer(reply));
        set_u(&mut buf, o.offset, o.bits, newval);
        let mask = if o.bits >= 64 {
            u64::MAX
        } else {
            (1u64 << o.bits) - 1
        };
        if old_u & mask != new_u & mask {
            changes = true;
        }
    }
    // The key exists (created and grown) even when nothing changed, as in Redis.
    let ttl = db.read(&a[1], c.now_ms).and_then(|e| e.expire_at());
    db.insert(&a[1], Data::Str(Bytes::from(buf)), ttl);
    if changes {
        db.prop_args(a);
    }
    Value::Array(out)
}

fn get_reply(v: &[u8], o: &FieldOp) -> Value {
    if o.signed {
        Value::Integer(get_i(v, o.offset, o.bits))
    } else {
        Value::Integer(get_u(v, o.offset, o.bits) as i64)
    }
}

pub(crate) fn bitop(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let op = &a[1];
    let kind = if eq(op, b"and") {
        0
    } else if eq(op, b"or") {
        1
    } else if eq(op, b"xor") {
        2
    } else if eq(op, b"not") {
        3
    } else {
        return err(SYNTAX);
    };
    if kind == 3 && a.len() != 4 {
        return err("ERR BITOP NOT must be called with a single source key.");
    }
    let mut srcs = Vec::with_capacity(a.len() - 3);
    for k in &a[3..] {
        srcs.push(tri!(str_ref(db, k, c.now_ms)).cloned().unwrap_or_default());
    }
    let maxlen = srcs.iter().map(Bytes::len).max().unwrap_or(0);
    let mut res = vec![0u8; maxlen];
    for (i, r) in res.iter_mut().enumerate() {
        let byte = |s: &Bytes| s.get(i).copied().unwrap_or(0);
        *r = match kind {
            3 => !byte(&srcs[0]),
            _ => {
                let mut acc = byte(&srcs[0]);
                for s in &srcs[1..] {
                    let b = byte(s);
                    acc = match kind {
                        0 => acc & b,
                        1 => acc | b,
                        _ => acc ^ b,
                    };
                }
                acc
            }
        };
    }
    let dst = &a[2];
    if maxlen > 0 {
        db.insert(dst, Data::Str(Bytes::from(res)), None);
        db.prop_args(a);
    } else if db.exists(dst, c.now_ms) {
        db.remove(dst);
        db.prop_args(&[Bytes::from_static(b"DEL"), dst.clone()]);
    }
    Value::Integer(maxlen as i64)
}
