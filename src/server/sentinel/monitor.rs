//! The monitoring half of sentinel.c: the timer that keeps links up and sends PING (every
//! second), INFO (every 10 s; every second for replicas during a failover) and the hello
//! message (every 2 s); what their replies mean (INFO discovers replicas, their offsets,
//! priority, link state and role changes); SDOWN after `down-after-milliseconds` without a
//! valid PING reply, ODOWN when `quorum` Sentinels agree; hello messages from other
//! Sentinels (discovery, epochs, newer configurations).

use std::sync::Arc;

use bytes::Bytes;

use super::failover;
use super::link::{self, LinkAuth, Target};
use super::ops::{inst_mut, send_ping, Slot};
use super::state::{flag, now_ms, FailoverState, Kind, ReplyTo, State, HELLO_CHANNEL};
use super::Core;

/// At most this many commands wait on one link before periodic ones are skipped.
const MAX_PENDING: i64 = 100;

/// One timer run over every master, its replicas and its Sentinels
/// (`sentinelHandleDictOfRedisInstances`).
pub(crate) fn tick(core: &Arc<Core>) {
    let mut st = core.lock();
    let mut switch = None;
    for mi in 0..st.masters.len() {
        handle(core, &mut st, Slot::Master(mi));
        for ri in 0..st.masters[mi].replicas.len() {
            handle(core, &mut st, Slot::Replica(mi, ri));
        }
        for si in 0..st.masters[mi].sentinels.len() {
            handle(core, &mut st, Slot::Sentinel(mi, si));
        }
        if st.masters[mi].failover_state == FailoverState::UpdateConfig {
            switch = Some(mi);
        }
    }
    if let Some(mi) = switch {
        failover::switch_to_promoted(&mut st, mi);
    }
}

fn handle(core: &Arc<Core>, st: &mut State, slot: Slot) {
    reconnect(core, st, slot);
    send_periodic(st, slot);
    check_sdown(st, slot);
    if let Slot::Master(mi) = slot {
        check_odown(st, mi);
        if failover::start_if_needed(st, mi) {
            ask_other_sentinels(st, mi, true);
        }
        failover::state_machine(st, mi);
        ask_other_sentinels(st, mi, false);
    }
}

/// (Re)open the links of an instance whose tasks ended (`sentinelReconnectInstance`).
fn reconnect(core: &Arc<Core>, st: &mut State, slot: Slot) {
    let short_id: String = st.myid.chars().take(8).collect();
    let (auth, mi) = match slot {
        Slot::Sentinel(mi, _) => (
            LinkAuth {
                user: st.sentinel_user.clone(),
                pass: st.sentinel_pass.clone(),
            },
            mi,
        ),
        Slot::Master(mi) | Slot::Replica(mi, _) => {
            let m = &st.masters[mi];
            (
                LinkAuth {
                    user: m.auth_user.clone(),
                    pass: m.auth_pass.clone(),
                },
                mi,
            )
        }
    };
    let _ = mi;
    let inst = inst_mut(st, slot);
    if inst.port == 0 {
        return;
    }
    let addr = format!("{}:{}", inst.ip, inst.port);
    let dead = |h: &Option<tokio::task::AbortHandle>| h.as_ref().map_or(true, |h| h.is_finished());
    if dead(&inst.link.task) {
        inst.link.tx = None;
        inst.link.disconnected = true;
        inst.link.generation += 1;
        let target = Target {
            id: inst.id,
            generation: inst.link.generation,
            addr: addr.clone(),
            auth: auth.clone(),
            client_name: format!("sentinel-{short_id}-cmd"),
        };
        inst.link.task = Some(link::spawn_cc(core, target));
    }
    if inst.kind != Kind::Sentinel && dead(&inst.link.pubsub) {
        let target = Target {
            id: inst.id,
            generation: inst.link.generation,
            addr,
            auth,
            client_name: format!("sentinel-{short_id}-pubsub"),
        };
        inst.link.pubsub = Some(link::spawn_pubsub(core, target));
    }
}

/// `sentinelSendPeriodicCommands`.
fn send_periodic(st: &mut State, slot: Slot) {
    let now = now_ms();
    let timing = st.timing.clone();
    let (mi, is_replica) = match slot {
        Slot::Master(mi) | Slot::Sentinel(mi, _) => (mi, false),
        Slot::Replica(mi, _) => (mi, true),
    };
    let master_busy = st.masters[mi]
        .inst
        .has(flag::O_DOWN | flag::FAILOVER_IN_PROGRESS);
    let payload = hello_payload(st, mi);
    let inst = inst_mut(st, slot);
    if inst.link.disconnected || inst.link.pending_commands >= MAX_PENDING {
        return;
    }
    let info_period = if is_replica && (master_busy || inst.master_link_down_time != 0) {
        1000
    } else {
        timing.info_period
    };
    let ping_period = inst.down_after.min(timing.ping_period);
    if inst.kind != Kind::Sentinel
        && (inst.info_refresh == 0 || now - inst.info_refresh > info_period)
    {
        inst.link
            .send(vec![Bytes::from_static(b"INFO")], ReplyTo::Info);
    }
    if now - inst.link.last_pong_time > ping_period
        && now - inst.link.last_ping_time > ping_period / 2
    {
        send_ping(inst);
    }
    if now - inst.last_pub_time > timing.publish_period {
        inst.link.send(
            vec![
                Bytes::from_static(b"PUBLISH"),
                Bytes::from_static(HELLO_CHANNEL.as_bytes()),
                Bytes::from(payload),
            ],
            ReplyTo::Publish,
        );
    }
}

