//! Stream commands without consumer groups: XADD, XRANGE, XREVRANGE, XLEN, XDEL, XTRIM,
//! XSETID and XREAD (its non-blocking part; waiting is the network layer's), with Redis 7.0's
//! replies, errors and propagation (`*` and `~` rewritten into what was done).

use bytes::Bytes;

use super::stream::{Stream, StreamId, Trim};
use super::util::{eq, err, int_arg, parse_i64, tri, word, wrongtype, SYNTAX};
use super::{Data, Db, Entry, ExecCtx};
use crate::resp::Value;

pub(super) const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

/// Redis' `string2ull`: strict decimal first, then `strtoull`'s lenient form.
fn parse_u64(s: &[u8]) -> Option<u64> {
    if let Some(v) = parse_i64(s) {
        return u64::try_from(v).ok();
    }
    let t = std::str::from_utf8(s).ok()?;
    let t = t.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let v: u64 = digits.parse().ok()?;
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Parse an ID as `streamGenericParseIDOrReply`: `-`/`+` unless `strict`, `ms[-seq]` with
/// `missing_seq` when the sequence is absent. With `allow_star`, `ms-*` gives `(id, false)`.
pub(super) fn parse_id_full(
    s: &[u8],
    missing_seq: u64,
    strict: bool,
    allow_star: bool,
) -> Result<(StreamId, bool), Value> {
    let bad = || err(INVALID_ID);
    if s.len() > 127 {
        return Err(bad());
    }
    if s == b"-" || s == b"+" {
        if strict {
            return Err(bad());
        }
        return Ok((
            if s == b"-" {
                StreamId::MIN
            } else {
                StreamId::MAX
            },
            true,
        ));
    }
    // C string semantics: an embedded NUL ends the argument.
    let s = s.split(|&c| c == 0).next().unwrap_or(s);
    let (ms_part, seq_part) = match s.iter().position(|&c| c == b'-') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let ms = parse_u64(ms_part).ok_or_else(bad)?;
    match seq_part {
        None => Ok((StreamId::new(ms, missing_seq), true)),
        Some(b"*") if allow_star => Ok((StreamId::new(ms, 0), false)),
        Some(q) => Ok((StreamId::new(ms, parse_u64(q).ok_or_else(bad)?), true)),
    }
}

pub(super) fn parse_id(s: &[u8], missing_seq: u64) -> Result<StreamId, Value> {
    parse_id_full(s, missing_seq, false, false).map(|(id, _)| id)
}

pub(super) fn parse_strict_id(s: &[u8], missing_seq: u64) -> Result<StreamId, Value> {
    parse_id_full(s, missing_seq, true, false).map(|(id, _)| id)
}

/// An interval bound: `(` makes it exclusive (and strict).
pub(super) fn parse_interval(s: &[u8], missing_seq: u64) -> Result<(StreamId, bool), Value> {
    if s.len() > 1 && s[0] == b'(' {
        Ok((parse_strict_id(&s[1..], missing_seq)?, true))
    } else {
        Ok((parse_id(s, missing_seq)?, false))
    }
}

/// The stream at `key` for reading: `Ok(None)` when absent.
pub(super) fn stream_ref<'a>(
    db: &'a mut Db,
    key: &[u8],
    now: u64,
) -> Result<Option<&'a Stream>, Value> {
    match db.read(key, now) {
        None => Ok(None),
        Some(Entry {
            data: Data::Stream(s),
            ..
        }) => Ok(Some(s)),
        Some(_) => Err(wrongtype()),
    }
}

/// The stream at `key` for writing: `Ok(None)` when absent.
pub(super) fn stream_mut<'a>(
    db: &'a mut Db,
    key: &[u8],
    now: u64,
) -> Result<Option<&'a mut Stream>, Value> {
    match db.write(key, now) {
        None => Ok(None),
        Some(Entry {
            data: Data::Stream(s),
            ..
        }) => Ok(Some(s)),
        Some(_) => Err(wrongtype()),
    }
}

/// `[id, [field, value, ...]]`.
pub(super) fn entry_reply(id: StreamId, fv: &[Bytes]) -> Value {
    Value::Array(vec![
        Value::BulkString(id.to_bytes()),
        Value::Array(fv.iter().map(|b| Value::BulkString(b.clone())).collect()),
    ])
}

/// Parsed XADD/XTRIM options.
struct TrimArgs {
    trim: Option<Trim>,
    approx: bool,
    limit: u64,
    /// Index of the MAXLEN/MINID value (for the propagated rewrite).
    arg_idx: usize,
    nomkstream: bool,
    /// XADD's ID: `None` for `*`; `(id, seq_given)`.
    id: Option<(StreamId, bool)>,
    /// Index of the ID argument (XADD).
    id_idx: usize,
}

