//! The `redcluster-server` binary run as a child process, as a user would run it.

use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::real_cluster::cli;
use super::wait::wait_until;

/// A running `redcluster-server`, killed on drop.
#[derive(Debug)]
pub struct ServerProcess {
    /// First client port; nodes use consecutive ports from here.
    pub base_port: u16,
    /// Number of nodes started.
    pub nodes: usize,
    child: Child,
    /// Where its stderr goes, when captured.
    log: Option<std::path::PathBuf>,
}

/// A base port with `n` consecutive free ports on 127.0.0.1.
pub fn free_port_run(n: usize) -> u16 {
    for _ in 0..200 {
        let base: u16 = 30000 + (rand::random::<u16>() % 25000);
        let ok = (0..n as u16).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if ok {
            return base;
        }
    }
    panic!("no run of {n} free ports found");
}

impl ServerProcess {
    /// Start `redcluster-server` with `args` plus `--port BASE`, and wait until every one of
    /// its `nodes` ports answers PING.
    pub fn start(nodes: usize, args: &[&str]) -> ServerProcess {
        Self::start_with(nodes, args, &[], false)
    }

    /// As [`ServerProcess::start`], with extra environment variables, and with stderr
    /// captured for [`ServerProcess::log`] when `capture_log`. The readiness check does not
    /// authenticate: a node that requires a password answers PING with NOAUTH, which counts.
    pub fn start_with(
        nodes: usize,
        args: &[&str],
        env: &[(&str, &str)],
        capture_log: bool,
    ) -> ServerProcess {
        let base_port = free_port_run(nodes);
        let log = capture_log.then(|| {
            std::env::temp_dir().join(format!(
                "redcluster-server-{}-{}.log",
                std::process::id(),
                rand::random::<u64>()
            ))
        });
        let stderr = match &log {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("create log file")),
            None => Stdio::inherit(),
        };
        let child = Command::new(env!("CARGO_BIN_EXE_redcluster-server"))
            .args(args)
            .args(["--port", &base_port.to_string()])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn redcluster-server");
        let server = ServerProcess {
            base_port,
            nodes,
            child,
            log,
        };
        wait_until(Duration::from_secs(20), || {
            server.ports().all(|p| {
                let r = cli(p, &["PING"]);
                r.trim() == "PONG" || r.contains("NOAUTH")
            })
        });
        server
    }

    /// What the server wrote to stderr so far (empty unless captured).
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every node's client port.
    pub fn ports(&self) -> impl Iterator<Item = u16> {
        self.base_port..self.base_port + self.nodes as u16
    }

    /// `127.0.0.1:port` of node `i`.
    pub fn addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.base_port + i as u16)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(p) = &self.log {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Run a tool (`redis-cli`, `redis-benchmark`, `python3`) with a deadline; panics if it
/// does not finish in time so a hang fails the test instead of stalling CI.
pub fn run_tool(program: &str, args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
    let start = std::time::Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("collect output");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect output");
            panic!(
                "{program} {args:?} did not finish within {limit:?}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether python3 with the `redis` package is installed (REDCLUSTER_REQUIRE_REAL=1 makes its
/// absence a failure).
pub fn python_redis_available() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import redis.cluster"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok && std::env::var("REDCLUSTER_REQUIRE_REAL").as_deref() == Ok("1") {
        panic!("REDCLUSTER_REQUIRE_REAL=1 but Python's redis package is not installed");
    }
    ok
}
