//! [`ClientBuilder`]: every client option, with defaults that suit a web backend.

use std::fmt::Display;
use std::time::Duration;

use super::Client;
use crate::credentials::{Auth, Credentials, CredentialsProvider};
use crate::error::{Error, ErrorKind};
use crate::router::decide::Policy;
use crate::router::{Config, ConnectOptions, Mode, ReadFrom, Router};

/// Options for a [`Client`]; made by [`Client::builder`].
///
/// ```no_run
/// # async fn f() -> Result<(), redcluster::Error> {
/// use std::time::Duration;
/// let client = redcluster::Client::builder(["10.0.0.1:6379", "10.0.0.2:6379"])
///     .read_from(redcluster::ReadFrom::ReplicaPreferred)
///     .request_timeout(Duration::from_secs(2))
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until .build().await"]
pub struct ClientBuilder {
    seeds: Vec<String>,
    read_from: ReadFrom,
    pool_size: usize,
    connect_timeout: Duration,
    request_timeout: Duration,
    max_redirects: u32,
    credentials: Option<Auth>,
    resp3: bool,
    refresh_interval: Option<Duration>,
    client_name: Option<String>,
    retry_writes_on_disconnect: bool,
    /// TLS, address map, `rediss://`: how connections are opened.
    reach: crate::router::Reach,
    /// The deployment kind and, for Sentinel, where the Sentinels are.
    deployment: Deployment,
    /// `SELECT` on every connection (standalone only; 0 sends nothing).
    database: u32,
    /// Credentials for the Sentinels (not the data nodes).
    sentinel_credentials: Option<Auth>,
    /// Client-side caching, when on.
    cache: Option<crate::ClientCache>,
}

/// What the builder was told about the deployment.
#[derive(Clone, Debug, Default)]
enum Deployment {
    /// Cluster, or standalone when the seeds say so.
    #[default]
    Detect,
    /// `.standalone()`.
    Standalone,
    /// `Client::sentinel`: the Sentinels' addresses and the monitored name.
    Sentinel(Vec<String>, String),
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("seeds", &self.seeds)
            .field("read_from", &self.read_from)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_redirects", &self.max_redirects)
            .field("credentials", &self.credentials)
            .field("resp3", &self.resp3)
            .field("refresh_interval", &self.refresh_interval)
            .field("client_name", &self.client_name)
            .field(
                "retry_writes_on_disconnect",
                &self.retry_writes_on_disconnect,
            )
            .field("reach", &self.reach)
            .field("deployment", &self.deployment)
            .field("database", &self.database)
            .field("sentinel_credentials", &self.sentinel_credentials)
            .field("cache", &self.cache)
            .finish()
    }
}

/// What [`Client::builder`] accepts as seeds: one `"host:port"` (`&str`, `String`,
/// `SocketAddr`), or a list of them (array, slice, `Vec`, e.g. a `Vec<String>` read from
/// configuration). Any one reachable node is enough.
///
/// ```no_run
/// # async fn f() -> Result<(), redcluster::Error> {
/// let one = redcluster::Client::builder("127.0.0.1:7000").build().await?;
/// let from_config: Vec<String> = vec!["10.0.0.1:6379".into(), "10.0.0.2:6379".into()];
/// let many = redcluster::Client::builder(from_config).build().await?;
/// # let _ = (one, many); Ok(()) }
/// ```
pub trait IntoSeeds {
    /// The seeds as `"host:port"` strings.
    fn into_seeds(self) -> Vec<String>;
}

macro_rules! one_seed {
    ($($t:ty),*) => {$(
        impl IntoSeeds for $t {
            fn into_seeds(self) -> Vec<String> {
                vec![self.to_string()]
            }
        }
    )*};
}
one_seed!(&str, String, &String, std::net::SocketAddr);

impl<S: Display> IntoSeeds for Vec<S> {
    fn into_seeds(self) -> Vec<String> {
        self.iter().map(S::to_string).collect()
    }
}

impl<S: Display> IntoSeeds for &Vec<S> {
    fn into_seeds(self) -> Vec<String> {
        self.iter().map(S::to_string).collect()
    }
}

impl<S: Display> IntoSeeds for &[S] {
    fn into_seeds(self) -> Vec<String> {
        self.iter().map(S::to_string).collect()
    }
}

