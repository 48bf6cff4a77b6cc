//! Scenarios of several connections run against a real redis-server and the bundled server,
//! comparing every byte each connection receives (replies and tracking pushes).
//!
//! A scenario is lines of `X> CMD ...` (send on connection X, read its reply and any push
//! around it), `X~ CMD ...` (the same, client ids in the reply normalised), `X! QUIT` (close
//! X after its reply), `info` (compare INFO's tracking fields). `$X` in an argument is
//! connection X's client id on that server. After every step each other open connection is
//! swept: a marker command (PING in RESP2 pub/sub mode, else CLIENT GETNAME, which keeps
//! CLIENT CACHING) is sent and everything received up to its reply is compared, so a push
//! one server sends and the other does not (or sends elsewhere) is caught.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::raw::{words, Client};

/// One side's connections, by name.
pub struct Side {
    addr: SocketAddr,
    conns: BTreeMap<String, (Client, i64, bool)>,
    /// Ids of the connections closed, by name (still normalised).
    gone: Vec<(String, i64)>,
}

/// Is `frame` (raw bytes) a push: RESP3 `>` or a RESP2 pub/sub `message`?
fn is_push(frame: &[u8]) -> bool {
    frame.starts_with(b">") || frame.starts_with(b"*3\r\n$7\r\nmessage\r\n")
}

impl Side {
    /// Connections to `addr`, opened on first use.
    pub fn new(addr: SocketAddr) -> Side {
        Side {
            addr,
            conns: BTreeMap::new(),
            gone: Vec::new(),
        }
    }

    async fn conn(&mut self, name: &str) -> &mut (Client, i64, bool) {
        if !self.conns.contains_key(name) {
            let mut c = Client::connect(self.addr).await;
            let id = match c.cmd(&["CLIENT", "ID"]).await {
                redcluster::resp::Value::Integer(i) => i,
                other => panic!("CLIENT ID: {other:?}"),
            };
            self.conns.insert(name.to_string(), (c, id, false));
        }
        self.conns.get_mut(name).expect("just opened")
    }

    /// Client ids replaced by `:<name>` integers.
    fn normalise(&self, bytes: &[u8]) -> String {
        let mut text = String::from_utf8_lossy(bytes).into_owned();
        let open = self.conns.iter().map(|(name, (_, id, _))| (name, id));
        for (name, id) in open.chain(self.gone.iter().map(|(n, id)| (n, id))) {
            text = text.replace(&format!(":{id}\r\n"), &format!(":<{name}>\r\n"));
        }
        text
    }

    /// Read frames on `name` until one that is not a push: all their bytes.
    async fn until_reply(&mut self, name: &str) -> Vec<u8> {
        let c = &mut self.conn(name).await.0;
        let mut all = Vec::new();
        loop {
            let frame = c.read_raw().await;
            let push = is_push(&frame);
            all.extend_from_slice(&frame);
            if !push {
                return all;
            }
        }
    }

    /// Run one step on connection `name`: what it received, as text.
    async fn step(&mut self, name: &str, words: &[String], normalise: bool) -> String {
        let mut args = Vec::new();
        for w in words {
            match w.strip_prefix('$') {
                Some(other) if self.conns.contains_key(other) => {
                    args.push(self.conns[other].1.to_string());
                }
                _ => args.push(w.clone()),
            }
        }
        let (c, _, sub2) = self.conn(name).await;
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        c.send(&argv).await;
        if words[0].eq_ignore_ascii_case("subscribe") {
            *sub2 = true;
        }
        let got = self.until_reply(name).await;
        if normalise {
            self.normalise(&got)
        } else {
            String::from_utf8_lossy(&got).into_owned()
        }
    }

    /// The sweep: every open connection but `except`, what it received up to its marker.
    async fn sweep(&mut self, except: &str) -> Vec<(String, String)> {
        let names: Vec<String> = self
            .conns
            .keys()
            .filter(|n| *n != except)
            .cloned()
            .collect();
        let mut out = Vec::new();
        for name in names {
            let (c, _, sub2) = self.conn(&name).await;
            if *sub2 {
                c.send(&["PING"]).await;
            } else {
                c.send(&["CLIENT", "GETNAME"]).await;
            }
            let got = self.until_reply(&name).await;
            out.push((name, self.normalise(&got)));
        }
        out
    }

    async fn info(&mut self) -> Vec<String> {
        let (c, _, _) = self.conn("_info").await;
        let text = redcluster_text(&c.cmd(&["INFO", "everything"]).await);
        let fields: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with("tracking_"))
            .map(str::to_string)
            .collect();
        self.conns.remove("_info");
        fields
    }
}

fn redcluster_text(v: &redcluster::resp::Value) -> String {
    super::raw::text(v)
}

/// Run `scenario` on both sides, panicking at the first difference. Returns the number of
/// comparisons made.
pub async fn run(real: &mut Side, ours: &mut Side, name: &str, scenario: &str) -> usize {
    let mut compared = 0;
    for (n, line) in scenario.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = format!("{name}:{}: `{line}`", n + 1);
        if line == "info" {
            let (want, got) = (real.info().await, ours.info().await);
            assert_eq!(want, got, "{at}: INFO tracking fields");
            compared += 1;
            continue;
        }
        let (conn, rest) = line.split_at(line.find([' ']).expect("a command"));
        let (conn, mode) = conn.split_at(conn.len() - 1);
        let cmd = words(rest);
        let normalise = mode == "~";
        let want = real.step(conn, &cmd, normalise).await;
        let got = ours.step(conn, &cmd, normalise).await;
        assert_eq!(want, got, "{at}: reply on {conn}");
        compared += 1;
        if mode == "!" {
            // Wait for the close: the server has forgotten the client by then.
            for side in [&mut *real, &mut *ours] {
                let (mut c, id, _) = side.conns.remove(conn).expect("open");
                side.gone.push((conn.to_string(), id));
                assert!(c.read().await.is_none(), "{at}: closed after QUIT");
            }
        }
        let (want, got) = (real.sweep(conn).await, ours.sweep(conn).await);
        assert_eq!(want, got, "{at}: what the other connections received");
        compared += want.len();
    }
    compared
}
