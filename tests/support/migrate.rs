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

/// The number `field` of `c`'s `field:value` text reply to `args` (INFO, CLUSTER INFO).
async fn info_number(c: &mut Client, args: &[&str], field: &str) -> u64 {
    let info = c.text(args).await;
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in {info}"))
}

pub async fn info_field(c: &mut Client, field: &str) -> u64 {
    info_number(c, &["CLUSTER", "INFO"], field).await
}

pub async fn connections_received(c: &mut Client) -> u64 {
    info_number(c, &["INFO", "stats"], "total_connections_received").await
}

/// Send `args` to `src` once, following an ASK to `dst` like a cluster client: the reply.
async fn following_ask(src: &mut Client, dst: &mut Client, args: &[&str]) -> Value {
    match src.cmd(args).await {
        Value::Error(e) if e.starts_with(b"ASK ") => {
            dst.send(&["ASKING"]).await;
            dst.send(args).await;
            assert_eq!(super::raw::text(&dst.read().await.expect("reply")), "OK");
            dst.read().await.expect("reply")
        }
        reply => reply,
    }
}

/// INCR `key` once, following an ASK from `src` to `dst` like a cluster client.
pub async fn incr_following_ask(src: &mut Client, dst: &mut Client, key: &str) -> i64 {
    match following_ask(src, dst, &["INCR", key]).await {
        Value::Integer(n) => n,
        other => panic!("INCR {key}: {other:?}"),
    }
}

/// DEL `key` once, following an ASK like a cluster client.
pub async fn del_following_ask(src: &mut Client, dst: &mut Client, key: &str) {
    let reply = following_ask(src, dst, &["DEL", key]).await;
    assert!(matches!(reply, Value::Integer(_)), "DEL {key}: {reply:?}");
}
