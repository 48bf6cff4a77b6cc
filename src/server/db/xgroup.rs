//! Consumer-group administration and inspection: XGROUP, XACK, XPENDING, XINFO.

use bytes::Bytes;

use super::stream::{Group, Stream, StreamId, INVALID_READ};
use super::util::{eq, err, int_arg, tri, SYNTAX};
use super::xcmd::{entry_reply, parse_id, parse_interval, parse_strict_id, stream_mut, stream_ref};
use super::{Data, Db, ExecCtx};
use crate::resp::Value;

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// `addReplySubcommandSyntaxError`.
pub(super) fn sub_syntax(a: &[Bytes]) -> Value {
    Value::error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        lossy(&a[1][..a[1].len().min(128)]),
        lossy(&a[0]).to_ascii_uppercase()
    ))
}

fn help(lines: &[&'static str], cmd: &str) -> Value {
    let head = format!("{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
    let mut v = vec![Value::SimpleString(Bytes::from(head))];
    v.extend(lines.iter().map(|l| Value::simple(l)));
    v.push(Value::simple("HELP"));
    v.push(Value::simple("    Prints this help."));
    Value::Array(v)
}

fn no_group(group: &[u8], key: &[u8]) -> Value {
    Value::error(format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        lossy(group),
        lossy(key)
    ))
}

pub(crate) fn xgroup(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let sub = &a[1];
    if eq(sub, b"help") {
        if a.len() != 2 {
            return sub_syntax(a);
        }
        return help(
            &[
                "CREATE <key> <groupname> <id|$> [option]",
                "    Create a new consumer group. Options are:",
                "    * MKSTREAM",
                "      Create the empty stream if it does not exist.",
                "    * ENTRIESREAD entries_read",
                "      Set the group's entries_read counter (internal use).",
                "CREATECONSUMER <key> <groupname> <consumer>",
                "    Create a new consumer in the specified group.",
                "DELCONSUMER <key> <groupname> <consumer>",
                "    Remove the specified consumer.",
                "DESTROY <key> <groupname>",
                "    Remove the specified group.",
                "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
                "    Set the current group ID and entries_read counter.",
            ],
            "XGROUP",
        );
    }
    if a.len() < 4 {
        return sub_syntax(a);
    }
    let create = eq(sub, b"create");
    let setid = eq(sub, b"setid");
    let mut mkstream = false;
    let mut entries_read = INVALID_READ;
    let mut i = 5;
    while i < a.len() {
        if create && eq(&a[i], b"mkstream") {
            mkstream = true;
            i += 1;
        } else if (create || setid) && eq(&a[i], b"entriesread") && i + 1 < a.len() {
            entries_read = tri!(int_arg(&a[i + 1]));
            if entries_read < 0 && entries_read != INVALID_READ {
                return err("ERR value for ENTRIESREAD must be positive or -1");
            }
            i += 2;
        } else {
            return sub_syntax(a);
        }
    }
    let (key, gname) = (&a[2], &a[3]);
    let exists = tri!(stream_ref(db, key, c.now_ms)).is_some();
    if !mkstream {
        let Some(s) = tri!(stream_ref(db, key, c.now_ms)) else {
            return err("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.");
        };
        let needs = setid || eq(sub, b"createconsumer") || eq(sub, b"delconsumer");
        if needs && !s.groups.contains_key(gname) {
            return no_group(gname, key);
        }
    }
    if create && (5..=8).contains(&a.len()) {
        let id = if a[4].as_ref() == b"$" {
            match tri!(stream_ref(db, key, c.now_ms)) {
                Some(s) => s.last_id,
                None => StreamId::MIN,
            }
        } else {
            tri!(parse_strict_id(&a[4], 0))
        };
        if !exists {
            db.insert(key, Data::Stream(Box::default()), None);
        }
        let s = tri!(stream_mut(db, key, c.now_ms)).expect("stream exists");
        if s.groups.contains_key(gname) {
            return err("BUSYGROUP Consumer Group name already exists");
        }
        s.groups
            .insert(super::util::own(gname), Group::new(id, entries_read));
        db.prop_args(a);
        return Value::ok();
    }
    if setid && (a.len() == 5 || a.len() == 7) {
        let s = tri!(stream_mut(db, key, c.now_ms)).expect("checked");
        let id = if a[4].as_ref() == b"$" {
            s.last_id
        } else {
            tri!(parse_id(&a[4], 0))
        };
        let g = s.groups.get_mut(gname).expect("checked");
        g.last_id = id;
        g.entries_read = entries_read;
        db.prop_args(a);
        return Value::ok();
    }
    if eq(sub, b"destroy") && a.len() == 4 {
        let s = tri!(stream_mut(db, key, c.now_ms)).expect("checked");
        if s.groups.remove(gname.as_ref()).is_some() {
            db.prop_args(a);
            return Value::Integer(1);
        }
        return Value::Integer(0);
    }
    if eq(sub, b"createconsumer") && a.len() == 5 {
        let s = tri!(stream_mut(db, key, c.now_ms)).expect("checked");
        let g = s.groups.get_mut(gname).expect("checked");
        if g.consumers.contains_key(&a[4]) {
            return Value::Integer(0);
        }
        g.consumers.insert(
            super::util::own(&a[4]),
            super::stream::Consumer {
                seen_time: c.now_ms,
                pel: Default::default(),
            },
        );
        db.prop_args(a);
        return Value::Integer(1);
    }
    if eq(sub, b"delconsumer") && a.len() == 5 {
        let s = tri!(stream_mut(db, key, c.now_ms)).expect("checked");
        let g = s.groups.get_mut(gname).expect("checked");
        let Some(cons) = g.consumers.remove(a[4].as_ref()) else {
            return Value::Integer(0);
        };
        for id in &cons.pel {
            g.pel.remove(id);
        }
        db.prop_args(a);
        return Value::Integer(cons.pel.len() as i64);
    }
    sub_syntax(a)
}

pub(crate) fn xack(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let has_group = match tri!(stream_ref(db, &a[1], c.now_ms)) {
        Some(s) => s.groups.contains_key(&a[2]),
        None => false,
    };
    if !has_group {
        return Value::Integer(0);
    }
    let mut ids = Vec::with_capacity(a.len() - 3);
    for x in &a[3..] {
        ids.push(tri!(parse_strict_id(x, 0)));
    }
    let s = tri!(stream_mut(db, &a[1], c.now_ms)).expect("checked");
    let g = s.groups.get_mut(&a[2]).expect("checked");
    let mut n = 0;
    for id in ids {
        if let Some(nack) = g.pel.remove(&id) {
            if let Some(cons) = g.consumers.get_mut(&nack.consumer) {
                cons.pel.remove(&id);
            }
            n += 1;
        }
    }
    if n > 0 {
        db.prop_args(a);
    }
    Value::Integer(n)
}

pub(crate) fn xpending(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    let justinfo = a.len() == 3;
    if a.len() != 3 && !(6..=9).contains(&a.len()) {
        return err(SYNTAX);
    }
    let (mut start, mut end, mut count, mut minidle) = (StreamId::MIN, StreamId::MAX, 0i64, 0i64);
    let mut consumer = None;
    if a.len() >= 6 {
        let mut si = 3;
        if eq(&a[3], b"idle") {
            minidle = tri!(int_arg(&a[4]));
            if a.len() < 8 {
                return err(SYNTAX);
            }
            si += 2;
        }
        count = tri!(int_arg(&a[si + 2])).max(0);
        let (s, sx) = tri!(parse_interval(&a[si], 0));
        start = s;
        if sx {
            match start.incr() {
                Some(s) => start = s,
                None => return err("ERR invalid start ID for the interval"),
            }
        }
        let (e, ex) = tri!(parse_interval(&a[si + 1], u64::MAX));
        end = e;
        if ex {
            match end.decr() {
                Some(e) => end = e,
                None => return err("ERR invalid end ID for the interval"),
            }
        }
        consumer = a.get(si + 3);
    }
    let s = tri!(stream_ref(db, &a[1], c.now_ms));
    let Some(g) = s.and_then(|s| s.groups.get(&a[2])) else {
        return Value::error(format!(
            "NOGROUP No such key '{}' or consumer group '{}'",
            lossy(&a[1]),
            lossy(&a[2])
        ));
    };
    if justinfo {
        if g.pel.is_empty() {
            return Value::Array(vec![
                Value::Integer(0),
                Value::Null,
                Value::Null,
                Value::NullArray,
            ]);
        }
        let first = g.pel.keys().next().expect("non-empty");
        let last = g.pel.keys().next_back().expect("non-empty");
        let per: Vec<Value> = g
            .consumers
            .iter()
            .filter(|(_, c)| !c.pel.is_empty())
            .map(|(n, c)| {
                Value::Array(vec![
                    Value::BulkString(n.clone()),
                    Value::BulkString(super::util::int_bytes(c.pel.len() as i64)),
                ])
            })
            .collect();
        return Value::Array(vec![
            Value::Integer(g.pel.len() as i64),
            Value::BulkString(first.to_bytes()),
            Value::BulkString(last.to_bytes()),
            Value::Array(per),
        ]);
    }
    let ids: Vec<StreamId> = match consumer {
        Some(name) => match g.consumers.get(name) {
            None => return Value::Array(Vec::new()),
            Some(cons) if start <= end => cons.pel.range(start..=end).copied().collect(),
            Some(_) => Vec::new(),
        },
        None if start <= end => g.pel.range(start..=end).map(|(k, _)| *k).collect(),
        None => Vec::new(),
    };
    let now = c.now_ms as i64;
    let mut out = Vec::new();
    for id in ids {
        if count == 0 {
            break;
        }
        let n = &g.pel[&id];
        let idle = now - n.delivery_time as i64;
        if minidle != 0 && idle < minidle {
            continue;
        }
        count -= 1;
        out.push(Value::Array(vec![
            Value::BulkString(id.to_bytes()),
            Value::BulkString(n.consumer.clone()),
            Value::Integer(idle.max(0)),
            Value::Integer(n.delivery_count as i64),
        ]));
    }
    Value::Array(out)
}

fn map(pairs: Vec<(&str, Value)>) -> Value {
    Value::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (Value::bulk(k), v))
            .collect(),
    )
}

