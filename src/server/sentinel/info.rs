//! What a Sentinel learns from replies and messages: a node's INFO (replicas, role, offsets,
//! priority, link state, and the reactions sentinel.c has to them: promotion acknowledged,
//! a returning old master converted to a replica, replicas re-pointed) and the hello
//! messages of other Sentinels (discovery, epochs, newer master addresses).

use super::failover;
use super::ops::{add_replica, describe, force_hello, inst_mut, send_slaveof, Slot};
use super::state::{flag, now_ms, FailoverState, Instance, Kind, State};

/// The master is a master by our config and its own word, not down, and recently seen
/// (`sentinelMasterLooksSane`).
pub(crate) fn master_looks_sane(st: &State, mi: usize) -> bool {
    let m = &st.masters[mi].inst;
    m.role_reported == Kind::Master
        && !m.has(flag::S_DOWN | flag::O_DOWN)
        && now_ms() - m.info_refresh < st.timing.info_period * 2
}

/// Parse `slaveN:ip=...,port=...` (or the old `slaveN:ip,port,state`).
fn replica_line(l: &str) -> Option<(String, u16)> {
    let rest = l.split_once(':')?.1;
    if let Some(ip_at) = rest.find("ip=") {
        let ip = rest[ip_at + 3..].split(',').next()?;
        let port_at = rest.find("port=")?;
        let port = rest[port_at + 5..].split(',').next()?.parse().ok()?;
        Some((ip.to_string(), port))
    } else {
        let mut parts = rest.split(',');
        let ip = parts.next()?;
        let port = parts.next()?.parse().ok()?;
        parts.next()?;
        Some((ip.to_string(), port))
    }
}

/// Apply an INFO reply of a master or replica (`sentinelRefreshInstanceInfo`).
pub(crate) fn info_reply(st: &mut State, slot: Slot, text: &str) {
    let events = st.events.clone();
    let now = now_ms();
    let mi = match slot {
        Slot::Master(mi) | Slot::Replica(mi, _) => mi,
        Slot::Sentinel(..) => return,
    };
    let is_master_slot = matches!(slot, Slot::Master(_));
    let mut role: Option<Kind> = None;
    let mut found = Vec::new();
    let mut rebooted = false;
    {
        let inst = inst_mut(st, slot);
        inst.info = Some(text.to_string());
        inst.master_link_down_time = 0;
        for l in text.split("\r\n") {
            if l.len() >= 47 && l.starts_with("run_id:") {
                let id = &l[7..47];
                match &inst.runid {
                    Some(old) if old != id => rebooted = true,
                    Some(_) => {}
                    None => {}
                }
                inst.runid = Some(id.to_string());
            }
            if is_master_slot
                && l.len() >= 7
                && l.starts_with("slave")
                && l.as_bytes()[5].is_ascii_digit()
            {
                if let Some(r) = replica_line(l) {
                    found.push(r);
                }
            }
            if let Some(v) = l.strip_prefix("master_link_down_since_seconds:") {
                inst.master_link_down_time = v.trim().parse::<i64>().unwrap_or(0) * 1000;
            }
            if l.starts_with("role:master") {
                role = Some(Kind::Master);
            } else if l.starts_with("role:slave") {
                role = Some(Kind::Replica);
            }
            if role == Some(Kind::Replica) {
                if let Some(h) = l.strip_prefix("master_host:") {
                    if inst
                        .slave_master_host
                        .as_deref()
                        .map_or(true, |o| !o.eq_ignore_ascii_case(h))
                    {
                        inst.slave_master_host = Some(h.to_string());
                        inst.slave_conf_change_time = now;
                    }
                }
                if let Some(p) = l.strip_prefix("master_port:") {
                    let p = p.trim().parse().unwrap_or(0);
                    if inst.slave_master_port != p {
                        inst.slave_master_port = p;
                        inst.slave_conf_change_time = now;
                    }
                }
                if let Some(s) = l.strip_prefix("master_link_status:") {
                    inst.master_link_up = s.eq_ignore_ascii_case("up");
                }
                if let Some(p) = l.strip_prefix("slave_priority:") {
                    inst.priority = p.trim().parse().unwrap_or(100);
                }
                if let Some(o) = l.strip_prefix("slave_repl_offset:") {
                    inst.repl_offset = o.trim().parse().unwrap_or(0);
                }
                if let Some(a) = l.strip_prefix("replica_announced:") {
                    inst.replica_announced = a.trim().parse().unwrap_or(1);
                }
            }
        }
        inst.info_refresh = now;
    }
    if rebooted {
        events.emit("+reboot", describe(st, slot));
    }
    for (ip, port) in found {
        let m = &st.masters[mi];
        if m.replicas.iter().any(|r| r.at(&ip, port)) {
            continue;
        }
        add_replica(st, mi, &ip, port);
    }
    let Some(role) = role else { return };
    let desc = describe(st, slot);
    {
        let inst = inst_mut(st, slot);
        if role != inst.role_reported {
            inst.role_reported_time = now;
            inst.role_reported = role;
            if role == Kind::Replica {
                inst.slave_conf_change_time = now;
            }
            let configured = if inst.kind == Kind::Master {
                Kind::Master
            } else {
                Kind::Replica
            };
            let kind = if configured == role {
                "+role-change"
            } else {
                "-role-change"
            };
            let word = if role == Kind::Master {
                "master"
            } else {
                "slave"
            };
            events.emit(kind, format!("{desc} new reported role is {word}"));
        }
    }
    let Slot::Replica(_, ri) = slot else { return };
    replica_acts(st, mi, ri, role, &desc);
}

