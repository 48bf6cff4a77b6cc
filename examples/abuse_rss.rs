//! Memory under abuse, side by side: the `redcluster-server` binary and a real
//! `redis-server`, the same load sent to each, RSS and keys held printed over time.
//!
//! ```text
//! cargo build --release --bin redcluster-server --example abuse_rss
//! target/release/examples/abuse_rss keys   [--n 1000000 --ttl 3600] # RSS per 64-byte key
//! target/release/examples/abuse_rss expiry [--rate 20000 --secs 20] # SET .. EX 1 per second
//! target/release/examples/abuse_rss burst  [--n 300000 --secs 10]   # a burst of EX 1 keys
//! target/release/examples/abuse_rss replica [--n 60 --mb 10]        # a stalled replica
//! target/release/examples/abuse_rss http                            # an HTTP POST body
//! target/release/examples/abuse_rss maxclients [--max 50 --n 100]   # past maxclients
//! target/release/examples/abuse_rss password                        # --requirepass in argv
//! ```
//!
//! `--bin PATH` runs another `redcluster-server` build (for before/after figures); the
//! default is the one next to this example. Linux only (RSS from `/proc/PID/status`).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use redcluster::resp::{decode, encode_command, Limits, Value};

/// One server under test: a child process and the port of its (first) node.
struct Server {
    name: &'static str,
    child: Child,
    port: u16,
    /// The replica's port, when started with one.
    replica_port: Option<u16>,
    /// Extra real-redis replica process.
    extra: Option<Child>,
}

