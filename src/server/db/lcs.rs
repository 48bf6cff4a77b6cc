//! LCS: the longest common subsequence of two strings, with Redis 7.0's dynamic programme,
//! its backtracking order (so IDX ranges come out in the same order) and its memory bound.

use bytes::Bytes;

use super::util::{eq, err, int_arg, tri, SYNTAX};
use super::{Data, Db, Entry, ExecCtx};
use crate::resp::Value;

/// Redis refuses a table larger than `proto-max-bulk-len` (512 MB).
const MAX_TABLE_BYTES: u64 = 512 * 1024 * 1024;

fn string_of(db: &mut Db, key: &[u8], now: u64) -> Result<Bytes, Value> {
    match db.read(key, now) {
        None => Ok(Bytes::new()),
        Some(Entry {
            data: Data::Str(s), ..
        }) => Ok(s.clone()),
        Some(_) => Err(err("ERR The specified keys must contain string values")),
    }
}

pub(crate) fn lcs(db: &mut Db, args: &[Bytes], c: &ExecCtx) -> Value {
    let a = tri!(string_of(db, &args[1], c.now_ms));
    let b = tri!(string_of(db, &args[2], c.now_ms));
    let (mut getidx, mut getlen, mut withmatchlen, mut minmatch) = (false, false, false, 0i64);
    let mut j = 3;
    while j < args.len() {
        let o = &args[j];
        let more = args.len() - 1 - j;
        if eq(o, b"idx") {
            getidx = true;
        } else if eq(o, b"len") {
            getlen = true;
        } else if eq(o, b"withmatchlen") {
            withmatchlen = true;
        } else if eq(o, b"minmatchlen") && more > 0 {
            minmatch = tri!(int_arg(&args[j + 1])).max(0);
            j += 1;
        } else {
            return err(SYNTAX);
        }
        j += 1;
    }
    if getlen && getidx {
        return err("ERR If you want both the length and indexes, please just use IDX.");
    }
    if a.len() >= u32::MAX as usize - 1 || b.len() >= u32::MAX as usize - 1 {
        return err("ERR String too long for LCS");
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    if cells * 4 > MAX_TABLE_BYTES {
        return err("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
    }
    let w = blen + 1;
    let mut t = vec![0u32; cells as usize];
    for i in 1..=alen {
        for jj in 1..=blen {
            t[i * w + jj] = if a[i - 1] == b[jj - 1] {
                t[(i - 1) * w + jj - 1] + 1
            } else {
                t[(i - 1) * w + jj].max(t[i * w + jj - 1])
            };
        }
    }
    let total = t[alen * w + blen];
    if getlen {
        return Value::Integer(i64::from(total));
    }
    let mut idx = total as usize;
    let mut result = vec![0u8; idx];
    let mut matches = Vec::new();
    let alen32 = alen as u32;
    let (mut as_, mut ae, mut bs, mut be) = (alen32, 0u32, 0u32, 0u32);
    let (mut i, mut jj) = (alen, blen);
    while i > 0 && jj > 0 {
        let mut emit = false;
        if a[i - 1] == b[jj - 1] {
            result[idx - 1] = a[i - 1];
            if as_ == alen32 {
                as_ = i as u32 - 1;
                ae = i as u32 - 1;
                bs = jj as u32 - 1;
                be = jj as u32 - 1;
            } else if as_ == i as u32 && bs == jj as u32 {
                as_ -= 1;
                bs -= 1;
            } else {
                emit = true;
            }
            if as_ == 0 || bs == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            jj -= 1;
        } else {
            if t[(i - 1) * w + jj] > t[i * w + jj - 1] {
                i -= 1;
            } else {
                jj -= 1;
            }
            if as_ != alen32 {
                emit = true;
            }
        }
        let match_len = ae.wrapping_sub(as_).wrapping_add(1);
        if emit {
            if getidx && (minmatch == 0 || i64::from(match_len) >= minmatch) {
                let mut m = vec![
                    Value::Array(vec![Value::Integer(as_.into()), Value::Integer(ae.into())]),
                    Value::Array(vec![Value::Integer(bs.into()), Value::Integer(be.into())]),
                ];
                if withmatchlen {
                    m.push(Value::Integer(match_len.into()));
                }
                matches.push(Value::Array(m));
            }
            as_ = alen32;
        }
    }
    if getidx {
        return Value::Map(vec![
            (Value::bulk("matches"), Value::Array(matches)),
            (Value::bulk("len"), Value::Integer(i64::from(total))),
        ]);
    }
    Value::BulkString(Bytes::from(result))
}
