//! MONITOR's feed: every command a node runs, streamed to monitoring connections as Redis
//! formats it (`+1700000000.123456 [0 127.0.0.1:port] "set" "k" "v"`, `[0 lua]` for a script's
//! calls). As Redis: fed after a command runs (scripts and functions before, so their calls
//! follow them), never for admin or `skip_monitor` commands, never for commands refused
//! before running; passwords of AUTH, HELLO AUTH and MIGRATE AUTH/AUTH2 show as
//! `(redacted)`. A monitor that does not read is dropped once its backlog passes the
//! output-buffer limit (memory stays bounded).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::command::CommandSpec;

use super::limits::{log_overflow, ClientClass};

/// A monitor's backlog cap when `client-output-buffer-limit normal` sets none.
const DEFAULT_BACKLOG: u64 = 256 << 20;

/// One monitoring connection, as the node sees it.
#[derive(Debug)]
struct Monitor {
    conn_id: u64,
    tx: mpsc::UnboundedSender<Bytes>,
    /// Bytes sent and not yet taken by the connection.
    queued: Arc<AtomicU64>,
}

/// The node's monitors.
#[derive(Debug, Default)]
pub(crate) struct Monitors {
    list: Vec<Monitor>,
    /// The backlog cap (from `client-output-buffer-limit normal`, else 256 MiB).
    cap: u64,
}

impl Monitors {
    /// Send `args` run by `origin` to every monitor.
    pub(crate) fn feed(&mut self, origin: Origin, args: &[Bytes]) {
        if self.list.is_empty() {
            return;
        }
        let text = line(origin, args);
        let cap = self.cap;
        self.list.retain(|m| {
            let queued =
                m.queued.fetch_add(text.len() as u64, Ordering::Relaxed) + text.len() as u64;
            if queued > cap {
                log_overflow(
                    &format!("id={} (monitor)", m.conn_id),
                    queued,
                    ClientClass::Normal,
                );
                return false;
            }
            m.tx.send(text.clone()).is_ok()
        });
    }

    /// Connection `conn_id` becomes a monitor; its backlog may reach `hard_limit` bytes
    /// (0: 256 MiB). The lines come through the returned feed.
    pub(crate) fn add(&mut self, conn_id: u64, hard_limit: u64) -> MonitorFeed {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicU64::new(0));
        self.cap = if hard_limit > 0 {
            hard_limit
        } else {
            DEFAULT_BACKLOG
        };
        self.list.push(Monitor {
            conn_id,
            tx,
            queued: queued.clone(),
        });
        MonitorFeed { rx, queued }
    }
}

/// The connection's side: the lines to write.
#[derive(Debug)]
pub(crate) struct MonitorFeed {
    rx: mpsc::UnboundedReceiver<Bytes>,
    queued: Arc<AtomicU64>,
}

impl MonitorFeed {
    /// Every line waiting, appended to `out`; `None` once the node dropped this monitor
    /// (its backlog passed the limit): the connection closes then.
    pub(crate) async fn next(
        feed: &mut Option<MonitorFeed>,
        out: &mut bytes::BytesMut,
    ) -> Option<()> {
        let Some(f) = feed.as_mut() else {
            return std::future::pending().await;
        };
        let first = f.rx.recv().await?;
        let mut taken = first.len() as u64;
        out.extend_from_slice(&first);
        while let Ok(more) = f.rx.try_recv() {
            taken += more.len() as u64;
            out.extend_from_slice(&more);
            if out.len() > 1 << 20 {
                break;
            }
        }
        f.queued.fetch_sub(taken, Ordering::Relaxed);
        Some(())
    }
}

/// Who ran a command: a client at an address, or a script.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Origin {
    Client(SocketAddr),
    Lua,
}

