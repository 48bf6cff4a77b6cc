//! Discovery without Redis Cluster: one primary with replicas (`REPLICAOF`), found from the
//! nodes themselves.
//!
//! The deployment becomes a topology of ONE shard owning all 16384 slots, so routing,
//! `ReadFrom`, the pool and the stats stay the one path cluster mode uses.
//!
//! Every known node and every seed is asked `INFO replication` (one round trip each, all at
//! once). The primary is a node that says `role:master`; when several do (a replica promoted
//! by `REPLICAOF NO ONE` while the old primary still runs), the one most replicas follow wins
//! (its own list of `online` replicas), then the one the client already uses. Two names for
//! one node (a seed's DNS name and the address a replica gives) are told apart by the
//! replication id they report. A replica serves reads when the primary lists it `online`
//! with its last acknowledgement at most [`MAX_REPLICA_LAG`] seconds old, and it answers
//! itself with its link to that primary up and no full sync in progress.
//!
//! When no reachable node says `master` (the primary is down and nobody promoted a replica
//! yet), the address most replicas name as their primary is kept as the primary, with the
//! reachable replicas serving reads: writes fail until a primary is back, reads go on.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::join_all;

use super::Inner;
use crate::error::{Error, ErrorKind};
use crate::resp::Value;
use crate::slot::SLOT_COUNT;
use crate::topology::{Node, NodeHealth, Shard, Topology};

/// A replica whose primary heard from it longer ago than this (seconds; replicas acknowledge
/// every second) is not sent reads.
pub(crate) const MAX_REPLICA_LAG: u64 = 5;

/// One replica as its primary lists it (`slaveN:ip=..,port=..,state=..,offset=..,lag=..`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ReplicaLine {
    /// `ip:port` as the primary knows it.
    pub(crate) addr: String,
    /// `state=online`: past the initial sync and streaming.
    pub(crate) online: bool,
    /// Seconds since its last acknowledgement.
    pub(crate) lag: u64,
}

/// One node's replication role, from its `INFO replication`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// `role:master`.
    Primary {
        /// `master_replid`: the same on every name of one node, new after a promotion.
        replid: String,
        /// The replicas it lists.
        replicas: Vec<ReplicaLine>,
    },
    /// `role:slave`.
    Replica {
        /// `master_host:master_port`.
        primary: String,
        /// `master_link_status:up` and no full sync in progress.
        link_up: bool,
    },
}

impl Role {
    /// True for a primary.
    pub(crate) fn is_primary(&self) -> bool {
        matches!(self, Role::Primary { .. })
    }
}

fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        l.trim_end_matches('\r')
            .strip_prefix(name)
            .and_then(|r| r.strip_prefix(':'))
    })
}

/// Parse an `INFO replication` reply.
///
/// # Errors
/// [`ErrorKind::Protocol`] when it names no role this client understands (a Sentinel
/// answers `INFO replication` with nothing).
pub(crate) fn parse_role(text: &str) -> Result<Role, Error> {
    match field(text, "role") {
        Some("master") => {
            let replicas = text
                .lines()
                .filter_map(|l| {
                    let (name, rest) = l.trim_end_matches('\r').split_once(':')?;
                    let n = name.strip_prefix("slave")?;
                    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                        return None;
                    }
                    let kv = |k: &str| {
                        rest.split(',')
                            .find_map(|p| p.strip_prefix(k)?.strip_prefix('='))
                    };
                    Some(ReplicaLine {
                        addr: format!("{}:{}", kv("ip")?, kv("port")?.parse::<u16>().ok()?),
                        online: kv("state") == Some("online"),
                        lag: kv("lag").and_then(|v| v.parse().ok()).unwrap_or(0),
                    })
                })
                .collect();
            Ok(Role::Primary {
                replid: field(text, "master_replid").unwrap_or("").to_string(),
                replicas,
            })
        }
        Some("slave") => {
            let host = field(text, "master_host").unwrap_or("");
            let port = field(text, "master_port").unwrap_or("0");
            Ok(Role::Replica {
                primary: format!("{host}:{port}"),
                link_up: field(text, "master_link_status") == Some("up")
                    && field(text, "master_sync_in_progress") != Some("1"),
            })
        }
        other => Err(Error::new(
            ErrorKind::Protocol,
            format!("INFO replication names no primary or replica role ({other:?})"),
        )),
    }
}

