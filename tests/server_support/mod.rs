//! Test helpers for the bundled server: a tiny raw RESP client over TCP.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use redcluster::resp::{check, decode, encode_command, Limits, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A raw RESP connection: sends commands, reads one reply at a time.
pub struct Client {
    stream: TcpStream,
    buf: BytesMut,
}

/// Fail a test instead of hanging when a reply never comes.
const LIMIT: Duration = Duration::from_secs(10);

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
                if let Some(end) = check(&self.buf, 0, 0, &Limits::default()).expect("valid") {
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

/// Poll `f` every 20 ms until it is true; panics after 10 s.
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + LIMIT;
    while tokio::time::Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// `key` names that hash to three different primaries of the default 3-primary layout:
/// "foo" (12182, third), "bar" (5061, first), "hello" (866, first).
pub const KEY_ON_THIRD: &str = "foo";
