//! Server commands a client may call that the bundled cluster answers as a Redis 7.0 cluster
//! node does: SLOWLOG (a real log of slow commands), LATENCY (per-command latency
//! histograms; event monitoring is off, as with Redis' default threshold of 0), MEMORY
//! (USAGE estimates, STATS, DOCTOR), MODULE (none loaded, loading refused as with Redis'
//! default `enable-module-command no`), and the commands cluster mode refuses
//! (REPLICAOF/SLAVEOF, FAILOVER) with Redis' errors (MOVE and SWAPDB: `databases.rs`).

use bytes::Bytes;

use crate::command::CommandSpec;
use crate::resp::Value;

use super::args::help;
use super::call::{Call, Outcome};
use super::node::{now_ms, Locked, NodeShared, NodeState};
use super::session::Conn;
use super::slowlog::SlowEntry;

fn config_i64(st: &NodeState, name: &str, default: i64) -> i64 {
    st.config_overrides
        .get(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// After a command ran: its latency histogram, and a SLOWLOG entry when it took at least
/// `slowlog-log-slower-than` microseconds (10000 by default; negative turns the log off).
pub(crate) fn record(
    st: &mut NodeState,
    spec: &CommandSpec,
    args: &[Bytes],
    usec: u64,
    conn: &Conn,
) {
    let h = st.misc.hist.entry(spec.name).or_insert((0, [0; 40]));
    h.0 += 1;
    let bucket = (64 - usec.max(1).saturating_sub(1).leading_zeros()).min(39) as usize;
    h.1[bucket] += 1;
    let threshold = config_i64(st, "slowlog-log-slower-than", 10_000);
    if threshold < 0 || (usec as i64) < threshold || spec.has_flag("skip_slowlog") {
        return;
    }
    let max = config_i64(st, "slowlog-max-len", 128).max(0) as usize;
    // Passwords never reach the log (Redis' redactClientCommandArgument).
    let hide = super::monitor::redacted(args);
    let mut shown: Vec<Bytes> = args
        .iter()
        .zip(hide)
        .take(if args.len() > 32 { 31 } else { 32 })
        .map(|(a, hide)| {
            if hide {
                Bytes::from_static(b"(redacted)")
            } else if a.len() > 128 {
                let mut v = a[..128].to_vec();
                v.extend_from_slice(format!("... ({} more bytes)", a.len() - 128).as_bytes());
                Bytes::from(v)
            } else {
                a.clone()
            }
        })
        .collect();
    if args.len() > 32 {
        shown.push(Bytes::from(format!(
            "... ({} more arguments)",
            args.len() - 31
        )));
    }
    let m = &mut st.misc;
    m.slowlog.push_front(SlowEntry {
        id: m.next_id,
        time_s: now_ms() / 1000,
        usec,
        args: shown,
        peer: conn.peer.to_string(),
        name: conn.name.clone().unwrap_or_default(),
    });
    m.next_id += 1;
    m.slowlog.truncate(max);
}

/// SLOWLOG, LATENCY, MEMORY, MODULE, REPLICAOF/SLAVEOF, FAILOVER (registry
/// entry).
pub(crate) fn misc_command(c: &mut Call<'_, '_>) -> Outcome {
    Outcome::Reply(run(c.conn, c.spec, c.args, c.locked, c.shared))
}

/// Run one of the commands above (arity and subcommand already checked by the registry).
pub(crate) fn run(
    conn: &Conn,
    spec: &CommandSpec,
    args: &[Bytes],
    locked: &mut Locked<'_>,
    shared: &NodeShared,
) -> Value {
    let _ = shared;
    match spec.name {
        "module|list" => Value::Array(Vec::new()),
        "module|load" | "module|loadex" | "module|unload" => Value::error(
            "ERR MODULE command not allowed. If the enable-module-command option is set to \
             \"local\", you can run it from a local connection, otherwise you need to set this \
             option in the configuration file, and then restart the server.",
        ),
        "module|help" => help(
            "MODULE",
            &[
                "LIST",
                "    Return a list of loaded modules.",
                "LOAD <path> [<arg> ...]",
                "    Load a module library from <path>, passing to it any optional arguments.",
                "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
                "    Load a module library from <path>, while passing it module configurations and optional arguments.",
                "UNLOAD <name>",
                "    Unload a module.",
            ],
        ),
        "slowlog|len" => Value::Integer(locked.get().misc.slowlog.len() as i64),
        "slowlog|reset" => {
            locked.get().misc.slowlog.clear();
            Value::ok()
        }
        "slowlog|get" => slowlog_get(args, locked),
        "slowlog|help" => help(
            "SLOWLOG",
            &[
                "GET [<count>]",
                "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
                "    Entries are made of:",
                "    id, timestamp, time in microseconds, arguments array, client IP and port,",
                "    client name",
                "LEN",
                "    Return the length of the slowlog.",
                "RESET",
                "    Reset the slowlog.",
            ],
        ),
        "latency|latest" | "latency|history" => Value::Array(Vec::new()),
        "latency|reset" => Value::Integer(0),
        "latency|graph" => Value::error(format!(
            "ERR No samples available for event '{}'",
            String::from_utf8_lossy(&args[2])
        )),
        "latency|doctor" => Value::bulk(
            "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis \
             instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in \
             order to enable it. If we weren't in a deep space mission I'd suggest to take a \
             look at https://redis.io/topics/latency-monitor.\n",
        ),
        "latency|histogram" => histogram(conn, args, locked),
        "latency|help" => help(
            "LATENCY",
            &[
                "DOCTOR",
                "    Return a human readable latency analysis report.",
                "GRAPH <event>",
                "    Return an ASCII latency graph for the <event> class.",
                "HISTORY <event>",
                "    Return time-latency samples for the <event> class.",
                "LATEST",
                "    Return the latest latency samples for all events.",
                "RESET [<event> ...]",
                "    Reset latency data of one or more <event> classes.",
                "    (default: reset all data for all event classes)",
                "HISTOGRAM [COMMAND ...]",
                "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
                "    If no commands are specified then all histograms are replied.",
            ],
        ),
        "memory|usage" => memory_usage(args, locked),
        "memory|purge" => Value::ok(),
        "memory|doctor" => memory_doctor(locked),
        "memory|malloc-stats" => Value::bulk("Stats not supported for the current allocator\n"),
        "memory|stats" => memory_stats(conn, locked),
        "memory|help" => help(
            "MEMORY",
            &[
                "DOCTOR",
                "    Return memory problems reports.",
                "MALLOC-STATS",
                "    Return internal statistics report from the memory allocator.",
                "PURGE",
                "    Attempt to purge dirty pages for reclamation by the allocator.",
                "STATS",
                "    Return information about the memory usage of the server.",
                "USAGE <key> [SAMPLES <count>]",
                "    Return memory in bytes used by <key> and its value. Nested values are",
                "    sampled up to <count> times (default: 5, 0 means sample all).",
            ],
        ),
        other => Value::error(format!("ERR unknown command '{other}'")),
    }
}

fn slowlog_get(args: &[Bytes], locked: &mut Locked<'_>) -> Value {
    let count = match args.get(2) {
        None => 10,
        Some(a) => match std::str::from_utf8(a)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
        {
            Some(n) if n >= -1 => n,
            _ => return Value::error("ERR count should be greater than or equal to -1"),
        },
    };
    let log = &locked.get().misc.slowlog;
    let take = if count < 0 { log.len() } else { count as usize };
    Value::Array(
        log.iter()
            .take(take)
            .map(|e| {
                Value::Array(vec![
                    Value::Integer(e.id as i64),
                    Value::Integer(e.time_s as i64),
                    Value::Integer(e.usec as i64),
                    Value::Array(e.args.iter().cloned().map(Value::BulkString).collect()),
                    Value::bulk(&e.peer),
                    Value::BulkString(e.name.clone()),
                ])
            })
            .collect(),
    )
}

fn histogram(conn: &Conn, args: &[Bytes], locked: &mut Locked<'_>) -> Value {
    let _ = conn;
    let hist = &locked.get().misc.hist;
    let mut names: Vec<&'static str> = if args.len() > 2 {
        args[2..]
            .iter()
            .filter_map(|a| {
                let n = String::from_utf8_lossy(a).to_ascii_lowercase();
                hist.keys().find(|k| **k == n).copied()
            })
            .collect()
    } else {
        hist.keys().copied().collect()
    };
    names.sort_unstable();
    names.dedup();
    Value::Map(
        names
            .into_iter()
            .map(|n| {
                let (calls, buckets) = &hist[n];
                let mut cum = 0;
                let mut pairs = Vec::new();
                for (i, c) in buckets.iter().enumerate() {
                    if *c == 0 {
                        continue;
                    }
                    cum += c;
                    pairs.push((Value::Integer(1i64 << i), Value::Integer(cum as i64)));
                }
                (
                    Value::bulk(n),
                    Value::Map(vec![
                        (Value::bulk("calls"), Value::Integer(*calls as i64)),
                        (Value::bulk("histogram_usec"), Value::Map(pairs)),
                    ]),
                )
            })
            .collect(),
    )
}

fn memory_usage(args: &[Bytes], locked: &mut Locked<'_>) -> Value {
    let mut i = 3;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"samples") && i + 1 < args.len() {
            if std::str::from_utf8(&args[i + 1])
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .is_none()
            {
                return Value::error("ERR value is not an integer or out of range");
            }
            i += 2;
        } else {
            return Value::error("ERR syntax error");
        }
    }
    match locked.get().db.memory_usage(&args[2], now_ms()) {
        Some(n) => Value::Integer(n as i64),
        None => Value::Null,
    }
}