/// The topology from the roles the nodes reported (`views`, by the address they were asked
/// at, in the order asked: known primary first). `current` is the primary in use, preferred
/// on a tie. `None` when nothing points at a primary.
pub(crate) fn choose(views: &[(String, Role)], current: Option<&str>) -> Option<Topology> {
    // One entry per distinct primary (by replication id), in the order asked.
    let mut primaries: Vec<(&str, &str, &[ReplicaLine])> = Vec::new();
    for (addr, role) in views {
        if let Role::Primary { replid, replicas } = role {
            if !primaries
                .iter()
                .any(|p| !replid.is_empty() && p.1 == replid)
            {
                primaries.push((addr, replid, replicas));
            }
        }
    }
    let followers = |rs: &[ReplicaLine]| rs.iter().filter(|r| r.online).count();
    let best = primaries
        .iter()
        .enumerate()
        .max_by_key(|(i, p)| (followers(p.2), Some(p.0) == current, usize::MAX - i));
    let own = |addr: &str| views.iter().find(|(a, _)| a == addr).map(|(_, r)| r);
    let (primary, replicas): (String, Vec<Node>) = match best {
        Some((_, (addr, _, lines))) => {
            let healthy = lines
                .iter()
                .filter(|r| r.online && r.lag <= MAX_REPLICA_LAG)
                .filter(|r| matches!(own(&r.addr), Some(Role::Replica { link_up: true, .. })))
                .map(|r| online(&r.addr))
                .collect();
            (addr.to_string(), healthy)
        }
        None => {
            // Nobody says master: keep the primary most replicas name (it may come back).
            let mut named: HashMap<&str, usize> = HashMap::new();
            for (_, role) in views {
                if let Role::Replica { primary, .. } = role {
                    *named.entry(primary).or_default() += 1;
                }
            }
            let (primary, _) = named.into_iter().max_by_key(|(a, n)| (*n, *a))?;
            let replicas = views
                .iter()
                .filter(|(_, r)| matches!(r, Role::Replica { primary: p, .. } if p == primary))
                .map(|(a, _)| online(a))
                .collect();
            (primary.to_string(), replicas)
        }
    };
    Some(one_shard(&primary, replicas))
}

fn online(addr: &str) -> Node {
    Node {
        health: NodeHealth::Online,
        ..Node::from_addr(addr)
    }
}

/// One shard, primary `addr`, owning every slot.
pub(crate) fn one_shard(addr: &str, replicas: Vec<Node>) -> Topology {
    Topology::from_shards(vec![Shard {
        primary: online(addr),
        replicas,
        slot_ranges: vec![(0, SLOT_COUNT - 1)],
        config_epoch: 0,
    }])
}

/// Ask `addr` for its `INFO replication` on a primary connection.
pub(crate) async fn fetch_role(inner: &Arc<Inner>, addr: &str) -> Result<Role, Error> {
    let ask = async {
        let entry = inner.pool.entry(addr);
        let conn = inner.pool.conn(&entry, false).await?;
        match conn.request(&["INFO", "replication"]).await? {
            Value::Error(line) => Err(Error::server(&String::from_utf8_lossy(&line))),
            v => {
                let text = v
                    .as_bytes()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                parse_role(&text)
            }
        }
    };
    match tokio::time::timeout(inner.config.request_timeout, ask).await {
        Ok(r) => r,
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!("{addr} did not answer INFO replication in time"),
        )),
    }
}

/// Ask each of `addrs` concurrently; (address, role) for those that answered, and the others'
/// failures as text.
pub(crate) async fn fetch_roles(
    inner: &Arc<Inner>,
    addrs: &[String],
) -> (Vec<(String, Role)>, Vec<String>) {
    let results = join_all(addrs.iter().map(|a| fetch_role(inner, a))).await;
    let mut views = Vec::new();
    let mut failures = Vec::new();
    for (a, r) in addrs.iter().zip(results) {
        match r {
            Ok(role) => views.push((a.clone(), role)),
            Err(e) => failures.push(format!("{a}: {e}")),
        }
    }
    (views, failures)
}

/// Add to `views` the roles of the replicas the primaries list that were not asked yet (so a
/// replica serves reads only once it answered itself).
pub(crate) async fn add_listed_replicas(inner: &Arc<Inner>, views: &mut Vec<(String, Role)>) {
    let mut more: Vec<String> = Vec::new();
    for (_, role) in views.iter() {
        if let Role::Primary { replicas, .. } = role {
            for r in replicas {
                if !views.iter().any(|(a, _)| *a == r.addr) && !more.contains(&r.addr) {
                    more.push(r.addr.clone());
                }
            }
        }
    }
    let (extra, _) = fetch_roles(inner, &more).await;
    views.extend(extra);
}

