//! Pure parsers for `CLUSTER SHARDS`, `CLUSTER SLOTS` and `CLUSTER NODES` replies.
//!
//! Each accepts both the RESP2 and the RESP3 shape of its reply and never panics on a
//! malformed one: it returns an [`ErrorKind::Protocol`](crate::ErrorKind::Protocol) error.
//! `queried` is the address the reply came from; Redis reports `?` or an empty endpoint for a
//! node that does not know its own address, and then the queried host is used.

use std::collections::HashMap;

use super::{Node, NodeHealth, Shard};
use crate::error::{Error, ErrorKind};
use crate::resp::Value;

fn bad(what: &str) -> Error {
    Error::new(
        ErrorKind::Protocol,
        format!("malformed cluster topology reply: {what}"),
    )
}

fn text(v: &Value) -> Option<&str> {
    match v {
        Value::BulkString(b) | Value::SimpleString(b) => std::str::from_utf8(b).ok(),
        Value::Verbatim { text, .. } => std::str::from_utf8(text).ok(),
        _ => None,
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(*i),
        other => text(other).and_then(|s| s.parse().ok()),
    }
}

fn items(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(a) | Value::Set(a) => Some(a),
        _ => None,
    }
}

/// Key-value pairs of a RESP3 map or a RESP2 flat array.
fn pairs(v: &Value) -> Option<Vec<(&str, &Value)>> {
    match v {
        Value::Map(m) => Some(m.iter().filter_map(|(k, v)| Some((text(k)?, v))).collect()),
        Value::Array(a) if a.len() % 2 == 0 => Some(
            a.chunks(2)
                .filter_map(|c| Some((text(&c[0])?, &c[1])))
                .collect(),
        ),
        _ => None,
    }
}