fn memory_doctor(locked: &mut Locked<'_>) -> Value {
    if locked.get().db.stats().keys == 0 {
        return Value::bulk(
            "Hi Sam, this instance is empty or is using very little memory, my issues detector \
             can't be used in these conditions. Please, leave for your mission on Earth and fill \
             it with some data. The new Sam and I will be back to our programming as soon as I \
             finished rebooting.",
        );
    }
    Value::bulk("Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.")
}

fn memory_stats(conn: &Conn, locked: &mut Locked<'_>) -> Value {
    let _ = conn;
    let st = locked.get();
    let keys = st.db.stats().keys as i64;
    let expires = st.db.stats().expires as i64;
    Value::Map(vec![
        (Value::bulk("keys.count"), Value::Integer(keys)),
        (Value::bulk("keys.expires"), Value::Integer(expires)),
        (
            Value::bulk("db.0"),
            Value::Map(vec![
                (
                    Value::bulk("overhead.hashtable.main"),
                    Value::Integer(keys * 24),
                ),
                (
                    Value::bulk("overhead.hashtable.expires"),
                    Value::Integer(expires * 24),
                ),
            ]),
        ),
        (
            Value::bulk("slowlog.len"),
            Value::Integer(st.misc.slowlog.len() as i64),
        ),
    ])
}
