//! [`TestSentinels`]: several bundled Sentinels on 127.0.0.1 watching one replica set, with
//! kill/restart for fault injection.

use std::net::SocketAddr;
use std::time::Duration;

use super::{Monitor, Sentinel, SentinelConfig};

/// Several Sentinels watching the same primaries (see [`TestSentinels::builder`]).
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use redcluster::server::{TestReplicaSet, TestSentinels};
/// let replica_set = TestReplicaSet::builder().replicas(2).start().await?;
/// let sentinels = TestSentinels::builder()
///     .sentinels(3)
///     .quorum(2)
///     .monitor("mymaster", &replica_set)
///     .start()
///     .await?;
/// println!("{:?}", sentinels.addrs());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TestSentinels {
    running: Vec<Option<Sentinel>>,
    configs: Vec<SentinelConfig>,
}

/// Builder of [`TestSentinels`]: 3 Sentinels, quorum 2, `down-after-milliseconds` 1 s,
/// `failover-timeout` 10 s by default.
#[derive(Clone, Debug)]
#[must_use]
pub struct TestSentinelsBuilder {
    count: usize,
    quorum: u32,
    monitors: Vec<(String, SocketAddr)>,
    down_after: Duration,
    failover_timeout: Duration,
    password: Option<String>,
    auth_pass: Option<String>,
    base_port: Option<u16>,
}

impl TestSentinels {
    /// Start describing the Sentinels.
    pub fn builder() -> TestSentinelsBuilder {
        TestSentinelsBuilder {
            count: 3,
            quorum: 2,
            monitors: Vec::new(),
            down_after: Duration::from_secs(1),
            failover_timeout: Duration::from_secs(10),
            password: None,
            auth_pass: None,
            base_port: None,
        }
    }

    /// Every Sentinel's address, stopped ones included (they come back on the same port).
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.configs
            .iter()
            .map(|c| SocketAddr::from(([127, 0, 0, 1], c.port)))
            .collect()
    }

    /// Sentinel `i`'s address.
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.addrs()[i]
    }

    /// How many Sentinels there are.
    pub fn len(&self) -> usize {
        self.configs.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.configs.is_empty()
    }

    /// Sentinel `i`, if running.
    pub fn sentinel(&self, i: usize) -> Option<&Sentinel> {
        self.running.get(i).and_then(Option::as_ref)
    }

    /// Stop Sentinel `i` and wait until its port is closed (it remembers its id and what it
    /// monitored, for [`TestSentinels::restart`]).
    pub async fn kill(&mut self, i: usize) {
        if let Some(s) = self.running[i].take() {
            {
                let st = s.core.lock();
                for (m, cfg) in st.masters.iter().zip(self.configs[i].monitors.iter_mut()) {
                    let (ip, port) = m.current_addr();
                    if let Ok(ip) = ip.parse() {
                        cfg.addr = SocketAddr::new(ip, port);
                    }
                }
            }
            s.stop();
            s.stopped().await;
        }
    }

    /// Start Sentinel `i` again on its port, with its id, monitoring the addresses it last
    /// knew.
    ///
    /// # Errors
    /// The port cannot be bound again.
    pub async fn restart(&mut self, i: usize) -> std::io::Result<()> {
        self.kill(i).await;
        let s = Sentinel::start(self.configs[i].clone()).await?;
        self.running[i] = Some(s);
        Ok(())
    }

    /// Stop every Sentinel.
    pub async fn stop(&mut self) {
        for i in 0..self.running.len() {
            self.kill(i).await;
        }
    }
}

impl Drop for TestSentinels {
    fn drop(&mut self) {
        for s in self.running.iter().flatten() {
            s.stop();
        }
    }
}

impl TestSentinelsBuilder {
    /// How many Sentinels (default 3).
    pub fn sentinels(mut self, n: usize) -> Self {
        self.count = n.max(1);
        self
    }

    /// Sentinels that must agree a primary is down (default 2).
    pub fn quorum(mut self, q: u32) -> Self {
        self.quorum = q.max(1);
        self
    }

    /// Monitor `set`'s primary under `name` (quorum as [`TestSentinelsBuilder::quorum`]).
    pub fn monitor(self, name: impl Into<String>, set: &crate::server::TestReplicaSet) -> Self {
        self.monitor_addr(name, set.primary())
    }

    /// Monitor the primary at `addr` under `name` (a real `redis-server` or a bundled node).
    pub fn monitor_addr(mut self, name: impl Into<String>, addr: SocketAddr) -> Self {
        self.monitors.push((name.into(), addr));
        self
    }

    /// `down-after-milliseconds` (default 1 s).
    pub fn down_after(mut self, d: Duration) -> Self {
        self.down_after = d;
        self
    }

    /// `failover-timeout` (default 10 s).
    pub fn failover_timeout(mut self, d: Duration) -> Self {
        self.failover_timeout = d;
        self
    }

    /// Password clients (and the Sentinels themselves) must AUTH with on every Sentinel.
    pub fn password(mut self, p: impl Into<String>) -> Self {
        self.password = Some(p.into());
        self
    }

    /// Listen on `port`, `port + 1`, ... (default: free ports), as `--sentinel-port` does.
    pub fn base_port(mut self, port: u16) -> Self {
        self.base_port = Some(port);
        self
    }

    /// `auth-pass` the Sentinels use with the data nodes.
    pub fn auth_pass(mut self, p: impl Into<String>) -> Self {
        self.auth_pass = Some(p.into());
        self
    }

    /// Start the Sentinels on free ports.
    ///
    /// # Errors
    /// A listener cannot be bound.
    pub async fn start(self) -> std::io::Result<TestSentinels> {
        let mut running = Vec::new();
        let mut configs = Vec::new();
        for i in 0..self.count {
            let monitors = self
                .monitors
                .iter()
                .map(|(name, addr)| {
                    let mut m = Monitor::new(name.clone(), *addr, self.quorum);
                    m.down_after = self.down_after;
                    m.failover_timeout = self.failover_timeout;
                    m.auth_pass = self.auth_pass.clone();
                    m
                })
                .collect();
            let port = match self.base_port {
                Some(base) => u16::try_from(usize::from(base) + i).map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, "port out of range")
                })?,
                None => 0,
            };
            let mut config = SentinelConfig {
                port,
                monitors,
                requirepass: self.password.clone(),
                sentinel_pass: self.password.clone(),
                myid: None,
            };
            let s = Sentinel::start(config.clone()).await?;
            config.port = s.addr().port();
            config.myid = Some(s.myid());
            configs.push(config);
            running.push(Some(s));
        }
        Ok(TestSentinels { running, configs })
    }
}