/// Discover the deployment from the known nodes and the seeds.
///
/// # Errors
/// [`ErrorKind::Config`] listing each node's failure when none answered, or none points at
/// a primary.
pub(crate) async fn discover(inner: &Arc<Inner>) -> Result<Topology, Error> {
    let current = inner.topology.load();
    let mut candidates = current.addrs();
    for s in &inner.config.seeds {
        if !candidates.contains(s) {
            candidates.push(s.clone());
        }
    }
    let (mut views, failures) = fetch_roles(inner, &candidates).await;
    add_listed_replicas(inner, &mut views).await;
    let in_use = current.shards().first().map(|s| s.primary.addr.as_str());
    choose(&views, in_use).ok_or_else(|| {
        Error::new(
            ErrorKind::Config,
            format!(
                "no node answered as a primary or a replica ({})",
                failures.join("; ")
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIMARY: &str = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\n\
        slave0:ip=127.0.0.1,port=7001,state=online,offset=100,lag=0\r\n\
        slave1:ip=127.0.0.1,port=7002,state=wait_bgsave,offset=0,lag=0\r\n\
        master_failover_state:no-failover\r\nmaster_replid:aaa\r\nmaster_replid2:000\r\n\
        master_repl_offset:100\r\n";

    fn replica(of: &str, up: bool) -> Role {
        Role::Replica {
            primary: of.to_string(),
            link_up: up,
        }
    }

    #[test]
    fn info_replication_parses_for_both_roles() {
        let Role::Primary { replid, replicas } = parse_role(PRIMARY).unwrap() else {
            panic!("primary");
        };
        assert_eq!(replid, "aaa");
        assert_eq!(replicas.len(), 2);
        assert_eq!(replicas[0].addr, "127.0.0.1:7001");
        assert!(replicas[0].online && !replicas[1].online);
        let r = parse_role(
            "role:slave\r\nmaster_host:10.0.0.1\r\nmaster_port:7000\r\n\
             master_link_status:up\r\nmaster_sync_in_progress:0\r\n",
        )
        .unwrap();
        assert_eq!(r, replica("10.0.0.1:7000", true));
        let r = parse_role(
            "role:slave\r\nmaster_host:h\r\nmaster_port:1\r\nmaster_link_status:down\r\n",
        )
        .unwrap();
        assert_eq!(r, replica("h:1", false));
        assert!(parse_role("").is_err());
        assert!(parse_role("role:sentinel\r\n").is_err());
    }

    #[test]
    fn healthy_online_replicas_serve_reads() {
        let views = vec![
            ("p:1".to_string(), parse_role(PRIMARY).unwrap()),
            ("127.0.0.1:7001".to_string(), replica("p:1", true)),
            ("127.0.0.1:7002".to_string(), replica("p:1", false)),
        ];
        let t = choose(&views, None).unwrap();
        let shard = &t.shards()[0];
        assert_eq!(shard.primary.addr, "p:1");
        assert_eq!(t.covered_slots(), usize::from(SLOT_COUNT));
        let rs: Vec<&str> = shard.replicas.iter().map(|r| r.addr.as_str()).collect();
        assert_eq!(rs, ["127.0.0.1:7001"], "7002 is still syncing");
        // A replica the client could not reach itself is not used.
        let t = choose(&views[..1], None).unwrap();
        assert!(t.shards()[0].replicas.is_empty());
    }

    #[test]
    fn the_primary_the_replicas_follow_wins() {
        let lonely = Role::Primary {
            replid: "bbb".into(),
            replicas: vec![],
        };
        let views = vec![
            ("old:1".to_string(), lonely.clone()),
            ("p:1".to_string(), parse_role(PRIMARY).unwrap()),
            ("127.0.0.1:7001".to_string(), replica("p:1", true)),
        ];
        let t = choose(&views, Some("old:1")).unwrap();
        assert_eq!(t.primary_for_slot(0), Some("p:1"));
        // A tie keeps the primary in use; otherwise the first asked.
        let two = vec![
            ("a:1".to_string(), lonely.clone()),
            (
                "b:1".to_string(),
                Role::Primary {
                    replid: "ccc".into(),
                    replicas: vec![],
                },
            ),
        ];
        assert_eq!(
            choose(&two, Some("b:1")).unwrap().primary_for_slot(0),
            Some("b:1")
        );
        assert_eq!(choose(&two, None).unwrap().primary_for_slot(0), Some("a:1"));
        // One node under two names (same replication id) is one primary.
        let same = vec![
            ("name:1".to_string(), lonely.clone()),
            ("ip:1".to_string(), lonely),
        ];
        assert_eq!(
            choose(&same, Some("ip:1")).unwrap().primary_for_slot(0),
            Some("name:1")
        );
    }

    #[test]
    fn without_a_primary_the_one_replicas_name_is_kept() {
        let views = vec![
            ("r1:1".to_string(), replica("gone:1", false)),
            ("r2:1".to_string(), replica("gone:1", false)),
        ];
        let t = choose(&views, None).unwrap();
        assert_eq!(t.primary_for_slot(0), Some("gone:1"));
        assert_eq!(t.shards()[0].replicas.len(), 2);
        assert!(choose(&[], None).is_none());
    }
}
