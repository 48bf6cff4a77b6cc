//! Retry and deadline behaviour against a scripted single-node "cluster" on 127.0.0.1:0
//! that owns every slot and misbehaves on cue: hangs up after a write, answers TRYAGAIN or
//! LOADING once, or never answers.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use redcluster::resp::{encode_value, Protocol, Value};
use redcluster::{Client, ErrorKind};
use support::fake_cluster::next_command;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Default)]
struct Script {
    /// Times each key was asked for, by command.
    seen: Mutex<HashMap<String, usize>>,
    data: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
    hangups: AtomicUsize,
    /// Client connections currently open.
    open: AtomicUsize,
    /// The port CLUSTER SHARDS names as the owner of every slot (0: this node).
    owner_port: AtomicU16,
}

enum Reply {
    Value(Value),
    HangUp,
    Silence,
}

fn shards_reply(port: u16) -> Value {
    let node = Value::Array(vec![
        Value::bulk("id"),
        Value::bulk("a".repeat(40)),
        Value::bulk("port"),
        Value::Integer(i64::from(port)),
        Value::bulk("ip"),
        Value::bulk("127.0.0.1"),
        Value::bulk("endpoint"),
        Value::bulk("127.0.0.1"),
        Value::bulk("role"),
        Value::bulk("master"),
        Value::bulk("replication-offset"),
        Value::Integer(0),
        Value::bulk("health"),
        Value::bulk("online"),
    ]);
    Value::Array(vec![Value::Array(vec![
        Value::bulk("slots"),
        Value::Array(vec![Value::Integer(0), Value::Integer(16383)]),
        Value::bulk("nodes"),
        Value::Array(vec![node]),
    ])])
}

fn answer(script: &Script, port: u16, cmd: &[bytes::Bytes]) -> Reply {
    let name = String::from_utf8_lossy(&cmd[0]).to_ascii_uppercase();
    let key = cmd
        .get(1)
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .unwrap_or_default();
    let n = {
        let mut seen = script.seen.lock().unwrap();
        let e = seen.entry(format!("{name} {key}")).or_insert(0);
        *e += 1;
        *e
    };
    match name.as_str() {
        "CLUSTER" if key.eq_ignore_ascii_case("shards") => {
            let owner = script.owner_port.load(Ordering::SeqCst);
            Reply::Value(shards_reply(if owner == 0 { port } else { owner }))
        }
        "CLUSTER" => Reply::Value(Value::error("ERR unknown subcommand")),
        "SET" => {
            if key.starts_with("hangup") && n == 1 {
                script
                    .data
                    .lock()
                    .unwrap()
                    .insert(cmd[1].to_vec(), cmd[2].to_vec());
                script.hangups.fetch_add(1, Ordering::SeqCst);
                return Reply::HangUp;
            }
            script
                .data
                .lock()
                .unwrap()
                .insert(cmd[1].to_vec(), cmd[2].to_vec());
            Reply::Value(Value::ok())
        }
        "GET" => {
            if key.starts_with("flaky") && n == 1 {
                return Reply::HangUp;
            }
            if key.starts_with("tryagain") && n == 1 {
                return Reply::Value(Value::error(
                    "TRYAGAIN Multiple keys request during rehashing of slot",
                ));
            }
            if key.starts_with("loading") && n <= 2 {
                return Reply::Value(Value::error(
                    "LOADING Redis is loading the dataset in memory",
                ));
            }
            if key.starts_with("down") && n == 1 {
                return Reply::Value(Value::error("CLUSTERDOWN The cluster is down"));
            }
            if key.starts_with("alwaysdown") {
                return Reply::Value(Value::error("CLUSTERDOWN The cluster is down"));
            }
            if key.starts_with("silent") {
                return Reply::Silence;
            }
            Reply::Value(match script.data.lock().unwrap().get(cmd[1].as_ref()) {
                Some(v) => Value::bulk(v),
                None => Value::Null,
            })
        }
        _ => Reply::Value(Value::ok()),
    }
}

async fn fake_node() -> (String, Arc<Script>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let script = Arc::new(Script::default());
    let s = script.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = l.accept().await {
            let script = s.clone();
            script.open.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                struct Closed(Arc<Script>);
                impl Drop for Closed {
                    fn drop(&mut self) {
                        self.0.open.fetch_sub(1, Ordering::SeqCst);
                    }
                }
                let _closed = Closed(script.clone());
                let mut buf = BytesMut::new();
                // After a command it never answers, the connection answers nothing more: a
                // real node never skips one reply and answers the next (that would shift
                // every later reply onto the wrong request).
                let mut frozen = false;
                loop {
                    match sock.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    while let Ok(Some(cmd)) = next_command(&mut buf) {
                        match answer(&script, port, &cmd) {
                            _ if frozen => {}
                            Reply::Value(v) => {
                                let mut out = BytesMut::new();
                                encode_value(&mut out, &v, Protocol::Resp2);
                                if sock.write_all(&out).await.is_err() {
                                    return;
                                }
                            }
                            Reply::HangUp => return,
                            Reply::Silence => frozen = true,
                        }
                    }
                }
            });
        }
    });
    (format!("127.0.0.1:{port}"), script)
}

