//! A real `redis-server` 7 primary with replicas (cluster mode off, `replicaof`), and
//! optionally real Sentinels (`redis-server sentinel.conf --sentinel`) watching it as
//! `mymaster`, all on free loopback ports and started by the tests themselves.
//!
//! Every process runs under the watchdog of [`super::real_cluster::watchdog`], so none
//! outlives the test process. `REDCLUSTER_REQUIRE_REAL=1` turns a missing `redis-server` /
//! `redis-cli` into a failure instead of a skip, as for the real cluster.
//!
//! The Sentinels use `down-after-milliseconds 1000` and `failover-timeout 3000`, so a killed
//! primary is replaced within a few seconds.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use super::real_cluster::{
    cli_auth, free_port, kill_watchdog, redis_available, replicas_synced, watchdog,
};
use super::wait::wait_until;

/// The name the Sentinels monitor the primary under.
pub const MASTER_NAME: &str = "mymaster";

/// How long the bounded waits of this module wait (start-up, sync, failover).
const LIMIT: Duration = Duration::from_secs(60);

/// One `redis-server` process (a data node or a Sentinel) that can be killed and restarted
/// with the same port and config file.
#[derive(Debug)]
pub struct RealProcess {
    /// Client port on 127.0.0.1.
    pub port: u16,
    conf: PathBuf,
    sentinel: bool,
    pass: Option<String>,
    watchdog: Option<Child>,
}

impl RealProcess {
    fn spawn(conf: PathBuf, port: u16, sentinel: bool, pass: Option<&str>) -> RealProcess {
        let mut p = RealProcess {
            port,
            conf,
            sentinel,
            pass: pass.map(str::to_owned),
            watchdog: None,
        };
        p.start();
        p
    }

    fn start(&mut self) {
        let mut args = self.conf.display().to_string();
        if self.sentinel {
            args.push_str(" --sentinel");
        }
        self.watchdog = Some(watchdog(&args));
        wait_until(Duration::from_secs(10), || {
            self.cli(&["PING"]).trim() == "PONG"
        });
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// True while the process runs (it was not killed, or was restarted since).
    pub fn is_running(&self) -> bool {
        self.watchdog.is_some()
    }

    /// Kill the process at once (SIGKILL), as a crash would. Idempotent.
    pub fn kill(&mut self) {
        if let Some(child) = self.watchdog.take() {
            kill_watchdog(child);
        }
    }

    /// Start the process again (killing it first if it runs) on the same port, with its config
    /// file as the server (or a Sentinel) last rewrote it; waits until it answers PING.
    pub fn restart(&mut self) {
        self.kill();
        self.start();
    }

    /// Restart a data node as a replica of `port` (its config file gains a `replicaof`
    /// line): a failed primary brought back by hand after another node was promoted.
    pub fn restart_as_replica_of(&mut self, port: u16) {
        self.kill();
        let mut text = std::fs::read_to_string(&self.conf).expect("read redis.conf");
        text.push_str(&format!("replicaof 127.0.0.1 {port}\n"));
        std::fs::write(&self.conf, text).expect("write redis.conf");
        self.start();
    }

    /// Run `redis-cli` against this process (authenticated with the set's `requirepass`, if
    /// any) and return its stdout (empty on failure).
    pub fn cli(&self, args: &[&str]) -> String {
        cli_auth(self.port, self.pass.as_deref(), args)
    }

    /// The value of `field` in this process's `INFO section` text, if present.
    pub fn info_field(&self, section: &str, field: &str) -> Option<String> {
        info_field(&self.cli(&["INFO", section]), field)
    }
}

impl Drop for RealProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The value of `field` (`field:value` line) in an `INFO` text.
pub fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines().find_map(|l| {
        l.trim()
            .strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::to_owned)
    })
}

/// A real primary (node 0 as created) with replicas, and optional Sentinels; all processes
/// killed and the temp dir removed on drop.
#[derive(Debug)]
pub struct RealReplicaSet {
    /// The data nodes: node 0 was the primary at start, the others its replicas.
    pub nodes: Vec<RealProcess>,
    /// The Sentinels (empty unless started with some).
    pub sentinels: Vec<RealProcess>,
    /// The Sentinels' quorum.
    pub quorum: usize,
    dir: PathBuf,
}

impl RealReplicaSet {
    /// A primary with `replicas` replicas, no Sentinel; waits until every replica's link is up
    /// and the primary lists them all as `online`. `None` (the test should return early) when
    /// `redis-server` is missing and `REDCLUSTER_REQUIRE_REAL` is not `1`.
    pub fn start(replicas: usize) -> Option<RealReplicaSet> {
        Self::start_with(replicas, 0, &[])
    }

