//! The acting half of sentinel.c: epochs and leader election (one vote per epoch, a
//! majority of the known Sentinels and at least `quorum`), replica selection, the failover
//! state machine (`REPLICAOF NO ONE` on the chosen replica, wait for its role, re-point the
//! others `parallel-syncs` at a time, `+failover-end`, `+switch-master`), and the resets
//! that follow a switch.

use rand::Rng;

use super::ops::{add_replica, force_hello, send_slaveof};
use super::state::{flag, now_ms, FailoverState, Instance, State};

/// Random delay added to failover start times so Sentinels desynchronise.
const MAX_DESYNC: i64 = 1000;

fn desync() -> i64 {
    rand::thread_rng().gen_range(0..MAX_DESYNC)
}

/// Vote for `req_runid` in `req_epoch` unless we already voted in that epoch or a later one
/// (`sentinelVoteLeader`); returns our vote and its epoch.
pub(crate) fn vote_leader(
    st: &mut State,
    mi: usize,
    req_epoch: u64,
    req_runid: &str,
) -> (Option<String>, u64) {
    let events = st.events.clone();
    if req_epoch > st.current_epoch {
        st.current_epoch = req_epoch;
        events.emit("+new-epoch", st.current_epoch.to_string());
    }
    let current = st.current_epoch;
    let myid = st.myid.clone();
    let m = &mut st.masters[mi];
    if m.inst.leader_epoch < req_epoch && current <= req_epoch {
        m.inst.leader = Some(req_runid.to_string());
        m.inst.leader_epoch = current;
        events.emit("+vote-for-leader", format!("{req_runid} {current}"));
        if !req_runid.eq_ignore_ascii_case(&myid) {
            m.failover_start_time = now_ms() + desync();
        }
    }
    (m.inst.leader.clone(), m.inst.leader_epoch)
}

/// The leader for `epoch`, if one has a majority of the known Sentinels and at least
/// `quorum` votes (`sentinelGetLeader`); casts our own vote on the way.
fn get_leader(st: &mut State, mi: usize, epoch: u64) -> Option<String> {
    let current = st.current_epoch;
    let m = &st.masters[mi];
    let voters = m.sentinels.len() + 1;
    let mut counts: Vec<(String, usize)> = Vec::new();
    let incr = |counts: &mut Vec<(String, usize)>, id: &str| -> usize {
        if let Some(e) = counts.iter_mut().find(|(k, _)| k == id) {
            e.1 += 1;
            e.1
        } else {
            counts.push((id.to_string(), 1));
            1
        }
    };
    for s in &m.sentinels {
        if let Some(l) = &s.leader {
            if s.leader_epoch == current {
                incr(&mut counts, l);
            }
        }
    }
    let mut winner: Option<String> = None;
    let mut max_votes = 0;
    for (k, v) in &counts {
        if *v > max_votes {
            max_votes = *v;
            winner = Some(k.clone());
        }
    }
    let quorum = m.quorum as usize;
    let candidate = winner.clone().unwrap_or_else(|| st.myid.clone());
    let (myvote, leader_epoch) = vote_leader(st, mi, epoch, &candidate);
    if let Some(v) = myvote {
        if leader_epoch == epoch {
            let votes = incr(&mut counts, &v);
            if votes > max_votes {
                max_votes = votes;
                winner = Some(v);
            }
        }
    }
    let needed = voters / 2 + 1;
    winner.filter(|_| max_votes >= needed && max_votes >= quorum)
}

/// Start a failover if the master is ODOWN, none runs, and none started recently.
pub(crate) fn start_if_needed(st: &mut State, mi: usize) -> bool {
    let m = &st.masters[mi];
    if !m.inst.has(flag::O_DOWN) || m.inst.has(flag::FAILOVER_IN_PROGRESS) {
        return false;
    }
    if now_ms() - m.failover_start_time < m.failover_timeout * 2 {
        return false;
    }
    start(st, mi);
    true
}

