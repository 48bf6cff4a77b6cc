//! A standalone node's replication commands and reports, as Redis 7.0: REPLICAOF/SLAVEOF
//! (attach to a primary by address, or `NO ONE`: keep the data and start a new history that
//! remembers the old one, Redis' `shiftReplicationId`), ROLE, and `INFO replication`.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

use crate::resp::Value;

use super::replica;
use crate::server::args::parse_i64;
use crate::server::call::{Call, Outcome};
use crate::server::cluster::directory;
use crate::server::cluster::state::NodeId;
use crate::server::node::{NodeShared, NodeState};

/// The id Redis shows for "no second history".
const NO_REPLID: &str = "0000000000000000000000000000000000000000";

/// REPLICAOF host port | REPLICAOF NO ONE (and SLAVEOF, the same command).
pub(crate) fn replicaof_command(c: &mut Call<'_, '_>) -> Outcome {
    if !c.shared.config.standalone {
        return Outcome::Reply(Value::error("ERR REPLICAOF not allowed in cluster mode."));
    }
    let st = c.locked.get();
    if st.repl.failing_over() {
        return Outcome::Reply(Value::error(
            "ERR REPLICAOF not allowed while failing over.",
        ));
    }
    let (host, port) = (&c.args[1], &c.args[2]);
    if host.eq_ignore_ascii_case(b"no") && port.eq_ignore_ascii_case(b"one") {
        if st.repl.link.is_some() {
            unset_primary(st, c.shared);
            tracing::info!(node = %c.shared.addr, "MASTER MODE enabled (user request)");
        }
        return Outcome::Reply(Value::ok());
    }
    let Some(port) = parse_i64(port).and_then(|p| u16::try_from(p).ok()) else {
        return Outcome::Reply(Value::error("ERR Invalid master port"));
    };
    let host = String::from_utf8_lossy(host).into_owned();
    if st
        .repl
        .link
        .as_ref()
        .is_some_and(|l| l.host.eq_ignore_ascii_case(&host) && l.addr.port() == port)
    {
        return Outcome::Reply(Value::simple("OK Already connected to specified master"));
    }
    set_primary(st, c.shared, &host, port);
    Outcome::Reply(Value::ok())
}

/// The address `host:port` names (an unresolvable host gives an address nothing listens on:
/// the link stays down, as Redis keeps retrying).
fn resolve(host: &str, port: u16) -> SocketAddr {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return SocketAddr::new(ip, port);
    }
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.find(SocketAddr::is_ipv4))
        .unwrap_or_else(|| SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port))
}

/// Replicate `host:port` from now on (a full or partial sync follows). The node's own
/// replicas are dropped: they reconnect and sync again.
pub(crate) fn set_primary(st: &mut NodeState, shared: &NodeShared, host: &str, port: u16) {
    let addr = resolve(host, port);
    let id = directory::lookup(addr).map_or_else(NodeId::random, |n| n.id);
    replica::become_replica(st, shared, id, addr);
    if let Some(link) = st.repl.link.as_mut() {
        link.host = host.to_string();
    }
    shared.repl_wakeup.notify_waiters();
}

/// Stop replicating and serve writes: the data stays, the replication id changes and the
/// old one becomes `master_replid2` (valid up to `second_repl_offset`), so replicas of the
/// old primary may continue here with a partial resync.
pub(crate) fn unset_primary(st: &mut NodeState, shared: &NodeShared) {
    st.cluster.me_mut().replica_of = None;
    st.set_replica_dbs(false);
    if let Some(link) = st.repl.link.take() {
        st.repl.promoted(&link);
    }
    shared.repl_wakeup.notify_waiters();
}