impl Drop for Server {
    fn drop(&mut self) {
        for c in [Some(&mut self.child), self.extra.as_mut()]
            .into_iter()
            .flatten()
        {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A pipelining connection.
struct Conn {
    s: TcpStream,
    buf: BytesMut,
}

impl Conn {
    fn open(port: u16) -> Conn {
        for _ in 0..200 {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
                return Conn {
                    s,
                    buf: BytesMut::new(),
                };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("cannot connect to {port}");
    }

    /// Send every command, then read as many replies.
    fn pipeline(&mut self, cmds: &[Vec<Vec<u8>>]) -> Vec<Value> {
        let mut out = BytesMut::new();
        for c in cmds {
            encode_command(&mut out, c.iter());
        }
        self.s.write_all(&out).expect("write");
        let mut replies = Vec::with_capacity(cmds.len());
        let mut chunk = vec![0u8; 256 * 1024];
        while replies.len() < cmds.len() {
            while let Some(v) = decode(&mut self.buf, &Limits::default()).expect("RESP") {
                replies.push(v);
            }
            if replies.len() < cmds.len() {
                let n = self.s.read(&mut chunk).expect("read");
                assert!(n > 0, "server closed");
                self.buf.extend_from_slice(&chunk[..n]);
            }
        }
        replies
    }

    fn cmd(&mut self, args: &[&str]) -> Value {
        let c: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
        self.pipeline(&[c]).remove(0)
    }

    fn text(&mut self, args: &[&str]) -> String {
        match self.cmd(args) {
            Value::BulkString(b) | Value::SimpleString(b) | Value::Error(b) => {
                String::from_utf8_lossy(&b).into_owned()
            }
            Value::Verbatim { text, .. } => String::from_utf8_lossy(&text).into_owned(),
            other => format!("{other:?}"),
        }
    }

    /// Keys held (expired ones not yet reclaimed included), from INFO keyspace.
    fn keys(&mut self) -> u64 {
        let info = self.text(&["INFO", "keyspace"]);
        info.split("keys=")
            .nth(1)
            .and_then(|r| r.split(',').next()?.parse().ok())
            .unwrap_or(0)
    }
}

fn start_real(with_replica: bool) -> Server {
    let dir = std::env::temp_dir().join(format!("abuse-rss-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spawn = |port: u16, extra: &[String]| {
        Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--dir", dir.to_str().unwrap()])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server")
    };
    let port = free_port();
    if with_replica {
        // Standalone primary and replica: the output buffer rules are the same.
        let child = spawn(port, &[]);
        let rport = free_port();
        // DEBUG SLEEP (how the scenario stalls the replica) is off by default in Redis 7.
        let replica = spawn(
            rport,
            &[
                "--replicaof".into(),
                format!("127.0.0.1 {port}"),
                "--enable-debug-command".into(),
                "yes".into(),
            ],
        );
        return Server {
            name: "redis",
            child,
            port,
            replica_port: Some(rport),
            extra: Some(replica),
        };
    }
    let conf = format!("nodes-{port}.conf");
    let child = spawn(
        port,
        &[
            "--cluster-enabled".into(),
            "yes".into(),
            "--cluster-config-file".into(),
            conf,
        ],
    );
    let mut c = Conn::open(port);
    c.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    while !c.text(&["CLUSTER", "INFO"]).contains("cluster_state:ok") {
        std::thread::sleep(Duration::from_millis(50));
    }
    Server {
        name: "redis",
        child,
        port,
        replica_port: None,
        extra: None,
    }
}

fn start_ours(bin: &str, with_replica: bool) -> Server {
    let port = free_port();
    let replicas = if with_replica { "1" } else { "0" };
    let child = Command::new(bin)
        .args(["--primaries", "1", "--replicas-per-primary", replicas])
        .args(["--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("redcluster-server");
    let mut c = Conn::open(port);
    while c.text(&["PING"]) != "PONG" {
        std::thread::sleep(Duration::from_millis(50));
    }
    let replica_port = with_replica.then_some(port + 1);
    Server {
        name: "redcluster",
        child,
        port,
        replica_port,
        extra: None,
    }
}

fn set_cmds(prefix: &str, range: std::ops::Range<usize>, ttl: Option<&str>) -> Vec<Vec<Vec<u8>>> {
    let value = vec![b'x'; 64];
    range
        .map(|i| {
            let mut c = vec![
                b"SET".to_vec(),
                format!("{prefix}{i}").into_bytes(),
                value.clone(),
            ];
            if let Some(t) = ttl {
                c.extend([b"EX".to_vec(), t.as_bytes().to_vec()]);
            }
            c
        })
        .collect()
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.windows(2)
        .find(|w| w[0] == name)
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(default)
}

/// An HTTP POST whose body holds a command: what the server answers, whether it closes
/// the connection, and whether the command in the body ran.
fn http_probe(s: &Server) -> String {
    let body = "SET {b}pwned yes\r\n";
    let req = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        s.port,
        body.len()
    );
    let mut c = Conn::open(s.port);
    c.s.write_all(req.as_bytes()).expect("write");
    c.s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let closed = loop {
        match c.s.read(&mut chunk) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break false
            }
            Err(_) => break true,
        }
    };
    let errors = got
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"-"))
        .count();
    let executed = Conn::open(s.port).cmd(&["EXISTS", "{b}pwned"]) == Value::Integer(1);
    format!(
        "{:<10} replied {} bytes ({errors} error replies), closed within 2 s: {}, \
         SET in the body executed: {}",
        s.name,
        got.len(),
        yes(closed),
        yes(executed)
    )
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// `CONFIG SET maxclients max`, then `n` more connections: how many are served, refused
/// with Redis' error, or neither.
fn maxclients_probe(s: &Server, max: u64, n: usize) -> String {
    let mut ctl = Conn::open(s.port);
    let set = ctl.text(&["CONFIG", "SET", "maxclients", &max.to_string()]);
    let conns: Vec<Option<TcpStream>> = (0..n)
        .map(|_| TcpStream::connect(("127.0.0.1", s.port)).ok())
        .collect();
    // A refusal is written at accept time: look for it before sending anything, so the
    // server never closes a socket holding unread data (that would reset it).
    std::thread::sleep(Duration::from_millis(500));
    let (mut served, mut refused, mut other) = (0, 0, 0);
    let mut refusal = String::new();
    for c in conns {
        let Some(mut c) = c else {
            other += 1;
            continue;
        };
        let mut buf = [0u8; 256];
        c.set_nonblocking(true).unwrap();
        let early = c.read(&mut buf).unwrap_or(0);
        c.set_nonblocking(false).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let n = if early > 0 {
            early
        } else {
            let _ = c.write_all(b"PING\r\n");
            c.read(&mut buf).unwrap_or(0)
        };
        let reply = String::from_utf8_lossy(&buf[..n]);
        if reply.starts_with("+PONG") {
            served += 1;
        } else if reply.starts_with("-ERR max number of clients") {
            refused += 1;
            refusal = reply.trim().to_string();
        } else {
            other += 1;
        }
    }
    format!(
        "{:<10} CONFIG SET maxclients {max}: {set}; {n} more connections: {served} served, \
         {refused} refused {refusal:?}, {other} neither",
        s.name
    )
}

/// Start each server with `--requirepass` on its command line and look for the password in
/// `/proc/PID/cmdline` (what `ps` shows every local user) once it serves clients.
fn password_probe(bin: &str) {
    const PASS: &str = "probe-pw-4815162342";
    let port = free_port();
    let redis = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--requirepass", PASS])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server");
    let ours_port = free_port();
    let ours = Command::new(bin)
        .args(["--primaries", "1", "--port", &ours_port.to_string()])
        .args(["--requirepass", PASS])
        .stdout(Stdio::null())
        .spawn()
        .expect("redcluster-server");
    for (name, mut child, port) in [("redis", redis, port), ("redcluster", ours, ours_port)] {
        // Serving: PING answers (NOAUTH) once start-up (and any re-exec) is over.
        let mut c = Conn::open(port);
        let reply = c.text(&["PING"]);
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap_or_default();
        let shown = String::from_utf8_lossy(&cmdline)
            .replace('\0', " ")
            .replace(PASS, "<PASSWORD>");
        println!(
            "{name:<10} PING -> {reply:?}; password in /proc/PID/cmdline: {} ({})",
            yes(shown.contains("<PASSWORD>")),
            shown.trim()
        );
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let scenario = args.first().cloned().unwrap_or_else(|| "keys".into());
    let default_bin = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.join("redcluster-server")))
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let bin = args
        .windows(2)
        .find(|w| w[0] == "--bin")
        .map_or(default_bin, |w| w[1].clone());
    if scenario == "password" {
        password_probe(&bin);
        return;
    }
    let replica = scenario == "replica";
    let mut servers = vec![start_real(replica), start_ours(&bin, replica)];
    std::thread::sleep(Duration::from_millis(500));
    match scenario.as_str() {
        "keys" => {
            let n = arg(&args, "--n", 1_000_000) as usize;
            // --ttl SECS: every key with EX SECS (long enough not to expire during the run).
            let ttl = args
                .windows(2)
                .find(|w| w[0] == "--ttl")
                .map(|w| w[1].clone());
            for s in &mut servers {
                let before = rss_kb(s.child.id());
                let mut c = Conn::open(s.port);
                for start in (0..n).step_by(10_000) {
                    let range = start..(start + 10_000).min(n);
                    c.pipeline(&set_cmds("key:", range, ttl.as_deref()));
                }
                let after = rss_kb(s.child.id());
                println!(
                    "{:<10} {n} keys: RSS {} -> {} MB, {:.0} B per key",
                    s.name,
                    before / 1024,
                    after / 1024,
                    (after.saturating_sub(before) * 1024) as f64 / n as f64
                );
            }
        }
        "expiry" | "burst" => {
            let secs = arg(&args, "--secs", if scenario == "burst" { 10 } else { 20 });
            let rate = arg(&args, "--rate", 20_000) as usize;
            let burst = arg(&args, "--n", 300_000) as usize;
            let mut conns: Vec<Conn> = servers.iter().map(|s| Conn::open(s.port)).collect();
            println!(
                "{:>4}  {:>22}  {:>22}",
                "s", "redis keys / RSS MB", "redcluster keys / RSS MB"
            );
            let mut row = format!("{:>4}", 0);
            for s in &servers {
                row += &format!("  {:>12} / {:>7}", 0, rss_kb(s.child.id()) / 1024);
            }
            println!("{row}  (before the load)");
            if scenario == "burst" {
                // Batches alternate between the servers, so both finish loading together.
                for start in (0..burst).step_by(10_000) {
                    let cmds = set_cmds("b:", start..(start + 10_000).min(burst), Some("1"));
                    for c in &mut conns {
                        c.pipeline(&cmds);
                    }
                }
            }
            let t0 = Instant::now();
            // The first second each server held no key at all (expired ones included).
            let mut emptied: Vec<Option<usize>> = vec![None; servers.len()];
            let mut peak = vec![(0u64, 0u64); servers.len()];
            for sec in 0..secs as usize {
                if scenario == "expiry" {
                    for c in &mut conns {
                        let base = sec * rate;
                        c.pipeline(&set_cmds("e:", base..base + rate, Some("1")));
                    }
                }
                let mut row = format!("{:>4}", sec + 1);
                for (i, (s, c)) in servers.iter().zip(&mut conns).enumerate() {
                    let (keys, rss) = (c.keys(), rss_kb(s.child.id()) / 1024);
                    if keys == 0 && emptied[i].is_none() {
                        emptied[i] = Some(sec + 1);
                    }
                    peak[i] = (peak[i].0.max(keys), peak[i].1.max(rss));
                    row += &format!("  {keys:>12} / {rss:>7}");
                }
                println!("{row}");
                let next = Duration::from_secs(sec as u64 + 1);
                std::thread::sleep(next.saturating_sub(t0.elapsed()));
            }
            for (i, s) in servers.iter().enumerate() {
                let when = emptied[i].map_or(format!("not within {secs} s"), |t| format!("{t} s"));
                println!(
                    "{:<10} peak {} keys held, peak RSS {} MB; no key left: {when}",
                    s.name, peak[i].0, peak[i].1
                );
            }
        }
        "replica" => {
            let n = arg(&args, "--n", 60) as usize;
            let mb = arg(&args, "--mb", 10) as usize;
            let value = vec![b'v'; mb << 20];
            for s in &mut servers {
                let before = rss_kb(s.child.id());
                let rport = s.replica_port.expect("a replica");
                // Wait for the replica's first sync, then stall it.
                let mut p = Conn::open(s.port);
                while !p.text(&["INFO", "replication"]).contains("state=online") {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let mut r = Conn::open(rport);
                r.s.write_all(b"DEBUG SLEEP 20\r\n").unwrap();
                std::thread::sleep(Duration::from_millis(200));
                let mut peak = 0;
                // One key overwritten: the dataset stays at one value, so what RSS gains is
                // the stream held for the replica.
                for _ in 0..n {
                    p.pipeline(&[vec![b"SET".to_vec(), b"big".to_vec(), value.clone()]]);
                    peak = peak.max(rss_kb(s.child.id()));
                }
                let repl = p.text(&["INFO", "replication"]);
                let slaves = repl
                    .lines()
                    .find(|l| l.starts_with("connected_slaves"))
                    .unwrap_or("");
                std::thread::sleep(Duration::from_secs(3));
                println!(
                    "{:<10} {n} x {mb} MB written to one key, replica stalled: RSS {} -> peak \
                     {} MB, {} MB 3 s later; {}",
                    s.name,
                    before / 1024,
                    peak / 1024,
                    rss_kb(s.child.id()) / 1024,
                    slaves.trim()
                );
            }
        }
        "http" => {
            for s in &servers {
                println!("{}", http_probe(s));
            }
        }
        "maxclients" => {
            let max = arg(&args, "--max", 50);
            let n = arg(&args, "--n", 100) as usize;
            for s in &servers {
                println!("{}", maxclients_probe(s, max, n));
            }
        }
        other => eprintln!(
            "unknown scenario {other}: keys | expiry | burst | replica | http | maxclients | \
             password"
        ),
    }
}