/// `ip,port,runid,current_epoch,master_name,master_ip,master_port,master_config_epoch`.
fn hello_payload(st: &State, mi: usize) -> String {
    let m = &st.masters[mi];
    let (mip, mport) = m.current_addr();
    let ip = st.announce_ip.as_deref().unwrap_or("127.0.0.1");
    let port = if st.announce_port != 0 {
        st.announce_port
    } else {
        st.port
    };
    format!(
        "{ip},{port},{},{},{},{mip},{mport},{}",
        st.myid, st.current_epoch, m.inst.name, m.config_epoch
    )
}

/// `sentinelCheckSubjectivelyDown`.
fn check_sdown(st: &mut State, slot: Slot) {
    let now = now_ms();
    let timing = st.timing.clone();
    let events = st.events.clone();
    let mi = match slot {
        Slot::Master(mi) | Slot::Replica(mi, _) | Slot::Sentinel(mi, _) => mi,
    };
    let describe = match slot {
        Slot::Master(mi) => st.masters[mi].describe(),
        Slot::Replica(mi, ri) => st.masters[mi].describe_member(&st.masters[mi].replicas[ri]),
        Slot::Sentinel(mi, si) => st.masters[mi].describe_member(&st.masters[mi].sentinels[si]),
    };
    let _ = mi;
    let inst = inst_mut(st, slot);
    let link = &mut inst.link;
    let elapsed = if link.act_ping_time != 0 {
        now - link.act_ping_time
    } else if link.disconnected {
        now - link.last_avail_time
    } else {
        0
    };
    // A connected link whose PING has been pending for over half the timeout is dropped
    // and reconnected.
    if link.tx.is_some()
        && now - link.cc_conn_time > timing.min_link_reconnect_period
        && link.act_ping_time != 0
        && now - link.act_ping_time > inst.down_after / 2
        && now - link.last_pong_time > inst.down_after / 2
    {
        link.close_cc();
    }
    if link.pubsub.is_some()
        && link.pc_conn_time != 0
        && now - link.pc_conn_time > timing.min_link_reconnect_period
        && now - link.pc_last_activity > timing.publish_period * 3
    {
        if let Some(t) = link.pubsub.take() {
            t.abort();
        }
    }
    let down = elapsed > inst.down_after
        || (inst.kind == Kind::Master
            && inst.role_reported == Kind::Replica
            && now - inst.role_reported_time > inst.down_after + timing.info_period * 2);
    if down {
        if !inst.has(flag::S_DOWN) {
            inst.s_down_since = now;
            inst.flags |= flag::S_DOWN;
            events.emit("+sdown", describe);
        }
    } else if inst.has(flag::S_DOWN) {
        inst.flags &= !flag::S_DOWN;
        events.emit("-sdown", describe);
    }
}

/// `sentinelCheckObjectivelyDown`.
fn check_odown(st: &mut State, mi: usize) {
    let events = st.events.clone();
    let m = &mut st.masters[mi];
    let mut quorum = 0u32;
    let mut odown = false;
    if m.inst.has(flag::S_DOWN) {
        quorum = 1 + m
            .sentinels
            .iter()
            .filter(|s| s.has(flag::MASTER_DOWN))
            .count() as u32;
        odown = quorum >= m.quorum;
    }
    if odown {
        if !m.inst.has(flag::O_DOWN) {
            m.inst.flags |= flag::O_DOWN;
            m.inst.o_down_since = now_ms();
            events.emit(
                "+odown",
                format!("{} #quorum {}/{}", m.describe(), quorum, m.quorum),
            );
        }
    } else if m.inst.has(flag::O_DOWN) {
        m.inst.flags &= !flag::O_DOWN;
        events.emit("-odown", m.describe());
    }
}

/// Ask the other Sentinels whether they see the master down, and (during a failover) for
/// their vote (`sentinelAskMasterStateToOtherSentinels`).
pub(crate) fn ask_other_sentinels(st: &mut State, mi: usize, forced: bool) {
    let now = now_ms();
    let ask_period = st.timing.ask_period;
    let epoch = st.current_epoch.to_string();
    let myid = st.myid.clone();
    let m = &mut st.masters[mi];
    let sdown = m.inst.has(flag::S_DOWN);
    let runid = if m.failover_state > FailoverState::None {
        myid
    } else {
        "*".to_string()
    };
    let (ip, port) = (m.inst.ip.clone(), m.inst.port.to_string());
    for s in m.sentinels.iter_mut() {
        if now - s.last_master_down_reply_time > ask_period * 5 {
            s.flags &= !flag::MASTER_DOWN;
            s.leader = None;
        }
        if !sdown || s.link.disconnected {
            continue;
        }
        if !forced && now - s.last_master_down_reply_time < ask_period {
            continue;
        }
        let args: Vec<Bytes> = [
            "SENTINEL",
            "is-master-down-by-addr",
            &ip,
            &port,
            &epoch,
            &runid,
        ]
        .iter()
        .map(|a| Bytes::from(a.to_string()))
        .collect();
        s.link.send(args, ReplyTo::IsMasterDown);
    }
}
