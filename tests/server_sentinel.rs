//! The bundled Sentinel on its own (no data node needed): the monitor list and its
//! settings, SDOWN/ODOWN of a master nothing answers for, events on its pub/sub, AUTH,
//! CLIENT, SHUTDOWN, kill/restart, and bad input. Replies compared with a real Sentinel,
//! and failovers, are in `server_sentinel_real.rs`.
#![cfg(feature = "server")]

mod support;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use redcluster::resp::Value;
use redcluster::server::{Monitor, Sentinel, SentinelConfig, TestSentinels};
use support::raw::{node_cmd, parts, text, Client};
use support::wait::eventually;

/// An address nothing listens on (bound, then released).
fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn field(v: &Value, name: &str) -> Option<String> {
    let p = parts(v);
    p.chunks(2).find(|c| c[0] == name).map(|c| c[1].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_set_remove_and_sdown_odown_of_an_unreachable_master() {
    let sentinels = TestSentinels::builder().sentinels(1).start().await.unwrap();
    let s = sentinels.addr(0);
    let mut c = Client::connect(s).await;
    let mut ev = Client::connect(s).await;
    assert_eq!(
        parts(
            &ev.cmd(&["SUBSCRIBE", "+monitor", "+sdown", "+odown", "+set"])
                .await
        )[0],
        "subscribe"
    );
    for _ in 0..3 {
        ev.read().await.expect("subscribe confirmations");
    }
    assert_eq!(
        c.cmd(&["ROLE"]).await,
        Value::Array(vec![Value::bulk("sentinel"), Value::Array(vec![])])
    );
    assert_eq!(c.cmd(&["SENTINEL", "masters"]).await, Value::Array(vec![]));

    let dead = dead_addr();
    let port = dead.port().to_string();
    assert_eq!(
        c.cmd(&["SENTINEL", "monitor", "m1", "127.0.0.1", &port, "1"])
            .await,
        Value::ok()
    );
    let p = parts(&ev.read().await.unwrap());
    assert_eq!(
        p,
        [
            "message",
            "+monitor",
            &format!("master m1 127.0.0.1 {port} quorum 1")
        ]
    );
    assert_eq!(
        c.cmd(&[
            "SENTINEL",
            "set",
            "m1",
            "down-after-milliseconds",
            "300",
            "auth-pass",
            "secret"
        ])
        .await,
        Value::ok()
    );
    let p = parts(&ev.read().await.unwrap());
    assert_eq!(
        p[2],
        format!("master m1 127.0.0.1 {port} down-after-milliseconds 300")
    );
    let p = parts(&ev.read().await.unwrap());
    assert_eq!(
        p[2],
        format!("master m1 127.0.0.1 {port} auth-pass ******"),
        "passwords never echoed"
    );
    let m = c.cmd(&["SENTINEL", "master", "m1"]).await;
    assert_eq!(field(&m, "down-after-milliseconds").as_deref(), Some("300"));
    assert_eq!(field(&m, "quorum").as_deref(), Some("1"));
    assert!(!format!("{m:?}").contains("secret"));

    // Nothing answers: SDOWN after 300 ms, and with quorum 1 this Sentinel alone makes ODOWN.
    let p = parts(&ev.read().await.unwrap());
    assert_eq!(
        p,
        ["message", "+sdown", &format!("master m1 127.0.0.1 {port}")]
    );
    let p = parts(&ev.read().await.unwrap());
    assert_eq!(
        p,
        [
            "message",
            "+odown",
            &format!("master m1 127.0.0.1 {port} #quorum 1/1")
        ]
    );
    let m = c.cmd(&["SENTINEL", "master", "m1"]).await;
    let flags = field(&m, "flags").unwrap();
    assert!(
        flags.starts_with("s_down,o_down,master,disconnected"),
        "{flags}"
    );
    let info = c.text(&["INFO", "sentinel"]).await;
    assert!(
        info.contains(&format!(
            "master0:name=m1,status=odown,address=127.0.0.1:{port},slaves=0,sentinels=1"
        )),
        "{info}"
    );
    // No replica to promote.
    let r = c.cmd(&["SENTINEL", "failover", "m1"]).await;
    assert!(
        matches!(&r, Value::Error(e) if &e[..] == b"INPROG Failover already in progress" || &e[..] == b"NOGOODSLAVE No suitable replica to promote"),
        "{r:?}"
    );
    assert_eq!(
        c.cmd(&["SENTINEL", "get-master-addr-by-name", "m1"]).await,
        Value::Array(vec![Value::bulk("127.0.0.1"), Value::bulk(&port)])
    );
    assert_eq!(
        c.cmd(&[
            "SENTINEL",
            "is-master-down-by-addr",
            "127.0.0.1",
            &port,
            "0",
            "*"
        ])
        .await,
        Value::Array(vec![Value::Integer(1), Value::bulk("*"), Value::Integer(0)])
    );
    assert_eq!(c.cmd(&["SENTINEL", "reset", "m*"]).await, Value::Integer(1));
    assert_eq!(c.cmd(&["SENTINEL", "remove", "m1"]).await, Value::ok());
    assert_eq!(c.cmd(&["SENTINEL", "masters"]).await, Value::Array(vec![]));
    assert_eq!(
        text(&c.cmd(&["SENTINEL", "master", "m1"]).await),
        "ERR No such master with that name"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn votes_once_per_epoch() {
    let dead = dead_addr();
    let sentinels = TestSentinels::builder()
        .sentinels(1)
        .monitor_addr("m", dead)
        .start()
        .await
        .unwrap();
    let s = sentinels.addr(0).to_string();
    let port = dead.port().to_string();
    let a = "a".repeat(40);
    let b = "b".repeat(40);
    let vote = |epoch: &'static str, id: String| {
        let (s, port) = (s.clone(), port.clone());
        async move {
            parts(
                &node_cmd(
                    &s,
                    &[
                        "SENTINEL",
                        "is-master-down-by-addr",
                        "127.0.0.1",
                        &port,
                        epoch,
                        &id,
                    ],
                )
                .await,
            )
        }
    };
    assert_eq!(
        vote("5", a.clone()).await[1..],
        [a.clone(), "5".to_string()]
    );
    // Same epoch: the first vote stands.
    assert_eq!(
        vote("5", b.clone()).await[1..],
        [a.clone(), "5".to_string()]
    );
    // An older epoch cannot change it either; a newer one can.
    assert_eq!(
        vote("4", b.clone()).await[1..],
        [a.clone(), "5".to_string()]
    );
    assert_eq!(
        vote("6", b.clone()).await[1..],
        [b.clone(), "6".to_string()]
    );
    // A Sentinel that is not asked for a vote ("*") does not vote.
    let info = parts(&node_cmd(&s, &["SENTINEL", "sentinels", "m"]).await);
    assert!(info.is_empty(), "{info:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_client_commands_and_shutdown() {
    let mut sentinels = TestSentinels::builder()
        .sentinels(1)
        .password("s3cret")
        .start()
        .await
        .unwrap();
    let s = sentinels.addr(0);
    let mut c = Client::connect(s).await;
    assert_eq!(
        text(&c.cmd(&["SENTINEL", "masters"]).await),
        "NOAUTH Authentication required."
    );
    assert_eq!(
        text(&c.cmd(&["AUTH", "wrong"]).await),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    assert_eq!(c.cmd(&["AUTH", "s3cret"]).await, Value::ok());
    assert_eq!(c.cmd(&["PING"]).await, Value::simple("PONG"));
    // HELLO 3 AUTH on a fresh connection: a RESP3 map.
    let mut h = Client::connect(s).await;
    let v = h
        .cmd(&["HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "me"])
        .await;
    let Value::Map(pairs) = v else {
        panic!("a map: {v:?}")
    };
    assert!(pairs.contains(&(Value::bulk("mode"), Value::bulk("sentinel"))));
    assert_eq!(h.cmd(&["CLIENT", "GETNAME"]).await, Value::bulk("me"));
    let id = text(&h.cmd(&["CLIENT", "ID"]).await);
    // CLIENT KILL ID closes that connection.
    assert_eq!(
        c.cmd(&["CLIENT", "KILL", "ID", &id]).await,
        Value::Integer(1)
    );
    assert_eq!(h.read().await, None, "the killed connection is closed");
    // A protocol error closes the connection with Redis' wording.
    let mut bad = Client::connect(s).await;
    bad.send_raw(b"*1\r\nx\r\n").await;
    assert_eq!(
        text(&bad.read().await.unwrap()),
        "ERR Protocol error: expected '$', got 'x'"
    );
    // Kill and restart: same port, same id.
    let before = text(&c.cmd(&["SENTINEL", "myid"]).await);
    sentinels.kill(0).await;
    assert!(
        tokio::net::TcpStream::connect(s).await.is_err(),
        "the port is closed"
    );
    sentinels.restart(0).await.unwrap();
    let mut c = Client::connect(s).await;
    assert_eq!(c.cmd(&["AUTH", "s3cret"]).await, Value::ok());
    assert_eq!(text(&c.cmd(&["SENTINEL", "myid"]).await), before);
    // SHUTDOWN stops it: no reply, the port closes.
    c.send(&["SHUTDOWN"]).await;
    assert_eq!(c.read().await, None);
    let sentinel = sentinels.sentinel(0).unwrap().clone();
    eventually("the Sentinel stops", || {
        let sentinel = sentinel.clone();
        async move { sentinel.is_stopped() }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sentinels_find_each_other_only_through_a_monitored_node() {
    // Without a reachable master there is no hello channel: each Sentinel knows only itself,
    // and CKQUORUM says so in Redis' words.
    let dead = dead_addr();
    let mut m = Monitor::new("g", dead, 2);
    m.down_after = Duration::from_millis(200);
    let mut config = SentinelConfig::default();
    config.monitors.push(m);
    let one = Sentinel::start(config).await.unwrap();
    let r = node_cmd(&one.addr().to_string(), &["SENTINEL", "ckquorum", "g"]).await;
    assert_eq!(
        text(&r),
        "NOQUORUM 1 usable Sentinels. Not enough available Sentinels to reach the specified quorum for this master"
    );
    one.stop();
    one.stopped().await;
}