/// `host:port`, bracketing IPv6 hosts; `?`/empty hosts replaced by the queried host.
fn join_addr(host: &str, port: i64, queried: &str) -> Option<String> {
    let port = u16::try_from(port).ok().filter(|p| *p != 0)?;
    let host = if host.is_empty() || host == "?" {
        host_of(queried)
    } else {
        host
    };
    Some(if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

fn host_of(addr: &str) -> &str {
    match addr.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
        None => addr,
    }
}

fn slot(v: i64) -> Result<u16, Error> {
    u16::try_from(v)
        .ok()
        .filter(|s| *s < crate::slot::SLOT_COUNT)
        .ok_or_else(|| bad("slot out of range"))
}

/// Parse a `CLUSTER SHARDS` reply (Redis 7+).
///
/// # Errors
/// [`ErrorKind::Protocol`] when the reply does not have the documented shape.
pub(crate) fn parse_shards(reply: &Value, queried: &str) -> Result<Vec<Shard>, Error> {
    let list = items(reply).ok_or_else(|| bad("CLUSTER SHARDS is not an array"))?;
    let mut out = Vec::with_capacity(list.len());
    for entry in list {
        let fields = pairs(entry).ok_or_else(|| bad("shard is not a map"))?;
        let mut ranges = Vec::new();
        let mut primary = None;
        let mut replicas = Vec::new();
        for (k, v) in fields {
            match k {
                "slots" => {
                    let nums = items(v).ok_or_else(|| bad("slots is not an array"))?;
                    for pair in nums.chunks(2) {
                        let (Some(lo), Some(hi)) =
                            (pair.first().and_then(int), pair.get(1).and_then(int))
                        else {
                            return Err(bad("slot range"));
                        };
                        ranges.push((slot(lo)?, slot(hi)?));
                    }
                }
                "nodes" => {
                    for n in items(v).ok_or_else(|| bad("nodes is not an array"))? {
                        let nf = pairs(n).ok_or_else(|| bad("node is not a map"))?;
                        let get = |name: &str| nf.iter().find(|(k, _)| *k == name).map(|p| p.1);
                        let port = get("port")
                            .and_then(int)
                            .or_else(|| get("tls-port").and_then(int));
                        // `endpoint` follows cluster-preferred-endpoint-type: an IP, a
                        // hostname, `?` (no hostname announced) or "" (unknown-endpoint).
                        let host = match get("endpoint").and_then(text) {
                            Some("") => "",
                            Some("?") | None => get("ip").and_then(text).unwrap_or(""),
                            Some(h) => h,
                        };
                        let Some(addr) = port.and_then(|p| join_addr(host, p, queried)) else {
                            continue;
                        };
                        let health = match get("health").and_then(text) {
                            Some("online") => NodeHealth::Online,
                            Some("loading") => NodeHealth::Loading,
                            Some("fail") | Some("failed") => NodeHealth::Failed,
                            _ => NodeHealth::Unknown,
                        };
                        let node = Node {
                            addr,
                            id: get("id").and_then(text).map(str::to_string),
                            health,
                        };
                        match get("role").and_then(text) {
                            Some("master") | Some("primary") => primary = Some(node),
                            _ => replicas.push(node),
                        }
                    }
                }
                _ => {}
            }
        }
        // A shard whose primary is unknown cannot serve its slots; one without slots has
        // nothing to route. Both are left out.
        if let Some(primary) = primary {
            if !ranges.is_empty() {
                out.push(Shard {
                    primary,
                    replicas,
                    slot_ranges: ranges,
                    config_epoch: 0,
                });
            }
        }
    }
    Ok(out)
}

/// A CLUSTER SLOTS node: `[endpoint, port, id, {ip, hostname}]`. The endpoint is what
/// `cluster-preferred-endpoint-type` says: an IP, a hostname, `?` (hostname type, but the node
/// announces none: its `ip` from the map is used), or NULL (unknown-endpoint: the address
/// the reply came from is used, as Redis documents).
fn slots_node(v: &Value, queried: &str) -> Result<Option<Node>, Error> {
    let f = items(v).ok_or_else(|| bad("CLUSTER SLOTS node is not an array"))?;
    let ip_field = || {
        f.get(3)
            .and_then(pairs)
            .and_then(|m| m.into_iter().find(|(k, _)| *k == "ip"))
            .and_then(|(_, v)| text(v))
    };
    let host = match f.first().and_then(text) {
        Some("?") => ip_field().unwrap_or(""),
        Some(h) => h,
        None => "",
    };
    let port = f.get(1).and_then(int).ok_or_else(|| bad("node port"))?;
    Ok(join_addr(host, port, queried).map(|addr| Node {
        addr,
        id: f.get(2).and_then(text).map(str::to_string),
        health: NodeHealth::Unknown,
    }))
}

/// Parse a `CLUSTER SLOTS` reply (all Redis versions; deprecated in 7 but kept as fallback).
/// Ranges with the same primary are gathered into one shard.
///
/// # Errors
/// [`ErrorKind::Protocol`] when the reply does not have the documented shape.
pub(crate) fn parse_slots(reply: &Value, queried: &str) -> Result<Vec<Shard>, Error> {
    let list = items(reply).ok_or_else(|| bad("CLUSTER SLOTS is not an array"))?;
    let mut out: Vec<Shard> = Vec::new();
    for entry in list {
        let f = items(entry).ok_or_else(|| bad("slot range is not an array"))?;
        if f.len() < 3 {
            return Err(bad("slot range too short"));
        }
        let lo = slot(int(&f[0]).ok_or_else(|| bad("start slot"))?)?;
        let hi = slot(int(&f[1]).ok_or_else(|| bad("end slot"))?)?;
        let Some(primary) = slots_node(&f[2], queried)? else {
            continue;
        };
        let mut replicas = Vec::new();
        for r in &f[3..] {
            if let Some(n) = slots_node(r, queried)? {
                replicas.push(n);
            }
        }
        match out.iter_mut().find(|s| s.primary.addr == primary.addr) {
            Some(s) => {
                s.slot_ranges.push((lo, hi));
                for r in replicas {
                    if !s.replicas.iter().any(|x| x.addr == r.addr) {
                        s.replicas.push(r);
                    }
                }
            }
            None => out.push(Shard {
                primary,
                replicas,
                slot_ranges: vec![(lo, hi)],
                config_epoch: 0,
            }),
        }
    }
    Ok(out)
}

/// Parse `CLUSTER NODES` text into shards, with config epochs and health from the flags.
/// Migrating/importing markers (`[5-<-id]`) are skipped: ownership is what routes.
///
/// # Errors
/// [`ErrorKind::Protocol`] for a line with too few fields.
pub(crate) fn parse_nodes(reply: &str, queried: &str) -> Result<Vec<Shard>, Error> {
    struct Line<'a> {
        id: &'a str,
        addr: Option<String>,
        flags: Vec<&'a str>,
        master: &'a str,
        epoch: u64,
        ranges: Vec<(u16, u16)>,
    }
    let mut lines = Vec::new();
    for raw in reply.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let f: Vec<&str> = raw.split_whitespace().collect();
        if f.len() < 8 {
            return Err(bad("CLUSTER NODES line has fewer than 8 fields"));
        }
        // ip:port@cport[,hostname]
        let hostport = f[1].split(['@', ',']).next().unwrap_or("");
        let addr = hostport
            .rsplit_once(':')
            .and_then(|(h, p)| join_addr(h, p.parse().ok()?, queried));
        let mut ranges = Vec::new();
        for r in &f[8..] {
            if r.starts_with('[') {
                continue;
            }
            let (lo, hi) = r.split_once('-').unwrap_or((r, r));
            let (Ok(lo), Ok(hi)) = (lo.parse::<i64>(), hi.parse::<i64>()) else {
                return Err(bad("slot range in CLUSTER NODES"));
            };
            ranges.push((slot(lo)?, slot(hi)?));
        }
        lines.push(Line {
            id: f[0],
            addr,
            flags: f[2].split(',').collect(),
            master: f[3],
            epoch: f[6].parse().unwrap_or(0),
            ranges,
        });
    }
    let health = |flags: &[&str]| {
        if flags
            .iter()
            .any(|f| *f == "fail" || *f == "fail?" || *f == "noaddr")
        {
            NodeHealth::Failed
        } else {
            NodeHealth::Online
        }
    };
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    let mut out: Vec<Shard> = Vec::new();
    for l in lines.iter().filter(|l| l.flags.contains(&"master")) {
        let Some(addr) = l.addr.clone() else { continue };
        if l.ranges.is_empty() {
            continue;
        }
        by_id.insert(l.id, out.len());
        out.push(Shard {
            primary: Node {
                addr,
                id: Some(l.id.to_string()),
                health: health(&l.flags),
            },
            replicas: Vec::new(),
            slot_ranges: l.ranges.clone(),
            config_epoch: l.epoch,
        });
    }
    for l in lines.iter().filter(|l| l.flags.contains(&"slave")) {
        let (Some(&i), Some(addr)) = (by_id.get(l.master), l.addr.clone()) else {
            continue;
        };
        out[i].replicas.push(Node {
            addr,
            id: Some(l.id.to_string()),
            health: health(&l.flags),
        });
    }
    Ok(out)
}

/// Config epochs by primary node id, from `CLUSTER NODES` text (lines that do not parse are
/// skipped: epochs only order views).
pub(crate) fn epochs_from_nodes(reply: &str) -> HashMap<String, u64> {
    reply
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() >= 8 && f[2].contains("master") {
                Some((f[0].to_string(), f[6].parse().ok()?))
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