fn lag(s: &Stream, g: &Group) -> Value {
    s.lag(g).map_or(Value::Null, Value::Integer)
}

fn entries_read(g: &Group) -> Value {
    if g.entries_read == INVALID_READ {
        Value::Null
    } else {
        Value::Integer(g.entries_read)
    }
}

pub(crate) fn xinfo(db: &mut Db, a: &[Bytes], c: &ExecCtx) -> Value {
    if eq(&a[1], b"help") {
        if a.len() != 2 {
            return sub_syntax(a);
        }
        return help(
            &[
                "CONSUMERS <key> <groupname>",
                "    Show consumers of <groupname>.",
                "GROUPS <key>",
                "    Show the stream consumer groups.",
                "STREAM <key> [FULL [COUNT <count>]",
                "    Show information about the stream.",
            ],
            "XINFO",
        );
    }
    if a.len() < 3 {
        return sub_syntax(a);
    }
    let Some(s) = tri!(stream_ref(db, &a[2], c.now_ms)) else {
        return err(super::util::NO_KEY);
    };
    let sub = &a[1];
    if eq(sub, b"consumers") && a.len() == 4 {
        let Some(g) = s.groups.get(&a[3]) else {
            return no_group(&a[3], &a[2]);
        };
        return Value::Array(
            g.consumers
                .iter()
                .map(|(n, cons)| {
                    map(vec![
                        ("name", Value::BulkString(n.clone())),
                        ("pending", Value::Integer(cons.pel.len() as i64)),
                        (
                            "idle",
                            Value::Integer((c.now_ms as i64 - cons.seen_time as i64).max(0)),
                        ),
                    ])
                })
                .collect(),
        );
    }
    if eq(sub, b"groups") && a.len() == 3 {
        return Value::Array(
            s.groups
                .iter()
                .map(|(n, g)| {
                    map(vec![
                        ("name", Value::BulkString(n.clone())),
                        ("consumers", Value::Integer(g.consumers.len() as i64)),
                        ("pending", Value::Integer(g.pel.len() as i64)),
                        ("last-delivered-id", Value::BulkString(g.last_id.to_bytes())),
                        ("entries-read", entries_read(g)),
                        ("lag", lag(s, g)),
                    ])
                })
                .collect(),
        );
    }
    if eq(sub, b"stream") {
        return stream_info(s, a);
    }
    sub_syntax(a)
}

