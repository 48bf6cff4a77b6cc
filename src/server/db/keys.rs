//! Generic key commands: deletion, expiry, renaming, iteration, introspection, DUMP/RESTORE.

use bytes::Bytes;
use rand::Rng;

use super::util::{
    cursor_arg, eq, err, int_arg, len, scan_opts, scan_reply, tri, u64_bytes, word, NO_KEY, SYNTAX,
};
use super::{glob, snapshot, Data, Db, ExecCtx};
use crate::resp::Value;
use crate::slot::SLOT_COUNT;

pub(crate) fn del(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let mut n = 0;
    for k in &a[1..] {
        if db.exists(k, c.now_ms) {
            db.remove(k);
            n += 1;
        }
    }
    if n > 0 {
        db.prop_args(a);
    }
    len(n)
}

pub(crate) fn exists(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    len(a[1..].iter().filter(|k| db.exists(k, c.now_ms)).count())
}

pub(crate) fn touch(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    exists(db, a, c)
}

/// Shared body of EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT.
fn expire_generic(db: &mut Db, a: &[Bytes], c: &ExecCtx, unit: i64, relative: bool) -> Value {
    let now = c.now_ms as i64;
    let when = tri!(int_arg(&a[2]));
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for o in &a[3..] {
        if eq(o, b"nx") {
            nx = true;
        } else if eq(o, b"xx") {
            xx = true;
        } else if eq(o, b"gt") {
            gt = true;
        } else if eq(o, b"lt") {
            lt = true;
        } else {
            return Value::error(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(o)
            ));
        }
    }
    if nx && (xx || gt || lt) {
        return err("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if gt && lt {
        return err("ERR GT and LT options at the same time are not compatible");
    }
    let name = String::from_utf8_lossy(&a[0]).to_ascii_lowercase();
    let Some(mut abs) = when.checked_mul(unit) else {
        return super::strings::invalid_expire(&name);
    };
    if relative {
        match abs.checked_add(now) {
            Some(t) => abs = t,
            None => return super::strings::invalid_expire(&name),
        }
    }
    let key = &a[1];
    let Some(e) = db.read(key, c.now_ms) else {
        return Value::Integer(0);
    };
    let cur = e.expire_at();
    let ok = match cur {
        None => !xx && !gt,
        Some(t) => !nx && (!gt || abs > t as i64) && (!lt || abs < t as i64),
    };
    if !ok {
        return Value::Integer(0);
    }
    if abs <= now && !db.is_replica() {
        db.remove(key);
        db.push_prop(vec![word("DEL"), key.clone()]);
    } else {
        let t = abs.max(0) as u64;
        db.set_expire(key, Some(t));
        db.push_prop(vec![word("PEXPIREAT"), key.clone(), u64_bytes(t)]);
    }
    Value::Integer(1)
}

pub(crate) fn expire(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    expire_generic(db, a, c, 1000, true)
}

pub(crate) fn pexpire(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    expire_generic(db, a, c, 1, true)
}

pub(crate) fn expireat(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    expire_generic(db, a, c, 1000, false)
}

pub(crate) fn pexpireat(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    expire_generic(db, a, c, 1, false)
}

/// TTL-style replies: -2 missing, -1 persistent, else `f(expire_at)`.
fn ttl_generic(db: &mut Db, a: &[Bytes], c: &ExecCtx, f: impl Fn(u64, u64) -> i64) -> Value {
    match db.read(&a[1], c.now_ms) {
        None => Value::Integer(-2),
        Some(e) => match e.expire_at() {
            None => Value::Integer(-1),
            Some(t) => Value::Integer(f(t, c.now_ms)),
        },
    }
}

pub(crate) fn ttl(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    ttl_generic(db, a, c, |t, now| {
        ((t.saturating_sub(now) + 500) / 1000) as i64
    })
}

pub(crate) fn pttl(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    ttl_generic(db, a, c, |t, now| t.saturating_sub(now) as i64)
}

pub(crate) fn expiretime(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    // Redis rounds the absolute time like a TTL: (ms + 500) / 1000.
    ttl_generic(db, a, c, |t, _| (t.saturating_add(500) / 1000) as i64)
}

pub(crate) fn pexpiretime(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    ttl_generic(db, a, c, |t, _| t as i64)
}

pub(crate) fn persist(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    match db.read(&a[1], c.now_ms) {
        Some(e) if e.expire_at().is_some() => {
            db.set_expire(&a[1], None);
            db.prop_args(a);
            Value::Integer(1)
        }
        _ => Value::Integer(0),
    }
}

pub(crate) fn type_cmd(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    Value::simple(
        db.read(&a[1], c.now_ms)
            .map_or("none", |e| e.data.type_name()),
    )
}

