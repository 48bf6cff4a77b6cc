//! The CLUSTER command family, with Redis 7.0's reply formats and error texts.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

use super::state::{ClusterState, EndpointType, NodeId, Peer};
use crate::resp::Value;
use crate::server::args::{not_integer, parse_i64, syntax_error};
use crate::server::call::{Call, Outcome};
use crate::server::node::{now_ms, Locked, NodeShared, NodeState};
use crate::server::session::Conn;
use crate::slot::key_slot;

fn verbatim(text: String) -> Value {
    Value::Verbatim {
        format: Bytes::from_static(b"txt"),
        text: Bytes::from(text),
    }
}

fn parse_slot(arg: &[u8]) -> Result<u16, Value> {
    match parse_i64(arg) {
        Some(n) if (0..16384).contains(&n) => Ok(n as u16),
        _ => Err(Value::error("ERR Invalid or out of range slot")),
    }
}

fn unknown_node(arg: &[u8]) -> Value {
    Value::error(format!("ERR Unknown node {}", String::from_utf8_lossy(arg)))
}

fn find_node(st: &NodeState, arg: &[u8]) -> Option<NodeId> {
    let id = NodeId::parse(arg)?;
    st.cluster.nodes.contains_key(&id).then_some(id)
}

/// Run `CLUSTER <sub>`.
pub(crate) fn run(
    conn: &Conn,
    sub: &str,
    args: &[Bytes],
    locked: &mut Locked<'_>,
    shared: &NodeShared,
) -> Value {
    let _ = conn;
    let st = locked.get();
    let result = match sub {
        "info" => Ok(verbatim(st.cluster.info_text())),
        "myid" => Ok(Value::bulk(st.cluster.myself.as_str())),
        "myshardid" => Ok(Value::bulk(st.cluster.data_owner().as_str())),
        "nodes" => Ok(verbatim(st.cluster.nodes_text(now_ms()))),
        "slots" => Ok(slots(st)),
        "shards" => Ok(shards(st, shared.config.serves_tls())),
        "keyslot" => Ok(Value::Integer(i64::from(key_slot(&args[2])))),
        "countkeysinslot" => match parse_i64(&args[2]) {
            Some(n) if (0..16384).contains(&n) => {
                Ok(Value::Integer(st.db.count_keys_in_slot(n as u16) as i64))
            }
            Some(_) => Err(Value::error("ERR Invalid slot")),
            None => Err(not_integer()),
        },
        "getkeysinslot" => match (parse_i64(&args[2]), parse_i64(&args[3])) {
            (Some(slot), Some(count)) if (0..16384).contains(&slot) && count >= 0 => Ok(
                Value::Array(
                    st.db
                        .keys_in_slot(slot as u16, count as usize)
                        .into_iter()
                        .map(Value::BulkString)
                        .collect(),
                ),
            ),
            (Some(_), Some(_)) => Err(Value::error("ERR Invalid slot or number of keys")),
            _ => Err(not_integer()),
        },
        "addslots" | "delslots" => args[2..]
            .iter()
            .map(|a| parse_slot(a).map(|s| (s, s)))
            .collect::<Result<Vec<_>, _>>()
            .and_then(|ranges| change_slots(st, &ranges, sub == "addslots", false)),
        "addslotsrange" | "delslotsrange" => {
            if args.len() % 2 != 0 {
                return crate::server::args::arity_error(
                    crate::command::lookup_args(&args[..2]).unwrap_or(crate::command::lookup(b"cluster").expect("cluster")),
                );
            }
            args[2..]
                .chunks(2)
                .map(|pair| {
                    let (a, b) = (parse_slot(&pair[0])?, parse_slot(&pair[1])?);
                    if a > b {
                        return Err(Value::error(format!(
                            "ERR start slot number {a} is greater than end slot number {b}"
                        )));
                    }
                    Ok((a, b))
                })
                .collect::<Result<Vec<_>, _>>()
                .and_then(|ranges| change_slots(st, &ranges, sub == "addslotsrange", true))
        }
        "flushslots" => {
            if st.db.dbsize(now_ms()) != 0 {
                Err(Value::error("ERR DB must be empty to perform CLUSTER FLUSHSLOTS."))
            } else {
                let me = st.cluster.myself;
                st.cluster.unassign_all(me);
                st.cluster.update_state();
                Ok(Value::ok())
            }
        }
        "meet" => meet(st, args, shared),
        "forget" => forget(st, &args[2]),
        "replicate" => replicate(st, &args[2], shared),
        "replicas" | "slaves" => match find_node(st, &args[2]) {
            None => Err(unknown_node(&args[2])),
            Some(id) if !st.cluster.nodes[&id].is_primary() => {
                Err(Value::error("ERR The specified node is not a master"))
            }
            Some(id) => {
                let now = now_ms();
                Ok(Value::Array(
                    st.cluster
                        .replicas_of(&id)
                        .into_iter()
                        .map(|p| {
                            let mut line = String::new();
                            st.cluster.node_line(&mut line, p, now);
                            line.pop();
                            Value::bulk(line)
                        })
                        .collect(),
                ))
            }
        },
        "set-config-epoch" => match parse_i64(&args[2]) {
            None => Err(not_integer()),
            Some(n) if n < 0 => Err(Value::error(format!(
                "ERR Invalid config epoch specified: {n}"
            ))),
            Some(_) if st.cluster.nodes.len() > 1 => Err(Value::error(
                "ERR The user can assign a config epoch only when the node does not know any other node.",
            )),
            Some(_) if st.cluster.me().config_epoch != 0 => {
                Err(Value::error("ERR Node config epoch is already non-zero"))
            }
            Some(n) => {
                let n = n as u64;
                st.cluster.me_mut().config_epoch = n;
                st.cluster.current_epoch = st.cluster.current_epoch.max(n);
                Ok(Value::ok())
            }
        },
        "bumpepoch" => {
            let bumped = st.cluster.bump_epoch();
            let epoch = st.cluster.me().config_epoch;
            Ok(Value::SimpleString(Bytes::from(format!(
                "{} {epoch}",
                if bumped { "BUMPED" } else { "STILL" }
            ))))
        }
        "reset" => reset(st, args),
        "saveconfig" => Ok(Value::ok()),
        "count-failure-reports" => match find_node(st, &args[2]) {
            None => Err(unknown_node(&args[2])),
            Some(id) => Ok(Value::Integer(
                st.cluster.nodes.get(&id).map_or(0, |p| p.fail_reports.len()) as i64,
            )),
        },
        "failover" => {
            use super::failover::FailoverMode;
            let mode = match args.get(2).map(|a| a.to_ascii_lowercase()) {
                _ if args.len() > 3 => None,
                None => Some(FailoverMode::Default),
                Some(m) if m == b"force" => Some(FailoverMode::Force),
                Some(m) if m == b"takeover" => Some(FailoverMode::Takeover),
                Some(_) => None,
            };
            match mode {
                None => Err(Value::error("ERR syntax error")),
                Some(mode) => super::failover::start(st, shared, mode)
                    .map(|()| Value::ok())
                    .map_err(Value::error),
            }
        }
        "links" => Ok(Value::Array(Vec::new())),
        "setslot" => {
            let r = setslot(st, args);
            // Let the other nodes learn a finished move at once, as Redis' broadcast PONG.
            if r.is_ok() && args[3].eq_ignore_ascii_case(b"node") {
                shared.bus_wakeup.notify_one();
            }
            r
        }
        _ => Ok(Value::Array(
            [
                "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "INFO, MYID, MYSHARDID, NODES, SLOTS, SHARDS, KEYSLOT, COUNTKEYSINSLOT, GETKEYSINSLOT,",
                "ADDSLOTS, ADDSLOTSRANGE, DELSLOTS, DELSLOTSRANGE, FLUSHSLOTS, MEET, FORGET,",
                "REPLICATE, REPLICAS, SLAVES, SET-CONFIG-EPOCH, BUMPEPOCH, RESET, SAVECONFIG,",
                "COUNT-FAILURE-REPORTS, LINKS, SETSLOT, FAILOVER, HELP",
            ]
            .iter()
            .map(|s| Value::simple(s))
            .collect(),
        )),
    };
    result.unwrap_or_else(|e| e)
}