#[tokio::test]
async fn a_write_cut_off_by_a_hangup_is_reported_as_maybe_applied() {
    let (addr, script) = fake_node().await;
    let client = Client::builder([addr.as_str()]).build().await.unwrap();
    let e = client.set("hangup:1", "v").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MaybeApplied, "{e}");
    assert!(e.to_string().contains("may have been applied"), "{e}");
    assert_eq!(script.hangups.load(Ordering::SeqCst), 1, "not re-sent");
    // The write was in fact applied; the client reconnects and reads it.
    let v: Option<String> = client.get("hangup:1").await.unwrap();
    assert_eq!(v.as_deref(), Some("v"));
    assert!(client.stats().reconnects >= 1);
}

#[tokio::test]
async fn writes_are_resent_when_at_least_once_is_asked_for() {
    let (addr, script) = fake_node().await;
    let client = Client::builder([addr.as_str()])
        .retry_writes_on_disconnect(true)
        .build()
        .await
        .unwrap();
    client.set("hangup:2", "v").await.unwrap();
    assert_eq!(script.seen.lock().unwrap()["SET hangup:2"], 2);
}

#[tokio::test]
async fn reads_cut_off_by_a_hangup_are_retried() {
    let (addr, _script) = fake_node().await;
    let client = Client::builder([addr.as_str()]).build().await.unwrap();
    client.set("flaky:1", "x").await.unwrap();
    let v: Option<String> = client.get("flaky:1").await.unwrap();
    assert_eq!(v.as_deref(), Some("x"));
    assert!(client.stats().retries >= 1);
}

#[tokio::test]
async fn tryagain_loading_and_clusterdown_are_retried() {
    let (addr, script) = fake_node().await;
    let client = Client::builder([addr.as_str()]).build().await.unwrap();
    for key in ["tryagain:1", "loading:1", "down:1"] {
        client.set(key, key).await.unwrap();
        let v: Option<String> = client.get(key).await.unwrap();
        assert_eq!(v.as_deref(), Some(key));
    }
    assert_eq!(script.seen.lock().unwrap()["GET loading:1"], 3);
    assert!(client.stats().retries >= 4, "{:?}", client.stats());
}

#[tokio::test]
async fn a_node_that_never_answers_hits_the_deadline() {
    let (addr, _script) = fake_node().await;
    let client = Client::builder([addr.as_str()])
        .request_timeout(Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    let e = client.get::<Option<String>>("silent:1").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(
        e.maybe_applied(),
        "a timed-out request may have reached the node"
    );
    // Requests queued behind the unanswered one are bounded by the deadline too.
    let e = client.get::<Option<String>>("after").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert_eq!(client.stats().timeouts, 2);
}

#[tokio::test]
async fn a_cluster_down_until_the_deadline_is_reported_as_cluster_down() {
    let (addr, _script) = fake_node().await;
    let client = Client::builder([addr.as_str()])
        .request_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let e = client
        .get::<Option<String>>("alwaysdown:1")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ClusterDown, "{e}");
    assert!(e.to_string().contains("CLUSTERDOWN"), "{e}");
    assert!(e.is_retryable());
}

#[tokio::test]
async fn dropping_the_last_clone_closes_every_connection() {
    let (addr, script) = fake_node().await;
    let client = Client::builder([addr.as_str()])
        .refresh_interval(Some(Duration::from_millis(50)))
        .build()
        .await
        .unwrap();
    let clone = client.clone();
    clone.set("k", "v").await.unwrap();
    assert!(script.open.load(Ordering::SeqCst) >= 1);
    drop(client);
    // A clone keeps everything alive.
    assert_eq!(
        clone.get::<Option<String>>("k").await.unwrap().as_deref(),
        Some("v")
    );
    drop(clone);
    let mut closed = false;
    for _ in 0..100 {
        if script.open.load(Ordering::SeqCst) == 0 {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(closed, "connections left open after the client was dropped");
}

#[tokio::test]
async fn a_deadline_hit_before_anything_was_sent_says_the_request_was_not_applied() {
    // Every slot's owner accepts connections and never answers, so connecting to it (the
    // handshake names the client) outlasts the request deadline: nothing is ever sent.
    let hole = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole_port = hole.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hole.accept().await {
            held.push(s);
        }
    });
    let (addr, script) = fake_node().await;
    script.owner_port.store(hole_port, Ordering::SeqCst);
    let client = Client::builder([addr.as_str()])
        .client_name("deadline-test")
        .connect_timeout(Duration::from_secs(5))
        .request_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let e = client.set("k", "v").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(!e.maybe_applied(), "never sent, yet: {e}");
}
