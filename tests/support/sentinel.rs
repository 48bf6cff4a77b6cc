//! Watching a Sentinel (bundled or real) from a test: its SENTINEL replies with moving
//! values normalised, waiting until it knows a group's replicas and peers, and its event
//! feed read with the caller's own limits.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use redcluster::resp::{decode, Limits, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::raw::{node_cmd, parts};
use super::wait::eventually_within;

pub use super::real_standalone::MASTER_NAME;

/// Fields whose values are ages or counters that differ between any two Sentinels.
pub const MOVING: &[&str] = &[
    "last-ping-sent",
    "last-ok-ping-reply",
    "last-ping-reply",
    "info-refresh",
    "role-reported-time",
    "last-hello-message",
    "link-pending-commands",
    "slave-repl-offset",
    "runid",
    "name",
    "port",
    "voted-leader",
    "voted-leader-epoch",
];

/// A field/value reply with moving values replaced by `N`.
pub fn normalise(v: &Value) -> Vec<(String, String)> {
    let p = parts(v);
    p.chunks(2)
        .map(|c| {
            let value = if MOVING.contains(&c[0].as_str()) {
                "N".to_string()
            } else {
                c[1].clone()
            };
            (c[0].clone(), value)
        })
        .collect()
}

/// Wait until the Sentinel at `s` knows `replicas` replicas and `others` other Sentinels of
/// [`MASTER_NAME`], all linked.
pub async fn wait_sentinel_ready(s: SocketAddr, replicas: usize, others: usize) {
    eventually_within(
        Duration::from_secs(30),
        "the Sentinel knows replicas and peers",
        || async move {
            let v = node_cmd(&s.to_string(), &["SENTINEL", "master", MASTER_NAME]).await;
            let f = normalise(&v);
            let get = |k: &str| f.iter().find(|(a, _)| a == k).map(|(_, b)| b.clone());
            let known = get("num-slaves").and_then(|n| n.parse::<usize>().ok()) == Some(replicas)
                && get("num-other-sentinels").and_then(|n| n.parse::<usize>().ok()) == Some(others)
                && get("flags").as_deref() == Some("master");
            // ... and has live links to all of them.
            let mut linked = true;
            for sub in ["replicas", "sentinels"] {
                let Value::Array(list) =
                    node_cmd(&s.to_string(), &["SENTINEL", sub, MASTER_NAME]).await
                else {
                    return false;
                };
                linked &= list.iter().all(|i| {
                    let f = normalise(i);
                    f.iter()
                        .any(|(k, v)| k == "flags" && (v == "slave" || v == "sentinel"))
                });
            }
            known && linked
        },
    )
    .await;
}

/// A subscription to every event of one Sentinel, read with the caller's own limit (events
/// can be many seconds apart).
pub struct Events {
    stream: TcpStream,
    buf: BytesMut,
    /// Every event read so far, as `channel message`.
    pub seen: Vec<String>,
}

impl Events {
    /// PSUBSCRIBE * on the Sentinel at `s`.
    pub async fn subscribe(s: SocketAddr) -> Events {
        let mut stream = TcpStream::connect(s).await.unwrap();
        stream
            .write_all(b"*2\r\n$10\r\nPSUBSCRIBE\r\n$1\r\n*\r\n")
            .await
            .unwrap();
        let mut e = Events {
            stream,
            buf: BytesMut::new(),
            seen: Vec::new(),
        };
        let first = e.next().await;
        assert_eq!(first[0], "psubscribe");
        e
    }

    /// The next message's parts.
    pub async fn next(&mut self) -> Vec<String> {
        loop {
            if let Some(v) = decode(&mut self.buf, &Limits::default()).unwrap() {
                return parts(&v);
            }
            assert!(
                self.stream.read_buf(&mut self.buf).await.unwrap() > 0,
                "closed"
            );
        }
    }

    /// Read events until one on `channel` (within `limit`); returns its message.
    pub async fn until(&mut self, channel: &str, limit: Duration) -> String {
        let found = tokio::time::timeout(limit, async {
            loop {
                let p = self.next().await;
                self.seen.push(format!("{} {}", p[2], p[3]));
                if p[2] == channel {
                    return p[3].clone();
                }
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("no {channel} within {limit:?}; events: {:#?}", self.seen))
    }
}

/// Wait until any of `feeds` publishes on `channel` (some events, such as
/// `+convert-to-slave`, come from whichever Sentinel acts first); returns its message.
pub async fn any_event(feeds: &mut [Events], channel: &str, limit: Duration) -> String {
    let waits = feeds.iter_mut().map(|f| Box::pin(f.until(channel, limit)));
    futures::future::select_all(waits).await.0
}