/// `sentinelStartFailover`: a new epoch, and wait to be elected.
pub(crate) fn start(st: &mut State, mi: usize) {
    let events = st.events.clone();
    st.current_epoch += 1;
    let epoch = st.current_epoch;
    let m = &mut st.masters[mi];
    m.failover_state = FailoverState::WaitStart;
    m.inst.flags |= flag::FAILOVER_IN_PROGRESS;
    m.failover_epoch = epoch;
    events.emit("+new-epoch", epoch.to_string());
    events.emit("+try-failover", m.describe());
    m.failover_start_time = now_ms() + desync();
    m.failover_state_change_time = now_ms();
}

/// The best replica to promote (`sentinelSelectSlave`): not down, linked, answering, with
/// fresh INFO, not disconnected from the master too long, priority not 0; then lowest
/// priority, highest offset, lowest run id.
pub(crate) fn select_replica(st: &State, mi: usize) -> Option<usize> {
    let now = now_ms();
    let t = &st.timing;
    let m = &st.masters[mi];
    let sdown = m.inst.has(flag::S_DOWN);
    let mut max_down = m.inst.down_after * 10;
    if sdown {
        max_down += now - m.inst.s_down_since;
    }
    let validity = if sdown {
        t.ping_period * 5
    } else {
        t.info_period * 3
    };
    let mut best: Option<usize> = None;
    for (i, r) in m.replicas.iter().enumerate() {
        if r.has(flag::S_DOWN | flag::O_DOWN)
            || r.link.disconnected
            || now - r.link.last_avail_time > t.ping_period * 5
            || r.priority == 0
            || now - r.info_refresh > validity
            || r.master_link_down_time > max_down
        {
            continue;
        }
        let better = match best {
            None => true,
            Some(b) => {
                let b = &m.replicas[b];
                (r.priority, std::cmp::Reverse(r.repl_offset), runid_key(r))
                    < (b.priority, std::cmp::Reverse(b.repl_offset), runid_key(b))
            }
        };
        if better {
            best = Some(i);
        }
    }
    best
}

/// A missing run id sorts after every run id.
fn runid_key(i: &Instance) -> (bool, String) {
    match &i.runid {
        Some(r) => (false, r.to_ascii_lowercase()),
        None => (true, String::new()),
    }
}

/// One step of the failover state machine.
pub(crate) fn state_machine(st: &mut State, mi: usize) {
    if !st.masters[mi].inst.has(flag::FAILOVER_IN_PROGRESS) {
        return;
    }
    match st.masters[mi].failover_state {
        FailoverState::WaitStart => wait_start(st, mi),
        FailoverState::SelectSlave => select_slave(st, mi),
        FailoverState::SendSlaveofNoone => send_noone(st, mi),
        FailoverState::WaitPromotion => {
            let m = &st.masters[mi];
            if now_ms() - m.failover_state_change_time > m.failover_timeout {
                st.events
                    .emit("-failover-abort-slave-timeout", m.describe());
                abort(st, mi);
            }
        }
        FailoverState::ReconfSlaves => reconf_next(st, mi),
        FailoverState::None | FailoverState::UpdateConfig => {}
    }
}

fn wait_start(st: &mut State, mi: usize) {
    let epoch = st.masters[mi].failover_epoch;
    let leader = get_leader(st, mi, epoch);
    let is_leader = leader
        .as_deref()
        .is_some_and(|l| l.eq_ignore_ascii_case(&st.myid));
    let m = &st.masters[mi];
    if !is_leader && !m.inst.has(flag::FORCE_FAILOVER) {
        let timeout = st.timing.election_timeout.min(m.failover_timeout);
        if now_ms() - m.failover_start_time > timeout {
            st.events.emit("-failover-abort-not-elected", m.describe());
            abort(st, mi);
        }
        return;
    }
    let events = st.events.clone();
    let m = &mut st.masters[mi];
    events.emit("+elected-leader", m.describe());
    m.failover_state = FailoverState::SelectSlave;
    m.failover_state_change_time = now_ms();
    events.emit("+failover-state-select-slave", m.describe());
}

