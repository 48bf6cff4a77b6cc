//! How a Sentinel shows its state, byte for byte as Redis 7.0's: the field/value maps of
//! `SENTINEL MASTER(S)/REPLICAS/SENTINELS` (flat arrays under RESP2), the `# Sentinel` INFO
//! section, `ROLE`, and the quorum check.

use crate::resp::Value;

use super::state::{flag, now_ms, Instance, Kind, Master, State};

fn pair(out: &mut Vec<(Value, Value)>, k: &str, v: Value) {
    out.push((Value::bulk(k), v));
}

fn num(n: i64) -> Value {
    Value::bulk(n.to_string())
}

fn flags_text(i: &Instance) -> String {
    let mut f: Vec<&str> = Vec::new();
    let pairs: [(bool, &str); 13] = [
        (i.has(flag::S_DOWN), "s_down"),
        (i.has(flag::O_DOWN), "o_down"),
        (i.kind == Kind::Master, "master"),
        (i.kind == Kind::Replica, "slave"),
        (i.kind == Kind::Sentinel, "sentinel"),
        (i.link.disconnected, "disconnected"),
        (i.has(flag::MASTER_DOWN), "master_down"),
        (i.has(flag::FAILOVER_IN_PROGRESS), "failover_in_progress"),
        (i.has(flag::PROMOTED), "promoted"),
        (i.has(flag::RECONF_SENT), "reconf_sent"),
        (i.has(flag::RECONF_INPROG), "reconf_inprog"),
        (i.has(flag::RECONF_DONE), "reconf_done"),
        (i.has(flag::FORCE_FAILOVER), "force_failover"),
    ];
    for (on, name) in pairs {
        if on {
            f.push(name);
        }
    }
    f.join(",")
}

/// One instance as `addReplySentinelRedisInstance` shows it; `master` is the group it
/// belongs to (for the master itself, the master).
pub(crate) fn instance(i: &Instance, master: &Master) -> Value {
    let now = now_ms();
    let mut out = Vec::with_capacity(24);
    pair(&mut out, "name", Value::bulk(&i.name));
    pair(&mut out, "ip", Value::bulk(&i.ip));
    pair(&mut out, "port", num(i64::from(i.port)));
    pair(
        &mut out,
        "runid",
        Value::bulk(i.runid.as_deref().unwrap_or("")),
    );
    pair(&mut out, "flags", Value::bulk(flags_text(i)));
    pair(
        &mut out,
        "link-pending-commands",
        num(i.link.pending_commands),
    );
    pair(&mut out, "link-refcount", num(1));
    if i.has(flag::FAILOVER_IN_PROGRESS) {
        pair(
            &mut out,
            "failover-state",
            Value::bulk(master.failover_state.word()),
        );
    }
    let l = &i.link;
    let ping_sent = if l.act_ping_time != 0 {
        now - l.act_ping_time
    } else {
        0
    };
    pair(&mut out, "last-ping-sent", num(ping_sent));
    pair(&mut out, "last-ok-ping-reply", num(now - l.last_avail_time));
    pair(&mut out, "last-ping-reply", num(now - l.last_pong_time));
    if i.has(flag::S_DOWN) {
        pair(&mut out, "s-down-time", num(now - i.s_down_since));
    }
    if i.has(flag::O_DOWN) {
        pair(&mut out, "o-down-time", num(now - i.o_down_since));
    }
    pair(&mut out, "down-after-milliseconds", num(i.down_after));
    if i.kind != Kind::Sentinel {
        let refresh = if i.info_refresh != 0 {
            now - i.info_refresh
        } else {
            0
        };
        pair(&mut out, "info-refresh", num(refresh));
        let role = if i.role_reported == Kind::Master {
            "master"
        } else {
            "slave"
        };
        pair(&mut out, "role-reported", Value::bulk(role));
        pair(
            &mut out,
            "role-reported-time",
            num(now - i.role_reported_time),
        );
    }
    match i.kind {
        Kind::Master => {
            pair(&mut out, "config-epoch", num(master.config_epoch as i64));
            pair(&mut out, "num-slaves", num(master.replicas.len() as i64));
            pair(
                &mut out,
                "num-other-sentinels",
                num(master.sentinels.len() as i64),
            );
            pair(&mut out, "quorum", num(i64::from(master.quorum)));
            pair(&mut out, "failover-timeout", num(master.failover_timeout));
            pair(&mut out, "parallel-syncs", num(master.parallel_syncs));
        }
        Kind::Replica => {
            pair(
                &mut out,
                "master-link-down-time",
                num(i.master_link_down_time),
            );
            let status = if i.master_link_up { "ok" } else { "err" };
            pair(&mut out, "master-link-status", Value::bulk(status));
            let host = i.slave_master_host.as_deref().unwrap_or("?");
            pair(&mut out, "master-host", Value::bulk(host));
            pair(&mut out, "master-port", num(i64::from(i.slave_master_port)));
            pair(&mut out, "slave-priority", num(i.priority));
            pair(&mut out, "slave-repl-offset", num(i.repl_offset as i64));
            pair(&mut out, "replica-announced", num(i.replica_announced));
        }
        Kind::Sentinel => {
            pair(&mut out, "last-hello-message", num(now - i.last_hello_time));
            pair(
                &mut out,
                "voted-leader",
                Value::bulk(i.leader.as_deref().unwrap_or("?")),
            );
            pair(&mut out, "voted-leader-epoch", num(i.leader_epoch as i64));
        }
    }
    Value::Map(out)
}

