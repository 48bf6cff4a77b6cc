//! MONITOR, LOLWUT and BGREWRITEAOF on the bundled cluster against a real redis-server 7.0:
//! the same commands from one connection, the same lines on a monitoring connection (after
//! the timestamp and the client's port, which differ), and the same LOLWUT replies where
//! Redis' art is not random.

mod support;

use redcluster::resp::Value;
use redcluster::server::TestCluster;
use support::raw::{text, Client};
use support::real_cluster::RealCluster;

/// Commands sent by the monitored connection (one reply each).
const SCRIPT: &[&[&str]] = &[
    &["SET", "k", "a b\"c\n\t\u{1}"],
    &["GET", "k"],
    &["INCR", "12"],
    &[
        "EVAL",
        "redis.call('set', KEYS[1], 'x') return redis.call('get', KEYS[1])",
        "1",
        "k",
    ],
    &[
        "EVAL_RO",
        "return redis.pcall('set', KEYS[1], 'x')",
        "1",
        "k",
    ],
    &["MULTI"],
    &["SET", "a", "1"],
    &["INCR", "a"],
    &["EXEC"],
    &["MULTI"],
    &["SET", "a"],
    &["EXEC"],
    &["SET", "a"],
    &["NOSUCH", "x"],
    &["SET", "x", "1", "2", "3"],
    &["AUTH", "pw"],
    &["AUTH", "user", "pw"],
    &["HELLO", "2", "AUTH", "default", "pw"],
    &["CLIENT", "SETNAME", "watched"],
    &["CLIENT", "LIST"],
    &["CONFIG", "GET", "maxmemory"],
    &["BLPOP", "nolist", "0.01"],
    &["LOLWUT"],
    &["PING"],
    &["MONITOR"],
];

/// What the monitor shows of `line`: everything after `[0 127.0.0.1:PORT] ` or the lua tag
/// (timestamps and ports differ between the two servers), with the source kind kept.
fn shown(line: &str) -> String {
    let (_, rest) = line.split_once(" [0 ").expect("a monitor line");
    let (who, cmd) = rest.split_once("] ").expect("a monitor line");
    let who = if who == "lua" { "lua" } else { "client" };
    format!("{who}: {cmd}")
}

async fn monitored(addr: std::net::SocketAddr) -> Vec<String> {
    let mut m = Client::connect(addr).await;
    assert_eq!(m.text(&["MONITOR"]).await, "OK");
    let mut c = Client::connect(addr).await;
    for cmd in SCRIPT {
        c.cmd(cmd).await;
    }
    // A last marker, then read the monitor up to it.
    c.cmd(&["ECHO", "end"]).await;
    let mut lines = Vec::new();
    loop {
        let Some(Value::SimpleString(l)) = m.read().await else {
            panic!("the monitor closed")
        };
        let l = String::from_utf8_lossy(&l).into_owned();
        assert!(
            l.split(' ')
                .next()
                .is_some_and(|t| t.len() == 17 && t.as_bytes()[10] == b'.'),
            "timestamp of {l}"
        );
        if l.ends_with("\"ECHO\" \"end\"") {
            return lines;
        }
        lines.push(shown(&l));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_streams_commands_like_redis_server() {
    let Some(real) = RealCluster::single() else {
        return;
    };
    let ours = TestCluster::builder().primaries(1).start().await.unwrap();
    let want = monitored(real.nodes[0].addr()).await;
    let got = monitored(ours.seeds()[0]).await;
    assert!(want.len() > 15, "{want:#?}");
    assert_eq!(want, got);
    // A monitoring connection is flagged O; RESET ends monitoring.
    let mut m = Client::connect(ours.seeds()[0]).await;
    m.cmd(&["MONITOR"]).await;
    let info = m.text(&["CLIENT", "INFO"]).await;
    assert!(info.contains(" flags=O "), "{info}");
    m.send(&["RESET"]).await;
    // The monitor line of CLIENT INFO may come before RESET's reply.
    loop {
        let reply = text(&m.read().await.expect("a reply"));
        if reply == "RESET" {
            break;
        }
        assert!(reply.contains("\"CLIENT\" \"INFO\""), "{reply}");
    }
    let mut c = Client::connect(ours.seeds()[0]).await;
    c.cmd(&["SET", "after", "reset"]).await;
    assert_eq!(m.text(&["PING"]).await, "PONG");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lolwut_and_bgrewriteaof_reply_like_redis_server() {
    let Some(real) = RealCluster::single() else {
        return;
    };
    let ours = TestCluster::builder().primaries(1).start().await.unwrap();
    let mut r = Client::connect(real.nodes[0].addr()).await;
    let mut o = Client::connect(ours.seeds()[0]).await;
    for resp3 in [false, true] {
        if resp3 {
            r.cmd(&["HELLO", "3"]).await;
            o.cmd(&["HELLO", "3"]).await;
        }
        // Version 5's first two rows of squares are not rotated: fully determined.
        for cmd in [
            &["LOLWUT"][..],
            &["LOLWUT", "VERSION"],
            &["LOLWUT", "VERSION", "7"],
            &["LOLWUT", "VERSION", "x"],
            &["LOLWUT", "VERSION", "5", "20", "4", "2"],
            &["LOLWUT", "VERSION", "5", "1", "1", "1"],
            &["LOLWUT", "VERSION", "5", "x"],
            &["LOLWUT", "VERSION", "6", "0", "x"],
            &["LOLWUT", "VERSION", "59"],
        ] {
            assert_eq!(r.cmd_raw(cmd).await, o.cmd_raw(cmd).await, "{cmd:?}");
        }
        // Random art: the same shape (rows, trailer).
        for cmd in [
            &["LOLWUT", "VERSION", "5", "30", "5", "7"][..],
            &["LOLWUT", "VERSION", "6", "30", "9"],
        ] {
            let (want, got) = (text(&r.cmd(cmd).await), text(&o.cmd(cmd).await));
            assert_eq!(want.lines().count(), got.lines().count(), "{cmd:?}");
            assert_eq!(want.lines().last(), got.lines().last(), "{cmd:?}");
        }
    }
    assert_eq!(
        r.cmd_raw(&["BGREWRITEAOF"]).await,
        o.cmd_raw(&["BGREWRITEAOF"]).await
    );
}