fn select_slave(st: &mut State, mi: usize) {
    let events = st.events.clone();
    let chosen = select_replica(st, mi);
    let m = &mut st.masters[mi];
    match chosen {
        None => {
            events.emit("-failover-abort-no-good-slave", m.describe());
            abort(st, mi);
        }
        Some(ri) => {
            let desc = m.describe_member(&m.replicas[ri]);
            events.emit("+selected-slave", desc.clone());
            m.replicas[ri].flags |= flag::PROMOTED;
            m.promoted = Some(m.replicas[ri].id);
            m.failover_state = FailoverState::SendSlaveofNoone;
            m.failover_state_change_time = now_ms();
            events.emit("+failover-state-send-slaveof-noone", desc);
        }
    }
}

fn send_noone(st: &mut State, mi: usize) {
    let events = st.events.clone();
    let m = &mut st.masters[mi];
    let Some(ri) = m.replicas.iter().position(|r| Some(r.id) == m.promoted) else {
        abort(st, mi);
        return;
    };
    if m.replicas[ri].link.disconnected {
        if now_ms() - m.failover_state_change_time > m.failover_timeout {
            events.emit("-failover-abort-slave-timeout", m.describe());
            abort(st, mi);
        }
        return;
    }
    if !send_slaveof(&mut m.replicas[ri], None) {
        return;
    }
    events.emit(
        "+failover-state-wait-promotion",
        m.describe_member(&m.replicas[ri]),
    );
    m.failover_state = FailoverState::WaitPromotion;
    m.failover_state_change_time = now_ms();
}

/// Re-point the replicas that are not yet, `parallel-syncs` at a time.
fn reconf_next(st: &mut State, mi: usize) {
    let events = st.events.clone();
    let reconf_timeout = st.timing.slave_reconf_timeout;
    let now = now_ms();
    let m = &mut st.masters[mi];
    let Some((pip, pport)) = m.promoted_replica().map(|p| (p.ip.clone(), p.port)) else {
        return;
    };
    let mut in_progress = m
        .replicas
        .iter()
        .filter(|r| r.has(flag::RECONF_SENT | flag::RECONF_INPROG))
        .count() as i64;
    for ri in 0..m.replicas.len() {
        if in_progress >= m.parallel_syncs {
            break;
        }
        let desc = m.describe_member(&m.replicas[ri]);
        let r = &mut m.replicas[ri];
        if r.has(flag::PROMOTED | flag::RECONF_DONE) {
            continue;
        }
        if r.has(flag::RECONF_SENT) && now - r.reconf_sent_time > reconf_timeout {
            events.emit("-slave-reconf-sent-timeout", desc.clone());
            r.flags &= !flag::RECONF_SENT;
            r.flags |= flag::RECONF_DONE;
        }
        if r.has(flag::RECONF_SENT | flag::RECONF_INPROG) || r.link.disconnected {
            continue;
        }
        if send_slaveof(r, Some((&pip, pport))) {
            r.flags |= flag::RECONF_SENT;
            r.reconf_sent_time = now;
            events.emit("+slave-reconf-sent", desc);
            in_progress += 1;
        }
    }
    detect_end(st, mi);
}

