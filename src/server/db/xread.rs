//! XREAD and XREADGROUP: parsing, serving at once, and serving a blocked client later
//! ([`serve_blocked`]), with Redis 7.0's replies and the XCLAIM/XGROUP propagation Redis
//! emits for what a group read changed.

use bytes::Bytes;

use super::stream::{Group, Nack, Stream, StreamId, INVALID_READ};
use super::util::{eq, err, int_arg, int_bytes, u64_bytes, word, SYNTAX};
use super::xcmd::{entry_reply, parse_strict_id, stream_mut, stream_ref};
use super::{Db, ExecCtx};
use crate::resp::Value;

/// Default COUNT of a blocked read (Redis' `XREAD_BLOCKED_DEFAULT_COUNT`).
const BLOCKED_COUNT: usize = 1000;

/// A parsed XREAD/XREADGROUP.
pub(crate) struct XRead {
    /// BLOCK in ms (`Some(0)` = for ever), `None` without BLOCK.
    pub(crate) block: Option<u64>,
    pub(crate) count: usize,
    pub(crate) group: Option<(Bytes, Bytes)>,
    pub(crate) noack: bool,
    /// Index of the first key.
    pub(crate) keys_at: usize,
    pub(crate) n: usize,
}

/// Parse the options as `xreadCommand` does.
pub(crate) fn parse(a: &[Bytes]) -> Result<XRead, Value> {
    let xreadgroup = a[0].len() == 10;
    let mut r = XRead {
        block: None,
        count: 0,
        group: None,
        noack: false,
        keys_at: 0,
        n: 0,
    };
    let mut i = 1;
    while i < a.len() {
        let more = a.len() - i - 1;
        let o = &a[i];
        if eq(o, b"block") && more > 0 {
            i += 1;
            let ms = parse_timeout_ms(&a[i])?;
            r.block = Some(ms);
        } else if eq(o, b"count") && more > 0 {
            i += 1;
            r.count = int_arg(&a[i])?.max(0) as usize;
        } else if eq(o, b"streams") && more > 0 {
            r.keys_at = i + 1;
            let left = a.len() - r.keys_at;
            if left % 2 != 0 {
                return Err(err("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."));
            }
            r.n = left / 2;
            break;
        } else if eq(o, b"group") && more >= 2 {
            if !xreadgroup {
                return Err(err(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            r.group = Some((a[i + 1].clone(), a[i + 2].clone()));
            i += 2;
        } else if eq(o, b"noack") {
            if !xreadgroup {
                return Err(err(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            r.noack = true;
        } else {
            return Err(err(SYNTAX));
        }
        i += 1;
    }
    if r.keys_at == 0 {
        return Err(err(SYNTAX));
    }
    if xreadgroup && r.group.is_none() {
        return Err(err("ERR Missing GROUP option for XREADGROUP"));
    }
    Ok(r)
}

/// A BLOCK argument in milliseconds, as `getTimeoutFromObjectOrReply(.., UNIT_MILLISECONDS)`.
fn parse_timeout_ms(s: &[u8]) -> Result<u64, Value> {
    let v = super::util::parse_f64(s)
        .filter(|_| !s.contains(&b' '))
        .ok_or_else(|| err("ERR timeout is not an integer or out of range"))?;
    if v < 0.0 {
        return Err(err("ERR timeout is negative"));
    }
    if v.fract() != 0.0 || v > i64::MAX as f64 {
        return Err(err("ERR timeout is not an integer or out of range"));
    }
    Ok(v as u64)
}

/// Resolve each ID argument (`$` to the stream's last ID, `>` to MAX) and check groups.
fn resolve(db: &mut Db, a: &[Bytes], r: &XRead, now: u64) -> Result<Vec<StreamId>, Value> {
    let mut ids = Vec::with_capacity(r.n);
    for j in 0..r.n {
        let key = &a[r.keys_at + j];
        let arg = &a[r.keys_at + r.n + j];
        let s = stream_ref(db, key, now)?;
        if let Some((g, _)) = &r.group {
            if s.map_or(true, |s| !s.groups.contains_key(g)) {
                return Err(Value::error(format!(
                    "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                    String::from_utf8_lossy(key),
                    String::from_utf8_lossy(g)
                )));
            }
        }
        if arg.as_ref() == b"$" {
            if r.group.is_some() {
                return Err(err("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set."));
            }
            ids.push(s.map_or(StreamId::MIN, |s| s.last_id));
        } else if arg.as_ref() == b">" {
            if r.group.is_none() {
                return Err(err("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."));
            }
            ids.push(StreamId::MAX);
        } else {
            ids.push(parse_strict_id(arg, 0)?);
        }
    }
    Ok(ids)
}

/// The reply map/array of served streams.
fn streams_reply(items: Vec<(Bytes, Value)>, resp3: bool) -> Value {
    if resp3 {
        Value::Map(
            items
                .into_iter()
                .map(|(k, v)| (Value::BulkString(k), v))
                .collect(),
        )
    } else {
        Value::Array(
            items
                .into_iter()
                .map(|(k, v)| Value::Array(vec![Value::BulkString(k), v]))
                .collect(),
        )
    }
}

/// XREAD / XREADGROUP. With BLOCK and nothing to serve, `Value::NullArray` (the network
/// layer then waits; see [`Db::stream_block_args`]).
pub(crate) fn xread(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let r = match parse(a) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let ids = match resolve(db, a, &r, c.now_ms) {
        Ok(ids) => ids,
        Err(e) => return e,
    };
    let mut out = Vec::new();
    for (j, gt) in ids.into_iter().enumerate() {
        let key = a[r.keys_at + j].clone();
        let mut props = Vec::new();
        let served = match &r.group {
            None => {
                let Ok(Some(s)) = stream_ref(db, &key, c.now_ms) else {
                    continue;
                };
                if s.entries.keys().next_back().is_some_and(|m| *m > gt) {
                    Some(plain_range(s, gt, r.count))
                } else {
                    None
                }
            }
            Some((g, consumer)) => {
                let Ok(Some(s)) = stream_mut(db, &key, c.now_ms) else {
                    continue;
                };
                let group_last = s.groups.get(g).map(|g| g.last_id).unwrap_or_default();
                let history = gt != StreamId::MAX;
                if history
                    || s.entries
                        .keys()
                        .next_back()
                        .is_some_and(|m| *m > group_last)
                {
                    let start = if history { gt } else { group_last };
                    let rd = GroupRead {
                        key: &key,
                        group: g,
                        consumer,
                        noack: r.noack,
                        now: c.now_ms,
                    };
                    Some(rd.deliver(s, start, r.count, history, &mut props))
                } else {
                    None
                }
            }
        };
        for p in props {
            db.push_prop(p);
        }
        if let Some(v) = served {
            out.push((key, v));
        }
    }
    if out.is_empty() {
        return Value::NullArray;
    }
    streams_reply(out, c.resp3)
}

/// Entries after `gt`, at most `count` (0 = all).
fn plain_range(s: &Stream, gt: StreamId, count: usize) -> Value {
    let Some(start) = gt.incr() else {
        return Value::Array(Vec::new());
    };
    let take = if count == 0 { usize::MAX } else { count };
    Value::Array(
        s.entries
            .range(start..)
            .take(take)
            .map(|(id, fv)| entry_reply(*id, fv))
            .collect(),
    )
}

/// One group read's context.
struct GroupRead<'a> {
    key: &'a Bytes,
    group: &'a Bytes,
    consumer: &'a Bytes,
    noack: bool,
    now: u64,
}

impl GroupRead<'_> {
    /// Serve the consumer: its own history from `start` (inclusive) or new entries after
    /// `start`; queues the propagation into `props`.
    fn deliver(
        &self,
        s: &mut Stream,
        start: StreamId,
        count: usize,
        history: bool,
        props: &mut Vec<Vec<Bytes>>,
    ) -> Value {
        let Some(mut g) = s.groups.remove(self.group) else {
            return Value::Array(Vec::new());
        };
        let created = !g.consumers.contains_key(self.consumer);
        g.consumers
            .entry(self.consumer.clone())
            .or_default()
            .seen_time = self.now;
        if created && self.noack {
            props.push(vec![
                word("XGROUP"),
                word("CREATECONSUMER"),
                self.key.clone(),
                self.group.clone(),
                self.consumer.clone(),
            ]);
        }
        let take = if count == 0 { usize::MAX } else { count };
        let reply = if history {
            self.history(s, &mut g, start, take)
        } else {
            self.new_entries(s, &mut g, start, take, props)
        };
        s.groups.insert(self.group.clone(), g);
        reply
    }

    fn history(&self, s: &Stream, g: &mut Group, start: StreamId, take: usize) -> Value {
        let ids: Vec<StreamId> = g.consumers[self.consumer.as_ref()]
            .pel
            .range(start..)
            .take(take)
            .copied()
            .collect();
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            match s.entries.get(&id) {
                Some(fv) => {
                    items.push(entry_reply(id, fv));
                    if let Some(n) = g.pel.get_mut(&id) {
                        n.delivery_time = self.now;
                        n.delivery_count += 1;
                    }
                }
                None => items.push(Value::Array(vec![
                    Value::BulkString(id.to_bytes()),
                    Value::NullArray,
                ])),
            }
        }
        Value::Array(items)
    }

    fn new_entries(
        &self,
        s: &Stream,
        g: &mut Group,
        after: StreamId,
        take: usize,
        props: &mut Vec<Vec<Bytes>>,
    ) -> Value {
        let Some(from) = after.incr() else {
            return Value::Array(Vec::new());
        };
        let mut items = Vec::new();
        let mut moved = false;
        for (&id, fv) in s.entries.range(from..).take(take) {
            if id > g.last_id {
                if g.entries_read != INVALID_READ && !s.has_tombstones_from(id) {
                    g.entries_read += 1;
                } else if s.entries_added > 0 {
                    g.entries_read = s.estimate_read(id);
                }
                g.last_id = id;
                moved = true;
            }
            items.push(entry_reply(id, fv));
            if !self.noack {
                if let Some(old) = g.pel.get(&id).map(|n| n.consumer.clone()) {
                    if let Some(c) = g.consumers.get_mut(&old) {
                        c.pel.remove(&id);
                    }
                }
                let nack = Nack {
                    consumer: self.consumer.clone(),
                    delivery_time: self.now,
                    delivery_count: 1,
                };
                g.pel.insert(id, nack.clone());
                if let Some(c) = g.consumers.get_mut(self.consumer) {
                    c.pel.insert(id);
                }
                props.push(xclaim_prop(self.key, self.group, id, &nack, g.last_id));
            }
        }
        if moved && self.noack {
            props.push(setid_prop(self.key, self.group, g));
        }
        Value::Array(items)
    }
}

/// `XCLAIM key group consumer 0 id TIME t RETRYCOUNT n FORCE JUSTID LASTID last`: how Redis
/// replicates a PEL change idempotently.
pub(super) fn xclaim_prop(
    key: &Bytes,
    group: &Bytes,
    id: StreamId,
    n: &Nack,
    last: StreamId,
) -> Vec<Bytes> {
    vec![
        word("XCLAIM"),
        key.clone(),
        group.clone(),
        n.consumer.clone(),
        word("0"),
        id.to_bytes(),
        word("TIME"),
        u64_bytes(n.delivery_time),
        word("RETRYCOUNT"),
        u64_bytes(n.delivery_count),
        word("FORCE"),
        word("JUSTID"),
        word("LASTID"),
        last.to_bytes(),
    ]
}

/// `XGROUP SETID key group last ENTRIESREAD n`.
pub(super) fn setid_prop(key: &Bytes, group: &Bytes, g: &Group) -> Vec<Bytes> {
    vec![
        word("XGROUP"),
        word("SETID"),
        key.clone(),
        group.clone(),
        g.last_id.to_bytes(),
        word("ENTRIESREAD"),
        int_bytes(g.entries_read),
    ]
}

impl Db {
    /// For a blocking XREAD/XREADGROUP that found nothing: the command to wait with (its
    /// `$` resolved) and what it waits for (`Ok(None)` when it has no BLOCK option). `$` IDs are replaced by the
    /// stream's current last ID, so later entries are what serves it.
    pub(crate) fn stream_block_args(
        &mut self,
        a: &[Bytes],
        now: u64,
    ) -> Result<Option<(Vec<Bytes>, super::BlockSpec)>, Value> {
        let r = parse(a)?;
        let Some(block) = r.block else {
            return Ok(None);
        };
        let ids = resolve(self, a, &r, now)?;
        let mut args = a.to_vec();
        for (j, id) in ids.iter().enumerate() {
            if r.group.is_none() {
                args[r.keys_at + r.n + j] = id.to_bytes();
            }
        }
        let keys = a[r.keys_at..r.keys_at + r.n].to_vec();
        let spec = super::BlockSpec {
            keys,
            timeout_ms: (block > 0).then_some(block),
        };
        Ok(Some((args, spec)))
    }

    /// Serve a blocked XREAD/XREADGROUP (prepared by [`Db::stream_block_args`]) from the
    /// first of its streams that has entries after the ID it waits for: a one-stream reply,
    /// an error when its group or stream is gone, or `None` to keep waiting.
    pub(crate) fn serve_blocked_stream(&mut self, a: &[Bytes], c: &ExecCtx) -> Option<Value> {
        let r = parse(a).ok()?;
        let count = if r.count == 0 { BLOCKED_COUNT } else { r.count };
        for j in 0..r.n {
            let key = a[r.keys_at + j].clone();
            let s = match stream_mut(self, &key, c.now_ms) {
                Ok(Some(s)) => s,
                _ if r.group.is_some() => {
                    return Some(err("UNBLOCKED the stream key no longer exists"));
                }
                _ => continue,
            };
            let mut props = Vec::new();
            let v = match &r.group {
                None => {
                    let gt = parse_strict_id(&a[r.keys_at + r.n + j], 0).ok()?;
                    if s.last_id <= gt {
                        continue;
                    }
                    plain_range(s, gt, count)
                }
                Some((g, consumer)) => {
                    let Some(grp) = s.groups.get(g) else {
                        return Some(err(
                            "NOGROUP the consumer group this client was blocked on no longer exists",
                        ));
                    };
                    let gt = grp.last_id;
                    if s.last_id <= gt {
                        continue;
                    }
                    let rd = GroupRead {
                        key: &key,
                        group: g,
                        consumer,
                        noack: r.noack,
                        now: c.now_ms,
                    };
                    rd.deliver(s, gt, count, false, &mut props)
                }
            };
            for p in props {
                self.push_prop(p);
            }
            return Some(streams_reply(vec![(key, v)], c.resp3));
        }
        None
    }
}
