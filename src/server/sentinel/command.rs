//! `SENTINEL <subcommand>` with Redis 7.0's arities, replies and error wording.

use bytes::Bytes;

use crate::resp::Value;

use super::failover;
use super::reply;
use super::state::{flag, State};
use crate::server::cmd_config::glob_match;

/// Subcommands and their arity (from Redis 7.0's command table; negative: at least).
const ARITY: &[(&str, i64)] = &[
    ("ckquorum", 3),
    ("config", -3),
    ("debug", -2),
    ("failover", 3),
    ("flushconfig", 2),
    ("get-master-addr-by-name", 3),
    ("help", 2),
    ("info-cache", -3),
    ("is-master-down-by-addr", 6),
    ("master", 3),
    ("masters", 2),
    ("monitor", 6),
    ("myid", 2),
    ("pending-scripts", 2),
    ("remove", 3),
    ("replicas", 3),
    ("reset", 3),
    ("sentinels", 3),
    ("set", -5),
    ("simulate-failure", -3),
    ("slaves", 3),
];

const HELP: &[&str] = &[
    "SENTINEL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CKQUORUM <master-name>",
    "    Check if the current Sentinel configuration is able to reach the quorum",
    "    needed to failover a master and the majority needed to authorize the",
    "    failover.",
    "CONFIG SET <param> <value>",
    "    Set a global Sentinel configuration parameter.",
    "CONFIG GET <param>",
    "    Get global Sentinel configuration parameter.",
    "DEBUG [<param> <value> ...]",
    "    Show a list of configurable time parameters and their values (milliseconds).",
    "    Or update current configurable parameters values (one or more).",
    "GET-MASTER-ADDR-BY-NAME <master-name>",
    "    Return the ip and port number of the master with that name.",
    "FAILOVER <master-name>",
    "    Manually failover a master node without asking for agreement from other",
    "    Sentinels",
    "FLUSHCONFIG",
    "    Force Sentinel to rewrite its configuration on disk, including the current",
    "    Sentinel state.",
    "INFO-CACHE <master-name>",
    "    Return last cached INFO output from masters and all its replicas.",
    "IS-MASTER-DOWN-BY-ADDR <ip> <port> <current-epoch> <runid>",
    "    Check if the master specified by ip:port is down from current Sentinel's",
    "    point of view.",
    "MASTER <master-name>",
    "    Show the state and info of the specified master.",
    "MASTERS",
    "    Show a list of monitored masters and their state.",
    "MONITOR <name> <ip> <port> <quorum>",
    "    Start monitoring a new master with the specified name, ip, port and quorum.",
    "MYID",
    "    Return the ID of the Sentinel instance.",
    "PENDING-SCRIPTS",
    "    Get pending scripts information.",
    "REMOVE <master-name>",
    "    Remove master from Sentinel's monitor list.",
    "REPLICAS <master-name>",
    "    Show a list of replicas for this master and their state.",
    "RESET <pattern>",
    "    Reset masters for specific master name matching this pattern.",
    "SENTINELS <master-name>",
    "    Show a list of Sentinel instances for this master and their state.",
    "SET <master-name> <option> <value> [<option> <value> ...]",
    "    Set configuration parameters for certain masters.",
    "SIMULATE-FAILURE [CRASH-AFTER-ELECTION] [CRASH-AFTER-PROMOTION] [HELP]",
    "    Simulate a Sentinel crash.",
    "HELP",
    "    Prints this help.",
];