/// The failover ends once every reachable replica is re-pointed, or on timeout.
fn detect_end(st: &mut State, mi: usize) {
    let events = st.events.clone();
    let m = &mut st.masters[mi];
    let elapsed = now_ms() - m.failover_state_change_time;
    let Some(promoted) = m.promoted_replica() else {
        return;
    };
    if promoted.has(flag::S_DOWN) {
        return;
    }
    let (pip, pport) = (promoted.ip.clone(), promoted.port);
    let mut not_reconfigured = m
        .replicas
        .iter()
        .filter(|r| !r.has(flag::PROMOTED | flag::RECONF_DONE) && !r.has(flag::S_DOWN))
        .count();
    let mut timeout = false;
    if elapsed > m.failover_timeout {
        not_reconfigured = 0;
        timeout = true;
        events.emit("+failover-end-for-timeout", m.describe());
    }
    if not_reconfigured == 0 {
        events.emit("+failover-end", m.describe());
        m.failover_state = FailoverState::UpdateConfig;
        m.failover_state_change_time = now_ms();
    }
    if timeout {
        for ri in 0..m.replicas.len() {
            let desc = m.describe_member(&m.replicas[ri]);
            let r = &mut m.replicas[ri];
            if r.has(flag::PROMOTED | flag::RECONF_DONE | flag::RECONF_SENT) || r.link.disconnected
            {
                continue;
            }
            if send_slaveof(r, Some((&pip, pport))) {
                events.emit("+slave-reconf-sent-be", desc);
                r.flags |= flag::RECONF_SENT;
            }
        }
    }
}

/// Abort a failover that has not reached the promotion yet.
fn abort(st: &mut State, mi: usize) {
    let m = &mut st.masters[mi];
    m.inst.flags &= !(flag::FAILOVER_IN_PROGRESS | flag::FORCE_FAILOVER);
    m.failover_state = FailoverState::None;
    m.failover_state_change_time = now_ms();
    if let Some(id) = m.promoted.take() {
        if let Some(r) = m.replicas.iter_mut().find(|r| r.id == id) {
            r.flags &= !flag::PROMOTED;
        }
    }
}

/// The failover is done: monitor the promoted replica as the master (`+switch-master`).
pub(crate) fn switch_to_promoted(st: &mut State, mi: usize) {
    let m = &st.masters[mi];
    let (ip, port) = match m.promoted_replica() {
        Some(p) => (p.ip.clone(), p.port),
        None => (m.inst.ip.clone(), m.inst.port),
    };
    st.events.emit(
        "+switch-master",
        format!("{} {} {} {ip} {port}", m.inst.name, m.inst.ip, m.inst.port),
    );
    reset_and_change_address(st, mi, &ip, port);
}

/// `sentinelResetMaster`: forget replicas (and Sentinels unless `keep_sentinels`), drop
/// links, clear flags and failover state.
pub(crate) fn reset_master(st: &mut State, mi: usize, keep_sentinels: bool) {
    let now = now_ms();
    let m = &mut st.masters[mi];
    m.replicas.clear();
    if !keep_sentinels {
        m.sentinels.clear();
    }
    m.inst.link.close();
    m.inst.flags = 0;
    m.inst.leader = None;
    m.failover_state = FailoverState::None;
    m.failover_state_change_time = 0;
    m.failover_start_time = 0;
    m.promoted = None;
    m.inst.runid = None;
    m.inst.slave_master_host = None;
    m.inst.link.act_ping_time = now;
    m.inst.link.last_ping_time = 0;
    m.inst.link.last_avail_time = now;
    m.inst.link.last_pong_time = now;
    m.inst.role_reported_time = now;
    m.inst.role_reported = super::state::Kind::Master;
    m.inst.info_refresh = 0;
}

/// Reset the master and move it to `ip:port`, keeping its replicas (less the new master)
/// and adding the old master as a replica, so it is converted when it returns.
pub(crate) fn reset_and_change_address(st: &mut State, mi: usize, ip: &str, port: u16) {
    let m = &st.masters[mi];
    let mut keep: Vec<(String, u16)> = m
        .replicas
        .iter()
        .filter(|r| !r.at(ip, port))
        .map(|r| (r.ip.clone(), r.port))
        .collect();
    if !m.inst.at(ip, port) {
        keep.push((m.inst.ip.clone(), m.inst.port));
    }
    reset_master(st, mi, true);
    let m = &mut st.masters[mi];
    m.inst.ip = ip.to_string();
    m.inst.port = port;
    m.inst.s_down_since = 0;
    m.inst.o_down_since = 0;
    for (rip, rport) in keep {
        add_replica(st, mi, &rip, rport);
    }
    force_hello(st, mi);
}
