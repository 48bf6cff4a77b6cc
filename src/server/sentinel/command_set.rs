//! `SENTINEL SET`, `SENTINEL CONFIG GET/SET` and `SENTINEL DEBUG`: the settings, with Redis
//! 7.0's wording (passwords are never echoed: `+set` shows `******`, CONFIG GET shows
//! what was set only to the client that may already read it, as Redis does).

use bytes::Bytes;

use crate::resp::Value;

use super::state::State;
use crate::server::cmd_config::glob_match;

fn text(b: &Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn positive(b: &Bytes) -> Option<i64> {
    std::str::from_utf8(b)
        .ok()?
        .parse()
        .ok()
        .filter(|v: &i64| *v > 0)
}

/// `SENTINEL SET <master> <option> <value> [<option> <value> ...]`.
pub(crate) fn set(st: &mut State, args: &[Bytes]) -> Value {
    let Some(mi) = st
        .masters
        .iter()
        .position(|m| m.inst.name.as_bytes() == &args[2][..])
    else {
        return Value::error("ERR No such master with that name");
    };
    let events = st.events.clone();
    let mut j = 3;
    let mut changes = 0;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let option = text(&args[j]);
        let lower = option.to_ascii_lowercase();
        let start = j;
        let m = &mut st.masters[mi];
        let mut redacted = false;
        let bad = |j: usize| {
            Value::error(format!(
                "ERR Invalid argument '{}' for SENTINEL SET '{option}'",
                text(&args[j])
            ))
        };
        match lower.as_str() {
            "down-after-milliseconds" | "failover-timeout" | "parallel-syncs" | "quorum"
                if more > 0 =>
            {
                j += 1;
                let Some(v) = positive(&args[j]) else {
                    return bad(j);
                };
                match lower.as_str() {
                    "down-after-milliseconds" => {
                        m.inst.down_after = v;
                        for i in m.replicas.iter_mut().chain(m.sentinels.iter_mut()) {
                            i.down_after = v;
                        }
                    }
                    "failover-timeout" => m.failover_timeout = v,
                    "parallel-syncs" => m.parallel_syncs = v,
                    _ => m.quorum = u32::try_from(v).unwrap_or(u32::MAX),
                }
            }
            "notification-script" | "client-reconfig-script" if more > 0 => {
                return Value::error(
                    "ERR Reconfiguration of scripts path is denied for security reasons. Check \
                     the deny-scripts-reconfig configuration directive in your Sentinel \
                     configuration",
                );
            }
            "auth-pass" | "auth-user" if more > 0 => {
                j += 1;
                let v = text(&args[j]);
                let v = (!v.is_empty()).then_some(v);
                if lower == "auth-pass" {
                    m.auth_pass = v;
                    redacted = true;
                } else {
                    m.auth_user = v;
                }
                m.inst.link.close();
                for r in m.replicas.iter_mut() {
                    r.link.close();
                }
            }
            "master-reboot-down-after-period" if more > 0 => {
                j += 1;
                let ok = std::str::from_utf8(&args[j])
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
                    .is_some_and(|v| v >= 0);
                if !ok {
                    return bad(j);
                }
            }
            "rename-command" if more > 1 => {
                j += 2;
                if args[j - 1].is_empty() || args[j].is_empty() {
                    return bad(if args[j].is_empty() { j } else { j - 1 });
                }
            }
            _ => {
                return Value::error(format!(
                    "ERR Unknown option or number of arguments for SENTINEL SET '{option}'"
                ))
            }
        }
        changes += 1;
        let mut msg = format!("{} {}", m.describe(), text(&args[start]));
        for a in &args[start + 1..=j] {
            msg.push(' ');
            msg.push_str(if redacted {
                "******"
            } else {
                std::str::from_utf8(a).unwrap_or("")
            });
        }
        events.emit("+set", msg);
        j += 1;
    }
    let _ = changes;
    Value::ok()
}