fn change_slots(
    st: &mut NodeState,
    ranges: &[(u16, u16)],
    add: bool,
    _range_form: bool,
) -> Result<Value, Value> {
    let me = st.cluster.myself;
    let mut seen = vec![false; 16384];
    for &(a, b) in ranges {
        for slot in a..=b {
            let i = usize::from(slot);
            if seen[i] {
                return Err(Value::error(format!(
                    "ERR Slot {slot} specified multiple times"
                )));
            }
            seen[i] = true;
            match (add, st.cluster.slots[i]) {
                (true, Some(_)) => {
                    return Err(Value::error(format!("ERR Slot {slot} is already busy")))
                }
                (false, None) => {
                    return Err(Value::error(format!(
                        "ERR Slot {slot} is already unassigned"
                    )))
                }
                _ => {}
            }
        }
    }
    for &(a, b) in ranges {
        for slot in a..=b {
            st.cluster.assign_slot(slot, add.then_some(me));
            // As Redis: ADDSLOTS and DELSLOTS both close an import of the slot.
            st.cluster.importing.remove(&slot);
        }
    }
    st.cluster.update_state();
    Ok(Value::ok())
}

/// One node of a CLUSTER SLOTS range, as Redis' `addNodeToNodeReply`: the preferred
/// endpoint (NULL for unknown-endpoint), port, id, and the other known names.
fn node_entry(cl: &ClusterState, peer: &Peer) -> Value {
    let ip = peer.addr.ip().to_string();
    let first = match cl.preferred_endpoint {
        EndpointType::Unknown => Value::Null,
        _ => Value::bulk(cl.endpoint(peer)),
    };
    let mut more = Vec::new();
    if cl.preferred_endpoint != EndpointType::Ip {
        more.push((Value::bulk("ip"), Value::bulk(&ip)));
    }
    if cl.preferred_endpoint != EndpointType::Hostname && !peer.hostname.is_empty() {
        more.push((Value::bulk("hostname"), Value::bulk(&peer.hostname)));
    }
    Value::Array(vec![
        first,
        Value::Integer(i64::from(peer.addr.port())),
        Value::bulk(peer.id.as_str()),
        Value::Map(more),
    ])
}

