//! Hostname endpoints (`cluster-announce-hostname`, `cluster-preferred-endpoint-type`) in
//! CLUSTER SLOTS/SHARDS/NODES and MOVED, checked against a real redis-server 7 cluster
//! configured the same way: the bundled cluster must give the same shapes.

mod support;

use redcluster::resp::Value;
use redcluster::server::TestCluster;
use support::raw::{node_cmd, parts, text};
use support::real_cluster::RealCluster;
use support::wait::eventually;

/// What one endpoint is, independent of ports and ids: a hostname we set, `?`, NULL, "",
/// or an IP.
fn class(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        other => {
            let t = text(other);
            if t.starts_with("host-") {
                "H".into()
            } else if t == "?" || t.is_empty() {
                format!("{t:?}")
            } else if t.parse::<std::net::IpAddr>().is_ok() {
                "IP".into()
            } else {
                format!("other:{t}")
            }
        }
    }
}

fn keys_of(v: &Value) -> Vec<(String, String)> {
    let pairs: Vec<(Value, Value)> = match v {
        Value::Map(m) => m.clone(),
        Value::Array(a) => a.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect(),
        other => panic!("not a map: {other:?}"),
    };
    pairs
        .into_iter()
        .map(|(k, v)| {
            let k = text(&k);
            let shown = match k.as_str() {
                "ip" | "hostname" | "endpoint" => class(&v),
                _ => String::new(),
            };
            (k, shown)
        })
        .collect()
}

/// Everything about endpoints that node `addr` reports, normalised and sorted.
async fn endpoint_view(addr: &str, foreign_key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let slots = node_cmd(addr, &["CLUSTER", "SLOTS"]).await;
    let Value::Array(ranges) = slots else {
        panic!("{slots:?}")
    };
    for r in &ranges {
        let Value::Array(f) = r else { panic!() };
        for node in &f[2..] {
            let Value::Array(n) = node else { panic!() };
            out.push(format!("slots {} {:?}", class(&n[0]), keys_of(&n[3])));
        }
    }
    let shards = node_cmd(addr, &["CLUSTER", "SHARDS"]).await;
    let Value::Array(list) = shards else { panic!() };
    for shard in &list {
        let Value::Array(f) = shard else { panic!() };
        let Value::Array(nodes) = &f[3] else { panic!() };
        for n in nodes {
            let mut keys = keys_of(n);
            keys.retain(|(k, _)| k != "replication-offset" && k != "health");
            out.push(format!("shards {keys:?}"));
        }
    }
    let nodes = text(&node_cmd(addr, &["CLUSTER", "NODES"]).await);
    for line in nodes.lines() {
        let field = line.split(' ').nth(1).unwrap_or("");
        let shape = match field.split_once(',') {
            Some((_, h)) => format!("nodes ip:port@cport,{}", class(&Value::bulk(h))),
            None => "nodes ip:port@cport".to_string(),
        };
        out.push(shape);
    }
    let moved = text(&node_cmd(addr, &["GET", foreign_key]).await);
    let target = moved.split(' ').nth(2).unwrap_or("");
    let host = target.rsplit_once(':').map_or("", |(h, _)| h);
    out.push(format!("moved {}", class(&Value::bulk(host))));
    out.sort();
    out
}

/// The `ip:port` serving `slot`, from node `addr`'s CLUSTER NODES.
async fn owner_of(addr: &str, slot: u16) -> String {
    let nodes = text(&node_cmd(addr, &["CLUSTER", "NODES"]).await);
    for line in nodes.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        for r in &f[8.min(f.len())..] {
            let (lo, hi) = r.split_once('-').unwrap_or((r, r));
            if let (Ok(lo), Ok(hi)) = (lo.parse::<u16>(), hi.parse::<u16>()) {
                if (lo..=hi).contains(&slot) {
                    return f[1].split(['@', ',']).next().unwrap().to_string();
                }
            }
        }
    }
    panic!("nobody owns slot {slot}");
}

/// Give every node but the last a hostname, set `endpoint_type` on the first, wait for
/// gossip, and return the first node's view.
async fn configure_and_view(addrs: &[String], endpoint_type: &str) -> Vec<String> {
    for (i, a) in addrs.iter().enumerate().take(addrs.len() - 1) {
        let host = format!("host-{i}.example");
        let r = node_cmd(a, &["CONFIG", "SET", "cluster-announce-hostname", &host]).await;
        assert_eq!(text(&r), "OK");
    }
    let r = node_cmd(
        &addrs[0],
        &[
            "CONFIG",
            "SET",
            "cluster-preferred-endpoint-type",
            endpoint_type,
        ],
    )
    .await;
    assert_eq!(text(&r), "OK");
    // Redis leaves replicas whose replication offset is still 0 out of CLUSTER SLOTS: a
    // write to every primary makes every replica listed on both servers.
    for key in ["a", "b", "c", "d", "e", "f", "g", "h"] {
        let slot = redcluster::slot::key_slot(key.as_bytes());
        let owner = owner_of(&addrs[0], slot).await;
        assert_eq!(text(&node_cmd(&owner, &["SET", key, "1"]).await), "OK");
    }
    let want = addrs.len() - 1;
    eventually(
        "every hostname and replica offset gossiped to node 0",
        || async {
            let nodes = text(&node_cmd(&addrs[0], &["CLUSTER", "NODES"]).await);
            let listed = match node_cmd(&addrs[0], &["CLUSTER", "SLOTS"]).await {
                Value::Array(r) => r
                    .iter()
                    .map(|e| match e {
                        Value::Array(f) => f.len() - 2,
                        _ => 0,
                    })
                    .sum::<usize>(),
                _ => 0,
            };
            nodes.lines().filter(|l| l.contains(".example")).count() == want
                && listed == addrs.len()
        },
    )
    .await;
    // A key the first node does not own.
    let foreign = (0..)
        .map(|i| format!("k{i}"))
        .find(|k| {
            let slot = redcluster::slot::key_slot(k.as_bytes());
            slot > 5460
        })
        .unwrap();
    endpoint_view(&addrs[0], &foreign).await
}

#[tokio::test]
async fn hostname_endpoints_match_real_redis() {
    let Some(real) = RealCluster::start(3, 1) else {
        return;
    };
    let real_addrs: Vec<String> = real.nodes.iter().map(|n| n.addr().to_string()).collect();
    let bundled = TestCluster::builder()
        .primaries(3)
        .replicas_per_primary(1)
        .start()
        .await
        .unwrap();
    let ours: Vec<String> = bundled.nodes().iter().map(|n| n.addr.to_string()).collect();
    for endpoint_type in ["hostname", "unknown-endpoint", "ip"] {
        let theirs = configure_and_view(&real_addrs, endpoint_type).await;
        let mine = configure_and_view(&ours, endpoint_type).await;
        assert_eq!(
            mine, theirs,
            "cluster-preferred-endpoint-type {endpoint_type}"
        );
    }
    // CONFIG GET and CONFIG SET errors as Redis words them.
    for addr in [&real_addrs[0], &ours[0]] {
        let got =
            parts(&node_cmd(addr, &["CONFIG", "GET", "cluster-preferred-endpoint-type"]).await);
        assert_eq!(got, ["cluster-preferred-endpoint-type", "ip"]);
    }
    for args in [
        ["CONFIG", "SET", "cluster-preferred-endpoint-type", "dns"],
        ["CONFIG", "SET", "cluster-announce-hostname", "bad_name"],
    ] {
        let theirs = text(&node_cmd(&real_addrs[0], &args).await);
        let mine = text(&node_cmd(&ours[0], &args).await);
        assert_eq!(mine, theirs);
    }
}
