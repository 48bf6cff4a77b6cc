//! A real `redis-server` 7 cluster for conformance tests, started by the tests themselves.
//!
//! Each node runs under a small shell watchdog whose stdin is a pipe held by the test
//! process: when the test process exits (even by panic or abort) the pipe closes and the
//! watchdog kills its `redis-server`, so no server outlives the tests.
//!
//! `REDCLUSTER_REQUIRE_REAL=1` turns a missing `redis-server` into a failure instead of a skip.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::wait::wait_until;

/// One `redis-server` process of a [`RealCluster`].
#[derive(Debug)]
pub struct RealNode {
    /// Client port on 127.0.0.1.
    pub port: u16,
    /// Cluster bus port on 127.0.0.1.
    pub bus_port: u16,
    watchdog: Option<Child>,
    conf: PathBuf,
}

impl RealNode {
    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn spawn(dir: &std::path::Path, extra: &[(&str, &str)]) -> RealNode {
        let port = free_port();
        let bus_port = free_port();
        let conf = dir.join(format!("node-{port}.conf"));
        let mut text = format!(
            "port {port}\nbind 127.0.0.1\ncluster-enabled yes\ncluster-port {bus_port}\n\
             cluster-config-file nodes-{port}.conf\ncluster-node-timeout 2000\n\
             save \"\"\nappendonly no\ndir {}\nlogfile redis-{port}.log\nprotected-mode no\n",
            dir.display()
        );
        for (k, v) in extra {
            text.push_str(&format!("{k} {v}\n"));
        }
        std::fs::write(&conf, text).expect("write redis.conf");
        let mut node = RealNode {
            port,
            bus_port,
            watchdog: None,
            conf,
        };
        node.start_process();
        node
    }

    fn start_process(&mut self) {
        self.watchdog = Some(watchdog(&self.conf.display().to_string()));
        wait_until(Duration::from_secs(10), || {
            cli(self.port, &["PING"]).trim() == "PONG"
        });
    }

    /// One node owning every slot (a one-primary cluster), for probes that compare a
    /// single node's behaviour with the bundled server's. `None` as [`RealCluster::start`].
    pub fn start_single(extra: &[(&str, &str)]) -> Option<RealNode> {
        if !redis_available() {
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "redcluster-real1-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let node = RealNode::spawn(&dir, extra);
        let pass: Vec<&str> = extra
            .iter()
            .filter(|(k, _)| *k == "requirepass")
            .flat_map(|(_, v)| ["-a", v, "--no-auth-warning"])
            .collect();
        let add = [&pass[..], &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]].concat();
        cli(node.port, &add);
        let info = [&pass[..], &["CLUSTER", "INFO"]].concat();
        wait_until(Duration::from_secs(10), || {
            cli(node.port, &info).contains("cluster_state:ok")
        });
        Some(node)
    }

    /// Kill the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(child) = self.watchdog.take() {
            kill_watchdog(child);
        }
    }

    /// Start the process again with its saved cluster config (it rejoins the cluster).
    pub fn restart(&mut self) {
        self.kill();
        self.start_process();
    }

    /// Run `redis-cli` against this node and return its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        cli(self.port, args)
    }
}

impl Drop for RealNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A real Redis Cluster on free loopback ports, torn down on drop.
#[derive(Debug)]
pub struct RealCluster {
    /// The nodes; the first `primaries` are the primaries as created.
    pub nodes: Vec<RealNode>,
    dir: PathBuf,
}

/// True when `redis-server` and `redis-cli` can be run here. Panics when they cannot and
/// `REDCLUSTER_REQUIRE_REAL=1` is set, so CI never silently skips conformance tests.
pub fn redis_available() -> bool {
    tools_available(&["redis-server", "redis-cli"])
}