fn primaries_by_slot(st: &NodeState) -> Vec<(u16, u16, NodeId)> {
    let mut out: Vec<(u16, u16, NodeId)> = Vec::new();
    for (slot, owner) in st.cluster.slots.iter().enumerate() {
        let Some(owner) = owner else { continue };
        let slot = slot as u16;
        match out.last_mut() {
            Some((_, end, id)) if *id == *owner && *end + 1 == slot => *end = slot,
            _ => out.push((slot, slot, *owner)),
        }
    }
    out
}

fn slots(st: &NodeState) -> Value {
    let cl = &st.cluster;
    Value::Array(
        primaries_by_slot(st)
            .into_iter()
            .filter_map(|(a, b, id)| {
                let primary = cl.nodes.get(&id)?;
                let mut entry = vec![
                    Value::Integer(i64::from(a)),
                    Value::Integer(i64::from(b)),
                    node_entry(cl, primary),
                ];
                entry.extend(
                    cl.replicas_of(&id)
                        .into_iter()
                        .filter(|r| !r.failed)
                        .map(|r| node_entry(cl, r)),
                );
                Some(Value::Array(entry))
            })
            .collect(),
    )
}

fn shard_node(st: &NodeState, peer: &Peer, tls: bool) -> Value {
    let primary = peer.is_primary();
    let offset = if peer.id == st.cluster.myself {
        match &st.repl.link {
            Some(link) if !primary => link.offset,
            _ => st.repl.offset,
        }
    } else {
        peer.repl_offset
    };
    let online = if peer.id == st.cluster.myself && !primary {
        st.repl.link.as_ref().is_some_and(|l| l.up)
    } else {
        primary || peer.repl_online
    };
    let health = if peer.failed {
        "failed"
    } else if online {
        "online"
    } else {
        "loading"
    };
    let ip = peer.addr.ip().to_string();
    // A TLS cluster's nodes have only a TLS port here (no plaintext `port`), as Redis with
    // `tls-cluster yes` and `port 0`.
    let port_name = if tls { "tls-port" } else { "port" };
    let mut fields = vec![
        (Value::bulk("id"), Value::bulk(peer.id.as_str())),
        (
            Value::bulk(port_name),
            Value::Integer(i64::from(peer.addr.port())),
        ),
        (Value::bulk("ip"), Value::bulk(&ip)),
        (
            Value::bulk("endpoint"),
            Value::bulk(st.cluster.endpoint(peer)),
        ),
    ];
    if !peer.hostname.is_empty() {
        fields.push((Value::bulk("hostname"), Value::bulk(&peer.hostname)));
    }
    fields.extend([
        (
            Value::bulk("role"),
            Value::bulk(if primary { "master" } else { "replica" }),
        ),
        (
            Value::bulk("replication-offset"),
            Value::Integer(offset as i64),
        ),
        (Value::bulk("health"), Value::bulk(health)),
    ]);
    Value::Map(fields)
}