fn text(b: &Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn int(b: &Bytes) -> Option<i64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

fn no_such_master() -> Value {
    Value::error("ERR No such master with that name")
}

fn not_integer() -> Value {
    Value::error("ERR value is not an integer or out of range")
}

/// Run `SENTINEL ...` (`args[0]` is `SENTINEL`).
pub(crate) fn sentinel(st: &mut State, args: &[Bytes]) -> Value {
    if args.len() < 2 {
        return Value::error("ERR wrong number of arguments for 'sentinel' command");
    }
    let sub = text(&args[1]).to_ascii_lowercase();
    let Some(&(name, arity)) = ARITY.iter().find(|(n, _)| *n == sub) else {
        return Value::error(format!(
            "ERR unknown subcommand '{}'. Try SENTINEL HELP.",
            text(&args[1])
        ));
    };
    let n = args.len() as i64;
    if (arity > 0 && n != arity) || (arity < 0 && n < -arity) {
        return Value::error(format!(
            "ERR wrong number of arguments for 'sentinel|{name}' command"
        ));
    }
    match name {
        "help" => Value::Array(
            HELP.iter()
                .map(|l| Value::SimpleString(Bytes::from_static(l.as_bytes())))
                .collect(),
        ),
        "masters" => reply::masters(st),
        "master" => match st.master(&args[2]) {
            Some(m) => reply::instance(&m.inst, m),
            None => no_such_master(),
        },
        "replicas" | "slaves" => st
            .master(&args[2])
            .map_or_else(no_such_master, reply::replicas),
        "sentinels" => st
            .master(&args[2])
            .map_or_else(no_such_master, reply::sentinels),
        "myid" => Value::bulk(&st.myid),
        "is-master-down-by-addr" => is_master_down(st, args),
        "reset" => {
            let pattern = args[2].clone();
            let events = st.events.clone();
            let mut n = 0;
            for mi in 0..st.masters.len() {
                if glob_match(&pattern, st.masters[mi].inst.name.as_bytes(), false) {
                    failover::reset_master(st, mi, false);
                    events.emit("+reset-master", st.masters[mi].describe());
                    n += 1;
                }
            }
            Value::Integer(n)
        }
        "get-master-addr-by-name" => match st.master(&args[2]) {
            None => Value::NullArray,
            Some(m) => {
                let (ip, port) = m.current_addr();
                Value::Array(vec![Value::bulk(ip), Value::bulk(port.to_string())])
            }
        },
        "failover" => {
            let Some(mi) = st.master_index(&args[2]) else {
                return no_such_master();
            };
            if st.masters[mi].inst.has(flag::FAILOVER_IN_PROGRESS) {
                return Value::error("INPROG Failover already in progress");
            }
            if failover::select_replica(st, mi).is_none() {
                return Value::error("NOGOODSLAVE No suitable replica to promote");
            }
            failover::start(st, mi);
            st.masters[mi].inst.flags |= flag::FORCE_FAILOVER;
            Value::ok()
        }
        "pending-scripts" => Value::Array(Vec::new()),
        "monitor" => monitor(st, args),
        "flushconfig" => Value::ok(),
        "remove" => {
            let Some(mi) = st.master_index(&args[2]) else {
                return no_such_master();
            };
            let m = st.masters.remove(mi);
            st.events.emit("-monitor", m.describe());
            Value::ok()
        }
        "ckquorum" => st
            .master(&args[2])
            .map_or_else(no_such_master, reply::ckquorum),
        "set" => super::command_set::set(st, args),
        "config" => super::command_set::config(st, args),
        "debug" => super::command_set::debug(st, args),
        "info-cache" => info_cache(st, args),
        _ => simulate_failure(args),
    }
}

fn is_master_down(st: &mut State, args: &[Bytes]) -> Value {
    let Some(port) = int(&args[3]) else {
        return not_integer();
    };
    let Some(req_epoch) = int(&args[4]) else {
        return not_integer();
    };
    let ip = text(&args[2]);
    let mi = st
        .masters
        .iter()
        .position(|m| i64::from(m.inst.port) == port && m.inst.ip.eq_ignore_ascii_case(&ip));
    let mut down = 0;
    let mut leader: Option<String> = None;
    let mut leader_epoch = 0;
    if let Some(mi) = mi {
        if st.masters[mi].inst.has(flag::S_DOWN) {
            down = 1;
        }
        if &args[5][..] != b"*" {
            let (l, e) = failover::vote_leader(st, mi, req_epoch.max(0) as u64, &text(&args[5]));
            leader = l;
            leader_epoch = e as i64;
        }
    }
    Value::Array(vec![
        Value::Integer(down),
        Value::bulk(leader.as_deref().unwrap_or("*")),
        Value::Integer(leader_epoch),
    ])
}

fn monitor(st: &mut State, args: &[Bytes]) -> Value {
    let Some(quorum) = int(&args[5]) else {
        return Value::error("ERR Invalid quorum");
    };
    let Some(port) = int(&args[4]) else {
        return Value::error("ERR Invalid port");
    };
    if quorum <= 0 {
        return Value::error("ERR Quorum must be 1 or greater.");
    }
    let ip = text(&args[3]);
    if ip.parse::<std::net::IpAddr>().is_err() {
        return Value::error("ERR Invalid IP address or hostname specified");
    }
    let name = text(&args[2]);
    if st.masters.iter().any(|m| m.inst.name == name) {
        return Value::error("ERR Duplicate master name.");
    }
    let Ok(port) = u16::try_from(port) else {
        return Value::error("ERR Invalid port number");
    };
    let events = st.events.clone();
    let quorum = u32::try_from(quorum).unwrap_or(u32::MAX);
    let m = st.add_master(&name, &ip, port, quorum);
    events.emit("+monitor", format!("{} quorum {}", m.describe(), m.quorum));
    Value::ok()
}

fn info_cache(st: &State, args: &[Bytes]) -> Value {
    let now = super::state::now_ms();
    let mut out = Vec::new();
    for m in &st.masters {
        if !args[2..].iter().any(|a| &a[..] == m.inst.name.as_bytes()) {
            continue;
        }
        let entry = |i: &super::state::Instance| {
            let age = if i.info_refresh != 0 {
                now - i.info_refresh
            } else {
                0
            };
            Value::Array(vec![
                Value::Integer(age),
                i.info.as_deref().map_or(Value::Null, Value::bulk),
            ])
        };
        out.push(Value::bulk(&m.inst.name));
        let mut list = vec![entry(&m.inst)];
        list.extend(m.replicas.iter().map(entry));
        out.push(Value::Array(list));
    }
    Value::Array(out)
}

fn simulate_failure(args: &[Bytes]) -> Value {
    for a in &args[2..] {
        match text(a).to_ascii_lowercase().as_str() {
            "crash-after-election" | "crash-after-promotion" => {}
            "help" => {
                return Value::Array(vec![
                    Value::bulk("crash-after-election"),
                    Value::bulk("crash-after-promotion"),
                ])
            }
            _ => return Value::error("ERR Unknown failure simulation specified"),
        }
    }
    Value::ok()
}
