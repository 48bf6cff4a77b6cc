//! Scripted fake cluster nodes on 127.0.0.1:0 for fault scenarios a real server will not
//! produce on cue: redirects to nodes outside the map, garbage or oversized replies, hang-ups
//! in the middle of a pipeline, a node that goes away and comes back on the same port.
//!
//! Every node answers `CLUSTER SHARDS` from one shared slot map; every other command goes to
//! the node's script, which sees the node's port and how many times this exact command
//! (name and first argument) reached this node.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use redcluster::resp::{decode, encode_value, Limits, Protocol, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One shard of the fake map: slots `lo..=hi`, a primary and replicas, by port.
#[derive(Clone, Debug)]
pub struct FakeShard {
    /// First slot.
    pub lo: u16,
    /// Last slot.
    pub hi: u16,
    /// The primary's port.
    pub primary: u16,
    /// The replicas' ports.
    pub replicas: Vec<u16>,
}

/// What a script answers.
pub enum Reply {
    /// A well-formed value.
    Value(Value),
    /// Bytes written as they are (malformed or oversized replies).
    Raw(Vec<u8>),
    /// Close the connection without answering (nor reading what follows).
    HangUp,
    /// Never answer this command.
    Silence,
}

/// A node's script: (its port, the command, times this command reached it) -> reply.
pub type Script = Arc<dyn Fn(u16, &[Bytes], usize) -> Reply + Send + Sync>;

/// One fake node.
pub struct FakeNode {
    /// Its port on 127.0.0.1.
    pub port: u16,
    map: Arc<Mutex<Vec<FakeShard>>>,
    script: Script,
    /// Times each command (`NAME first-arg`) reached this node.
    pub seen: Arc<Mutex<HashMap<String, usize>>>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl FakeNode {
    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Times `NAME first-arg` reached this node.
    pub fn count(&self, cmd: &str) -> usize {
        self.seen.lock().unwrap().get(cmd).copied().unwrap_or(0)
    }

    /// Start a node on a free port.
    pub async fn start(map: Arc<Mutex<Vec<FakeShard>>>, script: Script) -> FakeNode {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let node = FakeNode {
            port,
            map,
            script,
            seen: Arc::default(),
            tasks: Arc::default(),
        };
        node.serve(l);
        node
    }

    /// Close the listener and every connection: the node is gone (connection refused).
    pub fn stop(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    /// Listen again on the same port, as a restarted node would.
    pub async fn restart(&self) {
        let l = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.serve(l);
    }

    fn serve(&self, l: TcpListener) {
        let (map, script, seen, tasks) = (
            self.map.clone(),
            self.script.clone(),
            self.seen.clone(),
            self.tasks.clone(),
        );
        let port = self.port;
        let accept = tokio::spawn(async move {
            while let Ok((mut sock, _)) = l.accept().await {
                let (map, script, seen) = (map.clone(), script.clone(), seen.clone());
                let conn = tokio::spawn(async move {
                    let mut buf = BytesMut::new();
                    loop {
                        match sock.read_buf(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        while let Ok(Some(cmd)) = next_command(&mut buf) {
                            let reply = answer(port, &map, &script, &seen, &cmd);
                            let out = match reply {
                                Reply::Value(v) => {
                                    let mut out = BytesMut::new();
                                    encode_value(&mut out, &v, Protocol::Resp2);
                                    out.to_vec()
                                }
                                Reply::Raw(bytes) => bytes,
                                Reply::HangUp => return,
                                Reply::Silence => continue,
                            };
                            if sock.write_all(&out).await.is_err() {
                                return;
                            }
                        }
                    }
                });
                tasks.lock().unwrap().push(conn);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The next command in `buf`, as a client sends it: an array of bulk strings. `Ok(None)`
/// until a whole frame is buffered; an error for anything else, after which the connection
/// should be closed.
pub fn next_command(buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, String> {
    match decode(buf, &Limits::default()) {
        Ok(None) => Ok(None),
        Ok(Some(Value::Array(items))) if !items.is_empty() => items
            .into_iter()
            .map(|v| match v {
                Value::BulkString(b) => Ok(b),
                other => Err(format!("not a bulk string: {other:?}")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Ok(Some(other)) => Err(format!("not a command: {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

fn answer(
    port: u16,
    map: &Mutex<Vec<FakeShard>>,
    script: &Script,
    seen: &Mutex<HashMap<String, usize>>,
    cmd: &[Bytes],
) -> Reply {
    let name = String::from_utf8_lossy(&cmd[0]).to_ascii_uppercase();
    let first = cmd
        .get(1)
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .unwrap_or_default();
    match name.as_str() {
        "CLUSTER" if first.eq_ignore_ascii_case("shards") => {
            return Reply::Value(shards_reply(&map.lock().unwrap()))
        }
        "CLUSTER" => return Reply::Value(Value::error("ERR unknown subcommand")),
        "READONLY" | "CLIENT" | "HELLO" | "PING" => {
            if name == "PING" {
                return Reply::Value(Value::SimpleString(Bytes::from_static(b"PONG")));
            }
            if name == "HELLO" {
                return Reply::Value(Value::error("ERR unknown command 'HELLO'"));
            }
            return Reply::Value(Value::ok());
        }
        _ => {}
    }
    let n = {
        let mut seen = seen.lock().unwrap();
        let e = seen.entry(format!("{name} {first}")).or_insert(0);
        *e += 1;
        *e
    };
    script(port, cmd, n)
}

fn node_value(port: u16, role: &str) -> Value {
    Value::Array(vec![
        Value::bulk("id"),
        Value::bulk(format!("{port:0>40}")),
        Value::bulk("port"),
        Value::Integer(i64::from(port)),
        Value::bulk("ip"),
        Value::bulk("127.0.0.1"),
        Value::bulk("endpoint"),
        Value::bulk("127.0.0.1"),
        Value::bulk("role"),
        Value::bulk(role),
        Value::bulk("replication-offset"),
        Value::Integer(100),
        Value::bulk("health"),
        Value::bulk("online"),
    ])
}

fn shards_reply(map: &[FakeShard]) -> Value {
    Value::Array(
        map.iter()
            .map(|s| {
                let mut nodes = vec![node_value(s.primary, "master")];
                nodes.extend(s.replicas.iter().map(|&r| node_value(r, "replica")));
                Value::Array(vec![
                    Value::bulk("slots"),
                    Value::Array(vec![
                        Value::Integer(i64::from(s.lo)),
                        Value::Integer(i64::from(s.hi)),
                    ]),
                    Value::bulk("nodes"),
                    Value::Array(nodes),
                ])
            })
            .collect(),
    )
}

/// A plain key-value script: SET stores, GET reads, everything else is `+OK`.
pub fn kv(data: &Mutex<HashMap<Vec<u8>, Vec<u8>>>, cmd: &[Bytes]) -> Reply {
    let name = String::from_utf8_lossy(&cmd[0]).to_ascii_uppercase();
    match (name.as_str(), cmd.get(1), cmd.get(2)) {
        ("SET", Some(k), Some(v)) => {
            data.lock().unwrap().insert(k.to_vec(), v.to_vec());
            Reply::Value(Value::ok())
        }
        ("GET", Some(k), _) => Reply::Value(match data.lock().unwrap().get(k.as_ref()) {
            Some(v) => Value::bulk(v.clone()),
            None => Value::Null,
        }),
        _ => Reply::Value(Value::ok()),
    }
}
