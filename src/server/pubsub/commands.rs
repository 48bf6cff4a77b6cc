//! The pub/sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH, PUBSUB, and
//! the RESP2 subscribed-mode restriction.
//!
//! PUBLISH is delivered on this node and handed over the cluster bus to every other node
//! (Redis' `clusterPropagatePublish`); SPUBLISH to the other nodes serving this node's
//! shard (the primary and its replicas, `clusterPropagatePublishShard`). Both reply with
//! the number of receivers on this node, as Redis does. The bus hand-over honours
//! the fault switches that silence a node's bus (`Faults::bus_silent`) like the gossip does.

use std::net::SocketAddr;

use bytes::Bytes;

use super::{Kind, PubSub};
use crate::command::{CommandSpec, PubSubOp};
use crate::resp::{Protocol, Value};
use crate::server::call::{Call, Outcome};
use crate::server::cluster::state::NodeId;
use crate::server::node::{Locked, NodeShared};
use crate::server::session::Conn;
use crate::slot::key_slot;

/// In RESP2, a subscribed connection may only (un)subscribe, PING, QUIT and RESET. `Some` is
/// the reply instead of running the command: the refusal, or PING's `["pong", message]`.
pub(crate) fn context_check(
    conn: &Conn,
    spec: &'static CommandSpec,
    args: &[Bytes],
) -> Option<Value> {
    if conn.proto != Protocol::Resp2 || !conn.pubsub.subscribed() {
        return None;
    }
    let op = crate::command::classify_spec(spec, args)
        .pubsub
        .map(|p| p.op);
    if matches!(op, Some(PubSubOp::Subscribe | PubSubOp::Unsubscribe)) {
        return None;
    }
    match spec.name {
        "quit" | "reset" => None,
        "ping" => Some(Value::Array(vec![
            Value::BulkString(Bytes::from_static(b"pong")),
            Value::BulkString(args.get(1).cloned().unwrap_or_default()),
        ])),
        name => Some(Value::error(format!(
            "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / \
             RESET are allowed in this context"
        ))),
    }
}

/// (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH, PUBSUB * (registry entry).
pub(crate) fn pubsub_command(c: &mut Call<'_, '_>) -> Outcome {
    run(c.conn, c.spec, c.args, c.locked, c.shared)
}

/// Run a pub/sub command that passed dispatch's checks (arity, routing).
pub(crate) fn run(
    conn: &mut Conn,
    spec: &'static CommandSpec,
    args: &[Bytes],
    locked: &mut Locked<'_>,
    shared: &NodeShared,
) -> Outcome {
    let names = &args[1..];
    let reply = match spec.name {
        "subscribe" => return subscribe(conn, Kind::Channel, names, locked, shared),
        "psubscribe" => return subscribe(conn, Kind::Pattern, names, locked, shared),
        "ssubscribe" => return subscribe(conn, Kind::Shard, names, locked, shared),
        "unsubscribe" => return unsubscribe(conn, Kind::Channel, names),
        "punsubscribe" => return unsubscribe(conn, Kind::Pattern, names),
        "sunsubscribe" => return unsubscribe(conn, Kind::Shard, names),
        "publish" => publish(&args[1], &args[2], false, locked, shared),
        "spublish" => publish(&args[1], &args[2], true, locked, shared),
        "pubsub|channels" | "pubsub|shardchannels" => {
            let kind = if spec.name == "pubsub|channels" {
                Kind::Channel
            } else {
                Kind::Shard
            };
            if args.len() > 3 {
                return Outcome::Reply(Value::error(format!(
                    "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB \
                     HELP.",
                    String::from_utf8_lossy(&args[1])
                )));
            }
            let list = shared.pubsub.active(kind, args.get(2));
            Value::Array(list.into_iter().map(Value::BulkString).collect())
        }
        "pubsub|numsub" | "pubsub|shardnumsub" => {
            let kind = if spec.name == "pubsub|numsub" {
                Kind::Channel
            } else {
                Kind::Shard
            };
            let names = &args[2..];
            let counts = shared.pubsub.numsub(kind, names);
            let mut items = Vec::with_capacity(names.len() * 2);
            for (n, c) in names.iter().zip(counts) {
                items.push(Value::BulkString(n.clone()));
                items.push(Value::Integer(c as i64));
            }
            Value::Array(items)
        }
        "pubsub|numpat" => Value::Integer(shared.pubsub.numpat() as i64),
        _ => help(),
    };
    Outcome::Reply(reply)
}

