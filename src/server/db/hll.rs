//! HyperLogLog (PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST) with Redis' exact algorithm
//! and byte layout: a string value `HYLL` + encoding + 3 zero bytes + 8-byte cached
//! cardinality, then 16384 six-bit registers either dense (12288 bytes) or sparse
//! (ZERO/XZERO/VAL opcodes, promoted to dense past 3000 bytes or a register above 32). The
//! same inputs give the same bytes as redis-server, so GET/DUMP-level comparisons and counts
//! agree; the estimator is Ertl's, as in Redis 5+.

use bytes::Bytes;

use super::util::{err, str_ref, tri};
use super::{Data, Db, ExecCtx};
use crate::resp::Value;

const P: u32 = 14;
const Q: u32 = 64 - P;
const REGISTERS: usize = 1 << P;
const HDR: usize = 16;
const DENSE_SIZE: usize = HDR + (REGISTERS * 6).div_ceil(8);
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
const SPARSE_MAX_BYTES: usize = 3000;
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;
const XZERO_MAX_LEN: usize = 16384;
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

const INVALID_HLL: &str = "INVALIDOBJ Corrupted HLL object detected";
const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";

fn murmur64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, b) in rest.iter().enumerate() {
            h ^= u64::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// Register index and run length of `ele` (Redis' `hllPatLen`).
fn pat_len(ele: &[u8]) -> (usize, u8) {
    let hash = murmur64a(ele, 0xadc8_3b19);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    let h = (hash >> P) | (1u64 << Q);
    (index, h.trailing_zeros() as u8 + 1)
}

fn dense_get(r: &[u8], i: usize) -> u8 {
    let byte = i * 6 / 8;
    let fb = (i * 6) & 7;
    let b0 = u16::from(r[byte]);
    let b1 = u16::from(*r.get(byte + 1).unwrap_or(&0));
    (((b0 >> fb) | (b1 << (8 - fb))) & 63) as u8
}

fn dense_set(r: &mut [u8], i: usize, v: u8) {
    let byte = i * 6 / 8;
    let fb = (i * 6) & 7;
    let v = u16::from(v);
    r[byte] &= !((63u16 << fb) as u8);
    r[byte] |= (v << fb) as u8;
    if byte + 1 < r.len() {
        r[byte + 1] &= !((63u16 >> (8 - fb)) as u8);
        r[byte + 1] |= (v >> (8 - fb)) as u8;
    }
}

/// A new, empty sparse HLL.
fn new_hll() -> Vec<u8> {
    let mut v = b"HYLL".to_vec();
    v.extend_from_slice(&[SPARSE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let mut left = REGISTERS;
    while left > 0 {
        let n = left.min(XZERO_MAX_LEN);
        v.extend_from_slice(&xzero(n));
        left -= n;
    }
    v
}

fn xzero(len: usize) -> [u8; 2] {
    let l = len - 1;
    [((l >> 8) as u8) | 0x40, (l & 0xff) as u8]
}

fn val_op(v: u8, len: usize) -> u8 {
    (((v - 1) << 2) | (len as u8 - 1)) | 0x80
}

/// One sparse opcode: (registers covered, value, bytes).
fn op_at(s: &[u8], p: usize) -> Option<(usize, u8, usize)> {
    let b = *s.get(p)?;
    Some(if b & 0xc0 == 0 {
        (usize::from(b & 0x3f) + 1, 0, 1)
    } else if b & 0xc0 == 0x40 {
        let b2 = *s.get(p + 1)?;
        (((usize::from(b & 0x3f) << 8) | usize::from(b2)) + 1, 0, 2)
    } else {
        (usize::from(b & 3) + 1, ((b >> 2) & 0x1f) + 1, 1)
    })
}

fn is_valid(v: &[u8]) -> bool {
    v.len() >= HDR
        && &v[..4] == b"HYLL"
        && v[4] <= SPARSE
        && !(v[4] == DENSE && v.len() != DENSE_SIZE)
}

fn invalidate(v: &mut [u8]) {
    v[15] |= 0x80;
}

/// Sparse -> dense; `None` when the sparse data is corrupt.
fn to_dense(v: &[u8]) -> Option<Vec<u8>> {
    if v[4] == DENSE {
        return Some(v.to_vec());
    }
    let mut d = vec![0u8; DENSE_SIZE];
    d[..HDR].copy_from_slice(&v[..HDR]);
    d[4] = DENSE;
    let mut idx = 0;
    let mut p = HDR;
    while p < v.len() {
        let (run, val, len) = op_at(v, p)?;
        if val > 0 {
            if run + idx > REGISTERS {
                break;
            }
            for i in idx..idx + run {
                dense_set(&mut d[HDR..], i, val);
            }
        }
        idx += run;
        p += len;
    }
    (idx == REGISTERS).then_some(d)
}

/// Set register `index` to at least `count`: `Some(true)` when changed, `None` if corrupt.
fn hll_set(v: &mut Vec<u8>, index: usize, count: u8) -> Option<bool> {
    if v[4] == DENSE {
        let r = &mut v[HDR..];
        if count > dense_get(r, index) {
            dense_set(r, index, count);
            return Some(true);
        }
        return Some(false);
    }
    if count > VAL_MAX_VALUE {
        return promote(v, index, count);
    }
    let (mut p, mut first, mut prev) = (HDR, 0usize, None);
    let (span, val, oplen) = loop {
        let (span, val, len) = op_at(v, p)?;
        if index < first + span {
            break (span, val, len);
        }
        prev = Some(p);
        p += len;
        first += span;
    };
    if val > 0 {
        if val >= count {
            return Some(false);
        }
        if span == 1 {
            v[p] = val_op(count, 1);
            merge(v, prev.unwrap_or(HDR));
            return Some(true);
        }
    } else if oplen == 1 && span == 1 {
        v[p] = val_op(count, 1);
        merge(v, prev.unwrap_or(HDR));
        return Some(true);
    }
    let last = first + span - 1;
    let mut seq: Vec<u8> = Vec::with_capacity(5);
    let zeros = |seq: &mut Vec<u8>, len: usize| {
        if len > ZERO_MAX_LEN {
            seq.extend_from_slice(&xzero(len));
        } else {
            seq.push((len - 1) as u8);
        }
    };
    if val == 0 {
        if index != first {
            zeros(&mut seq, index - first);
        }
        seq.push(val_op(count, 1));
        if index != last {
            zeros(&mut seq, last - index);
        }
    } else {
        if index != first {
            seq.push(val_op(val, index - first));
        }
        seq.push(val_op(count, 1));
        if index != last {
            seq.push(val_op(val, last - index));
        }
    }
    if seq.len() > oplen && v.len() + (seq.len() - oplen) > SPARSE_MAX_BYTES {
        return promote(v, index, count);
    }
    v.splice(p..p + oplen, seq);
    merge(v, prev.unwrap_or(HDR));
    Some(true)
}

/// Redis' step 4: merge adjacent equal VAL opcodes, scanning up to 5 opcodes from `p`.
fn merge(v: &mut Vec<u8>, mut p: usize) {
    let mut scan = 5;
    while p < v.len() && scan > 0 {
        scan -= 1;
        let b = v[p];
        if b & 0xc0 == 0x40 {
            p += 2;
            continue;
        }
        if b & 0xc0 == 0 {
            p += 1;
            continue;
        }
        if p + 1 < v.len() && v[p + 1] & 0x80 != 0 {
            let (l1, v1) = (usize::from(b & 3) + 1, ((b >> 2) & 0x1f) + 1);
            let b2 = v[p + 1];
            let (l2, v2) = (usize::from(b2 & 3) + 1, ((b2 >> 2) & 0x1f) + 1);
            if v1 == v2 && l1 + l2 <= VAL_MAX_LEN {
                v[p + 1] = val_op(v1, l1 + l2);
                v.remove(p);
                continue;
            }
        }
        p += 1;
    }
}

fn promote(v: &mut Vec<u8>, index: usize, count: u8) -> Option<bool> {
    let mut d = to_dense(v)?;
    dense_set(&mut d[HDR..], index, count);
    *v = d;
    Some(true)
}

/// Register histogram; `None` for corrupt sparse data.
fn histogram(v: &[u8]) -> Option<[u32; 64]> {
    let mut h = [0u32; 64];
    if v[4] == DENSE {
        for i in 0..REGISTERS {
            h[usize::from(dense_get(&v[HDR..], i))] += 1;
        }
        return Some(h);
    }
    let mut idx = 0;
    let mut p = HDR;
    while p < v.len() {
        let (run, val, len) = op_at(v, p)?;
        idx += run;
        h[usize::from(val)] += run as u32;
        p += len;
    }
    (idx == REGISTERS).then_some(h)
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let zp = z;
        z += x * y;
        y += y;
        if zp == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let zp = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if zp == z {
            return z / 3.0;
        }
    }
}

fn count_hist(h: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - f64::from(h[Q as usize + 1])) / m);
    for j in (1..=Q as usize).rev() {
        z += f64::from(h[j]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(h[0]) / m);
    (ALPHA_INF * m * m / z).round() as u64
}

/// Registers of `v` maxed into `max`; `None` when corrupt.
fn merge_into(max: &mut [u8], v: &[u8]) -> Option<()> {
    if v[4] == DENSE {
        for (i, m) in max.iter_mut().enumerate() {
            *m = (*m).max(dense_get(&v[HDR..], i));
        }
        return Some(());
    }
    let (mut idx, mut p) = (0, HDR);
    while p < v.len() {
        let (run, val, len) = op_at(v, p)?;
        if val > 0 {
            if run + idx > REGISTERS {
                break;
            }
            for m in &mut max[idx..idx + run] {
                *m = (*m).max(val);
            }
        }
        idx += run;
        p += len;
    }
    (idx == REGISTERS).then_some(())
}

/// The HLL bytes at `key` (`Ok(None)` when absent), checked as `isHLLObjectOrReply`.
fn load(db: &mut Db, key: &[u8], now: u64) -> Result<Option<Vec<u8>>, Value> {
    match str_ref(db, key, now)? {
        None => Ok(None),
        Some(v) if is_valid(v) => Ok(Some(v.to_vec())),
        Some(_) => Err(err(NOT_HLL)),
    }
}

fn store(db: &mut Db, key: &Bytes, v: Vec<u8>, now: u64) {
    let ttl = db.read(key, now).and_then(|e| e.expire_at());
    db.insert(key, Data::Str(Bytes::from(v)), ttl);
}

pub(crate) fn pfadd(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let (mut v, mut updated) = match tri!(load(db, &a[1], c.now_ms)) {
        Some(v) => (v, false),
        None => (new_hll(), true),
    };
    for ele in &a[2..] {
        let (i, n) = pat_len(ele);
        match hll_set(&mut v, i, n) {
            Some(true) => updated = true,
            Some(false) => {}
            None => return err(INVALID_HLL),
        }
    }
    if updated {
        invalidate(&mut v);
        store(db, &a[1], v, c.now_ms);
        db.prop_args(a);
    }
    Value::Integer(i64::from(updated))
}

pub(crate) fn pfcount(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    if a.len() > 2 {
        let mut max = vec![0u8; REGISTERS];
        for k in &a[1..] {
            if let Some(v) = tri!(load(db, k, c.now_ms)) {
                if merge_into(&mut max, &v).is_none() {
                    return err(INVALID_HLL);
                }
            }
        }
        let mut h = [0u32; 64];
        for r in max {
            h[usize::from(r)] += 1;
        }
        return Value::Integer(count_hist(&h) as i64);
    }
    let Some(mut v) = tri!(load(db, &a[1], c.now_ms)) else {
        return Value::Integer(0);
    };
    if v[15] & 0x80 == 0 {
        let card = u64::from_le_bytes(v[8..16].try_into().expect("8 bytes"));
        return Value::Integer(card as i64);
    }
    let Some(h) = histogram(&v) else {
        return err(INVALID_HLL);
    };
    let card = count_hist(&h);
    // Like Redis (also on replicas): cache the estimate in the value and replicate the read.
    v[8..16].copy_from_slice(&card.to_le_bytes());
    store(db, &a[1], v, c.now_ms);
    db.prop_args(a);
    Value::Integer(card as i64)
}

pub(crate) fn pfmerge(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let mut max = vec![0u8; REGISTERS];
    let mut dense = false;
    for k in &a[1..] {
        if let Some(v) = tri!(load(db, k, c.now_ms)) {
            dense |= v[4] == DENSE;
            if merge_into(&mut max, &v).is_none() {
                return err(INVALID_HLL);
            }
        }
    }
    let mut v = match tri!(load(db, &a[1], c.now_ms)) {
        Some(v) => v,
        None => new_hll(),
    };
    if dense {
        match to_dense(&v) {
            Some(d) => v = d,
            None => return err(INVALID_HLL),
        }
    }
    for (j, m) in max.into_iter().enumerate() {
        if m > 0 && hll_set(&mut v, j, m).is_none() {
            return err(INVALID_HLL);
        }
    }
    invalidate(&mut v);
    store(db, &a[1], v, c.now_ms);
    db.prop_args(a);
    Value::ok()
}

pub(crate) fn pfdebug(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let cmd = String::from_utf8_lossy(&a[1]).into_owned();
    let Some(mut v) = tri!(load(db, &a[2], c.now_ms)) else {
        return err("ERR The specified key does not exist");
    };
    let arity = || {
        Value::error(format!(
            "ERR Wrong number of arguments for the '{cmd}' subcommand"
        ))
    };
    let sub = cmd.to_ascii_lowercase();
    match sub.as_str() {
        "getreg" | "todense" => {
            if a.len() != 3 {
                return arity();
            }
            let conv = v[4] == SPARSE;
            if conv {
                match to_dense(&v) {
                    Some(d) => v = d,
                    None => return err(INVALID_HLL),
                }
                store(db, &a[2], v.clone(), c.now_ms);
                db.prop_args(a);
            }
            if sub == "todense" {
                return Value::Integer(i64::from(conv));
            }
            Value::Array(
                (0..REGISTERS)
                    .map(|i| Value::Integer(i64::from(dense_get(&v[HDR..], i))))
                    .collect(),
            )
        }
        "decode" => {
            if a.len() != 3 {
                return arity();
            }
            if v[4] != SPARSE {
                return err("ERR HLL encoding is not sparse");
            }
            let mut out = Vec::new();
            let mut p = HDR;
            while let Some((run, val, len)) = op_at(&v, p) {
                out.push(match (val, len) {
                    (0, 1) => format!("z:{run}"),
                    (0, _) => format!("Z:{run}"),
                    _ => format!("v:{val},{run}"),
                });
                p += len;
            }
            Value::BulkString(Bytes::from(out.join(" ")))
        }
        "encoding" => {
            if a.len() != 3 {
                return arity();
            }
            Value::simple(if v[4] == DENSE { "dense" } else { "sparse" })
        }
        _ => Value::error(format!("ERR Unknown PFDEBUG subcommand '{cmd}'")),
    }
}

/// PFSELFTEST: register packing round trips and sparse/dense agreement with bounded error
/// (a shorter run than Redis' 10 million elements, with the same checks).
pub(crate) fn pfselftest(_db: &mut Db, _a: &[Bytes], _c: &ExecCtx) -> Value {
    let mut regs = vec![0u8; DENSE_SIZE - HDR];
    let mut seed: u64 = rand::random();
    for _ in 0..10 {
        let vals: Vec<u8> = (0..REGISTERS)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed & 63) as u8
            })
            .collect();
        for (i, v) in vals.iter().enumerate() {
            dense_set(&mut regs, i, *v);
        }
        for (i, v) in vals.iter().enumerate() {
            let got = dense_get(&regs, i);
            if got != *v {
                return Value::error(format!(
                    "TESTFAILED Register {i} should be {v} but is {got}"
                ));
            }
        }
    }
    let mut dense = new_hll();
    dense = to_dense(&dense).expect("fresh HLL");
    let mut sparse = new_hll();
    let relerr = 1.04 / (REGISTERS as f64).sqrt();
    let mut checkpoint = 1u64;
    for j in 1..=100_000u64 {
        let ele = (j ^ seed).to_le_bytes();
        let (i, n) = pat_len(&ele);
        hll_set(&mut dense, i, n);
        hll_set(&mut sparse, i, n);
        if j == checkpoint {
            if j < (SPARSE_MAX_BYTES / 2) as u64 && sparse[4] != SPARSE {
                return err("TESTFAILED sparse encoding not used");
            }
            let (cd, cs) = (
                count_hist(&histogram(&dense).expect("valid")),
                count_hist(&histogram(&sparse).expect("valid")),
            );
            if cd != cs {
                return err("TESTFAILED dense/sparse disagree");
            }
            let abserr = (checkpoint as i64 - cd as i64).unsigned_abs();
            let maxerr = if j == 10 {
                1
            } else {
                (relerr * 6.0 * checkpoint as f64).ceil() as u64
            };
            if abserr > maxerr {
                return Value::error(format!(
                    "TESTFAILED Too big error. card:{checkpoint} abserr:{abserr}"
                ));
            }
            checkpoint *= 10;
        }
    }
    Value::ok()
}