/// `sdscatrepr`: a quoted string with C escapes.
fn repr(out: &mut Vec<u8>, arg: &[u8]) {
    out.push(b'"');
    for &b in arg {
        match b {
            b'\\' | b'"' => out.extend_from_slice(&[b'\\', b]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            7 => out.extend_from_slice(b"\\a"),
            8 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

/// Which arguments Redis replaces by `(redacted)` (in MONITOR and SLOWLOG): the passwords
/// (and user names) of AUTH, HELLO ... AUTH user pass, MIGRATE ... AUTH pass / AUTH2 user
/// pass, and everything after ACL SETUSER.
pub(crate) fn redacted(args: &[Bytes]) -> Vec<bool> {
    let mut hide = vec![false; args.len()];
    let name = args[0].to_ascii_lowercase();
    let is = |i: usize, word: &[u8]| args.get(i).is_some_and(|a| a.eq_ignore_ascii_case(word));
    match name.as_slice() {
        // Every argument: with more than three Redis shows them (a syntax error), but a
        // password never leaves this server.
        b"auth" => hide.iter_mut().skip(1).for_each(|h| *h = true),
        b"acl" if is(1, b"setuser") => hide.iter_mut().skip(2).for_each(|h| *h = true),
        b"hello" => {
            let mut j = 2;
            while j < args.len() {
                if is(j, b"auth") && j + 2 < args.len() {
                    hide[j + 1] = true;
                    hide[j + 2] = true;
                    j += 3;
                } else {
                    j += if is(j, b"setname") { 2 } else { 1 };
                }
            }
        }
        b"migrate" => {
            let mut j = 6;
            while j < args.len() {
                if is(j, b"auth") && j + 1 < args.len() {
                    hide[j + 1] = true;
                    j += 2;
                } else if is(j, b"auth2") && j + 2 < args.len() {
                    hide[j + 1] = true;
                    hide[j + 2] = true;
                    j += 3;
                } else if is(j, b"keys") {
                    break;
                } else {
                    j += 1;
                }
            }
        }
        _ => {}
    }
    hide
}

/// The monitor line for `args` run by `origin` now.
fn line(origin: Origin, args: &[Bytes]) -> Bytes {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut out = format!("+{}.{:06} ", now.as_secs(), now.subsec_micros()).into_bytes();
    match origin {
        Origin::Client(addr) => out.extend_from_slice(format!("[0 {addr}] ").as_bytes()),
        Origin::Lua => out.extend_from_slice(b"[0 lua] "),
    }
    let hide = redacted(args);
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        if hide[i] {
            out.extend_from_slice(b"\"(redacted)\"");
        } else {
            repr(&mut out, arg);
        }
    }
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

/// True when Redis' `call()` feeds `spec` to monitors after running it.
pub(crate) fn fed_after(spec: &CommandSpec) -> bool {
    !spec.has_flag("admin") && !spec.has_flag("skip_monitor")
}

/// True for the commands that feed themselves before running (scripts and functions, so
/// the commands they call come after them).
pub(crate) fn fed_before(spec: &CommandSpec) -> bool {
    matches!(
        spec.name,
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(args: &[&str]) -> String {
        let args: Vec<Bytes> = args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        let l = line(Origin::Lua, &args);
        let s = String::from_utf8(l.to_vec()).unwrap();
        s.split_once("] ").unwrap().1.to_string()
    }

    #[test]
    fn lines_quote_and_redact_like_redis() {
        assert_eq!(
            text(&["set", "k", "a b\"c\n"]),
            "\"set\" \"k\" \"a b\\\"c\\n\"\r\n"
        );
        assert_eq!(text(&["get", "\u{1}"]), "\"get\" \"\\x01\"\r\n");
        assert_eq!(text(&["AUTH", "pw"]), "\"AUTH\" \"(redacted)\"\r\n");
        assert_eq!(
            text(&["hello", "3", "auth", "u", "p", "setname", "n"]),
            "\"hello\" \"3\" \"auth\" \"(redacted)\" \"(redacted)\" \"setname\" \"n\"\r\n"
        );
        assert_eq!(
            text(&["migrate", "h", "1", "", "0", "5", "AUTH2", "u", "p", "KEYS", "a"]),
            "\"migrate\" \"h\" \"1\" \"\" \"0\" \"5\" \"AUTH2\" \"(redacted)\" \"(redacted)\" \
             \"KEYS\" \"a\"\r\n"
        );
        let l = line(Origin::Lua, &[Bytes::from_static(b"ping")]);
        assert!(l.starts_with(b"+1") && l.windows(9).any(|w| w == b" [0 lua] "));
    }
}