/// `SENTINEL REPLICAS`: announced replicas only.
pub(crate) fn replicas(m: &Master) -> Value {
    Value::Array(
        m.replicas
            .iter()
            .filter(|r| r.replica_announced != 0)
            .map(|r| instance(r, m))
            .collect(),
    )
}

/// `SENTINEL SENTINELS`.
pub(crate) fn sentinels(m: &Master) -> Value {
    Value::Array(m.sentinels.iter().map(|s| instance(s, m)).collect())
}

/// `SENTINEL MASTERS`.
pub(crate) fn masters(st: &State) -> Value {
    Value::Array(st.masters.iter().map(|m| instance(&m.inst, m)).collect())
}

/// The `# Sentinel` INFO section.
pub(crate) fn info_section(st: &State) -> String {
    let mut s = format!(
        "# Sentinel\r\nsentinel_masters:{}\r\nsentinel_tilt:0\r\nsentinel_tilt_since_seconds:-1\r\n\
         sentinel_running_scripts:0\r\nsentinel_scripts_queue_length:0\r\n\
         sentinel_simulate_failure_flags:0\r\n",
        st.masters.len()
    );
    for (n, m) in st.masters.iter().enumerate() {
        let status = if m.inst.has(flag::O_DOWN) {
            "odown"
        } else if m.inst.has(flag::S_DOWN) {
            "sdown"
        } else {
            "ok"
        };
        s.push_str(&format!(
            "master{n}:name={},status={status},address={}:{},slaves={},sentinels={}\r\n",
            m.inst.name,
            m.inst.ip,
            m.inst.port,
            m.replicas.len(),
            m.sentinels.len() + 1
        ));
    }
    s
}

/// `ROLE` on a Sentinel: `sentinel` and the monitored names.
pub(crate) fn role(st: &State) -> Value {
    Value::Array(vec![
        Value::bulk("sentinel"),
        Value::Array(
            st.masters
                .iter()
                .map(|m| Value::bulk(&m.inst.name))
                .collect(),
        ),
    ])
}

/// `SENTINEL CKQUORUM`: usable Sentinels (this one and the others not down) against the
/// quorum and the majority (`sentinelIsQuorumReachable`).
pub(crate) fn ckquorum(m: &Master) -> Value {
    let usable = 1 + m
        .sentinels
        .iter()
        .filter(|s| !s.has(flag::S_DOWN | flag::O_DOWN))
        .count();
    let voters = m.sentinels.len() + 1;
    let no_quorum = usable < m.quorum as usize;
    let no_auth = usable < voters / 2 + 1;
    if !no_quorum && !no_auth {
        return Value::SimpleString(
            format!(
                "OK {usable} usable Sentinels. Quorum and failover authorization can be reached"
            )
            .into(),
        );
    }
    let mut e = format!("NOQUORUM {usable} usable Sentinels. ");
    if no_quorum {
        e.push_str("Not enough available Sentinels to reach the specified quorum for this master");
    }
    if no_auth {
        if no_quorum {
            e.push_str(". ");
        }
        e.push_str("Not enough available Sentinels to reach the majority and authorize a failover");
    }
    Value::error(e)
}
