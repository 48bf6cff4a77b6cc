//! The engine against injected connections: no server, no TCP. A [`Scripted`] connector
//! hands out in-memory streams whose far end stalls, hangs up in the middle of a reply or
//! answers garbage, so the router's retry, reconnect and deadline paths run for real.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;
use crate::connection::{Connect, ConnectFuture, Stream};

/// How the far end of one injected connection behaves.
#[derive(Clone, Copy, Debug)]
enum Script {
    /// Reads commands and never answers.
    Stall,
    /// Answers the first command with half a bulk reply, then hangs up.
    HangUpMidReply,
    /// Answers with bytes that are not RESP.
    Garbage,
    /// Answers every command with `$1\r\nv\r\n`.
    Serve,
}

/// A connector whose n-th connection follows the n-th script (the last one repeats).
#[derive(Debug)]
struct Scripted {
    scripts: Mutex<VecDeque<Script>>,
    opened: std::sync::atomic::AtomicUsize,
}

impl Scripted {
    fn new(scripts: &[Script]) -> Arc<Scripted> {
        Arc::new(Scripted {
            scripts: Mutex::new(scripts.iter().copied().collect()),
            opened: Default::default(),
        })
    }
}

/// Commands in `bytes`: array headers at the start of a line (test commands never have an
/// argument starting with `*`).
fn commands_in(bytes: &[u8]) -> usize {
    (0..bytes.len())
        .filter(|&i| bytes[i] == b'*' && (i == 0 || bytes[i - 1] == b'\n'))
        .count()
}

async fn far_end(mut s: DuplexStream, script: Script) {
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let reply: &[u8] = match script {
            Script::Stall => continue,
            Script::HangUpMidReply => {
                let _ = s.write_all(b"$10\r\nhal").await;
                return;
            }
            Script::Garbage => b"?what\r\n",
            Script::Serve => b"$1\r\nv\r\n",
        };
        for _ in 0..commands_in(&buf[..n]) {
            if s.write_all(reply).await.is_err() {
                return;
            }
        }
    }
}

impl Connect for Scripted {
    fn connect<'a>(&'a self, _addr: &'a str) -> ConnectFuture<'a> {
        let script = {
            let mut q = self.scripts.lock().unwrap();
            if q.len() > 1 {
                q.pop_front()
            } else {
                q.front().copied()
            }
        };
        self.opened.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move {
            let (ours, theirs) = tokio::io::duplex(64 * 1024);
            tokio::spawn(far_end(theirs, script.unwrap_or(Script::Serve)));
            Ok(Stream::Other(Box::new(ours)))
        })
    }
}

/// A router with no topology and no refresher, reaching nodes through `connector`.
fn router(connector: Arc<Scripted>, retry_writes: bool) -> Router {
    let config = Config {
        cache: None,
        seeds: Vec::new(),
        read_from: ReadFrom::Primary,
        request_timeout: Duration::from_millis(300),
        refresh_interval: None,
        policy: Policy {
            max_redirects: 3,
            retry_writes,
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
        },
        mode: super::Mode::Auto,
    };
    let opts = ConnectOptions {
        connector,
        ..ConnectOptions::default()
    };
    Router::unstarted(config, opts, 1)
}

fn get() -> Args {
    let mut a = Args::new("GET");
    a.push("k");
    a
}

fn set() -> Args {
    let mut a = Args::new("SET");
    a.push("k");
    a.push("v");
    a
}

#[tokio::test]
async fn a_read_cut_off_mid_reply_is_retried_on_a_new_connection() {
    let c = Scripted::new(&[Script::HangUpMidReply, Script::Serve]);
    let r = router(c.clone(), false);
    let v = r.execute_on("node:1", &get()).await.unwrap();
    assert_eq!(v, Value::bulk("v"));
    assert_eq!(c.opened.load(Ordering::Relaxed), 2);
    assert_eq!(r.inner.counters.retries.load(Ordering::Relaxed), 1);
    assert_eq!(r.inner.pool.entry("node:1").reconnects(), 1);
}

#[tokio::test]
async fn a_write_cut_off_mid_reply_is_reported_as_maybe_applied_not_resent() {
    let c = Scripted::new(&[Script::HangUpMidReply, Script::Serve]);
    let r = router(c.clone(), false);
    let mut trail = Trail::default();
    let route = Route::keyless(false);
    let home = Target::Addr {
        addr: "node:1".into(),
        asking: false,
    };
    let e = r
        .inner
        .run(&set(), route, home, &mut trail)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MaybeApplied, "{e}");
    assert!(e.maybe_applied());
    // Only the one connection: the write was not sent again.
    assert_eq!(c.opened.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn garbage_fails_the_connection_and_a_read_retries_on_a_fresh_one() {
    let c = Scripted::new(&[Script::Garbage, Script::Serve]);
    let r = router(c.clone(), false);
    let v = r.execute_on("node:1", &get()).await.unwrap();
    assert_eq!(v, Value::bulk("v"));
    assert_eq!(c.opened.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn garbage_every_time_ends_at_the_deadline_naming_the_protocol_error() {
    let c = Scripted::new(&[Script::Garbage]);
    let r = router(c.clone(), false);
    let e = r.execute_on("node:1", &get()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.to_string().to_lowercase().contains("protocol"), "{e}");
    assert!(c.opened.load(Ordering::Relaxed) > 1);
}

#[tokio::test]
async fn a_stalled_node_ends_at_the_deadline_as_maybe_applied() {
    let c = Scripted::new(&[Script::Stall]);
    let r = router(c.clone(), false);
    let e = r.execute_on("node:1", &set()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.maybe_applied(), "{e}");
    assert_eq!(r.inner.counters.timeouts.load(Ordering::Relaxed), 1);
    assert_eq!(c.opened.load(Ordering::Relaxed), 1);
}