impl<S: Display, const N: usize> IntoSeeds for [S; N] {
    fn into_seeds(self) -> Vec<String> {
        self.iter().map(S::to_string).collect()
    }
}

impl<S: Display, const N: usize> IntoSeeds for &[S; N] {
    fn into_seeds(self) -> Vec<String> {
        self.iter().map(S::to_string).collect()
    }
}

impl ClientBuilder {
    pub(super) fn new(seeds: impl IntoSeeds) -> ClientBuilder {
        ClientBuilder {
            seeds: seeds.into_seeds(),
            read_from: ReadFrom::Primary,
            pool_size: 1,
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(5),
            max_redirects: 5,
            credentials: None,
            resp3: false,
            refresh_interval: Some(Duration::from_secs(30)),
            client_name: None,
            retry_writes_on_disconnect: false,
            reach: Default::default(),
            deployment: Deployment::Detect,
            database: 0,
            sentinel_credentials: None,
            cache: None,
        }
    }

    /// Sentinel mode (see [`Client::sentinel`]).
    pub(super) fn sentinels(mut self, sentinels: Vec<String>, name: &str) -> Self {
        self.deployment = Deployment::Sentinel(sentinels, name.to_string());
        self
    }

    /// Apply what a URL said (see [`ClientBuilder::url`]).
    pub(super) fn apply_url(mut self, url: super::url::ParsedUrl) -> Result<Self, Error> {
        self.seeds = url.seeds;
        self.reach.tls_required = url.tls;
        if let Some(password) = url.password {
            self.credentials = Some(Auth::fixed(Credentials {
                user: url.user,
                password,
                valid_until: None,
            }));
        }
        if let Some(r) = url.read_from {
            self.read_from = r;
        }
        if let Some(d) = url.request_timeout {
            self.request_timeout = d;
        }
        if let Some(d) = url.connect_timeout {
            self.connect_timeout = d;
        }
        if let Some(on) = url.resp3 {
            self.resp3 = on;
        }
        if let Some(name) = url.client_name {
            self.client_name = Some(name);
        }
        if let Some(db) = url.database {
            self.database = db;
        }
        Ok(self)
    }

    /// Which node serves read-only commands (default [`ReadFrom::Primary`]).
    pub fn read_from(mut self, read_from: ReadFrom) -> Self {
        self.read_from = read_from;
        self
    }

