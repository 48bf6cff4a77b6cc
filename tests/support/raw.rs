//! A tiny raw RESP client over TCP: replies exactly as a node sent them, no redirects
//! followed, for tests of what the server puts on the wire.

use std::net::SocketAddr;

use bytes::BytesMut;
use redcluster::resp::{decode, encode_command, Limits, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::wait::LIMIT;

/// A raw RESP connection: sends commands, reads one reply at a time.
pub struct Client {
    stream: TcpStream,
    buf: BytesMut,
}

impl Client {
    /// Connect to `addr`.
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Client {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// Send one command without reading.
    pub async fn send(&mut self, args: &[&str]) {
        let mut out = BytesMut::new();
        encode_command(&mut out, args.iter());
        self.stream.write_all(&out).await.expect("write");
    }

    /// Send raw bytes.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Read one reply; `None` when the server closed the connection.
    pub async fn read(&mut self) -> Option<Value> {
        tokio::time::timeout(LIMIT, async {
            loop {
                if let Some(v) = decode(&mut self.buf, &Limits::default()).expect("valid RESP") {
                    return Some(v);
                }
                if self.stream.read_buf(&mut self.buf).await.expect("read") == 0 {
                    return None;
                }
            }
        })
        .await
        .expect("reply within the limit")
    }

    /// Read the raw bytes of one reply.
    pub async fn read_raw(&mut self) -> Vec<u8> {
        tokio::time::timeout(LIMIT, async {
            loop {
                // Decode a copy to learn where the first reply ends; keep its bytes as sent.
                let mut probe = self.buf.clone();
                if decode(&mut probe, &Limits::default())
                    .expect("valid")
                    .is_some()
                {
                    let end = self.buf.len() - probe.len();
                    return self.buf.split_to(end).to_vec();
                }
                if self.stream.read_buf(&mut self.buf).await.expect("read") == 0 {
                    panic!("closed");
                }
            }
        })
        .await
        .expect("reply within the limit")
    }

    /// Send a command and read its reply.
    pub async fn cmd(&mut self, args: &[&str]) -> Value {
        self.send(args).await;
        self.read().await.expect("a reply")
    }

    /// Send a command and read its reply's raw bytes.
    pub async fn cmd_raw(&mut self, args: &[&str]) -> Vec<u8> {
        self.send(args).await;
        self.read_raw().await
    }

    /// Send a command whose reply is a string and return it as text.
    pub async fn text(&mut self, args: &[&str]) -> String {
        text(&self.cmd(args).await)
    }
}

/// One command straight to the node at `addr` (`ip:port`) on a fresh connection, no
/// redirects followed.
pub async fn node_cmd(addr: &str, args: &[&str]) -> Value {
    let mut c = Client::connect(addr.parse().expect("an ip:port address")).await;
    c.cmd(args).await
}

/// Commands pipelined to the node at `addr` on one fresh connection; their replies in order.
pub async fn node_cmds<S: AsRef<str>>(addr: &str, cmds: &[Vec<S>]) -> Vec<Value> {
    let mut c = Client::connect(addr.parse().expect("an ip:port address")).await;
    let mut out = BytesMut::new();
    for cmd in cmds {
        encode_command(&mut out, cmd.iter().map(AsRef::as_ref));
    }
    c.send_raw(&out).await;
    let mut replies = Vec::with_capacity(cmds.len());
    for _ in cmds {
        replies.push(c.read().await.expect("node hung up"));
    }
    replies
}

/// The text of a string-like or error reply.
pub fn text(v: &Value) -> String {
    match v {
        Value::Error(e) => String::from_utf8_lossy(e).into_owned(),
        Value::Integer(n) => n.to_string(),
        Value::Null => "(nil)".into(),
        other => other
            .as_bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_else(|| format!("{other:?}")),
    }
}

/// The elements of an array or push frame as text (`(nil)` for nulls).
pub fn parts(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) | Value::Push(items) => items.iter().map(text).collect(),
        other => panic!("not an aggregate: {other:?}"),
    }
}

/// A command as words: split like a shell (quotes group words).
pub fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    let mut any = false;
    for ch in line.chars() {
        match (quote, ch) {
            (None, '"' | '\'') => {
                quote = Some(ch);
                any = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, ' ') => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (_, c) => {
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