    /// As [`RealReplicaSet::start`], plus `sentinels` Sentinels monitoring the primary as
    /// [`MASTER_NAME`] with quorum `sentinels / 2 + 1`; also waits until every Sentinel knows
    /// every replica and every other Sentinel (so a failover can be elected).
    pub fn with_sentinels(replicas: usize, sentinels: usize) -> Option<RealReplicaSet> {
        Self::start_with(replicas, sentinels, &[])
    }

    /// As [`RealReplicaSet::start_secured`] without a Sentinel password.
    pub fn start_with(
        replicas: usize,
        sentinels: usize,
        extra: &[(&str, &str)],
    ) -> Option<RealReplicaSet> {
        Self::start_secured(replicas, sentinels, extra, None)
    }

    /// The general form: `extra` lines go into every data node's `redis.conf` (for instance
    /// `("requirepass", "pw")` with `("masterauth", "pw")`; the Sentinels are then given
    /// `auth-pass` from `requirepass`), and `sentinel_pass` becomes the Sentinels' own
    /// `requirepass` (the helpers here authenticate with it).
    pub fn start_secured(
        replicas: usize,
        sentinels: usize,
        extra: &[(&str, &str)],
        sentinel_pass: Option<&str>,
    ) -> Option<RealReplicaSet> {
        if !redis_available() {
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "redcluster-standalone-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let primary_port = free_port();
        let mut nodes = vec![spawn_node(&dir, primary_port, None, extra)];
        for _ in 0..replicas {
            nodes.push(spawn_node(&dir, free_port(), Some(primary_port), extra));
        }
        let quorum = sentinels / 2 + 1;
        let pass = extra
            .iter()
            .find(|(k, _)| *k == "requirepass")
            .map(|(_, v)| *v);
        let sentinels = (0..sentinels)
            .map(|_| spawn_sentinel(&dir, primary_port, quorum, pass, sentinel_pass))
            .collect();
        let set = RealReplicaSet {
            nodes,
            sentinels,
            quorum,
            dir,
        };
        set.wait_healthy();
        Some(set)
    }

    /// Block until the current primary lists every other running node as an `online` replica,
    /// each such replica's link is up, and every running Sentinel names that primary and
    /// knows the running replicas and the other Sentinels.
    pub fn wait_healthy(&self) {
        wait_until(LIMIT, || {
            let Some(primary) = self.primary_index() else {
                return false;
            };
            let running = self.nodes.iter().filter(|n| n.is_running()).count();
            let repl = self.nodes[primary].cli(&["INFO", "replication"]);
            let online = repl
                .lines()
                .filter(|l| l.starts_with("slave") && l.contains("state=online"))
                .count();
            let links_up = self.nodes.iter().enumerate().all(|(i, n)| {
                i == primary
                    || !n.is_running()
                    || n.info_field("replication", "master_link_status").as_deref() == Some("up")
            });
            online + 1 == running && links_up && self.sentinels_agree(primary, running - 1)
        });
    }

    fn sentinels_agree(&self, primary: usize, replicas: usize) -> bool {
        let others = self.sentinels.iter().filter(|s| s.is_running()).count();
        self.sentinels.iter().filter(|s| s.is_running()).all(|s| {
            let fields = sentinel_master_fields(s);
            let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.as_str());
            get("port") == Some(&self.nodes[primary].port.to_string())
                && get("num-slaves")
                    .and_then(|v| v.parse::<usize>().ok())
                    .is_some_and(|n| n >= replicas)
                && get("num-other-sentinels") == Some(&(others - 1).to_string())
                && get("flags") == Some("master")
        })
    }