    /// Connections per node (default 1: each is multiplexed, so one carries thousands of
    /// concurrent requests; more help only when one socket's reader becomes the bottleneck).
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = n.max(1);
        self
    }

    /// Bound on opening a connection and its handshake (default 1 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Deadline for a whole request, redirects and retries included (default 5 s).
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// MOVED/ASK redirects one request may follow (default 5).
    pub fn max_redirects(mut self, n: u32) -> Self {
        self.max_redirects = n;
        self
    }

    /// Authenticate every connection (`AUTH` or `HELLO ... AUTH`); `user` `None` means the
    /// `default` user. The password is never logged or shown in errors or Debug output.
    /// (A provider that always hands out this pair; replaces any earlier
    /// [`credentials_provider`](ClientBuilder::credentials_provider).)
    pub fn credentials(mut self, user: Option<&str>, password: &str) -> Self {
        self.credentials = Some(Auth::fixed(Credentials::new(user, password)));
        self
    }

    /// Ask `provider` for credentials for every new connection, and again before the
    /// [`valid_until`](Credentials::valid_until) of those a live connection holds, which it
    /// then re-authenticates with `AUTH` without dropping requests in flight: rotating
    /// passwords and short-lived tokens (cloud IAM) without rebuilding the client. A closure
    /// returning a future is a provider:
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), redcluster::Error> {
    /// use std::time::{Duration, Instant};
    /// use redcluster::{Client, Credentials};
    /// let client = Client::builder(["10.0.0.1:6379"])
    ///     .credentials_provider(|| async {
    ///         let token = "fresh-token".to_string(); // fetched from the cloud, say
    ///         Ok(Credentials::new(Some("app"), &token)
    ///             .valid_until(Instant::now() + Duration::from_secs(15 * 60)))
    ///     })
    ///     .build()
    ///     .await?;
    /// # let _ = client; Ok(()) }
    /// ```
    ///
    /// See [`CredentialsProvider`] for a provider type with its own state. A refusal
    /// (`WRONGPASS`) is an [`ErrorKind::Auth`] error naming the user, never retried.
    /// Replaces any earlier [`credentials`](ClientBuilder::credentials).
    ///
    /// Renewed in place: the multiplexed connections, and subscriptions under RESP3. A RESP2
    /// subscriber connection refuses `AUTH` (Redis allows only (un)subscribe, PING, QUIT and
    /// RESET there), and a connection lent to a transaction or blocking command must not
    /// get one mid-`MULTI`: those take fresh credentials when they are next opened (a
    /// server that drops connections at token expiry makes the subscription reconnect).
    pub fn credentials_provider(mut self, provider: impl CredentialsProvider) -> Self {
        self.credentials = Some(Auth::provider(std::sync::Arc::new(provider)));
        self
    }

    /// Speak RESP3 (`HELLO 3`) instead of RESP2 (default false).
    pub fn resp3(mut self, on: bool) -> Self {
        self.resp3 = on;
        self
    }

    /// How often the topology is refreshed in the background even when nothing asks for it
    /// (default 30 s; `None` refreshes only on events such as MOVED).
    pub fn refresh_interval(mut self, every: Option<Duration>) -> Self {
        self.refresh_interval = every;
        self
    }

    /// Name every connection with `CLIENT SETNAME` (shows in `CLIENT LIST`).
    pub fn client_name(mut self, name: &str) -> Self {
        self.client_name = Some(name.to_string());
        self
    }

    /// Re-send a write whose connection broke after it was sent (at-least-once; default
    /// false, which reports [`ErrorKind::MaybeApplied`] instead).
    pub fn retry_writes_on_disconnect(mut self, on: bool) -> Self {
        self.retry_writes_on_disconnect = on;
        self
    }

    /// Keep the replies of hot reads in this process, kept right by the nodes' invalidation
    /// messages (`CLIENT TRACKING`): a hit costs no round trip. Needs RESP3, which this turns
    /// on. See [`ClientCache`](crate::ClientCache) for what is cached and the settings, and
    /// [`Client::cache_stats`] for how it does.
    pub fn client_cache(mut self, cache: crate::ClientCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Use TLS for every connection (seeds, discovered nodes, replicas, pinned sessions,
    /// subscriptions), with these settings. A `rediss://` URL turns TLS on with
    /// [`TlsConfig::new`](crate::TlsConfig::new) unless this is called. A TLS failure is an
    /// error naming the node and the reason (unknown CA, name mismatch, expired, plaintext
    /// server), within `connect_timeout`.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::TlsConfig) -> Self {
        self.reach.tls = Some(tls);
        self
    }

    /// Dial `f(host, port)` wherever the cluster says `host:port` (CLUSTER SHARDS/SLOTS/
    /// NODES, MOVED, ASK — and the seeds): for NAT, Docker and port-forwards, where nodes
    /// announce addresses the client cannot reach. Return the input unchanged for addresses
    /// that need no mapping. Topology, errors and stats keep the announced addresses; TLS
    /// still checks the announced host name. Names are resolved again on every connect.
    pub fn address_map<F>(mut self, f: F) -> Self
    where
        F: Fn(&str, u16) -> (String, u16) + Send + Sync + 'static,
    {
        self.reach.map = Some(std::sync::Arc::new(f));
        self
    }

    /// Expect a standalone primary (cluster mode off) with replicas instead of detecting the
    /// deployment: the seeds are asked `INFO replication`, the primary is the node that says
    /// `role:master` (the one its replicas follow, if several do), and its online, caught-up
    /// replicas serve reads by [`read_from`](ClientBuilder::read_from). Without this call a
    /// client detects a standalone primary by itself (its seeds refuse `CLUSTER SHARDS`).
    pub fn standalone(mut self) -> Self {
        if !matches!(self.deployment, Deployment::Sentinel(..)) {
            self.deployment = Deployment::Standalone;
        }
        self
    }

    /// Select database `n` on every connection (`SELECT n`; default 0). Only a standalone
    /// primary (or Sentinel) has databases other than 0: with a cluster, `build` fails
    /// with [`ErrorKind::Config`]. A URL's path says the same: `redis://host/3`.
    pub fn database(mut self, n: u32) -> Self {
        self.database = n;
        self
    }

    /// Authenticate to the Sentinels (not the data nodes, which take
    /// [`credentials`](ClientBuilder::credentials)) as `user` (`None`: `default`) with
    /// `password`: Sentinels often have their own `requirepass`. Without this call the
    /// Sentinels are reached without credentials. Never logged or shown.
    pub fn sentinel_credentials(mut self, user: Option<&str>, password: &str) -> Self {
        self.sentinel_credentials = Some(Auth::fixed(Credentials::new(user, password)));
        self
    }

    /// Discover the cluster from the seeds and return a ready client.
    ///
    /// Seeds that do not answer are skipped; one that does is enough.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when no seed is given, a client name has a space, or no seed
    /// answered with the cluster's topology (the message lists each seed's failure).
    pub async fn build(self) -> Result<Client, Error> {
        let addrs = match &self.deployment {
            Deployment::Sentinel(sentinels, _) => sentinels,
            _ => &self.seeds,
        };
        if addrs.is_empty() {
            return Err(Error::new(ErrorKind::Config, "no seed address given"));
        }
        if let Some(bad) = addrs.iter().find(|s| !s.contains(':')) {
            return Err(Error::new(
                ErrorKind::Config,
                format!("seed {bad:?} is not host:port"),
            ));
        }
        if self
            .client_name
            .as_deref()
            .is_some_and(|n| n.contains(|c: char| c.is_whitespace()))
        {
            return Err(Error::new(
                ErrorKind::Config,
                "client name may not contain spaces",
            ));
        }
        let cache = self
            .cache
            .as_ref()
            .map(|c| std::sync::Arc::new(crate::client_cache::Store::new(c)));
        let mut opts = ConnectOptions {
            // Invalidations arrive as RESP3 pushes on the connection that read the key.
            resp3: self.resp3 || cache.is_some(),
            tracking: cache.as_ref().map(|c| c.tracking()),
            auth: self.credentials,
            client_name: self.client_name,
            connect_timeout: self.connect_timeout,
            database: self.database,
            ..ConnectOptions::default()
        };
        if let Some(connector) = self.reach.connector(addrs)? {
            opts.connector = connector;
        }
        let mode = match self.deployment {
            Deployment::Detect => Mode::Auto,
            Deployment::Standalone => Mode::Standalone,
            Deployment::Sentinel(sentinels, name) => {
                let sentinel_opts = ConnectOptions {
                    auth: self.sentinel_credentials,
                    database: 0,
                    resp3: false,
                    ..opts.clone()
                };
                let s = crate::router::sentinel::Sentinels::new(sentinels, &name, sentinel_opts);
                Mode::Sentinel(std::sync::Arc::new(s))
            }
        };
        let config = Config {
            seeds: self.seeds,
            read_from: self.read_from,
            request_timeout: self.request_timeout,
            refresh_interval: self.refresh_interval,
            policy: Policy {
                max_redirects: self.max_redirects,
                retry_writes: self.retry_writes_on_disconnect,
                base_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(500),
            },
            mode,
            cache,
        };
        let router = Router::start(config, opts, self.pool_size).await?;
        Ok(Client::from_router(router))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_from_one_string_or_a_list() {
        assert_eq!("h:1".into_seeds(), vec!["h:1"]);
        assert_eq!(String::from("h:1").into_seeds(), vec!["h:1"]);
        let v: Vec<String> = vec!["a:1".into(), "b:2".into()];
        assert_eq!((&v).into_seeds(), v);
        assert_eq!(v.clone().into_seeds(), v);
        assert_eq!(["a:1", "b:2"].into_seeds(), v);
        assert_eq!(v[..].into_seeds(), v);
        let addr: std::net::SocketAddr = "127.0.0.1:7000".parse().unwrap();
        assert_eq!(addr.into_seeds(), vec!["127.0.0.1:7000"]);
        assert_eq!(vec![addr].into_seeds(), vec!["127.0.0.1:7000"]);
    }

    #[test]
    fn debug_never_shows_the_password() {
        let b = ClientBuilder::new(["127.0.0.1:1"]).credentials(Some("app"), "hunter2-secret");
        let shown = format!("{b:?}");
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert!(shown.contains("app"));
        assert!(shown.contains("redacted"));
    }

    #[tokio::test]
    async fn bad_configuration_is_a_config_error() {
        let none: [&str; 0] = [];
        let e = ClientBuilder::new(none).build().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        let e = ClientBuilder::new(["nocolon"]).build().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        let e = ClientBuilder::new(["127.0.0.1:1"])
            .client_name("has space")
            .build()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }
}