fn help() -> Value {
    let lines = [
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP",
        "    Prints this help.",
    ];
    Value::Array(lines.iter().map(|l| Value::simple(l)).collect())
}

fn count_frame(word: &'static [u8], name: Option<&Bytes>, count: usize) -> Value {
    Value::Push(vec![
        Value::BulkString(Bytes::from_static(word)),
        name.map_or(Value::Null, |n| Value::BulkString(n.clone())),
        Value::Integer(count as i64),
    ])
}

fn subscribe(
    conn: &mut Conn,
    kind: Kind,
    names: &[Bytes],
    locked: &mut Locked<'_>,
    shared: &NodeShared,
) -> Outcome {
    let mut frames = Vec::with_capacity(names.len());
    for name in names {
        let owner = if kind == Kind::Shard {
            locked.get().cluster.slots[usize::from(key_slot(name))]
        } else {
            None
        };
        conn.pubsub
            .subscribe(kind, name, conn.id, &shared.pubsub, owner);
        frames.push(count_frame(
            kind.subscribe_word(),
            Some(name),
            conn.pubsub.count_of(kind),
        ));
    }
    Outcome::Replies(frames)
}

fn unsubscribe(conn: &mut Conn, kind: Kind, names: &[Bytes]) -> Outcome {
    let all;
    let names = if names.is_empty() {
        all = conn.pubsub.names(kind);
        if all.is_empty() {
            let count = conn.pubsub.count_of(kind);
            return Outcome::Replies(vec![count_frame(kind.unsubscribe_word(), None, count)]);
        }
        &all[..]
    } else {
        names
    };
    let frames = names
        .iter()
        .map(|name| {
            conn.pubsub.unsubscribe(kind, name);
            count_frame(
                kind.unsubscribe_word(),
                Some(name),
                conn.pubsub.count_of(kind),
            )
        })
        .collect();
    Outcome::Replies(frames)
}

/// Deliver here, then hand the message to the other nodes concerned; the local receivers.
fn publish(
    channel: &Bytes,
    message: &Bytes,
    shard: bool,
    locked: &mut Locked<'_>,
    shared: &NodeShared,
) -> Value {
    let deliver = |ps: &PubSub| {
        if shard {
            ps.spublish(channel, message)
        } else {
            ps.publish(channel, message)
        }
    };
    let receivers = deliver(&shared.pubsub);
    let st = locked.get();
    let cl = &st.cluster;
    let targets: Vec<(NodeId, SocketAddr)> = if shard {
        // The shard: our primary (or us) and its replicas.
        let primary = cl.data_owner();
        let mut v: Vec<_> = cl
            .replicas_of(&primary)
            .iter()
            .map(|p| (p.id, p.addr))
            .collect();
        if let Some(p) = cl.nodes.get(&primary) {
            v.push((p.id, p.addr));
        }
        v
    } else {
        cl.nodes.values().map(|p| (p.id, p.addr)).collect()
    };
    if !bus_blocked(shared) {
        for (id, addr) in targets {
            if id == shared.id {
                continue;
            }
            if let Some(node) = crate::server::cluster::directory::lookup(addr) {
                if node.id == id && !bus_blocked(&node) {
                    deliver(&node.pubsub);
                }
            }
        }
    }
    Value::Integer(receivers as i64)
}

fn bus_blocked(node: &NodeShared) -> bool {
    node.faults.bus_silent()
}
