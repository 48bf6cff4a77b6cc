//! The three-primary fixture of the MIGRATE and slot-migration tests: slot 15495 (keys
//! `{a}...`) moved from the third primary to the first, over raw connections.

use std::net::SocketAddr;
use std::time::Duration;

use redcluster::resp::Value;
use redcluster::server::TestCluster;

use super::raw::Client;

/// `{a}` keys live in slot 15495, served by the third primary of the default layout.
pub const SLOT: &str = "15495";

pub struct Fixture {
    pub cluster: TestCluster,
    pub addrs: Vec<SocketAddr>,
    pub ids: Vec<String>,
}

pub async fn fixture(builder: redcluster::server::TestClusterBuilder) -> Fixture {
    let cluster = builder.start().await.expect("cluster starts");
    let nodes = cluster.nodes();
    Fixture {
        addrs: nodes.iter().map(|n| n.addr).collect(),
        ids: nodes.iter().map(|n| n.id.clone()).collect(),
        cluster,
    }
}

pub async fn three() -> Fixture {
    fixture(TestCluster::builder().primaries(3)).await
}

impl Fixture {
    pub async fn client(&self, i: usize) -> Client {
        Client::connect(self.addrs[i]).await
    }

    /// Open slot 15495 for a move from node 2 to node 0.
    pub async fn open(&self, src: &mut Client, dst: &mut Client) {
        let importing = ["CLUSTER", "SETSLOT", SLOT, "IMPORTING", &self.ids[2]];
        assert_eq!(dst.text(&importing).await, "OK");
        let migrating = ["CLUSTER", "SETSLOT", SLOT, "MIGRATING", &self.ids[0]];
        assert_eq!(src.text(&migrating).await, "OK");
    }

    pub fn port(&self, i: usize) -> String {
        self.addrs[i].port().to_string()
    }
}

pub fn ask_to(f: &Fixture, i: usize) -> String {
    format!("ASK {SLOT} {}", f.addrs[i])
}

pub const TRYAGAIN: &str = "TRYAGAIN Multiple keys request during rehashing of slot";

/// Repeat `args` until the reply reads `want` (10 s at most).
pub async fn wait_reply(c: &mut Client, args: &[&str], want: &str) {
    let mut last = String::new();
    for _ in 0..500 {
        last = c.text(args).await;
        if last == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{args:?}: wanted {want:?}, last reply {last:?}");
}

pub async fn info_field(c: &mut Client, field: &str) -> u64 {
    let info = c.text(&["CLUSTER", "INFO"]).await;
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in {info}"))
}

/// INCR `key` once, following an ASK from `src` to `dst` like a cluster client.
pub async fn incr_following_ask(src: &mut Client, dst: &mut Client, key: &str) -> i64 {
    match src.cmd(&["INCR", key]).await {
        Value::Integer(n) => n,
        Value::Error(e) if e.starts_with(b"ASK ") => {
            dst.send(&["ASKING"]).await;
            dst.send(&["INCR", key]).await;
            assert_eq!(super::raw::text(&dst.read().await.expect("reply")), "OK");
            match dst.read().await.expect("reply") {
                Value::Integer(n) => n,
                other => panic!("INCR on the target: {other:?}"),
            }
        }
        other => panic!("INCR on the source: {other:?}"),
    }
}

pub async fn connections_received(c: &mut Client) -> u64 {
    let info = c.text(&["INFO", "stats"]).await;
    info.lines()
        .find_map(|l| l.strip_prefix("total_connections_received:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("total_connections_received in {info}"))
}

/// DEL `key` once, following an ASK like a cluster client.
pub async fn del_following_ask(src: &mut Client, dst: &mut Client, key: &str) {
    match src.cmd(&["DEL", key]).await {
        Value::Integer(_) => {}
        Value::Error(e) if e.starts_with(b"ASK ") => {
            dst.send(&["ASKING"]).await;
            dst.send(&["DEL", key]).await;
            assert_eq!(super::raw::text(&dst.read().await.expect("reply")), "OK");
            assert!(matches!(dst.read().await, Some(Value::Integer(_))));
        }
        other => panic!("DEL on the source: {other:?}"),
    }
}