    /// Index of the running node that says `role:master`, if exactly one does.
    pub fn primary_index(&self) -> Option<usize> {
        let masters: Vec<usize> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| {
                n.is_running() && n.info_field("replication", "role").as_deref() == Some("master")
            })
            .map(|(i, _)| i)
            .collect();
        (masters.len() == 1).then(|| masters[0])
    }

    /// Index of the node whose port is `port`.
    pub fn index_of_port(&self, port: u16) -> Option<usize> {
        self.nodes.iter().position(|n| n.port == port)
    }

    /// Data-node addresses, `127.0.0.1:port` for every node (killed ones included).
    pub fn seeds(&self) -> Vec<String> {
        self.nodes.iter().map(RealProcess::addr).collect()
    }

    /// Sentinel addresses, `127.0.0.1:port`.
    pub fn sentinel_addrs(&self) -> Vec<String> {
        self.sentinels.iter().map(RealProcess::addr).collect()
    }

    /// The primary's port as the first running Sentinel that answers names it
    /// (`SENTINEL get-master-addr-by-name`).
    pub fn sentinel_primary_port(&self) -> Option<u16> {
        self.sentinels
            .iter()
            .filter(|s| s.is_running())
            .find_map(|s| {
                let out = s.cli(&["SENTINEL", "get-master-addr-by-name", MASTER_NAME]);
                out.lines().nth(1)?.trim().parse().ok()
            })
    }

    /// Block until some Sentinel names a primary other than `old_port` and that node says
    /// `role:master`; returns the new primary's index and how long the wait took.
    pub fn wait_failover_from(&self, old_port: u16) -> (usize, Duration) {
        let start = Instant::now();
        let mut found = None;
        wait_until(LIMIT, || {
            found = self
                .sentinel_primary_port()
                .filter(|p| *p != old_port)
                .and_then(|p| self.index_of_port(p))
                .filter(|&i| {
                    self.nodes[i].info_field("replication", "role").as_deref() == Some("master")
                });
            found.is_some()
        });
        (found.expect("a new primary"), start.elapsed())
    }

    /// Block until every replica has acknowledged the whole stream of the current primary.
    pub fn wait_replicas_synced(&self) {
        wait_until(LIMIT, || {
            self.primary_index()
                .is_some_and(|p| replicas_synced(&self.nodes[p].cli(&["INFO", "replication"])))
        });
    }

    /// The temp dir holding the configs and logs (`redis-PORT.log`, `sentinel-PORT.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for RealReplicaSet {
    fn drop(&mut self) {
        for p in self.sentinels.iter_mut().chain(self.nodes.iter_mut()) {
            p.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `SENTINEL master mymaster` of `s` as (field, value) pairs (empty when it fails).
pub fn sentinel_master_fields(s: &RealProcess) -> Vec<(String, String)> {
    let out = s.cli(&["SENTINEL", "master", MASTER_NAME]);
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    lines
        .chunks(2)
        .filter(|c| c.len() == 2)
        .map(|c| (c[0].to_owned(), c[1].to_owned()))
        .collect()
}

fn spawn_node(
    dir: &Path,
    port: u16,
    replica_of: Option<u16>,
    extra: &[(&str, &str)],
) -> RealProcess {
    let conf = dir.join(format!("redis-{port}.conf"));
    let mut text = format!(
        "port {port}\nbind 127.0.0.1\nprotected-mode no\nsave \"\"\nappendonly no\n\
         dir {}\nlogfile redis-{port}.log\ndbfilename dump-{port}.rdb\n\
         repl-diskless-sync yes\nrepl-diskless-sync-delay 0\n",
        dir.display()
    );
    if let Some(p) = replica_of {
        text.push_str(&format!("replicaof 127.0.0.1 {p}\n"));
    }
    for (k, v) in extra {
        text.push_str(&format!("{k} {v}\n"));
    }
    std::fs::write(&conf, text).expect("write redis.conf");
    let pass = extra
        .iter()
        .find(|(k, _)| *k == "requirepass")
        .map(|(_, v)| *v);
    RealProcess::spawn(conf, port, false, pass)
}

fn spawn_sentinel(
    dir: &Path,
    primary_port: u16,
    quorum: usize,
    pass: Option<&str>,
    own_pass: Option<&str>,
) -> RealProcess {
    let port = free_port();
    let conf = dir.join(format!("sentinel-{port}.conf"));
    let mut text = format!(
        "port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {}\nlogfile sentinel-{port}.log\n\
         sentinel monitor {MASTER_NAME} 127.0.0.1 {primary_port} {quorum}\n\
         sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
         sentinel failover-timeout {MASTER_NAME} 3000\n\
         sentinel parallel-syncs {MASTER_NAME} 1\n",
        dir.display()
    );
    if let Some(p) = pass {
        text.push_str(&format!("sentinel auth-pass {MASTER_NAME} {p}\n"));
    }
    if let Some(p) = own_pass {
        text.push_str(&format!("requirepass {p}\nsentinel sentinel-pass {p}\n"));
    }
    std::fs::write(&conf, text).expect("write sentinel.conf");
    RealProcess::spawn(conf, port, true, own_pass)
}