/// The acting half of a replica's INFO.
fn replica_acts(st: &mut State, mi: usize, ri: usize, role: Kind, desc: &str) {
    let events = st.events.clone();
    let now = now_ms();
    let sane = master_looks_sane(st, mi);
    let publish_period = st.timing.publish_period;
    let m = &mut st.masters[mi];
    let (mip, mport) = (m.inst.ip.clone(), m.inst.port);
    let failover_timeout = m.failover_timeout;
    if role == Kind::Master {
        let r = &m.replicas[ri];
        if r.has(flag::PROMOTED)
            && m.inst.has(flag::FAILOVER_IN_PROGRESS)
            && m.failover_state == FailoverState::WaitPromotion
        {
            m.config_epoch = m.failover_epoch;
            m.failover_state = FailoverState::ReconfSlaves;
            m.failover_state_change_time = now;
            events.emit("+promoted-slave", desc.to_string());
            events.emit("+failover-state-reconf-slaves", m.describe());
            force_hello(st, mi);
        } else {
            let wait = publish_period * 4;
            if !r.has(flag::PROMOTED)
                && sane
                && r.no_down_for(wait)
                && now - r.role_reported_time > wait
                && send_slaveof(&mut m.replicas[ri], Some((&mip, mport)))
            {
                events.emit("+convert-to-slave", desc.to_string());
            }
        }
        return;
    }
    let r = &m.replicas[ri];
    let host_differs = r
        .slave_master_host
        .as_deref()
        .map_or(true, |h| !h.eq_ignore_ascii_case(&mip));
    if (r.slave_master_port != mport || host_differs)
        && sane
        && r.no_down_for(failover_timeout)
        && now - r.slave_conf_change_time > failover_timeout
        && send_slaveof(&mut m.replicas[ri], Some((&mip, mport)))
    {
        events.emit("+fix-slave-config", desc.to_string());
    }
    let promoted = m.promoted_replica().map(|p| (p.ip.clone(), p.port));
    let r = &mut m.replicas[ri];
    if r.has(flag::RECONF_SENT) {
        if let (Some((pip, pport)), Some(h)) = (&promoted, &r.slave_master_host) {
            if h.eq_ignore_ascii_case(pip) && r.slave_master_port == *pport {
                r.flags &= !flag::RECONF_SENT;
                r.flags |= flag::RECONF_INPROG;
                events.emit("+slave-reconf-inprog", desc.to_string());
            }
        }
    }
    if r.has(flag::RECONF_INPROG) && r.master_link_up {
        r.flags &= !flag::RECONF_INPROG;
        r.flags |= flag::RECONF_DONE;
        events.emit("+slave-reconf-done", desc.to_string());
    }
}