fn rename_generic(db: &mut Db, a: &[Bytes], c: &ExecCtx, nx: bool) -> Value {
    let (src, dst) = (&a[1], &a[2]);
    if !db.exists(src, c.now_ms) {
        return err(NO_KEY);
    }
    if src == dst {
        return if nx { Value::Integer(0) } else { Value::ok() };
    }
    if nx && db.exists(dst, c.now_ms) {
        return Value::Integer(0);
    }
    let Some(e) = db.remove(src) else {
        return err(NO_KEY);
    };
    db.exists(dst, c.now_ms);
    let ttl = e.expire_at();
    db.insert(dst, e.data, ttl);
    db.prop_args(a);
    if nx {
        Value::Integer(1)
    } else {
        Value::ok()
    }
}

pub(crate) fn rename(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    rename_generic(db, a, c, false)
}

pub(crate) fn renamenx(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    rename_generic(db, a, c, true)
}

pub(crate) fn copy(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let mut replace = false;
    let mut i = 3;
    while i < a.len() {
        if eq(&a[i], b"replace") {
            replace = true;
        } else if eq(&a[i], b"db") && i + 1 < a.len() {
            let n = tri!(int_arg(&a[i + 1]));
            if n != 0 {
                return err("ERR Copying to another database is not allowed in cluster mode");
            }
            i += 1;
        } else {
            return err(SYNTAX);
        }
        i += 1;
    }
    let (src, dst) = (&a[1], &a[2]);
    if src == dst {
        return err("ERR source and destination objects are the same");
    }
    let Some(e) = db.read(src, c.now_ms).cloned() else {
        return Value::Integer(0);
    };
    if db.exists(dst, c.now_ms) && !replace {
        return Value::Integer(0);
    }
    let ttl = e.expire_at();
    db.insert(dst, e.data, ttl);
    db.prop_args(a);
    Value::Integer(1)
}

pub(crate) fn keys(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let pat = &a[1];
    let all = pat.as_ref() == b"*";
    let out = db
        .entries()
        .filter(|(k, e)| {
            !e.expire_at().is_some_and(|t| t <= c.now_ms) && (all || glob::matches(pat, k))
        })
        .map(|(k, _)| Value::BulkString(k.to_bytes()))
        .collect();
    Value::Array(out)
}

pub(crate) fn scan(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let cursor = tri!(cursor_arg(&a[1]));
    let o = tri!(scan_opts(a, 2, true));
    let (keys, next) = db.scan_slots(cursor, &o, c.now_ms);
    scan_reply(next, keys.into_iter().map(Value::BulkString).collect())
}

impl Db {
    /// SCAN from slot `cursor`: every matching key of whole slots until at least `count` keys
    /// were examined; the next cursor is the next slot, or 0 after the last one.
    pub(super) fn scan_slots(
        &self,
        cursor: u64,
        o: &super::util::ScanOpts,
        now: u64,
    ) -> (Vec<Bytes>, u64) {
        let mut out = Vec::new();
        let mut examined = 0usize;
        let mut slot = cursor;
        while slot < u64::from(SLOT_COUNT) && examined < o.count {
            for (k, e) in self.slot_entries(slot as usize) {
                examined += 1;
                if e.expire_at().is_some_and(|t| t <= now) {
                    continue;
                }
                if let Some(p) = &o.pattern {
                    if !glob::matches(p, k) {
                        continue;
                    }
                }
                if let Some(t) = &o.type_name {
                    if !e.data.type_name().as_bytes().eq_ignore_ascii_case(t) {
                        continue;
                    }
                }
                out.push(k.to_bytes());
            }
            slot += 1;
        }
        let next = if slot >= u64::from(SLOT_COUNT) {
            0
        } else {
            slot
        };
        (out, next)
    }
}

pub(crate) fn dbsize(db: &mut Db, _a: &[Bytes], c: &ExecCtx) -> Value {
    len(db.dbsize(c.now_ms))
}

pub(crate) fn flushall(db: &mut Db, a: &[Bytes], _c: &ExecCtx) -> Value {
    if a.len() > 2 || (a.len() == 2 && !eq(&a[1], b"async") && !eq(&a[1], b"sync")) {
        return err(SYNTAX);
    }
    db.flush();
    db.prop_args(a);
    Value::ok()
}

pub(crate) fn randomkey(db: &mut Db, _a: &[Bytes], c: &ExecCtx) -> Value {
    let live = |e: &super::Entry| !e.expire_at().is_some_and(|t| t <= c.now_ms);
    for _ in 0..100 {
        match db.random_entry() {
            None => return Value::Null,
            Some((k, e)) if live(e) => return Value::BulkString(k.to_bytes()),
            Some(_) => {}
        }
    }
    // Mostly expired keys: pick among the live ones.
    let keys: Vec<&super::Key> = db
        .entries()
        .filter(|(_, e)| live(e))
        .map(|(k, _)| k)
        .collect();
    if keys.is_empty() {
        return Value::Null;
    }
    Value::BulkString(keys[rand::thread_rng().gen_range(0..keys.len())].to_bytes())
}