/// ROLE.
pub(crate) fn role(st: &NodeState) -> Value {
    match &st.repl.link {
        Some(link) if !st.cluster.me().is_primary() => Value::Array(vec![
            Value::bulk("slave"),
            Value::bulk(link.host.clone()),
            Value::Integer(i64::from(link.addr.port())),
            Value::bulk(link_state(link)),
            Value::Integer(if link.up || link.offset > 0 {
                link.offset as i64
            } else {
                -1
            }),
        ]),
        _ => Value::Array(vec![
            Value::bulk("master"),
            Value::Integer(st.repl.offset as i64),
            Value::Array(
                st.repl
                    .replicas
                    .iter()
                    .filter(|r| r.online)
                    .map(|r| {
                        Value::Array(vec![
                            Value::bulk(r.ip.to_string()),
                            Value::bulk(r.port.to_string()),
                            Value::bulk(r.ack_offset.to_string()),
                        ])
                    })
                    .collect(),
            ),
        ]),
    }
}

/// ROLE's replica state: Redis' `connect`, `sync` (a full sync's transfer and load),
/// `connected`.
fn link_state(link: &super::ReplicaLink) -> &'static str {
    if link.up {
        "connected"
    } else if link.loading {
        "sync"
    } else {
        "connect"
    }
}

/// The `INFO replication` section, in Redis 7.0's order and wording.
pub(crate) fn info(out: &mut String, st: &NodeState) {
    let repl = &st.repl;
    let replica = repl.link.as_ref().filter(|_| !st.cluster.me().is_primary());
    let _ = write!(
        out,
        "# Replication\r\nrole:{}\r\n",
        if replica.is_some() { "slave" } else { "master" }
    );
    if let Some(link) = replica {
        let offset = if link.up || link.offset > 0 {
            link.offset as i64
        } else {
            1
        };
        let _ = write!(
            out,
            "master_host:{}\r\nmaster_port:{}\r\nmaster_link_status:{}\r\n\
             master_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:{}\r\n\
             slave_read_repl_offset:{offset}\r\nslave_repl_offset:{offset}\r\n",
            link.host,
            link.addr.port(),
            if link.up { "up" } else { "down" },
            if link.up {
                link.last_io.elapsed().as_secs() as i64
            } else {
                -1
            },
            u8::from(link.loading),
        );
        if !link.up {
            let _ = write!(
                out,
                "master_link_down_since_seconds:{}\r\n",
                link.down_since.map_or(-1, |t| t.elapsed().as_secs() as i64)
            );
        }
        let _ = write!(
            out,
            "slave_priority:{}\r\nslave_read_only:{}\r\nreplica_announced:{}\r\n",
            st.setting(&["replica-priority", "slave-priority"], "100"),
            u8::from(st.setting(&["replica-read-only", "slave-read-only"], "yes") == "yes"),
            u8::from(st.setting(&["replica-announced"], "yes") == "yes"),
        );
    }
    let _ = write!(out, "connected_slaves:{}\r\n", repl.replicas.len());
    for (i, r) in repl.replicas.iter().enumerate() {
        let _ = write!(
            out,
            "slave{i}:ip={},port={},state={},offset={},lag={}\r\n",
            r.ip,
            r.port,
            if r.online { "online" } else { "wait_bgsave" },
            r.ack_offset,
            if r.online {
                r.last_ack.elapsed().as_secs()
            } else {
                0
            }
        );
    }
    let (replid, offset) = match replica {
        Some(link) if !link.replid.is_empty() => (link.replid.clone(), link.offset),
        _ => (repl.replid.to_string(), repl.offset),
    };
    let (replid2, second) = match &repl.history2 {
        Some((id, off)) => (id.as_str(), *off as i64),
        None => (NO_REPLID, -1),
    };
    let (active, first, histlen) = repl.backlog_info();
    let _ = write!(
        out,
        "master_failover_state:{}\r\nmaster_replid:{replid}\r\nmaster_replid2:{replid2}\r\n\
         master_repl_offset:{offset}\r\nsecond_repl_offset:{second}\r\n\
         repl_backlog_active:{}\r\nrepl_backlog_size:{}\r\n\
         repl_backlog_first_byte_offset:{first}\r\nrepl_backlog_histlen:{histlen}\r\n",
        repl.failover_state(),
        u8::from(active),
        super::BACKLOG_SIZE,
    );
}