/// A hello from another Sentinel (`sentinelProcessHelloMessage`): discover it, adopt a
/// newer epoch, and switch to a newer configuration of the master.
pub(crate) fn process_hello(st: &mut State, msg: &str) {
    let t: Vec<&str> = msg.split(',').collect();
    if t.len() != 8 {
        return;
    }
    let Some(mi) = st.masters.iter().position(|m| m.inst.name == t[4]) else {
        return;
    };
    let events = st.events.clone();
    let (Ok(port), Ok(master_port)) = (t[1].parse::<u16>(), t[6].parse::<u16>()) else {
        return;
    };
    let current_epoch: u64 = t[3].parse().unwrap_or(0);
    let master_config_epoch: u64 = t[7].parse().unwrap_or(0);
    let (ip, runid) = (t[0], t[2]);
    let mut si = st.masters[mi]
        .sentinels
        .iter()
        .position(|s| s.at(ip, port) && s.runid.as_deref() == Some(runid));
    if si.is_none() {
        let m = &mut st.masters[mi];
        let before = m.sentinels.len();
        m.sentinels.retain(|s| s.runid.as_deref() != Some(runid));
        let removed = before != m.sentinels.len();
        if removed {
            events.emit(
                "+sentinel-address-switch",
                format!("{} ip {ip} port {port} for {runid}", m.describe()),
            );
        } else if let Some(other) = m.sentinels.iter().find(|s| s.at(ip, port)) {
            events.emit("+sentinel-invalid-addr", m.describe_member(other));
            let obsolete = other.runid.clone();
            for m in st.masters.iter_mut() {
                m.sentinels.retain(|s| s.runid != obsolete);
            }
        }
        let id = st.fresh_id();
        let m = &mut st.masters[mi];
        let mut s = Instance::new(
            id,
            Kind::Sentinel,
            runid.to_string(),
            ip,
            port,
            m.inst.down_after,
        );
        s.runid = Some(runid.to_string());
        if !removed {
            events.emit("+sentinel", m.describe_member(&s));
        }
        m.sentinels.push(s);
        si = Some(m.sentinels.len() - 1);
    }
    if current_epoch > st.current_epoch {
        st.current_epoch = current_epoch;
        events.emit("+new-epoch", current_epoch.to_string());
    }
    let Some(si) = si else { return };
    let m = &mut st.masters[mi];
    if m.config_epoch < master_config_epoch {
        m.config_epoch = master_config_epoch;
        if master_port != m.inst.port || !m.inst.ip.eq_ignore_ascii_case(t[5]) {
            events.emit("+config-update-from", m.describe_member(&m.sentinels[si]));
            events.emit(
                "+switch-master",
                format!(
                    "{} {} {} {} {master_port}",
                    m.inst.name, m.inst.ip, m.inst.port, t[5]
                ),
            );
            failover::reset_and_change_address(st, mi, t[5], master_port);
        }
    }
    if let Some(s) = st.masters[mi].sentinels.get_mut(si) {
        s.last_hello_time = now_ms();
    }
}

/// A PING reply: PONG, LOADING and MASTERDOWN count as the instance being available.
pub(crate) fn ping_reply(inst: &mut Instance, v: &crate::resp::Value) {
    use crate::resp::Value;
    let text: &[u8] = match v {
        Value::SimpleString(s) | Value::Error(s) => s,
        _ => b"",
    };
    if text.starts_with(b"PONG") || text.starts_with(b"LOADING") || text.starts_with(b"MASTERDOWN")
    {
        inst.link.last_avail_time = now_ms();
        inst.link.act_ping_time = 0;
    }
    inst.link.last_pong_time = now_ms();
}

/// The reply to IS-MASTER-DOWN-BY-ADDR: `[down, leader runid or *, leader epoch]`.
pub(crate) fn is_master_down_reply(s: &mut Instance, v: &crate::resp::Value) {
    use crate::resp::Value;
    let Value::Array(parts) = v else { return };
    let [Value::Integer(down), Value::BulkString(leader), Value::Integer(epoch)] = &parts[..]
    else {
        return;
    };
    s.last_master_down_reply_time = now_ms();
    if *down == 1 {
        s.flags |= flag::MASTER_DOWN;
    } else {
        s.flags &= !flag::MASTER_DOWN;
    }
    if &leader[..] != b"*" {
        s.leader = Some(String::from_utf8_lossy(leader).into_owned());
        s.leader_epoch = (*epoch).max(0) as u64;
    }
}
