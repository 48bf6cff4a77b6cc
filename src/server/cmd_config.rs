//! CONFIG GET/SET/RESETSTAT/REWRITE for the settings clients and tools read.

use bytes::Bytes;

use crate::resp::Value;

use super::call::{Call, Outcome};
use super::cluster::state::EndpointType;
use super::node::{Locked, NodeShared};
use super::session::Conn;

/// Redis-style glob match (`*`, `?`, `[abc]`, `[^a-z]`, `\x`), ASCII case-insensitive when
/// `nocase`.
pub(crate) fn glob_match(pattern: &[u8], text: &[u8], nocase: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut p, mut t) = (0, 0);
    let (mut star_p, mut star_t) = (None, 0);
    while t < text.len() {
        let mut matched = false;
        let mut next_p = p;
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star_p = Some(p);
                    star_t = t;
                    p += 1;
                    continue;
                }
                b'?' => {
                    matched = true;
                    next_p = p + 1;
                }
                b'[' => {
                    let mut i = p + 1;
                    let negate = pattern.get(i) == Some(&b'^');
                    if negate {
                        i += 1;
                    }
                    let mut hit = false;
                    while i < pattern.len() && pattern[i] != b']' {
                        if pattern[i] == b'\\' && i + 1 < pattern.len() {
                            hit |= eq(pattern[i + 1], text[t]);
                            i += 2;
                        } else if i + 2 < pattern.len()
                            && pattern[i + 1] == b'-'
                            && pattern[i + 2] != b']'
                        {
                            let (lo, hi) = (
                                pattern[i].min(pattern[i + 2]),
                                pattern[i].max(pattern[i + 2]),
                            );
                            hit |= (lo..=hi).contains(&text[t]);
                            i += 3;
                        } else {
                            hit |= eq(pattern[i], text[t]);
                            i += 1;
                        }
                    }
                    matched = hit != negate;
                    next_p = (i + 1).min(pattern.len());
                }
                b'\\' if p + 1 < pattern.len() => {
                    matched = eq(pattern[p + 1], text[t]);
                    next_p = p + 2;
                }
                c => {
                    matched = eq(c, text[t]);
                    next_p = p + 1;
                }
            }
        }
        if matched {
            p = next_p;
            t += 1;
        } else if let Some(sp) = star_p {
            p = sp + 1;
            star_t += 1;
            t = star_t;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn params(shared: &NodeShared, locked: &mut Locked<'_>) -> Vec<(String, String)> {
    let st = locked.get();
    let timeout = st.cluster.node_timeout_ms.to_string();
    let full = yes_no(st.cluster.require_full_coverage);
    let reads_down = yes_no(st.cluster.allow_reads_when_down);
    let stale = yes_no(st.repl.serve_stale_data);
    let port = shared.addr.port().to_string();
    let maxclients = shared.limits.maxclients().to_string();
    let obuf = shared.limits.output_config();
    let backlog = shared.config.tcp_backlog().to_string();
    let hostname = st.cluster.me().hostname.clone();
    let human = st.cluster.human_nodename.clone();
    let endpoint = st.cluster.preferred_endpoint.name();
    let tracking_max = st.tracking.max_keys.to_string();
    let mut out: Vec<(String, String)> = [
        ("appendonly", "no"),
        ("appendfsync", "everysec"),
        ("bind", "127.0.0.1"),
        ("busy-reply-threshold", "5000"),
        ("cluster-allow-reads-when-down", reads_down),
        ("cluster-announce-hostname", hostname.as_str()),
        ("cluster-announce-human-nodename", human.as_str()),
        ("cluster-preferred-endpoint-type", endpoint),
        ("cluster-enabled", if st.standalone { "no" } else { "yes" }),
        ("cluster-node-timeout", timeout.as_str()),
        ("cluster-require-full-coverage", full),
        ("databases", "16"),
        ("hz", "10"),
        ("lazyfree-lazy-user-del", "no"),
        ("lua-time-limit", "5000"),
        ("client-output-buffer-limit", obuf.as_str()),
        ("maxclients", maxclients.as_str()),
        ("maxmemory", "0"),
        ("maxmemory-policy", "noeviction"),
        ("min-replicas-to-write", "0"),
        ("notify-keyspace-events", ""),
        ("port", port.as_str()),
        ("proto-max-bulk-len", "536870912"),
        ("replica-announced", "yes"),
        ("replica-priority", "100"),
        ("replica-read-only", "yes"),
        ("replica-serve-stale-data", stale),
        ("slave-serve-stale-data", stale),
        (
            "requirepass",
            if shared.config.requirepass.is_some() {
                "********"
            } else {
                ""
            },
        ),
        ("save", ""),
        ("slowlog-log-slower-than", "10000"),
        ("slowlog-max-len", "128"),
        ("latency-monitor-threshold", "0"),
        ("slave-priority", "100"),
        ("slave-read-only", "yes"),
        ("tcp-backlog", backlog.as_str()),
        ("tcp-keepalive", "300"),
        ("timeout", "0"),
        ("tracking-table-max-keys", tracking_max.as_str()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in &locked.get().config_overrides {
        match out.iter_mut().find(|(name, _)| name == k) {
            Some(entry) => entry.1 = v.clone(),
            None => out.push((k.clone(), v.clone())),
        }
    }
    out
}

/// Settings that change behaviour, kept in the node state rather than as overrides.
const LIVE: &[&str] = &[
    "cluster-node-timeout",
    "cluster-require-full-coverage",
    "cluster-allow-reads-when-down",
    "replica-serve-stale-data",
    "slave-serve-stale-data",
    "maxclients",
    "client-output-buffer-limit",
    "cluster-announce-hostname",
    "cluster-announce-human-nodename",
    "cluster-preferred-endpoint-type",
    "tracking-table-max-keys",
];

/// Settings CONFIG SET refuses (Redis: "can't set immutable config") but a config file or
/// the command line may give at start.
const STARTUP_ONLY: &[&str] = &["tcp-backlog"];

fn config_set_error(name: &str, why: &str) -> Value {
    Value::error(format!(
        "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
    ))
}

/// Apply a live setting (a no-op for the others).
fn apply(
    locked: &mut Locked<'_>,
    shared: &NodeShared,
    name: &str,
    value: &str,
) -> Result<(), Value> {
    let bool_of = |v: &str| match v.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(config_set_error(name, "argument must be 'yes' or 'no'")),
    };
    let st = locked.get();
    match name {
        "cluster-node-timeout" => match value.parse::<u64>() {
            Ok(ms) if ms > 0 => st.cluster.node_timeout_ms = ms,
            _ => {
                return Err(config_set_error(
                    name,
                    "argument couldn't be parsed into an integer",
                ))
            }
        },
        "cluster-require-full-coverage" => {
            st.cluster.require_full_coverage = bool_of(value)?;
            st.cluster.update_state();
        }
        "cluster-allow-reads-when-down" => st.cluster.allow_reads_when_down = bool_of(value)?,
        "replica-serve-stale-data" | "slave-serve-stale-data" => {
            st.repl.serve_stale_data = bool_of(value)?;
        }
        "maxclients" => shared
            .limits
            .set_maxclients(value)
            .map_err(|why| config_set_error(name, why))?,
        "client-output-buffer-limit" => shared
            .limits
            .set_output_config(value)
            .map_err(|why| config_set_error(name, why))?,
        "cluster-announce-hostname" => {
            if value.len() >= 256 {
                return Err(config_set_error(
                    name,
                    "Hostnames must be less than 256 characters",
                ));
            }
            if !value
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
            {
                return Err(config_set_error(
                    name,
                    "Hostnames may only contain alphanumeric characters, hyphens or dots",
                ));
            }
            let me = st.cluster.myself;
            if let Some(peer) = st.cluster.nodes.get_mut(&me) {
                peer.hostname = value.to_string();
            }
        }
        "cluster-announce-human-nodename" => st.cluster.human_nodename = value.to_string(),
        "tracking-table-max-keys" => match value.parse::<u64>() {
            // Redis' bounds: 0 (no limit) to LONG_MAX.
            Ok(n) if n <= i64::MAX as u64 => st.tracking.max_keys = n as usize,
            _ => {
                return Err(config_set_error(
                    name,
                    "argument couldn't be parsed into an integer",
                ))
            }
        },
        "cluster-preferred-endpoint-type" => {
            st.cluster.preferred_endpoint = EndpointType::parse(value).ok_or_else(|| {
                config_set_error(
                    name,
                    "argument(s) must be one of the following: ip, hostname, unknown-endpoint",
                )
            })?;
        }
        _ => {}
    }
    Ok(())
}

/// Apply the start-up settings of a node (redis.conf directives, as CONFIG SET would, plus
/// the start-up-only ones).
///
/// # Errors
/// The first unknown or invalid setting, worded as Redis' CONFIG SET error.
pub(crate) fn apply_startup(shared: &NodeShared) -> Result<(), String> {
    let mut locked = Locked::new(shared);
    let known = params(shared, &mut locked);
    for (name, value) in &shared.config.settings {
        let name = name.to_ascii_lowercase();
        if !known.iter().any(|(k, _)| *k == name) {
            return Err(format!("Bad directive or unknown option '{name}'"));
        }
        if STARTUP_ONLY.contains(&name.as_str()) {
            if value.parse::<u32>().is_err() {
                return Err(format!(
                    "'{name}': argument couldn't be parsed into an integer"
                ));
            }
            continue;
        }
        match apply(&mut locked, shared, &name, value) {
            Ok(()) if !LIVE.contains(&name.as_str()) => {
                let st = locked.get();
                st.config_overrides.insert(name, value.clone());
            }
            Ok(()) => {}
            Err(e) => return Err(e.error_text().unwrap_or_default().into_owned()),
        }
    }
    Ok(())
}

/// Run a CONFIG subcommand.
pub(crate) fn run(
    conn: &Conn,
    sub: &str,
    args: &[Bytes],
    locked: &mut Locked<'_>,
    shared: &NodeShared,
) -> Value {
    let _ = conn;
    match sub {
        "get" => {
            let all = params(shared, locked);
            let mut pairs = Vec::new();
            for (k, v) in &all {
                if args[2..].iter().any(|p| glob_match(p, k.as_bytes(), true)) {
                    pairs.push((Value::bulk(k), Value::bulk(v)));
                }
            }
            Value::Map(pairs)
        }
        "set" => {
            if (args.len() - 2) % 2 != 0 {
                return Value::error("ERR wrong number of arguments for 'config|set' command");
            }
            let known = params(shared, locked);
            let mut updates = Vec::new();
            for pair in args[2..].chunks(2) {
                let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
                let immutable = matches!(
                    name.as_str(),
                    "cluster-enabled" | "port" | "bind" | "databases" | "requirepass"
                );
                if !known.iter().any(|(k, _)| *k == name) || immutable {
                    return Value::error(format!(
                        "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
                    ));
                }
                if STARTUP_ONLY.contains(&name.as_str()) {
                    return config_set_error(&name, "can't set immutable config");
                }
                let value = String::from_utf8_lossy(&pair[1]).into_owned();
                if let Err(e) = apply(locked, shared, &name, &value) {
                    return e;
                }
                updates.push((name, value));
            }
            // Live settings are read back from the state, not from the overrides.
            updates.retain(|(name, _)| !LIVE.contains(&name.as_str()));
            locked.get().config_overrides.extend(updates);
            Value::ok()
        }
        "resetstat" => {
            locked.get().cmdstats.reset();
            Value::ok()
        }
        "rewrite" => Value::error("ERR The server is running without a config file"),
        _ => Value::Array(vec![Value::simple(
            "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are: GET, SET, RESETSTAT, REWRITE",
        )]),
    }
}

/// `CONFIG <sub>` (registry entry).
pub(crate) fn config_command(c: &mut Call<'_, '_>) -> Outcome {
    Outcome::Reply(run(c.conn, &c.spec.name[7..], c.args, c.locked, c.shared))
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs_like_redis() {
        assert!(glob_match(b"*", b"save", false));
        assert!(glob_match(b"cluster-*", b"cluster-node-timeout", false));
        assert!(glob_match(b"h?llo", b"hello", false));
        assert!(glob_match(b"h[ae]llo", b"hallo", false));
        assert!(!glob_match(b"h[^e]llo", b"hello", false));
        assert!(glob_match(b"SAVE", b"save", true));
        assert!(!glob_match(b"save", b"saves", false));
    }
}