fn shards(st: &NodeState, tls: bool) -> Value {
    let cl = &st.cluster;
    Value::Array(
        cl.nodes
            .values()
            .filter(|p| p.is_primary())
            .map(|primary| {
                let slots: Vec<Value> = cl
                    .ranges_of(&primary.id)
                    .into_iter()
                    .flat_map(|(a, b)| [Value::Integer(i64::from(a)), Value::Integer(i64::from(b))])
                    .collect();
                let mut nodes = vec![shard_node(st, primary, tls)];
                nodes.extend(
                    cl.replicas_of(&primary.id)
                        .into_iter()
                        .map(|r| shard_node(st, r, tls)),
                );
                Value::Map(vec![
                    (Value::bulk("slots"), Value::Array(slots)),
                    (Value::bulk("nodes"), Value::Array(nodes)),
                ])
            })
            .collect(),
    )
}

fn meet(st: &mut NodeState, args: &[Bytes], shared: &NodeShared) -> Result<Value, Value> {
    let ip = String::from_utf8_lossy(&args[2]).into_owned();
    let port_text = String::from_utf8_lossy(&args[3]).into_owned();
    let Some(port) = parse_i64(&args[3]).and_then(|p| u16::try_from(p).ok()) else {
        return Err(Value::error(format!(
            "ERR Invalid TCP base port specified: {port_text}"
        )));
    };
    if let Some(cport) = args.get(4) {
        if parse_i64(cport)
            .and_then(|p| u16::try_from(p).ok())
            .is_none()
        {
            return Err(Value::error(format!(
                "ERR Invalid TCP bus port specified: {}",
                String::from_utf8_lossy(cport)
            )));
        }
    }
    let ip: IpAddr = match ip.as_str() {
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        other => other.parse().map_err(|_| {
            Value::error(format!(
                "ERR Invalid node address specified: {ip}:{port_text}"
            ))
        })?,
    };
    st.cluster.pending_meets.push(SocketAddr::new(ip, port));
    shared.bus_wakeup.notify_one();
    Ok(Value::ok())
}

fn forget(st: &mut NodeState, arg: &[u8]) -> Result<Value, Value> {
    let Some(id) = find_node(st, arg) else {
        return Err(unknown_node(arg));
    };
    if id == st.cluster.myself {
        return Err(Value::error(
            "ERR I tried hard but I can't forget myself...",
        ));
    }
    if st.cluster.me().replica_of == Some(id) {
        return Err(Value::error("ERR Can't forget my master!"));
    }
    st.cluster.nodes.remove(&id);
    st.cluster.unassign_all(id);
    st.cluster.forgotten.insert(id, now_ms() + 60_000);
    st.cluster.update_state();
    Ok(Value::ok())
}

fn replicate(st: &mut NodeState, arg: &[u8], shared: &NodeShared) -> Result<Value, Value> {
    let Some(id) = find_node(st, arg) else {
        return Err(unknown_node(arg));
    };
    if id == st.cluster.myself {
        return Err(Value::error("ERR Can't replicate myself"));
    }
    if !st.cluster.nodes[&id].is_primary() {
        return Err(Value::error(
            "ERR I can only replicate a master, not a replica.",
        ));
    }
    let me = st.cluster.myself;
    if st.cluster.me().is_primary()
        && (st.cluster.slot_count(&me) > 0 || st.db.dbsize(now_ms()) > 0)
    {
        return Err(Value::error(
            "ERR To set a master the node must be empty and without assigned slots.",
        ));
    }
    let addr = st.cluster.nodes[&id].addr;
    crate::server::replication::replica::become_replica(st, shared, id, addr);
    Ok(Value::ok())
}