fn parse_trim_args(a: &[Bytes], xadd: bool) -> Result<TrimArgs, Value> {
    let mut t = TrimArgs {
        trim: None,
        approx: false,
        limit: 0,
        arg_idx: 0,
        nomkstream: false,
        id: None,
        id_idx: 0,
    };
    let mut limit_given = false;
    let mut i = 2;
    const BOTH: &str =
        "ERR syntax error, MAXLEN and MINID options at the same time are not compatible";
    while i < a.len() {
        let more = a.len() - 1 - i;
        let opt = &a[i];
        if xadd && opt.as_ref() == b"*" {
            break;
        } else if (eq(opt, b"maxlen") || eq(opt, b"minid")) && more > 0 {
            if t.trim.is_some() {
                return Err(err(BOTH));
            }
            t.approx = false;
            let next = &a[i + 1];
            if more >= 2 && next.as_ref() == b"~" {
                t.approx = true;
                i += 1;
            } else if more >= 2 && next.as_ref() == b"=" {
                i += 1;
            }
            if eq(opt, b"maxlen") {
                let n = int_arg(&a[i + 1])?;
                if n < 0 {
                    return Err(err("ERR The MAXLEN argument must be >= 0."));
                }
                t.trim = Some(Trim::MaxLen(n as u64));
            } else {
                t.trim = Some(Trim::MinId(parse_strict_id(&a[i + 1], 0)?));
            }
            i += 1;
            t.arg_idx = i;
        } else if eq(opt, b"limit") && more > 0 {
            let n = int_arg(&a[i + 1])?;
            if n < 0 {
                return Err(err("ERR The LIMIT argument must be >= 0."));
            }
            t.limit = n as u64;
            limit_given = true;
            i += 1;
        } else if xadd && eq(opt, b"nomkstream") {
            t.nomkstream = true;
        } else if xadd {
            t.id = Some(parse_id_full(opt, 0, true, true)?);
            break;
        } else {
            return Err(err(SYNTAX));
        }
        i += 1;
    }
    t.id_idx = i;
    if t.limit > 0 && t.trim.is_none() {
        return Err(err(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && t.trim.is_none() {
        return Err(err(
            "ERR syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if limit_given {
        if !t.approx {
            return Err(err(
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
    } else if t.approx {
        t.limit = 100 * 100;
    }
    Ok(t)
}

/// Trim and rewrite the propagated arguments as Redis does for `~`.
fn trim_and_rewrite(s: &mut Stream, t: &TrimArgs, prop: &mut [Bytes], replica: bool) -> u64 {
    let Some(how) = t.trim else { return 0 };
    let limit = if replica { 0 } else { t.limit };
    let n = s.trim(how, t.approx, limit);
    if t.approx && (n > 0 || prop[0].eq_ignore_ascii_case(b"xadd")) {
        prop[t.arg_idx - 1] = word("=");
        prop[t.arg_idx] = match how {
            Trim::MaxLen(_) => super::util::u64_bytes(s.len()),
            Trim::MinId(_) => s.first_id().to_bytes(),
        };
    }
    n
}

pub(crate) fn xadd(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let t = tri!(parse_trim_args(a, true));
    let field_pos = t.id_idx + 1;
    if a.len() < field_pos + 2 || (a.len() - field_pos) % 2 == 1 {
        return super::util::wrong_args(&a[0]);
    }
    if let Some((id, true)) = t.id {
        if id.is_zero() {
            return err("ERR The ID specified in XADD must be greater than 0-0");
        }
    }
    let key = &a[1];
    let exists = tri!(stream_ref(db, key, c.now_ms)).is_some();
    if !exists {
        if t.nomkstream {
            return Value::Null;
        }
        db.insert(key, Data::Stream(Box::default()), None);
    }
    let replica = db.is_replica();
    let s = match stream_mut(db, key, c.now_ms) {
        Ok(Some(s)) => s,
        _ => return Value::Null,
    };
    if s.last_id == StreamId::MAX {
        let e = err("ERR The stream has exhausted the last possible ID, unable to add more items");
        return db.abandon_new_stream(key, exists, e);
    }
    let id = match t.id {
        None => {
            if c.now_ms > s.last_id.ms {
                Some(StreamId::new(c.now_ms, 0))
            } else {
                s.last_id.incr()
            }
        }
        Some((id, true)) => Some(id),
        Some((id, false)) => {
            if id.ms == s.last_id.ms {
                if s.last_id.seq == u64::MAX {
                    None
                } else {
                    Some(StreamId::new(id.ms, s.last_id.seq + 1))
                }
            } else {
                Some(id)
            }
        }
    };
    let id = match id {
        Some(id) if id > s.last_id => id,
        _ => {
            let e = err(
                "ERR The ID specified in XADD is equal or smaller than the target stream top item",
            );
            return db.abandon_new_stream(key, exists, e);
        }
    };
    let fv: Vec<Bytes> = a[field_pos..].iter().map(super::util::own).collect();
    s.append(id, fv);
    let mut prop = a.to_vec();
    trim_and_rewrite(s, &t, &mut prop, replica);
    if t.id.is_none() || matches!(t.id, Some((_, false))) {
        prop[t.id_idx] = id.to_bytes();
    }
    db.prop_args(&prop);
    Value::BulkString(id.to_bytes())
}

impl Db {
    /// Undo the empty stream XADD created before failing (Redis checks before creating).
    fn abandon_new_stream(&mut self, key: &[u8], existed: bool, e: Value) -> Value {
        if !existed {
            self.remove(key);
        }
        e
    }
}

pub(crate) fn xtrim(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let t = tri!(parse_trim_args(a, false));
    let replica = db.is_replica();
    let Some(s) = tri!(stream_mut(db, &a[1], c.now_ms)) else {
        return Value::Integer(0);
    };
    let mut prop = a.to_vec();
    let n = trim_and_rewrite(s, &t, &mut prop, replica);
    if n > 0 {
        db.prop_args(&prop);
    }
    Value::Integer(n as i64)
}

fn range(db: &mut Db, a: &[Bytes], c: &ExecCtx, rev: bool) -> Value {
    let (sa, ea) = if rev { (&a[3], &a[2]) } else { (&a[2], &a[3]) };
    let (mut start, sx) = tri!(parse_interval(sa, 0));
    if sx {
        match start.incr() {
            Some(s) => start = s,
            None => return err("ERR invalid start ID for the interval"),
        }
    }
    let (mut end, ex) = tri!(parse_interval(ea, u64::MAX));
    if ex {
        match end.decr() {
            Some(e) => end = e,
            None => return err("ERR invalid end ID for the interval"),
        }
    }
    let mut count: i64 = -1;
    let mut j = 4;
    while j < a.len() {
        if eq(&a[j], b"count") && j + 1 < a.len() {
            count = tri!(int_arg(&a[j + 1])).max(0);
            j += 2;
        } else {
            return err(SYNTAX);
        }
    }
    let Some(s) = tri!(stream_ref(db, &a[1], c.now_ms)) else {
        return Value::Array(Vec::new());
    };
    if count == 0 {
        return Value::NullArray;
    }
    if start > end {
        return Value::Array(Vec::new());
    }
    let take = if count < 0 {
        usize::MAX
    } else {
        count as usize
    };
    let it = s.entries.range(start..=end);
    let items: Vec<Value> = if rev {
        it.rev()
            .take(take)
            .map(|(id, fv)| entry_reply(*id, fv))
            .collect()
    } else {
        it.take(take).map(|(id, fv)| entry_reply(*id, fv)).collect()
    };
    Value::Array(items)
}

pub(crate) fn xrange(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    range(db, a, c, false)
}

pub(crate) fn xrevrange(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    range(db, a, c, true)
}

pub(crate) fn xlen(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    match tri!(stream_ref(db, &a[1], c.now_ms)) {
        Some(s) => Value::Integer(s.len() as i64),
        None => Value::Integer(0),
    }
}

pub(crate) fn xdel(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    if tri!(stream_ref(db, &a[1], c.now_ms)).is_none() {
        return Value::Integer(0);
    }
    let mut ids = Vec::with_capacity(a.len() - 2);
    for x in &a[2..] {
        ids.push(tri!(parse_strict_id(x, 0)));
    }
    let Some(s) = tri!(stream_mut(db, &a[1], c.now_ms)) else {
        return Value::Integer(0);
    };
    let mut n = 0;
    for id in ids {
        if s.delete(id) {
            if id > s.max_deleted {
                s.max_deleted = id;
            }
            n += 1;
        }
    }
    if n > 0 {
        db.prop_args(a);
    }
    Value::Integer(n)
}

pub(crate) fn xsetid(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let id = tri!(parse_strict_id(&a[2], 0));
    let mut added: i64 = -1;
    let mut maxdel = StreamId::MIN;
    let mut i = 3;
    while i < a.len() {
        let more = a.len() - 1 - i;
        if eq(&a[i], b"entriesadded") && more > 0 {
            added = tri!(int_arg(&a[i + 1]));
            if added < 0 {
                return err("ERR entries_added must be positive");
            }
        } else if eq(&a[i], b"maxdeletedid") && more > 0 {
            maxdel = tri!(parse_strict_id(&a[i + 1], 0));
            if id < maxdel {
                return err("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id");
            }
        } else {
            return err(SYNTAX);
        }
        i += 2;
    }
    let Some(s) = tri!(stream_mut(db, &a[1], c.now_ms)) else {
        return err(super::util::NO_KEY);
    };
    if s.len() > 0 {
        if id < *s.entries.keys().next_back().expect("non-empty") {
            return err(
                "ERR The ID specified in XSETID is smaller than the target stream top item",
            );
        }
        if added != -1 && s.len() > added as u64 {
            return err("ERR The entries_added specified in XSETID is smaller than the target stream length");
        }
    }
    s.last_id = id;
    if added != -1 {
        s.entries_added = added as u64;
    }
    if !maxdel.is_zero() {
        s.max_deleted = maxdel;
    }
    db.prop_args(a);
    Value::ok()
}