/// True when every one of `tools` runs (`tool --version` succeeds). When one does not, the
/// calling test should return early (a skip, said on stderr), except under
/// `REDCLUSTER_REQUIRE_REAL=1`, where this panics instead.
pub fn tools_available(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|tool| {
            !Command::new(tool)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("REDCLUSTER_REQUIRE_REAL").as_deref() == Ok("1") {
        panic!("REDCLUSTER_REQUIRE_REAL=1 but {missing:?} cannot be run");
    }
    eprintln!("skipping: {missing:?} not installed (set REDCLUSTER_REQUIRE_REAL=1 to fail)");
    false
}

impl RealCluster {
    /// Start `primaries` primaries with `replicas` replicas each, created with
    /// `redis-cli --cluster create`, and wait until every node reports `cluster_state:ok`,
    /// knows every other node, and every replica's link to its primary is up.
    ///
    /// Returns `None` (the test should return early) when `redis-server` is missing and
    /// `REDCLUSTER_REQUIRE_REAL` is not `1`.
    pub fn start(primaries: usize, replicas: usize) -> Option<RealCluster> {
        Self::start_with(primaries, replicas, &[])
    }

    /// As [`RealCluster::start`], with extra `redis.conf` lines for every node
    /// (for instance `("requirepass", "secret")`).
    pub fn start_with(
        primaries: usize,
        replicas: usize,
        extra: &[(&str, &str)],
    ) -> Option<RealCluster> {
        if !redis_available() {
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "redcluster-real-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let total = primaries * (1 + replicas);
        let nodes: Vec<RealNode> = (0..total).map(|_| RealNode::spawn(&dir, extra)).collect();
        let cluster = RealCluster { nodes, dir };
        let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
        args.extend(
            cluster
                .nodes
                .iter()
                .map(|n| format!("127.0.0.1:{}", n.port)),
        );
        args.extend([
            "--cluster-replicas".into(),
            replicas.to_string(),
            "--cluster-yes".into(),
        ]);
        let pass = extra
            .iter()
            .find(|(k, _)| *k == "requirepass")
            .map(|(_, v)| *v);
        let mut cmd = Command::new("redis-cli");
        if let Some(p) = pass {
            cmd.env("REDISCLI_AUTH", p);
        }
        let out = cmd
            .args(&args)
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        cluster.wait_healthy(pass);
        Some(cluster)
    }

    /// One cluster-enabled node owning every slot (the reference for byte-for-byte
    /// comparisons with a one-primary bundled cluster); `None` as for [`RealCluster::start`].
    pub fn single() -> Option<RealCluster> {
        if !redis_available() {
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "redcluster-real-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let node = RealNode::spawn(&dir, &[]);
        let out = node.cli(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
        assert_eq!(out.trim(), "OK", "CLUSTER ADDSLOTSRANGE: {out}");
        let cluster = RealCluster {
            nodes: vec![node],
            dir,
        };
        cluster.wait_healthy(None);
        Some(cluster)
    }

    /// Block until every node says `cluster_state:ok` and knows every node, and every
    /// replica's replication link is up.
    pub fn wait_healthy(&self, pass: Option<&str>) {
        let total = self.nodes.len();
        wait_until(Duration::from_secs(60), || {
            self.nodes.iter().all(|n| {
                let info = cli_auth(n.port, pass, &["CLUSTER", "INFO"]);
                let nodes = cli_auth(n.port, pass, &["CLUSTER", "NODES"]);
                let repl = cli_auth(n.port, pass, &["INFO", "replication"]);
                info.contains("cluster_state:ok")
                    && nodes.lines().filter(|l| !l.trim().is_empty()).count() == total
                    && !nodes.contains("handshake")
                    && !nodes.contains("fail")
                    && (repl.contains("role:master") || repl.contains("master_link_status:up"))
            })
        });
    }

    /// Block until every replica has acknowledged everything its primary has written
    /// (each primary's `slaveN:...,offset=` equals its `master_repl_offset`), so reads from
    /// replicas see every write made before the call. `WAIT` from a fresh `redis-cli`
    /// connection cannot do this: it only waits for that connection's own writes.
    pub fn wait_replicas_synced(&self) {
        wait_until(Duration::from_secs(20), || {
            self.nodes
                .iter()
                .all(|n| replicas_synced(&n.cli(&["INFO", "replication"])))
        });
    }

    /// Seed addresses, `127.0.0.1:port` for every node.
    pub fn seeds(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect()
    }

    /// The node whose `CLUSTER MYID` is `id`.
    pub fn node_by_id(&self, id: &str) -> Option<&RealNode> {
        self.nodes
            .iter()
            .find(|n| n.cli(&["CLUSTER", "MYID"]).trim() == id)
    }

    /// Index of the node currently serving `slot` as primary, asked of node 0.
    pub fn primary_index_for_slot(&self, slot: u16) -> usize {
        let slots = self.nodes[0].cli(&["CLUSTER", "NODES"]);
        for line in slots.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 9 || !fields[2].contains("master") {
                continue;
            }
            for range in &fields[8..] {
                let (lo, hi) = match range.split_once('-') {
                    Some((a, b)) => (a.parse::<u16>(), b.parse::<u16>()),
                    None => (range.parse::<u16>(), range.parse::<u16>()),
                };
                if let (Ok(lo), Ok(hi)) = (lo, hi) {
                    if (lo..=hi).contains(&slot) {
                        let port: u16 = fields[1]
                            .split(['@', ':'])
                            .nth(1)
                            .and_then(|p| p.parse().ok())
                            .unwrap_or(0);
                        return self
                            .nodes
                            .iter()
                            .position(|n| n.port == port)
                            .expect("owner is one of ours");
                    }
                }
            }
        }
        panic!("slot {slot} not covered");
    }
}

impl Drop for RealCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Start `redis-server ARGS` under a shell watchdog whose stdin is a pipe held by this
/// process: writing a line to it or closing it (this process ending, even by a panic)
/// SIGKILLs the server. `args` is the `redis-server` argument string (a config path, and
/// `--sentinel` for a Sentinel).
pub fn watchdog(args: &str) -> Child {
    let script = format!(
        "redis-server {args} & p=$!; read -r _; kill -9 $p 2>/dev/null; wait $p 2>/dev/null"
    );
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server watchdog")
}

/// SIGKILL the server of a [`watchdog`] and wait until it is gone.
pub fn kill_watchdog(mut child: Child) {
    if let Some(stdin) = child.stdin.as_mut() {
        let _ = stdin.write_all(b"\n");
    }
    drop(child.stdin.take());
    let _ = child.wait();
}

/// A port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Run `redis-cli -p port args...` and return stdout (empty on failure).
pub fn cli(port: u16, args: &[&str]) -> String {
    cli_auth(port, None, args)
}

/// As [`cli`], authenticating with `pass` (through `REDISCLI_AUTH`, never on the command line).
pub fn cli_auth(port: u16, pass: Option<&str>, args: &[&str]) -> String {
    let mut cmd = Command::new("redis-cli");
    if let Some(p) = pass {
        cmd.env("REDISCLI_AUTH", p);
    }
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// True when the `INFO replication` text `repl` is a replica's, or a primary's whose every
/// replica has acknowledged its whole stream (each `slaveN:...,offset=` equals
/// `master_repl_offset`). Shared by the real and the bundled cluster helpers.
pub fn replicas_synced(repl: &str) -> bool {
    if !repl.contains("role:master") {
        return true;
    }
    let field = |name: &str| {
        repl.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let Some(offset) = field("master_repl_offset:") else {
        return false;
    };
    let replicas = field("connected_slaves:").unwrap_or(0);
    let acked = repl
        .lines()
        .filter(|l| l.starts_with("slave") && l.contains("offset="))
        .filter(|l| {
            l.split(',')
                .find_map(|kv| kv.strip_prefix("offset="))
                .and_then(|v| v.trim().parse::<u64>().ok())
                == Some(offset)
        })
        .count() as u64;
    acked == replicas
}
