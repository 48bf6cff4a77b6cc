//! XCLAIM and XAUTOCLAIM: moving pending entries between consumers, with the idempotent
//! XCLAIM propagation Redis uses for both.

use bytes::Bytes;

use super::stream::{Consumer, Group, Nack, StreamId};
use super::util::{eq, err, int_arg, parse_i64, tri, SYNTAX};
use super::xcmd::{entry_reply, parse_interval, parse_strict_id, stream_mut, stream_ref};
use super::xread::{setid_prop, xclaim_prop};
use super::{Db, ExecCtx};
use crate::resp::Value;

fn no_group(a: &[Bytes]) -> Value {
    Value::error(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        String::from_utf8_lossy(&a[1]),
        String::from_utf8_lossy(&a[2])
    ))
}

fn has_group(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Result<bool, Value> {
    Ok(stream_ref(db, &a[1], c.now_ms)?.is_some_and(|s| s.groups.contains_key(&a[2])))
}

/// Give pending entry `id` to `name` (creating the consumer), as both commands do.
fn assign(g: &mut Group, id: StreamId, name: &Bytes, now: u64) {
    let cons = g.consumers.entry(name.clone()).or_insert_with(|| Consumer {
        seen_time: now,
        pel: Default::default(),
    });
    cons.seen_time = now;
    cons.pel.insert(id);
    let old = g.pel.get(&id).map(|n| n.consumer.clone());
    if let Some(old) = old.filter(|o| o != name && !o.is_empty()) {
        if let Some(oc) = g.consumers.get_mut(&old) {
            oc.pel.remove(&id);
        }
    }
    if let Some(n) = g.pel.get_mut(&id) {
        n.consumer = name.clone();
    }
}

/// Drop pending entry `id` (its stream entry is gone).
fn drop_nack(g: &mut Group, id: StreamId) {
    if let Some(n) = g.pel.remove(&id) {
        if let Some(c) = g.consumers.get_mut(&n.consumer) {
            c.pel.remove(&id);
        }
    }
}

pub(crate) fn xclaim(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    if !tri!(has_group(db, a, c)) {
        return no_group(a);
    }
    let minidle = match parse_i64(&a[4]) {
        Some(v) => v.max(0),
        None => return err("ERR Invalid min-idle-time argument for XCLAIM"),
    };
    let mut ids = Vec::new();
    let mut j = 5;
    while j < a.len() {
        match parse_strict_id(&a[j], 0) {
            Ok(id) => ids.push((id, j)),
            Err(_) => break,
        }
        j += 1;
    }
    let now = c.now_ms as i64;
    let (mut force, mut justid) = (false, false);
    let (mut retry, mut dtime): (i64, i64) = (-1, -1);
    let mut lastid = StreamId::MIN;
    while j < a.len() {
        let more = a.len() - 1 - j;
        let o = &a[j];
        let num = |s: &[u8], what: &'static str| parse_i64(s).ok_or_else(|| err(what));
        if eq(o, b"force") {
            force = true;
        } else if eq(o, b"justid") {
            justid = true;
        } else if eq(o, b"idle") && more > 0 {
            j += 1;
            dtime = now - tri!(num(&a[j], "ERR Invalid IDLE option argument for XCLAIM"));
        } else if eq(o, b"time") && more > 0 {
            j += 1;
            dtime = tri!(num(&a[j], "ERR Invalid TIME option argument for XCLAIM"));
        } else if eq(o, b"retrycount") && more > 0 {
            j += 1;
            retry = tri!(num(
                &a[j],
                "ERR Invalid RETRYCOUNT option argument for XCLAIM"
            ));
        } else if eq(o, b"lastid") && more > 0 {
            j += 1;
            lastid = tri!(parse_strict_id(&a[j], 0));
        } else {
            return Value::error(format!(
                "ERR Unrecognized XCLAIM option '{}'",
                String::from_utf8_lossy(o)
            ));
        }
        j += 1;
    }
    if dtime == -1 || dtime < 0 || dtime > now {
        dtime = now;
    }
    let (key, gname, name) = (a[1].clone(), a[2].clone(), a[3].clone());
    let s = tri!(stream_mut(db, &key, c.now_ms)).expect("checked");
    let mut g = s.groups.remove(&gname).expect("checked");
    let mut props = Vec::new();
    let mut propagate_last = false;
    if lastid > g.last_id {
        g.last_id = lastid;
        propagate_last = true;
    }
    let mut out = Vec::new();
    for (id, _) in ids {
        let exists = s.entries.contains_key(&id);
        if !exists {
            if let Some(n) = g.pel.get(&id).cloned() {
                props.push(xclaim_prop(&key, &gname, id, &n, g.last_id));
                propagate_last = false;
                drop_nack(&mut g, id);
            }
            continue;
        }
        if force && !g.pel.contains_key(&id) {
            g.pel.insert(
                id,
                Nack {
                    consumer: Bytes::new(),
                    delivery_time: c.now_ms,
                    delivery_count: 1,
                },
            );
        }
        let Some(n) = g.pel.get(&id) else { continue };
        if !n.consumer.is_empty() && minidle > 0 && now - (n.delivery_time as i64) < minidle {
            continue;
        }
        assign(&mut g, id, &name, c.now_ms);
        let n = g.pel.get_mut(&id).expect("assigned");
        n.delivery_time = dtime as u64;
        if retry >= 0 {
            n.delivery_count = retry as u64;
        } else if !justid {
            n.delivery_count += 1;
        }
        let n = n.clone();
        out.push(if justid {
            Value::BulkString(id.to_bytes())
        } else {
            entry_reply(id, &s.entries[&id])
        });
        props.push(xclaim_prop(&key, &gname, id, &n, g.last_id));
        propagate_last = false;
    }
    if propagate_last {
        props.push(setid_prop(&key, &gname, &g));
    }
    s.groups.insert(gname, g);
    for p in props {
        db.push_prop(p);
    }
    Value::Array(out)
}

pub(crate) fn xautoclaim(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let minidle = match parse_i64(&a[4]) {
        Some(v) => v.max(0),
        None => return err("ERR Invalid min-idle-time argument for XAUTOCLAIM"),
    };
    let (mut start, sx) = tri!(parse_interval(&a[5], 0));
    if sx {
        match start.incr() {
            Some(s) => start = s,
            None => return err("ERR invalid start ID for the interval"),
        }
    }
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < a.len() {
        let more = a.len() - 1 - j;
        if eq(&a[j], b"count") && more > 0 {
            count = match int_arg(&a[j + 1]) {
                Ok(n) if (1..=i64::MAX / 16).contains(&n) => n,
                _ => return err("ERR COUNT must be > 0"),
            };
            j += 1;
        } else if eq(&a[j], b"justid") {
            justid = true;
        } else {
            return err(SYNTAX);
        }
        j += 1;
    }
    if !tri!(has_group(db, a, c)) {
        return no_group(a);
    }
    let (key, gname, name) = (a[1].clone(), a[2].clone(), a[3].clone());
    let s = tri!(stream_mut(db, &key, c.now_ms)).expect("checked");
    let mut g = s.groups.remove(&gname).expect("checked");
    let mut attempts = count.saturating_mul(10);
    let now = c.now_ms as i64;
    // The keys this call may visit, plus one to report where to continue.
    let cap = usize::try_from(attempts)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let keys: Vec<StreamId> = g.pel.range(start..).map(|(k, _)| *k).take(cap).collect();
    let mut props = Vec::new();
    let (mut out, mut deleted) = (Vec::new(), Vec::new());
    let mut next = 0;
    while attempts > 0 && count > 0 && next < keys.len() {
        attempts -= 1;
        let id = keys[next];
        next += 1;
        if !s.entries.contains_key(&id) {
            let n = g.pel[&id].clone();
            props.push(xclaim_prop(&key, &gname, id, &n, g.last_id));
            drop_nack(&mut g, id);
            deleted.push(Value::BulkString(id.to_bytes()));
            count -= 1;
            continue;
        }
        let n = &g.pel[&id];
        if minidle > 0 && now - (n.delivery_time as i64) < minidle {
            continue;
        }
        assign(&mut g, id, &name, c.now_ms);
        let n = g.pel.get_mut(&id).expect("assigned");
        n.delivery_time = c.now_ms;
        if !justid {
            n.delivery_count += 1;
        }
        let n = n.clone();
        out.push(if justid {
            Value::BulkString(id.to_bytes())
        } else {
            entry_reply(id, &s.entries[&id])
        });
        count -= 1;
        props.push(xclaim_prop(&key, &gname, id, &n, g.last_id));
    }
    let end = keys.get(next).copied().unwrap_or(StreamId::MIN);
    s.groups.insert(gname, g);
    for p in props {
        db.push_prop(p);
    }
    Value::Array(vec![
        Value::BulkString(end.to_bytes()),
        Value::Array(out),
        Value::Array(deleted),
    ])
}