/// The internal encoding Redis 7.0 would report for `d`.
pub(super) fn encoding(d: &Data) -> &'static str {
    match d {
        Data::Str(v) => {
            if v.len() <= 20 && super::util::parse_i64(v).is_some() {
                "int"
            } else if v.len() <= 44 {
                "embstr"
            } else {
                "raw"
            }
        }
        Data::List(_) => "quicklist",
        Data::Hash(h) => {
            if h.len() <= 128 && h.iter().all(|(k, v)| k.len() <= 64 && v.len() <= 64) {
                "listpack"
            } else {
                "hashtable"
            }
        }
        Data::Set(s) => {
            if s.len() <= 512 && s.iter().all(|m| super::util::parse_i64(m).is_some()) {
                "intset"
            } else {
                "hashtable"
            }
        }
        Data::Zset(z) => {
            if z.len() <= 128 && z.members().all(|m| m.len() <= 64) {
                "listpack"
            } else {
                "skiplist"
            }
        }
        Data::Stream(_) => "stream",
    }
}

pub(crate) fn object(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let sub = &a[1];
    if eq(sub, b"help") && a.len() == 2 {
        return Value::Array(
            [
                "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "ENCODING <key>",
                "    Return the kind of internal representation used in order to store the value",
                "    associated with a <key>.",
                "FREQ <key>",
                "    Return the access frequency index of the <key>. The returned integer is",
                "    proportional to the logarithm of the recent access frequency of the key.",
                "IDLETIME <key>",
                "    Return the idle time of the <key>, that is the approximated number of",
                "    seconds elapsed since the last access to the key.",
                "REFCOUNT <key>",
                "    Return the number of references of the value associated with the specified",
                "    <key>.",
                "HELP",
                "    Print this help.",
            ]
            .iter()
            .map(|s| Value::simple(s))
            .collect(),
        );
    }
    let known = eq(sub, b"encoding") || eq(sub, b"refcount") || eq(sub, b"idletime");
    if !(known || eq(sub, b"freq")) {
        return Value::error(format!(
            "ERR unknown subcommand '{}'. Try OBJECT HELP.",
            String::from_utf8_lossy(sub)
        ));
    }
    if a.len() != 3 {
        return Value::error(format!(
            "ERR wrong number of arguments for 'object|{}' command",
            String::from_utf8_lossy(sub).to_ascii_lowercase()
        ));
    }
    let Some(e) = db.read(&a[2], c.now_ms) else {
        return Value::Null;
    };
    if eq(sub, b"encoding") {
        Value::bulk(encoding(&e.data))
    } else if eq(sub, b"refcount") {
        Value::Integer(1)
    } else if eq(sub, b"idletime") {
        Value::Integer(0)
    } else {
        err("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
    }
}

pub(crate) fn dump(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    match db.dump_key(&a[1], c.now_ms) {
        Some(p) => Value::BulkString(Bytes::from(p)),
        None => Value::Null,
    }
}

pub(crate) fn restore(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let (mut replace, mut absttl) = (false, false);
    let mut i = 4;
    while i < a.len() {
        if eq(&a[i], b"replace") {
            replace = true;
        } else if eq(&a[i], b"absttl") {
            absttl = true;
        } else if (eq(&a[i], b"idletime") || eq(&a[i], b"freq")) && i + 1 < a.len() {
            let n = tri!(int_arg(&a[i + 1]));
            if n < 0 || (n > 255 && eq(&a[i], b"freq")) {
                return if eq(&a[i], b"idletime") {
                    err("ERR Invalid IDLETIME value, must be >= 0")
                } else {
                    err("ERR Invalid FREQ value, must be >= 0 and <= 255")
                };
            }
            i += 1;
        } else {
            return err(SYNTAX);
        }
        i += 1;
    }
    let ttl = tri!(int_arg(&a[2]));
    if ttl < 0 {
        return err("ERR Invalid TTL value, must be >= 0");
    }
    let expire = match (ttl, absttl) {
        (0, _) => None,
        (t, true) => Some(t as u64),
        (t, false) => Some(c.now_ms.saturating_add(t as u64)),
    };
    let key = &a[1];
    if !replace && db.exists(key, c.now_ms) {
        return err("BUSYKEY Target key name already exists.");
    }
    let data = match snapshot::decode_payload(&a[3]) {
        Ok(d) => d,
        Err(()) => return err(snapshot::BAD_PAYLOAD),
    };
    if let Some(t) = expire {
        if t <= c.now_ms && !db.is_replica() {
            if db.remove(key).is_some() {
                db.push_prop(vec![word("DEL"), key.clone()]);
            }
            return Value::ok();
        }
    }
    db.insert(key, data, expire);
    let mut p = vec![word("RESTORE"), key.clone()];
    match expire {
        Some(t) => p.push(u64_bytes(t)),
        None => p.push(word("0")),
    }
    p.push(a[3].clone());
    if expire.is_some() {
        p.push(word("ABSTTL"));
    }
    p.push(word("REPLACE"));
    db.push_prop(p);
    Value::ok()
}