fn reset(st: &mut NodeState, args: &[Bytes]) -> Result<Value, Value> {
    let hard = match args.get(2).map(|a| a.to_ascii_lowercase()) {
        None => false,
        Some(m) if m == b"soft" => false,
        Some(m) if m == b"hard" => true,
        Some(_) => return Err(syntax_error()),
    };
    if st.cluster.me().is_primary() && st.db.dbsize(now_ms()) > 0 {
        return Err(Value::error(
            "ERR CLUSTER RESET can't be called with master nodes containing keys",
        ));
    }
    let me = st.cluster.myself;
    let addr = st.cluster.me().addr;
    let mut fresh = super::state::ClusterState::new(me, addr);
    if !hard {
        fresh.current_epoch = st.cluster.current_epoch;
        fresh.me_mut().config_epoch = st.cluster.me().config_epoch;
    }
    st.cluster = fresh;
    st.db.flush();
    st.db.set_replica(false);
    st.repl.link = None;
    Ok(Value::ok())
}

fn setslot(st: &mut NodeState, args: &[Bytes]) -> Result<Value, Value> {
    if !st.cluster.me().is_primary() {
        return Err(Value::error("ERR Please use SETSLOT only with masters."));
    }
    let slot = parse_slot(&args[2])?;
    let action = args[3].to_ascii_lowercase();
    let invalid = || {
        Value::error("ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP")
    };
    let me = st.cluster.myself;
    let owner = st.cluster.slots[usize::from(slot)];
    let not_master = || Value::error("ERR Target node is not a master");
    let node_arg = |st: &NodeState| -> Result<NodeId, Value> {
        let arg = args.get(4).ok_or_else(invalid)?;
        let id = find_node(st, arg).ok_or_else(|| {
            Value::error(format!(
                "ERR I don't know about node {}",
                String::from_utf8_lossy(arg)
            ))
        })?;
        if st.cluster.nodes[&id].is_primary() {
            Ok(id)
        } else {
            Err(not_master())
        }
    };
    match action.as_slice() {
        b"migrating" if args.len() == 5 => {
            if owner != Some(me) {
                return Err(Value::error(format!(
                    "ERR I'm not the owner of hash slot {slot}"
                )));
            }
            let to = node_arg(st)?;
            st.cluster.migrating.insert(slot, to);
        }
        b"importing" if args.len() == 5 => {
            if owner == Some(me) {
                return Err(Value::error(format!(
                    "ERR I'm already the owner of hash slot {slot}"
                )));
            }
            let from = node_arg(st)?;
            st.cluster.importing.insert(slot, from);
        }
        b"stable" if args.len() == 4 => {
            st.cluster.migrating.remove(&slot);
            st.cluster.importing.remove(&slot);
        }
        b"node" if args.len() == 5 => {
            let Some(to) = find_node(st, &args[4]) else {
                return Err(unknown_node(&args[4]));
            };
            if !st.cluster.nodes[&to].is_primary() {
                return Err(not_master());
            }
            let keys = st.db.count_keys_in_slot(slot);
            if owner == Some(me) && to != me && keys > 0 {
                return Err(Value::error(format!(
                    "ERR Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot."
                )));
            }
            // An open migration with nothing left to move is over.
            if keys == 0 {
                st.cluster.migrating.remove(&slot);
            }
            st.cluster.assign_slot(slot, Some(to));
            // Taking a slot we imported: a new epoch, so every node adopts our claim.
            if to == me && st.cluster.importing.remove(&slot).is_some() {
                st.cluster.bump_epoch();
            }
        }
        _ => return Err(invalid()),
    }
    st.cluster.update_state();
    Ok(Value::ok())
}

/// `CLUSTER <sub>` (registry entry).
pub(crate) fn cluster_command(c: &mut Call<'_, '_>) -> Outcome {
    if c.shared.config.standalone {
        return Outcome::Reply(crate::resp::Value::error(
            "ERR This instance has cluster support disabled",
        ));
    }
    Outcome::Reply(run(c.conn, &c.spec.name[8..], c.args, c.locked, c.shared))
}
