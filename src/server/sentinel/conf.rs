//! sentinel.conf syntax for `redcluster-server --sentinel`: `port`, `requirepass`,
//! `sentinel monitor <name> <ip> <port> <quorum>` and the per-master directives that
//! follow it; directives that only matter to a real Sentinel's files and process
//! (`daemonize`, `logfile`, `dir`, `sentinel known-replica` ...) are accepted and ignored.

use std::time::Duration;

use super::{Monitor, SentinelConfig};

/// Split a config line into words, honouring double quotes.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

fn ms(v: &str, what: &str) -> Result<Duration, String> {
    v.parse::<u64>()
        .ok()
        .filter(|&n| n > 0)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("invalid {what}: '{v}'"))
}

/// Apply one directive (`words` already split) to `config`.
///
/// # Errors
/// An unknown directive, a bad number, or a per-master directive naming no monitored master.
pub fn apply(config: &mut SentinelConfig, w: &[String]) -> Result<(), String> {
    let Some(first) = w.first() else {
        return Ok(());
    };
    match (first.to_ascii_lowercase().as_str(), w.len()) {
        ("port", 2) => {
            config.port = w[1]
                .parse()
                .map_err(|_| format!("invalid port '{}'", w[1]))?;
        }
        ("requirepass", 2) => config.requirepass = Some(w[1].clone()),
        ("sentinel", n) if n >= 2 => return sentinel_directive(config, &w[1..]),
        (
            "daemonize" | "logfile" | "dir" | "bind" | "protected-mode" | "pidfile" | "loglevel"
            | "supervised" | "syslog-enabled",
            _,
        ) => {}
        _ => return Err(format!("unknown directive '{}'", w.join(" "))),
    }
    Ok(())
}

fn sentinel_directive(config: &mut SentinelConfig, w: &[String]) -> Result<(), String> {
    let key = w[0].to_ascii_lowercase();
    if key == "monitor" {
        let [_, name, ip, port, quorum] = w else {
            return Err("sentinel monitor <name> <ip> <port> <quorum>".into());
        };
        let addr = format!("{ip}:{port}")
            .parse()
            .map_err(|_| format!("invalid address {ip}:{port}"))?;
        let quorum = quorum
            .parse::<u32>()
            .ok()
            .filter(|&q| q > 0)
            .ok_or("Quorum must be 1 or greater.")?;
        config
            .monitors
            .push(Monitor::new(name.clone(), addr, quorum));
        return Ok(());
    }
    match key.as_str() {
        "myid" if w.len() == 2 => {
            config.myid = Some(w[1].clone());
            return Ok(());
        }
        "sentinel-pass" if w.len() == 2 => {
            config.sentinel_pass = Some(w[1].clone());
            return Ok(());
        }
        "deny-scripts-reconfig"
        | "resolve-hostnames"
        | "announce-hostnames"
        | "current-epoch"
        | "config-epoch"
        | "leader-epoch"
        | "known-replica"
        | "known-slave"
        | "known-sentinel"
        | "announce-ip"
        | "announce-port"
        | "sentinel-user" => return Ok(()),
        _ => {}
    }
    let (Some(name), Some(value)) = (w.get(1), w.get(2)) else {
        return Err(format!("unknown sentinel directive '{}'", w.join(" ")));
    };
    let Some(m) = config.monitors.iter_mut().find(|m| &m.name == name) else {
        return Err(format!("No such master with specified name: '{name}'"));
    };
    match key.as_str() {
        "down-after-milliseconds" => m.down_after = ms(value, "down-after-milliseconds")?,
        "failover-timeout" => m.failover_timeout = ms(value, "failover-timeout")?,
        "parallel-syncs" => {
            m.parallel_syncs = value
                .parse()
                .map_err(|_| format!("invalid parallel-syncs '{value}'"))?
        }
        "auth-pass" => m.auth_pass = Some(value.clone()),
        "auth-user" => m.auth_user = Some(value.clone()),
        "notification-script"
        | "client-reconfig-script"
        | "rename-command"
        | "master-reboot-down-after-period" => {}
        _ => return Err(format!("unknown sentinel directive '{}'", w.join(" "))),
    }
    Ok(())
}

/// Parse a whole sentinel.conf text.
///
/// # Errors
/// The first bad line, with its number.
pub fn parse(text: &str) -> Result<SentinelConfig, String> {
    let mut config = SentinelConfig::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        apply(&mut config, &words(line)).map_err(|e| format!("line {}: {e}", n + 1))?;
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_redis_sentinel_conf() {
        let c = parse(
            "port 26379\nsentinel monitor mymaster 127.0.0.1 6379 2\n\
             sentinel down-after-milliseconds mymaster 5000\n\
             sentinel failover-timeout mymaster 60000\nsentinel parallel-syncs mymaster 2\n\
             daemonize no\n# comment\n",
        )
        .unwrap();
        assert_eq!(c.port, 26379);
        assert_eq!(c.monitors.len(), 1);
        let m = &c.monitors[0];
        assert_eq!(
            (m.name.as_str(), m.addr.port(), m.quorum),
            ("mymaster", 6379, 2)
        );
        assert_eq!(m.down_after, Duration::from_millis(5000));
        assert_eq!(m.failover_timeout, Duration::from_secs(60));
        assert_eq!(m.parallel_syncs, 2);
        let err = parse("sentinel down-after-milliseconds nosuch 10\n").unwrap_err();
        assert!(err.contains("No such master"), "{err}");
        assert!(parse("sentinel monitor m 127.0.0.1 1 0\n").is_err());
    }
}
