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
        let base_port = free_port_run(nodes);
        let child = Command::new(env!("CARGO_BIN_EXE_redcluster-server"))
            .args(args)
            .args(["--port", &base_port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn redcluster-server");
        let server = ServerProcess {
            base_port,
            nodes,
            child,
        };
        wait_until(Duration::from_secs(20), || {
            server.ports().all(|p| cli(p, &["PING"]).trim() == "PONG")
        });
        server
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