/// `SENTINEL CONFIG GET <pattern>` / `SENTINEL CONFIG SET <option> <value>`.
pub(crate) fn config(st: &mut State, args: &[Bytes]) -> Value {
    let sub = text(&args[2]).to_ascii_lowercase();
    if sub == "get" && args.len() == 4 {
        let pattern = &args[3];
        let yes_no = |b: bool| Value::bulk(if b { "yes" } else { "no" });
        let all: [(&str, Value); 6] = [
            ("resolve-hostnames", yes_no(false)),
            ("announce-hostnames", yes_no(false)),
            (
                "announce-ip",
                Value::bulk(st.announce_ip.as_deref().unwrap_or("")),
            ),
            ("announce-port", Value::bulk(st.announce_port.to_string())),
            (
                "sentinel-user",
                Value::bulk(st.sentinel_user.as_deref().unwrap_or("")),
            ),
            (
                "sentinel-pass",
                Value::bulk(st.sentinel_pass.as_deref().unwrap_or("")),
            ),
        ];
        let pairs = all
            .into_iter()
            .filter(|(k, _)| glob_match(pattern, k.as_bytes(), true))
            .map(|(k, v)| (Value::bulk(k), v))
            .collect();
        return Value::Map(pairs);
    }
    if sub == "set" && args.len() == 5 {
        let option = text(&args[3]);
        let value = text(&args[4]);
        let bad = || {
            Value::error(format!(
                "ERR Invalid value '{value}' to SENTINEL CONFIG SET '{option}'"
            ))
        };
        match option.to_ascii_lowercase().as_str() {
            "resolve-hostnames" | "announce-hostnames" => {
                if !matches!(value.to_ascii_lowercase().as_str(), "yes" | "no") {
                    return bad();
                }
            }
            "announce-ip" => st.announce_ip = (!value.is_empty()).then_some(value),
            "announce-port" => match value.parse::<u16>() {
                Ok(p) => st.announce_port = p,
                Err(_) => return bad(),
            },
            "sentinel-user" | "sentinel-pass" => {
                let v = (!value.is_empty()).then_some(value);
                if option.eq_ignore_ascii_case("sentinel-user") {
                    st.sentinel_user = v;
                } else {
                    st.sentinel_pass = v;
                }
                for m in st.masters.iter_mut() {
                    for s in m.sentinels.iter_mut() {
                        s.link.close();
                    }
                }
            }
            _ => {
                return Value::error(format!(
                    "ERR Invalid argument '{option}' to SENTINEL CONFIG SET"
                ))
            }
        }
        return Value::ok();
    }
    Value::error("ERR Only SENTINEL CONFIG GET <option> / SET <option> <value> are supported.")
}

/// `SENTINEL DEBUG [<param> <value> ...]`: show or change the timing parameters.
pub(crate) fn debug(st: &mut State, args: &[Bytes]) -> Value {
    let t = &mut st.timing;
    if args.len() == 2 {
        let rows: [(&str, i64); 13] = [
            ("INFO-PERIOD", t.info_period),
            ("PING-PERIOD", t.ping_period),
            ("ASK-PERIOD", t.ask_period),
            ("PUBLISH-PERIOD", t.publish_period),
            ("DEFAULT-DOWN-AFTER", t.default_down_after),
            ("DEFAULT-FAILOVER-TIMEOUT", t.default_failover_timeout),
            ("TILT-TRIGGER", 2000),
            ("TILT-PERIOD", 30_000),
            ("SLAVE-RECONF-TIMEOUT", t.slave_reconf_timeout),
            ("MIN-LINK-RECONNECT-PERIOD", t.min_link_reconnect_period),
            ("ELECTION-TIMEOUT", t.election_timeout),
            ("SCRIPT-MAX-RUNTIME", 60_000),
            ("SCRIPT-RETRY-DELAY", 30_000),
        ];
        return Value::Map(
            rows.iter()
                .map(|(k, v)| (Value::bulk(k), Value::bulk(v.to_string())))
                .collect(),
        );
    }
    let mut j = 2;
    while j < args.len() {
        let option = text(&args[j]);
        if j + 1 >= args.len() {
            return Value::error(format!(
                "ERR Unknown option or number of arguments for SENTINEL DEBUG '{option}'"
            ));
        }
        let Some(v) = positive(&args[j + 1]) else {
            return Value::error(format!(
                "ERR Invalid argument '{}' for SENTINEL DEBUG '{option}'",
                text(&args[j + 1])
            ));
        };
        let slot = match option.to_ascii_lowercase().as_str() {
            "info-period" => &mut t.info_period,
            "ping-period" => &mut t.ping_period,
            "ask-period" => &mut t.ask_period,
            "publish-period" => &mut t.publish_period,
            "default-down-after" => &mut t.default_down_after,
            "default-failover-timeout" => &mut t.default_failover_timeout,
            "slave-reconf-timeout" => &mut t.slave_reconf_timeout,
            "min-link-reconnect-period" => &mut t.min_link_reconnect_period,
            "election-timeout" => &mut t.election_timeout,
            _ => {
                return Value::error(format!(
                    "ERR Unknown option or number of arguments for SENTINEL DEBUG '{option}'"
                ))
            }
        };
        *slot = v;
        j += 2;
    }
    Value::ok()
}
