//! Small operations on a Sentinel's state that every part uses: finding an instance,
//! describing it for events, PING, the REPLICAOF transaction, forcing hellos, adding a
//! replica. Only `state` below it, so the parts above never import each other in a circle.

use bytes::Bytes;

use super::state::{now_ms, Instance, Kind, ReplyTo, State};

/// Where an instance sits in the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    Master(usize),
    Replica(usize, usize),
    Sentinel(usize, usize),
}

/// Find the instance with `id`.
pub(crate) fn locate(st: &State, id: u64) -> Option<Slot> {
    for (mi, m) in st.masters.iter().enumerate() {
        if m.inst.id == id {
            return Some(Slot::Master(mi));
        }
        if let Some(ri) = m.replicas.iter().position(|r| r.id == id) {
            return Some(Slot::Replica(mi, ri));
        }
        if let Some(si) = m.sentinels.iter().position(|s| s.id == id) {
            return Some(Slot::Sentinel(mi, si));
        }
    }
    None
}

/// The instance at `slot`.
pub(crate) fn inst_mut(st: &mut State, slot: Slot) -> &mut Instance {
    match slot {
        Slot::Master(mi) => &mut st.masters[mi].inst,
        Slot::Replica(mi, ri) => &mut st.masters[mi].replicas[ri],
        Slot::Sentinel(mi, si) => &mut st.masters[mi].sentinels[si],
    }
}

/// `%@` of the instance at `slot`.
pub(crate) fn describe(st: &State, slot: Slot) -> String {
    match slot {
        Slot::Master(mi) => st.masters[mi].describe(),
        Slot::Replica(mi, ri) => st.masters[mi].describe_member(&st.masters[mi].replicas[ri]),
        Slot::Sentinel(mi, si) => st.masters[mi].describe_member(&st.masters[mi].sentinels[si]),
    }
}

/// PING an instance, remembering when the oldest unanswered one left.
pub(crate) fn send_ping(inst: &mut Instance) -> bool {
    if inst
        .link
        .send(vec![Bytes::from_static(b"PING")], ReplyTo::Ping)
    {
        let now = now_ms();
        inst.link.last_ping_time = now;
        if inst.link.act_ping_time == 0 {
            inst.link.act_ping_time = now;
        }
        true
    } else {
        false
    }
}

/// Send the REPLICAOF transaction Sentinel uses: `MULTI`, `SLAVEOF host port` (or `NO
/// ONE`), `CONFIG REWRITE`, `CLIENT KILL TYPE normal`, `CLIENT KILL TYPE pubsub`, `EXEC`.
/// Replies are discarded: the effect is observed in the next INFO.
pub(crate) fn send_slaveof(inst: &mut Instance, to: Option<(&str, u16)>) -> bool {
    if inst.link.disconnected {
        return false;
    }
    let (host, port) = match to {
        Some((h, p)) => (h.to_string(), p.to_string()),
        None => ("NO".to_string(), "ONE".to_string()),
    };
    let cmds: [Vec<&str>; 6] = [
        vec!["MULTI"],
        vec!["SLAVEOF", &host, &port],
        vec!["CONFIG", "REWRITE"],
        vec!["CLIENT", "KILL", "TYPE", "normal"],
        vec!["CLIENT", "KILL", "TYPE", "pubsub"],
        vec!["EXEC"],
    ];
    for c in cmds {
        let args = c.iter().map(|a| Bytes::from(a.to_string())).collect();
        if !inst.link.send(args, ReplyTo::Discard) {
            return false;
        }
    }
    true
}

/// Make the next hello go out at once (after a configuration change).
pub(crate) fn force_hello(st: &mut State, mi: usize) {
    let period = st.timing.publish_period + 1;
    let m = &mut st.masters[mi];
    m.inst.last_pub_time -= period;
    for i in m.replicas.iter_mut().chain(m.sentinels.iter_mut()) {
        i.last_pub_time -= period;
    }
}

/// Add a replica discovered from the master's INFO, with the `+slave` event.
pub(crate) fn add_replica(st: &mut State, mi: usize, ip: &str, port: u16) {
    let id = st.fresh_id();
    let events = st.events.clone();
    let m = &mut st.masters[mi];
    let r = Instance::new(
        id,
        Kind::Replica,
        format!("{ip}:{port}"),
        ip,
        port,
        m.inst.down_after,
    );
    events.emit("+slave", m.describe_member(&r));
    m.replicas.push(r);
}