fn stream_info(s: &Stream, a: &[Bytes]) -> Value {
    let opts = &a[3..];
    let mut count: i64 = 10;
    let full = !opts.is_empty();
    if full {
        if (opts.len() != 1 && opts.len() != 3) || !eq(&opts[0], b"full") {
            return sub_syntax(a);
        }
        if opts.len() == 3 {
            if !eq(&opts[1], b"count") {
                return sub_syntax(a);
            }
            count = tri!(int_arg(&opts[2]));
            if count < 0 {
                count = 10;
            }
        }
    }
    let mut pairs = vec![
        ("length", Value::Integer(s.len() as i64)),
        ("radix-tree-keys", Value::Integer(s.node_count() as i64)),
        ("radix-tree-nodes", Value::Integer(s.rax_nodes() as i64)),
        ("last-generated-id", Value::BulkString(s.last_id.to_bytes())),
        (
            "max-deleted-entry-id",
            Value::BulkString(s.max_deleted.to_bytes()),
        ),
        ("entries-added", Value::Integer(s.entries_added as i64)),
        (
            "recorded-first-entry-id",
            Value::BulkString(s.first_id().to_bytes()),
        ),
    ];
    if !full {
        let entry = |e: Option<(&StreamId, &Vec<Bytes>)>| {
            e.map_or(Value::Null, |(id, fv)| entry_reply(*id, fv))
        };
        pairs.push(("groups", Value::Integer(s.groups.len() as i64)));
        pairs.push(("first-entry", entry(s.entries.iter().next())));
        pairs.push(("last-entry", entry(s.entries.iter().next_back())));
        return map(pairs);
    }
    let take = if count == 0 {
        usize::MAX
    } else {
        count as usize
    };
    pairs.push((
        "entries",
        Value::Array(
            s.entries
                .iter()
                .take(take)
                .map(|(id, fv)| entry_reply(*id, fv))
                .collect(),
        ),
    ));
    let groups = s
        .groups
        .iter()
        .map(|(name, g)| {
            let pel = g
                .pel
                .iter()
                .take(take)
                .map(|(id, n)| {
                    Value::Array(vec![
                        Value::BulkString(id.to_bytes()),
                        Value::BulkString(n.consumer.clone()),
                        Value::Integer(n.delivery_time as i64),
                        Value::Integer(n.delivery_count as i64),
                    ])
                })
                .collect();
            let consumers = g
                .consumers
                .iter()
                .map(|(cn, cons)| {
                    let pending = cons
                        .pel
                        .iter()
                        .take(take)
                        .map(|id| {
                            let n = &g.pel[id];
                            Value::Array(vec![
                                Value::BulkString(id.to_bytes()),
                                Value::Integer(n.delivery_time as i64),
                                Value::Integer(n.delivery_count as i64),
                            ])
                        })
                        .collect();
                    map(vec![
                        ("name", Value::BulkString(cn.clone())),
                        ("seen-time", Value::Integer(cons.seen_time as i64)),
                        ("pel-count", Value::Integer(cons.pel.len() as i64)),
                        ("pending", Value::Array(pending)),
                    ])
                })
                .collect();
            map(vec![
                ("name", Value::BulkString(name.clone())),
                ("last-delivered-id", Value::BulkString(g.last_id.to_bytes())),
                ("entries-read", entries_read(g)),
                ("lag", lag(s, g)),
                ("pel-count", Value::Integer(g.pel.len() as i64)),
                ("pending", Value::Array(pel)),
                ("consumers", Value::Array(consumers)),
            ])
        })
        .collect();
    pairs.push(("groups", Value::Array(groups)));
    map(pairs)
}
